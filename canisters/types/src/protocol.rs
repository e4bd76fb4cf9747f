//! The arithmetic of the upload protocol, which the video canister, the CLI and any other Rust
//! client must compute identically: how a file is cut into chunks and what its digest is.
//! (The TypeScript SDK has its own implementation; `tests` keeps an independent oracle.)
//!
//! Chunk `i` covers file bytes `[i * chunk_size, min((i + 1) * chunk_size, total_size))`: every
//! chunk but the last is exactly `chunk_size` long, and there are `ceil(total_size / chunk_size)`
//! of them.
//!
//! **File digest**: `SHA-256(sha256(chunk_0) || ... || sha256(chunk_{n-1}))`, with the chunks of
//! the declared `chunk_size`. A single SHA-256 over a multi-GiB file does not fit one canister
//! message; this definition needs only the 32-byte chunk digests at `finish_upload`, and a client
//! computes it while it hashes the chunks it uploads.

use std::borrow::Borrow;

use candid::Principal;
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Digest32 = [u8; 32];

/// `ceil(total_size / chunk_size)`: the number of chunks (0 for an empty file).
///
/// A `chunk_size` of 0 is invalid (the video canister refuses it in `begin_upload`); it is
/// counted as 1 here so that this never panics, since a panic in a canister is a trap.
pub fn chunk_count(total_size: u64, chunk_size: u64) -> u64 {
    total_size.div_ceil(chunk_size.max(1))
}

/// Length of chunk `index`: `chunk_size`, except for a shorter last chunk and 0 past the end.
pub fn chunk_len(total_size: u64, chunk_size: u64, index: u32) -> u64 {
    let start = u64::from(index).saturating_mul(chunk_size);
    total_size.saturating_sub(start).min(chunk_size)
}

/// The file digest of a sequence of chunk digests (see the module docs): what the video canister
/// publishes as `VideoMetadata::digest` and checks against `UploadSpec::file_digest`.
/// Takes the digests by value or by reference.
pub fn file_digest<D: Borrow<Digest32>>(chunk_digests: impl IntoIterator<Item = D>) -> Digest32 {
    let mut hasher = Sha256::new();
    for d in chunk_digests {
        hasher.update(d.borrow());
    }
    hasher.finalize().into()
}

/// Is `p` a canister id (an opaque id, class byte 0x01) rather than a user's self-authenticating
/// (key-derived) principal? The video canister keeps a canister installer (the spawn canister)
/// among its controllers after a transfer, never a user identity.
pub fn is_canister_id(p: &Principal) -> bool {
    p.as_slice().last() == Some(&0x01)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking() {
        assert_eq!(chunk_count(0, 10), 0);
        assert_eq!(chunk_count(1, 10), 1);
        assert_eq!(chunk_count(10, 10), 1);
        assert_eq!(chunk_count(11, 10), 2);
        assert_eq!(chunk_count(5_000_000, 2_000_000), 3);
        // Invalid, but no panic.
        assert_eq!(chunk_count(3, 0), 3);
        assert_eq!(chunk_len(25, 10, 0), 10);
        assert_eq!(chunk_len(25, 10, 1), 10);
        assert_eq!(chunk_len(25, 10, 2), 5);
        assert_eq!(chunk_len(25, 10, 3), 0);
        assert_eq!(chunk_len(20, 10, 1), 10);
        // Offsets beyond 4 GiB and the last index do not overflow.
        let big = 400 * 1024 * 1024 * 1024u64;
        let last = (chunk_count(big, 2_000_000) - 1) as u32;
        assert_eq!(
            chunk_len(big, 2_000_000, last),
            big - u64::from(last) * 2_000_000
        );
        assert_eq!(chunk_len(big, u64::MAX, u32::MAX), 0);
        // The lengths add up to the file.
        let total: u64 = (0..chunk_count(25, 10) as u32)
            .map(|i| chunk_len(25, 10, i))
            .sum();
        assert_eq!(total, 25);
    }

    #[test]
    fn file_digest_is_the_hash_of_the_chunk_hashes() {
        // Spelled out independently of `file_digest`.
        let a: Digest32 = Sha256::digest(b"hello ").into();
        let b: Digest32 = Sha256::digest(b"world").into();
        let mut concat = a.to_vec();
        concat.extend_from_slice(&b);
        let want: Digest32 = Sha256::digest(&concat).into();
        let digests = vec![a, b];
        assert_eq!(file_digest(&digests), want, "by reference");
        assert_eq!(file_digest(digests), want, "by value");
        // ...which is not the plain SHA-256 of the file.
        let plain: Digest32 = Sha256::digest(b"hello world").into();
        assert_ne!(want, plain);
        // An empty file has no chunks: the digest of nothing.
        let empty: Digest32 = Sha256::digest(b"").into();
        assert_eq!(file_digest([] as [Digest32; 0]), empty);
    }

    #[test]
    fn canister_ids_and_user_principals() {
        let canister = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 8, 0x01, 0x01]);
        assert!(is_canister_id(&canister));
        assert!(is_canister_id(
            &Principal::from_text("ryjl3-tyaaa-aaaaa-aaaba-cai").unwrap()
        ));
        // Self-authenticating (0x02), anonymous (0x04), management canister (empty).
        assert!(!is_canister_id(&Principal::from_slice(&[1, 0x02])));
        assert!(!is_canister_id(&Principal::anonymous()));
        assert!(!is_canister_id(&Principal::management_canister()));
    }
}
