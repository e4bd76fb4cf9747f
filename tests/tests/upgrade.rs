//! Upgrading every canister with data in place: the index's listings, the spawn canister's
//! records and the video bytes are identical afterwards, and everything keeps working.

use canvid_tests::clients::{ok, Video};
use canvid_tests::deploy::{deploy, Deployment};
use canvid_tests::{backend_tests, principal, wasm, Backend, BackendExt, GenFile, Principal};
use canvid_types::index::IndexInit;
use canvid_types::spawn::{CreateVideoArgs, SpawnInit, UpgradeArgs};

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
        wasm::video(),
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
fn upgrade_videos_lets_open_calls_finish(b: &dyn Backend) {
    use canvid_types::video::{ChangeOwnerArgs, ChangeOwnerResult};
    let d = deploy(b);
    let (alice, bob) = (principal("alice"), principal("bob"));
    let v = create(&d, alice, "in flight");
    let record_before = d.spawn_client().get_video(v).expect("spawn record");
    let transfer = b
        .submit1(
            v,
            alice,
            "change_owner",
            &ChangeOwnerArgs { new_owner: bob },
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
        let gz = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/spawn-71179eb.wasm.gz"
        ))
        .expect("tests/fixtures/spawn-71179eb.wasm.gz");
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

backend_tests!(
    spawn_upgrade_corrects_the_first_default_cycles_config,
    upgrade_everything_with_data_in_place,
    upgrade_videos_lets_open_calls_finish
);
