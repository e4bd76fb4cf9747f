//! Upgrades.

use candid::Principal;
use canvid_replica::{CanisterStatusKind, InstallMode, RejectCode, Replica};
use serde_bytes::ByteBuf;

use crate::support::*;

#[test]
fn upgrade_keeps_stable_memory_and_runs_hooks_in_order() {
    let r = Replica::new();
    let c = install_probe(&r);
    assert_eq!(hook_log(&r, c), "init;");
    update_unit(&r, c, "set_heap", (11u64,));
    update_unit(
        &r,
        c,
        "write_stable",
        (100u64, ByteBuf::from(b"keep me".to_vec())),
    );
    let version_before: u64 = query_ok(&r, c, "canister_version", ());

    let v2 = probe_variant("upgrade-order");
    r.upgrade_canister(c, v2.clone(), Vec::new(), None)
        .expect("upgrade");

    assert_eq!(hook_log(&r, c), "init;pre_upgrade;post_upgrade;");
    assert_eq!(read_stable(&r, c, 100, 7), b"keep me".to_vec());
    assert_eq!(
        get_heap(&r, c),
        0,
        "the heap must be fresh after an upgrade"
    );
    let saved: u64 = query_ok(&r, c, "saved_heap", ());
    assert_eq!(saved, 11, "pre_upgrade did not run against the old heap");
    assert_eq!(r.module_hash(c), Some(sha256(&v2)));
    let version_after: u64 = query_ok(&r, c, "canister_version", ());
    assert!(version_after > version_before);

    // Reinstall wipes stable memory and runs init only. (A round first: installing a module
    // compiled for the first time leaves an install_code debit, IC0209 until it has passed.)
    r.tick();
    r.reinstall_canister(c, probe_wasm(), Vec::new(), None)
        .expect("reinstall");
    assert_eq!(hook_log(&r, c), "init;");
    assert_eq!(read_stable(&r, c, 100, 7), vec![0u8; 7]);
    assert_eq!(r.module_hash(c), Some(sha256(&probe_wasm())));
}

#[test]
fn failed_upgrade_leaves_the_canister_untouched() {
    let r = Replica::new();
    let c = install_probe(&r);
    update_unit(&r, c, "set_heap", (21u64,));
    update_unit(
        &r,
        c,
        "write_stable",
        (0u64, ByteBuf::from(b"old state".to_vec())),
    );
    let hash = r.module_hash(c);
    let stable = r.get_stable_memory(c);
    let status = r.canister_status(c, None).expect("status");

    let v2 = probe_variant("failing-upgrade");
    let e = expect_reject(
        r.upgrade_canister(c, v2.clone(), b"trap".to_vec(), None),
        RejectCode::CanisterError,
        "IC0503",
    );
    assert!(
        e.reject_message.contains("post_upgrade asked to trap"),
        "{e}"
    );

    assert_eq!(
        r.module_hash(c),
        hash,
        "module replaced by a failed upgrade"
    );
    assert_eq!(
        r.get_stable_memory(c),
        stable,
        "stable memory changed by a failed upgrade"
    );
    assert_eq!(get_heap(&r, c), 21, "heap of the old instance lost");
    assert_eq!(
        hook_log(&r, c),
        "init;",
        "hook log of the failed upgrade persisted"
    );
    let after = r.canister_status(c, None).expect("status");
    assert_eq!(after.canister_version, status.canister_version);
    assert_eq!(after.status, CanisterStatusKind::Running);
    // The old code still answers updates.
    update_unit(&r, c, "set_heap", (22u64,));
    assert_eq!(get_heap(&r, c), 22);

    // A failing init leaves a fresh canister empty; a later install works.
    let fresh = r.create_canister();
    r.add_cycles(fresh, PROBE_CYCLES);
    expect_reject(
        r.install_code(
            InstallMode::Install,
            fresh,
            probe_wasm(),
            b"trap".to_vec(),
            None,
        ),
        RejectCode::CanisterError,
        "IC0503",
    );
    assert_eq!(r.module_hash(fresh), None);
    r.install_code(InstallMode::Install, fresh, probe_wasm(), Vec::new(), None)
        .expect("install after a failed init");
    assert_eq!(hook_log(&r, fresh), "init;");
}

#[test]
fn install_mode_install_on_non_empty_canister_is_refused() {
    let r = Replica::new();
    let c = install_probe(&r);
    update_unit(&r, c, "set_heap", (5u64,));
    expect_reject(
        r.install_code(InstallMode::Install, c, probe_wasm(), Vec::new(), None),
        RejectCode::CanisterError,
        "IC0514",
    );
    assert_eq!(get_heap(&r, c), 5);
}

#[test]
fn gzip_compressed_module_installs() {
    let r = Replica::new();
    let wasm = probe_wasm();
    let gz = gzip(&wasm);
    assert!(gz.len() < wasm.len());
    let c = r.create_canister();
    r.add_cycles(c, PROBE_CYCLES);
    r.install_code(InstallMode::Install, c, gz, Vec::new(), None)
        .expect("gzip install");
    assert_eq!(hook_log(&r, c), "init;");
    // An upgrade with a gzip module works as well (after a round: install_code rate limiting).
    r.tick();
    let gz_variant = gzip(&probe_variant("gz"));
    r.upgrade_canister(c, gz_variant.clone(), Vec::new(), None)
        .expect("gzip upgrade");
    assert_eq!(hook_log(&r, c), "init;pre_upgrade;post_upgrade;");

    // Garbage after the gzip magic is refused.
    let d = r.create_canister();
    r.add_cycles(d, PROBE_CYCLES);
    let mut bad = vec![0x1f, 0x8b, 0x08];
    bad.extend_from_slice(&[0u8; 64]);
    let e = r
        .install_code(InstallMode::Install, d, bad, Vec::new(), None)
        .expect_err("corrupt gzip installed");
    assert_eq!(e.reject_code, RejectCode::CanisterError, "{e}");
    assert_eq!(r.module_hash(d), None);

    // The IC hashes the module as supplied: "for canisters with gzipped wasm module, the module
    // hash is computed on the compressed module" (dfinity/interface-spec#102).
    assert_eq!(r.module_hash(c), Some(sha256(&gz_variant)));
}

#[test]
fn module_cache_compiles_each_module_once() {
    let r = Replica::new();
    let start = std::time::Instant::now();
    let mut canisters = Vec::new();
    for _ in 0..20 {
        canisters.push(install_probe(&r));
    }
    assert_eq!(
        r.compiled_modules(),
        1,
        "the same module was compiled more than once"
    );
    // A gzip of the same module is the same module.
    let g = r.create_canister();
    r.add_cycles(g, PROBE_CYCLES);
    r.install_canister(g, gzip(&probe_wasm()), Vec::new(), None);
    assert_eq!(r.compiled_modules(), 1);
    let v = r.create_canister();
    r.add_cycles(v, PROBE_CYCLES);
    r.install_canister(v, probe_variant("cache"), Vec::new(), None);
    assert_eq!(r.compiled_modules(), 2);
    for c in canisters.iter().chain([&g, &v]) {
        assert_eq!(hook_log(&r, *c), "init;");
        let me: Principal = query_ok(&r, *c, "self_id", ());
        assert_eq!(me, *c);
    }
    eprintln!("22 installs + checks took {:?}", start.elapsed());
}
