//! Native tests of the plain-Rust decisions in `logic`: the cycles formula, who pays, quotas,
//! the creation state machine, wasm checks, and which videos an upgrade may touch.

use candid::Principal;
use canvid_types::spawn::{CyclesConfig, Payer, QuotaArgs, SpawnStatus};
use canvid_types::Error;

use super::{canister, user, video};
use crate::logic::*;

const FEE: u128 = 500_000_000_000;

fn cfg() -> CyclesConfig {
    default_cycles_config()
}

#[test]
fn formula_matches_the_documented_constants() {
    let c = cfg();
    assert_eq!(c.per_byte, 2_000 + 100 + 2 * 307);
    // 300 B install prepayment + 5 M base, 10 B compilation and init, 128 MiB x 614 storage.
    let base = 300_005_000_000 + 10_000_000_000 + (128u128 << 20) * 614;
    assert_eq!(c.base, base);
    assert_eq!(cycles_to_give(&c, 0).unwrap(), base);
    // 1 GiB: base + 2^30 * 2,714.
    assert_eq!(
        cycles_to_give(&c, 1 << 30).unwrap(),
        base + (1u128 << 30) * 2_714
    );
    let huge = CyclesConfig {
        base: u128::MAX,
        per_byte: 1,
        reserve: 0,
    };
    assert!(matches!(
        cycles_to_give(&huge, 1),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        charge_for_new(u128::MAX, 1),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(
        charge_for_new(FEE, 7).unwrap(),
        Charge {
            amount: FEE + 7,
            new_video: true
        }
    );
    // A spare already holds cycles: only the difference is charged, and never a negative one.
    assert_eq!(
        charge_for_spare(100, 30),
        Charge {
            amount: 70,
            new_video: false
        }
    );
    assert_eq!(
        charge_for_spare(100, 300),
        Charge {
            amount: 0,
            new_video: false
        }
    );
}

#[test]
fn configurations_that_cannot_install_a_video_are_refused() {
    assert_eq!(validate_cycles_config(&cfg()), Ok(()));
    // The first defaults: 200 B cannot prepay an install's 300 B instructions.
    let v1 = CyclesConfig {
        base: V1_DEFAULT_BASE,
        per_byte: V1_DEFAULT_PER_BYTE,
        reserve: 5,
    };
    assert!(matches!(
        validate_cycles_config(&v1),
        Err(Error::InvalidArgument { .. })
    ));
    let one_short = CyclesConfig {
        base: min_base() - 1,
        ..cfg()
    };
    assert!(validate_cycles_config(&one_short).is_err());
    let no_ingress = CyclesConfig {
        per_byte: INGRESS_PER_BYTE - 1,
        ..cfg()
    };
    assert!(validate_cycles_config(&no_ingress).is_err());
    let no_reserve = CyclesConfig {
        reserve: MIN_SPAWN_RESERVE - 1,
        ..cfg()
    };
    assert!(validate_cycles_config(&no_reserve).is_err());
    // An upgrade moves a deployment on the first defaults to the current ones (keeping its
    // reserve); a customised one is left as it is.
    assert_eq!(
        migrate_cycles_config(&v1),
        CyclesConfig {
            reserve: 5,
            ..cfg()
        }
    );
    let custom = CyclesConfig {
        base: min_base() * 2,
        per_byte: 3_000,
        reserve: 7,
    };
    assert_eq!(migrate_cycles_config(&custom), custom);
    let custom_low = CyclesConfig {
        base: V1_DEFAULT_BASE,
        per_byte: 3_000,
        reserve: 7,
    };
    assert_eq!(migrate_cycles_config(&custom_low), custom_low);
}

#[test]
fn create_video_ingress_only_from_callers_who_can_pay() {
    let alice = user(1);
    let none = Account::default();
    let room = QuotaArgs {
        max_videos: 2,
        max_cycles: 10 * FEE,
    };
    let small = 1_000;
    // A quota with room, credit, or a spare: accepted.
    assert!(inspect_create_video(
        &alice,
        small,
        &none,
        false,
        Some(&room)
    ));
    let credit = Account {
        credit: 1,
        ..Account::default()
    };
    assert!(inspect_create_video(&alice, small, &credit, false, None));
    assert!(inspect_create_video(&alice, small, &none, true, None));
    // No way to pay: a fresh principal without a quota, or with its quota used up.
    assert!(!inspect_create_video(&alice, small, &none, false, None));
    let used_up = Account {
        used_videos: 2,
        ..Account::default()
    };
    assert!(!inspect_create_video(
        &alice,
        small,
        &used_up,
        false,
        Some(&room)
    ));
    let spent = Account {
        used_cycles: 10 * FEE,
        ..Account::default()
    };
    assert!(!inspect_create_video(
        &alice,
        small,
        &spent,
        false,
        Some(&room)
    ));
    // Anonymous, or an argument larger than any valid request.
    assert!(!inspect_create_video(
        &Principal::anonymous(),
        small,
        &credit,
        true,
        Some(&room)
    ));
    assert!(inspect_create_video(
        &alice,
        MAX_CREATE_VIDEO_ARG_BYTES,
        &none,
        false,
        Some(&room)
    ));
    assert!(!inspect_create_video(
        &alice,
        MAX_CREATE_VIDEO_ARG_BYTES + 1,
        &credit,
        true,
        Some(&room)
    ));
    // The largest valid request fits.
    let biggest = canvid_types::spawn::CreateVideoArgs {
        title: "t".repeat(canvid_types::video::MAX_TITLE_BYTES),
        description: "d".repeat(canvid_types::video::MAX_DESCRIPTION_BYTES),
        tags: vec!["x".repeat(canvid_types::video::MAX_TAG_BYTES); canvid_types::video::MAX_TAGS],
        declared_size: u64::MAX,
        owner: Some(user(2)),
    };
    let size = candid::encode_one(&biggest).unwrap().len();
    assert!(size <= MAX_CREATE_VIDEO_ARG_BYTES, "{size}");
}

#[test]
fn storage_per_byte_is_the_30_day_cost_from_the_cost_table() {
    // 127,000 cycles per GiB per second for 30 days, per byte, rounded up.
    let per_byte = (127_000u128 * 30 * 86_400).div_ceil(1 << 30);
    assert_eq!(per_byte, STORAGE_30_DAYS_PER_BYTE);
}

#[test]
fn validation_uses_video_limits() {
    assert!(validate_create("t", "d", &["a".into()], 10).is_ok());
    assert!(matches!(
        validate_create(&"x".repeat(257), "", &[], 1),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        validate_create("t", "", &[], canvid_types::video::MAX_VIDEO_SIZE + 1),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        validate_create("t", "", &["".into()], 1),
        Err(Error::InvalidArgument { .. })
    ));
}

fn input<'a>(
    amount: u128,
    account: &'a Account,
    attached: u128,
    quota: Option<&'a QuotaArgs>,
    balance: u128,
) -> FundingInput<'a> {
    FundingInput {
        charge: Charge {
            amount,
            new_video: true,
        },
        account,
        attached,
        quota,
        balance,
        reserve: 1_000,
    }
}

