use candid::{Nat, Principal};
use canvid_types::access::{
    AccessGrant, AccessMode, AccessPolicy, BuyAccessArgs, BuyError, Offer, PaidAccess, ViewersArgs,
    MAX_FAILED_PURCHASES_PER_MINUTE, MAX_VIEWERS_PER_CALL,
};
use canvid_types::video::{UploadSpec, VideoInit};
use canvid_types::Error;
use ic_stable_structures::VectorMemory;

use super::*;
use crate::store::VideoStore;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SEC;

fn p(n: u8) -> Principal {
    Principal::from_slice(&[n, 1])
}
fn owner() -> Principal {
    p(1)
}
fn video() -> Principal {
    Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 7, 1, 1])
}
fn ledger() -> Principal {
    Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 9, 1, 1])
}

/// A finished 10-byte-chunk video of 95 bytes.
fn ready() -> VideoStore<VectorMemory> {
    let init = VideoInit {
        owner: owner(),
        creator: owner(),
        index: None,
        title: "t".into(),
        description: String::new(),
        tags: vec![],
        funded_by: None,
        platform_fee: None,
    };
    let mut s = VideoStore::init(VectorMemory::default(), &init, owner(), 1).unwrap();
    let bytes: Vec<u8> = (0..95u8).collect();
    s.begin_upload(
        &UploadSpec {
            path: None,
            rendition: None,
            mime_type: "video/mp4".into(),
            total_size: 95,
            chunk_size: 10,
            chunk_digests: None,
            file_digest: None,
            duration_ms: None,
            encryption: None,
        },
        2,
    )
    .unwrap();
    for (i, c) in bytes.chunks(10).enumerate() {
        s.put_chunk(i as u32, c, 3).unwrap();
    }
    s.finish_upload(4).unwrap();
    s
}

fn offer(id: &str, price: u64, secs: Option<u64>) -> Offer {
    Offer {
        id: id.into(),
        price: Nat::from(price),
        duration_seconds: secs,
    }
}

fn paid(preview: Option<u64>) -> AccessPolicy {
    AccessPolicy {
        free_paths: None,
        mode: AccessMode::Paid(PaidAccess {
            ledger: ledger(),
            offers: vec![
                offer("24h", 500, Some(86_400)),
                offer("forever", 5_000, None),
            ],
        }),
        preview_bytes: preview,
    }
}

fn buy_args(offer: &str, price: u64, at: Option<u64>) -> BuyAccessArgs {
    BuyAccessArgs {
        offer: offer.into(),
        ledger: ledger(),
        price: Nat::from(price),
        created_at_time: at,
    }
}

fn charge(s: &mut VideoStore<VectorMemory>, buyer: Principal, args: &BuyAccessArgs) -> Purchase {
    match begin_purchase(s, video(), buyer, args, T0, true, |_| false).unwrap() {
        Begin::Charge(p) => p,
        other => panic!("expected a charge, got {other:?}"),
    }
}

#[test]
fn public_by_default_and_the_policy_never_touches_the_chunks() {
    let mut s = ready();
    let before = s.read_range(0, 95).unwrap();
    assert_eq!(grant(&s, &p(5), T0), Some(AccessGrant::Public));
    assert_eq!(preview_end(s.state()), 95);
    assert!(!s.access().in_use(), "a public video never grows memory 6");
    set_policy(&mut s, paid(Some(15)), T0).unwrap();
    assert_eq!(s.read_range(0, 95).unwrap(), before);
    assert_eq!(grant(&s, &p(5), T0), None);
    assert_eq!(grant(&s, &owner(), T0), Some(AccessGrant::Owner));
    // 15 bytes of preview round up to two 10-byte chunks.
    assert_eq!(preview_end(s.state()), 20);
    assert!(check_read(&s, &p(5), T0, 20).is_ok());
    assert!(matches!(
        check_read(&s, &p(5), T0, 21),
        Err(Error::NotAuthorized { .. })
    ));
    assert!(check_read(&s, &Principal::anonymous(), T0, 10).is_ok());
    set_policy(&mut s, AccessPolicy::public(), T0).unwrap();
    assert!(check_read(&s, &p(5), T0, 95).is_ok());
}

