//! `change_owner`, the two-step `offer_ownership` / `cancel_offer` / `accept_ownership`, and the
//! index notification outbox: the only endpoints that await.
//!
//! `change_owner` (by the owner or operator) and `accept_ownership` (by the principal a pending
//! offer names) differ only in step 1's checks ([`logic::begin_transfer`],
//! [`logic::begin_accept`]); then both run [`run_transfer`]. Order of effects (see
//! docs/video-canister.md):
//! 1. record the in-flight transfer in stable state (a concurrent call now gets `Busy`);
//! 2. read the current controllers (`canister_status` on itself), record the target list, then
//!    `update_settings` with controllers = [new owner, this canister] + the ones the caller
//!    named to keep (or, when it named none, the spawn canister if it is one now);
//! 3. only if that succeeded: the app-level owner changes, `transfer_seq` is bumped, operator and
//!    uploaders are cleared, and the notification is queued in the stable outbox;
//! 4. the index is called; a failure leaves the notification in the outbox for a timer.
//!
//! Code after each await only touches the small state cell through `logic` functions that
//! cannot fail (applied by `VideoStore::mutate_state`), so it does not trap: a trap there would
//! roll back the callback while the management canister has already applied the controllers.

use std::cell::Cell;
use std::time::Duration;

use candid::{Principal, Reserved};
use canvid_types::index::OwnerChange;
use canvid_types::video::{
    ChangeOwnerArgs, ChangeOwnerResult, CollectionTransferArgs, OfferArgs, OwnershipOffer,
};
use canvid_types::{Error, Result};
use ic_cdk::api::{canister_self, msg_caller, time};
use ic_cdk::call::Call;
use ic_cdk_management_canister::{
    update_settings, CanisterSettings, CanisterStatusArgs, UpdateSettingsArgs,
};

use crate::logic;
use crate::store::{canister, State};

thread_local! {
    /// A retry timer is armed (heap only: re-armed by `post_upgrade`).
    static RETRY_ARMED: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn mutate<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let out = canister::with_mut(|s| s.mutate_state(f));
    // Owner / transfer fields are in /metadata.json. Does not trap (see `http::recertify`),
    // which matters here: this runs after awaits.
    crate::http::recertify();
    out
}

/// Held across the awaits of a transfer or a notification. Dropped when the future ends, or by
/// ic-cdk's cleanup after a trap in one of its callbacks: the trap rolled that callback back,
/// leaving the in-flight marker (`Busy` for good) or an outbox entry with no timer, so the
/// cleanup schedules what `post_upgrade` would (reconcile from the controllers, notify again).
struct SettleIfTrapped;

impl Drop for SettleIfTrapped {
    fn drop(&mut self) {
        if ic_cdk::futures::is_recovering_from_trap() {
            after_upgrade();
        }
    }
}

/// This canister's current controllers (it must be one of them to ask).
pub(crate) async fn current_controllers(
    self_id: Principal,
) -> std::result::Result<Vec<Principal>, String> {
    let response = Call::bounded_wait(Principal::management_canister(), "canister_status")
        .with_arg(CanisterStatusArgs {
            canister_id: self_id,
        })
        .await
        .map_err(|e| e.to_string())?;
    let status: canvid_types::management::StatusControllers =
        response.candid().map_err(|e| e.to_string())?;
    Ok(status.settings.controllers)
}

fn call_failed(method: &str, reason: impl ToString) -> Error {
    Error::CallFailed {
        target: Principal::management_canister(),
        method: method.into(),
        reason: reason.to_string(),
    }
}

#[ic_cdk::update]
async fn change_owner(args: ChangeOwnerArgs) -> Result<ChangeOwnerResult> {
    let caller = msg_caller();
    let self_id = canister_self();
    canister::with_mut(|s| {
        s.update_state(|st| logic::begin_transfer(st, &caller, &args, self_id, time()))
    })?;
    run_transfer(self_id, args.new_owner).await
}

