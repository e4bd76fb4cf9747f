//! Native tests of `SpawnStore` over in-memory stable memory: reopening (as an upgrade does),
//! spares, recovery of interrupted creations, `list_videos` paging and the upgrade targets.

use std::collections::BTreeSet;

use candid::{Encode, Principal};
use canvid_stable_common::Candid;
use canvid_types::spawn::{InFlight, Payer, QuotaArgs, SpawnListArgs, SpawnStatus};
use canvid_types::Error;
use ic_stable_structures::{DefaultMemoryImpl, Storable};

use super::{canister, user, video};
use crate::logic::Account;
use crate::store::{Header, PKey, Recovery, SpawnStore, WasmMeta};

#[test]
fn store_survives_reopen_and_spares_are_claimed_once() {
    let mem = DefaultMemoryImpl::default();
    let admin = user(1);
    {
        let mut s = SpawnStore::open(mem.clone(), admin);
        let wasm: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        s.set_wasm(&wasm, vec![7; 32]);
        // A smaller module afterwards: only its own bytes are returned.
        s.set_wasm(&wasm[..1000], vec![8; 32]);
        assert_eq!(s.next_op(), 0);
        assert_eq!(s.next_op(), 1);
        s.put_video(video(canister(10), user(2), SpawnStatus::Spare));
        s.put_video(video(canister(11), user(2), SpawnStatus::Spare));
        s.park_spare(&user(2), &canister(10));
        s.park_spare(&user(2), &canister(11));
        s.set_account(
            &user(2),
            Account {
                used_videos: 2,
                used_cycles: 20,
                credit: 5,
            },
        );
        s.quotas.insert(
            PKey::new(&user(2)),
            Candid(QuotaArgs {
                max_videos: 3,
                max_cycles: 30,
            }),
        );
        s.in_flight.insert(
            2,
            Candid(InFlight {
                op: 2,
                caller: user(2),
                owner: user(2),
                payer: Payer::Pool,
                cycles: 1,
                started_at: 0,
                canister_id: None,
                step: "creating".into(),
            }),
        );
    }
    let mut s = SpawnStore::open(mem.clone(), user(9));
    assert_eq!(
        s.config().admins,
        vec![admin],
        "stored admins win over the new installer"
    );
    let (w, sha) = s.wasm().unwrap();
    assert_eq!((w.len(), sha), (1000, vec![8; 32]));
    assert_eq!(w[999], 999u32 as u8);
    assert_eq!(s.next_op(), 2, "op ids are never reused");
    assert_eq!(s.account(&user(2)).credit, 5);
    assert_eq!(s.quota(&user(2)).0.unwrap().max_videos, 3);
    assert_eq!(s.quota(&user(3)), (None, true));
    assert_eq!(s.in_flight.len(), 1);
    assert_eq!(s.spares_of(&user(2)).len(), 2);
    assert!(s.spares_of(&user(3)).is_empty());
    let first = s.claim_spare(&user(2)).unwrap();
    let second = s.claim_spare(&user(2)).unwrap();
    assert_ne!(first.canister_id, second.canister_id);
    assert!(s.claim_spare(&user(2)).is_none());
    s.set_account(&user(2), Account::default());
    assert!(s.accounts.is_empty(), "empty accounts are not stored");
}

fn in_flight(op: u64, caller: Principal, id: Option<Principal>) -> Candid<InFlight> {
    Candid(InFlight {
        op,
        caller,
        owner: caller,
        payer: Payer::Attached,
        cycles: 7,
        started_at: 0,
        canister_id: id,
        step: "installing (attempt 1)".into(),
    })
}

