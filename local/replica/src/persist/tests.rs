//! Save → load round trips on a small wat canister with a heap counter, a mutable global and
//! stable memory written at arbitrary offsets.

use super::*;
use crate::InstallMode;

/// `write(offset u64 LE, bytes...)` writes stable memory (growing it as needed); `inc` bumps a
/// heap counter (address 0) and a mutable global; `read` replies heap counter ‖ global ‖ the
/// canister version the module saw at init (address 16, set by init/post_upgrade: 1 / 2).
pub(super) const WAT: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_arg_data_size" (func $arg_size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $arg_copy (param i32 i32 i32)))
  (import "ic0" "stable64_size" (func $ssize (result i64)))
  (import "ic0" "stable64_grow" (func $sgrow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (memory (export "memory") 48)
  (global $g (mut i32) (i32.const 0))
  (func (export "canister_init") (i32.store (i32.const 16) (i32.const 1)))
  (func (export "canister_post_upgrade") (i32.store (i32.const 16) (i32.const 2)))
  (func (export "canister_update inc")
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (global.set $g (i32.add (global.get $g) (i32.const 10)))
    (call $reply))
  (func (export "canister_update write") (local $off i64) (local $len i64) (local $end i64)
    (call $arg_copy (i32.const 1024) (i32.const 0) (call $arg_size))
    (local.set $off (i64.load (i32.const 1024)))
    (local.set $len (i64.extend_i32_u (i32.sub (call $arg_size) (i32.const 8))))
    (local.set $end (i64.add (local.get $off) (local.get $len)))
    (if (i64.gt_u (local.get $end) (i64.mul (call $ssize) (i64.const 65536)))
      (then (drop (call $sgrow (i64.sub (i64.div_u (i64.add (local.get $end) (i64.const 65535)) (i64.const 65536)) (call $ssize))))))
    (call $swrite (local.get $off) (i64.const 1032) (local.get $len))
    (call $reply))
  (func (export "canister_query read")
    (i32.store (i32.const 4) (global.get $g))
    (call $append (i32.const 0) (i32.const 8))
    (call $append (i32.const 16) (i32.const 4))
    (call $reply))
)
"#;

pub(super) fn setup() -> (Replica, Principal, Vec<u8>) {
    let r = Replica::new();
    let wasm = wat::parse_str(WAT).unwrap();
    let id = r.create_canister();
    r.add_cycles(id, 10_000_000_000_000);
    r.install_canister(id, wasm.clone(), vec![], None);
    (r, id, wasm)
}

pub(super) fn write(r: &Replica, id: Principal, offset: u64, data: &[u8]) {
    let mut arg = offset.to_le_bytes().to_vec();
    arg.extend_from_slice(data);
    r.update_call(id, Principal::anonymous(), "write", arg)
        .unwrap();
}

pub(super) fn read(r: &Replica, id: Principal) -> Vec<u8> {
    r.query_call(id, Principal::anonymous(), "read", vec![])
        .unwrap()
}

#[test]
fn save_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (r, id, _) = setup();
    let empty = r.create_canister(); // no module: must survive too
    for _ in 0..3 {
        r.update_call(id, Principal::anonymous(), "inc", vec![])
            .unwrap();
    }
    write(&r, id, 5, b"hello");
    // Far out: 3 GiB in, so the sparse file must not be 3 GiB on disk.
    write(&r, id, 3 << 30, b"far away");
    r.set_controllers(id, None, vec![Principal::anonymous(), empty])
        .unwrap();
    let rep = r.save_snapshot(dir.path()).unwrap();
    assert!(!rep.skipped);
    assert_eq!(rep.full_stable_writes, 2);
    assert_eq!(rep.full_pages_written, 2);

    let l = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(read(&l, id), read(&r, id));
    assert_eq!(read(&l, id)[..4], 3u32.to_le_bytes());
    assert_eq!(read(&l, id)[4..8], 30u32.to_le_bytes());
    // Compared sparsely: two 3 GiB copies would dominate the test's time.
    let (size, pages) = l.stable_memory_sparse(id);
    assert_eq!((size, pages.clone()), r.stable_memory_sparse(id));
    assert!(
        size > 3 << 30 && pages.len() == 2,
        "{size} bytes, pages {:?}",
        pages.keys()
    );
    assert_eq!(l.module_hash(id), r.module_hash(id));
    assert_eq!(l.cycle_balance(id), r.cycle_balance(id));
    assert_eq!(l.get_controllers(id), r.get_controllers(id));
    assert_eq!(l.root_key_der(), r.root_key_der());
    assert_eq!(l.get_time(), r.get_time());
    assert!(l.canister_exists(empty));
    assert_eq!(
        l.canister_status(id, None).unwrap(),
        r.canister_status(id, None).unwrap()
    );
    // New canisters do not reuse ids.
    let next_r = r.create_canister();
    let next_l = l.create_canister();
    assert_eq!(next_r, next_l);
    // Sparse: far less on disk than the 3 GiB address.
    let name = stable_name(&id, rep.seq);
    let meta = std::fs::metadata(dir.path().join(&name)).unwrap();
    assert!(meta.len() > 3 << 30);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert!(meta.blocks() * 512 < 16 << 20, "{} blocks", meta.blocks());
    }
}

