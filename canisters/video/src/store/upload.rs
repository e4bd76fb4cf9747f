//! Upload: declaring the file, storing its chunks (any order, idempotent), listing what is
//! missing or stored, abandoning it, and verifying and publishing it.

use canvid_types::protocol::{chunk_count, chunk_len, file_digest};
use canvid_types::video::{
    ChunkDigests, ChunkReceipt, DigestsArgs, MissingArgs, MissingChunks, UploadSpec, VideoMetadata,
    VideoStatus, MAX_CHUNK_COUNT, MAX_CHUNK_SIZE, MAX_DIGEST_PAGE, MAX_MIME_TYPE_BYTES,
    MAX_MISSING_PAGE, MAX_VIDEO_SIZE, UPLOAD_WINDOW_CHUNKS,
};
use canvid_types::{Error, Result};
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;

use super::{
    digest32, ensure_size, sha256, ChunkEntry, Digest32, UploadDecl, VideoStore, WASM_PAGE,
};

/// How many present chunk-table entries one `missing_chunks` call may walk past: keeps the query
/// far below the 5 B instruction limit even for a 1,000,000-chunk file. A page may therefore hold
/// fewer than `limit` indices; `next` says where to continue.
pub const MISSING_SCAN_BUDGET: u32 = 200_000;
/// How many missing indices an `Incomplete` error lists.
pub const INCOMPLETE_LIST: u32 = 100;

impl<M: Memory> VideoStore<M> {
    /// Declares (or re-declares, to resume) the file. See `UploadSpec`.
    pub fn begin_upload(&mut self, spec: &UploadSpec, now: u64) -> Result<VideoMetadata> {
        if spec.path.is_some() {
            self.begin_files(std::slice::from_ref(spec), now)?;
            return Ok(self.metadata());
        }
        if spec.rendition.is_some() {
            return Err(Error::InvalidArgument {
                reason: "a rendition belongs to a named file (give its path)".into(),
            });
        }
        let decl = validate_spec(spec)?;
        match (&self.state().upload, self.status()) {
            (_, VideoStatus::Ready) => return Err(Error::AlreadyFinished),
            (Some(existing), _) if *existing == decl => {
                // Resume: identical declaration. The declared digests must match too.
                if let Some(digests) = &spec.chunk_digests {
                    for (i, d) in digests.iter().enumerate() {
                        if self.declared_digest(i as u32) != digest32(d, "chunk digest")? {
                            return Err(Error::Conflict {
                                reason: format!(
                                    "chunk digest {i} differs from the declared upload"
                                ),
                            });
                        }
                    }
                }
                return Ok(self.metadata());
            }
            (Some(_), _) if !self.chunks.is_empty() => {
                return Err(Error::Conflict {
                    reason: "an upload with a different declaration already has chunks".into(),
                });
            }
            _ => {}
        }
        if let Some(digests) = &spec.chunk_digests {
            ensure_size(&self.declared, (digests.len() as u64) * 32)?;
            for (i, d) in digests.iter().enumerate() {
                self.declared
                    .write(i as u64 * 32, &digest32(d, "chunk digest")?);
            }
        }
        self.update_state(|s| {
            s.upload = Some(decl);
            s.uploaded_bytes = 0;
            s.updated_at = now;
            Ok(())
        })?;
        Ok(self.metadata())
    }

    /// Abandons the upload in progress so that `begin_upload` may declare another file: forgets
    /// the declaration and every stored chunk. Refused once the video is `Ready` (a finished
    /// video is immutable); a no-op on an empty video. O(1) whatever was uploaded: the chunk
    /// table is reset, not walked, and the arena and declared digests are not cleared — nothing
    /// reads them without a chunk entry or a declaration, and the next upload overwrites them.
    /// The arena keeps its allocation (IC stable memory cannot shrink): the next upload writes
    /// into it without growing anything until it outgrows it.
    pub fn reset_upload(&mut self, now: u64) -> Result<VideoMetadata> {
        match self.status() {
            VideoStatus::Ready => return Err(Error::AlreadyFinished),
            VideoStatus::Empty => return Ok(self.metadata()),
            VideoStatus::Uploading => {}
        }
        self.chunks.clear_new();
        self.reset_files();
        self.update_state(|s| {
            s.upload = None;
            s.uploaded_bytes = 0;
            s.updated_at = now;
            Ok(())
        })?;
        Ok(self.metadata())
    }

    fn declared_digest(&self, index: u32) -> Digest32 {
        let mut d = [0u8; 32];
        self.declared.read(index as u64 * 32, &mut d);
        d
    }

    fn uploading(&self) -> Result<UploadDecl> {
        match (self.status(), &self.state().upload) {
            (VideoStatus::Ready, _) => Err(Error::AlreadyFinished),
            (_, Some(u)) => Ok(u.clone()),
            (_, None) => Err(Error::NotReady {
                reason: "no upload declared: call begin_upload first".into(),
            }),
        }
    }

