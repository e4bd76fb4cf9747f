//! Conformance suite of the embedded replica: the probe canister
//! (`local/replica/fixtures/probe`) exercises the System API and the management canister, and each test
//! checks one behaviour the IC interface specification prescribes.
//!
//! Needs the probe module: run `scripts/build-wasm.sh` (writes
//! `target/canisters/replica-probe.wasm`) or point `CANVID_PROBE_WASM` at a built module.
//! Run: `cargo test -p canvid-replica --test conformance`.
//!
//! One file per topic: rollback, rejects, callbacks, limits, upgrades, management, environment,
//! vetkd.

#[path = "../support/mod.rs"]
mod support;

mod callbacks;
mod environment;
mod limits;
mod management;
mod rejects;
mod rollback;
mod upgrades;
mod vetkd;
