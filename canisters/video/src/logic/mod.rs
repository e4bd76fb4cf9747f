//! Plain decisions over the video's [`State`]: the ownership-transfer state machine and the
//! index notification outbox. No system API here, so all of it is unit-tested natively. (Who may
//! do what is decided in [`crate::guards`].)

use candid::Principal;
use canvid_types::video::{
    ChangeOwnerArgs, CollectionTransferArgs, OfferArgs, OwnershipOffer, PendingNotification,
    MAX_KEPT_CONTROLLERS, OFFER_VALIDITY_NS,
};
use canvid_types::{is_canister_id, Error, Result};

use crate::guards::{authorize, Action};
use crate::store::{InFlight, State};

pub mod access;
pub mod handover;
pub mod keys;
pub use handover::{control_status, owner_controls};

/// Step 1 of `change_owner`: checks and records the in-flight transfer (persisted before the
/// first await, so a second call meanwhile gets `Busy`).
pub fn begin_transfer(
    s: &mut State,
    caller: &Principal,
    args: &ChangeOwnerArgs,
    self_id: Principal,
    now: u64,
) -> Result<()> {
    authorize(s, caller, Action::Transfer)?;
    busy_if_in_flight(s)?;
    let new_owner = args.new_owner;
    check_new_owner(s, new_owner, self_id)?;
    keep_needs_control(s, &args.keep_controllers)?;
    let keep = match &args.keep_controllers {
        None => None,
        Some(list) => Some(kept_controllers(list, new_owner, self_id)?),
    };
    s.transfer_in_flight = Some(InFlight {
        new_owner,
        requested_by: *caller,
        started_at: now,
        keep,
        controllers: None,
    });
    Ok(())
}

/// Step 1 of `collection_transfer`: the video's index (the ICRC-7 collection) moves the video
/// from `args.from` to `args.to`. The collection checked the token owner's consent (its own
/// transfer, or an ICRC-37 approval); the video checks that the caller is its index, that
/// `from` still owns it (a direct transfer meanwhile wins), and that the owner controls the
/// canister already: before the hand-over a transfer would move only the app-level owner, and a
/// token must always move the canister itself. Then the transfer runs as `change_owner`'s,
/// keeping the installing canister as a controller if it is one.
pub fn begin_collection_transfer(
    s: &mut State,
    caller: &Principal,
    args: &CollectionTransferArgs,
    self_id: Principal,
    now: u64,
) -> Result<()> {
    if s.index.as_ref() != Some(caller) {
        return Err(Error::NotAuthorized {
            caller: *caller,
            reason: "only this video's index (its ICRC-7 collection) may call collection_transfer"
                .into(),
        });
    }
    if s.owner != args.from {
        return Err(Error::Conflict {
            reason: format!(
                "the video is owned by {}, not {}: the collection's record is stale",
                s.owner, args.from
            ),
        });
    }
    if !owner_controls(s) {
        return Err(Error::NotReady {
            reason: "the video's token can move once its upload is finished and its owner \
                     controls the canister"
                .into(),
        });
    }
    busy_if_in_flight(s)?;
    check_new_owner(s, args.to, self_id)?;
    s.transfer_in_flight = Some(InFlight {
        new_owner: args.to,
        requested_by: *caller,
        started_at: now,
        keep: None,
        controllers: None,
    });
    Ok(())
}

fn busy_if_in_flight(s: &State) -> Result<()> {
    match &s.transfer_in_flight {
        Some(t) => Err(Error::Busy {
            reason: format!("a transfer to {} is in progress", t.new_owner),
        }),
        None if handover::handover_in_flight(s) => Err(Error::Busy {
            reason: "control of the canister is being handed to its owner".into(),
        }),
        None => Ok(()),
    }
}

/// `keep_controllers` only means something once the owner controls the canister: before the
/// upload is finished a transfer leaves the controllers (the video and its funder) alone.
fn keep_needs_control(s: &State, keep: &Option<Vec<Principal>>) -> Result<()> {
    if keep.is_some() && !owner_controls(s) {
        return Err(invalid(
            "keep_controllers applies once the upload is finished: until then the controllers \
             are the video and the canister that funded it, and a transfer leaves them alone",
        ));
    }
    Ok(())
}

