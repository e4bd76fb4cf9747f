//! Native SHA-256 throughput, as the CLI hashes upload chunks (2,000,000-byte inputs).
//!
//! ```text
//! cargo run --release -p canvid-sha-bench                          # sha2 as the canisters' deps
//! cargo run --release -p canvid-sha-bench --features asm           # as canvid-cli (sha2-asm)
//! cargo run --release -p canvid-sha-bench --features force-soft    # portable Rust, no SHA-NI
//! ```
//!
//! On x86_64 `sha2` detects the SHA extensions (SHA-NI) at run time and uses them whatever the
//! features; `asm` only replaces the *fallback* for CPUs without them. So the run with `asm`
//! also times `sha2_asm::compress256` directly: the speed a CPU without SHA-NI gets from
//! `sha2-asm`, to compare with `force-soft`.
//!
//! Throughput is reported per second of this thread's CPU time (`/proc/thread-self/schedstat`
//! on Linux) as well as per wall-clock second: on a shared machine the CPU-time figure is the
//! one that does not depend on the load.

use sha2::{Digest, Sha256};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The CLI's upload chunk.
const CHUNK: usize = 2_000_000;
/// Bytes hashed per measurement.
const TOTAL: usize = 1 << 30;

/// CPU time this thread has run, if the platform reports it.
fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn measure(name: &str, data: &[u8], mut hash_chunk: impl FnMut(&[u8]) -> [u8; 32]) {
    // Warm up (page in the buffer, CPU feature detection).
    black_box(hash_chunk(data));
    let rounds = TOTAL / data.len();
    let (w0, c0) = (Instant::now(), cpu_time());
    let mut acc = [0u8; 32];
    for _ in 0..rounds {
        let d = hash_chunk(black_box(data));
        acc[0] ^= d[0];
    }
    black_box(acc);
    let wall = w0.elapsed();
    let bytes = (rounds * data.len()) as f64;
    let mbps = |d: Duration| bytes / d.as_secs_f64() / 1e6;
    match c0.zip(cpu_time()).map(|(a, b)| b - a) {
        Some(cpu) => println!(
            "{name:<46} {:>8.0} MB/s per CPU second   {:>8.0} MB/s wall ({:.2} s wall, {:.2} s CPU)",
            mbps(cpu),
            mbps(wall),
            wall.as_secs_f64(),
            cpu.as_secs_f64()
        ),
        None => println!("{name:<46} {:>8.0} MB/s wall", mbps(wall)),
    }
}

fn main() {
    let data: Vec<u8> = (0..CHUNK as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
        .collect();
    let features = [
        cfg!(feature = "asm").then_some("asm"),
        cfg!(feature = "force-soft").then_some("force-soft"),
    ];
    let features: Vec<&str> = features.into_iter().flatten().collect();
    println!(
        "sha2 features: [{}]; target {}; {} MiB in {CHUNK}-byte inputs",
        features.join(", "),
        std::env::consts::ARCH,
        TOTAL >> 20
    );
    measure("Sha256::digest (sha2)", &data, |d| Sha256::digest(d).into());

    #[cfg(all(feature = "asm", any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // sha2-asm's compression function alone over the chunk's 31,250 blocks (CHUNK is a
        // multiple of 64; the one padding block a full hash adds is left out).
        let blocks: Vec<[u8; 64]> = data
            .chunks_exact(64)
            .map(|b| b.try_into().expect("64 bytes"))
            .collect();
        measure("sha2_asm::compress256 (no SHA-NI)", &data, |_| {
            let mut state = [
                0x6a09e667u32,
                0xbb67ae85,
                0x3c6ef372,
                0xa54ff53a,
                0x510e527f,
                0x9b05688c,
                0x1f83d9ab,
                0x5be0cd19,
            ];
            sha2_asm::compress256(&mut state, &blocks);
            let mut out = [0u8; 32];
            for (o, s) in out.chunks_exact_mut(4).zip(state) {
                o.copy_from_slice(&s.to_be_bytes());
            }
            out
        });
    }
}
