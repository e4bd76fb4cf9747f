//! Named files (layout version 4): the HLS playlists, segments, subtitles and thumbnails a video
//! holds besides its main file, each at its own HTTP path.
//!
//! # Memories
//!
//! ```text
//! id  name        structure                              contents
//! 7   file table  StableBTreeMap<PathKey, Candid<FileRecord>>  path -> declaration, progress,
//!                                                        where the file lives in memory 8
//! 8   file arena  raw                                    one extent per file (below)
//! ```
//!
//! Both are created on the first named file (a single-file video never pays for them). The
//! counters that must not be recomputed by walking the table (files declared and complete,
//! bytes stored, the arena's frontier, the renditions) are in the state cell
//! ([`FilesState`]).
//!
//! # A file's extent in memory 8
//!
//! Declaring a file reserves `[base, base + 40 * chunk_count + size)` at the arena's frontier:
//!
//! ```text
//! offset                 size               field
//! base + 40 i            1                  flags of chunk i: bit 0 digest declared, bit 1 stored
//! base + 40 i + 1        3                  reserved, zero
//! base + 40 i + 4        4                  chunk length (u32 LE), once stored
//! base + 40 i + 8        32                 SHA-256: the declared digest, or the stored chunk's
//! base + 40 n + k        size               file byte k (chunk i at 40 n + i * chunk_size)
//! ```
//!
//! Entries live beside the bytes instead of in a B-tree: a segment of one chunk costs 40 bytes
//! of metadata, and storing a chunk is two raw writes. A reservation does not grow stable
//! memory; writes do, under two rules that bound what an uploader can make the canister
//! allocate ahead of the bytes it sends: a declaration is refused (`Busy`) while more than
//! [`MAX_RESERVED_AHEAD`] bytes are reserved past the arena's allocated end, and a put may only
//! grow the arena up to `UPLOAD_WINDOW_CHUNKS` chunks past the bytes stored in its file.

use std::borrow::Cow;

use candid::{CandidType, Deserialize};
use canvid_stable_common::Candid;
use canvid_types::files::{
    validate_file_mime, validate_path, FileInfo, FilePage, FileRendition, FilesArgs, Rendition,
    MAX_FILES, MAX_FILES_PER_CALL, MAX_FILE_PAGE, MAX_PATH_BYTES, MAX_RENDITIONS,
};
use canvid_types::protocol::{chunk_len, file_digest};
use canvid_types::video::{
    ChunkDigests, ChunkReceipt, DigestsArgs, MissingArgs, MissingChunks, UploadSpec,
    MAX_DIGEST_PAGE, MAX_MISSING_PAGE, UPLOAD_WINDOW_CHUNKS,
};
use canvid_types::{Error, Result};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableBTreeMap, Storable};
use serde_bytes::ByteBuf;

use super::{digest32, ensure_size, sha256, validate_spec, Digest32, WASM_PAGE};

/// Most bytes reserved for declared files beyond what the file arena has allocated: 1 GiB
/// (500 declared segments of 2 MB fit; a bigger batch waits for its predecessors' bytes).
pub const MAX_RESERVED_AHEAD: u64 = 1 << 30;
const ENTRY_LEN: u64 = 40;

#[cfg(test)]
mod tests;
const DECLARED: u8 = 1;
const STORED: u8 = 2;

/// The named-file counters kept in the state cell (absent: no named file).
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize)]
pub struct FilesState {
    pub declared: u32,
    /// Files whose every chunk is stored (their digest is computed then).
    pub complete: u32,
    /// Complete files whose digest differs from the declared `file_digest`.
    pub mismatched: u32,
    /// Sum of the chunk bytes stored in named files.
    pub uploaded_bytes: u64,
    /// The file arena's frontier: where the next declaration's extent starts.
    pub next_offset: u64,
    /// Files declared with a `Rendition`, highest bandwidth first.
    pub renditions: Vec<FileRendition>,
}

