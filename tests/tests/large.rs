//! A large video through the real wasm: 100 MB in 2,000,000-byte chunks (always; another size in
//! MB with `CANVID_LARGE_MB`, e.g. 200 for the figures in docs/performance.md), 1 GiB with
//! `CANVID_LARGE=1` (benchmark, not CI). 100 MB in CI: 50 chunks exercise everything 100 do
//! (several arena extents, the chunk table, the digest walk) in half the suite's time. The file is generated chunk by chunk from a seed, so no
//! more than a couple of chunks are in memory at once; every byte read back is compared.
//!
//! Instruction counts (embedded replica) and the cycles the upload cost (both backends) are
//! printed, not asserted: run with `--nocapture`.

use canvid_tests::clients::{ok, spec_for};
use canvid_tests::deploy::{standalone_video, T};
use canvid_tests::{principal, Backend, GenFile};
use canvid_types::video::{VideoStatus, MAX_CHUNK_SIZE};
use std::time::Instant;

const CHUNK: u64 = MAX_CHUNK_SIZE as u64;

fn large_video(b: &dyn Backend, size: u64, seed: u64) {
    let owner = principal("owner");
    // Ingress alone costs 2,000 cycles per byte on a 13-node subnet: fund generously.
    let cycles = (size as u128) * 3_000 + 100 * T;
    let v = standalone_video(b, owner, None, cycles);
    let file = GenFile::new(seed, size, CHUNK);
    let n = file.chunk_count();

    let t0 = Instant::now();
    let balance_before = b.cycle_balance(v.id);
    ok(
        "begin_upload",
        v.begin_upload(owner, &spec_for(&file, true)),
    );
    let put_instructions = v.upload_chunks(owner, &file, None);
    let (meta, finish_cost) = v.finish_upload_with_cost(owner);
    let meta = ok("finish_upload", meta);
    let upload_time = t0.elapsed();
    let upload_cycles = balance_before - b.cycle_balance(v.id);
    assert_eq!(meta.status, VideoStatus::Ready);
    assert_eq!(meta.size, size);
    assert_eq!(meta.chunk_count, n);
    assert_eq!(meta.uploaded_bytes, size);
    let want_digest = spec_for(&file, true).file_digest.expect("declared");
    assert_eq!(meta.digest.as_ref(), Some(&want_digest));
    let info = v.canister_info();
    assert_eq!(info.chunks_stored, n);
    assert_eq!(info.chunk_bytes_stored, size);
    assert!(
        info.stable_memory_bytes >= size,
        "stable memory {} < file {size}",
        info.stable_memory_bytes
    );

    // Read back as a stranger: whole chunks, then windows that straddle chunk boundaries.
    let reader = principal("viewer");
    let t1 = Instant::now();
    let get_instructions = v.verify_chunks(reader, &file);
    let range_sha = v.read_all_ranges(reader, size, CHUNK - 1);
    let read_time = t1.elapsed();
    assert_eq!(range_sha, file.sha256(), "read_range over the whole file");

    println!(
        "[{}] {size} bytes, {n} chunks: upload {:.1?}, {upload_cycles} cycles ({:.3} T per GiB; {} instr in put_chunk, {:.1} instr/byte; finish_upload {} instr), \
         read {:.1?} (get_chunk {} instr, {:.2} instr/byte); stable memory {} bytes",
        b.name(),
        upload_time,
        upload_cycles as f64 * (1u64 << 30) as f64 / size as f64 / 1e12,
        put_instructions,
        put_instructions as f64 / size as f64,
        finish_cost.map_or(0, |c| c.instructions),
        read_time,
        get_instructions,
        get_instructions as f64 / size as f64,
        info.stable_memory_bytes,
    );
}

/// `CANVID_LARGE_MB` megabytes, default 100.
fn video_large(b: &dyn Backend) {
    let mb: u64 = std::env::var("CANVID_LARGE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    large_video(b, mb * 1_000_000, 200);
}

canvid_tests::backend_tests!(video_large);

const GIB: u64 = 1 << 30;

#[test]
#[cfg_attr(
    not(canvid_large),
    ignore = "benchmark: set CANVID_LARGE=1 to upload 1 GiB"
)]
fn replica_video_1_gib() {
    canvid_tests::on_replica(|b| large_video(b, GIB, 1024));
}

#[test]
#[cfg_attr(
    not(all(canvid_large, canvid_pocket_ic)),
    ignore = "benchmark: needs CANVID_LARGE=1 and POCKET_IC_BIN"
)]
fn pocket_ic_video_1_gib() {
    canvid_tests::on_pocket_ic(|b| large_video(b, GIB, 1024));
}
