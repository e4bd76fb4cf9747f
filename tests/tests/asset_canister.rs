//! The asset-canister benchmark fixture (docs/performance.md, "canvid vs the DFINITY asset
//! canister") still works: the same small file goes into DFINITY's asset canister (batch API, as
//! `ic-asset` uploads) and into a video canister, and both give it back through `http_request`,
//! every answer checked by the HTTP gateways' verifier (certification v2). With `CANVID_ASSET=1`
//! (the fixture's build costs CI a minute): `CANVID_ASSET=1 scripts/build-wasm.sh &&
//! CANVID_ASSET=1 cargo test -p canvid-tests --test asset_canister`.
//!
//! 5,000,000 bytes: two full 1,900,000-byte `create_chunk`s and a 1,200,000-byte `create_chunks`
//! for the asset canister; chunks of 2,000,000, 2,000,000 and 1,000,000 bytes for canvid.

use canvid_tests::asset_canister::{
    self as asset, AssetHttpResponse, StreamingCallbackHttpResponse,
};
use canvid_tests::deploy::{standalone_video, T};
use canvid_tests::http_types::{HttpRequest, HttpResponse};
use canvid_tests::{principal, Backend, BackendExt, GenFile, Principal};
use serde_bytes::ByteBuf;
use std::time::SystemTime;

const SIZE: u64 = 5_000_000;
const CANVID_CHUNK: u64 = 2_000_000;

fn get(url: &str, headers: Vec<(String, String)>) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        url: url.into(),
        headers,
        body: ByteBuf::new(),
        certificate_version: Some(2),
    }
}

/// What an HTTP gateway checks before passing an answer on (certification v2 required).
fn verify(
    b: &dyn Backend,
    canister: Principal,
    request: &HttpRequest,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) {
    use ic_http_certification as cert;
    let req = cert::HttpRequest::builder()
        .with_method(cert::Method::GET)
        .with_url(request.url.clone())
        .with_headers(request.headers.clone())
        .with_body(Vec::new())
        .with_certificate_version(2)
        .build();
    let resp = cert::HttpResponse::builder()
        .with_status_code(cert::StatusCode::from_u16(status).expect("status"))
        .with_headers(headers.to_vec())
        .with_body(body.to_vec())
        .build();
    let now_ns = b
        .time()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("time")
        .as_nanos();
    let info = ic_response_verification::verify_request_response_pair(
        req,
        resp,
        canister.as_slice(),
        now_ns,
        5 * 60 * 1_000_000_000,
        &b.root_key(),
        2,
    )
    .unwrap_or_else(|e| panic!("{} {}: verification failed: {e:?}", b.name(), request.url));
    assert_eq!(info.verification_version, 2);
}

fn same_file_in_both(b: &dyn Backend) {
    let owner = principal("owner");
    let viewer = principal("viewer");
    let file = GenFile::new(16, SIZE, CANVID_CHUNK);
    let bytes = file.bytes();

    // DFINITY's asset canister: upload as ic-asset does, read back as a gateway does (the first
    // piece from `http_request`, the rest through the streaming callback; the certificate covers
    // the whole body, so it is verified once everything has arrived).
    let assets = asset::install(b, owner, 10 * T);
    let stats = asset::upload(b, assets, owner, "/video.mp4", "video/mp4", &file)
        .unwrap_or_else(|e| panic!("upload into the asset canister: {e}"));
    assert_eq!(
        stats.updates, 5,
        "create_batch, 2 create_chunk, create_chunks, commit_batch"
    );
    let request = get("/video.mp4", Vec::new());
    let first: AssetHttpResponse = b
        .query1(assets, viewer, "http_request", &request)
        .expect("http_request");
    assert_eq!(first.status_code, 200);
    assert_eq!(first.header("content-type"), Some("video/mp4"));
    assert_eq!(first.body.len() as u64, asset::MAX_CHUNK_SIZE);
    let mut body = first.body.to_vec();
    let mut token = first.token().cloned();
    while let Some(t) = token {
        let next: StreamingCallbackHttpResponse = b
            .query1(assets, viewer, "http_request_streaming_callback", &t)
            .expect("http_request_streaming_callback");
        body.extend_from_slice(&next.body);
        token = next.token;
    }
    assert!(body == bytes, "the asset canister gives the file back");
    verify(b, assets, &request, 200, &first.headers, &body);

    // canvid: the same bytes, read back as certified 206 ranges.
    let video = standalone_video(b, owner, None, 10 * T);
    video.upload(owner, &file);
    let mut read = Vec::new();
    while (read.len() as u64) < SIZE {
        let request = get(
            "/video",
            vec![("Range".into(), format!("bytes={}-", read.len()))],
        );
        let r: HttpResponse = b
            .query1(video.id, viewer, "http_request", &request)
            .expect("http_request");
        assert_eq!(r.status_code, 206);
        verify(b, video.id, &request, 206, &r.headers, &r.body);
        read.extend_from_slice(&r.body);
    }
    assert!(read == bytes, "the video canister gives the file back");
}

// Not `backend_tests!`: the fixture is built only with CANVID_ASSET=1 (scripts/build-wasm.sh), so
// without it both variants are reported ignored, with the reason.
#[test]
#[cfg_attr(
    not(canvid_asset),
    ignore = "benchmark fixture: CANVID_ASSET=1 scripts/build-wasm.sh builds the asset canister"
)]
fn replica_same_file_in_both() {
    canvid_tests::on_replica(same_file_in_both);
}

#[test]
#[cfg_attr(
    not(all(canvid_asset, canvid_pocket_ic)),
    ignore = "benchmark fixture: needs CANVID_ASSET=1 (scripts/build-wasm.sh) and POCKET_IC_BIN"
)]
fn pocket_ic_same_file_in_both() {
    canvid_tests::on_pocket_ic(same_file_in_both);
}
