//! The spawn canister: creating video canisters, paying for them, failing safely.

use canvid_tests::clients::{err, ok, rejected, CallOutcome, Relay};
use canvid_tests::deploy::{deploy, deploy_with, Deployment, T};
use canvid_tests::{backend_tests, principal, wasm, Backend, BackendExt, GenFile, Principal};
use canvid_types::spawn::{CreateVideoArgs, CreatedVideo, Payer, QuotaArgs, SpawnStatus};
use canvid_types::video::{ControlStatus, VideoStatus, MAX_VIDEO_SIZE};
use canvid_types::Error;
use std::collections::BTreeSet;

fn args(title: &str, declared_size: u64) -> CreateVideoArgs {
    CreateVideoArgs {
        title: title.into(),
        description: format!("{title}, created by canvid-tests"),
        tags: vec!["test".into()],
        declared_size,
        owner: None,
    }
}

/// Checks everything a finished creation promises.
fn assert_spawned(d: &Deployment, created: &CreatedVideo, owner: Principal) {
    let id = created.canister_id;
    assert!(d.b.canister_exists(id));
    assert_eq!(
        d.b.controllers(id).into_iter().collect::<BTreeSet<_>>(),
        [id, d.spawn].into_iter().collect::<BTreeSet<_>>(),
        "controllers of a spawned video before its upload is finished: itself and the spawn \
         canister (the owner gets control at finish_upload: security review M3)"
    );
    assert!(created.indexed, "the index acknowledged the registration");
    let rec = d
        .spawn_client()
        .get_video(id)
        .expect("spawn keeps a record");
    assert_eq!(rec.status, SpawnStatus::Registered);
    assert_eq!(rec.owner, owner);
    assert!(rec.wasm_sha256.is_some());
    let entry = d.index_client().get_video(id).expect("index entry");
    assert_eq!(entry.owner, owner);
    assert_eq!(entry.creator, owner);
    let meta = d.video(id).metadata();
    assert_eq!(meta.owner, owner);
    assert_eq!(meta.creator, owner);
    assert_eq!(meta.index, Some(d.index));
    assert_eq!(meta.status, VideoStatus::Empty);
    assert_eq!(
        meta.control,
        Some(ControlStatus::AfterUpload { funded_by: d.spawn })
    );
}

fn spawn_creates_a_working_video(b: &dyn Backend) {
    let d = deploy(b);
    let alice = principal("alice");
    let before = b.canister_count();
    let estimate = d.spawn_client().estimate_cycles(1_000_000);
    let pool_before = b.cycle_balance(d.spawn);
    let created = ok(
        "create_video",
        d.spawn_client()
            .create_video(alice, &args("first", 1_000_000)),
    );
    assert_eq!(b.canister_count(), before + 1);
    assert_spawned(&d, &created, alice);
    // The pool paid the estimate (creation fee + cycles given), within the quota.
    let q = d.spawn_client().quota_of(alice);
    assert_eq!(q.used_videos, 1);
    assert_eq!(q.used_cycles, estimate);
    assert!(b.cycle_balance(d.spawn) <= pool_before - estimate);
    let rec = d
        .spawn_client()
        .get_video(created.canister_id)
        .expect("record");
    assert_eq!(rec.payer, Payer::Pool);
    assert_eq!(rec.caller, alice);

    // The new canister works: alice uploads into it; the index lists it.
    let v = d.video(created.canister_id);
    let file = GenFile::new(11, 300_000, 100_000);
    let pool_before_finish = b.cycle_balance(d.spawn);
    let meta = v.upload(alice, &file);
    v.verify_chunks(principal("viewer"), &file);
    // finish_upload handed control to alice after giving any unused cycles back: the pool got
    // them and alice's quota use fell by as much.
    assert_eq!(meta.control, Some(ControlStatus::Owner));
    assert_eq!(
        b.controllers(created.canister_id)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        [alice, created.canister_id, d.spawn]
            .into_iter()
            .collect::<BTreeSet<_>>()
    );
    let rec = d
        .spawn_client()
        .get_video(created.canister_id)
        .expect("record");
    // (Declared 1 MB, uploaded 300 KB: little to give back; see spawn_security's M3 test.)
    let returned = rec.cycles_returned.unwrap_or(0);
    assert!(b.cycle_balance(d.spawn) >= pool_before_finish + returned - 1_000_000_000);
    assert_eq!(
        d.spawn_client().quota_of(alice).used_cycles,
        estimate - returned
    );
    let listed: Vec<Principal> = d
        .index_client()
        .by_creator(alice)
        .into_iter()
        .map(|e| e.video)
        .collect();
    assert_eq!(listed, vec![created.canister_id]);

    // Anonymous callers are refused at the door.
    let r = rejected(
        "anonymous create_video",
        d.spawn_client()
            .create_video(Principal::anonymous(), &args("x", 1)),
    );
    assert_eq!(r.error_code, "IC0406", "{r}");
}