/// An interrupted creation is resumed from its records: a canister without code is parked for
/// the caller (and their next creation claims it), an installed one goes to the outbox, one
/// without a known canister stays visible in flight; live operations are not touched.
#[test]
fn interrupted_creations_are_recovered_not_stranded() {
    let mut s = SpawnStore::open(DefaultMemoryImpl::default(), user(1));
    let caller = user(2);
    // op 1: created, install interrupted. op 2: a claimed spare whose top-up was interrupted.
    // op 3: installed, controllers interrupted. op 4: no canister yet. op 5: registered.
    // op 6: created but still driven by a live future.
    s.put_video(video(canister(1), caller, SpawnStatus::Created));
    s.put_video(video(canister(2), caller, SpawnStatus::Spare));
    s.put_video(video(canister(3), caller, SpawnStatus::Installed));
    s.put_video(video(canister(5), caller, SpawnStatus::Registered));
    s.put_video(video(canister(6), caller, SpawnStatus::Created));
    for (op, id) in [
        (1, Some(canister(1))),
        (2, Some(canister(2))),
        (3, Some(canister(3))),
        (4, None),
        (5, Some(canister(5))),
        (6, Some(canister(6))),
    ] {
        s.in_flight.insert(op, in_flight(op, caller, id));
    }
    let live = BTreeSet::from([6u64]);
    let got = s.recover_stale(&live, 99, "test");
    assert_eq!(
        got,
        vec![
            (1, Recovery::Parked(canister(1))),
            (2, Recovery::Parked(canister(2))),
            (3, Recovery::Outbox(canister(3))),
            (4, Recovery::NoCanister),
            (5, Recovery::Done(canister(5))),
        ]
    );
    let v = s.video(&canister(1)).unwrap();
    assert_eq!(v.status, SpawnStatus::Spare);
    assert_eq!(v.updated_at, 99);
    assert!(v.last_error.unwrap().contains("interrupted (test)"));
    assert_eq!(s.spares_of(&caller), vec![canister(1), canister(2)]);
    assert!(s.outbox.contains_key(&PKey::new(&canister(3))));
    assert_eq!(
        s.video(&canister(3)).unwrap().status,
        SpawnStatus::Installed
    );
    // Only the unknown-canister op and the live one remain in flight.
    let left: Vec<u64> = s.in_flight.keys().collect();
    assert_eq!(left, vec![4, 6]);
    let four = s.in_flight.get(&4).unwrap().0;
    assert!(
        four.step
            .contains("interrupted before a canister was recorded"),
        "{}",
        four.step
    );
    assert_eq!(s.video(&canister(6)).unwrap().status, SpawnStatus::Created);
    // Idempotent: a second pass changes nothing but the unknown op's step.
    assert_eq!(
        s.recover_stale(&live, 100, "again"),
        vec![(4, Recovery::NoCanister)]
    );
    assert_eq!(s.recover_op(1, 100, "gone"), Recovery::NotInFlight);
    assert_eq!(s.spares_of(&caller).len(), 2);
    // The caller's next creation claims the parked canister.
    assert_eq!(s.claim_spare(&caller).unwrap().canister_id, canister(1));
}

/// `Candid<T>` (canvid-stable-common) replaced the canister's own `Cand<T>`: both store
/// `Encode!(&value)`, so records written by the released module read back unchanged.
#[test]
fn stored_records_are_their_candid_encoding() {
    let v = video(canister(1), user(2), SpawnStatus::Registered);
    let bytes = Candid(v.clone()).into_bytes();
    assert_eq!(bytes, Encode!(&v).unwrap());
    assert_eq!(
        Candid::<canvid_types::spawn::SpawnedVideo>::from_bytes(bytes.into()).0,
        v
    );
    let q = QuotaArgs {
        max_videos: 3,
        max_cycles: 30,
    };
    assert_eq!(Candid(q.clone()).into_bytes(), Encode!(&q).unwrap());
}

fn list(
    s: &SpawnStore<DefaultMemoryImpl>,
    cursor: Option<Principal>,
    limit: Option<u32>,
) -> canvid_types::spawn::SpawnPage {
    s.list_videos(&SpawnListArgs { cursor, limit })
}

/// Walking `list_videos` page by page visits every created video once, in key order, whatever
/// the limit; a full last page leaves no cursor, and the limit is clamped.
#[test]
fn list_videos_pages_over_every_video_once() {
    let mut s = SpawnStore::open(DefaultMemoryImpl::default(), user(1));
    assert_eq!(list(&s, None, None).videos.len(), 0);
    assert_eq!(list(&s, None, None).next_cursor, None);
    // Ids of different lengths interleave in key order.
    let mut ids: Vec<Principal> = (0..=255u8).map(canister).collect();
    ids.extend((0..50u8).map(|n| Principal::from_slice(&[n, 0x01])));
    for (i, id) in ids.iter().enumerate() {
        let status = if i % 3 == 0 {
            SpawnStatus::Spare
        } else {
            SpawnStatus::Registered
        };
        s.put_video(video(*id, user((i % 7) as u8), status));
    }
    let mut expected = ids.clone();
    expected.sort_by_key(PKey::new);
    for limit in [
        Some(1),
        Some(7),
        Some(100),
        Some(306),
        Some(307),
        None,
        Some(0),
    ] {
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = list(&s, cursor, limit);
            assert!(!page.videos.is_empty(), "limit {limit:?}: no empty pages");
            seen.extend(page.videos.iter().map(|v| v.canister_id));
            pages += 1;
            match page.next_cursor {
                Some(c) => {
                    assert_eq!(Some(c), seen.last().copied(), "the cursor is the last item");
                    cursor = Some(c);
                }
                None => break,
            }
        }
        assert_eq!(seen, expected, "limit {limit:?}");
        let size = limit
            .unwrap_or(canvid_types::spawn::DEFAULT_PAGE_LIMIT)
            .max(1) as usize;
        assert_eq!(pages, expected.len().div_ceil(size), "limit {limit:?}");
    }
    // A cursor at the last video, or past every key: an empty last page.
    let last = *expected.last().unwrap();
    let page = list(&s, Some(last), Some(5));
    assert!(page.videos.is_empty() && page.next_cursor.is_none());
    // A cursor needs not be a stored video: the page starts after where it would be.
    let between = Principal::from_slice(&[0, 0x01, 0]);
    let after = expected
        .iter()
        .position(|id| PKey::new(id) > PKey::new(&between))
        .unwrap();
    assert!(after > 0 && !expected.contains(&between));
    let page = list(&s, Some(between), Some(2));
    assert_eq!(page.videos[0].canister_id, expected[after]);
    // Larger than the maximum: clamped.
    for i in 0..800u32 {
        let b = i.to_be_bytes();
        s.put_video(video(
            Principal::from_slice(&[9, b[2], b[3], 0x01]),
            user(1),
            SpawnStatus::Registered,
        ));
    }
    let page = list(&s, None, Some(u32::MAX));
    assert_eq!(
        page.videos.len(),
        canvid_types::spawn::MAX_PAGE_LIMIT as usize
    );
    assert!(page.next_cursor.is_some());
}

