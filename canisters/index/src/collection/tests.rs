//! Native tests of the collection: mints, transfers (begin, settle, the report path), approvals,
//! deduplication, and the log's blocks and their chain across a reopen (an upgrade). The
//! backfill of mints for an old index's videos runs on real old data in the integration test
//! `index_upgrade_recovers_from_a_forged_report` (tests/tests/index.rs).

use candid::{Nat, Principal};
use canvid_icrc3::Value;
use canvid_types::icrc::{video_of_token, Account, ApprovalInfo, IsApprovedArg};
use canvid_types::index::{OwnerChange, VideoRegistration};
use ic_cdk_management_canister::{
    CanisterInfoResult, Change, ChangeDetails, ChangeOrigin, CodeDeploymentMode,
    CodeDeploymentRecord, FromCanisterRecord,
};
use ic_stable_structures::{DefaultMemoryImpl, Memory};
use serde_bytes::ByteBuf;

use super::codes;
use super::ledger::{ApprovalError, TransferRequest, XferError};
use super::logic::dedup_key;
use crate::logic::VerifiedInfo;
use crate::store::IndexStore;

const SEC: u64 = 1_000_000_000;
const NOW: u64 = 1_700_000_000 * SEC;
const GENUINE: [u8; 32] = [7; 32];

fn user(n: u8) -> Principal {
    Principal::from_slice(&[n; 29])
}
fn spawn() -> Principal {
    video_of_token(999)
}
fn index_id() -> Principal {
    video_of_token(998)
}

fn store() -> IndexStore<DefaultMemoryImpl> {
    let mut s = IndexStore::open(DefaultMemoryImpl::default(), user(1));
    s.set_registrars(&[spawn()]).unwrap();
    s
}

fn register(s: &mut IndexStore<impl Memory>, tid: u64, owner: Principal) {
    s.register(
        &VideoRegistration {
            video: video_of_token(tid),
            creator: owner,
            owner,
        },
        NOW,
    )
    .unwrap();
}

/// What `canister_info` says of a video: `controllers`, history counter `changes`, and the
/// module the spawn canister installed.
fn info(controllers: Vec<Principal>, changes: u64) -> CanisterInfoResult {
    CanisterInfoResult {
        total_num_changes: changes,
        recent_changes: vec![Change {
            timestamp_nanos: 0,
            canister_version: 1,
            origin: ChangeOrigin::FromCanister(FromCanisterRecord {
                canister_id: spawn(),
                canister_version: None,
            }),
            details: Some(ChangeDetails::CodeDeployment(CodeDeploymentRecord {
                mode: CodeDeploymentMode::Install,
                module_hash: GENUINE.to_vec(),
            })),
        }],
        module_hash: Some(GENUINE.to_vec()),
        controllers,
    }
}

fn plain(caller: Principal, tid: u64, to: Principal) -> TransferRequest {
    TransferRequest {
        caller,
        token_id: Nat::from(tid),
        from: Account::of(caller),
        to: Account::of(to),
        spender: None,
        memo: None,
        created_at_time: None,
        dedup: None,
    }
}

fn approval(spender: Principal, expires_at: Option<u64>) -> ApprovalInfo {
    ApprovalInfo {
        spender: Account::of(spender),
        from_subaccount: None,
        expires_at,
        memo: None,
        created_at_time: NOW,
    }
}

fn btypes(s: &IndexStore<impl Memory>) -> Vec<String> {
    (0..s.log().len())
        .map(|i| match s.log().get(i).unwrap().get("btype") {
            Some(Value::Text(t)) => t.clone(),
            other => panic!("block {i} btype {other:?}"),
        })
        .collect()
}

fn is_approved(s: &IndexStore<impl Memory>, spender: Principal, tid: u64, now: u64) -> bool {
    s.is_approved(
        &IsApprovedArg {
            spender: Account::of(spender),
            from_subaccount: None,
            token_id: Nat::from(tid),
        },
        now,
    )
}

/// Settles a pending transfer as `transfer.rs` does, with the IC's view after it showing the
/// recipient in control alone.
fn settle_ok(s: &mut IndexStore<impl Memory>, tid: u64, to: Principal, changes: u64) -> u64 {
    let video = video_of_token(tid);
    let after = info(vec![to, video, spawn()], changes);
    s.learn_modules(&after);
    let b = s
        .settle_transfer(&video, &after, Some(1), NOW)
        .unwrap()
        .expect("applied");
    assert_eq!(s.sole_control_problem(&after, &to, &video), None);
    b
}

