//! Controllers and the management canister.

use candid::Principal;
use canvid_replica::{CanisterSettings, CanisterStatusKind, InstallMode, RejectCode, Replica};
use serde_bytes::ByteBuf;

use crate::support::*;

#[test]
fn controllers_are_enforced() {
    let r = Replica::new();
    let c = r.create_canister_with_settings(Some(admin()), None);
    assert_eq!(r.get_controllers(c), vec![admin()]);
    r.add_cycles(c, PROBE_CYCLES);

    // Not a controller: install, upgrade, reinstall, stop, delete, settings, status.
    expect_reject(
        r.install_code(
            InstallMode::Install,
            c,
            probe_wasm(),
            Vec::new(),
            Some(stranger()),
        ),
        RejectCode::CanisterError,
        "IC0512",
    );
    r.install_code(
        InstallMode::Install,
        c,
        probe_wasm(),
        Vec::new(),
        Some(admin()),
    )
    .expect("controller installs");
    update_unit(&r, c, "set_heap", (6u64,));
    expect_reject(
        r.upgrade_canister(c, probe_variant("x"), Vec::new(), Some(stranger())),
        RejectCode::CanisterError,
        "IC0512",
    );
    expect_reject(
        r.reinstall_canister(c, probe_wasm(), Vec::new(), Some(stranger())),
        RejectCode::CanisterError,
        "IC0512",
    );
    expect_reject(
        r.stop_canister(c, Some(stranger())),
        RejectCode::CanisterError,
        "IC0512",
    );
    expect_reject(
        r.delete_canister(c, Some(stranger())),
        RejectCode::CanisterError,
        "IC0512",
    );
    expect_reject(
        r.set_controllers(c, Some(stranger()), vec![stranger()]),
        RejectCode::CanisterError,
        "IC0512",
    );
    expect_reject(
        r.canister_status(c, Some(stranger())),
        RejectCode::CanisterError,
        "IC0512",
    );
    // The anonymous principal is no controller here either.
    expect_reject(
        r.stop_canister(c, None),
        RejectCode::CanisterError,
        "IC0512",
    );
    // Nothing changed.
    assert_eq!(get_heap(&r, c), 6);
    assert_eq!(r.module_hash(c), Some(sha256(&probe_wasm())));
    assert_eq!(
        r.canister_status(c, Some(admin())).expect("status").status,
        CanisterStatusKind::Running
    );

    assert!(query_ok::<_, bool>(&r, c, "is_controller", (admin(),)));
    assert!(!query_ok::<_, bool>(&r, c, "is_controller", (stranger(),)));

    // Another canister may not read the status until it is a controller; the canister itself
    // may (the spec allows "the controllers of the canister or the canister itself").
    let other = install_probe(&r);
    let out: Result<StatusSummary, (u32, String)> = update_ok(&r, other, "status_of_other", (c,));
    let (code, _) = out.expect_err("status read by a canister that is no controller");
    assert_eq!(code, RejectCode::CanisterError as u32);
    r.set_controllers(c, Some(admin()), vec![admin(), c, other])
        .expect("set_controllers");
    let mut ctrl = r.get_controllers(c);
    ctrl.sort();
    let mut want = vec![admin(), c, other];
    want.sort();
    assert_eq!(ctrl, want);
    assert!(query_ok::<_, bool>(&r, c, "is_controller", (c,)));
    let st =
        update_ok::<_, Result<StatusSummary, (u32, String)>>(&r, other, "status_of_other", (c,))
            .expect("a controller canister reads the status");
    assert!(st.controllers.contains(&other));
    let st: StatusSummary =
        update_ok::<_, Result<StatusSummary, (u32, String)>>(&r, c, "self_status", ())
            .expect("self-controlled canister reads its status");
    assert_eq!(
        st.module_hash.map(|h| h.into_vec()),
        Some(sha256(&probe_wasm()).to_vec())
    );
    assert!(st.controllers.contains(&c));
    assert!(
        st.status.to_lowercase().contains("running"),
        "{}",
        st.status
    );
}

