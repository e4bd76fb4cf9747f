//! The canister modules under test, as built by `scripts/build-wasm.sh`.

use std::path::PathBuf;

/// Folder holding `video.wasm`, `spawn.wasm`, `index.wasm`: `$CANVID_WASM_DIR` if set, else
/// `<workspace>/target/canisters/`.
pub fn wasm_dir() -> PathBuf {
    match std::env::var_os("CANVID_WASM_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/canisters/")),
    }
}

/// Reads `<wasm_dir>/<name>.wasm`; a missing module fails the test (never skips it).
pub fn load(name: &str) -> Vec<u8> {
    let path = wasm_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read canister module {}: {e}\n\
             Build the canisters first: `scripts/build-wasm.sh` (or set CANVID_WASM_DIR to a \
             folder holding video.wasm, spawn.wasm and index.wasm)",
            path.display()
        )
    })
}

pub fn video() -> Vec<u8> {
    load("video")
}

pub fn spawn() -> Vec<u8> {
    load("spawn")
}

pub fn index() -> Vec<u8> {
    load("index")
}

/// gzip, as `install_code` accepts and as the spawn canister stores the video module.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(bytes).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}