/// A file-table value.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct FileRecord {
    pub mime_type: String,
    pub total_size: u64,
    pub chunk_size: u32,
    pub chunk_count: u32,
    pub has_chunk_digests: bool,
    /// The digest the uploader expects (checked when the file is complete).
    pub expected_digest: Option<ByteBuf>,
    pub duration_ms: Option<u64>,
    pub rendition: Option<Rendition>,
    /// Start of the file's extent in memory 8.
    pub base: u64,
    pub uploaded_chunks: u32,
    pub uploaded_bytes: u64,
    /// The file digest, computed when the last chunk arrives.
    pub digest: Option<ByteBuf>,
}

impl FileRecord {
    fn content(&self) -> u64 {
        self.base + ENTRY_LEN * u64::from(self.chunk_count)
    }

    fn end(&self) -> u64 {
        self.content() + self.total_size
    }

    fn same_declaration(&self, other: &FileRecord) -> bool {
        (
            &self.mime_type,
            self.total_size,
            self.chunk_size,
            self.has_chunk_digests,
            &self.expected_digest,
            self.duration_ms,
            &self.rendition,
        ) == (
            &other.mime_type,
            other.total_size,
            other.chunk_size,
            other.has_chunk_digests,
            &other.expected_digest,
            other.duration_ms,
            &other.rendition,
        )
    }

    pub fn info(&self, path: &str) -> FileInfo {
        FileInfo {
            path: path.to_string(),
            mime_type: self.mime_type.clone(),
            size: self.total_size,
            chunk_size: self.chunk_size,
            chunk_count: self.chunk_count,
            uploaded_chunks: self.uploaded_chunks,
            uploaded_bytes: self.uploaded_bytes,
            digest: self.digest.clone(),
            duration_ms: self.duration_ms,
            rendition: self.rendition.clone(),
        }
    }
}

/// File-table key: the path's bytes (at most `MAX_PATH_BYTES`), ordered bytewise.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PathKey(pub String);

impl Storable for PathKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.0.as_bytes())
    }
    fn into_bytes(self) -> Vec<u8> {
        self.0.into_bytes()
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // Only keys written by `into_bytes` from validated (ASCII) paths are stored.
        PathKey(String::from_utf8_lossy(&bytes).into_owned())
    }
    const BOUND: Bound = Bound::Bounded {
        max_size: MAX_PATH_BYTES as u32,
        is_fixed_size: false,
    };
}

/// Memories 7 and 8, opened lazily: `None` until the first named file is declared.
pub struct FileStore<V: Memory> {
    table_mem: Option<V>,
    arena_mem: Option<V>,
    table: Option<StableBTreeMap<PathKey, Candid<FileRecord>, V>>,
}

/// A planned declaration: the path, its record, and its declared chunk digests.
pub type Declaration = (String, FileRecord, Vec<Digest32>);

/// A chunk's 40-byte entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    flags: u8,
    len: u32,
    sha256: Digest32,
}

impl Entry {
    fn to_bytes(self) -> [u8; ENTRY_LEN as usize] {
        let mut b = [0u8; ENTRY_LEN as usize];
        b[0] = self.flags;
        b[4..8].copy_from_slice(&self.len.to_le_bytes());
        b[8..40].copy_from_slice(&self.sha256);
        b
    }
    fn from_bytes(b: &[u8]) -> Entry {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&b[8..40]);
        Entry {
            flags: b[0],
            len: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            sha256,
        }
    }
}

/// What a put did to the counters in the state cell.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PutEffect {
    pub new_bytes: u64,
    pub completed: bool,
    pub mismatched: bool,
}

fn not_found(path: &str) -> Error {
    Error::NotFound {
        what: format!("file {path}"),
    }
}

impl<V: Memory> FileStore<V> {
    /// Opens memories 7 and 8; the table is read only if it was ever created.
    pub fn open(table_mem: V, arena_mem: V) -> Self {
        let (table_mem, table) = if table_mem.size() > 0 {
            (None, Some(StableBTreeMap::init(table_mem)))
        } else {
            (Some(table_mem), None)
        };
        FileStore {
            table_mem,
            arena_mem: Some(arena_mem),
            table,
        }
    }

