//! Certification of the answers: what is in the tree verifies (with a verifier written against
//! the HTTP gateway protocol spec), what is not is upgraded or served as it is.

use super::*;

/// A verifier written against the HTTP gateway protocol spec (what `ic-response-verification`
/// does after checking the certificate's signature, which needs the IC root key): the witness
/// must hash to the certified root, the expression path must be the most specific one for the
/// request path, and (expr hash, request hash, response hash) must be a leaf under it.
fn verify(
    request: &HttpRequest,
    response: &HttpResponse,
    certified_root: [u8; 32],
) -> Result<(), String> {
    let cert_header = hdr(response, "ic-certificate").ok_or("no IC-Certificate header")?;
    let mut fields = std::collections::HashMap::new();
    for part in cert_header.split(", ") {
        let (k, v) = part.split_once('=').ok_or("malformed header")?;
        fields.insert(k, v.trim_matches(':'));
    }
    if fields.get("version") != Some(&"2") {
        return Err("not version 2".into());
    }
    if B64.decode(fields["certificate"]).unwrap() != FAKE_CERT {
        return Err("certificate not passed through".into());
    }
    let witness: HashTree =
        serde_cbor::from_slice(&B64.decode(fields["tree"]).unwrap()).map_err(|e| e.to_string())?;
    let expr_path: Vec<String> = serde_cbor::from_slice(&B64.decode(fields["expr_path"]).unwrap())
        .map_err(|e| e.to_string())?;
    if witness.digest() != certified_root {
        return Err("witness does not hash to the certified root".into());
    }
    // Expression path: the exact path if the tree has it, else a wildcard the tree proves is
    // the most specific (canvid only uses the root wildcard).
    let path = request.get_path().unwrap();
    let mut exact: Vec<String> = vec!["http_expr".into()];
    exact.extend(path.split('/').filter(|s| !s.is_empty()).map(String::from));
    if path.ends_with('/') {
        exact.push(String::new());
    }
    exact.push("<$>".into());
    if expr_path != exact {
        let root_wildcard = vec!["http_expr".to_string(), "".into(), "<*>".into()];
        if expr_path != root_wildcard {
            return Err(format!("unexpected expression path {expr_path:?}"));
        }
        if !matches!(witness.lookup_subtree(&exact), SubtreeLookupResult::Absent) {
            return Err("wildcard used although the exact path may exist".into());
        }
    }
    let cel = hdr(response, "ic-certificateexpression").ok_or("no IC-CertificateExpression")?;
    let full = |headers: &'static [&'static str]| -> DefaultFullCelExpression<'static> {
        DefaultCelBuilder::full_certification()
            .with_request_headers(headers)
            .with_response_certification(DefaultResponseCertification::response_header_exclusions(
                vec![],
            ))
            .build()
    };
    let ro = DefaultCelBuilder::response_only_certification()
        .with_response_certification(DefaultResponseCertification::response_header_exclusions(
            vec![],
        ))
        .build();
    let (request_label, response_cert) = if cel == ro.to_string() {
        (Vec::new(), ro.response)
    } else {
        let def = [
            full(&[]),
            full(&["range"]),
            full(&["if-none-match"]),
            full(&["sec-fetch-dest"]),
        ]
        .into_iter()
        .find(|d| d.to_string() == cel)
        .ok_or("unknown CEL expression")?;
        (
            request_hash(request, &def.request).unwrap().to_vec(),
            def.response,
        )
    };
    let filtered = filter_response_headers(response, &response_cert);
    let headers_hash = response_headers_hash(&response.status_code().as_u16().into(), &filtered);
    let response_hash = sha256(&[headers_hash, sha256(response.body())].concat());
    let mut leaf: Vec<Vec<u8>> = expr_path.iter().map(|s| s.as_bytes().to_vec()).collect();
    leaf.extend([
        sha256(cel.as_bytes()).to_vec(),
        request_label,
        response_hash.to_vec(),
    ]);
    match witness.lookup_path(&leaf) {
        LookupResult::Found(_) => Ok(()),
        other => Err(format!("response not in the tree: {other:?}")),
    }
}

fn certified(v: &MemVideo) -> Certifier {
    let mut c = Certifier::new();
    c.certify_all(v).unwrap();
    c
}

