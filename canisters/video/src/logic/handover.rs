//! The hand-over of control of a funded video (security review M3), as plain decisions over
//! [`State`]: no system API, unit-tested natively. The effects are in `crate::control`.
//!
//! Why: the spawn canister gives a new video the cycles its *declared* size needs (up to about
//! 1,000 T for a 400 GiB declaration). A controller can install any code, and code can send the
//! canister's cycles anywhere, so an owner who controlled the canister from the start could take
//! the funding without uploading anything. Instead the controllers stay [video, funder] until
//! `finish_upload`; then the video
//! 1. gives back to the funder (`return_unused_cycles`) every cycle above what it keeps: its
//!    freezing reserve, the same again as runway (30 more days at the default threshold, for the
//!    memory it holds now) and [`OPERATING_CYCLES`] for the messages of its life (each update
//!    prepays 40 B, each outstanding call reserves 42.1 B);
//! 2. reads its controllers and adds the owner (at that time) to them.
//!
//! What an owner can take is then bounded by what the video it really stored needs, not by the
//! declaration. Transfers before the hand-over move only the app-level owner; the hand-over gives
//! control to whoever owns the video when it runs. While it awaits, transfers answer `Busy`.

use candid::Principal;
use canvid_types::video::ControlStatus;

use crate::store::{Handover, State};

/// Cycles a finished video keeps above its freezing reserve and runway, to stay operable
/// without a top-up: an upgrade (the IC prepays the install instruction limit, 300 B + 5 M, for
/// the owner's or the spawn's `upgrade_videos`) even while one of its calls is out (42.1 B
/// reserved for the response: a transfer's, an index notification's), and a few of its own
/// messages. About what `base` holds after the install (the install's prepayment is refunded),
/// so an upload of the declared size returns little; the return matters when less than
/// declared was uploaded.
pub const OPERATING_CYCLES: u128 = 300_005_000_000 + 60_000_000_000;

/// What the IC prepaid for the message running the hand-over (an update's or a timer's whole
/// instruction limit, 40 B + 5 M): the balance inside the message lacks it, and nearly all of
/// it is refunded when the message ends.
pub const PREPAID_BY_THIS_MESSAGE: u128 = 40_005_000_000;

/// Returns below this are not worth a call (the call itself reserves 42.1 B, refunded).
pub const MIN_RETURN: u128 = 1_000_000_000;

/// Transient failures to return cycles before the hand-over goes ahead without returning them:
/// a funder unreachable for that long (back-off 1 min doubling: about 4 hours) does not keep
/// the owner out of their canister.
pub const MAX_RETURN_ATTEMPTS: u32 = 8;

/// The video's control status, as `metadata` and `/metadata.json` report it.
pub fn control_status(s: &State) -> ControlStatus {
    match &s.handover {
        None
        | Some(Handover {
            handed_at: Some(_), ..
        }) => ControlStatus::Owner,
        Some(h) if s.digest.is_none() => ControlStatus::AfterUpload {
            funded_by: h.funded_by,
        },
        Some(h) => ControlStatus::HandingOver {
            funded_by: h.funded_by,
            attempts: h.attempts,
            last_error: h.last_error.clone(),
        },
    }
}

/// Does the owner control the canister (transfers then set the controllers)?
pub fn owner_controls(s: &State) -> bool {
    control_status(s) == ControlStatus::Owner
}

/// A hand-over is awaiting a call (transfers get `Busy` meanwhile).
pub fn handover_in_flight(s: &State) -> bool {
    s.handover.as_ref().is_some_and(|h| h.in_flight)
}

/// Is a hand-over due (Ready, not handed, none running, no transfer running)?
pub fn handover_due(s: &State) -> bool {
    matches!(control_status(s), ControlStatus::HandingOver { .. })
        && !handover_in_flight(s)
        && s.transfer_in_flight.is_none()
}

/// Starts a hand-over if one is due: marks it in flight (persisted before the first await) and
/// returns the funder.
pub fn begin_handover(s: &mut State) -> Option<Principal> {
    if !handover_due(s) {
        return None;
    }
    let h = s.handover.as_mut()?;
    h.in_flight = true;
    Some(h.funded_by)
}

/// Cycles to give back, from the balance and liquid balance seen inside the message running
/// the hand-over: everything above the freezing reserve, a runway equal to it and
/// [`OPERATING_CYCLES`], counting the prepayment of this message (refunded when it ends) as
/// kept; nothing below [`MIN_RETURN`].
pub fn cycles_to_return(balance: u128, liquid: u128) -> u128 {
    let reserve = balance.saturating_sub(liquid);
    let keep = reserve
        .saturating_add(OPERATING_CYCLES)
        .saturating_sub(PREPAID_BY_THIS_MESSAGE);
    let surplus = liquid.saturating_sub(keep);
    if surplus < MIN_RETURN {
        0
    } else {
        surplus
    }
}

/// The funder accepted `amount` cycles.
pub fn record_returned(s: &mut State, amount: u128) {
    if let Some(h) = s.handover.as_mut() {
        h.cycles_returned = h.cycles_returned.saturating_add(amount);
    }
}

/// Should a failed return stop this hand-over (to be retried later)? Not when the funder
/// answered (it refused: it will not accept later either) and not after
/// [`MAX_RETURN_ATTEMPTS`] failures.
pub fn retry_return_later(s: &State, funder_answered: bool) -> bool {
    !funder_answered && s.handover.as_ref().map_or(0, |h| h.attempts) + 1 < MAX_RETURN_ATTEMPTS
}

