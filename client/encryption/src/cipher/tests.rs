use proptest::prelude::*;

use super::*;
use canvid_types::encryption::DEFAULT_KEY_NAME;

const KEY: [u8; 32] = [0x42; 32];

fn canister(n: u8) -> Principal {
    Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, n, 1, 1])
}

fn enc(plain_size: u64, plain_chunk_size: u32) -> Encryption {
    Encryption {
        scheme: SCHEME_AES256GCM_V1.into(),
        key_name: DEFAULT_KEY_NAME.into(),
        key_epoch: 0,
        plain_size,
        plain_chunk_size,
    }
}

fn cipher(plain_size: u64, plain_chunk_size: u32) -> VideoCipher {
    VideoCipher::new(&KEY, canister(1), enc(plain_size, plain_chunk_size)).unwrap()
}

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn stored_chunks(c: &VideoCipher, plain: &[u8]) -> Vec<Vec<u8>> {
    c.encrypt_reader(plain).collect::<Result<_, _>>().unwrap()
}

fn decrypt_all(c: &VideoCipher, chunks: &[Vec<u8>]) -> Result<Vec<u8>, CipherError> {
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        out.extend(c.decrypt_chunk(i as u32, chunk)?);
    }
    Ok(out)
}

fn is_auth_failure(r: Result<Vec<u8>, CipherError>, at: u32) -> bool {
    matches!(r, Err(CipherError::Authentication { index }) if index == at)
}

#[test]
fn round_trip_through_reader_and_writer() {
    let plain = plaintext(1000);
    let c = cipher(1000, 64);
    let chunks = stored_chunks(&c, &plain);
    assert_eq!(chunks.len(), 16);
    assert_eq!(chunks[15].len() as u64, 1000 - 15 * 64 + 28);
    let stored: Vec<u8> = chunks.concat();
    assert_eq!(stored.len() as u64, c.encryption().stored_size());
    let mut out = Vec::new();
    assert_eq!(c.decrypt_to_writer(&stored[..], &mut out).unwrap(), 1000);
    assert_eq!(out, plain);
}

#[test]
fn flipped_byte_of_nonce_ciphertext_or_tag_fails() {
    let c = cipher(300, 100);
    let chunks = stored_chunks(&c, &plaintext(300));
    // First nonce byte, a ciphertext byte, last tag byte.
    for at in [0, 12 + 50, 12 + 100 + 15] {
        let mut bad = chunks.clone();
        bad[1][at] ^= 1;
        assert!(is_auth_failure(c.decrypt_chunk(1, &bad[1]), 1), "byte {at}");
        assert!(matches!(
            decrypt_all(&c, &bad),
            Err(CipherError::Authentication { index: 1 })
        ));
    }
}

#[test]
fn swapped_chunks_fail() {
    let c = cipher(300, 100);
    let chunks = stored_chunks(&c, &plaintext(300));
    assert!(is_auth_failure(c.decrypt_chunk(0, &chunks[1]), 0));
    assert!(is_auth_failure(c.decrypt_chunk(1, &chunks[0]), 1));
}

#[test]
fn chunk_of_another_canister_fails() {
    let c = cipher(300, 100);
    let chunks = stored_chunks(&c, &plaintext(300));
    let elsewhere = VideoCipher::new(&KEY, canister(2), enc(300, 100)).unwrap();
    assert!(is_auth_failure(elsewhere.decrypt_chunk(0, &chunks[0]), 0));
}

#[test]
fn wrong_epoch_or_key_fails() {
    let c = cipher(300, 100);
    let chunks = stored_chunks(&c, &plaintext(300));
    let mut other_epoch = enc(300, 100);
    other_epoch.key_epoch = 1;
    let epoch1 = VideoCipher::new(&KEY, canister(1), other_epoch).unwrap();
    assert!(is_auth_failure(epoch1.decrypt_chunk(0, &chunks[0]), 0));
    let other_key = VideoCipher::new(&[7; 32], canister(1), enc(300, 100)).unwrap();
    assert!(is_auth_failure(other_key.decrypt_chunk(2, &chunks[2]), 2));
}

#[test]
fn truncated_file_with_adjusted_sizes_fails() {
    let c = cipher(250, 100);
    let chunks = stored_chunks(&c, &plaintext(250));
    // Last chunk (50 bytes) dropped, the declared sizes made to fit the two left.
    let shortened = cipher(200, 100);
    let kept = &chunks[..2];
    assert!(matches!(
        decrypt_all(&shortened, kept),
        Err(CipherError::Authentication { index: 0 })
    ));
    assert!(is_auth_failure(shortened.decrypt_chunk(1, &kept[1]), 1));
}

#[test]
fn wrong_lengths_and_indexes_are_errors_not_panics() {
    let c = cipher(250, 100);
    let chunks = stored_chunks(&c, &plaintext(250));
    for bad in [&[][..], &chunks[0][..5], &chunks[0][..127], &chunks[2][..]] {
        assert!(matches!(
            c.decrypt_chunk(0, bad),
            Err(CipherError::StoredLength {
                index: 0,
                expected: 128,
                ..
            })
        ));
    }
    assert!(matches!(
        c.decrypt_chunk(3, &chunks[2]),
        Err(CipherError::NoSuchChunk { index: 3, count: 3 })
    ));
    assert!(matches!(
        c.encrypt_chunk(2, &[0; 100]),
        Err(CipherError::PlainLength {
            index: 2,
            expected: 50,
            actual: 100
        })
    ));
    assert!(matches!(
        c.encrypt_chunk(9, &[]),
        Err(CipherError::NoSuchChunk { .. })
    ));
}

