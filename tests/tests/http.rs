//! HTTP serving of the video canister (docs/http.md): every route and status through the
//! `http_request` query (and `http_request_update` when the query asks for an upgrade), byte-
//! exact bodies for many seeded random ranges, certification headers on certified answers;
//! then end to end through `canvid-gateway` on a real TCP socket.
//!
//! The candid records come from the interface (`canvid-types`, `canvid_tests::http_types`), not
//! from the implementation, so the test checks the wire format too.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use canvid_devkit::raw_http::Request;
use canvid_tests::clients::{err, ok, rejected, spec_for, Video};
use canvid_tests::deploy::{standalone_video, T};
use canvid_tests::http_types::{HttpRequest, HttpResponse, HttpUpdateRequest};
use canvid_tests::http_verify::verify_v2;
use canvid_tests::{
    backend_tests, principal, Backend, BackendExt, GenFile, Principal, ReplicaBackend, Rng,
};
use canvid_types::video::PosterArgs;
use canvid_types::Error;
use serde_bytes::ByteBuf;

const SIZE: u64 = 5_000_123;
const CHUNK: u64 = 1_000_000;

/// How an answer was obtained.
#[derive(Debug)]
struct Fetched {
    resp: HttpResponse,
    /// The query answered `upgrade = true` and this came from `http_request_update`.
    upgraded: bool,
    /// What a verifying gateway knows besides the answer.
    request: HttpRequest,
    canister: Principal,
    root_key: Vec<u8>,
    time: SystemTime,
}

impl Fetched {
    /// A query answer with the certification headers of response certification v2 that passes
    /// `ic-response-verification` (what the IC's HTTP gateways run) against the backend's root
    /// key: certificate signature and freshness, witness, expression path, request and response
    /// hashes, and the verified status and body equal to what was served.
    fn assert_certified(&self, what: &str) {
        assert!(
            !self.upgraded,
            "{what}: expected a certified query answer, got an upgrade"
        );
        let cert = self
            .resp
            .header("ic-certificate")
            .unwrap_or_else(|| panic!("{what}: no IC-Certificate header"));
        assert!(
            cert.contains("certificate=:") && cert.contains("tree=:"),
            "{what}: IC-Certificate {cert}"
        );
        assert!(cert.contains("version=2"), "{what}: IC-Certificate {cert}");
        assert!(
            self.resp.header("ic-certificateexpression").is_some(),
            "{what}: no IC-CertificateExpression"
        );
        let verified = verify_v2(
            &self.request,
            &self.resp,
            self.canister,
            &self.root_key,
            self.time,
        )
        .unwrap_or_else(|e| panic!("{what}: the response verifier refuses it: {e}"));
        assert_eq!(verified.status_code, Some(self.resp.status_code), "{what}");
        assert!(
            verified.body == self.resp.body.as_slice(),
            "{what}: verified body differs"
        );
    }
}

/// What an HTTP gateway does: the query first (anonymously), the update if asked to upgrade.
fn fetch(
    b: &dyn Backend,
    canister: Principal,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Fetched {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let req = HttpRequest {
        method: method.into(),
        url: url.into(),
        headers: headers.clone(),
        body: ByteBuf::new(),
        certificate_version: Some(2),
    };
    let resp: HttpResponse = b
        .query1(canister, Principal::anonymous(), "http_request", &req)
        .unwrap_or_else(|e| panic!("http_request {method} {url}: {e}"));
    let fetched = |resp, upgraded| Fetched {
        resp,
        upgraded,
        request: req.clone(),
        canister,
        root_key: b.root_key(),
        time: b.time(),
    };
    if resp.upgrade != Some(true) {
        return fetched(resp, false);
    }
    assert!(
        resp.header("ic-certificate").is_none(),
        "an upgrade answer carries no certificate"
    );
    let upd = HttpUpdateRequest {
        method: method.into(),
        url: url.into(),
        headers,
        body: ByteBuf::new(),
    };
    // Anonymous ingress: inspect_message must let it through, within the canister's budget of
    // update calls per minute (this test asks for many uncertifiable ranges): over it, wait for
    // the next minute as a client would.
    let update = || {
        b.update1::<_, HttpResponse>(
            canister,
            Principal::anonymous(),
            "http_request_update",
            &upd,
        )
    };
    let resp = match update() {
        Err(e) if e.error_code == "IC0406" => {
            b.advance_time(std::time::Duration::from_secs(61));
            b.tick();
            update()
        }
        other => other,
    }
    .unwrap_or_else(|e| panic!("http_request_update {method} {url}: {e}"));
    assert_ne!(
        resp.upgrade,
        Some(true),
        "the update path never asks to upgrade again"
    );
    fetched(resp, true)
}

fn get(b: &dyn Backend, c: Principal, url: &str, headers: &[(&str, &str)]) -> Fetched {
    fetch(b, c, "GET", url, headers)
}

fn owner() -> Principal {
    principal("http-owner")
}

fn file() -> GenFile {
    GenFile::new(0x5eed, SIZE, CHUNK)
}

/// The 206 the canister must give for a range starting at `start` asking up to `last`:
/// cut at the end of the grid chunk holding `start`.
fn expected_end(start: u64, last: u64) -> u64 {
    let chunk_end = (start / CHUNK + 1) * CHUNK - 1;
    last.min(chunk_end).min(SIZE - 1)
}

fn check_206(f: &Fetched, file: &GenFile, start: u64, end: u64, what: &str) {
    let r = &f.resp;
    assert_eq!(r.status_code, 206, "{what}: status");
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes {start}-{end}/{SIZE}").as_str()),
        "{what}"
    );
    let len = end - start + 1;
    assert_eq!(
        r.header("content-length"),
        Some(len.to_string().as_str()),
        "{what}"
    );
    assert_eq!(r.header("accept-ranges"), Some("bytes"), "{what}");
    assert_eq!(r.header("content-type"), Some("video/mp4"), "{what}");
    // Security review L1: certified with the rest (the answers are verified).
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        r.header("content-security-policy"),
        Some("sandbox"),
        "{what}"
    );
    assert_eq!(r.body.len() as u64, len, "{what}: body length");
    assert!(
        r.body.as_slice() == file.range(start, len).as_slice(),
        "{what}: body bytes differ from the file"
    );
}

