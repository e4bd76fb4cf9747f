//! Response certification (HTTP certification v2) of the video canister's answers.
//!
//! The canister keeps one [`Certifier`] in its heap. [`Certifier::certify_all`] builds the
//! certification tree from the stored state in one go; [`Certifier::start`] +
//! [`Certifier::resume`] build the same tree in budgeted steps (the canister spreads a large
//! video's entries over several messages: at `finish_upload` and in `post_upgrade`, then
//! timers), and [`Certifier::certify_extras`] refreshes only the metadata/poster/404 entries
//! (after a metadata edit or a poster upload), and [`Certifier::certify_gate`] adds or removes
//! the 401/403 answers of a video that is not public (`crate::Gate`). After each, the canister passes
//! [`Certifier::root_hash`] to `ic_cdk::api::certified_data_set`. A chunk whose entries are
//! not in the tree yet is served through the update path, so a partial tree is never wrong.
//!
//! Named files (HLS ladders, subtitles, thumbnails: up to 20,000 per video) are certified after
//! the main file's chunks, by the same budgeted steps: one step is a file's fixed answers (6
//! entries) or one of its chunks ≥ 1 (4), so no message's work grows with the number of files
//! (docs/http.md, "Named files").
//!
//! Which answers are certified, and why, is in `docs/http.md`. The mechanics:
//! - every certified answer is produced by the same `serve::plan` that answers live requests,
//!   from a synthetic request of the shape the gateway or a browser sends;
//! - a video body's hash is the SHA-256 *chunk digest stored at upload* (the HTTP grid is the
//!   upload chunk grid), so building the tree hashes no video bytes;
//! - all response headers are certified (`response_header_exclusions: []`);
//! - the certifier keeps every entry's [`HttpCertification`] (its three hashes) beside the
//!   tree, so a query names its answer's tree entry by lookup and hashes nothing but the
//!   witness path (docs/http.md, "Serving without hashing").

use crate::serve::{self, Body, Plan};
use crate::{
    is_free_path, sha256, NamedFile, VideoSource, VideoStatus, Viewer, MAX_BODY, METADATA_PATH,
    POSTER_PATH, VIDEO_PATHS,
};
use ic_http_certification::{
    cel::{DefaultFullCelExpression, DefaultResponseOnlyCelExpression},
    response_hash,
    utils::{build_v2_certificate_header_value, cbor_encode_to_base64},
    DefaultCelBuilder, DefaultResponseCertification, HttpCertification, HttpCertificationPath,
    HttpCertificationTree, HttpCertificationTreeEntry, HttpRequest, HttpResponse, Method,
    StatusCode,
};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Path used to build the wildcard 404 entry (any path no exact entry covers).
const NOT_FOUND_PROBE_PATH: &str = "/.canvid-not-found";

/// The five CEL expressions canvid uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CelKind {
    /// Full certification with no request headers: binds method and (empty) request body,
    /// any `Range` header is ignored. Chunk 0, whole-file, HEAD, metadata and poster answers.
    Plain,
    /// Full certification of the `Range` request header: chunks 1.. in each [`RangeForm`].
    Range,
    /// Full certification of the `If-None-Match` request header: the 304 answer.
    IfNoneMatch,
    /// Full certification of the `Sec-Fetch-Dest` request header (not of `Range`): chunk k's
    /// answer to a media element's off-grid request (docs/http.md, "Seeking").
    Media,
    /// Response-only certification: valid for any request to the path (404, 503, and a gated
    /// video's 401/403).
    ResponseOnly,
}

impl CelKind {
    fn request_headers(self) -> &'static [&'static str] {
        match self {
            CelKind::Range => &["range"],
            CelKind::IfNoneMatch => &["if-none-match"],
            CelKind::Media => &["sec-fetch-dest"],
            CelKind::Plain | CelKind::ResponseOnly => &[],
        }
    }

    fn full_def(self) -> DefaultFullCelExpression<'static> {
        DefaultCelBuilder::full_certification()
            .with_request_headers(self.request_headers())
            .with_response_certification(DefaultResponseCertification::response_header_exclusions(
                vec![],
            ))
            .build()
    }

    fn response_only_def() -> DefaultResponseOnlyCelExpression<'static> {
        DefaultCelBuilder::response_only_certification()
            .with_response_certification(DefaultResponseCertification::response_header_exclusions(
                vec![],
            ))
            .build()
    }

    /// The `IC-CertificateExpression` header value (computed once per kind).
    pub(crate) fn cel_string(self) -> &'static str {
        static CELS: [OnceLock<String>; 5] = [
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
        ];
        let (i, make): (usize, fn() -> String) = match self {
            CelKind::Plain => (0, || CelKind::Plain.full_def().to_string()),
            CelKind::Range => (1, || CelKind::Range.full_def().to_string()),
            CelKind::IfNoneMatch => (2, || CelKind::IfNoneMatch.full_def().to_string()),
            CelKind::ResponseOnly => (3, || CelKind::response_only_def().to_string()),
            CelKind::Media => (4, || CelKind::Media.full_def().to_string()),
        };
        CELS[i].get_or_init(make)
    }

    /// SHA-256 of [`Self::cel_string`], the first label under an entry's path (computed once
    /// per kind instead of once per entry).
    fn cel_hash(self) -> [u8; 32] {
        static HASHES: [OnceLock<[u8; 32]>; 5] = [
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
        ];
        let i = match self {
            CelKind::Plain => 0,
            CelKind::Range => 1,
            CelKind::IfNoneMatch => 2,
            CelKind::ResponseOnly => 3,
            CelKind::Media => 4,
        };
        *HASHES[i].get_or_init(|| sha256(self.cel_string().as_bytes()))
    }
}

