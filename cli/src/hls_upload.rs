//! `canvid upload --hls`: one video canister holding the source as its main file (unless
//! `--no-original`) and a prepared HLS tree ([`crate::hls`]) as named files.
//!
//! ## Order and bounds
//! The main file is declared and sent first (as `canvid upload` does), then the named files in
//! batches of at most `MAX_FILES_PER_CALL` (`begin_files`): each batch is declared and its
//! chunks sent before the next batch is declared, in the tree's order (master playlist, rungs
//! from the lowest, subtitles, thumbnails). The canister bounds the bytes declared but not yet
//! written, and each file's growth past what it stores; uploading in declaration order with
//! [`CONCURRENCY`] puts in flight keeps within both, and a `Busy` answer is retried with
//! back-off.
//!
//! ## Resume
//! The set is keyed in `DIR/uploads.json` by the network and a digest over every file's path
//! and digest. Running the same upload again finds the canister, declares the same files again
//! (an identical declaration is accepted), reads which files are complete from `files`, asks
//! `missing_chunks` for the partial ones and sends only what is missing. A ladder transcoded
//! again on the same machine with the same ffmpeg is byte-identical (x264 is deterministic), so
//! `--hls` resumes too; `canvid hls prepare` + `--hls-dir` makes that independent of the
//! machine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use candid::Principal;
use canvid_types::files::{FileInfo, FilePage, FilesArgs, MAX_FILES_PER_CALL};
use canvid_types::spawn::{CreateVideoArgs, CreatedVideo};
use canvid_types::video::{
    ChunkReceipt, ChunkUpload, MissingArgs, MissingChunks, UploadSpec, VideoMetadata, VideoStatus,
};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_bytes::ByteBuf;

use crate::commands::CONCURRENCY;
use crate::error::{Error, Result};
use crate::fmt;
use crate::hls::TreeFile;
use crate::network::{is_transient, Client, Kind};
use crate::upload::{self, ChunkSource, FileSource, Progress, RetryPolicy, UploadPlan, CHUNK_SIZE};

/// What to upload.
pub struct HlsUploadArgs {
    /// The source video, uploaded as the main file; `None` with `--no-original`.
    pub original: Option<PathBuf>,
    /// The prepared tree's files ([`crate::hls::scan`]).
    pub files: Vec<TreeFile>,
    pub title: String,
    pub resume: Option<Principal>,
    /// Test hook: stop after this many chunks were stored.
    pub stop_after_chunks: Option<u32>,
}

/// Retries for `Busy` and network trouble: the canister answers `Busy` while the bytes declared
/// but unwritten are at its bound, which clears as the puts in flight land.
const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 8,
    initial_backoff: Duration::from_millis(200),
    max_backoff: Duration::from_secs(5),
};

async fn retry<T, F, Fut>(what: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < RETRY.max_attempts && is_transient(&e) => {
                tokio::time::sleep(RETRY.delay(attempt)).await;
                attempt += 1;
            }
            Err(e) if attempt > 1 => {
                return Err(match e {
                    Error::Refused { .. } | Error::NotAuthorized { .. } => e,
                    other => {
                        Error::Upload(format!("{what} failed after {attempt} attempts: {other}"))
                    }
                })
            }
            Err(e) => return Err(e),
        }
    }
}

/// One file to send: its path (`None` = the main file), spec and plan.
struct Item {
    path: Option<String>,
    local: PathBuf,
    mime_type: String,
    rendition: Option<canvid_types::files::Rendition>,
    plan: UploadPlan,
}

impl Item {
    fn spec(&self) -> Result<UploadSpec> {
        let mut spec = crate::network::upload_spec(&self.plan, &self.mime_type)?;
        spec.path = self.path.clone();
        spec.rendition = self.rendition.clone();
        Ok(spec)
    }
    fn label(&self) -> &str {
        self.path.as_deref().unwrap_or("the main file")
    }
}

/// Digest naming the whole set, for `uploads.json`: SHA-256 over each file's path and digest.
fn set_digest(items: &[Item]) -> [u8; 32] {
    let mut all = Vec::new();
    for i in items {
        all.extend_from_slice(i.path.as_deref().unwrap_or("").as_bytes());
        all.push(0);
        all.extend_from_slice(&i.plan.file_digest);
    }
    upload::sha256(&all)
}

