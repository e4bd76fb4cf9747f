//! Native tests of named files and of layout 4's footprint.

use canvid_types::files::{FilesArgs, Rendition};
use canvid_types::protocol::{file_digest, Digest32};
use canvid_types::video::{DigestsArgs, MissingArgs, UploadSpec, VideoInit, VideoStatus};
use canvid_types::Error;
use ic_stable_structures::{Memory, VectorMemory};
use proptest::prelude::*;
use serde_bytes::ByteBuf;

use crate::store::{VideoStore, MAX_RESERVED_AHEAD};
use candid::Principal;

fn p(n: u8) -> Principal {
    Principal::from_slice(&[n, 2])
}

fn init_arg() -> VideoInit {
    VideoInit {
        owner: p(1),
        creator: p(1),
        index: None,
        title: "t".into(),
        description: String::new(),
        tags: vec![],
        funded_by: None,
        platform_fee: None,
    }
}

fn chunk_digest_list(data: &[u8], chunk: usize) -> Vec<Digest32> {
    use sha2::{Digest, Sha256};
    data.chunks(chunk)
        .map(|c| Sha256::digest(c).into())
        .collect()
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn named(path: &str, mime: &str, data: &[u8], chunk: u32, digests: bool) -> UploadSpec {
    UploadSpec {
        mime_type: mime.into(),
        total_size: data.len() as u64,
        chunk_size: chunk,
        chunk_digests: digests.then(|| {
            chunk_digest_list(data, chunk as usize)
                .into_iter()
                .map(|d| ByteBuf::from(d.to_vec()))
                .collect()
        }),
        file_digest: Some(ByteBuf::from(
            file_digest(chunk_digest_list(data, chunk as usize)).to_vec(),
        )),
        duration_ms: None,
        path: Some(path.into()),
        rendition: None,
        encryption: None,
    }
}

fn put_all(s: &mut VideoStore<VectorMemory>, path: &str, data: &[u8], chunk: u32) {
    for (i, c) in data.chunks(chunk as usize).enumerate() {
        s.put_file_chunk(path, i as u32, c, 2).unwrap();
    }
}

#[test]
fn named_files_upload_verify_and_read_back() {
    let mem = VectorMemory::default();
    let mut s = VideoStore::init(mem.clone(), &init_arg(), p(9), 1).unwrap();
    let playlist = b"#EXTM3U\n#EXT-X-VERSION:7\n".to_vec();
    let segment = bytes(25_000, 7);
    let subs = b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n".to_vec();
    let mut rung = named(
        "/hls/720p/index.m3u8",
        "application/vnd.apple.mpegurl",
        &playlist,
        1_000,
        false,
    );
    rung.rendition = Some(Rendition {
        name: "720p".into(),
        width: 1280,
        height: 720,
        bandwidth: 2_800_000,
        codecs: Some("avc1.64001f,mp4a.40.2".into()),
    });
    let specs = vec![
        rung,
        named(
            "/hls/720p/seg-00000.m4s",
            "video/mp4",
            &segment,
            10_000,
            true,
        ),
        named("/subs/en.vtt", "text/vtt", &subs, 1_000, false),
    ];
    assert_eq!(s.begin_files(&specs, 1).unwrap(), 3);
    assert_eq!(s.status(), VideoStatus::Uploading);
    // An identical declaration resumes; the count does not change.
    assert_eq!(s.begin_files(&specs[1..2], 1).unwrap(), 3);
    // Chunks out of order; the declared digest is enforced; a re-put is idempotent.
    let seg = "/hls/720p/seg-00000.m4s";
    s.put_file_chunk(seg, 2, &segment[20_000..], 2).unwrap();
    assert!(matches!(
        s.put_file_chunk(seg, 0, &segment[10_000..20_000], 2),
        Err(Error::WrongDigest { index: Some(0), .. })
    ));
    assert!(matches!(
        s.put_file_chunk(seg, 0, &segment[..9_999], 2),
        Err(Error::WrongChunkSize { .. })
    ));
    assert!(matches!(
        s.put_file_chunk(seg, 3, &segment[..10], 2),
        Err(Error::ChunkOutOfRange { .. })
    ));
    assert!(matches!(
        s.put_file_chunk("/nope", 0, b"x", 2),
        Err(Error::NotFound { .. })
    ));
    s.put_file_chunk(seg, 2, &segment[20_000..], 2).unwrap();
    let missing = s
        .file_missing(
            seg,
            &MissingArgs {
                path: Some(seg.into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((missing.missing, missing.missing_count), (vec![0, 1], 2));
    // A chunk not stored yet is not readable.
    assert!(matches!(
        s.read_file(seg, 0, 10),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(s.read_file(seg, 20_000, 5_000).unwrap(), &segment[20_000..]);
    // Finishing with files incomplete is refused and names them.
    match s.finish_upload(3) {
        Err(Error::Conflict { reason }) => assert!(reason.contains(seg), "{reason}"),
        other => panic!("{other:?}"),
    }
    put_all(&mut s, seg, &segment, 10_000);
    put_all(&mut s, "/hls/720p/index.m3u8", &playlist, 1_000);
    put_all(&mut s, "/subs/en.vtt", &subs, 1_000);
    let digests = s
        .file_digests(
            seg,
            &DigestsArgs {
                start: 1,
                limit: Some(1),
                path: None,
            },
        )
        .unwrap();
    assert_eq!(digests.next, Some(2));
    assert_eq!(
        digests.digests,
        vec![Some(ByteBuf::from(
            chunk_digest_list(&segment, 10_000)[1].to_vec()
        ))]
    );
    // A named-files-only video: no main file to verify.
    let m = s.finish_upload(3).unwrap();
    assert_eq!(m.status, VideoStatus::Ready);
    assert_eq!(m.files, Some(3));
    assert_eq!(m.digest, None);
    assert_eq!(
        m.renditions.as_ref().unwrap()[0].path,
        "/hls/720p/index.m3u8"
    );
    // Immutable once Ready.
    assert!(matches!(
        s.put_file_chunk(seg, 0, &segment[..10_000], 4),
        Err(Error::AlreadyFinished)
    ));
    assert!(matches!(
        s.begin_files(&specs, 4),
        Err(Error::AlreadyFinished)
    ));
    // Everything survives a reload, with the digests as declared.
    drop(s);
    let s = VideoStore::load(mem).unwrap();
    let f = s.file(seg).unwrap();
    assert_eq!(
        f.digest.unwrap().to_vec(),
        file_digest(chunk_digest_list(&segment, 10_000)).to_vec()
    );
    assert_eq!(
        s.read_file(seg, 9_990, 20).unwrap(),
        &segment[9_990..10_010]
    );
    assert_eq!(s.get_file_chunk("/subs/en.vtt", 0).unwrap(), subs);
    assert_eq!(
        s.file_chunk_digest(seg, 2),
        Some(chunk_digest_list(&segment, 10_000)[2])
    );
    // Paging in path order.
    let page = s.files_page(&FilesArgs {
        after: None,
        limit: Some(2),
    });
    let paths: Vec<_> = page.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["/hls/720p/index.m3u8", seg]);
    assert_eq!(page.total, 3);
    let rest = s.files_page(&FilesArgs {
        after: page.next,
        limit: Some(2),
    });
    assert_eq!(rest.files.len(), 1);
    assert_eq!(rest.files[0].path, "/subs/en.vtt");
    assert_eq!(rest.next, None);
}

#[test]
fn declarations_are_checked_and_all_or_none() {
    let mut s = VideoStore::init(VectorMemory::default(), &init_arg(), p(9), 1).unwrap();
    let ok = named("/a.vtt", "text/vtt", b"WEBVTT\n", 100, false);
    for (bad, why) in [
        (named("/video", "video/mp4", b"x", 1, false), "reserved"),
        (named("/a/../b", "video/mp4", b"x", 1, false), "segment"),
        (named("/page.html", "text/html", b"x", 1, false), "mime"),
        (named("/img.svg", "image/svg+xml", b"x", 1, false), "mime"),
    ] {
        let r = s.begin_files(&[ok.clone(), bad], 1);
        assert!(
            matches!(r, Err(Error::InvalidArgument { .. })),
            "{why}: {r:?}"
        );
        assert_eq!(s.files_state().declared, 0, "{why}: nothing declared");
    }
    assert!(matches!(
        s.begin_files(&[ok.clone(), ok.clone()], 1),
        Err(Error::InvalidArgument { .. })
    ));
    s.begin_files(std::slice::from_ref(&ok), 1).unwrap();
    s.put_file_chunk("/a.vtt", 0, b"WEBVTT\n", 1).unwrap();
    // A different declaration of a file with chunks is a conflict...
    let other = named("/a.vtt", "text/vtt", b"WEBVTT\n\n", 100, false);
    assert!(matches!(
        s.begin_files(std::slice::from_ref(&other), 1),
        Err(Error::Conflict { .. })
    ));
    // ...until reset_upload forgets every file.
    s.reset_upload(2).unwrap();
    assert_eq!(s.status(), VideoStatus::Empty);
    assert!(s.file("/a.vtt").is_none());
    s.begin_files(&[other], 1).unwrap();
    assert_eq!(s.file("/a.vtt").unwrap().uploaded_chunks, 0);
    // A rendition on the main file is refused.
    let mut main = named("/x", "video/mp4", b"x", 1, false);
    main.path = None;
    main.rendition = Some(Rendition {
        name: "x".into(),
        width: 1,
        height: 1,
        bandwidth: 1,
        codecs: None,
    });
    assert!(s.begin_upload(&main, 1).is_err());
}

/// An uploader cannot make the canister allocate far ahead of the bytes it sends: declarations
/// stop once `MAX_RESERVED_AHEAD` bytes wait, and a put far into a file is `Busy`.
#[test]
fn reservations_and_puts_cannot_allocate_far_ahead() {
    let mem = VectorMemory::default();
    let mut s = VideoStore::init(mem.clone(), &init_arg(), p(9), 1).unwrap();
    let big = |path: &str, size: u64| UploadSpec {
        mime_type: "video/mp4".into(),
        total_size: size,
        chunk_size: 2_000_000,
        chunk_digests: None,
        file_digest: None,
        duration_ms: None,
        path: Some(path.into()),
        rendition: None,
        encryption: None,
    };
    s.begin_files(&[big("/big.mp4", 300 << 30)], 1).unwrap();
    let before = mem.size();
    match s.begin_files(&[big("/next.mp4", 1_000)], 1) {
        Err(Error::Busy { reason }) => assert!(reason.contains("declared"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // The last chunk of the 300 GiB file: refused, nothing allocated.
    let last = ((300u64 << 30).div_ceil(2_000_000) - 1) as u32;
    let tail = vec![0u8; ((300u64 << 30) - u64::from(last) * 2_000_000) as usize];
    assert!(matches!(
        s.put_file_chunk("/big.mp4", last, &tail, 2),
        Err(Error::Busy { .. })
    ));
    assert_eq!(mem.size(), before);
    assert!(mem.size() * 65_536 < MAX_RESERVED_AHEAD);
}

fn upload_main(s: &mut VideoStore<VectorMemory>, data: &[u8], chunk: u32) {
    let mut spec = named("/x", "video/mp4", data, chunk, true);
    spec.path = None;
    s.begin_upload(&spec, 1).unwrap();
    for (i, c) in data.chunks(chunk as usize).enumerate() {
        s.put_chunk(i as u32, c, 1).unwrap();
    }
}

/// The storage issue's bound: stable memory ≤ 1.05 × content + 2 MiB, for a single file and
/// for an HLS-like set of many small files plus the original. Layout 3 shown for contrast.
#[test]
fn footprint_is_close_to_the_bytes_stored() {
    const MIB: u64 = 1 << 20;
    let bound = |content: u64| content + content / 20 + 2 * MIB;
    // One 5 MB clip in 2 MB chunks.
    let clip = bytes(5_000_000, 1);
    let mem = VectorMemory::default();
    let mut s = VideoStore::init(mem.clone(), &init_arg(), p(9), 1).unwrap();
    upload_main(&mut s, &clip, 2_000_000);
    s.finish_upload(2).unwrap();
    s.set_poster("image/jpeg", &bytes(30_000, 3), 2).unwrap();
    let used = mem.size() * 65_536;
    eprintln!("footprint: 5 MB clip + 30 KB poster: {used} bytes (layout 4)");
    assert!(used <= bound(5_030_000), "{used} bytes for a 5 MB clip");
    let legacy = VectorMemory::default();
    let mut l = VideoStore::init_managed(legacy.clone(), &init_arg(), p(9), 1).unwrap();
    upload_main(&mut l, &clip, 2_000_000);
    l.set_poster("image/jpeg", &bytes(30_000, 3), 2).unwrap();
    eprintln!(
        "footprint: 5 MB clip + 30 KB poster: {} bytes (layout 3)",
        legacy.size() * 65_536
    );
    assert!(
        legacy.size() * 65_536 > 4 * 16 * MIB,
        "layout 3 pays a bucket per memory"
    );
    // The original + 3 renditions x 40 segments of 60 KB + playlists + subtitles.
    let mem = VectorMemory::default();
    let mut s = VideoStore::init(mem.clone(), &init_arg(), p(9), 1).unwrap();
    upload_main(&mut s, &clip, 1_000_000);
    let mut content = clip.len() as u64;
    let mut files = Vec::new();
    for rung in ["1080p", "720p", "360p"] {
        files.push((format!("/hls/{rung}/index.m3u8"), bytes(3_000, 2)));
        for k in 0..40 {
            files.push((format!("/hls/{rung}/seg-{k:05}.m4s"), bytes(60_000 + k, 5)));
        }
    }
    files.push(("/subs/en.vtt".into(), bytes(4_000, 9)));
    let specs: Vec<_> = files
        .iter()
        .map(|(path, data)| named(path, "video/mp4", data, 2_000_000, true))
        .collect();
    s.begin_files(&specs, 1).unwrap();
    for (path, data) in &files {
        put_all(&mut s, path, data, 2_000_000);
        content += data.len() as u64;
    }
    s.finish_upload(3).unwrap();
    let used = mem.size() * 65_536;
    eprintln!(
        "footprint: original + HLS set, {} files, {content} bytes: {used} bytes",
        files.len() + 1
    );
    assert!(
        used <= bound(content),
        "{used} bytes for {content} bytes in {} files",
        files.len() + 1
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    /// Any mix of file sizes (a main file or not, 1..40 named files of 1 B..600 KB, chunk
    /// sizes from 4 KB to 2 MB): the footprint bound holds and every byte reads back.
    #[test]
    fn footprint_bound_holds_for_any_set(
        main in proptest::option::of(1usize..3_000_000),
        sizes in proptest::collection::vec(1usize..600_000, 1..40),
        chunk in prop_oneof![Just(4_096u32), Just(65_536), Just(1_000_000), Just(2_000_000)],
    ) {
        let mem = VectorMemory::default();
        let mut s = VideoStore::init(mem.clone(), &init_arg(), p(9), 1).unwrap();
        let mut content = 0u64;
        if let Some(len) = main {
            upload_main(&mut s, &bytes(len, 3), chunk);
            content += len as u64;
        }
        let files: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, len)| (format!("/f/{i:03}.m4s"), bytes(*len, i as u8)))
            .collect();
        let specs: Vec<_> = files
            .iter()
            .map(|(path, data)| named(path, "video/mp4", data, chunk, false))
            .collect();
        s.begin_files(&specs, 1).unwrap();
        for (path, data) in &files {
            put_all(&mut s, path, data, chunk);
            content += data.len() as u64;
        }
        s.finish_upload(2).unwrap();
        let used = mem.size() * 65_536;
        prop_assert!(used <= content + content / 20 + (2 << 20), "{} for {}", used, content);
        for (path, data) in &files {
            let n = data.len().min(2_000_000) as u64;
            prop_assert_eq!(s.read_file(path, 0, n).unwrap(), &data[..n as usize]);
        }
    }
}

/// A video of an older layout (a `MemoryManager`) can hold named files too: memories 7 and 8
/// are created in the same manager.
#[test]
fn older_layouts_hold_named_files_too() {
    let mem = VectorMemory::default();
    let mut s = VideoStore::init_managed(mem.clone(), &init_arg(), p(9), 1).unwrap();
    let data = bytes(5_000, 4);
    s.begin_files(&[named("/a.m4s", "video/mp4", &data, 2_000, true)], 1)
        .unwrap();
    put_all(&mut s, "/a.m4s", &data, 2_000);
    s.finish_upload(2).unwrap();
    drop(s);
    let s = VideoStore::load(mem).unwrap();
    assert_eq!(s.layout_version(), crate::store::MANAGED_LAYOUT_VERSION);
    assert_eq!(s.read_file("/a.m4s", 0, 5_000).unwrap(), data);
}
