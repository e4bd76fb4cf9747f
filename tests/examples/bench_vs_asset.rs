//! canvid's video canister side by side with DFINITY's asset canister (ic-certified-assets 0.3.0
//! from crates.io, `bench/asset-canister`), on one embedded replica, in one run: the same
//! generated files uploaded into both (canvid: `begin_upload`, 2,000,000-byte `put_chunk`s,
//! `finish_upload` and its certification timers; the asset canister: its batch API as `ic-asset`
//! calls it), then
//!
//! * cycles per GiB uploaded: the canister's balance before minus after (ingress + execution);
//! * wall time of the upload (client work included: generating the bytes, native SHA-256);
//! * heap and stable memory after the upload (`canister_status` `memory_metrics`);
//! * query instructions per byte of a 2 MB read through `http_request` (canvid: a certified 206
//!   for `Range: bytes=kC-`; the asset canister ignores `Range`: its `http_request` answers 200
//!   with the first 1,900,000-byte piece, and each later piece comes from
//!   `http_request_streaming_callback`, uncertified on its own);
//! * an upgrade of each after the largest upload (the asset canister serializes its whole heap
//!   state into stable memory in `pre_upgrade`).
//!
//! ```text
//! scripts/build-wasm.sh && cargo run --release -p canvid-tests --example bench_vs_asset
//! ```
//!
//! `CANVID_VS_ASSET_SIZES=100000000,1073741824` (the default) picks the file sizes in bytes.
//! `CANVID_VS_ASSET_FILL=1` then also fills a fresh asset canister with `create_chunk`s until one
//! is refused, to show where its heap ends (≈ 3 GiB of heap: several minutes, as much RAM).
//! Every byte read back is compared with the file. Figures go to docs/performance.md; none is
//! asserted. Wall times depend on the machine and its load.

use canvid_tests::asset_canister::{
    self as asset, AssetHttpResponse, StreamingCallbackHttpResponse,
};
use canvid_tests::backend::{Backend, BackendExt};
use canvid_tests::clients::{ok, spec_for, Video};
use canvid_tests::deploy::{standalone_video, T};
use canvid_tests::http_types::{HttpRequest, HttpResponse};
use canvid_tests::{principal, wasm, GenFile, Principal, ReplicaBackend};
use canvid_types::video::VideoStatus;
use serde_bytes::ByteBuf;
use std::time::{Duration, Instant};

const CHUNK: u64 = 2_000_000;
const GIB: f64 = (1u64 << 30) as f64;
/// Reads measured per canister and size (pieces 1..=READS).
const READS: u64 = 5;

struct Upload {
    cycles: u128,
    time: Duration,
    updates: u32,
    instructions: u64,
    heap: u64,
    stable: u64,
}

impl Upload {
    fn per_gib(&self, size: u64) -> f64 {
        self.cycles as f64 * GIB / size as f64 / 1e12
    }
}

fn get(url: &str, range_start: Option<u64>) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        url: url.into(),
        headers: range_start
            .map(|s| vec![("Range".to_string(), format!("bytes={s}-"))])
            .unwrap_or_default(),
        body: ByteBuf::new(),
        certificate_version: Some(2),
    }
}

/// Is the 206 for `Range: bytes=<start>-` served from the certification tree (not upgraded)?
fn certified(b: &ReplicaBackend, video: Principal, start: u64) -> bool {
    let r: HttpResponse = b
        .query1(
            video,
            principal("viewer"),
            "http_request",
            &get("/video", Some(start)),
        )
        .expect("http_request");
    r.upgrade != Some(true)
}

fn upload_canvid<'a>(
    b: &'a ReplicaBackend,
    owner: Principal,
    file: &GenFile,
) -> (Video<'a>, Upload) {
    let cycles = file.size as u128 * 3_000 + 100 * T;
    let video = standalone_video(b, owner, None, cycles);
    let t0 = Instant::now();
    let before = b.cycle_balance(video.id);
    let spec = spec_for(file, true);
    ok("begin_upload", video.begin_upload(owner, &spec));
    let put = video.upload_chunks(owner, file, None);
    let (meta, finish) = video.finish_upload_with_cost(owner);
    let meta = ok("finish_upload", meta);
    assert_eq!(meta.status, VideoStatus::Ready);
    // The certification tree of a large video is finished by timers: the upload is done (and
    // paid) when the last chunk answers certified.
    let after_finish = b.cycle_balance(video.id);
    let last = (file.chunk_count() as u64 - 1) * CHUNK;
    let mut rounds = 0;
    let mut per_round = Vec::new();
    while !certified(b, video.id, last) {
        let balance = b.cycle_balance(video.id);
        b.tick();
        per_round.push(format!(
            "{:.2}",
            (balance - b.cycle_balance(video.id)) as f64 / 1e9
        ));
        rounds += 1;
        assert!(rounds < 100_000, "certification never finishes");
    }
    let time = t0.elapsed();
    let certified_balance = b.cycle_balance(video.id);
    // ic-cdk-timers runs each timer in a call to the canister itself, and the IC takes a
    // reservation for every outgoing call (the callback's whole instruction limit + the largest
    // reply: ≈ 42.1 B cycles) that comes back when the reply is processed. Let the last timer's
    // call finish before reading the balance (time advances: rounds alone may not deliver it).
    for _ in 0..10 {
        b.tick();
    }
    b.advance_time(Duration::from_secs(60));
    for _ in 0..10 {
        b.tick();
    }
    let cycles = before - b.cycle_balance(video.id);
    println!(
        "canvid, {} bytes: {:.2} B cycles until finish_upload answered, {:.2} B more in {rounds} rounds until the last chunk was certified ([{}] B per round), {:+.2} B when the last timer's self-call answered",
        file.size,
        (before - after_finish) as f64 / 1e9,
        (after_finish - certified_balance) as f64 / 1e9,
        per_round.join(", "),
        (b.cycle_balance(video.id) as f64 - certified_balance as f64) / 1e9
    );
    let (heap, stable) = asset::memory(b, video.id, owner);
    let upload = Upload {
        cycles,
        time,
        updates: file.chunk_count() + 2,
        instructions: put + finish.map_or(0, |c| c.instructions),
        heap,
        stable,
    };
    (video, upload)
}

