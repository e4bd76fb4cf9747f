//! Rollback and persistence.

use canvid_replica::{RejectCode, Replica};
use serde_bytes::ByteBuf;

use crate::support::*;

#[test]
fn update_trap_rolls_back_heap_and_stable_memory() {
    let r = Replica::new();
    let c = install_probe(&r);
    update_unit(&r, c, "set_heap", (5u64,));
    update_unit(
        &r,
        c,
        "write_stable",
        (0u64, ByteBuf::from(vec![9u8, 9, 9])),
    );
    let pages: u64 = query_ok(&r, c, "stable_pages", ());
    let stable_before = r.get_stable_memory(c);

    let e = expect_reject(
        update::<_, ()>(
            &r,
            c,
            "write_then_trap",
            (7u64, 0u64, ByteBuf::from(vec![1u8, 2, 3])),
        ),
        RejectCode::CanisterError,
        "IC0503",
    );
    assert!(e.reject_message.contains("write_then_trap"), "{e}");
    assert_eq!(
        get_heap(&r, c),
        5,
        "heap change of a trapped message persisted"
    );
    assert_eq!(
        read_stable(&r, c, 0, 3),
        vec![9, 9, 9],
        "stable write of a trapped message persisted"
    );

    // A trapped message that grew stable memory (10 MiB further) leaves the size unchanged.
    expect_reject(
        update::<_, ()>(
            &r,
            c,
            "write_then_trap",
            (8u64, 10 * MIB as u64, ByteBuf::from(vec![1u8])),
        ),
        RejectCode::CanisterError,
        "IC0503",
    );
    let pages_after: u64 = query_ok(&r, c, "stable_pages", ());
    assert_eq!(
        pages_after, pages,
        "stable_grow of a trapped message persisted"
    );
    assert_eq!(r.get_stable_memory(c), stable_before);
    assert_eq!(get_heap(&r, c), 5);
}

#[test]
fn wasm_trap_is_reported_as_canister_trapped() {
    let r = Replica::new();
    let c = install_probe(&r);
    update_unit(&r, c, "set_heap", (3u64,));
    expect_reject(
        update::<_, ()>(&r, c, "wasm_trap", ()),
        RejectCode::CanisterError,
        "IC0502",
    );
    // The canister keeps working after a wasm trap (its shadow stack etc. restored).
    assert_eq!(get_heap(&r, c), 3);
    update_unit(&r, c, "set_heap", (4u64,));
    assert_eq!(get_heap(&r, c), 4);
}

#[test]
fn query_state_changes_never_persist() {
    let r = Replica::new();
    let c = install_probe(&r);
    update_unit(&r, c, "set_heap", (1u64,));

    // The query sees its own write...
    let seen: u64 = query_ok(&r, c, "query_that_writes", (42u64,));
    assert_eq!(seen, 42);
    // ...which is discarded afterwards (heap and stable memory).
    assert_eq!(get_heap(&r, c), 1);
    assert_eq!(read_stable(&r, c, 0, 8), vec![0u8; 8]);

    // A query method called as an update (replicated query) does not persist either.
    let seen: u64 = update_ok(&r, c, "query_that_writes", (43u64,));
    assert_eq!(seen, 43);
    assert_eq!(get_heap(&r, c), 1);
    assert_eq!(read_stable(&r, c, 0, 8), vec![0u8; 8]);
}

#[test]
fn explicit_reject_commits_state() {
    let r = Replica::new();
    let c = install_probe(&r);
    update_unit(&r, c, "set_heap", (10u64,));
    let e = expect_reject(
        update::<_, ()>(&r, c, "reject_explicitly", ("nope".to_string(),)),
        RejectCode::CanisterReject,
        "IC0406",
    );
    assert_eq!(e.reject_message, "nope");
    // msg_reject is a response, not a trap: the message's state changes are committed.
    assert_eq!(get_heap(&r, c), 11);
}
