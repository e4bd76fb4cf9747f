//! Timers, inspect_message, environment.

use std::time::{Duration, UNIX_EPOCH};

use candid::Principal;
use canvid_replica::{RejectCode, Replica};
use serde_bytes::ByteBuf;

use crate::support::*;

#[test]
fn timers_fire_after_time_advances() {
    let r = Replica::new();
    let c = install_probe(&r);
    update_unit(&r, c, "set_timer", (10_000_000_000u64, 1u64));
    update_unit(&r, c, "set_timer", (100_000_000_000u64, 2u64));
    for _ in 0..5 {
        r.tick();
    }
    assert_eq!(
        query_ok::<_, u64>(&r, c, "timers_fired", ()),
        0,
        "timer fired early"
    );

    r.advance_time(Duration::from_secs(11));
    let mut ticks = 0;
    while query_ok::<_, u64>(&r, c, "timers_fired", ()) == 0 && ticks < 10 {
        r.tick();
        ticks += 1;
    }
    assert_eq!(
        query_ok::<_, u64>(&r, c, "timers_fired", ()),
        1,
        "after {ticks} ticks"
    );
    let log = r.debug_log(c);
    assert!(log.iter().any(|l| l.contains("timer fired 1")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("timer fired 2")), "{log:?}");

    r.advance_time(Duration::from_secs(100));
    for _ in 0..10 {
        r.tick();
    }
    assert_eq!(query_ok::<_, u64>(&r, c, "timers_fired", ()), 2);
    assert!(r.debug_log(c).iter().any(|l| l.contains("timer fired 2")));
}

#[test]
fn inspect_message_refuses_ingress_but_not_inter_canister_calls() {
    let r = Replica::new();
    let a = install_probe(&r);
    let b = install_probe(&r);
    expect_reject(
        r.update_call(a, user(), "refused_update", enc(())),
        RejectCode::CanisterReject,
        "IC0406",
    );
    expect_reject(
        r.submit_call(a, user(), "refused_update", enc(())),
        RejectCode::CanisterReject,
        "IC0406",
    );
    r.run_until_idle();
    assert_eq!(get_heap(&r, a), 0, "a refused message executed");

    let out = call_other(&r, b, CallSpec::new(a, "refused_update", enc(())));
    assert_eq!(dec::<u64>(out.reply(), "refused_update"), 1234);
    assert_eq!(get_heap(&r, a), 1234);
}

#[test]
fn debug_print_is_captured_in_order() {
    let r = Replica::new();
    let c = install_probe(&r);
    update_unit(&r, c, "debug", ("first line".to_string(),));
    update_unit(&r, c, "debug", ("second line ✓".to_string(),));
    let log = r.debug_log(c);
    let i = log
        .iter()
        .position(|l| l == "first line")
        .unwrap_or_else(|| panic!("{log:?}"));
    assert_eq!(
        log.get(i + 1).map(String::as_str),
        Some("second line ✓"),
        "{log:?}"
    );
}

#[test]
fn canister_version_increments() {
    let r = Replica::new();
    let c = install_probe(&r);
    let v0: u64 = query_ok(&r, c, "canister_version", ());
    update_unit(&r, c, "set_heap", (1u64,));
    let v1: u64 = query_ok(&r, c, "canister_version", ());
    assert!(
        v1 > v0,
        "an update did not increment the version ({v0} -> {v1})"
    );
    let _: u64 = query_ok(&r, c, "get_heap", ());
    let v1b: u64 = query_ok(&r, c, "canister_version", ());
    assert_eq!(v1b, v1, "a query changed the version");
    r.upgrade_canister(c, probe_wasm(), Vec::new(), None)
        .expect("upgrade");
    let v2: u64 = query_ok(&r, c, "canister_version", ());
    assert!(v2 > v1);
    assert_eq!(
        r.canister_status(c, None).expect("status").canister_version,
        v2
    );
    r.set_controllers(c, None, vec![Principal::anonymous(), admin()])
        .expect("set_controllers");
    let v3: u64 = query_ok(&r, c, "canister_version", ());
    assert!(
        v3 > v2,
        "a controllers change did not increment the version"
    );
}

