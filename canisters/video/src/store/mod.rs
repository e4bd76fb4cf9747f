//! The video canister's store: its stable-memory state and the upload / read logic over it.
//!
//! Everything lives in stable memory from the first message on, so an upgrade moves no data:
//! `pre_upgrade` does nothing and `post_upgrade` only re-opens the structures below (O(1) work,
//! whatever the size of the video).
//!
//! # Layouts
//!
//! Two families share the virtual memories below:
//! - **layout 4** (every video installed by this module): the page allocator of [`paged`] —
//!   a 256 KiB header and extent table at byte 0 (magic "CVID"), then 64 KiB pages handed to
//!   the virtual memories in contiguous runs. A memory costs its size rounded up to 64 KiB, so
//!   a video's footprint is its bytes + ≈ 0.5 MiB (issue 19: ≤ 1.05 × content + 2 MiB);
//! - **layouts 1–3** (videos installed before): a `MemoryManager` with 16 MiB buckets, below.
//!   They are never converted (that would move every byte); they keep loading unchanged and
//!   can hold named files too (memories 7 and 8 get buckets like the others).
//!
//! [`VideoStore::load`] tells them apart by the first bytes of stable memory: "CVID" is
//! layout 4, "MGR" a `MemoryManager`. A module older than layout 4 that is given a layout-4
//! memory finds no "MGR", lays out an empty manager, finds no canvid header in it and traps
//! in `post_upgrade`: the downgrade is rolled back and nothing is lost.
//!
//! ## Raw stable memory of layouts 1–3
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
//! 7   files     StableBTreeMap<PathKey, FileRecord> named files (`files` module docs)
//! 8   file arena raw                               their chunk entries and bytes
//! ```
//!
//! Memory 0 exists in layouts 1–3 only (layout 4 keeps its header at byte 0).
//!
//! ### Memory 0: header (16 bytes; layouts 1–3)
//!
//! ```text
//! offset  size  field
//! 0       4     magic "CVID"
//! 4       4     canvid layout version (u32 LE) = 1, 2 or 3
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
//! - **4**: the page allocator ([`paged`]) instead of the `MemoryManager`, for new videos; the
//!   same memories 1–8. Not a migration target: a layout-3 video stays layout 3 (its data
//!   would have to move), and reads and writes named files in memories 7 and 8 of its manager.
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
use std::rc::Rc;

pub mod access;
pub mod canister;
pub mod files;
pub mod paged;
mod poster;
mod state;
mod upload;

#[cfg(test)]
mod tests;

pub use access::{AccessStore, Pass, Payout, Purchase};
pub use canvid_types::protocol::Digest32;
pub use files::{FileRecord, FileStore, FilesState, MAX_RESERVED_AHEAD};
use paged::{PageAllocator, PagedMemory};
pub use poster::{StoredPoster, POSTER_MAGIC};
pub use state::{ChunkEntry, Handover, InFlight, State, UploadDecl};
pub use upload::{validate_spec, INCOMPLETE_LIST, MISSING_SCAN_BUDGET};

pub const MAGIC: &[u8; 4] = b"CVID";
/// The layout new videos get.
pub const LAYOUT_VERSION: u32 = 4;
/// The newest layout of the `MemoryManager` family (videos installed before layout 4).
pub const MANAGED_LAYOUT_VERSION: u32 = 3;
/// Oldest layout [`VideoStore::load`] migrates from.
pub const OLDEST_LAYOUT_VERSION: u32 = 1;
pub const BUCKET_SIZE_PAGES: u16 = 256;
const HEADER_LEN: usize = 16;
const WASM_PAGE: u64 = 65_536;

const HEADER_MEM: u8 = 0;
const STATE_MEM: u8 = 1;
const CHUNKS_MEM: u8 = 2;
const DECLARED_MEM: u8 = 3;
const ARENA_MEM: u8 = 4;
const POSTER_MEM: u8 = 5;
const ACCESS_MEM: u8 = 6;
const FILE_TABLE_MEM: u8 = 7;
const FILE_ARENA_MEM: u8 = 8;

