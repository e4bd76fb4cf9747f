//! Persistence: save the whole replica to a directory and load it back. The saved directory is
//! called a *snapshot* of the replica below; it has nothing to do with the IC's canister
//! snapshots (not implemented).
//!
//! [`Replica::save_snapshot`] writes what a restarted replica needs to answer exactly as before:
//! every canister (module, heap, mutable globals, stable memory, cycles, controllers, settings,
//! status, certified data, global timer, versions, the `canister_info` history), the id counters, the time and the seed of
//! the root/node keys (so the root key agents trust survives a restart).
//! [`Replica::load_snapshot`] builds a replica from it.
//!
//! A snapshot is taken only when the replica is **quiescent**: no queued message, no open call
//! context, no outstanding callback (an in-flight inter-canister call cannot be resumed from
//! bytes). A busy replica answers [`SnapshotError::Busy`]; the caller retries after a round.
//!
//! ## Large stable memories
//! A canister may hold hundreds of GiB of stable memory, so a save never rewrites it: the
//! replica tracks the 64 KiB pages written since the last save ([`crate::memory`]), and a save
//! writes only those. Each canister's stable memory is one *sparse* file whose byte `i` is stable
//! byte `i` (pages never written are holes and take no disk space; the file may be shorter than
//! the memory: the rest reads as zeros). Heaps are small and saved whole, content-addressed by
//! their SHA-256 (an unchanged heap is not written again); modules likewise.
//!
//! ## Files (all integers little-endian)
//! ```text
//! DIR/manifest.bin                  the snapshot (below); replaced atomically (temp + rename)
//! DIR/wasm-<sha256 hex>.wasm        a decompressed module, by its SHA-256
//! DIR/heap-<sha256 hex>.bin         a wasm heap, by its SHA-256
//! DIR/stable-<canister hex>-<seq>.bin  a canister's stable memory (sparse), created by save <seq>
//! DIR/delta-<seq>.bin               pages of save <seq> not yet applied to the stable files
//! DIR/wal-<seq>.log                 write-ahead log: what happened after save <seq> (below)
//! ```
//! `<canister hex>` is the hex of the principal's bytes. Files with a `.tmp` suffix are
//! unfinished writes and are deleted on the next save or load.
//!
//! ### manifest.bin (format version 2; version 1 still loads)
//! ```text
//! 8    magic "CVIDSNAP"
//! 4    u32 format version (2)
//! 16   u128 store id (random per directory lineage; see "incremental saves")
//! 8    u64 seq (number of this save; increases by 1 per save)
//! 1+8  pending delta: u8 0 = none | 1 followed by u64 seq of DIR/delta-<seq>.bin
//! 32   fingerprint of the replica state (a save with an unchanged fingerprint is skipped)
//! 8    u64 time (ns since the Unix epoch)
//! 8×5  u64 next_canister, next_msg, next_ctx, next_cb, rng_counter
//! 32   keys seed (`Keys::from_seed`)
//! 4    u32 number of canisters, then per canister:
//!        1+n  principal: u8 length n, n bytes
//!        1    status: 0 running, 1 stopping, 2 stopped
//!        8    u64 generation (callbacks of an older generation are dropped)
//!        8    u64 canister_version
//!        16   u128 cycle balance
//!        8    u64 freezing threshold (s)      8  u64 wasm_memory_limit (bytes)
//!        8    u64 global timer (ns, 0 = unset)
//!        4+n  certified data: u32 length, bytes
//!        4    u32 number of controllers, then each a principal (u8 length, bytes)
//!        1    module: 0 = none | 1 followed by
//!               32  SHA-256 of the module as installed (the module_hash the IC reports)
//!               32  SHA-256 of the decompressed module (file wasm-<hex>.wasm)
//!               8   u64 heap length in bytes     32 SHA-256 of the heap (file heap-<hex>.bin;
//!                                                   absent when the length is 0)
//!               4   u32 number of mutable globals (export order of the module rewrite), each
//!                   1 type (0 i32, 1 i64, 2 f32, 3 f64) + 8 bytes (the value's bits, zero-extended)
//!        8    u64 stable memory size in 64 KiB pages
//!        8    u64 seq of its stable file stable-<canister hex>-<seq>.bin
//!        1    history (format 2 only): 0 = unknown | 1 followed by
//!               8   u64 total_num_changes
//!               4   u32 number of recent changes (oldest first, at most 20), each
//!                   4+n u32 length + the candid encoding of the spec's `change` record
//! 32   SHA-256 of all preceding bytes (a torn or altered manifest is refused)
//! ```
//! Format 1 (before the history was saved) has no history byte: its canisters' histories load
//! as unknown, and `canister_info` then counts from `canister_version` + 1 (never less than any
//! count it returned before) with no recent changes. `fixtures/snapshot-v1/` is a format-1
//! snapshot written by that code (`persist::tests::a_format_1_snapshot_still_loads`). Without
//! the history, `canvid serve` restarted with `total_num_changes` reset to that estimate, which
//! the index canister's owner-report ordering (M4) reads.
//!
//! ### `delta-<seq>.bin`
//! ```text
//! 8    magic "CVIDDLTA"    4 u32 format version (1)    8 u64 seq
//! 8    u64 number of records, then per record:
//!        1+n principal (u8 length, bytes)   8 u64 page index   65536 page content
//! 32   SHA-256 of all preceding bytes
//! ```
//!
//! ### Write-ahead log: `wal-<seq>.log`
//! A redo log of *state deltas*, one record per call-quiescent round (below), after checkpoint
//! (snapshot) `<seq>`. Replaying re-applies bytes; nothing is re-executed (the replica takes its
//! clock from the wall clock, so re-execution would not be deterministic).
//! ```text
//! header (36 bytes, written and fsync'd when the file is created):
//! 8    magic "CVIDWAL1"    4 u32 format version (2; 1 still replays)    16 u128 store id    8 u64 seq
//! then records, each:
//! 4    u32 body length n
//! n    body:
//!        8    u64 lsn (1, 2, ... within the file)
//!        8    u64 time (ns)
//!        8×5  u64 next_canister, next_msg, next_ctx, next_cb, rng_counter
//!        4    u32 number of deleted canisters, each a principal (u8 length, bytes)
//!        4    u32 number of changed canisters, then per canister:
//!               the canister record exactly as in manifest.bin of the same format version
//!               (heap SHA-256 and stable-file seq are zero: unused here; format 2 includes the
//!               history, so a change of `canister_info`'s history is logged)
//!               1    module: 0 = unchanged | 1 followed by u64 length + the decompressed module
//!               4    u32 number of changed heap pages, each: u64 page index (64 KiB pages),
//!                    u32 length (65536, or less for the last page), the bytes
//!               1    stable reset: 1 = the stable memory was replaced (new canister, reinstall):
//!                    start from zeros | 0
//!               4    u32 number of stable pages, each: u64 page index, 65536 bytes
//! 32   SHA-256 of the 4 length bytes and the body
//! ```
//! **When a record is written.** After a round, if something changed (an ingress answer is waiting,
//! a stable page was written, a canister was created or deleted) and the replica is
//! *call-quiescent* — no open call context and no outstanding callback, i.e. every call tree
//! started so far has finished — the changes since the previous record are appended and the file
//! is fsync'd (`fdatasync`), under the replica's lock. Only then are the ingress answers of the
//! rounds since the previous record made visible (`request_status`, the synchronous v3/v4 call,
//! `await_call`): until then they are held by the log. Answers of a round that ends with a call
//! still in flight wait until its call tree completes, so a record never holds a half-done
//! inter-canister call (which could not be resumed from bytes). Rounds that only moved the clock or
//! ran queries write nothing. Heap pages are diffed against the log's copy of each heap; stable
//! pages come from a second dirty set of [`StableMemory`] that the snapshot's does not disturb.
//!
//! A format-1 log (written before the history was logged) replays; before a record is appended
//! to it, it is rewritten (atomically) as format 2.
//!
//! **Checkpoints.** A save's capture (under the lock) switches the log to `wal-<new seq>.log`; once
//! its manifest commits, the logs of earlier seqs are deleted. A crash between the capture and the
//! commit leaves manifest `S` plus `wal-S.log` and `wal-<S+1>.log`: both replay.
//!
//! **Loading** (`load_snapshot`): the manifest's state, then every `wal-<k>.log` with `k >= seq`
//! in order of `k`, each up to its first record that is incomplete or fails its checksum (a record
//! torn by a crash: its answers were never released, so nothing acknowledged is in it). A log whose
//! header names another store id or seq is refused. [`Replica::enable_wal`] then cuts a torn tail
//! before appending further; `canvid serve` saves a checkpoint first.
//!
//! **Limits.** The fsync happens under the replica's lock (queries wait for it). Answers wait
//! for a call-quiescent round: traffic that keeps inter-canister calls overlapping without a
//! break would hold them back (agents poll on; the embedded workload — uploads, transfers — has
//! such breaks after every call tree). The heap is logged by 64 KiB pages that changed, so an
//! update that rewrites its argument buffer on the heap logs it twice (heap and stable).
//!
//! ## A save, step by step
//! 1. Under the replica's lock: check quiescence, compute the fingerprint, copy heaps, globals,
//!    metadata and the *dirty* stable pages (only those) — the lock is then released.
//! 2. Write missing module and heap files (temp, fsync, rename).
//! 3. Canisters whose stable memory is not in sync with this directory (new, reinstalled, or the
//!    directory is new) get a fresh sparse file `stable-<id>-<seq>.bin` with every allocated page.
//! 4. The dirty pages of the others go to `delta-<seq>.bin` (fsync).
//! 5. The manifest naming the delta as *pending* replaces the old one (temp, fsync, rename,
//!    fsync of the directory). **This rename is the commit point.**
//! 6. The delta is applied to the stable files in place (fsync), the manifest is rewritten
//!    without the pending delta, and unreferenced files are deleted.
//!
//! Loading applies a pending delta first (applying it twice writes the same bytes), so a crash in
//! step 6 loses nothing.
//!
//! ## Guarantees
//! * A `kill -9` (or power loss, given a file system that honours fsync) at any moment leaves
//!   the directory loadable as **the last save whose manifest rename completed**: a torn write
//!   before the commit point is ignored (temp files, unreferenced files), a torn write after it is
//!   repaired from the delta.
//! * Without the write-ahead log, what is lost is everything executed after that save —
//!   messages answered since, canisters created since. With periodic saves every `T` seconds a
//!   kill loses at most the last `T` seconds. A clean stop (Ctrl-C, SIGTERM in `canvid serve`)
//!   saves first and loses nothing.
//! * With the write-ahead log ([`Replica::enable_wal`]), nothing whose answer was visible is
//!   lost: the answer is released only after the record holding its effects is fsync'd.
//!   What may be lost is work whose answer was not visible yet (messages queued or executing,
//!   call trees in flight); it is lost whole, never half-applied.
//! * Not saved: the ingress history (request statuses agents poll: a call in flight at the kill
//!   is gone, the agent times out and the client retries; a loaded replica starts with an empty
//!   history, so replies dropped by the retention rules of [`crate::ingress_api`] cannot come
//!   back, and pruning does not change the fingerprint), debug logs, compiled-module caches
//!   (recompiled on load), the replica's configurable limits.
//! * A canister's funcref table is rebuilt from the module's element segments: a module that
//!   changes its table at run time (`table.set`/`table.grow`, which Rust canisters do not emit)
//!   is not restored faithfully.
//!
//! ## Incremental saves
//! A stable memory remembers the (store id, seq) of the snapshot it was last saved to
//! ([`StableMemory::synced_with`]); only when that matches the directory's manifest are just the
//! dirty pages written. A save to another directory, a failed save (its seq never commits) or a
//! reinstalled canister therefore falls back to writing the whole memory once — never wrong,
//! only slower.

