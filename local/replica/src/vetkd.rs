//! vetKD: the management canister's `vetkd_public_key` and `vetkd_derive_key`, with the IC's
//! published BLS12-381 scheme, so that a key derived here decrypts and verifies with the same
//! client code (`ic-vetkeys`, `@dfinity/vetkeys`) as one derived on the IC.
//!
//! Why real cryptography: canvid's encrypted videos are decrypted by clients with the official
//! library; a fake key would let the product's tests pass against something the IC never answers.
//!
//! The scheme, as the IC implements it (and as `ic-vetkeys` 0.9 `MasterPublicKey::
//! derive_canister_key`, `DerivedPublicKey::derive_sub_key` and `EncryptedVetKey::
//! decrypt_and_verify` check it):
//!
//! * **Master key** per key id: a secret scalar `s`, public key `mpk = s·g2` (G2, 96 bytes
//!   compressed). On the IC it is shared between a subnet's nodes and nobody holds `s`; here it
//!   is derived from the replica's seed ([`crate::keys::Keys::seed`], which a snapshot stores), so
//!   a restarted replica keeps every vetKD key, as the IC does.
//! * **Canister key**: `t1 = H(len‖mpk‖len‖canister_id, "ic-vetkd-bls12-381-g2-canister-id")`,
//!   `dpk1 = mpk + t1·g2` (secret `s + t1`), where `H` is hash-to-field (ExpandMsgXmd SHA-256)
//!   into the scalar field and `len` is a big-endian u64 length prefix.
//! * **Context**: for a non-empty context, `t2 = H(len‖dpk1‖len‖context,
//!   "ic-vetkd-bls12-381-g2-context")`, `dpk = dpk1 + t2·g2`; an empty context leaves `dpk1`.
//!   `vetkd_public_key` answers `dpk` (compressed).
//! * **Key**: the vetKey is the augmented BLS signature of `input` under `dpk`:
//!   `k = (s + t1 + t2)·H_G1(dpk‖input)` with the DST `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_AUG_`.
//! * **Encryption** to the transport public key `tpk` (G1, 48 bytes): with a fresh scalar `r`,
//!   `c1 = r·g1`, `c2 = r·g2`, `c3 = r·tpk + k`; `encrypted_key = c1‖c2‖c3` (192 bytes). The
//!   client checks `e(c1, g2) = e(g1, c2)`, recovers `k = c3 − tsk·c1` and verifies it against
//!   `dpk`. On the IC each node adds its own randomness; here `r` is derived from a secret of the
//!   seed and the replica's randomness counter (the one `raw_rand` uses), so runs replay.

use candid::Principal;
use ic_bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve, HashToField};
use ic_bls12_381::{G1Affine, G1Projective, G2Affine, G2Projective, Scalar};

/// The key names the replica knows, as PocketIC 10 does (its threshold keys on an II or fiduciary
/// subnet: `key_1`, `test_key_1`, `dfx_test_key`; the IC itself has `key_1` and `test_key_1`).
pub const KEY_NAMES: [&str; 3] = ["key_1", "test_key_1", "dfx_test_key"];

const CANISTER_DST: &str = "ic-vetkd-bls12-381-g2-canister-id";
const CONTEXT_DST: &str = "ic-vetkd-bls12-381-g2-context";
const AUGMENTED_BLS_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_AUG_";
/// Domain of the replica's own secrets (not part of the IC's scheme: on the IC the master key
/// comes from a distributed key generation).
const MASTER_DST: &str = "canvid-replica/vetkd/master-key";
const NONCE_DST: &str = "canvid-replica/vetkd/encryption-randomness";

fn hash_to_scalar(input: &[u8], dst: &str) -> Scalar {
    let mut s = [Scalar::zero()];
    <Scalar as HashToField>::hash_to_field::<ExpandMsgXmd<sha2::Sha256>>(
        input,
        dst.as_bytes(),
        &mut s,
    );
    s[0]
}

/// `H(len‖a‖len‖b, dst)`: the IC's hash of two inputs to a scalar.
fn hash_two_to_scalar(a: &[u8], b: &[u8], dst: &str) -> Scalar {
    let mut m = Vec::with_capacity(16 + a.len() + b.len());
    for part in [a, b] {
        m.extend_from_slice(&(part.len() as u64).to_be_bytes());
        m.extend_from_slice(part);
    }
    hash_to_scalar(&m, dst)
}

