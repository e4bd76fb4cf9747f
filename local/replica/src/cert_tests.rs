//! Certificates, the state tree and ingress by request id, checked the way agents check them:
//! certificates are decoded with `ic-certification`, the root key is taken apart from its DER
//! exactly as ic-agent's `extract_der` does, and signatures are verified with dfinity's
//! `ic-verify-bls-signature` (ic-agent's verifier) over `\x0Dic-state-root` ++ the tree digest.

use candid::Principal;
use ic_certification::{LookupResult, SubtreeLookupResult};

use ic_certification::Certificate;

use crate::*;

const CANISTER: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (import "ic0" "certified_data_set" (func $cd_set (param i32 i32)))
  (import "ic0" "data_certificate_size" (func $dc_size (result i32)))
  (import "ic0" "data_certificate_copy" (func $dc_copy (param i32 i32 i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (memory (export "memory") 2)
  (table 2 funcref)
  (elem (i32.const 1) $on_reply)
  (data (i32.const 100) "echo")
  (func (export "canister_update echo")
    (call $arg_copy (i32.const 1000) (i32.const 0) (call $arg_size))
    (call $append (i32.const 1000) (call $arg_size))
    (call $reply))
  (func (export "canister_update fail") (call $trap (i32.const 100) (i32.const 4)))
  (func (export "canister_update set_cd")
    (call $arg_copy (i32.const 1000) (i32.const 0) (call $arg_size))
    (call $cd_set (i32.const 1000) (call $arg_size))
    (call $reply))
  (func (export "canister_query cert")
    (call $dc_copy (i32.const 1000) (i32.const 0) (call $dc_size))
    (call $append (i32.const 1000) (call $dc_size))
    (call $reply))
  ;; calls canister <arg> method "echo" (empty argument) and forwards its reply
  (func (export "canister_update relay")
    (call $arg_copy (i32.const 200) (i32.const 0) (call $arg_size))
    (call $call_new (i32.const 200) (call $arg_size) (i32.const 100) (i32.const 4)
                    (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 0))
    (if (call $call_perform) (then (call $trap (i32.const 100) (i32.const 4)))))
  (func $on_reply (param $env i32)
    (call $arg_copy (i32.const 300) (i32.const 0) (call $arg_size))
    (call $append (i32.const 300) (call $arg_size))
    (call $reply))
  (@custom "icp:public candid:service" "service : { echo : (blob) -> (blob) }")
  (@custom "icp:private secret" "hidden")
)
"#;

const T: u128 = 1_000_000_000_000;

fn setup() -> (Replica, Principal) {
    let r = Replica::with_seed([42; 32]);
    let id = r.create_canister();
    r.add_cycles(id, 10 * T);
    r.install_canister(id, wat::parse_str(CANISTER).unwrap(), vec![], None);
    (r, id)
}

fn labels(p: &[&[u8]]) -> Vec<Vec<u8>> {
    p.iter().map(|l| l.to_vec()).collect()
}

/// ic-agent's `extract_der`: exactly the 37-byte prefix + 96 bytes.
fn extract_der(der: &[u8]) -> Vec<u8> {
    const PREFIX: &str =
        "308182301d060d2b0601040182dc7c0503010201060c2b0601040182dc7c05030201036100";
    assert_eq!(der.len(), 133);
    assert_eq!(hex::encode(&der[..37]), PREFIX);
    der[37..].to_vec()
}

/// Verifies like an agent with `root_key_der` and no delegation; returns the certificate.
fn verify(cert: &[u8], root_key_der: &[u8]) -> Result<Certificate, String> {
    if cert[..3] != [0xd9, 0xd9, 0xf7] {
        return Err("no self-describe tag".into());
    }
    let c: Certificate = serde_cbor::from_slice(cert).map_err(|e| e.to_string())?;
    if c.delegation.is_some() {
        return Err("unexpected delegation".into());
    }
    let mut msg = b"\x0Dic-state-root".to_vec();
    msg.extend_from_slice(&c.tree.digest());
    ic_verify_bls_signature::verify_bls_signature(&c.signature, &msg, &extract_der(root_key_der))
        .map_err(|_| "signature does not verify".to_string())?;
    Ok(c)
}

fn found<'a>(c: &'a Certificate, path: &[&[u8]]) -> &'a [u8] {
    match c.tree.lookup_path(path.iter().copied()) {
        LookupResult::Found(v) => v,
        other => panic!("{path:?}: {other:?}"),
    }
}

