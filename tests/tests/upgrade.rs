//! Upgrading every canister with data in place: the index's listings, the spawn canister's
//! records and the video bytes are identical afterwards, and everything keeps working.

use canvid_tests::clients::{ok, spec_for, Video};
use canvid_tests::deploy::{deploy, standalone_video, Deployment, T};
use canvid_tests::http_types::{HttpRequest, HttpResponse};
use canvid_tests::{backend_tests, principal, wasm, Backend, BackendExt, GenFile, Principal};
use canvid_types::index::IndexInit;
use canvid_types::spawn::{CreateVideoArgs, SpawnInit, UpgradeArgs};
use canvid_types::video::{ControlStatus, MissingArgs, PosterArgs, VideoInit, VideoMetadata};
use serde_bytes::ByteBuf;

/// A released module from `tests/fixtures/` (gzipped, as install_code takes it).
fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn create(d: &Deployment, owner: Principal, title: &str) -> Principal {
    ok(
        "create_video",
        d.spawn_client().create_video(
            owner,
            &CreateVideoArgs {
                title: title.into(),
                description: "upgrade test".into(),
                tags: vec!["upgrade".into()],
                declared_size: 1_000_000,
                owner: None,
            },
        ),
    )
    .canister_id
}

/// Everything observable about the deployment, for before/after comparison.
#[derive(Debug, PartialEq)]
struct Snapshot {
    index_entries: Vec<canvid_types::index::VideoEntry>,
    index_by_owner: Vec<Vec<canvid_types::index::VideoEntry>>,
    index_stats: canvid_types::index::IndexStats,
    spawn_records: Vec<canvid_types::spawn::SpawnedVideo>,
    spawn_created: u64,
    spawn_quotas: Vec<canvid_types::spawn::QuotaStatus>,
    video_meta: Vec<canvid_types::video::VideoMetadata>,
}

fn snapshot(d: &Deployment, videos: &[Principal], people: &[Principal]) -> Snapshot {
    let idx = d.index_client();
    let sp = d.spawn_client();
    Snapshot {
        index_entries: videos
            .iter()
            .map(|v| idx.get_video(*v).expect("indexed"))
            .collect(),
        index_by_owner: people.iter().map(|p| idx.by_owner(*p)).collect(),
        index_stats: idx.stats(),
        spawn_records: sp.all_videos(d.admin),
        spawn_created: sp.stats().videos_created,
        spawn_quotas: people.iter().map(|p| sp.quota_of(*p)).collect(),
        video_meta: videos.iter().map(|v| d.video(*v).metadata()).collect(),
    }
}

