//! `canvid serve` answers browsers through DFINITY's `ic-http-gateway` (the library the IC's
//! boundary gateways are built from), on its own hyper server, over an agent that talks to serve's
//! IC HTTP interface in-process. This test checks what a browser gets from serve's port for the
//! 12 requests a video player, a download or a stray visitor makes, on a real two-chunk MP4
//! uploaded with `canvid upload`:
//!
//! * against the file itself: the status each request must get, the body (SHA-256 of the exact
//!   bytes of the file the range names), `Content-Type`, `Content-Range`, `ETag` and the
//!   `Content-Length` the server frames the body with;
//! * against the library driven directly, as a boundary gateway drives it (an ic-agent 0.46
//!   with its own HTTP client over serve's `/api/`, the root key from `serve.json`): the same
//!   status, body and values of the headers a player acts on, so serve's server adds or loses
//!   nothing on the way (docs/http.md, "The local gateway and the IC's").

mod common;

use std::collections::BTreeMap;

use candid::Principal;
use canvid_devkit::raw_http;
use common::{canvid, last_line, net, ok, require_wasm, Serve};
use http_body_util::BodyExt;
use ic_http_gateway::{HttpGatewayClient, HttpGatewayRequestArgs};

/// Headers whose values both gateways must agree on (when either sends one). Not
/// `content-length`: the library hands back the canister's certified headers and a body, and the
/// HTTP server around it frames the body (a 404's `Content-Length: 10` comes from that server);
/// the body's length is compared instead.
const COMPARED: [&str; 5] = [
    "content-type",
    "content-range",
    "accept-ranges",
    "etag",
    "x-content-type-options",
];

/// Method, path, request headers.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body_len: usize,
    body_sha256: String,
}

fn digest(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(body))
}

fn keep(name: &str) -> bool {
    COMPARED.contains(&name.to_ascii_lowercase().as_str())
}

/// The request through DFINITY's library (an ic-agent 0.46 over canvid serve's IC HTTP interface).
async fn reference(
    client: &HttpGatewayClient,
    canister: Principal,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(bytes::Bytes::new()).unwrap();
    let r = client
        .request(HttpGatewayRequestArgs {
            canister_request: req,
            canister_id: canister,
        })
        .send()
        .await;
    if let Some(e) = &r.metadata.internal_error {
        panic!("ic-http-gateway: {method} {path} {headers:?}: {e}");
    }
    let (parts, body) = r.canister_response.into_parts();
    let body = body.collect().await.expect("body").to_bytes().to_vec();
    Answer {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .filter(|(k, _)| keep(k.as_str()))
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
            .collect(),
        body_len: body.len(),
        body_sha256: digest(&body),
    }
}

