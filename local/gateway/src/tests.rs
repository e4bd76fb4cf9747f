use super::*;
use ic_http_certification::{HttpRequest, HttpResponse};
use std::io::{self, Read};
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

#[test]
fn builds_the_canister_request() {
    let headers = vec![
        ("Range".to_string(), "bytes=0-".to_string()),
        ("X-Other".to_string(), "1".to_string()),
    ];
    let r = to_canister_request("GET", "/video?t=1", headers.clone(), vec![]).unwrap();
    assert_eq!(r.method().as_str(), "GET");
    assert_eq!(r.url(), "/video?t=1");
    assert_eq!(r.headers(), headers.as_slice());
    assert_eq!(r.certificate_version(), Some(2));
    assert_eq!(
        to_canister_request("GET", "http://x.localhost:1/a?b", vec![], vec![])
            .unwrap()
            .url(),
        "/a?b"
    );
    assert!(to_canister_request("BAD METHOD", "/", vec![], vec![]).is_err());
    // The candid encoding decodes back as the IC's HttpRequest record.
    let bytes = candid::encode_one(&r).unwrap();
    assert_eq!(candid::decode_one::<HttpRequest>(&bytes).unwrap(), r);
}

#[test]
fn parses_content_range() {
    assert_eq!(parse_content_range("bytes 0-99/1000"), Some((0, 99, 1000)));
    assert_eq!(parse_content_range("bytes  5-5/6"), Some((5, 5, 6)));
    assert_eq!(parse_content_range("bytes */1000"), None);
    assert_eq!(parse_content_range("bytes 9-5/10"), None);
    assert_eq!(parse_content_range("bytes 0-10/10"), None);
    assert_eq!(parse_content_range("items 0-1/2"), None);
}

#[test]
fn refuses_non_loopback() {
    struct Nothing;
    impl Backend for Nothing {
        fn query(&self, _: Principal, _: &str, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
            Err(CallError::Rejected("x".into()))
        }
        fn update(&self, _: Principal, _: &str, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
            Err(CallError::Rejected("x".into()))
        }
    }
    let err = serve_backend(Arc::new(Nothing), "0.0.0.0:0".parse().unwrap())
        .err()
        .unwrap();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let handle = serve_backend(Arc::new(Nothing), "127.0.0.1:0".parse().unwrap()).unwrap();
    assert!(handle.port() > 0);
    assert!(handle
        .url_for(Principal::anonymous())
        .starts_with("http://2vxsx-fae.localhost:"));
    handle.shutdown();
}

/// An answer that does not verify is not passed on by the verified domain (503), only by
/// the raw one; upgraded answers are not checked.
#[test]
fn unverifiable_answers_are_refused_on_the_verified_domain() {
    struct Forger;
    impl Backend for Forger {
        fn query(&self, _: Principal, _: &str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
            let request: HttpRequest = candid::decode_one(&arg).unwrap();
            let upgrade = request.url().starts_with("/upgrade");
            let response = HttpResponse::builder()
                .with_status_code(ic_http_certification::StatusCode::OK)
                .with_headers(vec![("ic-certificate".into(), "version=2".into())])
                .with_body(b"forged".to_vec())
                .with_upgrade(upgrade)
                .build();
            Ok(candid::encode_one(response).unwrap())
        }
        fn update(&self, _: Principal, _: &str, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
            let response = HttpResponse::builder()
                .with_status_code(ic_http_certification::StatusCode::OK)
                .with_body(b"by consensus".to_vec())
                .build();
            Ok(candid::encode_one(response).unwrap())
        }
        fn verification(&self) -> Option<Verification> {
            Some(Verification {
                root_key_der: vec![7; 133],
                now_ns: 1_700_000_000_000_000_000,
            })
        }
    }
    let handle = serve_backend(Arc::new(Forger), "127.0.0.1:0".parse().unwrap()).unwrap();
    let get = |host: &str, path: &str| -> (u16, Vec<u8>) {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", handle.port())).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text[9..12].parse().unwrap();
        let body = raw[text.find("\r\n\r\n").unwrap() + 4..].to_vec();
        (status, body)
    };
    let (status, body) = get("2vxsx-fae.localhost", "/");
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("response verification failed"));
    assert_eq!(
        get("2vxsx-fae.raw.localhost", "/"),
        (200, b"forged".to_vec())
    );
    assert_eq!(
        get("2vxsx-fae.localhost", "/upgrade"),
        (200, b"by consensus".to_vec())
    );
    let log = handle.log();
    assert_eq!(
        log.iter()
            .map(|e| (e.status, e.verified))
            .collect::<Vec<_>>(),
        [(503, false), (200, false), (200, false)]
    );
    handle.shutdown();
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
fn unsafe_headers_are_recognised() {
    use crate::stream::is_safe_header;
    assert!(is_safe_header("content-type", "video/mp4; codecs=\"a, b\""));
    assert!(is_safe_header("x-a", "tab\tok"));
    assert!(is_safe_header("x-a", ""));
    for (n, v) in [
        ("x-a", "a\r\nSet-Cookie: s=1"),
        ("x-a", "a\nb"),
        ("x-a", "a\rb"),
        ("x-a", "a\0b"),
        ("x-a", "a\x7fb"),
        ("x-a\r\nSet-Cookie", "1"),
        ("x a", "1"),
        ("x:a", "1"),
        ("", "1"),
    ] {
        assert!(!is_safe_header(n, v), "{n:?}: {v:?}");
    }
}