#[test]
fn a_registration_mints_and_a_transfer_moves_the_token() {
    let mut s = store();
    let (alice, bob) = (user(2), user(3));
    register(&mut s, 5, alice);
    assert_eq!(btypes(&s), ["7mint"]);
    assert_eq!(s.token_holder(5), Some(alice));
    assert_eq!(s.tokens(None, 10), vec![Nat::from(5u8)]);
    assert_eq!(
        s.tokens_of(&Account::of(alice), None, 10),
        vec![Nat::from(5u8)]
    );

    // Who may start it, and to whom.
    assert_eq!(
        s.begin_transfer(&plain(bob, 5, bob), &index_id(), NOW),
        Err(XferError::Unauthorized)
    );
    assert_eq!(
        s.begin_transfer(&plain(alice, 6, bob), &index_id(), NOW),
        Err(XferError::NonExistingTokenId)
    );
    assert_eq!(
        s.begin_transfer(&plain(alice, 5, alice), &index_id(), NOW),
        Err(XferError::InvalidRecipient)
    );
    let mut to_sub = plain(alice, 5, bob);
    to_sub.to.subaccount = Some(ByteBuf::from(vec![1; 32]));
    assert!(matches!(
        s.begin_transfer(&to_sub, &index_id(), NOW),
        Err(XferError::Generic {
            code: codes::BAD_RECIPIENT,
            ..
        })
    ));
    for bad in [index_id(), video_of_token(5), Principal::anonymous()] {
        assert!(matches!(
            s.begin_transfer(&plain(alice, 5, bad), &index_id(), NOW),
            Err(XferError::Generic {
                code: codes::BAD_RECIPIENT,
                ..
            })
        ));
    }
    let mut long = plain(alice, 5, bob);
    long.memo = Some(ByteBuf::from(vec![0; 33]));
    assert!(matches!(
        s.begin_transfer(&long, &index_id(), NOW),
        Err(XferError::Generic {
            code: codes::MEMO_TOO_LONG,
            ..
        })
    ));

    // The lock: a second transfer (and an approval) of the token waits.
    let p = s
        .begin_transfer(&plain(alice, 5, bob), &index_id(), NOW)
        .unwrap();
    assert_eq!((p.from, p.to, p.tid), (alice, bob, 5));
    assert!(matches!(
        s.begin_transfer(&plain(alice, 5, user(4)), &index_id(), NOW),
        Err(XferError::Generic {
            code: codes::BUSY,
            ..
        })
    ));
    assert!(matches!(
        s.approve_token(&alice, &Nat::from(5u8), &approval(user(4), None), NOW),
        Err(ApprovalError::Generic {
            code: codes::BUSY,
            ..
        })
    ));
    assert_eq!(settle_ok(&mut s, 5, bob, 3), 1);
    assert_eq!(btypes(&s), ["7mint", "7xfer"]);
    assert_eq!(s.token_holder(5), Some(bob));
    assert!(s.pending_transfer(&video_of_token(5)).is_none());
    assert_eq!(s.balance_of(&Account::of(alice)), Nat::from(0u8));
    assert_eq!(s.balance_of(&Account::of(bob)), Nat::from(1u8));
}

#[test]
fn sole_control_needs_a_module_the_platform_installed() {
    let mut s = store();
    let (alice, seller_key) = (user(2), user(6));
    register(&mut s, 5, alice);
    let video = video_of_token(5);
    // Nothing learned yet: even the genuine hash is unknown.
    let mut i = info(vec![alice, video, spawn()], 2);
    let genuine_history = std::mem::take(&mut i.recent_changes);
    assert!(s.sole_control_problem(&i, &alice, &video).is_some());
    i.recent_changes = genuine_history;
    s.learn_modules(&i);
    assert_eq!(s.sole_control_problem(&i, &alice, &video), None);
    // An extra controller, or a module nobody from the platform installed.
    let extra = info(vec![alice, video, seller_key], 3);
    assert!(s.sole_control_problem(&extra, &alice, &video).is_some());
    let mut tampered = info(vec![alice, video], 4);
    tampered.module_hash = Some(vec![8; 32]);
    tampered.recent_changes.clear();
    assert!(s.sole_control_problem(&tampered, &alice, &video).is_some());
}

