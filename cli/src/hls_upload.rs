//! `canvid upload --hls`: one video canister holding the source as its main file (unless
//! `--no-original`) and a prepared HLS tree ([`crate::hls`]) as named files.
//!
//! ## Order and bounds
//! The main file is declared and sent first (as `canvid upload` does), then the named files in
//! batches of at most `MAX_FILES_PER_CALL` (`begin_files`): each batch is declared and its
//! chunks sent before the next batch is declared, in the tree's order (master playlist, rungs
//! from the lowest, subtitles, thumbnails). The canister bounds the bytes declared but not yet
//! written, and each file's growth past what it stores; uploading in declaration order with
//! [`CONCURRENCY`] puts in flight keeps within both. A batch is also cut at
//! [`MAX_BATCH_BYTES`]; a `begin_files` the canister answers `Busy` is halved and tried again,
//! and any other `Busy` answer is retried with back-off.
//!
//! ## Resume
//! The set is keyed in `DIR/uploads.json` by the network and a digest over every file's path
//! and digest. Running the same upload again finds the canister, declares the same files again
//! (an identical declaration is accepted), reads which files are complete from `files`, asks
//! `missing_chunks` for the partial ones and sends only what is missing. The files must be the
//! same bytes: `--hls` keeps its ladder in `DIR/hls-work/` until the upload is finished (x264
//! under a VBV cap with frame threads does not encode a source to the same bytes twice), and
//! `--hls-dir` uploads the files on disk.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use candid::Principal;
use canvid_types::files::{FileInfo, FilePage, FilesArgs, MAX_FILES_PER_CALL};
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
pub const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 8,
    initial_backoff: Duration::from_millis(200),
    max_backoff: Duration::from_secs(5),
};

/// Most bytes declared in one `begin_files` batch: like the per-file window of ~64 chunks, it
/// keeps the declared-but-unwritten bytes small. A batch the canister still finds too large
/// (`Busy`) is halved.
pub const MAX_BATCH_BYTES: u64 = 64 * CHUNK_SIZE;

/// The calls a set upload makes on one video canister (the agent in `canvid`, an in-memory
/// canister in the tests).
#[allow(async_fn_in_trait)] // driven by the caller's runtime
pub trait FilesClient {
    fn video(&self) -> Principal;
    async fn begin_upload(&self, spec: UploadSpec) -> Result<()>;
    /// Returns the number of named files now declared.
    async fn begin_files(&self, specs: Vec<UploadSpec>) -> Result<u32>;
    async fn put_chunk(&self, chunk: ChunkUpload) -> Result<()>;
    /// Every missing chunk of the file (all pages).
    async fn missing_chunks(&self, path: Option<String>) -> Result<Vec<u32>>;
    /// Every named file (all pages of `files`), by path.
    async fn files(&self) -> Result<BTreeMap<String, FileInfo>>;
    async fn finish_upload(&self) -> Result<VideoMetadata>;
    async fn sleep(&self, delay: Duration) {
        tokio::time::sleep(delay).await
    }
}

fn is_busy(e: &Error) -> bool {
    matches!(e, Error::Refused { error, .. } if matches!(**error, canvid_types::Error::Busy { .. }))
}