    /// Stores chunk `index`. Idempotent; any order.
    pub fn put_chunk(&mut self, index: u32, data: &[u8], now: u64) -> Result<ChunkReceipt> {
        let u = self.uploading()?;
        if index >= u.chunk_count {
            return Err(Error::ChunkOutOfRange {
                index,
                chunk_count: u.chunk_count,
            });
        }
        let expected = chunk_len(u.total_size, u64::from(u.chunk_size), index);
        if data.len() as u64 != expected {
            return Err(Error::WrongChunkSize {
                index,
                expected,
                actual: data.len() as u64,
            });
        }
        let digest = sha256(data);
        if u.has_chunk_digests {
            let want = self.declared_digest(index);
            if want != digest {
                return Err(Error::WrongDigest {
                    index: Some(index),
                    expected: want.to_vec(),
                    actual: digest.to_vec(),
                });
            }
        }
        let entry = ChunkEntry {
            len: expected as u32,
            sha256: digest,
        };
        let previous = self.chunks.get(&index);
        if previous != Some(entry) {
            let offset = index as u64 * u.chunk_size as u64;
            self.check_growth(index, offset + expected, &u)?;
            ensure_size(&self.arena, offset + expected)?;
            self.arena.write(offset, data);
            self.chunks.insert(index, entry);
            if previous.is_none() {
                self.update_state(|s| {
                    s.uploaded_bytes += expected;
                    s.updated_at = now;
                    Ok(())
                })?;
            }
        }
        Ok(ChunkReceipt {
            index,
            len: entry.len,
            sha256: ByteBuf::from(digest.to_vec()),
            uploaded_chunks: self.chunks_stored(),
            chunk_count: u.chunk_count,
        })
    }

    /// Bytes of stable memory the arena holds already: its pages rounded up to the allocation
    /// unit (a 16 MiB bucket in layouts 1–3, where growing inside the last bucket costs nothing
    /// more; a page in layout 4).
    pub fn arena_allocated_bytes(&self) -> u64 {
        let unit = self.allocation_unit_pages();
        self.arena
            .size()
            .div_ceil(unit)
            .saturating_mul(unit)
            .saturating_mul(WASM_PAGE)
    }

    /// The growth rule of [`UPLOAD_WINDOW_CHUNKS`]: a chunk ending at `end` may be written if it
    /// lies inside the arena already allocated (resumed uploads fill scattered gaps there), or
    /// within the window past the bytes stored. Else `Busy`: retry once earlier chunks arrived.
    fn check_growth(&self, index: u32, end: u64, u: &UploadDecl) -> Result<()> {
        let allocated = self.arena_allocated_bytes();
        if end <= allocated {
            return Ok(());
        }
        let limit = self
            .state()
            .uploaded_bytes
            .saturating_add(UPLOAD_WINDOW_CHUNKS * u64::from(u.chunk_size));
        if end <= limit {
            return Ok(());
        }
        Err(Error::Busy {
            reason: format!(
                "chunk {index} ends at byte {end}, past the {allocated} bytes allocated and \
                 more than {UPLOAD_WINDOW_CHUNKS} chunks beyond the {} bytes stored: send \
                 lower chunks first, then retry it",
                self.state().uploaded_bytes
            ),
        })
    }

    /// A page of missing chunk indices (see `MissingArgs`).
    pub fn missing_chunks(&self, args: &MissingArgs) -> Result<MissingChunks> {
        let u = match (&self.state().upload, self.status()) {
            (Some(u), _) => u.clone(),
            (None, _) => {
                return Err(Error::NotReady {
                    reason: "no upload declared".into(),
                })
            }
        };
        let count = u.chunk_count;
        let start = args.start.unwrap_or(0);
        let limit = args
            .limit
            .unwrap_or(MAX_MISSING_PAGE)
            .clamp(1, MAX_MISSING_PAGE) as usize;
        let missing_count = count - self.chunks_stored();
        let (missing, next) = self.scan_missing(start, count, limit, MISSING_SCAN_BUDGET);
        Ok(MissingChunks {
            missing,
            missing_count,
            next,
        })
    }

    /// A page of stored chunk digests (see `DigestsArgs`). One B-tree range scan: a page costs
    /// its length, not the chunk count.
    pub fn chunk_digests(&self, args: &DigestsArgs) -> Result<ChunkDigests> {
        let Some(u) = &self.state().upload else {
            return Err(Error::NotReady {
                reason: "no upload declared".into(),
            });
        };
        let count = u.chunk_count;
        if args.start > count {
            return Err(Error::ChunkOutOfRange {
                index: args.start,
                chunk_count: count,
            });
        }
        let limit = args
            .limit
            .unwrap_or(MAX_DIGEST_PAGE)
            .clamp(1, MAX_DIGEST_PAGE);
        let end = args.start.saturating_add(limit).min(count);
        let mut digests: Vec<Option<ByteBuf>> = vec![None; (end - args.start) as usize];
        for (index, entry) in self
            .chunks
            .range(args.start..end)
            .map(|e| (*e.key(), e.value()))
        {
            digests[(index - args.start) as usize] = Some(ByteBuf::from(entry.sha256.to_vec()));
        }
        Ok(ChunkDigests {
            start: args.start,
            digests,
            chunk_count: count,
            next: (end < count).then_some(end),
        })
    }

