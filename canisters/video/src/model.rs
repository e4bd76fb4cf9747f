//! Plain decisions over the video's [`State`]: who may do what, and the ownership-transfer state
//! machine. No system API here, so all of it is unit-tested natively.

use candid::Principal;
use canvid_types::video::{PendingNotification, VideoStatus};
use canvid_types::{Error, Result};

use crate::storage::{InFlight, State};

/// What a caller is to this video.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Owner,
    Uploader,
    Operator,
    Other,
}

pub fn role(s: &State, caller: &Principal) -> Role {
    if *caller == s.owner {
        Role::Owner
    } else if s.uploaders.contains(caller) {
        Role::Uploader
    } else if s.operator.as_ref() == Some(caller) {
        Role::Operator
    } else {
        Role::Other
    }
}

/// Every update (and the restricted queries) the canister exposes, for one authorisation table
/// shared by the endpoints and `canister_inspect_message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// begin_upload, put_chunk, finish_upload, missing_chunks.
    Upload,
    /// update_metadata, add_uploader, remove_uploader, approve, set_poster, reset_upload.
    OwnerWrite,
    /// change_owner.
    Transfer,
    /// get_chunk, read_range: public once Ready.
    ReadContent,
}

impl Action {
    /// The action a method name needs, for `inspect_message`; `None` = public / unknown.
    pub fn of_method(method: &str) -> Option<Action> {
        Some(match method {
            "begin_upload" | "put_chunk" | "finish_upload" | "missing_chunks" => Action::Upload,
            "update_metadata" | "add_uploader" | "remove_uploader" | "approve" | "set_poster"
            | "reset_upload" => Action::OwnerWrite,
            "change_owner" => Action::Transfer,
            "get_chunk" | "read_range" | "chunk_digests" => Action::ReadContent,
            _ => return None,
        })
    }
}

fn denied(caller: &Principal, reason: &str) -> Error {
    Error::NotAuthorized {
        caller: *caller,
        reason: reason.into(),
    }
}

/// May `caller` perform `action` now? The same answer `inspect_message` acts on.
pub fn authorize(s: &State, caller: &Principal, action: Action) -> Result<()> {
    let r = role(s, caller);
    match action {
        Action::Upload => match r {
            Role::Owner | Role::Uploader => Ok(()),
            _ => Err(denied(
                caller,
                "only the owner and its uploaders may upload",
            )),
        },
        Action::OwnerWrite => match r {
            Role::Owner => Ok(()),
            _ => Err(denied(caller, "only the owner may do this")),
        },
        // The approved operator may transfer whatever other role it has (a marketplace can be
        // an uploader too): `role` ranks Uploader first.
        Action::Transfer if r == Role::Owner || s.operator.as_ref() == Some(caller) => Ok(()),
        Action::Transfer => Err(denied(
            caller,
            "only the owner or the approved operator may transfer",
        )),
        Action::ReadContent => match (s.status(), r) {
            (VideoStatus::Ready, _) | (_, Role::Owner | Role::Uploader) => Ok(()),
            _ => Err(Error::NotReady {
                reason: "the video is not published until its upload is finished".into(),
            }),
        },
    }
}

/// The canister's query methods (a test keeps this equal to the candid interface). Sent as
/// ingress — an update call — they answer nothing a query would not, and the canister pays the
/// ingress fee (up to 4.2 B cycles for a 2 MiB argument) for a message that costs its sender
/// nothing: refused.
pub const QUERY_METHODS: [&str; 8] = [
    "canister_info",
    "chunk_digests",
    "get_chunk",
    "http_request",
    "metadata",
    "missing_chunks",
    "read_range",
    "uploaders",
];

/// The largest `http_request_update` argument accepted as ingress. A gateway sends the client's
/// method, URL and headers, with an empty body for GET and HEAD (the only methods served):
/// browsers' headers stay well below 8 KiB. Larger ones only make the canister pay ingress.
pub const MAX_HTTP_UPDATE_ARG_BYTES: usize = 16 * 1024;