/// The video canister's whole stable state over any `Memory` (the canister uses
/// `DefaultMemoryImpl`, native tests a `VectorMemory` or a sparse test memory).
pub struct VideoStore<M: Memory> {
    layout: Layout<M>,
    /// The small candid record (memory 1); stored as `Encode!(&State)`, see [`State`].
    state: StableCell<Candid<State>, SubMemory<M>>,
    chunks: StableBTreeMap<u32, ChunkEntry, SubMemory<M>>,
    declared: SubMemory<M>,
    arena: SubMemory<M>,
    poster: SubMemory<M>,
    /// Memory 6, created on the first write (`store::access`).
    access: AccessStore<SubMemory<M>>,
    /// Memories 7 and 8, created on the first named file (`store::files`).
    files: FileStore<SubMemory<M>>,
}

/// Where the canvid header and the virtual memories live.
enum Layout<M: Memory> {
    /// Layouts 1–3: a `MemoryManager` with 16 MiB buckets; the header is memory 0.
    Managed { header: VirtualMemory<M> },
    /// Layout 4 (`paged`): the header is at byte 0 of stable memory.
    Paged { alloc: Rc<PageAllocator<M>> },
}

/// One virtual memory, of whichever layout the canister has.
pub enum SubMemory<M: Memory> {
    Managed(VirtualMemory<M>),
    Paged(PagedMemory<M>),
}

impl<M: Memory> Memory for SubMemory<M> {
    fn size(&self) -> u64 {
        match self {
            SubMemory::Managed(m) => m.size(),
            SubMemory::Paged(m) => m.size(),
        }
    }
    fn grow(&self, pages: u64) -> i64 {
        match self {
            SubMemory::Managed(m) => m.grow(pages),
            SubMemory::Paged(m) => m.grow(pages),
        }
    }
    fn read(&self, offset: u64, dst: &mut [u8]) {
        match self {
            SubMemory::Managed(m) => m.read(offset, dst),
            SubMemory::Paged(m) => m.read(offset, dst),
        }
    }
    fn write(&self, offset: u64, src: &[u8]) {
        match self {
            SubMemory::Managed(m) => m.write(offset, src),
            SubMemory::Paged(m) => m.write(offset, src),
        }
    }
}

/// Hands out the virtual memories of either layout.
enum Memories<M: Memory> {
    Managed(MemoryManager<M>),
    Paged(Rc<PageAllocator<M>>),
}

