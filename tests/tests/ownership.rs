//! Ownership transfers: three in a row, one of them through an approved marketplace operator.
//! Afterwards only the last owner (with the video itself and the spawn canister) controls the
//! canister; earlier owners are refused as controllers and as app owners; the index agrees.

use canvid_tests::clients::{ok, rejected, CallOutcome, Relay, Video};
use canvid_tests::deploy::{deploy, Deployment, T};
use canvid_tests::{backend_tests, principal, wasm, Backend, BackendExt, GenFile, Principal};
use canvid_types::spawn::CreateVideoArgs;
use canvid_types::video::{ChangeOwnerResult, MetadataPatch, VideoInit};
use std::collections::BTreeSet;

const IC0406: &str = "IC0406";

fn set(v: impl IntoIterator<Item = Principal>) -> BTreeSet<Principal> {
    v.into_iter().collect()
}

/// A spawned video whose upload is not finished: the video and the spawn canister control it.
fn create_unfinished(d: &Deployment, owner: Principal) -> Principal {
    ok(
        "create_video",
        d.spawn_client().create_video(
            owner,
            &CreateVideoArgs {
                title: "for sale".into(),
                description: String::new(),
                tags: vec![],
                declared_size: 500_000,
                owner: None,
            },
        ),
    )
    .canister_id
}

/// A spawned video, uploaded and finished: `finish_upload` made its owner a controller.
fn create(d: &Deployment, owner: Principal) -> Principal {
    let id = create_unfinished(d, owner);
    d.video(id).upload(owner, &GenFile::new(99, 1_000, 1_000));
    assert_eq!(set(d.b.controllers(id)), set([owner, id, d.spawn]));
    id
}

/// Transfers and checks the immediate result.
fn transfer(d: &Deployment, v: &Video, by: Principal, to: Principal, seq: u64) {
    let r = ok("change_owner", v.change_owner(by, to));
    assert_eq!(r.transfer_seq, seq);
    assert!(r.index_notified, "the index acknowledged transfer {seq}");
    assert_eq!(set(r.controllers.clone()), set([to, v.id, d.spawn]));
    assert_eq!(set(d.b.controllers(v.id)), set([to, v.id, d.spawn]));
    let m = v.metadata();
    assert_eq!(m.owner, to);
    assert_eq!(m.transfer_seq, seq);
    assert_eq!(m.operator, None, "a transfer clears the operator");
}

