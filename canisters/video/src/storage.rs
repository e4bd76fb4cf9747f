//! Stable-memory state of a video canister, and the upload / read logic over it.
//!
//! Everything lives in stable memory from the first message on, so an upgrade moves no data:
//! `pre_upgrade` does nothing and `post_upgrade` only re-opens the structures below (O(1) work,
//! whatever the size of the video).
//!
//! # Layout (version 2)
//!
//! ## Raw stable memory
//!
//! The whole stable memory belongs to an `ic_stable_structures` `MemoryManager` created with a
//! bucket size of [`BUCKET_SIZE_PAGES`] = 256 Wasm pages (16 MiB). Its own layout:
//!
//! ```text
//! offset        size            field
//! 0             3               magic "MGR"
//! 3             1               memory-manager layout version (1)
//! 4             2               number of allocated buckets (u16 LE)
//! 6             2               bucket size in pages (u16 LE) = 256
//! 8             32              reserved
//! 40            255 * 8         size in pages of virtual memories 0..=254 (u64 LE each)
//! 2080          32768           owner (memory id) of each bucket, 1 byte each (255 = free)
//! 34848         30688           unused
//! 65536 (page 1) ...            buckets, 16 MiB each, in allocation order
//! ```
//!
//! 32768 buckets of 16 MiB address 512 GiB: enough for [`MAX_VIDEO_SIZE`] (400 GiB) plus the
//! small memories, and above the 500 GiB stable-memory limit of a canister. (The default 128-page
//! buckets would stop at 256 GiB.) The price is that every virtual memory in use occupies at
//! least 16 MiB of stable memory; five memories ≈ 80 MiB ≈ 26 B cycles per 30 days.
//!
//! ## Virtual memories
//!
//! ```text
//! id  name      structure                          contents
//! 0   header    raw                                the canvid header below
//! 1   state     StableCell<State>                  owner, metadata, upload declaration, ...
//! 2   chunks    StableBTreeMap<u32, ChunkEntry>    which chunks are stored: index -> (len, sha256)
//! 3   declared  raw                                declared chunk digests: 32 bytes at 32 * index
//! 4   arena     raw                                chunk bytes: chunk i at offset i * chunk_size
//! 5   poster    raw                                the poster image (layout version 2)
//! ```
//!
//! ### Memory 0: header (16 bytes)
//!
//! ```text
//! offset  size  field
//! 0       4     magic "CVID"
//! 4       4     canvid layout version (u32 LE) = 2
//! 8       2     memory-manager bucket size in pages (u16 LE) = 256 (the one this layout assumes)
//! 10      6     reserved, zero
//! ```
//!
//! `post_upgrade` refuses (traps, so the upgrade is rolled back) a header with another magic or a
//! newer version. Versions:
//! - **1**: memories 0–4.
//! - **2**: adds memory 5 (poster). Migration 1 → 2 (in [`Storage::load`]): rewrite the version
//!   field; nothing else, because an absent memory 5 (size 0) means "no poster". A version-1
//!   build refuses a version-2 memory, so a downgrade is rolled back instead of losing the poster.
//!
//! ### Memory 1: state cell
//!
//! `StableCell` framing: magic "SCL" (3), cell version 1 (1), value length (u32 LE), value. The
//! value is [`State`] encoded with candid, which lets later versions append `Option` fields
//! without a migration. It is small (bounded by the metadata limits, < 20 KiB).
//!
//! ### Memory 2: chunk table
//!
//! `StableBTreeMap<u32, ChunkEntry>` with fixed-size 36-byte values: `len` (u32 LE) then the
//! chunk's SHA-256 (32 bytes). An entry exists iff chunk `index` is stored in the arena. Chunk
//! bytes are never stored as map values (a BTreeMap costs ~12 instructions per byte written).
//!
//! ### Memory 3: declared digests
//!
//! When `begin_upload` declares `chunk_digests`, digest `i` is at bytes `[32 i, 32 i + 32)`.
//!
//! ### Memory 4: arena
//!
//! Chunk `i` occupies `[i * chunk_size, i * chunk_size + len_i)`; since every chunk but the last is
//! exactly `chunk_size` long, **arena offset = file offset**. A put writes in place, so puts are
//! idempotent, can arrive in any order, and never move data. The arena grows (whole 16 MiB
//! buckets) only as far as the highest chunk written.
//!
//! ### Memory 5: poster (layout version 2)
//!
//! Absent (never grown) until the owner first calls `set_poster`. Then:
//!
//! ```text
//! offset  size  field
//! 0       4     magic "CVPO"
//! 4       4     poster length L (u32 LE), 0..=2,000,000; 0 = no poster (cleared)
//! 8       32    SHA-256 of the poster bytes (so HTTP certification never hashes them again)
//! 40      1     MIME type length m (u8), 1..=127 (0 when L = 0)
//! 41      127   MIME type, ASCII, zero padded
//! 168     88    reserved, zero
//! 256     L     poster bytes
//! ```
//!
//! A new poster overwrites the old one in place (bytes first, then the header; both in one
//! message, which the IC applies atomically). The memory never shrinks: at most 256 + 2,000,000
//! bytes, one 16 MiB bucket.
//!
//! # File digest
//!
//! `digest = SHA-256(sha256(chunk_0) || ... || sha256(chunk_{n-1}))` with the chunks of the
//! declared `chunk_size`. A single SHA-256 over a multi-GiB file does not fit one message
//! (~75 instructions/byte on wasm32); this definition needs 32 bytes per chunk at finish time,
//! and a client computes it while it hashes the chunks it uploads.

use std::borrow::Cow;
use std::cell::RefCell;

use candid::{CandidType, Decode, Deserialize, Encode, Principal};
use canvid_types::video::{
    validate_text_fields, ChunkDigests, ChunkReceipt, DigestsArgs, MetadataPatch, MissingArgs,
    MissingChunks, PendingNotification, UploadSpec, VideoInit, VideoMetadata, VideoStatus,
    MAX_CHUNK_COUNT, MAX_CHUNK_SIZE, MAX_DIGEST_PAGE, MAX_MIME_TYPE_BYTES, MAX_MISSING_PAGE,
    MAX_UPLOADERS, MAX_VIDEO_SIZE,
};
use canvid_types::{Error, Result};
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{
    Cell as StableCell, DefaultMemoryImpl, Memory, StableBTreeMap, Storable,
};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 4] = b"CVID";
pub const LAYOUT_VERSION: u32 = 2;
/// Oldest layout [`Storage::load`] migrates from.
pub const OLDEST_LAYOUT_VERSION: u32 = 1;
pub const BUCKET_SIZE_PAGES: u16 = 256;
const HEADER_LEN: usize = 16;
const WASM_PAGE: u64 = 65_536;

