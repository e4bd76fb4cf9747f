//! The replica's keys: the subnet's BLS12-381 root key, which signs certificates, and one node's
//! Ed25519 key, which signs query responses.
//!
//! Both are derived from one 32-byte seed, so a snapshot only stores the seed ([`Keys::seed`]) and
//! a restarted replica keeps the root key that agents fetched (and may have pinned).
//!
//! * **Root key** — the IC's certificate scheme, BLS12-381 "min-sig": public key in G2 (96 bytes
//!   compressed), signature in G1 (48 bytes compressed), hash-to-curve with the ciphersuite's DST
//!   `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_` (the one `ic-verify-bls-signature`, used by
//!   ic-agent, and `@icp-sdk/core` verify with). A certificate signs `\x0Dic-state-root` ++ the
//!   root hash of its tree. The secret key is the IETF `KeyGen` of the seed with the key info
//!   `canvid-replica/root-key/bls12-381`.
//! * **Root key DER** — what `/api/v2/status` reports and `/subnet/<id>/public_key` certifies: the
//!   37-byte prefix (SubjectPublicKeyInfo with the IC's BLS12-381 G2 algorithm OIDs) ++ 96 bytes.
//!   ic-agent's `extract_der` and `@icp-sdk/core`'s `extractDER` require exactly this prefix.
//! * **Node key** — Ed25519 with the secret key SHA-256(`canvid-replica/node-key/ed25519` ++
//!   seed); DER is RFC 8410's 12-byte prefix ++ 32 bytes (44 bytes, what agents require).
//! * **Ids** — the subnet id is the self-authenticating principal of the root key DER (what agents
//!   assume when a certificate carries no delegation: ic-agent `fetch_subnet_by_canister`,
//!   `@icp-sdk/core` `getSubnetIdFromCertificate`); the node id is the self-authenticating
//!   principal of the node key DER.

use std::sync::Mutex;

use candid::Principal;
use sha2::{Digest, Sha256};

/// DER prefix of a BLS12-381 G2 public key as the IC encodes it (SubjectPublicKeyInfo with
/// algorithm OID 1.3.6.1.4.1.44668.5.3.1.2.1 and curve OID 1.3.6.1.4.1.44668.5.3.2.1).
pub const BLS_DER_PREFIX: [u8; 37] = [
    0x30, 0x81, 0x82, 0x30, 0x1d, 0x06, 0x0d, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05,
    0x03, 0x01, 0x02, 0x01, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03,
    0x02, 0x01, 0x03, 0x61, 0x00,
];

/// Hash-to-curve domain separation tag of the IC's BLS signatures (G1, SHA-256, SSWU, random oracle).
pub const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";

/// Domain separator of the message a certificate signs (length byte 13 + "ic-state-root").
pub const STATE_ROOT_DOMAIN: &[u8] = b"\x0Dic-state-root";

const ROOT_KEY_INFO: &[u8] = b"canvid-replica/root-key/bls12-381";
const NODE_KEY_DOMAIN: &[u8] = b"canvid-replica/node-key/ed25519";

/// The root (subnet) key and the node key, all derived from one seed.
pub struct Keys {
    seed: [u8; 32],
    root_secret: blst::min_sig::SecretKey,
    root_public: [u8; 96],
    node_secret: ic_ed25519::PrivateKey,
    /// The last root hash signed and its signature: queries and read_state within one round sign
    /// the same tree (BLS signing costs ~1 ms; a streamed video asks for many certificates).
    last_signature: Mutex<Option<([u8; 32], [u8; 48])>>,
}