fn lookup(c: &Certificate, path: &[&[u8]]) -> LookupResult<'static> {
    match c.tree.lookup_path(path.iter().copied()) {
        LookupResult::Found(_) => panic!("{path:?} found"),
        LookupResult::Absent => LookupResult::Absent,
        LookupResult::Unknown => LookupResult::Unknown,
        LookupResult::Error => LookupResult::Error,
    }
}

fn leb(mut b: &[u8]) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    while let Some((&x, rest)) = b.split_first() {
        v |= u64::from(x & 0x7f) << shift;
        shift += 7;
        b = rest;
        if x & 0x80 == 0 {
            break;
        }
    }
    v
}

#[test]
fn keys_are_deterministic_and_ids_self_authenticating() {
    let a = Replica::with_seed([1; 32]);
    let b = Replica::with_seed([1; 32]);
    assert_eq!(a.root_key_der(), b.root_key_der());
    assert_eq!(a.subnet_id(), b.subnet_id());
    assert_eq!(a.node_id(), b.node_id());
    assert_eq!(a.key_seed(), [1; 32]);
    assert_eq!(
        a.subnet_id(),
        Principal::self_authenticating(a.root_key_der())
    );
    assert_eq!(
        a.node_id(),
        Principal::self_authenticating(a.node_public_key_der())
    );
    // Fresh replicas get fresh keys.
    assert_ne!(Replica::new().root_key_der(), Replica::new().root_key_der());
    let pk = ic_ed25519::PublicKey::deserialize_rfc8410_der(&a.node_public_key_der()).unwrap();
    assert!(pk.verify_signature(b"m", &a.node_sign(b"m")).is_ok());
}