fn spawn_refuses_without_cycles(b: &dyn Backend) {
    let d = deploy(b);
    let sp = d.spawn_client();
    let bob = principal("bob");
    let estimate = sp.estimate_cycles(5_000_000);
    let before = b.canister_count();
    let created_before = sp.stats().videos_created;

    // 1. The caller's quota is smaller than the price.
    ok(
        "set_quota",
        sp.set_quota(
            d.admin,
            bob,
            QuotaArgs {
                max_videos: 5,
                max_cycles: estimate - 1,
            },
        ),
    );
    match err(
        "create_video over quota",
        sp.create_video(bob, &args("too dear", 5_000_000)),
    ) {
        Error::InsufficientCycles {
            required,
            available,
        } => {
            assert_eq!(required, estimate);
            assert_eq!(available, estimate - 1);
        }
        e => panic!("expected InsufficientCycles, got {e:?}"),
    }
    // 2. A declared size the video canister could never hold.
    match err(
        "create_video too large",
        sp.create_video(bob, &args("huge", MAX_VIDEO_SIZE + 1)),
    ) {
        Error::TooLarge { size, limit } => {
            assert_eq!((size, limit), (MAX_VIDEO_SIZE + 1, MAX_VIDEO_SIZE))
        }
        e => panic!("expected TooLarge, got {e:?}"),
    }
    // 3. The quota's video count is used up. Such a caller cannot pay for any creation, so its
    // ingress is refused before the spawn canister pays for it (IC0406); from a canister, the
    // endpoint answers why.
    ok(
        "set_quota",
        sp.set_quota(
            d.admin,
            bob,
            QuotaArgs {
                max_videos: 0,
                max_cycles: 100 * T,
            },
        ),
    );
    let r = rejected(
        "create_video over video quota",
        sp.create_video(bob, &args("too many", 1)),
    );
    assert_eq!(r.error_code, "IC0406", "{r}");
    let relay_bob = Relay::deploy(b, bob, 20 * T);
    ok(
        "set_quota",
        sp.set_quota(
            d.admin,
            relay_bob.id,
            QuotaArgs {
                max_videos: 0,
                max_cycles: 100 * T,
            },
        ),
    );
    match relay_bob.call_raw(
        d.spawn,
        "create_video",
        candid::encode_one(args("too many", 1)).unwrap(),
        0,
    ) {
        CallOutcome::Reply { data, .. } => {
            match candid::decode_one::<canvid_types::Result<CreatedVideo>>(&data).expect("decode") {
                Err(Error::NotAuthorized { caller, .. }) => assert_eq!(caller, relay_bob.id),
                other => panic!("expected NotAuthorized, got {other:?}"),
            }
        }
        other => panic!("create_video via relay: {other:?}"),
    }
    // 4. A canister caller attaching too few cycles: refused, and the cycles come back.
    let relay = Relay::deploy(b, principal("relay-controller"), 20 * T);
    let attached = estimate / 2;
    let outcome = relay.call_raw(
        d.spawn,
        "create_video",
        candid::encode_one(args("cheap", 5_000_000)).unwrap(),
        attached,
    );
    match outcome {
        CallOutcome::Reply { data, refunded } => {
            let res: canvid_types::Result<CreatedVideo> =
                candid::decode_one(&data).expect("decode");
            match res {
                Err(Error::InsufficientCycles {
                    required,
                    available,
                }) => {
                    assert_eq!(required, estimate);
                    assert_eq!(available, attached);
                }
                other => panic!("expected InsufficientCycles, got {other:?}"),
            }
            assert_eq!(
                refunded, attached,
                "refused creation keeps none of the attached cycles"
            );
        }
        other => panic!("create_video via relay: {other:?}"),
    }
    // Nothing was created, nothing charged.
    let count_mid = before + 2; // the two relays
    assert_eq!(
        b.canister_count(),
        count_mid,
        "no video canister was created"
    );
    assert_eq!(sp.stats().videos_created, created_before);
    let q = sp.quota_of(bob);
    assert_eq!((q.used_videos, q.used_cycles, q.credit), (0, 0, 0));
    assert!(q.spares.is_empty());
    assert!(sp.stats().in_flight.is_empty());

    // 5. The pool itself is too small (an operator that funded only its reserve).
    let poor = deploy_with(
        b,
        Some(canvid_tests::deploy::default_quota()),
        2 * T + T / 10,
    );
    let before = b.canister_count();
    match err(
        "create_video from an empty pool",
        poor.spawn_client()
            .create_video(bob, &args("poor", 1_000_000)),
    ) {
        Error::InsufficientCycles {
            required,
            available,
        } => {
            assert_eq!(required, poor.spawn_client().estimate_cycles(1_000_000));
            assert!(available < required);
        }
        e => panic!("expected InsufficientCycles, got {e:?}"),
    }
    assert_eq!(b.canister_count(), before, "no video canister was created");
    assert_eq!(poor.spawn_client().stats().videos_created, 0);
}

