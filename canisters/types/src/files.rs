//! The files of a video: besides its main file (served at `/` and `/video`), a video canister
//! holds named files at their own HTTP paths: HLS master and media playlists, their segments,
//! WebVTT subtitles, thumbnails. Each is declared, uploaded in chunks and verified like the main
//! file (`UploadSpec::path` names it), and all of them become immutable together when
//! `finish_upload` makes the video Ready.
//!
//! Why named files rather than "renditions" as a type: a player asks for URLs. An HLS ladder is
//! a tree of playlists and segments whose relative URLs the playlists fix; storing exactly those
//! files at exactly those paths lets any HLS player (hls.js, Safari, ExoPlayer) play them with no
//! server-side knowledge of HLS, and lets the access policy unlock paths (`/hls/480p/`) rather
//! than formats.

use candid::{CandidType, Deserialize};
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::video::VideoStatus;
use crate::{Error, Result};

/// Most named files one video holds (the main file not counted). A two-hour film in a
/// four-rung ladder of 6-second segments is ~4,800 files.
pub const MAX_FILES: u32 = 20_000;
/// Longest file path, in bytes.
pub const MAX_PATH_BYTES: usize = 160;
/// Most files one `begin_files` call declares.
pub const MAX_FILES_PER_CALL: usize = 500;
/// Most files one `files` page lists.
pub const MAX_FILE_PAGE: u32 = 500;
/// Most files that may carry a `Rendition` (the ladder shown in metadata).
pub const MAX_RENDITIONS: usize = 16;
/// Longest rendition name and codecs string, in bytes.
pub const MAX_RENDITION_TEXT: usize = 64;

/// Paths the canister answers itself: no file may take them.
pub const RESERVED_PATHS: [&str; 4] = ["/", "/video", "/metadata.json", "/poster"];

/// One rung of an adaptive-streaming ladder, attached to the file a player opens for it (for
/// HLS, the rendition's media playlist). Shown in `VideoMetadata::renditions`.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct Rendition {
    /// e.g. "720p".
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Peak bits per second, as in the HLS `BANDWIDTH` attribute.
    pub bandwidth: u64,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: Option<String>,
}

/// A rendition and the path of the file that carries it.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct FileRendition {
    pub path: String,
    pub rendition: Rendition,
}

/// A named file as stored.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct FileInfo {
    pub path: String,
    pub mime_type: String,
    pub size: u64,
    pub chunk_size: u32,
    pub chunk_count: u32,
    pub uploaded_chunks: u32,
    pub uploaded_bytes: u64,
    /// The file digest (`protocol::file_digest`), set once the video is Ready.
    pub digest: Option<ByteBuf>,
    pub duration_ms: Option<u64>,
    pub rendition: Option<Rendition>,
}

/// `files` argument: a page of files in path order, after `after` (exclusive), at most `limit`
/// (default and maximum `MAX_FILE_PAGE`).
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct FilesArgs {
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct FilePage {
    pub files: Vec<FileInfo>,
    /// Files in the whole video (the main file not counted).
    pub total: u32,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
    pub status: VideoStatus,
}

/// `get_file_chunk` argument.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct FileChunkArgs {
    pub path: String,
    pub index: u32,
}

/// A file path: `/` followed by segments of `[A-Za-z0-9._~-]` joined by `/`, no empty, `.` or
/// `..` segment, at most `MAX_PATH_BYTES`, not one of `RESERVED_PATHS`. Paths are served
/// exactly as given (case-sensitive), so a playlist's relative URLs resolve to them.
pub fn validate_path(path: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::InvalidArgument {
            reason: format!(
                "file path {path:?}: {why}; expected /segment[/segment...] with segments of \
                 A-Z a-z 0-9 . _ ~ -, at most {MAX_PATH_BYTES} bytes"
            ),
        })
    };
    if path.len() > MAX_PATH_BYTES {
        return refuse("too long");
    }
    let Some(rest) = path.strip_prefix('/') else {
        return refuse("does not start with /");
    };
    if RESERVED_PATHS.contains(&path) {
        return refuse("reserved for the canister's own answers");
    }
    for segment in rest.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return refuse("empty, . or .. segment");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
        {
            return refuse("character outside A-Z a-z 0-9 . _ ~ -");
        }
    }
    Ok(())
}