/// The video's index, as the ICRC-7 collection listing this video, transfers it (see
/// [`logic::begin_collection_transfer`]); then the same steps as `change_owner`. Ingress can
/// never call it (the caller must be a canister), so `inspect_message` refuses it.
#[ic_cdk::update]
async fn collection_transfer(args: CollectionTransferArgs) -> Result<ChangeOwnerResult> {
    let caller = msg_caller();
    let self_id = canister_self();
    canister::with_mut(|s| {
        s.update_state(|st| logic::begin_collection_transfer(st, &caller, &args, self_id, time()))
    })?;
    run_transfer(self_id, args.to).await
}

/// Step one of a two-step transfer (owner or operator): only `args.new_owner` can complete it,
/// with `accept_ownership`, within 7 days. Replaces an older offer.
#[ic_cdk::update]
fn offer_ownership(args: OfferArgs) -> Result<OwnershipOffer> {
    let caller = msg_caller();
    let self_id = canister_self();
    let offer = canister::with_mut(|s| {
        s.update_state(|st| logic::make_offer(st, &caller, &args, self_id, time()))
    })?;
    crate::http::recertify();
    Ok(offer)
}

/// Withdraws the pending offer (owner or operator); a no-op without one.
#[ic_cdk::update]
fn cancel_offer() -> Result<()> {
    let caller = msg_caller();
    canister::with_mut(|s| s.update_state(|st| logic::cancel_offer(st, &caller, time())))?;
    crate::http::recertify();
    Ok(())
}

/// Step two, by the offered principal: the same transfer as `change_owner` to the caller, with
/// the offer's `keep_controllers`.
#[ic_cdk::update]
async fn accept_ownership() -> Result<ChangeOwnerResult> {
    let caller = msg_caller();
    let self_id = canister_self();
    canister::with_mut(|s| s.update_state(|st| logic::begin_accept(st, &caller, self_id, time())))?;
    run_transfer(self_id, caller).await
}

/// Steps 2–4 of a transfer whose in-flight marker step 1 stored; then a hand-over of control
/// that became due while the transfer ran gets its turn.
async fn run_transfer(self_id: Principal, new_owner: Principal) -> Result<ChangeOwnerResult> {
    let out = transfer_steps(self_id, new_owner).await;
    crate::control::kick();
    out
}

async fn transfer_steps(self_id: Principal, new_owner: Principal) -> Result<ChangeOwnerResult> {
    let _settle = SettleIfTrapped;
    // From here every path either aborts or commits the in-flight transfer.
    let current = match current_controllers(self_id).await {
        Ok(controllers) => controllers,
        Err(e) => {
            mutate(logic::abort_transfer);
            return Err(call_failed("canister_status", e));
        }
    };
    // Only this call settles its transfer (an upgrade would have cut it off), but code after an
    // await must not trap: a vanished record ends the call instead.
    let Some((controllers, owner_controls)) = canister::with(|s| {
        let st = s.state();
        st.transfer_in_flight.as_ref().map(|transfer| {
            (
                logic::target_controllers(st, &current, self_id, transfer),
                logic::owner_controls(st),
            )
        })
    }) else {
        return Err(Error::Conflict {
            reason: "the transfer was settled while the controllers were read".into(),
        });
    };
    mutate(|st| logic::record_target(st, &controllers));
    // Before the hand-over of control (the upload is not finished) the controllers stay the
    // video and its funder: only the app-level owner moves (`crate::control`).
    if owner_controls {
        let settings = CanisterSettings {
            controllers: Some(controllers.clone()),
            ..Default::default()
        };
        let update = UpdateSettingsArgs {
            canister_id: self_id,
            settings,
        };
        // Unbounded wait: the answer is always the real outcome, never "unknown".
        if let Err(e) = update_settings(&update).await {
            mutate(logic::abort_transfer);
            return Err(call_failed("update_settings", e));
        }
    }
    let transfer_seq = mutate(|st| logic::commit_transfer(st, new_owner, time()));
    let index_notified = notify_index().await;
    Ok(ChangeOwnerResult {
        transfer_seq,
        controllers,
        index_notified,
        owner_controls: Some(owner_controls),
    })
}

