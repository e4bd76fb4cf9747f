//! Integration-test support for canvid: one [`Backend`] trait the tests are written against, run
//! on the embedded replica (`canvid_replica`, always) and on PocketIC (when `POCKET_IC_BIN` names
//! a PocketIC 10.0.0 server binary).
//!
//! ## Which backends run
//! [`backend_tests!`] turns each scenario `fn name(b: &dyn Backend)` into two tests:
//! `replica::name` (always) and `pocket_ic::name`. The PocketIC variant is compiled as
//! `#[ignore = "POCKET_IC_BIN not set ..."]` unless `POCKET_IC_BIN` named an existing file when
//! the crate was built (see `build.rs`), so a run without PocketIC reports those tests as
//! *ignored*, not as passed. When PocketIC is configured both variants run ("also", not
//! "instead"): the embedded replica is what the suite is developed against, PocketIC checks that
//! it behaves like the IC.
//!
//! ```text
//! cargo test -p canvid-tests                                  # embedded replica
//! POCKET_IC_BIN=/path/to/pocket-ic cargo test -p canvid-tests  # + PocketIC 10.0.0
//! CANVID_LARGE=1 cargo test -p canvid-tests --release large    # + the 1 GiB upload
//! ```
//!
//! Modules: `target/canisters/{video,spawn,index}.wasm` (built by `scripts/build-wasm.sh`), or
//! `$CANVID_WASM_DIR/*.wasm`. A missing module fails the test.

pub mod asset_canister;
pub mod backend;
pub mod clients;
pub mod data;
pub mod deploy;
pub mod http_types;
pub mod http_verify;
pub mod ledger;
pub mod pocket_backend;
pub mod replica_backend;
pub mod wasm;

pub use backend::{
    Backend, BackendExt, CallId, Cost, InstallMode, Reject, RejectCode, RunState, Status,
};
pub use candid::Principal;
pub use data::{principal, GenFile, Rng};
pub use pocket_backend::{pocket_ic_unavailable, PocketIcBackend};
pub use replica_backend::ReplicaBackend;

/// Runs `scenario` on the embedded replica.
pub fn on_replica(scenario: impl FnOnce(&dyn Backend)) {
    let b = ReplicaBackend::new();
    scenario(&b);
}

/// Runs `scenario` on PocketIC. Without PocketIC the variants are `#[ignore]`d with the reason
/// (`tests/build.rs`); run anyway (`--include-ignored`), they fail saying what is missing.
pub fn on_pocket_ic(scenario: impl FnOnce(&dyn Backend)) {
    scenario(&PocketIcBackend::from_env());
}

/// `backend_tests!(a, b, c);` — for each scenario `fn a(b: &dyn Backend)` in scope, defines
/// the tests `replica::a` and `pocket_ic::a`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod replica {
            $(
                #[test]
                fn $name() {
                    $crate::on_replica(|b| super::$name(b));
                }
            )*
        }
        mod pocket_ic {
            $(
                #[test]
                #[cfg_attr(
                    not(canvid_pocket_ic),
                    ignore = "PocketIC not configured: set POCKET_IC_BIN to a pocket-ic-server 10.0.0 binary"
                )]
                fn $name() {
                    $crate::on_pocket_ic(|b| super::$name(b));
                }
            )*
        }
    };
}