fn uploaded_video(b: &dyn Backend) -> (Video<'_>, GenFile) {
    let v = standalone_video(b, owner(), None, 50 * T);
    let f = file();
    assert_eq!(f.chunk_count(), 6);

    // Nothing declared yet, then declared and partly uploaded: 503, never video bytes.
    for stage in ["empty", "uploading"] {
        if stage == "uploading" {
            ok("begin_upload", v.begin_upload(owner(), &spec_for(&f, true)));
            v.upload_chunks(owner(), &f, Some(&[0, 1, 2]));
        }
        for url in ["/", "/video"] {
            let got = get(b, v.id, url, &[("Range", "bytes=0-")]);
            assert_eq!(got.resp.status_code, 503, "{stage} {url}");
            assert_eq!(got.resp.header("retry-after"), Some("30"), "{stage} {url}");
            assert_eq!(
                got.resp.header("cache-control"),
                Some("no-store"),
                "{stage} {url}"
            );
            assert!(!got.resp.body.is_empty());
            assert!(got.resp.body.as_slice() != f.range(0, got.resp.body.len() as u64).as_slice());
            if stage == "uploading" {
                got.assert_certified(&format!("503 of {url} while uploading"));
            }
        }
    }
    v.upload_chunks(owner(), &f, Some(&[3, 4, 5]));
    ok("finish_upload", v.finish_upload(owner()));
    (v, f)
}

