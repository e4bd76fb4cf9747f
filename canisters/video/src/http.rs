//! HTTP serving: the canister side of `canvid-video-http` (docs/http.md).
//!
//! [`Source`] is `canvid_video_http::VideoSource` over the [`VideoStore`]; the endpoints `http_request`
//! (query) and `http_request_update` (update) hand requests to `canvid-video-http`, and `set_poster`
//! stores the poster image. The certification tree lives on the heap ([`HTTP_CERT`]): it is
//! rebuilt by `init`, `post_upgrade` and after every successful state change ([`recertify`]),
//! and its root is what `certified_data_set` publishes.

use std::cell::{Cell, RefCell};

use candid::Principal;
use canvid_types::video::{ControlStatus, PosterArgs, VideoStatus};
use canvid_types::Result;
use canvid_video_http::{
    Certifier, Gate, GateFor, NamedFile, Poster, ReadError, UpdateNeed, VideoInfo, VideoSource,
    Viewer,
};
use ic_stable_structures::Memory;
use serde::Serialize;

use crate::store::{canister, VideoStore};

/// `canvid_video_http::VideoSource` over a [`VideoStore`].
pub struct Source<'a, M: Memory>(pub &'a VideoStore<M>);

impl<M: Memory> VideoSource for Source<'_, M> {
    fn info(&self) -> Option<VideoInfo> {
        let st = self.0.state();
        let upload = st.upload.as_ref()?;
        let (status, digest) = match (st.status(), &st.digest) {
            (VideoStatus::Ready, Some(d)) => match <[u8; 32]>::try_from(d.as_slice()) {
                Ok(d) => (canvid_video_http::VideoStatus::Ready, d),
                // finish_upload only stores 32-byte digests; anything else is not servable.
                Err(_) => (canvid_video_http::VideoStatus::Uploading, [0; 32]),
            },
            _ => (canvid_video_http::VideoStatus::Uploading, [0; 32]),
        };
        Some(VideoInfo {
            // Ciphertext is not a video: a browser given it directly must not try to play it.
            mime_type: match upload.encryption {
                Some(_) => "application/octet-stream".into(),
                None => upload.mime_type.clone(),
            },
            size: upload.total_size,
            chunk_size: upload.chunk_size as u64,
            digest,
            status,
        })
    }

    fn read(&self, offset: u64, len: u64) -> std::result::Result<Vec<u8>, ReadError> {
        self.0
            .read_range(offset, len)
            .map_err(|e| ReadError(e.to_string()))
    }

    fn chunk_digest(&self, index: u64) -> Option<[u8; 32]> {
        u32::try_from(index)
            .ok()
            .and_then(|i| self.0.chunk_digest(i))
    }

    fn metadata_json(&self) -> String {
        metadata_json(self.0)
    }

    fn poster(&self) -> Option<Poster> {
        self.0.poster().map(|p| Poster {
            mime_type: p.mime_type,
            bytes: p.bytes,
            sha256: p.sha256,
        })
    }

    fn named_files_ready(&self) -> bool {
        self.0.status() == VideoStatus::Ready
    }

    fn named_file(&self, path: &str) -> Option<NamedFile> {
        self.0.file(path).and_then(|r| named(path, &r))
    }

    fn named_files_after(&self, after: Option<&str>, limit: usize) -> Vec<NamedFile> {
        let args = canvid_types::files::FilesArgs {
            after: after.map(str::to_string),
            limit: Some(limit.min(canvid_types::files::MAX_FILE_PAGE as usize) as u32),
        };
        self.0
            .files_page(&args)
            .files
            .into_iter()
            .filter_map(|f| {
                let digest = <[u8; 32]>::try_from(f.digest?.as_slice()).ok()?;
                Some(NamedFile {
                    path: f.path,
                    mime_type: f.mime_type,
                    size: f.size,
                    chunk_size: u64::from(f.chunk_size),
                    digest,
                })
            })
            .collect()
    }

    fn read_named(
        &self,
        path: &str,
        offset: u64,
        len: u64,
    ) -> std::result::Result<Vec<u8>, ReadError> {
        self.0
            .read_file(path, offset, len)
            .map_err(|e| ReadError(e.to_string()))
    }

    fn named_chunk_digest(&self, path: &str, index: u64) -> Option<[u8; 32]> {
        u32::try_from(index)
            .ok()
            .and_then(|i| self.0.file_chunk_digest(path, i))
    }
}

