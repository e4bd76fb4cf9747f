//! Candid types of the video canister.
//!
//! `VideoInit` is fixed first because the spawn canister encodes it when it installs a video
//! canister; the rest of the video interface lives below it.
//!
//! Blobs that can be large (chunk data, read results) are `serde_bytes::ByteBuf`: candid encodes
//! and decodes them as one `blob` instead of element by element, which matters for 2 MB chunks.
//! Small blobs (SHA-256 digests) use the same type for uniformity.
//!
//! The limits below are part of the interface: clients (and the spawn canister, before it spends
//! cycles creating a canister) can check an argument with the same code the video canister uses.

use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::error::{Error, Result};

/// Install argument of a video canister (`install_code` arg, candid-encoded).
///
/// The spawn canister fills it in; a developer installing a video canister by hand (with dfx)
/// fills it in the same way.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct VideoInit {
    /// App-level owner: the only principal that may write (besides uploaders it authorises).
    pub owner: Principal,
    /// Who created the video; never changes, even across ownership transfers.
    pub creator: Principal,
    /// Index canister to notify of ownership changes, if the deployment has one.
    pub index: Option<Principal>,
    /// Initial metadata; the owner may edit it later.
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// The canister that funded this video (the spawn canister). When set, the owner becomes a
    /// controller only once the upload is finished, and the cycles the video does not need are
    /// first returned to it (`return_unused_cycles`): until then nobody but this canister and
    /// the funder can change the code, so the funding cannot be diverted (security review M3).
    /// `None` (a video installed by hand, and every video of older spawn modules): transfers
    /// manage the controllers from the start, as before.
    pub funded_by: Option<Principal>,
    /// The platform's share of every pass sold (docs/access.md), set by the spawn canister from
    /// its `platform_fee`. Fixed for the video's life: the owner cannot change it through the
    /// interface (only by installing other code, which a controller can always do).
    pub platform_fee: Option<crate::access::PlatformFee>,
}

// ---------------------------------------------------------------------------------------------
// Limits (bytes unless stated). Changing one is an interface change: document it in
// docs/video-canister.md.
// ---------------------------------------------------------------------------------------------

/// Largest chunk (and largest `read_range` / `get_chunk` answer): leaves room for candid framing
/// inside the 2 MiB ingress and replicated-response limits.
pub const MAX_CHUNK_SIZE: u32 = 2_000_000;
/// Largest video: 400 GiB. Below the 500 GiB stable-memory limit of a canister and inside the
/// 512 GiB the video canister's memory manager (16 MiB buckets) can address.
pub const MAX_VIDEO_SIZE: u64 = 400 * 1024 * 1024 * 1024;
/// Most chunks one video may have: bounds the chunk table and the work `finish_upload` does
/// (it hashes 32 bytes per chunk and walks the table once, all in one message).
pub const MAX_CHUNK_COUNT: u32 = 1_000_000;
pub const MAX_TITLE_BYTES: usize = 256;
pub const MAX_DESCRIPTION_BYTES: usize = 16 * 1024;
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_BYTES: usize = 64;
pub const MAX_MIME_TYPE_BYTES: usize = 127;
/// Most principals the owner may authorise to upload.
pub const MAX_UPLOADERS: usize = 16;
/// Largest page `missing_chunks` returns (and its default `limit`).
pub const MAX_MISSING_PAGE: u32 = 10_000;
/// Largest page `chunk_digests` returns (and its default `limit`): ≈ 350 KB of reply.
pub const MAX_DIGEST_PAGE: u32 = 10_000;
/// How far, in chunks of the declared size, a `put_chunk` may grow the video's chunk arena past
/// the bytes stored so far (security review L5). The IC's stable memory never shrinks, so the
/// allocation follows the bytes actually uploaded: it is at most what it already was, or
/// `uploaded_bytes + UPLOAD_WINDOW_CHUNKS * chunk_size` (≤ 128 MB with 2 MB chunks), never the
/// declared size at once. A chunk past that is refused with `Busy` (retry it once lower chunks
/// have arrived). Clients that send missing chunks in ascending order with at most this many
/// puts in flight never meet the refusal.
pub const UPLOAD_WINDOW_CHUNKS: u64 = 64;

