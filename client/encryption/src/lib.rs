//! The client half of canvid's end-to-end encrypted videos (scheme `canvid-aes256gcm-v1`).
//!
//! Why a crate of its own: the canister only stores ciphertext and hands out vetKeys; every
//! client (the CLI, tests, and the TypeScript SDK through the vectors this crate writes) must
//! encrypt and decrypt byte for byte alike. The byte strings themselves (vetKD input and context,
//! HKDF info, chunk AAD) live in `canvid_types::encryption`, which the canister links too; this
//! crate adds the cryptography the canister never runs, so that none of it (AES, HKDF, BLS) is
//! compiled into canister wasm.
//!
//! * [`TransportKey`] makes the transport key pair for `video_key`, then opens its answer:
//!   checks the context and input, decrypts and verifies the vetKey against the canister's
//!   derived public key, and derives the AES key ([`aes_key`]).
//! * [`VideoCipher`] encrypts and decrypts chunks (synthetic nonces: re-encrypting gives the same
//!   bytes, so uploads resume), maps a plaintext byte range onto stored chunks, and streams whole
//!   files ([`VideoCipher::encrypt_reader`], [`VideoCipher::decrypt_to_writer`]) without holding
//!   them in memory.

mod cipher;
mod key;

pub use cipher::{ChunkSpan, CipherError, EncryptedChunks, VideoCipher};
pub use key::{aes_key, KeyError, TransportKey};

pub use canvid_types::encryption::{
    chunk_aad, vetkd_input, Encryption, VideoKey, VideoKeyArgs, CHUNK_OVERHEAD, DEFAULT_KEY_NAME,
    KEY_NAMES, NONCE_LEN, SCHEME_AES256GCM_V1, TAG_LEN, VETKD_CONTEXT,
};