#[test]
fn a_transfer_the_ic_does_not_show_changes_nothing() {
    let mut s = store();
    let (alice, bob) = (user(2), user(3));
    register(&mut s, 5, alice);
    let video = video_of_token(5);
    s.begin_transfer(&plain(alice, 5, bob), &index_id(), NOW)
        .unwrap();
    // The video refused or lied: the IC still shows alice.
    let after = info(vec![alice, video, spawn()], 3);
    assert_eq!(s.settle_transfer(&video, &after, Some(9), NOW), Ok(None));
    assert_eq!(s.token_holder(5), Some(alice));
    assert_eq!(btypes(&s), ["7mint"]);
    assert!(s.pending_transfer(&video).is_none(), "the lock is gone");
}

#[test]
fn the_videos_report_may_apply_the_pending_transfer_first() {
    let mut s = store();
    let (alice, bob, market) = (user(2), user(3), user(4));
    register(&mut s, 5, alice);
    let video = video_of_token(5);
    s.approve_token(&alice, &Nat::from(5u8), &approval(market, None), NOW)
        .unwrap();
    let mut req = plain(market, 5, bob);
    req.from = Account::of(alice);
    req.spender = Some(Account::of(market));
    req.memo = Some(ByteBuf::from(b"sale 1".to_vec()));
    req.created_at_time = Some(NOW);
    req.dedup = Some(dedup_key("icrc37_transfer_from", &market, b"arg"));
    s.begin_transfer(&req, &index_id(), NOW).unwrap();
    // The video reports its change while the collection awaits it.
    let applied = s
        .report_owner_change(
            &video,
            &OwnerChange {
                new_owner: bob,
                transfer_seq: 1,
            },
            &VerifiedInfo {
                controllers: vec![bob, video, spawn()],
                total_num_changes: 3,
            },
            NOW,
        )
        .unwrap();
    assert!(applied);
    // The block is the spender's transfer, with its memo and time.
    assert_eq!(btypes(&s), ["7mint", "37approve", "37xfer"]);
    let tx = s.log().get(2).unwrap().get("tx").cloned().unwrap();
    assert_eq!(tx.get("memo"), Some(&Value::blob(b"sale 1".to_vec())));
    assert_eq!(tx.get("ts"), Some(&Value::nat(NOW)));
    assert!(tx.get("spender").is_some());
    // The transfer's own settle picks the same block up; no second block.
    let after = info(vec![bob, video, spawn()], 3);
    assert_eq!(s.settle_transfer(&video, &after, Some(1), NOW), Ok(Some(2)));
    assert_eq!(s.log().len(), 3);
    // The approval died with the transfer; the request is remembered for deduplication.
    assert!(!is_approved(&s, market, 5, NOW));
    let mut again = req.clone();
    again.from = Account::of(bob);
    assert_eq!(
        s.begin_transfer(&again, &index_id(), NOW),
        Err(XferError::Duplicate { duplicate_of: 2 })
    );
}

#[test]
fn a_direct_sale_is_a_7xfer_block_and_revokes_token_approvals() {
    let mut s = store();
    let (alice, bob, market) = (user(2), user(3), user(4));
    register(&mut s, 5, alice);
    let video = video_of_token(5);
    s.approve_token(&alice, &Nat::from(5u8), &approval(market, None), NOW)
        .unwrap();
    assert!(s.is_spender(&market));
    s.report_owner_change(
        &video,
        &OwnerChange {
            new_owner: bob,
            transfer_seq: 1,
        },
        &VerifiedInfo {
            controllers: vec![bob, video],
            total_num_changes: 4,
        },
        NOW,
    )
    .unwrap();
    assert_eq!(btypes(&s), ["7mint", "37approve", "7xfer"]);
    assert!(s.token_approvals(&Nat::from(5u8), None, 10, NOW).is_empty());
    assert!(!s.is_spender(&market));
    assert_eq!(s.token_holder(5), Some(bob));
    // A repeated report is not news: no second block.
    s.report_owner_change(
        &video,
        &OwnerChange {
            new_owner: bob,
            transfer_seq: 1,
        },
        &VerifiedInfo {
            controllers: vec![bob, video],
            total_num_changes: 4,
        },
        NOW,
    )
    .unwrap();
    assert_eq!(s.log().len(), 3);
}

