//! What the tests that run `canvid` as a process share: the binary with the canister wasm, its
//! output as text, and the `--state` of a `canvid serve` network.

#![allow(dead_code)] // each test binary uses its own subset

use canvid_devkit::wasm_dir;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A running `canvid serve`, stopped (Ctrl-C → saves) when dropped.
pub struct Serve(pub Child);

impl Serve {
    pub fn start(state: &Path) -> Serve {
        let _ = std::fs::remove_file(state.join("serve.json"));
        let child = canvid()
            .args(["serve", "--port", "0", "--save-interval", "1", "--state"])
            .arg(state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut s = Serve(child);
        let start = Instant::now();
        while !state.join("serve.json").is_file() {
            if let Some(status) = s.0.try_wait().unwrap() {
                panic!("canvid serve exited early: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "serve.json never appeared"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    /// SIGTERM (saves the state) and wait.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let status = self.0.wait().unwrap();
        assert!(status.success(), "serve exit status {status}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