/// Checks title/description/tags against the limits: the check `init` and `update_metadata` make.
pub fn validate_text_fields(
    title: Option<&str>,
    description: Option<&str>,
    tags: Option<&[String]>,
) -> Result<()> {
    if let Some(title) = title {
        check_len(title.len(), MAX_TITLE_BYTES)?;
    }
    if let Some(description) = description {
        check_len(description.len(), MAX_DESCRIPTION_BYTES)?;
    }
    if let Some(tags) = tags {
        if tags.len() > MAX_TAGS {
            return Err(Error::InvalidArgument {
                reason: format!("{} tags, at most {MAX_TAGS} allowed", tags.len()),
            });
        }
        for tag in tags {
            if tag.is_empty() {
                return Err(Error::InvalidArgument {
                    reason: "empty tag".into(),
                });
            }
            check_len(tag.len(), MAX_TAG_BYTES)?;
        }
    }
    Ok(())
}

fn check_len(len: usize, limit: usize) -> Result<()> {
    if len > limit {
        return Err(Error::TooLarge {
            size: len as u64,
            limit: limit as u64,
        });
    }
    Ok(())
}

impl VideoInit {
    /// The check the video canister's `init` makes (it traps, failing the install, if this errs).
    pub fn validate(&self) -> Result<()> {
        validate_text_fields(Some(&self.title), Some(&self.description), Some(&self.tags))?;
        if let Some(fee) = &self.platform_fee {
            fee.validate()?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Upload
// ---------------------------------------------------------------------------------------------

/// `begin_upload` argument: declares the file before any chunk is sent.
///
/// Chunk `i` covers file bytes `[i * chunk_size, min((i + 1) * chunk_size, total_size))`; every
/// chunk but the last is exactly `chunk_size` long. `chunk_count = ceil(total_size / chunk_size)`.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct UploadSpec {
    /// e.g. "video/mp4"; served as the HTTP Content-Type.
    pub mime_type: String,
    /// File size in bytes, `1..=MAX_VIDEO_SIZE`.
    pub total_size: u64,
    /// `1..=MAX_CHUNK_SIZE`.
    pub chunk_size: u32,
    /// SHA-256 of each chunk, in index order (exactly `chunk_count` entries of 32 bytes). When
    /// given, `put_chunk` refuses a chunk that does not match.
    pub chunk_digests: Option<Vec<ByteBuf>>,
    /// Expected file digest (see `VideoMetadata::digest` for the definition). When given,
    /// `finish_upload` refuses to publish a file that does not match.
    pub file_digest: Option<ByteBuf>,
    pub duration_ms: Option<u64>,
    /// Absent: the main file (served at `/` and `/video`). Present: a named file at that HTTP
    /// path (`files::validate_path`), e.g. `/hls/720p/seg-00042.m4s`; its MIME type may also be
    /// one of `files::FILE_MIME_TYPES`. Named files are declared one by one here or in batches
    /// with `begin_files`.
    pub path: Option<String>,
    /// The ladder rung this file opens (an HLS media playlist), listed in
    /// `VideoMetadata::renditions`. Named files only.
    pub rendition: Option<crate::files::Rendition>,
    /// Present: the file is the ciphertext of an end-to-end encrypted video (main file only);
    /// `total_size` and `chunk_size` must be the ciphertext's (`Encryption::validate`).
    pub encryption: Option<crate::encryption::Encryption>,
}

/// `put_chunk` argument.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ChunkUpload {
    pub index: u32,
    pub data: ByteBuf,
    /// The named file the chunk belongs to; absent for the main file.
    pub path: Option<String>,
}

/// `put_chunk` answer: what the canister stored, and the upload's progress.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ChunkReceipt {
    pub index: u32,
    pub len: u32,
    /// SHA-256 of the chunk as stored.
    pub sha256: ByteBuf,
    pub uploaded_chunks: u32,
    pub chunk_count: u32,
}

/// `missing_chunks` argument: a page of the missing chunk indices, from `start` (default 0),
/// at most `limit` (default and maximum `MAX_MISSING_PAGE`) of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct MissingArgs {
    pub start: Option<u32>,
    pub limit: Option<u32>,
    /// A named file; absent for the main file.
    pub path: Option<String>,
}

/// `chunk_digests` argument: the digests of chunks `start..`, at most `limit` (default and
/// maximum `MAX_DIGEST_PAGE`) of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct DigestsArgs {
    pub start: u32,
    pub limit: Option<u32>,
    /// A named file; absent for the main file.
    pub path: Option<String>,
}