/// A raw HTTP/1.1 GET to the gateway: (status line and headers, body).
fn raw_get(port: u16, host: &str, path: &str) -> (String, Vec<u8>) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&raw[..end]).to_string(),
        raw[end + 4..].to_vec(),
    )
}

/// A canister cannot split the gateway's response (security review L1): a header whose value
/// holds CR/LF is dropped, the others are passed on.
#[test]
fn l1_headers_with_control_characters_are_dropped() {
    struct Splitter;
    impl Backend for Splitter {
        fn query(&self, _: Principal, _: &str, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
            let response = HttpResponse::builder()
                .with_status_code(ic_http_certification::StatusCode::OK)
                .with_headers(vec![
                    ("x-injected".into(), "a\r\nSet-Cookie: s=1".into()),
                    ("x-split\r\nSet-Cookie".into(), "s=2".into()),
                    ("x-kept".into(), "fine".into()),
                ])
                .with_body(b"body".to_vec())
                .build();
            Ok(candid::encode_one(response).unwrap())
        }
        fn update(&self, _: Principal, _: &str, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
            Err(CallError::Rejected("x".into()))
        }
    }
    let handle = serve_backend(Arc::new(Splitter), "127.0.0.1:0".parse().unwrap()).unwrap();
    let (head, body) = raw_get(handle.port(), "2vxsx-fae.localhost", "/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"body");
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert!(
        lines.iter().any(|l| l.eq_ignore_ascii_case("x-kept: fine")),
        "{head}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.to_ascii_lowercase().starts_with("set-cookie")),
        "{head}"
    );
    assert!(!head.to_ascii_lowercase().contains("x-injected"), "{head}");
    assert!(!head.contains("s=1") && !head.contains("s=2"), "{head}");
    handle.shutdown();
}

/// The redirect on the wire: 307 with the canister's own origin, logged without a call.
#[test]
fn canister_id_request_gets_a_307() {
    struct Unreachable;
    impl Backend for Unreachable {
        fn query(&self, _: Principal, _: &str, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
            panic!("a redirected request calls no canister")
        }
        fn update(&self, _: Principal, _: &str, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
            panic!("a redirected request calls no canister")
        }
    }
    let handle = serve_backend(Arc::new(Unreachable), "127.0.0.1:0".parse().unwrap()).unwrap();
    let port = handle.port();
    let (head, _) = raw_get(
        port,
        &format!("127.0.0.1:{port}"),
        "/video?canisterId=2vxsx-fae&t=3",
    );
    assert!(head.starts_with("HTTP/1.1 307"), "{head}");
    let location = head
        .split("\r\n")
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or(l.strip_prefix("location: "))
        })
        .unwrap_or_else(|| panic!("no Location: {head}"));
    assert_eq!(
        location,
        format!("http://2vxsx-fae.localhost:{port}/video?t=3")
    );
    let log = handle.log();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].status, log[0].canister), (307, None));
    handle.shutdown();
}
