//! Hand-built requests (raw HTTP + CBOR) that the IC refuses, refused here with the same status
//! codes: forged or tampered signatures, mismatched senders, expired requests and delegations,
//! wrong effective canister ids, oversized bodies, and reading another sender's request status.

mod common;

use candid::{Encode, Principal};
use ic_agent::identity::{BasicIdentity, Delegation, SignedDelegation};
use ic_agent::Identity;
use ic_transport_types::{Envelope, EnvelopeContent};
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