#[test]
fn refuses_unknown_scheme_and_empty_shapes() {
    let mut e = enc(10, 4);
    e.scheme = "rot13".into();
    assert!(matches!(
        VideoCipher::new(&KEY, canister(1), e),
        Err(CipherError::UnknownScheme(_))
    ));
    for (size, chunk) in [(0, 4), (10, 0)] {
        assert!(matches!(
            VideoCipher::new(&KEY, canister(1), enc(size, chunk)),
            Err(CipherError::Empty)
        ));
    }
    assert!(matches!(
        VideoCipher::new(&KEY, canister(1), enc(u64::from(u32::MAX) + 1, 1)),
        Err(CipherError::TooManyChunks { .. })
    ));
}

#[test]
fn source_of_another_size_is_an_error() {
    let c = cipher(250, 100);
    let short: Vec<_> = c.encrypt_reader(&plaintext(240)[..]).collect();
    assert_eq!(short.len(), 3);
    assert!(matches!(
        short[2],
        Err(CipherError::InputShorter {
            expected: 250,
            actual: 240
        })
    ));
    let long: Vec<_> = c.encrypt_reader(&plaintext(251)[..]).collect();
    assert!(matches!(
        long[2],
        Err(CipherError::InputLonger { expected: 250 })
    ));
    let mut stored = stored_chunks(&c, &plaintext(250)).concat();
    stored.push(0);
    assert!(matches!(
        c.decrypt_to_writer(&stored[..], Vec::new()),
        Err(CipherError::InputLonger { .. })
    ));
    stored.truncate(stored.len() - 2);
    assert!(matches!(
        c.decrypt_to_writer(&stored[..], Vec::new()),
        Err(CipherError::InputShorter { .. })
    ));
}

#[test]
fn synthetic_nonces_are_deterministic_and_follow_the_plaintext() {
    let c = cipher(300, 100);
    let plain = plaintext(300);
    assert_eq!(stored_chunks(&c, &plain), stored_chunks(&c, &plain));
    let mut other = plain.clone();
    other[150] ^= 1;
    let (a, b) = (stored_chunks(&c, &plain), stored_chunks(&c, &other));
    assert_eq!(a[0], b[0]);
    assert_ne!(
        a[1][..12],
        b[1][..12],
        "same index, other plaintext: other nonce"
    );
    assert_eq!(a[2], b[2]);
    // The nonce is the documented HMAC, not just any deterministic value.
    let aad = c.aad(1);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&KEY).unwrap();
    mac.update(b"canvid-nonce-v1");
    mac.update(&aad);
    mac.update(&Sha256::digest(&plain[100..200]));
    assert_eq!(a[1][..12], mac.finalize().into_bytes()[..12]);
}

#[test]
fn plain_ranges_map_to_stored_chunks() {
    let c = cipher(250, 100);
    let span = c.plain_range_to_chunks(99, 101).unwrap();
    assert_eq!(
        span,
        ChunkSpan {
            first: 0,
            last: 1,
            stored_start: 0,
            stored_end: 256,
            skip: 99,
            len: 2
        }
    );
    let tail = c.plain_range_to_chunks(200, 250).unwrap();
    assert_eq!(
        (tail.first, tail.last, tail.stored_start, tail.stored_end),
        (2, 2, 256, 334)
    );
    for (start, end) in [(5, 5), (6, 5), (0, 251)] {
        assert!(matches!(
            c.plain_range_to_chunks(start, end),
            Err(CipherError::RangeOutsideFile { .. })
        ));
    }
}

/// Reads plaintext `start..end` the way a player does: fetch the span's stored bytes, decrypt
/// its chunks, cut.
fn read_range(c: &VideoCipher, stored: &[u8], start: u64, end: u64) -> Vec<u8> {
    let span = c.plain_range_to_chunks(start, end).unwrap();
    let bytes = &stored[span.stored_start as usize..span.stored_end as usize];
    let mut plain = Vec::new();
    let mut at = 0;
    for index in span.first..=span.last {
        let len = c.stored_len(index) as usize;
        plain.extend(c.decrypt_chunk(index, &bytes[at..at + len]).unwrap());
        at += len;
    }
    assert_eq!(at, bytes.len());
    plain[span.skip as usize..(span.skip + span.len) as usize].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any size and chunk size, including a last chunk of 1 byte, a full last chunk and a single
    /// chunk: round trip, the stored shape the canister checks, and ranges.
    #[test]
    fn any_shape_round_trips(
        chunk in 1u32..=97,
        chunks in 1u64..=12,
        last_short_by in 0u32..=96,
        range in (0u64..2000, 1u64..2000),
    ) {
        let last_short_by = u64::from(last_short_by % chunk);
        let size = chunks * u64::from(chunk) - last_short_by;
        let plain = plaintext(size as usize);
        let c = cipher(size, chunk);
        let stored = stored_chunks(&c, &plain).concat();
        prop_assert_eq!(stored.len() as u64, c.encryption().stored_size());
        prop_assert!(c.encryption().validate(stored.len() as u64, chunk + CHUNK_OVERHEAD).is_ok());
        let mut out = Vec::new();
        c.decrypt_to_writer(&stored[..], &mut out).unwrap();
        prop_assert_eq!(&out, &plain);
        let start = range.0 % size;
        let end = (start + range.1).min(size);
        prop_assert_eq!(read_range(&c, &stored, start, end), &plain[start as usize..end as usize]);
    }
}