#[test]
fn read_state_serves_every_path_kind_and_verifies() {
    let (r, id) = setup();
    r.update_call(id, Principal::anonymous(), "set_cd", b"data".to_vec())
        .unwrap();
    let subnet = r.subnet_id();
    let node = r.node_id();
    let cert = r.read_state_certificate(&[
        labels(&[b"canister", id.as_slice(), b"certified_data"]),
        labels(&[b"canister", id.as_slice(), b"module_hash"]),
        labels(&[b"canister", id.as_slice(), b"controllers"]),
        labels(&[b"canister", id.as_slice(), b"metadata", b"candid:service"]),
        labels(&[b"subnet"]),
        labels(&[b"canister_ranges", subnet.as_slice()]),
    ]);
    let c = verify(&cert, &r.root_key_der()).unwrap();

    // /time is always there, and is the replica's time.
    let t = leb(found(&c, &[b"time"]));
    let now = r
        .get_time()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert_eq!(t, now);

    fn canister<'a>(id: &'a Principal, l: &'a [u8]) -> [&'a [u8]; 3] {
        [b"canister", id.as_slice(), l]
    }
    assert_eq!(found(&c, &canister(&id, b"certified_data")), b"data");
    assert_eq!(
        found(&c, &canister(&id, b"module_hash")),
        r.module_hash(id).unwrap()
    );
    // Controllers: tagged CBOR array of principals' bytes.
    let ctl = found(&c, &canister(&id, b"controllers"));
    assert_eq!(&ctl[..3], &[0xd9, 0xd9, 0xf7]);
    let ctl: Vec<serde_bytes::ByteBuf> = serde_cbor::from_slice(ctl).unwrap();
    assert_eq!(ctl, vec![serde_bytes::ByteBuf::from(vec![4u8])]); // anonymous
    assert_eq!(
        found(
            &c,
            &[b"canister", id.as_slice(), b"metadata", b"candid:service"]
        ),
        b"service : { echo : (blob) -> (blob) }"
    );
    // Not requested: pruned.
    assert_eq!(
        lookup(&c, &[b"canister", id.as_slice(), b"metadata", b"secret"]),
        LookupResult::Unknown
    );

    // /subnet: public key = root key, ranges contain the canister, node key = node key.
    assert_eq!(
        found(&c, &[b"subnet", subnet.as_slice(), b"public_key"]),
        r.root_key_der()
    );
    let ranges: Vec<(Principal, Principal)> = serde_cbor::from_slice(found(
        &c,
        &[b"subnet", subnet.as_slice(), b"canister_ranges"],
    ))
    .unwrap();
    assert!(ranges.iter().any(|(lo, hi)| *lo <= id && id <= *hi));
    assert_eq!(
        found(
            &c,
            &[
                b"subnet",
                subnet.as_slice(),
                b"node",
                node.as_slice(),
                b"public_key"
            ]
        ),
        r.node_public_key_der()
    );
    // The node subtree lists exactly one node, as agents enumerate it.
    match c
        .tree
        .lookup_subtree([b"subnet".as_ref(), subnet.as_slice(), b"node"])
    {
        SubtreeLookupResult::Found(t) => assert_eq!(t.list_paths().len(), 1),
        _ => panic!("no node subtree"),
    }
    // Sharded ranges: /canister_ranges/<subnet>/<shard>.
    match c
        .tree
        .lookup_subtree([b"canister_ranges".as_ref(), subnet.as_slice()])
    {
        SubtreeLookupResult::Found(t) => {
            let paths = t.list_paths();
            assert_eq!(paths.len(), 1);
            let shard: Vec<(Principal, Principal)> = serde_cbor::from_slice(found(
                &c,
                &[
                    b"canister_ranges",
                    subnet.as_slice(),
                    paths[0][0].as_bytes(),
                ],
            ))
            .unwrap();
            assert_eq!(shard, ranges);
        }
        _ => panic!("no canister_ranges subtree"),
    }
}

#[test]
fn absent_paths_are_provably_absent() {
    let (r, id) = setup();
    let empty = r.create_canister();
    let unknown_canister = crate::ids::canister_id(999);
    let cert = r.read_state_certificate(&[
        labels(&[b"request_status", &[7; 32]]),
        labels(&[b"canister", empty.as_slice(), b"module_hash"]),
        labels(&[b"canister", id.as_slice(), b"metadata", b"nope"]),
        labels(&[b"canister", unknown_canister.as_slice(), b"controllers"]),
        labels(&[b"subnet", &[1, 2, 3], b"public_key"]),
        labels(&[b"no_such_top_level"]),
    ]);
    let c = verify(&cert, &r.root_key_der()).unwrap();
    for p in [
        vec![b"request_status".as_ref(), &[7; 32], b"status"],
        vec![b"canister", empty.as_slice(), b"module_hash"],
        vec![b"canister", id.as_slice(), b"metadata", b"nope"],
        vec![b"canister", unknown_canister.as_slice(), b"controllers"],
        vec![b"subnet", &[1, 2, 3], b"public_key"],
        vec![b"no_such_top_level"],
    ] {
        assert_eq!(lookup(&c, &p), LookupResult::Absent, "{p:?}");
    }
    // The empty canister's controllers exist but were not asked for.
    assert_eq!(
        lookup(&c, &[b"canister", empty.as_slice(), b"controllers"]),
        LookupResult::Unknown
    );
}

