//! Cost of building the certification tree for a large video (no video bytes involved).
//! Run with `cargo test -p canvid-video-http --release --test tree_cost -- --ignored --nocapture`
//! (`CANVID_TREE_CHUNKS=100,1000` picks the video sizes, in 2 MB chunks).

use canvid_video_http::{
    Certifier, NamedFile, Poster, ReadError, VideoInfo, VideoSource, VideoStatus, MAX_BODY,
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

/// `HELD` counts every thread's allocations: each test holds this lock, so that a heap
/// measurement sees only its own test's allocations when the harness runs tests in parallel.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

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
    let _serial = serial();
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
    let _serial = serial();
    let video = Synthetic { chunks: 50 };
    let mut c = Certifier::new();
    c.certify_all(&video).unwrap();
    // Per path: 10 fixed answers (GET, bytes=0-, HEAD, the 304s of GET and HEAD, OPTIONS, 4 405s), 4
    // range forms for chunks 1..=48, 3 for the last chunk (its to-the-end form is its exact
    // range); GET, HEAD, OPTIONS and 4 405s for metadata and 404.
    assert_eq!(c.entry_count(), 2 * (10 + 4 * 48 + 3) + 2 * 7);
}

/// The tree lives in the canister's heap (wasm32: at most 4 GiB, and heap is billed like stable
/// memory): what it holds per chunk must keep the largest allowed video far below that.
/// Natively pointers are 8 bytes instead of 4, so this overestimates the wasm heap.
#[test]
fn heap_per_chunk_keeps_the_largest_video_in_bounds() {
    let _serial = serial();
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

/// A one-chunk main file and `files` one-chunk named files (HLS segments of 1.5 MB): what a
/// ladder costs. Bytes are never read (one-chunk files need only their stored digest).
struct Ladder {
    files: u64,
    /// The paths in byte order, as `named_files_after` must list them.
    sorted: Vec<String>,
}

impl Ladder {
    fn path(i: u64) -> String {
        format!(
            "/hls/{}p/seg-{:05}.m4s",
            [240, 480, 720, 1080][(i % 4) as usize],
            i
        )
    }
    fn file(i: u64) -> NamedFile {
        NamedFile {
            path: Self::path(i),
            mime_type: "video/mp4".into(),
            size: 1_500_000,
            chunk_size: MAX_BODY,
            digest: [i as u8; 32],
        }
    }
    fn new(files: u64) -> Self {
        let mut sorted: Vec<String> = (0..files).map(Self::path).collect();
        sorted.sort();
        Ladder { files, sorted }
    }
}

impl VideoSource for Ladder {
    fn info(&self) -> Option<VideoInfo> {
        Synthetic { chunks: 1 }.info()
    }
    fn read(&self, _: u64, _: u64) -> Result<Vec<u8>, ReadError> {
        Err(ReadError("no reads".into()))
    }
    fn chunk_digest(&self, index: u64) -> Option<[u8; 32]> {
        Synthetic { chunks: 1 }.chunk_digest(index)
    }
    fn metadata_json(&self) -> String {
        "{}".into()
    }
    fn poster(&self) -> Option<Poster> {
        None
    }
    fn named_file(&self, path: &str) -> Option<NamedFile> {
        let i: u64 = path.get(path.len() - 9..path.len() - 4)?.parse().ok()?;
        (i < self.files && Self::path(i) == path).then(|| Self::file(i))
    }
    fn named_files_after(&self, after: Option<&str>, limit: usize) -> Vec<NamedFile> {
        let from = after.map_or(0, |a| self.sorted.partition_point(|p| p.as_str() <= a));
        self.sorted[from..]
            .iter()
            .take(limit)
            .filter_map(|p| self.named_file(p))
            .collect()
    }
    fn read_named(&self, _: &str, _: u64, _: u64) -> Result<Vec<u8>, ReadError> {
        Err(ReadError(
            "the tree builder must not read one-chunk files".into(),
        ))
    }
    fn named_chunk_digest(&self, path: &str, index: u64) -> Option<[u8; 32]> {
        (index == 0)
            .then(|| self.named_file(path).map(|f| f.digest))
            .flatten()
    }
}

/// Heap and entries per named file: 6 entries for a one-chunk file (plain GET, `bytes=0-`,
/// HEAD, the 304s of GET and HEAD, OPTIONS), no bytes read, and the largest ladder the store
/// allows (`MAX_FILES`) far inside the heap.
#[test]
fn heap_per_named_file_keeps_the_largest_ladder_in_bounds() {
    let _serial = serial();
    const FILES: u64 = 1_000;
    let video = Ladder::new(FILES);
    let main_only = {
        let mut c = Certifier::new();
        c.certify_all(&Ladder::new(0)).unwrap();
        c.entry_count()
    };
    let before = HELD.load(Ordering::Relaxed);
    let mut c = Certifier::new();
    let t = Instant::now();
    c.certify_all(&video).unwrap();
    let dt = t.elapsed();
    let held = (HELD.load(Ordering::Relaxed) - before) as u64;
    assert_eq!(c.named_file_count() as u64, FILES);
    assert_eq!(c.entry_count() - main_only, 6 * FILES as usize);
    let per_file = held / FILES;
    let largest = per_file * u64::from(canvid_types::files::MAX_FILES);
    println!(
        "{FILES} one-chunk named files: {held} bytes held ({per_file} per file, 6 entries), \
         {:?} ({:.1} µs/file native); {} files: {} MiB",
        dt,
        dt.as_secs_f64() * 1e6 / FILES as f64,
        canvid_types::files::MAX_FILES,
        largest >> 20
    );
    assert!(largest < 256 << 20, "{largest} bytes of heap for MAX_FILES");
    // Gating every file adds 2 entries each, and no hashing per file.
    let t = Instant::now();
    c.certify_gate(&video, true, &[]).unwrap();
    println!("certify_gate over {FILES} files: {:?}", t.elapsed());
    assert_eq!(c.entry_count() - main_only, 8 * FILES as usize + 4);
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
    let _serial = serial();
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
