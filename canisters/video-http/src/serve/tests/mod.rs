use super::*;
use crate::certify::Certifier;
use crate::testutil::MemVideo;
use crate::{etag, sha256, Poster, VideoStatus};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ic_certification::{HashTree, LookupResult, SubtreeLookupResult};
use ic_http_certification::{
    cel::DefaultFullCelExpression, filter_response_headers, request_hash, response_headers_hash,
    DefaultCelBuilder, DefaultResponseCertification, HttpRequest,
};

const C: u64 = 1_000;

/// (method, url, headers).
type Case = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);
/// (method, url, headers, expected status, certified).
type ErrorCase<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16, bool);
/// (method, url, headers).
type RequestCase<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
/// (url, headers, expected status).
type HeadCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);
/// (method, url, headers, expected status).
type OwnedCase = (&'static str, String, Vec<(&'static str, String)>, u16);
const FAKE_CERT: &[u8] = b"data-certificate";

fn req(method: &str, url: &str, headers: &[(&str, &str)]) -> HttpRequest<'static> {
    let headers = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    HttpRequest::builder()
        .with_method(ic_http_certification::Method::from_bytes(method.as_bytes()).unwrap())
        .with_url(url)
        .with_headers(headers)
        .with_certificate_version(2)
        .build()
}

fn get(video: &MemVideo, url: &str, headers: &[(&str, &str)]) -> HttpResponse<'static> {
    serve_uncertified("GET", url, req("GET", url, headers).headers(), video, None)
}

fn hdr<'a>(r: &'a HttpResponse, name: &str) -> Option<&'a str> {
    header(r.headers(), name)
}

fn status(r: &HttpResponse) -> u16 {
    r.status_code().as_u16()
}

/// Asserts a 206 for bytes `start..=end` of `video`.
fn assert_partial(video: &MemVideo, r: &HttpResponse, start: u64, end: u64) {
    let size = video.bytes.len();
    assert_eq!(status(r), 206);
    assert_eq!(
        hdr(r, "content-range"),
        Some(format!("bytes {start}-{end}/{size}").as_str())
    );
    assert_eq!(
        hdr(r, "content-length"),
        Some((end - start + 1).to_string().as_str())
    );
    assert_eq!(r.body(), &video.bytes[start as usize..=end as usize]);
}

