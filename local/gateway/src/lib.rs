//! # canvid-gateway: `canvid serve`'s loopback server
//!
//! One loopback port, hyper 1 on tokio ([`serve`]), answers what an IC node and an HTTP gateway
//! answer for the embedded replica:
//!
//! * `/api/...`: the IC HTTP interface (`canvid-http-interface`: status, query, call,
//!   read_state), what agents, dfx and icp-cli talk to.
//! * everything else: the HTTP gateway, for browsers. `http://<canister-id>.localhost:<port>/path`
//!   goes through DFINITY's `ic-http-gateway` (0.4.3, the library the IC's boundary gateways are
//!   built from) over an ic-agent 0.46 whose transport is this server's HTTP interface,
//!   in-process, with the replica's root key set. So request translation, response verification
//!   (HTTP certification v2, the certificate checked against the replica's root key, 5 minutes
//!   freshness), the repetition of `upgrade = true` answers as `http_request_update`, and the
//!   streaming of a plain `GET` the canister answers with its first chunk (206) as one 200 of the
//!   whole file, are the library's. An answer that fails verification becomes the library's 500.
//!   `<id>.raw.localhost` skips verification, like `<id>.raw.icp0.io`. A `?canisterId=<id>`
//!   request on any other host is answered with a 307 to `http://<id>.localhost:<port>/...`, so
//!   that every canister has its own origin, as on the IC ([`own_origin_redirect`]); a request
//!   naming no canister gets a 400.
//!
//! Every answer of the gateway is recorded in an in-memory [`LogEntry`] list
//! ([`GatewayHandle::log`]); `CANVID_GATEWAY_LOG` prints each to stderr. The server binds loopback
//! addresses only; it is a development tool, not a public endpoint.
//!
//! Files: `server.rs` the server and [`GatewayHandle`]; `gateway.rs` a browser's request
//! through the library; `transport.rs` the agent's in-process transport; `host.rs` which
//! canister a request is for.

use candid::Principal;

mod gateway;
mod host;
mod server;
mod transport;

pub use host::{own_origin_redirect, resolve_canister};
pub use server::{serve, serve_backend, GatewayHandle, ServerHandle};

/// One answer of the gateway to a browser's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub method: String,
    /// Path and query as requested (and sent to the canister).
    pub url: String,
    /// The canister called; `None` for the gateway's own answers (a redirect, a 400).
    pub canister: Option<Principal>,
    /// The request's `Range` header, if any.
    pub range: Option<String>,
    /// The status passed on to the client (the library's own status on an error).
    pub status: u16,
    /// Length of the body passed on (the whole file for a streamed 200).
    pub body_len: u64,
    /// The library repeated the query as `http_request_update` (`upgraded_to_update_call`).
    pub upgraded: bool,
    /// Always false: the library fetches a streamed answer's further chunks itself, and they
    /// are part of this entry (kept for the log's readers).
    pub streamed: bool,
    /// The answer passed the library's response verification (it reports a verification
    /// version): false for updates, the raw domain and errors.
    pub verified: bool,
}

#[cfg(test)]
mod tests;
