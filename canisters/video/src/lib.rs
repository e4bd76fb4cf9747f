//! canvid video canister: one canister per video.
//!
//! The file is declared (`begin_upload`), uploaded in chunks (`put_chunk`, any order, resumable
//! with `missing_chunks`), verified and published (`finish_upload`), then read by queries
//! (`get_chunk`, `read_range`, `chunk_digests`) and streamed by `http_request`, which serves
//! [`http::Source`] (the `canvid-video-http` view of the [`store::VideoStore`]). Ownership moves
//! with `change_owner`, or in two steps with `offer_ownership` / `accept_ownership`.
//!
//! Layout: the endpoints (`lifecycle`, `queries`, `updates`, `ownership`, and the HTTP ones in
//! [`http`]) only decode, authorise through [`guards`] and call the plain code in [`store`] (the
//! stable state and the upload / read logic) and [`logic`] (the ownership transfer), which is
//! unit-tested natively. The arithmetic clients share (chunking, file digest) is in
//! `canvid_types::protocol`. See docs/video-canister.md.

pub mod guards;
pub mod http;
pub mod logic;
pub mod store;

mod access;
mod control;
mod keys;
mod lifecycle;
mod ownership;
mod queries;
mod updates;

// `export_candid!` names the types of every endpoint's signature from here.
#[allow(unused_imports)]
use candid::Principal;
#[allow(unused_imports)]
use canvid_types::access::{
    AccessInfo, AccessPolicy, BuyAccessArgs, BuyResult, MyAccess, PlaybackToken, PlaybackTokenArgs,
    ReceiptsArgs, ReceiptsPage, ViewersArgs, ViewersPage,
};
#[allow(unused_imports)]
use canvid_types::encryption::{VideoKey, VideoKeyArgs};
#[allow(unused_imports)]
use canvid_types::files::{FileChunkArgs, FilePage, FilesArgs};
#[allow(unused_imports)]
use canvid_types::video::{
    CanisterInfo, ChangeOwnerArgs, ChangeOwnerResult, ChunkDigests, ChunkReceipt, ChunkUpload,
    CollectionTransferArgs, DigestsArgs, MetadataPatch, MissingArgs, MissingChunks, OfferArgs,
    OwnershipOffer, PosterArgs, RangeArgs, UploadSpec, VideoInit, VideoMetadata,
};
#[allow(unused_imports)]
use canvid_types::Result;
#[allow(unused_imports)]
use serde_bytes::ByteBuf;

ic_cdk::export_candid!();

#[cfg(test)]
mod candid_interface {
    /// `inspect_message` refuses query methods as ingress by name: the list must be exactly the
    /// interface's query methods.
    #[test]
    fn query_methods_are_the_interfaces() {
        let generated = super::__export_service();
        let mut queries: Vec<String> = generated
            .lines()
            .filter(|l| l.trim_end().ends_with(") query;"))
            .map(|l| l.trim().split(' ').next().unwrap_or("").to_string())
            .collect();
        queries.sort();
        let mut listed: Vec<String> = crate::guards::QUERY_METHODS
            .iter()
            .map(|m| m.to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, queries);
    }

    /// The checked-in interface is exactly what the code exports.
    #[test]
    fn video_did_is_current() {
        canvid_did_check::assert_current("video", &super::__export_service());
    }

    /// ...and clients built against the released interface still work with it.
    #[test]
    fn video_did_is_compatible_with_the_released_one() {
        canvid_did_check::assert_compatible_with_released("video", &super::__export_service());
    }
}
