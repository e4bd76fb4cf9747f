//! The upload pipeline: chunk a file, hash it, declare it, send the chunks the canister is
//! missing (with bounded concurrency and retries), and check the canister's digest.
//!
//! It is generic over [`VideoClient`], four calls that any transport can provide: the embedded
//! replica (in-process, see `crate::embedded`) now, `ic-agent` against a real network later.
//! The trait's methods are `async` so an agent-based client can have several chunk uploads in
//! flight; a synchronous client (the embedded replica) simply does its work inside the `async fn`
//! and returns a future that is already complete, which makes the pipeline sequential.
//!
//! ## Digests
//! The file digest is the video canister's definition: **SHA-256 over the concatenation of the
//! chunk digests** (each chunk's own SHA-256, in index order), with chunks of [`CHUNK_SIZE`]
//! bytes (the last one shorter). A canister cannot hash a large file in one message, but it can
//! hash each chunk as it arrives and the 32-byte digests at the end. The arithmetic is the one
//! the canister runs, from `canvid_types::protocol` (re-exported here).
//!
//! ## Resume
//! The pipeline never trusts its own memory of what was sent: after `begin` it asks the canister
//! which chunks are missing and sends only those, and before `finish` it asks again. Running the
//! same upload again after a crash, a network failure or Ctrl-C therefore sends only what the
//! canister does not have.
//!
//! ## Concurrency
//! `UploadOptions::concurrency` chunk puts are in flight at once (`buffer_unordered`), so at most
//! that many chunks (2 MB each) are in memory. The embedded replica executes messages one at a
//! time in-process, so concurrency buys nothing there and the CLI uses 1 for it.
//!
//! ## Retries
//! Every client call is retried when [`VideoClient::is_transient`] says its error is transient
//! (a full queue, a busy canister, a network timeout), with exponential backoff
//! ([`RetryPolicy`]); any other error stops the upload at once.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Mutex;
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};
use sha2::{Digest as _, Sha256};

/// Bytes per chunk: below the IC's 2 MiB ingress limit with room for candid framing.
pub const CHUNK_SIZE: u64 = 2_000_000;

/// A SHA-256 digest.
pub type Digest = canvid_types::protocol::Digest32;

/// The protocol's arithmetic, shared with the video canister: `chunk_count(size, chunk_size)`,
/// `chunk_len(size, chunk_size, index)` and `file_digest(chunk digests)`.
pub use canvid_types::protocol::{chunk_count, chunk_len, file_digest};

/// SHA-256 of one buffer.
pub fn sha256(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// What is uploaded: the file's size, its chunking and its digests. Computed by [`plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPlan {
    pub size: u64,
    pub chunk_size: u64,
    /// SHA-256 of each chunk, in index order.
    pub chunk_digests: Vec<Digest>,
    /// [`file_digest`] of `chunk_digests`.
    pub file_digest: Digest,
}

impl UploadPlan {
    pub fn chunk_count(&self) -> u32 {
        // `plan` refuses files with more than u32::MAX chunks, so this cannot truncate.
        self.chunk_digests.len() as u32
    }

    /// Byte range of chunk `index` within the file.
    pub fn chunk_range(&self, index: u32) -> Range<u64> {
        let start = u64::from(index) * self.chunk_size;
        start..(start + self.chunk_size).min(self.size)
    }
}

/// Random access to the bytes being uploaded.
pub trait ChunkSource {
    fn size(&self) -> u64;
    /// Reads exactly `range` (which lies within `0..size()`).
    fn read(&self, range: Range<u64>) -> io::Result<Vec<u8>>;
}

impl ChunkSource for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read(&self, range: Range<u64>) -> io::Result<Vec<u8>> {
        self.get(range.start as usize..range.end as usize)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "range past end of buffer"))
    }
}

impl ChunkSource for Vec<u8> {
    fn size(&self) -> u64 {
        self.as_slice().size()
    }
    fn read(&self, range: Range<u64>) -> io::Result<Vec<u8>> {
        self.as_slice().read(range)
    }
}

/// A file read chunk by chunk, so a large video never has to fit in memory.
pub struct FileSource {
    file: Mutex<std::fs::File>,
    size: u64,
}

impl FileSource {
    pub fn open(path: &std::path::Path) -> io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory",
            ));
        }
        Ok(Self {
            file: Mutex::new(file),
            size: meta.len(),
        })
    }
}

impl ChunkSource for FileSource {
    fn size(&self) -> u64 {
        self.size
    }
    fn read(&self, range: Range<u64>) -> io::Result<Vec<u8>> {
        // A poisoned lock only means another reader panicked mid-read; the File itself is fine
        // because every read seeks first.
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.seek(SeekFrom::Start(range.start))?;
        let mut buf = vec![0; (range.end - range.start) as usize];
        file.read_exact(&mut buf)?;
        Ok(buf)
    }
}