async fn retry<C: FilesClient + ?Sized, T, F, Fut>(client: &C, what: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < RETRY.max_attempts && is_transient(&e) => {
                client.sleep(RETRY.delay(attempt)).await;
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

/// One file of a set: its path (`None` = the main file), declaration and plan.
#[derive(Clone, Debug)]
pub struct SetItem {
    pub path: Option<String>,
    pub local: PathBuf,
    pub mime_type: String,
    pub rendition: Option<canvid_types::files::Rendition>,
    pub plan: UploadPlan,
}

impl SetItem {
    /// Hashes `local` (reporting on `progress`) into an item.
    pub fn plan(
        path: Option<String>,
        local: &std::path::Path,
        mime_type: &str,
        rendition: Option<canvid_types::files::Rendition>,
        progress: &dyn Progress,
    ) -> Result<SetItem> {
        let source = FileSource::open(local).map_err(|e| Error::from_open(local, e))?;
        if source.size() == 0 {
            return Err(Error::EmptyFile(local.to_path_buf()));
        }
        let plan = upload::plan(&source, CHUNK_SIZE, progress)
            .map_err(|e| Error::io(format!("reading {}", local.display()), e))?;
        Ok(SetItem {
            path,
            local: local.to_path_buf(),
            mime_type: mime_type.to_string(),
            rendition,
            plan,
        })
    }

    pub fn spec(&self) -> Result<UploadSpec> {
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
pub fn set_digest(items: &[SetItem]) -> [u8; 32] {
    let mut all = Vec::new();
    for i in items {
        all.extend_from_slice(i.path.as_deref().unwrap_or("").as_bytes());
        all.push(0);
        all.extend_from_slice(&i.plan.file_digest);
    }
    upload::sha256(&all)
}

/// What a set upload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetReport {
    pub chunks_sent: u32,
    pub bytes_sent: u64,
    /// `begin_files` calls, and the most files one of them declared.
    pub batches: u32,
    pub largest_batch: usize,
    pub metadata: VideoMetadata,
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
        items.push(SetItem::plan(
            None,
            p,
            crate::video_gen::mime_type(p),
            None,
            &bar,
        )?);
    }
    for f in &args.files {
        items.push(SetItem::plan(
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
    let (video, resumed) = crate::commands::find_or_create_video(
        client,
        args.resume,
        remembered,
        args.title.clone(),
        total,
    )
    .await?;
    let resumed = resumed.is_some();
    pending.insert(key.clone(), video.to_text());
    crate::commands::write_pending(dir, &pending)?;

    let started = Instant::now();
    let agent = AgentFiles { client, video };
    let report = upload_set(&agent, &items, resumed, args.stop_after_chunks, &bar).await?;
    drop(bar);
    pending.remove(&key);
    crate::commands::write_pending(dir, &pending)?;
    let secs = started.elapsed().as_secs_f64();
    let renditions = report
        .metadata
        .renditions
        .iter()
        .flatten()
        .map(|r| r.rendition.name.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let named = items.iter().filter(|i| i.path.is_some()).count();
    println!(
        "uploaded {named} named file(s){} ({}) to {video}: sent {} chunk(s), {} in {secs:.2} s ({}); renditions {renditions}; every digest verified",
        if named == items.len() { "" } else { " and the original" },
        fmt::bytes(total),
        report.chunks_sent,
        fmt::bytes(report.bytes_sent),
        fmt::rate(report.bytes_sent, secs),
    );
    println!("{video}");
    Ok(())
}

/// Uploads a set into the video behind `client`: the main file (if any) first, then the named
/// files batch by batch, each batch declared then sent; then `finish_upload` and [`verify`].
/// Only what the canister lacks is sent: with `resumed`, what it stores is read first (a new
/// video stores nothing, so nothing is asked).
pub async fn upload_set<C: FilesClient + ?Sized>(
    client: &C,
    items: &[SetItem],
    resumed: bool,
    stop_after: Option<u32>,
    progress: &dyn Progress,
) -> Result<SetReport> {
    let video = client.video();
    let total: u64 = items.iter().map(|i| i.plan.size).sum();
    let stored_before = if resumed {
        retry(client, "files", || client.files()).await?
    } else {
        BTreeMap::new()
    };
    let sender = Sender {
        client,
        stop_after,
        stored: AtomicU32::new(0),
        progress,
    };
    let main = items.iter().position(|i| i.path.is_none());
    let mut work: Vec<(usize, Vec<u32>)> = Vec::new();
    if let Some(m) = main {
        let spec = items[m].spec()?;
        retry(client, "begin_upload", || client.begin_upload(spec.clone())).await?;
        let missing = retry(client, "missing_chunks", || client.missing_chunks(None)).await?;
        work.push((m, missing));
    }
    let named: Vec<usize> = (0..items.len()).filter(|&i| Some(i) != main).collect();
    for &i in &named {
        let item = &items[i];
        let missing = match stored_before.get(item.path.as_deref().unwrap_or("")) {
            Some(f) if f.chunk_count > 0 && f.uploaded_chunks == f.chunk_count => Vec::new(),
            // Partly stored (only a file of several chunks can be): asked once it is declared.
            Some(f) if f.uploaded_chunks > 0 => vec![u32::MAX],
            _ => (0..item.plan.chunk_count()).collect(),
        };
        work.push((i, missing));
    }
    let known: Vec<&(usize, Vec<u32>)> = work.iter().filter(|w| w.1 != [u32::MAX]).collect();
    let to_send: u32 = known.iter().map(|w| w.1.len() as u32).sum();
    let missing_now: u64 = known
        .iter()
        .map(|(i, m)| missing_bytes(&items[*i].plan, m))
        .sum();
    progress.started(total, total - missing_now, to_send);

    let mut sent = (0u32, 0u64);
    let mut add = |s: (u32, u64)| sent = (sent.0 + s.0, sent.1 + s.1);
    let named_from = usize::from(main.is_some());
    if main.is_some() {
        add(sender.send(items, &work[..1]).await?);
    }
    let mut batches = 0u32;
    let mut largest_batch = 0usize;
    let mut start = named_from;
    let mut count_cap = MAX_FILES_PER_CALL;
    while start < work.len() {
        // The next batch: at most `count_cap` files and MAX_BATCH_BYTES (at least one file).
        let mut end = start;
        let mut bytes = 0u64;
        while end < work.len() && end - start < count_cap {
            let size = items[work[end].0].plan.size;
            if end > start && bytes + size > MAX_BATCH_BYTES {
                break;
            }
            bytes += size;
            end += 1;
        }
        let specs = work[start..end]
            .iter()
            .map(|(i, _)| items[*i].spec())
            .collect::<Result<Vec<_>>>()?;
        let declared = match client.begin_files(specs.clone()).await {
            Ok(n) => n,
            // More than the canister will hold unwritten: declare fewer at a time.
            Err(e) if is_busy(&e) && end - start > 1 => {
                count_cap = (end - start) / 2;
                continue;
            }
            Err(e) if is_transient(&e) => {
                retry(client, "begin_files", || client.begin_files(specs.clone())).await?
            }
            Err(e) => return Err(e),
        };
        batches += 1;
        largest_batch = largest_batch.max(end - start);
        // Every file of this batch and the earlier ones is declared now (a resumed upload may
        // have declared more before).
        if (declared as usize) < end - named_from {
            return Err(Error::Upload(format!(
                "begin_files of {video} reports {declared} named file(s) declared, expected at least {}",
                end - named_from
            )));
        }
        for w in work[start..end].iter_mut() {
            if w.1 == [u32::MAX] {
                let path = items[w.0].path.clone();
                w.1 = retry(client, "missing_chunks", || {
                    client.missing_chunks(path.clone())
                })
                .await?;
            }
        }
        add(sender.send(items, &work[start..end]).await?);
        start = end;
    }

    // A put acknowledged but not stored is sent once more before finishing.
    for (i, item) in items.iter().enumerate() {
        let path = item.path.clone();
        let still = retry(client, "missing_chunks", || {
            client.missing_chunks(path.clone())
        })
        .await?;
        if !still.is_empty() {
            add(sender.send(items, &[(i, still)]).await?);
            let again = retry(client, "missing_chunks", || {
                client.missing_chunks(path.clone())
            })
            .await?;
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

    let metadata = retry(client, "finish_upload", || client.finish_upload()).await?;
    progress.finished();
    verify(client, items, &metadata).await?;
    Ok(SetReport {
        chunks_sent: sent.0,
        bytes_sent: sent.1,
        batches,
        largest_batch,
        metadata,
    })
}

fn missing_bytes(plan: &UploadPlan, missing: &[u32]) -> u64 {
    missing
        .iter()
        .filter(|&&i| i < plan.chunk_count())
        .map(|&i| upload::chunk_len(plan.size, plan.chunk_size, i))
        .sum()
}

struct Sender<'a, C: ?Sized> {
    client: &'a C,
    stop_after: Option<u32>,
    stored: AtomicU32,
    progress: &'a dyn Progress,
}

impl<C: FilesClient + ?Sized> Sender<'_, C> {
    /// Sends the listed chunks of the listed items, [`CONCURRENCY`] puts in flight, in order.
    /// Returns (chunks, bytes) sent.
    async fn send(&self, items: &[SetItem], work: &[(usize, Vec<u32>)]) -> Result<(u32, u64)> {
        let video = self.client.video();
        let puts = work
            .iter()
            .flat_map(|(idx, chunks)| chunks.iter().map(move |&c| (*idx, c)))
            .collect::<Vec<_>>();
        let sent: Vec<u64> = stream::iter(puts)
            .map(|(idx, index)| async move {
                let item = &items[idx];
                if index >= item.plan.chunk_count() {
                    return Err(Error::Upload(format!(
                        "{video} asks for chunk {index} of {}, which has {} chunk(s): it was declared differently",
                        item.label(),
                        item.plan.chunk_count()
                    )));
                }
                if let Some(n) = self.stop_after {
                    if self.stored.load(Ordering::SeqCst) >= n {
                        return Err(Error::Interrupted(format!(
                            "stopped after {n} chunk(s) as asked (--stop-after-chunks); video {video}"
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
                retry(self.client, &what, || self.client.put_chunk(upload.clone())).await?;
                self.stored.fetch_add(1, Ordering::SeqCst);
                self.progress.chunk_stored(index, len);
                Ok::<u64, Error>(len)
            })
            .buffered(if self.stop_after.is_some() { 1 } else { CONCURRENCY })
            .try_collect()
            .await?;
        Ok((sent.len() as u32, sent.iter().sum()))
    }
}

/// After `finish_upload`: the video is Ready, the main file's digest is ours, and `files` lists
/// exactly our files, each with our size, digest and rendition.
async fn verify<C: FilesClient + ?Sized>(
    client: &C,
    items: &[SetItem],
    meta: &VideoMetadata,
) -> Result<()> {
    let video = client.video();
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
    let stored = retry(client, "files", || client.files()).await?;
    let named: Vec<&SetItem> = items.iter().filter(|i| i.path.is_some()).collect();
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

/// [`FilesClient`] over the agent.
pub struct AgentFiles<'a> {
    pub client: &'a Client,
    pub video: Principal,
}

impl FilesClient for AgentFiles<'_> {
    fn video(&self) -> Principal {
        self.video
    }

    async fn begin_upload(&self, spec: UploadSpec) -> Result<()> {
        let _: VideoMetadata = self
            .client
            .call_ok(Kind::Update, self.video, "begin_upload", (spec,))
            .await?;
        Ok(())
    }

    async fn begin_files(&self, specs: Vec<UploadSpec>) -> Result<u32> {
        self.client
            .call_ok(Kind::Update, self.video, "begin_files", (specs,))
            .await
    }

    async fn put_chunk(&self, chunk: ChunkUpload) -> Result<()> {
        let _: ChunkReceipt = self
            .client
            .call_ok(Kind::Update, self.video, "put_chunk", (chunk,))
            .await?;
        Ok(())
    }

    async fn missing_chunks(&self, path: Option<String>) -> Result<Vec<u32>> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let page: MissingChunks = self
                .client
                .call_ok(
                    Kind::Query,
                    self.video,
                    "missing_chunks",
                    (MissingArgs {
                        path: path.clone(),
                        start,
                        limit: None,
                    },),
                )
                .await?;
            all.extend(page.missing);
            match crate::embedded::next_missing_page(self.video, start, page.next)? {
                Some(next) => start = Some(next),
                None => return Ok(all),
            }
        }
    }

    async fn files(&self) -> Result<BTreeMap<String, FileInfo>> {
        let mut out = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page: FilePage = self
                .client
                .call_ok(
                    Kind::Query,
                    self.video,
                    "files",
                    (FilesArgs {
                        after: after.clone(),
                        limit: None,
                    },),
                )
                .await?;
            for f in page.files {
                out.insert(f.path.clone(), f);
            }
            match page.next {
                Some(n) if Some(&n) != after.as_ref() => after = Some(n),
                Some(n) => {
                    return Err(Error::Verify(format!(
                        "files of {} did not advance past {n}",
                        self.video
                    )))
                }
                None => return Ok(out),
            }
        }
    }

    async fn finish_upload(&self) -> Result<VideoMetadata> {
        self.client
            .call_ok(Kind::Update, self.video, "finish_upload", ())
            .await
    }
}

/// `canvid get ID --path P`: a named file, chunk by chunk (`get_file_chunk`); the chunks'
/// SHA-256 digests must combine into the file digest `files` lists before anything is written.
pub async fn get_named(
    client: &Client,
    video: Principal,
    path: &str,
    output: Option<PathBuf>,
) -> Result<()> {
    use std::io::Write;
    let agent = AgentFiles { client, video };
    let files = agent.files().await?;
    let info = files
        .get(path)
        .ok_or_else(|| Error::Input(format!("{video} has no named file {path}")))?;
    let digest = info
        .digest
        .as_ref()
        .and_then(|d| <[u8; 32]>::try_from(d.as_slice()).ok())
        .ok_or_else(|| {
            Error::Verify(format!(
                "{path} of {video} has no digest yet: the video is not Ready"
            ))
        })?;
    let mut bytes = Vec::with_capacity(info.size as usize);
    let mut chunk_digests = Vec::new();
    for index in 0..info.chunk_count {
        let chunk: ByteBuf = client
            .call_ok(
                Kind::Query,
                video,
                "get_file_chunk",
                (canvid_types::files::FileChunkArgs {
                    path: path.to_string(),
                    index,
                },),
            )
            .await?;
        chunk_digests.push(upload::sha256(&chunk));
        bytes.extend_from_slice(&chunk);
    }
    if bytes.len() as u64 != info.size || upload::file_digest(&chunk_digests) != digest {
        return Err(Error::Verify(format!(
            "{path} of {video}: {} bytes read hash to {}, but the file is {} bytes with digest {}",
            bytes.len(),
            hex::encode(upload::file_digest(&chunk_digests)),
            info.size,
            hex::encode(digest)
        )));
    }
    match output {
        Some(p) => std::fs::write(&p, &bytes)
            .map_err(|e| Error::io(format!("writing {}", p.display()), e))?,
        None => std::io::stdout()
            .lock()
            .write_all(&bytes)
            .map_err(|e| Error::io("writing the file", e))?,
    }
    eprintln!(
        "{path}: {} ({}), digest {} verified",
        fmt::bytes(info.size),
        info.mime_type,
        hex::encode(digest)
    );
    Ok(())
}
