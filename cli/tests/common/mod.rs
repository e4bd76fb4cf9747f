//! What the tests that run `canvid` as a process share: the binary with the canister wasm, its
//! output as text, and the `--state` of a `canvid serve` network.

#![allow(dead_code)] // each test binary uses its own subset

use canvid_devkit::wasm_dir;
use std::path::Path;
use std::process::Command;

/// The `canvid` binary of this build, finding the canister wasm the tests use.
pub fn canvid() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_canvid"));
    c.env("CANVID_WASM_DIR", wasm_dir());
    c
}

pub fn require_wasm() {
    assert!(
        wasm_dir().join("video.wasm").is_file(),
        "canister wasm missing in {}: run scripts/build-wasm.sh",
        wasm_dir().display()
    );
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a command and asserts success; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// The command, against the `canvid serve` network whose state is `state`.
pub fn net<'a>(cmd: &'a mut Command, state: &Path) -> &'a mut Command {
    cmd.arg("--state").arg(state)
}

pub fn last_line(s: &str) -> String {
    s.lines().last().unwrap_or_default().trim().to_string()
}

/// The principal of the identity in `pem`: `ls` without --creator/--owner lists the caller's
/// videos and names the caller on stderr.
pub fn principal_of(pem: &Path, state: &Path) -> String {
    let o = net(canvid().args(["ls", "--identity"]).arg(pem), state)
        .output()
        .unwrap();
    let err = text(&o.stderr);
    err.lines()
        .find_map(|l| l.split(" by ").nth(1))
        .unwrap_or_else(|| panic!("no principal in {err}"))
        .trim()
        .to_string()
}