#[test]
fn approvals_expire_are_bounded_and_revocable() {
    let mut s = store();
    let (alice, market, other) = (user(2), user(4), user(5));
    register(&mut s, 5, alice);
    register(&mut s, 6, alice);
    let t5 = Nat::from(5u8);
    // Refusals.
    assert_eq!(
        s.approve_token(&market, &t5, &approval(other, None), NOW),
        Err(ApprovalError::Unauthorized)
    );
    assert_eq!(
        s.approve_token(&alice, &t5, &approval(alice, None), NOW),
        Err(ApprovalError::InvalidSpender)
    );
    assert!(matches!(
        s.approve_token(&alice, &t5, &approval(market, Some(NOW)), NOW),
        Err(ApprovalError::Generic {
            code: codes::EXPIRED,
            ..
        })
    ));
    let mut old = approval(market, None);
    old.created_at_time = NOW - 2 * 24 * 3600 * SEC;
    assert_eq!(
        s.approve_token(&alice, &t5, &old, NOW),
        Err(ApprovalError::TooOld)
    );
    let mut sub = approval(market, None);
    sub.from_subaccount = Some(ByteBuf::from(vec![1; 32]));
    assert!(matches!(
        s.approve_token(&alice, &t5, &sub, NOW),
        Err(ApprovalError::Generic {
            code: codes::FROM_SUBACCOUNT,
            ..
        })
    ));

    // A token approval that expires.
    s.approve_token(&alice, &t5, &approval(market, Some(NOW + 60 * SEC)), NOW)
        .unwrap();
    assert!(is_approved(&s, market, 5, NOW) && !is_approved(&s, market, 6, NOW));
    assert!(!is_approved(&s, market, 5, NOW + 61 * SEC));
    // A collection approval covers every token of the holder.
    s.approve_collection(&alice, &approval(other, None), NOW)
        .unwrap();
    assert!(is_approved(&s, other, 5, NOW) && is_approved(&s, other, 6, NOW));
    assert_eq!(
        s.collection_approvals(&Account::of(alice), None, 10, NOW)
            .len(),
        1
    );
    // Non-holders cannot approve the collection (approval spam).
    assert!(s
        .approve_collection(&market, &approval(other, None), NOW)
        .is_err());
    // Revocations.
    assert_eq!(
        s.revoke_token(&other, &t5, None, &None, &None, None, NOW),
        Err(ApprovalError::Unauthorized)
    );
    s.revoke_token(
        &alice,
        &t5,
        Some(&Account::of(market)),
        &None,
        &None,
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(
        s.revoke_token(
            &alice,
            &t5,
            Some(&Account::of(market)),
            &None,
            &None,
            None,
            NOW
        ),
        Err(ApprovalError::ApprovalDoesNotExist)
    );
    s.revoke_collection(&alice, None, &None, &None, None, NOW)
        .unwrap();
    assert!(!is_approved(&s, other, 5, NOW));
    // The per-token limit; replacing a spender's approval is not a new one.
    for n in 0..super::MAX_APPROVALS as u8 {
        s.approve_token(&alice, &t5, &approval(user(100 + n), None), NOW)
            .unwrap();
    }
    assert!(matches!(
        s.approve_token(&alice, &t5, &approval(user(200), None), NOW),
        Err(ApprovalError::Generic {
            code: codes::TOO_MANY_APPROVALS,
            ..
        })
    ));
    s.approve_token(&alice, &t5, &approval(user(100), Some(NOW + SEC)), NOW)
        .unwrap();
    // Paging the token's approvals in spender order.
    let first = s.token_approvals(&t5, None, 5, NOW);
    assert_eq!(first.len(), 5);
    let rest = s.token_approvals(&t5, first.last(), 100, NOW);
    assert_eq!(first.len() + rest.len(), super::MAX_APPROVALS);
    // After expiry, the expired one makes room.
    s.approve_token(&alice, &t5, &approval(user(200), None), NOW + 2 * SEC)
        .unwrap();
}

#[test]
fn the_log_chains_and_survives_a_reopen() {
    let mem = DefaultMemoryImpl::default();
    let tip = {
        let mut s = IndexStore::open(mem.clone(), user(1));
        s.set_registrars(&[spawn()]).unwrap();
        for t in 1..=20 {
            register(&mut s, t, user(2));
        }
        s.log().certified_data()
    };
    let mut s = IndexStore::open(mem, user(1));
    assert_eq!(s.log().len(), 20);
    assert_eq!(s.log().certified_data(), tip);
    assert!(
        !s.start_backfill_if_needed(NOW),
        "a log with its mints needs no backfill"
    );
    for i in 1..20 {
        let prev = s.log().get(i - 1).unwrap().hash();
        assert_eq!(
            s.log().get(i).unwrap().get("phash"),
            Some(&Value::blob(prev.to_vec()))
        );
    }
}

#[test]
fn time_and_deduplication() {
    let mut s = store();
    let (alice, bob) = (user(2), user(3));
    register(&mut s, 5, alice);
    let mut req = plain(alice, 5, bob);
    req.created_at_time = Some(NOW + 10 * 60 * SEC);
    assert_eq!(
        s.begin_transfer(&req, &index_id(), NOW),
        Err(XferError::CreatedInFuture { ledger_time: NOW })
    );
    req.created_at_time = Some(NOW - 25 * 3600 * SEC);
    assert_eq!(
        s.begin_transfer(&req, &index_id(), NOW),
        Err(XferError::TooOld)
    );
    req.created_at_time = Some(NOW);
    req.dedup = Some(dedup_key("icrc7_transfer", &alice, b"x"));
    s.begin_transfer(&req, &index_id(), NOW).unwrap();
    let b = settle_ok(&mut s, 5, bob, 3);
    assert_eq!(
        s.begin_transfer(&req, &index_id(), NOW + SEC),
        Err(XferError::Duplicate { duplicate_of: b })
    );
    // After the window the entry is forgotten (the request would be TooOld anyway).
    s.collection.prune_dedup(NOW + 25 * 3600 * SEC, 100);
    assert_eq!(s.collection.duplicate_of(req.dedup.as_ref().unwrap()), None);
}

fn summary(title: &str) -> super::store::TokenSummary {
    super::store::TokenSummary {
        title: title.into(),
        description: "d".repeat(100),
        mime_type: "video/mp4".into(),
        size: 5_000,
        duration_ms: Some(1_000),
        digest: Some(ByteBuf::from(vec![3; 32])),
        ready: true,
        refreshed_at: NOW,
    }
}

#[test]
fn token_metadata_follows_the_videos_own_and_logs_changes() {
    let mut s = store();
    register(&mut s, 5, user(2));
    let video = video_of_token(5);
    let md = |s: &IndexStore<DefaultMemoryImpl>, key: &str| {
        s.token_metadata(&Nat::from(5u8))
            .unwrap()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    };
    assert_eq!(
        md(&s, "canvid:video_canister"),
        Some(Value::text(video.to_text()))
    );
    assert_eq!(
        md(&s, "icrc7:name"),
        Some(Value::text(format!("canvid video {video}")))
    );
    assert_eq!(
        s.set_token_summary(&video, summary("first"), NOW),
        Ok(Some(1))
    );
    assert_eq!(md(&s, "icrc7:name"), Some(Value::text("first")));
    assert_eq!(
        md(&s, "icrc7:description"),
        Some(Value::text("d".repeat(100)))
    );
    assert_eq!(md(&s, "canvid:size"), Some(Value::nat(5_000)));
    // One entry per key.
    let all = s.token_metadata(&Nat::from(5u8)).unwrap();
    let mut keys: Vec<_> = all.iter().map(|(k, _)| k.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), all.len());
    // The block carries the description's hash, not the description.
    assert_eq!(btypes(&s), ["7mint", "7update_token"]);
    let meta = s
        .log()
        .get(1)
        .unwrap()
        .get("tx")
        .unwrap()
        .get("meta")
        .cloned()
        .unwrap();
    let inner = meta.get("icrc7:token_metadata").unwrap();
    assert!(inner.get("icrc7:description").is_none());
    assert!(inner.get("canvid:description_sha256").is_some());
    // Unchanged (only the refresh time moved): no block.
    let mut again = summary("first");
    again.refreshed_at = NOW + SEC;
    assert_eq!(s.set_token_summary(&video, again, NOW + SEC), Ok(None));
    assert_eq!(s.log().len(), 2);
    // Beyond the video canister's own bounds: refused, nothing stored.
    let mut huge = summary("x");
    huge.title = "t".repeat(canvid_types::video::MAX_TITLE_BYTES + 1);
    assert!(s.set_token_summary(&video, huge, NOW).is_err());
    assert_eq!(md(&s, "icrc7:name"), Some(Value::text("first")));
    // Not a token.
    assert!(s
        .set_token_summary(&video_of_token(6), summary("y"), NOW)
        .is_err());
}