#[test]
fn incremental_save_writes_only_dirty_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (r, id, _) = setup();
    // 40 pages of data.
    write(&r, id, 0, &vec![7u8; 40 * PAGE as usize / 2]);
    write(&r, id, 20 * PAGE, &vec![8u8; 40 * PAGE as usize / 2]);
    let first = r.save_snapshot(dir.path()).unwrap();
    assert_eq!(first.full_pages_written, 40);
    assert_eq!(first.dirty_pages_written, 0);

    // Unchanged: nothing written.
    let again = r.save_snapshot(dir.path()).unwrap();
    assert!(again.skipped);

    // Two pages touched (one write spanning a page boundary) + one far page.
    write(&r, id, 3 * PAGE - 2, b"abcd");
    write(&r, id, 100 * PAGE, b"z");
    let second = r.save_snapshot(dir.path()).unwrap();
    assert!(!second.skipped);
    assert_eq!(second.full_stable_writes, 0);
    assert_eq!(second.dirty_pages_written, 3);
    assert_eq!(second.seq, first.seq + 1);
    // The delta was applied and removed.
    assert!(!dir.path().join(delta_name(second.seq)).exists());

    let l = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(l.get_stable_memory(id), r.get_stable_memory(id));
    // The loaded replica is in sync with the directory: its next save is incremental too.
    write(&l, id, 0, b"x");
    let third = l.save_snapshot(dir.path()).unwrap();
    assert_eq!(third.dirty_pages_written, 1);
    assert_eq!(third.full_stable_writes, 0);
    let l2 = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(l2.get_stable_memory(id), l.get_stable_memory(id));
}

#[test]
fn upgrade_after_restore_keeps_stable_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (r, id, wasm) = setup();
    write(&r, id, 10, b"survives");
    r.update_call(id, Principal::anonymous(), "inc", vec![])
        .unwrap();
    r.save_snapshot(dir.path()).unwrap();
    let l = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(read(&l, id)[8..12], 1u32.to_le_bytes());
    l.install_code(InstallMode::Upgrade, id, wasm, vec![], None)
        .unwrap();
    // post_upgrade ran on the restored canister; the heap is fresh, stable memory kept.
    let after = read(&l, id);
    assert_eq!(after[8..12], 2u32.to_le_bytes());
    assert_eq!(after[..4], 0u32.to_le_bytes());
    assert_eq!(&l.get_stable_memory(id)[10..18], b"survives");
    // Updates keep working and are saved incrementally.
    l.update_call(id, Principal::anonymous(), "inc", vec![])
        .unwrap();
    let rep = l.save_snapshot(dir.path()).unwrap();
    assert_eq!(rep.full_stable_writes, 0);
    let l2 = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(read(&l2, id), read(&l, id));
}

#[test]
fn reinstall_forces_a_full_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let (r, id, wasm) = setup();
    write(&r, id, 0, &[1u8; 100]);
    write(&r, id, 5 * PAGE, &[2u8; 100]);
    r.save_snapshot(dir.path()).unwrap();
    r.install_code(InstallMode::Reinstall, id, wasm, vec![], None)
        .unwrap();
    write(&r, id, 0, b"new");
    let rep = r.save_snapshot(dir.path()).unwrap();
    assert_eq!(rep.full_stable_writes, 1);
    let l = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(l.get_stable_memory(id), r.get_stable_memory(id));
    assert_eq!(l.get_stable_memory(id).len(), PAGE as usize);
}

