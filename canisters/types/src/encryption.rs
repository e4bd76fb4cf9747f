//! End-to-end encrypted videos: the shape of an encrypted file, the key-delivery interface and
//! the byte strings every party builds identically (vetKD input and context, the AES key's HKDF
//! info, each chunk's associated data).
//!
//! Why here: the canister checks only the *shape* of an encrypted upload (sizes, scheme, key
//! name) and delivers keys; the client encrypts and decrypts. Both must agree byte for byte on
//! the strings below, and this crate is the one every Rust party (canister, CLI, tests) links.
//! The TypeScript SDK mirrors them in `sdk-ts/src/encryption.ts`, tested against vectors made
//! here. docs/encryption.md explains the scheme and its trust model.
//!
//! # Scheme `canvid-aes256gcm-v1`
//!
//! * **Video key.** The canister asks vetKD for the key of input [`vetkd_input`]`(key_epoch)`
//!   under context [`VETKD_CONTEXT`] (the canister id is bound by vetKD itself: another
//!   canister's keys differ), encrypted to the caller's transport key. The caller decrypts and
//!   verifies it (the *vetKey*, a 48-byte BLS signature) and derives the AES-256 key as
//!   `HKDF-SHA256(ikm = vetKey bytes, salt = "", info = `[`aes_key_info`]`(canister, epoch), 32)`.
//! * **Chunks.** The plaintext is cut into chunks of `plain_chunk_size` bytes (the last may be
//!   shorter). Stored chunk `i` is `nonce (12) ‖ AES-256-GCM(key, nonce, plaintext_i, aad =
//!   `[`chunk_aad`]`) ‖ tag (16)`: [`CHUNK_OVERHEAD`] bytes longer than its plaintext. The
//!   associated data binds the canister, the chunk's index, the chunk count, the plaintext
//!   size, the chunk size and the key epoch, so chunks cannot be swapped, reordered, dropped
//!   from the end or moved to another video without failing to decrypt.
//! * **Nonces** are synthetic: `nonce = HMAC-SHA256(key = AES key, "canvid-nonce-v1" ‖ aad ‖
//!   SHA-256(plaintext_i))[..12]` ([`NONCE_LABEL`]). The same chunk encrypts to the same bytes,
//!   so an interrupted upload resumes by encrypting again (its declared digests still match),
//!   while *different* bytes at the same index under the same key (a re-upload of another
//!   file) get a different nonce: GCM's nonce must never repeat with other plaintext. Readers
//!   take the nonce as stored and never recompute it.
//! * **What the canister stores** is the ciphertext file exactly as uploaded: `total_size =
//!   `[`Encryption::stored_size`], `chunk_size = plain_chunk_size + CHUNK_OVERHEAD`, chunk
//!   digests and the file digest over ciphertext, as for any file.

use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::{Error, Result};

/// The one scheme so far (see the module docs).
pub const SCHEME_AES256GCM_V1: &str = "canvid-aes256gcm-v1";
/// Label of the synthetic nonce's HMAC message (module docs).
pub const NONCE_LABEL: &[u8] = b"canvid-nonce-v1";
/// AES-GCM nonce bytes stored in front of each chunk.
pub const NONCE_LEN: u32 = 12;
/// AES-GCM tag bytes stored after each chunk's ciphertext.
pub const TAG_LEN: u32 = 16;
/// A stored chunk is this much longer than its plaintext.
pub const CHUNK_OVERHEAD: u32 = NONCE_LEN + TAG_LEN;
/// The vetKD context of video keys (vetKD binds the canister id; this separates canvid's keys
/// from any other use of the canister's vetKD keys).
pub const VETKD_CONTEXT: &[u8] = b"canvid/video-key/v1";
/// The vetKD master keys a video may be encrypted under: the IC's (`key_1`, `test_key_1`) and
/// the local one of dfx/PocketIC (`dfx_test_key`); the embedded replica has all three.
pub const KEY_NAMES: [&str; 3] = ["key_1", "test_key_1", "dfx_test_key"];
/// The key `video_key` uses when the caller names none and the upload declared none.
pub const DEFAULT_KEY_NAME: &str = "key_1";