#[test]
fn small_video_plain_get_is_200_with_all_headers() {
    let v = MemVideo::new(700, C);
    for path in ["/", "/video", "/video?autoplay=1", "/?x"] {
        let r = get(&v, path, &[]);
        assert_eq!(status(&r), 200, "{path}");
        assert_eq!(r.body(), v.bytes.as_slice());
        assert_eq!(hdr(&r, "content-type"), Some("video/mp4"));
        assert_eq!(hdr(&r, "accept-ranges"), Some("bytes"));
        assert_eq!(hdr(&r, "content-length"), Some("700"));
        assert_eq!(hdr(&r, "etag"), Some(etag(&v.digest()).as_str()));
        assert_eq!(
            hdr(&r, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(hdr(&r, "content-range"), None);
        assert_eq!(r.upgrade(), None);
    }
    assert_eq!(etag(&v.digest()).len(), 66);
    assert!(etag(&v.digest()).starts_with('"'));
}

#[test]
fn large_video_plain_get_is_206_first_chunk() {
    let v = MemVideo::new(3_500, C);
    let r = get(&v, "/video", &[]);
    assert_partial(&v, &r, 0, C - 1);
    assert_eq!(hdr(&r, "etag"), Some(etag(&v.digest()).as_str()));
}

#[test]
fn max_body_sized_chunks_are_served_whole() {
    let v = MemVideo::new(2_000_001, crate::MAX_BODY);
    let r = get(&v, "/", &[]);
    assert_partial(&v, &r, 0, 1_999_999);
    let r = get(&v, "/", &[("Range", "bytes=2000000-")]);
    assert_partial(&v, &r, 2_000_000, 2_000_000);
}

#[test]
fn range_forms() {
    let v = MemVideo::new(3_500, C);
    assert_partial(&v, &get(&v, "/video", &[("Range", "bytes=10-19")]), 10, 19);
    assert_partial(
        &v,
        &get(&v, "/video", &[("range", "bytes=3000-")]),
        3000,
        3499,
    );
    assert_partial(
        &v,
        &get(&v, "/video", &[("Range", "bytes=-100")]),
        3400,
        3499,
    );
    // A suffix longer than the file starts at 0, then is cut at the first chunk end.
    assert_partial(
        &v,
        &get(&v, "/video", &[("Range", "bytes=-100000")]),
        0,
        999,
    );
    // Larger than one chunk: cut at the end of the chunk holding the start.
    assert_partial(
        &v,
        &get(&v, "/video", &[("Range", "bytes=1500-3200")]),
        1500,
        1999,
    );
    assert_partial(&v, &get(&v, "/video", &[("Range", "bytes=0-")]), 0, 999);
    // Multi-range: the first satisfiable range, single part.
    let r = get(&v, "/video", &[("Range", "bytes=5-9, 20-29")]);
    assert_partial(&v, &r, 5, 9);
    assert!(!hdr(&r, "content-type").unwrap().starts_with("multipart"));
    // Malformed: ignored, served like a plain GET.
    let r = get(&v, "/video", &[("Range", "bytes=9-5")]);
    assert_partial(&v, &r, 0, 999);
    let small = MemVideo::new(10, C);
    assert_eq!(status(&get(&small, "/", &[("Range", "lines=1-2")])), 200);
}

#[test]
fn unsatisfiable_range_is_416() {
    let v = MemVideo::new(3_500, C);
    for range in ["bytes=3500-", "bytes=4000-5000", "bytes=-0"] {
        let r = get(&v, "/video", &[("Range", range)]);
        assert_eq!(status(&r), 416, "{range}");
        assert_eq!(hdr(&r, "content-range"), Some("bytes */3500"));
    }
}

#[test]
fn head_has_get_headers_and_no_body() {
    let v = MemVideo::new(3_500, C);
    let r = serve_uncertified("HEAD", "/video", &[], &v, None);
    assert_eq!(status(&r), 200);
    assert_eq!(hdr(&r, "content-length"), Some("3500"));
    assert_eq!(hdr(&r, "etag"), Some(etag(&v.digest()).as_str()));
    assert!(r.body().is_empty());
    // RFC 9110 §14.2: Range is defined for GET only; HEAD ignores it.
    let range = vec![("range".to_string(), "bytes=5-9".to_string())];
    let h = serve_uncertified("HEAD", "/video", &range, &v, None);
    assert_eq!(h, r);
    assert_eq!(
        status(&serve_uncertified("GET", "/video", &range, &v, None)),
        206
    );
}

#[test]
fn if_none_match_gives_304() {
    let v = MemVideo::new(3_500, C);
    let tag = etag(&v.digest());
    for inm in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"x\", {tag}"),
        "*".to_string(),
    ] {
        let r = get(&v, "/video", &[("If-None-Match", &inm)]);
        assert_eq!(status(&r), 304, "{inm}");
        assert!(r.body().is_empty());
        assert_eq!(hdr(&r, "etag"), Some(tag.as_str()));
    }
    let r = get(&v, "/video", &[("If-None-Match", "\"other\"")]);
    assert_eq!(status(&r), 206);
}

#[test]
fn unfinished_video_is_503() {
    let mut v = MemVideo::new(3_500, C);
    v.status = VideoStatus::Uploading;
    for path in ["/", "/video"] {
        let r = get(&v, path, &[("Range", "bytes=0-")]);
        assert_eq!(status(&r), 503);
        assert_eq!(hdr(&r, "retry-after"), Some("30"));
        assert_eq!(hdr(&r, "cache-control"), Some("no-store"));
        assert!(r.body() != &v.bytes[..1000]);
    }
    v.declared = false;
    assert_eq!(status(&get(&v, "/video", &[])), 503);
}

