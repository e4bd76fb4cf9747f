//! Native tests of the store over `VectorMemory` and a sparse memory.

use std::collections::HashMap;
use std::rc::Rc;

use canvid_types::protocol::{chunk_len, file_digest};
use canvid_types::video::{
    DigestsArgs, MissingArgs, UploadSpec, MAX_CHUNK_SIZE, MAX_VIDEO_SIZE, UPLOAD_WINDOW_CHUNKS,
};
use ic_stable_structures::VectorMemory;
use serde_bytes::ByteBuf;

use super::*;

fn p(n: u8) -> Principal {
    Principal::from_slice(&[n, 2])
}

fn init_arg() -> VideoInit {
    VideoInit {
        owner: p(1),
        creator: p(1),
        index: None,
        title: "t".into(),
        description: "d".into(),
        tags: vec!["a".into()],
        funded_by: None,
        platform_fee: None,
    }
}

fn fresh() -> VideoStore<VectorMemory> {
    VideoStore::init(VectorMemory::default(), &init_arg(), p(9), 1).expect("init")
}

fn spec(total: u64, chunk: u32) -> UploadSpec {
    UploadSpec {
        path: None,
        rendition: None,
        mime_type: "video/mp4".into(),
        total_size: total,
        chunk_size: chunk,
        chunk_digests: None,
        file_digest: None,
        duration_ms: Some(1000),
        encryption: None,
    }
}