impl<M: Memory> Memories<M> {
    fn get(&self, id: u8) -> SubMemory<M> {
        match self {
            Memories::Managed(mm) => SubMemory::Managed(mm.get(MemoryId::new(id))),
            Memories::Paged(alloc) => SubMemory::Paged(PagedMemory::open(alloc, id)),
        }
    }
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

/// The end of a read of `length` bytes at `offset` in a file of `size` bytes (`what` names the
/// file in the error): at most `MAX_CHUNK_SIZE` bytes, inside the file, nothing clamped.
fn checked_range(offset: u64, length: u64, size: u64, what: &str) -> Result<u64> {
    if length > MAX_CHUNK_SIZE as u64 {
        return Err(Error::TooLarge {
            size: length,
            limit: MAX_CHUNK_SIZE as u64,
        });
    }
    offset
        .checked_add(length)
        .filter(|end| *end <= size)
        .ok_or_else(|| Error::InvalidArgument {
            reason: format!("range {offset}+{length} is outside {what} ({size} bytes)"),
        })
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
    /// Lays out a fresh stable memory (`init`): layout 4.
    pub fn init(memory: M, init: &VideoInit, installer: Principal, now: u64) -> Result<Self> {
        init.validate()?;
        let alloc = PageAllocator::init(memory, LAYOUT_VERSION)
            .map_err(|reason| Error::Conflict { reason })?;
        let layout = Layout::Paged {
            alloc: Rc::clone(&alloc),
        };
        Self::init_in(layout, Memories::Paged(alloc), init, installer, now)
    }

    /// Lays out a fresh stable memory the way modules before layout 4 did (a `MemoryManager`
    /// with 16 MiB buckets, layout 3): for tests of the older layouts' code paths.
    pub fn init_managed(
        memory: M,
        init: &VideoInit,
        installer: Principal,
        now: u64,
    ) -> Result<Self> {
        init.validate()?;
        let mm = MemoryManager::init_with_bucket_size(memory, BUCKET_SIZE_PAGES);
        let header = mm.get(MemoryId::new(HEADER_MEM));
        if header.size() != 0 {
            return Err(Error::Conflict {
                reason: "stable memory is not empty".into(),
            });
        }
        ensure_size(&header, HEADER_LEN as u64)?;
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..4].copy_from_slice(MAGIC);
        bytes[4..8].copy_from_slice(&MANAGED_LAYOUT_VERSION.to_le_bytes());
        bytes[8..10].copy_from_slice(&BUCKET_SIZE_PAGES.to_le_bytes());
        header.write(0, &bytes);
        Self::init_in(
            Layout::Managed { header },
            Memories::Managed(mm),
            init,
            installer,
            now,
        )
    }

    /// Rewrites the layout version field (tests of migrations and refusals).
    pub fn write_layout_version(&self, version: u32) {
        match &self.layout {
            Layout::Managed { header } => header.write(4, &version.to_le_bytes()),
            Layout::Paged { alloc } => alloc.set_layout_version(version),
        }
    }

