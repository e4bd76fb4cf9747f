//! The canister modules under test, as built by `scripts/build-wasm.sh` (located and read by
//! [`canvid_devkit::wasm`]).

pub use canvid_devkit::{gzip, wasm_dir};

/// Reads `<wasm_dir>/<name>.wasm`; a missing module fails the test (never skips it).
pub fn load(name: &str) -> Vec<u8> {
    canvid_devkit::load_wasm(name)
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

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}
