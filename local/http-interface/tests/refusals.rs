//! Hand-built requests (raw HTTP + CBOR) that the IC refuses, refused here with the same status
//! codes: forged or tampered signatures, mismatched senders, expired requests and delegations,
//! wrong effective canister ids, oversized bodies, reading another sender's request status, and
//! delegation chains: targets (also for management-canister calls), more than 20 delegations, a
//! repeated key, and the drafted `permissions = "queries"`.

mod common;

use candid::{Encode, Principal};
use ic_agent::identity::{BasicIdentity, Delegation, SignedDelegation};
use ic_agent::Identity;
use ic_transport_types::{DelegationPermissions, Envelope, EnvelopeContent};
use std::borrow::Cow;

const MINUTE: u64 = 60_000_000_000;

fn key(seed: u8) -> BasicIdentity {
    BasicIdentity::from_raw_key(&[seed; 32])
}

fn call(sender: Principal, canister: Principal, method: &str, expiry: u64) -> EnvelopeContent {
    EnvelopeContent::Call {
        nonce: Some(common::now_ns().to_be_bytes().to_vec()),
        ingress_expiry: expiry,
        sender,
        canister_id: canister,
        method_name: method.into(),
        arg: Encode!().unwrap(),
        sender_info: None,
    }
}

fn read_status(sender: Principal, request_id: &[u8]) -> EnvelopeContent {
    EnvelopeContent::ReadState {
        ingress_expiry: common::now_ns() + 2 * MINUTE,
        sender,
        paths: vec![vec!["request_status".into(), request_id.to_vec().into()]],
    }
}

fn unsigned(content: &EnvelopeContent) -> Envelope<'static> {
    Envelope {
        content: Cow::Owned(content.clone()),
        sender_pubkey: None,
        sender_sig: None,
        sender_delegation: None,
    }
}

struct T {
    s: common::Setup,
}

impl T {
    fn post(&self, endpoint: &str, envelope: &Envelope<'_>) -> (u16, String) {
        let path = format!("/api/{endpoint}");
        let (status, body) = common::http(
            self.s.server.port(),
            "POST",
            &path.replace("{c}", &self.s.canister.to_text()),
            &envelope.encode_bytes(),
        );
        (status, String::from_utf8_lossy(&body).to_string())
    }
}

fn setup() -> T {
    T {
        s: common::setup(vec![Principal::anonymous()]),
    }
}

#[test]
fn well_formed_requests_are_accepted() {
    // The control case: the same construction, correctly signed, is accepted. Without it the
    // refusals below could pass for the wrong reason.
    let t = setup();
    let a = key(1);
    let content = call(
        a.sender().unwrap(),
        t.s.canister,
        "whoami_update",
        common::now_ns() + 2 * MINUTE,
    );
    let (status, body) = t.post("v2/canister/{c}/call", &common::signed(&content, &a));
    assert_eq!(status, 202, "{body}");
    let (status, _) = t.post(
        "v4/canister/{c}/call",
        &common::signed(
            &call(
                a.sender().unwrap(),
                t.s.canister,
                "whoami_update",
                common::now_ns() + 2 * MINUTE,
            ),
            &a,
        ),
    );
    assert_eq!(status, 200);
    let (status, body) = t.post(
        "v3/canister/{c}/read_state",
        &common::signed(
            &read_status(a.sender().unwrap(), &*content.to_request_id()),
            &a,
        ),
    );
    assert_eq!(status, 200, "{body}");
    // Anonymous requests need no signature.
    let anon = call(
        Principal::anonymous(),
        t.s.canister,
        "whoami_update",
        common::now_ns() + 2 * MINUTE,
    );
    assert_eq!(t.post("v2/canister/{c}/call", &unsigned(&anon)).0, 202);
}