fn upload_asset(b: &ReplicaBackend, owner: Principal, file: &GenFile) -> (Principal, Upload) {
    let cycles = file.size as u128 * 3_000 + 100 * T;
    let id = asset::install(b, owner, cycles);
    let t0 = Instant::now();
    let before = b.cycle_balance(id);
    let stats = asset::upload(b, id, owner, "/video.mp4", "video/mp4", file)
        .unwrap_or_else(|e| panic!("upload of {} bytes into the asset canister: {e}", file.size));
    let time = t0.elapsed();
    let cycles = before - b.cycle_balance(id);
    let (heap, stable) = asset::memory(b, id, owner);
    let upload = Upload {
        cycles,
        time,
        updates: stats.updates,
        instructions: stats.instructions,
        heap,
        stable,
    };
    (id, upload)
}

/// Average query instructions per byte of canvid's certified 206 for `bytes=kC-`, k = 1..=READS.
fn canvid_reads(b: &ReplicaBackend, video: Principal, file: &GenFile) -> f64 {
    let (mut instructions, mut bytes) = (0u64, 0u64);
    for k in 1..=READS.min(file.chunk_count() as u64 - 1) {
        let start = k * CHUNK;
        let (r, cost) = b.query1_with_cost::<_, HttpResponse>(
            video,
            principal("viewer"),
            "http_request",
            &get("/video", Some(start)),
        );
        let r = r.expect("http_request");
        assert_eq!(r.status_code, 206);
        assert!(r.header("ic-certificate").is_some(), "certified");
        let len = r.body.len() as u64;
        assert!(r.body.as_ref() == file.range(start, len).as_slice());
        instructions += cost.expect("replica cost").instructions;
        bytes += len;
    }
    instructions as f64 / bytes as f64
}

/// The asset canister: `http_request` (asked for `bytes=1900000-`, it answers 200 with the first
/// piece) and the streaming callback for pieces 1..=READS. Instructions per byte of each.
fn asset_reads(b: &ReplicaBackend, id: Principal, file: &GenFile) -> (f64, u16, f64) {
    let viewer = principal("viewer");
    let (first, cost) = b.query1_with_cost::<_, AssetHttpResponse>(
        id,
        viewer,
        "http_request",
        &get("/video.mp4", Some(asset::MAX_CHUNK_SIZE)),
    );
    let first = first.expect("http_request");
    assert!(first.header("ic-certificate").is_some(), "certified");
    let len = first.body.len() as u64;
    assert!(first.body.as_ref() == file.range(0, len).as_slice());
    let http = cost.expect("replica cost").instructions as f64 / len as f64;
    let mut token = first.token().cloned().expect("a multi-piece asset streams");
    let (mut instructions, mut bytes) = (0u64, 0u64);
    for k in 1..=READS {
        assert_eq!(token.index, candid::Nat::from(k));
        let (r, cost) = b.query1_with_cost::<_, StreamingCallbackHttpResponse>(
            id,
            viewer,
            "http_request_streaming_callback",
            &token,
        );
        let r = r.expect("http_request_streaming_callback");
        let start = k * asset::MAX_CHUNK_SIZE;
        assert!(r.body.as_ref() == file.range(start, r.body.len() as u64).as_slice());
        instructions += cost.expect("replica cost").instructions;
        bytes += r.body.len() as u64;
        match r.token {
            Some(t) => token = t,
            None => break,
        }
    }
    (http, first.status_code, instructions as f64 / bytes as f64)
}

