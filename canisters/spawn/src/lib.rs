//! canvid spawn canister: creates one video canister per video.
//!
//! Layout (the skeleton all three canvid canisters share):
//! - `lifecycle`: `init` / `post_upgrade` (open the store, apply the argument, migrate,
//!   recover interrupted creations, re-arm the retry timer);
//! - `queries`, `updates`: the endpoints. They only check the caller (`guards`) and call the
//!   store, the plain logic or the creation flow;
//! - `guards`: `require_admin` and the `inspect_message` ingress policy;
//! - [`flow`]: the asynchronous creation state machine and the outbox driver (timer,
//!   `retry_pending`);
//! - [`logic`]: plain-Rust decisions (cycles formula, who pays, quotas, state transitions,
//!   upgrade targets), natively tested;
//! - [`store`]: the whole stable state, [`store::SpawnStore`] (byte layout in its module docs),
//!   and the canister's singleton of it.
//!
//! See docs/spawn-and-index.md for who pays, the cycles formula and the recovery rules.

pub mod flow;
pub mod logic;
pub mod store;

mod guards;
mod lifecycle;
mod queries;
mod updates;

// `export_candid!` names the types of every endpoint's signature from here.
#[allow(unused_imports)]
use candid::Principal;
#[allow(unused_imports)]
use canvid_types::spawn::{
    CreateVideoArgs, CreatedVideo, CyclesConfig, QuotaArgs, QuotaStatus, SetWasmArgs, SpawnInit,
    SpawnListArgs, SpawnPage, SpawnStats, SpawnedVideo, TopUpArgs, UpgradeArgs, UpgradeOutcome,
    WasmInfo,
};
#[allow(unused_imports)]
use canvid_types::Result;

ic_cdk::export_candid!();

#[cfg(test)]
mod tests;