/// A stored file as HTTP serves it: only once complete (its digest is the ETag).
fn named(path: &str, r: &crate::store::FileRecord) -> Option<NamedFile> {
    let digest = <[u8; 32]>::try_from(r.digest.as_ref()?.as_slice()).ok()?;
    Some(NamedFile {
        path: path.to_string(),
        mime_type: r.mime_type.clone(),
        size: r.total_size,
        chunk_size: u64::from(r.chunk_size),
        digest,
    })
}

#[derive(Serialize)]
struct PosterJson {
    mime_type: String,
    size: u64,
    url: &'static str,
}

/// The document at `/metadata.json`. Only fields that change in update calls (each followed by
/// [`recertify`]), so the certified copy stays current; upload progress is left out on purpose.
#[derive(Serialize)]
struct MetadataJson {
    title: String,
    description: String,
    tags: Vec<String>,
    status: &'static str,
    mime_type: String,
    size: u64,
    duration_ms: Option<u64>,
    chunk_size: u32,
    chunk_count: u32,
    /// Hex of the file digest (the ETag without quotes), once Ready.
    digest: Option<String>,
    owner: String,
    creator: String,
    created_at: u64,
    updated_at: u64,
    ready_at: Option<u64>,
    transfer_seq: u64,
    /// "owner" (the owner is a controller), "after_upload" (the upload is not finished: the
    /// controllers are the video and its funder) or "handing_over" (see `claim_control`).
    control: &'static str,
    poster: Option<PosterJson>,
    video_url: &'static str,
    /// Named files besides the main file (HLS playlists and segments, subtitles, ...).
    files: u32,
    /// The adaptive-streaming ladder, highest bandwidth first.
    renditions: Vec<RenditionJson>,
    /// Present: `/video` serves ciphertext (`application/octet-stream`); `mime_type`,
    /// `duration_ms` are the plaintext's, `size` and `chunk_size` the stored file's.
    encryption: Option<canvid_types::encryption::Encryption>,
}

#[derive(Serialize)]
struct RenditionJson {
    path: String,
    name: String,
    width: u32,
    height: u32,
    bandwidth: u64,
    codecs: Option<String>,
}

pub fn metadata_json<M: Memory>(s: &VideoStore<M>) -> String {
    let m = s.metadata();
    let doc = MetadataJson {
        title: m.title,
        description: m.description,
        tags: m.tags,
        status: match m.status {
            VideoStatus::Empty => "empty",
            VideoStatus::Uploading => "uploading",
            VideoStatus::Ready => "ready",
        },
        mime_type: m.mime_type,
        size: m.size,
        duration_ms: m.duration_ms,
        chunk_size: m.chunk_size,
        chunk_count: m.chunk_count,
        digest: m.digest.map(|d| hex::encode(d.as_slice())),
        owner: m.owner.to_text(),
        creator: m.creator.to_text(),
        created_at: m.created_at,
        updated_at: m.updated_at,
        ready_at: m.ready_at,
        transfer_seq: m.transfer_seq,
        control: match m.control {
            None | Some(ControlStatus::Owner) => "owner",
            Some(ControlStatus::AfterUpload { .. }) => "after_upload",
            Some(ControlStatus::HandingOver { .. }) => "handing_over",
        },
        poster: s.poster_info().map(|(mime_type, size)| PosterJson {
            mime_type,
            size,
            url: canvid_video_http::POSTER_PATH,
        }),
        video_url: "/video",
        files: m.files.unwrap_or(0),
        renditions: m
            .renditions
            .unwrap_or_default()
            .into_iter()
            .map(|r| RenditionJson {
                path: r.path,
                name: r.rendition.name,
                width: r.rendition.width,
                height: r.rendition.height,
                bandwidth: r.rendition.bandwidth,
                codecs: r.rendition.codecs,
            })
            .collect(),
        encryption: m.encryption,
    };
    // Serialising strings and numbers into a String cannot fail.
    serde_json::to_string(&doc).unwrap_or_else(|_| "{}".into())
}

