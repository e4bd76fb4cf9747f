//! Where the embedded replica must behave as the IC does, checked on both backends: system
//! behaviour canvid's canisters rely on but that none of the product scenarios pins down alone.

use std::time::Duration;

use canvid_tests::deploy::T;
use canvid_tests::{backend_tests, principal, wasm, Backend, BackendExt, Principal};

/// Queries (and `inspect_message`) run on the latest state, at its time: a clock moved with
/// `advance_time` applies from the next round. The video canister's HTTP update budget
/// (`inspect_message` counts by minute) depends on it.
fn queries_see_the_time_of_the_last_round(b: &dyn Backend) {
    let ctl = principal("fidelity-controller");
    let id = b.create_canister(Some(ctl), Some(vec![ctl]), 10 * T);
    b.install(
        id,
        wasm::load("replica-probe"),
        candid::encode_args(()).expect("()"),
        Some(ctl),
    )
    .unwrap_or_else(|e| panic!("install: {e}"));
    let time = || -> u64 {
        b.query(id, Principal::anonymous(), "time", ())
            .map(|(t,): (u64,)| t)
            .unwrap_or_else(|e| panic!("time: {e}"))
    };
    b.tick();
    let before = time();
    b.advance_time(Duration::from_secs(3_600));
    assert_eq!(
        time(),
        before,
        "{}: the clock applies from the next round",
        b.name()
    );
    b.tick();
    let after = time();
    assert!(
        after >= before + 3_600_000_000_000,
        "{}: after a round the query sees the moved clock ({before} -> {after})",
        b.name()
    );
}

/// A timer armed in `post_upgrade` fires: the IC deactivates the global timer *before* the
/// upgrade runs, so `post_upgrade` can arm it again (what ic-cdk-timers users, and the video
/// canister's notification retry, rely on). Found by `properties_spawn.rs` (seed 1): the
/// embedded replica cleared the timer *after* `post_upgrade`, losing it, so a video upgraded by
/// `upgrade_videos` with an index notification pending never sent it again.
fn a_timer_armed_in_post_upgrade_fires(b: &dyn Backend) {
    let owner = principal("fidelity-owner");
    // An index that does not exist: every notification fails and stays pending.
    let index = Principal::from_slice(&[0, 0, 0, 0, 0, 0xFF, 0xF0, 0x01, 0x01, 0x01]);
    let v = canvid_tests::deploy::standalone_video(b, owner, Some(index), 10 * T);
    canvid_tests::clients::ok(
        "change_owner",
        v.change_owner(owner, principal("fidelity-new")),
    );
    let attempts = || {
        v.canister_info()
            .pending_index_notification
            .map(|p| p.attempts)
    };
    assert_eq!(
        attempts(),
        Some(1),
        "{}: the notification failed once",
        b.name()
    );
    let new_owner = principal("fidelity-new");
    b.upgrade(
        v.id,
        wasm::video_gz(),
        candid::encode_args(()).unwrap(),
        Some(new_owner),
    )
    .unwrap_or_else(|e| panic!("{}: upgrade: {e}", b.name()));
    // post_upgrade arms a zero-delay timer that sends the notification again.
    for _ in 0..5 {
        b.tick();
    }
    assert_eq!(
        attempts(),
        Some(2),
        "{}: the timer post_upgrade armed did not fire",
        b.name()
    );
}

backend_tests!(
    queries_see_the_time_of_the_last_round,
    a_timer_armed_in_post_upgrade_fires
);

/// vetKD on the management canister (`vetkd_public_key`, `vetkd_derive_key`), the same checks on
/// both backends: PocketIC holds its threshold keys on an II subnet, so its variant runs on an
/// instance with one (`PocketIcBackend::from_env_with_threshold_keys`), which the other tests
/// here do not need.
mod vetkd {
    use super::*;
    use candid::{CandidType, Deserialize};
    use canvid_tests::clients::{CallOutcome, Relay};
    use serde_bytes::ByteBuf;

