//! Update endpoints except the ownership transfer and the poster: decode, authorise, call the
//! store.

use candid::Principal;
use canvid_types::video::{ChunkReceipt, ChunkUpload, MetadataPatch, UploadSpec, VideoMetadata};
use canvid_types::Result;
use ic_cdk::api::{msg_caller, time};

use ic_stable_structures::DefaultMemoryImpl;

use crate::guards::{authorize, Action};
use crate::store::{canister, VideoStore};

/// Authorises the caller, runs `f` and, if it changed anything (`Ok`), brings the HTTP
/// certification up to date (an `Err` leaves the state as it was).
pub(crate) fn authorized<T>(
    action: Action,
    f: impl FnOnce(&mut VideoStore<DefaultMemoryImpl>) -> Result<T>,
) -> Result<T> {
    let caller = msg_caller();
    let out = canister::with_mut(|s| {
        authorize(s.state(), &caller, action)?;
        f(s)
    })?;
    crate::http::recertify();
    Ok(out)
}

#[ic_cdk::update]
fn begin_upload(spec: UploadSpec) -> Result<VideoMetadata> {
    authorized(Action::Upload, |s| s.begin_upload(&spec, time()))
}

/// Declares up to 500 named files at once (each `UploadSpec` with a `path`), all or none; an
/// identical re-declaration resumes. Returns how many named files the video now has.
#[ic_cdk::update]
fn begin_files(specs: Vec<UploadSpec>) -> Result<u32> {
    authorized(Action::Upload, |s| s.begin_files(&specs, time()))
}

#[ic_cdk::update]
fn put_chunk(chunk: ChunkUpload) -> Result<ChunkReceipt> {
    authorized(Action::Upload, |s| match &chunk.path {
        None => s.put_chunk(chunk.index, &chunk.data, time()),
        Some(path) => s.put_file_chunk(path, chunk.index, &chunk.data, time()),
    })
}

/// Verifies and publishes the video; then, for a video a spawn canister funded, hands control
/// of the canister to the owner (`crate::control`: unused cycles go back to the funder first).
/// The answer's `control` says whether that completed; a failed hand-over is retried by a timer
/// (and by the owner's `claim_control`) and never undoes the upload.
#[ic_cdk::update]
async fn finish_upload() -> Result<VideoMetadata> {
    authorized(Action::Upload, |s| s.finish_upload(time()))?;
    crate::control::hand_over().await;
    Ok(canister::with(|s| s.metadata()))
}

/// Owner only, before `finish_upload`: abandons the upload (declaration and chunks) so another
/// file can be declared.
#[ic_cdk::update]
fn reset_upload() -> Result<VideoMetadata> {
    authorized(Action::OwnerWrite, |s| s.reset_upload(time()))
}

#[ic_cdk::update]
fn update_metadata(patch: MetadataPatch) -> Result<VideoMetadata> {
    authorized(Action::OwnerWrite, |s| s.update_metadata(&patch, time()))
}

#[ic_cdk::update]
fn add_uploader(uploader: Principal) -> Result<()> {
    authorized(Action::OwnerWrite, |s| s.add_uploader(uploader, time()))
}

#[ic_cdk::update]
fn remove_uploader(uploader: Principal) -> Result<()> {
    authorized(Action::OwnerWrite, |s| s.remove_uploader(uploader, time()))
}

/// Sets (or, with `null`, clears) the one operator allowed to call `change_owner`.
#[ic_cdk::update]
fn approve(operator: Option<Principal>) -> Result<()> {
    authorized(Action::OwnerWrite, |s| s.approve(operator, time()))
}
