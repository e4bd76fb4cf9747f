//! The CLI's errors: each one renders as a single line saying what happened and what to do,
//! and maps to an exit code (see [`Error::exit_code`] and `canvid --help`).

use std::fmt;
use std::path::PathBuf;

use candid::Principal;
use canvid_replica::RejectResponse;

/// Exit codes (also listed in `canvid --help`).
pub mod exit {
    /// A canister refused, an upload or a verification failed, an I/O error.
    pub const FAILURE: i32 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: i32 = 2;
    /// A bad input: missing or unreadable file, identity or principal.
    pub const INPUT: i32 = 3;
    /// Something the machine lacks: canister wasm not built, ffmpeg not installed.
    pub const ENVIRONMENT: i32 = 4;
    /// The network cannot be reached (`canvid serve` not running), or this command does not
    /// support it yet.
    pub const UNAVAILABLE: i32 = 5;
    /// The identity file cannot be used.
    pub const IDENTITY: i32 = 6;
    /// A canister refused the call (not authorized, invalid request, quota, ...).
    pub const REFUSED: i32 = 7;
}

#[derive(Debug)]
pub enum Error {
    FileNotFound(PathBuf),
    FileUnreadable {
        path: PathBuf,
        reason: String,
    },
    EmptyFile(PathBuf),
    Identity {
        path: PathBuf,
        reason: String,
    },
    InvalidPrincipal {
        what: &'static str,
        text: String,
        reason: String,
    },
    /// A bad argument value clap cannot check on its own.
    Input(String),
    WasmMissing {
        path: PathBuf,
    },
    FfmpegMissing,
    Ffmpeg(String),
    /// A canister answered with a canvid error.
    Refused {
        canister: Principal,
        method: String,
        error: Box<canvid_types::Error>,
    },
    /// The ICRC-7 collection (the index) answered an ICRC-7 / ICRC-37 error (`canvid nft`).
    CollectionRefused {
        canister: Principal,
        method: String,
        detail: String,
    },
    /// A purchase or a ledger approval was refused (`canvid buy`): nothing was charged.
    Payment {
        canister: Principal,
        method: String,
        detail: String,
    },
    /// A purchase whose payment outcome is not known yet (`canvid buy`): resume it.
    PurchasePending(String),
    /// The replica rejected the call (trap, missing canister, out of cycles ...).
    Rejected {
        canister: Principal,
        method: String,
        reject: Box<RejectResponse>,
    },
    /// A reply that does not decode as the expected candid type.
    BadReply {
        canister: Principal,
        method: String,
        reason: String,
    },
    /// Deploying the canisters failed.
    Deploy(String),
    Upload(String),
    /// Data read back differs from what was uploaded, or an invariant the demo checks fails.
    Verify(String),
    NotSupported(String),
    Io {
        what: String,
        reason: String,
    },
    Gateway(String),
    /// The caller may not do this (a canister's `NotAuthorized`, or an `inspect_message`
    /// refusal: IC0406).
    NotAuthorized {
        canister: Principal,
        method: String,
        detail: String,
    },
    /// The canister gives this identity no key for an encrypted video (`canvid get`): `reason`
    /// says why and what to do.
    NoVideoKey {
        video: Principal,
        reason: String,
    },
    /// The network cannot be reached.
    Unavailable {
        url: String,
        reason: String,
        hint: String,
    },
    /// `--network embedded` without a running `canvid serve` for the state directory.
    NotServing(PathBuf),
    /// Another agent-level failure (certificate, signing, protocol).
    Agent(String),
    /// The upload was stopped on purpose (`--stop-after-chunks`).
    Interrupted(String),
    /// The state directory holds something unusable.
    State(String),
    /// Producing or reading an HLS ladder failed (`canvid hls prepare`, `upload --hls`).
    Hls(crate::hls::HlsError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::FileNotFound(_)
            | Error::FileUnreadable { .. }
            | Error::EmptyFile(_)
            | Error::InvalidPrincipal { .. }
            | Error::Input(_) => exit::INPUT,
            Error::Identity { .. } => exit::IDENTITY,
            Error::Refused { .. }
            | Error::CollectionRefused { .. }
            | Error::Payment { .. }
            | Error::Rejected { .. }
            | Error::NotAuthorized { .. }
            | Error::NoVideoKey { .. } => exit::REFUSED,
            Error::Unavailable { .. } | Error::NotServing(_) => exit::UNAVAILABLE,
            Error::WasmMissing { .. } | Error::FfmpegMissing => exit::ENVIRONMENT,
            Error::Hls(e) => match e {
                crate::hls::HlsError::ToolMissing(_) => exit::ENVIRONMENT,
                crate::hls::HlsError::NotAVideo { .. }
                | crate::hls::HlsError::Subtitles(_)
                | crate::hls::HlsError::BadTree { .. } => exit::INPUT,
                crate::hls::HlsError::Tool { .. }
                | crate::hls::HlsError::FileTooLarge { .. }
                | crate::hls::HlsError::Io { .. } => exit::FAILURE,
            },
            Error::NotSupported(_) => exit::UNAVAILABLE,
            Error::Ffmpeg(_)
            | Error::BadReply { .. }
            | Error::Agent(_)
            | Error::Interrupted(_)
            | Error::PurchasePending(_)
            | Error::State(_)
            | Error::Deploy(_)
            | Error::Upload(_)
            | Error::Verify(_)
            | Error::Io { .. }
            | Error::Gateway(_) => exit::FAILURE,
        }
    }

    pub fn io(what: impl Into<String>, e: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            reason: e.to_string(),
        }
    }

    /// Opening a file the user named: "not found" and "unreadable" are different mistakes.
    pub fn from_open(path: &std::path::Path, e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::FileNotFound(path.to_path_buf())
        } else {
            Error::FileUnreadable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::FileNotFound(p) => write!(f, "file not found: {} (check the path)", p.display()),
            Error::FileUnreadable { path, reason } => {
                write!(f, "cannot read {}: {reason} (check that it is a readable file)", path.display())
            }
            Error::EmptyFile(p) => write!(f, "{} is empty: a video needs at least one byte", p.display()),
            Error::Identity { path, reason } => write!(
                f,
                "cannot use identity {}: {reason} (pass a PEM private key, e.g. one made by `dfx identity new`)",
                path.display()
            ),
            Error::InvalidPrincipal { what, text, reason } => {
                write!(f, "invalid {what} '{text}': {reason} (expected a principal like aaaaa-aa)")
            }
            Error::Input(reason) => write!(f, "{reason}"),
            Error::WasmMissing { path } => write!(
                f,
                "canister wasm not found at {}: run scripts/build-wasm.sh (or set CANVID_WASM_DIR)",
                path.display()
            ),
            Error::FfmpegMissing => write!(
                f,
                "ffmpeg is not installed, so no test video can be generated: run scripts/setup.sh or pass a video FILE"
            ),
            Error::Ffmpeg(reason) => write!(f, "ffmpeg failed to generate the test video: {reason}"),
            Error::Refused { canister, method, error } => {
                write!(f, "canister {canister} refused {method}: {error}")
            }
            Error::CollectionRefused { canister, method, detail } => {
                write!(f, "the collection {canister} refused {method}: {detail}")
            }
            Error::Payment { canister, method, detail } => {
                write!(f, "{canister} refused {method}: {detail}")
            }
            Error::PurchasePending(detail) => write!(f, "purchase pending: {detail}"),
            Error::Rejected { canister, method, reject } => write!(
                f,
                "call to {canister}.{method} was rejected ({:?}, {}): {}",
                reject.reject_code,
                reject.error_code,
                one_line(&reject.reject_message)
            ),
            Error::BadReply { canister, method, reason } => {
                write!(f, "unexpected reply from {canister}.{method}: {reason} (is the canister wasm up to date? run scripts/build-wasm.sh)")
            }
            Error::Deploy(reason) => write!(f, "deploying the canisters failed: {reason}"),
            Error::Upload(reason) => write!(f, "upload failed: {reason} (run the same upload again to resume it)"),
            Error::Verify(reason) => write!(f, "verification failed: {reason}"),
            Error::NotSupported(what) => write!(f, "not yet supported: {what}"),
            Error::Io { what, reason } => write!(f, "{what}: {reason}"),
            Error::Gateway(reason) => write!(f, "HTTP gateway: {reason}"),
            Error::NotAuthorized { canister, method, detail } => write!(
                f,
                "not authorized: {canister} refused {method} for this identity ({detail}); use --identity with the owner's key"
            ),
            Error::NoVideoKey { video, reason } => write!(
                f,
                "cannot decrypt {video}: {reason} (nothing was written)"
            ),
            Error::Unavailable { url, reason, hint } => {
                write!(f, "cannot reach {url}: {reason} ({hint})")
            }
            Error::NotServing(dir) => write!(
                f,
                "no running `canvid serve` for {}: start it with `canvid serve --state {}` (or pass --network local|ic|URL)",
                dir.display(),
                dir.display()
            ),
            Error::Agent(reason) => write!(f, "agent: {reason}"),
            Error::Interrupted(reason) => write!(f, "upload interrupted: {reason} (run the same upload again to resume it)"),
            Error::State(reason) => write!(f, "state directory: {reason}"),
            Error::Hls(e) => write!(f, "HLS: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::hls::HlsError> for Error {
    fn from(e: crate::hls::HlsError) -> Self {
        Error::Hls(e)
    }
}

/// Keeps an error one line: trap messages can contain newlines (backtraces, wasm frames).
pub fn one_line(s: &str) -> String {
    let first = s
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if s.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
        format!("{first} …")
    } else {
        first.to_string()
    }
}