    fn arena(&self) -> &V {
        self.arena_mem.as_ref().expect("file arena memory")
    }

    fn table_mut(&mut self) -> &mut StableBTreeMap<PathKey, Candid<FileRecord>, V> {
        if self.table.is_none() {
            let mem = self.table_mem.take().expect("file table memory");
            self.table = Some(StableBTreeMap::init(mem));
        }
        self.table.as_mut().expect("just created")
    }

    pub fn get(&self, path: &str) -> Option<FileRecord> {
        self.table
            .as_ref()?
            .get(&PathKey(path.to_string()))
            .map(|c| c.0)
    }

    /// Bytes of memory 8 already allocated.
    fn allocated(&self) -> u64 {
        self.arena().size() * WASM_PAGE
    }

    /// Validates a batch of declarations and plans them against `files`: returns the records to
    /// insert (new or replacing a file without chunks) and the new counters. Changes nothing.
    pub fn plan(
        &self,
        specs: &[UploadSpec],
        files: &FilesState,
    ) -> Result<(Vec<Declaration>, FilesState)> {
        if specs.len() > MAX_FILES_PER_CALL {
            return Err(Error::InvalidArgument {
                reason: format!("at most {MAX_FILES_PER_CALL} files per call"),
            });
        }
        let mut next = files.clone();
        let mut out: Vec<Declaration> = Vec::new();
        for spec in specs {
            let path = spec.path.as_deref().ok_or_else(|| Error::InvalidArgument {
                reason: "a named file needs a path (absent = the main file: use begin_upload)"
                    .into(),
            })?;
            validate_path(path)?;
            if spec.encryption.is_some() {
                return Err(Error::InvalidArgument {
                    reason: format!(
                        "{path}: only the main file can be encrypted (encrypted named files, \
                         e.g. HLS segments, are not supported yet)"
                    ),
                });
            }
            if out.iter().any(|(p, _, _)| p == path) {
                return Err(Error::InvalidArgument {
                    reason: format!("file {path} declared twice in one call"),
                });
            }
            // Checked as a video type by validate_spec unless it is a named-file type.
            validate_file_mime(&spec.mime_type)?;
            let mut as_video = spec.clone();
            as_video.mime_type = "application/octet-stream".into();
            let decl = validate_spec(&as_video)?;
            if let Some(r) = &spec.rendition {
                r.validate()?;
            }
            let digests: Vec<Digest32> = spec
                .chunk_digests
                .iter()
                .flatten()
                .map(|d| digest32(d, "chunk digest"))
                .collect::<Result<_>>()?;
            let mut record = FileRecord {
                mime_type: spec.mime_type.clone(),
                total_size: decl.total_size,
                chunk_size: decl.chunk_size,
                chunk_count: decl.chunk_count,
                has_chunk_digests: decl.has_chunk_digests,
                expected_digest: decl.file_digest,
                duration_ms: decl.duration_ms,
                rendition: spec.rendition.clone(),
                base: 0,
                uploaded_chunks: 0,
                uploaded_bytes: 0,
                digest: None,
            };
            match self.get(path) {
                Some(old) if old.same_declaration(&record) => {
                    // Resume: the declared digests must be the stored ones.
                    for (i, d) in digests.iter().enumerate() {
                        if self.entry(&old, i as u32).sha256 != *d {
                            return Err(Error::Conflict {
                                reason: format!(
                                    "file {path}: chunk digest {i} differs from its declaration"
                                ),
                            });
                        }
                    }
                    continue;
                }
                Some(old) if old.uploaded_chunks > 0 => {
                    return Err(Error::Conflict {
                        reason: format!(
                            "file {path} has chunks of a different declaration (reset_upload \
                             starts over)"
                        ),
                    });
                }
                Some(_) => {}
                None => {
                    if next.declared >= MAX_FILES {
                        return Err(Error::InvalidArgument {
                            reason: format!("at most {MAX_FILES} named files per video"),
                        });
                    }
                    next.declared += 1;
                }
            }
            let ahead = next.next_offset.saturating_sub(self.allocated());
            if ahead > MAX_RESERVED_AHEAD {
                return Err(Error::Busy {
                    reason: format!(
                        "{ahead} bytes are declared but not yet uploaded (at most \
                         {MAX_RESERVED_AHEAD}): upload the files declared so far, then declare \
                         {path} and the rest"
                    ),
                });
            }
            record.base = next.next_offset;
            next.next_offset = record.end();
            if let Some(r) = &record.rendition {
                next.renditions.retain(|x| x.path != path);
                if next.renditions.len() >= MAX_RENDITIONS {
                    return Err(Error::InvalidArgument {
                        reason: format!("at most {MAX_RENDITIONS} renditions per video"),
                    });
                }
                next.renditions.push(FileRendition {
                    path: path.to_string(),
                    rendition: r.clone(),
                });
                next.renditions
                    .sort_by_key(|r| std::cmp::Reverse(r.rendition.bandwidth));
            } else {
                next.renditions.retain(|x| x.path != path);
            }
            out.push((path.to_string(), record, digests));
        }
        Ok((out, next))
    }