thread_local! {
    /// The HTTP certification tree (heap: rebuilt by `init` / `post_upgrade`).
    static HTTP_CERT: RefCell<Certifier> = RefCell::new(Certifier::new());
    /// Whether the video entries in the tree (or being built) are a Ready video's (`Some(true)`)
    /// or the answers before Ready (`Some(false)`: 503s and 405s, the same whatever the upload
    /// state); `None`: nothing built yet. Later changes within the same phase (a chunk, the
    /// metadata, the poster, the owner) only need the small "extras" rebuilt.
    static CERTIFIED_PHASE: Cell<Option<bool>> = const { Cell::new(None) };
    /// Bumped by every full rebuild, so that a timer continuing an older build stops.
    static BUILD_GENERATION: Cell<u64> = const { Cell::new(0) };
    /// `http_request_update` calls executed in the current window (heap: an upgrade starts a
    /// new window, which only ever admits fewer than two windows' worth at once).
    static HTTP_UPDATES: Cell<UpdateBudget> = const { Cell::new(UpdateBudget::EMPTY) };
}

/// Most `http_request_update` calls the canister accepts per [`HTTP_UPDATE_WINDOW_NS`].
///
/// Each costs the canister an update, and anyone can send the requests that need one (ranges no
/// pre-certified answer holds, docs/http.md "What is not certified"). Legitimate clients rarely
/// do (a seek from a non-media client, Safari's media requests, answers whose tree entries are
/// still being built); an attacker could in a loop. So the canister bounds both how many it
/// accepts and what they may cost together ([`MAX_HTTP_UPDATE_CYCLES_PER_WINDOW`]), while
/// certified queries keep serving everything else at no cost.
pub const MAX_HTTP_UPDATES_PER_WINDOW: u32 = 120;
/// The estimated cycles ([`estimated_update_cycles`]) the accepted `http_request_update` calls
/// of one window may cost together: 1.5 B a minute (≈ 2.2 T a day) at worst. About nine
/// whole-chunk answers a minute, or the 120 small ones of a typical gateway request (≤ 12.5 M
/// each: a request of up to ≈ 1.8 KB).
pub const MAX_HTTP_UPDATE_CYCLES_PER_WINDOW: u64 = 1_500_000_000;
/// The window of the two budgets: one minute.
pub const HTTP_UPDATE_WINDOW_NS: u64 = 60_000_000_000;

/// An upper estimate of what one `http_request_update` costs the canister on a 13-node subnet
/// (ic-notes.md; checked against PocketIC by `tests/tests/hostile.rs`): the ingress fee
/// (1.2 M + 2,000 per byte of the argument and its ≈ 170-byte envelope and method name), the
/// update fee (5 M), ≈ 3 M instructions of fixed work, and ≈ 60 cycles per byte of the answer
/// (PocketIC charged ≈ 54 per byte to read and encode a 2 MB body).
pub fn estimated_update_cycles(arg_bytes: u64, body_bytes: u64) -> u64 {
    1_200_000 + 2_000 * (arg_bytes + 170) + 5_000_000 + 3_000_000 + 60 * body_bytes
}

/// What the `http_request_update` calls of the current window used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateBudget {
    window_start: u64,
    used: u32,
    cycles: u64,
}

impl UpdateBudget {
    pub const EMPTY: UpdateBudget = UpdateBudget {
        window_start: 0,
        used: 0,
        cycles: 0,
    };

    fn current(self, now: u64) -> UpdateBudget {
        if now.saturating_sub(self.window_start) >= HTTP_UPDATE_WINDOW_NS {
            UpdateBudget {
                window_start: now,
                used: 0,
                cycles: 0,
            }
        } else {
            self
        }
    }

    /// May one more update, estimated at `cycles`, run at `now`? Always one per window, so a
    /// single large answer is never refused for good.
    pub fn has_room(self, now: u64, cycles: u64) -> bool {
        let c = self.current(now);
        c.used < MAX_HTTP_UPDATES_PER_WINDOW
            && (c.used == 0 || c.cycles.saturating_add(cycles) <= MAX_HTTP_UPDATE_CYCLES_PER_WINDOW)
    }

    /// Counts one update run at `now`, estimated at `cycles`.
    pub fn spend(self, now: u64, cycles: u64) -> UpdateBudget {
        let c = self.current(now);
        UpdateBudget {
            used: c.used.saturating_add(1),
            cycles: c.cycles.saturating_add(cycles),
            ..c
        }
    }
}

/// Should `inspect_message` accept an `http_request_update` the HTTP layer classified as
/// `need`, estimated at `cycles`? Only what the query could not answer, and within the budget.
pub fn accepts_http_update(need: UpdateNeed, budget: UpdateBudget, now: u64, cycles: u64) -> bool {
    need != UpdateNeed::None && budget.has_room(now, cycles)
}