use std::fs::{self, File};
use std::path::Path;

use candid::Principal;
use sha2::{Digest, Sha256};

use crate::keys::Keys;
use crate::memory::PAGE;
use crate::Replica;
use capture::{capture, fingerprint, is_quiescent, new_store_id};
use codec::Enc;
use files::{
    collect_garbage, delta_name, finish_pending, heap_name, read_manifest, stable_name, wasm_name,
    write_atomic, write_manifest, write_pages,
};
use restore::restore_canister;

mod capture;
mod codec;
mod files;
mod manifest;
mod restore;
pub(crate) mod wal;

pub use wal::WalStats;

const MANIFEST: &str = "manifest.bin";
const MANIFEST_MAGIC: &[u8; 8] = b"CVIDSNAP";
const DELTA_MAGIC: &[u8; 8] = b"CVIDDLTA";
/// Version of the manifest and delta formats documented above. Version 2 added the canister
/// history (`canister_info`) to the canister record; version 1 files still load (their
/// canisters' histories are unknown: `canister_info` then counts from `canister_version`).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this replica reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// Fuel for a restored module's start function (Rust canisters have none).
const RESTORE_START_FUEL: u64 = 1_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Messages are queued or calls are in flight; retry after the replica ran them.
    #[error("the replica is busy (queued messages or calls in flight); retry when it is idle")]
    Busy,
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The directory holds something that is not a valid snapshot.
    #[error("invalid snapshot: {0}")]
    Corrupt(String),
    /// The state holds something this format cannot represent.
    #[error("cannot snapshot: {0}")]
    Unsupported(String),
}

