//! Update endpoints except the ownership transfer: decode, authorise, call `storage`.

use candid::Principal;
use canvid_types::video::{ChunkReceipt, ChunkUpload, MetadataPatch, UploadSpec, VideoMetadata};
use canvid_types::Result;
use ic_cdk::api::{msg_caller, time};

use crate::model::{authorize, Action};
use crate::storage;

/// Authorises the caller, runs `f` and, if it changed anything (`Ok`), brings the HTTP
/// certification up to date (an `Err` leaves the state as it was).
pub(crate) fn authorized<T>(
    action: Action,
    f: impl FnOnce(&mut storage::Storage<ic_stable_structures::DefaultMemoryImpl>) -> Result<T>,
) -> Result<T> {
    let caller = msg_caller();
    let out = storage::with_mut(|s| {
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

#[ic_cdk::update]
fn put_chunk(chunk: ChunkUpload) -> Result<ChunkReceipt> {
    authorized(Action::Upload, |s| {
        s.put_chunk(chunk.index, &chunk.data, time())
    })
}

#[ic_cdk::update]
fn finish_upload() -> Result<VideoMetadata> {
    authorized(Action::Upload, |s| s.finish_upload(time()))
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