/// Where in the tree an answer is certified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CertPath {
    Exact(String),
    /// The wildcard entry for every path without an exact entry (404).
    NotFound,
}

impl CertPath {
    fn to_http_path(&self) -> HttpCertificationPath<'static> {
        match self {
            CertPath::Exact(p) => HttpCertificationPath::exact(p.clone()),
            CertPath::NotFound => HttpCertificationPath::wildcard("/"),
        }
    }
}

/// The certification-tree entry an answer belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CertSpec {
    pub path: CertPath,
    pub kind: CelKind,
    /// The one request header `kind` certifies, with the value the request carried.
    pub request_header: Option<(&'static str, String)>,
    /// For a `Range` answer of chunk k ≥ 1: which one (the certifier stores those by index).
    pub chunk: Option<ChunkRange>,
}

/// A pre-certified `Range` answer: chunk `index` (≥ 1), asked for in one of the [`RangeForm`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkRange {
    pub index: u64,
    pub form: RangeForm,
}

/// How a client asks for chunk k ≥ 1 (`C` the chunk size, `e_k` its last byte, `S` the file
/// size). Each form has its own entry: the `Range` header is part of the certified request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeForm {
    /// `bytes=kC-`: the IC gateway's continuation requests, Firefox, Chromium's seeks.
    Open = 0,
    /// `bytes=kC-e_k`: exactly the chunk (clients that know the grid).
    Closed = 1,
    /// `bytes=kC-(S-1)`: Chromium's media loader, after an answer shorter than it asked for,
    /// asks again from where it ended up to the last byte. For the last chunk it is `Closed`.
    ToEnd = 2,
    /// A media element's request from a byte B of chunk k that reaches at least to the chunk's
    /// end, in a shape not named above (`bytes=B-` off the grid, `bytes=kC-M` filling a gap),
    /// answered with the whole chunk k ([`CelKind::Media`]; the `Range` value is not certified).
    Media = 3,
}

impl RangeForm {
    /// The forms named by their exact `Range` header value.
    pub(crate) const BY_HEADER: [RangeForm; 3] =
        [RangeForm::Open, RangeForm::Closed, RangeForm::ToEnd];

    /// The `Range` header value of this form for the chunk `start..=end` of a `size`-byte file;
    /// for `Media`, one of the many values it answers (one past the file's end, which no other
    /// form uses).
    pub(crate) fn header_value(self, start: u64, end: u64, size: u64) -> String {
        match self {
            RangeForm::Open => format!("bytes={start}-"),
            RangeForm::Closed => format!("bytes={start}-{end}"),
            RangeForm::ToEnd => format!("bytes={start}-{}", size - 1),
            RangeForm::Media => format!("bytes={start}-{size}"),
        }
    }
}

/// A certified answer other than a chunk ≥ 1: the request it answers and its certification.
#[derive(Clone, Debug)]
struct Certified {
    method: &'static str,
    spec: CertSpec,
    /// Tells apart answers with the same spec: for a one-chunk video, plain `GET` (200) and
    /// `bytes=0-` (206) are both certified without request headers.
    status: u16,
    certification: HttpCertification,
    /// Metadata, poster and 404 answers are hashed again when served and must match: their
    /// source can change, and a stale certificate must turn into an upgrade, not a response
    /// that fails verification. Video answers are immutable once Ready and are not re-hashed.
    check_when_served: bool,
}

impl Certified {
    fn entry(&self) -> HttpCertificationTreeEntry<'static> {
        HttpCertificationTreeEntry::new(self.spec.path.to_http_path(), self.certification)
    }
}

/// Why (part of) a tree could not be built. The canister still sets certified data to
/// [`Certifier::root_hash`]: whatever is not in the tree is served through
/// `http_request_update` instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertifyError {
    /// The upload chunk size is outside `1..=MAX_BODY`: HTTP bodies cannot be upload chunks,
    /// so their hashes are unknown without re-hashing the video. Video answers stay uncertified.
    ChunkSizeUnsupported { chunk_size: u64 },
    /// A chunk digest the tree needs is missing.
    MissingChunkDigest { index: u64 },
    /// The certification library refused an entry (a bug).
    Library(String),
}

impl std::fmt::Display for CertifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertifyError::ChunkSizeUnsupported { chunk_size } => {
                write!(f, "chunk size {chunk_size} is not in 1..={MAX_BODY}: video responses are not certified")
            }
            CertifyError::MissingChunkDigest { index } => {
                write!(f, "chunk digest {index} is missing")
            }
            CertifyError::Library(e) => write!(f, "certification library error: {e}"),
        }
    }
}

impl std::error::Error for CertifyError {}

/// The chunk entries still to insert (see [`Certifier::resume`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    /// Next chunk index to certify (chunk 0 is certified by [`Certifier::start`]).
    next: u64,
    /// Number of chunks of the video.
    chunks: u64,
}

