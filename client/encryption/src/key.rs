//! From `video_key`'s answer to the AES key: the transport key pair, the checks of the answer and
//! the HKDF step.

use candid::Principal;
use canvid_types::encryption::{aes_key_info, vetkd_input, VideoKey, VETKD_CONTEXT};
use hkdf::Hkdf;
use ic_vetkeys::{DerivedPublicKey, EncryptedVetKey, TransportSecretKey};
use sha2::Sha256;

/// Why an answer of `video_key` did not yield a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the system's random number generator failed: {0}")]
    Randomness(getrandom::Error),
    #[error("the key was derived for another vetKD context than canvid's video keys")]
    WrongContext,
    #[error("the key was derived for another input than the video key of epoch {epoch}")]
    WrongInput { epoch: u32 },
    #[error("the canister's vetKD public key is not a valid G2 point")]
    InvalidPublicKey,
    #[error("the encrypted key does not decode: {0}")]
    InvalidEncryptedKey(String),
    /// The key does not decrypt with this transport key, or is not the vetKey of the input under
    /// the public key: a key not meant for this caller, or a forged answer.
    #[error("the encrypted key does not verify: {0}")]
    Verification(String),
}

/// The AES-256 key of a video: `HKDF-SHA256(ikm = vetKey bytes, salt = "", info =
/// aes_key_info(canister, epoch))`.
pub fn aes_key(vetkey: &[u8], canister: &Principal, epoch: u32) -> [u8; 32] {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&[]), vetkey)
        .expand(&aes_key_info(canister, epoch), &mut key)
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32.
        .expect("HKDF can produce 32 bytes");
    key
}

/// The caller's vetKD transport key pair: `video_key` encrypts the vetKey to its public half.
/// Fresh for each request; the secret half never leaves the process.
pub struct TransportKey {
    secret: TransportSecretKey,
}