/// An installable-looking module that is not valid wasm: its hash matches, install fails.
fn broken_wasm() -> Vec<u8> {
    let mut w = b"\0asm\x01\0\0\0".to_vec();
    w.extend_from_slice(&[0x7f; 64]); // no valid section id
    w
}

fn spawn_failed_install_parks_and_reuses(b: &dyn Backend) {
    let d = deploy(b);
    let sp = d.spawn_client();
    let carol = principal("carol");
    let info = ok(
        "set_video_wasm (broken)",
        sp.set_video_wasm(d.admin, broken_wasm()),
    );
    assert_eq!(
        info.sha256.as_slice(),
        wasm::sha256(&broken_wasm()).as_slice()
    );

    let before = b.canister_count();
    let failed = err(
        "create_video with a broken module",
        sp.create_video(carol, &args("broken", 1_000_000)),
    );
    match &failed {
        Error::CallFailed { method, .. } => assert_eq!(method, "install_code"),
        e => panic!("expected CallFailed(install_code), got {e:?}"),
    }
    // One canister exists, and it is no orphan: parked for carol, on the spawn's books.
    assert_eq!(b.canister_count(), before + 1);
    let q = sp.quota_of(carol);
    assert_eq!(
        q.spares.len(),
        1,
        "the failed canister is parked for the caller: {q:?}"
    );
    let spare = q.spares[0];
    let rec = sp.get_video(spare).expect("record of the parked canister");
    assert_eq!(rec.status, SpawnStatus::Spare);
    assert!(rec.last_error.is_some());
    assert_eq!(
        b.module_hash(spare, Some(d.spawn)),
        None,
        "nothing is installed in the spare"
    );
    assert!(b.controllers(spare).contains(&d.spawn));
    assert!(
        d.index_client().get_video(spare).is_none(),
        "a failed creation is not indexed"
    );
    assert_eq!(sp.stats().spares, 1);
    let used_after_failure = q.used_cycles;

    // The admin fixes the module; carol retries and gets the parked canister, not a new one.
    ok(
        "set_video_wasm (good)",
        sp.set_video_wasm(d.admin, wasm::gzip(&wasm::video())),
    );
    let created = ok(
        "create_video retry",
        sp.create_video(carol, &args("fixed", 1_000_000)),
    );
    assert_eq!(
        created.canister_id, spare,
        "the retry reuses the parked canister"
    );
    assert_eq!(b.canister_count(), before + 1, "no second canister");
    assert_spawned(&d, &created, carol);
    let q = sp.quota_of(carol);
    assert!(q.spares.is_empty());
    assert_eq!(q.used_videos, 1, "the spare is one video, not two");
    assert_eq!(
        q.used_cycles, used_after_failure,
        "the spare's cycles are not charged twice"
    );
    assert_eq!(sp.stats().spares, 0);
    assert!(sp.stats().in_flight.is_empty());
}

