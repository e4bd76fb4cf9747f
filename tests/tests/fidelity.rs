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

/// A timer armed in `post_upgrade` fires: the IC deactivates the global timer *before* the
/// upgrade runs, so `post_upgrade` can arm it again (what ic-cdk-timers users, and the video
/// canister's notification retry, rely on). Found by `properties_spawn.rs` (seed 1): the
/// embedded replica cleared the timer *after* `post_upgrade`, losing it, so a video upgraded by
/// `upgrade_videos` with an index notification pending never sent it again.
fn a_timer_armed_in_post_upgrade_fires(b: &dyn Backend) {
    let owner = principal("fidelity-owner");
    // An index that does not exist: every notification fails and stays pending.
    let index = Principal::from_slice(&[0, 0, 0, 0, 0, 0xFF, 0xF0, 0x01, 0x01, 0x01]);
    let v = canvid_tests::deploy::standalone_video(b, owner, Some(index), 10 * T);
    canvid_tests::clients::ok(
        "change_owner",
        v.change_owner(owner, principal("fidelity-new")),
    );
    let attempts = || {
        v.canister_info()
            .pending_index_notification
            .map(|p| p.attempts)
    };
    assert_eq!(
        attempts(),
        Some(1),
        "{}: the notification failed once",
        b.name()
    );
    let new_owner = principal("fidelity-new");
    b.upgrade(
        v.id,
        wasm::video_gz(),
        candid::encode_args(()).unwrap(),
        Some(new_owner),
    )
    .unwrap_or_else(|e| panic!("{}: upgrade: {e}", b.name()));
    // post_upgrade arms a zero-delay timer that sends the notification again.
    for _ in 0..5 {
        b.tick();
    }
    assert_eq!(
        attempts(),
        Some(2),
        "{}: the timer post_upgrade armed did not fire",
        b.name()
    );
}

backend_tests!(
    queries_see_the_time_of_the_last_round,
    a_timer_armed_in_post_upgrade_fires
);
