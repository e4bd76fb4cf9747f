//! What canvid's tests, the CLI and the examples share, written once:
//!
//! - [`wasm`]: where the canister modules are (`$CANVID_WASM_DIR`, else the workspace's
//!   `target/canisters/`), reading them, and gzip as `install_code` and the spawn canister take it;
//! - [`deploy`]: the index + spawn deploy recipe (init arguments, order, wiring), over any
//!   [`deploy::Target`] (the embedded replica, a test `Backend`);
//! - [`raw_http`]: a raw HTTP/1.1 client for tests that need to see the bytes on the wire;
//! - [`icrc_ledger`]: DFINITY's ICRC ledger fixture and its init argument.
//!
//! No test-only dependency: the `canvid` binary links this crate.

pub mod deploy;
pub mod icrc_ledger;
pub mod raw_http;
pub mod wasm;

pub use wasm::{gzip, load_wasm, load_wasm_gz, read_wasm, wasm_dir, WasmError};
