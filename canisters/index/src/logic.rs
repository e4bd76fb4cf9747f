//! Plain-Rust decisions of the index canister: the bounds of the admin and registrar lists,
//! when a repeated registration is the same one, and when an ownership report is news. No
//! system API and no memory here; the store applies them, and the tests check them directly.

use candid::Principal;
use canvid_types::index::{OwnerChange, VideoRegistration};
use canvid_types::{Error, Result};

/// Most admins / registrars: bounds the header and the linear membership checks.
pub const MAX_PRINCIPALS: usize = 64;

/// An admin or registrar list as stored: duplicates dropped, at most [`MAX_PRINCIPALS`].
pub fn validate_principals(what: &str, list: &[Principal]) -> Result<Vec<Principal>> {
    canvid_stable_common::dedup_principals(what, list, MAX_PRINCIPALS)
}

/// An admin list as stored ([`validate_principals`]). An empty one is refused: nobody could
/// ever change the configuration again.
pub fn validate_admins(list: &[Principal]) -> Result<Vec<Principal>> {
    let admins = validate_principals("admins", list)?;
    if admins.is_empty() {
        return Err(Error::InvalidArgument {
            reason: "the admin list may not be empty".into(),
        });
    }
    Ok(admins)
}

/// A registration of a video that is registered already with `creator` and, at registration,
/// `registered_owner`. The same registration again is acknowledged (the spawn canister's outbox
/// retries until it hears back, possibly after the video changed hands, which is why the owner
/// compared is the registered one, not the current one); a different one is a `Conflict`.
pub fn check_reregistration(
    reg: &VideoRegistration,
    creator: &Principal,
    registered_owner: &Principal,
) -> Result<()> {
    if reg.creator == *creator && reg.owner == *registered_owner {
        return Ok(());
    }
    Err(Error::Conflict {
        reason: format!(
            "video {} is already registered with creator {creator} and owner {registered_owner}",
            reg.video
        ),
    })
}

/// Whether an ownership report changes anything: only one newer than the stored
/// `transfer_seq`, so a retried or reordered notification never moves ownership backwards.
pub fn is_newer_report(stored_seq: u64, change: &OwnerChange) -> bool {
    change.transfer_seq > stored_seq
}