/// The request through `canvid serve`'s browser port (`<id>.localhost:<port>`, raw HTTP/1.1),
/// and the `Content-Length` it was framed with.
fn canvid_serve(
    port: u16,
    canister: Principal,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (Answer, Option<usize>) {
    let r = raw_http::Request::new(method, path)
        .host(&format!("{canister}.localhost:{port}"))
        .headers(headers)
        .send(port);
    let length = r.header("content-length").map(|v| v.parse().unwrap());
    let answer = Answer {
        status: r.status,
        headers: r
            .headers
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        body_len: r.body.len(),
        body_sha256: digest(&r.body),
    };
    (answer, length)
}

/// What a request must get: status, the part of the file the body is (`None`: not the video),
/// `Content-Range`.
struct Want {
    status: u16,
    body: Option<std::ops::Range<usize>>,
    content_range: Option<String>,
}

#[test]
fn canvid_serve_answers_browsers_as_ic_http_gateway() {
    require_wasm();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    // A real video over two chunks (the gateway streams the rest of a 206).
    let video = tmp.path().join("clip.mp4");
    canvid_cli::video_gen::generate(&video, 5, "5M").unwrap();
    let bytes = std::fs::read(&video).unwrap();
    assert!(bytes.len() > 2_000_000, "{} bytes", bytes.len());
    let size = bytes.len();

    let serve = Serve::start(&state);
    let out = ok(net(canvid().arg("upload").arg(&video), &state));
    let id = Principal::from_text(last_line(&out)).unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("serve.json")).unwrap()).unwrap();
    let url = info["url"].as_str().unwrap().to_string();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let root_key = hex::decode(info["root_key"].as_str().unwrap()).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let agent = ic_agent_046::Agent::builder()
        .with_url(url.clone())
        .build()
        .unwrap();
    agent.set_root_key(root_key);
    let client = HttpGatewayClient::builder()
        .with_agent(agent)
        .build()
        .unwrap();

    let etag = raw_http::Request::get("/video")
        .host(&format!("{id}.localhost:{port}"))
        .send(port)
        .header("etag")
        .expect("the video has an ETag")
        .to_string();
    let last = format!("bytes={}-{}", size - 100, size - 1);
    let straddle = format!("bytes={}-{}", 1_999_900, 2_000_099);
    let cases: Vec<Case> = vec![
        ("GET", "/video", vec![]),
        ("GET", "/video", vec![("range", "bytes=0-99")]),
        ("GET", "/video", vec![("range", "bytes=0-")]),
        ("GET", "/video", vec![("range", straddle.as_str())]),
        ("GET", "/video", vec![("range", last.as_str())]),
        ("GET", "/video", vec![("range", "bytes=-100")]),
        ("GET", "/video", vec![("if-none-match", etag.as_str())]),
        ("GET", "/metadata.json", vec![]),
        ("GET", "/", vec![]),
        ("GET", "/poster", vec![]),
        ("GET", "/no/such/path", vec![]),
        ("HEAD", "/video", vec![]),
    ];
    // The canister's chunk is 2,000,000 bytes (canvid upload's default): a range's body stops
    // at the end of the chunk holding its start; a plain GET is completed into the whole file.
    const C: usize = 2_000_000;
    let range = |a: usize, b: usize| Some(format!("bytes {a}-{b}/{size}"));
    let video = |status, body: std::ops::Range<usize>, content_range| Want {
        status,
        body: Some(body),
        content_range,
    };
    let other = |status| Want {
        status,
        body: None,
        content_range: None,
    };
    let wants = [
        video(200, 0..size, None),
        video(206, 0..100, range(0, 99)),
        video(206, 0..C, range(0, C - 1)),
        video(206, 1_999_900..C, range(1_999_900, C - 1)),
        video(206, size - 100..size, range(size - 100, size - 1)),
        video(206, size - 100..size, range(size - 100, size - 1)),
        other(304),
        other(200),
        video(200, 0..size, None),
        other(404),
        other(404),
        video(200, 0..0, None),
    ];
    let mut differences = Vec::new();
    for ((method, path, headers), want) in cases.iter().zip(&wants) {
        let case = format!("{method} {path} {headers:?}");
        let (got, length) = canvid_serve(port, id, method, path, headers);
        assert_eq!(got.status, want.status, "{case}: {got:?}");
        assert_eq!(
            got.headers.get("content-range"),
            want.content_range.as_ref(),
            "{case}"
        );
        if let Some(body) = &want.body {
            assert_eq!(
                got.body_sha256,
                digest(&bytes[body.clone()]),
                "{case}: body"
            );
            assert_eq!(
                got.headers.get("content-type").map(String::as_str),
                Some("video/mp4"),
                "{case}"
            );
            assert_eq!(got.headers.get("etag"), Some(&etag), "{case}");
        }
        // The server frames the body: `Content-Length` is its length (HEAD: the file's; a 304
        // has none).
        let framed = match (*method, got.status) {
            (_, 304) => None,
            ("HEAD", _) => Some(size),
            _ => Some(got.body_len),
        };
        assert_eq!(length, framed, "{case}: Content-Length");
        let want = rt.block_on(reference(&client, id, method, path, headers));
        if got != want {
            differences.push(format!(
                "{case}\n  ic-http-gateway: {want:?}\n  canvid serve:    {got:?}"
            ));
        }
    }
    // The whole video, the time each path takes printed (docs/http.md quotes it; never
    // asserted): serve's browser port, and the library over serve's /api/ by HTTP.
    let started = std::time::Instant::now();
    let (whole, _) = canvid_serve(port, id, "GET", "/video", &[]);
    let ours = started.elapsed();
    assert_eq!(whole.body_sha256, digest(&bytes), "canvid serve body");
    let started = std::time::Instant::now();
    let theirs = rt.block_on(reference(&client, id, "GET", "/video", &[]));
    let library = started.elapsed();
    assert_eq!(theirs.body_sha256, digest(&bytes), "ic-http-gateway body");
    // The raw domain serves the same file, unverified, as one 200.
    let r = raw_http::Request::get("/video")
        .host(&format!("{id}.raw.localhost:{port}"))
        .send(port);
    assert_eq!((r.status, r.header("content-range")), (200, None));
    assert_eq!(digest(&r.body), digest(&bytes), "raw domain body");
    eprintln!(
        "whole video ({size} bytes): canvid serve's browser port {:.0} ms, ic-http-gateway over \
         the HTTP interface {:.0} ms",
        ours.as_secs_f64() * 1e3,
        library.as_secs_f64() * 1e3
    );
    serve.stop();
    assert!(
        differences.is_empty(),
        "{} of {} requests differ:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
}
