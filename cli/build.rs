//! Decides at build time whether the tests that run the real icp-cli (`tests/icp_cli.rs`) can
//! run, so that without the binary they show up as *ignored, with the reason* in `cargo test`
//! output rather than as silently passing tests (as the PocketIC variants in `tests/build.rs`).
//!
//! - `canvid_icp_cli`: the `icp` binary exists: `ICP_CLI_BIN` if set, else where
//!   `scripts/setup.sh` installs it (`target/npm-tools/node_modules/@icp-sdk/icp-cli-linux-x64/bin/icp`,
//!   pinned in `scripts/npm-tools/`). The test finds it by the same rule (`ICP_CLI_PATH`).
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rerun-if-env-changed=ICP_CLI_BIN");
    println!("cargo::rustc-check-cfg=cfg(canvid_icp_cli)");
    let bin = match std::env::var_os("ICP_CLI_BIN") {
        Some(b) => PathBuf::from(b),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/npm-tools/node_modules/@icp-sdk/icp-cli-linux-x64/bin/icp"),
    };
    // Rebuild when the binary appears or disappears (a missing path is checked on every build,
    // which only costs a rebuild of this crate while the binary is absent).
    println!("cargo::rerun-if-changed={}", bin.display());
    println!("cargo::rustc-env=ICP_CLI_PATH={}", bin.display());
    if bin.is_file() {
        println!("cargo::rustc-cfg=canvid_icp_cli");
    }
}
