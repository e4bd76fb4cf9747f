//! The write-ahead log: a redo log of state deltas, so that an acknowledged update survives a
//! crash (see "Write-ahead log" in the module docs of `persist` for the format).
//!
//! After a round, when the replica is *call-quiescent* (no open call context, no outstanding
//! callback: every call tree started so far has finished), the changes since the last record are
//! appended as one record and fsync'd; only then do the ingress answers of those rounds become
//! visible (`State::finish_ingress` hands them to [`Wal::hold`]). Answers of rounds that end
//! with a call still in flight are held until the call tree completes.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candid::Principal;
use sha2::{Digest, Sha256};

use super::codec::{Dec, Enc};
use super::files::{read_manifest, sync_dir};
use super::manifest::{val_to_bits, CanisterRecord, ModuleRecord};
use super::restore::build_canister;
use super::{io, Result, SnapshotError};
use crate::memory::{StableMemory, PAGE};
use crate::state::State;
use crate::RejectResponse;

pub(super) const WAL_MAGIC: &[u8; 8] = b"CVIDWAL1";
/// Version 2 added the canister history to the canister record (as the manifest's format 2);
/// version-1 logs still replay, and are rewritten as version 2 before records are appended.
pub(super) const WAL_VERSION: u32 = 2;
const OLDEST_WAL_VERSION: u32 = 1;
const HEADER_LEN: u64 = 8 + 4 + 16 + 8;

pub(super) fn wal_name(seq: u64) -> String {
    format!("wal-{seq}.log")
}

/// `(seq, name)` of the log files in `dir`, ascending.
pub(super) fn wal_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let seq = name
                .strip_prefix("wal-")?
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            Some((seq, e.path()))
        })
        .collect();
    v.sort();
    v
}

/// Deletes the logs a checkpoint `seq` made redundant (those of earlier checkpoints).
pub(super) fn remove_logs_before(dir: &Path, seq: u64) {
    for (s, path) in wal_files(dir) {
        if s < seq {
            let _ = fs::remove_file(path);
        }
    }
}

/// Figures of the log since it was enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    pub records: u64,
    pub bytes: u64,
    /// Time spent encoding, writing and syncing records.
    pub nanos: u64,
}

/// One canister's entry of a record.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CanisterDelta {
    pub(super) record: CanisterRecord,
    /// The decompressed module, when it changed since the previous record (or checkpoint).
    pub(super) wasm: Option<Vec<u8>>,
    /// Changed 64 KiB heap pages: (page index, bytes; the last page may be shorter).
    pub(super) heap_pages: Vec<(u64, Vec<u8>)>,
    /// The stable memory was replaced (a new canister, a reinstall): start from zeros.
    pub(super) stable_reset: bool,
    pub(super) stable_pages: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct WalRecord {
    pub(super) lsn: u64,
    pub(super) time: u64,
    /// next_canister, next_msg, next_ctx, next_cb, rng_counter
    pub(super) counters: [u64; 5],
    pub(super) deleted: Vec<Principal>,
    pub(super) canisters: Vec<CanisterDelta>,
}

impl WalRecord {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.u64(self.lsn);
        e.u64(self.time);
        for v in self.counters {
            e.u64(v);
        }
        e.u32(self.deleted.len() as u32);
        for p in &self.deleted {
            e.principal(p);
        }
        e.u32(self.canisters.len() as u32);
        for c in &self.canisters {
            c.record.encode(&mut e);
            match &c.wasm {
                None => e.u8(0),
                Some(w) => {
                    e.u8(1);
                    e.u64(w.len() as u64);
                    e.raw(w);
                }
            }
            e.u32(c.heap_pages.len() as u32);
            for (i, b) in &c.heap_pages {
                e.u64(*i);
                e.u32(b.len() as u32);
                e.raw(b);
            }
            e.u8(u8::from(c.stable_reset));
            e.u32(c.stable_pages.len() as u32);
            for (i, b) in &c.stable_pages {
                e.u64(*i);
                e.raw(b);
            }
        }
        e.0
    }

    /// Decodes a record of a log of format `version`.
    pub(super) fn decode(body: &[u8], version: u32) -> Result<WalRecord> {
        let mut d = Dec {
            buf: body,
            pos: 0,
            what: "write-ahead log record",
            version,
        };
        let lsn = d.u64()?;
        let time = d.u64()?;
        let mut counters = [0u64; 5];
        for c in &mut counters {
            *c = d.u64()?;
        }
        let mut deleted = Vec::new();
        for _ in 0..d.u32()? {
            deleted.push(d.principal()?);
        }
        let mut canisters = Vec::new();
        for _ in 0..d.u32()? {
            let record = CanisterRecord::decode(&mut d)?;
            let wasm = match d.u8()? {
                0 => None,
                _ => {
                    let n = d.u64()? as usize;
                    Some(d.take(n)?.to_vec())
                }
            };
            let mut heap_pages = Vec::new();
            for _ in 0..d.u32()? {
                let i = d.u64()?;
                let n = d.u32()? as usize;
                heap_pages.push((i, d.take(n)?.to_vec()));
            }
            let stable_reset = d.u8()? != 0;
            let mut stable_pages = Vec::new();
            for _ in 0..d.u32()? {
                let i = d.u64()?;
                stable_pages.push((i, d.take(PAGE as usize)?.to_vec()));
            }
            canisters.push(CanisterDelta {
                record,
                wasm,
                heap_pages,
                stable_reset,
                stable_pages,
            });
        }
        if d.pos != body.len() {
            return Err(SnapshotError::Corrupt(
                "write-ahead log record has trailing bytes".into(),
            ));
        }
        Ok(WalRecord {
            lsn,
            time,
            counters,
            deleted,
            canisters,
        })
    }
}