fn spawn_concurrent_creates(b: &dyn Backend) {
    let d = deploy(b);
    let sp = d.spawn_client();
    let users = [
        principal("u1"),
        principal("u2"),
        principal("u3"),
        principal("u1"),
    ];
    let before = b.canister_count();
    // All submitted before any executes: their awaits interleave inside the spawn canister.
    let ids: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            sp.submit_create_video(*u, &args(&format!("concurrent {i}"), 100_000))
                .unwrap_or_else(|e| panic!("submit {i}: {e}"))
        })
        .collect();
    let created: Vec<CreatedVideo> = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| ok(&format!("create_video {i}"), sp.await_create_video(id)))
        .collect();
    let distinct: BTreeSet<Principal> = created.iter().map(|c| c.canister_id).collect();
    assert_eq!(
        distinct.len(),
        users.len(),
        "every request got its own canister"
    );
    assert_eq!(b.canister_count(), before + users.len() as u64);
    for (c, u) in created.iter().zip(users) {
        assert_spawned(&d, c, u);
    }
    let stats = sp.stats();
    assert_eq!(stats.videos_created, users.len() as u64);
    assert!(stats.in_flight.is_empty());
    assert_eq!(stats.outbox, 0);
    assert_eq!(sp.quota_of(principal("u1")).used_videos, 2);
    assert_eq!(sp.quota_of(principal("u2")).used_videos, 1);
    let records = sp.all_videos(d.admin);
    assert_eq!(
        records
            .iter()
            .map(|r| r.canister_id)
            .collect::<BTreeSet<_>>(),
        distinct
    );
    assert_eq!(d.index_client().stats().videos, users.len() as u64);
    assert_eq!(d.index_client().by_creator(principal("u1")).len(), 2);
}

/// A creation whose future is lost mid-install (here: the spawn canister is upgraded while it
/// awaits `install_code`; a trap in a callback loses it the same way) is not stranded in
/// `Created`: it is parked as a spare for its caller, and the caller's next `create_video`
/// finishes that very canister without charging its cycles again.
fn spawn_interrupted_creation_is_resumed(b: &dyn Backend) {
    let d = deploy(b);
    let sp = d.spawn_client();
    let dave = principal("dave");
    let before = b.canister_count();
    let call = sp
        .submit_create_video(dave, &args("interrupted", 1_000_000))
        .unwrap_or_else(|e| panic!("submit: {e}"));
    // Run rounds until the creation awaits install_code (its canister exists).
    let id = sp.tick_until_installing();
    assert_eq!(
        sp.get_video(id).expect("record").status,
        SpawnStatus::Created
    );
    let used = sp.quota_of(dave).used_cycles;

    // The upgrade drops every future; post_upgrade finishes what they left in flight.
    b.upgrade(
        d.spawn,
        wasm::spawn(),
        candid::encode_one(None::<canvid_types::spawn::SpawnInit>).unwrap(),
        Some(d.admin),
    )
    .unwrap_or_else(|e| panic!("upgrade: {e}"));
    // The interrupted call gets no CreatedVideo (its answer, if any, is a failure).
    if let Ok(Ok(v)) = sp.await_create_video(call) {
        panic!("the interrupted creation claims success: {v:?}");
    }
    let stats = sp.stats();
    assert!(stats.in_flight.is_empty(), "{stats:?}");
    let rec = sp.get_video(id).expect("record");
    assert_eq!(rec.status, SpawnStatus::Spare, "{rec:?}");
    assert!(rec.last_error.unwrap_or_default().contains("interrupted"));
    assert_eq!(sp.quota_of(dave).spares, vec![id]);

    // Dave's next creation gets that canister, installed and registered, paid once.
    let created = ok(
        "create_video after the interruption",
        sp.create_video(dave, &args("resumed", 1_000_000)),
    );
    assert_eq!(created.canister_id, id, "the parked canister is reused");
    assert_eq!(b.canister_count(), before + 1, "no second canister");
    assert_spawned(&d, &created, dave);
    let q = sp.quota_of(dave);
    assert!(q.spares.is_empty());
    assert_eq!(q.used_videos, 1);
    assert_eq!(
        q.used_cycles, used,
        "the parked canister's cycles are not charged twice"
    );
    assert!(sp.stats().in_flight.is_empty());
}