#[test]
fn tampered_certificates_fail_verification() {
    let (r, id) = setup();
    let cert = r.read_state_certificate(&[labels(&[b"canister", id.as_slice(), b"controllers"])]);
    assert!(verify(&cert, &r.root_key_der()).is_ok());
    // Another replica's root key.
    assert!(verify(&cert, &Replica::with_seed([9; 32]).root_key_der()).is_err());
    // A changed tree: replace the controllers leaf.
    let mut c: Certificate = serde_cbor::from_slice(&cert).unwrap();
    let controllers = found(&c, &[b"canister", id.as_slice(), b"controllers"]).to_vec();
    let mut tampered_tree = serde_cbor::to_vec(&c.tree).unwrap();
    let pos = tampered_tree
        .windows(controllers.len())
        .position(|w| w == controllers.as_slice())
        .unwrap();
    *tampered_tree.get_mut(pos + controllers.len() - 1).unwrap() ^= 1;
    c.tree = serde_cbor::from_slice(&tampered_tree).unwrap();
    let encoded = crate::certificate::encode(&c.tree, &c.signature);
    assert!(verify(&encoded, &r.root_key_der()).is_err());
    // A changed signature.
    let c: Certificate = serde_cbor::from_slice(&cert).unwrap();
    let mut sig = c.signature.clone();
    sig[10] ^= 1;
    assert!(verify(
        &crate::certificate::encode(&c.tree, &sig),
        &r.root_key_der()
    )
    .is_err());
}

#[test]
fn query_data_certificate_is_real() {
    let (r, id) = setup();
    r.update_call(id, Principal::anonymous(), "set_cd", vec![0xcd; 32])
        .unwrap();
    let cert = r
        .query_call(id, Principal::anonymous(), "cert", vec![])
        .unwrap();
    let c = verify(&cert, &r.root_key_der()).unwrap();
    assert_eq!(
        found(&c, &[b"canister", id.as_slice(), b"certified_data"]),
        &[0xcd; 32]
    );
    assert!(leb(found(&c, &[b"time"])) > 0);
    assert_eq!(
        lookup(&c, &[b"canister", id.as_slice(), b"module_hash"]),
        LookupResult::Unknown
    );
}

fn status_in_tree(r: &Replica, rid: &[u8; 32]) -> Option<String> {
    let cert = r.read_state_certificate(&[labels(&[b"request_status", rid])]);
    let c = verify(&cert, &r.root_key_der()).unwrap();
    match c
        .tree
        .lookup_path([b"request_status".as_ref(), rid, b"status"])
    {
        LookupResult::Found(s) => Some(String::from_utf8(s.to_vec()).unwrap()),
        LookupResult::Absent => None,
        other => panic!("status lookup: {other:?}"),
    }
}

#[test]
fn request_status_lifecycle_replied() {
    let (r, id) = setup();
    let sender = Principal::from_slice(&[0xaa; 29]);
    let rid = [1u8; 32];
    assert_eq!(r.request_status(&rid), RequestStatus::Unknown);
    assert_eq!(status_in_tree(&r, &rid), None);
    assert_eq!(r.request_sender(&rid), None);

    r.submit_ingress(rid, sender, id, "echo", b"hi".to_vec())
        .unwrap();
    assert_eq!(r.request_status(&rid), RequestStatus::Received);
    assert_eq!(status_in_tree(&r, &rid).as_deref(), Some("received"));
    assert_eq!(r.request_sender(&rid), Some(sender));

    // Duplicate: no-op (the message is queued once).
    r.submit_ingress(rid, sender, id, "echo", b"other".to_vec())
        .unwrap();
    r.tick();
    assert_eq!(
        r.request_status(&rid),
        RequestStatus::Replied(b"hi".to_vec())
    );
    let cert = r.read_state_certificate(&[labels(&[b"request_status", &rid])]);
    let c = verify(&cert, &r.root_key_der()).unwrap();
    assert_eq!(found(&c, &[b"request_status", &rid, b"status"]), b"replied");
    assert_eq!(found(&c, &[b"request_status", &rid, b"reply"]), b"hi");
    assert_eq!(
        lookup(&c, &[b"request_status", &rid, b"reject_code"]),
        LookupResult::Absent
    );
    // Nothing else ran: the duplicate was not queued.
    r.run_until_idle();
    assert_eq!(
        r.request_status(&rid),
        RequestStatus::Replied(b"hi".to_vec())
    );
    // A second submit after completion is still a no-op.
    r.submit_ingress(rid, sender, id, "fail", vec![]).unwrap();
    assert_eq!(
        r.request_status(&rid),
        RequestStatus::Replied(b"hi".to_vec())
    );
    // The u64 message id API sees the same message.
    let m = r.request_message_id(&rid).unwrap();
    assert_eq!(r.await_call(m), Ok(b"hi".to_vec()));
}