#[test]
fn metadata_poster_404_405() {
    let mut v = MemVideo::new(100, C);
    let r = get(&v, "/metadata.json?x=1", &[]);
    assert_eq!(status(&r), 200);
    assert_eq!(r.body(), br#"{"title":"t"}"#);
    assert_eq!(
        hdr(&r, "content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(status(&get(&v, "/poster", &[])), 404);
    v.poster = Some(Poster {
        mime_type: "image/png".into(),
        bytes: vec![1, 2, 3],
        sha256: sha256(&[1, 2, 3]),
    });
    let r = get(&v, "/poster", &[]);
    assert_eq!(
        (status(&r), r.body(), hdr(&r, "content-type")),
        (200, &[1u8, 2, 3][..], Some("image/png"))
    );
    for path in ["/nope", "/video/", "/videos", "/metadata.json/x"] {
        assert_eq!(status(&get(&v, path, &[])), 404, "{path}");
    }
    // OPTIONS is the CORS preflight since named files (204, see `cors_preflight`), so `Allow`
    // names it.
    for method in ["POST", "PUT", "DELETE", "get", "options"] {
        let r = serve_uncertified(method, "/video", &[], &v, None);
        assert_eq!(status(&r), 405, "{method}");
        assert_eq!(hdr(&r, "allow"), Some("GET, HEAD, OPTIONS"));
    }
    assert_eq!(
        status(&serve_uncertified("OPTIONS", "/video", &[], &v, None)),
        204
    );
}

#[test]
fn read_failure_is_500() {
    struct Broken(MemVideo);
    impl crate::VideoSource for Broken {
        fn info(&self) -> Option<crate::VideoInfo> {
            self.0.info()
        }
        fn read(&self, _: u64, _: u64) -> Result<Vec<u8>, crate::ReadError> {
            Err(crate::ReadError("disk on fire".into()))
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
    }
    let v = Broken(MemVideo::new(100, C));
    let r = serve_uncertified("GET", "/video", &[], &v, None);
    assert_eq!(status(&r), 500);
}

/// Seeded xorshift so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_ranges_return_exact_slices() {
    let mut rng = Rng(0x5eed_cafe_f00d);
    for &(size, chunk) in &[
        (10_007usize, 1_000u64),
        (1usize, 1_000),
        (5_000, 1_000),
        (12_345, 977),
    ] {
        let v = MemVideo::new(size, chunk);
        let s = size as u64;
        for _ in 0..2_000 {
            let (a, b) = (rng.below(s + 50), rng.below(s + 50));
            let (header, expect) = match rng.below(3) {
                0 => (
                    format!("bytes={}-{}", a.min(b), a.max(b)),
                    (a.min(b) < s).then(|| (a.min(b), a.max(b).min(s - 1))),
                ),
                1 => (format!("bytes={a}-"), (a < s).then(|| (a, s - 1))),
                _ => (
                    format!("bytes=-{a}"),
                    (a > 0).then(|| (s - a.min(s), s - 1)),
                ),
            };
            let r = get(&v, "/video", &[("Range", &header)]);
            match expect {
                None => {
                    assert_eq!(status(&r), 416, "{header}");
                    assert_eq!(
                        hdr(&r, "content-range"),
                        Some(format!("bytes */{s}").as_str())
                    );
                }
                Some((start, end)) => {
                    let end = end.min((start / chunk + 1) * chunk - 1);
                    assert_partial(&v, &r, start, end);
                    assert!(r.body().len() as u64 <= chunk);
                }
            }
        }
    }
}

#[test]
fn candid_round_trip_of_request_and_response() {
    let request = req("GET", "/video", &[("Range", "bytes=0-")]);
    let bytes = candid::encode_one(&request).unwrap();
    let back: HttpRequest = candid::decode_one(&bytes).unwrap();
    assert_eq!(back, request);
    let v = MemVideo::new(100, C);
    let r = serve_uncertified("GET", "/video", &[], &v, None);
    let back: HttpResponse = candid::decode_one(&candid::encode_one(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}

/// Certification: every certified answer verifies, and only those.
mod certified;
