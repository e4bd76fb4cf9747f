//! The candid interface of canvid's three canisters.
//!
//! One crate holds every type that crosses a canister boundary so that the canisters, the
//! integration tests, the CLI and the generated `.did` files cannot disagree about a field.
//! Each canister has its own module (`video`, `spawn`, `index`); `error` is shared because a
//! caller should be able to match on the same variant whichever canister refused it.
//! `protocol` holds the arithmetic every party computes identically (chunking, file digest).

pub mod access;
pub mod encryption;
pub mod error;
pub mod files;
pub mod icrc;
pub mod index;
pub mod ledger;
pub mod management;
pub mod protocol;
pub mod spawn;
pub mod video;

#[cfg(test)]
mod props;

pub use error::{Error, Result};
pub use protocol::is_canister_id;