fn three_transfers(b: &dyn Backend) {
    let d = deploy(b);
    let creator = principal("creator");
    let (a, bb, c) = (principal("A"), principal("B"), principal("C"));
    let market = principal("marketplace");
    let id = create_unfinished(&d, creator);
    let v = d.video(id);
    let file = GenFile::new(21, 250_000, 100_000);
    v.upload(creator, &file);

    // creator -> A (by the owner)
    transfer(&d, &v, creator, a, 1);
    // A -> B through the marketplace A approved
    ok("approve", v.approve(a, Some(market)));
    assert_eq!(v.metadata().operator, Some(market));
    transfer(&d, &v, market, bb, 2);
    // the operator approval died with the transfer
    let r = rejected("stale operator", v.change_owner(market, market));
    assert_eq!(r.error_code, IC0406, "{r}");
    // B -> C
    transfer(&d, &v, bb, c, 3);

    // Controllers: C, the video, the spawn canister; nobody else.
    let controllers = set(b.controllers(id));
    assert_eq!(controllers, set([c, id, d.spawn]));
    for old in [creator, a, bb] {
        assert!(!controllers.contains(&old));
        // Old owners are refused by the management canister...
        assert!(
            b.set_controllers(id, Some(old), vec![old]).is_err(),
            "{old} can no longer set controllers"
        );
        assert!(
            b.stop(id, Some(old)).is_err(),
            "{old} can no longer stop the canister"
        );
        assert!(
            b.status(id, Some(old)).is_err(),
            "{old} can no longer read canister_status"
        );
        assert!(
            b.upgrade(
                id,
                wasm::video_gz(),
                candid::encode_args(()).unwrap(),
                Some(old)
            )
            .is_err(),
            "{old} can no longer upgrade the canister"
        );
        // ...and by the app.
        let r = rejected(
            "old owner update_metadata",
            v.update_metadata(old, &MetadataPatch::default()),
        );
        assert_eq!(r.error_code, IC0406, "{r}");
        let r = rejected("old owner approve", v.approve(old, Some(old)));
        assert_eq!(r.error_code, IC0406, "{r}");
        let r = rejected("old owner change_owner", v.change_owner(old, old));
        assert_eq!(r.error_code, IC0406, "{r}");
    }
    let r = rejected("operator after transfer", v.change_owner(market, a));
    assert_eq!(r.error_code, IC0406, "{r}");

    // C is in charge: metadata, management, upgrade — data intact.
    let patch = MetadataPatch {
        title: Some("C's now".into()),
        ..Default::default()
    };
    assert_eq!(
        ok("update_metadata by C", v.update_metadata(c, &patch)).title,
        "C's now"
    );
    assert!(b.status(id, Some(c)).is_ok());
    b.upgrade(
        id,
        wasm::video_gz(),
        candid::encode_args(()).unwrap(),
        Some(c),
    )
    .unwrap_or_else(|e| panic!("C upgrades its canister: {e}"));
    v.verify_chunks(principal("viewer"), &file);

    // The index: C owns it, the creator created it.
    let idx = d.index_client();
    let e = idx.get_video(id).expect("indexed");
    assert_eq!((e.creator, e.owner, e.transfer_seq), (creator, c, 3));
    assert_eq!(
        idx.by_owner(c).iter().map(|e| e.video).collect::<Vec<_>>(),
        vec![id]
    );
    assert_eq!(
        idx.by_creator(creator)
            .iter()
            .map(|e| e.video)
            .collect::<Vec<_>>(),
        vec![id]
    );
    for old in [creator, a, bb] {
        assert!(
            idx.by_owner(old).is_empty(),
            "{old} is no longer listed as owner"
        );
    }
    let m = v.metadata();
    assert_eq!((m.creator, m.owner, m.transfer_seq), (creator, c, 3));
    assert!(v.canister_info().pending_index_notification.is_none());
}

/// Transfer refusals that reach the endpoint.
fn transfer_refusals(b: &dyn Backend) {
    let d = deploy(b);
    let owner = principal("owner");
    let id = create(&d, owner);
    let v = d.video(id);
    for bad in [Principal::anonymous(), owner, id] {
        match v.change_owner(owner, bad) {
            Ok(Err(canvid_types::Error::InvalidArgument { .. })) => {}
            other => panic!("change_owner to {bad}: expected InvalidArgument, got {other:?}"),
        }
    }
    assert_eq!(v.metadata().transfer_seq, 0);
    assert_eq!(set(b.controllers(id)), set([owner, id, d.spawn]));
}

