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
use canvid_types::encryption::DEFAULT_KEY_NAME;
use canvid_types::index::{ListArgs, Page};
use canvid_types::spawn::{CreateVideoArgs, CreatedVideo};
use canvid_types::video::{
    CanisterInfo, ChangeOwnerArgs, ChangeOwnerResult, ChunkDigests, ControlStatus, DigestsArgs,
    OfferArgs, OwnershipOffer, VideoMetadata, VideoStatus,
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
    /// `--encrypt`: upload the ciphertext (`Some`), under this vetKD key if named.
    pub encrypt: Option<EncryptArgs>,
}

/// `upload --encrypt [--key-name NAME]`.
#[derive(Clone, Debug, Default)]
pub struct EncryptArgs {
    pub key_name: Option<String>,
}

fn uploads_file(dir: &Path) -> PathBuf {
    dir.join("uploads.json")
}

type Pending = BTreeMap<String, String>;

pub(crate) fn read_pending(dir: &Path) -> Pending {
    std::fs::read_to_string(uploads_file(dir))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

pub(crate) fn write_pending(dir: &Path, p: &Pending) -> Result<()> {
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

/// An encrypted upload is remembered by its plaintext's digest (the ciphertext's depends on the
/// video canister, which is what is looked up), apart from plain uploads of the same file.
fn encrypted_pending_key(client: &Client, plain_digest: &[u8; 32]) -> String {
    format!(
        "{} encrypted {}",
        client.target.url,
        hex::encode(plain_digest)
    )
}

pub async fn upload(client: &Client, args: UploadArgs) -> Result<()> {
    let path = &args.file;
    let source = FileSource::open(path).map_err(|e| Error::from_open(path, e))?;
    if source.size() == 0 {
        return Err(Error::EmptyFile(path.clone()));
    }
    let bar = crate::progress::BarProgress::new(source.size());
    // An encrypted upload hashes the plaintext here only to find an unfinished upload of it.
    let chunk_size = match args.encrypt {
        Some(_) => u64::from(crate::encrypted::PLAIN_CHUNK_SIZE),
        None => CHUNK_SIZE,
    };
    let plan = upload::plan(&source, chunk_size, &bar)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let key = match args.encrypt {
        Some(_) => encrypted_pending_key(client, &plan.file_digest),
        None => pending_key(client, &plan.file_digest),
    };
    let dir = &client.target.state_dir;
    let mut pending = read_pending(dir);
    let remembered = pending.get(&key).and_then(|t| Principal::from_text(t).ok());
    let declared_size = match args.encrypt {
        Some(_) => crate::encrypted::new_encryption(source.size(), DEFAULT_KEY_NAME).stored_size(),
        None => source.size(),
    };
    let title = args.title.clone().unwrap_or_else(|| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let (video, resumed) =
        find_or_create_video(client, args.resume, remembered, title, declared_size).await?;
    pending.insert(key.clone(), video.to_text());
    write_pending(dir, &pending)?;

    let mut client_v = AgentVideo::new(client, video, crate::video_gen::mime_type(path));
    client_v.stop_after = args.stop_after_chunks;
    let report = match &args.encrypt {
        None => run_pipeline(&client_v, &source, plan, &bar, args.stop_after_chunks).await?,
        Some(e) => {
            drop(bar);
            let declared = resumed.as_ref().and_then(|m| m.encryption.as_ref());
            let enc = crate::encrypted::encryption_for(
                video,
                declared,
                source.size(),
                e.key_name.as_deref(),
            )?;
            crate::encrypted::make_private(client, video).await?;
            let (aes_key, _) = crate::encrypted::video_key(
                client,
                video,
                Some(enc.key_name.clone()),
                Some(enc.key_epoch),
            )
            .await?;
            let cipher = crate::encrypted::cipher_for(
                video,
                &aes_key,
                &enc,
                enc.stored_size(),
                enc.stored_chunk_size() as u32,
            )?;
            let stored = crate::encrypted::EncryptedSource::new(&source, cipher);
            let bar = crate::progress::BarProgress::new(stored.size());
            let plan = upload::plan(&stored, enc.stored_chunk_size(), &bar)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            client_v.encryption = Some(enc);
            run_pipeline(&client_v, &stored, plan, &bar, args.stop_after_chunks).await?
        }
    };
    pending.remove(&key);
    write_pending(dir, &pending)?;
    println!(
        "uploaded {} ({}) to {video}: sent {} of {} chunk(s), {} in {:.2} s ({}), digest {} verified",
        path.display(),
        fmt::bytes(source.size()),
        report.chunks_sent,
        report.plan.chunk_count(),
        fmt::bytes(report.bytes_sent),
        report.secs,
        fmt::rate(report.bytes_sent, report.secs),
        hex::encode(report.plan.file_digest),
    );
    if let Some(enc) = &client_v.encryption {
        println!(
            "encrypted end to end ({}, vetKD key {}, epoch {}): the canister holds {} of \
             ciphertext; viewers on the allowlist (`canvid access viewers add {video} \
             PRINCIPAL`) decrypt it with `canvid get`",
            enc.scheme,
            enc.key_name,
            enc.key_epoch,
            fmt::bytes(enc.stored_size())
        );
    }
    println!("{video}");
    Ok(())
}

/// The video canister to upload into: `resume` (`--resume ID`), else `remembered` (the one of an
/// unfinished upload of the same file or set) unless it is finished, else a new one made by the
/// spawn canister with `title` and `declared_size`. With the metadata of a resumed one.
/// `canvid upload` and `canvid upload --hls` share it.
pub(crate) async fn find_or_create_video(
    client: &Client,
    resume: Option<Principal>,
    remembered: Option<Principal>,
    title: String,
    declared_size: u64,
) -> Result<(Principal, Option<VideoMetadata>)> {
    for candidate in resume.into_iter().chain(remembered) {
        match client
            .call::<VideoMetadata>(Kind::Query, candidate, "metadata", ())
            .await
        {
            Ok(meta) if meta.status != VideoStatus::Ready || resume.is_some() => {
                let files = match meta.files.unwrap_or(0) {
                    0 => String::new(),
                    n => format!(", {n} named file(s) declared"),
                };
                eprintln!(
                    "resuming the upload into {candidate} ({} of {} chunk(s) stored{files})",
                    meta.uploaded_chunks, meta.chunk_count
                );
                return Ok((candidate, Some(meta)));
            }
            Ok(_) => {}
            // The remembered canister is gone (e.g. a serve restarted from an older save).
            Err(e) if resume.is_none() => {
                eprintln!("not resuming into {candidate}: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    let created: CreatedVideo = client
        .call_ok(
            Kind::Update,
            client.spawn()?,
            "create_video",
            (CreateVideoArgs {
                title,
                description: String::new(),
                tags: vec![],
                declared_size,
                owner: None,
            },),
        )
        .await?;
    eprintln!(
        "created video canister {} ({})",
        created.canister_id,
        fmt::cycles(created.cycles_given)
    );
    Ok((created.canister_id, None))
}

/// What [`run_pipeline`] did.
struct PipelineReport {
    plan: upload::UploadPlan,
    chunks_sent: u32,
    bytes_sent: u64,
    secs: f64,
}

/// Runs the upload pipeline for `plan` of `source` into `client_v`'s video.
async fn run_pipeline(
    client_v: &AgentVideo<'_>,
    source: &(impl ChunkSource + ?Sized),
    plan: upload::UploadPlan,
    bar: &crate::progress::BarProgress,
    stop_after_chunks: Option<u32>,
) -> Result<PipelineReport> {
    let video = client_v.video;
    let options = UploadOptions {
        // Deterministic for the test hook: one chunk at a time.
        concurrency: if stop_after_chunks.is_some() {
            1
        } else {
            CONCURRENCY
        },
        ..UploadOptions::default()
    };
    let started = Instant::now();
    let report = upload::upload_planned(client_v, source, plan, &options, bar)
        .await
        .map_err(|e| match e {
            upload::UploadError::Call { error, .. } => match error {
                Error::Interrupted(m) => Error::Interrupted(format!("{m}; video {video}")),
                other => other,
            },
            other => Error::Upload(other.to_string()),
        })?;
    Ok(PipelineReport {
        plan: report.plan,
        chunks_sent: report.chunks_sent,
        bytes_sent: report.bytes_sent,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// Downloads a Ready video chunk by chunk (`get_chunk`, several in flight, written in order).
/// Every chunk is checked against the canister's `chunk_digests` before it is written (so not
/// even stdout gets a bad chunk), and those digests against the file digest of the canister's
/// certified `/metadata.json` ([`certified_metadata`]): `metadata` and `chunk_digests` are
/// plain queries one replica answers, the certified document is signed by the subnet.
///
/// An encrypted video (`VideoMetadata::encryption`) is decrypted unless `raw`: the key is fetched
/// before any output file is created (a refused caller leaves nothing behind), each verified
/// chunk is decrypted and authenticated (GCM) before it is written, and the digests checked are
/// the stored ciphertext's.
pub async fn get(
    client: &Client,
    video: Principal,
    output: Option<PathBuf>,
    raw: bool,
) -> Result<()> {
    let meta: VideoMetadata = client.call(Kind::Query, video, "metadata", ()).await?;
    if meta.status != VideoStatus::Ready {
        return Err(Error::Verify(format!(
            "video {video} is not ready ({:?}, {} of {} chunk(s) uploaded): finish its upload first",
            meta.status, meta.uploaded_chunks, meta.chunk_count
        )));
    }
    let claimed = crate::embedded::ready_digest(video, &meta)?;
    let certified = certified_metadata(client, video).await?;
    let expected = certified.check(video, &meta, &claimed)?;
    let chunk_digests = fetch_chunk_digests(client, video, meta.chunk_count, &expected).await?;
    let cipher = match (&meta.encryption, raw) {
        (Some(enc), false) => Some(decryption_cipher(client, video, &meta, enc).await?),
        _ => None,
    };
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
        let bytes = match &cipher {
            Some(c) => c
                .decrypt_chunk(i, &bytes)
                .map_err(|e| Error::Verify(format!("{video}: {e} (stopped before writing it)")))?,
            None => bytes,
        };
        out.write_all(&bytes)
            .map_err(|e| Error::io("writing the video", e))?;
        written += bytes.len() as u64;
    }
    out.flush().map_err(|e| Error::io("writing the video", e))?;
    drop(out);
    let actual = upload::file_digest(&digests);
    if actual != expected {
        return Err(Error::Verify(format!(
            "the bytes of {video} hash to {} but the canister's certified digest is {} (nothing was saved)",
            hex::encode(actual),
            hex::encode(expected)
        )));
    }
    if let (Some(tmp), Some(path)) = (tmp, &output) {
        tmp.persist(path)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e.error))?;
        let secs = started.elapsed().as_secs_f64();
        let what = if cipher.is_some() {
            "decrypted, every chunk authenticated, ciphertext digest"
        } else {
            "digest"
        };
        eprintln!(
            "wrote {} ({}) in {secs:.2} s ({}), {what} {} verified",
            path.display(),
            fmt::bytes(written),
            fmt::rate(written, secs),
            hex::encode(actual)
        );
    }
    Ok(())
}

/// The cipher that decrypts `video`'s stored file for this identity (its key from `video_key`).
async fn decryption_cipher(
    client: &Client,
    video: Principal,
    meta: &VideoMetadata,
    enc: &canvid_types::encryption::Encryption,
) -> Result<canvid_encryption::VideoCipher> {
    let (key, answer) = crate::encrypted::video_key(client, video, None, None).await?;
    if (answer.key_name.as_str(), answer.key_epoch) != (enc.key_name.as_str(), enc.key_epoch) {
        return Err(Error::Verify(format!(
            "{video} sent the key of {} epoch {}, but the video is encrypted under {} epoch {}",
            answer.key_name, answer.key_epoch, enc.key_name, enc.key_epoch
        )));
    }
    crate::encrypted::cipher_for(video, &key, enc, meta.size, meta.chunk_size)
}

/// The fields of a video's certified `/metadata.json` that a download relies on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedMetadata {
    pub status: String,
    pub digest: Option<[u8; 32]>,
    pub size: u64,
    pub chunk_size: u32,
    pub chunk_count: u32,
}

impl CertifiedMetadata {
    /// Checks the `metadata` query's answer (and its digest `claimed`) against the certified
    /// document; returns the certified file digest.
    pub fn check(
        &self,
        video: Principal,
        meta: &VideoMetadata,
        claimed: &[u8; 32],
    ) -> Result<[u8; 32]> {
        let Some(digest) = self.digest else {
            return Err(Error::Verify(format!(
                "the certified {METADATA_PATH} of {video} has no file digest (status {})",
                self.status
            )));
        };
        if digest != *claimed {
            return Err(Error::Verify(format!(
                "video {video}: the metadata query says the file digest is {}, the certified {METADATA_PATH} {} (an answer was forged)",
                hex::encode(claimed),
                hex::encode(digest)
            )));
        }
        if (self.size, self.chunk_size, self.chunk_count)
            != (meta.size, meta.chunk_size, meta.chunk_count)
        {
            return Err(Error::Verify(format!(
                "video {video}: the metadata query gives {} bytes in {} chunk(s) of {}, the certified {METADATA_PATH} {} in {} of {}",
                meta.size, meta.chunk_count, meta.chunk_size, self.size, self.chunk_count, self.chunk_size
            )));
        }
        Ok(digest)
    }
}

/// Where the video canister serves its metadata document (certified, `docs/http.md`).
pub const METADATA_PATH: &str = "/metadata.json";

/// A certificate may be at most this old: the HTTP gateways' default, 5 minutes.
const MAX_CERT_AGE_NS: u128 = 5 * 60 * 1_000_000_000;

/// The `http_request` query for `/metadata.json`, verified as the HTTP gateways do (response
/// verification v2, the certificate against the agent's root key).
///
/// Every network the CLI reaches goes through the IC HTTP interface (`canvid serve` included,
/// whose replica certifies like the IC with its own root key, which `serve.json` gives), so the
/// certified document is always there; no download falls back to the uncertified digest.
pub async fn certified_metadata(client: &Client, video: Principal) -> Result<CertifiedMetadata> {
    use ic_http_certification::{HttpRequest, HttpResponse};
    let request = HttpRequest::get(METADATA_PATH)
        .with_certificate_version(2)
        .build();
    let response: HttpResponse<'static> = client
        .call(Kind::Query, video, "http_request", (request.clone(),))
        .await?;
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let root_key = client.agent.read_root_key();
    verify_metadata_answer(video, request, response, &root_key, now_ns)
}

/// Verifies an answer for `/metadata.json` (see [`certified_metadata`]) and reads the document
/// from the verified response.
pub fn verify_metadata_answer(
    video: Principal,
    request: ic_http_certification::HttpRequest<'_>,
    response: ic_http_certification::HttpResponse<'_>,
    root_key: &[u8],
    now_ns: u128,
) -> Result<CertifiedMetadata> {
    let fail =
        |what: String| Error::Verify(format!("the certified {METADATA_PATH} of {video} {what}"));
    let info = ic_response_verification::verify_request_response_pair(
        request,
        response,
        video.as_slice(),
        now_ns,
        MAX_CERT_AGE_NS,
        root_key,
        2,
    )
    .map_err(|e| fail(format!("did not verify: {e}")))?;
    if info.verification_version < 2 {
        return Err(fail(format!(
            "verified as version {} only",
            info.verification_version
        )));
    }
    let verified = info
        .response
        .ok_or_else(|| fail("verified without a response".into()))?;
    if verified.status_code != Some(200) {
        return Err(fail(format!(
            "answered HTTP {:?} (certified status)",
            verified.status_code
        )));
    }
    #[derive(serde::Deserialize)]
    struct Doc {
        status: String,
        digest: Option<String>,
        size: u64,
        chunk_size: u32,
        chunk_count: u32,
    }
    let doc: Doc = serde_json::from_slice(&verified.body)
        .map_err(|e| fail(format!("is not the expected JSON: {e}")))?;
    let digest = match doc.digest {
        None => None,
        Some(h) => Some(
            hex::decode(&h)
                .ok()
                .and_then(|d| <[u8; 32]>::try_from(d).ok())
                .ok_or_else(|| fail(format!("has a malformed digest '{h}'")))?,
        ),
    };
    Ok(CertifiedMetadata {
        status: doc.status,
        digest,
        size: doc.size,
        chunk_size: doc.chunk_size,
        chunk_count: doc.chunk_count,
    })
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
                (DigestsArgs {
                    path: None,
                    start,
                    limit: None,
                },),
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

/// `change_owner`, then the canister's controllers read from the IC's certified state
/// (`read_state`): they must be exactly the ones `change_owner` returned, and with `--keep` /
/// `--keep-none` exactly {new owner, video} ∪ the kept ones, else the command fails (the
/// transfer has happened all the same). The certified controllers and module hash are printed.
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
                keep_controllers: keep_controllers.clone(),
            },),
        )
        .await?;
    report_transfer(client, video, new_owner, keep_controllers, r).await
}

/// `offer_ownership`: the first step of a two-step transfer (security review L4).
pub async fn offer(
    client: &Client,
    video: Principal,
    new_owner: Principal,
    keep_controllers: Option<Vec<Principal>>,
) -> Result<()> {
    let o: OwnershipOffer = client
        .call_ok(
            Kind::Update,
            video,
            "offer_ownership",
            (OfferArgs {
                new_owner,
                keep_controllers,
            },),
        )
        .await?;
    println!(
        "offered {video} to {} until {} (ns since the epoch); they complete it with `canvid accept {video}`",
        o.new_owner, o.expires_at
    );
    Ok(())
}

/// `cancel_offer`: withdraws the pending offer.
pub async fn cancel_offer(client: &Client, video: Principal) -> Result<()> {
    let () = client
        .call_ok(Kind::Update, video, "cancel_offer", ())
        .await?;
    println!("no offer is pending on {video}");
    Ok(())
}

/// `accept_ownership` by the offered identity, then the certified checks of [`transfer`] with the
/// offer's controllers to keep.
pub async fn accept(client: &Client, video: Principal) -> Result<()> {
    let m: VideoMetadata = client.call(Kind::Query, video, "metadata", ()).await?;
    let keep = m.pending_offer.and_then(|o| o.keep_controllers);
    let me = client.agent.get_principal().map_err(|e| Error::Identity {
        path: Default::default(),
        reason: e,
    })?;
    let r: ChangeOwnerResult = client
        .call_ok(Kind::Update, video, "accept_ownership", ())
        .await?;
    report_transfer(client, video, me, keep, r).await
}

/// Prints a transfer's outcome and checks the certified controllers (see [`transfer`]).
async fn report_transfer(
    client: &Client,
    video: Principal,
    new_owner: Principal,
    keep_controllers: Option<Vec<Principal>>,
    r: ChangeOwnerResult,
) -> Result<()> {
    let note = if r.index_notified {
        "index updated"
    } else {
        "index notification queued (retried by the video canister's timer)"
    };
    let list = |ps: &[Principal]| {
        ps.iter()
            .map(Principal::to_text)
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "transferred {video} to {new_owner} (transfer #{}; controllers {}; {note})",
        r.transfer_seq,
        list(&r.controllers)
    );
    let expected = keep_controllers.map(|keep| {
        let mut e = vec![new_owner, video];
        e.extend(keep);
        e
    });
    // A replica a round behind may still certify the old controllers: read again before failing.
    let mut certified = certified_controllers(client, video).await?;
    for _ in 1..3 {
        if same_set(&certified, &r.controllers) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        certified = certified_controllers(client, video).await?;
    }
    let module_hash = client
        .agent
        .read_state_canister_module_hash(video)
        .await
        .map(hex::encode)
        .unwrap_or_else(|_| "(none)".into());
    println!("certified controllers {}", list(&certified));
    println!("certified module hash {module_hash}");
    if r.owner_controls == Some(false) {
        println!(
            "{new_owner} owns the video; the upload is not finished, so the video and the \
             canister that funded it control it until then: control passes to the owner at \
             finish_upload"
        );
    }
    check_transfer_controllers(video, &certified, &r.controllers, expected.as_deref())
}

/// The controllers of `canister` from the IC's certified state.
async fn certified_controllers(client: &Client, canister: Principal) -> Result<Vec<Principal>> {
    client
        .agent
        .read_state_canister_controllers(canister)
        .await
        .map_err(|e| crate::network::map_agent(&client.target, canister, "read_state", e))
}

fn same_set(a: &[Principal], b: &[Principal]) -> bool {
    use std::collections::BTreeSet;
    let (sa, sb): (BTreeSet<_>, BTreeSet<_>) = (a.iter().collect(), b.iter().collect());
    sa.len() == a.len() && sb.len() == b.len() && sa == sb
}

/// The checks of [`transfer`] on the certified controllers.
pub fn check_transfer_controllers(
    video: Principal,
    certified: &[Principal],
    returned: &[Principal],
    expected: Option<&[Principal]>,
) -> Result<()> {
    let list = |ps: &[Principal]| {
        ps.iter()
            .map(Principal::to_text)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !same_set(certified, returned) {
        return Err(Error::Verify(format!(
            "{video} was transferred, but its certified controllers [{}] are not the ones change_owner returned [{}]",
            list(certified),
            list(returned)
        )));
    }
    if let Some(expected) = expected {
        let mut want: Vec<Principal> = Vec::new();
        for p in expected {
            if !want.contains(p) {
                want.push(*p);
            }
        }
        if !same_set(certified, &want) {
            return Err(Error::Verify(format!(
                "{video} was transferred, but its certified controllers [{}] are not exactly the new owner, the video and the kept ones [{}]",
                list(certified),
                list(&want)
            )));
        }
    }
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
    if let Some(e) = &m.encryption {
        println!(
            "encryption {} (vetKD key {}, epoch {}): {} bytes of plaintext in chunks of {}; the \
             size and digest are the ciphertext's",
            e.scheme, e.key_name, e.key_epoch, e.plain_size, e.plain_chunk_size
        );
    }
    println!(
        "digest     {}",
        m.digest
            .as_ref()
            .map(|d| hex::encode(d.as_slice()))
            .unwrap_or_else(|| "-".into())
    );
    println!("creator    {}", m.creator);
    println!("owner      {}", m.owner);
    println!(
        "control    {}",
        match &m.control {
            None | Some(ControlStatus::Owner) => "the owner is a controller".to_string(),
            Some(ControlStatus::AfterUpload { funded_by }) =>
                format!("the video and {funded_by} (which funded it) until the upload is finished"),
            Some(ControlStatus::HandingOver {
                attempts,
                last_error,
                ..
            }) => format!(
                "being handed to the owner ({attempts} failed attempt(s){})",
                last_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        }
    );
    println!("transfers  {}", m.transfer_seq);
    if let Some(n) = m.files.filter(|&n| n > 0) {
        println!("files      {n} named file(s) besides the main file");
    }
    for r in m.renditions.iter().flatten() {
        let x = &r.rendition;
        println!(
            "rendition  {:6} {}x{} {} kbit/s {} {}",
            x.name,
            x.width,
            x.height,
            x.bandwidth / 1000,
            x.codecs.as_deref().unwrap_or("-"),
            r.path
        );
    }
    println!("cycles     {}", fmt::cycles(c.cycles));
    println!(
        "storage    {} stable, {} heap",
        fmt::bytes(c.stable_memory_bytes),
        fmt::bytes(c.heap_bytes)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u8) -> Principal {
        Principal::from_slice(&[n; 29])
    }

    #[test]
    fn transfer_check_wants_the_returned_and_the_named_controllers_exactly() {
        let (video, buyer, spawn, seller) = (Principal::from_slice(&[9, 1]), p(1), p(2), p(3));
        let returned = [buyer, video, spawn];
        // The same set in another order (the IC sorts controllers) passes.
        check_transfer_controllers(video, &[spawn, buyer, video], &returned, None).unwrap();
        check_transfer_controllers(video, &returned, &returned, Some(&[buyer, video, spawn]))
            .unwrap();
        // The certified state has an extra controller: the seller kept control.
        let e = check_transfer_controllers(video, &[buyer, video, spawn, seller], &returned, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the ones change_owner returned"), "{e}");
        // The canister returned (and set) more than the buyer named.
        let e = check_transfer_controllers(video, &returned, &returned, Some(&[buyer, video]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not exactly the new owner"), "{e}");
        // Duplicates in the named list do not matter.
        check_transfer_controllers(
            video,
            &[buyer, video],
            &[buyer, video],
            Some(&[buyer, video, buyer]),
        )
        .unwrap();
    }
}