/// The certified answers of one named file (docs/http.md, "Named files": entries per file).
#[derive(Clone, Debug)]
struct NamedCerts {
    /// (method, status, kind, certification) of the answers that do not depend on a chunk
    /// index: plain GET, `bytes=0-`, HEAD, the 304s of GET and HEAD, OPTIONS. The planned
    /// answer's (method, status, kind) names one of them: `serve::plan` only gives a spec to
    /// requests of exactly the certified shape (e.g. the 304 only for `If-None-Match: "<etag>"`).
    fixed: Vec<(&'static str, u16, CelKind, HttpCertification)>,
    /// As [`Certifier::chunks`], for this file's chunks 1.. .
    chunks: Vec<[Option<HttpCertification>; 4]>,
    /// Whether the 401 and 403 ([`Certifier::refusals`]) are in the tree at this path.
    gated: bool,
}

impl NamedCerts {
    fn entry_count(&self) -> usize {
        self.fixed.len()
            + self
                .chunks
                .iter()
                .map(|c| c.iter().flatten().count())
                .sum::<usize>()
            + 2 * usize::from(self.gated)
    }
}

/// The named-file entries still to insert: `file`'s, from `next` on (0: its fixed answers; k ≥ 1:
/// its chunk k), then the files after it by path.
#[derive(Clone, Debug)]
struct NamedPending {
    file: NamedFile,
    next: u64,
}

/// The canister's HTTP certification tree and the entries it holds.
///
/// Besides the tree it keeps each entry's [`HttpCertification`] (≈ 100 bytes), so that a query
/// can name its answer's entry without hashing the request and response again. An entry is
/// kept exactly while it is in the tree: finding it means the tree holds it.
#[derive(Debug, Default)]
pub struct Certifier {
    tree: HttpCertificationTree,
    /// Video answers that do not depend on a chunk index (per video path: plain GET,
    /// `bytes=0-`, HEAD, the 304s of GET and HEAD, or the 503s while uploading; and the 405s).
    /// Only ever removed all together, by `start`.
    video_fixed: Vec<Certified>,
    /// `chunks[k - 1][form]` = the certification of chunk k's answer to a [`RangeForm`]. They
    /// are the same for every video path: a request hash does not cover the path. `None` for
    /// `ToEnd` of the last chunk: it is that chunk's `Closed` request.
    chunks: Vec<[Option<HttpCertification>; 4]>,
    /// Metadata and poster answers (GET, HEAD): replaced together by
    /// [`Certifier::certify_extras`] after every change of what they show.
    extra_entries: Vec<Certified>,
    /// The answers off the video paths that never change: the 404s, and the 405s of the
    /// metadata and poster paths and of the wildcard. Rebuilt only when the poster comes or
    /// goes (its path then has its own entries or falls back on the wildcard).
    fixed_extra_entries: Vec<Certified>,
    /// Whether `fixed_extra_entries` were built for a video with a poster (`None`: not built).
    fixed_extras_with_poster: Option<bool>,
    pending: Option<Pending>,
    /// Whether the video is gated (not public), as last told by [`Certifier::certify_gate`].
    /// Remembered so that every rebuild ([`Certifier::start`]) puts `gate_entries` back.
    gated: bool,
    /// The 401 and 403 of each video path while `gated`, else empty.
    gate_entries: Vec<Certified>,
    /// Named files not in `free_paths` are gated while `gated` ([`Certifier::certify_gate`]).
    free_paths: Vec<String>,
    /// The certified answers of each named file built so far, by path.
    named: BTreeMap<String, NamedCerts>,
    /// The named file being built (`None`: none left, or not Ready).
    named_pending: Option<NamedPending>,
    /// The first error of the current build, returned by [`Certifier::resume`] once nothing is
    /// pending (a file that cannot be certified is skipped; the others still are).
    build_error: Option<CertifyError>,
    /// The 401 and 403 certifications: response-only and path-independent (the refusal says
    /// nothing about the path), so one pair serves every gated named path.
    refusals: Option<[HttpCertification; 2]>,
}

impl Certifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value for `certified_data_set`.
    pub fn root_hash(&self) -> [u8; 32] {
        self.tree.root_hash()
    }

    /// How many answers are certified.
    pub fn entry_count(&self) -> usize {
        self.video_fixed.len()
            + self.fixed_extra_entries.len()
            + self
                .chunks
                .iter()
                .map(|c| c.iter().flatten().count() * VIDEO_PATHS.len())
                .sum::<usize>()
            + self.extra_entries.len()
            + self.gate_entries.len()
            + self
                .named
                .values()
                .map(NamedCerts::entry_count)
                .sum::<usize>()
    }

    /// How many named files have all their entries in the tree (or are being built).
    pub fn named_file_count(&self) -> usize {
        self.named.len()
    }

    /// Every leaf path of the tree, sorted: what the tree holds, whatever its shape. The root
    /// hash also depends on the order of insertion (the tree is a red-black tree and its hash
    /// follows the tree's shape), so trees with the same entries compare equal only here.
    #[cfg(test)]
    pub(crate) fn tree_paths(&self) -> Vec<Vec<Vec<u8>>> {
        let mut paths: Vec<Vec<Vec<u8>>> = self
            .tree
            .as_hash_tree()
            .list_paths()
            .into_iter()
            .map(|path| path.iter().map(|l| l.as_bytes().to_vec()).collect())
            .collect();
        paths.sort();
        paths
    }

