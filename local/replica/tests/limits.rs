//! The per-message limits enforced at small scale ([`Replica::with_limits`]), so each one is
//! proven on every test run: the IC's own numbers (40 B instructions per update) take minutes to
//! burn in an interpreter (`conformance::update_instruction_limit_is_40_billion`, `#[ignore]`d,
//! is the full-scale check). The enforcement code is the same at any limit.

mod support;

use std::time::Duration;

use canvid_replica::{Limits, RejectCode, Replica};
use serde_bytes::ByteBuf;
use support::*;

/// Update-class limit of these tests: far above what an ordinary probe message needs (candid
/// decoding and a few writes: well under 10 M), far below what a test can burn quickly.
const UPDATE: u64 = 60_000_000;
const QUERY: u64 = 30_000_000;
const REPLY: usize = 64 * 1024;
const REPLY_QUERY: usize = 96 * 1024;

fn small() -> Replica {
    Replica::with_limits(Limits {
        update_instructions: UPDATE,
        query_instructions: QUERY,
        reply_replicated_bytes: REPLY,
        reply_query_bytes: REPLY_QUERY,
        ..Limits::IC
    })
}

#[test]
fn defaults_are_the_ics_limits() {
    let ic = Replica::new().limits();
    assert_eq!(ic, Limits::IC);
    assert_eq!(ic.update_instructions, 40_000_000_000);
    assert_eq!(ic.query_instructions, 5_000_000_000);
    assert_eq!(ic.install_instructions, 300_000_000_000);
    assert_eq!(ic.inspect_instructions, 200_000_000);
    assert_eq!(ic.reply_replicated_bytes, 2 * MIB);
    assert_eq!(ic.reply_query_bytes, 3 * MIB);
    let r = small();
    assert_eq!(r.limits().update_instructions, UPDATE);
    r.set_limits(Limits::IC);
    assert_eq!(r.limits(), Limits::IC);
}

/// Under the limit an update commits; over it, IC0522 and everything it wrote (heap and stable
/// memory) is rolled back, and the cycles for the instructions it burned are still charged.
#[test]
fn update_over_the_instruction_limit_is_rejected_and_rolled_back() {
    let r = small();
    let c = install_probe(&r);
    let counted: u64 = update_ok(&r, c, "write_then_burn", (7u64, UPDATE - 10_000_000));
    assert!(counted >= UPDATE - 10_000_000);
    assert_eq!(get_heap(&r, c), 7);

    let before = r.cycle_balance(c);
    let e = expect_reject(
        update::<_, u64>(&r, c, "write_then_burn", (9u64, UPDATE + 10_000_000)),
        RejectCode::CanisterError,
        "IC0522",
    );
    assert!(e.reject_message.contains("instructions"), "{e}");
    assert_eq!(get_heap(&r, c), 7, "the heap write was not rolled back");
    assert_eq!(
        read_stable(&r, c, 0, 8),
        7u64.to_le_bytes().to_vec(),
        "the stable write was not rolled back"
    );
    assert!(
        before - r.cycle_balance(c) >= UPDATE as u128,
        "the burned instructions were not charged"
    );

    // The limit is a setting, not a property of the canister: raised, the same call passes.
    r.set_limits(Limits::IC);
    let counted: u64 = update_ok(&r, c, "write_then_burn", (9u64, UPDATE + 10_000_000));
    assert!(counted > UPDATE);
    assert_eq!(get_heap(&r, c), 9);
}

/// Each callback has its own limit: the message before the await commits, the callback over the
/// limit is rolled back with IC0522, and the cleanup callback runs (and commits).
#[test]
fn callback_over_the_instruction_limit_is_rejected_and_rolled_back() {
    let r = small();
    let a = install_probe(&r);
    let b = install_probe(&r);
    let spec = CallSpec::new(b, "whoami_update", enc(()));

    // Under the limit the callback commits (its writes replace the ones before the await).
    let _: u64 = update_ok(&r, a, "call_then_burn", (spec.clone(), 10u64, 1_000_000u64));
    assert_eq!(get_heap(&r, a), 1010);

    // The callback alone burns more than the limit; the whole call context did too before.
    let e = expect_reject(
        update::<_, u64>(&r, a, "call_then_burn", (spec, 77u64, UPDATE + 10_000_000)),
        RejectCode::CanisterError,
        "IC0522",
    );
    assert!(e.reject_message.contains("instructions"), "{e}");
    assert_eq!(get_heap(&r, a), 77, "the callback's heap write was kept");
    assert_eq!(read_stable(&r, a, 0, 8), 77u64.to_le_bytes().to_vec());
    let cleanup: u64 = query_ok(&r, a, "cleanup_count", ());
    assert_eq!(cleanup, 1, "the cleanup callback did not run after IC0522");
}