/// Frames a record: u32 length, body, SHA-256 of (length, body).
pub(super) fn frame(body: &[u8]) -> Vec<u8> {
    let len = (body.len() as u32).to_le_bytes();
    let mut h = Sha256::new();
    h.update(len);
    h.update(body);
    let mut out = Vec::with_capacity(body.len() + 36);
    out.extend_from_slice(&len);
    out.extend_from_slice(body);
    out.extend_from_slice(&h.finalize());
    out
}

pub(super) fn header(store_id: u128, seq: u64) -> Vec<u8> {
    header_of_version(store_id, seq, WAL_VERSION)
}

fn header_of_version(store_id: u128, seq: u64, version: u32) -> Vec<u8> {
    let mut e = Enc::default();
    e.raw(WAL_MAGIC);
    e.u32(version);
    e.u128(store_id);
    e.u64(seq);
    e.0
}

/// A log file's records, in order, and the length of its valid prefix. Reading stops at the
/// first record that is incomplete or fails its checksum: a record torn by a crash was never
/// acknowledged (its answers are released only after its fsync).
pub(super) fn read_log(buf: &[u8], store_id: u128, seq: u64) -> Result<(Vec<WalRecord>, u64)> {
    read_log_versioned(buf, store_id, seq).map(|(r, valid, _)| (r, valid))
}

/// [`read_log`], and the log's format version.
fn read_log_versioned(buf: &[u8], store_id: u128, seq: u64) -> Result<(Vec<WalRecord>, u64, u32)> {
    if (buf.len() as u64) < HEADER_LEN {
        // Torn while being created: no record was ever written.
        return Ok((Vec::new(), 0, WAL_VERSION));
    }
    let Some(version) = (OLDEST_WAL_VERSION..=WAL_VERSION)
        .find(|v| buf[..HEADER_LEN as usize] == header_of_version(store_id, seq, *v)[..])
    else {
        return Err(SnapshotError::Corrupt(format!(
            "{} does not belong to this snapshot (magic, version, store id or seq differ)",
            wal_name(seq)
        )));
    };
    let mut pos = HEADER_LEN as usize;
    let mut records = Vec::new();
    while buf.len() - pos >= 4 {
        let n = u32::from_le_bytes(buf[pos..pos + 4].try_into().unwrap_or_default()) as usize;
        let Some(end) = pos.checked_add(4 + n + 32).filter(|e| *e <= buf.len()) else {
            break;
        };
        let mut h = Sha256::new();
        h.update(&buf[pos..pos + 4 + n]);
        if h.finalize().as_slice() != &buf[pos + 4 + n..end] {
            break;
        }
        records.push(WalRecord::decode(&buf[pos + 4..pos + 4 + n], version)?);
        pos = end;
    }
    Ok((records, pos as u64, version))
}

/// The log of a running replica (in `State::wal`).
pub struct Wal {
    dir: PathBuf,
    file: File,
    store_id: u128,
    seq: u64,
    lsn: u64,
    /// What the log (with its checkpoint) holds of each canister.
    heaps: HashMap<Principal, Vec<u8>>,
    modules: HashMap<Principal, [u8; 32]>,
    records: HashMap<Principal, CanisterRecord>,
    next_canister: u64,
    held: Vec<(u64, std::result::Result<Vec<u8>, RejectResponse>)>,
    stats: WalStats,
    failed: bool,
}