#[test]
fn attached_cycles_pay_exactly_the_required_amount() {
    let a = Account::default();
    let f = decide_funding(&input(500, &a, 800, None, 0), canister(1)).unwrap();
    assert_eq!(
        f,
        Funding {
            payer: Payer::Attached,
            credit_used: 0,
            accept: 500,
            pool: 0
        }
    );
    let e = decide_funding(&input(500, &a, 499, None, u128::MAX), canister(1)).unwrap_err();
    assert_eq!(
        e,
        Error::InsufficientCycles {
            required: 500,
            available: 499
        }
    );
}

#[test]
fn credit_is_spent_first() {
    let a = Account {
        credit: 200,
        ..Default::default()
    };
    let f = decide_funding(&input(500, &a, 300, None, 0), canister(1)).unwrap();
    assert_eq!((f.credit_used, f.accept), (200, 300));
    let after = commit_funding(&a, &f, true);
    assert_eq!(after.credit, 0);
    // Credit alone can pay, even with no quota and an empty pool.
    let rich = Account {
        credit: 900,
        ..Default::default()
    };
    let f = decide_funding(&input(500, &rich, 0, None, 0), user(1)).unwrap();
    assert_eq!(
        (f.payer, f.credit_used, f.pool, f.accept),
        (Payer::Attached, 500, 0, 0)
    );
    assert_eq!(commit_funding(&rich, &f, true).credit, 400);
}