/// `offer_ownership` (owner or operator): records the first step of a two-step transfer,
/// replacing an older offer. The new owner and the controllers to keep get the checks of
/// `change_owner` now, so that a refusal comes to the one who typed them.
pub fn make_offer(
    s: &mut State,
    caller: &Principal,
    args: &OfferArgs,
    self_id: Principal,
    now: u64,
) -> Result<OwnershipOffer> {
    authorize(s, caller, Action::Transfer)?;
    busy_if_in_flight(s)?;
    check_new_owner(s, args.new_owner, self_id)?;
    keep_needs_control(s, &args.keep_controllers)?;
    let keep_controllers = match &args.keep_controllers {
        None => None,
        Some(list) => Some(kept_controllers(list, args.new_owner, self_id)?),
    };
    let offer = OwnershipOffer {
        new_owner: args.new_owner,
        keep_controllers,
        offered_by: *caller,
        offered_at: now,
        expires_at: now.saturating_add(OFFER_VALIDITY_NS),
    };
    s.pending_offer = Some(offer.clone());
    s.updated_at = now;
    Ok(offer)
}

/// `cancel_offer` (owner or operator): drops the pending offer; a no-op without one. Refused
/// while a transfer is in flight (it may be the offer's acceptance).
pub fn cancel_offer(s: &mut State, caller: &Principal, now: u64) -> Result<()> {
    authorize(s, caller, Action::Transfer)?;
    busy_if_in_flight(s)?;
    if s.pending_offer.take().is_some() {
        s.updated_at = now;
    }
    Ok(())
}

/// The offer `caller` may accept at `now`: made to it, by someone who may still transfer
/// (see [`Action::AcceptOffer`]), and not expired.
pub fn acceptable_offer<'a>(
    s: &'a State,
    caller: &Principal,
    now: u64,
) -> Result<&'a OwnershipOffer> {
    authorize(s, caller, Action::AcceptOffer)?;
    match &s.pending_offer {
        Some(offer) if now < offer.expires_at => Ok(offer),
        Some(offer) => Err(Error::NotAuthorized {
            caller: *caller,
            reason: format!(
                "the ownership offer expired at {} (IC time, ns); ask for a new one",
                offer.expires_at
            ),
        }),
        // `authorize` checked that there is an offer to the caller.
        None => Err(Error::NotFound {
            what: "ownership offer".into(),
        }),
    }
}

/// Step 1 of `accept_ownership`: the offered principal takes the offer up; the transfer then
/// runs exactly as `change_owner`'s (in-flight marker before the first await, controllers,
/// commit, index). The offer stays until the commit, so a failed attempt can be retried.
pub fn begin_accept(s: &mut State, caller: &Principal, self_id: Principal, now: u64) -> Result<()> {
    let offer = acceptable_offer(s, caller, now)?.clone();
    busy_if_in_flight(s)?;
    // Re-checked: the video's index or installer cannot have changed, but stay on the safe side.
    check_new_owner(s, offer.new_owner, self_id)?;
    s.transfer_in_flight = Some(InFlight {
        new_owner: offer.new_owner,
        requested_by: *caller,
        started_at: now,
        keep: offer.keep_controllers,
        controllers: None,
    });
    Ok(())
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        reason: reason.into(),
    }
}

/// Principals that cannot own a video: nobody could act as them, or they are part of the
/// platform (the video itself, its index, its installer), so the video would be orphaned.
fn check_new_owner(s: &State, new_owner: Principal, self_id: Principal) -> Result<()> {
    if new_owner == Principal::anonymous() || new_owner == Principal::management_canister() {
        return Err(invalid("the new owner must be a real principal"));
    }
    // Class 0x7f: reserved principals, which no key or canister ever has (IC interface spec,
    // "Principals").
    if new_owner.as_slice().last() == Some(&0x7f) {
        return Err(invalid(
            "the new owner is a reserved principal nobody can act as",
        ));
    }
    if new_owner == self_id {
        return Err(invalid("a video cannot own itself"));
    }
    if Some(new_owner) == s.index || (new_owner == s.installer && is_canister_id(&new_owner)) {
        return Err(invalid(
            "the new owner is this video's index or installing canister, which cannot act as an owner",
        ));
    }
    if new_owner == s.owner {
        return Err(invalid("the new owner already owns the video"));
    }
    Ok(())
}