const HEADER_MEM: MemoryId = MemoryId::new(0);
const STATE_MEM: MemoryId = MemoryId::new(1);
const CHUNKS_MEM: MemoryId = MemoryId::new(2);
const DECLARED_MEM: MemoryId = MemoryId::new(3);
const ARENA_MEM: MemoryId = MemoryId::new(4);
const POSTER_MEM: MemoryId = MemoryId::new(5);

pub const POSTER_MAGIC: &[u8; 4] = b"CVPO";
/// Largest poster: one HTTP body (and one ingress message with framing to spare).
pub const MAX_POSTER_BYTES: u64 = 2_000_000;
/// Offset of the poster bytes in memory 5 (after the fixed header).
const POSTER_DATA_OFFSET: u64 = 256;
const POSTER_MIME_FIELD: usize = 127;

/// How many present chunk-table entries one `missing_chunks` call may walk past: keeps the query
/// far below the 5 B instruction limit even for a 1,000,000-chunk file. A page may therefore hold
/// fewer than `limit` indices; `next` says where to continue.
pub const MISSING_SCAN_BUDGET: u32 = 200_000;
/// How many missing indices an `Incomplete` error lists.
pub const INCOMPLETE_LIST: u32 = 100;

pub type Digest32 = [u8; 32];

/// One chunk-table value: 36 bytes, fixed size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkEntry {
    pub len: u32,
    pub sha256: Digest32,
}

impl Storable for ChunkEntry {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }
    fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(36);
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.sha256);
        out
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // The map only ever holds values written by `into_bytes` (36 bytes); the BTreeMap checks
        // the bound on insert.
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[0..4]);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&bytes[4..36]);
        ChunkEntry {
            len: u32::from_le_bytes(len),
            sha256,
        }
    }
    const BOUND: Bound = Bound::Bounded {
        max_size: 36,
        is_fixed_size: true,
    };
}

/// The upload declared by `begin_upload` (the digests of the chunks are in memory 3).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct UploadDecl {
    pub mime_type: String,
    pub total_size: u64,
    pub chunk_size: u32,
    pub chunk_count: u32,
    pub has_chunk_digests: bool,
    pub file_digest: Option<ByteBuf>,
    pub duration_ms: Option<u64>,
}

/// An ownership transfer waiting for the management canister (set before the first await).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct InFlight {
    pub new_owner: Principal,
    pub requested_by: Principal,
    pub started_at: u64,
}

/// Everything but the chunk bytes and tables. Candid-encoded in the state cell (memory 1).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct State {
    pub owner: Principal,
    pub creator: Principal,
    /// Who called `install_code` (the spawn canister, or the developer's dfx identity).
    pub installer: Principal,
    pub index: Option<Principal>,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub created_at: u64,
    pub updated_at: u64,
    pub upload: Option<UploadDecl>,
    pub uploaded_bytes: u64,
    /// Set by `finish_upload`: the video is Ready.
    pub digest: Option<ByteBuf>,
    pub ready_at: Option<u64>,
    pub uploaders: Vec<Principal>,
    pub operator: Option<Principal>,
    pub transfer_seq: u64,
    pub transfer_in_flight: Option<InFlight>,
    /// Outbox of one: the latest ownership change the index has not acknowledged. One slot is
    /// enough because the index only keeps the newest `transfer_seq`: a newer change replaces an
    /// unsent older one.
    pub pending_notification: Option<PendingNotification>,
}

impl Storable for State {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }
    fn into_bytes(self) -> Vec<u8> {
        // Encoding a plain struct of candid types cannot fail.
        Encode!(&self).expect("candid encoding of the video state")
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // Only `into_bytes` wrote this cell; a decode failure means corrupted or incompatible
        // state, and trapping (failing the upgrade) is the only safe reaction.
        Decode!(&bytes, State).expect("decoding the video state (stable memory 1)")
    }
    const BOUND: Bound = Bound::Unbounded;
}

impl State {
    pub fn status(&self) -> VideoStatus {
        match (&self.upload, &self.digest) {
            (None, _) => VideoStatus::Empty,
            (Some(_), None) => VideoStatus::Uploading,
            (Some(_), Some(_)) => VideoStatus::Ready,
        }
    }
}

/// The video canister's stable state over any `Memory` (the canister uses `DefaultMemoryImpl`,
/// native tests a `VectorMemory` or a sparse test memory).
pub struct Storage<M: Memory> {
    header: VirtualMemory<M>,
    state: StableCell<State, VirtualMemory<M>>,
    chunks: StableBTreeMap<u32, ChunkEntry, VirtualMemory<M>>,
    declared: VirtualMemory<M>,
    arena: VirtualMemory<M>,
    poster: VirtualMemory<M>,
}

/// The stored poster image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPoster {
    pub mime_type: String,
    pub bytes: Vec<u8>,
    pub sha256: Digest32,
}

/// A poster MIME type must be an `image/...` type of printable ASCII: it becomes a
/// `Content-Type` header, so control characters (header injection) are refused.
pub fn validate_poster_mime(mime: &str) -> Result<()> {
    let printable = mime
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) || b == b' ');
    if mime.len() > POSTER_MIME_FIELD
        || !printable
        || !mime.starts_with("image/")
        || mime.len() <= 6
    {
        return Err(Error::InvalidArgument {
            reason: format!(
                "poster mime_type must be an image/... type of 7..={POSTER_MIME_FIELD} printable ASCII bytes"
            ),
        });
    }
    Ok(())
}

/// Grows `mem` so that `[0, end)` is addressable. On failure nothing was grown.
fn ensure_size<M: Memory>(mem: &M, end: u64) -> Result<()> {
    let have = mem.size().saturating_mul(WASM_PAGE);
    if end <= have {
        return Ok(());
    }
    let pages = (end - have).div_ceil(WASM_PAGE);
    if mem.grow(pages) < 0 {
        return Err(Error::TooLarge {
            size: end,
            limit: have,
        });
    }
    Ok(())
}

fn sha256(data: &[u8]) -> Digest32 {
    Sha256::digest(data).into()
}

fn digest32(blob: &[u8], what: &str) -> Result<Digest32> {
    blob.try_into().map_err(|_| Error::InvalidArgument {
        reason: format!(
            "{what} must be a 32-byte SHA-256 digest, got {} bytes",
            blob.len()
        ),
    })
}

