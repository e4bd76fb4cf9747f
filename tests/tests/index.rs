//! Who may write to the index: registrars register, a video reports its own owner changes, and
//! the index believes a report only as far as the IC bears it out (security review M4).

use canvid_tests::clients::{ok, rejected, Relay, Video};
use canvid_tests::deploy::{deploy, T};
use canvid_tests::{backend_tests, principal, wasm, Backend, BackendExt, GenFile, Principal};
use canvid_types::icrc::token_id_of;
use canvid_types::index::{IndexInit, OwnerChange, VideoRegistration};
use canvid_types::video::VideoInit;
use canvid_types::Error;

fn index_authorisation(b: &dyn Backend) {
    let d = deploy(b);
    let idx = d.index_client();
    let mallory = principal("mallory");
    let relay_controller = principal("relay-controller");
    let relay = Relay::deploy(b, relay_controller, 10 * T);
    let reg = VideoRegistration {
        video: relay.id,
        creator: mallory,
        owner: mallory,
    };

    // A user cannot register a video: refused at ingress...
    let r = rejected(
        "register_video by a user",
        idx.register_video(mallory, &reg),
    );
    assert_eq!(r.error_code, "IC0406", "{r}");
    // ...an admin is not a registrar either...
    match idx.register_video(d.admin, &reg) {
        Ok(Err(Error::NotAuthorized { caller, .. })) => assert_eq!(caller, d.admin),
        other => panic!("register_video by an admin: expected NotAuthorized, got {other:?}"),
    }
    // ...and neither is an arbitrary canister (no inspect_message on this path).
    let res: canvid_types::Result<()> = relay.call(d.index, "register_video", &reg, 0);
    match res {
        Err(Error::NotAuthorized { caller, .. }) => assert_eq!(caller, relay.id),
        other => panic!("register_video by a canister: expected NotAuthorized, got {other:?}"),
    }

    // A non-video cannot report an owner change.
    let change = OwnerChange {
        new_owner: mallory,
        transfer_seq: 1,
    };
    let r = rejected(
        "report_owner_change by a user",
        idx.report_owner_change(mallory, &change),
    );
    assert_eq!(r.error_code, "IC0406", "{r}");
    let res: canvid_types::Result<()> = relay.call(d.index, "report_owner_change", &change, 0);
    match res {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "report_owner_change by an unregistered canister: expected NotFound, got {other:?}"
        ),
    }
    assert_eq!(idx.stats().videos, 0);
    assert!(idx.by_owner(mallory).is_empty());

    // A real video (created through the spawn canister) cannot be re-registered or re-owned by
    // anyone but itself.
    let alice = principal("alice");
    let created = canvid_tests::clients::ok(
        "create_video",
        d.spawn_client().create_video(
            alice,
            &canvid_types::spawn::CreateVideoArgs {
                title: "mine".into(),
                description: String::new(),
                tags: vec![],
                declared_size: 1_000,
                owner: None,
            },
        ),
    );
    let steal = VideoRegistration {
        video: created.canister_id,
        creator: mallory,
        owner: mallory,
    };
    let res: canvid_types::Result<()> = relay.call(d.index, "register_video", &steal, 0);
    assert!(matches!(res, Err(Error::NotAuthorized { .. })), "{res:?}");
    let e = idx
        .get_video(created.canister_id)
        .expect("registered by the spawn canister");
    assert_eq!((e.creator, e.owner, e.transfer_seq), (alice, alice, 0));

    // Once the admin makes the relay a registrar it may register (itself, as a video), and
    // then, being that video, report its owner changes, as far as the IC bears them out: the
    // new owner must be one of its controllers.
    canvid_tests::clients::ok(
        "set_registrars",
        idx.set_registrars(d.admin, vec![d.spawn, relay.id]),
    );
    let res: canvid_types::Result<()> = relay.call(d.index, "register_video", &reg, 0);
    assert_eq!(res, Ok(()));
    let bob = principal("bob");
    b.set_controllers(
        relay.id,
        Some(relay_controller),
        vec![relay_controller, bob],
    )
    .unwrap_or_else(|e| panic!("set_controllers of the relay: {e}"));
    let res: canvid_types::Result<()> = relay.call(
        d.index,
        "report_owner_change",
        &OwnerChange {
            new_owner: bob,
            transfer_seq: 2,
        },
        0,
    );
    assert_eq!(res, Ok(()));
    let bob_again = OwnerChange {
        new_owner: bob,
        transfer_seq: 7,
    };
    let res: canvid_types::Result<()> = relay.call(d.index, "report_owner_change", &change, 0);
    assert!(
        matches!(res, Err(Error::Conflict { .. })),
        "mallory controls nothing: {res:?}"
    );
    let res: canvid_types::Result<()> = relay.call(d.index, "report_owner_change", &bob_again, 0);
    assert_eq!(
        res,
        Ok(()),
        "a repeated report is acknowledged without effect"
    );
    assert_eq!(idx.stats().owner_changes_applied, 1);
    let e = idx.get_video(relay.id).expect("registered");
    assert_eq!((e.owner, e.transfer_seq), (bob, 2));
    assert_eq!(idx.by_owner(bob).len(), 1);
    assert!(idx.by_owner(mallory).is_empty());
    assert_eq!(idx.by_creator(mallory).len(), 1);
}

