//! The video canister's HTTP interface, as plain Rust.
//!
//! The canister's `http_request` query calls [`http_request`], its `http_request_update` update
//! calls [`http_request_update`]; both read the video through the [`VideoSource`] trait, so all
//! routing, `Range`/206 handling and response certification is unit-tested natively here.
//! `docs/http.md` explains the design; in short:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /` or `/video`, no `Range` | 200 whole video if it fits one body, else 206 with the first chunk (the IC HTTP gateway then fetches the rest with `Range: bytes=N-`) |
//! | `Range: bytes=a-b` / `a-` / `-n` | 206 with `Content-Range`; the body ends at the end of the chunk that holds `a` (≤ 2,000,000 bytes) |
//! | unsatisfiable range | 416 with `Content-Range: bytes */size` |
//! | `HEAD` | the headers of the whole video's `GET` (200 with the full `Content-Length`; `Range` is ignored), empty body |
//! | `If-None-Match` matching the ETag | 304 |
//! | video not finished | 503 (`Retry-After`) |
//! | `/metadata.json`, `/poster` | JSON metadata; the poster or 404 |
//! | a named file's path (`/hls/720p/seg-00042.m4s`), video Ready | that file, with the same `Range`/206/HEAD/304/416 answers; a plain GET of a file ≤ `MAX_BODY` is 200 with the whole file |
//! | `OPTIONS` (CORS preflight) | 204 with `Access-Control-Allow-Methods`/`-Headers` |
//! | other paths / methods | 404 / 405 |
//! | a video that is not public ([`Gate`]), GET past the preview | 401 without token, 403 with a token that does not let its viewer watch |
//!
//! Every answer carries [`SECURITY_HEADERS`] and [`CORS_HEADERS`] (an HLS player on another
//! origin reads playlists and segments with `fetch`/XHR).
//!
//! Every answer a browser or the IC gateway normally asks for is *pre-certified* (response
//! certification v2) by [`Certifier`] when the upload finishes. Error answers that cannot be
//! enumerated (odd methods) are served uncertified; ranges no pre-certified shape holds
//! are produced by the `http_request_update` path (the query answers `upgrade = true`), whose
//! reply goes through consensus and needs no certificate. [`update_need`] tells the canister's
//! `inspect_message` which update calls are worth their cost.

pub mod certify;
mod gate;
pub mod range;
mod serve;

pub use certify::{Certifier, CertifyError};
pub use gate::{is_free_path, playback_token, Gate, GateFor, Viewer};
pub use ic_http_certification::{HttpRequest, HttpResponse, HttpUpdateRequest, StatusCode};
pub use serve::{
    http_request, http_request_update, serve_uncertified, update_check, update_need, UpdateCheck,
    UpdateNeed, CORS_HEADERS, PREFLIGHT_HEADERS, SECURITY_HEADERS,
};

/// Largest body canvid puts in one HTTP response. A query reply may be 3 MiB and a replicated
/// reply 2 MiB; 2,000,000 bytes leaves room for headers and candid framing in both.
pub const MAX_BODY: u64 = 2_000_000;

/// Paths that serve the video itself.
pub const VIDEO_PATHS: [&str; 2] = ["/", "/video"];
/// Path of the JSON metadata document.
pub const METADATA_PATH: &str = "/metadata.json";
/// Path of the poster image (404 when the owner uploaded none).
pub const POSTER_PATH: &str = "/poster";

/// Upload state of the video, as HTTP needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoStatus {
    /// Chunks are still arriving (or the upload has not been finished): never served as a video.
    Uploading,
    /// `finish_upload` verified every chunk: the bytes are immutable from now on.
    Ready,
}