#[test]
fn canister_creates_installs_and_controls_a_child() {
    let r = Replica::new();
    let p = install_probe(&r);
    let cost: u128 = query_ok(&r, p, "cost_create_canister", ());
    assert_eq!(cost, CREATION_FEE);

    let attached = 2_000_000_000_000u128;
    let before = r.cycle_balance(p);
    let child =
        update_ok::<_, Result<Principal, (u32, String)>>(&r, p, "create_child", (attached,))
            .expect("create_child");
    assert!(r.canister_exists(child));
    assert_eq!(r.get_controllers(child), vec![p]);
    assert_eq!(
        r.cycle_balance(child),
        attached - CREATION_FEE,
        "creation fee not taken from the attached cycles"
    );
    let spent = before - r.cycle_balance(p);
    assert!(
        spent >= attached && spent < attached + 1_000_000_000,
        "parent spent {spent}"
    );
    assert_eq!(r.module_hash(child), None);

    let wasm = probe_wasm();
    update_ok::<_, Result<(), (u32, String)>>(
        &r,
        p,
        "install_child",
        (
            child,
            "install".to_string(),
            ByteBuf::from(wasm.clone()),
            ByteBuf::new(),
        ),
    )
    .expect("install_child");
    assert_eq!(hook_log(&r, child), "init;");
    assert_eq!(r.module_hash(child), Some(sha256(&wasm)));
    let st =
        update_ok::<_, Result<StatusSummary, (u32, String)>>(&r, p, "status_of_other", (child,))
            .expect("status of child");
    assert_eq!(st.controllers, vec![p]);
    assert_eq!(
        st.module_hash.map(|h| h.into_vec()),
        Some(sha256(&wasm).to_vec())
    );

    // The test's principal is not a controller of the child.
    expect_reject(
        r.upgrade_canister(child, probe_variant("y"), Vec::new(), None),
        RejectCode::CanisterError,
        "IC0512",
    );
    // The parent upgrades it (gzip module through a canister call).
    update_ok::<_, Result<(), (u32, String)>>(
        &r,
        p,
        "install_child",
        (
            child,
            "upgrade".to_string(),
            ByteBuf::from(gzip(&wasm)),
            ByteBuf::new(),
        ),
    )
    .expect("upgrade child");
    assert_eq!(hook_log(&r, child), "init;pre_upgrade;post_upgrade;");

    // The child cannot read the status of its parent (not a controller).
    let out =
        update_ok::<_, Result<StatusSummary, (u32, String)>>(&r, child, "status_of_other", (p,));
    assert_eq!(
        out.expect_err("child is no controller").0,
        RejectCode::CanisterError as u32
    );

    // raw_rand: 32 bytes, different each time.
    let a =
        update_ok::<_, Result<ByteBuf, (u32, String)>>(&r, p, "raw_rand", ()).expect("raw_rand");
    let b =
        update_ok::<_, Result<ByteBuf, (u32, String)>>(&r, p, "raw_rand", ()).expect("raw_rand");
    assert_eq!(a.len(), 32);
    assert_eq!(b.len(), 32);
    assert_ne!(a, b);
}

#[test]
fn create_canister_with_too_few_cycles_is_rejected_and_refunded() {
    let r = Replica::new();
    let p = install_probe(&r);
    let canisters = r.canister_ids().len();
    let before = r.cycle_balance(p);
    let attached = CREATION_FEE - 1;
    let out = update_ok::<_, Result<Principal, (u32, String)>>(&r, p, "create_child", (attached,));
    let (code, msg) = out.expect_err("create_canister below the fee succeeded");
    assert_eq!(code, RejectCode::CanisterReject as u32, "{msg}");
    assert_eq!(r.canister_ids().len(), canisters, "a canister was created");
    let spent = before - r.cycle_balance(p);
    assert!(
        spent < 1_000_000_000,
        "attached cycles not refunded: spent {spent}"
    );
    assert!(spent > 0, "the call's fees were not charged");
}

#[test]
fn unaccepted_cycles_are_refunded() {
    let r = Replica::new();
    let a = install_probe(&r);
    let b = install_probe(&r);
    let attached = 10_000_000_000u128;
    let accept = 3_000_000_000u128;
    let margin = 1_000_000_000u128;

    let (a0, b0) = (r.cycle_balance(a), r.cycle_balance(b));
    let out: CallOutcome = update_ok(&r, a, "call_with_cycles", (b, attached, accept));
    let accepted: u128 = dec(out.reply(), "accept_cycles");
    assert_eq!(accepted, accept);
    assert_eq!(out.refunded(), Some(attached - accept));
    let (a1, b1) = (r.cycle_balance(a), r.cycle_balance(b));
    assert!(
        a0 - a1 >= accept && a0 - a1 < accept + margin,
        "caller spent {}",
        a0 - a1
    );
    assert!(
        b1 > b0 && b1 - b0 <= accept && b1 - b0 > accept - margin,
        "callee gained {}",
        b1 as i128 - b0 as i128
    );

    // Nothing accepted: everything comes back.
    let out: CallOutcome = update_ok(&r, a, "call_with_cycles", (b, attached, 0u128));
    assert_eq!(dec::<u128>(out.reply(), "accept_cycles"), 0);
    assert_eq!(out.refunded(), Some(attached));
    let a2 = r.cycle_balance(a);
    assert!(
        a1 - a2 < margin,
        "caller lost {} although nothing was accepted",
        a1 - a2
    );

    // Cycles attached to a rejected call come back as well.
    let mut spec = CallSpec::new(b, "trap", enc(("no".to_string(),)));
    spec.cycles = attached;
    let out = call_other(&r, a, spec);
    assert_eq!(out.refunded(), Some(attached), "{out:?}");
    assert!(a2 - r.cycle_balance(a) < margin);
}