fn upgrade_everything_with_data_in_place(b: &dyn Backend) {
    let d = deploy(b);
    let (alice, bob, carol) = (principal("alice"), principal("bob"), principal("carol"));
    let v1 = create(&d, alice, "one");
    let v2 = create(&d, bob, "two");
    let f1 = GenFile::new(31, 3 * 100_000 + 5, 100_000);
    let f2 = GenFile::new(32, 2 * 100_000, 100_000);
    d.video(v1).upload(alice, &f1);
    // v2: an upload in progress (partial), and a transfer to carol.
    ok(
        "begin_upload",
        d.video(v2)
            .begin_upload(bob, &canvid_tests::clients::spec_for(&f2, true)),
    );
    ok("put_chunk", d.video(v2).put_chunk(bob, 1, f2.chunk(1)));
    ok("change_owner", d.video(v2).change_owner(bob, carol));

    let videos = [v1, v2];
    let people = [alice, bob, carol];
    let before = snapshot(&d, &videos, &people);
    let v1_stable = d.video(v1).canister_info();

    // Index: upgraded by its controller, without an argument (keeps admins and registrars),
    // then with an argument whose lists are empty, which keeps them too (security review L8).
    for arg in [None, Some(IndexInit::default())] {
        b.upgrade(
            d.index,
            wasm::index(),
            candid::encode_one(arg).unwrap(),
            Some(d.admin),
        )
        .unwrap_or_else(|e| panic!("upgrading the index: {e}"));
    }
    // Spawn: upgraded by its controller, without an argument.
    b.upgrade(
        d.spawn,
        wasm::spawn(),
        candid::encode_one(None::<SpawnInit>).unwrap(),
        Some(d.admin),
    )
    .unwrap_or_else(|e| panic!("upgrading the spawn canister: {e}"));
    // Videos: all of them through the spawn canister (it is a controller of each)...
    let outcomes = ok(
        "upgrade_videos",
        d.spawn_client()
            .upgrade_videos(d.admin, &UpgradeArgs::default()),
    );
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        assert_eq!(o.result, Ok(()), "upgrade of {}", o.video);
    }
    // ...and v1 once more directly by its owner.
    b.upgrade(
        v1,
        wasm::video_gz(),
        candid::encode_args(()).unwrap(),
        Some(alice),
    )
    .unwrap_or_else(|e| panic!("alice upgrades her video: {e}"));

    let after = snapshot(&d, &videos, &people);
    // `updated_at` and `wasm_sha256` of spawn records legitimately change with upgrade_videos.
    let strip = |s: &Snapshot| {
        s.spawn_records
            .iter()
            .map(|r| {
                (
                    r.canister_id,
                    r.owner,
                    r.creator,
                    r.status,
                    r.payer,
                    r.caller,
                    r.cycles_given,
                    r.created_at,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&after), strip(&before), "spawn records");
    assert_eq!(after.index_entries, before.index_entries, "index entries");
    assert_eq!(
        after.index_by_owner, before.index_by_owner,
        "index listings"
    );
    assert_eq!(after.index_stats, before.index_stats, "index stats");
    assert_eq!(after.spawn_created, before.spawn_created);
    assert_eq!(after.spawn_quotas, before.spawn_quotas, "spawn quotas");
    assert_eq!(after.video_meta, before.video_meta, "video metadata");
    let v1_after = d.video(v1).canister_info();
    assert_eq!(v1_after.chunks_stored, v1_stable.chunks_stored);
    assert_eq!(v1_after.chunk_bytes_stored, v1_stable.chunk_bytes_stored);
    assert_eq!(v1_after.layout_version, v1_stable.layout_version);

    // Video bytes identical.
    let viewer = principal("viewer");
    d.video(v1).verify_chunks(viewer, &f1);
    assert_eq!(
        d.video(v1).read_all_ranges(viewer, f1.size, 99_999),
        f1.sha256()
    );

    // Everything still works: v2's upload resumes (carol owns it now) and finishes, a new video
    // is created and indexed, v1 changes hands and the index hears of it.
    let v2c: Video = d.video(v2);
    let missing = ok(
        "missing_chunks",
        v2c.missing_chunks(carol, &Default::default()),
    );
    assert_eq!(missing.missing, vec![0]);
    ok("put_chunk", v2c.put_chunk(carol, 0, f2.chunk(0)));
    ok("finish_upload", v2c.finish_upload(carol));
    v2c.verify_chunks(viewer, &f2);
    let v3 = create(&d, alice, "three");
    assert_eq!(d.index_client().by_creator(alice).len(), 2);
    let r = ok("change_owner", d.video(v1).change_owner(alice, bob));
    assert!(r.index_notified);
    assert_eq!(d.index_client().get_video(v1).expect("indexed").owner, bob);
    assert!(d.spawn_client().get_video(v3).is_some());
}

/// `upgrade_videos` stops a video before upgrading it, so a `change_owner` that is waiting for the
/// management canister when the upgrade is requested completes under the module that started it
/// (ic-cdk 0.20 cannot resume it in another module), and starts it again afterwards.
fn m6_upgrade_videos_lets_open_calls_finish(b: &dyn Backend) {
    use canvid_types::video::{ChangeOwnerArgs, ChangeOwnerResult};
    let d = deploy(b);
    let (alice, bob) = (principal("alice"), principal("bob"));
    let v = create(&d, alice, "in flight");
    // Finished first: then alice controls it and the transfer rewrites the controllers.
    d.video(v).upload(alice, &GenFile::new(7, 1_000, 1_000));
    let record_before = d.spawn_client().get_video(v).expect("spawn record");
    let transfer = b
        .submit1(
            v,
            alice,
            "change_owner",
            &ChangeOwnerArgs {
                new_owner: bob,
                keep_controllers: None,
            },
        )
        .expect("change_owner accepted");
    // change_owner runs until its first call to the management canister.
    b.tick();
    let upgrade = b
        .submit1(d.spawn, d.admin, "upgrade_videos", &UpgradeArgs::default())
        .expect("upgrade_videos accepted");
    let moved: canvid_types::Result<ChangeOwnerResult> = b
        .await1(transfer, "change_owner")
        .unwrap_or_else(|e| panic!("{}: change_owner rejected: {e}", b.name()));
    let moved = moved.unwrap_or_else(|e| panic!("{}: change_owner: {e:?}", b.name()));
    let outcomes: canvid_types::Result<Vec<canvid_types::spawn::UpgradeOutcome>> = b
        .await1(upgrade, "upgrade_videos")
        .unwrap_or_else(|e| panic!("{}: upgrade_videos rejected: {e}", b.name()));
    let outcomes = outcomes.unwrap_or_else(|e| panic!("{}: upgrade_videos: {e:?}", b.name()));
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].result, Ok(()), "{}", b.name());
    // The transfer happened whole, the video was upgraded and runs.
    let meta = d.video(v).metadata();
    assert_eq!(meta.owner, bob);
    assert_eq!(meta.transfer_seq, moved.transfer_seq);
    let controllers: std::collections::BTreeSet<_> = b.controllers(v).into_iter().collect();
    assert_eq!(controllers, [bob, v, d.spawn].into_iter().collect());
    let status = b.status(v, Some(bob)).expect("canister_status");
    assert_eq!(status.status, canvid_tests::RunState::Running);
    // The spawn recorded the upgrade.
    let record = d.spawn_client().get_video(v).expect("spawn record");
    assert!(record.updated_at > record_before.updated_at, "{}", b.name());
    assert!(record.wasm_sha256.is_some());
}

