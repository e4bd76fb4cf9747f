//! A loopback-only HTTP gateway for canisters running in the embedded replica.
//!
//! It plays the role of the IC's HTTP gateway for local tests and demos:
//! `http://<canister-id>.localhost:<port>/path` becomes an `http_request` query on that canister
//! with the anonymous caller (`?canisterId=<id>` on any other host is answered with a 307 to that
//! URL, so that every canister has its own origin, as on the IC); `upgrade = true` answers are
//! repeated as `http_request_update` updates. Like the IC's verified domains (`<id>.icp0.io`),
//! query answers are checked with `ic-response-verification` (HTTP certification v2) against the
//! backend's root key when the backend gives one ([`Backend::verification`]); an answer that
//! fails is replaced by a 503. `<id>.raw.localhost` skips the check, like `<id>.raw.icp0.io`.
//! Update answers went through consensus and are not checked, as on the IC.
//! Like the IC gateway, a plain `GET` answered with 206 is completed by fetching the rest with
//! `Range: bytes=N-` queries and streamed to the client as one 200 response; a client's own
//! `Range` request gets the canister's 206 as is.
//!
//! Every canister call is recorded in an in-memory [`LogEntry`] list ([`GatewayHandle::log`]).
//! The server binds loopback addresses only; it is a test tool, not a public endpoint.
//!
//! Files: [`Backend`] and the types here; `request.rs` turns a client request into canister calls
//! ([`Gateway`]); `verify.rs` calls `http_request` and checks the answer; `stream.rs` streams a
//! 206 answer to the client as one 200; `server.rs` runs it on a loopback port
//! ([`serve_backend`], [`LoopbackServer`], which `canvid-http-interface` shares);
//! `replica_backend.rs` is the [`Backend`] of the embedded replica.

use candid::Principal;

#[cfg(feature = "replica")]
mod replica_backend;
mod request;
mod server;
mod stream;
mod verify;

/// The HTTP server library the gateway is written against: [`Gateway::handle`] takes its
/// requests, so a server embedding the gateway uses this exact version.
pub use tiny_http;

#[cfg(feature = "replica")]
pub use replica_backend::serve;
pub use request::{own_origin_redirect, resolve_canister, to_canister_request, Gateway};
pub use server::{serve_backend, GatewayHandle, LoopbackServer};
pub use stream::parse_content_range;
pub use verify::{call_canister, decode_response, verify_response};

/// Why a canister call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No such canister (or it has no Wasm module): answered 404.
    CanisterNotFound(String),
    /// The canister rejected or trapped: answered 502 with the message.
    Rejected(String),
}

/// What the gateway needs from a replica: anonymous query and update calls, and what to
/// verify certified answers against.
pub trait Backend: Send + Sync + 'static {
    fn query(&self, canister: Principal, method: &str, arg: Vec<u8>) -> Result<Vec<u8>, CallError>;
    fn update(&self, canister: Principal, method: &str, arg: Vec<u8>)
        -> Result<Vec<u8>, CallError>;
    /// The root key and the current time to verify query answers with; `None` serves them
    /// unverified on every domain.
    fn verification(&self) -> Option<Verification> {
        None
    }
}

/// What a certified answer is verified against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// The IC's (or the embedded replica's) root public key, DER.
    pub root_key_der: Vec<u8>,
    /// Now, in nanoseconds since the Unix epoch, in the replica's time (certificates are accepted
    /// up to [`MAX_CERT_AGE_NS`] old, as by the IC's gateways).
    pub now_ns: u128,
}

/// How old a certificate may be: the IC gateways' default, 5 minutes.
pub const MAX_CERT_AGE_NS: u128 = 5 * 60 * 1_000_000_000;

/// One canister call made by the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub method: String,
    /// Path and query as sent to the canister.
    pub url: String,
    pub canister: Option<Principal>,
    /// The `Range` header sent to the canister, if any.
    pub range: Option<String>,
    /// Status the canister answered (or the gateway's own error status).
    pub status: u16,
    pub body_len: u64,
    /// The answer came from `http_request_update`.
    pub upgraded: bool,
    /// The gateway made this call itself to complete a 206 answer (not a client request).
    pub streamed: bool,
    /// The query answer passed response verification (false for updates, the raw domain,
    /// errors, and backends without a root key).
    pub verified: bool,
}

#[cfg(test)]
mod tests;