fn http_routes_statuses_and_certification(b: &dyn Backend) {
    let (v, f) = uploaded_video(b);
    let c = v.id;
    let etag = format!(
        "\"{}\"",
        hex::encode(v.metadata().digest.expect("digest").as_slice())
    );

    // Plain GET: 206 with chunk 0 (the gateway completes it), certified, on both paths.
    for url in ["/", "/video", "/video?t=30"] {
        let got = get(b, c, url, &[]);
        check_206(&got, &f, 0, CHUNK - 1, url);
        assert_eq!(got.resp.header("etag"), Some(etag.as_str()));
        assert_eq!(
            got.resp.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        got.assert_certified(url);
    }
    // The browser's first request, the gateway's continuation requests, the exact chunk and
    // Chromium's follow-up after a short answer (`bytes=kC-(size-1)`): certified.
    let got = get(b, c, "/video", &[("Range", "bytes=0-")]);
    check_206(&got, &f, 0, CHUNK - 1, "bytes=0-");
    got.assert_certified("bytes=0-");
    for k in 1..f.chunk_count() as u64 {
        let start = k * CHUNK;
        let end = expected_end(start, u64::MAX);
        let to_end = format!("bytes={start}-{}", SIZE - 1);
        for range in [
            format!("bytes={start}-"),
            format!("bytes={start}-{end}"),
            to_end,
        ] {
            let got = get(b, c, "/video", &[("Range", range.as_str())]);
            check_206(&got, &f, start, end, &range);
            got.assert_certified(&range);
        }
    }

    // A <video> element's seek (Sec-Fetch-Dest: video, from an off-grid byte to the end): the
    // whole grid chunk holding the byte, from a certified query. Without the header: exact.
    for a in [1, CHUNK + 17, 2 * CHUNK + CHUNK / 2, SIZE - 5] {
        let first = a / CHUNK * CHUNK;
        for range in [format!("bytes={a}-"), format!("bytes={a}-{}", SIZE - 1)] {
            let media = [("Range", range.as_str()), ("Sec-Fetch-Dest", "video")];
            let got = get(b, c, "/video", &media);
            check_206(&got, &f, first, expected_end(first, u64::MAX), &range);
            got.assert_certified(&range);
            let exact = get(b, c, "/video", &media[..1]);
            check_206(&exact, &f, a, expected_end(a, u64::MAX), &range);
            assert!(
                exact.upgraded,
                "{range}: not a media element, not pre-certified"
            );
        }
    }

    // Many random ranges (seeded): byte-exact against the generated file.
    let mut rng = Rng::new(2026);
    let mut upgraded = 0;
    for i in 0..80 {
        let (header, start, last) = match rng.below(4) {
            0 => {
                let a = rng.below(SIZE);
                let bnd = a + rng.below(3 * CHUNK);
                (format!("bytes={a}-{bnd}"), a, bnd)
            }
            1 => {
                let a = rng.below(SIZE);
                (format!("bytes={a}-"), a, SIZE - 1)
            }
            2 => {
                let n = 1 + rng.below(2 * CHUNK);
                let a = SIZE.saturating_sub(n);
                (format!("bytes=-{n}"), a, SIZE - 1)
            }
            _ => {
                // Small windows near chunk boundaries (the off-by-one zone).
                let k = 1 + rng.below(f.chunk_count() as u64 - 1);
                let a = (k * CHUNK).saturating_sub(rng.below(4));
                let bnd = a + rng.below(8);
                (format!("bytes={a}-{bnd}"), a, bnd)
            }
        };
        let got = get(b, c, "/video", &[("Range", header.as_str())]);
        check_206(
            &got,
            &f,
            start,
            expected_end(start, last),
            &format!("#{i} {header}"),
        );
        upgraded += got.upgraded as u32;
    }
    assert!(
        upgraded > 0,
        "off-grid ranges cannot be pre-certified: they must use the update path"
    );

    // Multi-range: the first satisfiable one, single part.
    let got = get(b, c, "/video", &[("Range", "bytes=9000000-9000001, 10-19")]);
    check_206(&got, &f, 10, 19, "multi-range");

    // Unsatisfiable: 416 with the size.
    for range in [
        format!("bytes={SIZE}-"),
        "bytes=9999999-10000000".to_string(),
    ] {
        let got = get(b, c, "/video", &[("Range", range.as_str())]);
        assert_eq!(got.resp.status_code, 416, "{range}");
        assert_eq!(
            got.resp.header("content-range"),
            Some(format!("bytes */{SIZE}").as_str())
        );
    }
    // Malformed Range / other unit: ignored, served as a plain GET.
    let got = get(b, c, "/video", &[("Range", "items=0-5")]);
    check_206(&got, &f, 0, CHUNK - 1, "items=0-5");

    // HEAD: the headers of the whole file, no body; certified.
    let got = fetch(b, c, "HEAD", "/video", &[]);
    assert_eq!(got.resp.status_code, 200);
    assert_eq!(
        got.resp.header("content-length"),
        Some(SIZE.to_string().as_str())
    );
    assert_eq!(got.resp.header("etag"), Some(etag.as_str()));
    assert!(got.resp.body.is_empty());
    got.assert_certified("HEAD /video");
    // HEAD ignores Range (RFC 9110 §14.2: range handling is defined for GET only): the same
    // certified answer.
    let got = fetch(b, c, "HEAD", "/video", &[("Range", "bytes=10-20")]);
    assert_eq!(got.resp.status_code, 200);
    assert_eq!(got.resp.header("content-range"), None);
    assert!(got.resp.body.is_empty());
    got.assert_certified("HEAD /video with Range");

    // Conditional GET.
    let got = get(b, c, "/video", &[("If-None-Match", etag.as_str())]);
    assert_eq!(got.resp.status_code, 304);
    assert!(got.resp.body.is_empty());
    assert_eq!(got.resp.header("etag"), Some(etag.as_str()));
    got.assert_certified("304");
    let weak_list = format!("\"nope\", W/{etag}");
    let got = get(b, c, "/video", &[("If-None-Match", weak_list.as_str())]);
    assert_eq!(got.resp.status_code, 304, "weak comparison in a list");
    let got = get(b, c, "/video", &[("If-None-Match", "\"other\"")]);
    check_206(&got, &f, 0, CHUNK - 1, "non-matching If-None-Match");

    // 404 and 405.
    let got = get(b, c, "/nope", &[]);
    assert_eq!(got.resp.status_code, 404);
    got.assert_certified("404");
    // 405s: the common methods' are certified; none is ever upgraded to a paid update call.
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        for path in ["/video", "/nope"] {
            let got = fetch(b, c, method, path, &[]);
            assert_eq!(got.resp.status_code, 405, "{method} {path}");
            assert_eq!(got.resp.header("allow"), Some("GET, HEAD, OPTIONS"));
            got.assert_certified(&format!("{method} {path}"));
        }
    }
    // OPTIONS is the CORS preflight (named files, docs/http.md): a certified 204 at every path.
    for path in ["/video", "/nope"] {
        let got = fetch(b, c, "OPTIONS", path, &[]);
        assert_eq!(got.resp.status_code, 204, "OPTIONS {path}");
        assert_eq!(
            got.resp.header("access-control-allow-methods"),
            Some("GET, HEAD, OPTIONS")
        );
        assert_eq!(got.resp.header("access-control-allow-origin"), Some("*"));
        got.assert_certified(&format!("OPTIONS {path}"));
    }
    let got = fetch(b, c, "HEAD", "/nope", &[]);
    assert_eq!(got.resp.status_code, 404);
    got.assert_certified("HEAD /nope");
    let got = fetch(b, c, "HEAD", "/metadata.json", &[]);
    assert_eq!(got.resp.status_code, 200);
    got.assert_certified("HEAD /metadata.json");

    // /metadata.json: current, valid JSON, certified.
    let got = get(b, c, "/metadata.json", &[]);
    assert_eq!(got.resp.status_code, 200);
    assert_eq!(got.resp.header("cache-control"), Some("no-cache"));
    got.assert_certified("/metadata.json");
    let doc: serde_json::Value =
        serde_json::from_slice(&got.resp.body).expect("metadata.json is JSON");
    assert_eq!(doc["status"], "ready");
    assert_eq!(doc["size"], SIZE);
    assert_eq!(doc["title"], "test video");
    assert_eq!(doc["owner"], owner().to_text());
    assert!(doc["poster"].is_null());

    // /poster: 404 until the owner sets one.
    assert_eq!(get(b, c, "/poster", &[]).resp.status_code, 404);
    let png = PosterArgs {
        mime_type: "image/png".into(),
        data: ByteBuf::from(b"\x89PNG\r\n\x1a\n fake poster".to_vec()),
    };
    // Not the owner: refused by inspect_message (and by the endpoint for inter-canister calls).
    let r = rejected::<()>(
        "set_poster by a stranger",
        b.update1(c, principal("stranger"), "set_poster", &png),
    );
    assert_eq!(r.error_code, "IC0406", "{r}");
    let too_big = PosterArgs {
        mime_type: "image/png".into(),
        data: ByteBuf::from(vec![1u8; 2_000_001]),
    };
    assert_eq!(
        err::<()>(
            "set_poster too big",
            b.update1(c, owner(), "set_poster", &too_big)
        ),
        Error::TooLarge {
            size: 2_000_001,
            limit: 2_000_000
        }
    );
    let bad_mime = PosterArgs {
        mime_type: "text/html".into(),
        data: png.data.clone(),
    };
    assert!(matches!(
        err::<()>(
            "set_poster text/html",
            b.update1(c, owner(), "set_poster", &bad_mime)
        ),
        Error::InvalidArgument { .. }
    ));
    ok::<()>("set_poster", b.update1(c, owner(), "set_poster", &png));
    let got = get(b, c, "/poster", &[]);
    assert_eq!(got.resp.status_code, 200);
    assert_eq!(got.resp.header("content-type"), Some("image/png"));
    assert_eq!(got.resp.body, png.data);
    got.assert_certified("/poster");
    // The metadata document was re-certified with the poster in it.
    let got = get(b, c, "/metadata.json", &[]);
    got.assert_certified("/metadata.json after set_poster");
    let doc: serde_json::Value = serde_json::from_slice(&got.resp.body).unwrap();
    assert_eq!(doc["poster"]["mime_type"], "image/png");

    // An upgrade drops the heap tree: post_upgrade rebuilds it; the poster is in stable memory.
    b.upgrade(c, canvid_tests::wasm::video_gz(), vec![], Some(owner()))
        .unwrap_or_else(|e| panic!("upgrade: {e}"));
    let got = get(
        b,
        c,
        "/video",
        &[("Range", &format!("bytes={}-", 2 * CHUNK))],
    );
    check_206(&got, &f, 2 * CHUNK, 3 * CHUNK - 1, "after upgrade");
    got.assert_certified("after upgrade");
    let got = get(b, c, "/poster", &[]);
    assert_eq!(got.resp.body, png.data, "poster survives the upgrade");
    got.assert_certified("/poster after upgrade");
    // The layout new videos get (4: the page allocator; docs/video-canister.md).
    assert_eq!(v.canister_info().layout_version, 4);
}