fn query(c: &Certifier, v: &MemVideo, request: &HttpRequest) -> HttpResponse<'static> {
    http_request(request, v, None, c, Some(FAKE_CERT))
}

/// The shapes the IC gateway and browsers send are certified and verify; their bodies equal
/// the uncertified answers.
#[test]
fn certified_shapes_verify() {
    let mut v = MemVideo::new(3_500, C);
    v.poster = Some(Poster {
        mime_type: "image/jpeg".into(),
        bytes: vec![9; 50],
        sha256: sha256(&[9; 50]),
    });
    let c = certified(&v);
    let tag = etag(&v.digest());
    let mut cases: Vec<OwnedCase> = vec![];
    for path in ["/", "/video", "/video?t=3"] {
        cases.push(("GET", path.into(), vec![], 206));
        cases.push(("GET", path.into(), vec![("Range", "bytes=0-".into())], 206));
        cases.push((
            "GET",
            path.into(),
            vec![("Range", "bytes=0-999".into())],
            206,
        ));
        cases.push((
            "GET",
            path.into(),
            vec![("Range", "bytes=0-5000".into())],
            206,
        ));
        cases.push((
            "GET",
            path.into(),
            vec![("Range", "bytes=1000-".into())],
            206,
        ));
        // Chromium's follow-up after a short answer: from the chunk start to the last byte.
        for range in [
            "bytes=1000-1999",
            "bytes=1000-3499",
            "bytes=2000-2999",
            "bytes=2000-3499",
        ] {
            cases.push(("GET", path.into(), vec![("Range", range.into())], 206));
        }
        cases.push((
            "GET",
            path.into(),
            vec![("Range", "bytes=3000-".into())],
            206,
        ));
        cases.push((
            "GET",
            path.into(),
            vec![("Range", "bytes=3000-3499".into())],
            206,
        ));
        cases.push(("HEAD", path.into(), vec![], 200));
        cases.push((
            "GET",
            path.into(),
            vec![("If-None-Match", tag.clone())],
            304,
        ));
    }
    cases.push(("GET", "/metadata.json".into(), vec![], 200));
    cases.push(("GET", "/poster".into(), vec![], 200));
    cases.push(("GET", "/nothing/here".into(), vec![], 404));
    cases.push(("GET", "/video/".into(), vec![], 404));
    for (method, url, headers, expect) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let request = req(method, &url, &headers);
        let r = query(&c, &v, &request);
        assert_eq!(status(&r), expect, "{method} {url} {headers:?}");
        assert_eq!(r.upgrade(), None);
        verify(&request, &r, c.root_hash())
            .unwrap_or_else(|e| panic!("{method} {url} {headers:?}: {e}"));
        let plain = serve_uncertified(method, &url, request.headers(), &v, None);
        assert_eq!(r.body(), plain.body());
    }
}

#[test]
fn small_video_and_uploading_video_verify() {
    let small = MemVideo::new(700, C);
    let c = certified(&small);
    for headers in [
        vec![],
        vec![("Range", "bytes=0-")],
        vec![("Range", "bytes=0-699")],
    ] {
        let request = req("GET", "/video", &headers);
        let r = query(&c, &small, &request);
        verify(&request, &r, c.root_hash()).unwrap();
        assert_eq!(r.body(), small.bytes.as_slice());
    }
    let mut up = MemVideo::new(3_500, C);
    up.status = VideoStatus::Uploading;
    let c = certified(&up);
    for (method, headers) in [
        ("GET", vec![]),
        ("GET", vec![("Range", "bytes=1000-")]),
        ("HEAD", vec![]),
    ] {
        let request = req(method, "/", &headers);
        let r = query(&c, &up, &request);
        assert_eq!(status(&r), 503);
        verify(&request, &r, c.root_hash()).unwrap();
    }
}