/// Reads `source` once, hashing each chunk. Reports [`Progress::hashed`] after each chunk.
pub fn plan(
    source: &(impl ChunkSource + ?Sized),
    chunk_size: u64,
    progress: &dyn Progress,
) -> io::Result<UploadPlan> {
    if chunk_size == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "chunk size must be positive",
        ));
    }
    let size = source.size();
    let count = chunk_count(size, chunk_size);
    if count > u64::from(u32::MAX) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "file has more than 2^32 chunks",
        ));
    }
    let mut chunk_digests = Vec::with_capacity(count as usize);
    for i in 0..count {
        let start = i * chunk_size;
        let range = start..(start + chunk_size).min(size);
        let len = range.end - range.start;
        chunk_digests.push(sha256(&source.read(range)?));
        progress.hashed(len);
    }
    let file_digest = file_digest(&chunk_digests);
    Ok(UploadPlan {
        size,
        chunk_size,
        chunk_digests,
        file_digest,
    })
}

/// The four calls the pipeline needs from a video canister.
///
/// Implementations map them to the canister's endpoints (`begin_upload`, `put_chunk`,
/// `missing_chunks`, `finish_upload`) over whatever transport they use.
#[allow(async_fn_in_trait)] // the futures are driven by our own executor or the caller's runtime
pub trait VideoClient {
    type Error: fmt::Display;

    /// Declares the upload. Must succeed (not fail) when the *same* upload is already declared,
    /// so that a resumed upload can call it again.
    async fn begin(&self, plan: &UploadPlan) -> Result<(), Self::Error>;
    /// Stores chunk `index`. Storing a chunk that is already stored must not be an error.
    async fn put(&self, index: u32, bytes: Vec<u8>) -> Result<(), Self::Error>;
    /// Every chunk index not yet stored, ascending.
    async fn missing(&self) -> Result<Vec<u32>, Self::Error>;
    /// Completes the upload; returns the file digest the canister computed.
    async fn finish(&self) -> Result<Digest, Self::Error>;
    /// Whether retrying the same call may succeed.
    fn is_transient(&self, error: &Self::Error) -> bool;
    /// Waits before a retry. The default blocks the thread, which is right for synchronous
    /// clients; an async client overrides it with its runtime's timer.
    async fn sleep(&self, delay: Duration) {
        std::thread::sleep(delay)
    }
}

/// Exponential backoff: attempt `n` (1-based) that failed transiently waits
/// `min(initial * 2^(n-1), max)` before attempt `n + 1`; after `max_attempts` the error stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Delay after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Receives progress of an upload. Methods take `&self` (implementations use interior
/// mutability, as `indicatif::ProgressBar` does) so concurrent puts can report.
pub trait Progress {
    /// `bytes` more of the file were hashed.
    fn hashed(&self, _bytes: u64) {}
    /// Sending starts: `total` bytes in the file, of which `already_stored` the canister already
    /// had (a resumed upload), and `chunks_to_send` chunks will be sent.
    fn started(&self, _total: u64, _already_stored: u64, _chunks_to_send: u32) {}
    /// Chunk `index` (`bytes` long) was stored.
    fn chunk_stored(&self, _index: u32, _bytes: u64) {}
    /// A call failed transiently and will be retried after `delay`.
    fn retrying(&self, _step: Step, _attempt: u32, _delay: Duration, _error: &str) {}
    /// The canister accepted the finished upload.
    fn finished(&self) {}
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Which call of the pipeline failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Begin,
    Put(u32),
    Missing,
    Finish,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Begin => f.write_str("begin_upload"),
            Step::Put(i) => write!(f, "put_chunk {i}"),
            Step::Missing => f.write_str("missing_chunks"),
            Step::Finish => f.write_str("finish_upload"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadOptions {
    pub chunk_size: u64,
    /// Chunk puts in flight at once (at least 1).
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Rounds of "ask what is missing, send it" before giving up on chunks that the canister
    /// still reports missing although their puts succeeded.
    pub max_rounds: u32,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            chunk_size: CHUNK_SIZE,
            concurrency: 4,
            retry: RetryPolicy::default(),
            max_rounds: 3,
        }
    }
}

#[derive(Debug)]
pub enum UploadError<E> {
    /// Reading the file failed.
    Read(io::Error),
    /// A call failed permanently, or transiently `attempts` times.
    Call { step: Step, attempts: u32, error: E },
    /// Chunks the canister still reports missing after `max_rounds` rounds.
    StillMissing { missing: Vec<u32> },
    /// The canister's digest differs from ours.
    DigestMismatch { expected: Digest, actual: Digest },
}