#[test]
fn signature_by_another_key_is_refused() {
    let t = setup();
    let (a, b) = (key(1), key(2));
    let content = call(
        a.sender().unwrap(),
        t.s.canister,
        "whoami_update",
        common::now_ns() + 2 * MINUTE,
    );
    let mut env = common::signed(&content, &a);
    env.sender_sig = common::signed(&content, &b).sender_sig;
    let (status, body) = t.post("v4/canister/{c}/call", &env);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("signature"), "{body}");
}

#[test]
fn sender_not_matching_the_public_key_is_refused() {
    let t = setup();
    let (a, b) = (key(1), key(2));
    // b's principal, signed by a with a's key.
    let content = call(
        b.sender().unwrap(),
        t.s.canister,
        "whoami_update",
        common::now_ns() + 2 * MINUTE,
    );
    let (status, body) = t.post("v4/canister/{c}/call", &common::signed(&content, &a));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("does not match"), "{body}");
    // b's principal without any signature (as if anonymous).
    let (status, _) = t.post(
        "v3/canister/{c}/query",
        &unsigned(&EnvelopeContent::Query {
            ingress_expiry: common::now_ns() + 2 * MINUTE,
            sender: b.sender().unwrap(),
            canister_id: t.s.canister,
            method_name: "whoami".into(),
            arg: Encode!().unwrap(),
            nonce: None,
            sender_info: None,
        }),
    );
    assert_eq!(status, 400);
}

#[test]
fn expired_and_far_future_requests_are_refused() {
    let t = setup();
    let a = key(1);
    let past = call(
        a.sender().unwrap(),
        t.s.canister,
        "whoami_update",
        common::now_ns() - MINUTE,
    );
    let (status, body) = t.post("v4/canister/{c}/call", &common::signed(&past, &a));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Invalid request expiry: "), "{body}");
    let far = call(
        a.sender().unwrap(),
        t.s.canister,
        "whoami_update",
        common::now_ns() + 30 * MINUTE,
    );
    let (status, body) = t.post("v4/canister/{c}/call", &common::signed(&far, &a));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn content_tampered_after_signing_is_refused() {
    let t = setup();
    let a = key(1);
    let content = call(
        a.sender().unwrap(),
        t.s.canister,
        "whoami_update",
        common::now_ns() + 2 * MINUTE,
    );
    let mut env = common::signed(&content, &a);
    let EnvelopeContent::Call { method_name, .. } = env.content.to_mut() else {
        unreachable!()
    };
    *method_name = "set_heap".into();
    let (status, body) = t.post("v4/canister/{c}/call", &env);
    assert_eq!(status, 400, "{body}");
    // The tampered message never ran.
    assert_eq!(
        t.s.replica.request_status(&env.content.to_request_id()),
        canvid_replica::RequestStatus::Unknown
    );
}

fn delegation_to(session: &BasicIdentity, expiration: u64) -> Delegation {
    Delegation {
        pubkey: session.public_key().unwrap(),
        expiration,
        targets: None,
        permissions: None,
    }
}

#[test]
fn bad_delegations_are_refused() {
    let t = setup();
    let (root, session, stranger) = (key(1), key(2), key(3));
    let sender = root.sender().unwrap();
    let content = call(
        sender,
        t.s.canister,
        "whoami_update",
        common::now_ns() + 2 * MINUTE,
    );
    let with_chain = |d: Delegation, signer: &BasicIdentity| {
        let sig = signer.sign_delegation(&d).unwrap().signature.unwrap();
        let mut env = common::signed(&content, &session);
        env.sender_pubkey = root.public_key();
        env.sender_delegation = Some(vec![SignedDelegation {
            delegation: d,
            signature: sig,
        }]);
        env
    };
    let valid = with_chain(
        delegation_to(&session, common::now_ns() + 60 * MINUTE),
        &root,
    );
    // Signed by a key other than the root's.
    let forged = with_chain(
        delegation_to(&session, common::now_ns() + 60 * MINUTE),
        &stranger,
    );
    let (status, body) = t.post("v4/canister/{c}/call", &forged);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("delegation"), "{body}");
    // Expired.
    let expired = with_chain(delegation_to(&session, common::now_ns() - MINUTE), &root);
    let (status, body) = t.post("v4/canister/{c}/call", &expired);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("expired"), "{body}");
    // Delegation content changed after signing (a longer expiry).
    let mut stretched = valid.clone();
    stretched.sender_delegation.as_mut().unwrap()[0]
        .delegation
        .expiration += MINUTE;
    let (status, _) = t.post("v4/canister/{c}/call", &stretched);
    assert_eq!(status, 400);
    // The intact chain is accepted.
    let (status, body) = t.post("v4/canister/{c}/call", &valid);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn request_status_is_only_for_its_sender() {
    let t = setup();
    let (a, b) = (key(1), key(2));
    let content = call(
        a.sender().unwrap(),
        t.s.canister,
        "whoami_update",
        common::now_ns() + 2 * MINUTE,
    );
    assert_eq!(
        t.post("v2/canister/{c}/call", &common::signed(&content, &a))
            .0,
        202
    );
    let id = content.to_request_id();
    let (status, body) = t.post(
        "v3/canister/{c}/read_state",
        &common::signed(&read_status(b.sender().unwrap(), &*id), &b),
    );
    assert_eq!(status, 403, "{body}");
    // Anonymous cannot read it either.
    let (status, _) = t.post(
        "v3/canister/{c}/read_state",
        &unsigned(&read_status(Principal::anonymous(), &*id)),
    );
    assert_eq!(status, 403);
    // Its sender can.
    let (status, _) = t.post(
        "v3/canister/{c}/read_state",
        &common::signed(&read_status(a.sender().unwrap(), &*id), &a),
    );
    assert_eq!(status, 200);
}

