//! Serves a real video file from a video canister on the embedded replica, over HTTP.
//!
//! ```text
//! cargo run -p canvid-tests --example serve_video -- FILE [--chunk-size BYTES] [--mime TYPE]
//! ```
//!
//! Deploys index + spawn through the test harness (needs the canister modules, see
//! `canvid_tests::wasm`), creates a video canister through the spawn canister, uploads FILE in
//! chunks (default 1,000,000 bytes) and starts `canvid-gateway` on 127.0.0.1 (free port). Then:
//!
//! - stdout, first line: `{"url": "http://<id>.localhost:<port>/", "canister": "<id>", ...}`;
//! - serves until stdin is closed (EOF);
//! - stdout, then: the gateway log, one JSON object per canister call, and a final
//!   `{"done": true, "requests": N}` line.
//!
//! Progress and errors go to stderr. Used by the browser test (`tests/browser`).

use std::io::{Read, Write};
use std::sync::Arc;

use canvid_tests::clients::ok;
use canvid_tests::deploy::deploy;
use canvid_tests::{principal, Backend, ReplicaBackend};
use canvid_types::spawn::CreateVideoArgs;
use canvid_types::video::{UploadSpec, MAX_CHUNK_SIZE};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

struct Args {
    file: String,
    chunk_size: u32,
    mime: Option<String>,
}

fn usage(msg: &str) -> ! {
    eprintln!("serve_video: {msg}\nusage: serve_video FILE [--chunk-size BYTES] [--mime TYPE]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut file = None;
    let mut chunk_size = 1_000_000u32;
    let mut mime = None;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--chunk-size" => {
                chunk_size = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|c| (1..=MAX_CHUNK_SIZE).contains(c))
                    .unwrap_or_else(|| usage(&format!("--chunk-size needs 1..={MAX_CHUNK_SIZE}")))
            }
            "--mime" => mime = Some(it.next().unwrap_or_else(|| usage("--mime needs a value"))),
            _ if file.is_none() && !a.starts_with("--") => file = Some(a),
            _ => usage(&format!("unexpected argument {a:?}")),
        }
    }
    Args {
        file: file.unwrap_or_else(|| usage("FILE is required")),
        chunk_size,
        mime,
    }
}

fn mime_for(path: &str) -> &'static str {
    match path
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mp4" | "m4v") => "video/mp4",
        Some("webm") => "video/webm",
        Some("ogv") => "video/ogg",
        Some("mov") => "video/quicktime",
        _ => "application/octet-stream",
    }
}

fn main() {
    let args = parse_args();
    let bytes = std::fs::read(&args.file)
        .unwrap_or_else(|e| usage(&format!("cannot read {}: {e}", args.file)));
    if bytes.is_empty() {
        usage("FILE is empty");
    }
    let mime = args
        .mime
        .clone()
        .unwrap_or_else(|| mime_for(&args.file).to_string());

    let rb = Arc::new(ReplicaBackend::new());
    let b: &dyn Backend = &*rb;
    let d = deploy(b);
    let owner = principal("serve-video-owner");
    let created = ok(
        "create_video",
        d.spawn_client().create_video(
            owner,
            &CreateVideoArgs {
                title: args.file.rsplit('/').next().unwrap_or("video").to_string(),
                description: "served by canvid-tests' serve_video example".into(),
                tags: vec![],
                declared_size: bytes.len() as u64,
                owner: None,
            },
        ),
    );
    let v = d.video(created.canister_id);
    let chunks: Vec<&[u8]> = bytes.chunks(args.chunk_size as usize).collect();
    let digests: Vec<ByteBuf> = chunks
        .iter()
        .map(|c| ByteBuf::from(Sha256::digest(c).to_vec()))
        .collect();
    ok(
        "begin_upload",
        v.begin_upload(
            owner,
            &UploadSpec {
                path: None,
                rendition: None,
                mime_type: mime.clone(),
                total_size: bytes.len() as u64,
                chunk_size: args.chunk_size,
                chunk_digests: Some(digests),
                file_digest: None,
                duration_ms: None,
                encryption: None,
            },
        ),
    );
    for (i, c) in chunks.iter().enumerate() {
        ok(
            &format!("put_chunk {i}"),
            v.put_chunk(owner, i as u32, c.to_vec()),
        );
    }
    let meta = ok("finish_upload", v.finish_upload(owner));
    eprintln!(
        "serve_video: uploaded {} bytes in {} chunks of {} into {} ({mime})",
        meta.size, meta.chunk_count, meta.chunk_size, created.canister_id
    );

    let gw = canvid_gateway::serve_backend(
        rb.replica.clone(),
        "127.0.0.1:0".parse().expect("loopback address"),
    )
    .unwrap_or_else(|e| {
        eprintln!("serve_video: cannot start the gateway: {e}");
        std::process::exit(1)
    });
    let url = gw.url_for(created.canister_id);
    let mut out = std::io::stdout().lock();
    let first = serde_json::json!({
        "url": url,
        "video_url": format!("{url}video"),
        "canister": created.canister_id.to_text(),
        "port": gw.port(),
        "size": meta.size,
        "chunk_size": meta.chunk_size,
        "chunk_count": meta.chunk_count,
        "mime_type": mime,
    });
    writeln!(out, "{first}").and_then(|()| out.flush()).ok();

    // Serve until the parent closes our stdin.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);

    let log = gw.log();
    for e in &log {
        let line = serde_json::json!({
            "method": e.method,
            "url": e.url,
            "canister": e.canister.map(|c| c.to_text()),
            "range": e.range,
            "status": e.status,
            "body_len": e.body_len,
            "upgraded": e.upgraded,
            "streamed": e.streamed,
            "verified": e.verified,
        });
        writeln!(out, "{line}").ok();
    }
    writeln!(
        out,
        "{}",
        serde_json::json!({"done": true, "requests": log.len()})
    )
    .ok();
    out.flush().ok();
    gw.shutdown();
}
