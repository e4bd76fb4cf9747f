//! `canvid upload | get | ls | transfer | info` over `ic-agent` (see [`crate::network`]).
//!
//! ## Resuming uploads
//! `upload` remembers the video canister of an unfinished upload in `DIR/uploads.json`, keyed by
//! the network and the file digest: running the same upload again (same file, same network)
//! continues in that canister, and the pipeline sends only the chunks the canister reports
//! missing. `--resume ID` names the canister explicitly. The entry is removed when the upload
//! is finished and verified.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candid::Principal;
use canvid_types::index::{ListArgs, Page};
use canvid_types::spawn::{CreateVideoArgs, CreatedVideo};
use canvid_types::video::{
    CanisterInfo, ChangeOwnerArgs, ChangeOwnerResult, ChunkDigests, DigestsArgs, VideoMetadata,
    VideoStatus,
};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_bytes::ByteBuf;

use crate::error::{Error, Result};
use crate::fmt;
use crate::network::{AgentVideo, Client, Kind};
use crate::upload::{self, ChunkSource, FileSource, UploadOptions, CHUNK_SIZE};

/// Chunk calls in flight at once (uploads and downloads).
pub const CONCURRENCY: usize = 4;

pub struct UploadArgs {
    pub file: PathBuf,
    pub title: Option<String>,
    pub resume: Option<Principal>,
    pub stop_after_chunks: Option<u32>,
}

fn uploads_file(dir: &Path) -> PathBuf {
    dir.join("uploads.json")
}

type Pending = BTreeMap<String, String>;