/// A `<video>` element's off-grid request to the end (a seek) gets the whole grid chunk that
/// holds the byte, from a certified query; every other client still gets exactly its range.
#[test]
fn media_element_seeks_get_the_whole_chunk_certified() {
    let v = MemVideo::new(3_500, C);
    let c = certified(&v);
    let media = ("Sec-Fetch-Dest", "video");
    // (range asked, chunk answered)
    for (range, first, last) in [
        ("bytes=1234-", 1_000, 1_999),
        ("bytes=1001-3499", 1_000, 1_999),
        ("bytes=2999-", 2_000, 2_999),
        ("bytes=3200-", 3_000, 3_499),
        ("bytes=3499-3499", 3_000, 3_499),
        ("bytes=10-", 0, 999),
        ("bytes=999-3499", 0, 999),
        // Filling a gap: from the grid to a byte past the chunk's end.
        ("bytes=1000-2500", 1_000, 1_999),
        ("bytes=1500-2000", 1_000, 1_999),
    ] {
        for path in ["/", "/video"] {
            let request = req("GET", path, &[("Range", range), media]);
            let r = query(&c, &v, &request);
            assert_eq!(r.upgrade(), None, "{path} {range}");
            assert_partial(&v, &r, first, last);
            verify(&request, &r, c.root_hash()).unwrap_or_else(|e| panic!("{range}: {e}"));
            // The same request from anything but a media element is answered exactly.
            let plain = req("GET", path, &[("Range", range)]);
            let exact = query(&c, &v, &plain);
            assert_eq!(
                exact.upgrade(),
                Some(true),
                "{path} {range} without Sec-Fetch-Dest"
            );
            let update: ic_http_certification::HttpUpdateRequest = plain.clone().into();
            let start: u64 = range[6..range.find('-').unwrap()].parse().unwrap();
            let exact_last = last.min(
                range[range.find('-').unwrap() + 1..]
                    .parse()
                    .unwrap_or(last),
            );
            assert_partial(
                &v,
                &http_request_update(&update, &v, None),
                start,
                exact_last,
            );
            // The media answer does not verify for that request (Sec-Fetch-Dest is certified);
            // chunk 0's answer is certified for every request, like the plain GET's.
            assert_eq!(
                verify(&plain, &r, c.root_hash()).is_err(),
                first > 0,
                "{range}"
            );
        }
    }
    // Not realigned: ranges ending inside the chunk, HEAD, Safari's media stack, other
    // destinations.
    for headers in [
        vec![("Range", "bytes=1234-1300"), media],
        vec![("Range", "bytes=1234-1998"), media],
        vec![
            ("Range", "bytes=1234-"),
            media,
            ("X-Playback-Session-Id", "A1"),
        ],
        vec![("Range", "bytes=1234-"), ("Sec-Fetch-Dest", "audio")],
        vec![("Range", "bytes=1234-"), ("Sec-Fetch-Dest", "document")],
    ] {
        let request = req("GET", "/video", &headers);
        let r = query(&c, &v, &request);
        assert_eq!(r.upgrade(), Some(true), "{headers:?}");
        let update: ic_http_certification::HttpUpdateRequest = request.clone().into();
        let u = http_request_update(&update, &v, None);
        assert_eq!(
            hdr(&u, "content-range").map(|r| &r[..11]),
            Some("bytes 1234-")
        );
    }
    let head_request = req("HEAD", "/video", &[("Range", "bytes=1234-"), media]);
    let head = query(&c, &v, &head_request);
    assert_eq!((status(&head), hdr(&head, "content-range")), (200, None));
    verify(&head_request, &head, c.root_hash()).unwrap();
}

/// Only ranges no pre-certified entry can hold are upgraded, and the update answers them
/// exactly; `update_need` tells `inspect_message` exactly which requests those are.
#[test]
fn only_uncertifiable_ranges_upgrade() {
    let v = MemVideo::new(3_500, C);
    let c = certified(&v);
    let cases: Vec<Case> = vec![
        ("GET", "/video", vec![("Range", "bytes=1234-")]),
        ("GET", "/video", vec![("Range", "bytes=1000-1099")]),
        ("GET", "/video", vec![("Range", "bytes=-10")]),
        ("GET", "/video", vec![("Range", "bytes=1000-2999")]),
        ("GET", "/", vec![("Range", "bytes=1-2")]),
        ("GET", "/video", vec![("Range", "bytes=99999-")]),
        ("GET", "/video", vec![("Range", "bytes=-0")]),
    ];
    for (method, url, headers) in cases {
        let request = req(method, url, &headers);
        let r = query(&c, &v, &request);
        assert_eq!(r.upgrade(), Some(true), "{method} {url} {headers:?}");
        assert!(r.body().is_empty());
        let update: ic_http_certification::HttpUpdateRequest = request.clone().into();
        assert_eq!(
            update_need(&update, &v, None, &c),
            UpdateNeed::Uncertifiable
        );
        let u = http_request_update(&update, &v, None);
        assert_eq!(u.upgrade(), None);
        assert_eq!(
            u,
            serve_uncertified(method, url, request.headers(), &v, None)
        );
        assert!([206, 416].contains(&status(&u)));
    }
    // An empty certifier (e.g. before init built it) upgrades every certifiable answer.
    let empty = Certifier::new();
    let request = req("GET", "/video", &[]);
    assert_eq!(query(&empty, &v, &request).upgrade(), Some(true));
    assert_eq!(
        update_need(&request.clone().into(), &v, None, &empty),
        UpdateNeed::NotCertifiedYet
    );
}