#[test]
fn drained_canister_keeps_the_refunds_of_its_prepayments() {
    // On the IC a canister cannot spend below its prepayments from inside an update: the
    // update's 40 B and the call's 42.1 B reservation come back after it. And a call must leave
    // the reserve for its own message memory (2 MiB response slot), so draining to 0 fails.
    let r = Replica::new();
    let a = install_probe(&r);
    let sink = install_probe(&r);
    let out: CallOutcome = update_ok(&r, a, "drain_to", (sink, 0u128));
    assert!(matches!(out, CallOutcome::NotSent { .. }), "{out:?}");
    let keep = 2_000_000_000u128;
    let out: CallOutcome = update_ok(&r, a, "drain_to", (sink, keep));
    let accepted: u128 = dec(out.reply(), "accept_cycles");
    assert!(accepted > PROBE_CYCLES / 2, "only {accepted} drained");
    let refunds = canvid_replica::cycles::execution_fee(40_000_000_000)
        + canvid_replica::cycles::call_fee(0, 0)
        + canvid_replica::cycles::call_reservation(40_000_000_000);
    let (_, liquid): (u128, u128) = dec_args(
        &r.query_call(a, user(), "balances_in_query", enc(()))
            .expect("balances_in_query"),
        "balances_in_query",
    );
    assert!(
        liquid < keep + refunds && liquid > keep + refunds - 100_000_000,
        "liquid after draining: {liquid}"
    );
    // 80+ B liquid: enough to prepay an update, so it runs.
    let counted: u64 = update_ok(&r, a, "burn", (1_000_000_000u64,));
    assert!(counted >= 1_000_000_000);
}

#[test]
fn frozen_canister_rejects_ingress_and_calls() {
    let r = Replica::new();
    let a = install_probe(&r);
    let b = install_probe(&r);
    update_unit(&r, a, "set_heap", (1u64,));
    // A freezing threshold of ~30 million years makes the reserve (memory × 127 K cycles per GiB
    // per second × threshold) exceed the balance: the canister is frozen.
    r.update_canister_settings(
        a,
        None,
        CanisterSettings {
            freezing_threshold: Some(1_000_000_000_000_000),
            ..Default::default()
        },
    )
    .expect("update_settings");
    expect_reject(
        update::<_, ()>(&r, a, "set_heap", (2u64,)),
        RejectCode::SysTransient,
        "IC0207",
    );
    let out = call_other(&r, b, CallSpec::new(a, "set_heap", enc((3u64,))));
    let (code, _) = out.reject();
    assert_eq!(code, RejectCode::SysTransient as u32, "{out:?}");
    // Unfreeze: calls work again and nothing ran meanwhile.
    r.update_canister_settings(
        a,
        None,
        CanisterSettings {
            freezing_threshold: Some(2_592_000),
            ..Default::default()
        },
    )
    .expect("update_settings");
    assert_eq!(get_heap(&r, a), 1);
    update_unit(&r, a, "set_heap", (4u64,));
    assert_eq!(get_heap(&r, a), 4);
}

#[test]
fn stop_start_delete() {
    let r = Replica::new();
    let c = install_probe(&r);
    update_unit(&r, c, "set_heap", (8u64,));

    expect_reject(
        r.delete_canister(c, None),
        RejectCode::CanisterError,
        "IC0510",
    );
    r.stop_canister(c, None).expect("stop");
    assert_eq!(
        r.canister_status(c, None).expect("status").status,
        CanisterStatusKind::Stopped
    );
    expect_reject(
        update::<_, ()>(&r, c, "set_heap", (9u64,)),
        RejectCode::CanisterError,
        "IC0508",
    );
    expect_reject(
        r.query_call(c, user(), "get_heap", enc(())),
        RejectCode::CanisterError,
        "IC0508",
    );

    // A canister calling a stopped canister gets a CanisterError reject.
    let other = install_probe(&r);
    let out = call_other(&r, other, CallSpec::new(c, "set_heap", enc((10u64,))));
    assert_eq!(out.reject().0, RejectCode::CanisterError as u32);

    r.start_canister(c, None).expect("start");
    assert_eq!(
        r.canister_status(c, None).expect("status").status,
        CanisterStatusKind::Running
    );
    assert_eq!(get_heap(&r, c), 8, "state lost across stop/start");

    // A canister can be stopped by a canister controller through the management canister.
    r.set_controllers(c, None, vec![Principal::anonymous(), other])
        .expect("set_controllers");
    update_ok::<_, Result<(), (u32, String)>>(&r, other, "stop_other", (c,))
        .expect("stop via canister");
    assert_eq!(
        r.canister_status(c, None).expect("status").status,
        CanisterStatusKind::Stopped
    );

    r.delete_canister(c, None).expect("delete");
    assert!(!r.canister_exists(c));
    assert!(!r.canister_ids().contains(&c));
    expect_reject(
        update::<_, ()>(&r, c, "set_heap", (9u64,)),
        RejectCode::DestinationInvalid,
        "IC0301",
    );
    let out = call_other(&r, other, CallSpec::new(c, "get_heap", enc(())));
    assert_eq!(out.reject().0, RejectCode::DestinationInvalid as u32);
}