/// Uploads 1,900,000-byte pieces into one batch of a fresh asset canister until it refuses one.
fn fill_asset_canister(b: &ReplicaBackend, owner: Principal) {
    let id = asset::install(b, owner, 100_000 * T);
    let batch: asset::CreateBatchResponse = {
        let arg = candid::encode_args(()).expect("()");
        let r = b
            .update_raw(id, owner, "create_batch", arg)
            .expect("create_batch");
        candid::decode_one(&r).expect("create_batch reply")
    };
    let piece = ByteBuf::from(GenFile::new(7, asset::MAX_CHUNK_SIZE, CHUNK).bytes());
    let t0 = Instant::now();
    let mut stored = 0u64;
    loop {
        let arg = asset::CreateChunkArg {
            batch_id: batch.batch_id.clone(),
            content: piece.clone(),
        };
        match b.update1::<_, asset::CreateChunkResponse>(id, owner, "create_chunk", &arg) {
            Ok(_) => stored += asset::MAX_CHUNK_SIZE,
            Err(e) => {
                let (heap, stable) = asset::memory(b, id, owner);
                println!(
                    "asset canister full after {stored} bytes ({:.3} GiB) in {:.0} s: heap / stable {} / {}; refused with {e}",
                    stored as f64 / GIB,
                    t0.elapsed().as_secs_f64(),
                    mb(heap),
                    mb(stable)
                );
                return;
            }
        }
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn main() {
    let sizes: Vec<u64> = std::env::var("CANVID_VS_ASSET_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000_000, 1 << 30]);
    let b = ReplicaBackend::new();
    let owner = principal("bench-owner");
    let mut last = None;
    for (i, &size) in sizes.iter().enumerate() {
        let file = GenFile::new(1_600 + i as u64, size, CHUNK);
        let (video, c) = upload_canvid(&b, owner, &file);
        let (assets, a) = upload_asset(&b, owner, &file);
        println!("## {size} bytes ({:.3} GiB)", size as f64 / GIB);
        println!();
        println!("| figure | canvid video canister | DFINITY asset canister |");
        println!("| --- | --- | --- |");
        println!(
            "| cycles for the upload | {:.2} B ({:.3} T per GiB) | {:.2} B ({:.3} T per GiB) |",
            c.cycles as f64 / 1e9,
            c.per_gib(size),
            a.cycles as f64 / 1e9,
            a.per_gib(size)
        );
        println!(
            "| update calls, instructions (per byte) | {}, {} ({:.1}) | {}, {} ({:.1}) |",
            c.updates,
            c.instructions,
            c.instructions as f64 / size as f64,
            a.updates,
            a.instructions,
            a.instructions as f64 / size as f64
        );
        println!(
            "| upload wall time | {:.1} s ({:.1} MB/s) | {:.1} s ({:.1} MB/s) |",
            c.time.as_secs_f64(),
            size as f64 / 1e6 / c.time.as_secs_f64(),
            a.time.as_secs_f64(),
            size as f64 / 1e6 / a.time.as_secs_f64()
        );
        println!(
            "| heap / stable memory after the upload | {} / {} | {} / {} |",
            mb(c.heap),
            mb(c.stable),
            mb(a.heap),
            mb(a.stable)
        );
        let canvid_http = canvid_reads(&b, video.id, &file);
        let (asset_http, status, asset_stream) = asset_reads(&b, assets, &file);
        println!(
            "| `http_request` for `bytes=kC-`, instructions per byte | {canvid_http:.2} (certified 206, 2,000,000 bytes) | {asset_http:.2} ({status}: the first 1,900,000 bytes, certificate over the whole file) |"
        );
        println!(
            "| next piece, instructions per byte | {canvid_http:.2} (another certified 206) | {asset_stream:.2} (`http_request_streaming_callback`, not certified on its own) |"
        );
        println!();
        last = Some((video.id, assets));
    }
    // An upgrade after the largest upload: the asset canister's `pre_upgrade` candid-encodes its
    // whole state (every byte of every file) into a heap buffer, then copies it to stable memory.
    if let Some((video, assets)) = last {
        for (name, id, module) in [
            ("canvid video canister", video, wasm::video_gz()),
            ("asset canister", assets, wasm::load("asset")),
        ] {
            let before = b.cycle_balance(id);
            let t0 = Instant::now();
            let r = b.upgrade(
                id,
                module,
                candid::encode_args(()).expect("()"),
                Some(owner),
            );
            let time = t0.elapsed();
            let cycles = before - b.cycle_balance(id);
            let (heap, stable) = asset::memory(&b, id, owner);
            println!(
                "upgrade of the {name}: {} in {:.1} s, {:.2} B cycles; heap / stable after: {} / {}",
                match &r {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("FAILED ({e})"),
                },
                time.as_secs_f64(),
                cycles as f64 / 1e9,
                mb(heap),
                mb(stable)
            );
        }
    }
    if std::env::var_os("CANVID_VS_ASSET_FILL").is_some() {
        drop(b); // a replica of its own: the canisters above hold gigabytes
        fill_asset_canister(&ReplicaBackend::new(), owner);
    }
}
