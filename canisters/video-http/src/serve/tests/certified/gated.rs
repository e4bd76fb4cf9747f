//! A gated video (not public): the preview's answers as for a public video, 401/403 (certified,
//! from the query) for any answer that would carry a byte past it, everything without media
//! bytes unchanged.

use super::*;
use crate::{playback_token, Gate, Viewer};

const PREVIEW: u64 = 2 * C;

fn gate(viewer: Viewer) -> Gate {
    Gate {
        preview_end: PREVIEW,
        viewer,
    }
}

/// 4 chunks (the last one short), certified with its 401/403 entries.
fn gated_video() -> (MemVideo, Certifier) {
    let v = MemVideo::new(3_500, C);
    let mut c = certified(&v);
    c.certify_gate(&v, true, &[]).unwrap();
    (v, c)
}

fn gated_query(
    c: &Certifier,
    v: &MemVideo,
    gate: Option<&Gate>,
    request: &HttpRequest,
) -> HttpResponse<'static> {
    http_request(request, v, gate, c, Some(FAKE_CERT))
}

/// The response without its `IC-Certificate` header (whose witness depends on the whole tree).
fn uncertified(r: &HttpResponse) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers = r
        .headers()
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("ic-certificate"))
        .cloned()
        .collect();
    (status(r), headers, r.body().to_vec())
}

/// Asserts a refusal: status, headers, body, certified response-only at the request's path,
/// answered by the query, never worth an update call.
fn assert_refused(c: &Certifier, v: &MemVideo, g: &Gate, request: &HttpRequest, want: u16) {
    let what = format!("{:?} {} {:?}", g.viewer, request.url(), request.headers());
    let r = gated_query(c, v, Some(g), request);
    assert_eq!((status(&r), r.upgrade()), (want, None), "{what}");
    let body = if want == 401 {
        NO_TOKEN_BODY
    } else {
        DENIED_BODY
    };
    assert_eq!(r.body(), body.as_bytes(), "{what}");
    assert_eq!(
        hdr(&r, "content-type"),
        Some("text/plain; charset=utf-8"),
        "{what}"
    );
    assert_eq!(hdr(&r, "cache-control"), Some("no-store"), "{what}");
    assert_eq!(
        hdr(&r, "www-authenticate"),
        (want == 401).then_some("Bearer realm=\"canvid-playback\""),
        "{what}"
    );
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(hdr(&r, name), Some(value), "{what}");
    }
    // The expression header names the response-only entry, and the witness holds it at the
    // exact path (not the 404 wildcard): `verify` checks both.
    assert_eq!(
        hdr(&r, "ic-certificateexpression"),
        Some(crate::certify::CelKind::ResponseOnly.cel_string()),
        "{what}"
    );
    verify(request, &r, c.root_hash()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let update: ic_http_certification::HttpUpdateRequest = request.clone().into();
    assert_eq!(
        update_check(&update, v, Some(g), c),
        UpdateCheck {
            need: UpdateNeed::None,
            body_bytes: 0
        },
        "{what}"
    );
    // Without a data certificate (a replicated query) it is refused all the same, not upgraded.
    let r = http_request(request, v, Some(g), c, None);
    assert_eq!((status(&r), r.upgrade()), (want, None), "{what}");
    // Should the update path be called anyway, it refuses the same way.
    let u = http_request_update(&update, v, Some(g));
    assert_eq!(uncertified(&u), uncertified(&r), "{what}");
}