/// How the main file is encrypted (`UploadSpec::encryption`, `VideoMetadata::encryption`).
/// Absent: the file is stored as uploaded, in the clear.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct Encryption {
    /// [`SCHEME_AES256GCM_V1`].
    pub scheme: String,
    /// The vetKD key the video key is derived under (one of [`KEY_NAMES`]).
    pub key_name: String,
    /// The vetKD input's epoch ([`vetkd_input`]): a new epoch is a new video key.
    pub key_epoch: u32,
    /// Size of the plaintext (the source file), `>= 1`.
    pub plain_size: u64,
    /// Plaintext bytes per chunk, `>= 1`; the stored chunk size is this plus [`CHUNK_OVERHEAD`].
    pub plain_chunk_size: u32,
}

impl Encryption {
    /// Number of chunks (of the plaintext and of the stored file alike).
    pub fn chunk_count(&self) -> u64 {
        self.plain_size
            .div_ceil(u64::from(self.plain_chunk_size.max(1)))
    }

    /// Bytes per stored chunk (all but the last).
    pub fn stored_chunk_size(&self) -> u64 {
        u64::from(self.plain_chunk_size) + u64::from(CHUNK_OVERHEAD)
    }

    /// Size of the stored (encrypted) file.
    pub fn stored_size(&self) -> u64 {
        self.plain_size + self.chunk_count() * u64::from(CHUNK_OVERHEAD)
    }

    /// Plaintext bytes of chunk `index`.
    pub fn plain_len(&self, index: u64) -> u64 {
        let chunk = u64::from(self.plain_chunk_size);
        self.plain_size.saturating_sub(index * chunk).min(chunk)
    }

    /// Checks the scheme and key name, and that the declared file (`total_size`, `chunk_size`)
    /// is exactly this encryption's stored file.
    pub fn validate(&self, total_size: u64, chunk_size: u32) -> Result<()> {
        let invalid = |reason: String| Err(Error::InvalidArgument { reason });
        if self.scheme != SCHEME_AES256GCM_V1 {
            return invalid(format!(
                "unknown encryption scheme {:?} (this canister knows {SCHEME_AES256GCM_V1:?})",
                self.scheme
            ));
        }
        if !KEY_NAMES.contains(&self.key_name.as_str()) {
            return invalid(format!(
                "unknown vetKD key {:?} (one of {KEY_NAMES:?})",
                self.key_name
            ));
        }
        if self.plain_size == 0 || self.plain_chunk_size == 0 {
            return invalid("plain_size and plain_chunk_size must be at least 1".into());
        }
        if u64::from(chunk_size) != self.stored_chunk_size() || total_size != self.stored_size() {
            return invalid(format!(
                "an encrypted file of {} plaintext bytes in chunks of {} is stored as {} bytes in \
                 chunks of {} (each chunk {CHUNK_OVERHEAD} bytes longer), not {total_size} in \
                 chunks of {chunk_size}",
                self.plain_size,
                self.plain_chunk_size,
                self.stored_size(),
                self.stored_chunk_size()
            ));
        }
        Ok(())
    }
}

/// The vetKD input of the video key of `epoch`: `"canvid-video-key" ‖ epoch (u32 big-endian)`.
pub fn vetkd_input(epoch: u32) -> Vec<u8> {
    let mut v = b"canvid-video-key".to_vec();
    v.extend_from_slice(&epoch.to_be_bytes());
    v
}

/// HKDF info of the AES-256 key: `"canvid-aes256gcm-v1" ‖ len(canister) (u8) ‖ canister ‖
/// epoch (u32 big-endian)`.
pub fn aes_key_info(canister: &Principal, epoch: u32) -> Vec<u8> {
    let id = canister.as_slice();
    let mut v = SCHEME_AES256GCM_V1.as_bytes().to_vec();
    v.push(id.len() as u8);
    v.extend_from_slice(id);
    v.extend_from_slice(&epoch.to_be_bytes());
    v
}

/// Associated data of chunk `index`: `"canvid-chunk-v1" ‖ len(canister) (u8) ‖ canister ‖
/// index (u32) ‖ chunk count (u32) ‖ plain_size (u64) ‖ plain_chunk_size (u32) ‖ key_epoch
/// (u32)`, integers big-endian.
pub fn chunk_aad(canister: &Principal, enc: &Encryption, index: u32) -> Vec<u8> {
    let id = canister.as_slice();
    let mut v = b"canvid-chunk-v1".to_vec();
    v.push(id.len() as u8);
    v.extend_from_slice(id);
    v.extend_from_slice(&index.to_be_bytes());
    v.extend_from_slice(&(enc.chunk_count() as u32).to_be_bytes());
    v.extend_from_slice(&enc.plain_size.to_be_bytes());
    v.extend_from_slice(&enc.plain_chunk_size.to_be_bytes());
    v.extend_from_slice(&enc.key_epoch.to_be_bytes());
    v
}