#[test]
fn pool_respects_quota_and_reserve() {
    let a = Account::default();
    // No quota (default 0): refused as insufficient cycles before anything is created.
    let e = decide_funding(&input(500, &a, 0, None, 1 << 40), user(1)).unwrap_err();
    assert_eq!(
        e,
        Error::InsufficientCycles {
            required: 500,
            available: 0
        }
    );
    let q = QuotaArgs {
        max_videos: 2,
        max_cycles: 1_200,
    };
    let f = decide_funding(&input(500, &a, 0, Some(&q), 10_000), user(1)).unwrap();
    assert_eq!(
        f,
        Funding {
            payer: Payer::Pool,
            credit_used: 0,
            accept: 0,
            pool: 500
        }
    );
    let a1 = commit_funding(&a, &f, true);
    assert_eq!((a1.used_videos, a1.used_cycles), (1, 500));
    let a2 = commit_funding(
        &a1,
        &decide_funding(&input(500, &a1, 0, Some(&q), 10_000), user(1)).unwrap(),
        true,
    );
    // Third: 1,200 - 1,000 = 200 cycles of quota left.
    let e = decide_funding(&input(500, &a2, 0, Some(&q), 10_000), user(1)).unwrap_err();
    assert_eq!(
        e,
        Error::InsufficientCycles {
            required: 500,
            available: 200
        }
    );
    // Enough cycles but the video count is used up.
    let q3 = QuotaArgs {
        max_videos: 2,
        max_cycles: 10_000,
    };
    assert!(matches!(
        decide_funding(&input(500, &a2, 0, Some(&q3), 10_000), user(1)),
        Err(Error::NotAuthorized { .. })
    ));
    // The pool keeps its reserve (1,000): balance 1,400 leaves 400.
    let e = decide_funding(&input(500, &a, 0, Some(&q3), 1_400), user(1)).unwrap_err();
    assert_eq!(
        e,
        Error::InsufficientCycles {
            required: 500,
            available: 400
        }
    );
}

#[test]
fn reusing_a_spare_does_not_count_as_a_new_video() {
    let a = Account {
        used_videos: 2,
        used_cycles: 1_000,
        credit: 0,
    };
    let q = QuotaArgs {
        max_videos: 2,
        max_cycles: 1_000,
    };
    let i = FundingInput {
        charge: charge_for_spare(100, 100),
        account: &a,
        attached: 0,
        quota: Some(&q),
        balance: 0,
        reserve: 0,
    };
    let f = decide_funding(&i, user(1)).unwrap();
    assert_eq!((f.pool, f.accept, f.credit_used), (0, 0, 0));
    assert_eq!(commit_funding(&a, &f, false), a);
}

#[test]
fn refund_turns_payment_into_credit_and_returns_quota() {
    let a = Account {
        used_videos: 1,
        used_cycles: 100,
        credit: 50,
    };
    let f = Funding {
        payer: Payer::Pool,
        credit_used: 50,
        accept: 0,
        pool: 400,
    };
    let committed = commit_funding(&a, &f, true);
    assert_eq!(
        committed,
        Account {
            used_videos: 2,
            used_cycles: 500,
            credit: 0
        }
    );
    assert_eq!(refund_funding(&committed, &f, true), a);
    let f = Funding {
        payer: Payer::Attached,
        credit_used: 0,
        accept: 700,
        pool: 0,
    };
    let committed = commit_funding(&Account::default(), &f, true);
    assert_eq!(
        committed,
        Account::default(),
        "attached payers do not use the quota"
    );
    assert_eq!(
        refund_funding(&committed, &f, true).credit,
        700,
        "accepted cycles become credit"
    );
}

#[test]
fn install_is_retried_once_then_parked() {
    assert_eq!(after_install_failure(1), AfterInstallFailure::Retry);
    assert_eq!(after_install_failure(2), AfterInstallFailure::Park);
}

