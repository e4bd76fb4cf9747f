//! Who may write to the index: registrars register, a video reports its own owner changes.

use canvid_tests::clients::{rejected, Relay};
use canvid_tests::deploy::{deploy, T};
use canvid_tests::{backend_tests, principal, Backend};
use canvid_types::index::{OwnerChange, VideoRegistration};
use canvid_types::Error;

fn index_authorisation(b: &dyn Backend) {
    let d = deploy(b);
    let idx = d.index_client();
    let mallory = principal("mallory");
    let relay = Relay::deploy(b, principal("relay-controller"), 10 * T);
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
    // then, being that video, report its owner changes; stale reports are ignored.
    canvid_tests::clients::ok(
        "set_registrars",
        idx.set_registrars(d.admin, vec![d.spawn, relay.id]),
    );
    let res: canvid_types::Result<()> = relay.call(d.index, "register_video", &reg, 0);
    assert_eq!(res, Ok(()));
    let bob = principal("bob");
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
    let res: canvid_types::Result<()> = relay.call(d.index, "report_owner_change", &change, 0);
    assert_eq!(res, Ok(()), "a stale report is acknowledged without effect");
    let e = idx.get_video(relay.id).expect("registered");
    assert_eq!((e.owner, e.transfer_seq), (bob, 2));
    assert_eq!(idx.by_owner(bob).len(), 1);
    assert!(idx.by_owner(mallory).is_empty());
    assert_eq!(idx.by_creator(mallory).len(), 1);
}

backend_tests!(index_authorisation);