/// A key (secret scalar and its public G2 point) at one step of the derivation.
#[derive(Clone)]
pub struct DerivedKey {
    secret: Scalar,
    public: G2Affine,
}

impl DerivedKey {
    /// The master key `name` of the replica whose seed is `seed`.
    pub fn master(seed: &[u8; 32], name: &str) -> DerivedKey {
        let secret = hash_two_to_scalar(seed, name.as_bytes(), MASTER_DST);
        DerivedKey {
            secret,
            public: G2Affine::from(G2Affine::generator() * secret),
        }
    }

    /// The key offset by `t`: secret `s + t`, public `pk + t·g2`.
    fn offset(&self, t: Scalar) -> DerivedKey {
        DerivedKey {
            secret: self.secret + t,
            public: G2Affine::from(G2Projective::from(self.public) + G2Affine::generator() * t),
        }
    }

    /// The canister's key (first derivation step).
    pub fn canister(&self, canister: Principal) -> DerivedKey {
        self.offset(hash_two_to_scalar(
            &self.public.to_compressed(),
            canister.as_slice(),
            CANISTER_DST,
        ))
    }

    /// The key for `context` (second step; an empty context is the canister key itself).
    pub fn context(&self, context: &[u8]) -> DerivedKey {
        if context.is_empty() {
            return self.clone();
        }
        self.offset(hash_two_to_scalar(
            &self.public.to_compressed(),
            context,
            CONTEXT_DST,
        ))
    }

    /// The public key, compressed G2 (what `vetkd_public_key` answers).
    pub fn public_key(&self) -> [u8; 96] {
        self.public.to_compressed()
    }

    /// The vetKey of `input`: the augmented BLS signature under this key.
    fn vetkey(&self, input: &[u8]) -> G1Affine {
        let mut m = Vec::with_capacity(96 + input.len());
        m.extend_from_slice(&self.public.to_compressed());
        m.extend_from_slice(input);
        let h = <G1Projective as HashToCurve<ExpandMsgXmd<sha2::Sha256>>>::hash_to_curve(
            m,
            AUGMENTED_BLS_DST,
        );
        G1Affine::from(h * self.secret)
    }

    /// `vetkd_derive_key`'s `encrypted_key`: the vetKey of `input` encrypted to `transport`
    /// (a valid compressed G1 point) with the randomness `r`.
    pub fn encrypted_key(&self, input: &[u8], transport: &G1Affine, r: Scalar) -> Vec<u8> {
        let k = self.vetkey(input);
        let c1 = G1Affine::from(G1Affine::generator() * r);
        let c2 = G2Affine::from(G2Affine::generator() * r);
        let c3 = G1Affine::from(G1Projective::from(k) + transport * r);
        let mut out = Vec::with_capacity(192);
        out.extend_from_slice(&c1.to_compressed());
        out.extend_from_slice(&c2.to_compressed());
        out.extend_from_slice(&c3.to_compressed());
        out
    }
}

/// A transport public key as the IC accepts it: a compressed G1 point (48 bytes) in the
/// prime-order subgroup. `None` for anything else.
pub fn transport_key(bytes: &[u8]) -> Option<G1Affine> {
    let b: [u8; 48] = bytes.try_into().ok()?;
    G1Affine::from_compressed(&b).into_option()
}

/// The encryption randomness of one `vetkd_derive_key`: unpredictable without the seed, and
/// different for every call (`counter`), as the IC's fresh randomness is.
pub fn encryption_randomness(seed: &[u8; 32], counter: u64, request: &[&[u8]]) -> Scalar {
    let mut m = Vec::new();
    m.extend_from_slice(seed);
    m.extend_from_slice(&counter.to_be_bytes());
    for part in request {
        m.extend_from_slice(&(part.len() as u64).to_be_bytes());
        m.extend_from_slice(part);
    }
    hash_to_scalar(&m, NONCE_DST)
}

/// The scheme against the official client library (`ic-vetkeys`), which is what verifies keys
/// derived on the IC: a key derived here that it accepts is one the product's clients accept.
#[cfg(test)]
mod tests {
    use super::*;

