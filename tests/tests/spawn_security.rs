//! The spawn canister against hostile or careless callers: who a canister caller may name as
//! creator (security review M5), what a default quota gives away (M3), and outbox entries that
//! can never succeed (L7).

use canvid_tests::clients::{ok, rejected, CallOutcome, Relay};
use canvid_tests::deploy::{deploy, Deployment, T};
use canvid_tests::{backend_tests, principal, wasm, Backend, BackendExt, GenFile, Principal};
use canvid_types::spawn::{CreateVideoArgs, CreatedVideo, Payer, SpawnStatus};
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

/// `create_video` from a canister attaching the cycles, as `relay`, for `owner`.
fn create_via(
    relay: &Relay,
    d: &Deployment,
    owner: Principal,
    cycles: u128,
) -> canvid_types::Result<CreatedVideo> {
    let mut a = args("on behalf", 1_000);
    a.owner = Some(owner);
    relay.call(d.spawn, "create_video", &a, cycles)
}

/// Security review M5: a canister that pays for a video it creates for owner A is its creator,
/// not A (else any canister could list videos of its choosing under anyone's
/// `videos_by_creator`, for good); only app canisters the admins allow-listed name the creator.
fn m5_only_allow_listed_app_canisters_name_the_creator(b: &dyn Backend) {
    let d = deploy(b);
    let (sp, idx) = (d.spawn_client(), d.index_client());
    let alice = principal("alice");
    let app = Relay::deploy(b, principal("app-controller"), 20 * T);
    let charge = sp.estimate_cycles(1_000);

    let first = create_via(&app, &d, alice, charge).expect("paid creation");
    let e = idx.get_video(first.canister_id).expect("indexed");
    assert_eq!((e.creator, e.owner), (app.id, alice));
    assert_eq!(
        sp.get_video(first.canister_id).expect("record").creator,
        app.id
    );
    assert_eq!(d.video(first.canister_id).metadata().creator, app.id);
    assert!(
        idx.by_creator(alice).is_empty(),
        "not listed under the owner's creations"
    );
    assert_eq!(idx.by_creator(app.id).len(), 1);
    assert_eq!(idx.by_owner(alice).len(), 1);

    // Only admins set the allow-list (ingress from others is refused before it costs anything).
    let r = rejected(
        "set_app_canisters by a user",
        b.update1::<_, canvid_types::Result<()>>(
            d.spawn,
            alice,
            "set_app_canisters",
            &vec![app.id],
        ),
    );
    assert_eq!(r.error_code, "IC0406", "{r}");
    let res: canvid_types::Result<()> = b
        .update1(d.spawn, d.admin, "set_app_canisters", &vec![alice])
        .expect("set_app_canisters answered");
    assert!(
        matches!(res, Err(Error::InvalidArgument { .. })),
        "users are not app canisters: {res:?}"
    );
    let res: canvid_types::Result<()> = b
        .update1(d.spawn, d.admin, "set_app_canisters", &vec![app.id])
        .expect("set_app_canisters answered");
    assert_eq!(res, Ok(()));
    assert_eq!(sp.stats().app_canisters, vec![app.id]);

    let second = create_via(&app, &d, alice, charge).expect("paid creation");
    let e = idx.get_video(second.canister_id).expect("indexed");
    assert_eq!((e.creator, e.owner), (alice, alice));
    assert_eq!(d.video(second.canister_id).metadata().creator, alice);
    assert_eq!(
        idx.by_creator(alice)
            .iter()
            .map(|v| v.video)
            .collect::<Vec<_>>(),
        vec![second.canister_id],
        "the allow-listed app names the creator"
    );
    assert_eq!(
        idx.by_creator(app.id).len(),
        1,
        "the first one stays the app's"
    );
}