/// The controllers the hand-over writes: the owner first, then the current ones (the video and
/// the funder) — nobody dropped, nobody else added.
pub fn handover_target(current: &[Principal], owner: Principal) -> Vec<Principal> {
    let mut out = vec![owner];
    for p in current {
        if !out.contains(p) {
            out.push(*p);
        }
    }
    out
}

/// The owner is a controller now: from here on transfers manage the controllers.
pub fn handover_done(s: &mut State, now: u64) {
    if let Some(h) = s.handover.as_mut() {
        h.handed_at = Some(now);
        h.in_flight = false;
        h.last_error = None;
    }
    s.updated_at = now;
}

/// A step failed (or a callback trapped): the hand-over is due again, retried with back-off.
pub fn handover_failed(s: &mut State, reason: String) {
    if let Some(h) = s.handover.as_mut() {
        h.in_flight = false;
        h.attempts = h.attempts.saturating_add(1);
        h.last_error = Some(reason);
    }
}

/// A failed return the hand-over goes on without (counted, reason kept, still in flight).
pub fn return_skipped(s: &mut State, reason: String) {
    if let Some(h) = s.handover.as_mut() {
        h.attempts = h.attempts.saturating_add(1);
        h.last_error = Some(format!("cycles not returned: {reason}"));
    }
}

/// After an upgrade nothing awaits any more: a hand-over marked in flight is due again.
pub fn handover_interrupted(s: &mut State) {
    if let Some(h) = s.handover.as_mut() {
        h.in_flight = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guards::tests::{canister, state, user, OWNER};
    use serde_bytes::ByteBuf;

    fn funded() -> State {
        let mut s = state();
        s.digest = None;
        s.handover = Some(Handover {
            funded_by: canister(9),
            handed_at: None,
            in_flight: false,
            attempts: 0,
            last_error: None,
            cycles_returned: 0,
        });
        s
    }

    #[test]
    fn status_follows_upload_and_handover() {
        let mut legacy = state();
        legacy.handover = None;
        assert_eq!(control_status(&legacy), ControlStatus::Owner);
        let mut s = funded();
        assert_eq!(
            control_status(&s),
            ControlStatus::AfterUpload {
                funded_by: canister(9)
            }
        );
        assert!(!owner_controls(&s));
        assert_eq!(
            begin_handover(&mut s),
            None,
            "not before the upload is finished"
        );
        s.digest = Some(ByteBuf::from(vec![1; 32]));
        assert!(handover_due(&s));
        assert_eq!(begin_handover(&mut s), Some(canister(9)));
        assert!(handover_in_flight(&s));
        assert_eq!(begin_handover(&mut s), None, "one at a time");
        handover_failed(&mut s, "down".into());
        assert_eq!(
            control_status(&s),
            ControlStatus::HandingOver {
                funded_by: canister(9),
                attempts: 1,
                last_error: Some("down".into())
            }
        );
        assert!(handover_due(&s));
        begin_handover(&mut s);
        handover_interrupted(&mut s);
        assert!(handover_due(&s), "an upgrade makes it due again");
        begin_handover(&mut s);
        handover_done(&mut s, 7);
        assert!(owner_controls(&s));
        assert!(!handover_due(&s));
        assert_eq!(begin_handover(&mut s), None);
    }

    #[test]
    fn no_handover_while_a_transfer_runs() {
        let mut s = funded();
        s.digest = Some(ByteBuf::from(vec![1; 32]));
        s.transfer_in_flight = Some(crate::store::InFlight {
            new_owner: user(4),
            requested_by: user(OWNER),
            started_at: 0,
            keep: None,
            controllers: None,
        });
        assert_eq!(begin_handover(&mut s), None);
    }

    #[test]
    fn returns_what_is_above_reserve_runway_and_operating_cycles() {
        const B: u128 = 1_000_000_000;
        let op = OPERATING_CYCLES - PREPAID_BY_THIS_MESSAGE;
        // balance 1,000 B of which 100 B frozen: keep 100 B runway + the operating cycles (less
        // what this message prepaid).
        assert_eq!(cycles_to_return(1_000 * B, 900 * B), 800 * B - op);
        assert_eq!(cycles_to_return(150 * B + op, 100 * B + op), 50 * B);
        assert_eq!(
            cycles_to_return(100 * B + op, 50 * B + op),
            0,
            "exactly the keep"
        );
        assert_eq!(
            cycles_to_return(100 * B + op + B / 2, 50 * B + op + B / 2),
            0,
            "below MIN_RETURN"
        );
        assert_eq!(cycles_to_return(100 * B, 0), 0, "frozen");
        assert_eq!(cycles_to_return(0, 0), 0);
    }

    #[test]
    fn return_failures_are_retried_a_bounded_number_of_times() {
        let mut s = funded();
        assert!(retry_return_later(&s, false));
        assert!(!retry_return_later(&s, true), "a refusal is final");
        for _ in 0..MAX_RETURN_ATTEMPTS - 1 {
            handover_failed(&mut s, "x".into());
        }
        assert!(!retry_return_later(&s, false));
        record_returned(&mut s, 5);
        record_returned(&mut s, 6);
        assert_eq!(s.handover.unwrap().cycles_returned, 11);
    }

    #[test]
    fn target_adds_the_owner_and_keeps_the_rest() {
        let (o, v, f) = (user(OWNER), canister(5), canister(9));
        assert_eq!(handover_target(&[v, f], o), vec![o, v, f]);
        assert_eq!(handover_target(&[o, v, f], o), vec![o, v, f]);
    }
}
