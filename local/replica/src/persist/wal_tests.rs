//! The write-ahead log: acknowledged updates survive a crash (a replica dropped without a
//! save), a torn or corrupt last record is discarded, records replay in order, and a checkpoint
//! truncates the log.

use super::tests_support::{read, setup, write, WAT};
use super::wal::{frame, header, read_log, wal_files, wal_name, WalRecord};
use super::*;

fn inc(r: &Replica, id: Principal) {
    r.update_call(id, Principal::anonymous(), "inc", vec![])
        .unwrap();
}

/// A replica saved to `dir` with the log on.
fn logged(dir: &Path) -> (Replica, Principal) {
    let (r, id, _) = setup();
    inc(&r, id);
    r.save_snapshot(dir).unwrap();
    r.enable_wal(dir).unwrap();
    (r, id)
}

fn log_len(dir: &Path) -> u64 {
    wal_files(dir)
        .iter()
        .map(|(_, p)| fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn acknowledged_updates_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (r, id) = logged(dir.path());
    for _ in 0..4 {
        inc(&r, id);
    }
    write(&r, id, 70_000, b"first");
    write(&r, id, 70_000, b"later"); // same page twice: replay order decides
    write(&r, id, 5, b"hello");
    // A canister created and installed after the checkpoint: its module is in the log.
    let fresh = r.create_canister();
    r.add_cycles(fresh, 10_000_000_000_000);
    r.install_canister(fresh, wat::parse_str(WAT).unwrap(), vec![], None);
    write(&r, fresh, 0, b"new canister");
    let stats = r.wal_stats().unwrap();
    assert!(stats.records >= 7, "{stats:?}");
    let (want, want_stable) = (read(&r, id), r.get_stable_memory(id));
    let want_fresh = r.get_stable_memory(fresh);
    drop(r); // kill -9: no save

    let back = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(read(&back, id), want);
    assert_eq!(&want[..4], &5u32.to_le_bytes());
    assert_eq!(back.get_stable_memory(id), want_stable);
    assert_eq!(&want_stable[70_000..70_005], b"later");
    assert_eq!(back.get_stable_memory(fresh), want_fresh);
    assert_eq!(read(&back, fresh)[..4], 0u32.to_le_bytes());
    // Ids continue after the replayed ones.
    assert_ne!(back.create_canister(), fresh);
}

#[test]
fn a_torn_or_corrupt_last_record_is_discarded() {
    for damage in ["truncate", "flip"] {
        let dir = tempfile::tempdir().unwrap();
        let (r, id) = logged(dir.path());
        inc(&r, id);
        let before_last = log_len(dir.path());
        let want = read(&r, id);
        write(&r, id, 0, b"never acknowledged");
        drop(r);
        let (_, path) = wal_files(dir.path()).pop().unwrap();
        let len = fs::metadata(&path).unwrap().len();
        assert!(len > before_last);
        if damage == "truncate" {
            // The crash tore the last record anywhere inside it.
            let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(before_last + (len - before_last) / 2).unwrap();
        } else {
            let mut b = fs::read(&path).unwrap();
            b[before_last as usize + 40] ^= 1;
            fs::write(&path, b).unwrap();
        }
        let back = Replica::load_snapshot(dir.path()).unwrap();
        assert_eq!(read(&back, id), want, "{damage}");
        assert!(
            back.get_stable_memory(id).iter().all(|b| *b == 0),
            "{damage}"
        );
        // Logging again after the torn record: the tail is cut before the next append.
        back.enable_wal(dir.path()).unwrap();
        inc(&back, id);
        let want = read(&back, id);
        drop(back);
        let again = Replica::load_snapshot(dir.path()).unwrap();
        assert_eq!(read(&again, id), want, "{damage}");
    }
}

#[test]
fn records_round_trip_and_fail_their_checksum() {
    let rec = WalRecord {
        lsn: 7,
        time: 42,
        counters: [1, 2, 3, 4, 5],
        deleted: vec![Principal::anonymous()],
        canisters: Vec::new(),
    };
    let rec2 = WalRecord {
        lsn: 8,
        ..rec.clone()
    };
    let mut file = header(9, 3);
    file.extend(frame(&rec.encode()));
    file.extend(frame(&rec2.encode()));
    let (got, valid) = read_log(&file, 9, 3).unwrap();
    assert_eq!(got, vec![rec.clone(), rec2]);
    assert_eq!(valid, file.len() as u64);
    // Another store's or checkpoint's log is refused, not replayed.
    assert!(read_log(&file, 10, 3).is_err());
    assert!(read_log(&file, 9, 4).is_err());
    // A flipped bit in the last record: only the first is valid.
    let mut bad = file.clone();
    let n = bad.len();
    bad[n - 40] ^= 0x80;
    let (got, _) = read_log(&bad, 9, 3).unwrap();
    assert_eq!(got, vec![rec]);
    // A header torn at creation: no records.
    assert_eq!(read_log(&file[..10], 9, 3).unwrap().0, vec![]);
}

#[test]
fn answers_wait_for_the_log_and_a_checkpoint_truncates_it() {
    let dir = tempfile::tempdir().unwrap();
    let (r, id) = logged(dir.path());
    let seq0 = read_manifest(dir.path()).unwrap().unwrap().seq;
    let m = r
        .submit_call(id, Principal::anonymous(), "inc", vec![])
        .unwrap();
    r.tick();
    // Answered in the round, and the record was written before the answer was visible.
    let records = r.wal_stats().unwrap().records;
    assert_eq!(records, 1);
    assert!(r.await_call(m).is_ok());
    assert!(dir.path().join(wal_name(seq0)).is_file());
    // A checkpoint: later records go to the new checkpoint's log, the old log is deleted.
    let rep = r.save_snapshot(dir.path()).unwrap();
    assert!(!dir.path().join(wal_name(seq0)).exists());
    inc(&r, id);
    assert!(dir.path().join(wal_name(rep.seq)).is_file());
    let want = read(&r, id);
    drop(r);
    let back = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(read(&back, id), want);
    assert_eq!(&want[..4], &3u32.to_le_bytes());
}

#[test]
fn a_save_interrupted_after_its_capture_loses_no_record() {
    // The capture of save S+1 rotates the log to wal-<S+1>; a crash before its manifest
    // commits leaves manifest S: both logs replay.
    let dir = tempfile::tempdir().unwrap();
    let (r, id) = logged(dir.path());
    inc(&r, id);
    let m = read_manifest(dir.path()).unwrap().unwrap();
    r.lock().wal.as_mut().unwrap().rotate(m.seq + 1).unwrap();
    inc(&r, id);
    write(&r, id, 1, b"x");
    let want = read(&r, id);
    drop(r);
    assert_eq!(wal_files(dir.path()).len(), 2);
    let back = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(read(&back, id), want);
    assert_eq!(back.get_stable_memory(id)[1], b'x');
}

#[test]
fn canister_history_replays_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (r, id) = logged(dir.path());
    r.set_controllers(id, None, vec![Principal::anonymous()])
        .unwrap();
    r.upgrade_canister(
        id,
        wat::parse_str(WAT).unwrap(),
        vec![],
        Some(Principal::anonymous()),
    )
    .unwrap();
    let fresh = r.create_canister();
    // The replica's API changes nothing by itself on the log: the next round logs them.
    r.tick();
    let want = r.lock().canister_info(id, Some(20)).unwrap();
    let want_fresh = r.lock().canister_info(fresh, Some(20)).unwrap();
    assert_eq!(want.total_num_changes, 4);
    drop(r); // kill -9: no save

    let back = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(back.lock().canister_info(id, Some(20)).unwrap(), want);
    assert_eq!(
        back.lock().canister_info(fresh, Some(20)).unwrap(),
        want_fresh
    );
}