/// Error answers are never upgraded: the update path would give the same error at the
/// canister's cost (security review M2). The common ones are certified, the rest served as
/// they are.
#[test]
fn error_answers_are_never_upgraded() {
    let mut v = MemVideo::new(3_500, C);
    v.poster = Some(Poster {
        mime_type: "image/png".into(),
        bytes: vec![1, 2, 3],
        sha256: sha256(&[1, 2, 3]),
    });
    let c = certified(&v);
    let mut cases: Vec<ErrorCase> = vec![
        ("GET", "/video", vec![("If-None-Match", "*")], 304, false),
        ("HEAD", "/video", vec![("If-None-Match", "*")], 304, false),
        ("get", "/video", vec![], 405, false),
        ("TRACE", "/nowhere", vec![], 405, false),
        ("GET", "http://[", vec![], 400, false),
    ];
    for path in ["/", "/video", "/metadata.json", "/poster", "/nowhere"] {
        for method in CERTIFIED_405_METHODS {
            cases.push((method, path, vec![], 405, true));
        }
        // The CORS preflight (formerly a certified 405) is certified at every path too.
        cases.push(("OPTIONS", path, vec![], 204, true));
    }
    for (method, url, headers, want, certified) in cases {
        let request = req(method, url, &headers);
        let r = query(&c, &v, &request);
        let what = format!("{method} {url} {headers:?}");
        assert_eq!((status(&r), r.upgrade()), (want, None), "{what}");
        assert_eq!(
            verify(&request, &r, c.root_hash()).is_ok(),
            certified,
            "{what}"
        );
        assert_eq!(
            update_need(&request.clone().into(), &v, None, &c),
            UpdateNeed::None,
            "{what}"
        );
    }
}