/// `keep_controllers` as it will be applied: at most [`MAX_KEPT_CONTROLLERS`], real principals,
/// duplicates and the always-present new owner and video dropped.
fn kept_controllers(
    list: &[Principal],
    new_owner: Principal,
    self_id: Principal,
) -> Result<Vec<Principal>> {
    if list.len() > MAX_KEPT_CONTROLLERS {
        return Err(invalid(format!(
            "{} controllers to keep, at most {MAX_KEPT_CONTROLLERS}",
            list.len()
        )));
    }
    let mut out: Vec<Principal> = Vec::with_capacity(list.len());
    for p in list {
        if *p == Principal::anonymous() || *p == Principal::management_canister() {
            return Err(invalid(format!("{p} cannot be a controller")));
        }
        if *p != new_owner && *p != self_id && !out.contains(p) {
            out.push(*p);
        }
    }
    Ok(out)
}

/// The controllers after a transfer: the new owner, the video itself, and either the ones the
/// caller named ([`InFlight::keep`]) or, when it named none, the installer (the spawn canister)
/// if it is a canister currently among the controllers. Everyone else — the old owner included —
/// is dropped. Before the hand-over of control ([`handover`]) the controllers stay as they are.
pub fn target_controllers(
    s: &State,
    current: &[Principal],
    self_id: Principal,
    transfer: &InFlight,
) -> Vec<Principal> {
    if !owner_controls(s) {
        // Before the hand-over a transfer moves the app-level owner only.
        return current.to_vec();
    }
    let mut out = vec![transfer.new_owner, self_id];
    match &transfer.keep {
        Some(keep) => {
            for p in keep {
                if !out.contains(p) {
                    out.push(*p);
                }
            }
        }
        None => {
            let installer = s.installer;
            if is_canister_id(&installer)
                && current.contains(&installer)
                && installer != s.owner
                && !out.contains(&installer)
            {
                out.push(installer);
            }
        }
    }
    out
}

/// Step 2, before `update_settings`: records the controllers it will set (for
/// [`transfer_took_effect`]). Trap-free: runs after an await.
pub fn record_target(s: &mut State, controllers: &[Principal]) {
    if let Some(t) = &mut s.transfer_in_flight {
        t.controllers = Some(controllers.to_vec());
    }
}

