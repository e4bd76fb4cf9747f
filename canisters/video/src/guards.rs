//! Who may do what: the callers' roles, the one authorisation table every endpoint checks
//! ([`authorize`]), and the `canister_inspect_message` policy built on the same table
//! ([`inspect`]). The decisions are plain functions of the [`State`], unit-tested natively; only
//! the `inspect_message` hook at the end reads the system API.

use candid::Principal;
use canvid_types::video::VideoStatus;
use canvid_types::{Error, Result};
use ic_cdk::api::{accept_message, msg_caller, msg_method_name};

use crate::store::{canister, State};

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
    /// update_metadata, add_uploader, remove_uploader, approve, set_poster, reset_upload,
    /// claim_control.
    OwnerWrite,
    /// change_owner, offer_ownership, cancel_offer: the owner or the approved operator.
    Transfer,
    /// accept_ownership: the principal a pending offer names (whatever role it has), while the
    /// offer's maker may still transfer. Expiry is a state condition checked by the endpoint and
    /// by `inspect` (it needs the time).
    AcceptOffer,
    /// get_chunk, read_range: public once Ready (then `logic::access::check_read` decides
    /// who may read which bytes).
    ReadContent,
    /// buy_access, playback_token, revoke_playback_tokens, video_key: any signed-in principal; the
    /// endpoint decides (the policy, a pass, the time).
    Viewer,
}