#[test]
fn request_status_lifecycle_rejected_and_processing() {
    let (r, id) = setup();
    let other = r.create_canister();
    r.add_cycles(other, 10 * T);
    r.install_canister(other, wat::parse_str(CANISTER).unwrap(), vec![], None);

    let bad = [2u8; 32];
    r.submit_ingress(bad, Principal::anonymous(), id, "fail", vec![])
        .unwrap();
    r.run_until_idle();
    let RequestStatus::Rejected(rej) = r.request_status(&bad) else {
        panic!("not rejected: {:?}", r.request_status(&bad));
    };
    assert_eq!(rej.reject_code, RejectCode::CanisterError);
    assert_eq!(rej.error_code, "IC0503");
    let cert = r.read_state_certificate(&[labels(&[b"request_status", &bad])]);
    let c = verify(&cert, &r.root_key_der()).unwrap();
    assert_eq!(
        found(&c, &[b"request_status", &bad, b"status"]),
        b"rejected"
    );
    assert_eq!(
        leb(found(&c, &[b"request_status", &bad, b"reject_code"])),
        5
    );
    assert_eq!(
        found(&c, &[b"request_status", &bad, b"error_code"]),
        b"IC0503"
    );
    assert_eq!(
        found(&c, &[b"request_status", &bad, b"reject_message"]),
        rej.reject_message.as_bytes()
    );

    // A relay waits on a downstream call: processing between rounds.
    let relay = [3u8; 32];
    r.submit_ingress(
        relay,
        Principal::anonymous(),
        id,
        "relay",
        other.as_slice().to_vec(),
    )
    .unwrap();
    assert_eq!(status_in_tree(&r, &relay).as_deref(), Some("received"));
    r.tick();
    assert_eq!(r.request_status(&relay), RequestStatus::Processing);
    assert_eq!(status_in_tree(&r, &relay).as_deref(), Some("processing"));
    r.run_until_idle();
    assert_eq!(r.request_status(&relay), RequestStatus::Replied(vec![]));
    assert_eq!(status_in_tree(&r, &relay).as_deref(), Some("replied"));
    // The finished statuses (cached digests) still certify correctly next to each other.
    let cert = r.read_state_certificate(&[
        labels(&[b"request_status", &bad]),
        labels(&[b"request_status", &relay]),
    ]);
    let c = verify(&cert, &r.root_key_der()).unwrap();
    assert_eq!(
        found(&c, &[b"request_status", &bad, b"status"]),
        b"rejected"
    );
    assert_eq!(
        found(&c, &[b"request_status", &relay, b"status"]),
        b"replied"
    );
}

#[test]
fn refused_ingress_is_not_recorded() {
    let (r, id) = setup();
    let rid = [4u8; 32];
    let e = r
        .submit_ingress(rid, Principal::anonymous(), id, "no_such_method", vec![])
        .unwrap_err();
    assert_eq!(e.error_code, "IC0536");
    assert_eq!(r.request_status(&rid), RequestStatus::Unknown);
    assert_eq!(status_in_tree(&r, &rid), None);
}

#[test]
fn management_canister_by_ingress() {
    let (r, id) = setup();
    let rid = [5u8; 32];
    let arg =
        candid::encode_one(ic_management_canister_types::CanisterIdRecord { canister_id: id })
            .unwrap();
    r.submit_ingress(
        rid,
        Principal::anonymous(),
        Principal::management_canister(),
        "canister_status",
        arg,
    )
    .unwrap();
    let RequestStatus::Replied(reply) = r.request_status(&rid) else {
        panic!("{:?}", r.request_status(&rid));
    };
    let status: ic_management_canister_types::CanisterStatusResult =
        candid::decode_one(&reply).unwrap();
    assert_eq!(status.module_hash, r.module_hash(id).map(|h| h.to_vec()));
    assert_eq!(status_in_tree(&r, &rid).as_deref(), Some("replied"));
}