#[test]
fn preview_is_served_and_the_rest_refused() {
    let (v, c) = gated_video();
    let public = certified(&v);
    let media = ("Sec-Fetch-Dest", "video");
    for path in ["/", "/video", "/video?x=1"] {
        // Answers inside the preview: what a public video answers, certified.
        for headers in [
            vec![("Range", "bytes=0-")],
            vec![("Range", "bytes=0-999")],
            vec![("Range", "bytes=1000-")],
            vec![("Range", "bytes=1000-1999")],
            vec![("Range", "bytes=1000-3499")],
            // Cut at the end of chunk 1: the answer stays inside the preview.
            vec![("Range", "bytes=1500-"), media],
        ] {
            let request = req("GET", path, &headers);
            let want = gated_query(&public, &v, None, &request);
            for viewer in [Viewer::NoToken, Viewer::Denied, Viewer::Allowed] {
                let r = gated_query(&c, &v, Some(&gate(viewer)), &request);
                let what = format!("{viewer:?} {path} {headers:?}");
                assert_eq!(status(&r), 206, "{what}");
                assert_eq!(uncertified(&r), uncertified(&want), "{what}");
                verify(&request, &r, c.root_hash()).unwrap_or_else(|e| panic!("{what}: {e}"));
            }
        }
        // Answers past the preview: refused, unless the viewer may watch. A GET without Range
        // asks for the whole file (the gateway would fetch past the preview and fail midway):
        // refused at once although its first answer is chunk 0.
        for headers in [
            vec![],
            vec![("Range", "bytes=2000-")],
            vec![("Range", "bytes=2000-2999")],
            vec![("Range", "bytes=2000-3499")],
            vec![("Range", "bytes=3000-")],
            vec![("Range", "bytes=3000-3499")],
            vec![("Range", "bytes=2345-"), media],
        ] {
            let request = req("GET", path, &headers);
            assert_refused(&c, &v, &gate(Viewer::NoToken), &request, 401);
            assert_refused(&c, &v, &gate(Viewer::Denied), &request, 403);
            let want = gated_query(&public, &v, None, &request);
            let r = gated_query(&c, &v, Some(&gate(Viewer::Allowed)), &request);
            assert_eq!(status(&r), 206);
            assert_eq!(uncertified(&r), uncertified(&want), "{path} {headers:?}");
            verify(&request, &r, c.root_hash()).unwrap();
        }
    }
}

/// A range no pre-certified entry holds: past the preview it is refused by the query (no
/// update call, `update_need` says so); inside it, or for a viewer who may watch, it is upgraded
/// as for a public video.
#[test]
fn off_grid_ranges() {
    let (v, c) = gated_video();
    for range in [
        "bytes=2500-2600",
        "bytes=2001-",
        "bytes=-10",
        "bytes=3499-3499",
    ] {
        let request = req("GET", "/video", &[("Range", range)]);
        assert_refused(&c, &v, &gate(Viewer::NoToken), &request, 401);
        assert_refused(&c, &v, &gate(Viewer::Denied), &request, 403);
        let allowed = gate(Viewer::Allowed);
        assert_eq!(
            gated_query(&c, &v, Some(&allowed), &request).upgrade(),
            Some(true)
        );
        let update: ic_http_certification::HttpUpdateRequest = request.clone().into();
        assert_eq!(
            update_need(&update, &v, Some(&allowed), &c),
            UpdateNeed::Uncertifiable
        );
        assert_eq!(
            http_request_update(&update, &v, Some(&allowed)),
            http_request_update(&update, &v, None)
        );
    }
    // Answers inside the preview: upgraded and served exactly, token or not. The rule is on
    // the answer: `bytes=1999-2000` and `bytes=1500-` are cut at the end of chunk 1.
    let no_token = gate(Viewer::NoToken);
    for (range, first, last) in [
        ("bytes=10-19", 10, 19),
        ("bytes=1999-2000", 1_999, 1_999),
        ("bytes=1500-", 1_500, 1_999),
    ] {
        let request = req("GET", "/video", &[("Range", range)]);
        assert_eq!(
            gated_query(&c, &v, Some(&no_token), &request).upgrade(),
            Some(true)
        );
        let update: ic_http_certification::HttpUpdateRequest = request.clone().into();
        assert_eq!(
            update_need(&update, &v, Some(&no_token), &c),
            UpdateNeed::Uncertifiable
        );
        let u = http_request_update(&update, &v, Some(&no_token));
        assert_partial(&v, &u, first, last);
    }
}