impl Action {
    /// The action a method name needs, for `inspect_message`; `None` = public / unknown.
    pub fn of_method(method: &str) -> Option<Action> {
        Some(match method {
            "begin_upload" | "begin_files" | "put_chunk" | "finish_upload" | "missing_chunks" => {
                Action::Upload
            }
            "update_metadata" | "add_uploader" | "remove_uploader" | "approve" | "set_poster"
            | "reset_upload" | "claim_control" => Action::OwnerWrite,
            "change_owner" | "offer_ownership" | "cancel_offer" => Action::Transfer,
            "accept_ownership" => Action::AcceptOffer,
            "get_chunk" | "get_file_chunk" | "read_range" | "chunk_digests" | "files" => {
                Action::ReadContent
            }
            "set_access_policy" | "add_viewers" | "remove_viewers" => Action::OwnerWrite,
            "buy_access" | "playback_token" | "revoke_playback_tokens" | "video_key" => {
                Action::Viewer
            }
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
        Action::AcceptOffer => match &s.pending_offer {
            // An offer lapses when its maker lost the right to transfer (an operator revoked
            // or replaced); a transfer clears it anyway.
            Some(o) if o.new_owner == *caller => authorize(s, &o.offered_by, Action::Transfer)
                .map_err(|_| {
                    denied(
                        caller,
                        "the offer's maker may no longer transfer this video",
                    )
                }),
            _ => Err(denied(
                caller,
                "only the principal a pending ownership offer names may accept it",
            )),
        },
        Action::Viewer if *caller == Principal::anonymous() => Err(denied(
            caller,
            "sign in: the anonymous principal cannot buy or hold playback tokens",
        )),
        Action::Viewer => Ok(()),
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
pub const QUERY_METHODS: [&str; 15] = [
    "access_policy",
    "canister_info",
    "chunk_digests",
    "files",
    "get_chunk",
    "get_file_chunk",
    "http_request",
    "metadata",
    "missing_chunks",
    "my_access",
    "pending_payouts",
    "read_range",
    "receipts",
    "uploaders",
    "viewers",
];

/// The largest `http_request_update` argument accepted as ingress. A gateway sends the client's
/// method, URL and headers, with an empty body for GET and HEAD (the only methods served):
/// browsers' headers stay well below 8 KiB. Larger ones only make the canister pay ingress.
pub const MAX_HTTP_UPDATE_ARG_BYTES: usize = 16 * 1024;

/// Could an ingress call of `method` by `caller`, with an argument of `arg_size` bytes, at IC
/// time `now`, succeed? Cheap: no argument decoding. Every message accepted here is paid by the
/// canister (ingress is free for its sender), so anything that cannot succeed is refused:
/// unknown methods, query methods, oversized gateway requests, callers the endpoint would
/// refuse.
pub fn inspect(s: &State, caller: &Principal, method: &str, arg_size: usize, now: u64) -> bool {
    if QUERY_METHODS.contains(&method) {
        return false;
    }
    let Some(action) = Action::of_method(method) else {
        // `http_request_update` is how an HTTP gateway (calling anonymously) gets answers that
        // could not be certified in advance: everyone may call it, with a request's size (the
        // hook then checks the request itself: `http::inspect_http_update`).
        return method == "http_request_update" && arg_size <= MAX_HTTP_UPDATE_ARG_BYTES;
    };
    if authorize(s, caller, action).is_err() {
        return false;
    }
    match method {
        // Content is immutable once Ready: these cannot succeed.
        "begin_upload" | "begin_files" | "put_chunk" | "finish_upload" => {
            s.status() != VideoStatus::Ready
        }
        "change_owner" | "offer_ownership" | "cancel_offer" => {
            s.transfer_in_flight.is_none() && !crate::logic::handover::handover_in_flight(s)
        }
        "accept_ownership" => {
            s.transfer_in_flight.is_none()
                && !crate::logic::handover::handover_in_flight(s)
                && s.pending_offer.as_ref().is_some_and(|o| now < o.expires_at)
        }
        // Only a hand-over that is due can be retried.
        "claim_control" => crate::logic::handover::handover_due(s),
        // Only a paid video sells passes.
        "buy_access" => matches!(
            s.access.as_ref().map(|p| &p.mode),
            Some(canvid_types::access::AccessMode::Paid(_))
        ),
        _ => true,
    }
}

/// Why a query method sent as an update is refused, for the caller: a tool that sends every
/// call as an update unless told (icp-cli, dfx) otherwise gets a bare "did not call
/// ic0.accept_message" (IC0406).
pub fn query_as_update_refusal(method: &str) -> String {
    format!("`{method}` is a query: call it as a query (icp, dfx: --query)")
}

/// Refuses ingress updates that cannot succeed, so that they cost the canister nothing. Every
/// endpoint checks again (inter-canister calls do not pass through here).
///
/// A query method is refused by trapping with [`query_as_update_refusal`]: the IC returns a
/// trap's message to the sender of the ingress message (IC0503 "Canister called `ic0.trap` with
/// message: ..."), while not calling `accept_message` returns no text at all. Both refuse the
/// message before it is inducted, and `inspect_message` runs without charging the canister, so
/// the refusal still costs it nothing (`tests/tests/hostile.rs` measures it). The other
/// refusals keep the plain IC0406 that clients key on (the endpoint's own error says why when
/// the same call arrives from a canister).
#[ic_cdk::inspect_message]
fn inspect_message() {
    let method = msg_method_name();
    if QUERY_METHODS.contains(&method.as_str()) {
        ic_cdk::trap(query_as_update_refusal(&method));
    }
    let caller = msg_caller();
    let arg_size = ic0::msg_arg_data_size();
    let now = ic_cdk::api::time();
    if !canister::with(|s| inspect(s.state(), &caller, &method, arg_size, now)) {
        return;
    }
    // A gateway's request is accepted only if the query could not have answered it (an
    // update costs the canister; docs/http.md "Who pays").
    if method == "http_request_update"
        && !crate::http::inspect_http_update(&ic_cdk::api::msg_arg_data(), now)
    {
        return;
    }
    // While too many purchases failed this minute, new ones would only cost the canister.
    if method == "buy_access" && !crate::access::purchases_open(now) {
        return;
    }
    // A token only for someone who may watch a gated video now (the allowlist and passes are
    // in memory 6, which `inspect` does not see).
    if method == "playback_token"
        && !canister::with(|s| crate::access::may_request_token(s, &caller, now))
    {
        return;
    }
    // A key only for a call that would get one (each costs the canister a vetKD fee).
    if method == "video_key"
        && !crate::keys::may_request_key(&caller, &ic_cdk::api::msg_arg_data(), now)
    {
        return;
    }
    // Only the owner or someone who could hold tokens has any to revoke (a viewer naming
    // someone else is refused by the endpoint: only real viewers get that far).
    if method == "revoke_playback_tokens"
        && !canister::with(|s| crate::access::may_revoke(s, &caller, &caller, now))
    {
        return;
    }
    accept_message();
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::{InFlight, VideoStore};
    use canvid_types::video::VideoInit;
    use ic_stable_structures::VectorMemory;

    pub(crate) fn user(n: u8) -> Principal {
        Principal::from_slice(&[n, 0x02])
    }
    pub(crate) fn canister(n: u8) -> Principal {
        Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, n, 0x01, 0x01])
    }

    pub(crate) const OWNER: u8 = 1;
    pub(crate) const UPLOADER: u8 = 2;
    pub(crate) const OPERATOR: u8 = 3;
    pub(crate) const STRANGER: u8 = 4;

    pub(crate) fn state() -> State {
        let init = VideoInit {
            owner: user(OWNER),
            creator: user(OWNER),
            index: Some(canister(7)),
            title: String::new(),
            description: String::new(),
            tags: vec![],
            funded_by: None,
            platform_fee: None,
        };
        let mut s = VideoStore::init(VectorMemory::default(), &init, canister(8), 0)
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
        let inspect =
            |s: &State, caller: &Principal, method: &str| inspect(s, caller, method, 100, 0);
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
            MAX_HTTP_UPDATE_ARG_BYTES,
            0
        ));
        assert!(!super::inspect(
            &s,
            &Principal::anonymous(),
            "http_request_update",
            MAX_HTTP_UPDATE_ARG_BYTES + 1,
            0
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
            keep: None,
            controllers: None,
        });
        assert!(!inspect(&s, &user(OWNER), "change_owner"));
        // Ready: uploads are pointless.
        s.upload = Some(
            crate::store::validate_spec(&canvid_types::video::UploadSpec {
                path: None,
                rendition: None,
                mime_type: "video/mp4".into(),
                total_size: 1,
                chunk_size: 1,
                chunk_digests: None,
                file_digest: None,
                duration_ms: None,
                encryption: None,
            })
            .unwrap(),
        );
        assert!(inspect(&s, &user(OWNER), "put_chunk"));
        s.digest = Some(serde_bytes::ByteBuf::from(vec![0; 32]));
        assert!(!inspect(&s, &user(OWNER), "put_chunk"));
        assert!(!inspect(&s, &user(STRANGER), "read_range"));
    }