    /// Applies a plan: writes the chunk entries (declared digests or zeros) and the records.
    pub fn apply(&mut self, plan: Vec<Declaration>) -> Result<()> {
        for (path, record, digests) in plan {
            let entries = ENTRY_LEN * u64::from(record.chunk_count);
            ensure_size(self.arena(), record.base + entries)?;
            let mut bytes = vec![0u8; entries as usize];
            for (i, d) in digests.iter().enumerate() {
                let e = Entry {
                    flags: DECLARED,
                    len: 0,
                    sha256: *d,
                };
                bytes[i * ENTRY_LEN as usize..(i + 1) * ENTRY_LEN as usize]
                    .copy_from_slice(&e.to_bytes());
            }
            self.arena().write(record.base, &bytes);
            self.table_mut().insert(PathKey(path), Candid(record));
        }
        Ok(())
    }

    fn entry(&self, record: &FileRecord, index: u32) -> Entry {
        let mut b = [0u8; ENTRY_LEN as usize];
        self.arena()
            .read(record.base + ENTRY_LEN * u64::from(index), &mut b);
        Entry::from_bytes(&b)
    }

    fn record(&self, path: &str) -> Result<FileRecord> {
        self.get(path).ok_or_else(|| not_found(path))
    }

    /// Stores chunk `index` of `path` (idempotent, any order). `Ready` is checked by the caller.
    pub fn put(
        &mut self,
        path: &str,
        index: u32,
        data: &[u8],
    ) -> Result<(ChunkReceipt, PutEffect)> {
        let mut r = self.record(path)?;
        if index >= r.chunk_count {
            return Err(Error::ChunkOutOfRange {
                index,
                chunk_count: r.chunk_count,
            });
        }
        let expected = chunk_len(r.total_size, u64::from(r.chunk_size), index);
        if data.len() as u64 != expected {
            return Err(Error::WrongChunkSize {
                index,
                expected,
                actual: data.len() as u64,
            });
        }
        let digest = sha256(data);
        let old = self.entry(&r, index);
        if old.flags & DECLARED != 0 && old.sha256 != digest {
            return Err(Error::WrongDigest {
                index: Some(index),
                expected: old.sha256.to_vec(),
                actual: digest.to_vec(),
            });
        }
        let mut effect = PutEffect::default();
        if old.flags & STORED == 0 {
            let offset = r.content() + u64::from(index) * u64::from(r.chunk_size);
            let end = offset + expected;
            let allocated = self.allocated();
            let window = r
                .uploaded_bytes
                .saturating_add(UPLOAD_WINDOW_CHUNKS * u64::from(r.chunk_size));
            if end > allocated && offset + expected - r.content() > window {
                return Err(Error::Busy {
                    reason: format!(
                        "chunk {index} of {path} lies more than {UPLOAD_WINDOW_CHUNKS} chunks \
                         past the {} bytes of it stored: send lower chunks first, then retry it",
                        r.uploaded_bytes
                    ),
                });
            }
            ensure_size(self.arena(), end)?;
            self.arena().write(offset, data);
            let entry = Entry {
                flags: old.flags | STORED,
                len: expected as u32,
                sha256: digest,
            };
            self.arena()
                .write(r.base + ENTRY_LEN * u64::from(index), &entry.to_bytes());
            r.uploaded_chunks += 1;
            r.uploaded_bytes += expected;
            effect.new_bytes = expected;
            if r.uploaded_chunks == r.chunk_count {
                let d = self.compute_digest(&r);
                effect.completed = true;
                effect.mismatched = r
                    .expected_digest
                    .as_ref()
                    .is_some_and(|want| want.as_slice() != d);
                r.digest = Some(ByteBuf::from(d.to_vec()));
            }
            self.table_mut()
                .insert(PathKey(path.to_string()), Candid(r.clone()));
        }
        Ok((
            ChunkReceipt {
                index,
                len: expected as u32,
                sha256: ByteBuf::from(digest.to_vec()),
                uploaded_chunks: r.uploaded_chunks,
                chunk_count: r.chunk_count,
            },
            effect,
        ))
    }