/// HEAD, 304, 416, metadata, poster and 404 carry no media bytes: unchanged for every viewer.
#[test]
fn answers_without_media_bytes_are_unchanged() {
    let (mut v, mut c) = gated_video();
    v.poster = Some(Poster {
        mime_type: "image/png".into(),
        bytes: vec![1, 2, 3],
        sha256: sha256(&[1, 2, 3]),
    });
    c.certify_extras(&v).unwrap();
    let public = certified(&v);
    let tag = etag(&v.digest());
    let cases: Vec<RequestCase> = vec![
        ("HEAD", "/video", vec![]),
        ("HEAD", "/", vec![("Range", "bytes=3000-")]),
        ("GET", "/video", vec![("If-None-Match", tag.as_str())]),
        ("GET", "/video", vec![("Range", "bytes=99999-")]),
        ("GET", "/video", vec![("If-None-Match", "*")]),
        ("GET", "/metadata.json", vec![]),
        ("GET", "/poster", vec![]),
        ("GET", "/nowhere", vec![]),
        ("GET", "/video/", vec![("Range", "bytes=3000-")]),
        ("POST", "/video", vec![]),
    ];
    for (method, url, headers) in cases {
        let request = req(method, url, &headers);
        let want = gated_query(&public, &v, None, &request);
        let update: ic_http_certification::HttpUpdateRequest = request.clone().into();
        for viewer in [Viewer::NoToken, Viewer::Denied, Viewer::Allowed] {
            let g = gate(viewer);
            let what = format!("{viewer:?} {method} {url} {headers:?}");
            let r = gated_query(&c, &v, Some(&g), &request);
            assert_eq!(uncertified(&r), uncertified(&want), "{what}");
            assert_eq!(r.upgrade(), want.upgrade(), "{what}");
            if hdr(&want, "ic-certificate").is_some() {
                verify(&request, &r, c.root_hash()).unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            assert_eq!(
                update_check(&update, &v, Some(&g), &c),
                update_check(&update, &v, None, &public),
                "{what}"
            );
            assert_eq!(
                http_request_update(&update, &v, Some(&g)),
                http_request_update(&update, &v, None),
                "{what}"
            );
        }
    }
    // The 503 while uploading carries no media either.
    let mut up = MemVideo::new(3_500, C);
    up.status = VideoStatus::Uploading;
    let mut c = certified(&up);
    c.certify_gate(&up, true, &[]).unwrap();
    let request = req("GET", "/", &[("Range", "bytes=3000-")]);
    let r = gated_query(&c, &up, Some(&gate(Viewer::NoToken)), &request);
    assert_eq!(status(&r), 503);
    verify(&request, &r, c.root_hash()).unwrap();
}

/// The whole-file 200 of a small video carries every byte: served only when the preview covers
/// the file. A preview of 0 refuses every media byte.
#[test]
fn small_video_and_no_preview() {
    let v = MemVideo::new(700, C);
    let mut c = certified(&v);
    c.certify_gate(&v, true, &[]).unwrap();
    for (preview_end, served) in [(0, false), (699, false), (700, true), (1_000, true)] {
        let g = Gate {
            preview_end,
            viewer: Viewer::NoToken,
        };
        // The whole file as a 200 (plain GET) or as a 206 (`bytes=0-`).
        for (headers, ok) in [(vec![], 200), (vec![("Range", "bytes=0-")], 206)] {
            let request = req("GET", "/", &headers);
            if served {
                let r = gated_query(&c, &v, Some(&g), &request);
                assert_eq!(status(&r), ok, "{preview_end}");
                assert_eq!(r.body(), v.bytes.as_slice());
                verify(&request, &r, c.root_hash()).unwrap();
            } else {
                assert_refused(&c, &v, &g, &request, 401);
            }
        }
    }
    let big = MemVideo::new(3_500, C);
    let mut c = certified(&big);
    c.certify_gate(&big, true, &[]).unwrap();
    let g = Gate {
        preview_end: 0,
        viewer: Viewer::Denied,
    };
    for headers in [
        vec![],
        vec![("Range", "bytes=0-")],
        vec![("Range", "bytes=0-0")],
    ] {
        assert_refused(&c, &big, &g, &req("GET", "/video", &headers), 403);
    }
}

/// `?token=…` is not part of any certified request: an allowed viewer's answers are the bare
/// path's, certificate header included, for every chunk.
#[test]
fn token_urls_use_the_bare_paths_entries() {
    let (v, c) = gated_video();
    let allowed = gate(Viewer::Allowed);
    let media = ("Sec-Fetch-Dest", "video");
    for (bare, with_token) in [
        ("/", "/?token=Abc-123_x"),
        ("/video", "/video?token=Abc-123_x"),
        ("/video", "/video?t=3&token=Abc-123_x"),
    ] {
        assert_eq!(playback_token(with_token), Some("Abc-123_x"));
        for headers in [
            vec![],
            vec![("Range", "bytes=0-")],
            vec![("Range", "bytes=1000-")],
            vec![("Range", "bytes=2000-")],
            vec![("Range", "bytes=2000-2999")],
            vec![("Range", "bytes=2000-3499")],
            vec![("Range", "bytes=3000-")],
            vec![("Range", "bytes=3210-"), media],
            vec![],
        ] {
            let plain = req("GET", bare, &headers);
            let tokened = req("GET", with_token, &headers);
            let r = gated_query(&c, &v, Some(&allowed), &tokened);
            assert_eq!(r.upgrade(), None, "{with_token} {headers:?}");
            assert_eq!(r, gated_query(&c, &v, Some(&allowed), &plain));
            verify(&tokened, &r, c.root_hash())
                .unwrap_or_else(|e| panic!("{with_token} {headers:?}: {e}"));
        }
        let head = req("HEAD", with_token, &[]);
        verify(
            &head,
            &gated_query(&c, &v, Some(&allowed), &head),
            c.root_hash(),
        )
        .unwrap();
    }
    // A token URL is refused like the bare path when the token does not let its viewer watch.
    let request = req("GET", "/?token=expired", &[("Range", "bytes=2000-")]);
    assert_refused(&c, &v, &gate(Viewer::Denied), &request, 403);
}

/// The 401/403 entries are in the tree exactly while the certifier is told the video is gated,
/// whatever the order of the other builds.
#[test]
fn gate_entries_follow_certify_gate() {
    let v = MemVideo::new(3_500, C);
    let ungated = certified(&v);
    let (_, gated) = gated_video();
    assert_ne!(gated.root_hash(), ungated.root_hash());
    assert_eq!(gated.entry_count(), ungated.entry_count() + 4);

    // Idempotent; removing them gives the ungated tree back.
    let mut c = certified(&v);
    c.certify_gate(&v, true, &[]).unwrap();
    assert_eq!(c.certify_gate(&v, true, &[]).unwrap(), gated.root_hash());
    assert_eq!(c.certify_gate(&v, false, &[]).unwrap(), ungated.root_hash());
    assert_eq!(c.entry_count(), ungated.entry_count());
    assert_eq!(c.certify_gate(&v, false, &[]).unwrap(), ungated.root_hash());

    // Told before the build: the full build, and the budgeted one, keep them. (Same entries,
    // not the same root: the root hash follows the order of insertion, see `tree_paths`.)
    let mut c = Certifier::new();
    c.certify_gate(&v, true, &[]).unwrap();
    c.certify_all(&v).unwrap();
    assert_eq!(c.tree_paths(), gated.tree_paths());
    let mut c = Certifier::new();
    c.certify_gate(&v, true, &[]).unwrap();
    c.start(&v).unwrap();
    while c.resume(&v, &mut || false).unwrap() > 0 {}
    assert_eq!(c.tree_paths(), gated.tree_paths());
    assert_eq!(c.entry_count(), gated.entry_count());
    // A rebuild after `certify_gate(false)` does not bring back a stale copy.
    c.certify_gate(&v, false, &[]).unwrap();
    c.certify_all(&v).unwrap();
    assert_eq!(c.tree_paths(), ungated.tree_paths());
    // Nor after `certify_gate(true)` lose them.
    c.certify_gate(&v, true, &[]).unwrap();
    c.certify_all(&v).unwrap();
    assert_eq!(c.tree_paths(), gated.tree_paths());
    assert_ne!(gated.tree_paths(), ungated.tree_paths());

    // A metadata edit recertifies the extras and leaves the gate entries.
    let mut v = v;
    v.metadata = r#"{"title":"paid"}"#.into();
    c.certify_extras(&v).unwrap();
    let request = req("GET", "/video", &[("Range", "bytes=3000-")]);
    assert_refused(&c, &v, &gate(Viewer::NoToken), &request, 401);
    let meta = req("GET", "/metadata.json", &[]);
    verify(&meta, &query(&c, &v, &meta), c.root_hash()).unwrap();

    // Not (or no longer) in the tree: the refusal is still answered by the query, uncertified
    // (never an update call), so a canister that has not told the certifier fails closed.
    c.certify_gate(&v, false, &[]).unwrap();
    for (viewer, want) in [(Viewer::NoToken, 401), (Viewer::Denied, 403)] {
        let g = gate(viewer);
        let r = gated_query(&c, &v, Some(&g), &request);
        assert_eq!((status(&r), r.upgrade()), (want, None));
        assert_eq!(hdr(&r, "ic-certificate"), None);
        assert!(verify(&request, &r, c.root_hash()).is_err());
        let update: ic_http_certification::HttpUpdateRequest = request.clone().into();
        assert_eq!(update_need(&update, &v, Some(&g), &c), UpdateNeed::None);
    }
    // The ungated video's answers did not change with the gate coming and going.
    let r = query(&c, &v, &request);
    assert_eq!(status(&r), 206);
    verify(&request, &r, c.root_hash()).unwrap();
}

/// A refusal certified for `/video` does not verify for `/` (entries are per exact path), and
/// the 401 cannot pass for the 403 (the status is certified).
#[test]
fn refusals_are_tied_to_path_and_status() {
    let (v, c) = gated_video();
    let at_video = req("GET", "/video", &[("Range", "bytes=2000-")]);
    let at_root = req("GET", "/", &[("Range", "bytes=2000-")]);
    let r = gated_query(&c, &v, Some(&gate(Viewer::NoToken)), &at_video);
    verify(&at_video, &r, c.root_hash()).unwrap();
    assert!(verify(&at_root, &r, c.root_hash()).is_err());
    let forged = HttpResponse::builder()
        .with_status_code(crate::StatusCode::FORBIDDEN)
        .with_headers(r.headers().to_vec())
        .with_body(r.body().to_vec())
        .build();
    assert!(verify(&at_video, &forged, c.root_hash()).is_err());
}

/// With a gate too, `update_need` agrees with the query on every request shape, a refusal is
/// never upgraded, and every certified answer verifies.
#[test]
fn update_need_agrees_with_the_gated_query() {
    let (v, complete) = gated_video();
    let mut partial = Certifier::new();
    partial.certify_gate(&v, true, &[]).unwrap();
    partial.start(&v).unwrap();
    partial.resume(&v, &mut || false).unwrap(); // chunk 1 only
    let mut rng = Rng(23);
    let methods = ["GET", "HEAD", "POST"];
    let paths = ["/", "/video", "/video?token=abc", "/metadata.json", "/x"];
    let viewers = [Viewer::Allowed, Viewer::NoToken, Viewer::Denied];
    for _ in 0..2_000 {
        let method = methods[rng.below(methods.len() as u64) as usize];
        let path = paths[rng.below(paths.len() as u64) as usize];
        let g = Gate {
            preview_end: [0, C, 2 * C, 3_500][rng.below(4) as usize],
            viewer: viewers[rng.below(3) as usize],
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        if rng.below(3) > 0 {
            let a = rng.below(4_000);
            let value = match rng.below(4) {
                0 => format!("bytes={a}-"),
                1 => format!("bytes={a}-{}", a + rng.below(3_000)),
                2 => format!("bytes=-{}", rng.below(5_000)),
                _ => format!("bytes={}-", a / C * C),
            };
            headers.push(("range".into(), value));
        }
        if rng.below(4) == 0 {
            headers.push(("sec-fetch-dest".into(), "video".into()));
        }
        let request = HttpRequest::builder()
            .with_method(ic_http_certification::Method::from_bytes(method.as_bytes()).unwrap())
            .with_url(path)
            .with_headers(headers.clone())
            .build();
        let what = format!("{g:?} {method} {path} {headers:?}");
        for c in [&complete, &partial] {
            let r = gated_query(c, &v, Some(&g), &request);
            let upgraded = r.upgrade() == Some(true);
            let update: ic_http_certification::HttpUpdateRequest = request.clone().into();
            let check = update_check(&update, &v, Some(&g), c);
            assert_eq!(upgraded, check.need != UpdateNeed::None, "{what}");
            let answer = http_request_update(&update, &v, Some(&g));
            if upgraded {
                assert_eq!(check.body_bytes, answer.body().len() as u64, "{what}");
                assert!(![401, 403].contains(&status(&answer)), "{what}");
            } else {
                assert_eq!(status(&r), status(&answer), "{what}");
                if hdr(&r, "ic-certificate").is_some() {
                    verify(&request, &r, c.root_hash()).unwrap_or_else(|e| panic!("{what}: {e}"));
                }
            }
        }
    }
}