/// `video_key` argument.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct VideoKeyArgs {
    /// The caller's vetKD transport public key (48 bytes, a BLS12-381 G1 point): the key comes
    /// back encrypted to it.
    pub transport_public_key: ByteBuf,
    /// Absent: the upload's (`VideoMetadata::encryption`), else [`DEFAULT_KEY_NAME`]. Only the
    /// owner and uploaders may name another key or epoch than the upload's.
    pub key_name: Option<String>,
    /// Absent: the upload's, else 0.
    pub key_epoch: Option<u32>,
}

/// `video_key` answer: the vetKey of (`context`, `input`) encrypted to the transport key, and
/// what the caller needs to verify and use it.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct VideoKey {
    /// `vetkd_derive_key`'s `encrypted_key` (192 bytes).
    pub encrypted_key: ByteBuf,
    /// The canister's vetKD public key for [`VETKD_CONTEXT`] under `key_name` (96 bytes, G2):
    /// the decrypted vetKey must verify against it for `input`.
    pub public_key: ByteBuf,
    pub key_name: String,
    pub key_epoch: u32,
    /// [`VETKD_CONTEXT`] and [`vetkd_input`]`(key_epoch)`, as used.
    pub context: ByteBuf,
    pub input: ByteBuf,
}

/// Most keys delivered to one viewer (not the owner or an uploader) per
/// [`KEY_WINDOW_NS`]: each delivery costs the canister a vetKD fee (~26 B cycles on mainnet's
/// `key_1`).
pub const MAX_KEYS_PER_VIEWER: u32 = 8;
/// Most keys delivered to viewers altogether per [`KEY_WINDOW_NS`]: bounds what viewers can
/// make the canister spend (`MAX_VIEWER_KEYS * fee` per window).
pub const MAX_VIEWER_KEYS: u32 = 100;
/// The rate limits' window: 24 hours.
pub const KEY_WINDOW_NS: u64 = 24 * 3600 * 1_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(plain_size: u64, plain_chunk_size: u32) -> Encryption {
        Encryption {
            scheme: SCHEME_AES256GCM_V1.into(),
            key_name: DEFAULT_KEY_NAME.into(),
            key_epoch: 0,
            plain_size,
            plain_chunk_size,
        }
    }

    #[test]
    fn stored_shape() {
        let e = enc(10, 4);
        assert_eq!(e.chunk_count(), 3);
        assert_eq!(e.stored_chunk_size(), 32);
        assert_eq!(e.stored_size(), 10 + 3 * 28);
        assert_eq!(
            (0..3).map(|i| e.plain_len(i)).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        assert!(e.validate(94, 32).is_ok());
        assert!(e.validate(95, 32).is_err());
        assert!(e.validate(94, 31).is_err());
        let exact = enc(8, 4);
        assert_eq!(exact.stored_size(), 8 + 2 * 28);
    }

    #[test]
    fn refuses_unknown_scheme_key_and_empty() {
        let mut e = enc(10, 4);
        e.scheme = "rot13".into();
        assert!(matches!(
            e.validate(94, 32),
            Err(Error::InvalidArgument { .. })
        ));
        let mut e = enc(10, 4);
        e.key_name = "other".into();
        assert!(e.validate(94, 32).is_err());
        assert!(enc(0, 4).validate(0, 32).is_err());
        assert!(enc(10, 0).validate(10, 28).is_err());
    }

    #[test]
    fn byte_strings_are_as_documented() {
        let canister = Principal::from_slice(&[1, 2, 3]);
        assert_eq!(vetkd_input(7), b"canvid-video-key\0\0\0\x07");
        assert_eq!(
            aes_key_info(&canister, 1),
            b"canvid-aes256gcm-v1\x03\x01\x02\x03\0\0\0\x01"
        );
        let aad = chunk_aad(&canister, &enc(10, 4), 2);
        let mut want = b"canvid-chunk-v1\x03\x01\x02\x03".to_vec();
        want.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 3]);
        want.extend_from_slice(&10u64.to_be_bytes());
        want.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0]);
        assert_eq!(aad, want);
    }
}