/// Only admins administer the spawn canister.
fn spawn_admin_only(b: &dyn Backend) {
    let d = deploy(b);
    let sp = d.spawn_client();
    let eve = principal("eve");
    let r = rejected(
        "set_video_wasm by a user",
        sp.set_video_wasm(eve, broken_wasm()),
    );
    assert_eq!(r.error_code, "IC0406", "{r}");
    match err(
        "list_videos by a user",
        sp.list_videos(eve, &Default::default()),
    ) {
        Error::NotAuthorized { caller, .. } => assert_eq!(caller, eve),
        e => panic!("expected NotAuthorized, got {e:?}"),
    }
    // A wrong hash is refused even for an admin.
    let res: canvid_types::Result<canvid_types::spawn::WasmInfo> = b
        .update1(
            d.spawn,
            d.admin,
            "set_video_wasm",
            &canvid_types::spawn::SetWasmArgs {
                wasm: serde_bytes::ByteBuf::from(broken_wasm()),
                sha256: serde_bytes::ByteBuf::from(vec![0u8; 32]),
            },
        )
        .expect("set_video_wasm answered");
    match res {
        Err(Error::WrongDigest { index: None, .. }) => {}
        other => panic!("expected WrongDigest, got {other:?}"),
    }
}

/// 30 days, the default freezing threshold and the runway `per_byte` pays for.
const DAYS_30: u128 = 30;
/// What a video canister needs free above its freezing reserve to keep working after its
/// upload: an update's 40 B prepayment, two calls' 42.1 B reservations with their message
/// memory, a 2 MiB chunk's ingress (docs/spawn-and-index.md, "Cycles formula").
const OPERATING_HEADROOM: u128 = 40_005_000_000 + 2 * 42_800_000_000 + 4_200_000_000;