impl<E: fmt::Display> fmt::Display for UploadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadError::Read(e) => write!(f, "cannot read the file: {e}"),
            UploadError::Call {
                step,
                attempts: 1,
                error,
            } => write!(f, "{step} failed: {error}"),
            UploadError::Call {
                step,
                attempts,
                error,
            } => write!(f, "{step} failed after {attempts} attempts: {error}"),
            UploadError::StillMissing { missing } => {
                write!(
                    f,
                    "the canister still reports {} chunk(s) missing (first: {})",
                    missing.len(),
                    missing[0]
                )
            }
            UploadError::DigestMismatch { expected, actual } => write!(
                f,
                "the canister computed digest {} but the file's is {}",
                hex::encode(actual),
                hex::encode(expected)
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for UploadError<E> {}

/// What an upload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadReport {
    pub plan: UploadPlan,
    /// Chunks sent by this run (a resumed upload sends fewer than `plan.chunk_count()`).
    pub chunks_sent: u32,
    pub bytes_sent: u64,
    /// Transient failures that were retried.
    pub retries: u32,
}

/// Runs `call` until it succeeds, fails permanently, or has failed `policy.max_attempts` times.
pub async fn with_retry<C, T, F, Fut>(
    client: &C,
    policy: &RetryPolicy,
    step: Step,
    progress: &dyn Progress,
    retries: &std::sync::atomic::AtomicU32,
    mut call: F,
) -> Result<T, UploadError<C::Error>>
where
    C: VideoClient + ?Sized,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, C::Error>>,
{
    let max = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(error) if attempt < max && client.is_transient(&error) => {
                let delay = policy.delay(attempt);
                progress.retrying(step, attempt, delay, &error.to_string());
                retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                client.sleep(delay).await;
                attempt += 1;
            }
            Err(error) => {
                return Err(UploadError::Call {
                    step,
                    attempts: attempt,
                    error,
                })
            }
        }
    }
}

/// Uploads `source` through `client`: hash, begin, send missing chunks, verify, finish.
pub async fn upload<C: VideoClient + ?Sized>(
    client: &C,
    source: &(impl ChunkSource + ?Sized),
    options: &UploadOptions,
    progress: &dyn Progress,
) -> Result<UploadReport, UploadError<C::Error>> {
    let plan = plan(source, options.chunk_size, progress).map_err(UploadError::Read)?;
    upload_planned(client, source, plan, options, progress).await
}

/// [`upload`] with a plan computed beforehand (e.g. to show the digest before sending).
pub async fn upload_planned<C: VideoClient + ?Sized>(
    client: &C,
    source: &(impl ChunkSource + ?Sized),
    plan: UploadPlan,
    options: &UploadOptions,
    progress: &dyn Progress,
) -> Result<UploadReport, UploadError<C::Error>> {
    let retries = std::sync::atomic::AtomicU32::new(0);
    let policy = &options.retry;
    with_retry(client, policy, Step::Begin, progress, &retries, || {
        client.begin(&plan)
    })
    .await?;

    let mut missing = with_retry(client, policy, Step::Missing, progress, &retries, || {
        client.missing()
    })
    .await?;
    let missing_bytes: u64 = missing
        .iter()
        .map(|&i| chunk_len(plan.size, plan.chunk_size, i))
        .sum();
    progress.started(
        plan.size,
        plan.size.saturating_sub(missing_bytes),
        missing.len() as u32,
    );

    let mut chunks_sent = 0u32;
    let mut bytes_sent = 0u64;
    let mut round = 0;
    while !missing.is_empty() {
        if round == options.max_rounds.max(1) {
            return Err(UploadError::StillMissing { missing });
        }
        round += 1;
        let puts = stream::iter(missing.iter().copied())
            .map(|index| {
                let plan = &plan;
                let retries = &retries;
                async move {
                    if index >= plan.chunk_count() {
                        // The canister asked for a chunk the plan does not have: it was declared
                        // with a different size. Sending nothing would loop; report it.
                        return Err(UploadError::StillMissing {
                            missing: vec![index],
                        });
                    }
                    let range = plan.chunk_range(index);
                    let len = range.end - range.start;
                    let bytes = source.read(range).map_err(UploadError::Read)?;
                    with_retry(client, policy, Step::Put(index), progress, retries, || {
                        client.put(index, bytes.clone())
                    })
                    .await?;
                    progress.chunk_stored(index, len);
                    Ok::<u64, UploadError<C::Error>>(len)
                }
            })
            .buffer_unordered(options.concurrency.max(1));
        let sent: Vec<u64> = puts.try_collect().await?;
        chunks_sent += sent.len() as u32;
        bytes_sent += sent.iter().sum::<u64>();
        missing = with_retry(client, policy, Step::Missing, progress, &retries, || {
            client.missing()
        })
        .await?;
    }

    let actual = with_retry(client, policy, Step::Finish, progress, &retries, || {
        client.finish()
    })
    .await?;
    if actual != plan.file_digest {
        return Err(UploadError::DigestMismatch {
            expected: plan.file_digest,
            actual,
        });
    }
    progress.finished();
    Ok(UploadReport {
        plan,
        chunks_sent,
        bytes_sent,
        retries: retries.into_inner(),
    })
}
