//! Named files: served at their exact paths with the main file's `Range` behaviour, CORS on
//! every answer, every answer a player makes certified (budgeted over many files), and a gate
//! per path.

use super::*;
use crate::{Gate, GateFor, Viewer};

/// Small grid so that a few KB make multi-chunk files.
const NC: u64 = 1_000;

/// A Ready main file and an HLS ladder: a master playlist, `renditions` × (`index.m3u8`, a
/// one-chunk `init.mp4`, `segments` segments of 1–3 chunks), a subtitle playlist and track, a
/// thumbnail sprite of several chunks (but one body).
fn ladder(renditions: usize, segments: usize) -> MemVideo {
    let mut v = MemVideo::new(3_500, C);
    v.add_named("/hls/master.m3u8", "application/vnd.apple.mpegurl", 300, NC);
    for r in ["240p", "480p", "720p", "1080p"]
        .into_iter()
        .take(renditions)
    {
        v.add_named(
            &format!("/hls/{r}/index.m3u8"),
            "application/vnd.apple.mpegurl",
            900,
            NC,
        );
        v.add_named(&format!("/hls/{r}/init.mp4"), "video/mp4", 700, NC);
        for s in 0..segments {
            // 1 chunk, 2 chunks exactly, 3 chunks with a short last one.
            let size = [800, 2_000, 2_345][s % 3];
            v.add_named(&format!("/hls/{r}/seg-{s:05}.m4s"), "video/mp4", size, NC);
        }
    }
    v.add_named(
        "/hls/subs/en.m3u8",
        "application/vnd.apple.mpegurl",
        120,
        NC,
    );
    v.add_named("/subs/en.vtt", "text/vtt; charset=utf-8", 1_500, NC);
    v.add_named("/thumbs/sprite.jpg", "image/jpeg", 4_321, NC);
    v
}

fn named_chunks(v: &MemVideo, path: &str) -> u64 {
    (v.named_bytes(path).len() as u64).div_ceil(v.named[path].chunk_size)
}

/// The requests a player, a browser or the gateway makes for a named file: plain GET (HLS),
/// `bytes=0-`, HEAD, the 304s, the preflight, and every chunk ≥ 1 in each range form.
fn player_requests(v: &MemVideo, path: &str) -> Vec<OwnedCase> {
    let size = v.named_bytes(path).len() as u64;
    let whole = if size <= crate::MAX_BODY { 200 } else { 206 };
    let tag = etag(&v.named_digest(path));
    let mut cases: Vec<OwnedCase> = vec![
        ("GET", path.into(), vec![], whole),
        ("GET", format!("{path}?token=abc"), vec![], whole),
        ("GET", path.into(), vec![("Range", "bytes=0-".into())], 206),
        ("HEAD", path.into(), vec![], 200),
        (
            "GET",
            path.into(),
            vec![("If-None-Match", tag.clone())],
            304,
        ),
        ("HEAD", path.into(), vec![("If-None-Match", tag)], 304),
        (
            "OPTIONS",
            path.into(),
            vec![
                ("Origin", "https://player.example".into()),
                ("Access-Control-Request-Method", "GET".into()),
                ("Access-Control-Request-Headers", "range".into()),
            ],
            204,
        ),
    ];
    let n = named_chunks(v, path);
    for k in 1..n {
        let start = k * NC;
        let end = (start + NC).min(size) - 1;
        cases.push((
            "GET",
            path.into(),
            vec![("Range", format!("bytes={start}-"))],
            206,
        ));
        cases.push((
            "GET",
            path.into(),
            vec![("Range", format!("bytes={start}-{end}"))],
            206,
        ));
        cases.push((
            "GET",
            path.into(),
            vec![("Range", format!("bytes={start}-{}", size - 1))],
            206,
        ));
        // A media element's off-grid seek into chunk k.
        cases.push((
            "GET",
            path.into(),
            vec![
                ("Range", format!("bytes={}-", start + 7)),
                ("Sec-Fetch-Dest", "video".into()),
            ],
            206,
        ));
    }
    cases
}