/// The default configuration gives every new video what a real subnet requires to install it,
/// upload and store its declared size, keep running messages (the owner's change_owner, the
/// index notifications) and stay unfrozen for 30 days: checked for declared sizes from 1 byte
/// to the maximum. Small videos are uploaded whole and sold; for large ones the first chunk is
/// uploaded and the rest projected from what that chunk cost on this backend.
fn spawn_funds_every_size_from_one_byte_to_the_maximum(b: &dyn Backend) {
    let everything = QuotaArgs {
        max_videos: 10,
        max_cycles: 3_000 * T,
    };
    let d = deploy_with(b, Some(everything), 3_000 * T);
    let alice = principal("alice");
    let bob = principal("bob");
    for (k, size) in [1, 5_000_000, 100_000_000, 10 << 30, MAX_VIDEO_SIZE]
        .into_iter()
        .enumerate()
    {
        let what = format!("{}: declared {size} bytes", b.name());
        let created = ok(
            "create_video",
            d.spawn_client()
                .create_video(alice, &args(&format!("size {k}"), size)),
        );
        let id = created.canister_id;
        let v = d.video(id);
        let chunk = size.min(2_000_000);
        let file = GenFile::new(100 + k as u64, size, chunk);
        let whole = size <= 5_000_000;
        let spec = canvid_tests::clients::spec_for(&file, whole);
        ok("begin_upload", v.begin_upload(alice, &spec));
        let before = b.cycle_balance(id);
        ok("put_chunk", v.put_chunk(alice, 0, file.chunk(0)));
        let per_chunk = before - b.cycle_balance(id);
        let s = b.status(id, Some(d.spawn)).expect("canister_status");
        // The reserve per byte of memory over the 30-day threshold.
        let reserve_per_byte = |bytes: u128| {
            s.idle_cycles_burned_per_day * DAYS_30 * bytes / u128::from(s.memory_size)
        };
        if whole {
            v.upload_chunks(
                alice,
                &file,
                Some(&(1..file.chunk_count()).collect::<Vec<_>>()),
            );
            ok("finish_upload", v.finish_upload(alice));
            ok("change_owner", v.change_owner(alice, bob));
            let s = b.status(id, Some(bob)).expect("canister_status");
            let reserve = s.idle_cycles_burned_per_day * DAYS_30;
            assert!(
                s.cycles >= 2 * reserve + OPERATING_HEADROOM,
                "{what}: after upload and sale {} cycles, reserve {reserve}: less than the \
                 reserve, 30 days of runway and the operating headroom",
                s.cycles
            );
        } else {
            // Project the rest of the upload with what the first chunk cost here.
            let rest_chunks = u128::from(file.chunk_count() - 1);
            let upload_rest = per_chunk * rest_chunks;
            let end_memory = u128::from(s.memory_size) + u128::from(size - chunk);
            let end_reserve = reserve_per_byte(end_memory);
            let left = s.cycles.checked_sub(upload_rest).unwrap_or_else(|| {
                panic!(
                    "{what}: {} cycles cannot pay {upload_rest} for the upload",
                    s.cycles
                )
            });
            assert!(
                left >= 2 * end_reserve + OPERATING_HEADROOM,
                "{what}: after the projected upload {left} cycles, reserve {end_reserve}: less \
                 than the reserve, 30 days of runway and the operating headroom"
            );
        }
    }
}

/// A `create_video` ingress message that cannot succeed costs the spawn canister nothing: from a
/// fresh principal without quota (free to make, so free pool drain otherwise), or with an
/// argument larger than any valid request.
fn h2_create_video_ingress_that_cannot_succeed_costs_nothing(b: &dyn Backend) {
    let d = deploy_with(b, None, 100 * T);
    let sp = d.spawn_client();
    let sybil = principal("sybil-1");
    let before = b.cycle_balance(d.spawn);
    let r = rejected(
        "create_video without quota",
        sp.create_video(sybil, &args("x", 1)),
    );
    assert_eq!(r.error_code, "IC0406", "{r}");
    // A quota with room, but a 2 MB description.
    ok(
        "set_quota",
        sp.set_quota(d.admin, sybil, canvid_tests::deploy::default_quota()),
    );
    let before = before.min(b.cycle_balance(d.spawn));
    let mut huge = args("x", 1);
    huge.description = "d".repeat(2_000_000);
    let r = rejected("create_video with 2 MB", sp.create_video(sybil, &huge));
    assert_eq!(r.error_code, "IC0406", "{r}");
    assert_eq!(
        b.cycle_balance(d.spawn),
        before,
        "refused ingress cost the spawn canister cycles"
    );
    // The same caller with a valid request is served.
    ok("create_video", sp.create_video(sybil, &args("fine", 1)));
}

backend_tests!(
    h2_create_video_ingress_that_cannot_succeed_costs_nothing,
    spawn_funds_every_size_from_one_byte_to_the_maximum,
    spawn_creates_a_working_video,
    spawn_refuses_without_cycles,
    spawn_failed_install_parks_and_reuses,
    spawn_concurrent_creates,
    spawn_interrupted_creation_is_resumed,
    spawn_admin_only,
);