impl Wal {
    /// An answer to release once the round that produced it is durable.
    pub(crate) fn hold(&mut self, id: u64, result: std::result::Result<Vec<u8>, RejectResponse>) {
        self.held.push((id, result));
    }

    pub(crate) fn stats(&self) -> WalStats {
        self.stats
    }

    /// Opens `dir/wal-<seq>.log` for appending (after its valid prefix), creating it.
    fn open(dir: &Path, store_id: u128, seq: u64) -> Result<(File, u64)> {
        let path = dir.join(wal_name(seq));
        let existing = match fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        let (valid, lsn) = match existing {
            Some(b) if b.len() as u64 >= HEADER_LEN => {
                let (recs, valid, version) = read_log_versioned(&b, store_id, seq)?;
                if version < WAL_VERSION && !recs.is_empty() {
                    // An older log: rewrite its valid records in the current format (atomically)
                    // so that the records appended next are read with the same version.
                    let mut out = header(store_id, seq);
                    for r in &recs {
                        out.extend_from_slice(&frame(&r.encode()));
                    }
                    let tmp = dir.join(format!("{}.tmp", wal_name(seq)));
                    fs::write(&tmp, &out)
                        .and_then(|_| File::open(&tmp)?.sync_all())
                        .and_then(|_| fs::rename(&tmp, &path))
                        .map_err(io(format!("rewriting {}", path.display())))?;
                    sync_dir(dir)?;
                    return Self::open(dir, store_id, seq);
                }
                (valid, recs.last().map_or(0, |r| r.lsn))
            }
            _ => (0, 0),
        };
        if valid == 0 {
            file.set_len(0)
                .and_then(|_| file.write_all(&header(store_id, seq)))
                .map_err(io(format!("writing {}", path.display())))?;
        } else {
            file.set_len(valid)
                .map_err(io(format!("truncating {}", path.display())))?;
        }
        file.seek(SeekFrom::End(0))
            .and_then(|_| file.sync_all())
            .map_err(io(format!("syncing {}", path.display())))?;
        sync_dir(dir)?;
        Ok((file, lsn))
    }

    /// A save captured the state as checkpoint `seq`: later records go to `wal-<seq>.log`.
    pub(super) fn rotate(&mut self, seq: u64) -> Result<()> {
        if seq == self.seq {
            return Ok(());
        }
        let (file, _) = Self::open(&self.dir, self.store_id, seq)?;
        self.file = file;
        self.seq = seq;
        Ok(())
    }

    fn append(&mut self, record: &WalRecord) -> std::io::Result<u64> {
        let bytes = frame(&record.encode());
        self.file.write_all(&bytes)?;
        self.file.sync_data()?;
        Ok(bytes.len() as u64)
    }
}