    fn canister(n: u8) -> Principal {
        Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, n, 1, 1])
    }

    fn client_derived(mpk: &[u8; 96], c: Principal, context: &[u8]) -> Vec<u8> {
        ic_vetkeys::MasterPublicKey::deserialize(mpk)
            .expect("a valid G2 point")
            .derive_canister_key(c.as_slice())
            .derive_sub_key(context)
            .serialize()
    }

    #[test]
    fn public_key_derivation_is_the_client_librarys() {
        let seed = [5; 32];
        for name in KEY_NAMES {
            let master = DerivedKey::master(&seed, name);
            for context in [&b""[..], b"ctx", b"another context"] {
                for c in [canister(1), canister(2)] {
                    assert_eq!(
                        master.canister(c).context(context).public_key().to_vec(),
                        client_derived(&master.public_key(), c, context),
                        "{name} {c} {context:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn master_keys_are_per_seed_and_name_and_deterministic() {
        let a = DerivedKey::master(&[1; 32], "key_1").public_key();
        assert_eq!(a, DerivedKey::master(&[1; 32], "key_1").public_key());
        assert_ne!(a, DerivedKey::master(&[2; 32], "key_1").public_key());
        assert_ne!(a, DerivedKey::master(&[1; 32], "test_key_1").public_key());
        // A master key is not a canister key, nor a canister key a context key.
        let m = DerivedKey::master(&[1; 32], "key_1");
        assert_ne!(m.public_key(), m.canister(canister(1)).public_key());
        assert_ne!(
            m.canister(canister(1)).public_key(),
            m.canister(canister(1)).context(b"x").public_key()
        );
        assert_eq!(
            m.canister(canister(1)).public_key(),
            m.canister(canister(1)).context(b"").public_key()
        );
    }

    #[test]
    fn encrypted_key_decrypts_and_verifies_with_the_client_library() {
        let key = DerivedKey::master(&[9; 32], "test_key_1")
            .canister(canister(3))
            .context(b"videos");
        let dpk = ic_vetkeys::DerivedPublicKey::deserialize(&key.public_key()).unwrap();
        let tsk = ic_vetkeys::TransportSecretKey::from_seed(vec![4; 32]).unwrap();
        let tpk = transport_key(&tsk.public_key()).expect("the client's transport key");
        let seal = |input: &[u8], counter: u64| {
            let r = encryption_randomness(&[9; 32], counter, &[input]);
            ic_vetkeys::EncryptedVetKey::deserialize(&key.encrypted_key(input, &tpk, r)).unwrap()
        };
        let k1 = seal(b"video-1", 1)
            .decrypt_and_verify(&tsk, &dpk, b"video-1")
            .expect("decrypts and verifies");
        // Other randomness: another ciphertext of the same key.
        let again = seal(b"video-1", 2);
        assert_ne!(again.serialize(), seal(b"video-1", 1).serialize());
        let k1b = again.decrypt_and_verify(&tsk, &dpk, b"video-1").unwrap();
        assert_eq!(k1.signature_bytes(), k1b.signature_bytes());
        assert!(ic_vetkeys::verify_bls_signature(
            &dpk,
            b"video-1",
            k1.signature_bytes()
        ));
        // Another input: another key, which does not verify as the first input's.
        let k2 = seal(b"video-2", 3)
            .decrypt_and_verify(&tsk, &dpk, b"video-2")
            .unwrap();
        assert_ne!(k1.signature_bytes(), k2.signature_bytes());
        assert!(seal(b"video-2", 4)
            .decrypt_and_verify(&tsk, &dpk, b"video-1")
            .is_err());
        // Another transport secret key cannot decrypt it.
        let other = ic_vetkeys::TransportSecretKey::from_seed(vec![5; 32]).unwrap();
        assert!(seal(b"video-1", 5)
            .decrypt_and_verify(&other, &dpk, b"video-1")
            .is_err());
        // Another canister's (or context's) public key does not verify it.
        let elsewhere = DerivedKey::master(&[9; 32], "test_key_1")
            .canister(canister(4))
            .context(b"videos");
        let dpk4 = ic_vetkeys::DerivedPublicKey::deserialize(&elsewhere.public_key()).unwrap();
        assert!(seal(b"video-1", 6)
            .decrypt_and_verify(&tsk, &dpk4, b"video-1")
            .is_err());
    }

    #[test]
    fn transport_keys_must_be_compressed_g1_points() {
        let tsk = ic_vetkeys::TransportSecretKey::from_seed(vec![4; 32]).unwrap();
        let good = tsk.public_key();
        assert!(transport_key(&good).is_some());
        assert!(transport_key(&good[..47]).is_none());
        assert!(transport_key(&[good.clone(), vec![0]].concat()).is_none());
        assert!(transport_key(&[1; 48]).is_none());
        assert!(transport_key(&[]).is_none());
    }
}