/// A spawn canister deployed before the IC's prepayment was modelled (the released module of
/// 71179eb, `tests/fixtures/`) holds the first default cycles configuration, with which no video
/// installs on a real subnet. Upgrading it to the current module moves that configuration to the
/// current defaults (keeping the reserve) and creations work; a customised configuration is kept.
fn spawn_upgrade_corrects_the_first_default_cycles_config(b: &dyn Backend) {
    use canvid_types::spawn::CyclesConfig;
    let old_spawn = {
        use std::io::Read;
        let gz = fixture("spawn-71179eb.wasm.gz");
        let mut wasm = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut wasm)
            .expect("gunzip the old spawn module");
        wasm
    };
    let fee = 500_000_000_000u128;
    for custom in [
        None,
        Some(CyclesConfig {
            base: 450_000_000_000,
            per_byte: 3_000,
            reserve: 3_000_000_000_000,
        }),
    ] {
        let d = deploy(b);
        // Replace the spawn canister's module by the old one, with the old defaults (or a
        // customised configuration) in its stable memory.
        let init = SpawnInit {
            app_canisters: None,
            platform_fee: None,
            admins: vec![d.admin],
            index: Some(d.index),
            video_wasm: Some(serde_bytes::ByteBuf::from(wasm::gzip(&wasm::video()))),
            default_quota: Some(canvid_tests::deploy::default_quota()),
            cycles: custom.clone(),
        };
        // The IC rate-limits install_code per canister by the instructions of the previous ones
        // (PocketIC: IC0209 right after the deployment's install): let rounds pass first.
        let settle = || {
            b.advance_time(std::time::Duration::from_secs(60));
            for _ in 0..10 {
                b.tick();
            }
        };
        settle();
        b.reinstall(
            d.spawn,
            wasm::gzip(&old_spawn),
            canvid_tests::deploy::spawn_init_arg(&init),
            Some(d.admin),
        )
        .unwrap_or_else(|e| panic!("{}: installing the old spawn: {e}", b.name()));
        let sp = d.spawn_client();
        let (base, per_byte) = custom
            .as_ref()
            .map_or((200_000_000_000, 2_407), |c| (c.base, c.per_byte));
        assert_eq!(sp.estimate_cycles(1), fee + base + per_byte, "{}", b.name());
        // Upgraded without an argument.
        settle();
        b.upgrade(
            d.spawn,
            wasm::gzip(&wasm::spawn()),
            candid::encode_one(None::<SpawnInit>).unwrap(),
            Some(d.admin),
        )
        .unwrap_or_else(|e| panic!("{}: upgrading the old spawn: {e}", b.name()));
        match &custom {
            None => {
                // 392,414,684,992 + 2,714 per byte (docs/spawn-and-index.md).
                assert_eq!(
                    sp.estimate_cycles(1),
                    fee + 392_414_684_992 + 2_714,
                    "{}: the first defaults were replaced",
                    b.name()
                );
                let v = create(&d, principal("after-upgrade"), "created after the upgrade");
                assert!(b.canister_exists(v));
            }
            Some(c) => assert_eq!(
                sp.estimate_cycles(1),
                fee + c.base + c.per_byte,
                "{}: a customised configuration is kept",
                b.name()
            ),
        }
    }
}