/// A page of chunk SHA-256 digests, as `put_chunk` verified and stored them: what a download
/// checks each chunk against before trusting it (the file digest only covers the whole file).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ChunkDigests {
    /// Index of the first digest in `digests`.
    pub start: u32,
    /// One entry per chunk from `start`; `null` for a chunk not uploaded yet.
    pub digests: Vec<Option<ByteBuf>>,
    pub chunk_count: u32,
    /// Pass as `start` to get the next page; absent when this page reached the last chunk.
    pub next: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct MissingChunks {
    /// Missing indices `>= start`, ascending, at most `limit`.
    pub missing: Vec<u32>,
    /// How many chunks are missing in the whole file (not just this page).
    pub missing_count: u32,
    /// Pass as `start` to get the next page; `None` when this page reached the end.
    pub next: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum VideoStatus {
    /// Installed; no upload declared yet.
    Empty,
    /// `begin_upload` done; chunks are arriving. Readable by the owner and uploaders only.
    Uploading,
    /// `finish_upload` verified every chunk: the content is immutable and public.
    Ready,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct VideoMetadata {
    pub status: VideoStatus,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// Empty until `begin_upload`.
    pub mime_type: String,
    /// File size in bytes (0 until `begin_upload`).
    pub size: u64,
    pub duration_ms: Option<u64>,
    pub chunk_size: u32,
    pub chunk_count: u32,
    /// Chunks stored so far, and their total bytes (progress of an upload).
    pub uploaded_chunks: u32,
    pub uploaded_bytes: u64,
    /// File digest, set when Ready:
    /// `SHA-256(sha256(chunk_0) || sha256(chunk_1) || ... || sha256(chunk_{n-1}))`,
    /// i.e. SHA-256 over the concatenation of the 32-byte chunk digests in index order.
    pub digest: Option<ByteBuf>,
    pub creator: Principal,
    pub owner: Principal,
    /// Operator (e.g. a marketplace) the owner approved to call `change_owner`.
    pub operator: Option<Principal>,
    /// Index canister notified of ownership changes.
    pub index: Option<Principal>,
    /// Nanoseconds since the Unix epoch (IC time).
    pub created_at: u64,
    pub updated_at: u64,
    pub ready_at: Option<u64>,
    /// Number of completed ownership transfers.
    pub transfer_seq: u64,
    /// A two-step transfer waiting for the offered principal's `accept_ownership` (absent in
    /// answers of modules before it existed). Past `expires_at` it can no longer be accepted.
    pub pending_offer: Option<OwnershipOffer>,
    /// Who controls the canister (absent in answers of modules before it existed: `Owner`).
    pub control: Option<ControlStatus>,
    /// How many named files the video holds besides its main file (`files` lists them).
    pub files: Option<u32>,
    /// The adaptive-streaming ladder: the named files declared with a `Rendition`, highest
    /// bandwidth first.
    pub renditions: Option<Vec<crate::files::FileRendition>>,
    /// Present: the main file is end-to-end encrypted (`mime_type` and `duration_ms` are the
    /// plaintext's; `size`, `chunk_size` and `digest` the stored ciphertext's). Viewers get the
    /// key with `video_key`.
    pub encryption: Option<crate::encryption::Encryption>,
}

/// Whether the owner controls the canister yet (see [`VideoInit::funded_by`]).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum ControlStatus {
    /// The owner is a controller; transfers set the controllers. Every video installed without
    /// `funded_by`, and a funded one once its upload is finished.
    Owner,
    /// The upload is not finished: the controllers are this canister and `funded_by`, and a
    /// transfer moves only the app-level ownership. `finish_upload` returns the unused cycles
    /// to `funded_by`, then makes the owner (at that time) a controller.
    AfterUpload { funded_by: Principal },
    /// The upload is finished but the hand-over has not completed (a call failed: `last_error`).
    /// A timer retries it with back-off; the owner's `claim_control` retries at once.
    HandingOver {
        funded_by: Principal,
        attempts: u32,
        last_error: Option<String>,
    },
}

/// `update_metadata` argument: fields left `None` are unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct MetadataPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

/// `read_range` argument: file bytes `[offset, offset + length)`. `length <= MAX_CHUNK_SIZE`
/// (else `TooLarge`); the range must lie inside the file (`offset + length <= size`, else
/// `InvalidArgument`) — a range ending exactly at the end of the file is fine; nothing is
/// clamped.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct RangeArgs {
    pub offset: u64,
    pub length: u64,
    /// A named file; absent for the main file.
    pub path: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct CanisterInfo {
    /// Cycle balance.
    pub cycles: u128,
    /// Size of the canister's stable memory (what storage is charged for).
    pub stable_memory_bytes: u64,
    /// Size of the wasm heap.
    pub heap_bytes: u64,
    /// Sum of the lengths of the chunks stored.
    pub chunk_bytes_stored: u64,
    pub chunks_stored: u32,
    /// Version of the stable-memory layout (see the video canister's storage module).
    pub layout_version: u32,
    /// Largest video this canister accepts.
    pub max_video_size: u64,
    /// An ownership transfer is waiting for the management canister.
    pub transfer_in_flight: bool,
    /// An ownership change the index has not acknowledged yet (retried by a timer).
    pub pending_index_notification: Option<PendingNotification>,
    /// The pending two-step transfer offer, as in `VideoMetadata::pending_offer`.
    pub pending_offer: Option<OwnershipOffer>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct PendingNotification {
    pub new_owner: Principal,
    pub transfer_seq: u64,
    pub attempts: u32,
    pub last_error: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Poster
// ---------------------------------------------------------------------------------------------

/// Largest poster: one HTTP body (and one ingress message with framing to spare).
pub const MAX_POSTER_BYTES: u64 = 2_000_000;
/// Longest poster MIME type (the size of its field in the video canister's stable layout).
pub const MAX_POSTER_MIME_BYTES: usize = 127;

/// `set_poster` argument. `data` is the image (≤ 2,000,000 bytes; empty removes the poster),
/// `mime_type` an `image/...` type.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct PosterArgs {
    pub mime_type: String,
    pub data: ByteBuf,
}

/// A poster MIME type must be an `image/...` type of printable ASCII: it becomes a
/// `Content-Type` header, so control characters (header injection) are refused.
pub fn validate_poster_mime(mime: &str) -> Result<()> {
    let printable = mime
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) || b == b' ');
    if mime.len() > MAX_POSTER_MIME_BYTES
        || !printable
        || !mime.starts_with("image/")
        || mime.len() <= 6
    {
        return Err(Error::InvalidArgument {
            reason: format!(
                "poster mime_type must be an image/... type of 7..={MAX_POSTER_MIME_BYTES} printable ASCII bytes"
            ),
        });
    }
    Ok(())
}

