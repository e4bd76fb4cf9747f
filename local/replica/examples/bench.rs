//! Micro-benchmark of the embedded replica.
//!
//! ```text
//! cargo run --release -p canvid-replica --example bench -- [wasm] [method] [n]
//! ```
//!
//! `wasm` defaults to `target/canisters/replica-probe.wasm`; `method` (default `burn`) must be an
//! update taking one candid `nat64` (the probe's `burn(n)` spins for about `n` instructions);
//! `n` defaults to 200,000,000. Prints module compile time, instantiate (+ init) time and the
//! executed instructions per second ("instructions (embedded)" = wasmi fuel).

use std::time::Instant;

use canvid_replica::{compile_module, InstallMode, Principal, Replica};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "target/canisters/replica-probe.wasm".to_string());
    let method = args.next().unwrap_or_else(|| "burn".to_string());
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000_000);
    let wasm = match std::fs::read(&path) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(2);
        }
    };
    println!("module: {path} ({} bytes)", wasm.len());

    // Compile (decode + rewrite + wasmi translation setup) outside the replica.
    let t = Instant::now();
    if let Err(e) = compile_module(&wasm) {
        eprintln!("compile failed: {e}");
        std::process::exit(1);
    }
    println!("compile:      {:>10.2} ms", t.elapsed().as_secs_f64() * 1e3);

    let r = Replica::new();
    let a = r.create_canister();
    r.add_cycles(a, 1_000_000_000_000_000);
    let t = Instant::now();
    if let Err(e) = r.install_code(InstallMode::Install, a, wasm.clone(), Vec::new(), None) {
        eprintln!("install failed: {e}");
        std::process::exit(1);
    }
    println!(
        "install #1:   {:>10.2} ms (compile + instantiate + init)",
        t.elapsed().as_secs_f64() * 1e3
    );
    let b = r.create_canister();
    r.add_cycles(b, 1_000_000_000_000_000);
    let t = Instant::now();
    r.install_code(InstallMode::Install, b, wasm, Vec::new(), None)
        .expect("second install");
    println!(
        "install #2:   {:>10.2} ms (cached module: instantiate + init)",
        t.elapsed().as_secs_f64() * 1e3
    );

    let arg = candid::encode_one(n).expect("encode");
    let t = Instant::now();
    let (res, stats) = r.update_call_with_stats(a, Principal::anonymous(), &method, arg);
    let secs = t.elapsed().as_secs_f64();
    match res {
        Ok(_) => println!(
            "{method}({n}): {:>10.2} ms, {} instructions (embedded), {:.1} M instructions/s",
            secs * 1e3,
            stats.instructions,
            stats.instructions as f64 / secs / 1e6
        ),
        Err(e) => println!("{method}({n}) failed: {e}"),
    }
}
