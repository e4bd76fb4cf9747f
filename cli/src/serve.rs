//! `canvid serve` and the serving end of `canvid demo`: the embedded replica behind the HTTP
//! gateway on loopback.
//!
//! Persistence: the embedded replica keeps its state in memory only (it has no snapshot API
//! yet), so every start deploys fresh canisters. `--state DIR` receives `canister_ids.json`
//! describing the running deployment; it does not restore anything.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candid::Principal;
use canvid_replica::Replica;
use canvid_types::spawn::{CreateVideoArgs, CreatedVideo};

use crate::embedded::{self, demo_identity, update_ok, Deployment, EmbeddedVideo, Wasms};
use crate::error::{Error, Result};
use crate::fmt;
use crate::upload::{self, ChunkSource, FileSource, UploadOptions, CHUNK_SIZE};

pub struct ServeOptions {
    pub port: u16,
    pub state: Option<PathBuf>,
    /// Videos to upload (as the demo identity "alice") before serving.
    pub upload: Vec<PathBuf>,
}

pub fn run(opts: ServeOptions) -> Result<()> {
    let wasms = Wasms::load()?;
    // Open every file first: a typo should fail before anything is deployed.
    let mut sources = Vec::new();
    for path in &opts.upload {
        let source = FileSource::open(path).map_err(|e| Error::from_open(path, e))?;
        if source.size() == 0 {
            return Err(Error::EmptyFile(path.clone()));
        }
        sources.push((path.clone(), source));
    }
    if let Some(dir) = &opts.state {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }

    let replica = Arc::new(Replica::new());
    let admin = demo_identity("admin");
    let d = embedded::deploy(replica.clone(), &wasms, admin)?;
    println!(
        "embedded replica: index {} spawn {} (admin {admin})",
        d.index, d.spawn
    );
    println!("note: state is in memory only; it is lost when this process stops");

    let alice = demo_identity("alice");
    let mut videos = Vec::new();
    for (path, source) in &sources {
        let video = upload_file(&replica, &d, alice, path, source)?;
        videos.push(video);
    }

    if let Some(dir) = &opts.state {
        let file = write_canister_ids(dir, &d, &videos)?;
        println!("wrote {}", file.display());
    }
    serve_until_ctrl_c(&d, opts.port, &videos)
}

/// Creates a video canister through the spawn canister and uploads `source` into it.
pub fn upload_file(
    replica: &Replica,
    d: &Deployment,
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
        update_ok(replica, d.spawn, owner, "create_video", (args,))?;
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
/// dfx's file can read it.
pub fn write_canister_ids(dir: &Path, d: &Deployment, videos: &[Principal]) -> Result<PathBuf> {
    let mut map = serde_json::Map::new();
    let entry = |id: Principal| serde_json::json!({ "embedded": id.to_text() });
    map.insert("index".into(), entry(d.index));
    map.insert("spawn".into(), entry(d.spawn));
    for (i, v) in videos.iter().enumerate() {
        map.insert(format!("video_{i}"), entry(*v));
    }
    let path = dir.join("canister_ids.json");
    let text =
        serde_json::to_string_pretty(&serde_json::Value::Object(map)).map_err(|e| Error::Io {
            what: "encoding canister_ids.json".into(),
            reason: e.to_string(),
        })?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(path)
}

/// Serves the gateway on 127.0.0.1:`port` until Ctrl-C.
#[cfg(feature = "gateway")]
pub fn serve_until_ctrl_c(d: &Deployment, port: u16, videos: &[Principal]) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let handle = canvid_gateway::serve(d.replica.clone(), addr)
        .map_err(|e| Error::Gateway(format!("cannot listen on {addr}: {e}")))?;
    println!(
        "\nHTTP gateway on http://127.0.0.1:{}/ (loopback only)",
        handle.port()
    );
    for v in videos {
        println!("  video  {}", handle.url_for(*v));
    }
    println!("  index  {}", d.index);
    println!("  spawn  {}", d.spawn);
    println!("Press Ctrl-C to stop.");
    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .map_err(|e| Error::Gateway(format!("cannot install the Ctrl-C handler: {e}")))?;
    let _ = rx.recv();
    println!("\nstopping the gateway");
    handle.shutdown();
    Ok(())
}

#[cfg(not(feature = "gateway"))]
pub fn serve_until_ctrl_c(_d: &Deployment, port: u16, _videos: &[Principal]) -> Result<()> {
    let _ = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    Err(Error::NotSupported(
        "serving over HTTP: this build has no gateway (build canvid-cli with the `gateway` feature); use --no-serve".into(),
    ))
}
