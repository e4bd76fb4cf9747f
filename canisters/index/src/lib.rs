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
//!   and the canister's singleton of it.
//!
//! See docs/spawn-and-index.md.

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

ic_cdk::export_candid!();

#[cfg(test)]
mod tests;