/// A log written in format 1 (before the history was logged) replays, and is rewritten in the
/// current format before a record is appended to it.
#[test]
fn a_format_1_log_replays_and_is_upgraded_before_appending() {
    let dir = tempfile::tempdir().unwrap();
    let (r, id) = logged(dir.path());
    inc(&r, id);
    inc(&r, id);
    let want = read(&r, id);
    drop(r);
    // Turn the log into format 1: version 1 header, records without the history field.
    let (seq, path) = wal_files(dir.path()).pop().unwrap();
    let buf = fs::read(&path).unwrap();
    let m = super::read_manifest(dir.path()).unwrap().unwrap();
    let (records, _) = read_log(&buf, m.store_id, seq).unwrap();
    assert_eq!(records.len(), 2);
    let mut v1 = header(m.store_id, seq);
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    for mut rec in records {
        for c in &mut rec.canisters {
            c.record.history = None;
        }
        let mut body = rec.encode();
        // Format 1 has no history tag: drop the `0` byte that follows each canister record.
        let mut e = super::codec::Enc::default();
        rec.canisters[0].record.encode(&mut e);
        let end = body.windows(e.0.len()).position(|w| w == &e.0[..]).unwrap() + e.0.len();
        assert_eq!(body.remove(end - 1), 0);
        v1.extend_from_slice(&frame(&body));
    }
    fs::write(&path, &v1).unwrap();

    let back = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(read(&back, id), want);
    back.enable_wal(dir.path()).unwrap();
    inc(&back, id);
    let want = read(&back, id);
    drop(back);
    let back = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(read(&back, id), want);
    assert_eq!(&fs::read(&path).unwrap()[8..12], &2u32.to_le_bytes());
}