/// The verifier is not a rubber stamp: every way of altering a certified answer, replaying it
/// for another request, or checking it against the wrong canister, key or time is refused.
fn tampered_answers_fail_verification(b: &dyn Backend) {
    let (v, f) = uploaded_video(b);
    let root_key = b.root_key();
    let range = format!("bytes={CHUNK}-");
    let good = get(b, v.id, "/video", &[("Range", range.as_str())]);
    check_206(&good, &f, CHUNK, 2 * CHUNK - 1, &range);
    good.assert_certified(&range);
    let check =
        |what: &str, request: &HttpRequest, resp: &HttpResponse, canister, key: &[u8], time| {
            assert!(
                verify_v2(request, resp, canister, key, time).is_err(),
                "{what}: the verifier accepted it"
            );
        };
    let (req, id, now) = (&good.request, v.id, good.time);

    let mut body = good.resp.clone();
    body.body[17] ^= 1;
    check("one body bit flipped", req, &body, id, &root_key, now);
    let mut shorter = good.resp.clone();
    shorter.body.pop();
    check("body cut by one byte", req, &shorter, id, &root_key, now);
    let mut label = good.resp.clone();
    for (name, value) in &mut label.headers {
        if name.eq_ignore_ascii_case("content-range") {
            *value = format!("bytes {}-{}/{SIZE}", 2 * CHUNK, 3 * CHUNK - 1);
        }
    }
    check("Content-Range relabelled", req, &label, id, &root_key, now);
    let mut other_request = req.clone();
    other_request.headers = vec![("Range".into(), format!("bytes={}-", 2 * CHUNK))];
    check(
        "replayed for chunk 2",
        &other_request,
        &good.resp,
        id,
        &root_key,
        now,
    );
    // A media element's answer (chunk 1 for a seek inside it) is certified for media element
    // requests only.
    let seek = format!("bytes={}-", CHUNK + 99);
    let media = get(
        b,
        v.id,
        "/video",
        &[("Range", seek.as_str()), ("Sec-Fetch-Dest", "video")],
    );
    check_206(&media, &f, CHUNK, 2 * CHUNK - 1, &seek);
    media.assert_certified(&seek);
    let mut not_media = media.request.clone();
    not_media.headers.retain(|(n, _)| n != "Sec-Fetch-Dest");
    check(
        "media answer for a request without Sec-Fetch-Dest",
        &not_media,
        &media.resp,
        id,
        &root_key,
        media.time,
    );
    let mut other_path = req.clone();
    other_path.url = "/metadata.json".into();
    check(
        "replayed for another path",
        &other_path,
        &good.resp,
        id,
        &root_key,
        now,
    );
    check(
        "another canister's id",
        req,
        &good.resp,
        principal("someone-else"),
        &root_key,
        now,
    );
    let foreign_key = canvid_replica::Replica::with_seed([42; 32]).root_key_der();
    assert_ne!(foreign_key, root_key);
    check(
        "another IC's root key",
        req,
        &good.resp,
        id,
        &foreign_key,
        now,
    );
    check(
        "certificate older than 5 minutes",
        req,
        &good.resp,
        id,
        &root_key,
        now + Duration::from_secs(6 * 60),
    );
    // The untouched answer still verifies after all that (the checks above did not pass by
    // accident of a broken verifier set-up).
    verify_v2(req, &good.resp, id, &root_key, now).expect("the genuine answer verifies");
}