#[test]
fn wrong_effective_canister_id_and_malformed_requests() {
    let t = setup();
    let a = key(1);
    let content = call(
        a.sender().unwrap(),
        t.s.canister,
        "whoami_update",
        common::now_ns() + 2 * MINUTE,
    );
    let env = common::signed(&content, &a);
    let other = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 7, 1, 1]);
    let (status, _) = t.post(&format!("v4/canister/{other}/call"), &env);
    assert_eq!(status, 400);
    let (status, _) = t.post("v4/canister/not-a-principal/call", &env);
    assert_eq!(status, 400);
    // A call sent to the query endpoint.
    let (status, _) = t.post("v3/canister/{c}/query", &env);
    assert_eq!(status, 400);
    // Not CBOR.
    let path = format!("/api/v4/canister/{}/call", t.s.canister);
    assert_eq!(
        common::http(t.s.server.port(), "POST", &path, b"hello").0,
        400
    );
    // Too large.
    let big = vec![0u8; 5 * 1024 * 1024];
    assert_eq!(common::http(t.s.server.port(), "POST", &path, &big).0, 413);
    // Unknown endpoint, wrong method.
    assert_eq!(
        common::http(t.s.server.port(), "GET", "/api/v9/nothing", b"").0,
        404
    );
    assert_eq!(common::http(t.s.server.port(), "GET", &path, b"").0, 405);
    // A signed anonymous request.
    let mut anon = common::signed(&content, &a);
    if let EnvelopeContent::Call { sender, .. } = anon.content.to_mut() {
        *sender = Principal::anonymous();
    }
    assert_eq!(t.post("v4/canister/{c}/call", &anon).0, 400);
}

#[test]
fn status_reports_the_root_key() {
    let t = setup();
    let (status, body) = common::http(t.s.server.port(), "GET", "/api/v2/status", b"");
    assert_eq!(status, 200);
    let v: serde_cbor::Value = serde_cbor::from_slice(&body).unwrap();
    let serde_cbor::Value::Map(m) = v else {
        panic!("{v:?}")
    };
    assert_eq!(
        m.get(&serde_cbor::Value::Text("root_key".into())),
        Some(&serde_cbor::Value::Bytes(t.s.replica.root_key_der()))
    );
    assert_eq!(
        m.get(&serde_cbor::Value::Text("replica_health_status".into())),
        Some(&serde_cbor::Value::Text("healthy".into()))
    );
}