/// Security review M4: the owner controls the video canister's code, so it can make the video
/// report anything. A module that reports a non-controller with `transfer_seq = u64::MAX` is
/// refused; one that reports a real controller with `u64::MAX` is believed but orders nothing:
/// the next genuine `change_owner` (transfer_seq 1) is still applied, ordered by the IC's
/// canister history.
fn m4_forged_owner_reports(b: &dyn Backend) {
    let d = deploy(b);
    let idx = d.index_client();
    let (alice, bob, mallory) = (principal("alice"), principal("bob"), principal("mallory"));
    // A canister alice controls (with itself, like a video), running a forged module: the probe,
    // which makes whatever call it is told to.
    let id = b.create_canister(Some(alice), Some(vec![alice]), 10 * T);
    b.set_controllers(id, Some(alice), vec![alice, id])
        .unwrap_or_else(|e| panic!("set_controllers: {e}"));
    b.install(
        id,
        wasm::load("replica-probe"),
        candid::encode_args(()).expect("()"),
        Some(alice),
    )
    .unwrap_or_else(|e| panic!("installing the forged module: {e}"));
    let forged = Relay { b, id };
    // Registered like a spawned video (the admin acts as registrar here).
    ok(
        "set_registrars",
        idx.set_registrars(d.admin, vec![d.spawn, d.admin]),
    );
    let reg = VideoRegistration {
        video: id,
        creator: alice,
        owner: alice,
    };
    ok("register_video", idx.register_video(d.admin, &reg));

    let report = |new_owner, transfer_seq| -> canvid_types::Result<()> {
        forged.call(
            d.index,
            "report_owner_change",
            &OwnerChange {
                new_owner,
                transfer_seq,
            },
            0,
        )
    };
    // A non-controller: refused, nothing changes.
    let res = report(mallory, u64::MAX);
    assert!(matches!(res, Err(Error::Conflict { .. })), "{res:?}");
    let e = idx.get_video(id).expect("registered");
    assert_eq!((e.owner, e.transfer_seq), (alice, 0));
    assert!(idx.by_owner(mallory).is_empty());
    assert_eq!(idx.stats().owner_changes_applied, 0);
    // A controller (alice herself) with u64::MAX: true as far as the IC can tell, so applied...
    assert_eq!(report(alice, u64::MAX), Ok(()));
    assert_eq!(
        idx.get_video(id).expect("registered").transfer_seq,
        u64::MAX
    );

    // ...but it freezes nothing. Alice puts the real video module in and sells to bob.
    let init = VideoInit {
        owner: alice,
        creator: alice,
        index: Some(d.index),
        title: "forged, then real".into(),
        description: String::new(),
        tags: vec![],
        funded_by: None,
        platform_fee: None,
    };
    b.reinstall(
        id,
        wasm::video_gz(),
        candid::encode_one(init).expect("encode VideoInit"),
        Some(alice),
    )
    .unwrap_or_else(|e| panic!("reinstalling the video module: {e}"));
    let v = Video::new(b, id);
    let r = ok("change_owner", v.change_owner(alice, bob));
    assert_eq!(r.transfer_seq, 1);
    assert!(r.index_notified, "the index applied the genuine report");
    let e = idx.get_video(id).expect("registered");
    assert_eq!((e.owner, e.transfer_seq, e.creator), (bob, 1, alice));
    assert_eq!(idx.by_owner(bob).len(), 1);
    assert!(idx.by_owner(alice).is_empty());
    assert_eq!(idx.stats().owner_changes_applied, 2);
}

