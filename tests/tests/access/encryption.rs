//! End-to-end encrypted videos (docs/encryption.md) on the embedded replica and on PocketIC
//! (with an II subnet: PocketIC keeps its vetKD keys there).
//!
//! The client half is `canvid-encryption`, the crate the CLI uses: the owner gets the video key
//! from `video_key`, encrypts, uploads ciphertext; an allowlisted viewer gets the same key and
//! decrypts what the canister serves. Then: the canister's whole stable memory, its query
//! answers and its HTTP answers hold no 47-byte run of the source file (while the scanner does
//! find the ciphertext, so it can fail); strangers, a removed viewer and a former owner get no
//! key; the new owner does; a viewer's ninth key of the day is refused; an upgrade keeps all of
//! it. Each delivery costs the canister the vetKD fee, measured.

use std::collections::HashSet;

use candid::Principal;
use canvid_encryption::{TransportKey, VideoCipher};
use canvid_tests::clients::{file_digest, ok, rejected, sha256, Video};
use canvid_tests::deploy::{standalone_video, T};
use canvid_tests::http_verify::certified_query;
use canvid_tests::{principal, wasm, Backend, BackendExt, GenFile};
use canvid_types::access::{
    AccessInfo, AccessMode, AccessPolicy, PlaybackToken, PlaybackTokenArgs,
};
use canvid_types::encryption::{
    vetkd_input, Encryption, VideoKey, VideoKeyArgs, MAX_KEYS_PER_VIEWER, SCHEME_AES256GCM_V1,
    VETKD_CONTEXT,
};
use canvid_types::video::UploadSpec;
use canvid_types::{Error, Result as CResult};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

/// What `vetkd_derive_key` keeps for `key_1` (mainnet's fee; the embedded replica and PocketIC 10
/// charge it too, tests/tests/fidelity.rs).
const VETKD_FEE: u128 = 26_153_846_153;
const PLAIN_CHUNK: u32 = 3_000;
/// Shortest run of source bytes the scans are sure to see (windows of 32 at every 16th offset).
const WINDOW: usize = 32;

/// The source file: low-entropy text first (what a weak scheme, e.g. ECB or a repeated
/// keystream, would show), then pseudo-random bytes; 4 chunks, the last one short.
fn plaintext() -> Vec<u8> {
    let mut v = Vec::new();
    let mut i = 0;
    while v.len() < 5_000 {
        v.extend(format!("canvid secret frame {i:06}\n").bytes());
        i += 1;
    }
    v.extend(GenFile::new(0x5ec2e7, 5_500, 5_500).bytes());
    v
}

/// The source's 32-byte windows at every 16th offset: any copy of 47 or more contiguous
/// source bytes contains one.
fn windows(source: &[u8]) -> HashSet<[u8; WINDOW]> {
    (0..=source.len() - WINDOW)
        .step_by(WINDOW / 2)
        .map(|i| source[i..i + WINDOW].try_into().unwrap())
        .collect()
}

/// The first offset of `hay` where one of `windows` starts.
fn find_any(hay: &[u8], windows: &HashSet<[u8; WINDOW]>) -> Option<usize> {
    if hay.len() < WINDOW {
        return None;
    }
    (0..=hay.len() - WINDOW)
        .find(|&i| windows.contains(&<[u8; WINDOW]>::try_from(&hay[i..i + WINDOW]).unwrap()))
}

fn key_args(t: &TransportKey) -> VideoKeyArgs {
    VideoKeyArgs {
        transport_public_key: ByteBuf::from(t.public_key()),
        key_name: None,
        key_epoch: None,
    }
}

fn video_key(
    b: &dyn Backend,
    v: &Video,
    who: Principal,
    args: &VideoKeyArgs,
) -> canvid_tests::clients::Answer<VideoKey> {
    b.update1::<_, CResult<VideoKey>>(v.id, who, "video_key", args)
}

/// `who`'s AES key of the video through a fresh transport key.
fn open_key(b: &dyn Backend, v: &Video, who: Principal) -> [u8; 32] {
    let t = TransportKey::random().unwrap();
    let answer = ok("video_key", video_key(b, v, who, &key_args(&t)));
    t.open(&answer, &v.id)
        .expect("the delivered key opens and verifies")
}

/// `inspect_message` refuses the call (so it costs the canister nothing), as the endpoint would.
#[track_caller]
fn assert_no_key(b: &dyn Backend, v: &Video, who: Principal, why: &str) {
    let before = b.cycle_balance(v.id);
    let t = TransportKey::random().unwrap();
    let r = rejected(why, video_key(b, v, who, &key_args(&t)));
    assert!(
        r.to_string().contains("IC0406") || r.to_string().contains("accept"),
        "{why}: {r}"
    );
    assert!(
        b.cycle_balance(v.id) + 1_000_000_000 > before,
        "{why}: a refused key request must not cost a vetKD fee"
    );
}