/// The update path costs the canister, so its `inspect_message` takes only the requests the
/// query could not answer, and a bounded number of those a minute (security review M2).
fn m2_http_updates_only_for_what_queries_cannot_answer(b: &dyn Backend) {
    let (v, f) = uploaded_video(b);
    let update = |method: &str, url: &str, headers: &[(&str, &str)]| {
        let req = HttpUpdateRequest {
            method: method.into(),
            url: url.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: ByteBuf::new(),
        };
        b.update1::<_, HttpResponse>(v.id, Principal::anonymous(), "http_request_update", &req)
    };
    // What the query answers itself (certified, or an error that would be the same as an
    // update) is refused before it costs anything.
    let before = b.cycle_balance(v.id);
    for (method, url, headers) in [
        ("GET", "/video", vec![]),
        ("GET", "/video", vec![("Range", "bytes=0-")]),
        ("HEAD", "/video", vec![("Range", "bytes=5-9")]),
        ("GET", "/metadata.json", vec![]),
        ("GET", "/nowhere", vec![]),
        ("POST", "/video", vec![]),
        ("TRACE", "/video", vec![]),
        ("GET", "/video", vec![("If-None-Match", "*")]),
    ] {
        let what = format!("{method} {url} {headers:?}");
        let r = update(method, url, &headers).expect_err(&what);
        assert_eq!(r.error_code, "IC0406", "{what}: {r}");
    }
    let spent = before - b.cycle_balance(v.id);
    assert!(
        spent < 5_000_000,
        "refused requests cost the canister {spent} cycles"
    );
    // A range no certified answer holds goes through, up to the budget per minute.
    let off_grid = [("Range", "bytes=1-2")];
    for i in 0..120 {
        let r = update("GET", "/video", &off_grid)
            .unwrap_or_else(|e| panic!("update {i} within the budget: {e}"));
        assert_eq!(r.status_code, 206);
    }
    let r = update("GET", "/video", &off_grid).expect_err("update over the budget");
    assert_eq!(r.error_code, "IC0406", "{r}");
    // `inspect_message` sees the time of the last executed round (on the IC one passes every
    // second or so): run one after moving the clock.
    b.advance_time(Duration::from_secs(61));
    b.tick();
    let r = update("GET", "/video", &off_grid).expect("a new minute, a new budget");
    assert_eq!(r.body.as_slice(), &f.range(1, 2)[..]);
}