/// What the HTTP layer needs to know about the stored video.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoInfo {
    /// `Content-Type` of the video, e.g. `video/mp4`.
    pub mime_type: String,
    /// Size of the whole file in bytes.
    pub size: u64,
    /// Upload chunk size: every chunk but the last has exactly this many bytes. When it is in
    /// `1..=MAX_BODY`, HTTP uses the same grid, so each chunk's stored SHA-256 digest is the body
    /// hash of its 206 response and certification needs no re-hashing.
    pub chunk_size: u64,
    /// The file digest (SHA-256 over the concatenated chunk digests): the ETag.
    pub digest: [u8; 32],
    pub status: VideoStatus,
}

/// The poster image, if the owner uploaded one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poster {
    pub mime_type: String,
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes` (stored at upload so certification does not hash again).
    pub sha256: [u8; 32],
}

/// A named file of a video (an HLS playlist or segment, a subtitle track, a thumbnail sprite),
/// served at its own `path`. Named files are immutable from the moment the video is Ready, like
/// the main file, and are only served from then on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedFile {
    /// The file's HTTP path (`canvid_types::files::validate_path`: never one of the canister's
    /// own paths).
    pub path: String,
    /// `Content-Type`, e.g. `application/vnd.apple.mpegurl`, `video/mp4`, `text/vtt`.
    pub mime_type: String,
    pub size: u64,
    /// Upload chunk size, as for [`VideoInfo::chunk_size`] (every chunk but the last has exactly
    /// this many bytes; `1..=MAX_BODY` for its answers to be certified).
    pub chunk_size: u64,
    /// SHA-256 over the concatenated chunk digests: the ETag.
    pub digest: [u8; 32],
}

/// A failed read of stored video bytes (a bug or corrupted state: served as 500).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError(pub String);

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "read error: {}", self.0)
    }
}

impl std::error::Error for ReadError {}

/// Read access to the stored video, implemented by the video canister over its stable memory.
pub trait VideoSource {
    /// `None` until an upload has been declared.
    fn info(&self) -> Option<VideoInfo>;
    /// Bytes `offset..offset+len` of the file; callers only ask for ranges inside `0..size`.
    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, ReadError>;
    /// The SHA-256 digest of upload chunk `index` (`None` if the index is out of range or the
    /// chunk is missing).
    fn chunk_digest(&self, index: u64) -> Option<[u8; 32]>;
    /// The JSON document served at `/metadata.json`.
    fn metadata_json(&self) -> String;
    fn poster(&self) -> Option<Poster>;

    // Named files. The defaults say "none", so a source that has no named files needs no code.
    // They are only asked for while the video is Ready (`named_files_ready`): before that every
    // named path answers 404, as an unknown path does (docs/http.md, "Named files").

    /// Are the named files served (the video is Ready)? By default, when the main file is
    /// Ready; a video of named files only has no main file and says so itself.
    fn named_files_ready(&self) -> bool {
        self.info().is_some_and(|i| i.status == VideoStatus::Ready)
    }
    /// The named file at exactly `path` (no query string; case-sensitive).
    fn named_file(&self, _path: &str) -> Option<NamedFile> {
        None
    }
    /// Up to `limit` named files with paths strictly after `after` (`None`: from the first), in
    /// ascending byte order of their paths: the certifier walks the files with it, a few per
    /// budgeted step.
    fn named_files_after(&self, _after: Option<&str>, _limit: usize) -> Vec<NamedFile> {
        Vec::new()
    }
    /// Bytes `offset..offset+len` of the named file at `path`; callers only ask for ranges
    /// inside `0..size`.
    fn read_named(&self, path: &str, _offset: u64, _len: u64) -> Result<Vec<u8>, ReadError> {
        Err(ReadError(format!("no named file {path}")))
    }
    /// The SHA-256 digest of upload chunk `index` of the named file at `path`.
    fn named_chunk_digest(&self, _path: &str, _index: u64) -> Option<[u8; 32]> {
        None
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The strong ETag of a finished video: its digest in quoted hex.
pub fn etag(digest: &[u8; 32]) -> String {
    format!("\"{}\"", hex(digest))
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
pub(crate) mod testutil;
