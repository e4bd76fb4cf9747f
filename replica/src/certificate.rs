//! Data certificates for `ic0.data_certificate_copy` in non-replicated queries.
//!
//! The certificate is the CBOR map `{tree, signature}` of the interface specification (tagged with
//! the self-describing CBOR tag 55799). Its hash tree holds `/time` (LEB128 nanoseconds) and
//! `/canister/<canister id>/certified_data`, so canisters and clients can look up their
//! certified data exactly as on the IC (`ic-certification`'s `HashTree::lookup_path`).
//!
//! **Signature: placeholder.** No well-kept BLS12-381 crate is available to this build, so the
//! `signature` field holds 48 bytes derived with SHA-256 from the domain separator
//! `\x0Dic-state-root` and the tree's root hash. It has the right length and changes with the
//! tree, but it is *not* a BLS signature: a client that verifies certificates against a root key
//! must skip verification (as with a local replica whose root key is untrusted).

use candid::Principal;
use ic_certification::{fork, label, leaf, HashTree};
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Serialize)]
struct Certificate<'a> {
    tree: &'a HashTree,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

fn leb128(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// The hash tree certified for `canister` at `time`.
pub fn tree(canister: Principal, certified_data: &[u8], time: u64) -> HashTree {
    fork(
        label(
            b"canister".to_vec(),
            label(
                canister.as_slice().to_vec(),
                label(b"certified_data".to_vec(), leaf(certified_data.to_vec())),
            ),
        ),
        label(b"time".to_vec(), leaf(leb128(time))),
    )
}

/// Placeholder signature (see the module docs).
fn placeholder_signature(root: &[u8; 32]) -> Vec<u8> {
    let mut msg = b"\x0Dic-state-root".to_vec();
    msg.extend_from_slice(root);
    let a = Sha256::digest(&msg);
    let b = Sha256::digest(a);
    let mut sig = a.to_vec();
    sig.extend_from_slice(&b[..16]);
    sig
}

/// The CBOR-encoded certificate.
pub fn certificate(canister: Principal, certified_data: &[u8], time: u64) -> Vec<u8> {
    let tree = tree(canister, certified_data, time);
    let signature = placeholder_signature(&tree.digest());
    let mut ser = serde_cbor::Serializer::new(Vec::new());
    ser.self_describe().expect("writing to a Vec cannot fail");
    Certificate {
        tree: &tree,
        signature,
    }
    .serialize(&mut ser)
    .expect("serializing a certificate to a Vec cannot fail");
    ser.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_certification::LookupResult;

    #[test]
    fn tree_contains_certified_data_and_time() {
        let id = crate::ids::canister_id(7);
        let t = tree(id, b"hello", 300);
        match t.lookup_path([b"canister".as_ref(), id.as_slice(), b"certified_data"]) {
            LookupResult::Found(v) => assert_eq!(v, b"hello"),
            _ => panic!("certified_data not found"),
        }
        match t.lookup_path([b"time".as_ref()]) {
            LookupResult::Found(v) => assert_eq!(v, &[0xac, 0x02]),
            _ => panic!("time not found"),
        }
    }

    #[test]
    fn certificate_is_tagged_cbor_with_tree_and_signature() {
        let cert = certificate(crate::ids::canister_id(1), b"x", 5);
        assert_eq!(&cert[..3], &[0xd9, 0xd9, 0xf7]);
        let v: serde_cbor::Value = serde_cbor::from_slice(&cert).unwrap();
        let serde_cbor::Value::Map(m) = v else {
            panic!("not a map")
        };
        assert!(m.contains_key(&serde_cbor::Value::Text("tree".into())));
        match m.get(&serde_cbor::Value::Text("signature".into())) {
            Some(serde_cbor::Value::Bytes(b)) => assert_eq!(b.len(), 48),
            _ => panic!("no signature"),
        }
    }

    #[test]
    fn leb128_encoding() {
        assert_eq!(leb128(0), vec![0]);
        assert_eq!(leb128(127), vec![127]);
        assert_eq!(leb128(128), vec![0x80, 1]);
    }
}
