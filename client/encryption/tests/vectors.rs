//! Test vectors for the TypeScript SDK (`sdk-ts/src/encryption.ts` must produce them byte for
//! byte): `UPDATE_VECTORS=1 cargo test -p canvid-encryption --test vectors` rewrites
//! `sdk-ts/test/fixtures/encryption-vectors.json`; otherwise the test fails if the file is not
//! what this crate computes now (a scheme change must be a deliberate, visible diff).

use std::path::PathBuf;

use candid::Principal;
use canvid_encryption::{aes_key, chunk_aad, vetkd_input, Encryption, VideoCipher};
use canvid_types::encryption::{aes_key_info, SCHEME_AES256GCM_V1};
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    vetkey_seed: u8,
    canister: &'static [u8],
    key_name: &'static str,
    key_epoch: u32,
    plain_size: u64,
    plain_chunk_size: u32,
}

const CASES: [Case; 4] = [
    Case {
        name: "three chunks, the last one short",
        vetkey_seed: 1,
        canister: &[0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
        key_name: "key_1",
        key_epoch: 0,
        plain_size: 40,
        plain_chunk_size: 16,
    },
    Case {
        name: "two full chunks, epoch 7",
        vetkey_seed: 2,
        canister: &[0, 0, 0, 0, 0, 0x30, 0, 0x2a, 1, 1],
        key_name: "test_key_1",
        key_epoch: 7,
        plain_size: 32,
        plain_chunk_size: 16,
    },
    Case {
        name: "one byte in one chunk, large epoch",
        vetkey_seed: 3,
        canister: &[0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
        key_name: "dfx_test_key",
        key_epoch: 0xfffe_0001,
        plain_size: 1,
        plain_chunk_size: 1_048_548,
    },
    Case {
        name: "last chunk of one byte, a 29-byte principal",
        vetkey_seed: 4,
        canister: &[0xab; 29],
        key_name: "key_1",
        key_epoch: 1,
        plain_size: 21,
        plain_chunk_size: 10,
    },
];

fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i as u8)
                .wrapping_mul(31)
                .wrapping_add(seed.wrapping_mul(97))
        })
        .collect()
}

fn vector(case: &Case) -> Value {
    let canister = Principal::from_slice(case.canister);
    let vetkey = bytes(case.vetkey_seed, 48);
    let enc = Encryption {
        scheme: SCHEME_AES256GCM_V1.into(),
        key_name: case.key_name.into(),
        key_epoch: case.key_epoch,
        plain_size: case.plain_size,
        plain_chunk_size: case.plain_chunk_size,
    };
    let key = aes_key(&vetkey, &canister, case.key_epoch);
    let plain = bytes(case.vetkey_seed.wrapping_add(100), case.plain_size as usize);
    let cipher = VideoCipher::new(&key, canister, enc.clone()).unwrap();
    let stored: Vec<u8> = cipher
        .encrypt_reader(&plain[..])
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .concat();
    let aad0 = chunk_aad(&canister, &enc, 0);
    json!({
        "name": case.name,
        "vetkey": hex::encode(&vetkey),
        "canister": canister.to_text(),
        "encryption": {
            "scheme": enc.scheme,
            "key_name": enc.key_name,
            "key_epoch": enc.key_epoch,
            "plain_size": enc.plain_size,
            "plain_chunk_size": enc.plain_chunk_size,
        },
        "vetkd_input": hex::encode(vetkd_input(case.key_epoch)),
        "hkdf_info": hex::encode(aes_key_info(&canister, case.key_epoch)),
        "aes_key": hex::encode(key),
        "plaintext": hex::encode(&plain),
        "stored": hex::encode(&stored),
        "chunk0_aad": hex::encode(&aad0),
        "chunk0_nonce": hex::encode(&stored[..12]),
    })
}

fn document() -> String {
    let doc = json!({
        "about": "canvid-aes256gcm-v1 test vectors, written by client/encryption/tests/vectors.rs \
                  (UPDATE_VECTORS=1 cargo test -p canvid-encryption --test vectors). Byte fields \
                  are hex. aes_key = HKDF-SHA256(ikm = vetkey, salt = empty, info = hkdf_info); \
                  stored = for each chunk i: nonce (12) || AES-256-GCM ciphertext || tag (16), \
                  aad = chunk_aad(i); nonce = HMAC-SHA256(aes_key, 'canvid-nonce-v1' || aad || \
                  SHA-256(plaintext chunk))[..12].",
        "cases": CASES.iter().map(vector).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&doc).unwrap() + "\n"
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../sdk-ts/test/fixtures/encryption-vectors.json")
}

#[test]
fn typescript_vectors_are_current() {
    let want = document();
    if std::env::var_os("UPDATE_VECTORS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path().parent().unwrap()).unwrap();
        std::fs::write(path(), &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(path()).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; write it with UPDATE_VECTORS=1 cargo test -p canvid-encryption --test vectors",
            path().display()
        )
    });
    assert!(
        have == want,
        "{} is not what the scheme computes now: rerun with UPDATE_VECTORS=1 if the change is \
         deliberate (the TypeScript SDK must then match it again)",
        path().display()
    );
}

/// The vectors decrypt again (they are not only self-consistent strings).
#[test]
fn vectors_decrypt() {
    for case in &CASES {
        let v = vector(case);
        let canister = Principal::from_text(v["canister"].as_str().unwrap()).unwrap();
        let key = aes_key(
            &hex::decode(v["vetkey"].as_str().unwrap()).unwrap(),
            &canister,
            case.key_epoch,
        );
        let enc: Encryption = Encryption {
            scheme: SCHEME_AES256GCM_V1.into(),
            key_name: case.key_name.into(),
            key_epoch: case.key_epoch,
            plain_size: case.plain_size,
            plain_chunk_size: case.plain_chunk_size,
        };
        let cipher = VideoCipher::new(&key, canister, enc).unwrap();
        let stored = hex::decode(v["stored"].as_str().unwrap()).unwrap();
        let mut out = Vec::new();
        cipher.decrypt_to_writer(&stored[..], &mut out).unwrap();
        assert_eq!(
            hex::encode(out),
            v["plaintext"].as_str().unwrap(),
            "{}",
            case.name
        );
    }
}