/// MIME types a named file may have besides the main file's (`video::validate_video_mime`):
/// the types an adaptive stream needs, none a browser renders as an active document.
pub const FILE_MIME_TYPES: [&str; 10] = [
    "application/vnd.apple.mpegurl",
    "application/x-mpegurl",
    "application/dash+xml",
    "text/vtt",
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/avif",
    "application/mp4",
    "text/plain",
];

/// A named file's MIME type: anything the main file may be, or one of `FILE_MIME_TYPES`
/// (optionally with parameters, e.g. `text/vtt; charset=utf-8`).
pub fn validate_file_mime(mime: &str) -> Result<()> {
    if crate::video::validate_video_mime(mime).is_ok() {
        return Ok(());
    }
    let printable = !mime.is_empty()
        && mime.len() <= crate::video::MAX_MIME_TYPE_BYTES
        && mime.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let essence = mime.split(';').next().unwrap_or_default().trim();
    if printable
        && FILE_MIME_TYPES
            .iter()
            .any(|t| t.eq_ignore_ascii_case(essence))
    {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        reason: format!(
            "mime_type {mime:?} for a named file: expected a video or audio type, \
             application/octet-stream or one of {}",
            FILE_MIME_TYPES.join(", ")
        ),
    })
}

impl Rendition {
    pub fn validate(&self) -> Result<()> {
        let text_ok = |t: &str| {
            t.len() <= MAX_RENDITION_TEXT && t.bytes().all(|b| (0x20..=0x7e).contains(&b))
        };
        if self.name.is_empty() || !text_ok(&self.name) {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "rendition name must be 1..={MAX_RENDITION_TEXT} printable ASCII bytes"
                ),
            });
        }
        if let Some(c) = &self.codecs {
            if !text_ok(c) {
                return Err(Error::InvalidArgument {
                    reason: format!(
                        "rendition codecs must be at most {MAX_RENDITION_TEXT} printable ASCII \
                         bytes"
                    ),
                });
            }
        }
        if self.width == 0 || self.height == 0 || self.bandwidth == 0 {
            return Err(Error::InvalidArgument {
                reason: "rendition width, height and bandwidth must be positive".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in [
            "/hls/master.m3u8",
            "/hls/720p/seg-00042.m4s",
            "/subs/en.vtt",
            "/a",
            "/thumbs/sprite~1.jpg",
        ] {
            validate_path(ok).unwrap();
        }
        for bad in [
            "",
            "hls/master.m3u8",
            "/",
            "/video",
            "/poster",
            "/metadata.json",
            "/hls/",
            "//x",
            "/a/../b",
            "/a/./b",
            "/a b",
            "/a?x=1",
            "/a%2e",
            "/é",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_path(&format!("/{}", "a".repeat(MAX_PATH_BYTES))).is_err());
        validate_path(&format!("/{}", "a".repeat(MAX_PATH_BYTES - 1))).unwrap();
    }

    #[test]
    fn mime_types() {
        for ok in [
            "video/mp4",
            "video/mp2t",
            "application/vnd.apple.mpegurl",
            "application/x-mpegURL",
            "text/vtt; charset=utf-8",
            "image/jpeg",
        ] {
            validate_file_mime(ok).unwrap();
        }
        for bad in [
            "text/html",
            "image/svg+xml",
            "application/javascript",
            "text/vtt\r\nx: y",
            "",
        ] {
            assert!(validate_file_mime(bad).is_err(), "{bad:?} accepted");
        }
    }
}
