//! `canvid serve` and the serving end of `canvid demo`: the embedded replica on one loopback
//! port, with the IC HTTP interface (agents: `canvid upload`, dfx, icp-cli, @icp-sdk/core) and
//! the HTTP gateway (browsers: DFINITY's `ic-http-gateway` over that interface) — `canvid-gateway`.
//!
//! ## Persistence (`--state DIR`, default `.canvid`)
//! * `DIR/replica/`: the replica snapshot (format and guarantees: `local/replica/src/persist/mod.rs`
//!   and docs/serve.md). Saved every `--save-interval` seconds when something changed — only
//!   the stable-memory pages written since the last save go to disk — and on Ctrl-C / SIGTERM.
//!   A save needs the replica idle (no queued message); a busy replica is saved at the next
//!   tick.
//! * `DIR/replica/wal-<seq>.log`: the write-ahead log (unless `--no-wal`): an answer is
//!   released only after the round's state delta is fsync'd there, so an acknowledged call
//!   survives a crash; a start replays it and saves a checkpoint.
//! * `DIR/canister_ids.json`: `{"index": {"embedded": id}, "spawn": {"embedded": id}, ...}`.
//! * `DIR/serve.json` while running: `{"url", "pid", "root_key", "subnet_id"}` (root key as hex
//!   DER) for the other commands' `--network embedded`. Removed on a clean stop; one left by a
//!   crash (dead pid) does not block a restart.
//!
//! A start on a DIR holding a snapshot restores it (same canister ids, root key, videos);
//! otherwise the index and spawn canisters are deployed fresh and saved at once. Either way the
//! cycles ledger and the CMC's `get_default_subnets` are installed at their IC ids if absent
//! ([`ensure_system_canisters`]), for icp-cli's `canister create` and `deploy`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use candid::Principal;
use canvid_replica::{Replica, SnapshotError};
use canvid_types::spawn::{CreateVideoArgs, CreatedVideo};

use crate::embedded::{self, demo_identity, update_ok, EmbeddedVideo, Wasms};
use crate::error::{Error, Result};
use crate::fmt;
use crate::network::{read_canister_ids, serve_json, ServeInfo};
use crate::upload::{self, ChunkSource, FileSource, UploadOptions, CHUNK_SIZE};

pub struct ServeOptions {
    pub port: u16,
    pub state: PathBuf,
    /// Videos to upload (as the demo identity "alice") before serving.
    pub upload: Vec<PathBuf>,
    /// Principals made admins of the spawn and index canisters (besides the demo admin).
    pub admins: Vec<Principal>,
    pub save_interval: Duration,
    /// Write-ahead log (`DIR/replica/wal-<seq>.log`): an acknowledged call survives a crash.
    pub wal: bool,
    /// DFINITY's ICRC ledger module (file or folder) to install (`--icrc-ledger`), and the
    /// test balances to mint on it (`--fund`): [`crate::test_ledger`].
    pub icrc_ledger: Option<PathBuf>,
    pub fund: Vec<(Principal, candid::Nat)>,
}

/// Where the snapshot lives inside the state directory.
pub fn snapshot_dir(state: &Path) -> PathBuf {
    state.join("replica")
}

fn snapshot_error(e: SnapshotError) -> Error {
    Error::State(format!("snapshot: {e}"))
}

/// Refuses a state directory another live `canvid serve` is using (two writers would corrupt
/// each other's snapshots).
fn check_not_served(dir: &Path) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(serve_json(dir)) else {
        return Ok(());
    };
    let Ok(info) = serde_json::from_str::<ServeInfo>(&text) else {
        return Ok(());
    };
    if info.pid == std::process::id() {
        return Ok(());
    }
    // A process SIGKILLed a moment ago may still be tearing down: give it a few seconds.
    let deadline = Instant::now() + Duration::from_secs(3);
    while is_live_serve(info.pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if is_live_serve(info.pid) {
        return Err(Error::State(format!(
            "{} is in use by `canvid serve` pid {} at {}: stop it first or use another --state",
            dir.display(),
            info.pid,
            info.url
        )));
    }
    Ok(())
}

/// Whether `pid` is a live `canvid serve`. A `serve.json` left by a crash (kill -9, power
/// loss) names a dead process — or a zombie its parent has not reaped yet, or by now an
/// unrelated process with the recycled pid — and must not block a restart.
fn is_live_serve(pid: u32) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // `pid (comm) S ...`: the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, Some('Z' | 'X' | 'x')) {
        return false;
    }
    match std::fs::read(proc_dir.join("cmdline")) {
        Ok(cmd) => cmd.split(|b| *b == 0).any(|arg| arg == b"serve"),
        // Not ours to read: assume it is the server (refusing is the safe side).
        Err(_) => true,
    }
}