/// The one media type besides `video/*` and `audio/*` a video may be declared as: what the CLI
/// sends for files whose extension it does not know (`demo file.bin`). Browsers never render
/// it (with `X-Content-Type-Options: nosniff` they do not sniff it either): they download it.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// A video's `mime_type` (`UploadSpec::mime_type`) becomes the `Content-Type` of its HTTP
/// answers, on the canister's own origin (security review L1). It must be 1..=127 printable
/// ASCII bytes (no CR/LF or other controls: header injection) of the form `type/subtype`
/// optionally followed by parameters (`video/mp4; codecs="avc1.42E01E, mp4a.40.2"`), where
/// `type/subtype` is a `video/...` or `audio/...` type or exactly `application/octet-stream`.
/// Anything a browser might render as a document (`text/html`, `image/svg+xml`, ...) is refused.
/// Only new declarations are checked: a type stored by an older module is served as it is.
pub fn validate_video_mime(mime: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::InvalidArgument {
            reason: format!(
                "mime_type {mime:?}: {why}; expected video/<subtype> or audio/<subtype> \
                 (optionally with parameters such as `; codecs=\"...\"`) or {OCTET_STREAM}, \
                 1..={MAX_MIME_TYPE_BYTES} printable ASCII bytes"
            ),
        })
    };
    if mime.is_empty() || mime.len() > MAX_MIME_TYPE_BYTES {
        return refuse("wrong length");
    }
    if !mime.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return refuse("not printable ASCII (control characters such as CR/LF are refused)");
    }
    let essence = mime.split(';').next().unwrap_or_default().trim_end();
    // RFC 9110 §5.6.2 token characters.
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let Some((kind, subtype)) = essence.split_once('/') else {
        return refuse("not a type/subtype");
    };
    if !token(kind) || !token(subtype) {
        return refuse("not a type/subtype");
    }
    let media = kind.eq_ignore_ascii_case("video") || kind.eq_ignore_ascii_case("audio");
    if !media && !essence.eq_ignore_ascii_case(OCTET_STREAM) {
        return refuse("not a video or audio type");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Ownership
// ---------------------------------------------------------------------------------------------

/// Most controllers `ChangeOwnerArgs::keep_controllers` may name: with the new owner and the
/// video itself, the IC's limit of 10 controllers.
pub const MAX_KEPT_CONTROLLERS: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ChangeOwnerArgs {
    pub new_owner: Principal,
    /// The controllers to keep besides the new owner and the video itself (at most 8), e.g.
    /// `opt vec { <spawn canister id> }` to keep platform upgrades, or `opt vec {}`. Absent: the
    /// canister that installed the video, if it still is a controller. That installer is read
    /// from state the seller's code could have changed before the sale, so a buyer or a
    /// marketplace names the controllers it accepts and checks the result (docs/sdk.md,
    /// "Selling a video safely").
    pub keep_controllers: Option<Vec<Principal>>,
}

/// `collection_transfer` argument: the video's index, acting as the ICRC-7 collection that
/// lists the video as a token, moves it from `from` to `to` (docs/nft.md). `from` is a
/// compare-and-swap guard: the collection decided on its own record of the owner, and a
/// transfer the video made meanwhile (a direct `change_owner`) must not be overridden.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct CollectionTransferArgs {
    /// The owner the collection believes holds the video; refused (`Conflict`) if it is not.
    pub from: Principal,
    pub to: Principal,
}

