//! Replica snapshots: save the whole replica to a directory and load it back.
//!
//! [`Replica::save_snapshot`] writes what a restarted replica needs to answer exactly as before:
//! every canister (module, heap, mutable globals, stable memory, cycles, controllers, settings,
//! status, certified data, global timer, versions), the id counters, the time and the seed of
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
//! ```
//! `<canister hex>` is the hex of the principal's bytes. Files with a `.tmp` suffix are
//! unfinished writes and are deleted on the next save or load.
//!
//! ### manifest.bin (format version 1)
//! ```text
//! 8    magic "CVIDSNAP"
//! 4    u32 format version (1)
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
//! 32   SHA-256 of all preceding bytes (a torn or altered manifest is refused)
//! ```
//!
//! ### delta-<seq>.bin
//! ```text
//! 8    magic "CVIDDLTA"    4 u32 format version (1)    8 u64 seq
//! 8    u64 number of records, then per record:
//!        1+n principal (u8 length, bytes)   8 u64 page index   65536 page content
//! 32   SHA-256 of all preceding bytes
//! ```
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
//! * What is lost: everything executed after that save — messages answered since, canisters
//!   created since. With periodic saves every `T` seconds a kill loses at most the last `T`
//!   seconds. A clean stop (Ctrl-C, SIGTERM in `canvid serve`) saves first and loses nothing.
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

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use candid::Principal;
use sha2::{Digest, Sha256};
use wasmi::Val;

use crate::canister::{instantiate, link_stubs, Canister};
use crate::keys::Keys;
use crate::memory::{StableMemory, PAGE};
use crate::state::State;
use crate::system_api::HostCtx;
use crate::{CanisterStatusKind, Replica};

const MANIFEST: &str = "manifest.bin";
const MANIFEST_MAGIC: &[u8; 8] = b"CVIDSNAP";
const DELTA_MAGIC: &[u8; 8] = b"CVIDDLTA";
/// Version of the manifest and delta formats documented above.
pub const FORMAT_VERSION: u32 = 1;
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

// ------------------------------------------------------------------ binary encoding

#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.raw(b);
    }
    fn principal(&mut self, p: &Principal) {
        let b = p.as_slice();
        self.u8(b.len() as u8);
        self.raw(b);
    }
    /// Appends the SHA-256 of everything so far.
    fn seal(mut self) -> Vec<u8> {
        let d: [u8; 32] = Sha256::digest(&self.0).into();
        self.raw(&d);
        self.0
    }
}

struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Dec<'a> {
    /// Checks the trailing SHA-256 and the magic/version header.
    fn open(buf: &'a [u8], magic: &[u8; 8], what: &'static str) -> Result<Self> {
        if buf.len() < 8 + 4 + 32 {
            return Err(SnapshotError::Corrupt(format!("{what} is truncated")));
        }
        let (body, digest) = buf.split_at(buf.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(SnapshotError::Corrupt(format!(
                "{what} fails its checksum (torn or altered)"
            )));
        }
        let mut d = Dec {
            buf: body,
            pos: 0,
            what,
        };
        if d.take(8)? != magic {
            return Err(SnapshotError::Corrupt(format!(
                "{what} has the wrong magic"
            )));
        }
        let version = d.u32()?;
        if version != FORMAT_VERSION {
            return Err(SnapshotError::Corrupt(format!(
                "{what} has format version {version}; this replica reads version {FORMAT_VERSION}"
            )));
        }
        Ok(d)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| SnapshotError::Corrupt(format!("{} is truncated", self.what)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn u128(&mut self) -> Result<u128> {
        Ok(u128::from_le_bytes(self.arr()?))
    }
    fn bytes(&mut self) -> Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn principal(&mut self) -> Result<Principal> {
        let n = self.u8()? as usize;
        let b = self.take(n)?;
        Principal::try_from_slice(b)
            .map_err(|e| SnapshotError::Corrupt(format!("{}: bad principal: {e}", self.what)))
    }
    fn done(&self) -> Result<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(SnapshotError::Corrupt(format!(
                "{} has trailing bytes",
                self.what
            )))
        }
    }
}

// ------------------------------------------------------------------ manifest