#[test]
fn private_metadata_is_flagged() {
    let (r, id) = setup();
    assert!(r.metadata_is_private(id, b"secret"));
    assert!(!r.metadata_is_private(id, b"candid:service"));
    assert!(!r.metadata_is_private(id, b"absent"));
    let cert = r.read_state_certificate(&[labels(&[b"canister", id.as_slice(), b"metadata"])]);
    let c = verify(&cert, &r.root_key_der()).unwrap();
    assert_eq!(
        found(&c, &[b"canister", id.as_slice(), b"metadata", b"secret"]),
        b"hidden"
    );
}

/// Root digest of a verified read_state certificate for `paths` (pruned forms must keep it).
fn certified_root(r: &Replica, paths: &[Vec<Vec<u8>>]) -> [u8; 32] {
    verify(&r.read_state_certificate(paths), &r.root_key_der())
        .unwrap()
        .tree
        .digest()
}

#[test]
fn pruned_and_full_request_status_certify_the_same_root() {
    let (r, id) = setup();
    let digest = |paths: &[Vec<Vec<u8>>]| certified_root(&r, paths);
    let all = [labels(&[b"request_status"])];
    r.submit_ingress([1; 32], Principal::anonymous(), id, "echo", vec![1])
        .unwrap();
    r.run_until_idle();
    // All final: the pruned form uses the cached /request_status digest.
    let before = digest(&[]);
    assert_eq!(before, digest(&all));
    assert_eq!(before, digest(&[]));
    // A new record invalidates it (same round, so only /request_status differs).
    r.submit_ingress([2; 32], Principal::anonymous(), id, "echo", vec![2])
        .unwrap();
    let after = digest(&[]);
    assert_ne!(before, after);
    assert_eq!(after, digest(&all));
    r.run_until_idle();
    let done = digest(&[]);
    assert_eq!(done, digest(&all));
    assert_eq!(done, digest(&[]));
}

// ---------------------------------------------------------------- retention (`done`, forgotten)

use crate::ingress_api::{FORGET_AFTER_NS, REPLY_RETENTION_NS};
use std::time::Duration;