/// `inspect_message`'s check of an `http_request_update` argument (already known to be at
/// most `MAX_HTTP_UPDATE_ARG_BYTES`): decodes it, asks the HTTP layer whether the query could
/// have answered it and how large the answer is, and checks the budget.
pub fn inspect_http_update(arg: &[u8], now: u64) -> bool {
    let Ok(req) = candid::decode_one::<canvid_video_http::HttpUpdateRequest>(arg) else {
        return false;
    };
    let check = canister::with(|s| {
        let verdict = gate(s, &ic_cdk::api::canister_self(), req.url(), now);
        let per_path = |path: &str| gate_at(s, verdict, path);
        HTTP_CERT.with_borrow(|c| {
            canvid_video_http::update_check(&req, &Source(s), GateFor::per_path(&per_path), c)
        })
    });
    let cycles = estimated_update_cycles(arg.len() as u64, check.body_bytes);
    accepts_http_update(check.need, HTTP_UPDATES.get(), now, cycles)
}

/// How HTTP treats a video that is not public, for a request to `url` at `now`: its preview,
/// and what the request's playback token is worth (`logic::access`). `None`: a public video.
/// The same verdict for every path; [`gate_at`] applies the policy's free paths.
pub fn gate<M: Memory>(s: &VideoStore<M>, video: &Principal, url: &str, now: u64) -> Option<Gate> {
    use crate::logic::access::{check_token, is_public, preview_end, TokenCheck};
    if is_public(s.state()) {
        return None;
    }
    let viewer = match check_token(s, video, canvid_video_http::playback_token(url), now) {
        TokenCheck::NoToken => Viewer::NoToken,
        TokenCheck::Denied => Viewer::Denied,
        TokenCheck::Allowed => Viewer::Allowed,
    };
    Some(Gate {
        preview_end: preview_end(s.state()),
        viewer,
    })
}

/// The gate at `path`, given the request's verdict: none for a named file among the policy's
/// free paths (served as for a public video), else the verdict.
pub fn gate_at<M: Memory>(s: &VideoStore<M>, verdict: Option<Gate>, path: &str) -> Option<Gate> {
    let verdict = verdict?;
    let free = crate::logic::access::policy_ref(s.state()).is_some_and(|p| p.is_free_path(path));
    (!free).then_some(verdict)
}

/// The policy's free paths, for the certified refusals (`Certifier::certify_gate`).
fn free_paths<M: Memory>(s: &VideoStore<M>) -> &[String] {
    crate::logic::access::policy_ref(s.state())
        .and_then(|p| p.free_paths.as_deref())
        .unwrap_or_default()
}

/// Instructions one message may spend on certification-tree entries before the rest of the
/// build moves to the next message (a timer). Under the 2 B slice of deterministic time
/// slicing, so a build step runs in one round; ≈ 190 chunks (380 MB of video) per message at
/// the measured cost per chunk (docs/http.md, "Cost").
pub const CERT_STEP_INSTRUCTIONS: u64 = 1_500_000_000;

/// Which part of the tree a change invalidates, decided from the state alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rebuild {
    /// Metadata, poster, 404 entries only (video entries of a Ready video are kept).
    Extras,
    /// Everything: the video entries change (upload state moved, or nothing certified yet).
    All,
}

/// `All` when the video's phase (Ready or not) differs from the one the tree was built for, or
/// nothing was built yet; else `Extras`. A `put_chunk` therefore recertifies only
/// `/metadata.json` (its `updated_at` moved), not the video paths' answers.
pub fn rebuild_needed(ready: bool, certified_phase: Option<bool>) -> Rebuild {
    if certified_phase == Some(ready) {
        Rebuild::Extras
    } else {
        Rebuild::All
    }
}

/// `keep_going` for [`Certifier::resume`]: true while this message has spent fewer than
/// `budget` instructions since `start` (a `performance_counter(0)` reading).
pub fn within_budget(start: u64, now: u64, budget: u64) -> bool {
    now.saturating_sub(start) < budget
}