#[test]
fn api_answers_cors_preflights_and_allows_any_origin() {
    let t = setup();
    let port = t.s.server.port();
    let (status, head, _) = common::http_with_head(port, "OPTIONS", "/api/v2/status", b"");
    assert_eq!(status, 204, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert!(
        head.contains("access-control-allow-methods: get, post, options"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: content-type"),
        "{head}"
    );

    let (status, head, _) = common::http_with_head(port, "GET", "/api/v2/status", b"");
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("access-control-allow-origin: *"),
        "{head}"
    );
    // Refusals carry it too, so a browser page can read the reason.
    let (status, head, _) =
        common::http_with_head(port, "POST", "/api/v2/canister/aaaaa-aa/query", b"x");
    assert_eq!(status, 400);
    assert!(
        head.to_ascii_lowercase()
            .contains("access-control-allow-origin: *"),
        "{head}"
    );
}

/// An envelope for `content` (whose sender must be `keys[0]`'s principal) carrying the chain
/// `keys[0] → keys[1] → … → keys[n]`, delegation `i` made by `keys[i]` with the targets and
/// permissions `shape(i)` gives, and signed by the last key.
fn chained(
    content: &EnvelopeContent,
    keys: &[&BasicIdentity],
    shape: impl Fn(usize) -> (Option<Vec<Principal>>, Option<DelegationPermissions>),
) -> Envelope<'static> {
    let chain: Vec<SignedDelegation> = keys
        .windows(2)
        .enumerate()
        .map(|(i, pair)| {
            let (targets, permissions) = shape(i);
            let delegation = Delegation {
                pubkey: pair[1].public_key().unwrap(),
                expiration: common::now_ns() + 60 * MINUTE,
                targets,
                permissions,
            };
            let signature = pair[0]
                .sign_delegation(&delegation)
                .unwrap()
                .signature
                .unwrap();
            SignedDelegation {
                delegation,
                signature,
            }
        })
        .collect();
    let mut env = common::signed(content, *keys.last().unwrap());
    env.sender_pubkey = keys[0].public_key();
    env.sender_delegation = (!chain.is_empty()).then_some(chain);
    env
}

fn unrestricted(_: usize) -> (Option<Vec<Principal>>, Option<DelegationPermissions>) {
    (None, None)
}

fn query_of(sender: Principal, canister: Principal, method: &str) -> EnvelopeContent {
    EnvelopeContent::Query {
        ingress_expiry: common::now_ns() + 2 * MINUTE,
        sender,
        canister_id: canister,
        method_name: method.into(),
        arg: Encode!().unwrap(),
        nonce: None,
        sender_info: None,
    }
}

const NOT_ALLOWED: &str = "the delegation chain does not allow";

/// `targets` (interface specification, "Authentication"): a delegation with targets only
/// applies to requests sent to those canisters, and a chain allows the intersection of its
/// delegations' targets.
#[test]
fn l10_delegation_targets_restrict_the_callable_canisters() {
    let t = setup();
    let (root, session) = (key(1), key(2));
    let c = t.s.canister;
    let other = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 7, 1, 1]);
    let sender = root.sender().unwrap();
    let cases: [(Vec<Vec<Principal>>, bool); 5] = [
        (vec![vec![c]], true),
        (vec![vec![other, c]], true),
        (vec![vec![other, c], vec![c]], true),
        (vec![vec![other]], false),
        // The intersection: each delegation allows c, but not together.
        (vec![vec![other, c], vec![other]], false),
    ];
    let third = key(3);
    for (targets, allowed) in cases {
        let keys: Vec<&BasicIdentity> = if targets.len() == 1 {
            vec![&root, &session]
        } else {
            vec![&root, &session, &third]
        };
        let shape = |i: usize| (Some(targets[i].clone()), None);
        let content = call(sender, c, "whoami_update", common::now_ns() + 2 * MINUTE);
        let (status, body) = t.post("v4/canister/{c}/call", &chained(&content, &keys, shape));
        let (qstatus, qbody) = t.post(
            "v3/canister/{c}/query",
            &chained(&query_of(sender, c, "whoami"), &keys, shape),
        );
        if allowed {
            assert_eq!(status, 200, "{targets:?}: {body}");
            assert_eq!(qstatus, 200, "{targets:?}: {qbody}");
        } else {
            assert_eq!(status, 400, "{targets:?}: {body}");
            assert!(body.contains(NOT_ALLOWED), "{body}");
            assert_eq!(qstatus, 400, "{targets:?}: {qbody}");
            assert!(qbody.contains(NOT_ALLOWED), "{qbody}");
        }
    }
}