#[test]
fn time_follows_the_replica_clock() {
    let r = Replica::new();
    let c = install_probe(&r);
    let t0 = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    r.set_time(t0);
    let t0_ns = 1_900_000_000u64 * 1_000_000_000;
    // Queries run on the latest state, at its time: the clock applies from the next round
    // (as on PocketIC and the IC, where a round passes every second or so).
    let before: u64 = query_ok(&r, c, "time", ());
    assert!(
        before < t0_ns,
        "a query saw the clock ({before}) before any round ran at it"
    );
    r.tick();
    let q: u64 = query_ok(&r, c, "time", ());
    assert!(
        q >= t0_ns && q < t0_ns + 1_000_000_000,
        "query time {q} vs set {t0_ns}"
    );
    let u1: u64 = update_ok(&r, c, "time_update", ());
    assert!(u1 >= t0_ns && u1 < t0_ns + 1_000_000_000);
    let u2: u64 = update_ok(&r, c, "time_update", ());
    assert!(u2 > u1, "time did not advance between rounds");
    r.advance_time(Duration::from_secs(10));
    let u3: u64 = update_ok(&r, c, "time_update", ());
    assert!(u3 >= u2 + 10_000_000_000);
    let now = r
        .get_time()
        .duration_since(UNIX_EPOCH)
        .expect("after epoch")
        .as_nanos() as u64;
    assert!(now >= u3);
}

#[test]
fn caller_self_balance_and_controllers_are_visible() {
    let r = Replica::new();
    let a = install_probe(&r);
    let b = install_probe(&r);
    let who: Principal = query_ok(&r, a, "whoami", ());
    assert_eq!(who, user());
    let who: Principal = update_ok(&r, a, "whoami_update", ());
    assert_eq!(who, user());
    let who: Principal = dec(
        &r.query_call(a, stranger(), "whoami", enc(()))
            .expect("whoami"),
        "whoami",
    );
    assert_eq!(who, stranger());
    let me: Principal = query_ok(&r, a, "self_id", ());
    assert_eq!(me, a);
    let bal: u128 = query_ok(&r, a, "balance", ());
    assert_eq!(bal, r.cycle_balance(a));
    assert!(query_ok::<_, bool>(
        &r,
        a,
        "is_controller",
        (Principal::anonymous(),)
    ));
    assert!(!query_ok::<_, bool>(&r, a, "is_controller", (b,)));
    let out = call_other(&r, a, CallSpec::new(b, "whoami", enc(())));
    assert_eq!(
        dec::<Principal>(out.reply(), "whoami"),
        a,
        "a query called by a canister sees the canister"
    );
}

#[test]
fn certified_data_appears_in_query_certificates() {
    let r = Replica::new();
    let c = install_probe(&r);
    let data: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(7).wrapping_add(3))
        .collect();
    update_unit(&r, c, "certified_data_set", (ByteBuf::from(data.clone()),));
    let cert: Option<ByteBuf> = query_ok(&r, c, "data_certificate", ());
    let cert = cert.expect("no certificate in a query");
    assert!(
        cert.windows(data.len()).any(|w| w == data.as_slice()),
        "the certificate does not contain the certified data"
    );
    let in_update: bool = update_ok(&r, c, "data_certificate_in_update", ());
    assert!(!in_update, "data_certificate must be absent in updates");

    // More than 32 bytes is a contract violation; the old data stays.
    expect_reject(
        update::<_, ()>(&r, c, "certified_data_set", (ByteBuf::from(vec![1u8; 33]),)),
        RejectCode::CanisterError,
        "IC0504",
    );
    let cert: Option<ByteBuf> = query_ok(&r, c, "data_certificate", ());
    assert!(cert
        .expect("certificate")
        .windows(32)
        .any(|w| w == data.as_slice()));
}