/// A timer (ic-cdk runs each timer task as a self-call from `canister_global_timer`) over the
/// limit changes nothing; one under the limit commits.
#[test]
fn timer_over_the_instruction_limit_is_rolled_back() {
    let r = small();
    let c = install_probe(&r);
    update_unit(&r, c, "set_heap", (5u64,));
    update_unit(
        &r,
        c,
        "set_burning_timer",
        (1_000u64, 6u64, UPDATE + 10_000_000),
    );
    r.advance_time(Duration::from_secs(1));
    for _ in 0..10 {
        r.tick();
    }
    assert_eq!(get_heap(&r, c), 5, "the timer's write survived IC0522");
    assert_eq!(query_ok::<_, u64>(&r, c, "timers_fired", ()), 0);

    update_unit(&r, c, "set_burning_timer", (1_000u64, 8u64, 1_000_000u64));
    r.advance_time(Duration::from_secs(1));
    for _ in 0..10 {
        r.tick();
    }
    assert_eq!(get_heap(&r, c), 8);
    assert_eq!(query_ok::<_, u64>(&r, c, "timers_fired", ()), 1);
}

/// The raw `canister_global_timer` entry point (no ic-cdk): over the limit its heap write is
/// rolled back; under it the write commits.
#[test]
fn global_timer_entry_point_is_limited() {
    const TIMER: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "global_timer_set" (func $timer_set (param i64) (result i64)))
  (import "ic0" "time" (func $time (result i64)))
  (memory (export "memory") 1)
  ;; [0..4]: counter; [4..8]: 1 = the timer spins forever, 0 = it returns.
  (func (export "canister_update arm_spinning")
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $timer_set (i64.add (call $time) (i64.const 1))))
    (call $reply))
  (func (export "canister_update arm")
    (i32.store (i32.const 4) (i32.const 0))
    (drop (call $timer_set (i64.add (call $time) (i64.const 1))))
    (call $reply))
  (func (export "canister_global_timer")
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (if (i32.load (i32.const 4)) (then (loop $l (br $l)))))
  (func (export "canister_query read")
    (call $append (i32.const 0) (i32.const 4))
    (call $reply)))
"#;
    let r = small();
    let c = r.create_canister();
    r.add_cycles(c, PROBE_CYCLES);
    r.install_canister(c, wat::parse_str(TIMER).expect("wat"), Vec::new(), None);
    let read = |r: &Replica| {
        let b = r.query_call(c, user(), "read", Vec::new()).expect("read");
        u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
    };

    r.update_call(c, user(), "arm_spinning", Vec::new())
        .expect("arm_spinning");
    for _ in 0..3 {
        r.tick();
    }
    assert_eq!(read(&r), 0, "the spinning timer's write was kept");

    r.update_call(c, user(), "arm", Vec::new()).expect("arm");
    for _ in 0..3 {
        r.tick();
    }
    assert_eq!(read(&r), 1, "a timer under the limit did not commit");
}

#[test]
fn query_over_the_instruction_limit_is_rejected() {
    let r = small();
    let c = install_probe(&r);
    let counted: u64 = query_ok(&r, c, "burn_query", (QUERY - 10_000_000,));
    assert!(counted >= QUERY - 10_000_000);
    expect_reject(
        r.query_call(c, user(), "burn_query", enc((QUERY + 10_000_000,))),
        RejectCode::CanisterError,
        "IC0522",
    );
    // The update limit is the larger one here: the same work as an update passes.
    let _: u64 = update_ok(&r, c, "burn", (QUERY + 10_000_000,));
}

#[test]
fn reply_size_limits_follow_the_settings() {
    let r = small();
    let c = install_probe(&r);
    let margin = 64u64; // candid framing of a blob
    let blob: ByteBuf = update_ok(&r, c, "reply_of_size", (REPLY as u64 - margin,));
    assert_eq!(blob.len() as u64, REPLY as u64 - margin);
    expect_reject(
        update::<_, ByteBuf>(&r, c, "reply_of_size", (REPLY as u64,)),
        RejectCode::CanisterError,
        "IC0504",
    );
    // Non-replicated queries have their own (here larger) limit.
    let blob: ByteBuf = query_ok(&r, c, "reply_of_size_query", (REPLY as u64,));
    assert_eq!(blob.len(), REPLY);
    expect_reject(
        r.query_call(c, user(), "reply_of_size_query", enc((REPLY_QUERY as u64,))),
        RejectCode::CanisterError,
        "IC0504",
    );
}