/// The index orders ownership reports by `canister_info`'s `total_num_changes`, so both backends
/// must count what the IC counts: creation, code deployments and `update_settings` calls that
/// name controllers (even unchanged ones), and neither executed messages nor other settings.
/// The expected values are checked on PocketIC (the IC's own execution) and on the embedded
/// replica alike.
fn canister_history_counts_changes_only(b: &dyn Backend) {
    use ic_management_canister_types::{
        CanisterInfoArgs, CanisterInfoResult, ChangeDetails, CodeDeploymentMode,
    };
    let ctl = principal("history-controller");
    let asker = Relay::deploy(b, principal("relay-controller"), 10 * T);
    let info = |id, wanted: Option<u64>, via: &Relay| -> CanisterInfoResult {
        via.call(
            candid::Principal::management_canister(),
            "canister_info",
            &CanisterInfoArgs {
                canister_id: id,
                num_requested_changes: wanted,
            },
            0,
        )
    };
    let id = b.create_canister(Some(ctl), Some(vec![ctl]), 10 * T);
    assert_eq!(info(id, None, &asker).total_num_changes, 1, "creation");
    let probe = wasm::load("replica-probe");
    b.install(
        id,
        probe.clone(),
        candid::encode_args(()).expect("()"),
        Some(ctl),
    )
    .unwrap_or_else(|e| panic!("install: {e}"));
    // Messages the canister executes (here its own canister_info calls) change nothing.
    let itself = Relay { b, id };
    for _ in 0..3 {
        let i = info(id, None, &itself);
        assert_eq!(i.total_num_changes, 2, "creation + install");
        assert!(i.recent_changes.is_empty(), "none asked for");
    }
    b.set_freezing_threshold(id, Some(ctl), 1_000_000)
        .unwrap_or_else(|e| panic!("update_settings: {e}"));
    assert_eq!(
        info(id, None, &asker).total_num_changes,
        2,
        "settings without controllers are not history"
    );
    b.set_controllers(id, Some(ctl), vec![ctl])
        .unwrap_or_else(|e| panic!("update_settings: {e}"));
    b.upgrade(
        id,
        probe.clone(),
        candid::encode_args(()).expect("()"),
        Some(ctl),
    )
    .unwrap_or_else(|e| panic!("upgrade: {e}"));
    let i = info(id, Some(3), &asker);
    assert_eq!(
        i.total_num_changes, 4,
        "+ controllers named (unchanged) + upgrade"
    );
    assert_eq!(i.controllers, vec![ctl]);
    assert_eq!(
        i.module_hash.as_deref(),
        Some(&wasm::sha256(&probe)[..]),
        "module hash"
    );
    let kinds: Vec<String> = i
        .recent_changes
        .iter()
        .map(|c| match &c.details {
            ChangeDetails::CodeDeployment(d) => {
                assert_eq!(d.module_hash, wasm::sha256(&probe).to_vec());
                match d.mode {
                    CodeDeploymentMode::Install => "install".into(),
                    CodeDeploymentMode::Reinstall => "reinstall".into(),
                    CodeDeploymentMode::Upgrade => "upgrade".into(),
                }
            }
            ChangeDetails::ControllersChange(c) => {
                assert_eq!(c.controllers, vec![ctl]);
                "controllers".into()
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["install", "controllers", "upgrade"],
        "the 3 most recent"
    );
    assert_eq!(info(id, Some(100), &asker).recent_changes.len(), 4);
}

/// The index of commit 7804bf7 (`tests/fixtures/`), before ownership reports were checked,
/// built from that commit's tree.
fn old_index_wasm() -> Vec<u8> {
    use std::io::Read;
    let gz = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/index-7804bf7.wasm.gz"
    ))
    .expect("tests/fixtures/index-7804bf7.wasm.gz");
    let mut wasm = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut wasm)
        .expect("gunzip the old index module");
    wasm
}