/// Security review M3: the owner of a spawned video used to control the canister from its
/// creation, so everything the pool gave it for the *declared* size (up to ~1,000 T) was theirs
/// to divert, and a `default_quota` handed that to every fresh principal. Now the owner becomes
/// a controller only when the upload is finished, after the video gave back what it does not
/// need: before that the owner cannot change the code, and afterwards what an owner could take
/// is bounded by the storage of what was really uploaded plus the operating cycles of one
/// canister — not by the declaration.
fn m3_the_owner_controls_only_what_the_upload_needs(b: &dyn Backend) {
    const B: u128 = 1_000_000_000;
    let d = deploy(b);
    let sp = d.spawn_client();
    let declared = 20_000_000;
    let charge = sp.estimate_cycles(declared);
    let before = b.cycle_balance(d.spawn);
    let mut videos = Vec::new();
    for i in 0..3 {
        let sybil = principal(&format!("sybil-{i}"));
        let created = ok(
            "create_video",
            sp.create_video(sybil, &args("sybil", declared)),
        );
        let q = sp.quota_of(sybil);
        assert!(q.is_default);
        assert_eq!((q.used_videos, q.used_cycles), (1, charge));
        assert_eq!(
            sp.get_video(created.canister_id).expect("record").payer,
            Payer::Pool
        );
        videos.push((sybil, created.canister_id));
    }
    let spent = before - b.cycle_balance(d.spawn);
    assert!(spent >= 3 * charge, "the pool paid 3 charges of {charge}");

    // Before the upload is finished the owner is no controller: no code of theirs can run.
    let (owner, video) = videos[0];
    let drain_module = || {
        b.upgrade(
            video,
            wasm::load("replica-probe"),
            candid::encode_args(()).expect("()"),
            Some(owner),
        )
    };
    let refused = drain_module().expect_err("an owner without control cannot upgrade");
    assert!(refused.to_string().contains("IC0512"), "{refused}");
    assert!(b.set_controllers(video, Some(owner), vec![owner]).is_err());
    assert_eq!(
        b.controllers(video).into_iter().collect::<BTreeSet<_>>(),
        [video, d.spawn].into_iter().collect::<BTreeSet<_>>()
    );

    // The owner uploads 1 KB of the 20 MB declared and finishes: the video gives back what it
    // does not need (to the pool, and to the owner's quota), then hands control over.
    let pool_before = b.cycle_balance(d.spawn);
    let v = d.video(video);
    let meta = v.upload(owner, &GenFile::new(1, 1_000, 1_000));
    assert_eq!(
        meta.control,
        Some(canvid_types::video::ControlStatus::Owner)
    );
    let returned = sp
        .get_video(video)
        .expect("record")
        .cycles_returned
        .expect("cycles returned");
    // At least the storage part of the unused declaration (runway and reserve per byte, 614).
    let unused = u128::from(declared - 1_000);
    assert!(
        returned >= unused * 614,
        "{}: returned {returned} for {unused} unused bytes",
        b.name()
    );
    assert!(b.cycle_balance(d.spawn) + B >= pool_before + returned);
    assert_eq!(sp.quota_of(owner).used_cycles, charge - returned);

    // What the owner controls now: the reserve and runway of what the video holds, and the
    // operating cycles (an upgrade's prepayment and a few messages).
    let s = b
        .status(video, Some(owner))
        .expect("the owner is a controller");
    let reserve = s.idle_cycles_burned_per_day * 30;
    let operating = 360 * B;
    assert!(
        s.cycles <= 2 * reserve + operating + 10 * B,
        "{}: the video kept {} (reserve {reserve})",
        b.name(),
        s.cycles
    );
    let given = sp.get_video(video).expect("record").cycles_given;
    assert!(
        s.cycles + returned + 20 * B >= given,
        "nothing vanished: kept {} + returned {returned} of {given}",
        s.cycles
    );
    drain_module().unwrap_or_else(|e| panic!("the owner upgrades their finished video: {e}"));
    let sink = Relay::deploy(b, owner, T);
    let sink_before = b.cycle_balance(sink.id);
    let drained = Relay { b, id: video };
    let taken = 10 * B;
    match drained.call_raw(
        Principal::management_canister(),
        "deposit_cycles",
        candid::encode_one(ic_management_canister_types::CanisterIdRecord {
            canister_id: sink.id,
        })
        .expect("encode"),
        taken,
    ) {
        CallOutcome::Reply { .. } => {}
        other => panic!("deposit_cycles from the video: {other:?}"),
    }
    assert!(b.cycle_balance(sink.id) >= sink_before + taken);
}

