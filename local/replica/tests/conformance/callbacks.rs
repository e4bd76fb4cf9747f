//! Await points, callbacks and cleanup.

use candid::Principal;
use canvid_replica::{RejectCode, Replica};

use crate::support::*;

#[test]
fn state_before_await_persists_when_callback_traps_and_cleanup_runs() {
    let r = Replica::new();
    let a = install_probe(&r);
    let b = install_probe(&r);
    let cleanup_before: u64 = query_ok(&r, a, "cleanup_count", ());
    assert_eq!(cleanup_before, 0);

    // The callee replies.
    let e = expect_reject(
        update::<_, ()>(
            &r,
            a,
            "call_then_trap",
            (CallSpec::new(b, "whoami_update", enc(())), 77u64),
        ),
        RejectCode::CanisterError,
        "IC0503",
    );
    assert!(e.reject_message.contains("trap in callback"), "{e}");
    assert_eq!(
        get_heap(&r, a),
        77,
        "state written before the await was lost"
    );
    assert_eq!(read_stable(&r, a, 0, 8), 77u64.to_le_bytes().to_vec());
    let cleanup: u64 = query_ok(&r, a, "cleanup_count", ());
    assert_eq!(
        cleanup, 1,
        "the cleanup callback did not run (or its state was rolled back)"
    );

    // The callee rejects; the callback traps the same way.
    expect_reject(
        update::<_, ()>(
            &r,
            a,
            "call_then_trap",
            (
                CallSpec::new(b, "trap", enc(("x".to_string(),))).bounded(true),
                78u64,
            ),
        ),
        RejectCode::CanisterError,
        "IC0503",
    );
    assert_eq!(get_heap(&r, a), 78);
    let cleanup: u64 = query_ok(&r, a, "cleanup_count", ());
    assert_eq!(cleanup, 2);
}

#[test]
fn submitted_calls_complete_through_rounds() {
    let r = Replica::new();
    let a = install_probe(&r);
    let b = install_probe(&r);
    let id1 = r
        .submit_call(
            a,
            user(),
            "call_other",
            enc((CallSpec::new(b, "whoami_update", enc(())),)),
        )
        .expect("submit");
    let id2 = r
        .submit_call(b, user(), "set_heap", enc((9u64,)))
        .expect("submit");
    assert_ne!(id1, id2);
    let out: CallOutcome = dec(&r.await_call(id1).expect("call_other"), "call_other");
    let caller: Principal = dec(out.reply(), "whoami_update");
    assert_eq!(caller, a);
    dec_args::<()>(&r.await_call(id2).expect("set_heap"), "set_heap");
    assert_eq!(get_heap(&r, b), 9);
}
