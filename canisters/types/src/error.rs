//! The one error enum every canvid update returns.
//!
//! Variants name the *cause*, so a client can react without parsing text; the `String`
//! payloads carry human detail only. New variants may be appended; existing ones keep their
//! names because candid variant tags are hashed names.

use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum Error {
    /// The caller may not do this. `caller` is who asked.
    NotAuthorized { caller: Principal, reason: String },
    /// The thing asked for does not exist (a video, a chunk, a canister).
    NotFound { what: String },
    /// The request is malformed: a field out of its allowed range or inconsistent with another.
    InvalidArgument { reason: String },
    /// An upload was already declared / the video is finished and therefore immutable.
    AlreadyFinished,
    /// The upload has not been declared yet, or is not complete.
    NotReady { reason: String },
    /// A chunk index outside `0..chunk_count`.
    ChunkOutOfRange { index: u32, chunk_count: u32 },
    /// A chunk's length is not what the declared size and chunk size require.
    WrongChunkSize {
        index: u32,
        expected: u64,
        actual: u64,
    },
    /// A chunk or the file does not hash to the declared SHA-256 digest.
    WrongDigest {
        index: Option<u32>,
        expected: Vec<u8>,
        actual: Vec<u8>,
    },
    /// Some chunks are still missing; `missing` lists (a prefix of) them.
    Incomplete {
        missing: Vec<u32>,
        missing_count: u32,
    },
    /// The request exceeds a size limit (`limit` bytes).
    TooLarge { size: u64, limit: u64 },
    /// Not enough cycles attached / left in a pool or quota to do this; nothing was created.
    InsufficientCycles { required: u128, available: u128 },
    /// A call to another canister (including the management canister) failed.
    CallFailed {
        target: Principal,
        method: String,
        reason: String,
    },
    /// Another operation on the same object is in progress; retry later.
    Busy { reason: String },
    /// A state conflict that is not one of the above (e.g. a canister already registered).
    Conflict { reason: String },
}

impl Error {
    /// `Ok(())` if `is_admin`, else the `NotAuthorized` answer of an admin-only endpoint (the
    /// index and spawn canisters share it).
    pub fn require_admin(caller: Principal, is_admin: bool) -> Result<()> {
        if is_admin {
            Ok(())
        } else {
            Err(Error::NotAuthorized {
                caller,
                reason: "only an admin may do this".into(),
            })
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotAuthorized { caller, reason } => {
                write!(f, "{caller} is not authorized: {reason}")
            }
            Error::NotFound { what } => write!(f, "not found: {what}"),
            Error::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
            Error::AlreadyFinished => write!(f, "the upload is already finished"),
            Error::NotReady { reason } => write!(f, "not ready: {reason}"),
            Error::ChunkOutOfRange { index, chunk_count } => {
                write!(
                    f,
                    "chunk {index} is out of range (chunk count {chunk_count})"
                )
            }
            Error::WrongChunkSize {
                index,
                expected,
                actual,
            } => {
                write!(f, "chunk {index} has {actual} bytes, expected {expected}")
            }
            Error::WrongDigest { index: Some(i), .. } => {
                write!(f, "chunk {i} has the wrong SHA-256 digest")
            }
            Error::WrongDigest { index: None, .. } => {
                write!(f, "the file has the wrong SHA-256 digest")
            }
            Error::Incomplete { missing_count, .. } => {
                write!(f, "{missing_count} chunk(s) are still missing")
            }
            Error::TooLarge { size, limit } => {
                write!(f, "{size} bytes exceeds the limit of {limit}")
            }
            Error::InsufficientCycles {
                required,
                available,
            } => {
                write!(
                    f,
                    "insufficient cycles: {required} required, {available} available"
                )
            }
            Error::CallFailed {
                target,
                method,
                reason,
            } => {
                write!(f, "call to {target}.{method} failed: {reason}")
            }
            Error::Busy { reason } => write!(f, "busy: {reason}"),
            Error::Conflict { reason } => write!(f, "conflict: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