/// Deterministic, index-dependent test data so a misplaced chunk is detected.
fn file(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn chunks(data: &[u8], chunk: usize) -> Vec<&[u8]> {
    data.chunks(chunk).collect()
}

#[test]
fn out_of_order_and_repeated_puts_then_finish() {
    let mut s = fresh();
    let data = file(10_000);
    s.begin_upload(&spec(10_000, 3000), 2).unwrap();
    let parts = chunks(&data, 3000);
    assert_eq!(parts.len(), 4);
    for &i in &[3u32, 1, 0, 1, 3] {
        s.put_chunk(i, parts[i as usize], 3).unwrap();
    }
    assert_eq!(s.metadata().uploaded_chunks, 3);
    assert_eq!(s.metadata().uploaded_bytes, 1000 + 3000 + 3000);
    match s.finish_upload(4) {
        Err(Error::Incomplete {
            missing,
            missing_count,
        }) => {
            assert_eq!(missing, vec![2]);
            assert_eq!(missing_count, 1);
        }
        other => panic!("expected Incomplete, got {other:?}"),
    }
    s.put_chunk(2, parts[2], 5).unwrap();
    let m = s.finish_upload(6).unwrap();
    assert_eq!(m.status, VideoStatus::Ready);
    let digests: Vec<Digest32> = parts.iter().map(|c| sha256(c)).collect();
    assert_eq!(m.digest.unwrap().as_slice(), file_digest(&digests));
    assert_eq!(s.read_range(0, 10_000).unwrap(), data);
    assert_eq!(s.read_range(2999, 2).unwrap(), data[2999..3001]);
    assert_eq!(s.get_chunk(3).unwrap(), parts[3]);
    // Immutable once Ready.
    assert_eq!(s.put_chunk(0, parts[0], 7), Err(Error::AlreadyFinished));
    assert_eq!(
        s.begin_upload(&spec(10_000, 3000), 7),
        Err(Error::AlreadyFinished)
    );
    assert_eq!(s.finish_upload(7), Err(Error::AlreadyFinished));
}

/// An abandoned upload leaves nothing behind: another file (other size, chunk size and
/// digests) uploads and reads back exactly, with no chunk of the first one counted or read.
#[test]
fn reset_upload_abandons_and_allows_another_file() {
    let mut s = fresh();
    assert_eq!(
        s.reset_upload(1).unwrap().status,
        VideoStatus::Empty,
        "no-op when empty"
    );
    let first = file(10_000);
    s.begin_upload(&spec(10_000, 3000), 2).unwrap();
    for (i, c) in chunks(&first, 3000).iter().enumerate().take(3) {
        s.put_chunk(i as u32, c, 3).unwrap();
    }
    // A different declaration is refused while chunks are stored...
    assert!(matches!(
        s.begin_upload(&spec(7_000, 2000), 4),
        Err(Error::Conflict { .. })
    ));
    // ...and accepted after a reset.
    let m = s.reset_upload(5).unwrap();
    assert_eq!(m.status, VideoStatus::Empty);
    assert_eq!((m.uploaded_chunks, m.uploaded_bytes, m.size), (0, 0, 0));
    assert_eq!(m.updated_at, 5);
    assert!(matches!(
        s.put_chunk(0, &first[..3000], 6),
        Err(Error::NotReady { .. })
    ));

    let second: Vec<u8> = file(7_000).iter().map(|b| b ^ 0x5a).collect();
    let parts = chunks(&second, 2000);
    let mut sp = spec(7_000, 2000);
    sp.chunk_digests = Some(
        parts
            .iter()
            .map(|c| ByteBuf::from(sha256(c).to_vec()))
            .collect(),
    );
    s.begin_upload(&sp, 7).unwrap();
    assert_eq!(s.metadata().uploaded_chunks, 0);
    match s.finish_upload(8) {
        Err(Error::Incomplete { missing_count, .. }) => assert_eq!(missing_count, 4),
        other => panic!("expected Incomplete, got {other:?}"),
    }
    for (i, c) in parts.iter().enumerate() {
        s.put_chunk(i as u32, c, 9).unwrap();
    }
    let m = s.finish_upload(10).unwrap();
    assert_eq!(
        (m.status, m.size, m.uploaded_bytes),
        (VideoStatus::Ready, 7_000, 7_000)
    );
    let digests: Vec<Digest32> = parts.iter().map(|c| sha256(c)).collect();
    assert_eq!(m.digest.unwrap().as_slice(), file_digest(&digests));
    assert_eq!(s.read_range(0, 7_000).unwrap(), second);
    // A finished video cannot be reset.
    assert_eq!(s.reset_upload(11), Err(Error::AlreadyFinished));
    assert_eq!(s.read_range(0, 7_000).unwrap(), second);
}

#[test]
fn digest_definition_is_hash_of_chunk_hashes() {
    // Independent of the code under test: spell the definition out.
    let a = b"hello ".to_vec();
    let b = b"world".to_vec();
    let mut concat = Sha256::digest(&a).to_vec();
    concat.extend_from_slice(&Sha256::digest(&b));
    let want: Digest32 = Sha256::digest(&concat).into();
    let mut s = fresh();
    s.begin_upload(&spec(11, 6), 1).unwrap();
    s.put_chunk(1, &b, 1).unwrap();
    s.put_chunk(0, &a, 1).unwrap();
    assert_eq!(s.finish_upload(2).unwrap().digest.unwrap().as_slice(), want);
    // ...and it is not the plain SHA-256 of the file.
    let plain: Digest32 = Sha256::digest(b"hello world").into();
    assert_ne!(want, plain);
}

#[test]
fn declared_file_digest_is_checked() {
    let mut s = fresh();
    let mut sp = spec(4, 2);
    sp.file_digest = Some(ByteBuf::from(vec![7u8; 32]));
    s.begin_upload(&sp, 1).unwrap();
    s.put_chunk(0, b"ab", 1).unwrap();
    s.put_chunk(1, b"cd", 1).unwrap();
    match s.finish_upload(2) {
        Err(Error::WrongDigest {
            index: None,
            expected,
            actual,
        }) => {
            assert_eq!(expected, vec![7u8; 32]);
            assert_eq!(actual, file_digest([sha256(b"ab"), sha256(b"cd")]).to_vec());
        }
        other => panic!("expected WrongDigest, got {other:?}"),
    }
    assert_eq!(s.status(), VideoStatus::Uploading);
}

#[test]
fn wrong_size_out_of_range_and_declared_chunk_digests() {
    let mut s = fresh();
    let mut sp = spec(5, 2);
    sp.chunk_digests = Some(vec![
        ByteBuf::from(sha256(b"ab").to_vec()),
        ByteBuf::from(sha256(b"cd").to_vec()),
        ByteBuf::from(sha256(b"e").to_vec()),
    ]);
    s.begin_upload(&sp, 1).unwrap();
    assert_eq!(
        s.put_chunk(3, b"x", 1),
        Err(Error::ChunkOutOfRange {
            index: 3,
            chunk_count: 3
        })
    );
    assert_eq!(
        s.put_chunk(0, b"abc", 1),
        Err(Error::WrongChunkSize {
            index: 0,
            expected: 2,
            actual: 3
        })
    );
    assert_eq!(
        s.put_chunk(2, b"ef", 1),
        Err(Error::WrongChunkSize {
            index: 2,
            expected: 1,
            actual: 2
        })
    );
    match s.put_chunk(1, b"cx", 1) {
        Err(Error::WrongDigest { index: Some(1), .. }) => {}
        other => panic!("expected WrongDigest, got {other:?}"),
    }
    assert_eq!(s.chunks_stored(), 0);
    s.put_chunk(2, b"e", 1).unwrap();
    let r = s.put_chunk(1, b"cd", 1).unwrap();
    assert_eq!((r.uploaded_chunks, r.chunk_count, r.len), (2, 3, 2));
}

#[test]
fn spec_validation() {
    let mut s = fresh();
    assert!(matches!(
        s.begin_upload(&spec(0, 1), 1),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        s.begin_upload(&spec(10, 0), 1),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        s.begin_upload(&spec(10, MAX_CHUNK_SIZE + 1), 1),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(
        s.begin_upload(&spec(MAX_VIDEO_SIZE + 1, MAX_CHUNK_SIZE), 1),
        Err(Error::TooLarge {
            size: MAX_VIDEO_SIZE + 1,
            limit: MAX_VIDEO_SIZE
        })
    );
    // 400 GiB in 1-byte chunks: too many chunks.
    assert!(matches!(
        s.begin_upload(&spec(MAX_VIDEO_SIZE, 1), 1),
        Err(Error::InvalidArgument { .. })
    ));
    let mut bad = spec(10, 5);
    bad.chunk_digests = Some(vec![ByteBuf::from(vec![0; 32])]);
    assert!(matches!(
        s.begin_upload(&bad, 1),
        Err(Error::InvalidArgument { .. })
    ));
    bad.chunk_digests = Some(vec![ByteBuf::from(vec![0; 32]), ByteBuf::from(vec![0; 31])]);
    assert!(matches!(
        s.begin_upload(&bad, 1),
        Err(Error::InvalidArgument { .. })
    ));
    // The MIME type becomes a Content-Type header on the canister's origin (review L1).
    for mime in [
        "video/mp4\r\nX: y",
        "text/html",
        "image/svg+xml",
        "",
        "video/",
    ] {
        let mut bad = spec(10, 5);
        bad.mime_type = mime.into();
        match s.begin_upload(&bad, 1) {
            Err(Error::InvalidArgument { reason }) => assert!(reason.contains("mime_type")),
            other => panic!("{mime:?}: expected InvalidArgument, got {other:?}"),
        }
    }
    assert_eq!(s.status(), VideoStatus::Empty);
    for mime in [
        "video/webm; codecs=\"vp9\"",
        "audio/ogg",
        "application/octet-stream",
    ] {
        let mut ok = spec(10, 5);
        ok.mime_type = mime.into();
        s.begin_upload(&ok, 1).unwrap();
        assert_eq!(s.metadata().mime_type, mime);
        s.reset_upload(1).unwrap();
    }
}

#[test]
fn redeclare_resume_and_conflict() {
    let mut s = fresh();
    s.begin_upload(&spec(10, 5), 1).unwrap();
    // Different spec before any chunk: replaces the declaration.
    s.begin_upload(&spec(12, 5), 1).unwrap();
    assert_eq!(s.metadata().size, 12);
    s.put_chunk(0, &file(5), 1).unwrap();
    // Identical: resume, chunk kept.
    s.begin_upload(&spec(12, 5), 2).unwrap();
    assert_eq!(s.chunks_stored(), 1);
    assert!(matches!(
        s.begin_upload(&spec(12, 4), 2),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(s.metadata().chunk_size, 5);
}

#[test]
fn digest_pages() {
    let mut s = fresh();
    assert!(matches!(
        s.chunk_digests(&DigestsArgs::default()),
        Err(Error::NotReady { .. })
    ));
    s.begin_upload(&spec(10, 1), 1).unwrap();
    for i in [0u32, 3, 4, 9] {
        s.put_chunk(i, &[i as u8], 1).unwrap();
    }
    let digest = |i: u8| Some(ByteBuf::from(Sha256::digest([i]).to_vec()));
    let page = s
        .chunk_digests(&DigestsArgs {
            path: None,
            start: 2,
            limit: Some(3),
        })
        .unwrap();
    assert_eq!(page.start, 2);
    assert_eq!(page.digests, vec![None, digest(3), digest(4)]);
    assert_eq!((page.chunk_count, page.next), (10, Some(5)));
    let rest = s
        .chunk_digests(&DigestsArgs {
            path: None,
            start: 5,
            limit: None,
        })
        .unwrap();
    assert_eq!(rest.digests.len(), 5);
    assert_eq!(rest.digests[4], digest(9));
    assert!(rest.digests[..4].iter().all(Option::is_none));
    assert_eq!(rest.next, None);
    // The end is a valid (empty) page; past it is an error.
    let end = s
        .chunk_digests(&DigestsArgs {
            path: None,
            start: 10,
            limit: Some(0),
        })
        .unwrap();
    assert!(end.digests.is_empty() && end.next.is_none());
    assert!(matches!(
        s.chunk_digests(&DigestsArgs {
            path: None,
            start: 11,
            limit: None
        }),
        Err(Error::ChunkOutOfRange { .. })
    ));
}

#[test]
fn missing_list_pages() {
    let mut s = fresh();
    s.begin_upload(&spec(100, 1), 1).unwrap();
    for i in [0u32, 2, 3, 50, 99] {
        s.put_chunk(i, &[i as u8], 1).unwrap();
    }
    let page = s
        .missing_chunks(&MissingArgs {
            path: None,
            start: None,
            limit: Some(3),
        })
        .unwrap();
    assert_eq!(page.missing, vec![1, 4, 5]);
    assert_eq!(page.missing_count, 95);
    assert_eq!(page.next, Some(6));
    let page = s
        .missing_chunks(&MissingArgs {
            path: None,
            start: Some(48),
            limit: Some(100),
        })
        .unwrap();
    let want: Vec<u32> = (48..99).filter(|i| *i != 50).collect();
    assert_eq!(page.missing, want);
    assert_eq!(page.next, None);
    // Walking budget: stops early with a resumable cursor.
    let (m, next) = s.scan_missing(0, 100, 1000, 2);
    assert_eq!((m, next), (vec![1], Some(3)));
    let all = s
        .missing_chunks(&MissingArgs {
            path: None,
            start: Some(100),
            limit: None,
        })
        .unwrap();
    assert!(all.missing.is_empty() && all.next.is_none());
}

#[test]
fn read_rules() {
    let mut s = fresh();
    assert!(matches!(s.read_range(0, 1), Err(Error::NotReady { .. })));
    s.begin_upload(&spec(10, 4), 1).unwrap();
    s.put_chunk(0, b"0123", 1).unwrap();
    // Before Ready only stored chunks.
    assert_eq!(s.read_range(1, 3).unwrap(), b"123");
    assert!(matches!(s.read_range(2, 4), Err(Error::NotFound { .. })));
    assert!(matches!(s.get_chunk(1), Err(Error::NotFound { .. })));
    assert_eq!(
        s.get_chunk(3),
        Err(Error::ChunkOutOfRange {
            index: 3,
            chunk_count: 3
        })
    );
    s.put_chunk(1, b"4567", 1).unwrap();
    s.put_chunk(2, b"89", 1).unwrap();
    s.finish_upload(2).unwrap();
    assert_eq!(s.read_range(6, 4).unwrap(), b"6789"); // ends exactly at the end
    assert_eq!(s.read_range(10, 0).unwrap(), b"");
    assert!(matches!(
        s.read_range(7, 4),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        s.read_range(u64::MAX, 2),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(
        s.read_range(0, MAX_CHUNK_SIZE as u64 + 1),
        Err(Error::TooLarge {
            size: MAX_CHUNK_SIZE as u64 + 1,
            limit: MAX_CHUNK_SIZE as u64
        })
    );
}

#[test]
fn metadata_edits_and_limits() {
    let mut s = fresh();
    let m = s
        .update_metadata(
            &MetadataPatch {
                title: Some("new".into()),
                description: None,
                tags: None,
            },
            5,
        )
        .unwrap();
    assert_eq!(
        (m.title.as_str(), m.description.as_str(), m.updated_at),
        ("new", "d", 5)
    );
    let long = "x".repeat(canvid_types::video::MAX_TITLE_BYTES + 1);
    assert!(matches!(
        s.update_metadata(
            &MetadataPatch {
                title: Some(long),
                ..Default::default()
            },
            6
        ),
        Err(Error::TooLarge { .. })
    ));
    let many = vec!["t".to_string(); canvid_types::video::MAX_TAGS + 1];
    assert!(matches!(
        s.update_metadata(
            &MetadataPatch {
                tags: Some(many),
                ..Default::default()
            },
            6
        ),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(s.metadata().title, "new");
    assert_eq!(s.metadata().updated_at, 5);
}

#[test]
fn state_survives_reload_and_header_is_checked() {
    let mem = VectorMemory::default();
    let mut s = VideoStore::init(mem.clone(), &init_arg(), p(9), 1).unwrap();
    s.begin_upload(&spec(6, 3), 1).unwrap();
    s.put_chunk(1, b"def", 2).unwrap();
    s.add_uploader(p(5), 2).unwrap();
    drop(s);
    let s = VideoStore::load(mem.clone()).unwrap();
    assert_eq!(s.layout_version(), LAYOUT_VERSION);
    assert_eq!(s.read_range(3, 3).unwrap(), b"def");
    assert_eq!(s.state().uploaders, vec![p(5)]);
    assert_eq!(s.state().installer, p(9));
    // A foreign / empty memory is refused rather than reinterpreted.
    assert!(VideoStore::load(VectorMemory::default()).is_err());
    let other = VectorMemory::default();
    other.grow(1);
    other.write(0, b"not a memory manager");
    assert!(VideoStore::load(other).is_err());
}

#[test]
fn older_layouts_are_migrated_and_newer_layouts_are_refused() {
    let mem = VectorMemory::default();
    let mut s = VideoStore::init_managed(mem.clone(), &init_arg(), p(9), 1).unwrap();
    s.begin_upload(&spec(6, 3), 1).unwrap();
    s.put_chunk(0, b"abc", 2).unwrap();
    // Make it a version-1 memory: header field rewritten, memory 5 never grown.
    s.write_layout_version(1);
    assert_eq!(s.layout_version(), 1);
    assert!(s.poster().is_none());
    drop(s);
    let mut s = VideoStore::load(mem.clone()).unwrap();
    assert_eq!(
        s.layout_version(),
        MANAGED_LAYOUT_VERSION,
        "version 1 is migrated on load (within the MemoryManager family: data never moves)"
    );
    assert!(!s.access().in_use(), "an absent memory 6 is a public video");
    assert_eq!(s.read_range(0, 3).unwrap(), b"abc");
    assert!(s.poster().is_none(), "an absent memory 5 is no poster");
    s.set_poster("image/png", b"img", 3).unwrap();
    drop(s);
    let s = VideoStore::load(mem.clone()).unwrap();
    let poster = s.poster().expect("the poster survives a reload");
    assert_eq!(
        (poster.mime_type.as_str(), &poster.bytes[..]),
        ("image/png", &b"img"[..])
    );
    // Version 2 (a poster, no memory 6) is migrated the same way.
    s.write_layout_version(2);
    drop(s);
    let s = VideoStore::load(mem.clone()).unwrap();
    assert_eq!(s.layout_version(), MANAGED_LAYOUT_VERSION);
    assert!(s.poster().is_some());
    // A layout from the future is refused, not reinterpreted.
    s.write_layout_version(MANAGED_LAYOUT_VERSION + 1);
    drop(s);
    assert!(matches!(
        VideoStore::load(mem),
        Err(Error::InvalidArgument { .. })
    ));
    // The same in layout 4's own header.
    let mem = VectorMemory::default();
    let s = VideoStore::init(mem.clone(), &init_arg(), p(9), 1).unwrap();
    assert_eq!(s.layout_version(), LAYOUT_VERSION);
    s.write_layout_version(LAYOUT_VERSION + 1);
    drop(s);
    assert!(matches!(
        VideoStore::load(mem),
        Err(Error::InvalidArgument { .. })
    ));
}

/// A memory that only stores the pages written: lets a test address hundreds of GiB.
#[derive(Clone, Default)]
struct SparseMemory(Rc<std::cell::RefCell<SparsePages>>);

/// (size in pages, written pages by page number)
type SparsePages = (u64, HashMap<u64, Vec<u8>>);

impl Memory for SparseMemory {
    fn size(&self) -> u64 {
        self.0.borrow().0
    }
    fn grow(&self, pages: u64) -> i64 {
        let mut inner = self.0.borrow_mut();
        let old = inner.0;
        inner.0 += pages;
        old as i64
    }
    fn read(&self, offset: u64, dst: &mut [u8]) {
        let inner = self.0.borrow();
        assert!(
            offset + dst.len() as u64 <= inner.0 * WASM_PAGE,
            "read out of bounds"
        );
        for (i, b) in dst.iter_mut().enumerate() {
            let a = offset + i as u64;
            *b = inner
                .1
                .get(&(a / WASM_PAGE))
                .map_or(0, |p| p[(a % WASM_PAGE) as usize]);
        }
    }
    fn write(&self, offset: u64, src: &[u8]) {
        let mut inner = self.0.borrow_mut();
        assert!(
            offset + src.len() as u64 <= inner.0 * WASM_PAGE,
            "write out of bounds"
        );
        for (i, b) in src.iter().enumerate() {
            let a = offset + i as u64;
            inner
                .1
                .entry(a / WASM_PAGE)
                .or_insert_with(|| vec![0; WASM_PAGE as usize])[(a % WASM_PAGE) as usize] = *b;
        }
    }
}

#[test]
fn big_offsets_beyond_4_gib() {
    let mut s = VideoStore::init(SparseMemory::default(), &init_arg(), p(9), 1).unwrap();
    let total = MAX_VIDEO_SIZE; // 400 GiB
    let chunk = MAX_CHUNK_SIZE;
    s.begin_upload(&spec(total, chunk), 1).unwrap();
    let count = s.metadata().chunk_count;
    assert_eq!(count as u64, total.div_ceil(chunk as u64));
    let last = count - 1;
    let last_len = total - last as u64 * chunk as u64;
    assert_eq!(chunk_len(total, u64::from(chunk), last), last_len);
    let tail: Vec<u8> = (0..last_len).map(|i| (i % 7) as u8).collect();
    // The window (UPLOAD_WINDOW_CHUNKS) refuses the last chunk of a fresh arena; an arena that
    // the released module (which had no window) grew to the whole file takes it.
    assert!(matches!(
        s.put_chunk(last, &tail, 1),
        Err(Error::Busy { .. })
    ));
    ensure_size(&s.arena, total).unwrap();
    s.put_chunk(last, &tail, 1).unwrap();
    let mid = 3000u32; // offset 6 GB
    s.put_chunk(mid, &vec![9u8; chunk as usize], 1).unwrap();
    assert_eq!(s.read_range(total - 3, 3).unwrap(), tail[tail.len() - 3..]);
    assert_eq!(
        s.read_range(mid as u64 * chunk as u64 + 5, 2).unwrap(),
        vec![9, 9]
    );
    assert_eq!(s.get_chunk(last).unwrap(), tail);
    let page = s
        .missing_chunks(&MissingArgs {
            path: None,
            start: Some(last - 2),
            limit: None,
        })
        .unwrap();
    assert_eq!(page.missing, vec![last - 2, last - 1]);
    assert_eq!(page.missing_count, count - 2);
}

/// Stable memory never shrinks, so a put may grow the arena only a window past the bytes
/// stored (security review L5): the last chunk of a 400 GiB declaration is refused with `Busy`
/// and allocates nothing; chunks inside the window are accepted in any order.
#[test]
fn the_arena_grows_with_the_bytes_stored_not_the_declaration() {
    let mem = SparseMemory::default();
    let mut s = VideoStore::init(mem.clone(), &init_arg(), p(9), 1).unwrap();
    let (total, chunk) = (MAX_VIDEO_SIZE, MAX_CHUNK_SIZE);
    let cs = u64::from(chunk);
    s.begin_upload(&spec(total, chunk), 1).unwrap();
    let last = s.metadata().chunk_count - 1;
    let stable_before = mem.size();
    let tail = vec![1u8; chunk_len(total, cs, last) as usize];
    match s.put_chunk(last, &tail, 2) {
        Err(Error::Busy { reason }) => assert!(reason.contains("chunk"), "{reason}"),
        other => panic!("expected Busy, got {other:?}"),
    }
    assert_eq!(
        mem.size(),
        stable_before,
        "a refused chunk allocates nothing"
    );
    assert_eq!(s.arena_allocated_bytes(), 0);
    assert!(mem.size() * WASM_PAGE < 100 << 20, "{} pages", mem.size());
    let full = vec![7u8; chunk as usize];
    let window = UPLOAD_WINDOW_CHUNKS as u32;
    // Nothing stored: chunks 0..window fit, in any order; the next one does not.
    assert!(matches!(
        s.put_chunk(window, &full, 3),
        Err(Error::Busy { .. })
    ));
    s.put_chunk(window - 1, &full, 3).unwrap();
    s.put_chunk(0, &full, 3).unwrap();
    // Two chunks stored: the window now ends at chunk window + 1.
    s.put_chunk(window + 1, &full, 3).unwrap();
    assert!(matches!(
        s.put_chunk(window + 3, &full, 3),
        Err(Error::Busy { .. })
    ));
    assert_eq!(s.chunks_stored(), 3);
    // The allocation: what the window allows, rounded up to the allocation unit (a page).
    let bucket = s.allocation_unit_pages() * WASM_PAGE;
    assert_eq!(
        s.arena_allocated_bytes(),
        ((u64::from(window) + 2) * cs).div_ceil(bucket) * bucket
    );
    assert!(s.arena_allocated_bytes() <= 3 * cs + UPLOAD_WINDOW_CHUNKS * cs + bucket);
}

/// What a client does (the missing chunks in ascending order, at most `UPLOAD_WINDOW_CHUNKS`
/// puts in flight that complete in any order, failed ones retried) never meets the window, in a
/// first session cut off mid-way and in the resumed one that fills the scattered gaps;
/// `reset_upload` keeps the allocation, and the next upload reuses it in any order.
#[test]
fn clients_within_the_window_and_resumed_gaps_are_never_refused() {
    // 64 chunks of 300 KB exceed one 16 MiB bucket, so the window, not the bucket, decides.
    let chunk = 300_000u32;
    let n = 200u32;
    let total = u64::from(n - 1) * u64::from(chunk) + 17;
    let part = |i: u32| vec![(i % 251) as u8; chunk_len(total, u64::from(chunk), i) as usize];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |m: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % m as u64) as usize
    };
    let mut s = fresh();
    s.begin_upload(&spec(total, chunk), 1).unwrap();
    // Session 1 stops after `stop_after` puts (a crash: the puts in flight are lost); session 2
    // asks what is missing and sends that.
    for stop_after in [120usize, usize::MAX] {
        let missing = s.missing_chunks(&MissingArgs::default()).unwrap().missing;
        let mut queue = missing.into_iter();
        let mut in_flight: Vec<u32> = Vec::new();
        let mut done = 0usize;
        loop {
            while in_flight.len() < UPLOAD_WINDOW_CHUNKS as usize {
                match queue.next() {
                    Some(i) => in_flight.push(i),
                    None => break,
                }
            }
            if in_flight.is_empty() || done == stop_after {
                break;
            }
            let k = next(in_flight.len());
            if next(4) == 0 {
                continue; // failed in transit: stays in flight, retried later
            }
            let i = in_flight.swap_remove(k);
            s.put_chunk(i, &part(i), 2)
                .unwrap_or_else(|e| panic!("chunk {i}: {e}"));
            done += 1;
        }
    }
    s.finish_upload(4).unwrap();
    assert_eq!(s.get_chunk(n - 1).unwrap(), part(n - 1));
    assert_eq!(s.get_chunk(77).unwrap(), part(77));

    // reset_upload keeps the allocation; another upload writes into it in any order.
    let mut s = fresh();
    s.begin_upload(&spec(total, chunk), 1).unwrap();
    for i in 0..n {
        s.put_chunk(i, &part(i), 2).unwrap();
    }
    let allocated = s.arena_allocated_bytes();
    assert!(allocated >= total);
    s.reset_upload(3).unwrap();
    assert_eq!(
        s.arena_allocated_bytes(),
        allocated,
        "stable memory never shrinks"
    );
    let other: Vec<u8> = file(1_000_000);
    s.begin_upload(&spec(1_000_000, 10_000), 4).unwrap();
    for (i, c) in chunks(&other, 10_000).iter().enumerate().rev() {
        s.put_chunk(i as u32, c, 5).unwrap();
    }
    assert_eq!(s.arena_allocated_bytes(), allocated);
    s.finish_upload(6).unwrap();
    assert_eq!(s.read_range(0, 1_000_000).unwrap(), other);
}

/// Property tests (issue 15) of the stable layout's decoders: `CANVID_PROPTEST_CASES` cases
/// (default 16 here: every case copies a 48 MiB `VectorMemory`).
mod props {
    use super::*;
    use ic_stable_structures::Storable;
    use proptest::prelude::*;
    use std::borrow::Cow;

    fn cases() -> u32 {
        std::env::var("CANVID_PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(16)
    }

    /// A store with an upload in progress, its raw memory, and where the header and the state
    /// cell's value start in it. Laid out once; cases copy it.
    fn laid_out() -> (VectorMemory, usize, usize, usize) {
        static IMAGE: std::sync::OnceLock<(Vec<u8>, usize, usize, usize)> =
            std::sync::OnceLock::new();
        let (image, header, value, len) = IMAGE.get_or_init(|| {
            let mem = VectorMemory::default();
            let mut s = VideoStore::init_managed(mem.clone(), &init_arg(), p(9), 1).unwrap();
            s.begin_upload(&spec(6, 3), 1).unwrap();
            s.put_chunk(1, b"def", 2).unwrap();
            drop(s);
            // Buckets in allocation order after the manager's page: memory 0, then memory 1.
            let bucket = BUCKET_SIZE_PAGES as usize * WASM_PAGE as usize;
            let (header, cell) = (WASM_PAGE as usize, WASM_PAGE as usize + bucket);
            let b = mem.borrow();
            assert_eq!(&b[header..header + 4], MAGIC);
            assert_eq!(&b[cell..cell + 3], b"SCL");
            let len =
                u32::from_le_bytes([b[cell + 4], b[cell + 5], b[cell + 6], b[cell + 7]]) as usize;
            (b.clone(), header, cell + 8, len)
        });
        let mem: VectorMemory = Rc::new(std::cell::RefCell::new(image.clone()));
        (mem, *header, *value, *len)
    }

    fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// Any bytes in the 16-byte header: `load` refuses (a typed error, so post_upgrade traps
        /// and the upgrade rolls back) or, for the two layouts it knows, reads the same state.
        #[test]
        fn corrupted_header_is_refused_or_read_as_written(
            edits in prop::collection::vec((0usize..16, any::<u8>()), 1..4),
        ) {
            let (mem, header, _, _) = laid_out();
            for (at, b) in &edits {
                mem.borrow_mut()[header + at] = *b;
            }
            let now = mem.borrow()[header..header + 16].to_vec();
            let version = u32::from_le_bytes([now[4], now[5], now[6], now[7]]);
            let known = &now[0..4] == MAGIC && (1..=MANAGED_LAYOUT_VERSION).contains(&version);
            match VideoStore::load(mem.clone()) {
                Ok(s) => {
                    prop_assert!(known, "header {:?} accepted", now);
                    prop_assert_eq!(s.layout_version(), MANAGED_LAYOUT_VERSION);
                    prop_assert_eq!(s.read_range(3, 3).unwrap(), b"def".to_vec());
                }
                Err(e) => {
                    prop_assert!(!known, "header {:?} refused: {:?}", now, e);
                    let invalid = matches!(e, Error::InvalidArgument { .. });
                    prop_assert!(invalid, "{:?}", e);
                }
            }
        }

        /// Bytes of the state cell's candid value overwritten: the state reads back as a valid
        /// `State` (the bytes still decode) or the load traps with the documented "undecodable"
        /// message; it never reinterprets them silently as something that does not decode.
        #[test]
        fn corrupted_state_cell_traps_as_documented(
            edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        ) {
            let (mem, _, value, len) = laid_out();
            for (at, b) in &edits {
                mem.borrow_mut()[value + at % len] = *b;
            }
            let bytes = mem.borrow()[value..value + len].to_vec();
            let decodes = candid::decode_one::<State>(&bytes).is_ok();
            let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                VideoStore::load(mem.clone()).map(|s| s.state().clone())
            }));
            match loaded {
                Ok(Ok(state)) => {
                    prop_assert!(decodes);
                    prop_assert_eq!(state, candid::decode_one::<State>(&bytes).unwrap());
                }
                Ok(Err(e)) => prop_assert!(false, "load refused a corrupted cell value: {:?}", e),
                Err(panic) => {
                    prop_assert!(!decodes);
                    let msg = panic_message(panic);
                    prop_assert!(msg.contains("undecodable"), "{}", msg);
                }
            }
        }

        /// The state cell's length field overwritten: only the true length reads the state
        /// back; any other traps, with the "undecodable" message of `Candid` (a length inside
        /// the memory) or ic-stable-structures' "read out of bounds" (past it). Never a state.
        #[test]
        fn corrupted_state_cell_length_traps(len in prop_oneof![0u32..2_000, any::<u32>()]) {
            let (mem, _, value, true_len) = laid_out();
            mem.borrow_mut()[value - 4..value].copy_from_slice(&len.to_le_bytes());
            let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                VideoStore::load(mem.clone()).map(|s| s.state().clone())
            }));
            match loaded {
                Ok(Ok(_)) => prop_assert_eq!(len as usize, true_len),
                Ok(Err(e)) => prop_assert!(false, "load refused a corrupted cell length: {:?}", e),
                Err(panic) => {
                    prop_assert_ne!(len as usize, true_len);
                    let msg = panic_message(panic);
                    prop_assert!(
                        msg.contains("undecodable") || msg.contains("read out of bounds"),
                        "{}",
                        msg
                    );
                }
            }
        }

        /// Any 36 bytes are a chunk-table value (length + digest), and round-trip exactly.
        #[test]
        fn chunk_entry_decodes_any_36_bytes_and_round_trips(
            raw in prop::collection::vec(any::<u8>(), 36),
        ) {
            let e = ChunkEntry::from_bytes(Cow::Borrowed(&raw[..]));
            prop_assert_eq!(e.into_bytes(), raw.clone());
            let bytes = e.to_bytes();
            prop_assert_eq!(bytes.as_ref(), &raw[..]);
            prop_assert_eq!(ChunkEntry::from_bytes(Cow::Owned(e.into_bytes())), e);
        }
    }
}