/// A management-canister call under a chain with `targets`: the specification admits a
/// request when its `canister_id` is in the targets (formal model, "API Request submission":
/// `E.content.canister_id ∈ verify_envelope(E, E.content.sender, S.system_time)`), and the
/// IC's validator checks the same (`targets.contains(request.content().canister_id())`). For a
/// management call that is `aaaaa-aa`, not the effective canister id the argument names: a
/// chain restricted to the canister refuses `canister_status` of it, one listing `aaaaa-aa`
/// admits it.
#[test]
fn l10_management_calls_under_targets_follow_the_specification() {
    let (root, session) = (key(1), key(2));
    let sender = root.sender().unwrap();
    let t = T {
        s: common::setup(vec![sender]),
    };
    let c = t.s.canister;
    let management = Principal::management_canister();
    #[derive(candid::CandidType)]
    struct CanisterIdRecord {
        canister_id: Principal,
    }
    let status_call = || EnvelopeContent::Call {
        nonce: Some(common::now_ns().to_be_bytes().to_vec()),
        ingress_expiry: common::now_ns() + 2 * MINUTE,
        sender,
        canister_id: management,
        method_name: "canister_status".into(),
        arg: Encode!(&CanisterIdRecord { canister_id: c }).unwrap(),
        sender_info: None,
    };
    let post = |targets: Vec<Principal>| {
        t.post(
            "v4/canister/{c}/call",
            &chained(&status_call(), &[&root, &session], |_| {
                (Some(targets.clone()), None)
            }),
        )
    };
    // Only the effective canister id listed: refused.
    let (status, body) = post(vec![c]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(NOT_ALLOWED), "{body}");
    // The management canister listed: admitted (the controller's canister_status replies).
    let (status, body) = post(vec![management]);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("non_replicated_rejection"), "{body}");
    // Without targets, of course.
    let (status, body) = t.post(
        "v4/canister/{c}/call",
        &chained(&status_call(), &[&root, &session], unrestricted),
    );
    assert_eq!(status, 200, "{body}");
    // The URL's effective canister id must still be the one the argument names.
    let other = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 7, 1, 1]);
    let (status, _) = t.post(
        &format!("v4/canister/{other}/call"),
        &chained(&status_call(), &[&root, &session], |_| {
            (Some(vec![management]), None)
        }),
    );
    assert_eq!(status, 400);
}

/// At most 20 delegations (interface specification, "Authentication").
#[test]
fn l10_more_than_20_delegations_are_refused() {
    let t = setup();
    let keys: Vec<BasicIdentity> = (10..=31).map(key).collect();
    let refs: Vec<&BasicIdentity> = keys.iter().collect();
    let sender = keys[0].sender().unwrap();
    let content = || {
        call(
            sender,
            t.s.canister,
            "whoami_update",
            common::now_ns() + 2 * MINUTE,
        )
    };
    // 21 keys: 20 delegations, accepted.
    let (status, body) = t.post(
        "v4/canister/{c}/call",
        &chained(&content(), &refs[..21], unrestricted),
    );
    assert_eq!(status, 200, "{body}");
    // 22 keys: 21 delegations.
    let (status, body) = t.post(
        "v4/canister/{c}/call",
        &chained(&content(), &refs, unrestricted),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("21 delegations, at most 20"), "{body}");
    let (status, _) = t.post(
        "v3/canister/{c}/query",
        &chained(
            &query_of(sender, t.s.canister, "whoami"),
            &refs,
            unrestricted,
        ),
    );
    assert_eq!(status, 400);
}