    /// Access methods: the owner manages the policy and allowlist; `buy_access` only while the
    /// video is paid, and never from the anonymous principal (every refusal here costs the
    /// canister nothing).
    #[test]
    fn inspect_access_methods() {
        use canvid_types::access::{AccessMode, AccessPolicy, Offer, PaidAccess};
        let mut s = state();
        let inspect =
            |s: &State, caller: &Principal, method: &str| inspect(s, caller, method, 100, 0);
        for m in ["set_access_policy", "add_viewers", "remove_viewers"] {
            assert!(inspect(&s, &user(OWNER), m), "{m}");
            for who in [UPLOADER, OPERATOR, STRANGER] {
                assert!(!inspect(&s, &user(who), m), "{m} by {who}");
            }
        }
        assert!(
            !inspect(&s, &user(STRANGER), "buy_access"),
            "a public video"
        );
        s.access = Some(AccessPolicy {
            free_paths: None,
            mode: AccessMode::Paid(PaidAccess {
                ledger: canister(5),
                offers: vec![Offer {
                    id: "24h".into(),
                    price: 1u8.into(),
                    duration_seconds: Some(86_400),
                }],
            }),
            preview_bytes: None,
        });
        assert!(inspect(&s, &user(STRANGER), "buy_access"));
        for m in ["buy_access", "playback_token", "revoke_playback_tokens"] {
            assert!(!inspect(&s, &Principal::anonymous(), m), "{m}");
        }
        assert!(inspect(&s, &user(STRANGER), "revoke_playback_tokens"));
    }

    /// Two-step transfers: the owner or operator offers and cancels, only the offered principal
    /// accepts, before the offer expires and while its maker may still transfer.
    #[test]
    fn inspect_and_authorize_offers() {
        let mut s = state();
        let new = user(6);
        let at =
            |s: &State, who: Principal, m: &str, now: u64| super::inspect(s, &who, m, 100, now);
        for m in ["offer_ownership", "cancel_offer"] {
            assert!(at(&s, user(OWNER), m, 0), "{m}");
            assert!(at(&s, user(OPERATOR), m, 0), "{m}");
            assert!(!at(&s, user(UPLOADER), m, 0), "{m}");
            assert!(!at(&s, user(STRANGER), m, 0), "{m}");
            assert!(!at(&s, Principal::anonymous(), m, 0), "{m}");
        }
        // No offer: nobody may accept.
        for who in [user(OWNER), user(OPERATOR), new, Principal::anonymous()] {
            assert!(!at(&s, who, "accept_ownership", 0));
            assert!(authorize(&s, &who, Action::AcceptOffer).is_err());
        }
        s.pending_offer = Some(canvid_types::video::OwnershipOffer {
            new_owner: new,
            keep_controllers: None,
            offered_by: user(OPERATOR),
            offered_at: 10,
            expires_at: 20,
        });
        assert!(at(&s, new, "accept_ownership", 19));
        assert!(!at(&s, new, "accept_ownership", 20), "expired");
        for who in [user(OWNER), user(OPERATOR), user(UPLOADER), user(STRANGER)] {
            assert!(!at(&s, who, "accept_ownership", 11), "{who}");
            assert!(matches!(
                authorize(&s, &who, Action::AcceptOffer),
                Err(Error::NotAuthorized { .. })
            ));
        }
        // The operator who made it was revoked: the offer lapsed.
        s.operator = None;
        assert!(!at(&s, new, "accept_ownership", 11));
        s.operator = Some(user(OPERATOR));
        // A transfer in flight: no offer changes, no acceptance.
        s.transfer_in_flight = Some(InFlight {
            new_owner: user(9),
            requested_by: user(OWNER),
            started_at: 0,
            keep: None,
            controllers: None,
        });
        for m in ["offer_ownership", "cancel_offer"] {
            assert!(!at(&s, user(OWNER), m, 11), "{m}");
        }
        assert!(!at(&s, new, "accept_ownership", 11));
    }

    #[test]
    fn an_operator_that_is_also_an_uploader_may_transfer() {
        let mut s = state();
        s.uploaders.push(user(OPERATOR));
        assert_eq!(role(&s, &user(OPERATOR)), Role::Uploader);
        assert_eq!(authorize(&s, &user(OPERATOR), Action::Transfer), Ok(()));
        assert!(authorize(&s, &user(UPLOADER), Action::Transfer).is_err());
    }
}