/// Step 3 (after `update_settings` succeeded): the app-level handoff. Trap-free. Returns the
/// new `transfer_seq`. Any pending offer dies with it (accepted, or made under the old owner).
pub fn commit_transfer(s: &mut State, new_owner: Principal, now: u64) -> u64 {
    s.owner = new_owner;
    s.transfer_seq = s.transfer_seq.saturating_add(1);
    s.operator = None;
    s.uploaders.clear();
    s.transfer_in_flight = None;
    s.pending_offer = None;
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

/// After an upgrade cut a transfer's callback off: did `update_settings` apply? Yes iff the
/// controllers are exactly the ones it was asked to set. (A record from an older module, which
/// did not keep them: iff the new owner is a controller and the old owner no longer is.)
///
/// Comparing the whole list matters when the new owner already was a co-controller: then "the
/// new owner is in, the old one out" can hold without the transfer (security review L9).
pub fn transfer_took_effect(
    controllers: &[Principal],
    old_owner: Principal,
    transfer: &InFlight,
) -> bool {
    match &transfer.controllers {
        Some(target) => {
            controllers.len() == target.len() && target.iter().all(|p| controllers.contains(p))
        }
        None => controllers.contains(&transfer.new_owner) && !controllers.contains(&old_owner),
    }
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
    use crate::guards::tests::{canister, state, user, OPERATOR, OWNER, STRANGER, UPLOADER};

    fn to(new_owner: Principal) -> ChangeOwnerArgs {
        ChangeOwnerArgs {
            new_owner,
            keep_controllers: None,
        }
    }

    fn in_flight(new_owner: Principal, keep: Option<Vec<Principal>>) -> InFlight {
        InFlight {
            new_owner,
            requested_by: user(OWNER),
            started_at: 0,
            keep,
            controllers: None,
        }
    }

    #[test]
    fn transfer_state_machine() {
        let mut s = state();
        let me = canister(5);
        let new = user(6);
        assert!(matches!(
            begin_transfer(&mut s, &user(STRANGER), &to(new), me, 1),
            Err(Error::NotAuthorized { .. })
        ));
        assert!(matches!(
            begin_transfer(&mut s, &user(OWNER), &to(user(OWNER)), me, 1),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            begin_transfer(&mut s, &user(OWNER), &to(me), me, 1),
            Err(Error::InvalidArgument { .. })
        ));
        begin_transfer(&mut s, &user(OPERATOR), &to(new), me, 1).unwrap();
        assert!(matches!(
            begin_transfer(&mut s, &user(OWNER), &to(user(9)), me, 2),
            Err(Error::Busy { .. })
        ));
        abort_transfer(&mut s);
        assert_eq!(s.owner, user(OWNER));
        begin_transfer(&mut s, &user(OWNER), &to(new), me, 3).unwrap();
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

    /// The collection (the video's index, canister 7) may move the token only from the owner it
    /// names, only once the owner controls the canister, and nobody else may call it.
    #[test]
    fn collection_transfer_rules() {
        let me = canister(5);
        let new = user(6);
        let args = |from: Principal| CollectionTransferArgs { from, to: new };
        let mut s = state();
        for who in [user(OWNER), user(OPERATOR), user(STRANGER), canister(8)] {
            assert!(
                matches!(
                    begin_collection_transfer(&mut s, &who, &args(user(OWNER)), me, 1),
                    Err(Error::NotAuthorized { .. })
                ),
                "{who}"
            );
        }
        // A stale record of the owner: the direct transfer that happened meanwhile wins.
        assert!(matches!(
            begin_collection_transfer(&mut s, &canister(7), &args(user(STRANGER)), me, 1),
            Err(Error::Conflict { .. })
        ));
        // Before the hand-over of control a token must not move (it would move the app-level
        // owner only).
        s.handover = Some(crate::store::Handover {
            funded_by: canister(8),
            handed_at: None,
            in_flight: false,
            attempts: 0,
            last_error: None,
            cycles_returned: 0,
        });
        assert!(matches!(
            begin_collection_transfer(&mut s, &canister(7), &args(user(OWNER)), me, 1),
            Err(Error::NotReady { .. })
        ));
        s.handover = None;
        // The new owner gets the checks of change_owner.
        assert!(matches!(
            begin_collection_transfer(
                &mut s,
                &canister(7),
                &CollectionTransferArgs {
                    from: user(OWNER),
                    to: me
                },
                me,
                1
            ),
            Err(Error::InvalidArgument { .. })
        ));
        begin_collection_transfer(&mut s, &canister(7), &args(user(OWNER)), me, 1).unwrap();
        let t = s.transfer_in_flight.clone().unwrap();
        assert_eq!(
            (t.new_owner, t.requested_by, t.keep),
            (new, canister(7), None)
        );
        assert!(matches!(
            begin_collection_transfer(&mut s, &canister(7), &args(user(OWNER)), me, 2),
            Err(Error::Busy { .. })
        ));
        // A video without an index refuses everyone.
        let mut s = state();
        s.index = None;
        assert!(matches!(
            begin_collection_transfer(&mut s, &canister(7), &args(user(OWNER)), me, 1),
            Err(Error::NotAuthorized { .. })
        ));
    }

    fn offer(new_owner: Principal, keep: Option<Vec<Principal>>) -> OfferArgs {
        OfferArgs {
            new_owner,
            keep_controllers: keep,
        }
    }

    /// Offer, refusals, replacement, cancel, expiry, acceptance by the offered principal only,
    /// an aborted acceptance keeping the offer, and the commit clearing it (security review L4).
    #[test]
    fn two_step_transfer_state_machine() {
        let mut s = state(); // index canister(7), installer canister(8)
        let me = canister(5);
        let (typo, new) = (user(60), user(6));
        // Who may offer, and to whom: the checks of change_owner.
        assert!(matches!(
            make_offer(&mut s, &user(STRANGER), &offer(new, None), me, 1),
            Err(Error::NotAuthorized { .. })
        ));
        assert!(matches!(
            make_offer(&mut s, &user(UPLOADER), &offer(new, None), me, 1),
            Err(Error::NotAuthorized { .. })
        ));
        for bad in [
            Principal::anonymous(),
            me,
            canister(7),
            canister(8),
            user(OWNER),
        ] {
            assert!(
                matches!(
                    make_offer(&mut s, &user(OWNER), &offer(bad, None), me, 1),
                    Err(Error::InvalidArgument { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            make_offer(
                &mut s,
                &user(OWNER),
                &offer(new, Some(vec![Principal::anonymous()])),
                me,
                1
            ),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(s.pending_offer.is_none());

        // A mistyped offer orphans nothing: only the typo could accept; the owner replaces it.
        let o = make_offer(&mut s, &user(OWNER), &offer(typo, None), me, 100).unwrap();
        assert_eq!((o.new_owner, o.offered_by), (typo, user(OWNER)));
        assert_eq!(o.expires_at, 100 + OFFER_VALIDITY_NS);
        assert!(matches!(
            begin_accept(&mut s, &new, me, 101),
            Err(Error::NotAuthorized { .. })
        ));
        let o = make_offer(
            &mut s,
            &user(OPERATOR),
            &offer(new, Some(vec![canister(8), new, canister(8)])),
            me,
            200,
        )
        .unwrap();
        assert_eq!(o.keep_controllers, Some(vec![canister(8)]));
        assert_eq!(s.pending_offer.as_ref(), Some(&o));
        for who in [typo, user(OWNER), user(OPERATOR), user(STRANGER)] {
            assert!(
                matches!(
                    begin_accept(&mut s, &who, me, 201),
                    Err(Error::NotAuthorized { .. })
                ),
                "{who}"
            );
        }
        assert!(s.transfer_in_flight.is_none());
        // Expired: refused, and says so.
        match begin_accept(&mut s, &new, me, 200 + OFFER_VALIDITY_NS) {
            Err(Error::NotAuthorized { reason, .. }) => assert!(reason.contains("expired")),
            other => panic!("expected NotAuthorized (expired), got {other:?}"),
        }
        // Cancel, then offer again.
        cancel_offer(&mut s, &user(OWNER), 300).unwrap();
        assert!(s.pending_offer.is_none());
        cancel_offer(&mut s, &user(OWNER), 301).unwrap();
        assert!(matches!(
            begin_accept(&mut s, &new, me, 302),
            Err(Error::NotAuthorized { .. })
        ));
        make_offer(&mut s, &user(OWNER), &offer(new, Some(vec![])), me, 400).unwrap();

        // Accepted: the same in-flight marker as change_owner, for the caller.
        begin_accept(&mut s, &new, me, 401).unwrap();
        let t = s.transfer_in_flight.clone().unwrap();
        assert_eq!(
            (t.new_owner, t.requested_by, t.keep.clone()),
            (new, new, Some(vec![]))
        );
        assert_eq!(
            target_controllers(&s, &[user(OWNER), me, canister(8)], me, &t),
            vec![new, me]
        );
        // Meanwhile: Busy for everything that would change it.
        assert!(matches!(
            begin_accept(&mut s, &new, me, 402),
            Err(Error::Busy { .. })
        ));
        assert!(matches!(
            cancel_offer(&mut s, &user(OWNER), 402),
            Err(Error::Busy { .. })
        ));
        assert!(matches!(
            make_offer(&mut s, &user(OWNER), &offer(typo, None), me, 402),
            Err(Error::Busy { .. })
        ));
        assert!(matches!(
            begin_transfer(&mut s, &user(OWNER), &to(typo), me, 402),
            Err(Error::Busy { .. })
        ));
        // update_settings failed: the offer stays, to be accepted again.
        abort_transfer(&mut s);
        assert!(s.pending_offer.is_some());
        begin_accept(&mut s, &new, me, 403).unwrap();
        assert_eq!(commit_transfer(&mut s, new, 404), 1);
        assert_eq!(s.owner, new);
        assert!(s.pending_offer.is_none() && s.transfer_in_flight.is_none());
        assert_eq!(s.pending_notification.as_ref().unwrap().new_owner, new);
    }

    /// A one-step transfer voids the pending offer (made under the previous owner), and an
    /// offer lapses when the operator who made it is revoked.
    #[test]
    fn offers_die_with_a_transfer_or_their_makers_right() {
        let me = canister(5);
        let new = user(6);
        let mut s = state();
        make_offer(&mut s, &user(OWNER), &offer(new, None), me, 1).unwrap();
        begin_transfer(&mut s, &user(OWNER), &to(user(9)), me, 2).unwrap();
        commit_transfer(&mut s, user(9), 3);
        assert!(s.pending_offer.is_none());
        assert!(begin_accept(&mut s, &new, me, 4).is_err());

        let mut s = state();
        make_offer(&mut s, &user(OPERATOR), &offer(new, None), me, 1).unwrap();
        s.operator = Some(user(42));
        assert!(matches!(
            begin_accept(&mut s, &new, me, 2),
            Err(Error::NotAuthorized { .. })
        ));
        s.operator = Some(user(OPERATOR));
        begin_accept(&mut s, &new, me, 3).unwrap();
    }

    #[test]
    fn controllers_after_transfer() {
        let s = state(); // installer = canister(8), the spawn canister
        let me = canister(5);
        let new = user(6);
        let current = vec![user(OWNER), me, canister(8), user(42)];
        let default = in_flight(new, None);
        assert_eq!(
            target_controllers(&s, &current, me, &default),
            vec![new, me, canister(8)]
        );
        // Spawn no longer a controller: not re-added.
        assert_eq!(
            target_controllers(&s, &[user(OWNER), me], me, &default),
            vec![new, me]
        );
        // Installed by hand by a user identity: that identity is never kept.
        let mut by_hand = s.clone();
        by_hand.installer = user(OWNER);
        assert_eq!(
            target_controllers(&by_hand, &current, me, &default),
            vec![new, me]
        );
        // The caller names what to keep: the stored installer does not matter (security review
        // H3: a seller could have rewritten it).
        let mut tampered = s.clone();
        tampered.installer = canister(66);
        let current = vec![user(OWNER), me, canister(8), canister(66)];
        assert_eq!(
            target_controllers(&tampered, &current, me, &default),
            vec![new, me, canister(66)],
            "without keep_controllers the stored installer is trusted"
        );
        assert_eq!(
            target_controllers(
                &tampered,
                &current,
                me,
                &in_flight(new, Some(vec![canister(8)]))
            ),
            vec![new, me, canister(8)]
        );
        assert_eq!(
            target_controllers(&tampered, &current, me, &in_flight(new, Some(vec![]))),
            vec![new, me]
        );
    }

    #[test]
    fn kept_controllers_are_checked() {
        let me = canister(5);
        let new = user(6);
        let args = |keep: Vec<Principal>| ChangeOwnerArgs {
            new_owner: new,
            keep_controllers: Some(keep),
        };
        let mut s = state();
        begin_transfer(
            &mut s,
            &user(OWNER),
            &args(vec![canister(8), canister(8), new, me]),
            me,
            1,
        )
        .unwrap();
        assert_eq!(
            s.transfer_in_flight.as_ref().unwrap().keep,
            Some(vec![canister(8)])
        );
        for bad in [
            vec![Principal::anonymous()],
            vec![Principal::management_canister()],
            (0..9).map(canister).collect(),
        ] {
            let mut s = state();
            assert!(
                matches!(
                    begin_transfer(&mut s, &user(OWNER), &args(bad.clone()), me, 1),
                    Err(Error::InvalidArgument { .. })
                ),
                "{bad:?}"
            );
            assert!(s.transfer_in_flight.is_none());
        }
    }

    /// Owners nobody could act as, or parts of the platform, are refused (security review L4).
    #[test]
    fn orphaning_new_owners_are_refused() {
        let me = canister(5);
        let s0 = state(); // index canister(7), installer canister(8)
        for bad in [
            Principal::anonymous(),
            Principal::management_canister(),
            Principal::from_slice(&[1, 2, 3, 0x7f]),
            me,
            canister(7),
            canister(8),
            user(OWNER),
        ] {
            let mut s = s0.clone();
            assert!(
                matches!(
                    begin_transfer(&mut s, &user(OWNER), &to(bad), me, 1),
                    Err(Error::InvalidArgument { .. })
                ),
                "{bad}"
            );
        }
        // A canister that is not part of the platform may own a video (a DAO, a marketplace).
        let mut s = s0.clone();
        begin_transfer(&mut s, &user(OWNER), &to(canister(9)), me, 1).unwrap();
    }

    /// After an upgrade, a transfer counts as done only if the controllers are exactly the
    /// target (security review L9).
    #[test]
    fn l9_reconcile_compares_the_whole_target() {
        let me = canister(5);
        let (old, new) = (user(OWNER), user(6));
        let mut t = in_flight(new, None);
        // An older record without the target: the old rule.
        assert!(transfer_took_effect(&[new, me], old, &t));
        assert!(!transfer_took_effect(&[old, new, me], old, &t));
        let mut s = state();
        s.transfer_in_flight = Some(t.clone());
        record_target(&mut s, &[new, me, canister(8)]);
        t = s.transfer_in_flight.clone().unwrap();
        assert!(transfer_took_effect(&[canister(8), me, new], old, &t));
        // The new owner was already a co-controller and the old owner had left, but
        // update_settings never ran: the old rule would commit, the target says no.
        assert!(!transfer_took_effect(&[new, me, user(42)], old, &t));
        assert!(!transfer_took_effect(&[new, me], old, &t));
    }

    #[test]
    fn retry_backoff_is_bounded() {
        assert_eq!(retry_delay_secs(0), 60);
        assert_eq!(retry_delay_secs(1), 120);
        assert_eq!(retry_delay_secs(100), 3600);
    }
}
