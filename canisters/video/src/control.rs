//! The hand-over of control to the owner once the upload is finished (security review M3; the
//! decisions and the why are in [`crate::logic::handover`]): `finish_upload` runs it, a timer
//! retries it with back-off after a failure, `post_upgrade` re-arms it, and the owner's
//! `claim_control` retries it at once.
//!
//! Order of effects: (1) the in-flight mark is stored (transfers get `Busy`); (2) the cycles the
//! video does not need go back to the funder (`return_unused_cycles`, unbounded wait: the
//! outcome is always known; what it did not accept is refunded by the IC); (3) the controllers
//! are read and the owner is added; (4) the hand-over is recorded, and a pending index
//! notification (a transfer made before the hand-over) is sent. Any failure clears the mark
//! and schedules a retry: every step is safe to repeat (the return is recomputed from the
//! balance, the controllers from what they are then).

use std::cell::Cell;
use std::time::Duration;

use canvid_types::{Error, Result};
use ic_cdk::api::{
    canister_cycle_balance, canister_liquid_cycle_balance, canister_self, msg_caller,
    msg_cycles_refunded, time,
};
use ic_cdk::call::{Call, CallFailed};
use ic_cdk_management_canister::{update_settings, CanisterSettings, UpdateSettingsArgs};

use crate::guards::{authorize, Action};
use crate::logic::handover;
use crate::ownership::{current_controllers, mutate};
use crate::store::canister;

thread_local! {
    /// A retry timer is armed (heap only: re-armed by `post_upgrade`).
    static RETRY_ARMED: Cell<bool> = const { Cell::new(false) };
}

/// If a callback of the hand-over traps (the trap rolled the callback back; ic-cdk's cleanup
/// then drops the future), the in-flight mark stays behind: a timer clears it and retries. (The
/// cleanup itself only arms the timer: it may not set certified data, which every state change
/// here does.)
struct SettleIfTrapped;

impl Drop for SettleIfTrapped {
    fn drop(&mut self) {
        if ic_cdk::futures::is_recovering_from_trap() {
            ic_cdk_timers::set_timer(Duration::ZERO, async {
                // No hand-over can be running: the one that set the mark is gone, and none
                // starts while it is set.
                mutate(|st| handover::handover_failed(st, "a callback trapped".into()));
                hand_over().await;
            });
        }
    }
}

/// Retries a hand-over that is due (owner only; `inspect_message` lets it through only then).
/// Returns the metadata afterwards (`control` says how it went).
#[ic_cdk::update]
async fn claim_control() -> Result<canvid_types::video::VideoMetadata> {
    let caller = msg_caller();
    canister::with(|s| authorize(s.state(), &caller, Action::OwnerWrite))?;
    if !canister::with(|s| handover::handover_due(s.state())) {
        return Err(Error::Conflict {
            reason: "no hand-over of control is due: the upload is not finished, the owner \
                     controls the canister already, or a hand-over or transfer is running"
                .into(),
        });
    }
    hand_over().await;
    Ok(canister::with(|s| s.metadata()))
}

/// Runs the hand-over if it is due; never fails outward (the outcome is in the state).
pub async fn hand_over() {
    let Some(funder) = mutate(handover::begin_handover) else {
        return;
    };
    let _settle = SettleIfTrapped;
    let self_id = canister_self();

    // (2) Unused cycles back to the funder.
    let amount =
        handover::cycles_to_return(canister_cycle_balance(), canister_liquid_cycle_balance());
    if amount > 0 {
        let outcome = Call::unbounded_wait(funder, "return_unused_cycles")
            .with_cycles(amount)
            .await;
        // What the funder did not accept came back with the answer.
        let accepted = amount.saturating_sub(msg_cycles_refunded());
        if accepted > 0 {
            mutate(|st| handover::record_returned(st, accepted));
        }
        let failure = match outcome {
            Ok(response) => match response.candid::<Result<u128>>() {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some((true, format!("the funder refused: {e}"))),
                Err(e) => Some((true, format!("the funder's answer: {e}"))),
            },
            Err(CallFailed::CallRejected(r)) => Some((
                r.reject_code().is_ok_and(|c| {
                    c == ic_cdk::call::RejectCode::DestinationInvalid
                        || c == ic_cdk::call::RejectCode::CanisterReject
                }),
                r.to_string(),
            )),
            Err(e) => Some((false, e.to_string())),
        };
        if let Some((funder_answered, reason)) = failure {
            if canister::with(|s| handover::retry_return_later(s.state(), funder_answered)) {
                fail(format!("return_unused_cycles: {reason}"));
                return;
            }
            mutate(|st| handover::return_skipped(st, reason));
        }
    }

    // (3) The owner becomes a controller.
    let current = match current_controllers(self_id).await {
        Ok(c) => c,
        Err(e) => {
            fail(format!("canister_status: {e}"));
            return;
        }
    };
    // Transfers are refused while the mark is set, so this is the owner the hand-over started for.
    let owner = canister::with(|s| s.state().owner);
    let target = handover::handover_target(&current, owner);
    if target != current {
        let update = UpdateSettingsArgs {
            canister_id: self_id,
            settings: CanisterSettings {
                controllers: Some(target),
                ..Default::default()
            },
        };
        if let Err(e) = update_settings(&update).await {
            fail(format!("update_settings: {e}"));
            return;
        }
    }
    // (4) Then a transfer made before the hand-over reaches the index (its new owner is a
    // controller now, as the index checks).
    mutate(|st| handover::handover_done(st, time()));
    crate::ownership::notify_index().await;
}

fn fail(reason: String) {
    mutate(|st| handover::handover_failed(st, reason));
    arm_retry();
}

/// Arms one retry timer (back-off from the attempt count) unless one is armed already.
fn arm_retry() {
    if RETRY_ARMED.with(|a| a.replace(true)) {
        return;
    }
    let attempts = canister::with(|s| s.state().handover.as_ref().map(|h| h.attempts));
    let Some(attempts) = attempts else {
        RETRY_ARMED.with(|a| a.set(false));
        return;
    };
    ic_cdk_timers::set_timer(
        Duration::from_secs(crate::logic::retry_delay_secs(attempts.saturating_sub(1))),
        async {
            RETRY_ARMED.with(|a| a.set(false));
            hand_over().await;
        },
    );
}

/// Runs a due hand-over soon (from a timer, so the caller's answer does not wait for it): after
/// a transfer ended, which a hand-over that became due meanwhile had to wait for.
pub fn kick() {
    if canister::with(|s| handover::handover_due(s.state())) && !RETRY_ARMED.with(|a| a.get()) {
        ic_cdk_timers::set_timer(Duration::ZERO, hand_over());
    }
}

/// After an upgrade: nothing awaits any more, so a hand-over marked in flight is due again, and
/// one that is due runs at once.
pub fn after_upgrade() {
    if canister::with(|s| handover::handover_in_flight(s.state())) {
        mutate(handover::handover_interrupted);
    }
    if canister::with(|s| handover::handover_due(s.state())) {
        ic_cdk_timers::set_timer(Duration::ZERO, hand_over());
    }
}
