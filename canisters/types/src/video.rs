//! Candid types of the video canister.
//!
//! `VideoInit` is fixed first because the spawn canister encodes it when it installs a video
//! canister; the rest of the video interface lives below it.

use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;

/// Install argument of a video canister (`install_code` arg, candid-encoded).
///
/// The spawn canister fills it in; a developer installing a video canister by hand (with dfx)
/// fills it in the same way.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct VideoInit {
    /// App-level owner: the only principal that may write (besides uploaders it authorises).
    pub owner: Principal,
    /// Who created the video; never changes, even across ownership transfers.
    pub creator: Principal,
    /// Index canister to notify of ownership changes, if the deployment has one.
    pub index: Option<Principal>,
    /// Initial metadata; the owner may edit it later.
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
}