    /// The file digest over the stored chunk digests (all chunks stored).
    fn compute_digest(&self, r: &FileRecord) -> Digest32 {
        // Entries in slices of 4,096 (160 KiB) so a 1,000,000-chunk file needs no 40 MB buffer.
        const SLICE: u32 = 4_096;
        let mut digests = Vec::with_capacity(r.chunk_count as usize);
        let mut start = 0;
        while start < r.chunk_count {
            let n = SLICE.min(r.chunk_count - start);
            let mut buf = vec![0u8; (ENTRY_LEN * u64::from(n)) as usize];
            self.arena()
                .read(r.base + ENTRY_LEN * u64::from(start), &mut buf);
            digests.extend(
                buf.chunks(ENTRY_LEN as usize)
                    .map(|b| Entry::from_bytes(b).sha256),
            );
            start += n;
        }
        file_digest(digests)
    }

    /// Bytes `[offset, offset + length)` of a file (stored chunks only before the file is
    /// complete).
    pub fn read(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let r = self.record(path)?;
        let end = super::checked_range(offset, length, r.total_size, &format!("file {path}"))?;
        if length == 0 {
            return Ok(Vec::new());
        }
        if r.uploaded_chunks < r.chunk_count {
            let cs = u64::from(r.chunk_size);
            for i in (offset / cs) as u32..=((end - 1) / cs) as u32 {
                if self.entry(&r, i).flags & STORED == 0 {
                    return Err(Error::NotFound {
                        what: format!("chunk {i} of {path}"),
                    });
                }
            }
        }
        let mut buf = vec![0u8; length as usize];
        self.arena().read(r.content() + offset, &mut buf);
        Ok(buf)
    }

    pub fn get_chunk(&self, path: &str, index: u32) -> Result<Vec<u8>> {
        let r = self.record(path)?;
        if index >= r.chunk_count {
            return Err(Error::ChunkOutOfRange {
                index,
                chunk_count: r.chunk_count,
            });
        }
        let e = self.entry(&r, index);
        if e.flags & STORED == 0 {
            return Err(Error::NotFound {
                what: format!("chunk {index} of {path}"),
            });
        }
        let mut buf = vec![0u8; e.len as usize];
        self.arena().read(
            r.content() + u64::from(index) * u64::from(r.chunk_size),
            &mut buf,
        );
        Ok(buf)
    }

    /// Stored chunk `index`'s SHA-256 (`None` if not stored or out of range).
    pub fn chunk_digest(&self, path: &str, index: u32) -> Option<Digest32> {
        let r = self.get(path)?;
        if index >= r.chunk_count {
            return None;
        }
        let e = self.entry(&r, index);
        (e.flags & STORED != 0).then_some(e.sha256)
    }

