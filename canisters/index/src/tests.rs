//! Native tests of the index canister: its store (stable structures over an in-memory
//! `VectorMemory`), its plain decisions (`logic`), the ingress policy (`guards`), and the
//! checked-in candid interface.

use std::collections::BTreeSet;

use candid::Principal;
use canvid_types::index::{ListArgs, OwnerChange, VideoRegistration};
use canvid_types::Error;
use ic_stable_structures::{DefaultMemoryImpl, Memory};

use crate::guards::accepts_ingress;
use crate::logic::{self, VerifiedInfo, MAX_PRINCIPALS};
use crate::store::{IndexStore, LAYOUT_VERSION};

fn p(n: u64) -> Principal {
    // Distinct, variable-length principals (1..=9 bytes) exercise the key padding.
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    Principal::from_slice(&bytes[skip..])
}

fn reg(video: u64, creator: u64, owner: u64) -> VideoRegistration {
    VideoRegistration {
        video: p(video),
        creator: p(creator),
        owner: p(owner),
    }
}

fn all_pages(f: impl Fn(Option<Principal>) -> canvid_types::index::Page) -> Vec<Principal> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = f(cursor);
        out.extend(page.videos.iter().map(|v| v.video));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

/// What `canister_info` would say: `controllers`, and the history counter at `changes`.
fn info(controllers: &[u64], changes: u64) -> VerifiedInfo {
    VerifiedInfo {
        controllers: controllers.iter().map(|c| p(*c)).collect(),
        total_num_changes: changes,
    }
}

fn change(new_owner: u64, transfer_seq: u64) -> OwnerChange {
    OwnerChange {
        new_owner: p(new_owner),
        transfer_seq,
    }
}

fn list_args(principal: Principal, cursor: Option<Principal>, limit: Option<u32>) -> ListArgs {
    ListArgs {
        principal,
        cursor,
        limit,
    }
}