/// `/poster` as the canister serves it: the `http_request` query (certified right after the
/// upgrade; `inspect_message` refuses it as an update, which the query could answer).
fn poster(b: &dyn Backend, video: Principal) -> HttpResponse {
    let req = HttpRequest {
        method: "GET".into(),
        url: "/poster".into(),
        headers: vec![],
        body: ByteBuf::new(),
        certificate_version: Some(2),
    };
    let r: HttpResponse = b
        .query1(video, Principal::anonymous(), "http_request", &req)
        .unwrap_or_else(|e| panic!("{}: GET /poster: {e}", b.name()));
    assert_ne!(r.upgrade, Some(true), "{}: /poster is certified", b.name());
    r
}

/// A video canister of the released module of 71179eb (`tests/fixtures/`) holding real old state
/// (an owner changed by a transfer, an uploader, an operator, edited metadata, a declared upload
/// with some chunks, a poster) is upgraded to the current module: the stable memory written by
/// the old code (state cell, chunk table, declared digests, arena, poster) reads back the same,
/// and the video keeps working.
fn video_upgrade_from_the_released_module(b: &dyn Backend) {
    let (alice, bob, uploader, market, viewer) = (
        principal("old-video-alice"),
        principal("old-video-bob"),
        principal("old-video-uploader"),
        principal("old-video-market"),
        principal("old-video-viewer"),
    );
    // The IC rate-limits install_code per canister (PocketIC: IC0209, see the spawn test above).
    let settle = || {
        b.advance_time(std::time::Duration::from_secs(60));
        for _ in 0..10 {
            b.tick();
        }
    };
    let v = standalone_video(b, alice, None, 50 * T);
    settle();
    let init = VideoInit {
        owner: alice,
        creator: alice,
        index: None,
        title: "released".into(),
        description: "installed by the module of 71179eb".into(),
        tags: vec!["old".into()],
        funded_by: None,
        platform_fee: None,
    };
    b.reinstall(
        v.id,
        fixture("video-71179eb.wasm.gz"),
        candid::encode_one(&init).unwrap(),
        Some(alice),
    )
    .unwrap_or_else(|e| panic!("{}: installing the old video module: {e}", b.name()));

    ok("change_owner", v.change_owner(alice, bob));
    ok("add_uploader", v.add_uploader(bob, uploader));
    ok("approve", v.approve(bob, Some(market)));
    let file = GenFile::new(71, 3 * 100_000 + 7, 100_000);
    ok(
        "begin_upload",
        v.begin_upload(uploader, &spec_for(&file, true)),
    );
    ok("put_chunk", v.put_chunk(uploader, 2, file.chunk(2)));
    ok("put_chunk", v.put_chunk(bob, 0, file.chunk(0)));
    ok("put_chunk", v.put_chunk(uploader, 3, file.chunk(3)));
    let image = PosterArgs {
        mime_type: "image/png".into(),
        data: ByteBuf::from(b"\x89PNG old poster".to_vec()),
    };
    ok::<()>("set_poster", b.update1(v.id, bob, "set_poster", &image));

    let uploaders = |v: &Video| -> Vec<Principal> {
        b.query1(v.id, viewer, "uploaders", &())
            .unwrap_or_else(|e| panic!("uploaders: {e}"))
    };
    let missing = |v: &Video| {
        ok(
            "missing_chunks",
            v.missing_chunks(bob, &MissingArgs::default()),
        )
    };
    let before = (v.metadata(), uploaders(&v), missing(&v), v.canister_info());
    // What the released module wrote: the migration below starts from layout 2.
    assert_eq!(before.3.layout_version, 2);
    assert_eq!(before.2.missing, vec![1]);
    // The old code wrote all of that.
    assert_eq!(
        b.module_hash(v.id, Some(bob)),
        Some(wasm::sha256(&fixture("video-71179eb.wasm.gz"))),
        "{}: the released module is installed",
        b.name()
    );

    settle();
    b.upgrade(
        v.id,
        wasm::video_gz(),
        candid::encode_args(()).unwrap(),
        Some(bob),
    )
    .unwrap_or_else(|e| panic!("{}: upgrading the old video: {e}", b.name()));

    assert_eq!(
        b.module_hash(v.id, Some(bob)),
        Some(wasm::sha256(&wasm::video_gz()))
    );
    let after = (v.metadata(), uploaders(&v), missing(&v), v.canister_info());
    // The released module did not report `control`; the current one says the owner controls
    // it (a video installed without `funded_by`).
    assert_eq!(before.0.control, None);
    assert_eq!(after.0.control, Some(ControlStatus::Owner));
    // Nor `files` and `renditions` (none: a single-file video).
    assert_eq!(
        (after.0.files, after.0.renditions.clone()),
        (Some(0), Some(vec![]))
    );
    assert_eq!(
        VideoMetadata {
            control: None,
            files: None,
            renditions: None,
            ..after.0.clone()
        },
        before.0,
        "metadata (state cell)"
    );
    assert_eq!(after.0.owner, bob);
    assert_eq!(after.0.operator, Some(market));
    assert_eq!(after.0.transfer_seq, 1);
    assert_eq!(after.1, before.1, "uploaders");
    assert_eq!(after.1, vec![uploader]);
    assert_eq!(after.2, before.2, "chunk table");
    // The released module wrote layout 2; loading it migrates it to the current layout 3
    // (which adds the access memory), and the chunk table is what the old module stored.
    assert_eq!(
        after.3.layout_version, 3,
        "layout 2 is migrated to 3 on load"
    );
    assert_eq!(
        (after.3.chunks_stored, after.3.chunk_bytes_stored),
        (before.3.chunks_stored, before.3.chunk_bytes_stored)
    );
    let p = poster(b, v.id);
    assert_eq!(p.status_code, 200, "{}: the old poster is served", b.name());
    assert_eq!(p.body, image.data);
    assert_eq!(p.header("content-type"), Some("image/png"));

    // The declared digests still guard the upload, which finishes under the new module.
    let mut wrong = file.chunk(1);
    wrong[0] ^= 1;
    assert!(matches!(
        canvid_tests::clients::err("put_chunk", v.put_chunk(uploader, 1, wrong)),
        canvid_types::Error::WrongDigest { index: Some(1), .. }
    ));
    ok("put_chunk", v.put_chunk(uploader, 1, file.chunk(1)));
    ok("finish_upload", v.finish_upload(uploader));
    v.verify_chunks(viewer, &file);
    // The operator approved under the old module may still sell the video.
    ok("change_owner", v.change_owner(market, alice));
    assert_eq!(v.metadata().owner, alice);
    // The old state cell had no ownership offer: it reads as none, and takes one now.
    assert_eq!(after.0.pending_offer, None);
    ok("offer_ownership", v.offer_ownership(alice, bob, None));
    assert_eq!(v.metadata().pending_offer.map(|o| o.new_owner), Some(bob));
    ok("accept_ownership", v.accept_ownership(bob));
    let m = v.metadata();
    assert_eq!((m.owner, m.transfer_seq, m.pending_offer), (bob, 3, None));
}

