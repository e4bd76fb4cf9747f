//! The canister modules under test, as built by `scripts/build-wasm.sh` (located and read by
//! [`canvid_devkit::wasm`]).

pub use canvid_devkit::{gzip, wasm_dir};

/// Reads `<wasm_dir>/<name>.wasm`; a missing module fails the test (never skips it).
pub fn load(name: &str) -> Vec<u8> {
    canvid_devkit::load_wasm(name)
}

/// The video module, uncompressed (what the spawn canister is given, gzipped, to hold).
pub fn video() -> Vec<u8> {
    load("video")
}

/// The video module as an `install_code` sends it: `video.wasm.gz`, byte for byte what the
/// spawn canister installs (uncompressed, the module is over the IC's 2 MiB ingress limit).
pub fn video_gz() -> Vec<u8> {
    canvid_devkit::load_wasm_gz("video")
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
