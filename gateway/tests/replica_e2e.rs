//! End to end on the embedded replica: a real canister wasm (gateway/fixtures/http-canister,
//! serving a deterministic video through canvid-http) behind the gateway, read through TCP.
//!
//! Needs the fixture wasm: `gateway/fixtures/build.sh` (or set CANVID_HTTP_FIXTURE_WASM).
//! Run: `cargo test -p canvid-gateway --test replica_e2e -- --ignored`.
#![cfg(feature = "replica")]

use canvid_replica::Replica;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

const SIZE: usize = 2_500_123;

fn video_bytes(size: usize) -> Vec<u8> {
    (0..size as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn get(
    port: u16,
    host: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in extra {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    s.write_all(format!("{req}\r\n").as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
#[ignore = "needs gateway/fixtures/http-canister.wasm (gateway/fixtures/build.sh)"]
fn video_through_gateway_and_replica() {
    let path = std::env::var("CANVID_HTTP_FIXTURE_WASM").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/http-canister.wasm").to_string()
    });
    let wasm = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run gateway/fixtures/build.sh"));
    let replica = Arc::new(Replica::new());
    let canister = replica.create_canister();
    replica.add_cycles(canister, 100_000_000_000_000);
    replica.install_canister(canister, wasm, candid::encode_args(()).unwrap(), None);

    let gw = canvid_gateway::serve(replica.clone(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let host = format!("{canister}.localhost:{}", gw.port());
    let bytes = video_bytes(SIZE);

    let (status, headers, body) = get(gw.port(), &host, "/video", &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-length"), Some("2500123"));
    assert!(header(&headers, "ic-certificate").is_some_and(|v| v.contains("version=2")));
    assert!(body == bytes, "streamed body differs");
    let log = gw.log();
    assert_eq!(
        log.iter().map(|e| e.range.clone()).collect::<Vec<_>>(),
        vec![
            None,
            Some("bytes=1000000-".into()),
            Some("bytes=2000000-".into())
        ]
    );
    assert!(log.iter().all(|e| !e.upgraded));

    // Certified grid chunk, then an off-grid seek served by http_request_update.
    let (status, headers, body) = get(gw.port(), &host, "/", &[("Range", "bytes=2000000-")]);
    assert_eq!(
        (status, header(&headers, "content-range")),
        (206, Some("bytes 2000000-2500122/2500123"))
    );
    assert!(body == bytes[2_000_000..]);
    let (status, headers, body) = get(gw.port(), &host, "/video", &[("Range", "bytes=1234567-")]);
    assert_eq!(
        (status, header(&headers, "content-range")),
        (206, Some("bytes 1234567-1999999/2500123"))
    );
    assert!(body == bytes[1_234_567..2_000_000]);
    assert!(gw.log().last().unwrap().upgraded);

    let (status, _, body) = get(gw.port(), &host, "/metadata.json", &[]);
    assert_eq!(
        (status, body.as_slice()),
        (200, &br#"{"title":"fixture"}"#[..])
    );
    assert_eq!(get(gw.port(), &host, "/missing", &[]).0, 404);
    gw.shutdown();
}

/// Instructions (embedded measure) to build the certification tree, per chunk.
#[test]
#[ignore = "needs gateway/fixtures/http-canister.wasm (gateway/fixtures/build.sh)"]
fn certification_tree_cost_in_wasm() {
    let path = std::env::var("CANVID_HTTP_FIXTURE_WASM").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/http-canister.wasm").to_string()
    });
    let wasm = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run gateway/fixtures/build.sh"));
    let replica = Replica::new();
    let canister = replica.create_canister();
    replica.add_cycles(canister, 100_000_000_000_000);
    replica.install_canister(canister, wasm, candid::encode_args(()).unwrap(), None);
    for chunks in [100u64, 1_000] {
        let reply = replica
            .update_call(
                canister,
                candid::Principal::anonymous(),
                "bench_certify",
                candid::encode_one(chunks).unwrap(),
            )
            .unwrap();
        let (entries, instructions): (u64, u64) = candid::decode_args(&reply).unwrap();
        println!(
            "{chunks} chunks: {entries} entries, {instructions} instructions ({} per chunk)",
            instructions / chunks
        );
        assert_eq!(entries, 2 * (4 + 2 * (chunks - 1)) + 2);
        assert!(instructions > 0);
    }
}