    #[derive(CandidType, Deserialize, Clone, Debug)]
    #[allow(non_camel_case_types)]
    enum Curve {
        bls12_381_g2,
    }

    #[derive(CandidType, Deserialize, Clone, Debug)]
    struct KeyId {
        curve: Curve,
        name: String,
    }

    #[derive(CandidType)]
    struct PublicKeyArgs {
        canister_id: Option<Principal>,
        context: ByteBuf,
        key_id: KeyId,
    }

    #[derive(CandidType)]
    struct DeriveKeyArgs {
        input: ByteBuf,
        context: ByteBuf,
        key_id: KeyId,
        transport_public_key: ByteBuf,
    }

    #[derive(Deserialize, CandidType)]
    struct PublicKeyResult {
        public_key: ByteBuf,
    }

    #[derive(Deserialize, CandidType)]
    struct DeriveKeyResult {
        encrypted_key: ByteBuf,
    }

    fn key(name: &str) -> KeyId {
        KeyId {
            curve: Curve::bls12_381_g2,
            name: name.into(),
        }
    }

    fn public_key(
        r: &Relay,
        canister: Option<Principal>,
        context: &[u8],
        name: &str,
    ) -> CallOutcome {
        let arg = candid::encode_one(PublicKeyArgs {
            canister_id: canister,
            context: ByteBuf::from(context.to_vec()),
            key_id: key(name),
        })
        .unwrap();
        r.call_raw(Principal::management_canister(), "vetkd_public_key", arg, 0)
    }

    fn derive(
        r: &Relay,
        input: &[u8],
        context: &[u8],
        name: &str,
        tpk: &[u8],
        cycles: u128,
    ) -> CallOutcome {
        let arg = candid::encode_one(DeriveKeyArgs {
            input: ByteBuf::from(input.to_vec()),
            context: ByteBuf::from(context.to_vec()),
            key_id: key(name),
            transport_public_key: ByteBuf::from(tpk.to_vec()),
        })
        .unwrap();
        r.call_raw(
            Principal::management_canister(),
            "vetkd_derive_key",
            arg,
            cycles,
        )
    }

    /// A candid variant the management canister does not know (the IC has one curve).
    #[derive(CandidType)]
    #[allow(non_camel_case_types)]
    enum OtherCurve {
        bls12_381_g1,
    }

    #[derive(CandidType)]
    struct OtherKeyId {
        curve: OtherCurve,
        name: String,
    }

    #[derive(CandidType)]
    struct OtherCurveArgs {
        canister_id: Option<Principal>,
        context: ByteBuf,
        key_id: OtherKeyId,
    }

    /// `vetkd_derive_key`'s fee, as PocketIC 10 charges it for every key (10 B × 34 / 13).
    const FEE: u128 = 26_153_846_153;
    const NAMES: [&str; 3] = ["key_1", "test_key_1", "dfx_test_key"];

    #[track_caller]
    fn reply<R: serde::de::DeserializeOwned + CandidType>(b: &dyn Backend, o: &CallOutcome) -> R {
        match o {
            CallOutcome::Reply { data, .. } => candid::decode_one(data).unwrap(),
            other => panic!("{}: expected a reply, got {other:?}", b.name()),
        }
    }

    fn dpk(b: &dyn Backend, o: &CallOutcome) -> ic_vetkeys::DerivedPublicKey {
        let r: PublicKeyResult = reply(b, o);
        ic_vetkeys::DerivedPublicKey::deserialize(&r.public_key).expect("a G2 point")
    }

    fn ek(b: &dyn Backend, o: &CallOutcome) -> ic_vetkeys::EncryptedVetKey {
        let r: DeriveKeyResult = reply(b, o);
        ic_vetkeys::EncryptedVetKey::deserialize(&r.encrypted_key).expect("c1, c2, c3")
    }

