//! Where the embedded replica must behave as the IC does, checked on both backends: system
//! behaviour canvid's canisters rely on but that none of the product scenarios pins down alone.

use std::time::Duration;

use canvid_tests::deploy::T;
use canvid_tests::{backend_tests, principal, wasm, Backend, BackendExt, Principal};

/// Queries (and `inspect_message`) run on the latest state, at its time: a clock moved with
/// `advance_time` applies from the next round. The video canister's HTTP update budget
/// (`inspect_message` counts by minute) depends on it.
fn queries_see_the_time_of_the_last_round(b: &dyn Backend) {
    let ctl = principal("fidelity-controller");
    let id = b.create_canister(Some(ctl), Some(vec![ctl]), 10 * T);
    b.install(
        id,
        wasm::load("replica-probe"),
        candid::encode_args(()).expect("()"),
        Some(ctl),
    )
    .unwrap_or_else(|e| panic!("install: {e}"));
    let time = || -> u64 {
        b.query(id, Principal::anonymous(), "time", ())
            .map(|(t,): (u64,)| t)
            .unwrap_or_else(|e| panic!("time: {e}"))
    };
    b.tick();
    let before = time();
    b.advance_time(Duration::from_secs(3_600));
    assert_eq!(
        time(),
        before,
        "{}: the clock applies from the next round",
        b.name()
    );
    b.tick();
    let after = time();
    assert!(
        after >= before + 3_600_000_000_000,
        "{}: after a round the query sees the moved clock ({before} -> {after})",
        b.name()
    );
}

backend_tests!(queries_see_the_time_of_the_last_round);
