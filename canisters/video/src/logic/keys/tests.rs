use candid::Principal;
use canvid_types::access::{AccessMode, AccessPolicy};
use canvid_types::encryption::{
    Encryption, VideoKeyArgs, KEY_WINDOW_NS, MAX_KEYS_PER_VIEWER, MAX_VIEWER_KEYS,
    SCHEME_AES256GCM_V1,
};
use canvid_types::video::{UploadSpec, VideoInit};
use canvid_types::Error;
use ic_stable_structures::VectorMemory;
use serde_bytes::ByteBuf;

use super::*;
use crate::logic::access::{add_viewers, remove_viewers, set_policy};
use crate::store::VideoStore;

fn p(n: u8) -> Principal {
    Principal::from_slice(&[n, 1])
}
const OWNER: u8 = 1;
const UPLOADER: u8 = 2;
const VIEWER: u8 = 3;
const STRANGER: u8 = 4;

fn enc() -> Encryption {
    Encryption {
        scheme: SCHEME_AES256GCM_V1.into(),
        key_name: "test_key_1".into(),
        key_epoch: 3,
        plain_size: 100,
        plain_chunk_size: 40,
    }
}

fn args() -> VideoKeyArgs {
    VideoKeyArgs {
        transport_public_key: ByteBuf::from(vec![0xa0; 48]),
        key_name: None,
        key_epoch: None,
    }
}

fn private() -> AccessPolicy {
    AccessPolicy {
        mode: AccessMode::Private,
        preview_bytes: None,
        free_paths: None,
    }
}

/// A video owned by p(1), with uploader p(2), allowlisted viewer p(3), private; its upload
/// declared with `encryption` (finished when `finish`).
fn video(encryption: Option<Encryption>, finish: bool) -> VideoStore<VectorMemory> {
    let init = VideoInit {
        owner: p(OWNER),
        creator: p(OWNER),
        index: None,
        title: "t".into(),
        description: String::new(),
        tags: vec![],
        funded_by: None,
        platform_fee: None,
    };
    let mut v = VideoStore::init(VectorMemory::default(), &init, p(OWNER), 1).unwrap();
    v.add_uploader(p(UPLOADER), 1).unwrap();
    set_policy(&mut v, private(), 1).unwrap();
    add_viewers(&mut v, &[p(VIEWER)]).unwrap();
    let (total, chunk) = match &encryption {
        Some(e) => (e.stored_size(), e.stored_chunk_size() as u32),
        None => (100, 40),
    };
    v.begin_upload(
        &UploadSpec {
            mime_type: "video/mp4".into(),
            total_size: total,
            chunk_size: chunk,
            chunk_digests: None,
            file_digest: None,
            duration_ms: None,
            path: None,
            rendition: None,
            encryption,
        },
        2,
    )
    .unwrap();
    if finish {
        let data = vec![7u8; total as usize];
        for (i, c) in data.chunks(chunk as usize).enumerate() {
            v.put_chunk(i as u32, c, 3).unwrap();
        }
        v.finish_upload(4).unwrap();
    }
    v
}

fn not_authorized(r: Result<KeyPlan>) -> String {
    match r {
        Err(Error::NotAuthorized { reason, .. }) => reason,
        other => panic!("expected NotAuthorized, got {other:?}"),
    }
}

#[test]
fn owner_and_uploaders_get_any_key_before_and_after_the_upload() {
    let v = video(None, false);
    for who in [OWNER, UPLOADER] {
        let got = plan(&v, &p(who), 5, &args()).unwrap();
        assert_eq!(
            got,
            KeyPlan {
                role: KeyRole::Keeper,
                key_name: "key_1".into(),
                key_epoch: 0
            }
        );
        let asked = VideoKeyArgs {
            key_name: Some("dfx_test_key".into()),
            key_epoch: Some(9),
            ..args()
        };
        let plan = plan(&v, &p(who), 5, &asked).unwrap();
        assert_eq!(
            (plan.key_name.as_str(), plan.key_epoch),
            ("dfx_test_key", 9)
        );
    }
    // Once declared, the upload's key is the default.
    let v = video(Some(enc()), false);
    let got = plan(&v, &p(OWNER), 5, &args()).unwrap();
    assert_eq!((got.key_name.as_str(), got.key_epoch), ("test_key_1", 3));
}