#[test]
fn state_machine_transitions() {
    use SpawnStatus::*;
    assert_eq!(
        next_step(Created, true),
        NextStep::None,
        "install belongs to the create call"
    );
    assert_eq!(next_step(Installed, true), NextStep::SetControllers);
    assert_eq!(next_step(ControllersSet, true), NextStep::Register);
    assert_eq!(next_step(IndexPending, true), NextStep::Register);
    assert_eq!(next_step(ControllersSet, false), NextStep::None);
    assert_eq!(next_step(Registered, true), NextStep::None);
    assert_eq!(next_step(Spare, true), NextStep::None);
    assert_eq!(
        after_step(Installed, NextStep::SetControllers, true, true),
        ControllersSet
    );
    assert_eq!(
        after_step(Installed, NextStep::SetControllers, true, false),
        Registered
    );
    assert_eq!(
        after_step(Installed, NextStep::SetControllers, false, true),
        Installed
    );
    assert_eq!(
        after_step(ControllersSet, NextStep::Register, false, true),
        IndexPending
    );
    assert_eq!(
        after_step(IndexPending, NextStep::Register, true, true),
        Registered
    );
    assert!(
        needs_work(IndexPending, true) && !needs_work(Registered, true) && !needs_work(Spare, true)
    );
}

#[test]
fn controllers_and_creator() {
    let (o, v, s) = (user(1), canister(2), canister(3));
    let hands_over = VideoView {
        owner: o,
        hands_over: true,
    };
    let legacy = VideoView {
        owner: o,
        hands_over: false,
    };
    // After create_canister ([spawn]): exactly the video and the spawn; the owner gets control
    // from the video at finish_upload.
    assert_eq!(
        plan_controllers(&[s], &hands_over, v, s),
        ControllersPlan::Set(vec![v, s])
    );
    // A spare an older spawn module created with [owner, spawn]: the owner is dropped.
    assert_eq!(
        plan_controllers(&[o, s], &hands_over, v, s),
        ControllersPlan::Set(vec![v, s])
    );
    // An older video module expects its owner (the one it names now) to control it.
    assert_eq!(
        plan_controllers(&[s], &legacy, v, s),
        ControllersPlan::Set(vec![s, o, v])
    );
    let extra = user(7);
    assert_eq!(
        plan_controllers(&[o, extra, s], &legacy, v, s),
        ControllersPlan::Set(vec![o, extra, s, v])
    );
    // The owner the video names now, never the spawn's record: a sold legacy video is not
    // handed back (M1).
    let buyer = user(8);
    assert_eq!(
        plan_controllers(
            &[buyer, s],
            &VideoView {
                owner: buyer,
                hands_over: false
            },
            v,
            s
        ),
        ControllersPlan::Set(vec![buyer, s, v])
    );
    // Already set up (the video controls itself): nothing is written.
    for view in [&hands_over, &legacy] {
        assert_eq!(
            plan_controllers(&[o, v, s], view, v, s),
            ControllersPlan::AlreadyDone
        );
        assert_eq!(
            plan_controllers(&[buyer, v], view, v, s),
            ControllersPlan::AlreadyDone
        );
    }
    assert_eq!(initial_controllers(s), vec![s]);
    assert_eq!(
        creator_for(user(4), o, false),
        user(4),
        "a user creating for someone else is the creator"
    );
    assert_eq!(
        creator_for(user(4), o, true),
        user(4),
        "a user principal is never an app canister"
    );
    assert_eq!(
        creator_for(canister(9), o, false),
        canister(9),
        "a canister that is not allow-listed is the creator (security review M5)"
    );
    assert_eq!(
        creator_for(canister(9), o, true),
        o,
        "an allow-listed app canister creates on behalf of the owner"
    );
}

#[test]
fn app_canister_lists() {
    assert_eq!(
        validate_app_canisters(&[canister(1), canister(1), canister(2)]).unwrap(),
        vec![canister(1), canister(2)]
    );
    assert_eq!(validate_app_canisters(&[]).unwrap(), vec![]);
    assert!(matches!(
        validate_app_canisters(&[canister(1), user(1)]),
        Err(Error::InvalidArgument { .. })
    ));
    let too_many: Vec<Principal> = (0..=MAX_APP_CANISTERS as u8).map(canister).collect();
    assert!(validate_app_canisters(&too_many).is_err());
}