    /// Work [`Certifier::resume`] has still to do: the main file's chunks whose entries are not
    /// inserted yet, plus 1 while named files remain (their number is not known without
    /// walking them). 0 when the tree is complete.
    pub fn pending_chunks(&self) -> u64 {
        self.pending.map_or(0, |p| p.chunks - p.next) + u64::from(self.named_pending.is_some())
    }

    /// Rebuilds the whole tree from `video`'s state in one go; returns the new root hash.
    ///
    /// Cost: about 8 entries per chunk (2 paths × 4 [`RangeForm`]s) plus a handful, and 6 per
    /// one-chunk named file (4 more per further chunk); an
    /// entry is a few small SHA-256s and a tree insert — no video bytes are read or hashed
    /// (docs/http.md, "Cost"). A canister should use [`Certifier::start`] and
    /// [`Certifier::resume`] instead, so that no single message has to certify a whole large
    /// video. On error the tree still holds everything else (see [`CertifyError`]).
    pub fn certify_all(&mut self, video: &dyn VideoSource) -> Result<[u8; 32], CertifyError> {
        let started = self.start(video);
        let resumed = self.resume(video, &mut || true);
        started.and(resumed).map(|_| self.root_hash())
    }

    /// Clears the tree and certifies everything but the video's chunks 1.. : the metadata,
    /// poster and 404 entries, and per video path the answers that do not depend on a chunk
    /// index (plain `GET`, `bytes=0-`, `HEAD`, the 304; or the 503 while uploading). The chunk
    /// entries are left to [`Certifier::resume`]. The 401/403 entries of a gated video are
    /// kept as [`Certifier::certify_gate`] last set them. Returns the root hash of the partial
    /// tree.
    ///
    /// On error the tree holds everything that could be certified and nothing is pending.
    pub fn start(&mut self, video: &dyn VideoSource) -> Result<[u8; 32], CertifyError> {
        self.tree.clear();
        self.video_fixed.clear();
        self.chunks.clear();
        self.extra_entries.clear();
        self.fixed_extra_entries.clear();
        self.fixed_extras_with_poster = None;
        self.pending = None;
        self.gate_entries.clear();
        self.named.clear();
        self.named_pending = None;
        self.build_error = None;
        let free_paths = self.free_paths.clone();
        let gate = self.certify_gate(video, self.gated, &free_paths);
        let extras = self.certify_extras(video);
        let videos = self.certify_video_fixed(video);
        if video.named_files_ready() {
            self.named_pending = video
                .named_files_after(None, 1)
                .into_iter()
                .next()
                .map(|file| NamedPending { file, next: 0 });
        }
        gate.and(extras).and(videos).map(|()| self.root_hash())
    }

    /// Puts the 401 and 403 answers of a gated video (`crate::Gate`) in the tree at each video
    /// path and at each named file's path but those matching `free_paths` ([`is_free_path`]:
    /// the video's `AccessPolicy::free_paths`) (`gated`), or takes them out (`!gated`); returns
    /// the new root hash. Idempotent, and remembered: [`Certifier::start`],
    /// [`Certifier::certify_all`] and every named file that [`Certifier::resume`] certifies
    /// later follow them, whichever is called first. The canister calls it whenever a video
    /// becomes public or not, or its free paths change.
    ///
    /// Cost: the 4 entries of the video paths; when `gated` or `free_paths` changed, also 2
    /// inserts or deletes per named file whose gate changed (no hashing: the two refusals are
    /// certified once); when neither changed, nothing per named file.
    ///
    /// They are response-only entries beside the video answers' full-certification entries at
    /// the same paths: each entry sits under its own CEL expression's hash, and the answer's
    /// `IC-CertificateExpression` header names which one verifies it. The answers do not depend
    /// on the video (a refusal carries no media), so two entries per path are the whole cost.
    pub fn certify_gate(
        &mut self,
        video: &dyn VideoSource,
        gated: bool,
        free_paths: &[String],
    ) -> Result<[u8; 32], CertifyError> {
        for e in self.gate_entries.drain(..) {
            self.tree.delete(&e.entry());
        }
        let changed = self.gated != gated || self.free_paths != free_paths;
        self.gated = gated;
        self.free_paths = free_paths.to_vec();
        if changed && !self.named.is_empty() {
            let refusals = self.refusals(video)?;
            for (path, certs) in &mut self.named {
                let want = gated && !is_free_path(free_paths, path);
                set_named_gate(&mut self.tree, path, certs, want, &refusals);
            }
        }
        if gated {
            for path in VIDEO_PATHS {
                for viewer in [Viewer::NoToken, Viewer::Denied] {
                    let plan = serve::refusal(path.to_string(), viewer);
                    let e = certify_planned("GET", plan, video)?;
                    self.tree.insert(&e.entry());
                    self.gate_entries.push(e);
                }
            }
        }
        Ok(self.root_hash())
    }