/// Bytes of replies and rejects the ingress history holds.
fn reply_bytes(r: &Replica) -> usize {
    r.lock()
        .ingress
        .values()
        .map(|e| match e {
            state::IngressState::Done(Ok(b)) => b.len(),
            state::IngressState::Done(Err(e)) => e.reject_message.len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn replies_turn_done_after_the_retention_window_then_are_forgotten() {
    let (r, id) = setup();
    let sender = Principal::from_slice(&[0xaa; 29]);
    let rid = [7u8; 32];
    r.submit_ingress(rid, sender, id, "echo", b"hi".to_vec())
        .unwrap();
    r.tick();
    assert_eq!(
        r.request_status(&rid),
        RequestStatus::Replied(b"hi".to_vec())
    );
    let msg = r.request_message_id(&rid).unwrap();

    // Just inside the window (the tick adds 1 ns): still replied, in the tree too.
    r.advance_time(Duration::from_nanos(REPLY_RETENTION_NS - 2));
    r.tick();
    assert_eq!(
        r.request_status(&rid),
        RequestStatus::Replied(b"hi".to_vec())
    );
    assert_eq!(status_in_tree(&r, &rid).as_deref(), Some("replied"));
    assert_eq!(r.await_call(msg), Ok(b"hi".to_vec()));

    // Past it: done — only the `status` leaf, no reply; the reply bytes are gone.
    r.advance_time(Duration::from_secs(1));
    r.tick();
    assert_eq!(r.request_status(&rid), RequestStatus::Done);
    let cert = r.read_state_certificate(&[labels(&[b"request_status", &rid])]);
    let c = verify(&cert, &r.root_key_der()).unwrap();
    assert_eq!(found(&c, &[b"request_status", &rid, b"status"]), b"done");
    for leaf in [
        b"reply".as_ref(),
        b"reject_code",
        b"reject_message",
        b"error_code",
    ] {
        assert_eq!(
            lookup(&c, &[b"request_status", &rid, leaf]),
            LookupResult::Absent,
            "{leaf:?}"
        );
    }
    assert_eq!(reply_bytes(&r), 0);
    // The sender is still known (read_state access checks keep working while `done`).
    assert_eq!(r.request_sender(&rid), Some(sender));
    // The harness gets a clear reject, not the reply and not a panic.
    let e = r.await_call(msg).unwrap_err();
    assert_eq!(e.error_code, "IC0100");
    assert!(e.reject_message.contains("dropped"), "{e}");
    // A resubmission within the window is still deduplicated: nothing new runs.
    r.submit_ingress(rid, sender, id, "echo", b"again".to_vec())
        .unwrap();
    assert!(!r.has_pending_work());
    assert_eq!(r.request_status(&rid), RequestStatus::Done);

    // Forgotten after FORGET_AFTER_NS: unknown everywhere.
    r.advance_time(Duration::from_nanos(FORGET_AFTER_NS - REPLY_RETENTION_NS));
    r.tick();
    assert_eq!(r.request_status(&rid), RequestStatus::Unknown);
    assert_eq!(status_in_tree(&r, &rid), None);
    assert_eq!(r.request_sender(&rid), None);
    assert!(r.lock().requests.is_empty());
    let e = r.await_call(msg).unwrap_err();
    assert!(e.reject_message.contains("unknown message id"), "{e}");
    assert!(r.lock().ingress.is_empty());
    assert!(r.lock().stats.is_empty());
}

#[test]
fn rejects_turn_done_too() {
    let (r, id) = setup();
    let rid = [8u8; 32];
    r.submit_ingress(rid, Principal::anonymous(), id, "fail", vec![])
        .unwrap();
    r.tick();
    assert!(matches!(r.request_status(&rid), RequestStatus::Rejected(_)));
    r.advance_time(Duration::from_nanos(REPLY_RETENTION_NS));
    r.tick();
    assert_eq!(r.request_status(&rid), RequestStatus::Done);
    assert_eq!(status_in_tree(&r, &rid).as_deref(), Some("done"));
}

#[test]
fn pruning_keeps_the_certified_request_status_caches_consistent() {
    let (r, id) = setup();
    let digest = |paths: &[Vec<Vec<u8>>]| certified_root(&r, paths);
    let all = [labels(&[b"request_status"])];
    let (early, late) = ([1u8; 32], [2u8; 32]);
    r.submit_ingress(early, Principal::anonymous(), id, "echo", vec![1])
        .unwrap();
    r.run_until_idle();
    r.advance_time(Duration::from_secs(180));
    r.submit_ingress(late, Principal::anonymous(), id, "echo", vec![2])
        .unwrap();
    r.run_until_idle();
    // Both final: every record digest and the whole-subtree digest are cached now.
    assert_eq!(digest(&[]), digest(&all));
    let one = [labels(&[b"request_status", &late])];
    assert_eq!(digest(&one), digest(&all));

    // `early` turns done, `late` is still replied. Each form of the certificate (cached
    // /request_status digest, cached per-record digests, everything rebuilt) certifies the same
    // root in the same round: a stale cache would certify `early` as still replied.
    r.advance_time(Duration::from_nanos(REPLY_RETENTION_NS - 180_000_000_000));
    r.tick();
    assert_eq!(r.request_status(&early), RequestStatus::Done);
    assert_eq!(r.request_status(&late), RequestStatus::Replied(vec![2]));
    let cached_whole = digest(&[]);
    let cached_records = digest(&one);
    let rebuilt = digest(&all);
    assert_eq!(cached_whole, rebuilt);
    assert_eq!(cached_records, rebuilt);
    assert_eq!(status_in_tree(&r, &early).as_deref(), Some("done"));
    assert_eq!(status_in_tree(&r, &late).as_deref(), Some("replied"));

    // `early` forgotten, `late` done: the same again (a removal, not only an addition, must
    // invalidate the whole-subtree digest).
    r.advance_time(Duration::from_nanos(FORGET_AFTER_NS - REPLY_RETENTION_NS));
    r.tick();
    assert_eq!(r.request_status(&early), RequestStatus::Unknown);
    assert_eq!(r.request_status(&late), RequestStatus::Done);
    let cached_whole = digest(&[]);
    assert_eq!(cached_whole, digest(&all));
    assert_eq!(digest(&one), digest(&all));
    assert_eq!(status_in_tree(&r, &early), None);
}

#[test]
fn big_replies_are_freed_after_the_window() {
    // Many large replies (a dev server's video Range requests): held while within the window,
    // none held after it, and the history is empty once they are forgotten.
    let (r, id) = setup();
    const N: usize = 24;
    const SIZE: usize = 100_000; // the echo canister's heap is 2 pages
    let mut ids = Vec::new();
    for i in 0..N {
        let arg = vec![i as u8; SIZE];
        if i % 2 == 0 {
            ids.push(
                r.submit_call(id, Principal::anonymous(), "echo", arg)
                    .unwrap(),
            );
        } else {
            let mut rid = [0u8; 32];
            rid[0] = i as u8;
            rid[1] = 0xee;
            r.submit_ingress(rid, Principal::anonymous(), id, "echo", arg)
                .unwrap();
        }
    }
    r.run_until_idle();
    assert_eq!(reply_bytes(&r), N * SIZE);
    assert_eq!(r.lock().retention.replies_kept(), N);
    r.advance_time(Duration::from_nanos(REPLY_RETENTION_NS));
    r.tick();
    assert_eq!(reply_bytes(&r), 0);
    assert_eq!(r.lock().retention.replies_kept(), 0);
    assert_eq!(
        r.lock().ingress.len(),
        N,
        "done entries remain until forgotten"
    );
    for m in &ids {
        assert_eq!(r.await_call(*m).unwrap_err().error_code, "IC0100");
    }
    r.advance_time(Duration::from_nanos(FORGET_AFTER_NS));
    r.tick();
    let s = r.lock();
    assert!(s.ingress.is_empty());
    assert!(s.requests.is_empty());
    assert!(s.stats.is_empty());
}

#[test]
fn update_call_keeps_no_reply() {
    let (r, id) = setup();
    for i in 0..5u8 {
        assert_eq!(
            r.update_call(id, Principal::anonymous(), "echo", vec![i; 1000]),
            Ok(vec![i; 1000])
        );
    }
    assert_eq!(reply_bytes(&r), 0);
    assert!(r.lock().ingress.is_empty());
    assert!(r.lock().stats.is_empty());
    // The retention queue's leftovers are harmless when their time comes.
    r.advance_time(Duration::from_nanos(FORGET_AFTER_NS));
    r.tick();
    assert_eq!(r.lock().retention.replies_kept(), 0);
}

#[test]
fn a_clock_set_back_delays_pruning_but_never_loses_a_fresh_reply() {
    let (r, id) = setup();
    let start = r.get_time();
    let m = r
        .submit_call(id, Principal::anonymous(), "echo", vec![1])
        .unwrap();
    r.run_until_idle();
    // Back one hour: the reply was final "in the future"; the next message is final earlier.
    r.set_time(start - Duration::from_secs(3600));
    let m2 = r
        .submit_call(id, Principal::anonymous(), "echo", vec![2])
        .unwrap();
    r.run_until_idle();
    r.advance_time(Duration::from_nanos(REPLY_RETENTION_NS));
    r.tick();
    // m2 is due; m is not (it became final an hour "later").
    assert_eq!(r.await_call(m2).unwrap_err().error_code, "IC0100");
    assert_eq!(r.await_call(m), Ok(vec![1]));
}