#[test]
fn installer_is_default_admin_and_lists_are_replaced() {
    let mut ix = IndexStore::open(DefaultMemoryImpl::default(), p(1));
    assert!(ix.is_admin(&p(1)));
    assert!(!ix.is_registrar(&p(1)));
    ix.set_registrars(&[p(5), p(5), p(6)]).unwrap();
    assert_eq!(
        ix.stats().registrars,
        vec![p(5), p(6)],
        "duplicates are dropped"
    );
    assert!(matches!(
        ix.set_admins(&[]),
        Err(Error::InvalidArgument { .. })
    ));
    ix.set_admins(&[p(2)]).unwrap();
    assert!(!ix.is_admin(&p(1)) && ix.is_admin(&p(2)));
    let too_many: Vec<_> = (0..65).map(|i| p(100 + i)).collect();
    assert!(matches!(
        ix.set_registrars(&too_many),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn register_is_idempotent_and_conflicts_on_different_data() {
    let mut ix = IndexStore::open(DefaultMemoryImpl::default(), p(1));
    let e = ix.register(&reg(10, 20, 30), 7).unwrap();
    assert_eq!(
        (e.creator, e.owner, e.transfer_seq, e.registered_at),
        (p(20), p(30), 0, 7)
    );
    // Same data again (a retried registration): Ok, and the first timestamp is kept.
    assert_eq!(ix.register(&reg(10, 20, 30), 99).unwrap().registered_at, 7);
    assert!(matches!(
        ix.register(&reg(10, 21, 30), 8),
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        ix.register(&reg(10, 20, 31), 8),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(ix.stats().videos, 1);
    assert_eq!(ix.count_by_creator(&p(20)), 1);
    assert_eq!(ix.count_by_owner(&p(30)), 1);
}

#[test]
fn owner_changes_apply_in_history_order_only() {
    let mut ix = IndexStore::open(DefaultMemoryImpl::default(), p(1));
    ix.register(&reg(10, 20, 30), 0).unwrap();
    assert!(matches!(
        ix.check_reporter(&p(11)),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(ix.check_reporter(&p(10)), Ok(()));
    let unknown = ix.report_owner_change(&p(11), &change(40, 1), &info(&[40, 11], 5), 0);
    assert!(matches!(unknown, Err(Error::NotFound { .. })));

    // Controllers [40, video, spawn] after the transfer; history counter 5.
    assert!(ix
        .report_owner_change(&p(10), &change(40, 2), &info(&[40, 10, 99], 5), 0)
        .unwrap());
    assert_eq!(ix.applied_history(&p(10)), 5);
    // The same report again, or a lower transfer_seq, with no history change since: no effect.
    assert!(!ix
        .report_owner_change(&p(10), &change(40, 2), &info(&[40, 10, 99], 5), 0)
        .unwrap());
    assert!(!ix
        .report_owner_change(&p(10), &change(40, 1), &info(&[40, 10, 99], 5), 0)
        .unwrap());
    // A stale report whose owner no longer controls the video is refused.
    assert!(matches!(
        ix.report_owner_change(&p(10), &change(30, 1), &info(&[40, 10, 99], 6), 0),
        Err(Error::Conflict { .. })
    ));
    let e = ix.get(&p(10)).unwrap();
    assert_eq!((e.owner, e.transfer_seq, e.creator), (p(40), 2, p(20)));
    assert_eq!(ix.count_by_owner(&p(30)), 0);
    assert_eq!(ix.count_by_owner(&p(40)), 1);
    assert!(ix.by_owner(&list_args(p(30), None, None)).videos.is_empty());
    assert_eq!(
        ix.by_owner(&list_args(p(40), None, None)).videos[0].video,
        p(10)
    );
    // A re-registration by the spawn canister's outbox after the transfer is still idempotent.
    assert!(ix.register(&reg(10, 20, 30), 5).is_ok());
    assert_eq!(ix.get(&p(10)).unwrap().owner, p(40));
    let s = ix.stats();
    assert_eq!(
        (s.videos, s.creators, s.owners, s.owner_changes_applied),
        (1, 1, 1, 1)
    );
}

/// Security review M4: the video's code is its owner's, so a report naming a non-controller with
/// `transfer_seq = u64::MAX` must neither apply nor freeze the index; a later genuine transfer
/// (its `transfer_seq` far lower) still applies, ordered by the IC's history counter.
#[test]
fn forged_reports_neither_apply_nor_freeze_the_index() {
    let mut ix = IndexStore::open(DefaultMemoryImpl::default(), p(1));
    ix.register(&reg(10, 20, 30), 0).unwrap();
    // Owner 30's code reports X = 66 (not a controller) with u64::MAX: refused, nothing stored.
    let forged = ix.report_owner_change(&p(10), &change(66, u64::MAX), &info(&[30, 10, 99], 7), 0);
    assert!(matches!(forged, Err(Error::Conflict { .. })), "{forged:?}");
    assert_eq!(ix.get(&p(10)).unwrap().owner, p(30));
    assert_eq!(ix.applied_history(&p(10)), 0);
    // Naming the video itself (a controller) is refused too.
    assert!(matches!(
        ix.report_owner_change(&p(10), &change(10, u64::MAX), &info(&[30, 10, 99], 7), 0),
        Err(Error::Conflict { .. })
    ));
    // The owner adds X as a co-controller and reports it with u64::MAX: it verifies (X does
    // control the video), but orders nothing...
    assert!(ix
        .report_owner_change(
            &p(10),
            &change(66, u64::MAX),
            &info(&[30, 66, 10, 99], 8),
            0
        )
        .unwrap());
    assert_eq!(ix.get(&p(10)).unwrap().owner, p(66));
    // ...so the genuine sale to B = 40 (transfer_seq 1, controllers rewritten) still applies.
    assert!(ix
        .report_owner_change(&p(10), &change(40, 1), &info(&[40, 10, 99], 10), 0)
        .unwrap());
    let e = ix.get(&p(10)).unwrap();
    assert_eq!((e.owner, e.transfer_seq), (p(40), 1));
    assert_eq!(ix.applied_history(&p(10)), 10);
    assert_eq!(ix.count_by_owner(&p(66)), 0);
    assert_eq!(ix.stats().owner_changes_applied, 2);
}

#[test]
fn pagination_visits_every_video_once_and_stays_inside_one_principal() {
    let mut ix = IndexStore::open(DefaultMemoryImpl::default(), p(1));
    // Creator 20 has 25 videos, creator 21 has 3; principals of different lengths interleave.
    let mut expected = BTreeSet::new();
    for i in 0..25u64 {
        let v = if i % 2 == 0 {
            1000 + i
        } else {
            0x0100_0000_0000 + i
        };
        ix.register(&reg(v, 20, 30 + (i % 3)), i).unwrap();
        expected.insert(p(v));
    }
    for i in 0..3u64 {
        ix.register(&reg(5000 + i, 21, 30), 0).unwrap();
    }
    for limit in [Some(1), Some(7), Some(25), None, Some(0), Some(5000)] {
        let got = all_pages(|c| ix.by_creator(&list_args(p(20), c, limit)));
        assert_eq!(got.len(), 25, "limit {limit:?}");
        assert_eq!(
            got.iter().copied().collect::<BTreeSet<_>>(),
            expected,
            "limit {limit:?}"
        );
    }
    let page = ix.by_creator(&list_args(p(20), None, Some(7)));
    assert_eq!(page.videos.len(), 7);
    assert_eq!(page.next_cursor, Some(page.videos[6].video));
    // Exactly a full last page: no dangling cursor.
    let page = ix.by_creator(&list_args(p(21), None, Some(3)));
    assert_eq!((page.videos.len(), page.next_cursor), (3, None));
    assert_eq!(ix.count_by_creator(&p(20)), 25);
    assert_eq!(ix.count_by_owner(&p(30)), 9 + 3);
    let owners: usize = (30..33)
        .map(|o| all_pages(|c| ix.by_owner(&list_args(p(o), c, Some(4)))).len())
        .sum();
    assert_eq!(owners, 28);
    assert!(ix
        .by_creator(&list_args(p(99), None, None))
        .videos
        .is_empty());
}

#[test]
fn limit_is_clamped_to_max() {
    let mut ix = IndexStore::open(DefaultMemoryImpl::default(), p(1));
    for i in 0..1005u64 {
        ix.register(&reg(100_000 + i, 20, 30), 0).unwrap();
    }
    let page = ix.by_creator(&list_args(p(20), None, Some(u32::MAX)));
    assert_eq!(page.videos.len(), 1000);
    assert!(page.next_cursor.is_some());
    assert_eq!(
        ix.by_creator(&list_args(p(20), None, None)).videos.len(),
        100
    );
}

#[test]
fn state_survives_reopening_the_memory_like_an_upgrade() {
    let mem = DefaultMemoryImpl::default();
    {
        let mut ix = IndexStore::open(mem.clone(), p(1));
        ix.set_registrars(&[p(2)]).unwrap();
        for v in 0..10u64 {
            ix.register(&reg(100 + v, 20 + v % 2, 30), v).unwrap();
        }
        for seq in 1..=3u64 {
            ix.report_owner_change(&p(100), &change(40 + seq, seq), &info(&[40 + seq], seq), 0)
                .unwrap();
        }
    }
    assert!(mem.size() > 0);
    // Reopen with a different "installer": the stored admins win.
    let mut ix = IndexStore::open(mem.clone(), p(9));
    assert!(ix.is_admin(&p(1)) && !ix.is_admin(&p(9)) && ix.is_registrar(&p(2)));
    let e = ix.get(&p(100)).unwrap();
    assert_eq!((e.owner, e.transfer_seq), (p(43), 3));
    assert_eq!(ix.applied_history(&p(100)), 3);
    let s = ix.stats();
    assert_eq!(
        (
            s.videos,
            s.creators,
            s.owners,
            s.owner_changes_applied,
            s.layout_version
        ),
        (10, 2, 2, 3, LAYOUT_VERSION)
    );
    assert_eq!(ix.count_by_owner(&p(30)), 9);
    assert_eq!(ix.count_by_owner(&p(43)), 1);
    assert_eq!(ix.count_by_owner(&p(41)), 0);
    // And it keeps working after the reopen.
    ix.report_owner_change(&p(100), &change(30, 4), &info(&[30], 4), 0)
        .unwrap();
    assert_eq!(ix.count_by_owner(&p(30)), 10);
    assert_eq!(ix.stats().owners, 1);
}

#[test]
fn unknown_layout_version_refuses_to_open() {
    let mem = DefaultMemoryImpl::default();
    drop(IndexStore::open(mem.clone(), p(1)));
    // Corrupt the header's layout version inside the cell (cell header 8 bytes, then our
    // magic 4 bytes, then the version) in virtual memory 0, which the memory manager places in
    // the first bucket after its own header (one 64 KiB page).
    let mut page = vec![0u8; 65536 * 2];
    mem.read(0, &mut page);
    let pos = page
        .windows(4)
        .position(|w| w == b"CVIX")
        .expect("header magic in memory");
    mem.write((pos + 4) as u64, &99u32.to_le_bytes());
    let reopened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(IndexStore::open(mem.clone(), p(1)))
    }));
    assert!(reopened.is_err());
}

/// `candid/index.did` is what the code exports, and clients built against the released
/// interface keep working (`canvid-did-check`).
#[test]
fn candid_interface_is_current_and_compatible_with_the_released_one() {
    let generated = crate::__export_service();
    canvid_did_check::assert_current("index", &generated);
    canvid_did_check::assert_compatible_with_released("index", &generated);
}

#[test]
fn ingress_from_admins_and_registrars_only() {
    let mut ix = IndexStore::open(DefaultMemoryImpl::default(), p(1));
    ix.set_registrars(&[p(2)]).unwrap();
    for m in [
        "set_admins",
        "set_registrars",
        "register_video",
        "report_owner_change",
    ] {
        assert!(accepts_ingress(&ix, &p(1), m, 100));
        assert!(accepts_ingress(&ix, &p(2), m, 100));
        assert!(!accepts_ingress(&ix, &p(3), m, 100));
        assert!(!accepts_ingress(&ix, &Principal::anonymous(), m, 100));
    }
    // The collection's updates: for token holders (and, for transfer_from and token
    // revocations, principals an approval names), with a bounded argument.
    for m in [
        "icrc7_transfer",
        "icrc37_transfer_from",
        "icrc37_approve_tokens",
    ] {
        assert!(!accepts_ingress(&ix, &p(3), m, 100), "{m}");
    }
}

/// A collection approval covers the holder's future tokens too, so it must stay revocable after
/// the holder sold its last token (the ingress filter once let only holders revoke).
#[test]
fn a_former_holder_may_still_revoke_its_collection_approval() {
    use canvid_types::icrc::{video_of_token, Account, ApprovalInfo};
    let mut ix = IndexStore::open(DefaultMemoryImpl::default(), p(1));
    let video = video_of_token(5);
    let now = 1_000_000_000;
    ix.register(
        &VideoRegistration {
            video,
            creator: p(5),
            owner: p(5),
        },
        now,
    )
    .unwrap();
    let approval = ApprovalInfo {
        spender: Account::of(p(6)),
        from_subaccount: None,
        expires_at: None,
        memo: None,
        created_at_time: now,
    };
    ix.approve_collection(&p(5), &approval, now).unwrap();
    let revoke = "icrc37_revoke_collection_approvals";
    assert!(accepts_ingress(&ix, &p(5), revoke, 100));
    // p(5) sells its only token; the collection approval stays.
    let change = OwnerChange {
        new_owner: p(7),
        transfer_seq: 1,
    };
    ix.apply_owner_change(&video, &change, 2, now).unwrap();
    assert_eq!(ix.count_by_owner(&p(5)), 0);
    assert!(ix.has_collection_approvals(&p(5)));
    assert!(accepts_ingress(&ix, &p(5), revoke, 100));
    assert!(!accepts_ingress(&ix, &p(5), revoke, 17 * 1024));
    assert!(!accepts_ingress(&ix, &p(5), "icrc7_transfer", 100));
    assert!(!accepts_ingress(&ix, &p(8), revoke, 100));
    ix.revoke_collection(&p(5), None, &None, &None, None, now)
        .unwrap();
    assert!(!accepts_ingress(&ix, &p(5), revoke, 100));
}

#[test]
fn list_bounds_repeated_registrations_and_report_order() {
    assert_eq!(
        logic::validate_principals("registrars", &[p(1), p(1), p(2)]).unwrap(),
        vec![p(1), p(2)]
    );
    assert_eq!(
        logic::validate_principals("registrars", &[]).unwrap(),
        vec![]
    );
    assert!(matches!(
        logic::validate_admins(&[]),
        Err(Error::InvalidArgument { .. })
    ));
    let max: Vec<Principal> = (0..MAX_PRINCIPALS as u64).map(|i| p(100 + i)).collect();
    assert_eq!(logic::validate_admins(&max).unwrap().len(), MAX_PRINCIPALS);
    let over: Vec<Principal> = (0..=MAX_PRINCIPALS as u64).map(|i| p(100 + i)).collect();
    assert!(logic::validate_admins(&over).is_err());
    // The registered owner counts, not the current one: a retry after a transfer is the same
    // registration.
    let r = reg(10, 20, 30);
    assert_eq!(logic::check_reregistration(&r, &p(20), &p(30)), Ok(()));
    assert!(matches!(
        logic::check_reregistration(&r, &p(21), &p(30)),
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        logic::check_reregistration(&r, &p(20), &p(31)),
        Err(Error::Conflict { .. })
    ));
    // Reports: the owner must control the video now and not be the video; the IC's history
    // counter, not transfer_seq, says whether it is news.
    let v = p(10);
    assert_eq!(
        logic::judge_report(&v, 0, &info(&[40, 10], 1), &change(40, 1)),
        Ok(true)
    );
    assert_eq!(
        logic::judge_report(&v, 3, &info(&[40, 10], 4), &change(40, 0)),
        Ok(true),
        "transfer_seq orders nothing; jumps and repeats are fine"
    );
    assert_eq!(
        logic::judge_report(&v, 4, &info(&[40, 10], 4), &change(40, u64::MAX)),
        Ok(false)
    );
    assert_eq!(
        logic::judge_report(&v, 5, &info(&[40, 10], 4), &change(40, 9)),
        Ok(false)
    );
    for bad in [change(41, u64::MAX), change(10, 1)] {
        assert!(matches!(
            logic::judge_report(&v, 0, &info(&[40, 10], 9), &bad),
            Err(Error::Conflict { .. })
        ));
    }
    assert!(matches!(
        logic::judge_report(&v, 0, &info(&[], 9), &change(40, 1)),
        Err(Error::Conflict { .. })
    ));
}

/// The collection implements the published standards as written: the index's interface is a
/// candid subtype of each of `ICRC-7.did`, `ICRC-37.did`, `ICRC-3.did` and `ICRC-10.did`
/// (without candid's special `opt` rule, which would let a wrong answer type decode as `null`).
/// ICRC-1 and ICRC-2 are fungible-token standards the collection does not claim.
#[test]
fn the_collection_implements_the_published_icrc_interfaces() {
    let Some(dir) = canvid_did_check::standards_dir() else {
        canvid_did_check::skipped(
            "the_collection_implements_the_published_icrc_interfaces",
            "../shared/standards is absent (set ICRC_STANDARDS_DIR)",
        );
        return;
    };
    let ours = crate::__export_service();
    for file in ["ICRC-7.did", "ICRC-37.did", "ICRC-3.did", "ICRC-10.did"] {
        let published = std::fs::read_to_string(dir.join(file)).unwrap();
        if let Err(e) = canvid_did_check::implements(&ours, &published) {
            panic!("the index does not implement {file} as published: {e}");
        }
    }
    // The check can fail: a wrong answer type is caught.
    let published = std::fs::read_to_string(dir.join("ICRC-7.did")).unwrap();
    let broken = ours.replace(
        "icrc7_total_supply : () -> (nat) query;",
        "icrc7_total_supply : () -> (nat64) query;",
    );
    assert_ne!(broken, ours);
    assert!(canvid_did_check::implements(&broken, &published).is_err());
}
