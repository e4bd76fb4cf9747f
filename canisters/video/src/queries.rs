//! Query endpoints.

use candid::Principal;
use canvid_types::files::{FileChunkArgs, FilePage, FilesArgs};
use canvid_types::video::{
    CanisterInfo, ChunkDigests, DigestsArgs, MissingArgs, MissingChunks, RangeArgs, VideoMetadata,
    MAX_VIDEO_SIZE,
};
use canvid_types::Result;
use ic_cdk::api::{msg_caller, time};
use serde_bytes::ByteBuf;

use crate::guards::{authorize, Action};
use crate::logic::access;
use crate::store::canister;

#[ic_cdk::query]
fn metadata() -> VideoMetadata {
    canister::with(|s| s.metadata())
}

/// Chunk `index` as uploaded. Public once Ready; before, owner and uploaders only.
#[ic_cdk::query]
fn get_chunk(index: u32) -> Result<ByteBuf> {
    let caller = msg_caller();
    canister::with(|s| {
        authorize(s.state(), &caller, Action::ReadContent)?;
        // Decided before reading: a refused read costs no copy of the chunk.
        let end = s.state().upload.as_ref().map_or(0, |u| {
            let chunk = u.chunk_size as u64;
            (index as u64 + 1).saturating_mul(chunk).min(u.total_size)
        });
        access::check_read(s, &caller, time(), end)?;
        s.get_chunk(index).map(ByteBuf::from)
    })
}

/// File bytes `[offset, offset + length)`, `length <= 2_000_000`, inside the file.
#[ic_cdk::query]
fn read_range(args: RangeArgs) -> Result<ByteBuf> {
    let caller = msg_caller();
    canister::with(|s| {
        authorize(s.state(), &caller, Action::ReadContent)?;
        match &args.path {
            None => {
                let end = args.offset.saturating_add(args.length);
                access::check_read(s, &caller, time(), end)?;
                s.read_range(args.offset, args.length)
            }
            Some(path) => {
                access::check_read_path(s, &caller, time(), path)?;
                s.read_file(path, args.offset, args.length)
            }
        }
        .map(ByteBuf::from)
    })
}

/// Chunk `index` of the named file at `path`, as uploaded. Public once Ready (subject to the
/// access policy: free paths for everyone, the rest for viewers who may watch); before, owner
/// and uploaders only.
#[ic_cdk::query]
fn get_file_chunk(args: FileChunkArgs) -> Result<ByteBuf> {
    let caller = msg_caller();
    canister::with(|s| {
        authorize(s.state(), &caller, Action::ReadContent)?;
        access::check_read_path(s, &caller, time(), &args.path)?;
        s.get_file_chunk(&args.path, args.index).map(ByteBuf::from)
    })
}

/// A page of the named files in path order (at most 500), with their sizes, digests and
/// renditions. Public once Ready; before, owner and uploaders (to resume an upload).
#[ic_cdk::query]
fn files(args: FilesArgs) -> Result<FilePage> {
    let caller = msg_caller();
    canister::with(|s| {
        authorize(s.state(), &caller, Action::ReadContent)?;
        Ok(s.files_page(&args))
    })
}

/// SHA-256 digests of chunks `start..` as `put_chunk` verified them (at most 10,000 per page), so a
/// download can check every chunk as it arrives. Public once Ready; before, owner and uploaders.
#[ic_cdk::query]
fn chunk_digests(args: DigestsArgs) -> Result<ChunkDigests> {
    let caller = msg_caller();
    canister::with(|s| {
        authorize(s.state(), &caller, Action::ReadContent)?;
        match &args.path {
            None => s.chunk_digests(&args),
            Some(path) => s.file_digests(path, &args),
        }
    })
}

/// Missing chunk indices, for resuming an upload (owner and uploaders).
#[ic_cdk::query]
fn missing_chunks(args: MissingArgs) -> Result<MissingChunks> {
    let caller = msg_caller();
    canister::with(|s| {
        authorize(s.state(), &caller, Action::Upload)?;
        match &args.path {
            None => s.missing_chunks(&args),
            Some(path) => s.file_missing(path, &args),
        }
    })
}

#[ic_cdk::query]
fn uploaders() -> Vec<Principal> {
    canister::with(|s| s.state().uploaders.clone())
}

#[ic_cdk::query]
fn canister_info() -> CanisterInfo {
    let heap_bytes = {
        #[cfg(target_arch = "wasm32")]
        {
            core::arch::wasm32::memory_size(0) as u64 * 65_536
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            0
        }
    };
    canister::with(|s| {
        let st = s.state();
        CanisterInfo {
            cycles: ic_cdk::api::canister_cycle_balance(),
            stable_memory_bytes: ic_cdk::api::stable_size().saturating_mul(65_536),
            heap_bytes,
            chunk_bytes_stored: st.uploaded_bytes,
            chunks_stored: s.chunks_stored(),
            layout_version: s.layout_version(),
            max_video_size: MAX_VIDEO_SIZE,
            transfer_in_flight: st.transfer_in_flight.is_some(),
            pending_index_notification: st.pending_notification.clone(),
            pending_offer: st.pending_offer.clone(),
        }
    })
}
