//! Plain decisions over the video's [`State`]: the ownership-transfer state machine and the
//! index notification outbox. No system API here, so all of it is unit-tested natively. (Who may
//! do what is decided in [`crate::guards`].)

use candid::Principal;
use canvid_types::video::PendingNotification;
use canvid_types::{is_canister_id, Error, Result};

use crate::guards::{authorize, Action};
use crate::store::{InFlight, State};

/// Step 1 of `change_owner`: checks and records the in-flight transfer (persisted before the
/// first await, so a second call meanwhile gets `Busy`).
pub fn begin_transfer(
    s: &mut State,
    caller: &Principal,
    new_owner: Principal,
    self_id: Principal,
    now: u64,
) -> Result<()> {
    authorize(s, caller, Action::Transfer)?;
    if let Some(t) = &s.transfer_in_flight {
        return Err(Error::Busy {
            reason: format!("a transfer to {} is in progress", t.new_owner),
        });
    }
    if new_owner == Principal::anonymous() || new_owner == Principal::management_canister() {
        return Err(Error::InvalidArgument {
            reason: "the new owner must be a real principal".into(),
        });
    }
    if new_owner == self_id {
        return Err(Error::InvalidArgument {
            reason: "a video cannot own itself".into(),
        });
    }
    if new_owner == s.owner {
        return Err(Error::InvalidArgument {
            reason: "the new owner already owns the video".into(),
        });
    }
    s.transfer_in_flight = Some(InFlight {
        new_owner,
        requested_by: *caller,
        started_at: now,
    });
    Ok(())
}

/// The controllers after a transfer: the new owner, the video itself, and the installer (the
/// spawn canister) if it is a canister currently among the controllers. Everyone else — the old
/// owner included — is dropped.
pub fn target_controllers(
    s: &State,
    current: &[Principal],
    self_id: Principal,
    new_owner: Principal,
) -> Vec<Principal> {
    let mut out = vec![new_owner, self_id];
    let installer = s.installer;
    if is_canister_id(&installer)
        && current.contains(&installer)
        && installer != s.owner
        && !out.contains(&installer)
    {
        out.push(installer);
    }
    out
}

/// Step 3 (after `update_settings` succeeded): the app-level handoff. Trap-free. Returns the
/// new `transfer_seq`.
pub fn commit_transfer(s: &mut State, new_owner: Principal, now: u64) -> u64 {
    s.owner = new_owner;
    s.transfer_seq = s.transfer_seq.saturating_add(1);
    s.operator = None;
    s.uploaders.clear();
    s.transfer_in_flight = None;
    s.updated_at = now;
    if s.index.is_some() {
        // Replaces an older unsent notification: the index keeps only the newest seq.
        s.pending_notification = Some(PendingNotification {
            new_owner,
            transfer_seq: s.transfer_seq,
            attempts: 0,
            last_error: None,
        });
    }
    s.transfer_seq
}

/// After an upgrade cut a transfer's callback off: did `update_settings` apply? Yes iff the new
/// owner is a controller and the old owner no longer is.
pub fn transfer_took_effect(
    controllers: &[Principal],
    old_owner: Principal,
    new_owner: Principal,
) -> bool {
    controllers.contains(&new_owner) && !controllers.contains(&old_owner)
}

/// `update_settings` (or `canister_status`) failed: nothing changed but the in-flight marker.
pub fn abort_transfer(s: &mut State) {
    s.transfer_in_flight = None;
}

/// The index acknowledged `transfer_seq`: drop the notification unless a newer one replaced it.
pub fn notification_delivered(s: &mut State, transfer_seq: u64) {
    if s.pending_notification
        .as_ref()
        .is_some_and(|p| p.transfer_seq <= transfer_seq)
    {
        s.pending_notification = None;
    }
}

/// A delivery attempt failed: count it, keep the reason for `canister_info`.
pub fn notification_failed(s: &mut State, transfer_seq: u64, error: String) {
    if let Some(p) = s
        .pending_notification
        .as_mut()
        .filter(|p| p.transfer_seq == transfer_seq)
    {
        p.attempts = p.attempts.saturating_add(1);
        p.last_error = Some(error);
    }
}

/// Delay before retry number `attempts` (1 min doubling, capped at 1 hour).
pub fn retry_delay_secs(attempts: u32) -> u64 {
    60u64.saturating_mul(1u64 << attempts.min(6)).min(3600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guards::tests::{canister, state, user, OPERATOR, OWNER, STRANGER};

    #[test]
    fn transfer_state_machine() {
        let mut s = state();
        let me = canister(5);
        let new = user(6);
        assert!(matches!(
            begin_transfer(&mut s, &user(STRANGER), new, me, 1),
            Err(Error::NotAuthorized { .. })
        ));
        assert!(matches!(
            begin_transfer(&mut s, &user(OWNER), user(OWNER), me, 1),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            begin_transfer(&mut s, &user(OWNER), me, me, 1),
            Err(Error::InvalidArgument { .. })
        ));
        begin_transfer(&mut s, &user(OPERATOR), new, me, 1).unwrap();
        assert!(matches!(
            begin_transfer(&mut s, &user(OWNER), user(9), me, 2),
            Err(Error::Busy { .. })
        ));
        abort_transfer(&mut s);
        assert_eq!(s.owner, user(OWNER));
        begin_transfer(&mut s, &user(OWNER), new, me, 3).unwrap();
        assert_eq!(commit_transfer(&mut s, new, 4), 1);
        assert_eq!(s.owner, new);
        assert!(s.operator.is_none() && s.uploaders.is_empty() && s.transfer_in_flight.is_none());
        assert_eq!(s.creator, user(OWNER));
        let p = s.pending_notification.clone().unwrap();
        assert_eq!((p.new_owner, p.transfer_seq), (new, 1));
        // The old owner lost every right.
        assert!(authorize(&s, &user(OWNER), Action::OwnerWrite).is_err());
        notification_failed(&mut s, 1, "down".into());
        assert_eq!(s.pending_notification.as_ref().unwrap().attempts, 1);
        notification_delivered(&mut s, 0);
        assert!(
            s.pending_notification.is_some(),
            "an older ack must not clear a newer notification"
        );
        notification_delivered(&mut s, 1);
        assert!(s.pending_notification.is_none());
    }

    #[test]
    fn controllers_after_transfer() {
        let s = state(); // installer = canister(8), the spawn canister
        let me = canister(5);
        let new = user(6);
        let current = vec![user(OWNER), me, canister(8), user(42)];
        assert_eq!(
            target_controllers(&s, &current, me, new),
            vec![new, me, canister(8)]
        );
        // Spawn no longer a controller: not re-added.
        assert_eq!(
            target_controllers(&s, &[user(OWNER), me], me, new),
            vec![new, me]
        );
        // Installed by hand by a user identity: that identity is never kept.
        let mut by_hand = s.clone();
        by_hand.installer = user(OWNER);
        assert_eq!(
            target_controllers(&by_hand, &current, me, new),
            vec![new, me]
        );
        assert!(transfer_took_effect(&[new, me], user(OWNER), new));
        assert!(!transfer_took_effect(&current, user(OWNER), new));
    }

    #[test]
    fn retry_backoff_is_bounded() {
        assert_eq!(retry_delay_secs(0), 60);
        assert_eq!(retry_delay_secs(1), 120);
        assert_eq!(retry_delay_secs(100), 3600);
    }
}