/// Named files (issue 19) over HTTP: each at its path with its Content-Type and CORS, a plain GET
/// answered whole (one query, as HLS players fetch), certified and verified, never upgraded;
/// 404 before Ready; a private video's free paths served to anyone, its other files refused
/// with a certified 401.
fn named_files_over_http(b: &dyn Backend) {
    use canvid_types::access::{AccessMode, AccessPolicy};
    use canvid_types::video::{ChunkUpload, UploadSpec};
    let v = standalone_video(b, owner(), None, 50 * T);
    let mut rng = Rng::new(19);
    let mut bytes = |n: usize| {
        let mut d = vec![0u8; n];
        rng.fill(&mut d);
        d
    };
    let files: Vec<(&str, &str, Vec<u8>, u32)> = vec![
        (
            "/hls/master.m3u8",
            "application/vnd.apple.mpegurl",
            b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n".to_vec(),
            2_000_000,
        ),
        (
            "/hls/720p/seg-00000.m4s",
            "video/mp4",
            bytes(100_000),
            2_000_000,
        ),
        // Three upload chunks, one HTTP body: still one 200 answer.
        (
            "/hls/720p/seg-00001.m4s",
            "video/mp4",
            bytes(150_000),
            50_000,
        ),
        (
            "/subs/en.vtt",
            "text/vtt",
            b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n".to_vec(),
            2_000_000,
        ),
    ];
    let specs: Vec<UploadSpec> = files
        .iter()
        .map(|(path, mime, data, chunk)| UploadSpec {
            mime_type: mime.to_string(),
            total_size: data.len() as u64,
            chunk_size: *chunk,
            chunk_digests: None,
            file_digest: None,
            duration_ms: None,
            path: Some(path.to_string()),
            rendition: None,
            encryption: None,
        })
        .collect();
    let _: u32 = ok(
        "begin_files",
        b.update1(v.id, owner(), "begin_files", &specs),
    );
    for (path, _, data, chunk) in &files {
        for (i, c) in data.chunks(*chunk as usize).enumerate() {
            let arg = ChunkUpload {
                index: i as u32,
                data: ByteBuf::from(c.to_vec()),
                path: Some(path.to_string()),
            };
            let _: canvid_types::video::ChunkReceipt =
                ok("put_chunk", b.update1(v.id, owner(), "put_chunk", &arg));
        }
    }
    // Not served before Ready: 404, certified.
    let got = get(b, v.id, "/hls/master.m3u8", &[]);
    assert_eq!(got.resp.status_code, 404, "{}", b.name());
    got.assert_certified("404 of a named file before Ready");
    ok("finish_upload", v.finish_upload(owner()));
    for (path, mime, data, _) in &files {
        for url in [path.to_string(), format!("{path}?token=unused")] {
            let got = get(b, v.id, &url, &[]);
            assert_eq!(got.resp.status_code, 200, "{} GET {url}", b.name());
            assert!(!got.upgraded, "{url}: upgraded");
            assert_eq!(got.resp.body.as_slice(), data.as_slice(), "{url}");
            assert_eq!(got.resp.header("content-type"), Some(*mime), "{url}");
            assert_eq!(
                got.resp.header("access-control-allow-origin"),
                Some("*"),
                "{url}"
            );
            got.assert_certified(&format!("GET {url}"));
        }
        let got = get(b, v.id, path, &[("Range", "bytes=0-")]);
        assert!(!got.upgraded, "{path}: bytes=0- upgraded");
        assert_eq!(got.resp.status_code, 206, "{path} bytes=0-");
        got.assert_certified(&format!("{path} bytes=0-"));
        let got = fetch(b, v.id, "HEAD", path, &[]);
        assert_eq!(got.resp.status_code, 200);
        assert!(got.resp.body.is_empty());
        got.assert_certified(&format!("HEAD {path}"));
    }
    let got = fetch(b, v.id, "OPTIONS", "/hls/720p/seg-00000.m4s", &[]);
    assert_eq!(got.resp.status_code, 204);
    got.assert_certified("OPTIONS preflight");
    let meta = get(b, v.id, "/metadata.json", &[]);
    let text = String::from_utf8(meta.resp.body.to_vec()).unwrap();
    assert!(text.contains("\"files\":4"), "{text}");
    // Private, with the master playlist and the subtitles free: those stay public, the
    // segments are refused (a certified 401, from the query).
    let policy = AccessPolicy {
        mode: AccessMode::Private,
        preview_bytes: None,
        free_paths: Some(vec!["/hls/master.m3u8".into(), "/subs/".into()]),
    };
    let _: canvid_types::access::AccessInfo = ok(
        "set_access_policy",
        b.update1(v.id, owner(), "set_access_policy", &policy),
    );
    for (path, _, data, _) in &files {
        let got = get(b, v.id, path, &[]);
        assert!(!got.upgraded, "{path}: upgraded");
        got.assert_certified(&format!("{path} of a private video"));
        if path.starts_with("/hls/720p/") {
            assert_eq!(got.resp.status_code, 401, "{} {path}", b.name());
            assert!(got.resp.body.as_slice() != data.as_slice());
        } else {
            assert_eq!(got.resp.status_code, 200, "{} {path} is free", b.name());
            assert_eq!(got.resp.body.as_slice(), data.as_slice());
        }
    }
    // The agent interface applies the same rule.
    let stranger = principal("named-stranger");
    let free: canvid_tests::clients::Answer<ByteBuf> = b.query1(
        v.id,
        stranger,
        "get_file_chunk",
        &canvid_types::files::FileChunkArgs {
            path: "/subs/en.vtt".into(),
            index: 0,
        },
    );
    assert_eq!(
        ok("free get_file_chunk", free).as_slice(),
        files[3].2.as_slice()
    );
    let paid: canvid_tests::clients::Answer<ByteBuf> = b.query1(
        v.id,
        stranger,
        "get_file_chunk",
        &canvid_types::files::FileChunkArgs {
            path: "/hls/720p/seg-00000.m4s".into(),
            index: 0,
        },
    );
    assert!(matches!(
        err("gated get_file_chunk", paid),
        Error::NotAuthorized { .. }
    ));
}