/// With no list given, `upgrade_videos` goes through every video created here in key order;
/// a given list is kept as given (unknown ids are reported by `check_upgradable`).
#[test]
fn upgrade_targets_and_their_filter() {
    let mut s = SpawnStore::open(DefaultMemoryImpl::default(), user(1));
    assert!(s.upgrade_targets(None).is_empty());
    let statuses = [
        (canister(3), SpawnStatus::Registered),
        (canister(1), SpawnStatus::Created),
        (canister(2), SpawnStatus::Spare),
        (canister(4), SpawnStatus::IndexPending),
        (canister(5), SpawnStatus::Installed),
    ];
    for (id, status) in statuses {
        s.put_video(video(id, user(2), status));
    }
    let all = s.upgrade_targets(None);
    assert_eq!(all, (1..=5).map(canister).collect::<Vec<_>>());
    let upgradable: Vec<Principal> = all
        .into_iter()
        .filter(|id| s.check_upgradable(id).is_ok())
        .collect();
    assert_eq!(upgradable, vec![canister(3), canister(4), canister(5)]);
    let asked = vec![canister(9), canister(5), canister(1)];
    assert_eq!(s.upgrade_targets(Some(asked.clone())), asked);
    assert!(matches!(
        s.check_upgradable(&canister(9)),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.check_upgradable(&canister(1)),
        Err(Error::NotReady { .. })
    ));
}

/// A header written before `Config::app_canisters` existed (the same record without it) still
/// opens: the new `opt` field decodes as `None`, i.e. no app canister is allow-listed.
#[test]
fn header_without_app_canisters_decodes_to_none() {
    #[derive(candid::CandidType)]
    struct ConfigBefore {
        admins: Vec<Principal>,
        index: Option<Principal>,
        default_quota: Option<QuotaArgs>,
        cycles: canvid_types::spawn::CyclesConfig,
        wasm: Option<WasmMeta>,
        next_op: u64,
        videos_created: u64,
    }
    let before = ConfigBefore {
        admins: vec![user(1)],
        index: Some(canister(7)),
        default_quota: None,
        cycles: crate::logic::default_cycles_config(),
        wasm: Some(WasmMeta {
            sha256: vec![1; 32],
            size: 9,
        }),
        next_op: 5,
        videos_created: 4,
    };
    let mut bytes = canvid_stable_common::header_prefix(b"CVSP", crate::store::LAYOUT_VERSION);
    bytes.extend(Encode!(&before).unwrap());
    let Header(c) = Header::from_bytes(std::borrow::Cow::Owned(bytes));
    assert_eq!(c.app_canisters, None);
    assert_eq!(
        (c.admins, c.next_op, c.videos_created),
        (vec![user(1)], 5, 4)
    );

    let mut s = SpawnStore::open(DefaultMemoryImpl::default(), user(1));
    assert!(!s.is_app_canister(&canister(3)));
    s.update_config(|c| c.app_canisters = Some(vec![canister(3)]));
    assert!(s.is_app_canister(&canister(3)) && !s.is_app_canister(&canister(4)));
}