/// The spawn canister's "controllers" step, retried after the video was sold, must not give it
/// back to the owner the spawn's record names (security review M1). Since the owner becomes a
/// controller only at `finish_upload`, nobody but the spawn can touch the controllers before
/// that step runs (the read-then-write window M1 left is closed): here the step fails (the
/// video is stopped), the seller cannot take control meanwhile, finishes the upload (the
/// hand-over waits for the step), and the step's retry, the hand-over and a sale then
/// leave the buyer in control.
fn m1_a_retried_controllers_step_never_gives_a_sold_video_back(b: &dyn Backend) {
    use canvid_types::spawn::SpawnStatus;
    use canvid_types::video::ControlStatus;
    let d = deploy(b);
    let (seller, buyer) = (principal("seller"), principal("buyer"));
    let sp = d.spawn_client();
    let call = sp
        .submit_create_video(
            seller,
            &CreateVideoArgs {
                title: "sold before set up".into(),
                description: String::new(),
                tags: vec![],
                declared_size: 1_000,
                owner: None,
            },
        )
        .expect("create_video accepted");
    // Run until the creation awaits install_code, then stop the canister (as the spawn, its only
    // controller): the install goes through, the controllers step's call to the video cannot,
    // and waits for a retry.
    let id = sp.tick_until_installing();
    b.stop(id, Some(d.spawn))
        .expect("the spawn stops the video");
    let created = ok("create_video", sp.await_create_video(call));
    assert_eq!(created.canister_id, id);
    assert_eq!(
        sp.get_video(id).expect("record").status,
        SpawnStatus::Installed,
        "{}: the controllers step failed and waits for a retry",
        b.name()
    );
    assert_eq!(set(b.controllers(id)), set([d.spawn]));
    assert!(
        b.set_controllers(id, Some(seller), vec![seller]).is_err(),
        "{}: the owner cannot take control of an unfinished video",
        b.name()
    );
    b.start(id, Some(d.spawn)).expect("started again");

    // The seller finishes the upload: the video cannot hand control over before it controls
    // itself, so the hand-over is retried later.
    let v = Video::new(b, id);
    let meta = v.upload(seller, &GenFile::new(5, 1_000, 1_000));
    assert!(
        matches!(
            meta.control,
            Some(ControlStatus::HandingOver { attempts: 1, .. })
        ),
        "{}: {:?}",
        b.name(),
        meta.control
    );
    assert_eq!(set(b.controllers(id)), set([d.spawn]));

    // The spawn's retry sets [video, spawn] (not the seller); the video's timer then hands
    // control to its owner.
    ok("retry_pending", sp.retry_pending(d.admin));
    assert_eq!(set(b.controllers(id)), set([id, d.spawn]));
    b.advance_time(std::time::Duration::from_secs(120));
    for _ in 0..10 {
        b.tick();
    }
    assert_eq!(v.metadata().control, Some(ControlStatus::Owner));
    assert_eq!(set(b.controllers(id)), set([seller, id, d.spawn]));

    // Sold; a later retry of the spawn writes nothing.
    ok("change_owner", v.change_owner(seller, buyer));
    assert_eq!(set(b.controllers(id)), set([buyer, id, d.spawn]));
    ok("retry_pending", sp.retry_pending(d.admin));
    assert_eq!(
        set(b.controllers(id)),
        set([buyer, id, d.spawn]),
        "{}: the retry handed control back to the seller",
        b.name()
    );
    assert_eq!(v.metadata().owner, buyer);
}

/// A marketplace that is also one of the video's uploaders can still sell it once approved
/// (security review L3: the uploader role used to hide the operator role).
fn l3_an_approved_uploader_may_transfer(b: &dyn Backend) {
    let d = deploy(b);
    let (seller, market, buyer) = (principal("seller"), principal("market"), principal("buyer"));
    let id = create(&d, seller);
    let v = Video::new(b, id);
    ok("add_uploader", v.add_uploader(seller, market));
    ok("approve", v.approve(seller, Some(market)));
    transfer(&d, &v, market, buyer, 1);
}

