//! # canvid-http-interface: the Internet Computer's HTTP interface for the embedded replica
//!
//! [`answer`] answers what an IC node answers under `/api/`: the IC HTTP interface the current
//! agents (`ic-agent` 0.46 and 0.49, `@icp-sdk/core` 6, and through them dfx and icp-cli) use:
//! `GET /api/v2/status` (with the root key), `POST /api/v2|v3/canister/<id>/query` (answers
//! signed by the node key), `POST /api/v2/canister/<id>/call` (asynchronous, 202),
//! `POST /api/v3|v4/canister/<id>/call` (synchronous: answers with a certificate of the result),
//! and `POST /api/v2|v3/{canister,subnet}/<id>/read_state` (certificates signed with the
//! replica's BLS12-381 root key). Requests are authenticated as on the IC ([`auth`]).
//!
//! The server is `canvid-gateway`'s (`canvid_gateway::serve`): one loopback port, hyper on
//! tokio, serving this interface and the HTTP gateway (DFINITY's `ic-http-gateway` over an
//! agent that talks to this interface in-process). [`drive`] is its driver thread: it executes
//! queued messages (rounds) and keeps the replica's clock at wall-clock time, because agents
//! check ingress expiry and certificate freshness against their own clocks.
//!
//! See `docs/agent-interface.md` for what is implemented and how to point agents at it.

pub mod api;
pub mod auth;
pub mod hash;

use canvid_replica::Replica;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// How often the driver runs a round while nothing is queued (canister timers become due).
pub const IDLE_ROUND_INTERVAL: Duration = Duration::from_millis(20);

/// The driver: clock at wall-clock time, rounds while messages are queued, and a round every
/// [`IDLE_ROUND_INTERVAL`] otherwise (timers), until `stop`. Whoever queues a message unparks
/// the driver's thread (the `wake` of [`answer`]).
pub fn drive(replica: &Replica, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let now = SystemTime::now();
        if now > replica.get_time() {
            replica.set_time(now);
        }
        replica.tick();
        if !replica.has_pending_work() {
            std::thread::park_timeout(IDLE_ROUND_INTERVAL);
        }
    }
}

/// Answers one request under `/api/` (`path` is the path and query; `body` the request body,
/// which the server has read up to [`api::MAX_BODY`] + 1 bytes). Blocks: a synchronous call waits
/// for its message to complete (up to [`api::SYNC_CALL_TIMEOUT`]); `wake` tells the driver that
/// messages were queued. `OPTIONS` is a CORS preflight.
pub fn answer(
    replica: &Replica,
    state: &api::ApiState,
    method: &str,
    path: &str,
    body: &[u8],
    wake: &dyn Fn(),
) -> http::Response<bytes::Bytes> {
    if method == "OPTIONS" {
        // A CORS preflight: dApp pages on another origin (a dev server) call the API from
        // browsers, as they do through the IC's boundary nodes, which answer the same way.
        let mut reply = http::Response::builder().status(204);
        for (name, value) in CORS_HEADERS.iter().chain(CORS_PREFLIGHT_HEADERS) {
            reply = reply.header(*name, *value);
        }
        return reply.body(bytes::Bytes::new()).unwrap_or_default();
    }
    if body.len() > api::MAX_BODY {
        return too_large();
    }
    with_cors(api::handle(replica, state, method, path, body, wake))
}

/// The 413 for a request body over [`api::MAX_BODY`] (the server may stop reading it early).
pub fn too_large() -> http::Response<bytes::Bytes> {
    with_cors(api::Response::text(413, "request body too large"))
}

fn with_cors(response: api::Response) -> http::Response<bytes::Bytes> {
    let mut reply = http::Response::builder()
        .status(response.status)
        .header("Content-Type", response.content_type);
    for (name, value) in CORS_HEADERS {
        reply = reply.header(*name, *value);
    }
    reply
        .body(bytes::Bytes::from(response.body))
        .unwrap_or_default()
}

/// Sent with every API answer: any origin may call the API (requests are authenticated by
/// their signatures, not by cookies), as on the IC's boundary nodes.
const CORS_HEADERS: &[(&str, &str)] = &[("Access-Control-Allow-Origin", "*")];
/// Added to preflight (`OPTIONS`) answers.
const CORS_PREFLIGHT_HEADERS: &[(&str, &str)] = &[
    ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type"),
    ("Access-Control-Max-Age", "600"),
];
