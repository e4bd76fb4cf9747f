//! `canvid serve` keeps what it acknowledged: the server is SIGKILLed at seeded random points of
//! an upload and of a transfer, restarted on the same `--state` (its dead predecessor's
//! `serve.json` still there, the process not even reaped yet), and everything a command saw
//! acknowledged must be there, with nothing half-applied: an acknowledged upload downloads
//! byte-exact (`get` checks every chunk's digest and the certified file digest) without being
//! sent again; an interrupted one resumes and completes; an acknowledged transfer shows in the
//! video's owner and in the index, and any transfer, acknowledged or not, is in both or in neither.
//!
//! `CANVID_CRASH_ITERATIONS` (default 3) and `CANVID_CRASH_SEED` (default 1) widen the search;
//! `CANVID_CRASH_NO_WAL=1` runs the servers with `--no-wal`, to see the test fail without the log.

mod common;

use canvid_devkit::wasm_dir;
use common::{canvid, last_line, net, ok, principal_of, text};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// xorshift64*: the kill points, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn serve_pid(state: &Path) -> Option<u32> {
    let t = std::fs::read_to_string(state.join("serve.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&t).ok()?;
    v["pid"].as_u64().map(|p| p as u32)
}

/// Starts `canvid serve` on `state` and waits until it listens (its own pid in serve.json).
fn start(state: &Path, save_interval: u64) -> Child {
    let mut child = canvid()
        .args(["serve", "--port", "0", "--save-interval"])
        .arg(save_interval.to_string())
        .arg("--state")
        .arg(state)
        .args(std::env::var_os("CANVID_CRASH_NO_WAL").map(|_| "--no-wal"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while serve_pid(state) != Some(child.id()) {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("canvid serve exited early: {status}: {err}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "serve never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Runs `cmd` and SIGKILLs the server after `delay` (if `cmd` is still running by then, it
/// fails against the dead server). Returns the command's output and the killed server, not
/// reaped: its pid stays a zombie in the stale serve.json during the restart.
fn run_and_kill(cmd: &mut Command, server: &mut Child, delay: Duration) -> Output {
    let client = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    server.kill().unwrap(); // SIGKILL
    client.wait_with_output().unwrap()
}

#[test]
fn acknowledged_uploads_and_transfers_survive_sigkill() {
    assert!(
        wasm_dir().join("video.wasm").is_file(),
        "canister wasm missing in {}: run scripts/build-wasm.sh",
        wasm_dir().display()
    );
    let iterations: u64 = std::env::var("CANVID_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("CANVID_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let bob_pem = tmp.path().join("bob.pem");
    std::fs::create_dir_all(tmp.path()).unwrap();
    std::fs::write(&bob_pem, canvid_cli::identity::ed25519_pem(&[42u8; 32])).unwrap();
    let mut server = start(&state, 3600);
    let bob = principal_of(&bob_pem, &state);
    // A calibration upload: how long an upload takes here, to spread the kills over it.
    let file = tmp.path().join("calibration.bin");
    std::fs::write(&file, vec![7u8; 3_000_000]).unwrap();
    let t = Instant::now();
    ok(net(canvid().arg("upload").arg(&file), &state));
    let upload_ms = t.elapsed().as_millis() as u64;

    let mut acknowledged: Vec<(String, Vec<u8>)> = Vec::new();
    let mut transferred: Vec<String> = Vec::new();
    for i in 0..iterations {
        // --- an upload killed at a random point (3 MB: 3 chunks)
        let bytes: Vec<u8> = (0..3_000_000u32)
            .map(|j| ((j as u64).wrapping_mul(2_654_435_761 + i) >> 13) as u8)
            .collect();
        let file = tmp.path().join(format!("video-{i}.bin"));
        std::fs::write(&file, &bytes).unwrap();
        let delay = Duration::from_millis(rng.below(upload_ms * 13 / 10));
        let out = run_and_kill(
            net(canvid().arg("upload").arg(&file), &state),
            &mut server,
            delay,
        );
        let acked = out.status.success();
        let old = server;
        server = start(&state, if i % 2 == 0 { 3600 } else { 1 });
        drop(old.wait_with_output()); // reaped only now: the restart saw a zombie's pid
        let id = if acked {
            last_line(&text(&out.stdout))
        } else {
            // Not acknowledged: resuming (or starting over) must complete it.
            last_line(&ok(net(canvid().arg("upload").arg(&file), &state)))
        };
        eprintln!("iteration {i}: upload killed after {delay:?} (acknowledged: {acked}) -> {id}");
        acknowledged.push((id.clone(), bytes));

        // --- a transfer killed at a random point
        // A transfer takes a fraction of a second: kills spread over its first 300 ms.
        let delay = Duration::from_millis(rng.below(300));
        let out = run_and_kill(
            net(canvid().args(["transfer", &id, &bob]), &state),
            &mut server,
            delay,
        );
        let old = server;
        server = start(&state, 3600);
        drop(old.wait_with_output());
        eprintln!(
            "iteration {i}: transfer killed after {delay:?} (acknowledged: {})",
            out.status.success()
        );
        // Never half-applied: the video's owner and the index agree (the index is notified
        // within the same call tree, or by the video's timer retry: allow it a few seconds).
        let info = ok(net(canvid().args(["info", &id]), &state));
        let owner = info
            .lines()
            .find_map(|l| l.strip_prefix("owner "))
            .unwrap_or_else(|| panic!("no owner in {info}"))
            .trim()
            .to_string();
        if out.status.success() {
            assert_eq!(owner, bob, "acknowledged transfer of {id} lost");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let owned = ok(net(canvid().args(["ls", "--owner", &bob]), &state));
            if owned.contains(id.as_str()) == (owner == bob) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "video {id} owned by {owner} but the index says otherwise: {owned}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        if owner == bob {
            transferred.push(id);
        }

        // Everything acknowledged so far is there, byte-exact.
        for (id, bytes) in &acknowledged {
            let back = tmp.path().join("back.bin");
            let _ = std::fs::remove_file(&back);
            ok(net(canvid().args(["get", id, "-o"]).arg(&back), &state));
            assert_eq!(&std::fs::read(&back).unwrap(), bytes, "video {id}");
        }
        let owned = ok(net(canvid().args(["ls", "--owner", &bob]), &state));
        for id in &transferred {
            assert!(
                owned.contains(id.as_str()),
                "transfer of {id} lost: {owned}"
            );
        }
    }
    server.kill().unwrap();
    let _ = server.wait();
}

/// The log's cost, for docs/performance.md: `canvid upload` of a `CANVID_WAL_BENCH_MB` MB file
/// (default 128) into `canvid serve` with and without the log (no checkpoint during the run:
/// `--save-interval 3600`), and the size of the log it leaves (bytes written per GiB uploaded).
/// `cargo test -p canvid-cli --test crash -- --ignored --nocapture wal_cost`
#[test]
#[ignore = "benchmark"]
fn wal_cost() {
    let mb: u64 = std::env::var("CANVID_WAL_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    // On the disk the state usually lives on (not a tmpfs), so fsync costs what it costs.
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wal-bench");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let file = root.join("big.bin");
    let bytes: Vec<u8> = (0..mb * 1_000_000)
        .map(|j| (j.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &bytes).unwrap();
    let small = root.join("small.bin");
    std::fs::write(&small, b"x").unwrap();
    for wal in [false, true] {
        let state = root.join(if wal { "state-wal" } else { "state-nowal" });
        let mut cmd = canvid();
        cmd.args(["serve", "--port", "0", "--save-interval", "3600", "--state"])
            .arg(&state)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if !wal {
            cmd.arg("--no-wal");
        }
        let mut server = cmd.spawn().unwrap();
        while serve_pid(&state) != Some(server.id()) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let log_size = || -> u64 {
            std::fs::read_dir(state.join("replica"))
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("wal-"))
                .map(|e| e.metadata().unwrap().len())
                .sum()
        };
        // Small uploads (create through spawn, begin, one chunk, finish: ≈ 5 update calls).
        let t = Instant::now();
        let n_small = 5;
        for _ in 0..n_small {
            ok(net(canvid().arg("upload").arg(&small), &state));
        }
        let small_s = t.elapsed().as_secs_f64() / n_small as f64;
        let before = log_size();
        let t = Instant::now();
        let out = ok(net(canvid().arg("upload").arg(&file), &state));
        let big_s = t.elapsed().as_secs_f64();
        let logged = log_size() - before;
        let chunks = out
            .lines()
            .find_map(|l| {
                l.split(": sent ")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(0);
        println!(
            "wal={wal}: 1-byte upload {:.3} s; {mb} MB upload {:.2} s ({:.1} MB/s, {chunks} \
             chunks, {:.1} ms per chunk); log {} bytes = {:.3} GiB per GiB uploaded",
            small_s,
            big_s,
            mb as f64 / big_s,
            big_s * 1000.0 / chunks.max(1) as f64,
            logged,
            logged as f64 / (mb * 1_000_000) as f64
        );
        server.kill().unwrap();
        let _ = server.wait();
    }
    let _ = std::fs::remove_dir_all(&root);
}