    pub fn missing(&self, path: &str, args: &MissingArgs) -> Result<MissingChunks> {
        let r = self.record(path)?;
        let start = args.start.unwrap_or(0);
        let limit = args
            .limit
            .unwrap_or(MAX_MISSING_PAGE)
            .clamp(1, MAX_MISSING_PAGE) as usize;
        let (missing, next) = self.scan(&r, start, limit, |e| e.flags & STORED == 0);
        Ok(MissingChunks {
            missing,
            missing_count: r.chunk_count - r.uploaded_chunks,
            next,
        })
    }

    /// Indices `>= start` whose entry satisfies `pick`, at most `limit`, reading entries in
    /// slices; at most `super::MISSING_SCAN_BUDGET` entries per call.
    fn scan(
        &self,
        r: &FileRecord,
        start: u32,
        limit: usize,
        pick: impl Fn(&Entry) -> bool,
    ) -> (Vec<u32>, Option<u32>) {
        let mut out = Vec::new();
        let end = r
            .chunk_count
            .min(start.saturating_add(super::MISSING_SCAN_BUDGET));
        let mut i = start;
        while i < end {
            let n = 4_096.min(end - i);
            let mut buf = vec![0u8; (ENTRY_LEN * u64::from(n)) as usize];
            self.arena()
                .read(r.base + ENTRY_LEN * u64::from(i), &mut buf);
            for (k, b) in buf.chunks(ENTRY_LEN as usize).enumerate() {
                let index = i + k as u32;
                if pick(&Entry::from_bytes(b)) {
                    if out.len() == limit {
                        return (out, Some(index));
                    }
                    out.push(index);
                }
            }
            i += n;
        }
        (out, (end < r.chunk_count).then_some(end))
    }

    pub fn digests(&self, path: &str, args: &DigestsArgs) -> Result<ChunkDigests> {
        let r = self.record(path)?;
        if args.start > r.chunk_count {
            return Err(Error::ChunkOutOfRange {
                index: args.start,
                chunk_count: r.chunk_count,
            });
        }
        let limit = args
            .limit
            .unwrap_or(MAX_DIGEST_PAGE)
            .clamp(1, MAX_DIGEST_PAGE);
        let end = args.start.saturating_add(limit).min(r.chunk_count);
        let n = end - args.start;
        let mut buf = vec![0u8; (ENTRY_LEN * u64::from(n)) as usize];
        self.arena()
            .read(r.base + ENTRY_LEN * u64::from(args.start), &mut buf);
        let digests = buf
            .chunks(ENTRY_LEN as usize)
            .map(|b| {
                let e = Entry::from_bytes(b);
                (e.flags & STORED != 0).then(|| ByteBuf::from(e.sha256.to_vec()))
            })
            .collect();
        Ok(ChunkDigests {
            start: args.start,
            digests,
            chunk_count: r.chunk_count,
            next: (end < r.chunk_count).then_some(end),
        })
    }

    /// A page of files in path order after `args.after`.
    pub fn page(&self, args: &FilesArgs) -> Vec<FileInfo> {
        let limit = args.limit.unwrap_or(MAX_FILE_PAGE).clamp(1, MAX_FILE_PAGE) as usize;
        let Some(table) = &self.table else {
            return Vec::new();
        };
        let iter: Box<dyn Iterator<Item = _>> = match &args.after {
            None => Box::new(table.iter()),
            Some(after) => Box::new(table.range((
                std::ops::Bound::Excluded(PathKey(after.clone())),
                std::ops::Bound::Unbounded,
            ))),
        };
        iter.take(limit)
            .map(|e| e.value().0.info(&e.key().0))
            .collect()
    }

    /// Files not complete, or whose digest differs from the declared one: at most `limit`
    /// paths (a walk of the table, only when `finish_upload` refuses).
    pub fn unfinished(&self, limit: usize) -> Vec<String> {
        let Some(table) = &self.table else {
            return Vec::new();
        };
        table
            .iter()
            .filter(|e| {
                let r = &e.value().0;
                r.uploaded_chunks < r.chunk_count
                    || r.expected_digest.is_some() && r.expected_digest != r.digest
            })
            .take(limit)
            .map(|e| e.key().0.clone())
            .collect()
    }