type Result<T> = std::result::Result<T, SnapshotError>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let what = what.into();
    move |source| SnapshotError::Io { what, source }
}

/// What a save did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaveReport {
    /// Sequence number of the snapshot now in the directory.
    pub seq: u64,
    /// Nothing changed since the last save: nothing was written.
    pub skipped: bool,
    pub canisters: usize,
    /// Stable pages written through the delta (incremental saves).
    pub dirty_pages_written: u64,
    /// Canisters whose stable memory was written in full (first save, reinstall).
    pub full_stable_writes: usize,
    /// Stable pages written by those full writes.
    pub full_pages_written: u64,
    /// Heap and module files written (content not already in the directory).
    pub blobs_written: usize,
}

impl Replica {
    /// Whether `dir` holds a snapshot (a `manifest.bin`).
    pub fn snapshot_exists(dir: &Path) -> bool {
        dir.join(MANIFEST).is_file()
    }

    /// Saves the replica to `dir` (created if missing). See the module docs for the format and
    /// the guarantees. Fails with [`SnapshotError::Busy`] unless the replica is quiescent.
    pub fn save_snapshot(&self, dir: &Path) -> Result<SaveReport> {
        fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let mut prev = read_manifest(dir)?;
        if let Some(m) = prev.as_mut() {
            // A crash after the previous commit point: finish it before building on it.
            finish_pending(dir, m)?;
        }
        let store_id = prev
            .as_ref()
            .map_or_else(|| new_store_id(dir), |m| m.store_id);
        let seq = prev.as_ref().map_or(1, |m| m.seq + 1);

        let cap = {
            let mut s = self.lock();
            if let Some(p) = &prev {
                if is_quiescent(&s) && fingerprint(&s) == p.fingerprint {
                    return Ok(SaveReport {
                        seq: p.seq,
                        skipped: true,
                        canisters: p.canisters.len(),
                        ..SaveReport::default()
                    });
                }
            }
            let cap = capture(&mut s, prev.as_ref(), store_id, seq)?;
            // Records after this capture belong after checkpoint `seq`.
            if let Some(w) = s.wal.as_mut() {
                w.rotate(seq)?;
            }
            cap
        };
        let mut report = SaveReport {
            seq,
            canisters: cap.canisters.len(),
            ..SaveReport::default()
        };
        let mut manifest = cap.manifest;
        let mut delta = Enc::default();
        delta.raw(DELTA_MAGIC);
        delta.u32(FORMAT_VERSION);
        delta.u64(seq);
        let mut delta_records: Vec<(Principal, u64, Option<Vec<u8>>)> = Vec::new();
        for mut c in cap.canisters {
            if let (Some(wasm), Some(m)) = (&c.wasm, &mut c.record.module) {
                let name = wasm_name(&m.wasm);
                if !dir.join(&name).is_file() {
                    write_atomic(dir, &name, wasm)?;
                    report.blobs_written += 1;
                }
                m.heap = Sha256::digest(&c.heap).into();
                let name = heap_name(&m.heap);
                if m.heap_len > 0 && !dir.join(&name).is_file() {
                    write_atomic(dir, &name, &c.heap)?;
                    report.blobs_written += 1;
                }
            }
            if c.full {
                let name = stable_name(&c.record.id, seq);
                let tmp = dir.join(format!("{name}.tmp"));
                let mut f =
                    File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
                write_pages(&mut f, &c.pages, &tmp.display().to_string())?;
                f.sync_all()
                    .map_err(io(format!("syncing {}", tmp.display())))?;
                fs::rename(&tmp, dir.join(&name))
                    .map_err(io(format!("renaming {}", tmp.display())))?;
                report.full_stable_writes += 1;
                report.full_pages_written += c.pages.len() as u64;
            } else {
                for (page, data) in c.pages {
                    delta_records.push((c.record.id, page, data));
                }
            }
            manifest.canisters.push(c.record);
        }
        if !delta_records.is_empty() {
            let zeros = vec![0u8; PAGE as usize];
            delta.u64(delta_records.len() as u64);
            for (id, page, data) in &delta_records {
                delta.principal(id);
                delta.u64(*page);
                delta.raw(data.as_deref().unwrap_or(&zeros));
            }
            write_atomic(dir, &delta_name(seq), &delta.seal())?;
            manifest.pending_delta = Some(seq);
            report.dirty_pages_written = delta_records.len() as u64;
        }
        // Commit point.
        write_manifest(dir, &manifest)?;
        finish_pending(dir, &mut manifest)?;
        collect_garbage(dir, &manifest);
        wal::remove_logs_before(dir, seq);
        Ok(report)
    }