#[test]
fn wasm_checks() {
    let wasm = b"\0asm\x01\0\0\0".to_vec();
    let h = vec![1u8; 32];
    assert!(check_wasm(&wasm, &h, &h).is_ok());
    assert!(check_wasm(&[0x1f, 0x8b, 8, 0], &h, &h).is_ok());
    assert!(is_gzip(&[0x1f, 0x8b, 8, 0]) && !is_gzip(&wasm));
    assert!(matches!(
        check_wasm(b"hello", &h, &h),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        check_wasm(&wasm, &h, &[2u8; 32]),
        Err(Error::WrongDigest { .. })
    ));
    let big = [b"\0asm".to_vec(), vec![0u8; MAX_WASM_SIZE as usize]].concat();
    assert!(matches!(
        check_wasm(&big, &h, &h),
        Err(Error::TooLarge { .. })
    ));
}

/// `upgrade_videos` upgrades only canisters it created that have the video module installed;
/// the others are reported with the reason.
#[test]
fn upgrade_filter_selects_installed_videos_only() {
    let id = canister(1);
    assert!(matches!(
        check_upgradable(&id, None),
        Err(Error::NotFound { .. })
    ));
    for status in [SpawnStatus::Created, SpawnStatus::Spare] {
        let v = video(id, user(1), status);
        assert!(
            matches!(check_upgradable(&id, Some(&v)), Err(Error::NotReady { reason }) if reason.contains("no video module")),
            "{status:?}"
        );
    }
    for status in [
        SpawnStatus::Installed,
        SpawnStatus::ControllersSet,
        SpawnStatus::IndexPending,
        SpawnStatus::Registered,
    ] {
        let v = video(id, user(1), status);
        assert_eq!(check_upgradable(&id, Some(&v)), Ok(()), "{status:?}");
    }
}

#[test]
fn upgrade_argument_defaults_to_the_empty_candid_argument_list() {
    assert_eq!(upgrade_arg(None).unwrap(), b"DIDL\0\0".to_vec());
    assert_eq!(upgrade_arg(Some(vec![1, 2])).unwrap(), vec![1, 2]);
}

#[test]
fn admin_lists_are_deduplicated_and_bounded() {
    assert_eq!(
        dedup_admins(&[user(1), user(2), user(1)]).unwrap(),
        vec![user(1), user(2)]
    );
    let many: Vec<Principal> = (0..=MAX_ADMINS as u8).map(user).collect();
    assert!(matches!(
        dedup_admins(&many),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(dedup_admins(&many[..MAX_ADMINS]).unwrap().len(), MAX_ADMINS);
}

/// Security review L7: failed outbox entries are retried 60 s, 120 s, ... up to a day apart,
/// and parked after `MAX_AUTO_ATTEMPTS` failures in a row.
#[test]
fn outbox_retry_schedule_backs_off_and_parks() {
    let s = 1_000_000_000u64;
    assert_eq!(retry_delay_secs(1), 60);
    assert_eq!(retry_delay_secs(2), 120);
    assert_eq!(retry_delay_secs(3), 240);
    assert_eq!(retry_delay_secs(11), 61_440);
    assert_eq!(retry_delay_secs(12), 86_400, "capped at a day");
    assert_eq!(retry_delay_secs(u32::MAX), 86_400, "no overflow");
    let mut r = Retry::default();
    assert!(is_due(&r, 0), "an entry that never failed is due");
    let mut now = 1_000 * s;
    let mut total = 0;
    for n in 1..=MAX_AUTO_ATTEMPTS {
        assert!(!is_parked(&r));
        r = after_failed_attempt(r, now);
        assert_eq!(r.attempts, n);
        if n < MAX_AUTO_ATTEMPTS {
            assert_eq!(r.next_at, now + retry_delay_secs(n) * s);
            assert!(!is_due(&r, r.next_at - 1) && is_due(&r, r.next_at));
            assert!(retry_note(&r, now).contains(&format!("attempt {n} failed")));
            total += retry_delay_secs(n);
        }
        now = r.next_at;
    }
    assert!(is_parked(&r));
    assert!(
        !is_due(&r, u64::MAX),
        "a parked entry is never due for the timer"
    );
    assert!(retry_note(&r, now).contains("parked after 20 failed attempts"));
    // About ten days of retries before parking.
    assert!((9 * 86_400..12 * 86_400).contains(&total), "{total}");
    // Saturating at the end of time.
    assert_eq!(
        after_failed_attempt(Retry::default(), u64::MAX).next_at,
        u64::MAX
    );
}
