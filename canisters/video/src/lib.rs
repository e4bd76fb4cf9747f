//! canvid video canister: one canister per video.
//!
//! The file is declared (`begin_upload`), uploaded in chunks (`put_chunk`, any order, resumable
//! with `missing_chunks`), verified and published (`finish_upload`), then read by queries
//! (`get_chunk`, `read_range`, `chunk_digests`) — and later streamed by `http_request`, which builds on
//! [`storage::read_range`] and [`storage::metadata`]. Ownership moves with `change_owner`.
//!
//! Layout: endpoints (`lifecycle`, `updates`, `queries`, `ownership`) only decode, authorise
//! (through [`model`]) and call the plain logic in [`storage`] / [`model`], which is unit-tested
//! natively. See docs/video-canister.md.

pub mod http;
pub mod model;
pub mod storage;

mod lifecycle;
mod ownership;
mod queries;
mod updates;

// `export_candid!` names the types of every endpoint's signature from here.
#[allow(unused_imports)]
use candid::Principal;
#[allow(unused_imports)]
use canvid_types::video::{
    CanisterInfo, ChangeOwnerArgs, ChangeOwnerResult, ChunkDigests, ChunkReceipt, ChunkUpload,
    DigestsArgs, MetadataPatch, MissingArgs, MissingChunks, RangeArgs, UploadSpec, VideoInit,
    VideoMetadata,
};
#[allow(unused_imports)]
use canvid_types::Result;
#[allow(unused_imports)]
use http::PosterArgs;
#[allow(unused_imports)]
use serde_bytes::ByteBuf;

ic_cdk::export_candid!();

#[cfg(test)]
mod candid_drift {
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
        let mut listed: Vec<String> = crate::model::QUERY_METHODS
            .iter()
            .map(|m| m.to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, queries);
    }

    /// The checked-in interface must be exactly what the code exports.
    #[test]
    fn video_did_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../candid/video.did");
        let generated = super::__export_service();
        if std::env::var("UPDATE_CANDID").as_deref() == Ok("1") {
            std::fs::write(path, &generated).expect("write candid/video.did");
            return;
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "candid/video.did is out of date with the canister's endpoints.\n\
             Regenerate it with: UPDATE_CANDID=1 cargo test -p canvid-video video_did_matches_the_code\n\
             --- generated ---\n{generated}"
        );
    }
}