/// Security review L8: an index upgrade argument with empty lists keeps the stored admins and
/// registrars (an empty `registrars` used to clear them, so every later registration failed).
fn l8_an_index_upgrade_argument_with_empty_lists_keeps_the_registrars(b: &dyn Backend) {
    let d = deploy(b);
    let stats = d.index_client().stats();
    assert_eq!(stats.registrars, vec![d.spawn]);
    // The IC rate-limits install_code per canister by the instructions of recent installs
    // (IC0209 right after the deployment's install): let time pass first, as an operator would.
    b.advance_time(std::time::Duration::from_secs(60));
    for _ in 0..10 {
        b.tick();
    }
    b.upgrade(
        d.index,
        wasm::index(),
        candid::encode_one(Some(IndexInit::default())).unwrap(),
        Some(d.admin),
    )
    .unwrap_or_else(|e| panic!("upgrading the index: {e}"));
    let after = d.index_client().stats();
    assert_eq!(after.registrars, stats.registrars, "registrars kept");
    assert_eq!(after.admins, stats.admins, "admins kept");
    // The spawn canister still registers new videos.
    let owner = principal("l8-owner");
    let v = create(&d, owner, "after the upgrade");
    assert_eq!(
        d.index_client().get_video(v).map(|e| e.owner),
        Some(owner),
        "registered after the upgrade"
    );
}

backend_tests!(
    l8_an_index_upgrade_argument_with_empty_lists_keeps_the_registrars,
    spawn_upgrade_corrects_the_first_default_cycles_config,
    video_upgrade_from_the_released_module,
    upgrade_everything_with_data_in_place,
    m6_upgrade_videos_lets_open_calls_finish
);