/// Every HEAD answer is certified: HEAD has no ranges, and its variants are few.
#[test]
fn head_answers_are_certified() {
    let mut v = MemVideo::new(3_500, C);
    v.poster = Some(Poster {
        mime_type: "image/png".into(),
        bytes: vec![1, 2, 3],
        sha256: sha256(&[1, 2, 3]),
    });
    let c = certified(&v);
    let tag = etag(&v.digest());
    let cases: Vec<HeadCase> = vec![
        ("/video", vec![], 200),
        ("/", vec![("Range", "bytes=1234-")], 200),
        ("/video", vec![("Range", "bytes=99999-")], 200),
        ("/video", vec![("If-None-Match", tag.as_str())], 304),
        ("/metadata.json", vec![], 200),
        ("/poster", vec![], 200),
        ("/nowhere", vec![], 404),
    ];
    for (url, headers, want) in cases {
        let request = req("HEAD", url, &headers);
        let r = query(&c, &v, &request);
        assert_eq!(status(&r), want, "{url} {headers:?}");
        assert!(r.body().is_empty());
        verify(&request, &r, c.root_hash()).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    // The 503 while uploading: small_video_and_uploading_video_verify.
}

/// `update_need` agrees with the query on every request shape: the update path accepts
/// exactly what the query upgrades.
#[test]
fn update_need_agrees_with_the_query() {
    let v = MemVideo::new(3_500, C);
    let complete = certified(&v);
    let mut partial = Certifier::new();
    partial.start(&v).unwrap();
    partial.resume(&v, &mut || false).unwrap(); // chunk 1 only
    let mut rng = Rng(11);
    let methods = ["GET", "HEAD", "POST", "get", "PURGE"];
    let paths = ["/", "/video", "/metadata.json", "/poster", "/x", "/video/"];
    for _ in 0..2_000 {
        let method = methods[rng.below(methods.len() as u64) as usize];
        let path = paths[rng.below(paths.len() as u64) as usize];
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
        for c in [&complete, &partial] {
            let upgraded = query(c, &v, &request).upgrade() == Some(true);
            let update: ic_http_certification::HttpUpdateRequest = request.clone().into();
            let check = update_check(&update, &v, None, c);
            assert_eq!(
                upgraded,
                check.need != UpdateNeed::None,
                "{method} {path} {headers:?}"
            );
            // The cost estimate's body size is the update answer's.
            if upgraded {
                let answer = http_request_update(&update, &v, None);
                assert_eq!(
                    check.body_bytes,
                    answer.body().len() as u64,
                    "{method} {path}"
                );
            }
        }
    }
}

/// The verifier is not a rubber stamp: tampering with body, status, headers or the request
/// shape is detected.
#[test]
fn tampering_is_detected() {
    let v = MemVideo::new(3_500, C);
    let c = certified(&v);
    let request = req("GET", "/video", &[("Range", "bytes=1000-")]);
    let good = query(&c, &v, &request);
    verify(&request, &good, c.root_hash()).unwrap();

    let mut body = good.body().to_vec();
    body[10] ^= 1;
    let bad = HttpResponse::builder()
        .with_status_code(good.status_code())
        .with_headers(good.headers().to_vec())
        .with_body(body)
        .build();
    assert!(verify(&request, &bad, c.root_hash()).is_err());

    let bad = HttpResponse::builder()
        .with_status_code(crate::StatusCode::OK)
        .with_headers(good.headers().to_vec())
        .with_body(good.body().to_vec())
        .build();
    assert!(verify(&request, &bad, c.root_hash()).is_err());

    let mut headers = good.headers().to_vec();
    headers
        .iter_mut()
        .find(|(n, _)| n == "content-type")
        .unwrap()
        .1 = "text/html".into();
    let bad = HttpResponse::builder()
        .with_status_code(good.status_code())
        .with_headers(headers)
        .with_body(good.body().to_vec())
        .build();
    assert!(verify(&request, &bad, c.root_hash()).is_err());

    // The chunk-1 answer replayed for a request of chunk 2 fails (Range is certified).
    let other = req("GET", "/video", &[("Range", "bytes=2000-")]);
    assert!(verify(&other, &good, c.root_hash()).is_err());
    // A different root (another canister state) fails.
    assert!(verify(&request, &good, [0; 32]).is_err());
}

#[test]
fn metadata_edit_recertifies_only_extras() {
    let mut v = MemVideo::new(3_500, C);
    let mut c = certified(&v);
    let count = c.entry_count();
    let request = req("GET", "/metadata.json", &[]);
    let old = query(&c, &v, &request);
    v.metadata = r#"{"title":"new"}"#.into();
    v.poster = Some(Poster {
        mime_type: "image/png".into(),
        bytes: vec![7; 9],
        sha256: sha256(&[7; 9]),
    });
    // Not recertified yet: the new answer is not in the tree, so the query upgrades.
    assert_eq!(query(&c, &v, &request).upgrade(), Some(true));
    let root = c.certify_extras(&v).unwrap();
    assert_eq!(root, c.root_hash());
    // The poster's GET, HEAD and 405s.
    assert_eq!(c.entry_count(), count + 7);
    let new = query(&c, &v, &request);
    assert_eq!(new.body(), br#"{"title":"new"}"#);
    verify(&request, &new, root).unwrap();
    assert!(verify(&request, &old, root).is_err());
    let poster = req("GET", "/poster", &[]);
    verify(&poster, &query(&c, &v, &poster), root).unwrap();
    // Video entries survived.
    let chunk = req("GET", "/video", &[("Range", "bytes=2000-")]);
    verify(&chunk, &query(&c, &v, &chunk), root).unwrap();
}

#[test]
fn tree_size_and_unsupported_chunk_size() {
    let v = MemVideo::new(10 * C as usize + 1, C); // 11 chunks
    let c = certified(&v);
    // Per video path: GET, bytes=0-, HEAD, the 304s of GET and HEAD, 5 405s; 4 range forms
    // for chunks 1..=9 and 3 for the last chunk (its to-the-end form is its exact range); plus
    // GET, HEAD and 5 405s for metadata and 404.
    assert_eq!(c.entry_count(), 2 * (10 + 4 * 9 + 3) + 2 * 7);
    let big = MemVideo::new(10, crate::MAX_BODY + 1);
    let mut c = Certifier::new();
    assert_eq!(
        c.certify_all(&big),
        Err(crate::CertifyError::ChunkSizeUnsupported {
            chunk_size: crate::MAX_BODY + 1
        })
    );
    let request = req("GET", "/video", &[]);
    assert_eq!(query(&c, &big, &request).upgrade(), Some(true));
    let meta = req("GET", "/metadata.json", &[]);
    verify(&meta, &query(&c, &big, &meta), c.root_hash()).unwrap();
}

/// Every answer carries `nosniff` and `Content-Security-Policy: sandbox` (security review L1),
/// as part of the certified response: an SVG poster, or an HTML type stored by an older module
/// (served as it is), cannot run script on the canister's origin.
#[test]
fn every_answer_carries_the_security_headers() {
    let mut v = MemVideo::new(3_500, C);
    v.mime_type = "text/html".into();
    v.poster = Some(Poster {
        mime_type: "image/svg+xml".into(),
        bytes: b"<svg/>".to_vec(),
        sha256: sha256(b"<svg/>"),
    });
    let c = certified(&v);
    let tag = etag(&v.digest());
    let cases: Vec<RequestCase> = vec![
        ("GET", "/", vec![]),
        ("GET", "/video", vec![("Range", "bytes=1000-")]),
        ("GET", "/video", vec![("Range", "bytes=10-19")]),
        ("GET", "/video", vec![("Range", "bytes=9999-")]),
        ("GET", "/video", vec![("If-None-Match", tag.as_str())]),
        ("HEAD", "/video", vec![]),
        ("GET", "/metadata.json", vec![]),
        ("GET", "/poster", vec![]),
        ("GET", "/nowhere", vec![]),
        ("POST", "/video", vec![]),
        ("TRACE", "/video", vec![]),
        ("GET", "http://[", vec![]),
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
            assert_eq!(
                hdr(response, "x-content-type-options"),
                Some("nosniff"),
                "{what}"
            );
            assert_eq!(
                hdr(response, "content-security-policy"),
                Some("sandbox"),
                "{what}"
            );
        }
        if hdr(&r, "ic-certificate").is_some() {
            verify(&request, &r, c.root_hash()).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
    assert_eq!(hdr(&get(&v, "/", &[]), "content-type"), Some("text/html"));
    // A failed read (500) carries them too.
    let r = internal_error("short read");
    assert_eq!(status(&r), 500);
    assert_eq!(hdr(&r, "x-content-type-options"), Some("nosniff"));
    assert_eq!(hdr(&r, "content-security-policy"), Some("sandbox"));
}

/// The 404/405 entries off the video paths follow the poster: its path has its own entries
/// while it exists and falls back on the wildcard after it is removed.
#[test]
fn fixed_extras_follow_the_poster() {
    let mut v = MemVideo::new(3_500, C);
    let mut c = certified(&v);
    let count = c.entry_count();
    let post = req("POST", "/poster", &[]);
    let head = req("HEAD", "/poster", &[]);
    let check = |c: &Certifier, v: &MemVideo, want_head: u16| {
        let r = query(c, v, &post);
        assert_eq!(status(&r), 405);
        verify(&post, &r, c.root_hash()).unwrap();
        let r = query(c, v, &head);
        assert_eq!(status(&r), want_head);
        verify(&head, &r, c.root_hash()).unwrap();
    };
    check(&c, &v, 404);
    v.poster = Some(Poster {
        mime_type: "image/png".into(),
        bytes: vec![7; 9],
        sha256: sha256(&[7; 9]),
    });
    c.certify_extras(&v).unwrap();
    check(&c, &v, 200);
    // A metadata edit alone leaves the fixed entries as they are.
    v.metadata = r#"{"title":"edited"}"#.into();
    c.certify_extras(&v).unwrap();
    check(&c, &v, 200);
    v.poster = None;
    c.certify_extras(&v).unwrap();
    check(&c, &v, 404);
    assert_eq!(c.entry_count(), count);
}

/// Private and paid videos: the preview is public, the rest needs a playback token.
mod gated;

/// Named files (HLS ladders, subtitles, thumbnails) at their own paths.
mod named;
