//! Candid types of the index canister.
//!
//! The index maps creators and current owners to video canisters. The two writes it accepts
//! are fixed here because other canisters call them:
//! - `register_video : (VideoRegistration) -> (Result)`: callable only by a registrar (the spawn
//!   canister), once per video canister.
//! - `report_owner_change : (OwnerChange) -> (Result)`: callable only by the video canister
//!   itself (the caller *is* the video), which must already be registered.

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
    /// Monotonic per video canister (the video's transfer counter): the index ignores a report
    /// older than one it has already applied, so retried notifications cannot reorder owners.
    pub transfer_seq: u64,
}