#[test]
fn viewers_get_only_the_finished_uploads_key() {
    let unfinished = video(Some(enc()), false);
    assert!(matches!(
        plan(&unfinished, &p(VIEWER), 5, &args()),
        Err(Error::NotReady { .. })
    ));
    let clear = video(None, true);
    assert!(matches!(
        plan(&clear, &p(VIEWER), 5, &args()),
        Err(Error::InvalidArgument { .. })
    ));
    let v = video(Some(enc()), true);
    let got = plan(&v, &p(VIEWER), 5, &args()).unwrap();
    assert_eq!(
        got,
        KeyPlan {
            role: KeyRole::Viewer,
            key_name: "test_key_1".into(),
            key_epoch: 3
        }
    );
    // Naming the upload's own key is fine; another key or epoch is not.
    let same = VideoKeyArgs {
        key_name: Some("test_key_1".into()),
        key_epoch: Some(3),
        ..args()
    };
    assert_eq!(plan(&v, &p(VIEWER), 5, &same).unwrap(), got);
    for other in [
        VideoKeyArgs {
            key_epoch: Some(4),
            ..args()
        },
        VideoKeyArgs {
            key_name: Some("key_1".into()),
            ..args()
        },
    ] {
        not_authorized(plan(&v, &p(VIEWER), 5, &other));
    }
}

#[test]
fn strangers_anonymous_and_everyone_on_a_public_video_are_refused() {
    let mut v = video(Some(enc()), true);
    not_authorized(plan(&v, &p(STRANGER), 5, &args()));
    not_authorized(plan(&v, &Principal::anonymous(), 5, &args()));
    set_policy(&mut v, AccessPolicy::public(), 6).unwrap();
    let reason = not_authorized(plan(&v, &p(STRANGER), 7, &args()));
    assert!(reason.contains("public"), "{reason}");
    // ...but the owner still gets it (the video stays theirs to decrypt).
    assert_eq!(
        plan(&v, &p(OWNER), 7, &args()).unwrap().role,
        KeyRole::Keeper
    );
}

#[test]
fn revocation_and_owner_change_take_effect_for_the_next_request() {
    let mut v = video(Some(enc()), true);
    assert!(plan(&v, &p(VIEWER), 5, &args()).is_ok());
    remove_viewers(&mut v, &[p(VIEWER)]).unwrap();
    not_authorized(plan(&v, &p(VIEWER), 6, &args()));
    // A new owner gets the key; the old one no longer does.
    v.update_state(|s| {
        s.owner = p(STRANGER);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        plan(&v, &p(STRANGER), 7, &args()).unwrap().role,
        KeyRole::Keeper
    );
    not_authorized(plan(&v, &p(OWNER), 7, &args()));
}

#[test]
fn bad_transport_keys_and_unknown_key_names_are_invalid() {
    let v = video(None, false);
    for len in [0, 47, 49, 96] {
        let bad = VideoKeyArgs {
            transport_public_key: ByteBuf::from(vec![1; len]),
            ..args()
        };
        assert!(matches!(
            plan(&v, &p(OWNER), 5, &bad),
            Err(Error::InvalidArgument { .. })
        ));
    }
    let unknown = VideoKeyArgs {
        key_name: Some("secp256k1".into()),
        ..args()
    };
    assert!(matches!(
        plan(&v, &p(OWNER), 5, &unknown),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn limiter_caps_each_viewer_and_all_viewers_per_window() {
    let mut l = KeyLimiter::default();
    let t0 = 1_000;
    for _ in 0..MAX_KEYS_PER_VIEWER {
        l.admit(&p(1), t0).unwrap();
    }
    assert!(matches!(l.admit(&p(1), t0 + 1), Err(Error::Busy { .. })));
    // Others still may, up to the total.
    let mut n = MAX_KEYS_PER_VIEWER;
    let mut who = 2u8;
    while n < MAX_VIEWER_KEYS {
        for _ in 0..MAX_KEYS_PER_VIEWER.min(MAX_VIEWER_KEYS - n) {
            l.admit(&p(who), t0 + 2).unwrap();
            n += 1;
        }
        who += 1;
    }
    assert!(matches!(l.admit(&p(200), t0 + 3), Err(Error::Busy { .. })));
    assert!(l.per_viewer.len() <= MAX_VIEWER_KEYS as usize);
    // A new window starts afresh.
    l.admit(&p(1), t0 + KEY_WINDOW_NS).unwrap();
    l.admit(&p(200), t0 + KEY_WINDOW_NS).unwrap();
    assert_eq!(l.total, 2);
}