#[test]
fn crash_after_commit_is_repaired_from_the_delta() {
    let dir = tempfile::tempdir().unwrap();
    let (r, id, _) = setup();
    write(&r, id, 0, b"base");
    r.save_snapshot(dir.path()).unwrap();
    write(&r, id, 0, b"next");
    let rep = r.save_snapshot(dir.path()).unwrap();
    // Simulate a kill between the commit and the in-place apply: put the delta back, name it
    // pending, and tear the stable file.
    let mut m = read_manifest(dir.path()).unwrap().unwrap();
    let mut delta = Enc::default();
    delta.raw(DELTA_MAGIC);
    delta.u32(FORMAT_VERSION);
    delta.u64(rep.seq);
    delta.u64(1);
    delta.principal(&id);
    delta.u64(0);
    let mut page = r.get_stable_memory(id)[..PAGE as usize].to_vec();
    delta.raw(&page);
    write_atomic(dir.path(), &delta_name(rep.seq), &delta.seal()).unwrap();
    m.pending_delta = Some(rep.seq);
    write_manifest(dir.path(), &m).unwrap();
    let stable = dir
        .path()
        .join(stable_name(&id, m.canisters[0].stable_file));
    page[..4].copy_from_slice(b"torn");
    std::fs::write(&stable, &page[..10]).unwrap();

    let l = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(&l.get_stable_memory(id)[..4], b"next");
    assert!(read_manifest(dir.path())
        .unwrap()
        .unwrap()
        .pending_delta
        .is_none());
}

#[test]
fn corrupt_and_busy_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (r, id, _) = setup();
    r.save_snapshot(dir.path()).unwrap();
    let path = dir.path().join(MANIFEST);
    let mut b = std::fs::read(&path).unwrap();
    let n = b.len();
    b[n / 2] ^= 1;
    std::fs::write(&path, &b).unwrap();
    assert!(matches!(
        Replica::load_snapshot(dir.path()),
        Err(SnapshotError::Corrupt(_))
    ));
    // A queued message makes the replica busy.
    r.submit_call(id, Principal::anonymous(), "inc", vec![])
        .unwrap();
    assert!(matches!(
        r.save_snapshot(tempfile::tempdir().unwrap().path()),
        Err(SnapshotError::Busy)
    ));
    r.run_until_idle();
}

/// `canister_info` of `id` with all its kept changes.
fn info(r: &Replica, id: Principal) -> crate::management::CanisterInfo {
    r.lock().canister_info(id, Some(20)).unwrap()
}

#[test]
fn canister_history_survives_save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let (r, id, wasm) = setup(); // creation + install
    for _ in 0..3 {
        // Executions bump canister_version, not the history.
        r.update_call(id, Principal::anonymous(), "inc", vec![])
            .unwrap();
    }
    r.set_controllers(id, None, vec![Principal::anonymous()])
        .unwrap();
    r.upgrade_canister(id, wasm, vec![], Some(Principal::anonymous()))
        .unwrap();
    let before = info(&r, id);
    assert_eq!(before.total_num_changes, 4);
    assert_eq!(before.recent_changes.len(), 4);
    r.save_snapshot(dir.path()).unwrap();
    let l = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(info(&l, id), before);
    // The next change counts on from the saved history.
    l.set_controllers(
        id,
        Some(Principal::anonymous()),
        vec![Principal::anonymous()],
    )
    .unwrap();
    assert_eq!(info(&l, id).total_num_changes, 5);
    // A save that changed only the history is not skipped.
    assert!(!l.save_snapshot(dir.path()).unwrap().skipped);
    assert_eq!(
        info(&Replica::load_snapshot(dir.path()).unwrap(), id),
        info(&l, id)
    );
}

/// `fixtures/snapshot-v1/` was written by the replica of c0da222 (manifest format 1, before the
/// history was saved): one canister without a module whose controllers were set twice (3
/// changes, canister_version 2). It still loads; its history is unknown, so `canister_info`
/// counts from the version (3, no recent changes), and the next save writes format 2.
#[test]
fn a_format_1_snapshot_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshot-v1");
    for e in std::fs::read_dir(&fixture).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    assert_eq!(
        &std::fs::read(dir.path().join(MANIFEST)).unwrap()[8..12],
        &1u32.to_le_bytes()
    );
    let l = Replica::load_snapshot(dir.path()).unwrap();
    let id = Principal::from_text("rwlgt-iiaaa-aaaaa-aaaaa-cai").unwrap();
    assert_eq!(l.get_controllers(id), vec![Principal::anonymous()]);
    let old = info(&l, id);
    assert_eq!(old.total_num_changes, 3);
    assert!(old.recent_changes.is_empty());
    l.set_controllers(
        id,
        Some(Principal::anonymous()),
        vec![Principal::anonymous()],
    )
    .unwrap();
    l.save_snapshot(dir.path()).unwrap();
    assert_eq!(
        &std::fs::read(dir.path().join(MANIFEST)).unwrap()[8..12],
        &FORMAT_VERSION.to_le_bytes()
    );
    let again = info(&Replica::load_snapshot(dir.path()).unwrap(), id);
    assert_eq!(again.total_num_changes, 4);
    assert_eq!(again.recent_changes.len(), 1);
}
