//! One token transfer, across its awaits, and the recovery of transfers an upgrade or a lost
//! answer left unsettled.
//!
//! Order of effects:
//! 1. checks and the lock ([`IndexStore::begin_transfer`], a stable [`PendingTransfer`]):
//!    other transfers and approvals of the token answer BUSY until it is settled;
//! 2. the IC's view of the video (`canister_info`): the holder must control it alone, with a
//!    module the platform installed — otherwise nothing happens;
//! 3. the video moves itself (`collection_transfer`, which only its index may call and which
//!    names the holder the collection expects: a direct transfer meanwhile wins);
//! 4. the IC's view again: the transfer is applied (block, owner maps, approvals revoked) only
//!    if the IC shows the recipient among the controllers with a newer history, and answered
//!    `Ok` only if the recipient controls the video alone. The video's own ownership report,
//!    which step 3 triggers, may apply it first: then the pending record carries its block.
//!
//! Whatever the video answers in step 3 (it runs its owner's code), step 4 reads the outcome
//! from the IC. Code after each await only calls store operations that do not trap.
//!
//! [`IndexStore::begin_transfer`]: crate::store::IndexStore::begin_transfer
//! [`PendingTransfer`]: super::store::PendingTransfer

use std::cell::{Cell, RefCell};
use std::time::Duration;

use candid::Principal;
use canvid_types::icrc::video_of_token;
use canvid_types::video::{ChangeOwnerResult, CollectionTransferArgs};
use ic_cdk::api::{canister_self, time};
use ic_cdk::call::Call;
use ic_cdk_management_canister::{canister_info, CanisterInfoArgs, CanisterInfoResult};

use super::codes;
use super::ledger::{TransferRequest, XferError};
use super::limits::{RateLimiter, TRANSFERS_PER_WINDOW};
use crate::store;

/// Changes of the video's history read with `canister_info`: the IC keeps at least 20, enough
/// to see who installed the current module unless it is older than 20 changes (then the
/// module must be one already known as the platform's).
const HISTORY_CHANGES: u64 = 20;

/// A pending transfer older than this has no call left running (bounded-wait calls end within
/// 5 minutes), so the recovery may settle it.
const ORPHANED_AFTER_NS: u64 = 10 * 60 * 1_000_000_000;

/// How many pending transfers one recovery run settles.
const RECOVER_PER_RUN: usize = 20;

thread_local! {
    static RECOVERY_ARMED: Cell<bool> = const { Cell::new(false) };
    /// Transfers per token and hour (`super::limits`).
    static TRANSFERS: RefCell<RateLimiter> = RefCell::new(RateLimiter::default());
}

pub(crate) async fn video_info(video: Principal) -> Result<CanisterInfoResult, String> {
    canister_info(&CanisterInfoArgs {
        canister_id: video,
        num_requested_changes: Some(HISTORY_CHANGES),
    })
    .await
    .map_err(|e| e.to_string())
}

/// Arms the recovery after a trap in a transfer's callback (the lock would otherwise stay).
struct RecoverIfTrapped;

impl Drop for RecoverIfTrapped {
    fn drop(&mut self) {
        if ic_cdk::futures::is_recovering_from_trap() {
            arm_recovery(ORPHANED_AFTER_NS);
        }
    }
}

fn abandon(video: &Principal) {
    store::with_mut(|s| s.abandon_transfer(video));
}