impl<M: Memory> Storage<M> {
    /// Lays out a fresh stable memory (`init`).
    pub fn init(memory: M, init: &VideoInit, installer: Principal, now: u64) -> Result<Self> {
        init.validate()?;
        let mm = MemoryManager::init_with_bucket_size(memory, BUCKET_SIZE_PAGES);
        let header = mm.get(HEADER_MEM);
        if header.size() != 0 {
            return Err(Error::Conflict {
                reason: "stable memory is not empty".into(),
            });
        }
        ensure_size(&header, HEADER_LEN as u64)?;
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..4].copy_from_slice(MAGIC);
        bytes[4..8].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
        bytes[8..10].copy_from_slice(&BUCKET_SIZE_PAGES.to_le_bytes());
        header.write(0, &bytes);
        let state = State {
            owner: init.owner,
            creator: init.creator,
            installer,
            index: init.index,
            title: init.title.clone(),
            description: init.description.clone(),
            tags: init.tags.clone(),
            created_at: now,
            updated_at: now,
            upload: None,
            uploaded_bytes: 0,
            digest: None,
            ready_at: None,
            uploaders: Vec::new(),
            operator: None,
            transfer_seq: 0,
            transfer_in_flight: None,
            pending_notification: None,
        };
        Ok(Storage {
            header,
            state: StableCell::new(mm.get(STATE_MEM), state),
            chunks: StableBTreeMap::new(mm.get(CHUNKS_MEM)),
            declared: mm.get(DECLARED_MEM),
            arena: mm.get(ARENA_MEM),
            poster: mm.get(POSTER_MEM),
        })
    }

    /// Re-opens the structures after an upgrade; checks the header first.
    pub fn load(memory: M) -> Result<Self> {
        if memory.size() == 0 {
            return Err(Error::NotFound {
                what: "video canister stable memory (empty)".into(),
            });
        }
        let mm = MemoryManager::init_with_bucket_size(memory, BUCKET_SIZE_PAGES);
        let header = mm.get(HEADER_MEM);
        if header.size() == 0 {
            return Err(Error::NotFound {
                what: "canvid header (stable memory 0)".into(),
            });
        }
        let mut bytes = [0u8; HEADER_LEN];
        header.read(0, &mut bytes);
        if &bytes[0..4] != MAGIC {
            return Err(Error::InvalidArgument {
                reason: "stable memory has no canvid header".into(),
            });
        }
        let version = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if !(OLDEST_LAYOUT_VERSION..=LAYOUT_VERSION).contains(&version) {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "stable layout version {version}, this build reads \
                     {OLDEST_LAYOUT_VERSION}..={LAYOUT_VERSION}"
                ),
            });
        }
        let state_mem = mm.get(STATE_MEM);
        if state_mem.size() == 0 {
            return Err(Error::NotFound {
                what: "video state (stable memory 1)".into(),
            });
        }
        // `Cell::init` keeps the stored value when the memory holds a cell; the placeholder is
        // never written because the memory is not empty and the magic is checked by the cell.
        let placeholder = State {
            owner: Principal::anonymous(),
            creator: Principal::anonymous(),
            installer: Principal::anonymous(),
            index: None,
            title: String::new(),
            description: String::new(),
            tags: vec![],
            created_at: 0,
            updated_at: 0,
            upload: None,
            uploaded_bytes: 0,
            digest: None,
            ready_at: None,
            uploaders: vec![],
            operator: None,
            transfer_seq: 0,
            transfer_in_flight: None,
            pending_notification: None,
        };
        let mut magic = [0u8; 3];
        state_mem.read(0, &mut magic);
        if &magic != b"SCL" {
            return Err(Error::InvalidArgument {
                reason: "state cell (stable memory 1) is corrupt".into(),
            });
        }
        if version < 2 {
            // 1 -> 2: memory 5 (poster) is new and absent means "no poster"; only the version
            // field changes. Done last, after every check above passed.
            header.write(4, &LAYOUT_VERSION.to_le_bytes());
        }
        Ok(Storage {
            header,
            state: StableCell::init(state_mem, placeholder),
            chunks: StableBTreeMap::init(mm.get(CHUNKS_MEM)),
            declared: mm.get(DECLARED_MEM),
            arena: mm.get(ARENA_MEM),
            poster: mm.get(POSTER_MEM),
        })
    }

    pub fn layout_version(&self) -> u32 {
        let mut v = [0u8; 4];
        self.header.read(4, &mut v);
        u32::from_le_bytes(v)
    }

    pub fn state(&self) -> &State {
        self.state.get()
    }

    /// Applies `f` to a copy of the state and stores it only if `f` succeeds.
    pub fn update_state<T>(&mut self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut s = self.state.get().clone();
        let out = f(&mut s)?;
        self.state.set(s);
        Ok(out)
    }

    pub fn status(&self) -> VideoStatus {
        self.state().status()
    }

    pub fn chunks_stored(&self) -> u32 {
        // At most MAX_CHUNK_COUNT entries: fits u32.
        self.chunks.len() as u32
    }

    pub fn metadata(&self) -> VideoMetadata {
        let s = self.state();
        let (mime_type, size, duration_ms, chunk_size, chunk_count) = match &s.upload {
            Some(u) => (
                u.mime_type.clone(),
                u.total_size,
                u.duration_ms,
                u.chunk_size,
                u.chunk_count,
            ),
            None => (String::new(), 0, None, 0, 0),
        };
        VideoMetadata {
            status: s.status(),
            title: s.title.clone(),
            description: s.description.clone(),
            tags: s.tags.clone(),
            mime_type,
            size,
            duration_ms,
            chunk_size,
            chunk_count,
            uploaded_chunks: self.chunks_stored(),
            uploaded_bytes: s.uploaded_bytes,
            digest: s.digest.clone(),
            creator: s.creator,
            owner: s.owner,
            operator: s.operator,
            index: s.index,
            created_at: s.created_at,
            updated_at: s.updated_at,
            ready_at: s.ready_at,
            transfer_seq: s.transfer_seq,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Upload
    // -----------------------------------------------------------------------------------------

    /// Declares (or re-declares, to resume) the file. See `UploadSpec`.
    pub fn begin_upload(&mut self, spec: &UploadSpec, now: u64) -> Result<VideoMetadata> {
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
    pub fn reset_upload(&mut self, now: u64) -> Result<VideoMetadata> {
        match self.status() {
            VideoStatus::Ready => return Err(Error::AlreadyFinished),
            VideoStatus::Empty => return Ok(self.metadata()),
            VideoStatus::Uploading => {}
        }
        self.chunks.clear_new();
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
        let expected = chunk_len(u.total_size, u.chunk_size, index);
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
    fn scan_missing(
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
        let u = self.uploading()?;
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
        let mut hasher = Sha256::new();
        // Keys are exactly 0..chunk_count (all present, none out of range): in-order values.
        for entry in self.chunks.values() {
            hasher.update(entry.sha256);
        }
        let digest: Digest32 = hasher.finalize().into();
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

    // -----------------------------------------------------------------------------------------
    // Metadata and roles
    // -----------------------------------------------------------------------------------------

    pub fn update_metadata(&mut self, patch: &MetadataPatch, now: u64) -> Result<VideoMetadata> {
        validate_text_fields(
            patch.title.as_deref(),
            patch.description.as_deref(),
            patch.tags.as_deref(),
        )?;
        self.update_state(|s| {
            if let Some(t) = &patch.title {
                s.title = t.clone();
            }
            if let Some(d) = &patch.description {
                s.description = d.clone();
            }
            if let Some(t) = &patch.tags {
                s.tags = t.clone();
            }
            s.updated_at = now;
            Ok(())
        })?;
        Ok(self.metadata())
    }

    pub fn add_uploader(&mut self, p: Principal, now: u64) -> Result<()> {
        if p == Principal::anonymous() {
            return Err(Error::InvalidArgument {
                reason: "the anonymous principal cannot upload".into(),
            });
        }
        self.update_state(|s| {
            if s.uploaders.contains(&p) || p == s.owner {
                return Ok(());
            }
            if s.uploaders.len() >= MAX_UPLOADERS {
                return Err(Error::InvalidArgument {
                    reason: format!("at most {MAX_UPLOADERS} uploaders"),
                });
            }
            s.uploaders.push(p);
            s.updated_at = now;
            Ok(())
        })
    }

    pub fn remove_uploader(&mut self, p: Principal, now: u64) -> Result<()> {
        self.update_state(|s| {
            s.uploaders.retain(|u| *u != p);
            s.updated_at = now;
            Ok(())
        })
    }

    pub fn approve(&mut self, operator: Option<Principal>, now: u64) -> Result<()> {
        if operator == Some(Principal::anonymous()) {
            return Err(Error::InvalidArgument {
                reason: "the anonymous principal cannot be an operator".into(),
            });
        }
        self.update_state(|s| {
            s.operator = operator;
            s.updated_at = now;
            Ok(())
        })
    }

    // -----------------------------------------------------------------------------------------
    // Reads (no authorisation here: callers check `crate::model::auth` first)
    // -----------------------------------------------------------------------------------------

    pub fn get_chunk(&self, index: u32) -> Result<Vec<u8>> {
        let u = self.declared_upload()?;
        if index >= u.chunk_count {
            return Err(Error::ChunkOutOfRange {
                index,
                chunk_count: u.chunk_count,
            });
        }
        let entry = self.chunks.get(&index).ok_or_else(|| Error::NotFound {
            what: format!("chunk {index}"),
        })?;
        let mut buf = vec![0u8; entry.len as usize];
        self.arena
            .read(index as u64 * u.chunk_size as u64, &mut buf);
        Ok(buf)
    }

    /// File bytes `[offset, offset + length)`; see `RangeArgs` for the rules.
    pub fn read_range(&self, offset: u64, length: u64) -> Result<Vec<u8>> {
        let u = self.declared_upload()?;
        if length > MAX_CHUNK_SIZE as u64 {
            return Err(Error::TooLarge {
                size: length,
                limit: MAX_CHUNK_SIZE as u64,
            });
        }
        let end = offset
            .checked_add(length)
            .filter(|end| *end <= u.total_size)
            .ok_or_else(|| Error::InvalidArgument {
                reason: format!(
                    "range {offset}+{length} is outside the file ({} bytes)",
                    u.total_size
                ),
            })?;
        if length == 0 {
            return Ok(Vec::new());
        }
        if self.status() != VideoStatus::Ready {
            // Before Ready only stored chunks may be read.
            let first = (offset / u.chunk_size as u64) as u32;
            let last = ((end - 1) / u.chunk_size as u64) as u32;
            for i in first..=last {
                if !self.chunks.contains_key(&i) {
                    return Err(Error::NotFound {
                        what: format!("chunk {i}"),
                    });
                }
            }
        }
        let mut buf = vec![0u8; length as usize];
        self.arena.read(offset, &mut buf);
        Ok(buf)
    }

    /// Upload chunk `index`'s SHA-256 as verified by `put_chunk` (`None` if not stored).
    pub fn chunk_digest(&self, index: u32) -> Option<Digest32> {
        self.chunks.get(&index).map(|e| e.sha256)
    }

    // -----------------------------------------------------------------------------------------
    // Poster (memory 5)
    // -----------------------------------------------------------------------------------------

    /// Stores (replaces) the poster; empty `data` removes it. Authorisation is the caller's job.
    pub fn set_poster(&mut self, mime_type: &str, data: &[u8], now: u64) -> Result<()> {
        if data.len() as u64 > MAX_POSTER_BYTES {
            return Err(Error::TooLarge {
                size: data.len() as u64,
                limit: MAX_POSTER_BYTES,
            });
        }
        let mut header = [0u8; POSTER_DATA_OFFSET as usize];
        header[0..4].copy_from_slice(POSTER_MAGIC);
        if !data.is_empty() {
            validate_poster_mime(mime_type)?;
            header[4..8].copy_from_slice(&(data.len() as u32).to_le_bytes());
            header[8..40].copy_from_slice(&sha256(data));
            header[40] = mime_type.len() as u8;
            header[41..41 + mime_type.len()].copy_from_slice(mime_type.as_bytes());
        } else if self.poster.size() == 0 {
            // Nothing to clear, and no reason to allocate a bucket for it.
            return Ok(());
        }
        ensure_size(&self.poster, POSTER_DATA_OFFSET + data.len() as u64)?;
        self.poster.write(POSTER_DATA_OFFSET, data);
        self.poster.write(0, &header);
        self.update_state(|s| {
            s.updated_at = now;
            Ok(())
        })
    }

    /// The poster, if one is stored.
    pub fn poster(&self) -> Option<StoredPoster> {
        if self.poster.size() == 0 {
            return None;
        }
        let mut header = [0u8; POSTER_DATA_OFFSET as usize];
        self.poster.read(0, &mut header);
        if &header[0..4] != POSTER_MAGIC {
            return None;
        }
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as u64;
        if len == 0 || len > MAX_POSTER_BYTES {
            return None;
        }
        let mut sha = [0u8; 32];
        sha.copy_from_slice(&header[8..40]);
        let m = (header[40] as usize).min(POSTER_MIME_FIELD);
        let mime_type = String::from_utf8_lossy(&header[41..41 + m]).into_owned();
        let mut bytes = vec![0u8; len as usize];
        self.poster.read(POSTER_DATA_OFFSET, &mut bytes);
        Some(StoredPoster {
            mime_type,
            bytes,
            sha256: sha,
        })
    }

    /// `(mime type, length)` of the poster without reading its bytes.
    pub fn poster_info(&self) -> Option<(String, u64)> {
        if self.poster.size() == 0 {
            return None;
        }
        let mut header = [0u8; 168];
        self.poster.read(0, &mut header);
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as u64;
        if &header[0..4] != POSTER_MAGIC || len == 0 {
            return None;
        }
        let m = (header[40] as usize).min(POSTER_MIME_FIELD);
        Some((
            String::from_utf8_lossy(&header[41..41 + m]).into_owned(),
            len,
        ))
    }

    fn declared_upload(&self) -> Result<UploadDecl> {
        self.state().upload.clone().ok_or_else(|| Error::NotReady {
            reason: "no upload declared".into(),
        })
    }
}

/// Length of chunk `index` (every chunk is `chunk_size` long except a shorter last one).
pub fn chunk_len(total_size: u64, chunk_size: u32, index: u32) -> u64 {
    let start = index as u64 * chunk_size as u64;
    total_size.saturating_sub(start).min(chunk_size as u64)
}

/// `ceil(total_size / chunk_size)`.
pub fn chunk_count(total_size: u64, chunk_size: u32) -> u64 {
    total_size.div_ceil(chunk_size.max(1) as u64)
}

/// Checks an `UploadSpec` against the limits and turns it into the stored declaration.
pub fn validate_spec(spec: &UploadSpec) -> Result<UploadDecl> {
    if spec.mime_type.is_empty()
        || spec.mime_type.len() > MAX_MIME_TYPE_BYTES
        || !spec.mime_type.is_ascii()
    {
        return Err(Error::InvalidArgument {
            reason: format!("mime_type must be 1..={MAX_MIME_TYPE_BYTES} ASCII bytes"),
        });
    }
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
    let count = chunk_count(spec.total_size, spec.chunk_size);
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
    Ok(UploadDecl {
        mime_type: spec.mime_type.clone(),
        total_size: spec.total_size,
        chunk_size: spec.chunk_size,
        chunk_count: count as u32,
        has_chunk_digests,
        file_digest: spec.file_digest.clone(),
        duration_ms: spec.duration_ms,
    })
}

/// The file digest of a sequence of chunk digests (the definition in the module docs); clients
/// and tests use it to predict `VideoMetadata::digest`.
pub fn file_digest<'a>(chunk_digests: impl IntoIterator<Item = &'a Digest32>) -> Digest32 {
    let mut hasher = Sha256::new();
    for d in chunk_digests {
        hasher.update(d);
    }
    hasher.finalize().into()
}

// ---------------------------------------------------------------------------------------------
// The canister's instance
// ---------------------------------------------------------------------------------------------

thread_local! {
    static STORAGE: RefCell<Option<Storage<DefaultMemoryImpl>>> = const { RefCell::new(None) };
}

/// Installs the canister's storage (called by `init` / `post_upgrade`).
pub fn install(storage: Storage<DefaultMemoryImpl>) {
    STORAGE.with(|s| *s.borrow_mut() = Some(storage));
}

/// Runs `f` on the canister's storage. Every entry point runs after `init`/`post_upgrade`, which
/// install it; a missing storage is a bug and traps (nothing to lose: nothing was changed).
pub fn with<T>(f: impl FnOnce(&Storage<DefaultMemoryImpl>) -> T) -> T {
    STORAGE.with(|s| f(s.borrow().as_ref().expect("video storage not initialised")))
}

pub fn with_mut<T>(f: impl FnOnce(&mut Storage<DefaultMemoryImpl>) -> T) -> T {
    STORAGE.with(|s| {
        f(s.borrow_mut()
            .as_mut()
            .expect("video storage not initialised"))
    })
}

/// Public read API for `http_request` (and any other public reader): the video's metadata.
pub fn metadata() -> VideoMetadata {
    with(|s| s.metadata())
}

/// Public read API for `http_request`: file bytes `[offset, offset + length)` of a Ready video
/// (`NotReady` before; `TooLarge` above `MAX_CHUNK_SIZE`; `InvalidArgument` past the end).
pub fn read_range(offset: u64, length: u64) -> Result<Vec<u8>> {
    with(|s| {
        if s.status() != VideoStatus::Ready {
            return Err(Error::NotReady {
                reason: "the video is not published yet".into(),
            });
        }
        s.read_range(offset, length)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::VectorMemory;
    use std::collections::HashMap;
    use std::rc::Rc;

    fn p(n: u8) -> Principal {
        Principal::from_slice(&[n, 2])
    }

    fn init_arg() -> VideoInit {
        VideoInit {
            owner: p(1),
            creator: p(1),
            index: None,
            title: "t".into(),
            description: "d".into(),
            tags: vec!["a".into()],
        }
    }

    fn fresh() -> Storage<VectorMemory> {
        Storage::init(VectorMemory::default(), &init_arg(), p(9), 1).expect("init")
    }

    fn spec(total: u64, chunk: u32) -> UploadSpec {
        UploadSpec {
            mime_type: "video/mp4".into(),
            total_size: total,
            chunk_size: chunk,
            chunk_digests: None,
            file_digest: None,
            duration_ms: Some(1000),
        }
    }

    /// Deterministic, index-dependent test data so a misplaced chunk is detected.
    fn file(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn chunks(data: &[u8], chunk: usize) -> Vec<&[u8]> {
        data.chunks(chunk).collect()
    }

    #[test]
    fn out_of_order_and_repeated_puts_then_finish() {
        let mut s = fresh();
        let data = file(10_000);
        s.begin_upload(&spec(10_000, 3000), 2).unwrap();
        let parts = chunks(&data, 3000);
        assert_eq!(parts.len(), 4);
        for &i in &[3u32, 1, 0, 1, 3] {
            s.put_chunk(i, parts[i as usize], 3).unwrap();
        }
        assert_eq!(s.metadata().uploaded_chunks, 3);
        assert_eq!(s.metadata().uploaded_bytes, 1000 + 3000 + 3000);
        match s.finish_upload(4) {
            Err(Error::Incomplete {
                missing,
                missing_count,
            }) => {
                assert_eq!(missing, vec![2]);
                assert_eq!(missing_count, 1);
            }
            other => panic!("expected Incomplete, got {other:?}"),
        }
        s.put_chunk(2, parts[2], 5).unwrap();
        let m = s.finish_upload(6).unwrap();
        assert_eq!(m.status, VideoStatus::Ready);
        let digests: Vec<Digest32> = parts.iter().map(|c| sha256(c)).collect();
        assert_eq!(m.digest.unwrap().as_slice(), file_digest(&digests));
        assert_eq!(s.read_range(0, 10_000).unwrap(), data);
        assert_eq!(s.read_range(2999, 2).unwrap(), data[2999..3001]);
        assert_eq!(s.get_chunk(3).unwrap(), parts[3]);
        // Immutable once Ready.
        assert_eq!(s.put_chunk(0, parts[0], 7), Err(Error::AlreadyFinished));
        assert_eq!(
            s.begin_upload(&spec(10_000, 3000), 7),
            Err(Error::AlreadyFinished)
        );
        assert_eq!(s.finish_upload(7), Err(Error::AlreadyFinished));
    }

    /// An abandoned upload leaves nothing behind: another file (other size, chunk size and
    /// digests) uploads and reads back exactly, with no chunk of the first one counted or read.
    #[test]
    fn reset_upload_abandons_and_allows_another_file() {
        let mut s = fresh();
        assert_eq!(
            s.reset_upload(1).unwrap().status,
            VideoStatus::Empty,
            "no-op when empty"
        );
        let first = file(10_000);
        s.begin_upload(&spec(10_000, 3000), 2).unwrap();
        for (i, c) in chunks(&first, 3000).iter().enumerate().take(3) {
            s.put_chunk(i as u32, c, 3).unwrap();
        }
        // A different declaration is refused while chunks are stored...
        assert!(matches!(
            s.begin_upload(&spec(7_000, 2000), 4),
            Err(Error::Conflict { .. })
        ));
        // ...and accepted after a reset.
        let m = s.reset_upload(5).unwrap();
        assert_eq!(m.status, VideoStatus::Empty);
        assert_eq!((m.uploaded_chunks, m.uploaded_bytes, m.size), (0, 0, 0));
        assert_eq!(m.updated_at, 5);
        assert!(matches!(
            s.put_chunk(0, &first[..3000], 6),
            Err(Error::NotReady { .. })
        ));

        let second: Vec<u8> = file(7_000).iter().map(|b| b ^ 0x5a).collect();
        let parts = chunks(&second, 2000);
        let mut sp = spec(7_000, 2000);
        sp.chunk_digests = Some(
            parts
                .iter()
                .map(|c| ByteBuf::from(sha256(c).to_vec()))
                .collect(),
        );
        s.begin_upload(&sp, 7).unwrap();
        assert_eq!(s.metadata().uploaded_chunks, 0);
        match s.finish_upload(8) {
            Err(Error::Incomplete { missing_count, .. }) => assert_eq!(missing_count, 4),
            other => panic!("expected Incomplete, got {other:?}"),
        }
        for (i, c) in parts.iter().enumerate() {
            s.put_chunk(i as u32, c, 9).unwrap();
        }
        let m = s.finish_upload(10).unwrap();
        assert_eq!(
            (m.status, m.size, m.uploaded_bytes),
            (VideoStatus::Ready, 7_000, 7_000)
        );
        let digests: Vec<Digest32> = parts.iter().map(|c| sha256(c)).collect();
        assert_eq!(m.digest.unwrap().as_slice(), file_digest(&digests));
        assert_eq!(s.read_range(0, 7_000).unwrap(), second);
        // A finished video cannot be reset.
        assert_eq!(s.reset_upload(11), Err(Error::AlreadyFinished));
        assert_eq!(s.read_range(0, 7_000).unwrap(), second);
    }

    #[test]
    fn digest_definition_is_hash_of_chunk_hashes() {
        // Independent of the code under test: spell the definition out.
        let a = b"hello ".to_vec();
        let b = b"world".to_vec();
        let mut concat = Sha256::digest(&a).to_vec();
        concat.extend_from_slice(&Sha256::digest(&b));
        let want: Digest32 = Sha256::digest(&concat).into();
        let mut s = fresh();
        s.begin_upload(&spec(11, 6), 1).unwrap();
        s.put_chunk(1, &b, 1).unwrap();
        s.put_chunk(0, &a, 1).unwrap();
        assert_eq!(s.finish_upload(2).unwrap().digest.unwrap().as_slice(), want);
        // ...and it is not the plain SHA-256 of the file.
        let plain: Digest32 = Sha256::digest(b"hello world").into();
        assert_ne!(want, plain);
    }

    #[test]
    fn declared_file_digest_is_checked() {
        let mut s = fresh();
        let mut sp = spec(4, 2);
        sp.file_digest = Some(ByteBuf::from(vec![7u8; 32]));
        s.begin_upload(&sp, 1).unwrap();
        s.put_chunk(0, b"ab", 1).unwrap();
        s.put_chunk(1, b"cd", 1).unwrap();
        match s.finish_upload(2) {
            Err(Error::WrongDigest {
                index: None,
                expected,
                actual,
            }) => {
                assert_eq!(expected, vec![7u8; 32]);
                assert_eq!(
                    actual,
                    file_digest(&[sha256(b"ab"), sha256(b"cd")]).to_vec()
                );
            }
            other => panic!("expected WrongDigest, got {other:?}"),
        }
        assert_eq!(s.status(), VideoStatus::Uploading);
    }

    #[test]
    fn wrong_size_out_of_range_and_declared_chunk_digests() {
        let mut s = fresh();
        let mut sp = spec(5, 2);
        sp.chunk_digests = Some(vec![
            ByteBuf::from(sha256(b"ab").to_vec()),
            ByteBuf::from(sha256(b"cd").to_vec()),
            ByteBuf::from(sha256(b"e").to_vec()),
        ]);
        s.begin_upload(&sp, 1).unwrap();
        assert_eq!(
            s.put_chunk(3, b"x", 1),
            Err(Error::ChunkOutOfRange {
                index: 3,
                chunk_count: 3
            })
        );
        assert_eq!(
            s.put_chunk(0, b"abc", 1),
            Err(Error::WrongChunkSize {
                index: 0,
                expected: 2,
                actual: 3
            })
        );
        assert_eq!(
            s.put_chunk(2, b"ef", 1),
            Err(Error::WrongChunkSize {
                index: 2,
                expected: 1,
                actual: 2
            })
        );
        match s.put_chunk(1, b"cx", 1) {
            Err(Error::WrongDigest { index: Some(1), .. }) => {}
            other => panic!("expected WrongDigest, got {other:?}"),
        }
        assert_eq!(s.chunks_stored(), 0);
        s.put_chunk(2, b"e", 1).unwrap();
        let r = s.put_chunk(1, b"cd", 1).unwrap();
        assert_eq!((r.uploaded_chunks, r.chunk_count, r.len), (2, 3, 2));
    }

    #[test]
    fn spec_validation() {
        let mut s = fresh();
        assert!(matches!(
            s.begin_upload(&spec(0, 1), 1),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            s.begin_upload(&spec(10, 0), 1),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            s.begin_upload(&spec(10, MAX_CHUNK_SIZE + 1), 1),
            Err(Error::InvalidArgument { .. })
        ));
        assert_eq!(
            s.begin_upload(&spec(MAX_VIDEO_SIZE + 1, MAX_CHUNK_SIZE), 1),
            Err(Error::TooLarge {
                size: MAX_VIDEO_SIZE + 1,
                limit: MAX_VIDEO_SIZE
            })
        );
        // 400 GiB in 1-byte chunks: too many chunks.
        assert!(matches!(
            s.begin_upload(&spec(MAX_VIDEO_SIZE, 1), 1),
            Err(Error::InvalidArgument { .. })
        ));
        let mut bad = spec(10, 5);
        bad.chunk_digests = Some(vec![ByteBuf::from(vec![0; 32])]);
        assert!(matches!(
            s.begin_upload(&bad, 1),
            Err(Error::InvalidArgument { .. })
        ));
        bad.chunk_digests = Some(vec![ByteBuf::from(vec![0; 32]), ByteBuf::from(vec![0; 31])]);
        assert!(matches!(
            s.begin_upload(&bad, 1),
            Err(Error::InvalidArgument { .. })
        ));
        assert_eq!(s.status(), VideoStatus::Empty);
    }

    #[test]
    fn redeclare_resume_and_conflict() {
        let mut s = fresh();
        s.begin_upload(&spec(10, 5), 1).unwrap();
        // Different spec before any chunk: replaces the declaration.
        s.begin_upload(&spec(12, 5), 1).unwrap();
        assert_eq!(s.metadata().size, 12);
        s.put_chunk(0, &file(5), 1).unwrap();
        // Identical: resume, chunk kept.
        s.begin_upload(&spec(12, 5), 2).unwrap();
        assert_eq!(s.chunks_stored(), 1);
        assert!(matches!(
            s.begin_upload(&spec(12, 4), 2),
            Err(Error::Conflict { .. })
        ));
        assert_eq!(s.metadata().chunk_size, 5);
    }

    #[test]
    fn digest_pages() {
        let mut s = fresh();
        assert!(matches!(
            s.chunk_digests(&DigestsArgs::default()),
            Err(Error::NotReady { .. })
        ));
        s.begin_upload(&spec(10, 1), 1).unwrap();
        for i in [0u32, 3, 4, 9] {
            s.put_chunk(i, &[i as u8], 1).unwrap();
        }
        let digest = |i: u8| Some(ByteBuf::from(Sha256::digest([i]).to_vec()));
        let page = s
            .chunk_digests(&DigestsArgs {
                start: 2,
                limit: Some(3),
            })
            .unwrap();
        assert_eq!(page.start, 2);
        assert_eq!(page.digests, vec![None, digest(3), digest(4)]);
        assert_eq!((page.chunk_count, page.next), (10, Some(5)));
        let rest = s
            .chunk_digests(&DigestsArgs {
                start: 5,
                limit: None,
            })
            .unwrap();
        assert_eq!(rest.digests.len(), 5);
        assert_eq!(rest.digests[4], digest(9));
        assert!(rest.digests[..4].iter().all(Option::is_none));
        assert_eq!(rest.next, None);
        // The end is a valid (empty) page; past it is an error.
        let end = s
            .chunk_digests(&DigestsArgs {
                start: 10,
                limit: Some(0),
            })
            .unwrap();
        assert!(end.digests.is_empty() && end.next.is_none());
        assert!(matches!(
            s.chunk_digests(&DigestsArgs {
                start: 11,
                limit: None
            }),
            Err(Error::ChunkOutOfRange { .. })
        ));
    }

    #[test]
    fn missing_list_pages() {
        let mut s = fresh();
        s.begin_upload(&spec(100, 1), 1).unwrap();
        for i in [0u32, 2, 3, 50, 99] {
            s.put_chunk(i, &[i as u8], 1).unwrap();
        }
        let page = s
            .missing_chunks(&MissingArgs {
                start: None,
                limit: Some(3),
            })
            .unwrap();
        assert_eq!(page.missing, vec![1, 4, 5]);
        assert_eq!(page.missing_count, 95);
        assert_eq!(page.next, Some(6));
        let page = s
            .missing_chunks(&MissingArgs {
                start: Some(48),
                limit: Some(100),
            })
            .unwrap();
        let want: Vec<u32> = (48..99).filter(|i| *i != 50).collect();
        assert_eq!(page.missing, want);
        assert_eq!(page.next, None);
        // Walking budget: stops early with a resumable cursor.
        let (m, next) = s.scan_missing(0, 100, 1000, 2);
        assert_eq!((m, next), (vec![1], Some(3)));
        let all = s
            .missing_chunks(&MissingArgs {
                start: Some(100),
                limit: None,
            })
            .unwrap();
        assert!(all.missing.is_empty() && all.next.is_none());
    }

    #[test]
    fn read_rules() {
        let mut s = fresh();
        assert!(matches!(s.read_range(0, 1), Err(Error::NotReady { .. })));
        s.begin_upload(&spec(10, 4), 1).unwrap();
        s.put_chunk(0, b"0123", 1).unwrap();
        // Before Ready only stored chunks.
        assert_eq!(s.read_range(1, 3).unwrap(), b"123");
        assert!(matches!(s.read_range(2, 4), Err(Error::NotFound { .. })));
        assert!(matches!(s.get_chunk(1), Err(Error::NotFound { .. })));
        assert_eq!(
            s.get_chunk(3),
            Err(Error::ChunkOutOfRange {
                index: 3,
                chunk_count: 3
            })
        );
        s.put_chunk(1, b"4567", 1).unwrap();
        s.put_chunk(2, b"89", 1).unwrap();
        s.finish_upload(2).unwrap();
        assert_eq!(s.read_range(6, 4).unwrap(), b"6789"); // ends exactly at the end
        assert_eq!(s.read_range(10, 0).unwrap(), b"");
        assert!(matches!(
            s.read_range(7, 4),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            s.read_range(u64::MAX, 2),
            Err(Error::InvalidArgument { .. })
        ));
        assert_eq!(
            s.read_range(0, MAX_CHUNK_SIZE as u64 + 1),
            Err(Error::TooLarge {
                size: MAX_CHUNK_SIZE as u64 + 1,
                limit: MAX_CHUNK_SIZE as u64
            })
        );
    }

    #[test]
    fn metadata_edits_and_limits() {
        let mut s = fresh();
        let m = s
            .update_metadata(
                &MetadataPatch {
                    title: Some("new".into()),
                    description: None,
                    tags: None,
                },
                5,
            )
            .unwrap();
        assert_eq!(
            (m.title.as_str(), m.description.as_str(), m.updated_at),
            ("new", "d", 5)
        );
        let long = "x".repeat(canvid_types::video::MAX_TITLE_BYTES + 1);
        assert!(matches!(
            s.update_metadata(
                &MetadataPatch {
                    title: Some(long),
                    ..Default::default()
                },
                6
            ),
            Err(Error::TooLarge { .. })
        ));
        let many = vec!["t".to_string(); canvid_types::video::MAX_TAGS + 1];
        assert!(matches!(
            s.update_metadata(
                &MetadataPatch {
                    tags: Some(many),
                    ..Default::default()
                },
                6
            ),
            Err(Error::InvalidArgument { .. })
        ));
        assert_eq!(s.metadata().title, "new");
        assert_eq!(s.metadata().updated_at, 5);
    }

    #[test]
    fn state_survives_reload_and_header_is_checked() {
        let mem = VectorMemory::default();
        let mut s = Storage::init(mem.clone(), &init_arg(), p(9), 1).unwrap();
        s.begin_upload(&spec(6, 3), 1).unwrap();
        s.put_chunk(1, b"def", 2).unwrap();
        s.add_uploader(p(5), 2).unwrap();
        drop(s);
        let s = Storage::load(mem.clone()).unwrap();
        assert_eq!(s.layout_version(), LAYOUT_VERSION);
        assert_eq!(s.read_range(3, 3).unwrap(), b"def");
        assert_eq!(s.state().uploaders, vec![p(5)]);
        assert_eq!(s.state().installer, p(9));
        // A foreign / empty memory is refused rather than reinterpreted.
        assert!(Storage::load(VectorMemory::default()).is_err());
        let other = VectorMemory::default();
        other.grow(1);
        other.write(0, b"not a memory manager");
        assert!(Storage::load(other).is_err());
    }

    #[test]
    fn layout_1_is_migrated_to_2_and_newer_layouts_are_refused() {
        let mem = VectorMemory::default();
        let mut s = Storage::init(mem.clone(), &init_arg(), p(9), 1).unwrap();
        s.begin_upload(&spec(6, 3), 1).unwrap();
        s.put_chunk(0, b"abc", 2).unwrap();
        // Make it a version-1 memory: header field rewritten, memory 5 never grown.
        s.header.write(4, &1u32.to_le_bytes());
        assert_eq!(s.layout_version(), 1);
        assert!(s.poster().is_none());
        drop(s);
        let mut s = Storage::load(mem.clone()).unwrap();
        assert_eq!(s.layout_version(), 2, "version 1 is migrated on load");
        assert_eq!(s.read_range(0, 3).unwrap(), b"abc");
        assert!(s.poster().is_none(), "an absent memory 5 is no poster");
        s.set_poster("image/png", b"img", 3).unwrap();
        drop(s);
        let s = Storage::load(mem.clone()).unwrap();
        let poster = s.poster().expect("the poster survives a reload");
        assert_eq!(
            (poster.mime_type.as_str(), &poster.bytes[..]),
            ("image/png", &b"img"[..])
        );
        // A layout from the future is refused, not reinterpreted.
        s.header.write(4, &3u32.to_le_bytes());
        drop(s);
        assert!(matches!(
            Storage::load(mem),
            Err(Error::InvalidArgument { .. })
        ));
    }

    /// A memory that only stores the pages written: lets a test address hundreds of GiB.
    #[derive(Clone, Default)]
    struct SparseMemory(Rc<std::cell::RefCell<SparsePages>>);

    /// (size in pages, written pages by page number)
    type SparsePages = (u64, HashMap<u64, Vec<u8>>);

    impl Memory for SparseMemory {
        fn size(&self) -> u64 {
            self.0.borrow().0
        }
        fn grow(&self, pages: u64) -> i64 {
            let mut inner = self.0.borrow_mut();
            let old = inner.0;
            inner.0 += pages;
            old as i64
        }
        fn read(&self, offset: u64, dst: &mut [u8]) {
            let inner = self.0.borrow();
            assert!(
                offset + dst.len() as u64 <= inner.0 * WASM_PAGE,
                "read out of bounds"
            );
            for (i, b) in dst.iter_mut().enumerate() {
                let a = offset + i as u64;
                *b = inner
                    .1
                    .get(&(a / WASM_PAGE))
                    .map_or(0, |p| p[(a % WASM_PAGE) as usize]);
            }
        }
        fn write(&self, offset: u64, src: &[u8]) {
            let mut inner = self.0.borrow_mut();
            assert!(
                offset + src.len() as u64 <= inner.0 * WASM_PAGE,
                "write out of bounds"
            );
            for (i, b) in src.iter().enumerate() {
                let a = offset + i as u64;
                inner
                    .1
                    .entry(a / WASM_PAGE)
                    .or_insert_with(|| vec![0; WASM_PAGE as usize])[(a % WASM_PAGE) as usize] = *b;
            }
        }
    }

    #[test]
    fn big_offsets_beyond_4_gib() {
        let mut s = Storage::init(SparseMemory::default(), &init_arg(), p(9), 1).unwrap();
        let total = MAX_VIDEO_SIZE; // 400 GiB
        let chunk = MAX_CHUNK_SIZE;
        s.begin_upload(&spec(total, chunk), 1).unwrap();
        let count = s.metadata().chunk_count;
        assert_eq!(count as u64, total.div_ceil(chunk as u64));
        let last = count - 1;
        let last_len = total - last as u64 * chunk as u64;
        assert_eq!(chunk_len(total, chunk, last), last_len);
        let tail: Vec<u8> = (0..last_len).map(|i| (i % 7) as u8).collect();
        s.put_chunk(last, &tail, 1).unwrap();
        let mid = 3000u32; // offset 6 GB
        s.put_chunk(mid, &vec![9u8; chunk as usize], 1).unwrap();
        assert_eq!(s.read_range(total - 3, 3).unwrap(), tail[tail.len() - 3..]);
        assert_eq!(
            s.read_range(mid as u64 * chunk as u64 + 5, 2).unwrap(),
            vec![9, 9]
        );
        assert_eq!(s.get_chunk(last).unwrap(), tail);
        let page = s
            .missing_chunks(&MissingArgs {
                start: Some(last - 2),
                limit: None,
            })
            .unwrap();
        assert_eq!(page.missing, vec![last - 2, last - 1]);
        assert_eq!(page.missing_count, count - 2);
    }
}