    /// Inserts the pending entries, one step at a time, while `keep_going()` says so: first
    /// the main file's chunks (one chunk, both video paths, every [`RangeForm`], per step), then
    /// the named files in path order (per step: one file's fixed answers — about 6 entries — or
    /// one of its chunks ≥ 1). At least one step is taken per call if any is pending, so
    /// repeated calls always finish. Returns [`Certifier::pending_chunks`]. The tree is valid
    /// after every step: the caller may publish its root whenever this returns.
    ///
    /// A main-file chunk that cannot be certified (missing digest) ends the main file's build,
    /// a named file that cannot be certified is skipped: what is not in the tree is served
    /// through the update path. The first such error is returned once nothing is pending.
    pub fn resume(
        &mut self,
        video: &dyn VideoSource,
        keep_going: &mut dyn FnMut() -> bool,
    ) -> Result<u64, CertifyError> {
        loop {
            if let Some(p) = self.pending {
                if p.next >= p.chunks {
                    self.pending = None;
                    continue;
                }
                match self.certify_chunk(video, p.next) {
                    Ok(()) => {
                        self.pending = Some(Pending {
                            next: p.next + 1,
                            ..p
                        })
                    }
                    Err(e) => {
                        self.pending = None;
                        self.build_error.get_or_insert(e);
                    }
                }
            } else if self.named_pending.is_some() {
                self.named_step(video);
            } else {
                break;
            }
            if !keep_going() {
                break;
            }
        }
        if self.pending.is_some_and(|p| p.next >= p.chunks) {
            self.pending = None;
        }
        match self.pending_chunks() {
            0 => self.build_error.take().map_or(Ok(0), Err),
            pending => Ok(pending),
        }
    }

    /// One step of the named files' build (see [`Certifier::resume`]).
    fn named_step(&mut self, video: &dyn VideoSource) {
        let Some(NamedPending { file, next }) = self.named_pending.take() else {
            return;
        };
        let chunks = file.size.div_ceil(file.chunk_size.max(1));
        let done = match self.certify_named_part(video, &file, next) {
            Ok(()) => next + 1 >= chunks,
            Err(e) => {
                // Skip the rest of this file: its answers that are in the tree are right, the
                // others go through the update path.
                self.build_error.get_or_insert(e);
                true
            }
        };
        self.named_pending = if done {
            video
                .named_files_after(Some(&file.path), 1)
                .into_iter()
                .next()
                .filter(|f| f.path > file.path)
                .map(|file| NamedPending { file, next: 0 })
        } else {
            Some(NamedPending {
                file,
                next: next + 1,
            })
        };
    }