#[derive(Clone, Debug, PartialEq, Eq)]
struct ModuleRecord {
    module_hash: [u8; 32],
    wasm: [u8; 32],
    heap_len: u64,
    heap: [u8; 32],
    /// (type tag, bits)
    globals: Vec<(u8, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct CanisterRecord {
    id: Principal,
    status: CanisterStatusKind,
    generation: u64,
    canister_version: u64,
    balance: u128,
    freezing_threshold: u64,
    wasm_memory_limit: u64,
    global_timer: u64,
    certified_data: Vec<u8>,
    controllers: Vec<Principal>,
    module: Option<ModuleRecord>,
    stable_pages: u64,
    stable_file: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Manifest {
    store_id: u128,
    seq: u64,
    pending_delta: Option<u64>,
    fingerprint: [u8; 32],
    time: u64,
    next_canister: u64,
    next_msg: u64,
    next_ctx: u64,
    next_cb: u64,
    rng_counter: u64,
    keys_seed: [u8; 32],
    canisters: Vec<CanisterRecord>,
}

fn status_code(s: CanisterStatusKind) -> u8 {
    match s {
        CanisterStatusKind::Running => 0,
        CanisterStatusKind::Stopping => 1,
        CanisterStatusKind::Stopped => 2,
    }
}

impl Manifest {
    fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.raw(MANIFEST_MAGIC);
        e.u32(FORMAT_VERSION);
        e.u128(self.store_id);
        e.u64(self.seq);
        match self.pending_delta {
            None => e.u8(0),
            Some(s) => {
                e.u8(1);
                e.u64(s);
            }
        }
        e.raw(&self.fingerprint);
        e.u64(self.time);
        for v in [
            self.next_canister,
            self.next_msg,
            self.next_ctx,
            self.next_cb,
            self.rng_counter,
        ] {
            e.u64(v);
        }
        e.raw(&self.keys_seed);
        e.u32(self.canisters.len() as u32);
        for c in &self.canisters {
            e.principal(&c.id);
            e.u8(status_code(c.status));
            e.u64(c.generation);
            e.u64(c.canister_version);
            e.u128(c.balance);
            e.u64(c.freezing_threshold);
            e.u64(c.wasm_memory_limit);
            e.u64(c.global_timer);
            e.bytes(&c.certified_data);
            e.u32(c.controllers.len() as u32);
            for p in &c.controllers {
                e.principal(p);
            }
            match &c.module {
                None => e.u8(0),
                Some(m) => {
                    e.u8(1);
                    e.raw(&m.module_hash);
                    e.raw(&m.wasm);
                    e.u64(m.heap_len);
                    e.raw(&m.heap);
                    e.u32(m.globals.len() as u32);
                    for (t, bits) in &m.globals {
                        e.u8(*t);
                        e.u64(*bits);
                    }
                }
            }
            e.u64(c.stable_pages);
            e.u64(c.stable_file);
        }
        e.seal()
    }

    fn decode(buf: &[u8]) -> Result<Manifest> {
        let mut d = Dec::open(buf, MANIFEST_MAGIC, "manifest.bin")?;
        let store_id = d.u128()?;
        let seq = d.u64()?;
        let pending_delta = match d.u8()? {
            0 => None,
            1 => Some(d.u64()?),
            t => return Err(SnapshotError::Corrupt(format!("bad pending-delta tag {t}"))),
        };
        let fingerprint = d.arr()?;
        let time = d.u64()?;
        let next_canister = d.u64()?;
        let next_msg = d.u64()?;
        let next_ctx = d.u64()?;
        let next_cb = d.u64()?;
        let rng_counter = d.u64()?;
        let keys_seed = d.arr()?;
        let n = d.u32()?;
        let mut canisters = Vec::new();
        for _ in 0..n {
            let id = d.principal()?;
            let status = match d.u8()? {
                0 => CanisterStatusKind::Running,
                1 => CanisterStatusKind::Stopping,
                2 => CanisterStatusKind::Stopped,
                t => return Err(SnapshotError::Corrupt(format!("bad status {t} of {id}"))),
            };
            let generation = d.u64()?;
            let canister_version = d.u64()?;
            let balance = d.u128()?;
            let freezing_threshold = d.u64()?;
            let wasm_memory_limit = d.u64()?;
            let global_timer = d.u64()?;
            let certified_data = d.bytes()?;
            let nc = d.u32()?;
            let mut controllers = Vec::new();
            for _ in 0..nc {
                controllers.push(d.principal()?);
            }
            let module = match d.u8()? {
                0 => None,
                1 => {
                    let module_hash = d.arr()?;
                    let wasm = d.arr()?;
                    let heap_len = d.u64()?;
                    let heap = d.arr()?;
                    let ng = d.u32()?;
                    let mut globals = Vec::new();
                    for _ in 0..ng {
                        let t = d.u8()?;
                        if t > 3 {
                            return Err(SnapshotError::Corrupt(format!(
                                "bad global type {t} of {id}"
                            )));
                        }
                        globals.push((t, d.u64()?));
                    }
                    Some(ModuleRecord {
                        module_hash,
                        wasm,
                        heap_len,
                        heap,
                        globals,
                    })
                }
                t => {
                    return Err(SnapshotError::Corrupt(format!(
                        "bad module tag {t} of {id}"
                    )))
                }
            };
            let stable_pages = d.u64()?;
            let stable_file = d.u64()?;
            canisters.push(CanisterRecord {
                id,
                status,
                generation,
                canister_version,
                balance,
                freezing_threshold,
                wasm_memory_limit,
                global_timer,
                certified_data,
                controllers,
                module,
                stable_pages,
                stable_file,
            });
        }
        d.done()?;
        Ok(Manifest {
            store_id,
            seq,
            pending_delta,
            fingerprint,
            time,
            next_canister,
            next_msg,
            next_ctx,
            next_cb,
            rng_counter,
            keys_seed,
            canisters,
        })
    }
}

fn val_to_bits(v: &Val) -> Option<(u8, u64)> {
    match v {
        Val::I32(x) => Some((0, *x as u32 as u64)),
        Val::I64(x) => Some((1, *x as u64)),
        Val::F32(x) => Some((2, x.to_bits() as u64)),
        Val::F64(x) => Some((3, x.to_bits())),
        _ => None,
    }
}

fn bits_to_val(t: u8, bits: u64) -> Val {
    match t {
        0 => Val::I32(bits as u32 as i32),
        1 => Val::I64(bits as i64),
        2 => Val::F32(wasmi::F32::from_bits(bits as u32)),
        _ => Val::F64(wasmi::F64::from_bits(bits)),
    }
}

// ------------------------------------------------------------------ file names and I/O

fn stable_name(id: &Principal, seq: u64) -> String {
    format!("stable-{}-{seq}.bin", hex::encode(id.as_slice()))
}
fn delta_name(seq: u64) -> String {
    format!("delta-{seq}.bin")
}
fn wasm_name(hash: &[u8; 32]) -> String {
    format!("wasm-{}.wasm", hex::encode(hash))
}
fn heap_name(hash: &[u8; 32]) -> String {
    format!("heap-{}.bin", hex::encode(hash))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing directory {}", dir.display())))
}

/// Writes `bytes` to `dir/name` atomically: temp file, fsync, rename.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(io(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, &path).map_err(io(format!("renaming {}", tmp.display())))
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    write_atomic(dir, MANIFEST, &m.encode())?;
    sync_dir(dir)
}

fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST);
    match fs::read(&path) {
        Ok(b) => Manifest::decode(&b).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

fn write_pages(f: &mut File, pages: &[(u64, Option<Vec<u8>>)], what: &str) -> Result<()> {
    let zeros = vec![0u8; PAGE as usize];
    for (page, data) in pages {
        f.seek(SeekFrom::Start(page * PAGE))
            .and_then(|_| f.write_all(data.as_deref().unwrap_or(&zeros)))
            .map_err(io(format!("writing {what}")))?;
    }
    Ok(())
}

type DeltaRecords = Vec<(Principal, u64, Vec<u8>)>;
/// Pages to write: (page index, content; `None` = zeros).
type Pages = Vec<(u64, Option<Vec<u8>>)>;

fn read_delta(dir: &Path, seq: u64) -> Result<DeltaRecords> {
    let path = dir.join(delta_name(seq));
    let buf = fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
    let mut d = Dec::open(&buf, DELTA_MAGIC, "delta file")?;
    if d.u64()? != seq {
        return Err(SnapshotError::Corrupt(format!(
            "{} belongs to another save",
            path.display()
        )));
    }
    let n = d.u64()?;
    let mut out = Vec::new();
    for _ in 0..n {
        let id = d.principal()?;
        let page = d.u64()?;
        out.push((id, page, d.take(PAGE as usize)?.to_vec()));
    }
    d.done()?;
    Ok(out)
}

/// Applies the pending delta of `m` to the stable files (idempotent), then commits a manifest
/// without it and deletes the delta.
fn finish_pending(dir: &Path, m: &mut Manifest) -> Result<()> {
    let Some(seq) = m.pending_delta else {
        return Ok(());
    };
    let records = read_delta(dir, seq)?;
    let files: HashMap<Principal, u64> =
        m.canisters.iter().map(|c| (c.id, c.stable_file)).collect();
    let mut by_canister: HashMap<Principal, Pages> = HashMap::new();
    for (id, page, data) in records {
        by_canister.entry(id).or_default().push((page, Some(data)));
    }
    for (id, pages) in by_canister {
        // A canister deleted later has no file any more; its pages are moot.
        let Some(file_seq) = files.get(&id) else {
            continue;
        };
        let path = dir.join(stable_name(&id, *file_seq));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        write_pages(&mut f, &pages, &path.display().to_string())?;
        f.sync_all()
            .map_err(io(format!("syncing {}", path.display())))?;
    }
    m.pending_delta = None;
    write_manifest(dir, m)?;
    let _ = fs::remove_file(dir.join(delta_name(seq)));
    Ok(())
}

/// Deletes files of ours that `m` does not reference (superseded stable files, old heaps,
/// applied deltas, unfinished temp files).
fn collect_garbage(dir: &Path, m: &Manifest) {
    let mut keep: BTreeSet<String> = BTreeSet::new();
    keep.insert(MANIFEST.into());
    if let Some(s) = m.pending_delta {
        keep.insert(delta_name(s));
    }
    for c in &m.canisters {
        keep.insert(stable_name(&c.id, c.stable_file));
        if let Some(md) = &c.module {
            keep.insert(wasm_name(&md.wasm));
            if md.heap_len > 0 {
                keep.insert(heap_name(&md.heap));
            }
        }
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = name.ends_with(".tmp")
            || ["stable-", "delta-", "wasm-", "heap-"]
                .iter()
                .any(|p| name.starts_with(p));
        if ours && !keep.contains(&name) {
            let _ = fs::remove_file(e.path());
        }
    }
}

// ------------------------------------------------------------------ capture (under the lock)

struct CapturedCanister {
    record: CanisterRecord,
    wasm: Option<Arc<[u8]>>,
    heap: Vec<u8>,
    /// Full write: every allocated page. Incremental: the dirty pages (content `None` = zeros).
    pages: Pages,
    full: bool,
}

struct Capture {
    manifest: Manifest,
    canisters: Vec<CapturedCanister>,
}

/// A digest of everything a save records except heap and stable *contents* (which only change
/// through executions that bump `canister_version`): unchanged fingerprint, nothing to save.
fn fingerprint(s: &State) -> [u8; 32] {
    let mut h = Sha256::new();
    for v in [
        s.next_canister,
        s.next_msg,
        s.next_ctx,
        s.next_cb,
        s.rng_counter,
    ] {
        h.update(v.to_le_bytes());
    }
    h.update(s.keys.seed());
    for (id, c) in &s.canisters {
        let x = c.ctx();
        h.update(id.as_slice());
        h.update([status_code(c.status)]);
        h.update(c.generation.to_le_bytes());
        h.update(x.canister_version.to_le_bytes());
        h.update(x.balance.to_le_bytes());
        h.update(c.freezing_threshold.to_le_bytes());
        h.update(c.wasm_memory_limit.to_le_bytes());
        h.update(x.global_timer.to_le_bytes());
        h.update((x.certified_data.len() as u64).to_le_bytes());
        h.update(&x.certified_data);
        for p in &x.controllers {
            h.update(p.as_slice());
        }
        h.update(c.module_hash.unwrap_or_default());
        h.update(x.stable.size_pages().to_le_bytes());
        h.update((c.committed_heap.len() as u64).to_le_bytes());
    }
    h.finalize().into()
}

fn is_quiescent(s: &State) -> bool {
    s.queue.is_empty() && s.contexts.is_empty() && s.callbacks.is_empty()
}

/// Copies what the save needs. `prev`: the directory's current manifest.
fn capture(s: &mut State, prev: Option<&Manifest>, store_id: u128, seq: u64) -> Result<Capture> {
    if !is_quiescent(s) {
        return Err(SnapshotError::Busy);
    }
    let fp = fingerprint(s);
    let prev_files: HashMap<Principal, u64> = prev
        .map(|m| m.canisters.iter().map(|c| (c.id, c.stable_file)).collect())
        .unwrap_or_default();
    let prev_sync = prev.map(|m| (m.store_id, m.seq));
    let mut canisters = Vec::new();
    for (id, c) in s.canisters.iter_mut() {
        let module = match &c.module {
            None => None,
            Some(m) => {
                let globals = c
                    .committed_globals
                    .iter()
                    .map(|v| {
                        val_to_bits(v).ok_or_else(|| {
                            SnapshotError::Unsupported(format!(
                                "canister {id} has a mutable global of a reference or vector type"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some((m.clone(), globals))
            }
        };
        let heap = c.committed_heap.clone();
        let status = c.status;
        let generation = c.generation;
        let freezing_threshold = c.freezing_threshold;
        let wasm_memory_limit = c.wasm_memory_limit;
        let module_hash = c.module_hash;
        let x = c.ctx_mut();
        // Incremental only when the memory is in sync with this directory's manifest and the
        // canister's stable file is still referenced by it.
        let incremental = prev_sync.is_some()
            && x.stable.synced_with() == prev_sync
            && prev_files.contains_key(id);
        let dirty = x.stable.take_dirty((store_id, seq));
        let (pages, full, stable_file) = if incremental {
            let pages = dirty
                .into_iter()
                .map(|p| (p, x.stable.page(p).map(<[u8]>::to_vec)))
                .collect();
            (pages, false, prev_files[id])
        } else {
            let pages = x
                .stable
                .allocated_pages()
                .into_iter()
                .map(|p| (p, x.stable.page(p).map(<[u8]>::to_vec)))
                .collect();
            (pages, true, seq)
        };
        let record = CanisterRecord {
            id: *id,
            status,
            generation,
            canister_version: x.canister_version,
            balance: x.balance,
            freezing_threshold,
            wasm_memory_limit,
            global_timer: x.global_timer,
            certified_data: x.certified_data.clone(),
            controllers: x.controllers.clone(),
            module: module.as_ref().map(|(m, globals)| ModuleRecord {
                module_hash: module_hash.unwrap_or(m.hash),
                wasm: m.hash,
                heap_len: heap.len() as u64,
                heap: [0; 32], // filled in outside the lock
                globals: globals.clone(),
            }),
            stable_pages: x.stable.size_pages(),
            stable_file,
        };
        canisters.push(CapturedCanister {
            record,
            wasm: module.map(|(m, _)| m.wasm.clone()),
            heap,
            pages,
            full,
        });
    }
    Ok(Capture {
        manifest: Manifest {
            store_id,
            seq,
            pending_delta: None,
            fingerprint: fp,
            time: s.time,
            next_canister: s.next_canister,
            next_msg: s.next_msg,
            next_ctx: s.next_ctx,
            next_cb: s.next_cb,
            rng_counter: s.rng_counter,
            keys_seed: s.keys.seed(),
            canisters: Vec::new(),
        },
        canisters,
    })
}

fn new_store_id(dir: &Path) -> u128 {
    let mut h = Sha256::new();
    h.update(dir.as_os_str().as_encoded_bytes());
    h.update(std::process::id().to_le_bytes());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.update(d.as_nanos().to_le_bytes());
    }
    let d: [u8; 32] = h.finalize().into();
    u128::from_le_bytes(d[..16].try_into().unwrap_or_default())
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
            capture(&mut s, prev.as_ref(), store_id, seq)?
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
            s.next_canister = m.next_canister;
            s.next_msg = m.next_msg;
            s.next_ctx = m.next_ctx;
            s.next_cb = m.next_cb;
            s.rng_counter = m.rng_counter;
            for rec in &m.canisters {
                let c = restore_canister(&mut s, dir, rec, (m.store_id, m.seq))?;
                s.canisters.insert(rec.id, c);
            }
        }
        Ok(replica)
    }
}

fn read_file(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    fs::read(&path).map_err(io(format!("reading {}", path.display())))
}

/// Reads a sparse stable file: only pages with a non-zero byte take memory.
fn read_stable(path: &Path, size_pages: u64) -> Result<HashMap<u64, Box<[u8]>>> {
    let mut pages = HashMap::new();
    let mut f = match File::open(path) {
        Ok(f) => f,
        // Never written: all zeros.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(pages),
        Err(e) => return Err(io(format!("opening {}", path.display()))(e)),
    };
    let len = f
        .metadata()
        .map_err(io(format!("reading {}", path.display())))?
        .len();
    let n = len.div_ceil(PAGE).min(size_pages);
    let mut buf = vec![0u8; PAGE as usize];
    for page in 0..n {
        buf.fill(0);
        let want = (len - page * PAGE).min(PAGE) as usize;
        f.read_exact(&mut buf[..want])
            .map_err(io(format!("reading {}", path.display())))?;
        if buf.iter().any(|b| *b != 0) {
            pages.insert(page, buf.clone().into_boxed_slice());
        }
    }
    Ok(pages)
}

fn restore_canister(
    s: &mut State,
    dir: &Path,
    rec: &CanisterRecord,
    sync: (u128, u64),
) -> Result<Canister> {
    let pages = read_stable(
        &dir.join(stable_name(&rec.id, rec.stable_file)),
        rec.stable_pages,
    )?;
    let mut ctx = HostCtx::new(rec.id);
    ctx.stable = StableMemory::restored(rec.stable_pages, pages, sync);
    ctx.balance = rec.balance;
    ctx.controllers = rec.controllers.clone();
    ctx.certified_data = rec.certified_data.clone();
    ctx.global_timer = rec.global_timer;
    ctx.canister_version = rec.canister_version;
    ctx.status = u32::from(status_code(rec.status)) + 1;
    let mem_limit = usize::try_from(rec.wasm_memory_limit).unwrap_or(usize::MAX);
    ctx.limits = wasmi::StoreLimitsBuilder::new()
        .memory_size(mem_limit)
        .build();
    let engine = s.engine.clone();
    let mut c = Canister::new(&engine, rec.id);
    c.freezing_threshold = rec.freezing_threshold;
    c.wasm_memory_limit = rec.wasm_memory_limit;
    c.status = rec.status;
    c.generation = rec.generation;
    let Some(m) = &rec.module else {
        *c.ctx_mut() = ctx;
        return Ok(c);
    };
    let wasm = read_file(dir, &wasm_name(&m.wasm))?;
    let module = s
        .cache
        .get_or_compile(&engine, &wasm)
        .map_err(|e| SnapshotError::Corrupt(format!("module of {}: {e}", rec.id)))?;
    if module.hash != m.wasm {
        return Err(SnapshotError::Corrupt(format!(
            "module file of {} does not match its hash",
            rec.id
        )));
    }
    link_stubs(&mut s.linker, &mut s.stubs, &module);
    let heap = if m.heap_len > 0 {
        read_file(dir, &heap_name(&m.heap))?
    } else {
        Vec::new()
    };
    if heap.len() as u64 != m.heap_len || Sha256::digest(&heap).as_slice() != m.heap {
        return Err(SnapshotError::Corrupt(format!(
            "heap file of {} does not match its hash",
            rec.id
        )));
    }
    let (mut store, instance, globals, table, _) =
        instantiate(&engine, &s.linker, &module, ctx, RESTORE_START_FUEL).map_err(|f| {
            SnapshotError::Corrupt(format!(
                "module of {} does not instantiate: {}",
                rec.id, f.1
            ))
        })?;
    if let Some(mem) = store.data().memory {
        let have = mem.data_size(&store) as u64;
        if m.heap_len > have {
            mem.grow(&mut store, (m.heap_len - have) / PAGE)
                .map_err(|e| {
                    SnapshotError::Corrupt(format!("heap of {} cannot grow: {e}", rec.id))
                })?;
        }
        if mem.data_size(&store) != heap.len() {
            return Err(SnapshotError::Corrupt(format!(
                "heap of {} has {} bytes, the module's memory {}",
                rec.id,
                heap.len(),
                mem.data_size(&store)
            )));
        }
        mem.data_mut(&mut store).copy_from_slice(&heap);
    } else if !heap.is_empty() {
        return Err(SnapshotError::Corrupt(format!(
            "{} has a saved heap but its module exports no memory",
            rec.id
        )));
    }
    if globals.len() != m.globals.len() {
        return Err(SnapshotError::Corrupt(format!(
            "{} saved {} globals, its module has {}",
            rec.id,
            m.globals.len(),
            globals.len()
        )));
    }
    for (g, (t, bits)) in globals.iter().zip(&m.globals) {
        g.set(&mut store, bits_to_val(*t, *bits)).map_err(|e| {
            SnapshotError::Corrupt(format!("global of {} cannot be set: {e}", rec.id))
        })?;
    }
    c.adopt(module, store, instance, globals, table);
    c.module_hash = Some(m.module_hash);
    Ok(c)
}

#[cfg(test)]
mod tests;
