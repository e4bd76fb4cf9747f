//! canvid index canister: maps creators and current owners to video canisters.
//!
//! Layout (the skeleton all three canvid canisters share):
//! - `lifecycle`: `init` / `post_upgrade` (open the store, apply the argument);
//! - `queries`: open to everybody; `updates`: registrations (the spawn canister), ownership
//!   reports (the video itself) and the admin lists. Endpoints only check the caller
//!   (`guards`) and call the store;
//! - `guards`: `require_admin`, `require_registrar` and the `inspect_message` ingress policy;
//! - [`logic`]: plain-Rust decisions (list bounds, repeated registrations, report ordering);
//! - [`store`]: the whole stable state, [`store::IndexStore`] (byte layout in its module docs),
//!   and the canister's singleton of it;
//! - [`collection`]: the index as canvid's ICRC-7 collection (ICRC-37 approvals, ICRC-3 log):
//!   every registered video is a token whose transfer moves the canister (docs/nft.md).
//!
//! See docs/spawn-and-index.md.

pub mod collection;
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
use canvid_types::index::{
    IndexInit, IndexStats, ListArgs, OwnerChange, Page, VideoEntry, VideoRegistration,
};
#[allow(unused_imports)]
use canvid_types::Result;

#[allow(unused_imports)]
use candid::Nat;
#[allow(unused_imports)]
use canvid_icrc3::types::{
    DataCertificate, GetArchivesArgs, GetArchivesResult, GetBlocksArgs, GetBlocksResult,
    SupportedBlockType,
};
#[allow(unused_imports)]
use canvid_icrc3::Value;
#[allow(unused_imports)]
use canvid_types::icrc::*;

/// Sets the canister's certified data to the ICRC-3 tip (the log's hash tree root): after every
/// change that may have appended a block, and in `init` / `post_upgrade`.
pub(crate) fn certify() {
    let root = store::with(|s| s.log().certified_data());
    ic_cdk::api::certified_data_set(root);
}

ic_cdk::export_candid!();

#[cfg(test)]
mod tests;