/// How long an ownership offer may be accepted: 7 days, in nanoseconds.
pub const OFFER_VALIDITY_NS: u64 = 7 * 24 * 3600 * 1_000_000_000;

/// `offer_ownership` argument: the first step of a two-step transfer. Only `new_owner` itself
/// can complete it (`accept_ownership`), so a mistyped principal orphans nothing.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct OfferArgs {
    pub new_owner: Principal,
    /// As `ChangeOwnerArgs::keep_controllers`, applied when the offer is accepted.
    pub keep_controllers: Option<Vec<Principal>>,
}

/// A recorded ownership offer (one at a time; a new offer replaces it).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct OwnershipOffer {
    /// The only principal that may accept it.
    pub new_owner: Principal,
    /// Checked as for `change_owner`; duplicates, the new owner and the video dropped.
    pub keep_controllers: Option<Vec<Principal>>,
    /// The owner or operator who made it; the offer lapses if it may no longer transfer.
    pub offered_by: Principal,
    /// IC time (ns since the Unix epoch).
    pub offered_at: u64,
    /// `offered_at + OFFER_VALIDITY_NS`: accepted only before this time.
    pub expires_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ChangeOwnerResult {
    /// The video's transfer counter after this transfer (the `transfer_seq` reported to the index).
    pub transfer_seq: u64,
    /// The canister's controllers after this transfer.
    pub controllers: Vec<Principal>,
    /// False when the video's upload is not finished (`ControlStatus::AfterUpload`): the
    /// transfer moved the app-level ownership only, `controllers` are unchanged, and the new
    /// owner becomes a controller at `finish_upload`. Absent in answers of older modules (true).
    pub owner_controls: Option<bool>,
    /// The index acknowledged the change in this call. False when no index is configured, or when
    /// the call failed: then the notification stays in a stable outbox and a timer retries it
    /// until the index accepts it (see `CanisterInfo::pending_index_notification`).
    pub index_notified: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_mime_types() {
        let longest = format!("video/{}", "x".repeat(MAX_MIME_TYPE_BYTES - 6));
        for ok in [
            "video/mp4",
            "video/webm",
            "audio/mpeg",
            "Video/MP4",
            "video/x-matroska",
            "video/mp4; codecs=\"avc1.42E01E, mp4a.40.2\"",
            "video/mp4;codecs=avc1",
            "application/octet-stream",
            &longest,
        ] {
            assert_eq!(validate_video_mime(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "",
            "video/mp4\r\nX: y",
            "video/mp4\nSet-Cookie: s=1",
            "video/mp4\t",
            "video/mp4\0",
            "video/m\u{e9}4",
            "video/",
            "/mp4",
            "video",
            "video /mp4",
            "video/mp 4",
            "text/html",
            "text/html; x=video/mp4",
            "image/svg+xml",
            "application/xhtml+xml",
            "application/octet-stream+html",
            "application/json",
            &format!("{longest}x"),
        ] {
            assert!(
                matches!(validate_video_mime(bad), Err(Error::InvalidArgument { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn poster_mime_types() {
        for ok in ["image/png", "image/jpeg", "image/svg+xml", "image/x; q=1"] {
            assert_eq!(validate_poster_mime(ok), Ok(()), "{ok:?}");
        }
        let longest = format!("image/{}", "x".repeat(MAX_POSTER_MIME_BYTES - 6));
        assert_eq!(validate_poster_mime(&longest), Ok(()));
        for bad in [
            "",
            "image/",
            "video/mp4",
            "image/png\r\nX: y",
            "image/p\u{e9}ng",
            &format!("{longest}x"),
        ] {
            assert!(
                matches!(
                    validate_poster_mime(bad),
                    Err(Error::InvalidArgument { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }
}
