//! Reject codes.

use candid::Principal;
use canvid_replica::{RejectCode, Replica};

use crate::support::*;

#[test]
fn ingress_reject_codes() {
    let r = Replica::new();
    let c = install_probe(&r);

    expect_reject(
        r.update_call(missing_canister(), user(), "whoami", enc(())),
        RejectCode::DestinationInvalid,
        "IC0301",
    );
    expect_reject(
        r.query_call(missing_canister(), user(), "whoami", enc(())),
        RejectCode::DestinationInvalid,
        "IC0301",
    );
    expect_reject(
        r.update_call(c, user(), "no_such_method", enc(())),
        RejectCode::CanisterError,
        "IC0536",
    );
    expect_reject(
        r.query_call(c, user(), "no_such_query", enc(())),
        RejectCode::CanisterError,
        "IC0536",
    );
    let e = expect_reject(
        update::<_, ()>(&r, c, "trap", ("boom 17".to_string(),)),
        RejectCode::CanisterError,
        "IC0503",
    );
    assert!(e.reject_message.contains("boom 17"), "{e}");
    expect_reject(
        update::<_, ()>(&r, c, "no_reply", ()),
        RejectCode::CanisterError,
        "IC0506",
    );

    // A canister without a module.
    let empty = r.create_canister();
    r.add_cycles(empty, PROBE_CYCLES);
    expect_reject(
        r.update_call(empty, user(), "whoami", enc(())),
        RejectCode::CanisterError,
        "IC0537",
    );
}

#[test]
fn inter_canister_reject_codes() {
    let r = Replica::new();
    let a = install_probe(&r);
    let b = install_probe(&r);

    for bounded in [false, true] {
        // Reply: the callee sees the calling canister as caller.
        let out = call_other(
            &r,
            a,
            CallSpec::new(b, "whoami_update", enc(())).bounded(bounded),
        );
        let caller: Principal = dec(out.reply(), "whoami_update");
        assert_eq!(caller, a, "bounded={bounded}");

        let out = call_other(
            &r,
            a,
            CallSpec::new(missing_canister(), "whoami", enc(())).bounded(bounded),
        );
        assert_eq!(
            out.reject().0,
            RejectCode::DestinationInvalid as u32,
            "bounded={bounded}: {out:?}"
        );

        let out = call_other(
            &r,
            a,
            CallSpec::new(b, "trap", enc(("deep trap".to_string(),))).bounded(bounded),
        );
        let (code, msg) = out.reject();
        assert_eq!(code, RejectCode::CanisterError as u32, "bounded={bounded}");
        assert!(msg.contains("deep trap"), "{msg}");

        let out = call_other(
            &r,
            a,
            CallSpec::new(b, "no_such_method", enc(())).bounded(bounded),
        );
        assert_eq!(
            out.reject().0,
            RejectCode::CanisterError as u32,
            "bounded={bounded}: {out:?}"
        );

        let out = call_other(
            &r,
            a,
            CallSpec::new(b, "reject_explicitly", enc(("go away".to_string(),))).bounded(bounded),
        );
        assert_eq!(
            out.reject(),
            (RejectCode::CanisterReject as u32, "go away"),
            "bounded={bounded}"
        );
    }
    // The callee's explicit rejects committed (two calls above).
    assert_eq!(get_heap(&r, b), 2);
}