    fn init_in(
        layout: Layout<M>,
        mems: Memories<M>,
        init: &VideoInit,
        installer: Principal,
        now: u64,
    ) -> Result<Self> {
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
            files: None,
        };
        Ok(Self::assemble(
            layout,
            &mems,
            StableCell::new(mems.get(STATE_MEM), Candid(state)),
            StableBTreeMap::new(mems.get(CHUNKS_MEM)),
        ))
    }

    fn assemble(
        layout: Layout<M>,
        mems: &Memories<M>,
        state: StableCell<Candid<State>, SubMemory<M>>,
        chunks: StableBTreeMap<u32, ChunkEntry, SubMemory<M>>,
    ) -> Self {
        VideoStore {
            layout,
            state,
            chunks,
            declared: mems.get(DECLARED_MEM),
            arena: mems.get(ARENA_MEM),
            poster: mems.get(POSTER_MEM),
            access: AccessStore::open(mems.get(ACCESS_MEM)),
            files: FileStore::open(mems.get(FILE_TABLE_MEM), mems.get(FILE_ARENA_MEM)),
        }
    }

    /// Re-opens the structures after an upgrade; checks the header first.
    pub fn load(memory: M) -> Result<Self> {
        if memory.size() == 0 {
            return Err(Error::NotFound {
                what: "video canister stable memory (empty)".into(),
            });
        }
        if paged::is_paged(&memory) {
            return Self::load_paged(memory);
        }
        let mm = MemoryManager::init_with_bucket_size(memory, BUCKET_SIZE_PAGES);
        let header = mm.get(MemoryId::new(HEADER_MEM));
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
        if !(OLDEST_LAYOUT_VERSION..=MANAGED_LAYOUT_VERSION).contains(&version) {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "stable layout version {version} in a MemoryManager layout, this build \
                     reads {OLDEST_LAYOUT_VERSION}..={MANAGED_LAYOUT_VERSION} there (and \
                     {LAYOUT_VERSION} in its own)"
                ),
            });
        }
        let mems = Memories::Managed(mm);
        let state_mem = mems.get(STATE_MEM);
        Self::check_state_cell(&state_mem)?;
        if version < MANAGED_LAYOUT_VERSION {
            // 1 -> 2: memory 5 (poster) is new and absent means "no poster"; 2 -> 3: memory 6
            // (access) is new and absent means "no allowlist, passes or receipts", and the
            // state cell's new `access` field decodes as `None` (public). Only the version
            // field changes. Done last, after every check above passed.
            header.write(4, &MANAGED_LAYOUT_VERSION.to_le_bytes());
        }
        // Named files (memories 7 and 8) need no migration either: absent means none, and they
        // are created in the same MemoryManager on the first declaration.
        Ok(Self::assemble(
            Layout::Managed { header },
            &mems,
            StableCell::init(state_mem, Candid(Self::placeholder())),
            StableBTreeMap::init(mems.get(CHUNKS_MEM)),
        ))
    }

    fn load_paged(memory: M) -> Result<Self> {
        let alloc =
            PageAllocator::open(memory).map_err(|reason| Error::InvalidArgument { reason })?;
        let version = alloc.layout_version();
        if version != LAYOUT_VERSION {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "stable layout version {version}, this build reads {LAYOUT_VERSION} in its \
                     own layout"
                ),
            });
        }
        let mems = Memories::Paged(Rc::clone(&alloc));
        let state_mem = mems.get(STATE_MEM);
        Self::check_state_cell(&state_mem)?;
        Ok(Self::assemble(
            Layout::Paged { alloc },
            &mems,
            StableCell::init(state_mem, Candid(Self::placeholder())),
            StableBTreeMap::init(mems.get(CHUNKS_MEM)),
        ))
    }

    fn check_state_cell(state_mem: &SubMemory<M>) -> Result<()> {
        if state_mem.size() == 0 {
            return Err(Error::NotFound {
                what: "video state (stable memory 1)".into(),
            });
        }
        let mut magic = [0u8; 3];
        state_mem.read(0, &mut magic);
        if &magic != b"SCL" {
            return Err(Error::InvalidArgument {
                reason: "state cell (stable memory 1) is corrupt".into(),
            });
        }
        Ok(())
    }

    /// `Cell::init` keeps the stored value when the memory holds a cell (checked first by
    /// [`Self::check_state_cell`]): this placeholder is never written.
    fn placeholder() -> State {
        State {
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
            files: None,
        }
    }

    pub fn layout_version(&self) -> u32 {
        match &self.layout {
            Layout::Managed { header } => {
                let mut v = [0u8; 4];
                header.read(4, &mut v);
                u32::from_le_bytes(v)
            }
            Layout::Paged { alloc } => alloc.layout_version(),
        }
    }

    /// Pages a virtual memory grows by at least: a 16 MiB bucket in layouts 1–3, one page in 4.
    pub fn allocation_unit_pages(&self) -> u64 {
        match &self.layout {
            Layout::Managed { .. } => u64::from(BUCKET_SIZE_PAGES),
            Layout::Paged { .. } => 1,
        }
    }

    /// Extents in the page table (layout 4), for `canister_info` and the tests.
    pub fn extent_count(&self) -> Option<u32> {
        match &self.layout {
            Layout::Managed { .. } => None,
            Layout::Paged { alloc } => Some(alloc.extent_count()),
        }
    }

    pub fn state(&self) -> &State {
        &self.state.get().0
    }

    pub fn access(&self) -> &AccessStore<SubMemory<M>> {
        &self.access
    }

    pub fn access_mut(&mut self) -> &mut AccessStore<SubMemory<M>> {
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
            files: Some(s.files.as_ref().map_or(0, |f| f.declared)),
            renditions: Some(
                s.files
                    .as_ref()
                    .map(|f| f.renditions.clone())
                    .unwrap_or_default(),
            ),
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
            encryption: s.upload.as_ref().and_then(|u| u.encryption.clone()),
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
        let end = checked_range(offset, length, u.total_size, "the file")?;
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