    /// Loads the replica saved in `dir` (finishing a save interrupted after its commit point).
    pub fn load_snapshot(dir: &Path) -> Result<Replica> {
        let mut m = read_manifest(dir)?.ok_or_else(|| {
            SnapshotError::Corrupt(format!("{} has no {MANIFEST}", dir.display()))
        })?;
        finish_pending(dir, &mut m)?;
        collect_garbage(dir, &m);
        let replica = Replica::new();
        {
            let mut s = replica.lock();
            s.keys = Keys::from_seed(m.keys_seed);
            s.time = m.time;
            s.state_time = m.time;
            s.next_canister = m.next_canister;
            s.next_msg = m.next_msg;
            s.next_ctx = m.next_ctx;
            s.next_cb = m.next_cb;
            s.rng_counter = m.rng_counter;
            for rec in &m.canisters {
                let c = restore_canister(&mut s, dir, rec, (m.store_id, m.seq))?;
                s.canisters.insert(rec.id, c);
            }
            wal::replay(&mut s, dir, m.store_id, m.seq)?;
        }
        Ok(replica)
    }

    /// Starts the write-ahead log in `dir`, which must hold this replica's state: call it right
    /// after [`Replica::load_snapshot`] or a [`Replica::save_snapshot`] of it. From then on an
    /// ingress answer becomes visible only once the round that produced it is fsync'd in the
    /// log (see "Write-ahead log" above); saves become checkpoints that truncate the log.
    pub fn enable_wal(&self, dir: &Path) -> Result<()> {
        self.lock().enable_wal(dir)
    }

    /// Records, bytes and time of the write-ahead log since it was enabled (`None`: disabled).
    pub fn wal_stats(&self) -> Option<WalStats> {
        self.lock().wal.as_ref().map(|w| w.stats())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
use tests as tests_support;
#[cfg(test)]
mod wal_tests;