/// Saves the snapshot, retrying while the replica is busy, for at most `patience`.
pub fn save(replica: &Replica, state: &Path, patience: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        match replica.save_snapshot(&snapshot_dir(state)) {
            Ok(_) => return Ok(()),
            Err(SnapshotError::Busy) if start.elapsed() < patience => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(snapshot_error(e)),
        }
    }
}

pub fn run(opts: ServeOptions) -> Result<()> {
    let dir = &opts.state;
    // Open every file first: a typo should fail before anything is deployed.
    let mut sources = Vec::new();
    for path in &opts.upload {
        let source = FileSource::open(path).map_err(|e| Error::from_open(path, e))?;
        if source.size() == 0 {
            return Err(Error::EmptyFile(path.clone()));
        }
        sources.push((path.clone(), source));
    }
    // Read the ledger's module before anything is written: a wrong path fails the start.
    let ledger_module = match &opts.icrc_ledger {
        Some(path) => Some(crate::test_ledger::read_module(path)?),
        None if !opts.fund.is_empty() => {
            return Err(Error::NotSupported(
                "--fund needs --icrc-ledger (the ledger to mint on)".into(),
            ))
        }
        None => None,
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    check_not_served(dir)?;

    let snap = snapshot_dir(dir);
    let (replica, index, spawn) = if Replica::snapshot_exists(&snap) {
        let started = Instant::now();
        let replica = Arc::new(Replica::load_snapshot(&snap).map_err(snapshot_error)?);
        let (index, spawn) = match read_canister_ids(dir, "embedded")? {
            (Some(i), Some(s)) if replica.canister_exists(i) && replica.canister_exists(s) => {
                (i, s)
            }
            _ => {
                return Err(Error::State(format!(
                    "{} does not name the restored index and spawn canisters",
                    dir.join("canister_ids.json").display()
                )))
            }
        };
        println!(
            "restored the replica from {} ({} canisters) in {:.2} s",
            snap.display(),
            replica.canister_ids().len(),
            started.elapsed().as_secs_f64()
        );
        (replica, index, spawn)
    } else {
        let wasms = Wasms::load()?;
        let replica = Arc::new(Replica::new());
        let d = embedded::deploy(replica.clone(), &wasms, demo_identity("admin"))?;
        println!(
            "deployed fresh canisters (no snapshot in {})",
            snap.display()
        );
        (replica, d.index, d.spawn)
    };
    println!("embedded replica: index {index} spawn {spawn}");
    ensure_system_canisters(&replica)?;
    if !opts.admins.is_empty() {
        add_admins(&replica, index, spawn, &opts.admins)?;
    }

    let ledger = match ledger_module {
        Some(module) => Some(crate::test_ledger::ensure(
            &replica,
            crate::test_ledger::recorded_id(dir),
            module,
            &opts.fund,
        )?),
        None => None,
    };

    let alice = demo_identity("alice");
    let mut videos = Vec::new();
    for (path, source) in &sources {
        videos.push(upload_file(&replica, spawn, alice, path, source)?);
    }
    let ids = write_canister_ids(dir, index, spawn, &videos)?;
    if let Some(ledger) = ledger {
        crate::test_ledger::record_id(dir, ledger)?;
    }
    println!("wrote {}", ids.display());
    save(&replica, dir, Duration::from_secs(10))?;
    if opts.wal {
        // The state is now the checkpoint just saved (plus the log it replayed, if any).
        replica
            .enable_wal(&snap)
            .map_err(|e| Error::State(format!("write-ahead log: {e}")))?;
        println!("write-ahead log on: an acknowledged call survives a crash");
    }
    serve_until_stopped(&replica, dir, opts.port, opts.save_interval, &videos)
}

/// The id of the IC's cycles ledger, which icp-cli calls to create canisters and read balances.
pub const CYCLES_LEDGER_ID: &str = "um5iw-rqaaa-aaaaq-qaaba-cai";
/// The id of the IC's cycles minting canister, which icp-cli asks for the default subnets.
pub const CMC_ID: &str = "rkp4c-7iaaa-aaaaa-aaaca-cai";
/// The operating cycles of each of the two (what the ledger holds for its accounts comes on top,
/// with each deposit).
const SYSTEM_CANISTER_CYCLES: u128 = 100_000_000_000_000;

/// Installs, each where the IC has it and unless a canister is there already (a restored state
/// keeps them, balances included), the two system canisters icp-cli needs to create canisters
/// (docs/serve.md, "Deploying your own canisters"): the cycles ledger (`local/cycles-ledger`,
/// `cycles-ledger.wasm`) and the cycles minting canister's `get_default_subnets`
/// (`local/cmc`, `cmc.wasm`, told serve's subnet id). A wasm folder without those modules (built
/// before they existed) only costs these icp-cli commands: serve says so and goes on; so does a
/// state whose own canisters took the CMC's id (an older serve handed out ids in order).
pub fn ensure_system_canisters(replica: &Replica) -> Result<()> {
    let dir = embedded::wasm_dir();
    let admin = demo_identity("admin");
    let subnet = replica.subnet_id();
    for (name, id, arg) in [
        ("cycles-ledger", CYCLES_LEDGER_ID, candid::encode_args(())),
        ("cmc", CMC_ID, candid::encode_args((subnet,))),
    ] {
        let id = Principal::from_text(id).expect("a valid principal");
        let arg = arg.expect("encoding a principal cannot fail");
        if replica.canister_exists(id) {
            if name == "cmc" && !is_ours(replica, id) {
                eprintln!(
                    "{id} (the cycles minting canister's id) is one of this state's own canisters: \
                     icp-cli needs `--subnet {}` to create canisters here",
                    subnet.to_text()
                );
            }
            continue;
        }
        let wasm = match canvid_devkit::wasm::read_wasm(&dir, name) {
            Ok(w) => w,
            Err(e) => {
                eprintln!(
                    "no {name} module ({e}): icp canister create / icp deploy cannot create \
                     canisters on this serve; run scripts/build-wasm.sh"
                );
                continue;
            }
        };
        replica
            .create_canister_at(id, admin, SYSTEM_CANISTER_CYCLES)
            .map_err(|e| Error::State(format!("creating {name} at {id}: {e}")))?;
        replica
            .install_code(
                canvid_replica::InstallMode::Install,
                id,
                wasm,
                arg,
                Some(admin),
            )
            .map_err(|e| Error::State(format!("installing {name} at {id}: {e}")))?;
        println!("{name} at {id}");
    }
    Ok(())
}

/// Whether `id` runs serve's own CMC module (controlled by serve's admin identity).
fn is_ours(replica: &Replica, id: Principal) -> bool {
    replica.get_controllers(id) == vec![demo_identity("admin")]
}

/// Adds `extra` to the admins of the index and the spawn canister (as the demo admin, which is
/// one of them in every deployment `serve` made), keeping the ones they have.
fn add_admins(
    replica: &Replica,
    index: Principal,
    spawn: Principal,
    extra: &[Principal],
) -> Result<()> {
    let admin = demo_identity("admin");
    let (stats, _): (canvid_types::index::IndexStats, _) =
        embedded::query(replica, index, admin, "stats", ())?;
    let (spawn_stats, _): (canvid_types::spawn::SpawnStats, _) =
        embedded::query(replica, spawn, admin, "stats", ())?;
    for (canister, mut admins) in [(index, stats.admins), (spawn, spawn_stats.admins)] {
        for p in extra {
            if !admins.contains(p) {
                admins.push(*p);
            }
        }
        let ((), _) = embedded::update_ok(replica, canister, admin, "set_admins", (admins,))?;
    }
    println!(
        "admins added: {}",
        extra
            .iter()
            .map(Principal::to_text)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Creates a video canister through the spawn canister and uploads `source` into it.
pub fn upload_file(
    replica: &Replica,
    spawn: Principal,
    owner: Principal,
    path: &Path,
    source: &FileSource,
) -> Result<Principal> {
    let title = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args = CreateVideoArgs {
        title,
        description: String::new(),
        tags: vec![],
        declared_size: source.size(),
        owner: None,
    };
    let (created, _): (CreatedVideo, _) =
        update_ok(replica, spawn, owner, "create_video", (args,))?;
    let client = EmbeddedVideo::new(
        replica,
        created.canister_id,
        owner,
        crate::video_gen::mime_type(path),
    );
    let bar = crate::progress::BarProgress::new(source.size());
    let options = UploadOptions {
        concurrency: 1,
        chunk_size: CHUNK_SIZE,
        ..UploadOptions::default()
    };
    let report = futures::executor::block_on(upload::upload(&client, source, &options, &bar))
        .map_err(|e| Error::Upload(e.to_string()))?;
    drop(bar);
    println!(
        "uploaded {} ({}) to {}: {}",
        path.display(),
        fmt::bytes(report.plan.size),
        created.canister_id,
        client.total_cost()
    );
    Ok(created.canister_id)
}

/// `DIR/canister_ids.json`, in dfx's shape (`{"name": {"network": "id"}}`) so tools that read
/// dfx's file can read it. Entries already there (e.g. other networks, earlier videos) are kept.
pub fn write_canister_ids(
    dir: &Path,
    index: Principal,
    spawn: Principal,
    videos: &[Principal],
) -> Result<PathBuf> {
    let path = dir.join("canister_ids.json");
    let mut map = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&t).ok())
        .unwrap_or_default();
    let mut set = |name: String, id: Principal| {
        let entry = map.entry(name).or_insert_with(|| serde_json::json!({}));
        if !entry.is_object() {
            *entry = serde_json::json!({});
        }
        entry["embedded"] = serde_json::Value::String(id.to_text());
    };
    set("index".into(), index);
    set("spawn".into(), spawn);
    let mut n = 0;
    for v in videos {
        while map.contains_key(&format!("video_{n}")) {
            n += 1;
        }
        map.insert(
            format!("video_{n}"),
            serde_json::json!({ "embedded": v.to_text() }),
        );
    }
    let text =
        serde_json::to_string_pretty(&serde_json::Value::Object(map)).map_err(|e| Error::Io {
            what: "encoding canister_ids.json".into(),
            reason: e.to_string(),
        })?;
    let tmp = dir.join("canister_ids.json.tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(path)
}

/// Ctrl-C and SIGTERM as a channel.
fn stop_signal() -> Result<std::sync::mpsc::Receiver<()>> {
    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .map_err(|e| Error::Gateway(format!("cannot install the Ctrl-C handler: {e}")))?;
    Ok(rx)
}

fn listen(replica: &Arc<Replica>, port: u16) -> Result<canvid_gateway::GatewayHandle> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    canvid_gateway::serve(replica.clone(), addr)
        .map_err(|e| Error::Gateway(format!("cannot listen on {addr}: {e}")))
}

/// Serves `replica` on 127.0.0.1:`port`, saving it to `state` every `interval` and on Ctrl-C /
/// SIGTERM; writes `state/serve.json` while running.
pub fn serve_until_stopped(
    replica: &Arc<Replica>,
    state: &Path,
    port: u16,
    interval: Duration,
    videos: &[Principal],
) -> Result<()> {
    let handle = listen(replica, port)?;
    let info = ServeInfo {
        url: handle.url(),
        pid: std::process::id(),
        root_key: hex::encode(replica.root_key_der()),
        subnet_id: replica.subnet_id().to_text(),
    };
    let json_path = serve_json(state);
    let text = serde_json::to_string_pretty(&info).map_err(|e| Error::State(e.to_string()))?;
    let tmp = state.join("serve.json.tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|_| std::fs::rename(&tmp, &json_path))
        .map_err(|e| Error::io(format!("writing {}", json_path.display()), e))?;
    let rx = stop_signal()?;
    println!("listening on {}", handle.url());
    for v in videos {
        println!("  video  {}", handle.url_for(*v));
    }
    println!(
        "state in {} (saved every {} s and on Ctrl-C)",
        state.display(),
        interval.as_secs()
    );
    println!("Press Ctrl-C to stop.");
    let result = loop {
        match rx.recv_timeout(interval) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break Ok(()),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // Busy now: the next tick saves. Other failures are reported and retried.
                match replica.save_snapshot(&snapshot_dir(state)) {
                    Ok(_) | Err(SnapshotError::Busy) => {}
                    Err(e) => eprintln!("warning: saving the snapshot failed: {e}"),
                }
            }
        }
    };
    println!("\nstopping: saving the state");
    handle.shutdown();
    let saved = save(replica, state, Duration::from_secs(30));
    let _ = std::fs::remove_file(&json_path);
    saved?;
    println!("saved to {}", snapshot_dir(state).display());
    result
}

/// Serves without persistence until Ctrl-C (the end of `canvid demo`).
pub fn serve_until_ctrl_c(replica: &Arc<Replica>, port: u16, videos: &[Principal]) -> Result<()> {
    let handle = listen(replica, port)?;
    println!("\nlistening on {} (loopback only)", handle.url());
    for v in videos {
        println!("  video  {}", handle.url_for(*v));
    }
    println!("Press Ctrl-C to stop.");
    let rx = stop_signal()?;
    let _ = rx.recv();
    println!("\nstopping");
    handle.shutdown();
    Ok(())
}