/// Real old data: an index of the previous module, with a transferred video and one frozen by a
/// forged `u64::MAX` report (which that module accepted), upgraded to the current module (its
/// new history map starts empty). Everything is kept, and the frozen video follows its next
/// genuine transfer again.
fn index_upgrade_recovers_from_a_forged_report(b: &dyn Backend) {
    let d = deploy(b);
    let idx = d.index_client();
    let (alice, bob, mallory) = (principal("alice"), principal("bob"), principal("mallory"));
    let (carol, dave, erin) = (principal("carol"), principal("dave"), principal("erin"));
    // The IC rate-limits install_code per canister (PocketIC: IC0209 right after the
    // deployment's install): let rounds pass first.
    let settle = || {
        b.advance_time(std::time::Duration::from_secs(60));
        for _ in 0..10 {
            b.tick();
        }
    };
    settle();
    let init = IndexInit {
        admins: vec![d.admin],
        registrars: vec![d.spawn, d.admin],
    };
    b.reinstall(
        d.index,
        old_index_wasm(),
        candid::encode_one(Some(init)).expect("encode"),
        Some(d.admin),
    )
    .unwrap_or_else(|e| panic!("installing the old index: {e}"));

    // Under the old module: a spawned video, sold once...
    let created = ok(
        "create_video",
        d.spawn_client().create_video(
            carol,
            &canvid_types::spawn::CreateVideoArgs {
                title: "old times".into(),
                description: String::new(),
                tags: vec![],
                declared_size: 1_000,
                owner: None,
            },
        ),
    );
    assert!(created.indexed);
    let v1 = Video::new(b, created.canister_id);
    // (Uploaded first: the owner controls a spawned video, and its transfers reach the index,
    // once the upload is finished.)
    v1.upload(carol, &GenFile::new(3, 1_000, 1_000));
    assert!(ok("change_owner", v1.change_owner(carol, dave)).index_notified);
    // ...and a canister running a forged module that froze its entry.
    let id = b.create_canister(Some(alice), Some(vec![alice]), 10 * T);
    b.set_controllers(id, Some(alice), vec![alice, id])
        .unwrap_or_else(|e| panic!("set_controllers: {e}"));
    b.install(
        id,
        wasm::load("replica-probe"),
        candid::encode_args(()).expect("()"),
        Some(alice),
    )
    .unwrap_or_else(|e| panic!("installing the forged module: {e}"));
    let reg = VideoRegistration {
        video: id,
        creator: alice,
        owner: alice,
    };
    ok("register_video", idx.register_video(d.admin, &reg));
    let res: canvid_types::Result<()> = Relay { b, id }.call(
        d.index,
        "report_owner_change",
        &OwnerChange {
            new_owner: mallory,
            transfer_seq: u64::MAX,
        },
        0,
    );
    assert_eq!(res, Ok(()), "the old module believed it");
    assert_eq!(idx.get_video(id).expect("registered").owner, mallory);

    settle();
    b.upgrade(
        d.index,
        wasm::index(),
        candid::encode_one(None::<IndexInit>).expect("encode"),
        Some(d.admin),
    )
    .unwrap_or_else(|e| panic!("upgrading the index: {e}"));
    let s = idx.stats();
    assert_eq!(
        (s.videos, s.owner_changes_applied, s.layout_version),
        (2, 2, 1)
    );
    let e = idx.get_video(v1.id).expect("kept");
    assert_eq!((e.creator, e.owner, e.transfer_seq), (carol, dave, 1));
    let e = idx.get_video(id).expect("kept");
    assert_eq!((e.owner, e.transfer_seq), (mallory, u64::MAX));
    // The collection's log starts with the mints of the videos the old module registered,
    // written by the backfill timer, to their current holders.
    settle();
    let blocks = log_blocks(b, d.index);
    let minted: Vec<(String, u64, Principal)> = blocks.iter().map(block_summary).collect();
    let mut expected = vec![
        ("7mint".to_string(), token_id_of(&v1.id).unwrap(), dave),
        ("7mint".to_string(), token_id_of(&id).unwrap(), mallory),
    ];
    expected.sort_by_key(|(_, t, _)| *t);
    assert_eq!(minted, expected);
    let tokens: Vec<candid::Nat> = b
        .query(
            d.index,
            alice,
            "icrc7_tokens",
            (None::<candid::Nat>, None::<candid::Nat>),
        )
        .map(|(t,): (Vec<candid::Nat>,)| t)
        .unwrap();
    assert_eq!(
        tokens,
        expected
            .iter()
            .map(|(_, t, _)| candid::Nat::from(*t))
            .collect::<Vec<_>>()
    );

    // Alice puts the real video module in and sells to bob: applied despite u64::MAX.
    let vinit = VideoInit {
        owner: alice,
        creator: alice,
        index: Some(d.index),
        title: "unfrozen".into(),
        description: String::new(),
        tags: vec![],
        funded_by: None,
        platform_fee: None,
    };
    b.reinstall(
        id,
        wasm::video_gz(),
        candid::encode_one(vinit).expect("encode VideoInit"),
        Some(alice),
    )
    .unwrap_or_else(|e| panic!("reinstalling the video module: {e}"));
    let r = ok("change_owner", Video::new(b, id).change_owner(alice, bob));
    assert!(r.index_notified);
    let e = idx.get_video(id).expect("registered");
    assert_eq!((e.owner, e.transfer_seq), (bob, 1));
    assert!(idx.by_owner(mallory).is_empty());
    // The spawned video keeps following its transfers.
    assert!(ok("change_owner", v1.change_owner(dave, erin)).index_notified);
    let e = idx.get_video(v1.id).expect("kept");
    assert_eq!((e.owner, e.transfer_seq), (erin, 2));
    assert_eq!(idx.stats().owner_changes_applied, 4);
    // Both direct sales after the upgrade are `7xfer` blocks of the collection.
    let after: Vec<(String, u64, Principal)> = log_blocks(b, d.index)
        .iter()
        .skip(2)
        .map(block_summary)
        .collect();
    assert_eq!(
        after,
        vec![
            ("7xfer".to_string(), token_id_of(&id).unwrap(), bob),
            ("7xfer".to_string(), token_id_of(&v1.id).unwrap(), erin),
        ]
    );
}