impl Keys {
    /// Every key derived deterministically from `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Keys {
        // KeyGen needs at least 32 bytes of input keying material: the seed is exactly that.
        let root_secret = blst::min_sig::SecretKey::key_gen(&seed, ROOT_KEY_INFO)
            .expect("KeyGen accepts 32 bytes of keying material");
        let root_public = root_secret.sk_to_pk().compress();
        let mut h = Sha256::new();
        h.update(NODE_KEY_DOMAIN);
        h.update(seed);
        let node_seed: [u8; 32] = h.finalize().into();
        Keys {
            seed,
            root_secret,
            root_public,
            node_secret: ic_ed25519::PrivateKey::deserialize_raw_32(&node_seed),
            last_signature: Mutex::new(None),
        }
    }

    /// A fresh seed from the operating system's randomness.
    pub fn generate() -> Keys {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).expect("the operating system provides randomness");
        Keys::from_seed(seed)
    }

    /// The seed every key derives from (what a snapshot stores).
    pub fn seed(&self) -> [u8; 32] {
        self.seed
    }

    /// The root public key, compressed G2 (96 bytes).
    #[cfg(test)]
    pub fn root_public_key(&self) -> [u8; 96] {
        self.root_public
    }

    /// DER-encoded root public key (133 bytes).
    pub fn root_key_der(&self) -> Vec<u8> {
        let mut der = BLS_DER_PREFIX.to_vec();
        der.extend_from_slice(&self.root_public);
        der
    }

    /// The subnet id: self-authenticating principal of the root key DER.
    pub fn subnet_id(&self) -> Principal {
        Principal::self_authenticating(self.root_key_der())
    }

    /// BLS signature (compressed G1, 48 bytes) of a certificate whose tree has root hash `root`.
    pub fn sign_state_root(&self, root: &[u8; 32]) -> [u8; 48] {
        let mut last = self
            .last_signature
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((r, sig)) = *last {
            if &r == root {
                return sig;
            }
        }
        let mut msg = STATE_ROOT_DOMAIN.to_vec();
        msg.extend_from_slice(root);
        let sig = self.root_secret.sign(&msg, BLS_DST, &[]).compress();
        *last = Some((*root, sig));
        sig
    }

    /// DER-encoded Ed25519 node public key (44 bytes).
    pub fn node_public_key_der(&self) -> Vec<u8> {
        self.node_secret.public_key().serialize_rfc8410_der()
    }

    /// The node id: self-authenticating principal of the node key DER.
    pub fn node_id(&self) -> Principal {
        Principal::self_authenticating(self.node_public_key_der())
    }

    /// Ed25519 signature of `msg` with the node key (the caller adds any domain separator).
    pub fn node_sign(&self, msg: &[u8]) -> [u8; 64] {
        self.node_secret.sign_message(msg)
    }
}

impl Clone for Keys {
    fn clone(&self) -> Self {
        Keys::from_seed(self.seed)
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed: it is every secret key.
        f.debug_struct("Keys")
            .field("subnet_id", &self.subnet_id().to_text())
            .field("node_id", &self.node_id().to_text())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_per_seed_and_differ_between_seeds() {
        let a = Keys::from_seed([7; 32]);
        let b = Keys::from_seed([7; 32]);
        let c = Keys::from_seed([8; 32]);
        assert_eq!(a.root_key_der(), b.root_key_der());
        assert_eq!(a.node_public_key_der(), b.node_public_key_der());
        assert_ne!(a.root_key_der(), c.root_key_der());
        assert_ne!(a.node_public_key_der(), c.node_public_key_der());
        assert_eq!(a.seed(), [7; 32]);
        assert_eq!(Keys::from_seed(a.seed()).subnet_id(), a.subnet_id());
        assert_ne!(Keys::generate().seed(), Keys::generate().seed());
    }

    #[test]
    fn der_encodings_have_the_lengths_and_prefixes_agents_require() {
        let k = Keys::from_seed([1; 32]);
        let der = k.root_key_der();
        assert_eq!(der.len(), 133);
        // The prefix as spelled out by ic-agent's response_authentication::DER_PREFIX.
        assert_eq!(
            hex::encode(&der[..37]),
            "308182301d060d2b0601040182dc7c0503010201060c2b0601040182dc7c05030201036100"
        );
        let node = k.node_public_key_der();
        assert_eq!(node.len(), 44);
        assert_eq!(&node[..12], &[48, 42, 48, 5, 6, 3, 43, 101, 112, 3, 33, 0]);
        // Self-authenticating ids: SHA-224 of the DER ++ 0x02.
        assert_eq!(k.subnet_id().as_slice().len(), 29);
        assert_eq!(k.subnet_id().as_slice()[28], 2);
        assert_eq!(k.node_id(), Principal::self_authenticating(&node));
    }

    #[test]
    fn root_signature_verifies_with_the_ic_verifier() {
        let k = Keys::from_seed([2; 32]);
        let root = [0xab; 32];
        let sig = k.sign_state_root(&root);
        let mut msg = STATE_ROOT_DOMAIN.to_vec();
        msg.extend_from_slice(&root);
        assert!(
            ic_verify_bls_signature::verify_bls_signature(&sig, &msg, &k.root_public_key()).is_ok()
        );
        // Cached signature is the same; another root is signed afresh.
        assert_eq!(k.sign_state_root(&root), sig);
        let other = k.sign_state_root(&[0xac; 32]);
        assert_ne!(other, sig);
        assert!(
            ic_verify_bls_signature::verify_bls_signature(&other, &msg, &k.root_public_key())
                .is_err()
        );
        // Another key does not verify.
        let k2 = Keys::from_seed([3; 32]);
        assert!(
            ic_verify_bls_signature::verify_bls_signature(&sig, &msg, &k2.root_public_key())
                .is_err()
        );
    }

    #[test]
    fn node_signature_verifies() {
        let k = Keys::from_seed([4; 32]);
        let sig = k.node_sign(b"\x0Bic-response-hash");
        let pk = ic_ed25519::PublicKey::deserialize_rfc8410_der(&k.node_public_key_der()).unwrap();
        assert!(pk.verify_signature(b"\x0Bic-response-hash", &sig).is_ok());
        assert!(pk.verify_signature(b"other", &sig).is_err());
    }
}