fn canister_record(
    id: Principal,
    c: &crate::canister::Canister,
    history: Option<&crate::management::History>,
) -> Result<CanisterRecord> {
    let module = match &c.module {
        None => None,
        Some(m) => Some(ModuleRecord {
            module_hash: c.module_hash.unwrap_or(m.hash),
            wasm: m.hash,
            heap_len: c.committed_heap.len() as u64,
            heap: [0; 32],
            globals: c
                .committed_globals
                .iter()
                .map(|v| {
                    val_to_bits(v).ok_or_else(|| {
                        SnapshotError::Unsupported(format!(
                            "canister {id} has a mutable global of a reference or vector type"
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        }),
    };
    let x = c.ctx();
    Ok(CanisterRecord {
        id,
        status: c.status,
        generation: c.generation,
        canister_version: x.canister_version,
        balance: x.balance,
        freezing_threshold: c.freezing_threshold,
        wasm_memory_limit: c.wasm_memory_limit,
        global_timer: x.global_timer,
        certified_data: x.certified_data.clone(),
        controllers: x.controllers.clone(),
        module,
        stable_pages: x.stable.size_pages(),
        stable_file: 0,
        history: history.cloned(),
    })
}

fn heap_diff(old: &[u8], new: &[u8]) -> Vec<(u64, Vec<u8>)> {
    new.chunks(PAGE as usize)
        .enumerate()
        .filter(|(i, chunk)| {
            let start = i * PAGE as usize;
            old.get(start..start + chunk.len()) != Some(*chunk)
        })
        .map(|(i, chunk)| (i as u64, chunk.to_vec()))
        .collect()
}

impl State {
    /// Starts logging to `dir` (a snapshot directory): the current state must be what the
    /// directory holds (its checkpoint plus its log), i.e. just loaded or just saved.
    pub(super) fn enable_wal(&mut self, dir: &Path) -> Result<()> {
        let m = read_manifest(dir)?.ok_or_else(|| {
            SnapshotError::Corrupt(format!("{} has no snapshot to log after", dir.display()))
        })?;
        remove_logs_before(dir, m.seq);
        let (file, lsn) = Wal::open(dir, m.store_id, m.seq)?;
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            file,
            store_id: m.store_id,
            seq: m.seq,
            lsn,
            heaps: HashMap::new(),
            modules: HashMap::new(),
            records: HashMap::new(),
            next_canister: self.next_canister,
            held: Vec::new(),
            stats: WalStats::default(),
            failed: false,
        };
        for (id, c) in self.canisters.iter_mut() {
            wal.heaps.insert(*id, c.committed_heap.clone());
            if let Some(m) = &c.module {
                wal.modules.insert(*id, m.hash);
            }
            wal.records
                .insert(*id, canister_record(*id, c, self.history.get(id))?);
            c.ctx_mut().stable.take_wal_dirty();
        }
        self.wal = Some(Box::new(wal));
        Ok(())
    }

    /// After a round: when the replica is call-quiescent and something changed, appends a record
    /// and releases the held answers. A failed write keeps them held (retried next round).
    pub(crate) fn wal_round(&mut self) {
        let Some(mut wal) = self.wal.take() else {
            return;
        };
        let changed = !wal.held.is_empty()
            || wal.next_canister != self.next_canister
            || wal.records.len() != self.canisters.len()
            || self
                .canisters
                .values()
                .any(|c| c.ctx().stable.wal_pending())
            // A management change made through the replica's API (no ingress answer to hold)
            // still changes the canister's history: log it.
            || self.canisters.keys().any(|id| {
                let logged = wal.records.get(id).and_then(|r| r.history.as_ref());
                logged.map(|h| h.total_num_changes)
                    != self.history.get(id).map(|h| h.total_num_changes)
            });
        if changed && self.contexts.is_empty() && self.callbacks.is_empty() {
            let started = Instant::now();
            match self.wal_record(&mut wal) {
                Ok(Some(record)) => match wal.append(&record) {
                    Ok(n) => {
                        wal.lsn = record.lsn;
                        wal.stats.records += 1;
                        wal.stats.bytes += n;
                        wal.next_canister = self.next_canister;
                        wal.failed = false;
                    }
                    Err(e) => {
                        if !wal.failed {
                            eprintln!("write-ahead log: appending a record failed: {e}");
                        }
                        wal.failed = true;
                        // What this record held is logged again in full.
                        wal.heaps.clear();
                        wal.records.clear();
                        wal.modules.clear();
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    eprintln!("write-ahead log: {e}");
                    wal.failed = true;
                }
            }
            wal.stats.nanos += started.elapsed().as_nanos() as u64;
            if !wal.failed {
                for (id, r) in std::mem::take(&mut wal.held) {
                    self.release_ingress(id, r);
                }
            }
        }
        self.wal = Some(wal);
    }

    /// The changes since the last record (updating the log's view), or `None` when only the
    /// clock moved.
    fn wal_record(&mut self, wal: &mut Wal) -> Result<Option<WalRecord>> {
        let deleted: Vec<Principal> = wal
            .records
            .keys()
            .filter(|id| !self.canisters.contains_key(id))
            .copied()
            .collect();
        for id in &deleted {
            wal.records.remove(id);
            wal.heaps.remove(id);
            wal.modules.remove(id);
        }
        let mut canisters = Vec::new();
        for (id, c) in self.canisters.iter_mut() {
            let record = canister_record(*id, c, self.history.get(id))?;
            let empty = Vec::new();
            let old_heap = wal.heaps.get(id).unwrap_or(&empty);
            let heap_pages =
                if old_heap.len() == c.committed_heap.len() && *old_heap == c.committed_heap {
                    Vec::new()
                } else {
                    heap_diff(old_heap, &c.committed_heap)
                };
            let wasm = match &c.module {
                Some(m) if wal.modules.get(id) != Some(&m.hash) => Some(m.wasm.to_vec()),
                _ => None,
            };
            let stable = &mut c.ctx_mut().stable;
            let (stable_reset, pages) = stable.take_wal_dirty();
            let stable_pages: Vec<(u64, Vec<u8>)> = pages
                .into_iter()
                .map(|p| {
                    let data = stable
                        .page(p)
                        .map_or_else(|| vec![0u8; PAGE as usize], <[u8]>::to_vec);
                    (p, data)
                })
                .collect();
            if heap_pages.is_empty()
                && wasm.is_none()
                && !stable_reset
                && stable_pages.is_empty()
                && wal.records.get(id) == Some(&record)
            {
                continue;
            }
            if !heap_pages.is_empty() {
                wal.heaps.insert(*id, c.committed_heap.clone());
            }
            if let Some(m) = &c.module {
                wal.modules.insert(*id, m.hash);
            }
            wal.records.insert(*id, record.clone());
            canisters.push(CanisterDelta {
                record,
                wasm,
                heap_pages,
                stable_reset,
                stable_pages,
            });
        }
        if canisters.is_empty() && deleted.is_empty() && wal.next_canister == self.next_canister {
            return Ok(None);
        }
        Ok(Some(WalRecord {
            lsn: wal.lsn + 1,
            time: self.time,
            counters: [
                self.next_canister,
                self.next_msg,
                self.next_ctx,
                self.next_cb,
                self.rng_counter,
            ],
            deleted,
            canisters,
        }))
    }
}

/// A canister being rebuilt by replay.
struct Image {
    record: Option<CanisterRecord>,
    wasm: Option<std::sync::Arc<[u8]>>,
    heap: Vec<u8>,
    stable: StableMemory,
}

/// Replays the logs after checkpoint `(store_id, seq)` onto `s` (just loaded from it). Returns
/// the number of records applied.
pub(super) fn replay(s: &mut State, dir: &Path, store_id: u128, seq: u64) -> Result<u64> {
    let mut images: HashMap<Principal, Image> = HashMap::new();
    let mut applied = 0;
    for (file_seq, path) in wal_files(dir) {
        if file_seq < seq {
            continue;
        }
        let buf = fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
        let (records, _) = read_log(&buf, store_id, file_seq)?;
        for r in records {
            s.time = s.time.max(r.time);
            s.state_time = s.time;
            [
                s.next_canister,
                s.next_msg,
                s.next_ctx,
                s.next_cb,
                s.rng_counter,
            ] = r.counters;
            for id in &r.deleted {
                images.remove(id);
                s.canisters.remove(id);
                s.history.remove(id);
            }
            for d in r.canisters {
                let id = d.record.id;
                let img = images
                    .entry(id)
                    .or_insert_with(|| match s.canisters.get_mut(&id) {
                        Some(c) => Image {
                            record: None,
                            wasm: c.module.as_ref().map(|m| m.wasm.clone()),
                            heap: c.committed_heap.clone(),
                            stable: std::mem::take(&mut c.ctx_mut().stable),
                        },
                        None => Image {
                            record: None,
                            wasm: None,
                            heap: Vec::new(),
                            stable: StableMemory::new(),
                        },
                    });
                if let Some(w) = d.wasm {
                    img.wasm = Some(w.into());
                }
                let heap_len = d.record.module.as_ref().map_or(0, |m| m.heap_len) as usize;
                img.heap.resize(heap_len, 0);
                for (i, b) in d.heap_pages {
                    let start = (i * PAGE) as usize;
                    let end = start + b.len();
                    if end > img.heap.len() {
                        return Err(SnapshotError::Corrupt(format!(
                            "write-ahead log: heap page {i} of {id} is past its heap"
                        )));
                    }
                    img.heap[start..end].copy_from_slice(&b);
                }
                if d.stable_reset {
                    img.stable = StableMemory::new();
                }
                let have = img.stable.size_pages();
                if d.record.stable_pages > have {
                    img.stable.grow(d.record.stable_pages - have);
                }
                for (i, b) in d.stable_pages {
                    img.stable.write(i * PAGE, &b).map_err(|e| {
                        SnapshotError::Corrupt(format!(
                            "write-ahead log: stable page {i} of {id}: {e:?}"
                        ))
                    })?;
                }
                img.record = Some(d.record);
            }
            applied += 1;
        }
    }
    for (id, img) in images {
        let Some(rec) = img.record else { continue };
        let wasm = match (&rec.module, &img.wasm) {
            (Some(_), Some(w)) => Some(&w[..]),
            (Some(_), None) => {
                return Err(SnapshotError::Corrupt(format!(
                    "write-ahead log: no module for {id}"
                )))
            }
            (None, _) => None,
        };
        let c = build_canister(s, &rec, wasm, img.heap, img.stable)?;
        s.canisters.insert(id, c);
    }
    Ok(applied)
}