pub async fn upload_hls(client: &Client, args: HlsUploadArgs) -> Result<()> {
    let total: u64 = args.files.iter().map(|f| f.size).sum::<u64>()
        + match &args.original {
            Some(p) => std::fs::metadata(p)
                .map_err(|e| Error::from_open(p, e))?
                .len(),
            None => 0,
        };
    let bar = crate::progress::BarProgress::new(total);
    let mut items = Vec::new();
    if let Some(p) = &args.original {
        items.push(plan_item(
            None,
            p,
            crate::video_gen::mime_type(p),
            None,
            &bar,
        )?);
    }
    for f in &args.files {
        items.push(plan_item(
            Some(f.path.clone()),
            &f.local,
            f.mime_type,
            f.rendition.clone(),
            &bar,
        )?);
    }
    let key = format!(
        "{} hls {}",
        client.target.url,
        hex::encode(set_digest(&items))
    );
    let dir = &client.target.state_dir;
    let mut pending = crate::commands::read_pending(dir);
    let remembered = pending.get(&key).and_then(|t| Principal::from_text(t).ok());
    let mut video = None;
    for candidate in args.resume.into_iter().chain(remembered) {
        match client
            .call::<VideoMetadata>(Kind::Query, candidate, "metadata", ())
            .await
        {
            Ok(meta) if meta.status != VideoStatus::Ready || args.resume.is_some() => {
                eprintln!(
                    "resuming the upload into {candidate} ({} named file(s) declared)",
                    meta.files.unwrap_or(0)
                );
                video = Some(candidate);
                break;
            }
            Ok(_) => {}
            Err(e) if args.resume.is_none() => eprintln!("not resuming into {candidate}: {e}"),
            Err(e) => return Err(e),
        }
    }
    let video = match video {
        Some(v) => v,
        None => {
            let created: CreatedVideo = client
                .call_ok(
                    Kind::Update,
                    client.spawn()?,
                    "create_video",
                    (CreateVideoArgs {
                        title: args.title.clone(),
                        description: String::new(),
                        tags: vec![],
                        declared_size: total,
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
    crate::commands::write_pending(dir, &pending)?;

    let started = Instant::now();
    let stored_before = list_files(client, video).await?;
    let sender = Sender {
        client,
        video,
        stop_after: args.stop_after_chunks,
        stored: AtomicU32::new(0),
        bar: &bar,
    };
    // What is already there, to start the bar at it.
    let mut work: Vec<(usize, Vec<u32>)> = Vec::new();
    let (main, named): (Vec<&Item>, Vec<&Item>) = items.iter().partition(|i| i.path.is_none());
    if let Some(m) = main.first() {
        let spec = m.spec()?;
        let _: VideoMetadata = retry("begin_upload", || {
            client.call_ok(Kind::Update, video, "begin_upload", (spec.clone(),))
        })
        .await?;
    }
    let mut already = 0u64;
    let mut to_send = 0u32;
    // The main file's missing chunks, then each batch's: declared just before it is sent.
    let main_missing = match main.first() {
        Some(_) => missing(client, video, None).await?,
        None => Vec::new(),
    };
    if let Some(m) = main.first() {
        already += m.plan.size - missing_bytes(&m.plan, &main_missing);
        to_send += main_missing.len() as u32;
        work.push((0, main_missing));
    }
    let named_offset = main.len();
    for (i, item) in named.iter().enumerate() {
        let missing_now = match stored_before.get(item.path.as_deref().unwrap_or("")) {
            Some(f) if f.uploaded_chunks == f.chunk_count && f.chunk_count > 0 => Vec::new(),
            // Partly stored (only a file of several chunks can be): ask once it is declared.
            Some(f) if f.uploaded_chunks > 0 => Vec::from([u32::MAX]),
            _ => (0..item.plan.chunk_count()).collect(),
        };
        if missing_now != [u32::MAX] {
            already += item.plan.size - missing_bytes(&item.plan, &missing_now);
            to_send += missing_now.len() as u32;
        }
        work.push((named_offset + i, missing_now));
    }
    bar.started(total, already, to_send);

    let mut sent = (0u32, 0u64);
    // The main file first.
    if !main.is_empty() {
        let s = sender.send(&items, &work[..1]).await?;
        sent = (sent.0 + s.0, sent.1 + s.1);
    }
    let named_work = &mut work[named_offset..];
    for batch_start in (0..named_work.len()).step_by(MAX_FILES_PER_CALL) {
        let batch_end = (batch_start + MAX_FILES_PER_CALL).min(named_work.len());
        let specs = named[batch_start..batch_end]
            .iter()
            .map(|i| i.spec())
            .collect::<Result<Vec<_>>>()?;
        let declared: u32 = retry("begin_files", || {
            client.call_ok(Kind::Update, video, "begin_files", (specs.clone(),))
        })
        .await?;
        if (declared as usize) < batch_end {
            return Err(Error::Upload(format!(
                "begin_files of {video} reports {declared} named file(s) declared, expected at least {batch_end}"
            )));
        }
        // Partially stored files: ask the canister which chunks it lacks.
        for (idx, m) in named_work[batch_start..batch_end].iter_mut() {
            if m.as_slice() == [u32::MAX] {
                *m = missing(client, video, items[*idx].path.clone()).await?;
            }
        }
        let s = sender
            .send(&items, &named_work[batch_start..batch_end])
            .await?;
        sent = (sent.0 + s.0, sent.1 + s.1);
    }
    // Anything still missing (a put acknowledged but lost) is sent once more before finishing.
    for item in &items {
        let still = missing(client, video, item.path.clone()).await?;
        if !still.is_empty() {
            let idx = items
                .iter()
                .position(|i| i.path == item.path)
                .unwrap_or_default();
            let s = sender.send(&items, &[(idx, still)]).await?;
            sent = (sent.0 + s.0, sent.1 + s.1);
            let again = missing(client, video, item.path.clone()).await?;
            if !again.is_empty() {
                return Err(Error::Upload(format!(
                    "{video} still reports {} chunk(s) of {} missing (first: {})",
                    again.len(),
                    item.label(),
                    again[0]
                )));
            }
        }
    }

    let meta: VideoMetadata = retry("finish_upload", || {
        client.call_ok(Kind::Update, video, "finish_upload", ())
    })
    .await?;
    bar.finished();
    drop(bar);
    verify(client, video, &items, &meta).await?;
    pending.remove(&key);
    crate::commands::write_pending(dir, &pending)?;
    let secs = started.elapsed().as_secs_f64();
    let renditions = meta
        .renditions
        .as_ref()
        .map(|r| {
            r.iter()
                .map(|r| r.rendition.name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    println!(
        "uploaded {} named file(s){} ({}) to {video}: sent {} chunk(s), {} in {secs:.2} s ({}); renditions {renditions}; every digest verified",
        named.len(),
        if main.is_empty() { "" } else { " and the original" },
        fmt::bytes(total),
        sent.0,
        fmt::bytes(sent.1),
        fmt::rate(sent.1, secs),
    );
    println!("{video}");
    Ok(())
}

fn plan_item(
    path: Option<String>,
    local: &std::path::Path,
    mime_type: &str,
    rendition: Option<canvid_types::files::Rendition>,
    progress: &dyn Progress,
) -> Result<Item> {
    let source = FileSource::open(local).map_err(|e| Error::from_open(local, e))?;
    if source.size() == 0 {
        return Err(Error::EmptyFile(local.to_path_buf()));
    }
    let plan = upload::plan(&source, CHUNK_SIZE, progress)
        .map_err(|e| Error::io(format!("reading {}", local.display()), e))?;
    Ok(Item {
        path,
        local: local.to_path_buf(),
        mime_type: mime_type.to_string(),
        rendition,
        plan,
    })
}

fn missing_bytes(plan: &UploadPlan, missing: &[u32]) -> u64 {
    missing
        .iter()
        .filter(|&&i| i < plan.chunk_count())
        .map(|&i| upload::chunk_len(plan.size, plan.chunk_size, i))
        .sum()
}

struct Sender<'a> {
    client: &'a Client,
    video: Principal,
    stop_after: Option<u32>,
    stored: AtomicU32,
    bar: &'a crate::progress::BarProgress,
}

impl Sender<'_> {
    /// Sends the listed chunks of the listed items, [`CONCURRENCY`] puts in flight, in order.
    /// Returns (chunks, bytes) sent.
    async fn send(&self, items: &[Item], work: &[(usize, Vec<u32>)]) -> Result<(u32, u64)> {
        let puts = work
            .iter()
            .flat_map(|(idx, chunks)| chunks.iter().map(move |&c| (*idx, c)))
            .collect::<Vec<_>>();
        let sent: Vec<u64> = stream::iter(puts)
            .map(|(idx, index)| async move {
                let item = &items[idx];
                if index >= item.plan.chunk_count() {
                    return Err(Error::Upload(format!(
                        "{} asks for chunk {index} of {}, which has {} chunk(s): it was declared differently",
                        self.video,
                        item.label(),
                        item.plan.chunk_count()
                    )));
                }
                if let Some(n) = self.stop_after {
                    if self.stored.load(Ordering::SeqCst) >= n {
                        return Err(Error::Interrupted(format!(
                            "stopped after {n} chunk(s) as asked (--stop-after-chunks); video {}",
                            self.video
                        )));
                    }
                }
                let range = item.plan.chunk_range(index);
                let len = range.end - range.start;
                let source = FileSource::open(&item.local)
                    .map_err(|e| Error::from_open(&item.local, e))?;
                let bytes = source
                    .read(range)
                    .map_err(|e| Error::io(format!("reading {}", item.local.display()), e))?;
                let upload = ChunkUpload {
                    index,
                    data: ByteBuf::from(bytes),
                    path: item.path.clone(),
                };
                let what = format!("put_chunk {index} of {}", item.label());
                let _: ChunkReceipt = retry(&what, || {
                    self.client
                        .call_ok(Kind::Update, self.video, "put_chunk", (upload.clone(),))
                })
                .await?;
                self.stored.fetch_add(1, Ordering::SeqCst);
                self.bar.chunk_stored(index, len);
                Ok::<u64, Error>(len)
            })
            .buffered(if self.stop_after.is_some() { 1 } else { CONCURRENCY })
            .try_collect()
            .await?;
        Ok((sent.len() as u32, sent.iter().sum()))
    }
}

/// Every chunk index of a file the canister does not have, all pages.
async fn missing(client: &Client, video: Principal, path: Option<String>) -> Result<Vec<u32>> {
    let mut all = Vec::new();
    let mut start = None;
    loop {
        let args = MissingArgs {
            path: path.clone(),
            start,
            limit: None,
        };
        let page: MissingChunks = retry("missing_chunks", || {
            client.call_ok(Kind::Query, video, "missing_chunks", (args.clone(),))
        })
        .await?;
        all.extend(page.missing);
        match crate::embedded::next_missing_page(video, start, page.next)? {
            Some(next) => start = Some(next),
            None => return Ok(all),
        }
    }
}

/// Every named file of a video, by path (all pages of `files`).
pub async fn list_files(client: &Client, video: Principal) -> Result<BTreeMap<String, FileInfo>> {
    let mut out = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let args = FilesArgs {
            after: after.clone(),
            limit: None,
        };
        let page: FilePage = retry("files", || {
            client.call_ok(Kind::Query, video, "files", (args.clone(),))
        })
        .await?;
        for f in page.files {
            out.insert(f.path.clone(), f);
        }
        match page.next {
            Some(n) if Some(&n) != after.as_ref() => after = Some(n),
            Some(n) => {
                return Err(Error::Verify(format!(
                    "files of {video} did not advance past {n}"
                )))
            }
            None => return Ok(out),
        }
    }
}

/// After `finish_upload`: the video is Ready, the main file's digest is ours, and `files` lists
/// exactly our files, each with our digest, size and rendition.
async fn verify(
    client: &Client,
    video: Principal,
    items: &[Item],
    meta: &VideoMetadata,
) -> Result<()> {
    if meta.status != VideoStatus::Ready {
        return Err(Error::Verify(format!(
            "{video} is {:?} after finish_upload",
            meta.status
        )));
    }
    if let Some(main) = items.iter().find(|i| i.path.is_none()) {
        let digest = crate::embedded::ready_digest(video, meta)?;
        if digest != main.plan.file_digest {
            return Err(Error::Verify(format!(
                "the canister computed digest {} for the main file but it is {}",
                hex::encode(digest),
                hex::encode(main.plan.file_digest)
            )));
        }
    }
    let stored = list_files(client, video).await?;
    let named: Vec<&Item> = items.iter().filter(|i| i.path.is_some()).collect();
    if stored.len() != named.len() {
        return Err(Error::Verify(format!(
            "{video} holds {} named file(s), {} were uploaded",
            stored.len(),
            named.len()
        )));
    }
    for item in named {
        let path = item.path.as_deref().unwrap_or("");
        let f = stored
            .get(path)
            .ok_or_else(|| Error::Verify(format!("{video} does not list {path}")))?;
        let digest = f.digest.as_ref().map(|d| d.as_slice());
        if digest != Some(&item.plan.file_digest[..]) || f.size != item.plan.size {
            return Err(Error::Verify(format!(
                "{video} stores {path} as {} bytes with digest {}, but it is {} bytes with digest {}",
                f.size,
                digest.map(hex::encode).unwrap_or_else(|| "-".into()),
                item.plan.size,
                hex::encode(item.plan.file_digest)
            )));
        }
        if f.rendition != item.rendition {
            return Err(Error::Verify(format!(
                "{video} stores {path} with rendition {:?}, declared {:?}",
                f.rendition, item.rendition
            )));
        }
    }
    Ok(())
}