    #[track_caller]
    fn rejected(o: &CallOutcome, code: u32, prefix: &str, refunded: u128) -> String {
        match o {
            CallOutcome::Reject {
                code: c,
                message,
                refunded: r,
            } => {
                assert_eq!((*c, *r), (code, refunded), "{message}");
                assert!(message.starts_with(prefix), "{message:?} !~ {prefix:?}");
                message.clone()
            }
            other => panic!("expected a reject, got {other:?}"),
        }
    }

    type Ingress<'a> = &'a dyn Fn(
        Principal,
        Principal,
        &str,
        Vec<u8>,
    ) -> Result<Vec<u8>, canvid_tests::backend::Reject>;

    /// The vetKD methods as a canister sees them: keys that decrypt and verify with the official
    /// client library, derived per key, canister, context and input; the fee kept and the rest
    /// refunded; the IC's refusals (codes, texts, refunds); no ingress.
    fn vetkd_methods(b: &dyn Backend, ingress: Ingress) {
        let ctl = principal("vetkd-controller");
        let r = Relay::deploy(b, ctl, 100 * T);
        let r2 = Relay::deploy(b, ctl, 100 * T);
        let tsk = ic_vetkeys::TransportSecretKey::from_seed(vec![7; 32]).unwrap();
        let tpk = tsk.public_key();
        let mut keys = Vec::new();
        for name in NAMES {
            // The context's key is the canister key's sub-key as the client derives it.
            let canister_key = dpk(b, &public_key(&r, None, b"", name));
            let videos = dpk(b, &public_key(&r, None, b"videos", name));
            assert_eq!(
                canister_key.derive_sub_key(b"videos"),
                videos,
                "{}: {name}",
                b.name()
            );
            assert_ne!(canister_key, videos);
            // Another canister's key, asked for by id, is the one it gets itself.
            let of_r2 = dpk(b, &public_key(&r, Some(r2.id), b"videos", name));
            assert_eq!(of_r2, dpk(b, &public_key(&r2, None, b"videos", name)));
            assert_ne!(of_r2, videos, "{}: another canister, another key", b.name());
            if b.name() == "pocket-ic" {
                // PocketIC's master keys are published: the whole derivation is the client's.
                let id = ic_vetkeys::MasterPublicKey::for_pocketic_key(&ic_cdk_vetkd_key_id(name))
                    .expect("a PocketIC key")
                    .derive_canister_key(r.id.as_slice());
                assert_eq!(id, canister_key, "pocket-ic: {name}");
            }

            // The fee is kept, the rest refunded, and the key decrypts and verifies.
            let before = b.cycle_balance(r.id);
            let out = derive(&r, b"video-1", b"videos", name, &tpk, FEE + 1_000);
            let spent = before - b.cycle_balance(r.id);
            assert_eq!(out.refunded(), Some(1_000), "{}: {name}", b.name());
            assert!(
                (FEE..FEE + 100_000_000).contains(&spent),
                "{}: {name}: the relay spent {spent}",
                b.name()
            );
            let k1 = ek(b, &out)
                .decrypt_and_verify(&tsk, &videos, b"video-1")
                .unwrap_or_else(|e| panic!("{}: {name}: {e}", b.name()));
            // Deterministic: the same request, the same key (in another ciphertext or not).
            let again = derive(&r, b"video-1", b"videos", name, &tpk, FEE);
            assert_eq!(again.refunded(), Some(0));
            let k1b = ek(b, &again)
                .decrypt_and_verify(&tsk, &videos, b"video-1")
                .unwrap();
            assert_eq!(k1.signature_bytes(), k1b.signature_bytes());
            // Another input: another key, not valid for the first input.
            let other = ek(b, &derive(&r, b"video-2", b"videos", name, &tpk, FEE));
            assert!(other.decrypt_and_verify(&tsk, &videos, b"video-1").is_err());
            let k2 = other.decrypt_and_verify(&tsk, &videos, b"video-2").unwrap();
            assert_ne!(k1.signature_bytes(), k2.signature_bytes());
            // Another context: another key, under that context's public key only.
            let ctx2 = ek(b, &derive(&r, b"video-1", b"thumbs", name, &tpk, FEE));
            assert!(ctx2.decrypt_and_verify(&tsk, &videos, b"video-1").is_err());
            let thumbs = dpk(b, &public_key(&r, None, b"thumbs", name));
            let k3 = ctx2.decrypt_and_verify(&tsk, &thumbs, b"video-1").unwrap();
            assert_ne!(k1.signature_bytes(), k3.signature_bytes());
            // Another canister: another key, under its own public key only.
            let by_r2 = ek(b, &derive(&r2, b"video-1", b"videos", name, &tpk, FEE));
            assert!(by_r2.decrypt_and_verify(&tsk, &videos, b"video-1").is_err());
            let k4 = by_r2.decrypt_and_verify(&tsk, &of_r2, b"video-1").unwrap();
            assert_ne!(k1.signature_bytes(), k4.signature_bytes());
            // Another transport key cannot decrypt it.
            let stranger = ic_vetkeys::TransportSecretKey::from_seed(vec![8; 32]).unwrap();
            assert!(ek(b, &again)
                .decrypt_and_verify(&stranger, &videos, b"video-1")
                .is_err());
            keys.push(videos.serialize());
        }
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[1], keys[2]);
        assert_ne!(keys[0], keys[2]);