fn read_pending(dir: &Path) -> Pending {
    std::fs::read_to_string(uploads_file(dir))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn write_pending(dir: &Path, p: &Pending) -> Result<()> {
    let path = uploads_file(dir);
    let text = serde_json::to_string_pretty(p).map_err(|e| Error::State(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn pending_key(client: &Client, digest: &[u8; 32]) -> String {
    format!("{} {}", client.target.url, hex::encode(digest))
}

pub async fn upload(client: &Client, args: UploadArgs) -> Result<()> {
    let path = &args.file;
    let source = FileSource::open(path).map_err(|e| Error::from_open(path, e))?;
    if source.size() == 0 {
        return Err(Error::EmptyFile(path.clone()));
    }
    let bar = crate::progress::BarProgress::new(source.size());
    let plan = upload::plan(&source, CHUNK_SIZE, &bar)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let dir = &client.target.state_dir;
    let key = pending_key(client, &plan.file_digest);
    let mut pending = read_pending(dir);
    let remembered = pending.get(&key).and_then(|t| Principal::from_text(t).ok());
    let mut video = None;
    for candidate in args.resume.into_iter().chain(remembered) {
        match client
            .call::<VideoMetadata>(Kind::Query, candidate, "metadata", ())
            .await
        {
            Ok(meta) if meta.status != VideoStatus::Ready || args.resume.is_some() => {
                eprintln!(
                    "resuming the upload into {candidate} ({} of {} chunk(s) stored)",
                    meta.uploaded_chunks, meta.chunk_count
                );
                video = Some(candidate);
                break;
            }
            Ok(_) => {}
            // The remembered canister is gone (e.g. a serve restarted from an older save).
            Err(e) if args.resume.is_none() => {
                eprintln!("not resuming into {candidate}: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    let video = match video {
        Some(v) => v,
        None => {
            let title = args.title.clone().unwrap_or_else(|| {
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let created: CreatedVideo = client
                .call_ok(
                    Kind::Update,
                    client.spawn()?,
                    "create_video",
                    (CreateVideoArgs {
                        title,
                        description: String::new(),
                        tags: vec![],
                        declared_size: source.size(),
                        owner: None,
                    },),
                )
                .await?;
            eprintln!(
                "created video canister {} ({} cycles)",
                created.canister_id,
                fmt::cycles(created.cycles_given)
            );
            created.canister_id
        }
    };
    pending.insert(key.clone(), video.to_text());
    write_pending(dir, &pending)?;

    let mut client_v = AgentVideo::new(client, video, crate::video_gen::mime_type(path));
    client_v.stop_after = args.stop_after_chunks;
    let options = UploadOptions {
        // Deterministic for the test hook: one chunk at a time.
        concurrency: if args.stop_after_chunks.is_some() {
            1
        } else {
            CONCURRENCY
        },
        ..UploadOptions::default()
    };
    let started = Instant::now();
    let size = plan.size;
    let total = plan.chunk_count();
    let report = upload::upload_planned(&client_v, &source, plan, &options, &bar)
        .await
        .map_err(|e| match e {
            upload::UploadError::Call { error, .. } => match error {
                Error::Interrupted(m) => Error::Interrupted(format!("{m}; video {video}")),
                other => other,
            },
            other => Error::Upload(other.to_string()),
        })?;
    drop(bar);
    let secs = started.elapsed().as_secs_f64();
    pending.remove(&key);
    write_pending(dir, &pending)?;
    println!(
        "uploaded {} ({}) to {video}: sent {} of {total} chunk(s), {} in {secs:.2} s ({}), digest {} verified",
        path.display(),
        fmt::bytes(size),
        report.chunks_sent,
        fmt::bytes(report.bytes_sent),
        fmt::rate(report.bytes_sent, secs),
        hex::encode(report.plan.file_digest),
    );
    println!("{video}");
    Ok(())
}

/// Downloads a Ready video chunk by chunk (`get_chunk`, several in flight, written in order).
/// Every chunk is checked against the canister's `chunk_digests` before it is written (so not
/// even stdout gets a bad chunk), and those digests against the published file digest.
pub async fn get(client: &Client, video: Principal, output: Option<PathBuf>) -> Result<()> {
    let meta: VideoMetadata = client.call(Kind::Query, video, "metadata", ()).await?;
    if meta.status != VideoStatus::Ready {
        return Err(Error::Verify(format!(
            "video {video} is not ready ({:?}, {} of {} chunk(s) uploaded): finish its upload first",
            meta.status, meta.uploaded_chunks, meta.chunk_count
        )));
    }
    let expected = crate::embedded::ready_digest(video, &meta)?;
    let chunk_digests = fetch_chunk_digests(client, video, meta.chunk_count, &expected).await?;
    let (mut out, tmp): (Box<dyn Write>, Option<tempfile::NamedTempFile>) = match &output {
        Some(p) => {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| Error::io(format!("creating a file in {}", dir.display()), e))?;
            let f = tmp
                .reopen()
                .map_err(|e| Error::io("opening the temporary file", e))?;
            (Box::new(std::io::BufWriter::new(f)), Some(tmp))
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let started = Instant::now();
    let chunks = stream::iter(0..meta.chunk_count)
        .map(|i| async move {
            let bytes: ByteBuf = client
                .call_ok(Kind::Query, video, "get_chunk", (i,))
                .await?;
            Ok::<_, Error>((i, bytes.into_vec()))
        })
        .buffered(CONCURRENCY);
    futures::pin_mut!(chunks);
    let mut digests = Vec::with_capacity(meta.chunk_count as usize);
    let mut written = 0u64;
    while let Some((i, bytes)) = chunks.try_next().await? {
        let want = if i + 1 == meta.chunk_count {
            meta.size - u64::from(i) * u64::from(meta.chunk_size)
        } else {
            u64::from(meta.chunk_size)
        };
        if bytes.len() as u64 != want {
            return Err(Error::Verify(format!(
                "chunk {i} of {video} has {} bytes, expected {want}",
                bytes.len()
            )));
        }
        let digest = upload::sha256(&bytes);
        if digest != chunk_digests[i as usize] {
            return Err(Error::Verify(format!(
                "chunk {i} of {video} hashes to {} but its stored digest is {} (stopped before writing it)",
                hex::encode(digest),
                hex::encode(chunk_digests[i as usize])
            )));
        }
        digests.push(digest);
        out.write_all(&bytes)
            .map_err(|e| Error::io("writing the video", e))?;
        written += bytes.len() as u64;
    }
    out.flush().map_err(|e| Error::io("writing the video", e))?;
    drop(out);
    let actual = upload::file_digest(&digests);
    if actual != expected {
        return Err(Error::Verify(format!(
            "the bytes of {video} hash to {} but the canister's digest is {} (nothing was saved)",
            hex::encode(actual),
            hex::encode(expected)
        )));
    }
    if let (Some(tmp), Some(path)) = (tmp, &output) {
        tmp.persist(path)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e.error))?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "wrote {} ({}) in {secs:.2} s ({}), digest {} verified",
            path.display(),
            fmt::bytes(written),
            fmt::rate(written, secs),
            hex::encode(actual)
        );
    }
    Ok(())
}

/// All chunk digests of a Ready video, page by page, checked against its file digest.
async fn fetch_chunk_digests(
    client: &Client,
    video: Principal,
    chunk_count: u32,
    file_digest: &[u8; 32],
) -> Result<Vec<[u8; 32]>> {
    let mut digests = Vec::with_capacity(chunk_count as usize);
    let mut start = 0;
    loop {
        let page: ChunkDigests = client
            .call_ok(
                Kind::Query,
                video,
                "chunk_digests",
                (DigestsArgs { start, limit: None },),
            )
            .await?;
        for (offset, d) in page.digests.iter().enumerate() {
            let index = start as usize + offset;
            let d = d
                .as_ref()
                .and_then(|d| <[u8; 32]>::try_from(d.as_slice()).ok())
                .ok_or_else(|| {
                    Error::Verify(format!(
                        "video {video} has no 32-byte digest for chunk {index} although it is Ready"
                    ))
                })?;
            digests.push(d);
        }
        match page.next {
            Some(next) if next > start => start = next,
            Some(_) => {
                return Err(Error::Verify(format!(
                    "chunk_digests of {video} did not advance past chunk {start}"
                )))
            }
            None => break,
        }
    }
    if digests.len() != chunk_count as usize || upload::file_digest(&digests) != *file_digest {
        return Err(Error::Verify(format!(
            "the chunk digests of {video} ({} of {chunk_count}) do not combine into its file digest {}",
            digests.len(),
            hex::encode(file_digest)
        )));
    }
    Ok(digests)
}

/// Lists the index's videos by creator or owner (default: the caller's own), every page.
pub async fn ls(
    client: &Client,
    creator: Option<Principal>,
    owner: Option<Principal>,
) -> Result<()> {
    let index = client.index()?;
    let (method, who) = match (creator, owner) {
        (Some(c), _) => ("videos_by_creator", c),
        (None, Some(o)) => ("videos_by_owner", o),
        (None, None) => ("videos_by_owner", client.me),
    };
    let mut cursor = None;
    let mut n = 0usize;
    loop {
        let page: Page = client
            .call(
                Kind::Query,
                index,
                method,
                (ListArgs {
                    principal: who,
                    cursor,
                    limit: None,
                },),
            )
            .await?;
        for e in &page.videos {
            println!(
                "{}  creator {}  owner {}  transfers {}",
                e.video, e.creator, e.owner, e.transfer_seq
            );
        }
        n += page.videos.len();
        match page.next_cursor {
            Some(c) if Some(c) != cursor => cursor = Some(c),
            _ => break,
        }
    }
    let by = if creator.is_some() {
        "created"
    } else {
        "owned"
    };
    eprintln!("{n} video(s) {by} by {who}");
    Ok(())
}

pub async fn transfer(
    client: &Client,
    video: Principal,
    new_owner: Principal,
    keep_controllers: Option<Vec<Principal>>,
) -> Result<()> {
    let r: ChangeOwnerResult = client
        .call_ok(
            Kind::Update,
            video,
            "change_owner",
            (ChangeOwnerArgs {
                new_owner,
                keep_controllers,
            },),
        )
        .await?;
    let note = if r.index_notified {
        "index updated"
    } else {
        "index notification queued (retried by the video canister's timer)"
    };
    println!(
        "transferred {video} to {new_owner} (transfer #{}; controllers {}; {note})",
        r.transfer_seq,
        r.controllers
            .iter()
            .map(Principal::to_text)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

pub async fn info(client: &Client, video: Principal) -> Result<()> {
    let m: VideoMetadata = client.call(Kind::Query, video, "metadata", ()).await?;
    let c: CanisterInfo = client.call(Kind::Query, video, "canister_info", ()).await?;
    println!("video      {video}");
    println!("title      {}", m.title);
    println!("status     {:?}", m.status);
    println!(
        "size       {} ({} chunk(s) of {}; {} uploaded)",
        fmt::bytes(m.size),
        m.chunk_count,
        fmt::bytes(u64::from(m.chunk_size)),
        m.uploaded_chunks
    );
    println!("mime type  {}", m.mime_type);
    println!(
        "digest     {}",
        m.digest
            .as_ref()
            .map(|d| hex::encode(d.as_slice()))
            .unwrap_or_else(|| "-".into())
    );
    println!("creator    {}", m.creator);
    println!("owner      {}", m.owner);
    println!("transfers  {}", m.transfer_seq);
    println!("cycles     {}", fmt::cycles(c.cycles));
    println!(
        "storage    {} stable, {} heap",
        fmt::bytes(c.stable_memory_bytes),
        fmt::bytes(c.heap_bytes)
    );
    Ok(())
}
