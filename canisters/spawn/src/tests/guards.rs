//! Native tests of the ingress policy (`guards::accepts_ingress`) over a real store.

use canvid_stable_common::Candid;
use canvid_types::spawn::{QuotaArgs, SpawnStatus};
use ic_stable_structures::DefaultMemoryImpl;

use super::{canister, user, video};
use crate::guards::accepts_ingress;
use crate::logic::{Account, MAX_CREATE_VIDEO_ARG_BYTES};
use crate::store::{PKey, SpawnStore};

#[test]
fn admin_methods_from_admins_only() {
    let s = SpawnStore::open(DefaultMemoryImpl::default(), user(1));
    for method in [
        "set_admins",
        "set_quota",
        "upgrade_videos",
        "top_up",
        "retry_pending",
    ] {
        assert!(accepts_ingress(&s, method, &user(1), 10), "{method}");
        assert!(!accepts_ingress(&s, method, &user(2), 10), "{method}");
    }
}

#[test]
fn create_video_from_callers_with_a_way_to_pay() {
    let mut s = SpawnStore::open(DefaultMemoryImpl::default(), user(1));
    let small = 1_000;
    // Admins pay like everybody else: no quota, no credit, no spare.
    assert!(!accepts_ingress(&s, "create_video", &user(1), small));
    // A quota of their own, the default quota, credit, or a parked spare.
    let q = QuotaArgs {
        max_videos: 1,
        max_cycles: 1,
    };
    s.quotas.insert(PKey::new(&user(2)), Candid(q.clone()));
    assert!(accepts_ingress(&s, "create_video", &user(2), small));
    assert!(!accepts_ingress(
        &s,
        "create_video",
        &user(2),
        MAX_CREATE_VIDEO_ARG_BYTES + 1
    ));
    s.set_account(
        &user(3),
        Account {
            credit: 5,
            ..Account::default()
        },
    );
    assert!(accepts_ingress(&s, "create_video", &user(3), small));
    s.put_video(video(canister(1), user(4), SpawnStatus::Spare));
    s.park_spare(&user(4), &canister(1));
    assert!(accepts_ingress(&s, "create_video", &user(4), small));
    assert!(!accepts_ingress(&s, "create_video", &user(5), small));
    s.update_config(|c| c.default_quota = Some(q));
    assert!(accepts_ingress(&s, "create_video", &user(5), small));
    assert!(!accepts_ingress(
        &s,
        "create_video",
        &candid::Principal::anonymous(),
        small
    ));
}
