//! Restore: rebuilding a canister from its records and files.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::files::{heap_name, stable_name, wasm_name};
use super::manifest::{bits_to_val, status_code, CanisterRecord};
use super::{io, Result, SnapshotError, RESTORE_START_FUEL};
use crate::canister::{instantiate, link_stubs, Canister};
use crate::memory::{StableMemory, PAGE};
use crate::state::State;
use crate::system_api::HostCtx;

pub(super) fn read_file(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    fs::read(&path).map_err(io(format!("reading {}", path.display())))
}

/// Reads a sparse stable file: only pages with a non-zero byte take memory, and on Linux only
/// the file's data extents are read (a memory grown to gigabytes and written at both ends
/// restores in microseconds instead of reading gigabytes of holes).
pub(super) fn read_stable(path: &Path, size_pages: u64) -> Result<HashMap<u64, Box<[u8]>>> {
    let mut pages = HashMap::new();
    let mut f = match File::open(path) {
        Ok(f) => f,
        // Never written: all zeros.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(pages),
        Err(e) => return Err(io(format!("opening {}", path.display()))(e)),
    };
    let err = || io(format!("reading {}", path.display()));
    let len = f.metadata().map_err(err())?.len();
    let n = len.div_ceil(PAGE).min(size_pages);
    let candidates: Vec<u64> = match data_extents(&f, len) {
        Some(extents) => {
            let mut v: Vec<u64> = extents
                .iter()
                .flat_map(|&(start, end)| start / PAGE..end.div_ceil(PAGE))
                .filter(|&p| p < n)
                .collect();
            v.dedup();
            v
        }
        None => (0..n).collect(),
    };
    let mut buf = vec![0u8; PAGE as usize];
    // Compared with `==` (a memcmp), not byte by byte.
    let zeros = vec![0u8; PAGE as usize];
    for page in candidates {
        buf.fill(0);
        let want = (len - page * PAGE).min(PAGE) as usize;
        f.seek(SeekFrom::Start(page * PAGE)).map_err(err())?;
        f.read_exact(&mut buf[..want]).map_err(err())?;
        if buf != zeros {
            pages.insert(page, buf.clone().into_boxed_slice());
        }
    }
    Ok(pages)
}

/// The byte ranges of `f` that hold data (`SEEK_DATA`/`SEEK_HOLE`), in order; `None` where the
/// file system or platform cannot tell (then every page is read).
#[cfg(target_os = "linux")]
fn data_extents(f: &File, len: u64) -> Option<Vec<(u64, u64)>> {
    use std::os::unix::io::AsRawFd;
    let fd = f.as_raw_fd();
    let mut extents = Vec::new();
    let mut at: i64 = 0;
    while (at as u64) < len {
        // SAFETY: lseek on a file descriptor `f` keeps open for the duration of the call; it
        // only moves the file offset, which the caller resets with `seek` before each read.
        let start = unsafe { libc::lseek(fd, at, libc::SEEK_DATA) };
        if start < 0 {
            // ENXIO: no data at or after `at`.
            return (std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO))
                .then_some(extents);
        }
        // SAFETY: as above.
        let end = unsafe { libc::lseek(fd, start, libc::SEEK_HOLE) };
        if end < 0 {
            return None;
        }
        extents.push((start as u64, end as u64));
        at = end;
    }
    Some(extents)
}

#[cfg(not(target_os = "linux"))]
fn data_extents(_f: &File, _len: u64) -> Option<Vec<(u64, u64)>> {
    None
}

pub(super) fn restore_canister(
    s: &mut State,
    dir: &Path,
    rec: &CanisterRecord,
    sync: (u128, u64),
) -> Result<Canister> {
    let pages = read_stable(
        &dir.join(stable_name(&rec.id, rec.stable_file)),
        rec.stable_pages,
    )?;
    let stable = StableMemory::restored(rec.stable_pages, pages, sync);
    let Some(m) = &rec.module else {
        return build_canister(s, rec, None, Vec::new(), stable);
    };
    let wasm = read_file(dir, &wasm_name(&m.wasm))?;
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
    build_canister(s, rec, Some(&wasm), heap, stable)
}

/// Builds a canister from its record, decompressed module (`None`: no module), heap and stable
/// memory (the snapshot's files or the write-ahead log's replay).
pub(super) fn build_canister(
    s: &mut State,
    rec: &CanisterRecord,
    wasm: Option<&[u8]>,
    heap: Vec<u8>,
    stable: StableMemory,
) -> Result<Canister> {
    // The history of a version-1 record is unknown: `canister_info` counts from the version.
    match &rec.history {
        Some(h) => {
            s.history.insert(rec.id, h.clone());
        }
        None => {
            s.history.remove(&rec.id);
        }
    }
    let mut ctx = HostCtx::new(rec.id);
    ctx.stable = stable;
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
    let (Some(m), Some(wasm)) = (&rec.module, wasm) else {
        *c.ctx_mut() = ctx;
        return Ok(c);
    };
    let module = s
        .cache
        .get_or_compile(&engine, wasm)
        .map_err(|e| SnapshotError::Corrupt(format!("module of {}: {e}", rec.id)))?;
    if module.hash != m.wasm {
        return Err(SnapshotError::Corrupt(format!(
            "module file of {} does not match its hash",
            rec.id
        )));
    }
    link_stubs(&mut s.linker, &mut s.stubs, &module);
    if heap.len() as u64 != m.heap_len {
        return Err(SnapshotError::Corrupt(format!(
            "heap of {} has {} bytes, its record says {}",
            rec.id,
            heap.len(),
            m.heap_len
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