/// Sends the outbox's notification to the index. True iff the index acknowledged it.
///
/// Not before the owner controls the canister: the index checks a report against the IC
/// (the new owner must be a controller), so a transfer of an unfinished video stays in the
/// outbox and is sent when the hand-over of control made its owner a controller
/// (`crate::control`).
pub(crate) async fn notify_index() -> bool {
    if !canister::with(|s| logic::owner_controls(s.state())) {
        return false;
    }
    let _settle = SettleIfTrapped;
    let Some((index, pending)) = canister::with(|s| {
        let st = s.state();
        Some((st.index?, st.pending_notification.clone()?))
    }) else {
        return false;
    };
    let change = OwnerChange {
        new_owner: pending.new_owner,
        transfer_seq: pending.transfer_seq,
    };
    let outcome = match Call::bounded_wait(index, "report_owner_change")
        .with_arg(&change)
        .await
    {
        // The error's payload is skipped (`Reserved`): decoding the whole `Error` enum would
        // link a sizeable decoder for a detail only shown in `canister_info`.
        Ok(response) => match response.candid::<std::result::Result<(), Reserved>>() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("the index refused the report (see its logs)".to_string()),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(()) => {
            mutate(|st| logic::notification_delivered(st, pending.transfer_seq));
            true
        }
        Err(reason) => {
            mutate(|st| logic::notification_failed(st, pending.transfer_seq, reason));
            arm_retry();
            false
        }
    }
}

/// Arms one retry timer (backoff from the attempt count) unless one is armed already.
fn arm_retry() {
    if RETRY_ARMED.with(|a| a.replace(true)) {
        return;
    }
    let attempts = canister::with(|s| s.state().pending_notification.as_ref().map(|p| p.attempts));
    let Some(attempts) = attempts else {
        RETRY_ARMED.with(|a| a.set(false));
        return;
    };
    ic_cdk_timers::set_timer(
        Duration::from_secs(logic::retry_delay_secs(attempts)),
        async {
            RETRY_ARMED.with(|a| a.set(false));
            notify_index().await;
        },
    );
}

/// After an upgrade (or a trapped callback, see [`SettleIfTrapped`]): re-arm the notification
/// retry, and settle a transfer whose callback the upgrade cut off (its marker would otherwise
/// answer `Busy` forever).
pub fn after_upgrade() {
    if canister::with(|s| s.state().pending_notification.is_some()) {
        ic_cdk_timers::set_timer(Duration::ZERO, async {
            notify_index().await;
        });
    }
    if canister::with(|s| s.state().transfer_in_flight.is_some()) {
        ic_cdk_timers::set_timer(Duration::ZERO, reconcile_transfer());
    }
}

/// Finds out from the controllers whether an interrupted transfer took effect, and commits or
/// aborts it accordingly.
async fn reconcile_transfer() {
    let _settle = SettleIfTrapped;
    let self_id = canister_self();
    let Some(inflight) = canister::with(|s| s.state().transfer_in_flight.clone()) else {
        return;
    };
    match current_controllers(self_id).await {
        Ok(controllers) => {
            let old_owner = canister::with(|s| s.state().owner);
            if logic::transfer_took_effect(&controllers, old_owner, &inflight) {
                mutate(|st| logic::commit_transfer(st, inflight.new_owner, time()));
                notify_index().await;
            } else {
                mutate(logic::abort_transfer);
            }
            crate::control::kick();
        }
        // Try again later; the marker stays (Busy) until the controllers can be read.
        Err(_) => {
            ic_cdk_timers::set_timer(Duration::from_secs(60), reconcile_transfer());
        }
    }
}
