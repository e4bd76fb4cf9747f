//! The video canister's store: its stable-memory state and the upload / read logic over it.
//!
//! Everything lives in stable memory from the first message on, so an upgrade moves no data:
//! `pre_upgrade` does nothing and `post_upgrade` only re-opens the structures below (O(1) work,
//! whatever the size of the video).
//!
//! # Layout (version 3)
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
//! 6   access    StableBTreeMap<AccessKey, AccessValue> allowlist, passes, receipts, purchases
//!                                                  (layout version 3; `access` module docs)
//! ```
//!
//! ### Memory 0: header (16 bytes)
//!
//! ```text
//! offset  size  field
//! 0       4     magic "CVID"
//! 4       4     canvid layout version (u32 LE) = 3
//! 8       2     memory-manager bucket size in pages (u16 LE) = 256 (the one this layout assumes)
//! 10      6     reserved, zero
//! ```
//!
//! `post_upgrade` refuses (traps, so the upgrade is rolled back) a header with another magic or a
//! newer version. Versions:
//! - **1**: memories 0–4.
//! - **2**: adds memory 5 (poster). Migration 1 → 2 (in [`VideoStore::load`]): rewrite the version
//!   field; nothing else, because an absent memory 5 (size 0) means "no poster". A version-1
//!   build refuses a version-2 memory, so a downgrade is rolled back instead of losing the poster.
//! - **3**: adds memory 6 (access records, created on the first write) and the state cell's
//!   `access`, `next_purchase`, `token_secret` fields. Migration 2 → 3: rewrite the version
//!   field; absent means public. A version-2 build refuses a version-3 memory, so a downgrade
//!   is rolled back instead of silently making a private or paid video public.
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
//! buckets) only as far as the highest chunk written, and a put may grow it only up to
//! `uploaded_bytes + UPLOAD_WINDOW_CHUNKS * chunk_size` (64 chunks past the bytes stored; any
//! chunk inside the arena already allocated is accepted): stable memory never shrinks, so one
//! put of the last chunk of a 400 GiB declaration must not allocate 400 GiB
//! ([`VideoStore::arena_allocated_bytes`], `canvid_types::video::UPLOAD_WINDOW_CHUNKS`).
//! Not a layout change: the same bytes, a rule on when they may be written.
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
//! declared `chunk_size`: [`canvid_types::protocol::file_digest`], shared with the clients. A
//! single SHA-256 over a multi-GiB file does not fit one message (~75 instructions/byte on
//! wasm32); this definition needs 32 bytes per chunk at finish time, and a client computes it
//! while it hashes the chunks it uploads.
//!
//! # Code
//!
//! [`VideoStore`] (here: opening, migration, metadata, roles, reads) is split by concern:
//! `state` (the state cell's record and the chunk table's values, with their encodings),
//! `upload` (declare, put, list missing chunks and digests, reset, finish), `poster` (memory 5),
//! and [`canister`] (the canister's one instance).

use candid::Principal;
use canvid_stable_common::Candid;
use canvid_types::video::{
    validate_text_fields, MetadataPatch, VideoInit, VideoMetadata, VideoStatus, MAX_CHUNK_SIZE,
    MAX_UPLOADERS,
};
use canvid_types::{Error, Result};
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::{Cell as StableCell, Memory, StableBTreeMap};
use sha2::{Digest, Sha256};

pub mod access;
pub mod canister;
mod poster;
mod state;
mod upload;

#[cfg(test)]
mod tests;

pub use access::{AccessStore, Pass, Payout, Purchase};
pub use canvid_types::protocol::Digest32;
pub use poster::{StoredPoster, POSTER_MAGIC};
pub use state::{ChunkEntry, Handover, InFlight, State, UploadDecl};
pub use upload::{validate_spec, INCOMPLETE_LIST, MISSING_SCAN_BUDGET};

pub const MAGIC: &[u8; 4] = b"CVID";
pub const LAYOUT_VERSION: u32 = 3;
/// Oldest layout [`VideoStore::load`] migrates from.
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
const ACCESS_MEM: MemoryId = MemoryId::new(6);

