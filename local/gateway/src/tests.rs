//! The pure parts (which canister, the redirect) and the server on a real replica: the video
//! canister's answers through the library, verification on and off, the gateway's own
//! answers, and the IC HTTP interface on the same port.

use super::*;
use crate::server::serve_verifying_with;
use canvid_devkit::raw_http::Request;
use canvid_replica::Replica;
use std::sync::Arc;

#[test]
fn resolves_canister_from_host_and_query() {
    let id = Principal::from_text("rrkah-fqaaa-aaaaa-aaaaq-cai").unwrap();
    assert_eq!(
        resolve_canister(Some("rrkah-fqaaa-aaaaa-aaaaq-cai.localhost:4943"), "/"),
        Some(id)
    );
    assert_eq!(
        resolve_canister(Some("RRKAH-FQAAA-AAAAA-AAAAQ-CAI.localhost"), "/"),
        Some(id)
    );
    assert_eq!(
        resolve_canister(Some("rrkah-fqaaa-aaaaa-aaaaq-cai.raw.localhost:80"), "/x"),
        Some(id)
    );
    assert_eq!(
        resolve_canister(
            Some("127.0.0.1:4943"),
            "/video?canisterId=rrkah-fqaaa-aaaaa-aaaaq-cai"
        ),
        Some(id)
    );
    assert_eq!(
        resolve_canister(
            Some("localhost:1"),
            "/?a=1&canisterId=rrkah-fqaaa-aaaaa-aaaaq-cai#frag"
        ),
        Some(id)
    );
    assert_eq!(resolve_canister(Some("localhost:1"), "/"), None);
    assert_eq!(resolve_canister(Some("a.b.localhost"), "/"), None);
    assert_eq!(
        resolve_canister(Some("not-a-principal.localhost"), "/"),
        None
    );
    assert_eq!(resolve_canister(None, "/?canisterId=garbage"), None);
}

/// `?canisterId=` on a host that is not the canister's subdomain is sent to the canister's own
/// origin (security review L2); on the subdomain it is an ordinary parameter.
#[test]
fn l2_canister_id_requests_are_redirected_to_the_canister_origin() {
    let id = "rrkah-fqaaa-aaaaa-aaaaq-cai";
    let cases = [
        (
            Some("127.0.0.1:4943"),
            format!("/video?canisterId={id}"),
            Some(format!("http://{id}.localhost:4943/video")),
        ),
        (
            Some("localhost:8080"),
            format!("/a/b?x=1&canisterId={id}&y=2#frag"),
            Some(format!("http://{id}.localhost:8080/a/b?x=1&y=2")),
        ),
        (
            Some("[::1]:9"),
            format!("/?canisterId={id}"),
            Some(format!("http://{id}.localhost:9/")),
        ),
        (
            Some("localhost"),
            format!("http://localhost/p?canisterId={id}"),
            Some(format!("http://{id}.localhost/p")),
        ),
        // Already on a canister's origin: served there.
        (
            Some(&*format!("{id}.localhost:4943")),
            format!("/?canisterId={id}"),
            None,
        ),
        (
            Some("2vxsx-fae.raw.localhost:1"),
            format!("/?canisterId={id}"),
            None,
        ),
        (Some("localhost:1"), "/?canisterId=garbage".into(), None),
        (Some("localhost:1"), "/".into(), None),
        (None, format!("/?canisterId={id}"), None),
    ];
    for (host, url, want) in cases {
        assert_eq!(own_origin_redirect(host, &url), want, "{host:?} {url}");
    }
}