/// A seller who stays a controller through state it planted before the sale (security review
/// H3): the stored installer is whatever the seller's code wrote. Without `keep_controllers`
/// the video keeps that installer; a buyer who names the controllers gets exactly those.
fn h3_a_buyer_names_the_controllers_it_keeps(b: &dyn Backend) {
    let (seller, buyer, next) = (principal("seller"), principal("buyer"), principal("next"));
    // A canister the seller controls, named as the video's installer.
    let accomplice = b.create_canister(Some(seller), Some(vec![seller]), 10 * T);
    let id = b.create_canister(Some(seller), Some(vec![seller, accomplice]), 50 * T);
    let init = VideoInit {
        owner: seller,
        creator: seller,
        index: None,
        title: "planted".into(),
        description: String::new(),
        tags: vec![],
        funded_by: None,
        platform_fee: None,
    };
    b.install(
        id,
        wasm::video_gz(),
        candid::encode_one(init).unwrap(),
        Some(accomplice),
    )
    .unwrap_or_else(|e| panic!("install by the accomplice canister: {e}"));
    b.set_controllers(id, Some(seller), vec![seller, id, accomplice])
        .unwrap();
    let v = Video::new(b, id);

    // The default trusts the stored installer: the accomplice stays.
    let r = ok("default transfer", v.change_owner(seller, buyer));
    assert_eq!(set(r.controllers), set([buyer, id, accomplice]));
    assert_eq!(set(b.controllers(id)), set([buyer, id, accomplice]));

    // Naming the controllers drops it, whatever the state says.
    let r = ok(
        "transfer keeping none",
        v.change_owner_keeping(buyer, next, Some(vec![])),
    );
    assert_eq!(set(r.controllers), set([next, id]));
    assert_eq!(set(b.controllers(id)), set([next, id]));
    assert!(
        b.upgrade(
            id,
            wasm::video_gz(),
            candid::encode_args(()).unwrap(),
            Some(accomplice)
        )
        .is_err(),
        "the accomplice can no longer upgrade the video"
    );
    // And keeping a named one keeps exactly that one.
    let spawn_like = b.create_canister(Some(next), Some(vec![next]), T);
    let r = ok(
        "transfer keeping a named canister",
        v.change_owner_keeping(next, buyer, Some(vec![spawn_like, spawn_like])),
    );
    assert_eq!(set(r.controllers), set([buyer, id, spawn_like]));
    assert_eq!(set(b.controllers(id)), set([buyer, id, spawn_like]));
    // Orphaning owners are refused before anything changes (security review L4).
    for bad in [id, Principal::from_slice(&[9, 0x7f])] {
        let e = canvid_tests::clients::err("orphaning new owner", v.change_owner(buyer, bad));
        assert!(
            matches!(e, canvid_types::Error::InvalidArgument { .. }),
            "{bad}: {e:?}"
        );
    }
    assert_eq!(v.metadata().owner, buyer);
}

/// `accept_ownership` through a relay canister (inter-canister calls skip `inspect_message`, so
/// the endpoint's own answer comes back).
fn accept_via(relay: &Relay, video: Principal) -> canvid_types::Result<ChangeOwnerResult> {
    match relay.call_raw(
        video,
        "accept_ownership",
        candid::encode_args(()).unwrap(),
        0,
    ) {
        CallOutcome::Reply { data, .. } => candid::decode_one(&data).expect("accept reply"),
        other => panic!("accept_ownership via the relay: {other:?}"),
    }
}