/// Security review L7: an outbox entry that cannot succeed (the video does not answer: here it
/// is stopped) is retried by the timer with a growing delay, then parked: kept and visible, no
/// longer retried by the timer, still retried by an admin's `retry_pending`, which finishes it
/// once the video runs again.
fn l7_outbox_entry_that_cannot_succeed_is_parked(b: &dyn Backend) {
    /// `logic::MAX_AUTO_ATTEMPTS` of the spawn canister.
    const MAX_AUTO_ATTEMPTS: u32 = 20;
    let d = deploy(b);
    let sp = d.spawn_client();
    let dave = principal("dave");
    let call = sp
        .submit_create_video(dave, &args("stuck", 1_000))
        .unwrap_or_else(|e| panic!("submit: {e}"));
    // Run rounds until the creation awaits install_code (its canister exists), then stop the
    // canister (as the spawn canister, its only controller): the install goes through, but the
    // controllers step's call to the video cannot.
    let id = sp.tick_until_installing();
    b.stop(id, Some(d.spawn))
        .unwrap_or_else(|e| panic!("stop_canister: {e}"));
    let created = ok("create_video", sp.await_create_video(call));
    assert_eq!(created.canister_id, id);
    assert!(!created.indexed);
    let rec = sp.get_video(id).expect("record");
    assert_eq!(rec.status, SpawnStatus::Installed, "{rec:?}");
    let err = rec.last_error.clone().unwrap_or_default();
    assert!(
        err.contains("attempt 1 failed; next automatic retry in 60 s"),
        "{err}"
    );

    let day = std::time::Duration::from_secs(86_400);
    let settle = || {
        for _ in 0..6 {
            b.tick();
        }
    };
    for attempt in 2..=MAX_AUTO_ATTEMPTS {
        b.advance_time(day);
        settle();
        let rec = sp.get_video(id).expect("record");
        let err = rec.last_error.unwrap_or_default();
        assert!(err.contains("metadata"), "{err}");
        if attempt < MAX_AUTO_ATTEMPTS {
            assert!(err.contains(&format!("attempt {attempt} failed;")), "{err}");
            assert_eq!(sp.stats().outbox_parked, 0);
        } else {
            assert!(err.contains("parked after 20 failed attempts"), "{err}");
        }
    }
    let stats = sp.stats();
    assert_eq!((stats.outbox, stats.outbox_parked), (1, 1), "kept, parked");
    // Parked: the timer leaves it alone.
    let parked_at = sp.get_video(id).expect("record").updated_at;
    for _ in 0..3 {
        b.advance_time(day);
        settle();
    }
    assert_eq!(sp.get_video(id).expect("record").updated_at, parked_at);
    // An admin's retry_pending still tries it (and it still fails)...
    let out = ok("retry_pending", sp.retry_pending(d.admin));
    let tried = out.iter().find(|v| v.canister_id == id).expect("driven");
    assert!(tried.updated_at > parked_at);
    assert_eq!(tried.status, SpawnStatus::Installed);
    assert!(tried
        .last_error
        .as_deref()
        .unwrap_or_default()
        .contains("parked after 21 failed attempts"));
    // ...and finishes it once the video runs again.
    b.start(id, Some(d.spawn))
        .unwrap_or_else(|e| panic!("start_canister: {e}"));
    ok("retry_pending", sp.retry_pending(d.admin));
    let rec = sp.get_video(id).expect("record");
    assert_eq!(rec.status, SpawnStatus::Registered, "{rec:?}");
    assert_eq!(rec.last_error, None);
    let stats = sp.stats();
    assert_eq!((stats.outbox, stats.outbox_parked), (0, 0));
    assert_eq!(
        b.controllers(id).into_iter().collect::<BTreeSet<_>>(),
        [id, d.spawn].into_iter().collect::<BTreeSet<_>>(),
        "dave gets control when his upload is finished"
    );
    assert_eq!(
        d.index_client().get_video(id).expect("registered").owner,
        dave
    );
}

backend_tests!(
    l7_outbox_entry_that_cannot_succeed_is_parked,
    m5_only_allow_listed_app_canisters_name_the_creator,
    m3_the_owner_controls_only_what_the_upload_needs,
);