    /// Certifies part `next` of a named file: 0 = its fixed answers (and its refusals if it is
    /// gated), k ≥ 1 = its chunk k in every [`RangeForm`].
    fn certify_named_part(
        &mut self,
        video: &dyn VideoSource,
        file: &NamedFile,
        next: u64,
    ) -> Result<(), CertifyError> {
        let path = file.path.as_str();
        if serve::ready_named_file(path, video).as_ref() != Some(file) {
            return Err(CertifyError::Library(format!(
                "named file {path} is not served as listed"
            )));
        }
        if next >= 1 {
            let certifications =
                chunk_certifications(video, path, file.size, file.chunk_size, next)?;
            let certs = self
                .named
                .get_mut(path)
                .ok_or_else(|| CertifyError::Library(format!("{path}: chunk before its start")))?;
            for certification in certifications.iter().flatten() {
                let e = HttpCertificationTreeEntry::new(
                    HttpCertificationPath::exact(path),
                    *certification,
                );
                self.tree.insert(&e);
            }
            certs.chunks.push(certifications);
            return Ok(());
        }
        if !(1..=MAX_BODY).contains(&file.chunk_size) {
            return Err(CertifyError::ChunkSizeUnsupported {
                chunk_size: file.chunk_size,
            });
        }
        let tag = crate::etag(&file.digest);
        let requests: [(&'static str, Vec<(String, String)>); 6] = [
            ("GET", vec![]),
            ("GET", hdr("range", "bytes=0-".into())),
            ("HEAD", vec![]),
            ("GET", hdr("if-none-match", tag.clone())),
            ("HEAD", hdr("if-none-match", tag)),
            ("OPTIONS", vec![]),
        ];
        let mut certs = NamedCerts {
            fixed: Vec::with_capacity(requests.len()),
            chunks: Vec::new(),
            gated: false,
        };
        for (method, headers) in &requests {
            let e = certify_request(method, path, headers, video)?;
            let key = (*method, e.status, e.spec.kind);
            // A file larger than one body answers a plain GET and `bytes=0-` alike.
            if certs.fixed.iter().any(|f| (f.0, f.1, f.2) == key) {
                continue;
            }
            self.tree.insert(&e.entry());
            certs.fixed.push((key.0, key.1, key.2, e.certification));
        }
        if self.gated && !is_free_path(&self.free_paths, path) {
            let refusals = self.refusals(video)?;
            set_named_gate(&mut self.tree, path, &mut certs, true, &refusals);
        }
        self.named.insert(path.to_string(), certs);
        Ok(())
    }

    /// The certifications of the 401 and the 403 (computed once).
    fn refusals(
        &mut self,
        video: &dyn VideoSource,
    ) -> Result<[HttpCertification; 2], CertifyError> {
        if let Some(r) = self.refusals {
            return Ok(r);
        }
        let mut r = [HttpCertification::skip(); 2];
        for (i, viewer) in [Viewer::NoToken, Viewer::Denied].into_iter().enumerate() {
            r[i] = certify_planned("GET", serve::refusal(VIDEO_PATHS[0].into(), viewer), video)?
                .certification;
        }
        self.refusals = Some(r);
        Ok(r)
    }

    /// Replaces the metadata and poster entries (after a metadata edit, a poster upload or a
    /// chunk: `/metadata.json` shows `updated_at`), and the 404/405 entries off the video paths
    /// if the poster came or went. A chunk's recertification is therefore two entries.
    pub fn certify_extras(&mut self, video: &dyn VideoSource) -> Result<[u8; 32], CertifyError> {
        for e in self.extra_entries.drain(..) {
            self.tree.delete(&e.entry());
        }
        let poster = video.poster().is_some();
        let mut content = vec![METADATA_PATH];
        if poster {
            content.push(POSTER_PATH);
        }
        let requests = content
            .into_iter()
            .flat_map(|path| [("GET", path), ("HEAD", path)]);
        let entries = certify_each(requests, video)?;
        for e in entries {
            self.tree.insert(&e.entry());
            self.extra_entries.push(e);
        }
        if self.fixed_extras_with_poster != Some(poster) {
            for e in self.fixed_extra_entries.drain(..) {
                self.tree.delete(&e.entry());
            }
            let mut paths = vec![METADATA_PATH, NOT_FOUND_PROBE_PATH];
            if poster {
                paths.push(POSTER_PATH);
            }
            let errors = paths.into_iter().flat_map(|path| {
                serve::CERTIFIED_405_METHODS
                    .into_iter()
                    .chain(["OPTIONS"])
                    .map(move |method| (method, path))
            });
            let requests = [
                ("GET", NOT_FOUND_PROBE_PATH),
                ("HEAD", NOT_FOUND_PROBE_PATH),
            ]
            .into_iter()
            .chain(errors);
            let entries = certify_each(requests, video)?;
            for e in entries {
                self.tree.insert(&e.entry());
                self.fixed_extra_entries.push(e);
            }
            self.fixed_extras_with_poster = Some(poster);
        }
        Ok(self.root_hash())
    }

    /// The video answers that do not depend on a chunk index; sets up [`Pending`] for the rest.
    fn certify_video_fixed(&mut self, video: &dyn VideoSource) -> Result<(), CertifyError> {
        let info = video.info().filter(|i| i.status == VideoStatus::Ready);
        // GET and HEAD (or their 503 while uploading) and the certified 405s.
        let mut requests: Vec<(&'static str, Vec<(String, String)>)> = ["GET", "HEAD", "OPTIONS"]
            .into_iter()
            .chain(serve::CERTIFIED_405_METHODS)
            .map(|method| (method, vec![]))
            .collect();
        let mut chunks = 0;
        if let Some(info) = &info {
            if !(1..=MAX_BODY).contains(&info.chunk_size) {
                // The 503/405 answers above do not need chunk digests, but a Ready video's
                // GET does: certify only what can be, and say why the rest is not.
                for path in VIDEO_PATHS {
                    for method in serve::CERTIFIED_405_METHODS.into_iter().chain(["OPTIONS"]) {
                        let e = certify_request(method, path, &[], video)?;
                        self.tree.insert(&e.entry());
                        self.video_fixed.push(e);
                    }
                }
                return Err(CertifyError::ChunkSizeUnsupported {
                    chunk_size: info.chunk_size,
                });
            }
            let tag = crate::etag(&info.digest);
            requests.push(("GET", hdr("range", "bytes=0-".into())));
            requests.push(("GET", hdr("if-none-match", tag.clone())));
            requests.push(("HEAD", hdr("if-none-match", tag)));
            chunks = info.size.div_ceil(info.chunk_size);
        }
        for path in VIDEO_PATHS {
            for (method, headers) in &requests {
                let e = certify_request(method, path, headers, video)?;
                self.tree.insert(&e.entry());
                self.video_fixed.push(e);
            }
        }
        if chunks > 1 {
            self.pending = Some(Pending { next: 1, chunks });
        }
        Ok(())
    }

    /// The entries of chunk `k` ≥ 1: every [`RangeForm`] on every video path.
    fn certify_chunk(&mut self, video: &dyn VideoSource, k: u64) -> Result<(), CertifyError> {
        let info = video
            .info()
            .filter(|i| i.status == VideoStatus::Ready)
            .ok_or(CertifyError::MissingChunkDigest { index: k })?;
        // The request hash does not cover the path: one certification serves every path.
        let certifications =
            chunk_certifications(video, VIDEO_PATHS[0], info.size, info.chunk_size, k)?;
        for path in VIDEO_PATHS {
            for certification in certifications.iter().flatten() {
                let e = HttpCertificationTreeEntry::new(
                    HttpCertificationPath::exact(path),
                    *certification,
                );
                self.tree.insert(&e);
            }
        }
        debug_assert_eq!(
            self.chunks.len() as u64 + 1,
            k,
            "chunks are certified in order"
        );
        self.chunks.push(certifications);
        Ok(())
    }

    /// The certification of a planned answer, if the tree holds it.
    fn certification(
        &self,
        spec: &CertSpec,
        method: &str,
        plan: &Plan,
        video: &dyn VideoSource,
    ) -> Option<HttpCertification> {
        if let CertPath::Exact(path) = &spec.path {
            if let Some(certs) = self.named.get(path) {
                if let Some(chunk) = spec.chunk {
                    let index = usize::try_from(chunk.index.checked_sub(1)?).ok()?;
                    return certs.chunks.get(index)?[chunk.form as usize];
                }
                if spec.kind == CelKind::ResponseOnly {
                    let refusals = self.refusals.filter(|_| certs.gated)?;
                    return match plan.status {
                        401 => Some(refusals[0]),
                        403 => Some(refusals[1]),
                        _ => None,
                    };
                }
                return certs
                    .fixed
                    .iter()
                    .find(|f| f.0 == method && f.1 == plan.status && f.2 == spec.kind)
                    .map(|f| f.3);
            }
        }
        if let Some(chunk) = spec.chunk {
            let index = usize::try_from(chunk.index.checked_sub(1)?).ok()?;
            return self.chunks.get(index)?[chunk.form as usize];
        }
        let kept = self
            .video_fixed
            .iter()
            .chain(&self.extra_entries)
            .chain(&self.fixed_extra_entries)
            .chain(&self.gate_entries)
            .find(|e| e.method == method && e.status == plan.status && &e.spec == spec)?;
        if kept.check_when_served {
            let served = certify_plan(method, spec, plan, video).ok()?;
            if served != kept.certification {
                return None;
            }
        }
        Some(kept.certification)
    }

    /// The `IC-Certificate` header value for an answer, or `None` if the tree does not hold
    /// that answer (the caller then upgrades the request to an update call).
    ///
    /// No video answer is hashed here: the entry's certification was kept when it was
    /// inserted, so the only hashing left is the witness's path through the tree
    /// (docs/performance.md, "HTTP serving").
    pub(crate) fn certificate_header(
        &self,
        method: &str,
        path: &str,
        plan: &Plan,
        video: &dyn VideoSource,
        data_certificate: &[u8],
    ) -> Option<String> {
        let spec = plan.cert.as_ref()?;
        let certification = self.certification(spec, method, plan, video)?;
        let e = HttpCertificationTreeEntry::new(spec.path.to_http_path(), certification);
        let witness = self.tree.witness(&e, path).ok()?;
        let expr_path = cbor_encode_to_base64(&e.path.to_expr_path());
        Some(build_v2_certificate_header_value(
            data_certificate,
            &witness,
            &expr_path,
        ))
    }
}

fn hdr(name: &str, value: String) -> Vec<(String, String)> {
    vec![(name.to_string(), value)]
}

/// Puts the 401 and 403 at a named file's path in the tree (`want`) or takes them out.
fn set_named_gate(
    tree: &mut HttpCertificationTree,
    path: &str,
    certs: &mut NamedCerts,
    want: bool,
    refusals: &[HttpCertification; 2],
) {
    if certs.gated == want {
        return;
    }
    for certification in refusals {
        let e = HttpCertificationTreeEntry::new(HttpCertificationPath::exact(path), *certification);
        if want {
            tree.insert(&e);
        } else {
            tree.delete(&e);
        }
    }
    certs.gated = want;
}

/// The certifications of chunk `k` ≥ 1 of the file at `path` (`size` bytes, upload chunks of
/// `chunk_size` in `1..=MAX_BODY`) in every [`RangeForm`]; `None` for `ToEnd` of the last chunk
/// (it is that chunk's `Closed` request).
fn chunk_certifications(
    video: &dyn VideoSource,
    path: &str,
    size: u64,
    chunk_size: u64,
    k: u64,
) -> Result<[Option<HttpCertification>; 4], CertifyError> {
    let start = k * chunk_size;
    let end = (start + chunk_size).min(size) - 1;
    let mut certifications = [None; 4];
    for form in [
        RangeForm::Open,
        RangeForm::Closed,
        RangeForm::ToEnd,
        RangeForm::Media,
    ] {
        if form == RangeForm::ToEnd && end == size - 1 {
            continue;
        }
        let mut headers = hdr("range", form.header_value(start, end, size));
        if form == RangeForm::Media {
            headers.push(("sec-fetch-dest".into(), serve::MEDIA_DEST.into()));
        }
        let e = certify_request("GET", path, &headers, video)?;
        if e.spec.chunk != Some(ChunkRange { index: k, form }) {
            return Err(CertifyError::Library(format!(
                "{path} chunk {k}: {headers:?} is not planned as its {form:?} answer"
            )));
        }
        certifications[form as usize] = Some(e.certification);
    }
    Ok(certifications)
}

/// Certifies the answers to bodiless requests `(method, path)`, each checked again when served
/// (their source may change: see [`Certified::check_when_served`]).
fn certify_each<'a>(
    requests: impl IntoIterator<Item = (&'static str, &'a str)>,
    video: &dyn VideoSource,
) -> Result<Vec<Certified>, CertifyError> {
    requests
        .into_iter()
        .map(|(method, path)| {
            let mut e = certify_request(method, path, &[], video)?;
            e.check_when_served = true;
            Ok(e)
        })
        .collect()
}

/// Plans a synthetic request and certifies its answer.
fn certify_request(
    method: &'static str,
    path: &str,
    headers: &[(String, String)],
    video: &dyn VideoSource,
) -> Result<Certified, CertifyError> {
    let plan: Plan = serve::plan(method, path, headers, video, None.into());
    if plan.cert.is_none() {
        return Err(CertifyError::Library(format!(
            "{method} {path} {headers:?} has no certifiable answer"
        )));
    }
    certify_planned(method, plan, video)
}

/// Certifies a planned answer to a `method` request (the plan must carry its [`CertSpec`]).
fn certify_planned(
    method: &'static str,
    plan: Plan,
    video: &dyn VideoSource,
) -> Result<Certified, CertifyError> {
    let spec = plan
        .cert
        .clone()
        .ok_or_else(|| CertifyError::Library(format!("{method}: no certifiable answer")))?;
    Ok(Certified {
        method,
        certification: certify_plan(method, &spec, &plan, video)?,
        spec,
        status: plan.status,
        check_when_served: false,
    })
}

/// The certification of a planned answer (`spec` is the plan's).
fn certify_plan(
    method: &str,
    spec: &CertSpec,
    plan: &Plan,
    video: &dyn VideoSource,
) -> Result<HttpCertification, CertifyError> {
    let body_hash = body_hash(&plan.body, video)?;
    let response = response(plan.status, &plan.headers)?;
    certification(spec, method, &response, body_hash)
}

/// SHA-256 of an answer's body; video bodies use the stored chunk digest.
pub(crate) fn body_hash(body: &Body, video: &dyn VideoSource) -> Result<[u8; 32], CertifyError> {
    Ok(match body {
        Body::Empty => sha256(b""),
        Body::Static(s) => sha256(s.as_bytes()),
        Body::Bytes(b) => sha256(b),
        Body::Prehashed(_, hash) => *hash,
        Body::Video { offset, len } => {
            let info = video
                .info()
                .ok_or(CertifyError::MissingChunkDigest { index: 0 })?;
            let c = info.chunk_size;
            if !(1..=MAX_BODY).contains(&c) {
                return Err(CertifyError::ChunkSizeUnsupported { chunk_size: c });
            }
            let index = offset / c;
            let chunk_len = c.min(info.size - index * c);
            if offset % c != 0 || *len != chunk_len {
                return Err(CertifyError::Library(format!(
                    "body {offset}+{len} is not upload chunk {index}"
                )));
            }
            video
                .chunk_digest(index)
                .ok_or(CertifyError::MissingChunkDigest { index })?
        }
        Body::Named { path, offset, len } => {
            let file = video
                .named_file(path)
                .ok_or(CertifyError::MissingChunkDigest { index: 0 })?;
            let c = file.chunk_size;
            if !(1..=MAX_BODY).contains(&c) {
                return Err(CertifyError::ChunkSizeUnsupported { chunk_size: c });
            }
            let index = offset / c;
            let chunk_len = c.min(file.size - index * c);
            if offset % c == 0 && *len == chunk_len {
                video
                    .named_chunk_digest(path, index)
                    .ok_or(CertifyError::MissingChunkDigest { index })?
            } else if *offset == 0 && *len == file.size && file.size <= MAX_BODY {
                // The 200 of a plain GET of a file of several chunks that fits one body: the
                // one answer whose hash is no stored digest. Hashed once, here, in a budgeted
                // build step (≤ MAX_BODY bytes); the query serves the kept certification.
                let bytes = video
                    .read_named(path, 0, file.size)
                    .map_err(|e| CertifyError::Library(e.to_string()))?;
                sha256(&bytes)
            } else {
                return Err(CertifyError::Library(format!(
                    "{path}: body {offset}+{len} is not upload chunk {index}"
                )));
            }
        }
    })
}

fn response(
    status: u16,
    headers: &[(String, String)],
) -> Result<HttpResponse<'static>, CertifyError> {
    let status = StatusCode::from_u16(status).map_err(|e| CertifyError::Library(e.to_string()))?;
    Ok(HttpResponse::builder()
        .with_status_code(status)
        .with_headers(headers.to_vec())
        .build())
}

/// The certification of an answer whose body hashes to `body_hash`.
fn certification(
    spec: &CertSpec,
    method: &str,
    response: &HttpResponse,
    body_hash: [u8; 32],
) -> Result<HttpCertification, CertifyError> {
    let lib =
        |e: ic_http_certification::HttpCertificationError| CertifyError::Library(e.to_string());
    let certification = match spec.kind {
        CelKind::ResponseOnly => {
            let def = CelKind::response_only_def();
            let rh = response_hash(response, &def.response, Some(body_hash));
            HttpCertification::response_only_prehashed(spec.kind.cel_hash(), rh)
        }
        kind => {
            let def = kind.full_def();
            let method = Method::from_bytes(method.as_bytes())
                .map_err(|e| CertifyError::Library(e.to_string()))?;
            let path = match &spec.path {
                CertPath::Exact(p) => p.clone(),
                CertPath::NotFound => NOT_FOUND_PROBE_PATH.to_string(),
            };
            let request_headers = spec
                .request_header
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect();
            let request = HttpRequest::builder()
                .with_method(method)
                .with_url(path)
                .with_headers(request_headers)
                .build();
            HttpCertification::full(&def, &request, response, Some(body_hash)).map_err(lib)?
        }
    };
    Ok(certification)
}