backend_tests!(
    named_files_over_http,
    http_routes_statuses_and_certification,
    tampered_answers_fail_verification,
    m2_http_updates_only_for_what_queries_cannot_answer
);

// ---------------------------------------------------------------------------------------------
// End to end through canvid-gateway on a TCP socket (embedded replica only)
// ---------------------------------------------------------------------------------------------

/// What a browser sees through an HTTP gateway on `port` (canister subdomains of `localhost`):
/// Range pass-through, a plain GET completed into the whole file, statuses, the raw domain.
fn check_through_gateway(port: u16, v: &Video, f: &GenFile) {
    let host = format!("{}.localhost:{port}", v.id);
    // A client Range is passed through as the canister's 206.
    let r = Request::get("/video")
        .host(&host)
        .header("Range", "bytes=1500000-")
        .send(port);
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 1500000-1999999/{SIZE}").as_str())
    );
    assert!(
        r.body == f.range(1_500_000, 500_000),
        "206 body through the gateway"
    );
    let r = Request::get("/video")
        .host(&host)
        .header("Range", &format!("bytes={}-", 4 * CHUNK))
        .send(port);
    assert_eq!(r.status, 206);
    assert!(r.body == f.range(4 * CHUNK, CHUNK));

    // A plain GET: the gateway completes the 206 chunk by chunk into one 200 of the whole file.
    let r = Request::get("/").host(&host).send(port);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len() as u64, SIZE);
    assert!(r.body == f.bytes(), "whole file through the gateway");

    // Other statuses pass through.
    assert_eq!(Request::get("/nope").host(&host).send(port).status, 404);
    assert_eq!(
        Request::get("/video")
            .host(&host)
            .header("Range", "bytes=99999999-")
            .send(port)
            .status,
        416
    );
    let r = Request::get("/metadata.json").host(&host).send(port);
    assert_eq!(r.status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(doc["size"], SIZE);
    // The raw domain serves without verifying, like <id>.raw.icp0.io.
    let raw_host = format!("{}.raw.localhost:{port}", v.id);
    let r = Request::get("/metadata.json").host(&raw_host).send(port);
    assert_eq!(r.status, 200);
}

