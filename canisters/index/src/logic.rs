//! Plain-Rust decisions of the index canister: the bounds of the admin and registrar lists,
//! when a repeated registration is the same one, and whether an ownership report verifies and
//! is news. No
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

/// What the IC says about a video canister when its ownership report is checked
/// (`canister_info` of the management canister, read by the index itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedInfo {
    /// The canister's controllers now.
    pub controllers: Vec<Principal>,
    /// The IC's canister-history counter (creation, code installs / upgrades / uninstalls,
    /// controller changes, ...): the video's code cannot forge or lower it, and an ownership
    /// transfer (which rewrites the controllers) always raises it.
    pub total_num_changes: u64,
}

/// The decision on an ownership report `change` that `video` made about itself, given what the
/// index applied last for it (`applied_changes`: the `total_num_changes` read when that report
/// was applied, 0 if none) and what the IC says now (`info`).
///
/// The report is a hint: its owner and order are checked against the IC, never taken from the
/// video, whose code its owner controls (security review M4):
/// - the new owner must be one of the video's controllers now, and not the video itself;
///   otherwise `Conflict`, and nothing changes;
/// - it is news (`Ok(true)`) only if the IC's history counter moved past the one read when the
///   last report was applied; otherwise it is acknowledged without effect (`Ok(false)`), so a
///   retried report changes nothing. `transfer_seq` plays no part: a video could report
///   `u64::MAX` and freeze every later report, and reports legitimately skip values (the video's
///   outbox keeps only the newest change).
pub fn judge_report(
    video: &Principal,
    applied_changes: u64,
    info: &VerifiedInfo,
    change: &OwnerChange,
) -> Result<bool> {
    if change.new_owner == *video || !info.controllers.contains(&change.new_owner) {
        return Err(Error::Conflict {
            reason: format!(
                "{} is not a controller of video {video} (the IC lists {:?}): ownership report refused",
                change.new_owner,
                info.controllers.iter().map(|p| p.to_text()).collect::<Vec<_>>()
            ),
        });
    }
    Ok(info.total_num_changes > applied_changes)
}
