//! Cost of building the certification tree for a large video (no video bytes involved).
//! Run with `cargo test -p canvid-video-http --release --test tree_cost -- --ignored --nocapture`
//! (`CANVID_TREE_CHUNKS=100,1000` picks the video sizes, in 2 MB chunks).

use canvid_video_http::{
    Certifier, Poster, ReadError, VideoInfo, VideoSource, VideoStatus, MAX_BODY,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// Counts the bytes held on the heap, to measure what the certification tree keeps.
struct Counting;
static HELD: AtomicIsize = AtomicIsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}
#[global_allocator]
static ALLOCATOR: Counting = Counting;

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
    // Per path: 10 fixed answers (GET, bytes=0-, HEAD, the 304s of GET and HEAD, 5 405s), 4
    // range forms for chunks 1..=48, 3 for the last chunk (its to-the-end form is its exact
    // range); GET, HEAD and 5 405s for metadata and 404.
    assert_eq!(c.entry_count(), 2 * (10 + 4 * 48 + 3) + 2 * 7);
}

/// The tree lives in the canister's heap (wasm32: at most 4 GiB, and heap is billed like stable
/// memory): what it holds per chunk must keep the largest allowed video far below that.
/// Natively pointers are 8 bytes instead of 4, so this overestimates the wasm heap.
#[test]
fn heap_per_chunk_keeps_the_largest_video_in_bounds() {
    const CHUNKS: u64 = 300;
    let video = Synthetic { chunks: CHUNKS };
    let before = HELD.load(Ordering::Relaxed);
    let mut c = Certifier::new();
    c.certify_all(&video).unwrap();
    let held = (HELD.load(Ordering::Relaxed) - before) as u64;
    let per_chunk = held / CHUNKS;
    let largest = per_chunk * canvid_types::video::MAX_VIDEO_SIZE.div_ceil(MAX_BODY);
    println!(
        "{CHUNKS} chunks: {held} bytes held ({per_chunk} per chunk, {} entries); a {} GiB video in \
         2 MB chunks: {} MiB",
        c.entry_count(),
        canvid_types::video::MAX_VIDEO_SIZE >> 30,
        largest >> 20
    );
    assert!(
        largest < 2 << 30,
        "{largest} bytes of heap for the largest video"
    );
    // The most chunks a video may have (tiny chunks): still inside the 4 GiB wasm heap, with
    // room for the rest of the canister (2.6 GB natively when measured, less in wasm32).
    let most = per_chunk * u64::from(canvid_types::video::MAX_CHUNK_COUNT);
    assert!(
        most < 3 << 30,
        "{most} bytes of heap for MAX_CHUNK_COUNT chunks"
    );
    drop(c);
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
        let request = canvid_video_http::HttpRequest::get("/video")
            .with_headers(vec![("Range".into(), format!("bytes={}-", k * MAX_BODY))])
            .build();
        let r = canvid_video_http::http_request(&request, &video, None, &c, Some(b"cert"));
        assert_eq!(r.status_code().as_u16(), 206);
        assert_eq!(r.body().len() as u64, MAX_BODY);
        assert!(r.upgrade().is_none());
    }
}