/// Every block of the collection's ICRC-3 log.
fn log_blocks(b: &dyn Backend, index: Principal) -> Vec<canvid_icrc3::Value> {
    use canvid_icrc3::types::{GetBlocksRequest, GetBlocksResult};
    let args = vec![GetBlocksRequest {
        start: candid::Nat::from(0u8),
        length: candid::Nat::from(1000u32),
    }];
    let r: GetBlocksResult = b
        .query1(index, Principal::anonymous(), "icrc3_get_blocks", &args)
        .unwrap();
    assert!(r.archived_blocks.is_empty());
    r.blocks.into_iter().map(|b| b.block).collect()
}

/// A block's type, token id and recipient (`tx.to`).
fn block_summary(block: &canvid_icrc3::Value) -> (String, u64, Principal) {
    use canvid_icrc3::Value;
    let btype = match block.get("btype") {
        Some(Value::Text(t)) => t.clone(),
        other => panic!("btype {other:?}"),
    };
    let tx = block.get("tx").expect("tx");
    let tid = match tx.get("tid") {
        Some(Value::Nat(n)) => u64::try_from(&n.0).unwrap(),
        other => panic!("tid {other:?}"),
    };
    let to = match tx.get("to") {
        Some(Value::Array(parts)) => match parts.first() {
            Some(Value::Blob(owner)) => Principal::from_slice(owner),
            other => panic!("to.owner {other:?}"),
        },
        other => panic!("to {other:?}"),
    };
    (btype, tid, to)
}

/// `icrc7_token_metadata` shows the video's own title, size and digest once refreshed (by its
/// holder), and where its certified metadata is; strangers cannot make the collection call.
fn token_metadata_is_the_videos_own(b: &dyn Backend) {
    use candid::Nat;
    use canvid_icrc3::Value;
    let d = deploy(b);
    let alice = principal("alice");
    let created = ok(
        "create_video",
        d.spawn_client().create_video(
            alice,
            &canvid_types::spawn::CreateVideoArgs {
                title: "a token's title".into(),
                description: "described".into(),
                tags: vec![],
                declared_size: 3_000,
                owner: None,
            },
        ),
    );
    let v = Video::new(b, created.canister_id);
    v.upload(alice, &GenFile::new(4, 3_000, 3_000));
    let tid = Nat::from(token_id_of(&v.id).unwrap());
    let r = b
        .update1::<_, Vec<canvid_types::Result<()>>>(
            d.index,
            principal("stranger"),
            "refresh_token_metadata",
            &vec![tid.clone()],
        )
        .expect_err("refresh_token_metadata by a stranger is refused at ingress");
    assert_eq!(r.error_code, "IC0406", "{r}");
    let out: Vec<canvid_types::Result<()>> = b
        .update1(d.index, alice, "refresh_token_metadata", &vec![tid.clone()])
        .unwrap();
    assert_eq!(out, vec![Ok(())]);
    let md: Vec<Option<Vec<(String, Value)>>> = b
        .query1(d.index, alice, "icrc7_token_metadata", &vec![tid])
        .unwrap();
    let md = md.into_iter().next().flatten().expect("a token");
    let get = |k: &str| md.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("icrc7:name"), Some(Value::text("a token's title")));
    assert_eq!(get("icrc7:description"), Some(Value::text("described")));
    assert_eq!(get("canvid:size"), Some(Value::nat(3_000)));
    assert_eq!(get("canvid:ready"), Some(Value::nat(1)));
    let digest = v.metadata().digest.expect("finished");
    assert_eq!(get("canvid:digest"), Some(Value::blob(digest.to_vec())));
    assert_eq!(
        get("icrc97:metadata"),
        Some(Value::Array(vec![Value::text(format!(
            "https://{}.icp0.io/metadata.json",
            v.id
        ))]))
    );
}

backend_tests!(
    token_metadata_is_the_videos_own,
    index_upgrade_recovers_from_a_forged_report,
    index_authorisation,
    m4_forged_owner_reports,
    canister_history_counts_changes_only
);