/// The same through the IC's own HTTP gateway: PocketIC's live mode serves one in front of the
/// instance, which verifies every certified answer with the IC's response verification against
/// the instance's root key (an answer that fails verification would not reach the client).
#[test]
#[cfg_attr(
    not(canvid_pocket_ic),
    ignore = "PocketIC not configured: set POCKET_IC_BIN to a pocket-ic-server 10.0.0 binary"
)]
fn pocket_ic_gateway_end_to_end_over_tcp() {
    let mut pb = canvid_tests::PocketIcBackend::from_env();
    let id = {
        let (v, _) = uploaded_video(&pb);
        v.id
    };
    let url = pb.pic.make_live(None);
    let port = url.port().expect("the gateway's port");
    let b: &dyn Backend = &pb;
    let v = Video::new(b, id);
    check_through_gateway(port, &v, &file());
    pb.pic.stop_live();
}

#[test]
fn gateway_end_to_end_over_tcp() {
    let rb = Arc::new(ReplicaBackend::new());
    let b: &dyn Backend = &*rb;
    let (v, f) = uploaded_video(b);
    let gw = canvid_gateway::serve_backend(rb.replica.clone(), "127.0.0.1:0".parse().unwrap())
        .expect("start the gateway");
    let port = gw.port();
    assert_eq!(
        gw.url_for(v.id),
        format!("http://{}.localhost:{port}/", v.id)
    );
    check_through_gateway(port, &v, &f);
    // `?canisterId=` on another host is sent to the canister's own origin (security review
    // L2): every canister has an origin of its own, as on the IC.
    let r = Request::get(&format!("/metadata.json?canisterId={}&x=1", v.id))
        .host(&format!("127.0.0.1:{port}"))
        .send(port);
    assert_eq!(r.status, 307);
    let location = format!("http://{}.localhost:{port}/metadata.json?x=1", v.id);
    assert_eq!(r.header("location"), Some(location.as_str()));
    let r = Request::get("/metadata.json?x=1")
        .host(&format!("{}.localhost:{port}", v.id))
        .send(port);
    assert_eq!(r.status, 200);

    let log = gw.log();
    // Query answers on the verified domain passed ic-response-verification in the gateway;
    // update answers and the raw domain's are not checked: `/metadata.json` was fetched on the
    // verified domain, the raw one, and after the redirect (which called no canister).
    let redirects: Vec<_> = log.iter().filter(|e| e.status == 307).collect();
    assert_eq!(redirects.len(), 1, "{log:#?}");
    assert_eq!(redirects[0].canister, None);
    for e in log
        .iter()
        .filter(|e| !e.url.starts_with("/metadata.json") && e.status != 307)
    {
        assert_eq!(e.verified, !e.upgraded, "{e:?}");
    }
    let metadata: Vec<bool> = log
        .iter()
        .filter(|e| e.url.starts_with("/metadata.json") && e.canister.is_some())
        .map(|e| e.verified)
        .collect();
    assert_eq!(metadata, vec![true, false, true], "{log:#?}");
    assert!(log.iter().filter(|e| e.verified).count() >= 5, "{log:#?}");
    let ranged: Vec<_> = log
        .iter()
        .filter(|e| e.range.as_deref() == Some("bytes=1500000-"))
        .collect();
    assert_eq!(ranged.len(), 1, "{log:#?}");
    assert_eq!(ranged[0].status, 206);
    assert!(
        ranged[0].upgraded,
        "an off-grid range goes through http_request_update"
    );
    assert_eq!(ranged[0].canister, Some(v.id));
    let on_grid = format!("bytes={}-", 4 * CHUNK);
    let e = log
        .iter()
        .find(|e| e.range.as_deref() == Some(on_grid.as_str()))
        .expect("on-grid request logged");
    assert!(
        !e.upgraded && e.status == 206 && e.body_len == CHUNK,
        "{e:?}"
    );
    // The plain GET: the canister answered 206 with chunk 0 (a certified query, verified); the
    // library fetched the other five chunks itself and passed on one 200 of the whole file.
    let plain: Vec<_> = log
        .iter()
        .filter(|e| e.url == "/" && e.range.is_none())
        .collect();
    assert_eq!(plain.len(), 1, "{log:#?}");
    assert_eq!(
        (plain[0].status, plain[0].body_len),
        (200, SIZE),
        "{log:#?}"
    );
    assert!(plain[0].verified && !plain[0].upgraded, "{log:#?}");
    assert!(log.iter().any(|e| e.status == 404 && e.url == "/nope"));
    gw.shutdown();
}
