//! # canvid-http-interface: the Internet Computer's HTTP interface for the embedded replica
//!
//! [`serve`] answers, on one loopback port, what an IC node and an HTTP gateway answer:
//!
//! * `/api/...`: the IC HTTP interface the current agents (`ic-agent` 0.49, `@icp-sdk/core` 6,
//!   and through them dfx and icp-cli) use: `GET /api/v2/status` (with the root key),
//!   `POST /api/v2|v3/canister/<id>/query` (answers signed by the node key),
//!   `POST /api/v2/canister/<id>/call` (asynchronous, 202), `POST /api/v3|v4/canister/<id>/call`
//!   (synchronous: answers with a certificate of the result), and
//!   `POST /api/v2|v3/{canister,subnet}/<id>/read_state` (certificates signed with the replica's
//!   BLS12-381 root key). Requests are authenticated as on the IC ([`auth`]).
//! * everything else: the HTTP gateway of `canvid-gateway` (`<canister-id>.localhost`; a
//!   `?canisterId=<id>` request on this origin is redirected (307) to the canister's own
//!   `<id>.localhost` origin, so that no two canisters share an origin).
//!
//! A driver thread executes queued messages (rounds) and keeps the replica's clock at wall-clock
//! time, because agents check ingress expiry and certificate freshness against their own clocks.
//!
//! See `docs/agent-interface.md` for what is implemented and how to point agents at it.

pub mod api;
pub mod auth;
pub mod hash;

use canvid_gateway::tiny_http;
use canvid_gateway::{Gateway, LogEntry, LoopbackServer};
use canvid_replica::{Principal, Replica};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Threads answering HTTP requests. A synchronous call holds its thread until the message
/// completes, and a browser opens several connections for one video.
const WORKERS: usize = 8;
/// How often the driver runs a round while nothing is queued (canister timers become due).
const IDLE_ROUND_INTERVAL: Duration = Duration::from_millis(20);

/// A running server. Dropping it stops the server (as [`ServerHandle::shutdown`] does).
pub struct ServerHandle {
    gateway: Gateway<Replica>,
    server: LoopbackServer,
}

impl ServerHandle {
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `http://127.0.0.1:<port>`: the URL to give agents (`--network`, `host`, `with_url`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// Base URL of `canister`'s HTTP interface through the gateway (browsers resolve
    /// `*.localhost` to loopback).
    pub fn url_for(&self, canister: Principal) -> String {
        format!("http://{canister}.localhost:{}/", self.port())
    }

    /// The gateway's canister calls so far, oldest first.
    pub fn log(&self) -> Vec<LogEntry> {
        self.gateway.log()
    }

    /// Stops accepting requests and waits for the threads (each finishes its current request).
    pub fn shutdown(self) {
        self.server.shutdown();
    }
}

/// Serves the IC HTTP interface and the HTTP gateway for `replica` on `addr` (port 0 picks a
/// free port). Refuses non-loopback addresses: this is a development replica.
pub fn serve(replica: Arc<Replica>, addr: SocketAddr) -> io::Result<ServerHandle> {
    let mut server = LoopbackServer::bind(addr, "the replica's HTTP interface")?;
    let gateway = Gateway::new(replica.clone());
    let api_state = Arc::new(api::ApiState::default());

    let driver = {
        let (replica, stop) = (replica.clone(), server.stop_flag());
        std::thread::Builder::new()
            .name("replica-driver".into())
            .spawn(move || drive(&replica, &stop))?
    };
    let driver_thread = driver.thread().clone();
    server.add_thread(driver);
    let handler = {
        let gateway = gateway.clone();
        move |request: tiny_http::Request| {
            if request.url().starts_with("/api/") {
                answer_api(&replica, &api_state, request, &|| driver_thread.unpark())
            } else {
                gateway.handle(request)
            }
        }
    };
    server.spawn_workers(WORKERS, "replica-http", handler)?;
    Ok(ServerHandle { gateway, server })
}

/// The driver: clock at wall-clock time, rounds while messages are queued, and a round every
/// [`IDLE_ROUND_INTERVAL`] otherwise (timers). Workers unpark it when they queue a message.
fn drive(replica: &Replica, stop: &AtomicBool) {
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

fn answer_api(
    replica: &Replica,
    state: &api::ApiState,
    mut request: tiny_http::Request,
    wake: &dyn Fn(),
) {
    let method = request.method().as_str().to_string();
    let url = request.url().to_string();
    if method == "OPTIONS" {
        // A CORS preflight: dApp pages on another origin (a dev server) call the API from
        // browsers, as they do through the IC's boundary nodes, which answer the same way.
        let mut reply = tiny_http::Response::empty(204);
        for (name, value) in CORS_HEADERS.iter().chain(CORS_PREFLIGHT_HEADERS) {
            if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                reply = reply.with_header(h);
            }
        }
        let _ = request.respond(reply);
        return;
    }
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(api::MAX_BODY as u64 + 1)
        .read_to_end(&mut body);
    let response = match read {
        Err(e) => api::Response::text(400, format!("reading the request body: {e}")),
        Ok(_) if body.len() > api::MAX_BODY => api::Response::text(413, "request body too large"),
        Ok(_) => api::handle(replica, state, &method, &url, &body, wake),
    };
    let mut reply = tiny_http::Response::from_data(response.body)
        .with_status_code(tiny_http::StatusCode(response.status));
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], response.content_type) {
        reply = reply.with_header(h);
    }
    for (name, value) in CORS_HEADERS {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            reply = reply.with_header(h);
        }
    }
    let _ = request.respond(reply);
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