/// Runs one transfer; the answer is its block index.
pub(crate) async fn transfer(req: TransferRequest) -> Result<u64, XferError> {
    let index_id = canister_self();
    let pending = store::with_mut(|s| s.begin_transfer(&req, &index_id, time()))?;
    let video = video_of_token(pending.tid);
    // Only a transfer that passed every check counts: refusals cost the collection nothing more.
    if let Err(wait_ns) = TRANSFERS.with(|t| {
        t.borrow_mut()
            .admit(pending.tid, time(), TRANSFERS_PER_WINDOW)
    }) {
        abandon(&video);
        return Err(XferError::generic(
            codes::RATE_LIMITED,
            format!(
                "token {} was transferred {TRANSFERS_PER_WINDOW} times through the collection this \
                 hour; retry in {} s",
                pending.tid,
                wait_ns.div_ceil(1_000_000_000)
            ),
        ));
    }
    let _guard = RecoverIfTrapped;

    let before = match video_info(video).await {
        Ok(i) => i,
        Err(e) => {
            abandon(&video);
            return Err(XferError::generic(
                codes::CALL_FAILED,
                format!("canister_info of video {video} failed: {e}"),
            ));
        }
    };
    let problem = store::with_mut(|s| {
        s.learn_modules(&before);
        s.sole_control_problem(&before, &pending.from, &video)
    });
    if let Some(problem) = problem {
        abandon(&video);
        return Err(XferError::generic(codes::NOT_SOLE_CONTROL, problem));
    }

    let answer = Call::bounded_wait(video, "collection_transfer")
        .with_arg(CollectionTransferArgs {
            from: pending.from,
            to: pending.to,
        })
        .await;
    let mut transfer_seq = None;
    if let Ok(response) = answer {
        match response.candid::<canvid_types::Result<ChangeOwnerResult>>() {
            Ok(Ok(r)) => transfer_seq = Some(r.transfer_seq),
            Ok(Err(e)) => {
                // A refusal before anything moved (the video checks and aborts before its first
                // effect). Should its code lie, the IC's view still decides: its ownership
                // report is checked like any other.
                abandon(&video);
                let code = match e {
                    canvid_types::Error::Busy { .. } => codes::BUSY,
                    _ => codes::VIDEO_REFUSED,
                };
                return Err(XferError::generic(code, format!("video {video}: {e}")));
            }
            // Not the interface's answer: the IC's view decides.
            Err(_) => {}
        }
    }
    // A failed call (rejected, timed out, trapped) may still have moved the video: the IC's
    // view decides.

    let after = match video_info(video).await {
        Ok(i) => i,
        Err(e) => {
            arm_recovery(ORPHANED_AFTER_NS);
            return Err(XferError::generic(
                codes::CALL_FAILED,
                format!(
                    "the outcome could not be read ({e}); the collection settles it within minutes: \
                     check icrc7_owner_of"
                ),
            ));
        }
    };
    let settled = store::with_mut(|s| {
        s.learn_modules(&after);
        s.settle_transfer(&video, &after, transfer_seq, time())
    });
    crate::certify();
    if matches!(settled, Ok(Some(_))) {
        super::refresh::refresh_later(video);
    }
    match settled {
        Ok(Some(block)) => match store::with(|s| s.sole_control_problem(&after, &pending.to, &video)) {
            None => Ok(block),
            Some(problem) => Err(XferError::generic(
                codes::NOT_SOLE_CONTROL,
                format!("the video moved (block {block}) but does not belong to its new holder alone: {problem}"),
            )),
        },
        Ok(None) => Err(XferError::generic(
            codes::VIDEO_REFUSED,
            match answer_error_text(transfer_seq) {
                Some(t) => t,
                None => format!("video {video} did not move"),
            },
        )),
        Err(m) => {
            arm_recovery(ORPHANED_AFTER_NS);
            Err(XferError::generic(codes::CALL_FAILED, m))
        }
    }
}

fn answer_error_text(transfer_seq: Option<u64>) -> Option<String> {
    transfer_seq
        .map(|seq| format!("the video reported a transfer (seq {seq}) that the IC does not show"))
}

/// Arms the recovery of pending transfers (one timer at a time).
pub(crate) fn arm_recovery(delay_ns: u64) {
    if RECOVERY_ARMED.with(|a| a.replace(true)) {
        return;
    }
    ic_cdk_timers::set_timer(Duration::from_nanos(delay_ns), async {
        RECOVERY_ARMED.with(|a| a.set(false));
        recover().await;
    });
}

/// Settles pending transfers whose calls are over, from the IC's view of their videos.
async fn recover() {
    let now = time();
    let videos: Vec<Principal> = store::with(|s| {
        s.pending_videos(usize::MAX)
            .into_iter()
            .filter(|v| {
                s.pending_transfer(v)
                    .is_some_and(|p| p.started_at.saturating_add(ORPHANED_AFTER_NS) <= now)
            })
            .take(RECOVER_PER_RUN)
            .collect()
    });
    for video in videos {
        if let Ok(info) = video_info(video).await {
            let _ = store::with_mut(|s| {
                s.learn_modules(&info);
                s.settle_transfer(&video, &info, None, time())
            });
            crate::certify();
        }
    }
    if store::with(|s| !s.pending_videos(1).is_empty()) {
        arm_recovery(ORPHANED_AFTER_NS);
    }
}
