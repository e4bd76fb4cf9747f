//! File names and I/O: atomic writes, sparse stable files, deltas, finishing a pending delta
//! and deleting unreferenced files.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use candid::Principal;

use super::codec::Dec;
use super::manifest::Manifest;
use super::{io, Result, SnapshotError, DELTA_MAGIC, MANIFEST};
use crate::memory::PAGE;

pub(super) fn stable_name(id: &Principal, seq: u64) -> String {
    format!("stable-{}-{seq}.bin", hex::encode(id.as_slice()))
}
pub(super) fn delta_name(seq: u64) -> String {
    format!("delta-{seq}.bin")
}
pub(super) fn wasm_name(hash: &[u8; 32]) -> String {
    format!("wasm-{}.wasm", hex::encode(hash))
}
pub(super) fn heap_name(hash: &[u8; 32]) -> String {
    format!("heap-{}.bin", hex::encode(hash))
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing directory {}", dir.display())))
}

/// Writes `bytes` to `dir/name` atomically: temp file, fsync, rename.
pub(super) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(io(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, &path).map_err(io(format!("renaming {}", tmp.display())))
}

pub(super) fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    write_atomic(dir, MANIFEST, &m.encode())?;
    sync_dir(dir)
}

pub(super) fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST);
    match fs::read(&path) {
        Ok(b) => Manifest::decode(&b).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

pub(super) fn write_pages(
    f: &mut File,
    pages: &[(u64, Option<Vec<u8>>)],
    what: &str,
) -> Result<()> {
    let zeros = vec![0u8; PAGE as usize];
    for (page, data) in pages {
        f.seek(SeekFrom::Start(page * PAGE))
            .and_then(|_| f.write_all(data.as_deref().unwrap_or(&zeros)))
            .map_err(io(format!("writing {what}")))?;
    }
    Ok(())
}

pub(super) type DeltaRecords = Vec<(Principal, u64, Vec<u8>)>;
/// Pages to write: (page index, content; `None` = zeros).
pub(super) type Pages = Vec<(u64, Option<Vec<u8>>)>;

pub(super) fn read_delta(dir: &Path, seq: u64) -> Result<DeltaRecords> {
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
pub(super) fn finish_pending(dir: &Path, m: &mut Manifest) -> Result<()> {
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
pub(super) fn collect_garbage(dir: &Path, m: &Manifest) {
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