impl TransportKey {
    /// A key pair from 32 random bytes of the operating system.
    pub fn random() -> Result<TransportKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(KeyError::Randomness)?;
        Ok(TransportKey::from_seed(seed))
    }

    /// A key pair from a seed (tests: deterministic keys).
    pub fn from_seed(seed: [u8; 32]) -> TransportKey {
        let secret = TransportSecretKey::from_seed(seed.to_vec())
            // `from_seed` only refuses seeds that are not 32 bytes.
            .expect("a 32-byte seed");
        TransportKey { secret }
    }

    /// `VideoKeyArgs::transport_public_key` (48 bytes, compressed G1).
    pub fn public_key(&self) -> Vec<u8> {
        self.secret.public_key()
    }

    /// The vetKey in `answer`, checked: derived for canvid's context and the video key input of
    /// `answer.key_epoch`, encrypted to this transport key, and a valid signature under
    /// `answer.public_key`. Its 48 bytes (`VetKey::signature_bytes`).
    pub fn open_vetkey(&self, answer: &VideoKey) -> Result<[u8; 48], KeyError> {
        if answer.context.as_slice() != VETKD_CONTEXT {
            return Err(KeyError::WrongContext);
        }
        let input = vetkd_input(answer.key_epoch);
        if answer.input.as_slice() != input.as_slice() {
            return Err(KeyError::WrongInput {
                epoch: answer.key_epoch,
            });
        }
        let public_key = DerivedPublicKey::deserialize(&answer.public_key)
            .map_err(|_| KeyError::InvalidPublicKey)?;
        let encrypted = EncryptedVetKey::deserialize(&answer.encrypted_key)
            .map_err(KeyError::InvalidEncryptedKey)?;
        let vetkey = encrypted
            .decrypt_and_verify(&self.secret, &public_key, &input)
            .map_err(KeyError::Verification)?;
        Ok(*vetkey.signature_bytes())
    }

    /// The video's AES key from `answer` (see [`TransportKey::open_vetkey`] for the checks).
    ///
    /// Trust: the public key travels in the same answer, so verification proves the key is the
    /// vetKey of the input under *that* public key. That it is the canister's rests on the answer
    /// being the canister's own reply, which the IC certifies for update calls (and the agent
    /// checks against the root key).
    pub fn open(&self, answer: &VideoKey, canister: &Principal) -> Result<[u8; 32], KeyError> {
        let vetkey = self.open_vetkey(answer)?;
        Ok(aes_key(&vetkey, canister, answer.key_epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canvid_types::encryption::vetkd_input;
    use ic_bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
    use ic_bls12_381::{G1Affine, G1Projective, G2Affine, Scalar};
    use serde_bytes::ByteBuf;

    const AUGMENTED_BLS_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_AUG_";

    /// What vetKD answers (the IC's scheme, as local/replica/src/vetkd.rs implements it) for the
    /// derived secret `secret`: the public key, the vetKey and the key encrypted to `transport`.
    struct Derived {
        public_key: Vec<u8>,
        vetkey: [u8; 48],
        encrypted_key: Vec<u8>,
    }

    fn derive(secret: u64, input: &[u8], transport: &[u8]) -> Derived {
        let s = Scalar::from(secret);
        let public = G2Affine::from(G2Affine::generator() * s);
        let mut m = public.to_compressed().to_vec();
        m.extend_from_slice(input);
        let h = <G1Projective as HashToCurve<ExpandMsgXmd<sha2::Sha256>>>::hash_to_curve(
            m,
            AUGMENTED_BLS_DST,
        );
        let k = G1Affine::from(h * s);
        let tpk = G1Affine::from_compressed(&transport.try_into().unwrap()).unwrap();
        let r = Scalar::from(987_654_321u64);
        let c1 = G1Affine::from(G1Affine::generator() * r);
        let c2 = G2Affine::from(G2Affine::generator() * r);
        let c3 = G1Affine::from(G1Projective::from(k) + tpk * r);
        let encrypted_key = [
            c1.to_compressed().as_slice(),
            c2.to_compressed().as_slice(),
            c3.to_compressed().as_slice(),
        ]
        .concat();
        Derived {
            public_key: public.to_compressed().to_vec(),
            vetkey: k.to_compressed(),
            encrypted_key,
        }
    }

    fn answer(tk: &TransportKey, epoch: u32) -> (VideoKey, [u8; 48]) {
        let d = derive(12_345, &vetkd_input(epoch), &tk.public_key());
        let answer = VideoKey {
            encrypted_key: ByteBuf::from(d.encrypted_key),
            public_key: ByteBuf::from(d.public_key),
            key_name: "key_1".into(),
            key_epoch: epoch,
            context: ByteBuf::from(VETKD_CONTEXT.to_vec()),
            input: ByteBuf::from(vetkd_input(epoch)),
        };
        (answer, d.vetkey)
    }

    fn canister() -> Principal {
        Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 9, 1, 1])
    }

    #[test]
    fn opens_a_vetkd_answer_to_the_hkdf_key() {
        let tk = TransportKey::from_seed([3; 32]);
        assert_eq!(tk.public_key().len(), 48);
        let (a, vetkey) = answer(&tk, 4);
        assert_eq!(tk.open_vetkey(&a).unwrap(), vetkey);
        assert_eq!(
            tk.open(&a, &canister()).unwrap(),
            aes_key(&vetkey, &canister(), 4)
        );
        assert_ne!(
            aes_key(&vetkey, &canister(), 4),
            aes_key(&vetkey, &canister(), 5)
        );
        assert_ne!(
            aes_key(&vetkey, &canister(), 4),
            aes_key(&vetkey, &Principal::anonymous(), 4)
        );
    }

    #[test]
    fn refuses_answers_for_another_context_input_or_transport_key() {
        let tk = TransportKey::from_seed([3; 32]);
        let (good, _) = answer(&tk, 0);
        let mut a = good.clone();
        a.context = ByteBuf::from(b"other".to_vec());
        assert!(matches!(tk.open_vetkey(&a), Err(KeyError::WrongContext)));
        let mut a = good.clone();
        a.key_epoch = 1;
        assert!(matches!(
            tk.open_vetkey(&a),
            Err(KeyError::WrongInput { epoch: 1 })
        ));
        // Input and epoch both claim epoch 1, but the key is epoch 0's: the signature fails.
        a.input = ByteBuf::from(vetkd_input(1));
        assert!(matches!(tk.open_vetkey(&a), Err(KeyError::Verification(_))));
        let stranger = TransportKey::from_seed([4; 32]);
        assert!(matches!(
            stranger.open_vetkey(&good),
            Err(KeyError::Verification(_))
        ));
        let mut a = good.clone();
        a.public_key = ByteBuf::from(derive(999, b"x", &tk.public_key()).public_key);
        assert!(matches!(tk.open_vetkey(&a), Err(KeyError::Verification(_))));
        let mut a = good.clone();
        a.public_key = ByteBuf::from(vec![1; 96]);
        assert!(matches!(
            tk.open_vetkey(&a),
            Err(KeyError::InvalidPublicKey)
        ));
        let mut a = good;
        a.encrypted_key = ByteBuf::from(vec![0; 10]);
        assert!(matches!(
            tk.open_vetkey(&a),
            Err(KeyError::InvalidEncryptedKey(_))
        ));
    }

    #[test]
    fn random_transport_keys_differ() {
        let (a, b) = (
            TransportKey::random().unwrap(),
            TransportKey::random().unwrap(),
        );
        assert_ne!(a.public_key(), b.public_key());
    }
}