/// Could an ingress call of `method` by `caller`, with an argument of `arg_size` bytes, succeed?
/// Cheap: no argument decoding. Every message accepted here is paid by the canister (ingress
/// is free for its sender), so anything that cannot succeed is refused: unknown methods, query
/// methods, oversized gateway requests, callers the endpoint would refuse.
pub fn inspect(s: &State, caller: &Principal, method: &str, arg_size: usize) -> bool {
    if QUERY_METHODS.contains(&method) {
        return false;
    }
    let Some(action) = Action::of_method(method) else {
        // `http_request_update` is how an HTTP gateway (calling anonymously) gets answers that
        // could not be certified in advance: everyone may call it, with a request's size.
        return method == "http_request_update" && arg_size <= MAX_HTTP_UPDATE_ARG_BYTES;
    };
    if authorize(s, caller, action).is_err() {
        return false;
    }
    match method {
        // Content is immutable once Ready: these cannot succeed.
        "begin_upload" | "put_chunk" | "finish_upload" => s.status() != VideoStatus::Ready,
        "change_owner" => s.transfer_in_flight.is_none(),
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------------
// Ownership transfer
// ---------------------------------------------------------------------------------------------

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

/// Is `p` a canister id (an opaque id, class byte 0x01) rather than a user's key-derived
/// principal? Used to keep the spawn canister, never the old owner's dfx identity.
pub fn is_canister_id(p: &Principal) -> bool {
    p.as_slice().last() == Some(&0x01)
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
    use crate::storage::Storage;
    use canvid_types::video::VideoInit;
    use ic_stable_structures::VectorMemory;

    fn user(n: u8) -> Principal {
        Principal::from_slice(&[n, 0x02])
    }
    fn canister(n: u8) -> Principal {
        Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, n, 0x01, 0x01])
    }

    const OWNER: u8 = 1;
    const UPLOADER: u8 = 2;
    const OPERATOR: u8 = 3;
    const STRANGER: u8 = 4;

    fn state() -> State {
        let init = VideoInit {
            owner: user(OWNER),
            creator: user(OWNER),
            index: Some(canister(7)),
            title: String::new(),
            description: String::new(),
            tags: vec![],
        };
        let mut s = Storage::init(VectorMemory::default(), &init, canister(8), 0)
            .unwrap()
            .state()
            .clone();
        s.uploaders.push(user(UPLOADER));
        s.operator = Some(user(OPERATOR));
        s
    }

    #[test]
    fn authorization_table() {
        let s = state();
        let ok = |who: u8, a: Action| authorize(&s, &user(who), a).is_ok();
        assert!(ok(OWNER, Action::Upload) && ok(UPLOADER, Action::Upload));
        assert!(!ok(OPERATOR, Action::Upload) && !ok(STRANGER, Action::Upload));
        assert!(ok(OWNER, Action::OwnerWrite));
        assert!(!ok(UPLOADER, Action::OwnerWrite) && !ok(OPERATOR, Action::OwnerWrite));
        assert!(ok(OWNER, Action::Transfer) && ok(OPERATOR, Action::Transfer));
        assert!(!ok(UPLOADER, Action::Transfer) && !ok(STRANGER, Action::Transfer));
        // Content before Ready: owner and uploaders only, others get NotReady.
        assert!(ok(OWNER, Action::ReadContent) && ok(UPLOADER, Action::ReadContent));
        assert!(matches!(
            authorize(&s, &user(STRANGER), Action::ReadContent),
            Err(Error::NotReady { .. })
        ));
        assert!(matches!(
            authorize(&s, &user(STRANGER), Action::OwnerWrite),
            Err(Error::NotAuthorized { caller, .. }) if caller == user(STRANGER)
        ));
    }

    #[test]
    fn inspect_refuses_what_cannot_succeed() {
        let mut s = state();
        let inspect = |s: &State, caller: &Principal, method: &str| inspect(s, caller, method, 100);
        // Query methods as ingress, whoever sends them.
        for m in QUERY_METHODS {
            assert!(!inspect(&s, &user(OWNER), m), "{m}");
            assert!(!inspect(&s, &Principal::anonymous(), m), "{m}");
        }
        // A gateway's request, not a 2 MiB one.
        assert!(super::inspect(
            &s,
            &Principal::anonymous(),
            "http_request_update",
            MAX_HTTP_UPDATE_ARG_BYTES
        ));
        assert!(!super::inspect(
            &s,
            &Principal::anonymous(),
            "http_request_update",
            MAX_HTTP_UPDATE_ARG_BYTES + 1
        ));
        assert!(!inspect(&s, &user(STRANGER), "put_chunk"));
        assert!(inspect(&s, &user(UPLOADER), "put_chunk"));
        assert!(!inspect(&s, &user(UPLOADER), "approve"));
        assert!(!inspect(&s, &user(OWNER), "no_such_method"));
        assert!(inspect(&s, &Principal::anonymous(), "http_request_update"));
        assert!(inspect(&s, &user(STRANGER), "http_request_update"));
        assert!(!inspect(&s, &user(STRANGER), "set_poster"));
        assert!(!inspect(&s, &user(UPLOADER), "set_poster"));
        assert!(inspect(&s, &user(OWNER), "set_poster"));
        assert!(inspect(&s, &user(OPERATOR), "change_owner"));
        s.transfer_in_flight = Some(InFlight {
            new_owner: user(9),
            requested_by: user(OWNER),
            started_at: 0,
        });
        assert!(!inspect(&s, &user(OWNER), "change_owner"));
        // Ready: uploads are pointless.
        s.upload = Some(
            crate::storage::validate_spec(&canvid_types::video::UploadSpec {
                mime_type: "video/mp4".into(),
                total_size: 1,
                chunk_size: 1,
                chunk_digests: None,
                file_digest: None,
                duration_ms: None,
            })
            .unwrap(),
        );
        assert!(inspect(&s, &user(OWNER), "put_chunk"));
        s.digest = Some(serde_bytes::ByteBuf::from(vec![0; 32]));
        assert!(!inspect(&s, &user(OWNER), "put_chunk"));
        assert!(!inspect(&s, &user(STRANGER), "read_range"));
    }

    #[test]
    fn an_operator_that_is_also_an_uploader_may_transfer() {
        let mut s = state();
        s.uploaders.push(user(OPERATOR));
        assert_eq!(role(&s, &user(OPERATOR)), Role::Uploader);
        assert_eq!(authorize(&s, &user(OPERATOR), Action::Transfer), Ok(()));
        assert!(authorize(&s, &user(UPLOADER), Action::Transfer).is_err());
    }

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