#[test]
fn policies_are_validated() {
    let mut s = ready();
    let bad = |offers: Vec<Offer>| AccessPolicy {
        free_paths: None,
        mode: AccessMode::Paid(PaidAccess {
            ledger: ledger(),
            offers,
        }),
        preview_bytes: None,
    };
    for policy in [
        bad(vec![]),
        bad(vec![offer("Bad Id", 1, None)]),
        bad(vec![offer("free", 0, None)]),
        bad(vec![offer("short", 1, Some(59))]),
        bad(vec![offer("a", 1, None), offer("a", 2, None)]),
        bad((0..9).map(|i| offer(&format!("o{i}"), 1, None)).collect()),
    ] {
        assert!(
            matches!(
                set_policy(&mut s, policy.clone(), T0),
                Err(Error::InvalidArgument { .. })
            ),
            "{policy:?}"
        );
    }
    assert!(is_public(s.state()), "a refused policy changes nothing");
}

#[test]
fn the_allowlist_admits_pages_and_is_bounded_per_call() {
    let mut s = ready();
    set_policy(
        &mut s,
        AccessPolicy {
            free_paths: None,
            mode: AccessMode::Private,
            preview_bytes: None,
        },
        T0,
    )
    .unwrap();
    let list: Vec<Principal> = (10..40).map(p).collect();
    assert_eq!(add_viewers(&mut s, &list).unwrap(), 30);
    assert_eq!(add_viewers(&mut s, &list[..5]).unwrap(), 30, "idempotent");
    assert_eq!(grant(&s, &p(12), T0), Some(AccessGrant::Viewer));
    assert_eq!(grant(&s, &p(9), T0), None);
    let mut seen = vec![];
    let mut args = ViewersArgs {
        start_after: None,
        limit: Some(7),
    };
    loop {
        let page = viewers(&s, &args);
        assert_eq!(page.total, 30);
        seen.extend(page.viewers);
        match page.next {
            Some(n) => args.start_after = Some(n),
            None => break,
        }
    }
    let mut want = list.clone();
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(remove_viewers(&mut s, &[p(12), p(99)]).unwrap(), 29);
    assert_eq!(grant(&s, &p(12), T0), None);
    let too_many: Vec<Principal> = (0..=MAX_VIEWERS_PER_CALL as u64)
        .map(|i| Principal::from_slice(&i.to_be_bytes()))
        .collect();
    assert!(matches!(
        add_viewers(&mut s, &too_many),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        add_viewers(&mut s, &[Principal::anonymous()]),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn a_paid_purchase_grants_a_pass_and_a_receipt_once() {
    let mut s = ready();
    set_policy(&mut s, paid(None), T0).unwrap();
    let buyer = p(7);
    let args = buy_args("24h", 500, Some(T0));
    let purchase = charge(&mut s, buyer, &args);
    assert_eq!(purchase.amount, 500);
    assert_eq!(purchase.paid_to, Account::of(owner()));
    // Waiting for the ledger: no pass yet; a retry meanwhile is Busy.
    assert_eq!(grant(&s, &buyer, T0), None);
    assert!(matches!(
        begin_purchase(&mut s, video(), buyer, &args, T0, true, |_| true),
        Err(BuyError::Refused(Error::Busy { .. }))
    ));
    let r = settle_purchase(
        &mut s,
        video(),
        purchase.id,
        LedgerOutcome::Paid {
            block_index: Nat::from(42u8),
        },
        T0 + SEC,
    )
    .unwrap();
    assert_eq!(r.block_index, Nat::from(42u8));
    assert_eq!(
        r.memo.as_ref(),
        receipt_memo(&video(), purchase.id).as_slice()
    );
    assert_eq!(r.valid_until, Some(T0 + SEC + 86_400 * SEC));
    assert_eq!(
        grant(&s, &buyer, T0 + 2 * SEC),
        Some(AccessGrant::Pass {
            expires_at: Some(T0 + SEC + 86_400 * SEC),
            receipt: purchase.id
        })
    );
    assert_eq!(grant(&s, &buyer, T0 + SEC + 86_400 * SEC), None, "expired");
    // The same purchase again: the receipt, no new charge.
    assert_eq!(
        begin_purchase(&mut s, video(), buyer, &args, T0 + 5 * SEC, true, |_| false),
        Ok(Begin::Settled(r.clone()))
    );
    // ... even after the window in which a new purchase may use that time.
    assert_eq!(
        begin_purchase(
            &mut s,
            video(),
            buyer,
            &args,
            T0 + 2 * 3600 * SEC,
            true,
            |_| { false }
        ),
        Ok(Begin::Settled(r.clone()))
    );
    // A second purchase extends from the end of the current pass.
    let second = charge(&mut s, buyer, &buy_args("24h", 500, Some(T0 + 10 * SEC)));
    let r2 = settle_purchase(
        &mut s,
        video(),
        second.id,
        LedgerOutcome::Paid {
            block_index: Nat::from(43u8),
        },
        T0 + 20 * SEC,
    )
    .unwrap();
    assert_eq!(r2.valid_from, T0 + SEC + 86_400 * SEC);
    assert_eq!(r2.valid_until, Some(T0 + SEC + 2 * 86_400 * SEC));
    assert_eq!(s.access().receipts(Some(&buyer), None, 10).len(), 2);
    assert_eq!(s.access().receipts(Some(&p(8)), None, 10).len(), 0);
    assert_eq!(s.access().receipts(None, Some(r.id), 10), vec![r2]);
}

#[test]
fn refusals_and_unknown_outcomes() {
    let mut s = ready();
    set_policy(&mut s, paid(None), T0).unwrap();
    let buyer = p(7);
    let args = buy_args("forever", 5_000, Some(T0));
    let first = charge(&mut s, buyer, &args);
    // The ledger refuses: no pass, no record, and the same time may be tried again.
    let refusal = BuyError::InsufficientAllowance {
        allowance: Nat::from(10u8),
    };
    assert_eq!(
        settle_purchase(
            &mut s,
            video(),
            first.id,
            LedgerOutcome::Refused(refusal.clone()),
            T0
        ),
        Err(refusal)
    );
    assert_eq!(grant(&s, &buyer, T0), None);
    assert!(s.access().purchases().is_empty());
    let again = charge(&mut s, buyer, &args);
    assert_ne!(again.id, first.id, "a new purchase, so a new memo");
    // Unknown: the record stays and a retry sends the very same purchase.
    assert!(matches!(
        settle_purchase(
            &mut s,
            video(),
            again.id,
            LedgerOutcome::Unknown("lost".into()),
            T0
        ),
        Err(BuyError::Pending { purchase, .. }) if purchase == again.id
    ));
    assert_eq!(grant(&s, &buyer, T0), None);
    let retry = charge(&mut s, buyer, &args);
    assert_eq!(
        (retry.id, retry.amount, retry.created_at_time),
        (again.id, 5_000, T0)
    );
    assert_eq!(retry.attempts, 1);
    assert_eq!(my_access(&s, &buyer, T0).pending_purchases, vec![again.id]);
    settle_purchase(
        &mut s,
        video(),
        again.id,
        LedgerOutcome::Paid {
            block_index: Nat::from(3u8),
        },
        T0,
    )
    .unwrap();
    assert_eq!(
        grant(&s, &buyer, u64::MAX - 1),
        Some(AccessGrant::Pass {
            expires_at: None,
            receipt: again.id
        })
    );
    // A settled purchase settled again (timer and retry racing): the same receipt.
    let r = settle_purchase(
        &mut s,
        video(),
        again.id,
        LedgerOutcome::Paid {
            block_index: Nat::from(3u8),
        },
        T0 + SEC,
    )
    .unwrap();
    assert_eq!(r.paid_at, T0);
}

#[test]
fn purchases_are_checked_before_anything_is_recorded() {
    let mut s = ready();
    let buyer = p(7);
    let refused = |s: &mut VideoStore<VectorMemory>, who, args: &BuyAccessArgs| {
        begin_purchase(s, video(), who, args, T0, true, |_| false).unwrap_err()
    };
    assert!(matches!(
        refused(&mut s, buyer, &buy_args("24h", 500, None)),
        BuyError::Refused(Error::InvalidArgument { .. })
    ));
    set_policy(&mut s, paid(None), T0).unwrap();
    assert!(matches!(
        refused(&mut s, Principal::anonymous(), &buy_args("24h", 500, None)),
        BuyError::Refused(Error::NotAuthorized { .. })
    ));
    assert!(matches!(
        refused(&mut s, owner(), &buy_args("24h", 500, None)),
        BuyError::Refused(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        refused(&mut s, buyer, &buy_args("7d", 500, None)),
        BuyError::Refused(Error::NotFound { .. })
    ));
    assert!(matches!(
        refused(&mut s, buyer, &buy_args("24h", 400, None)),
        BuyError::PriceChanged { offer, .. } if offer.price == 500u32
    ));
    assert!(matches!(
        refused(
            &mut s,
            buyer,
            &buy_args("24h", 500, Some(T0 - 2 * 3600 * SEC))
        ),
        BuyError::Refused(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        refused(&mut s, buyer, &buy_args("24h", 500, Some(T0 + 120 * SEC))),
        BuyError::Refused(Error::InvalidArgument { .. })
    ));
    assert!(s.access().purchases().is_empty());
    assert_eq!(s.state().next_purchase, None);
    // Bounded: the 65th concurrent purchase is refused.
    for i in 0..MAX_PENDING_PURCHASES {
        charge(
            &mut s,
            Principal::from_slice(&[(i as u8), 2, 3]),
            &buy_args("24h", 500, None),
        );
    }
    assert!(matches!(
        refused(&mut s, buyer, &buy_args("24h", 500, None)),
        BuyError::Refused(Error::Busy { .. })
    ));
}

#[test]
fn the_policy_follows_the_video_and_revenue_the_owner_of_the_moment() {
    let mut s = ready();
    set_policy(&mut s, paid(None), T0).unwrap();
    let first = charge(&mut s, p(7), &buy_args("24h", 500, None));
    s.mutate_state(|st| st.owner = p(2));
    assert_eq!(policy(s.state()), paid(None));
    let second = charge(&mut s, p(8), &buy_args("24h", 500, None));
    assert_eq!(first.paid_to, Account::of(owner()));
    assert_eq!(second.paid_to, Account::of(p(2)));
}

#[test]
fn playback_tokens_name_their_viewer_and_cannot_be_forged() {
    let secret = [7u8; 32];
    let t = mint_token(&secret, &video(), &p(7), T0 + 60 * SEC, 3);
    assert!(
        t.len() <= 128
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(
        read_token(&secret, &video(), &t),
        Some((p(7), T0 + 60 * SEC, 3))
    );
    assert_eq!(read_token(&[8u8; 32], &video(), &t), None, "another secret");
    assert_eq!(read_token(&secret, &owner(), &t), None, "another video");
    // Flip any byte: refused.
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&t)
        .unwrap();
    for i in 0..raw.len() {
        let mut bad = raw.clone();
        bad[i] ^= 1;
        let bad = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bad);
        assert_eq!(read_token(&secret, &video(), &bad), None, "byte {i}");
    }
    assert_eq!(read_token(&secret, &video(), "not a token"), None);
}

#[test]
fn a_token_works_while_its_viewer_may_watch() {
    let mut s = ready();
    set_policy(&mut s, paid(None), T0).unwrap();
    s.mutate_state(|st| st.token_secret = Some(ByteBuf::from(vec![1; 32])));
    add_viewers(&mut s, &[p(9)]).unwrap();
    let secret = vec![1u8; 32];
    let tok = |who, exp, epoch| mint_token(&secret, &video(), &who, exp, epoch);
    let check =
        |s: &VideoStore<VectorMemory>, t: Option<&str>, now| check_token(s, &video(), t, now);
    assert_eq!(check(&s, None, T0), TokenCheck::NoToken);
    let t = tok(p(9), T0 + 60 * SEC, 0);
    assert_eq!(check(&s, Some(&t), T0), TokenCheck::Allowed);
    assert_eq!(
        check(&s, Some(&t), T0 + 60 * SEC),
        TokenCheck::Denied,
        "expired"
    );
    // Revoked by bumping the epoch.
    s.access_mut().set_token_epoch(&p(9), 1);
    assert_eq!(check(&s, Some(&t), T0), TokenCheck::Denied);
    let t1 = tok(p(9), T0 + 60 * SEC, 1);
    assert_eq!(check(&s, Some(&t1), T0), TokenCheck::Allowed);
    // Removed from the allowlist: the token stops working at once.
    remove_viewers(&mut s, &[p(9)]).unwrap();
    assert_eq!(check(&s, Some(&t1), T0), TokenCheck::Denied);
    // And adding them back does not revive it: the removal voided it.
    add_viewers(&mut s, &[p(9)]).unwrap();
    assert_eq!(check(&s, Some(&t1), T0), TokenCheck::Denied);
    let t2 = tok(p(9), T0 + 60 * SEC, 2);
    assert_eq!(check(&s, Some(&t2), T0), TokenCheck::Allowed);
    // A token for someone who never had access is worthless even if well signed.
    assert_eq!(
        check(&s, Some(&tok(p(10), T0 + 60 * SEC, 0)), T0),
        TokenCheck::Denied
    );
    // Never longer than the pass.
    let pass = AccessGrant::Pass {
        expires_at: Some(T0 + 30 * SEC),
        receipt: 0,
    };
    assert_eq!(token_expiry(&pass, T0, 3600 * SEC), T0 + 30 * SEC);
    assert_eq!(
        token_expiry(&AccessGrant::Viewer, T0, 3600 * SEC),
        T0 + 3600 * SEC
    );
}

#[test]
fn access_records_survive_a_reload() {
    let mem = VectorMemory::default();
    let init = VideoInit {
        owner: owner(),
        creator: owner(),
        index: None,
        title: "t".into(),
        description: String::new(),
        tags: vec![],
        funded_by: None,
        platform_fee: None,
    };
    let mut s = VideoStore::init(mem.clone(), &init, owner(), 1).unwrap();
    set_policy(&mut s, paid(Some(5)), T0).unwrap();
    add_viewers(&mut s, &[p(9)]).unwrap();
    drop(s);
    let s = VideoStore::load(mem).unwrap();
    assert_eq!(s.layout_version(), crate::store::LAYOUT_VERSION);
    assert_eq!(policy(s.state()), paid(Some(5)));
    assert!(s.access().is_viewer(&p(9)));
}

#[test]
fn with_a_platform_fee_the_video_holds_the_payment_and_owes_both_shares() {
    use crate::store::access::{LEG_OWNER, LEG_PLATFORM};
    use canvid_types::access::PlatformFee;
    let mut s = ready();
    let platform = Account::of(p(50));
    s.mutate_state(|st| {
        st.platform_fee = Some(PlatformFee {
            account: platform.clone(),
            basis_points: 250,
        })
    });
    set_policy(&mut s, paid(None), T0).unwrap();
    let purchase = charge(&mut s, p(7), &buy_args("forever", 5_000, None));
    assert_eq!(
        purchase.paid_to,
        Account::of(video()),
        "escrow: one transfer_from"
    );
    // The owner changes before the ledger answers: the shares go to the owner of the moment the
    // payment is known.
    s.mutate_state(|st| st.owner = p(2));
    let r = settle_purchase(
        &mut s,
        video(),
        purchase.id,
        LedgerOutcome::Paid {
            block_index: Nat::from(1u8),
        },
        T0,
    )
    .unwrap();
    assert_eq!(r.platform_share, Some(Nat::from(125u32)));
    let owner_leg = s.access().payout(purchase.id, LEG_OWNER).unwrap();
    let platform_leg = s.access().payout(purchase.id, LEG_PLATFORM).unwrap();
    assert_eq!((owner_leg.to, owner_leg.gross), (Account::of(p(2)), 4_875));
    assert_eq!((platform_leg.to, platform_leg.gross), (platform, 125));
    assert_eq!(access_info(&s).payouts_pending, 2);
    // The fee and time are fixed once, before the first send; a resend is the same transaction.
    let fixed = fix_payout(&mut s, purchase.id, LEG_OWNER, 10, T0 + SEC).unwrap();
    assert_eq!(
        (fixed.fee, fixed.created_at_time),
        (Some(10), Some(T0 + SEC))
    );
    let again = fix_payout(&mut s, purchase.id, LEG_OWNER, 20, T0 + 2 * SEC).unwrap();
    assert_eq!(
        (again.fee, again.created_at_time),
        (Some(10), Some(T0 + SEC))
    );
    settle_payout(
        &mut s,
        purchase.id,
        LEG_OWNER,
        PayoutOutcome::Retry("lost".into()),
    );
    assert_eq!(
        s.access().payout(purchase.id, LEG_OWNER).unwrap().attempts,
        1
    );
    settle_payout(&mut s, purchase.id, LEG_OWNER, PayoutOutcome::Paid);
    assert!(s.access().payout(purchase.id, LEG_OWNER).is_none());
    settle_payout(&mut s, purchase.id, LEG_PLATFORM, PayoutOutcome::FeeChanged);
    assert_eq!(
        s.access().payout(purchase.id, LEG_PLATFORM).unwrap().fee,
        None
    );
    settle_payout(&mut s, purchase.id, LEG_PLATFORM, PayoutOutcome::BelowFee);
    assert_eq!(access_info(&s).payouts_pending, 0);
}

#[test]
fn platform_shares_round_down_and_never_overflow() {
    use canvid_types::access::PlatformFee;
    let fee = |bps| PlatformFee {
        account: Account::of(p(50)),
        basis_points: bps,
    };
    assert_eq!(fee(250).share(5_000), 125);
    assert_eq!(fee(1).share(9_999), 0);
    assert_eq!(fee(10_000).share(7), 7);
    assert_eq!(fee(10_000).share(u128::MAX), u128::MAX);
    assert_eq!(fee(5_000).share(u128::MAX), u128::MAX / 2);
    assert!(fee(0).validate().is_err());
    assert!(fee(10_001).validate().is_err());
}

#[test]
fn sends_are_counted_before_they_go_out() {
    let mut s = ready();
    set_policy(&mut s, paid(None), T0).unwrap();
    let purchase = charge(&mut s, p(7), &buy_args("24h", 500, Some(T0)));
    assert_eq!(purchase.sends, 0);
    assert_eq!(record_send(&mut s, purchase.id).unwrap().sends, 1);
    // The answer is lost (a trap rolls the callback back): the count stays.
    assert_eq!(
        charge(&mut s, p(7), &buy_args("24h", 500, Some(T0))).sends,
        1
    );
    assert_eq!(record_send(&mut s, purchase.id).unwrap().sends, 2);
    settle_purchase(
        &mut s,
        video(),
        purchase.id,
        LedgerOutcome::Paid {
            block_index: Nat::from(1u8),
        },
        T0,
    )
    .unwrap();
    assert_eq!(
        record_send(&mut s, purchase.id),
        None,
        "settled: nothing to send"
    );
}

#[test]
fn failed_purchases_close_new_purchases_for_the_rest_of_the_minute() {
    let mut w = FailureWindow::EMPTY;
    for i in 0..MAX_FAILED_PURCHASES_PER_MINUTE {
        assert!(w.open(T0 + i as u64 * SEC));
        w = w.fail(T0 + i as u64 * SEC);
    }
    assert!(!w.open(T0 + 30 * SEC));
    assert!(w.open(T0 + 61 * SEC), "a new window");
    // Closed: new purchases are refused before anything is recorded; recorded ones still answer.
    let mut s = ready();
    set_policy(&mut s, paid(None), T0).unwrap();
    let args = buy_args("24h", 500, Some(T0));
    let pending = charge(&mut s, p(7), &args);
    assert!(matches!(
        begin_purchase(
            &mut s,
            video(),
            p(8),
            &buy_args("24h", 500, None),
            T0,
            false,
            |_| false
        ),
        Err(BuyError::Refused(Error::Busy { .. }))
    ));
    assert_eq!(
        begin_purchase(&mut s, video(), p(7), &args, T0, false, |_| false),
        Ok(Begin::Charge(pending))
    );
}