/// Brings the certification tree up to date with the stored state and publishes its root with
/// `certified_data_set`. Never traps: a part that cannot be certified is logged and then served
/// through `http_request_update` (see `canvid_video_http::CertifyError`).
///
/// A full rebuild certifies as many chunks as [`CERT_STEP_INSTRUCTIONS`] allows in this
/// message and leaves the rest to a timer ([`continue_build`]); until a chunk's entries are in
/// the tree, its requests take the (correct, slower) update path.
pub fn recertify() {
    let more = canister::with(|s| {
        let ready = s.status() == VideoStatus::Ready;
        let source = Source(s);
        HTTP_CERT.with_borrow_mut(|c| {
            let mut more = false;
            let result = match rebuild_needed(ready, CERTIFIED_PHASE.get()) {
                Rebuild::Extras => c.certify_extras(&source).map(|_| ()),
                Rebuild::All => {
                    CERTIFIED_PHASE.set(Some(ready));
                    BUILD_GENERATION.set(BUILD_GENERATION.get() + 1);
                    let started = c.start(&source).map(|_| ());
                    let resumed = step(c, &source).map(|pending| more = pending > 0);
                    started.and(resumed)
                }
            };
            // The certified 401/403 answers of a private or paid video (idempotent).
            let gated = !crate::logic::access::is_public(s.state());
            let result = result.and(c.certify_gate(&source, gated, free_paths(s)).map(|_| ()));
            if let Err(e) = result {
                ic_cdk::println!("http certification: {e}");
            }
            ic_cdk::api::certified_data_set(c.root_hash());
            more
        })
    });
    if more {
        schedule_continuation();
    }
}

/// One budgeted build step; returns the number of chunks still pending.
fn step<M: Memory>(
    c: &mut Certifier,
    source: &Source<'_, M>,
) -> std::result::Result<u64, canvid_video_http::CertifyError> {
    let start = ic_cdk::api::performance_counter(0);
    c.resume(source, &mut || {
        within_budget(
            start,
            ic_cdk::api::performance_counter(0),
            CERT_STEP_INSTRUCTIONS,
        )
    })
}

fn schedule_continuation() {
    let generation = BUILD_GENERATION.get();
    ic_cdk_timers::set_timer(std::time::Duration::ZERO, async move {
        continue_build(generation)
    });
}

/// Timer: certifies the next batch of chunks of build `generation` (nothing if a newer full
/// rebuild or an upgrade replaced it), publishes the root, and re-arms itself until done.
fn continue_build(generation: u64) {
    if generation != BUILD_GENERATION.get() {
        return;
    }
    let more = canister::with(|s| {
        HTTP_CERT.with_borrow_mut(|c| {
            let more = match step(c, &Source(s)) {
                Ok(pending) => pending > 0,
                Err(e) => {
                    ic_cdk::println!("http certification: {e}");
                    false
                }
            };
            ic_cdk::api::certified_data_set(c.root_hash());
            more
        })
    });
    if more {
        schedule_continuation();
    }
}

/// The pre-upgrade tree is gone with the old heap: forget that a Ready video was certified.
pub fn reset() {
    CERTIFIED_PHASE.set(None);
    BUILD_GENERATION.set(BUILD_GENERATION.get() + 1);
    HTTP_CERT.with_borrow_mut(|c| *c = Certifier::new());
}

#[ic_cdk::query]
fn http_request(
    req: canvid_video_http::HttpRequest<'static>,
) -> canvid_video_http::HttpResponse<'static> {
    let certificate = ic_cdk::api::data_certificate();
    canister::with(|s| {
        let verdict = gate(
            s,
            &ic_cdk::api::canister_self(),
            req.url(),
            ic_cdk::api::time(),
        );
        let per_path = |path: &str| gate_at(s, verdict, path);
        HTTP_CERT.with_borrow(|c| {
            canvid_video_http::http_request(
                &req,
                &Source(s),
                GateFor::per_path(&per_path),
                c,
                certificate.as_deref(),
            )
        })
    })
}

/// Anyone may call this (the gateway does, anonymously): it only reads. As ingress it is
/// accepted only for what the query could not answer, within [`MAX_HTTP_UPDATES_PER_WINDOW`]
/// (`inspect_message`); a canister calling it pays for its own call.
#[ic_cdk::update]
fn http_request_update(
    req: canvid_video_http::HttpUpdateRequest<'static>,
) -> canvid_video_http::HttpResponse<'static> {
    let response = canister::with(|s| {
        let verdict = gate(
            s,
            &ic_cdk::api::canister_self(),
            req.url(),
            ic_cdk::api::time(),
        );
        let per_path = |path: &str| gate_at(s, verdict, path);
        canvid_video_http::http_request_update(&req, &Source(s), GateFor::per_path(&per_path))
    });
    let cycles = estimated_update_cycles(
        ic0::msg_arg_data_size() as u64,
        response.body().len() as u64,
    );
    HTTP_UPDATES.set(HTTP_UPDATES.get().spend(ic_cdk::api::time(), cycles));
    response
}

