//! Cost of building the certification tree for a large video (no video bytes involved).
//! Run with `cargo test -p canvid-http --release --test tree_cost -- --ignored --nocapture`
//! (`CANVID_TREE_CHUNKS=100,1000` picks the video sizes, in 2 MB chunks).

use canvid_http::{Certifier, Poster, ReadError, VideoInfo, VideoSource, VideoStatus, MAX_BODY};
use std::time::Instant;

struct Synthetic {
    chunks: u64,
}

impl VideoSource for Synthetic {
    fn info(&self) -> Option<VideoInfo> {
        Some(VideoInfo {
            mime_type: "video/mp4".into(),
            size: self.chunks * MAX_BODY,
            chunk_size: MAX_BODY,
            digest: [7; 32],
            status: VideoStatus::Ready,
        })
    }
    fn read(&self, _: u64, _: u64) -> Result<Vec<u8>, ReadError> {
        Err(ReadError(
            "the tree builder must not read video bytes".into(),
        ))
    }
    fn chunk_digest(&self, index: u64) -> Option<[u8; 32]> {
        let mut d = [0u8; 32];
        d[..8].copy_from_slice(&index.to_le_bytes());
        (index < self.chunks).then_some(d)
    }
    fn metadata_json(&self) -> String {
        "{}".into()
    }
    fn poster(&self) -> Option<Poster> {
        None
    }
}

#[test]
#[ignore = "timing; run explicitly"]
fn tree_build_cost() {
    let sizes: Vec<u64> = std::env::var("CANVID_TREE_CHUNKS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![500, 5_000]);
    for chunks in sizes {
        let video = Synthetic { chunks };
        let mut c = Certifier::new();
        let t = Instant::now();
        c.certify_all(&video).unwrap();
        let dt = t.elapsed();
        println!(
            "{chunks} chunks ({} GB): {} entries in {:?} ({:.1} µs/entry native)",
            chunks * MAX_BODY / 1_000_000_000,
            c.entry_count(),
            dt,
            dt.as_secs_f64() * 1e6 / c.entry_count() as f64
        );
    }
}

/// The builder never reads video bytes (it would fail here) and covers every chunk.
#[test]
fn builds_without_reading_video_bytes() {
    let video = Synthetic { chunks: 50 };
    let mut c = Certifier::new();
    c.certify_all(&video).unwrap();
    // Per path: 4 fixed answers, 4 range forms for chunks 1..=48, 3 for the last chunk (its
    // to-the-end form is its exact range).
    assert_eq!(c.entry_count(), 2 * (4 + 4 * 48 + 3) + 2);
}

/// A ready video held in memory, with real bytes (for the query path's cost).
struct InMemory {
    bytes: Vec<u8>,
    digests: Vec<[u8; 32]>,
}

impl VideoSource for InMemory {
    fn info(&self) -> Option<VideoInfo> {
        Some(VideoInfo {
            mime_type: "video/mp4".into(),
            size: self.bytes.len() as u64,
            chunk_size: MAX_BODY,
            digest: [7; 32],
            status: VideoStatus::Ready,
        })
    }
    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, ReadError> {
        Ok(self.bytes[offset as usize..(offset + len) as usize].to_vec())
    }
    fn chunk_digest(&self, index: u64) -> Option<[u8; 32]> {
        self.digests.get(index as usize).copied()
    }
    fn metadata_json(&self) -> String {
        "{}".into()
    }
    fn poster(&self) -> Option<Poster> {
        None
    }
}

/// The query path for a certified 2,000,000-byte range, natively (profile it with callgrind:
/// `valgrind --tool=callgrind <tree_cost binary> --ignored http_request_cost`).
#[test]
#[ignore = "profiling harness; run explicitly"]
fn http_request_cost() {
    use sha2::Digest;
    let chunks = 6u64;
    let bytes: Vec<u8> = (0..chunks * MAX_BODY)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let digests = bytes
        .chunks(MAX_BODY as usize)
        .map(|c| sha2::Sha256::digest(c).into())
        .collect();
    let video = InMemory { bytes, digests };
    let mut c = Certifier::new();
    c.certify_all(&video).unwrap();
    for k in 1..chunks {
        let request = canvid_http::HttpRequest::get("/video")
            .with_headers(vec![("Range".into(), format!("bytes={}-", k * MAX_BODY))])
            .build();
        let r = canvid_http::http_request(&request, &video, &c, Some(b"cert"));
        assert_eq!(r.status_code().as_u16(), 206);
        assert_eq!(r.body().len() as u64, MAX_BODY);
        assert!(r.upgrade().is_none());
    }
}