fn encrypted_video(b: &dyn Backend) {
    let owner = principal("enc-owner");
    let viewer = principal("enc-viewer");
    let frequent = principal("enc-frequent-viewer");
    let stranger = principal("enc-stranger");
    let buyer = principal("enc-buyer");
    let v = standalone_video(b, owner, None, 50 * T);
    let private = AccessPolicy {
        mode: AccessMode::Private,
        preview_bytes: None,
        free_paths: None,
    };
    ok::<AccessInfo>(
        "set_access_policy",
        b.update1(v.id, owner, "set_access_policy", &private),
    );
    ok::<u32>(
        "add_viewers",
        b.update1(v.id, owner, "add_viewers", &vec![viewer, frequent]),
    );

    // The owner's key, before the upload: one vetKD fee, verified against the public key.
    let t = TransportKey::random().unwrap();
    let before = b.cycle_balance(v.id);
    let answer = ok("owner's video_key", video_key(b, &v, owner, &key_args(&t)));
    let spent = before - b.cycle_balance(v.id);
    println!(
        "{}: one video_key costs the canister {spent} cycles (fee {VETKD_FEE})",
        b.name()
    );
    assert!(
        (VETKD_FEE..VETKD_FEE + 3_000_000_000).contains(&spent),
        "{}: video_key cost {spent} cycles, the fee is {VETKD_FEE}",
        b.name()
    );
    assert_eq!((answer.key_name.as_str(), answer.key_epoch), ("key_1", 0));
    assert_eq!(answer.context.as_slice(), VETKD_CONTEXT);
    assert_eq!(answer.input.as_slice(), vetkd_input(0).as_slice());
    let key = t.open(&answer, &v.id).expect("owner's key");
    assert!(
        TransportKey::random()
            .unwrap()
            .open(&answer, &v.id)
            .is_err(),
        "another transport key cannot open the answer"
    );

    // Encrypt and upload: the canister checks the shape and the ciphertext's digests.
    let source = plaintext();
    let enc = Encryption {
        scheme: SCHEME_AES256GCM_V1.into(),
        key_name: answer.key_name.clone(),
        key_epoch: 0,
        plain_size: source.len() as u64,
        plain_chunk_size: PLAIN_CHUNK,
    };
    let cipher = VideoCipher::new(&key, v.id, enc.clone()).unwrap();
    let stored: Vec<Vec<u8>> = source
        .chunks(PLAIN_CHUNK as usize)
        .enumerate()
        .map(|(i, c)| cipher.encrypt_chunk(i as u32, c).unwrap())
        .collect();
    assert_eq!(stored.len(), 4);
    let digests: Vec<[u8; 32]> = stored.iter().map(|c| Sha256::digest(c).into()).collect();
    let spec = UploadSpec {
        mime_type: "video/mp4".into(),
        total_size: enc.stored_size(),
        chunk_size: enc.stored_chunk_size() as u32,
        chunk_digests: Some(stored.iter().map(|c| sha256(c)).collect()),
        file_digest: Some(ByteBuf::from(file_digest(digests.clone()).to_vec())),
        duration_ms: Some(4_000),
        path: None,
        rendition: None,
        encryption: Some(enc.clone()),
    };
    let mut plain_sized = spec.clone();
    plain_sized.total_size = enc.plain_size;
    plain_sized.chunk_size = PLAIN_CHUNK;
    plain_sized.chunk_digests = None;
    plain_sized.file_digest = None;
    match v.begin_upload(owner, &plain_sized) {
        Ok(Err(Error::InvalidArgument { .. })) => {}
        other => panic!("a plaintext-sized encrypted declaration: {other:?}"),
    }
    ok("begin_upload", v.begin_upload(owner, &spec));
    for (i, c) in stored.iter().enumerate() {
        ok("put_chunk", v.put_chunk(owner, i as u32, c.clone()));
    }
    let meta = ok("finish_upload", v.finish_upload(owner));
    assert_eq!(meta.encryption.as_ref(), Some(&enc));
    assert_eq!(
        (meta.mime_type.as_str(), meta.size),
        ("video/mp4", enc.stored_size())
    );

    // Strangers get nothing; the viewer gets the same key and reads the source back.
    assert_no_key(b, &v, stranger, "a stranger's video_key");
    assert_no_key(
        b,
        &v,
        Principal::anonymous(),
        "the anonymous principal's video_key",
    );
    let tv = TransportKey::random().unwrap();
    let other_epoch = VideoKeyArgs {
        key_epoch: Some(1),
        ..key_args(&tv)
    };
    rejected(
        "a viewer's video_key of another epoch",
        video_key(b, &v, viewer, &other_epoch),
    );
    assert_eq!(
        open_key(b, &v, viewer),
        key,
        "the viewer's key is the owner's"
    );
    let mut read_back = Vec::new();
    let mut served = Vec::new();
    for i in 0..stored.len() as u32 {
        let c = ok("get_chunk", v.get_chunk(viewer, i)).into_vec();
        read_back.extend(
            cipher
                .decrypt_chunk(i, &c)
                .expect("the served chunk decrypts"),
        );
        served.push(c);
    }
    assert!(read_back == source, "the viewer decrypts the source file");

    // The HTTP answers a gateway gives the viewer: ciphertext, not a video type.
    let token: PlaybackToken = ok(
        "playback_token",
        b.update1(
            v.id,
            viewer,
            "playback_token",
            &PlaybackTokenArgs {
                ttl_seconds: Some(600),
            },
        ),
    );
    let url = format!("/video?token={}", token.token);
    let mut offset = 0u64;
    for (i, c) in stored.iter().enumerate() {
        let end = offset + c.len() as u64 - 1;
        let resp = certified_query(b, v.id, "GET", &url, Some(&format!("bytes={offset}-{end}")));
        assert_eq!(resp.status_code, 206, "chunk {i}");
        assert_eq!(
            resp.header("content-type"),
            Some("application/octet-stream")
        );
        assert!(
            resp.body.as_slice() == c.as_slice(),
            "chunk {i} is served as stored"
        );
        served.push(resp.body.into_vec());
        offset = end + 1;
    }
    let doc = certified_query(b, v.id, "GET", "/metadata.json", None);
    let json: serde_json::Value = serde_json::from_slice(&doc.body).unwrap();
    assert_eq!(json["encryption"]["scheme"], SCHEME_AES256GCM_V1);
    assert_eq!(json["encryption"]["plain_size"], source.len() as u64);
    served.push(doc.body.into_vec());

    // No run of the source anywhere the nodes or the network see it; the scanner works.
    let memory = b.stable_memory(v.id);
    let source_windows = windows(&source);
    assert_eq!(
        find_any(&memory, &source_windows),
        None,
        "source bytes in stable memory"
    );
    for (i, answer) in served.iter().enumerate() {
        assert_eq!(
            find_any(answer, &source_windows),
            None,
            "source bytes in answer {i}"
        );
    }
    assert!(
        find_any(&memory, &windows(&stored.concat())).is_some(),
        "the scan finds the stored ciphertext in stable memory"
    );

    // Rate limit: a viewer's keys of the day.
    for _ in 0..MAX_KEYS_PER_VIEWER {
        open_key(b, &v, frequent);
    }
    assert_no_key(b, &v, frequent, "a viewer's ninth key of the day");

    // An upgrade keeps the encryption and the viewer's access (and resets the heap limiter).
    b.upgrade(
        v.id,
        wasm::video_gz(),
        candid::encode_args(()).unwrap(),
        Some(owner),
    )
    .unwrap_or_else(|e| panic!("upgrade: {e}"));
    assert_eq!(v.metadata().encryption.as_ref(), Some(&enc));
    assert_eq!(open_key(b, &v, viewer), key);

    // Revocation: no new key; the key delivered before still decrypts (docs/encryption.md).
    ok::<u32>(
        "remove_viewers",
        b.update1(v.id, owner, "remove_viewers", &vec![viewer]),
    );
    assert_no_key(b, &v, viewer, "a removed viewer's video_key");
    assert!(cipher.decrypt_chunk(0, &stored[0]).is_ok());

    // Owner change: the key follows the owner.
    ok("change_owner", v.change_owner(owner, buyer));
    assert_eq!(open_key(b, &v, buyer), key, "the new owner's key");
    assert_no_key(b, &v, owner, "the former owner's video_key");
}

#[test]
fn on_replica() {
    encrypted_video(&canvid_tests::replica_backend::ReplicaBackend::new());
}

#[test]
#[cfg_attr(
    not(canvid_pocket_ic),
    ignore = "PocketIC not configured: set POCKET_IC_BIN to a pocket-ic-server 10.0.0 binary"
)]
fn on_pocket_ic() {
    encrypted_video(&canvid_tests::pocket_backend::PocketIcBackend::from_env_with_threshold_keys());
}