/// Every public key appears once in a chain: cycles and self-delegations are refused
/// (interface specification, "Authentication").
#[test]
fn l10_a_repeated_public_key_in_the_chain_is_refused() {
    let t = setup();
    let (root, a, b) = (key(1), key(2), key(3));
    let sender = root.sender().unwrap();
    let content = || {
        call(
            sender,
            t.s.canister,
            "whoami_update",
            common::now_ns() + 2 * MINUTE,
        )
    };
    for keys in [
        vec![&root, &root],
        vec![&root, &a, &root],
        vec![&root, &a, &b, &a],
        vec![&root, &a, &a],
    ] {
        let (status, body) = t.post(
            "v4/canister/{c}/call",
            &chained(&content(), &keys, unrestricted),
        );
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("appears twice"), "{body}");
    }
    let (status, body) = t.post(
        "v4/canister/{c}/call",
        &chained(&content(), &[&root, &a, &b], unrestricted),
    );
    assert_eq!(status, 200, "{body}");
}

/// `permissions` is not in the released interface specification: it is the draft of
/// dfinity/ic#10449 and the open spec change dfinity/developer-docs#292 (an unreleased 0.63.0),
/// which ic-agent 0.49 already builds (`DelegationPermissions`). What the replica implements,
/// as drafted: `"queries"` anywhere in the chain permits queries and `read_state` only (a later
/// delegation cannot lift it); `"all"` is the same as no field.
#[test]
fn l10_queries_permission_allows_only_queries_and_read_state() {
    let t = setup();
    let (root, a, b) = (key(1), key(2), key(3));
    let sender = root.sender().unwrap();
    let c = t.s.canister;
    let queries = |_: usize| (None, Some(DelegationPermissions::Queries));
    // A request of the same sender to read the status of.
    let earlier = call(sender, c, "whoami_update", common::now_ns() + 2 * MINUTE);
    assert_eq!(
        t.post(
            "v4/canister/{c}/call",
            &chained(&earlier, &[&root, &a], unrestricted)
        )
        .0,
        200
    );
    let (status, body) = t.post(
        "v3/canister/{c}/query",
        &chained(&query_of(sender, c, "whoami"), &[&root, &a], queries),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = t.post(
        "v3/canister/{c}/read_state",
        &chained(
            &read_status(sender, &*earlier.to_request_id()),
            &[&root, &a],
            queries,
        ),
    );
    assert_eq!(status, 200, "{body}");
    for endpoint in ["v2/canister/{c}/call", "v4/canister/{c}/call"] {
        let content = call(sender, c, "whoami_update", common::now_ns() + 2 * MINUTE);
        let (status, body) = t.post(endpoint, &chained(&content, &[&root, &a], queries));
        assert_eq!(status, 400, "{endpoint}: {body}");
        assert!(body.contains("only queries"), "{body}");
    }
    // "queries" then "all": still queries only.
    let content = call(sender, c, "whoami_update", common::now_ns() + 2 * MINUTE);
    let (status, _) = t.post(
        "v4/canister/{c}/call",
        &chained(&content, &[&root, &a, &b], |i| {
            let p = [DelegationPermissions::Queries, DelegationPermissions::All][i];
            (None, Some(p))
        }),
    );
    assert_eq!(status, 400);
    // "all" everywhere: calls pass.
    let content = call(sender, c, "whoami_update", common::now_ns() + 2 * MINUTE);
    let (status, body) = t.post(
        "v4/canister/{c}/call",
        &chained(&content, &[&root, &a, &b], |_| {
            (None, Some(DelegationPermissions::All))
        }),
    );
    assert_eq!(status, 200, "{body}");
}

/// A `permissions` value other than `"queries"` or `"all"` makes the delegation invalid for
/// every kind of request (fail-closed, as drafted). ic-agent cannot build one, so the
/// delegation map is edited in the CBOR and signed again by the root key.
#[test]
fn l10_unknown_permissions_are_refused_for_every_request() {
    use serde_cbor::Value;
    let t = setup();
    let (root, a) = (key(1), key(2));
    let sender = root.sender().unwrap();
    let relabel = |env: &Envelope<'_>, permission: &str| -> Vec<u8> {
        let mut v: Value = serde_cbor::from_slice(&env.encode_bytes()).unwrap();
        if let Value::Tag(_, inner) = v {
            v = *inner;
        }
        let Value::Map(envelope) = &mut v else {
            panic!("{v:?}")
        };
        let Some(Value::Array(chain)) = envelope.get_mut(&Value::Text("sender_delegation".into()))
        else {
            panic!("no chain")
        };
        let Value::Map(signed) = &mut chain[0] else {
            panic!()
        };
        let delegation = signed.get_mut(&Value::Text("delegation".into())).unwrap();
        let Value::Map(d) = delegation else { panic!() };
        d.insert(
            Value::Text("permissions".into()),
            Value::Text(permission.into()),
        );
        let hash = canvid_http_interface::hash::hash_of_map(delegation).unwrap();
        let mut message = b"\x1Aic-request-auth-delegation".to_vec();
        message.extend_from_slice(&hash);
        let signature = root.sign_arbitrary(&message).unwrap().signature.unwrap();
        signed.insert(Value::Text("signature".into()), Value::Bytes(signature));
        serde_cbor::to_vec(&v).unwrap()
    };
    let post = |endpoint: &str, body: Vec<u8>| {
        let path = format!("/api/{endpoint}").replace("{c}", &t.s.canister.to_text());
        let (status, body) = common::http(t.s.server.port(), "POST", &path, &body);
        (status, String::from_utf8_lossy(&body).to_string())
    };
    let queries = |_: usize| (None, Some(DelegationPermissions::Queries));
    let query = chained(
        &query_of(sender, t.s.canister, "whoami"),
        &[&root, &a],
        queries,
    );
    // The control: re-signing the unchanged value is accepted.
    let (status, body) = post("v3/canister/{c}/query", relabel(&query, "queries"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = post("v3/canister/{c}/query", relabel(&query, "updates"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown `permissions`"), "{body}");
    let content = call(
        sender,
        t.s.canister,
        "whoami_update",
        common::now_ns() + 2 * MINUTE,
    );
    let update = chained(&content, &[&root, &a], queries);
    let (status, body) = post("v4/canister/{c}/call", relabel(&update, "All"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown `permissions`"), "{body}");
}

/// The IC counts an ingress message's size as the signed envelope it received: an argument a
/// little under 2 MiB whose envelope (key and signature included) is over 2 MiB is refused with
/// 413 and the IC's text; 5 KB less fits.
#[test]
fn ingress_size_counts_the_signed_envelope() {
    let t = setup();
    let a = key(1);
    let sized = |n: usize| {
        let mut content = call(
            a.sender().unwrap(),
            t.s.canister,
            "whoami_update",
            common::now_ns() + 2 * MINUTE,
        );
        if let EnvelopeContent::Call { arg, .. } = &mut content {
            *arg = vec![0u8; n];
        }
        common::signed(&content, &a)
    };
    let limit = 2 * 1024 * 1024;
    let env = sized(limit - 200);
    let size = env.encode_bytes().len();
    assert!(size > limit, "{size}");
    let (status, body) = t.post("v4/canister/{c}/call", &env);
    assert_eq!(status, 413, "{body}");
    assert!(
        body.trim_end().ends_with(&format!(
            " is too large. Message byte size {size} is larger than the max allowed {limit}."
        )),
        "{body:?} (envelope of {size} bytes)"
    );
    let (status, body) = t.post("v4/canister/{c}/call", &sized(limit - 5_000));
    assert_ne!(status, 413, "{body}");
}