fn owned_req(method: &str, url: &str, headers: &[(&'static str, String)]) -> HttpRequest<'static> {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    req(method, url, &headers)
}

#[test]
fn named_files_are_served_at_their_paths() {
    let mut v = ladder(1, 3);
    // A file of several chunks that fits one body, and one larger than a body.
    v.add_named("/big/two-chunks.mp4", "video/mp4", 1_500_000, 1_000_000);
    v.add_named("/big/huge.mp4", "video/mp4", 2_000_500, 1_000_000);
    let path = "/hls/240p/seg-00000.m4s";
    let bytes = v.named_bytes(path).to_vec();
    let tag = etag(&v.named_digest(path));
    for url in [path.to_string(), format!("{path}?token=abc&x=1")] {
        let r = get(&v, &url, &[]);
        assert_eq!(status(&r), 200, "{url}");
        assert_eq!(r.body(), bytes.as_slice());
        assert_eq!(hdr(&r, "content-type"), Some("video/mp4"));
        assert_eq!(hdr(&r, "content-length"), Some("800"));
        assert_eq!(hdr(&r, "accept-ranges"), Some("bytes"));
        assert_eq!(hdr(&r, "etag"), Some(tag.as_str()));
        assert_eq!(hdr(&r, "cache-control"), Some(CACHE_IMMUTABLE));
        assert_eq!(hdr(&r, "access-control-allow-origin"), Some("*"));
        assert_eq!(
            hdr(&r, "access-control-expose-headers"),
            Some("Content-Range, Content-Length, Accept-Ranges, ETag")
        );
        assert_eq!(hdr(&r, "x-content-type-options"), Some("nosniff"));
        assert_eq!(hdr(&r, "content-security-policy"), Some("sandbox"));
    }
    // Each file has its own type and bytes.
    let r = get(&v, "/subs/en.vtt", &[]);
    assert_eq!(hdr(&r, "content-type"), Some("text/vtt; charset=utf-8"));
    assert_eq!(r.body(), v.named_bytes("/subs/en.vtt"));
    let r = get(&v, "/hls/master.m3u8", &[]);
    assert_eq!(
        hdr(&r, "content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    // Ranges: inside a chunk, cut at the chunk's end, from the end, unsatisfiable.
    let seg = "/hls/240p/seg-00002.m4s"; // 2,345 bytes
    let sb = v.named_bytes(seg).to_vec();
    let r = get(&v, seg, &[("Range", "bytes=10-19")]);
    assert_eq!(status(&r), 206);
    assert_eq!(hdr(&r, "content-range"), Some("bytes 10-19/2345"));
    assert_eq!(r.body(), &sb[10..20]);
    let r = get(&v, seg, &[("Range", "bytes=1500-")]);
    assert_eq!(hdr(&r, "content-range"), Some("bytes 1500-1999/2345"));
    assert_eq!(r.body(), &sb[1500..2000]);
    let r = get(&v, seg, &[("Range", "bytes=-45")]);
    assert_eq!(hdr(&r, "content-range"), Some("bytes 2300-2344/2345"));
    assert_eq!(r.body(), &sb[2300..]);
    let r = get(&v, seg, &[("Range", "bytes=9999-")]);
    assert_eq!(status(&r), 416);
    assert_eq!(hdr(&r, "content-range"), Some("bytes */2345"));
    assert_eq!(hdr(&r, "access-control-allow-origin"), Some("*"));
    // A plain GET of a multi-chunk file: whole when it fits one body, else the first chunk.
    let r = get(&v, seg, &[]);
    assert_eq!((status(&r), r.body()), (200, sb.as_slice()));
    let r = get(&v, "/big/two-chunks.mp4", &[]);
    assert_eq!(status(&r), 200);
    assert_eq!(r.body(), v.named_bytes("/big/two-chunks.mp4"));
    let r = get(&v, "/big/huge.mp4", &[]);
    assert_eq!(status(&r), 206);
    assert_eq!(hdr(&r, "content-range"), Some("bytes 0-999999/2000500"));
    assert_eq!(r.body(), &v.named_bytes("/big/huge.mp4")[..1_000_000]);
    // HEAD: headers of the whole file, no body; 304 for the ETag.
    let r = serve_uncertified("HEAD", seg, &[], &v, None);
    assert_eq!((status(&r), r.body().len()), (200, 0));
    assert_eq!(hdr(&r, "content-length"), Some("2345"));
    let inm = vec![("if-none-match".to_string(), etag(&v.named_digest(seg)))];
    let r = serve_uncertified("GET", seg, &inm, &v, None);
    assert_eq!((status(&r), r.body().len()), (304, 0));
    // The main file's ETag is not this file's.
    let main_tag = vec![("if-none-match".to_string(), etag(&v.digest()))];
    assert_eq!(
        status(&serve_uncertified("GET", seg, &main_tag, &v, None)),
        200
    );
    // Exact paths only: no prefix, suffix or case folding.
    for path in [
        "/hls",
        "/hls/",
        "/hls/240p",
        "/HLS/master.m3u8",
        "/hls/master.m3u8/",
    ] {
        assert_eq!(status(&get(&v, path, &[])), 404, "{path}");
    }
    // The main file is unchanged.
    let r = get(&v, "/video", &[]);
    assert_eq!((status(&r), r.body().len()), (206, C as usize));
    assert_eq!(hdr(&r, "access-control-allow-origin"), Some("*"));
}

/// Before the video is Ready its named files are unknown paths (404), not 503: they appear all
/// together with the main file.
#[test]
fn named_files_only_when_ready() {
    let mut v = ladder(1, 1);
    v.status = VideoStatus::Uploading;
    let c = certified(&v);
    assert_eq!(c.named_file_count(), 0);
    let request = req("GET", "/hls/master.m3u8", &[]);
    let r = query(&c, &v, &request);
    assert_eq!(status(&r), 404);
    verify(&request, &r, c.root_hash()).unwrap();
    assert_eq!(status(&get(&v, "/video", &[])), 503);
}

/// Every answer a player makes to every file of a 3 × 20 ladder is certified by the query (no
/// upgrade), verifies, and equals the uncertified answer; the entry count is as documented.
#[test]
fn ladder_answers_verify() {
    let v = ladder(3, 20);
    let c = certified(&v);
    assert_eq!(c.named_file_count(), v.named.len());
    let root = c.root_hash();
    let mut named_entries = 0;
    for path in v.named.keys() {
        let n = named_chunks(&v, path) as usize;
        // 6 fixed answers, 4 range forms per chunk ≥ 1 but 3 for the last.
        named_entries += 6 + if n > 1 { 4 * (n - 1) - 1 } else { 0 };
        for (method, url, headers, want) in player_requests(&v, path) {
            let request = owned_req(method, &url, &headers);
            let r = query(&c, &v, &request);
            let what = format!("{method} {url} {headers:?}");
            assert_eq!((status(&r), r.upgrade()), (want, None), "{what}");
            verify(&request, &r, root).unwrap_or_else(|e| panic!("{what}: {e}"));
            let plain = serve_uncertified(method, &url, request.headers(), &v, None);
            assert_eq!(r.body(), plain.body(), "{what}");
            assert_eq!(
                update_need(&request.clone().into(), &v, None, &c),
                UpdateNeed::None,
                "{what}"
            );
        }
    }
    let main_only = {
        let mut m = MemVideo::new(3_500, C);
        m.metadata = v.metadata.clone();
        certified(&m).entry_count()
    };
    assert_eq!(c.entry_count(), main_only + named_entries);
    // One-chunk files (playlists, init, 1/3 of the segments) cost 6 entries each.
    assert_eq!(named_chunks(&v, "/hls/master.m3u8"), 1);
}

/// An answer for one file never verifies for another path: entries are per path.
#[test]
fn answers_do_not_verify_at_other_paths() {
    let v = ladder(1, 2);
    let c = certified(&v);
    let a = req("GET", "/hls/240p/seg-00000.m4s", &[]);
    let b = req("GET", "/hls/240p/init.mp4", &[]);
    let ra = query(&c, &v, &a);
    verify(&a, &ra, c.root_hash()).unwrap();
    assert!(verify(&b, &ra, c.root_hash()).is_err());
    // Tampered bytes do not verify.
    let tampered = HttpResponse::builder()
        .with_status_code(ra.status_code())
        .with_headers(ra.headers().to_vec())
        .with_body(vec![0u8; ra.body().len()])
        .build();
    assert!(verify(&a, &tampered, c.root_hash()).is_err());
}

/// The budgeted build covers many files one step at a time (a file's fixed answers, or one of
/// its chunks), asks the source for one file per step, and ends in the one-shot tree; a file
/// not built yet is upgraded, never served unverifiable.
#[test]
fn budgeted_certification_over_many_files() {
    let mut v = MemVideo::new(3_500, C);
    for i in 0..400 {
        let size = if i % 50 == 0 { 2_500 } else { 600 };
        v.add_named(&format!("/hls/720p/seg-{i:05}.m4s"), "video/mp4", size, NC);
    }
    let whole = certified(&v);
    let steps_needed: u64 = 3 // main chunks 1..=3
        + v.named.keys().map(|p| named_chunks(&v, p)).sum::<u64>();
    let mut c = Certifier::new();
    c.start(&v).unwrap();
    assert_eq!(c.pending_chunks(), 3 + 1);
    v.listings.set(0);
    let late = req("GET", "/hls/720p/seg-00399.m4s", &[]);
    let r = query(&c, &v, &late);
    assert_eq!(r.upgrade(), Some(true), "not certified yet: upgraded");
    assert_eq!(
        update_need(&late.clone().into(), &v, None, &c),
        UpdateNeed::NotCertifiedYet
    );
    let mut steps = 0;
    let mut max_step_entries = 0;
    loop {
        let before = c.entry_count();
        let pending = c.resume(&v, &mut || false).unwrap();
        steps += 1;
        max_step_entries = max_step_entries.max(c.entry_count() - before);
        // Whatever is in the tree verifies at every step.
        let early = req("GET", "/hls/720p/seg-00000.m4s", &[]);
        let r = query(&c, &v, &early);
        if r.upgrade() != Some(true) {
            verify(&early, &r, c.root_hash()).unwrap();
        }
        if pending == 0 {
            break;
        }
    }
    assert_eq!(steps, steps_needed);
    // Per step: 8 entries of a main chunk (2 paths × 4 forms) or ≤ 6 of a named file.
    assert_eq!(max_step_entries, 8);
    assert_eq!(v.listings.get(), 400, "one listing per file, not per step");
    assert_eq!(c.tree_paths(), whole.tree_paths());
    assert_eq!(c.entry_count(), whole.entry_count());
    let r = query(&c, &v, &late);
    assert_eq!(status(&r), 200);
    verify(&late, &r, c.root_hash()).unwrap();
    // Finished stays finished.
    assert_eq!(c.resume(&v, &mut || true).unwrap(), 0);
}

/// A named file that cannot be certified (a missing chunk digest) is skipped: the others are
/// certified and the error comes once the build is done.
#[test]
fn a_broken_file_does_not_stop_the_build() {
    struct NoDigest(MemVideo);
    impl crate::VideoSource for NoDigest {
        fn info(&self) -> Option<crate::VideoInfo> {
            self.0.info()
        }
        fn read(&self, o: u64, l: u64) -> Result<Vec<u8>, crate::ReadError> {
            self.0.read(o, l)
        }
        fn chunk_digest(&self, i: u64) -> Option<[u8; 32]> {
            self.0.chunk_digest(i)
        }
        fn metadata_json(&self) -> String {
            self.0.metadata_json()
        }
        fn poster(&self) -> Option<Poster> {
            None
        }
        fn named_file(&self, p: &str) -> Option<crate::NamedFile> {
            self.0.named_file(p)
        }
        fn named_files_after(&self, a: Option<&str>, l: usize) -> Vec<crate::NamedFile> {
            self.0.named_files_after(a, l)
        }
        fn read_named(&self, p: &str, o: u64, l: u64) -> Result<Vec<u8>, crate::ReadError> {
            self.0.read_named(p, o, l)
        }
        fn named_chunk_digest(&self, p: &str, i: u64) -> Option<[u8; 32]> {
            (p != "/b.m4s")
                .then(|| self.0.named_chunk_digest(p, i))
                .flatten()
        }
    }
    let mut m = MemVideo::new(500, C);
    for p in ["/a.m4s", "/b.m4s", "/c.m4s"] {
        m.add_named(p, "video/mp4", 600, NC);
    }
    let v = NoDigest(m);
    let mut c = Certifier::new();
    assert!(matches!(
        c.certify_all(&v),
        Err(crate::CertifyError::MissingChunkDigest { .. })
    ));
    assert_eq!(c.pending_chunks(), 0);
    for (path, certified) in [("/a.m4s", true), ("/b.m4s", false), ("/c.m4s", true)] {
        let request = req("GET", path, &[]);
        let r = http_request(&request, &v, None, &c, Some(FAKE_CERT));
        assert_eq!(r.upgrade() != Some(true), certified, "{path}");
    }
}

fn token_gate(viewer: Viewer) -> Gate {
    // A large preview: named files have none, whatever the gate says.
    Gate {
        preview_end: 1_000_000,
        viewer,
    }
}

/// The gate per path: free named files are public, the others are refused as a whole with a
/// certified 401/403; the main file keeps its preview.
#[test]
fn gate_per_path() {
    let v = ladder(2, 3);
    let free: Vec<String> = vec!["/hls/master.m3u8".into(), "/hls/240p/".into()];
    let mut c = certified(&v);
    c.certify_gate(&v, true, &free).unwrap();
    let root = c.root_hash();
    for viewer in [Viewer::NoToken, Viewer::Denied, Viewer::Allowed] {
        let g = token_gate(viewer);
        let gate_for = |path: &str| (!crate::is_free_path(&free, path)).then_some(g);
        let ask = |method: &str, path: &str, headers: &[(&str, &str)]| {
            let request = req(method, path, headers);
            let r = http_request(
                &request,
                &v,
                GateFor::per_path(&gate_for),
                &c,
                Some(FAKE_CERT),
            );
            (request, r)
        };
        for path in v.named.keys() {
            let gated = !crate::is_free_path(&free, path);
            let (request, r) = ask("GET", path, &[]);
            let want = match (gated, viewer) {
                (false, _) | (true, Viewer::Allowed) => 200,
                (true, Viewer::NoToken) => 401,
                (true, Viewer::Denied) => 403,
            };
            let what = format!("{viewer:?} {path}");
            assert_eq!((status(&r), r.upgrade()), (want, None), "{what}");
            verify(&request, &r, root).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(hdr(&r, "access-control-allow-origin"), Some("*"), "{what}");
            if want == 200 {
                assert_eq!(r.body(), v.named_bytes(path), "{what}");
            }
            // Answers without bytes are not refused.
            for method in ["HEAD", "OPTIONS"] {
                let (request, r) = ask(method, path, &[]);
                assert!(matches!(status(&r), 200 | 204), "{what} {method}");
                verify(&request, &r, root).unwrap();
            }
            // A replicated query (no data certificate) refuses too, and upgrades the rest.
            let r = http_request(&request, &v, GateFor::per_path(&gate_for), &c, None);
            if want == 200 {
                assert_eq!(r.upgrade(), Some(true), "{what}");
            } else {
                assert_eq!((status(&r), r.upgrade()), (want, None), "{what}");
            }
            // The update path gives the same refusal; it is never worth an update call.
            let upd =
                http_request_update(&request.clone().into(), &v, GateFor::per_path(&gate_for));
            assert_eq!(status(&upd), want, "{what}");
            if want != 200 {
                assert_eq!(
                    update_need(
                        &request.clone().into(),
                        &v,
                        GateFor::per_path(&gate_for),
                        &c
                    ),
                    UpdateNeed::None
                );
            }
        }
        // The main file keeps its preview, here the whole file: the same gate that refuses
        // every byte of a gated named file serves all of the main file.
        let (request, r) = ask("GET", "/video", &[("Range", "bytes=3000-")]);
        assert_eq!(status(&r), 206);
        verify(&request, &r, root).unwrap();
    }
}

/// `certify_gate` follows the free paths and the public/gated switch at named paths, and costs
/// nothing per file when neither changed; files built after it get their refusals too.
#[test]
fn certify_gate_follows_free_paths() {
    let v = ladder(2, 2);
    let path = "/hls/480p/seg-00000.m4s";
    let deny = token_gate(Viewer::Denied);
    let refused_at = |c: &Certifier, path: &str| {
        let request = req("GET", path, &[]);
        let r = http_request(&request, &v, Some(&deny), c, Some(FAKE_CERT));
        assert_eq!(status(&r), 403);
        verify(&request, &r, c.root_hash()).is_ok()
    };
    let refused = |c: &Certifier| refused_at(c, path);
    let mut c = certified(&v);
    let public_count = c.entry_count();
    assert!(!refused(&c), "public: no refusal in the tree");
    c.certify_gate(&v, true, &[]).unwrap();
    // 2 per named file and per video path.
    assert_eq!(c.entry_count(), public_count + 2 * (v.named.len() + 2));
    assert!(refused(&c));
    let gated_root = c.root_hash();
    assert_eq!(c.certify_gate(&v, true, &[]).unwrap(), gated_root);
    let free = vec!["/hls/480p/".to_string()];
    c.certify_gate(&v, true, &free).unwrap();
    assert!(!refused(&c), "a free path has no refusal");
    let free_count = v
        .named
        .keys()
        .filter(|p| p.starts_with("/hls/480p/"))
        .count();
    assert_eq!(
        c.entry_count(),
        public_count + 2 * (v.named.len() - free_count + 2)
    );
    c.certify_gate(&v, true, &[]).unwrap();
    assert_eq!(c.tree_paths(), {
        let mut g = certified(&v);
        g.certify_gate(&v, true, &[]).unwrap();
        g.tree_paths()
    });
    c.certify_gate(&v, false, &[]).unwrap();
    assert_eq!(c.entry_count(), public_count);
    assert!(!refused(&c));
    // Gate first, then the (budgeted) build: the files get their refusals as they are built.
    let mut late = Certifier::new();
    late.certify_gate(&v, true, &free).unwrap();
    late.certify_all(&v).unwrap();
    assert!(!refused(&late));
    assert!(refused_at(&late, "/hls/240p/seg-00000.m4s"));
    assert_eq!(late.tree_paths(), {
        let mut g = certified(&v);
        g.certify_gate(&v, true, &free).unwrap();
        g.tree_paths()
    });
    late.certify_gate(&v, true, &[]).unwrap();
    assert!(refused(&late));
}

/// CORS on every answer, main file and named files, errors included; the preflight is a
/// certified 204 at every path.
#[test]
fn cors_on_every_answer() {
    let mut v = ladder(1, 1);
    v.poster = Some(Poster {
        mime_type: "image/png".into(),
        bytes: vec![1, 2, 3],
        sha256: sha256(&[1, 2, 3]),
    });
    let c = certified(&v);
    let cases: Vec<RequestCase> = vec![
        ("GET", "/", vec![]),
        ("GET", "/video", vec![("Range", "bytes=1000-")]),
        ("GET", "/video", vec![("Range", "bytes=9999-")]),
        ("HEAD", "/video", vec![]),
        ("GET", "/metadata.json", vec![]),
        ("GET", "/poster", vec![]),
        ("GET", "/nowhere", vec![]),
        ("POST", "/video", vec![]),
        ("POST", "/hls/master.m3u8", vec![]),
        ("TRACE", "/video", vec![]),
        ("GET", "http://[", vec![]),
        ("GET", "/hls/master.m3u8", vec![]),
        (
            "GET",
            "/hls/240p/seg-00000.m4s",
            vec![("Range", "bytes=3-9")],
        ),
        ("OPTIONS", "/", vec![]),
        ("OPTIONS", "/video", vec![]),
        ("OPTIONS", "/metadata.json", vec![]),
        ("OPTIONS", "/poster", vec![]),
        ("OPTIONS", "/nowhere", vec![]),
        ("OPTIONS", "/hls/master.m3u8?token=x", vec![]),
    ];
    for (method, url, headers) in cases {
        let request = req(method, url, &headers);
        let plain = serve_uncertified(method, url, request.headers(), &v, None);
        let r = query(&c, &v, &request);
        let what = format!("{method} {url} {headers:?}");
        for response in [&plain, &r] {
            if response.upgrade() == Some(true) {
                continue;
            }
            for (name, value) in CORS_HEADERS.iter().chain(&SECURITY_HEADERS) {
                assert_eq!(hdr(response, name), Some(*value), "{what} {name}");
            }
        }
        if method == "OPTIONS" {
            assert_eq!((status(&r), r.body().len()), (204, 0), "{what}");
            for (name, value) in PREFLIGHT_HEADERS {
                assert_eq!(hdr(&r, name), Some(value), "{what}");
            }
            verify(&request, &r, c.root_hash()).unwrap_or_else(|e| panic!("{what}: {e}"));
            // Certified with its method: the 204 does not verify as the answer to a GET.
            let as_get = req("GET", url, &[]);
            assert!(verify(&as_get, &r, c.root_hash()).is_err(), "{what}");
        }
    }
    let r = internal_error("x");
    assert_eq!(hdr(&r, "access-control-allow-origin"), Some("*"));
}

/// An HLS player's session (hls.js: fetches without `Range`, from another origin): nothing is
/// upgraded once the tree is built, so the gateway never needs an update call.
#[test]
fn hls_playback_needs_no_upgrade() {
    let v = ladder(3, 20);
    let c = certified(&v);
    let player = [
        ("Origin", "https://app.example"),
        ("Sec-Fetch-Mode", "cors"),
        ("Sec-Fetch-Dest", "empty"),
    ];
    let mut upgraded = 0;
    for path in v.named.keys() {
        let request = req("GET", path, &player);
        let r = query(&c, &v, &request);
        upgraded += usize::from(r.upgrade() == Some(true));
        assert_eq!(status(&r), 200, "{path}");
        assert_eq!(r.body(), v.named_bytes(path));
        verify(&request, &r, c.root_hash()).unwrap();
    }
    assert_eq!(upgraded, 0);
}

/// Files larger than one body: plain GET and `bytes=0-` share one entry (the same 206), the
/// other chunks are certified in every range form; a multi-chunk file that fits one body gets
/// its 200 certified from a hash taken once at build time.
#[test]
fn large_and_multi_chunk_files_verify() {
    let mut v = MemVideo::new(500, C);
    v.add_named("/big/huge.mp4", "video/mp4", 2_000_500, 1_000_000);
    v.add_named("/big/two.mp4", "video/mp4", 1_500_000, 1_000_000);
    let main_only = certified(&MemVideo::new(500, C)).entry_count();
    let c = certified(&v);
    // huge: 5 fixed (GET = bytes=0-), chunk 1 in 4 forms, chunk 2 (last) in 3;
    // two: 6 fixed, chunk 1 (last) in 3.
    assert_eq!(c.entry_count(), main_only + (5 + 4 + 3) + (6 + 3));
    for path in ["/big/huge.mp4", "/big/two.mp4"] {
        let size = v.named_bytes(path).len() as u64;
        let whole = if size <= crate::MAX_BODY { 200 } else { 206 };
        let mut cases: Vec<OwnedCase> = vec![("GET", path.into(), vec![], whole)];
        for k in 1..size.div_ceil(1_000_000) {
            let start = k * 1_000_000;
            cases.push((
                "GET",
                path.into(),
                vec![("Range", format!("bytes={start}-"))],
                206,
            ));
        }
        for (method, url, headers, want) in cases {
            let request = owned_req(method, &url, &headers);
            let r = query(&c, &v, &request);
            let what = format!("{method} {url} {headers:?}");
            assert_eq!((status(&r), r.upgrade()), (want, None), "{what}");
            verify(&request, &r, c.root_hash()).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
}