#[test]
fn refuses_non_loopback() {
    let err = serve(Arc::new(Replica::new()), "0.0.0.0:0".parse().unwrap())
        .err()
        .expect("a non-loopback address is refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// A video canister holding `bytes` in chunks of [`CHUNK`], its answers certified.
const CHUNK: usize = 100_000;
fn video(replica: &Replica, bytes: &[u8]) -> Principal {
    use canvid_types::video::{ChunkUpload, UploadSpec, VideoInit};
    let owner = Principal::from_slice(&[7; 29]);
    let id = replica.create_canister();
    replica.add_cycles(id, 100_000_000_000_000);
    let init = VideoInit {
        owner,
        creator: owner,
        index: None,
        title: "gateway test".into(),
        description: String::new(),
        tags: vec![],
        funded_by: None,
        platform_fee: None,
    };
    replica.install_canister(
        id,
        canvid_devkit::load_wasm_gz("video"),
        candid::encode_one(init).unwrap(),
        None,
    );
    let call = |method: &str, arg: Vec<u8>| {
        replica
            .update_call(id, owner, method, arg)
            .unwrap_or_else(|e| panic!("{method}: {e:?}"))
    };
    let spec = UploadSpec {
        path: None,
        rendition: None,
        mime_type: "video/mp4".into(),
        total_size: bytes.len() as u64,
        chunk_size: CHUNK as u32,
        chunk_digests: None,
        file_digest: None,
        duration_ms: None,
        encryption: None,
    };
    call("begin_upload", candid::encode_one(spec).unwrap());
    for (index, data) in bytes.chunks(CHUNK).enumerate() {
        let chunk = ChunkUpload {
            path: None,
            index: index as u32,
            data: serde_bytes::ByteBuf::from(data.to_vec()),
        };
        call("put_chunk", candid::encode_one(chunk).unwrap());
    }
    call("finish_upload", candid::encode_args(()).unwrap());
    // Certification runs in timer steps.
    for _ in 0..10 {
        replica.tick();
    }
    id
}

fn file() -> Vec<u8> {
    (0..350_123u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A video through the library: a plain GET completed from the canister's 206 into one 200 of
/// the whole file (on the verified and the raw domain), a Range passed through, an off-grid
/// Range answered by `http_request_update`, HEAD, a 404, and what the log says of each.
#[test]
fn video_through_the_library() {
    let replica = Arc::new(Replica::new());
    let bytes = file();
    let id = video(&replica, &bytes);
    let gw = serve(replica, "127.0.0.1:0".parse().unwrap()).unwrap();
    let port = gw.port();
    let host = format!("{id}.localhost:{port}");
    assert_eq!(gw.url_for(id), format!("http://{host}/"));
    let raw = format!("{id}.raw.localhost:{port}");
    for h in [&host, &raw] {
        let r = Request::get("/video").host(h).send(port);
        assert_eq!(r.status, 200, "{h}");
        assert_eq!(r.header("content-length"), Some("350123"), "{}", r.head);
        assert_eq!(r.header("content-range"), None, "{}", r.head);
        assert_eq!(r.header("content-type"), Some("video/mp4"));
        assert!(r.body == bytes, "{h}: the whole file");
    }
    let r = Request::get("/video")
        .host(&host)
        .header("Range", "bytes=100000-")
        .send(port);
    assert_eq!(
        (r.status, r.header("content-range")),
        (206, Some("bytes 100000-199999/350123"))
    );
    assert!(r.body == bytes[100_000..200_000]);
    let r = Request::get("/video")
        .host(&host)
        .header("Range", "bytes=150000-150009")
        .send(port);
    assert_eq!(
        (r.status, r.header("content-range")),
        (206, Some("bytes 150000-150009/350123"))
    );
    assert_eq!(r.body, &bytes[150_000..150_010]);
    let r = Request::new("HEAD", "/video").host(&host).send(port);
    assert_eq!(
        (r.status, r.header("content-length")),
        (200, Some("350123"))
    );
    assert!(r.body.is_empty());
    assert_eq!(Request::get("/nope").host(&host).send(port).status, 404);

    let log = gw.log();
    let got: Vec<_> = log
        .iter()
        .map(|e| {
            (
                e.method.as_str(),
                e.range.as_deref(),
                e.status,
                e.body_len,
                e.upgraded,
                e.verified,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("GET", None, 200, 350_123, false, true),
            ("GET", None, 200, 350_123, false, false),
            ("GET", Some("bytes=100000-"), 206, 100_000, false, true),
            ("GET", Some("bytes=150000-150009"), 206, 10, true, false),
            ("HEAD", None, 200, 0, false, true),
            ("GET", None, 404, 10, false, true),
        ],
        "{log:#?}"
    );
    assert!(log.iter().all(|e| e.canister == Some(id) && !e.streamed));
    gw.shutdown();
}

/// Under another replica's root key nothing gets through: on `<id>.localhost` the library's
/// response verification refuses the answer, and even on the raw domain (no response
/// verification) the agent refuses the node's query signature, whose key it checks against the
/// root key.
#[test]
fn answers_under_a_foreign_root_key_are_refused() {
    let replica = Arc::new(Replica::new());
    let bytes = file();
    let id = video(&replica, &bytes);
    let foreign = Replica::with_seed([9; 32]).root_key_der();
    assert_ne!(foreign, replica.root_key_der());
    let gw = serve_verifying_with(replica, "127.0.0.1:0".parse().unwrap(), foreign).unwrap();
    let port = gw.port();
    let r = Request::get("/metadata.json")
        .host(&format!("{id}.localhost:{port}"))
        .send(port);
    assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
    let r = Request::get("/metadata.json")
        .host(&format!("{id}.raw.localhost:{port}"))
        .send(port);
    assert!(r.status >= 500, "{}", String::from_utf8_lossy(&r.body));
    let log = gw.log();
    assert_eq!(log.len(), 2);
    assert!(
        log.iter().all(|e| e.status >= 500 && !e.verified),
        "{log:#?}"
    );
    gw.shutdown();
}

/// The gateway's own answers, logged without a canister: the 307 to the canister's origin and
/// the 400 for a request naming no canister; a canister that does not exist is the library's
/// 404. `/api/` on the same port is the IC HTTP interface and never reaches the gateway.
#[test]
fn own_answers_and_the_http_interface_on_one_port() {
    let replica = Arc::new(Replica::new());
    let gw = serve(replica.clone(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let port = gw.port();
    let r = Request::get("/video?canisterId=2vxsx-fae&t=3")
        .host(&format!("127.0.0.1:{port}"))
        .send(port);
    assert_eq!(r.status, 307);
    assert_eq!(
        r.header("location"),
        Some(format!("http://2vxsx-fae.localhost:{port}/video?t=3").as_str())
    );
    let r = Request::get("/")
        .host(&format!("127.0.0.1:{port}"))
        .send(port);
    assert_eq!(r.status, 400);
    let missing = Principal::from_text("rrkah-fqaaa-aaaaa-aaaaq-cai").unwrap();
    let r = Request::get("/")
        .host(&format!("{missing}.localhost:{port}"))
        .send(port);
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    let log = gw.log();
    assert_eq!(
        log.iter()
            .map(|e| (e.status, e.canister))
            .collect::<Vec<_>>(),
        [(307, None), (400, None), (404, Some(missing))],
        "{log:#?}"
    );
    let r = Request::get("/api/v2/status").send(port);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/cbor"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(gw.log().len(), 3);
    gw.shutdown();
}

/// A canister cannot split the gateway's response (security review L1): a header whose value
/// holds CR/LF, or whose name is not a token, cannot be written by the `http` types the library
/// builds its answer with, so the library refuses the whole answer (500) and nothing of it
/// reaches the client. The canister here is a transport that answers the agent's query itself
/// (no real canister emits such a header: the video canister's MIME types are checked), on the
/// raw domain (no certificate to make).
#[test]
fn l1_headers_that_cannot_be_written_are_refused() {
    use ic_agent::agent::HttpService;
    use ic_agent::AgentError;
    use serde_cbor::Value;

    #[derive(candid::CandidType, serde::Deserialize)]
    struct HttpResponse {
        status_code: u16,
        headers: Vec<(String, String)>,
        body: serde_bytes::ByteBuf,
        upgrade: Option<bool>,
    }
    #[derive(Debug)]
    struct Splitter(Vec<(String, String)>);
    #[async_trait::async_trait]
    impl HttpService for Splitter {
        async fn call<'a>(
            &'a self,
            req: &'a (dyn Fn() -> Result<http::Request<bytes::Bytes>, AgentError> + Send + Sync),
            _: usize,
            _: Option<usize>,
        ) -> Result<http::Response<bytes::Bytes>, AgentError> {
            assert!(req()?.uri().path().ends_with("/query"));
            let reply = HttpResponse {
                status_code: 200,
                headers: self.0.clone(),
                body: serde_bytes::ByteBuf::from(b"body".to_vec()),
                upgrade: None,
            };
            let cbor = Value::Map(
                [
                    (Value::Text("status".into()), Value::Text("replied".into())),
                    (
                        Value::Text("reply".into()),
                        Value::Map(
                            [(
                                Value::Text("arg".into()),
                                Value::Bytes(candid::encode_one(reply).unwrap()),
                            )]
                            .into(),
                        ),
                    ),
                ]
                .into(),
            );
            Ok(http::Response::builder()
                .status(200)
                .header("content-type", "application/cbor")
                .body(serde_cbor::to_vec(&cbor).unwrap().into())
                .unwrap())
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = |headers: &[(&str, &str)]| {
        let agent = ic_agent::Agent::builder()
            .with_url("http://127.0.0.1:1")
            .with_arc_http_middleware(Arc::new(Splitter(
                headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            )))
            .with_verify_query_signatures(false)
            .build()
            .unwrap();
        let gateway = crate::gateway::Gateway {
            client: ic_http_gateway::HttpGatewayClient::builder()
                .with_agent(agent)
                .build()
                .unwrap(),
            log: Default::default(),
            verbose: false,
        };
        let request = http::Request::get("/").body(bytes::Bytes::new()).unwrap();
        let response =
            rt.block_on(gateway.call(Principal::anonymous(), request, true, "GET", "/", None));
        let (parts, body) = response.into_parts();
        let body = rt.block_on(http_body_util::BodyExt::collect(body));
        (parts, body.unwrap().to_bytes())
    };
    // A writable header passes.
    let (parts, body) = answer(&[("x-kept", "fine")]);
    assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"body"[..]));
    assert_eq!(parts.headers["x-kept"], "fine");
    for bad in [
        ("x-injected", "a\r\nSet-Cookie: s=1"),
        ("x-split\r\nSet-Cookie", "s=2"),
        ("x-a", "a\nb"),
        ("x a", "1"),
    ] {
        let (parts, body) = answer(&[("x-kept", "fine"), bad]);
        assert_eq!(parts.status.as_u16(), 500, "{bad:?}");
        assert!(parts.headers.get("set-cookie").is_none(), "{bad:?}");
        assert!(parts.headers.get("x-kept").is_none(), "{bad:?}");
        assert!(!body.windows(4).any(|w| w == b"body"), "{bad:?}");
    }
}