    /// Missing indices in `[start, count)`: at most `limit`, walking at most `budget` present
    /// entries. Returns where to continue, if anywhere.
    pub(super) fn scan_missing(
        &self,
        start: u32,
        count: u32,
        limit: usize,
        budget: u32,
    ) -> (Vec<u32>, Option<u32>) {
        let mut out = Vec::new();
        let mut cursor = start;
        let mut walked = 0u32;
        if start >= count {
            return (out, None);
        }
        for present in self.chunks.keys_range(start..count) {
            while cursor < present {
                if out.len() == limit {
                    return (out, Some(cursor));
                }
                out.push(cursor);
                cursor += 1;
            }
            cursor = present + 1;
            walked += 1;
            if walked >= budget && cursor < count {
                return (out, Some(cursor));
            }
        }
        while cursor < count {
            if out.len() == limit {
                return (out, Some(cursor));
            }
            out.push(cursor);
            cursor += 1;
        }
        (out, None)
    }

    /// Verifies every chunk, computes the file digest and makes the video Ready.
    pub fn finish_upload(&mut self, now: u64) -> Result<VideoMetadata> {
        if self.status() == VideoStatus::Ready {
            return Err(Error::AlreadyFinished);
        }
        if self.state().upload.is_none() && self.files_state().declared > 0 {
            // Named files only: no main file to verify.
            self.check_files_finished()?;
            self.update_state(|s| {
                s.ready_at = Some(now);
                s.updated_at = now;
                Ok(())
            })?;
            return Ok(self.metadata());
        }
        let u = self.uploading()?;
        self.check_files_finished()?;
        let stored = self.chunks_stored();
        if stored != u.chunk_count {
            let (missing, _) = self.scan_missing(
                0,
                u.chunk_count,
                INCOMPLETE_LIST as usize,
                MISSING_SCAN_BUDGET,
            );
            return Err(Error::Incomplete {
                missing,
                missing_count: u.chunk_count - stored,
            });
        }
        // Keys are exactly 0..chunk_count (all present, none out of range): in-order values.
        let digest = file_digest(self.chunks.values().map(|entry| entry.sha256));
        if let Some(want) = &u.file_digest {
            if want.as_slice() != digest {
                return Err(Error::WrongDigest {
                    index: None,
                    expected: want.to_vec(),
                    actual: digest.to_vec(),
                });
            }
        }
        self.update_state(|s| {
            s.digest = Some(ByteBuf::from(digest.to_vec()));
            s.ready_at = Some(now);
            s.updated_at = now;
            Ok(())
        })?;
        Ok(self.metadata())
    }
}

/// Checks an `UploadSpec` against the limits and turns it into the stored declaration.
pub fn validate_spec(spec: &UploadSpec) -> Result<UploadDecl> {
    // Printable `video/*`, `audio/*` or `application/octet-stream` (security review L1), at
    // most MAX_MIME_TYPE_BYTES: the size of the MIME field of the stable layout (store/mod.rs).
    const _: () = assert!(MAX_MIME_TYPE_BYTES <= 127);
    canvid_types::video::validate_video_mime(&spec.mime_type)?;
    if spec.total_size == 0 {
        return Err(Error::InvalidArgument {
            reason: "total_size must be at least 1".into(),
        });
    }
    if spec.total_size > MAX_VIDEO_SIZE {
        return Err(Error::TooLarge {
            size: spec.total_size,
            limit: MAX_VIDEO_SIZE,
        });
    }
    if spec.chunk_size == 0 || spec.chunk_size > MAX_CHUNK_SIZE {
        return Err(Error::InvalidArgument {
            reason: format!("chunk_size must be 1..={MAX_CHUNK_SIZE}"),
        });
    }
    let count = chunk_count(spec.total_size, u64::from(spec.chunk_size));
    if count > MAX_CHUNK_COUNT as u64 {
        return Err(Error::InvalidArgument {
            reason: format!("{count} chunks; at most {MAX_CHUNK_COUNT} (use a larger chunk_size)"),
        });
    }
    let has_chunk_digests = match &spec.chunk_digests {
        None => false,
        Some(d) => {
            if d.len() as u64 != count {
                return Err(Error::InvalidArgument {
                    reason: format!("{} chunk digests declared for {count} chunks", d.len()),
                });
            }
            for blob in d {
                digest32(blob, "chunk digest")?;
            }
            true
        }
    };
    if let Some(f) = &spec.file_digest {
        digest32(f, "file_digest")?;
    }
    if let Some(enc) = &spec.encryption {
        enc.validate(spec.total_size, spec.chunk_size)?;
    }
    Ok(UploadDecl {
        mime_type: spec.mime_type.clone(),
        total_size: spec.total_size,
        chunk_size: spec.chunk_size,
        chunk_count: count as u32,
        has_chunk_digests,
        file_digest: spec.file_digest.clone(),
        duration_ms: spec.duration_ms,
        encryption: spec.encryption.clone(),
    })
}
