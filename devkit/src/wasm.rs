//! The canister modules as `scripts/build-wasm.sh` builds them: where they are, reading them,
//! and gzip.

use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable naming a folder of canister modules (`video.wasm`, `spawn.wasm`,
/// `index.wasm`, `replica-probe.wasm`); it wins over every other lookup.
pub const WASM_DIR_VAR: &str = "CANVID_WASM_DIR";

/// `<workspace>/target/canisters/` of the workspace this crate was built in.
pub fn workspace_wasm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("devkit/ sits in the workspace root")
        .join("target/canisters")
}

/// Folder holding the canister modules: `$CANVID_WASM_DIR` if set, else
/// [`workspace_wasm_dir`]. Tests and examples use this: the modules of their own workspace.
pub fn wasm_dir() -> PathBuf {
    match std::env::var_os(WASM_DIR_VAR) {
        Some(dir) => PathBuf::from(dir),
        None => workspace_wasm_dir(),
    }
}

/// The lookup of a binary that may run outside its workspace (the `canvid` CLI):
/// `$CANVID_WASM_DIR` if set, else `target/canisters` in the nearest ancestor of `start` (the
/// current directory) that has a `video.wasm` there, else [`workspace_wasm_dir`].
pub fn wasm_dir_near(start: &Path) -> PathBuf {
    near(std::env::var_os(WASM_DIR_VAR), start)
}

fn near(var: Option<std::ffi::OsString>, start: &Path) -> PathBuf {
    if let Some(dir) = var {
        return PathBuf::from(dir);
    }
    start
        .ancestors()
        .map(|dir| dir.join("target/canisters"))
        .find(|candidate| candidate.join("video.wasm").is_file())
        .unwrap_or_else(workspace_wasm_dir)
}

/// `<dir>/<name>.wasm`.
pub fn wasm_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.wasm"))
}

/// A canister module that could not be read.
#[derive(Debug)]
pub struct WasmError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl WasmError {
    /// The file does not exist (the canisters were not built, or the folder is wrong).
    pub fn is_missing(&self) -> bool {
        self.source.kind() == std::io::ErrorKind::NotFound
    }
}

impl fmt::Display for WasmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot read canister module {}: {}\nBuild the canisters first: \
             `scripts/build-wasm.sh` (or set {WASM_DIR_VAR} to a folder holding video.wasm, \
             spawn.wasm and index.wasm)",
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for WasmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Reads `<dir>/<name>.wasm`.
pub fn read_wasm(dir: &Path, name: &str) -> Result<Vec<u8>, WasmError> {
    let path = wasm_path(dir, name);
    std::fs::read(&path).map_err(|source| WasmError { path, source })
}

/// Reads `<wasm_dir()>/<name>.wasm` for a test or an example; panics, saying how to build the
/// modules, when it cannot (a missing module fails a test, it never skips it).
pub fn load_wasm(name: &str) -> Vec<u8> {
    read_wasm(&wasm_dir(), name).unwrap_or_else(|e| panic!("{e}"))
}

/// Reads `<wasm_dir()>/<name>.wasm.gz` as `scripts/build-wasm.sh` wrote it: the form an
/// `install_code` message sends a module over the IC's 2 MiB ingress limit uncompressed (the
/// video module is). Panics like [`load_wasm`].
pub fn load_wasm_gz(name: &str) -> Vec<u8> {
    let path = wasm_dir().join(format!("{name}.wasm.gz"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (scripts/build-wasm.sh writes it next to {name}.wasm)",
            path.display()
        )
    })
}

/// gzip at the best compression, as `install_code` accepts a module and as the spawn canister
/// stores the video module.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 2), Compression::best());
    // Writing into a Vec cannot fail.
    enc.write_all(bytes).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let gz = gzip(&data);
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
        assert!(gz.len() < data.len() / 10);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn the_workspace_dir_is_under_the_workspace_root() {
        let dir = workspace_wasm_dir();
        assert!(dir.ends_with("target/canisters"));
        assert!(dir
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("Cargo.toml")
            .is_file());
    }

    #[test]
    fn a_built_folder_above_the_start_is_found_else_the_workspace_one() {
        let root = std::env::temp_dir().join(format!("canvid-devkit-{}", std::process::id()));
        let built = root.join("target/canisters");
        std::fs::create_dir_all(&built).unwrap();
        let deep = root.join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(near(None, &deep), workspace_wasm_dir(), "no video.wasm yet");
        std::fs::write(built.join("video.wasm"), b"\0asm").unwrap();
        assert_eq!(near(None, &deep), built);
        assert_eq!(
            near(Some("/elsewhere".into()), &deep),
            Path::new("/elsewhere")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_missing_module_says_how_to_build_it() {
        let e = read_wasm(Path::new("/nonexistent-canvid"), "video").unwrap_err();
        assert!(e.is_missing());
        let text = e.to_string();
        assert!(text.contains("/nonexistent-canvid/video.wasm"), "{text}");
        assert!(text.contains("scripts/build-wasm.sh"), "{text}");
    }
}
