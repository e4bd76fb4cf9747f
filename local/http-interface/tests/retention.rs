//! The ingress history's retention through the HTTP interface: a request's certified status
//! reads `replied` (with the reply), then `done` (status leaf only) once the replica's time has
//! passed the retention window, then nothing (forgotten). The test moves the replica's clock
//! forward; the server's driver thread only ever moves it forward to the wall clock, so it keeps
//! the advanced time and prunes in its next round.

mod common;

use candid::{Encode, Principal};
use canvid_replica::{Replica, FORGET_AFTER_NS, REPLY_RETENTION_NS};
use ic_agent::identity::BasicIdentity;
use ic_agent::Identity;
use ic_certification::{Certificate, LookupResult};
use ic_transport_types::EnvelopeContent;
use std::time::{Duration, Instant, UNIX_EPOCH};

const MINUTE: u64 = 60_000_000_000;

fn replica_now(r: &Replica) -> u64 {
    r.get_time().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// `/request_status/<id>/<leaf>` for each leaf, read by `signer` through read_state (expiry
/// relative to the replica's clock, which the test moves ahead of the wall clock), from a
/// certificate verified against the replica's root key. `None`: provably absent.
fn read_status(
    s: &common::Setup,
    signer: &dyn Identity,
    request_id: &[u8],
    leaves: &[&str],
) -> Vec<Option<Vec<u8>>> {
    let content = EnvelopeContent::ReadState {
        ingress_expiry: replica_now(&s.replica) + 2 * MINUTE,
        sender: signer.sender().unwrap(),
        paths: vec![vec!["request_status".into(), request_id.to_vec().into()]],
    };
    let path = format!("/api/v3/canister/{}/read_state", s.canister);
    let (status, body) = common::http(
        s.server.port(),
        "POST",
        &path,
        &common::signed(&content, signer).encode_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(with = "serde_bytes")]
        certificate: Vec<u8>,
    }
    let answer: Answer = serde_cbor::from_slice(&body).expect("CBOR read_state answer");
    let cert: Certificate = serde_cbor::from_slice(&answer.certificate).expect("certificate");
    let mut msg = b"\x0Dic-state-root".to_vec();
    msg.extend_from_slice(&cert.tree.digest());
    let root_key = s.replica.root_key_der();
    ic_verify_bls_signature::verify_bls_signature(&cert.signature, &msg, &root_key[37..])
        .expect("the certificate verifies against the root key");
    leaves
        .iter()
        .map(|leaf| {
            match cert
                .tree
                .lookup_path([b"request_status".as_ref(), request_id, leaf.as_bytes()])
            {
                LookupResult::Found(v) => Some(v.to_vec()),
                LookupResult::Absent => None,
                other => panic!("/request_status/<id>/{leaf}: {other:?}"),
            }
        })
        .collect()
}

/// Polls until the status leaf reads `want` (the driver prunes in its next round).
fn wait_for_status(
    s: &common::Setup,
    signer: &dyn Identity,
    request_id: &[u8],
    want: Option<&[u8]>,
) -> Vec<Option<Vec<u8>>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = read_status(s, signer, request_id, &["status", "reply"]);
        if got[0].as_deref() == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn request_status_reads_done_after_the_retention_window_then_is_forgotten() {
    let s = common::setup(vec![Principal::anonymous()]);
    let a = BasicIdentity::from_raw_key(&[1; 32]);
    let content = EnvelopeContent::Call {
        nonce: Some(common::now_ns().to_be_bytes().to_vec()),
        ingress_expiry: common::now_ns() + 2 * MINUTE,
        sender: a.sender().unwrap(),
        canister_id: s.canister,
        method_name: "whoami_update".into(),
        arg: Encode!().unwrap(),
        sender_info: None,
    };
    let request_id = content.to_request_id();
    let path = format!("/api/v4/canister/{}/call", s.canister);
    let (status, body) = common::http(
        s.server.port(),
        "POST",
        &path,
        &common::signed(&content, &a).encode_bytes(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let got = read_status(&s, &a, &*request_id, &["status", "reply"]);
    assert_eq!(got[0].as_deref(), Some(b"replied".as_ref()));
    assert!(got[1].is_some(), "a replied status carries its reply");

    s.replica
        .advance_time(Duration::from_nanos(REPLY_RETENTION_NS + 1_000_000_000));
    let got = wait_for_status(&s, &a, &*request_id, Some(b"done"));
    assert_eq!(
        got[0].as_deref(),
        Some(b"done".as_ref()),
        "status after the window: {:?}",
        got[0].as_deref().map(String::from_utf8_lossy)
    );
    assert_eq!(got[1], None, "a done status has no reply");
    // Still its sender's only while known.
    let b = BasicIdentity::from_raw_key(&[2; 32]);
    let content_b = EnvelopeContent::ReadState {
        ingress_expiry: replica_now(&s.replica) + 2 * MINUTE,
        sender: b.sender().unwrap(),
        paths: vec![vec!["request_status".into(), request_id.to_vec().into()]],
    };
    let path_rs = format!("/api/v3/canister/{}/read_state", s.canister);
    let (status, _) = common::http(
        s.server.port(),
        "POST",
        &path_rs,
        &common::signed(&content_b, &b).encode_bytes(),
    );
    assert_eq!(status, 403);

    s.replica
        .advance_time(Duration::from_nanos(FORGET_AFTER_NS - REPLY_RETENTION_NS));
    let got = wait_for_status(&s, &a, &*request_id, None);
    assert_eq!(got, vec![None, None], "forgotten: provably absent");
}
