//! Candid types of the index canister.
//!
//! The index maps creators and current owners to video canisters. The two writes it accepts
//! are fixed here because other canisters call them:
//! - `register_video : (VideoRegistration) -> (Result)`: callable only by a registrar (the spawn
//!   canister), once per video canister.
//! - `report_owner_change : (OwnerChange) -> (Result)`: callable only by the video canister
//!   itself (the caller *is* the video), which must already be registered. The report is a hint
//!   the index checks with the IC (`canister_info`): the new owner must be a controller of the
//!   video, else `Conflict`.

use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct VideoRegistration {
    pub video: Principal,
    pub creator: Principal,
    pub owner: Principal,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct OwnerChange {
    pub new_owner: Principal,
    /// The video's transfer counter, kept for display. It orders nothing (the video's code is
    /// its owner's to choose): the index orders reports by the IC's canister-history counter
    /// and ignores one not newer than the last it applied.
    pub transfer_seq: u64,
}

/// Page size when `ListArgs::limit` is absent.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// Largest page a listing returns (a larger `limit` is clamped to this; the answer then has a
/// `next_cursor`, so nothing is silently dropped).
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// Install (and upgrade) argument of the index canister.
///
/// `admins` empty means "the installer is the only admin". `registrars` are the principals
/// (normally the spawn canister) allowed to call `register_video`. On upgrade the argument is
/// optional; when given, a non-empty list replaces the current one and an empty list keeps it
/// (clear the registrars with `set_registrars(vec {})`, on purpose).
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct IndexInit {
    pub admins: Vec<Principal>,
    pub registrars: Vec<Principal>,
}

/// `videos_by_creator` / `videos_by_owner` argument: the videos of `principal`, in ascending
/// order of the video canister id, strictly after `cursor` (the `next_cursor` of the previous
/// page), at most `limit` (default `DEFAULT_PAGE_LIMIT`, clamped to `MAX_PAGE_LIMIT`).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ListArgs {
    pub principal: Principal,
    pub cursor: Option<Principal>,
    pub limit: Option<u32>,
}

/// What the index knows about one video canister.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct VideoEntry {
    pub video: Principal,
    pub creator: Principal,
    pub owner: Principal,
    /// `OwnerChange::transfer_seq` of the last applied report (0 = none), as the video reported
    /// it: for display, not an order.
    pub transfer_seq: u64,
    /// IC time (ns since the Unix epoch) of the registration.
    pub registered_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct Page {
    pub videos: Vec<VideoEntry>,
    /// Pass as `cursor` to get the next page; `None` when this page reached the end.
    pub next_cursor: Option<Principal>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct IndexStats {
    /// Registered video canisters.
    pub videos: u64,
    /// Distinct creators / current owners with at least one video.
    pub creators: u64,
    pub owners: u64,
    /// Ownership changes applied (stale, duplicate or refused reports are not counted).
    pub owner_changes_applied: u64,
    pub admins: Vec<Principal>,
    pub registrars: Vec<Principal>,
    /// Version of the stable-memory layout (see the index canister's storage module).
    pub layout_version: u32,
}
