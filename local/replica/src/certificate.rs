//! Certificates: the state tree ([`crate::state_tree`]) pruned to the requested paths and signed
//! with the root key ([`crate::keys`]), as `read_state` returns them and as non-replicated queries
//! see them through `ic0.data_certificate_copy`.
//!
//! A certificate is the CBOR map `{tree, signature}` of the interface specification, tagged with
//! the self-describing CBOR tag 55799, with no `delegation` (this replica is one subnet that
//! holds the root key, like the IC's NNS subnet). The signature is BLS12-381 (min-sig) over
//! `\x0Dic-state-root` ++ the tree's root hash, so agents verify it with the root key they fetch
//! from `/api/v2/status` (ic-agent's `Agent::verify`, `@icp-sdk/core`'s `Certificate.verify`).
//!
//! A query's data certificate reveals `/time` and `/canister/<id>/certified_data` and prunes the
//! rest, as on the IC, so canisters and clients look up their certified data as on the IC.

use candid::Principal;
use ic_certification::HashTree;
use serde::Serialize;

use crate::state::State;
use crate::state_tree::{witness, Paths};

#[derive(Serialize)]
struct Certificate<'a> {
    tree: &'a HashTree,
    #[serde(with = "serde_bytes")]
    signature: &'a [u8],
}

/// CBOR encoding (self-describe tag 55799) of `{tree, signature}`.
pub fn encode(tree: &HashTree, signature: &[u8]) -> Vec<u8> {
    let mut ser = serde_cbor::Serializer::new(Vec::new());
    ser.self_describe().expect("writing to a Vec cannot fail");
    Certificate { tree, signature }
        .serialize(&mut ser)
        .expect("serializing a certificate to a Vec cannot fail");
    ser.into_inner()
}

/// What a canister's data certificate depends on (besides the rest of the state, which it prunes).
#[derive(Clone, PartialEq, Eq)]
struct DataCertificateKey {
    seed: [u8; 32],
    time: u64,
    certified_data: Vec<u8>,
}

/// A data certificate kept for reuse (see [`State::data_certificate`]).
#[derive(Clone)]
pub struct CachedDataCertificate {
    key: DataCertificateKey,
    certificate: Vec<u8>,
}

impl State {
    /// The signed certificate of the state tree pruned to `paths` (`/time` always included, as
    /// the spec requires of read_state responses).
    pub fn certificate(&mut self, paths: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let mut p = Paths::from_paths(paths);
        p.insert(&[b"time".to_vec()]);
        let tree = self.state_tree(&p);
        let witness = witness(&tree, &p);
        let signature = self.keys.sign_state_root(&witness.digest());
        encode(&witness, &signature)
    }

    /// The data certificate a non-replicated query of `canister` sees.
    ///
    /// Building the state tree and signing it costs milliseconds, and every non-replicated query
    /// needs one, so the last certificate per canister is reused while the key, the time and the
    /// canister's certified data are unchanged. What else changed meanwhile (request statuses of
    /// new ingress messages) is pruned from it anyway; it remains a signed certificate of a
    /// consistent state with the same time — as on the IC, where queries see the state certified
    /// at the end of the last round, not a fresh signature per query.
    pub fn data_certificate(&mut self, canister: Principal) -> Vec<u8> {
        let certified_data = self
            .canisters
            .get(&canister)
            .map(|c| c.ctx().certified_data.clone())
            .unwrap_or_default();
        let key = DataCertificateKey {
            seed: self.keys.seed(),
            time: self.state_time,
            certified_data,
        };
        if let Some(cached) = self.data_certs.get(&canister) {
            if cached.key == key {
                return cached.certificate.clone();
            }
        }
        let certificate = self.certificate(&[vec![
            b"canister".to_vec(),
            canister.as_slice().to_vec(),
            b"certified_data".to_vec(),
        ]]);
        self.data_certs.insert(
            canister,
            CachedDataCertificate {
                key,
                certificate: certificate.clone(),
            },
        );
        certificate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::STATE_ROOT_DOMAIN;
    use ic_certification::LookupResult;

    #[derive(serde::Deserialize)]
    struct Decoded {
        tree: HashTree,
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
        delegation: Option<serde_cbor::Value>,
    }

    #[test]
    fn data_certificate_is_reused_until_time_key_or_certified_data_change() {
        let mut s = State::new();
        s.keys = crate::keys::Keys::from_seed([5; 32]);
        let id = s.new_canister(vec![Principal::anonymous()], 0);
        s.state_time = 300;
        let first = s.data_certificate(id);
        assert_eq!(s.data_certificate(id), first);
        s.canisters.get_mut(&id).unwrap().ctx_mut().certified_data = b"new".to_vec();
        let second = s.data_certificate(id);
        assert_ne!(second, first);
        s.state_time = 301;
        let third = s.data_certificate(id);
        assert_ne!(third, second);
        s.keys = crate::keys::Keys::from_seed([6; 32]);
        assert_ne!(s.data_certificate(id), third);
    }

    #[test]
    fn data_certificate_is_signed_and_reveals_certified_data_and_time() {
        let mut s = State::new();
        s.keys = crate::keys::Keys::from_seed([5; 32]);
        let id = s.new_canister(vec![Principal::anonymous()], 0);
        s.canisters.get_mut(&id).unwrap().ctx_mut().certified_data = b"hello".to_vec();
        s.state_time = 300;
        let cert = s.data_certificate(id);
        assert_eq!(&cert[..3], &[0xd9, 0xd9, 0xf7]);
        let d: Decoded = serde_cbor::from_slice(&cert).unwrap();
        assert!(d.delegation.is_none());
        assert_eq!(d.signature.len(), 48);
        assert_eq!(
            d.tree
                .lookup_path([b"canister".as_ref(), id.as_slice(), b"certified_data"]),
            LookupResult::Found(b"hello")
        );
        assert_eq!(
            d.tree.lookup_path([b"time".as_ref()]),
            LookupResult::Found(&[0xac, 0x02])
        );
        // Everything else is pruned.
        assert_eq!(
            d.tree
                .lookup_path([b"canister".as_ref(), id.as_slice(), b"controllers"]),
            LookupResult::Unknown
        );
        let mut msg = STATE_ROOT_DOMAIN.to_vec();
        msg.extend_from_slice(&d.tree.digest());
        assert!(ic_verify_bls_signature::verify_bls_signature(
            &d.signature,
            &msg,
            &s.keys.root_public_key()
        )
        .is_ok());
    }
}
