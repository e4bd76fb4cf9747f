//! End-to-end tests of the replica on small hand-written (wat) canisters. The conformance suite
//! with a real ic-cdk canister lives in `tests/` (fixture `fixtures/probe`).

use crate::*;

/// A canister with a heap counter (address 0), a mutable global counter, and stable memory.
const COUNTER: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "msg_reject_code" (func $reject_code (result i32)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (import "ic0" "stable64_read" (func $sread (param i64 i64 i64)))
  (import "ic0" "canister_self_size" (func $self_size (result i32)))
  (import "ic0" "canister_self_copy" (func $self_copy (param i32 i32 i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_perform" (func $call_perform (result i32)))
  (import "ic0" "call_new_unknown_system_call" (func $unknown))
  (memory (export "memory") 2)
  (table 2 funcref)
  (elem (i32.const 1) $on_reply)
  (global $g (mut i32) (i32.const 0))
  (data (i32.const 100) "inc")
  (func $bump
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (call $swrite (i64.const 0) (i64.const 0) (i64.const 4)))
  (func $reply_state
    ;; reply: heap counter (4 bytes), global (4 bytes), stable[0..4] (4 bytes)
    (i32.store (i32.const 8) (global.get $g))
    (call $sread (i64.const 12) (i64.const 0) (i64.const 4))
    (call $append (i32.const 0) (i32.const 4))
    (call $append (i32.const 8) (i32.const 8))
    (call $reply))
  (func (export "canister_init") (drop (call $sgrow (i64.const 1))))
  (func (export "canister_update inc") (call $bump) (call $reply_state))
  (func (export "canister_update inc_trap") (call $bump) (call $trap (i32.const 100) (i32.const 3)))
  (func (export "canister_query read") (call $reply_state))
  (func (export "canister_query query_inc") (call $bump) (call $reply_state))
  (func (export "canister_update spin") (loop $l (br $l)))
  (func (export "canister_update no_reply"))
  (func (export "canister_update reply_twice") (call $reply) (call $reply))
  (func (export "canister_init_only_call") (nop))
  (func (export "canister_update unknown") (call $unknown))
  (func (export "canister_update call_inc")
    ;; calls canister <arg> method "inc"; the reply callback forwards the reply
    (call $arg_copy (i32.const 200) (i32.const 0) (call $arg_size))
    (call $call_new (i32.const 200) (call $arg_size) (i32.const 100) (i32.const 3)
                    (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 0))
    (if (call $call_perform) (then (call $trap (i32.const 100) (i32.const 3)))))
  (func $on_reply (param $env i32)
    (if (call $reject_code) (then (call $trap (i32.const 100) (i32.const 3))))
    (call $arg_copy (i32.const 300) (i32.const 0) (call $arg_size))
    (call $append (i32.const 300) (call $arg_size))
    (call $reply))
)
"#;

fn setup(cycles: u128) -> (Replica, Principal) {
    let r = Replica::new();
    let id = r.create_canister();
    r.add_cycles(id, cycles);
    let wasm = wat::parse_str(COUNTER).unwrap();
    r.install_canister(id, wasm, vec![], None);
    (r, id)
}

fn state(bytes: &[u8]) -> (u32, u32, u32) {
    let w = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    (w(0), w(4), w(8))
}

const T: u128 = 1_000_000_000_000;

#[test]
fn update_commits_and_query_reads() {
    let (r, id) = setup(T);
    let user = Principal::anonymous();
    assert_eq!(
        state(&r.update_call(id, user, "inc", vec![]).unwrap()),
        (1, 1, 1)
    );
    assert_eq!(
        state(&r.update_call(id, user, "inc", vec![]).unwrap()),
        (2, 2, 2)
    );
    assert_eq!(
        state(&r.query_call(id, user, "read", vec![]).unwrap()),
        (2, 2, 2)
    );
    assert_eq!(r.get_stable_memory(id)[..4], [2, 0, 0, 0]);
}

#[test]
fn trap_rolls_back_heap_globals_and_stable() {
    let (r, id) = setup(T);
    let user = Principal::anonymous();
    r.update_call(id, user, "inc", vec![]).unwrap();
    let err = r.update_call(id, user, "inc_trap", vec![]).unwrap_err();
    assert_eq!(err.reject_code, RejectCode::CanisterError);
    assert_eq!(err.error_code, "IC0503");
    assert!(err.reject_message.contains("inc"), "{}", err.reject_message);
    assert_eq!(
        state(&r.query_call(id, user, "read", vec![]).unwrap()),
        (1, 1, 1)
    );
}

#[test]
fn queries_never_persist() {
    let (r, id) = setup(T);
    let user = Principal::anonymous();
    assert_eq!(
        state(&r.query_call(id, user, "query_inc", vec![]).unwrap()),
        (1, 1, 1)
    );
    assert_eq!(
        state(&r.query_call(id, user, "read", vec![]).unwrap()),
        (0, 0, 0)
    );
}

#[test]
fn missing_method_and_no_reply_and_double_reply() {
    let (r, id) = setup(T);
    let user = Principal::anonymous();
    let e = r.update_call(id, user, "nope", vec![]).unwrap_err();
    assert_eq!(
        (e.reject_code, e.error_code.as_str()),
        (RejectCode::CanisterError, "IC0536")
    );
    let e = r.update_call(id, user, "no_reply", vec![]).unwrap_err();
    assert_eq!(e.error_code, "IC0506");
    let e = r.update_call(id, user, "reply_twice", vec![]).unwrap_err();
    assert_eq!(e.error_code, "IC0504");
    let e = r.update_call(id, user, "unknown", vec![]).unwrap_err();
    assert!(
        e.reject_message.contains("not implemented"),
        "{}",
        e.reject_message
    );
    let e = r
        .update_call(crate::ids::canister_id(99), user, "inc", vec![])
        .unwrap_err();
    assert_eq!(e.reject_code, RejectCode::DestinationInvalid);
}

#[test]
fn execution_is_prepaid_for_the_whole_instruction_limit() {
    // The IC takes the cycles for a message's whole instruction limit before running it and
    // refunds the unused part: a canister that cannot prepay the limit above its freezing
    // reserve does not run the message at all, however few instructions it would take. Small
    // limits here; the rule is the same at the IC's 40 B / 300 B.
    let limits = crate::Limits {
        update_instructions: 300_000_000,
        install_instructions: 200_000_000,
        ..crate::Limits::IC
    };
    let user = Principal::anonymous();
    let r = Replica::with_limits(limits);
    let wasm = wat::parse_str(COUNTER).unwrap();
    let id = r.create_canister_with_settings(
        None,
        Some(CanisterSettings {
            freezing_threshold: Some(0),
            ..Default::default()
        }),
    );
    let install_ingress = cycles::ingress_fee("install_code".len(), wasm.len() + 100);
    let install_prepay = cycles::execution_fee(200_000_000);
    // One cycle short of the prepayment: refused, with the shortfall in the IC's words, and
    // only the ingress fee is gone.
    let short = install_ingress + install_prepay - 1;
    r.add_cycles(id, short);
    let e = r
        .install_code(InstallMode::Install, id, wasm.clone(), vec![], None)
        .unwrap_err();
    assert_eq!(
        (e.reject_code, e.error_code.as_str()),
        (RejectCode::SysTransient, "IC0207")
    );
    assert!(
        e.reject_message
            .contains("please top up the canister with at least 1 additional cycles"),
        "{e}"
    );
    assert_eq!(r.cycle_balance(id), short - install_ingress);
    // Enough for the install's prepayment: installed, and only what it executed is kept.
    r.add_cycles(id, install_ingress + 1);
    let before = r.cycle_balance(id);
    r.install_canister(id, wasm.clone(), vec![], None);
    let install_cost = before - r.cycle_balance(id);
    assert!(
        install_cost > install_ingress && install_cost < install_ingress + 10_000_000,
        "install cost {install_cost}"
    );
    // 0.2 B left: less than an update's 0.3 B prepayment, so `inc` does not run.
    let before = r.cycle_balance(id);
    let update_ingress = cycles::ingress_fee("inc".len(), 0);
    let e = r.update_call(id, user, "inc", vec![]).unwrap_err();
    assert_eq!(e.error_code, "IC0207", "{e}");
    let shortfall = cycles::execution_fee(300_000_000) - (before - update_ingress);
    assert!(
        e.reject_message.contains(&format!(
            "at least {} additional cycles",
            shortfall
                .to_string()
                .as_bytes()
                .rchunks(3)
                .rev()
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("_")
        )),
        "{e}"
    );
    assert_eq!(r.cycle_balance(id), before - update_ingress);
    // Topped up: it runs, and the unused prepayment comes back.
    r.add_cycles(id, T);
    let before = r.cycle_balance(id);
    assert_eq!(state(&r.update_call(id, user, "inc", vec![]).unwrap()).0, 1);
    let cost = before - r.cycle_balance(id);
    assert!(
        cost > update_ingress + cycles::EXECUTION_BASE && cost < update_ingress + 10_000_000,
        "update cost {cost}"
    );
    // A message that spins to the limit pays the whole prepayment and no more.
    let before = r.cycle_balance(id);
    let e = r.update_call(id, user, "spin", vec![]).unwrap_err();
    assert_eq!(e.error_code, "IC0522", "{e}");
    assert_eq!(
        before - r.cycle_balance(id),
        cycles::ingress_fee("spin".len(), 0) + cycles::execution_fee(300_000_000)
    );
}

#[test]
fn frozen_canister_rejects_ingress() {
    let r = Replica::new();
    let id = r.create_canister();
    let e = r
        .install_code(
            InstallMode::Install,
            id,
            wat::parse_str(COUNTER).unwrap(),
            vec![],
            None,
        )
        .unwrap_err();
    assert_eq!(e.error_code, "IC0207");
    r.add_cycles(id, T);
    r.install_canister(id, wat::parse_str(COUNTER).unwrap(), vec![], None);
    r.update_canister_settings(
        id,
        None,
        CanisterSettings {
            freezing_threshold: Some(u64::MAX / 1_000_000),
            ..Default::default()
        },
    )
    .unwrap();
    let e = r
        .update_call(id, Principal::anonymous(), "inc", vec![])
        .unwrap_err();
    assert_eq!(
        (e.reject_code, e.error_code.as_str()),
        (RejectCode::SysTransient, "IC0207")
    );
}

#[test]
fn inter_canister_call_with_callback() {
    let (r, a) = setup(T);
    let b = r.create_canister();
    r.add_cycles(b, T);
    r.install_canister(b, wat::parse_str(COUNTER).unwrap(), vec![], None);
    assert_eq!(r.compiled_modules(), 1);
    let user = Principal::anonymous();
    let out = r
        .update_call(a, user, "call_inc", b.as_slice().to_vec())
        .unwrap();
    assert_eq!(state(&out), (1, 1, 1));
    // The callee's state changed; the caller's did not.
    assert_eq!(
        state(&r.query_call(b, user, "read", vec![]).unwrap()),
        (1, 1, 1)
    );
    assert_eq!(
        state(&r.query_call(a, user, "read", vec![]).unwrap()),
        (0, 0, 0)
    );
    // A call to a missing canister is rejected (the callback traps on a reject).
    let e = r
        .update_call(
            a,
            user,
            "call_inc",
            crate::ids::canister_id(77).as_slice().to_vec(),
        )
        .unwrap_err();
    assert_eq!(e.error_code, "IC0503");
}

#[test]
fn stop_start_delete_and_controllers() {
    let (r, id) = setup(T);
    let user = Principal::anonymous();
    let other = Principal::from_slice(&[7; 29]);
    let e = r.stop_canister(id, Some(other)).unwrap_err();
    assert_eq!(e.error_code, "IC0512");
    let e = r.delete_canister(id, None).unwrap_err();
    assert_eq!(e.error_code, "IC0510");
    r.stop_canister(id, None).unwrap();
    assert_eq!(
        r.canister_status(id, None).unwrap().status,
        CanisterStatusKind::Stopped
    );
    let e = r.update_call(id, user, "inc", vec![]).unwrap_err();
    assert_eq!(e.error_code, "IC0508");
    r.start_canister(id, None).unwrap();
    r.update_call(id, user, "inc", vec![]).unwrap();
    r.set_controllers(id, None, vec![other]).unwrap();
    assert_eq!(r.get_controllers(id), vec![other]);
    let e = r.set_controllers(id, None, vec![user]).unwrap_err();
    assert_eq!(e.error_code, "IC0512");
    let too_many: Vec<Principal> = (0..11u8).map(|i| Principal::from_slice(&[i; 29])).collect();
    assert!(r.set_controllers(id, Some(other), too_many).is_err());
    r.stop_canister(id, Some(other)).unwrap();
    r.delete_canister(id, Some(other)).unwrap();
    assert!(!r.canister_exists(id));
}

#[test]
fn upgrade_keeps_stable_and_failed_upgrade_changes_nothing() {
    let (r, id) = setup(T);
    let user = Principal::anonymous();
    r.update_call(id, user, "inc", vec![]).unwrap();
    let hash = r.module_hash(id).unwrap();
    let v = r.canister_status(id, None).unwrap().canister_version;
    // A module whose post_upgrade traps.
    let bad = wat::parse_str(
        r#"(module (import "ic0" "trap" (func $t (param i32 i32)))
             (memory (export "memory") 1)
             (func (export "canister_post_upgrade") (call $t (i32.const 0) (i32.const 0))))"#,
    )
    .unwrap();
    let e = r.upgrade_canister(id, bad, vec![], None).unwrap_err();
    assert_eq!(e.error_code, "IC0503");
    assert_eq!(r.module_hash(id), Some(hash));
    assert_eq!(
        state(&r.query_call(id, user, "read", vec![]).unwrap()),
        (1, 1, 1)
    );
    // A real upgrade: heap and globals are fresh, stable memory is kept.
    r.upgrade_canister(id, wat::parse_str(COUNTER).unwrap(), vec![], None)
        .unwrap();
    assert_eq!(
        state(&r.query_call(id, user, "read", vec![]).unwrap()),
        (0, 0, 1)
    );
    assert_eq!(r.canister_status(id, None).unwrap().canister_version, v + 1);
}

#[test]
fn ingress_argument_limit() {
    let (r, id) = setup(T);
    let e = r
        .update_call(
            id,
            Principal::anonymous(),
            "inc",
            vec![0; 2 * 1024 * 1024 + 1],
        )
        .unwrap_err();
    assert!(e.reject_message.contains("too large"));
}

#[test]
fn injected_faults_reject_trap_in_callback_and_skip_unbounded_timeouts() {
    let (r, a) = setup(T);
    let b = r.create_canister();
    r.add_cycles(b, T);
    r.install_canister(b, wat::parse_str(COUNTER).unwrap(), vec![], None);
    let user = Principal::anonymous();
    let read = |c| state(&r.query_call(c, user, "read", vec![]).unwrap());
    // A reject: the callee never runs; the caller's callback traps on a reject.
    r.inject_fault(FaultRule::once(
        "inc",
        Fault::Reject(RejectCode::SysTransient, "queue full".into()),
    ));
    let e = r
        .update_call(a, user, "call_inc", b.as_slice().to_vec())
        .unwrap_err();
    assert_eq!(e.error_code, "IC0503");
    assert_eq!(read(b), (0, 0, 0));
    assert_eq!(r.faults_fired(), 1);
    // Fired once: the next call goes through.
    let out = r
        .update_call(a, user, "call_inc", b.as_slice().to_vec())
        .unwrap();
    assert_eq!(state(&out), (1, 1, 1));
    // A trap in the callback: the callee ran, the caller's context gets the trap.
    r.inject_fault(FaultRule {
        caller: Some(a),
        callee: Some(b),
        method: None,
        skip: 1,
        times: 1,
        kind: Fault::TrapInCallback,
    });
    r.update_call(a, user, "call_inc", b.as_slice().to_vec())
        .unwrap();
    let e = r
        .update_call(a, user, "call_inc", b.as_slice().to_vec())
        .unwrap_err();
    assert_eq!(e.error_code, "IC0503");
    assert!(e.reject_message.contains("injected fault"), "{e}");
    assert_eq!(read(b), (3, 3, 3));
    assert_eq!(r.faults_fired(), 2);
    // An unbounded-wait call never times out: the rule does not apply.
    r.clear_faults();
    r.inject_fault(FaultRule::once("inc", Fault::Timeout));
    r.update_call(a, user, "call_inc", b.as_slice().to_vec())
        .unwrap();
    assert_eq!(r.faults_fired(), 2);
    let log = r.take_call_log();
    assert_eq!(log.len(), 5);
    assert!(log
        .iter()
        .all(|c| c.caller == a && c.callee == b && c.method == "inc" && !c.bounded));
    assert!(r.take_call_log().is_empty());
}

/// `provisional_create_canister_with_cycles` with `specified_id` (as icp-cli, dfx
/// `--specified-id` and PocketIC use it; `canvid serve` puts the cycles ledger and the CMC at
/// their IC ids this way): the canister is created there, an id in use is refused, and later
/// creations in order skip the id it took.
#[test]
fn provisional_create_at_a_specified_id() {
    use ic_management_canister_types as mc;
    let r = Replica::new();
    let user = Principal::self_authenticating([7u8; 32]);
    let create = |specified: Option<Principal>| {
        let arg = mc::ProvisionalCreateCanisterWithCyclesArgs {
            amount: Some(candid::Nat::from(5_000_000_000_000u64)),
            specified_id: specified,
            ..Default::default()
        };
        r.update_call(
            Principal::management_canister(),
            user,
            "provisional_create_canister_with_cycles",
            candid::encode_one(arg).unwrap(),
        )
        .map(|b| {
            candid::decode_one::<mc::CanisterIdRecord>(&b)
                .unwrap()
                .canister_id
        })
    };
    let first = create(None).unwrap();
    assert_eq!(first, ids::canister_id(0));
    // The IC's cycles minting canister id is the 5th id in order; the cycles ledger's lies
    // elsewhere.
    let cmc = Principal::from_text("rkp4c-7iaaa-aaaaa-aaaca-cai").unwrap();
    assert_eq!(cmc, ids::canister_id(4));
    let ledger = Principal::from_text("um5iw-rqaaa-aaaaq-qaaba-cai").unwrap();
    for id in [cmc, ledger] {
        assert_eq!(create(Some(id)).unwrap(), id);
        assert_eq!(r.get_controllers(id), vec![user]);
        assert_eq!(r.cycle_balance(id), 5_000_000_000_000);
        let e = create(Some(id)).expect_err("an id in use");
        assert!(e.reject_message.contains("already in use"), "{e:?}");
    }
    let e = create(Some(user)).expect_err("not a canister id");
    assert!(e.reject_message.contains("not a canister id"), "{e:?}");
    // In order: 1, 2, 3, then 5 (4 is the CMC's).
    let next: Vec<Principal> = (0..4).map(|_| create(None).unwrap()).collect();
    assert_eq!(
        next,
        [1, 2, 3, 5].map(ids::canister_id).to_vec(),
        "ids in order skip the specified one"
    );
}