/// Owner only. Sets (replaces) the poster served at `/poster`; empty `data` removes it.
#[ic_cdk::update]
fn set_poster(args: PosterArgs) -> Result<()> {
    crate::updates::authorized(crate::guards::Action::OwnerWrite, |s| {
        s.set_poster(&args.mime_type, &args.data, ic_cdk::api::time())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candid::Principal;
    use canvid_types::video::{UploadSpec, VideoInit, MAX_POSTER_BYTES};
    use canvid_types::Error;
    use ic_stable_structures::VectorMemory;

    fn header<'a>(r: &'a canvid_video_http::HttpResponse, name: &str) -> Option<&'a str> {
        r.headers()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn store() -> VideoStore<VectorMemory> {
        let owner = Principal::from_slice(&[1, 2]);
        let init = VideoInit {
            owner,
            creator: owner,
            index: None,
            title: "A \"quoted\" title\n".into(),
            description: "d".into(),
            tags: vec![],
            funded_by: None,
            platform_fee: None,
        };
        VideoStore::init(VectorMemory::default(), &init, owner, 1).unwrap()
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 253) as u8).collect()
    }

    fn upload(s: &mut VideoStore<VectorMemory>, bytes: &[u8], chunk: u32) {
        s.begin_upload(
            &UploadSpec {
                path: None,
                rendition: None,
                mime_type: "video/mp4".into(),
                total_size: bytes.len() as u64,
                chunk_size: chunk,
                chunk_digests: None,
                file_digest: None,
                duration_ms: Some(6000),
                encryption: None,
            },
            2,
        )
        .unwrap();
        for (i, c) in bytes.chunks(chunk as usize).enumerate() {
            s.put_chunk(i as u32, c, 3).unwrap();
        }
    }

    fn get(
        s: &VideoStore<VectorMemory>,
        url: &str,
        range: Option<&str>,
    ) -> canvid_video_http::HttpResponse<'static> {
        let headers: Vec<(String, String)> = range
            .map(|r| vec![("Range".to_string(), r.to_string())])
            .unwrap_or_default();
        canvid_video_http::serve_uncertified("GET", url, &headers, &Source(s), None)
    }

    #[test]
    fn serves_the_stored_video_and_its_ranges() {
        let mut s = store();
        let bytes = data(2_500);
        upload(&mut s, &bytes, 1_000);
        // Not finished: 503, whatever is stored.
        assert_eq!(get(&s, "/video", None).status_code().as_u16(), 503);
        s.finish_upload(4).unwrap();
        let r = get(&s, "/video", None);
        assert_eq!(r.status_code().as_u16(), 206);
        assert_eq!(r.body(), &bytes[..1_000]);
        assert_eq!(header(&r, "content-range"), Some("bytes 0-999/2500"));
        let r = get(&s, "/video", Some("bytes=1500-"));
        assert_eq!(r.status_code().as_u16(), 206);
        assert_eq!(r.body(), &bytes[1_500..2_000]);
        let r = get(&s, "/", Some("bytes=2400-2600"));
        assert_eq!(r.body(), &bytes[2_400..]);
        assert_eq!(
            get(&s, "/video", Some("bytes=9999-"))
                .status_code()
                .as_u16(),
            416
        );
        // The ETag is the stored file digest.
        let digest = s.metadata().digest.unwrap();
        assert_eq!(
            header(&r, "etag").map(str::to_string),
            Some(format!("\"{}\"", hex::encode(digest.as_slice())))
        );
    }

    #[test]
    fn metadata_json_is_valid_json_and_tracks_the_poster() {
        let mut s = store();
        upload(&mut s, &data(10), 4);
        s.finish_upload(5).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&metadata_json(&s)).unwrap();
        assert_eq!(doc["title"], "A \"quoted\" title\n");
        assert_eq!(doc["status"], "ready");
        assert_eq!(doc["size"], 10);
        assert!(doc["poster"].is_null());
        assert_eq!(get(&s, "/poster", None).status_code().as_u16(), 404);

        s.set_poster("image/png", b"\x89PNG fake", 6).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&metadata_json(&s)).unwrap();
        assert_eq!(doc["poster"]["mime_type"], "image/png");
        assert_eq!(doc["poster"]["size"], 9);
        let r = get(&s, "/poster", None);
        assert_eq!(r.status_code().as_u16(), 200);
        assert_eq!(r.body(), b"\x89PNG fake");
        assert_eq!(header(&r, "content-type"), Some("image/png"));

        let r = get(&s, "/metadata.json", None);
        assert_eq!(r.status_code().as_u16(), 200);
        assert_eq!(r.body(), metadata_json(&s).as_bytes());
    }

    #[test]
    fn poster_limits_and_replacement() {
        let mut s = store();
        let too_big = vec![0u8; MAX_POSTER_BYTES as usize + 1];
        assert!(matches!(
            s.set_poster("image/png", &too_big, 1),
            Err(Error::TooLarge { size, limit }) if size == too_big.len() as u64 && limit == MAX_POSTER_BYTES
        ));
        for bad in [
            "video/mp4",
            "image/",
            "image/png\r\nX: y",
            "",
            &"image/".repeat(30),
        ] {
            assert!(
                matches!(
                    s.set_poster(bad, b"x", 1),
                    Err(Error::InvalidArgument { .. })
                ),
                "{bad:?} accepted"
            );
        }
        assert!(s.poster().is_none());
        // Nothing stored: clearing allocates nothing.
        s.set_poster("", b"", 1).unwrap();
        assert!(s.poster().is_none());

        let max = vec![7u8; MAX_POSTER_BYTES as usize];
        s.set_poster("image/jpeg", &max, 2).unwrap();
        let p = s.poster().unwrap();
        assert_eq!(p.bytes, max);
        assert_eq!(p.mime_type, "image/jpeg");
        let want: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&max[..]).into();
        assert_eq!(p.sha256, want);
        // A shorter replacement: only its bytes are served.
        s.set_poster("image/webp", b"short", 3).unwrap();
        let p = s.poster().unwrap();
        assert_eq!(
            (p.mime_type.as_str(), p.bytes.as_slice()),
            ("image/webp", &b"short"[..])
        );
        assert_eq!(s.poster_info(), Some(("image/webp".into(), 5)));
        s.set_poster("", b"", 4).unwrap();
        assert!(s.poster().is_none() && s.poster_info().is_none());
    }

    #[test]
    fn certification_covers_the_served_answers() {
        let mut s = store();
        upload(&mut s, &data(3_000), 1_000);
        let mut c = Certifier::new();
        c.certify_all(&Source(&s)).unwrap();
        let uploading = c.entry_count();
        s.finish_upload(5).unwrap();
        c.certify_all(&Source(&s)).unwrap();
        // About six entries per chunk once Ready (docs/http.md), far more than while uploading.
        assert!(
            c.entry_count() >= uploading + 3 * 5,
            "{} entries",
            c.entry_count()
        );
        let root = c.root_hash();
        s.set_poster("image/png", b"p", 6).unwrap();
        c.certify_extras(&Source(&s)).unwrap();
        assert_ne!(c.root_hash(), root, "the poster changes the tree");
    }

    #[test]
    fn rebuild_rule() {
        assert_eq!(rebuild_needed(false, None), Rebuild::All);
        assert_eq!(rebuild_needed(true, None), Rebuild::All);
        // Chunks arriving, metadata edits: the video paths answer 503 all along.
        assert_eq!(rebuild_needed(false, Some(false)), Rebuild::Extras);
        assert_eq!(rebuild_needed(true, Some(false)), Rebuild::All);
        assert_eq!(rebuild_needed(true, Some(true)), Rebuild::Extras);
        // Not ready any more cannot happen, but would be rebuilt in full.
        assert_eq!(rebuild_needed(false, Some(true)), Rebuild::All);
    }

    #[test]
    fn budget_rule() {
        assert!(within_budget(100, 100, 10));
        assert!(within_budget(100, 109, 10));
        assert!(!within_budget(100, 110, 10));
        // A counter reading below the start (cannot happen) is not an overrun.
        assert!(within_budget(100, 50, 10));
    }

    /// The budgeted build of the real store ends in the same tree as a one-shot build, and
    /// chunks not yet certified are upgraded to the update path, not served uncertified.
    #[test]
    fn stepwise_build_matches_the_one_shot_tree() {
        let mut s = store();
        let bytes = data(10_500);
        upload(&mut s, &bytes, 1_000);
        s.finish_upload(5).unwrap();
        let mut whole = Certifier::new();
        let root = whole.certify_all(&Source(&s)).unwrap();

        let mut c = Certifier::new();
        c.start(&Source(&s)).unwrap();
        assert_eq!(c.pending_chunks(), 10);
        let request = |range: &str| {
            canvid_video_http::HttpRequest::get("/video")
                .with_headers(vec![("Range".into(), range.into())])
                .build()
        };
        let cert = Some(&b"certificate"[..]);
        // Chunk 0 is in the tree from the start; chunk 3 is not yet: upgrade.
        let r = canvid_video_http::http_request(&request("bytes=0-"), &Source(&s), None, &c, cert);
        assert_eq!(r.status_code().as_u16(), 206);
        let r =
            canvid_video_http::http_request(&request("bytes=3000-"), &Source(&s), None, &c, cert);
        assert_eq!(r.upgrade(), Some(true));
        // Three chunks per step.
        let mut steps = 0;
        loop {
            let mut budget = 3;
            let pending = c
                .resume(&Source(&s), &mut || {
                    budget -= 1;
                    budget > 0
                })
                .unwrap();
            steps += 1;
            if steps == 1 {
                assert_eq!(pending, 7);
                let r = canvid_video_http::http_request(
                    &request("bytes=3000-"),
                    &Source(&s),
                    None,
                    &c,
                    cert,
                );
                assert_eq!(r.status_code().as_u16(), 206, "chunk 3 certified by step 1");
                assert_eq!(r.body(), &bytes[3_000..4_000]);
                let r = canvid_video_http::http_request(
                    &request("bytes=4000-"),
                    &Source(&s),
                    None,
                    &c,
                    cert,
                );
                assert_eq!(r.upgrade(), Some(true), "chunk 4 not yet");
            }
            if pending == 0 {
                break;
            }
        }
        assert_eq!(steps, 4);
        assert_eq!(c.root_hash(), root);
        assert_eq!(c.entry_count(), whole.entry_count());
        // A finished build stays finished.
        assert_eq!(c.resume(&Source(&s), &mut || true).unwrap(), 0);
        assert_eq!(c.root_hash(), root);
    }

    #[test]
    fn http_update_budget_admits_a_bounded_number_per_minute() {
        let t0 = 5 * HTTP_UPDATE_WINDOW_NS;
        let small = estimated_update_cycles(1_000, 100);
        let mut b = UpdateBudget::EMPTY;
        for i in 0..MAX_HTTP_UPDATES_PER_WINDOW {
            assert!(b.has_room(t0 + u64::from(i), small), "update {i}");
            b = b.spend(t0 + u64::from(i), small);
        }
        assert!(!b.has_room(t0 + 1_000, small));
        assert!(!b.has_room(t0 + HTTP_UPDATE_WINDOW_NS - 1, small));
        // The window counts from its first update, not from the last refusal.
        assert!(b.has_room(t0 + HTTP_UPDATE_WINDOW_NS, small));
        let b = b.spend(t0 + HTTP_UPDATE_WINDOW_NS, small);
        assert!(b.has_room(t0 + HTTP_UPDATE_WINDOW_NS + 1, small));
    }

    #[test]
    fn http_update_budget_bounds_what_they_cost_together() {
        let whole_chunk = estimated_update_cycles(16 * 1024, 2_000_000);
        assert!(whole_chunk > 140_000_000 && whole_chunk < 200_000_000);
        let mut b = UpdateBudget::EMPTY;
        let mut accepted = 0u64;
        while b.has_room(1, whole_chunk) {
            b = b.spend(1, whole_chunk);
            accepted += 1;
        }
        assert_eq!(accepted, MAX_HTTP_UPDATE_CYCLES_PER_WINDOW / whole_chunk);
        // Small answers still fit after the large ones used the budget? No: the window's
        // cycles are what bounds the cost.
        assert!(!b.has_room(2, estimated_update_cycles(200, 0) * 20));
        // One update per window always fits, however large.
        assert!(UpdateBudget::EMPTY.has_room(1, u64::MAX));
    }

    #[test]
    fn inspect_accepts_only_what_the_query_could_not_answer() {
        let now = HTTP_UPDATE_WINDOW_NS;
        let small = estimated_update_cycles(1_000, 100);
        let room = UpdateBudget::EMPTY;
        let mut full = UpdateBudget::EMPTY;
        for _ in 0..MAX_HTTP_UPDATES_PER_WINDOW {
            full = full.spend(now, small);
        }
        assert!(!accepts_http_update(UpdateNeed::None, room, now, small));
        for need in [UpdateNeed::NotCertifiedYet, UpdateNeed::Uncertifiable] {
            assert!(accepts_http_update(need, room, now, small));
            assert!(!accepts_http_update(need, full, now, small));
        }
    }
}