        // ic0.cost_vetkd_derive_key, and ic-cdk-management-canister's helper, which attaches
        // exactly that (how a product canister asks for a key).
        let cost = |name: &str, curve: u32| -> Result<u128, u32> {
            b.query(
                r.id,
                Principal::anonymous(),
                "cost_vetkd_derive_key",
                (name, curve),
            )
            .map(|(c,): (Result<u128, u32>,)| c)
            .unwrap_or_else(|e| panic!("{}: cost_vetkd_derive_key: {e}", b.name()))
        };
        for name in NAMES {
            assert_eq!(cost(name, 0), Ok(FEE), "{}: {name}", b.name());
        }
        assert_eq!(cost("nope", 0), Err(2), "{}: unknown key", b.name());
        assert_eq!(cost("key_1", 1), Err(1), "{}: unknown curve", b.name());
        let before = b.cycle_balance(r.id);
        let via_cdk: Result<DeriveKeyResult, String> = b
            .update1(
                r.id,
                Principal::anonymous(),
                "vetkd_derive_key_with_cdk",
                &DeriveKeyArgs {
                    input: ByteBuf::from(b"video-1".to_vec()),
                    context: ByteBuf::from(b"videos".to_vec()),
                    key_id: key("test_key_1"),
                    transport_public_key: ByteBuf::from(tpk.clone()),
                },
            )
            .unwrap_or_else(|e| panic!("{}: vetkd_derive_key_with_cdk: {e}", b.name()));
        let spent = before - b.cycle_balance(r.id);
        assert!(
            (FEE..FEE + 100_000_000).contains(&spent),
            "{}: {spent}",
            b.name()
        );
        let videos = dpk(b, &public_key(&r, None, b"videos", "test_key_1"));
        ic_vetkeys::EncryptedVetKey::deserialize(&via_cdk.expect("derived").encrypted_key)
            .unwrap()
            .decrypt_and_verify(&tsk, &videos, b"video-1")
            .unwrap_or_else(|e| panic!("{}: {e}", b.name()));