    /// Forgets every file (`reset_upload`): the table is reset, not walked; the arena keeps its
    /// pages and the next declarations reuse them (their entries are rewritten on declaration).
    pub fn clear(&mut self) {
        if self.table.is_some() {
            self.table_mut().clear_new();
        }
    }
}

impl<M: Memory> super::VideoStore<M> {
    pub fn files_state(&self) -> FilesState {
        self.state().files.clone().unwrap_or_default()
    }

    /// Declares named files (`begin_files`, or `begin_upload` with a path): all or none.
    /// Returns how many named files are declared now.
    pub fn begin_files(&mut self, specs: &[UploadSpec], now: u64) -> Result<u32> {
        if self.status() == canvid_types::video::VideoStatus::Ready {
            return Err(Error::AlreadyFinished);
        }
        let (plan, next) = self.files.plan(specs, &self.files_state())?;
        if !plan.is_empty() {
            self.files.apply(plan)?;
            let declared = next.declared;
            self.mutate_state(|s| {
                s.files = Some(next);
                s.updated_at = now;
            });
            return Ok(declared);
        }
        Ok(next.declared)
    }

    pub fn put_file_chunk(
        &mut self,
        path: &str,
        index: u32,
        data: &[u8],
        now: u64,
    ) -> Result<ChunkReceipt> {
        if self.status() == canvid_types::video::VideoStatus::Ready {
            return Err(Error::AlreadyFinished);
        }
        let (receipt, effect) = self.files.put(path, index, data)?;
        if effect.new_bytes > 0 {
            self.mutate_state(|s| {
                let f = s.files.get_or_insert_with(FilesState::default);
                f.uploaded_bytes += effect.new_bytes;
                f.complete += u32::from(effect.completed);
                f.mismatched += u32::from(effect.mismatched);
                s.updated_at = now;
            });
        }
        Ok(receipt)
    }

    pub fn file(&self, path: &str) -> Option<FileRecord> {
        self.files.get(path)
    }

    pub fn files_page(&self, args: &FilesArgs) -> FilePage {
        let files = self.files.page(args);
        let total = self.files_state().declared;
        let next = (files.len() as u32
            == args.limit.unwrap_or(MAX_FILE_PAGE).clamp(1, MAX_FILE_PAGE))
        .then(|| files.last().map(|f| f.path.clone()))
        .flatten();
        FilePage {
            files,
            total,
            next,
            status: self.status(),
        }
    }

    pub fn read_file(&self, path: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.files.read(path, offset, length)
    }

    pub fn get_file_chunk(&self, path: &str, index: u32) -> Result<Vec<u8>> {
        self.files.get_chunk(path, index)
    }

    pub fn file_chunk_digest(&self, path: &str, index: u32) -> Option<Digest32> {
        self.files.chunk_digest(path, index)
    }

    pub fn file_missing(&self, path: &str, args: &MissingArgs) -> Result<MissingChunks> {
        self.files.missing(path, args)
    }

    pub fn file_digests(&self, path: &str, args: &DigestsArgs) -> Result<ChunkDigests> {
        self.files.digests(path, args)
    }

    /// `finish_upload`'s check of the named files: every one complete and as declared.
    pub(super) fn check_files_finished(&self) -> Result<()> {
        let f = self.files_state();
        if f.complete == f.declared && f.mismatched == 0 {
            return Ok(());
        }
        let bad = self.files.unfinished(super::INCOMPLETE_LIST as usize);
        Err(Error::Conflict {
            reason: format!(
                "{} of {} named files are incomplete, {} differ from their declared digest: {}",
                f.declared - f.complete,
                f.declared,
                f.mismatched,
                bad.join(", ")
            ),
        })
    }

    /// `reset_upload`'s part: forget every named file; the arena is reused from its start.
    pub(super) fn reset_files(&mut self) {
        self.files.clear();
        self.mutate_state(|s| s.files = None);
    }
}
