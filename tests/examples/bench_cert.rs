//! Cost of certifying a finished video's HTTP answers in the real video canister, and how a
//! large video's certification tree is spread over timer messages (docs/http.md, "Cost").
//!
//! ```text
//! scripts/build-wasm.sh && cargo run --release -p canvid-tests --example bench_cert
//! ```
//!
//! The tree's cost depends on the number of chunks, not on their size, so the videos here use
//! 1,000-byte chunks (uploading thousands of 2 MB chunks would take the embedded replica many
//! minutes and measure nothing more). Every chunk is checked to be certified at the end.
//! `CANVID_CERT_CHUNKS=50,150,600` picks the chunk counts (default 50, 150, 1000; the docs used 50,150,600).
//! Figures are the embedded replica's instruction counts (wasmi fuel).

use canvid_tests::backend::{Backend, BackendExt};
use canvid_tests::clients::{ok, spec_for};
use canvid_tests::data::{principal, GenFile};
use canvid_tests::deploy::standalone_video;
use canvid_tests::http_types::{HttpRequest, HttpResponse};
use canvid_tests::ReplicaBackend;
use serde_bytes::ByteBuf;

const CHUNK: u64 = 1_000;

/// Does the query answer `GET /video` with `Range: bytes=<start>-` from the tree (a certified
/// 206) rather than upgrading it to an update call?
fn certified(b: &ReplicaBackend, video: candid::Principal, start: u64) -> bool {
    let request = HttpRequest {
        method: "GET".into(),
        url: "/video".into(),
        headers: vec![("Range".into(), format!("bytes={start}-"))],
        body: ByteBuf::new(),
        certificate_version: Some(2),
    };
    let r: HttpResponse = b
        .query1(video, principal("viewer"), "http_request", &request)
        .expect("http_request answers");
    match r.upgrade {
        Some(true) => false,
        _ => {
            assert_eq!(r.status_code, 206, "a certified chunk is a 206");
            assert!(
                r.headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("ic-certificate")),
                "a certified answer carries IC-Certificate"
            );
            true
        }
    }
}

fn main() {
    let b = ReplicaBackend::new();
    let owner = principal("bench-owner");
    println!("| chunks | `finish_upload` instructions | chunks certified by it | timer messages after it |");
    println!("| --- | --- | --- | --- |");
    let mut costs = Vec::new();
    let sizes: Vec<u64> = std::env::var("CANVID_CERT_CHUNKS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![50, 150, 1_000]);
    for chunks in sizes {
        let video = standalone_video(&b, owner, None, 1_000_000_000_000_000);
        let file = GenFile::new(chunks, chunks * CHUNK, CHUNK);
        ok(
            "begin_upload",
            video.begin_upload(owner, &spec_for(&file, true)),
        );
        video.upload_chunks(owner, &file, None);
        let (meta, cost) = video.finish_upload_with_cost(owner);
        ok("finish_upload", meta);
        let finish = cost.expect("replica reports costs").instructions;
        // How far did finish_upload itself get? (Chunks are certified in order.)
        let done_in_finish = (0..chunks)
            .rev()
            .find(|k| certified(&b, video.id, k * CHUNK))
            .map_or(0, |k| k + 1);
        let mut timer_rounds = 0;
        while !certified(&b, video.id, (chunks - 1) * CHUNK) {
            b.tick();
            timer_rounds += 1;
            assert!(timer_rounds < 10_000, "the tree build never finishes");
        }
        for k in 0..chunks {
            assert!(certified(&b, video.id, k * CHUNK), "chunk {k} certified");
        }
        println!("| {chunks} | {finish} | {done_in_finish} | {timer_rounds} |");
        costs.push((chunks, finish, done_in_finish));
    }
    // Marginal cost per chunk from the two runs that finished inside `finish_upload`.
    let complete: Vec<_> = costs.iter().filter(|(n, _, done)| n == done).collect();
    if let [a, b, ..] = complete.as_slice() {
        println!();
        println!(
            "marginal cost: {:.2} M instructions per chunk ({} → {} chunks)",
            (b.1 - a.1) as f64 / (b.0 - a.0) as f64 / 1e6,
            a.0,
            b.0
        );
    }
}
