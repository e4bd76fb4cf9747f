//! Decides at build time which optional test variants are enabled, so that disabled ones show up
//! as *ignored, with the reason* in `cargo test` output rather than as silently passing tests.
//!
//! - `canvid_pocket_ic`: `POCKET_IC_BIN` is set and names an existing file.
//! - `canvid_large`: `CANVID_LARGE=1` (the 1 GiB upload, for the benchmark, not CI).
//! - `canvid_asset`: `CANVID_ASSET=1` (DFINITY's asset canister, the benchmark fixture that
//!   `scripts/build-wasm.sh` builds only then).
use std::path::Path;

fn main() {
    println!("cargo::rerun-if-env-changed=POCKET_IC_BIN");
    println!("cargo::rerun-if-env-changed=CANVID_LARGE");
    println!("cargo::rerun-if-env-changed=CANVID_ASSET");
    println!("cargo::rustc-check-cfg=cfg(canvid_asset)");
    println!("cargo::rustc-check-cfg=cfg(canvid_pocket_ic)");
    println!("cargo::rustc-check-cfg=cfg(canvid_large)");
    if let Some(bin) = std::env::var_os("POCKET_IC_BIN") {
        // Rebuild when the binary appears or disappears.
        println!("cargo::rerun-if-changed={}", Path::new(&bin).display());
        if Path::new(&bin).is_file() {
            println!("cargo::rustc-cfg=canvid_pocket_ic");
        }
    }
    if std::env::var("CANVID_ASSET").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=canvid_asset");
    }
    if std::env::var("CANVID_LARGE").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=canvid_large");
    }
}