/// The video canister's whole stable state over any `Memory` (the canister uses
/// `DefaultMemoryImpl`, native tests a `VectorMemory` or a sparse test memory).
pub struct VideoStore<M: Memory> {
    header: VirtualMemory<M>,
    /// The small candid record (memory 1); stored as `Encode!(&State)`, see [`State`].
    state: StableCell<Candid<State>, VirtualMemory<M>>,
    chunks: StableBTreeMap<u32, ChunkEntry, VirtualMemory<M>>,
    declared: VirtualMemory<M>,
    arena: VirtualMemory<M>,
    poster: VirtualMemory<M>,
    /// Memory 6, created on the first write (`store::access`).
    access: AccessStore<M>,
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

impl<M: Memory> VideoStore<M> {
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
            pending_offer: None,
            handover: init.funded_by.map(|funded_by| Handover {
                funded_by,
                handed_at: None,
                in_flight: false,
                attempts: 0,
                last_error: None,
                cycles_returned: 0,
            }),
            access: None,
            next_purchase: None,
            token_secret: None,
            platform_fee: init.platform_fee.clone(),
        };
        Ok(VideoStore {
            header,
            state: StableCell::new(mm.get(STATE_MEM), Candid(state)),
            chunks: StableBTreeMap::new(mm.get(CHUNKS_MEM)),
            declared: mm.get(DECLARED_MEM),
            arena: mm.get(ARENA_MEM),
            poster: mm.get(POSTER_MEM),
            access: AccessStore::open(mm.get(ACCESS_MEM)),
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
            pending_offer: None,
            handover: None,
            access: None,
            next_purchase: None,
            token_secret: None,
            platform_fee: None,
        };
        let mut magic = [0u8; 3];
        state_mem.read(0, &mut magic);
        if &magic != b"SCL" {
            return Err(Error::InvalidArgument {
                reason: "state cell (stable memory 1) is corrupt".into(),
            });
        }
        if version < LAYOUT_VERSION {
            // 1 -> 2: memory 5 (poster) is new and absent means "no poster"; 2 -> 3: memory 6
            // (access) is new and absent means "no allowlist, passes or receipts", and the
            // state cell's new `access` field decodes as `None` (public). Only the version
            // field changes. Done last, after every check above passed.
            header.write(4, &LAYOUT_VERSION.to_le_bytes());
        }
        Ok(VideoStore {
            header,
            state: StableCell::init(state_mem, Candid(placeholder)),
            chunks: StableBTreeMap::init(mm.get(CHUNKS_MEM)),
            declared: mm.get(DECLARED_MEM),
            arena: mm.get(ARENA_MEM),
            poster: mm.get(POSTER_MEM),
            access: AccessStore::open(mm.get(ACCESS_MEM)),
        })
    }

    pub fn layout_version(&self) -> u32 {
        let mut v = [0u8; 4];
        self.header.read(4, &mut v);
        u32::from_le_bytes(v)
    }

    pub fn state(&self) -> &State {
        &self.state.get().0
    }

    pub fn access(&self) -> &AccessStore<M> {
        &self.access
    }

    pub fn access_mut(&mut self) -> &mut AccessStore<M> {
        &mut self.access
    }

    /// Applies `f` to a copy of the state and stores it only if `f` succeeds.
    pub fn update_state<T>(&mut self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut s = self.state().clone();
        let out = f(&mut s)?;
        self.state.set(Candid(s));
        Ok(out)
    }

    /// Applies `f`, which cannot fail, to the state and stores the result.
    pub fn mutate_state<T>(&mut self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut s = self.state().clone();
        let out = f(&mut s);
        self.state.set(Candid(s));
        out
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
            files: None,
            renditions: None,
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
            pending_offer: s.pending_offer.clone(),
            control: Some(crate::logic::control_status(s)),
        }
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
    // Reads (no authorisation here: callers check `crate::guards::authorize` first)
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

    fn declared_upload(&self) -> Result<UploadDecl> {
        self.state().upload.clone().ok_or_else(|| Error::NotReady {
            reason: "no upload declared".into(),
        })
    }
}