/// The outbox's retry state: failures back entries off, parked ones are left to admins, a
/// success or leaving the outbox clears it, and it survives a reopen (12 fixed bytes).
#[test]
fn outbox_retries_choose_what_the_timer_drives() {
    use crate::logic::{is_parked, Retry, MAX_AUTO_ATTEMPTS};
    let mem = DefaultMemoryImpl::default();
    let s_ns = 1_000_000_000u64;
    let (a, b, c) = (canister(1), canister(2), canister(3));
    {
        let mut s = SpawnStore::open(mem.clone(), user(1));
        assert_eq!(s.next_retry_at(), None, "empty outbox: no timer");
        for id in [a, b, c] {
            s.outbox.insert(PKey::new(&id), ());
        }
        assert_eq!(s.next_retry_at(), Some(0), "never failed: due now");
        assert_eq!(s.outbox_batch(true, 0, 50), vec![a, b, c]);
        // a fails once at t = 100 s; b fails until parked; c never failed.
        let r = s.record_attempt(&a, false, 100 * s_ns).unwrap();
        assert_eq!(
            r,
            Retry {
                attempts: 1,
                next_at: 160 * s_ns
            }
        );
        for _ in 0..MAX_AUTO_ATTEMPTS {
            s.record_attempt(&b, false, 100 * s_ns);
        }
        assert!(is_parked(&s.retry_of(&b)));
        assert_eq!(s.parked_count(), 1);
        assert_eq!(s.outbox_batch(true, 100 * s_ns, 50), vec![c]);
        assert_eq!(s.outbox_batch(true, 160 * s_ns, 50), vec![a, c]);
        assert_eq!(s.outbox_batch(true, 160 * s_ns, 1), vec![a], "batch limit");
        assert_eq!(s.outbox_batch(false, 0, 50), vec![a, b, c], "admins: all");
        assert_eq!(s.next_retry_at(), Some(0));
        s.outbox_remove(&c);
        assert_eq!(
            s.next_retry_at(),
            Some(160 * s_ns),
            "parked b does not count"
        );
    }
    // Reopened (an upgrade): the state is kept.
    let mut s = SpawnStore::open(mem, user(1));
    assert_eq!(
        s.retry_of(&a),
        Retry {
            attempts: 1,
            next_at: 160 * s_ns
        }
    );
    assert_eq!(s.parked_count(), 1);
    assert_eq!(s.record_attempt(&a, true, 200 * s_ns), None);
    assert_eq!(s.retry_of(&a), Retry::default(), "a success starts over");
    s.outbox_remove(&a);
    // b: parked, still in the outbox, until it succeeds and leaves it.
    assert_eq!(s.outbox.len(), 1);
    assert_eq!(s.next_retry_at(), None, "only parked entries: no timer");
    s.outbox_remove(&b);
    assert!(s.retries.is_empty() && s.outbox.is_empty());
}

#[test]
fn videos_stopped_by_an_upgrade_are_started_by_the_timer_until_they_run() {
    const SEC: u64 = 1_000_000_000;
    let mem = DefaultMemoryImpl::default();
    let mut s = SpawnStore::open(mem.clone(), user(1));
    let (a, b) = (canister(20), canister(21));
    assert_eq!(s.next_retry_at(), None);
    s.stopping(&a, 100 * SEC);
    s.stopping(&b, 100 * SEC);
    // Not before the grace period: the upgrade itself starts them.
    let grace = 100 * SEC + crate::logic::RESTART_GRACE_SECS * SEC;
    assert_eq!(s.next_retry_at(), Some(grace));
    assert!(s.restart_batch(true, grace - 1, 50).is_empty());
    assert_eq!(s.restart_batch(true, grace, 50), vec![a, b]);
    assert_eq!(
        s.restart_batch(false, 0, 50),
        vec![a, b],
        "retry_pending: all"
    );
    // a runs again; b's start fails: backed off like an outbox entry.
    s.restarted(&a);
    let r = s.restart_failed(&b, grace);
    assert_eq!(r.attempts, 1);
    assert_eq!(s.next_retry_at(), Some(r.next_at));
    assert!(s.restart_batch(true, r.next_at - 1, 50).is_empty());
    // Kept across an upgrade of the spawn canister (reopened).
    drop(s);
    let mut s = SpawnStore::open(mem, user(1));
    assert_eq!(s.restart_batch(true, r.next_at, 50), vec![b]);
    // Parked after MAX_AUTO_ATTEMPTS: the timer leaves it, retry_pending still starts it.
    for _ in 1..crate::logic::MAX_AUTO_ATTEMPTS {
        s.restart_failed(&b, r.next_at);
    }
    assert_eq!(s.next_retry_at(), None);
    assert!(s.restart_batch(true, u64::MAX, 50).is_empty());
    assert_eq!(s.restart_batch(false, 0, 50), vec![b]);
    s.restarted(&b);
    assert!(s.restart_batch(false, 0, 50).is_empty());
}