        // Unknown key: the call cannot be routed (no subnet holds it); cycles all refunded.
        let m = rejected(
            &public_key(&r, None, b"videos", "nope"),
            3,
            "Unable to route management canister request vetkd_public_key: ChainKeyError(\"Requested unknown threshold key: vetkd:Bls12_381_G2:nope, existing keys: [",
            0,
        );
        assert!(
            m.contains("vetkd:Bls12_381_G2:key_1") && m.contains("vetkd:Bls12_381_G2:test_key_1")
        );
        rejected(
            &derive(&r, b"in", b"videos", "nope", &tpk, FEE),
            3,
            "Unable to route management canister request vetkd_derive_key: ChainKeyError(\"Requested unknown or disabled threshold key: vetkd:Bls12_381_G2:nope, existing enabled keys: [",
            FEE,
        );
        // Another curve does not decode.
        let arg = candid::encode_one(OtherCurveArgs {
            canister_id: None,
            context: ByteBuf::new(),
            key_id: OtherKeyId {
                curve: OtherCurve::bls12_381_g1,
                name: "key_1".into(),
            },
        })
        .unwrap();
        rejected(
            &r.call_raw(Principal::management_canister(), "vetkd_public_key", arg, 0),
            3,
            "Unable to route management canister request vetkd_public_key: UserError(UserError { code: InvalidManagementPayload, description: \"Error decoding candid: ",
            0,
        );
        // A transport key that is not a G1 point; one that is not 48 bytes (does not decode).
        rejected(
            &derive(&r, b"in", b"videos", "test_key_1", &[1; 48], FEE),
            4,
            "The provided transport public key is invalid.",
            FEE,
        );
        let m = rejected(
            &derive(&r, b"in", b"videos", "test_key_1", &tpk[..47], FEE),
            3,
            "Unable to route management canister request vetkd_derive_key: UserError(UserError { code: InvalidManagementPayload, description: \"Error decoding candid: ",
            FEE,
        );
        assert!(
            m.contains("invalid length 47, expected a byte array of length 48"),
            "{m}"
        );
        // Too few cycles: refused, all refunded.
        let m = rejected(
            &derive(&r, b"in", b"videos", "test_key_1", &tpk, FEE - 1),
            4,
            "vetkd_derive_key request sent with 26_153_846_152 cycles, but 26_153_846_153 cycles are required.",
            FEE - 1,
        );
        assert_eq!(m.len(), "vetkd_derive_key request sent with 26_153_846_152 cycles, but 26_153_846_153 cycles are required.".len());

        // Only canisters may call them.
        for (method, arg) in [
            (
                "vetkd_public_key",
                candid::encode_one(PublicKeyArgs {
                    canister_id: Some(r.id),
                    context: ByteBuf::new(),
                    key_id: key("test_key_1"),
                })
                .unwrap(),
            ),
            (
                "vetkd_derive_key",
                candid::encode_one(DeriveKeyArgs {
                    input: ByteBuf::from(b"in".to_vec()),
                    context: ByteBuf::new(),
                    key_id: key("test_key_1"),
                    transport_public_key: ByteBuf::from(tpk.clone()),
                })
                .unwrap(),
            ),
        ] {
            let e = ingress(r.id, ctl, method, arg).expect_err("ingress is refused");
            assert_eq!(
                (e.error_code.as_str(), e.message.as_str()),
                (
                    "IC0406",
                    format!("ic00 method {method} can not be called via ingress messages").as_str()
                ),
                "{}",
                b.name()
            );
        }
    }

    fn ic_cdk_vetkd_key_id(name: &str) -> ic_cdk_management_canister_01::VetKDKeyId {
        ic_cdk_management_canister_01::VetKDKeyId {
            curve: ic_cdk_management_canister_01::VetKDCurve::Bls12_381_G2,
            name: name.into(),
        }
    }

    #[test]
    fn on_replica() {
        let rb = canvid_tests::replica_backend::ReplicaBackend::new();
        vetkd_methods(&rb, &|_effective, sender, method, arg| {
            rb.update_raw(Principal::management_canister(), sender, method, arg)
        });
    }

    #[test]
    #[cfg_attr(
        not(canvid_pocket_ic),
        ignore = "PocketIC not configured: set POCKET_IC_BIN to a pocket-ic-server 10.0.0 binary"
    )]
    fn on_pocket_ic() {
        let p = canvid_tests::pocket_backend::PocketIcBackend::from_env_with_threshold_keys();
        vetkd_methods(&p, &|effective, sender, method, arg| {
            p.management_ingress(effective, sender, method, arg)
        });
    }
}
