//! Update endpoints:
//! - `register_video`: registrars only (the spawn canister), once per video (idempotent);
//! - `report_owner_change`: the video canister itself, after an ownership transfer. The report is
//!   a hint, checked with the IC (`canister_info`) before it is applied: see
//!   [`crate::logic::judge_report`];
//! - `set_admins` / `set_registrars`: admins.

use std::cell::RefCell;
use std::collections::BTreeSet;

use candid::Principal;
use canvid_types::index::{OwnerChange, VideoRegistration};
use canvid_types::{Error, Result};
use ic_cdk::api::{msg_caller, time};
use ic_cdk::update;
use ic_cdk_management_canister::{canister_info, CanisterInfoArgs};

use crate::guards::{require_admin, require_registrar};
use crate::logic::VerifiedInfo;
use crate::store;

#[update]
fn register_video(reg: VideoRegistration) -> Result<()> {
    require_registrar()?;
    // Every registered video is a token whose id is the canister's number (docs/nft.md), and
    // the spawn canister only registers canisters it created.
    if canvid_types::icrc::token_id_of(&reg.video).is_none() {
        return Err(Error::InvalidArgument {
            reason: format!("{} is not a canister id", reg.video),
        });
    }
    let out = store::with_mut(|s| s.register(&reg, time())).map(|_| ());
    crate::certify();
    out
}

thread_local! {
    /// Videos whose report is being checked with the IC (heap only: no call survives an
    /// upgrade). One check per video at a time bounds the calls a video's code can make the
    /// index pay for.
    static VERIFYING: RefCell<BTreeSet<Principal>> = const { RefCell::new(BTreeSet::new()) };
}

/// Marks a video's report as being checked; unmarked when dropped (also by ic-cdk's cleanup
/// if the code after the await traps).
struct Verifying(Principal);

impl Verifying {
    fn start(video: Principal) -> Option<Self> {
        VERIFYING
            .with(|v| v.borrow_mut().insert(video))
            .then_some(Verifying(video))
    }
}

impl Drop for Verifying {
    fn drop(&mut self) {
        VERIFYING.with(|v| v.borrow_mut().remove(&self.0));
    }
}

#[update]
async fn report_owner_change(change: OwnerChange) -> Result<()> {
    // The reporting video is the caller: a canister can only report on itself. Its code is its
    // owner's to choose, so the report is only a hint: the index asks the IC for the video's
    // controllers and history counter (`canister_info`; no controller rights needed) and
    // applies the report only if they bear it out.
    let video = msg_caller();
    store::with(|s| s.check_reporter(&video))?;
    let Some(_verifying) = Verifying::start(video) else {
        return Err(Error::Busy {
            reason: format!("a report of {video} is being checked; retry"),
        });
    };
    let info = canister_info(&CanisterInfoArgs {
        canister_id: video,
        num_requested_changes: None,
    })
    .await
    .map_err(|e| Error::CallFailed {
        target: Principal::management_canister(),
        method: "canister_info".into(),
        reason: e.to_string(),
    })?;
    let info = VerifiedInfo {
        controllers: info.controllers,
        total_num_changes: info.total_num_changes,
    };
    // After the await: the store decides from what it holds now (another report may have been
    // applied meanwhile; the history counter orders them).
    let out =
        store::with_mut(|s| s.report_owner_change(&video, &change, &info, time())).map(|_| ());
    crate::certify();
    out
}

#[update]
fn set_admins(admins: Vec<Principal>) -> Result<()> {
    require_admin()?;
    store::with_mut(|s| s.set_admins(&admins))
}

#[update]
fn set_registrars(registrars: Vec<Principal>) -> Result<()> {
    require_admin()?;
    store::with_mut(|s| s.set_registrars(&registrars))
}