/// Two-step transfer (security review L4): an offer changes nothing until the offered principal
/// accepts it; nobody else can accept; the acceptance is a full transfer (owner, controllers,
/// index); an offer expires after 7 days.
fn l4_two_step_transfer(b: &dyn Backend) {
    use canvid_types::video::OFFER_VALIDITY_NS;
    use canvid_types::Error;
    let d = deploy(b);
    let (owner, buyer, typo, stranger) = (
        principal("offer-owner"),
        principal("offer-buyer"),
        principal("offer-typo"),
        principal("offer-stranger"),
    );
    let relay = Relay::deploy(b, principal("relay-controller"), 10 * T);
    let id = create(&d, owner);
    let v = d.video(id);

    // Nothing to accept yet; strangers cannot offer.
    let r = rejected("accept without an offer", v.accept_ownership(buyer));
    assert_eq!(r.error_code, IC0406, "{r}");
    let r = rejected(
        "offer by a stranger",
        v.offer_ownership(stranger, stranger, None),
    );
    assert_eq!(r.error_code, IC0406, "{r}");
    match v.offer_ownership(owner, id, None) {
        Ok(Err(Error::InvalidArgument { .. })) => {}
        other => panic!("offer to the video itself: {other:?}"),
    }

    // A mistyped offer, then the right one replaces it.
    let typo_offer = ok("offer to a typo", v.offer_ownership(owner, typo, None));
    assert_eq!(v.metadata().pending_offer, Some(typo_offer));
    let o = ok(
        "offer to the buyer",
        v.offer_ownership(owner, buyer, Some(vec![d.spawn])),
    );
    assert_eq!((o.new_owner, o.offered_by), (buyer, owner));
    assert_eq!(o.expires_at - o.offered_at, OFFER_VALIDITY_NS);
    assert_eq!(v.metadata().pending_offer, Some(o.clone()));
    assert_eq!(v.canister_info().pending_offer, Some(o.clone()));

    // Wrong principals cannot accept: refused as ingress, NotAuthorized from a canister.
    for who in [typo, owner, stranger] {
        let r = rejected("accept by the wrong principal", v.accept_ownership(who));
        assert_eq!(r.error_code, IC0406, "{who}: {r}");
    }
    match accept_via(&relay, id) {
        Err(Error::NotAuthorized { caller, .. }) => assert_eq!(caller, relay.id),
        other => panic!("accept by a canister nobody offered it to: {other:?}"),
    }
    assert_eq!(v.metadata().owner, owner);
    assert_eq!(v.metadata().transfer_seq, 0);
    assert_eq!(set(b.controllers(id)), set([owner, id, d.spawn]));

    // The offered principal accepts: a complete transfer.
    let r = ok("accept_ownership", v.accept_ownership(buyer));
    assert_eq!(r.transfer_seq, 1);
    assert!(r.index_notified);
    assert_eq!(set(r.controllers.clone()), set([buyer, id, d.spawn]));
    assert_eq!(set(b.controllers(id)), set([buyer, id, d.spawn]));
    let m = v.metadata();
    assert_eq!((m.owner, m.transfer_seq, m.pending_offer), (buyer, 1, None));
    assert_eq!(
        d.index_client().get_video(id).expect("indexed").owner,
        buyer
    );
    assert!(
        b.status(id, Some(owner)).is_err(),
        "the old owner is no longer a controller"
    );
    let r = rejected("accept twice", v.accept_ownership(buyer));
    assert_eq!(r.error_code, IC0406, "{r}");

    // Cancelled offers cannot be accepted.
    ok("offer", v.offer_ownership(buyer, relay.id, None));
    ok("cancel_offer", v.cancel_offer(buyer));
    assert_eq!(v.metadata().pending_offer, None);
    assert!(matches!(
        accept_via(&relay, id),
        Err(Error::NotAuthorized { .. })
    ));

    // Expiry: 7 days later the offer can no longer be accepted.
    let o = ok(
        "offer to the relay",
        v.offer_ownership(buyer, relay.id, Some(vec![])),
    );
    b.advance_time(std::time::Duration::from_nanos(
        OFFER_VALIDITY_NS + 60_000_000_000,
    ));
    b.tick();
    match accept_via(&relay, id) {
        Err(Error::NotAuthorized { reason, .. }) => assert!(reason.contains("expired"), "{reason}"),
        other => panic!("accepting an expired offer: {other:?}"),
    }
    assert_eq!(
        v.metadata().pending_offer,
        Some(o),
        "still shown, with its expiry"
    );
    assert_eq!(v.metadata().owner, buyer);
    // A fresh offer is accepted by the (canister) principal it names.
    ok(
        "offer again",
        v.offer_ownership(buyer, relay.id, Some(vec![])),
    );
    let r = accept_via(&relay, id).expect("the relay accepts");
    assert_eq!(
        (r.transfer_seq, set(r.controllers)),
        (2, set([relay.id, id]))
    );
    assert_eq!(set(b.controllers(id)), set([relay.id, id]));
    assert_eq!(v.metadata().owner, relay.id);
}

backend_tests!(
    l4_two_step_transfer,
    l3_an_approved_uploader_may_transfer,
    three_transfers,
    transfer_refusals,
    m1_a_retried_controllers_step_never_gives_a_sold_video_back,
    h3_a_buyer_names_the_controllers_it_keeps
);
