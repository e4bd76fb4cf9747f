//! A loopback-only HTTP gateway for canisters running in the embedded replica.
//!
//! It plays the role of the IC's HTTP gateway for local tests and demos:
//! `http://<canister-id>.localhost:<port>/path` (or any host with `?canisterId=<id>`) becomes an
//! `http_request` query on that canister with the anonymous caller; `upgrade = true` answers are
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

use candid::Principal;
use ic_http_certification::{HttpRequest, HttpResponse, HttpUpdateRequest, Method};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The HTTP server library the gateway is written against: [`Gateway::handle`] takes its
/// requests, so a server embedding the gateway uses this exact version.
pub use tiny_http;

/// Worker threads serving connections (a browser opens several for one video).
const WORKERS: usize = 4;
/// Largest request body forwarded (the IC's ingress limit).
const MAX_REQUEST_BODY: u64 = 2 * 1024 * 1024;
/// Chunks fetched for one streamed 206 answer before giving up (as the IC gateway bounds it).
const MAX_STREAM_CHUNKS: usize = 100_000;

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

#[cfg(feature = "replica")]
mod replica_backend {
    use super::{Backend, CallError};
    use candid::Principal;
    use canvid_replica::{RejectCode, RejectResponse, Replica};

    fn map(e: RejectResponse) -> CallError {
        // IC0301: canister not found; IC0537: no Wasm module (the IC gateway answers 404 too).
        if e.reject_code == RejectCode::DestinationInvalid
            || e.error_code == "IC0301"
            || e.error_code == "IC0537"
        {
            CallError::CanisterNotFound(e.reject_message)
        } else {
            CallError::Rejected(format!(
                "{} ({:?}): {}",
                e.error_code, e.reject_code, e.reject_message
            ))
        }
    }

    impl Backend for Replica {
        fn query(
            &self,
            canister: Principal,
            method: &str,
            arg: Vec<u8>,
        ) -> Result<Vec<u8>, CallError> {
            self.query_call(canister, Principal::anonymous(), method, arg)
                .map_err(map)
        }
        fn update(
            &self,
            canister: Principal,
            method: &str,
            arg: Vec<u8>,
        ) -> Result<Vec<u8>, CallError> {
            self.update_call(canister, Principal::anonymous(), method, arg)
                .map_err(map)
        }
        fn verification(&self) -> Option<super::Verification> {
            let now = self.get_time().duration_since(std::time::UNIX_EPOCH).ok()?;
            Some(super::Verification {
                root_key_der: self.root_key_der(),
                now_ns: now.as_nanos(),
            })
        }
    }

    /// Starts a gateway in front of an embedded replica (see [`super::serve_backend`]).
    pub fn serve(
        replica: std::sync::Arc<Replica>,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<super::GatewayHandle> {
        super::serve_backend(replica, addr)
    }
}
#[cfg(feature = "replica")]
pub use replica_backend::serve;

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

/// A running gateway.
pub struct GatewayHandle {
    port: u16,
    log: Arc<Mutex<Vec<LogEntry>>>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl GatewayHandle {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Base URL of `canister` behind this gateway (browsers resolve `*.localhost` to loopback).
    pub fn url_for(&self, canister: Principal) -> String {
        format!("http://{canister}.localhost:{}/", self.port)
    }

    /// Calls made so far, oldest first.
    pub fn log(&self) -> Vec<LogEntry> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stops accepting requests and waits for the workers (each finishes its current request).
    pub fn shutdown(mut self) {
        self.stop_workers();
    }

    fn stop_workers(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

/// Starts a gateway over any [`Backend`] on `addr` (port 0 picks a free port). Refuses
/// non-loopback addresses.
pub fn serve_backend<B: Backend>(backend: Arc<B>, addr: SocketAddr) -> io::Result<GatewayHandle> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the gateway binds loopback addresses only, not {addr}"),
        ));
    }
    let server = tiny_http::Server::http(addr).map_err(|e| io::Error::other(e.to_string()))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .ok_or_else(|| io::Error::other("no IP listen address"))?;
    let server = Arc::new(server);
    let gateway = Gateway::new(backend);
    let log = gateway.ctx.log.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let workers = (0..WORKERS)
        .map(|_| {
            let (server, gateway, stop) = (server.clone(), gateway.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match server.recv_timeout(Duration::from_millis(50)) {
                        Ok(Some(request)) => gateway.handle(request),
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    Ok(GatewayHandle {
        port,
        log,
        stop,
        workers,
    })
}

/// The gateway's request handling, without a server of its own: a server that also answers
/// other paths (the IC HTTP interface of `canvid-http-interface`) hands it every request it does
/// not serve itself. Cloning is cheap and shares the backend and the log.
pub struct Gateway<B: Backend> {
    ctx: Ctx<B>,
}

impl<B: Backend> Clone for Gateway<B> {
    fn clone(&self) -> Self {
        Gateway {
            ctx: self.ctx.clone(),
        }
    }
}

impl<B: Backend> Gateway<B> {
    /// A gateway over `backend` with an empty log. Setting `CANVID_GATEWAY_LOG` prints every
    /// canister call to stderr.
    pub fn new(backend: Arc<B>) -> Self {
        Gateway {
            ctx: Ctx {
                backend,
                log: Arc::new(Mutex::new(Vec::new())),
                verbose: std::env::var_os("CANVID_GATEWAY_LOG").is_some(),
            },
        }
    }

    /// Answers one HTTP request (`<canister-id>.localhost` host or `?canisterId=`).
    pub fn handle(&self, request: tiny_http::Request) {
        handle(&self.ctx, request)
    }

    /// Calls made so far, oldest first.
    pub fn log(&self) -> Vec<LogEntry> {
        self.ctx.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

struct Ctx<B: Backend> {
    backend: Arc<B>,
    log: Arc<Mutex<Vec<LogEntry>>>,
    verbose: bool,
}

impl<B: Backend> Clone for Ctx<B> {
    fn clone(&self) -> Self {
        Ctx {
            backend: self.backend.clone(),
            log: self.log.clone(),
            verbose: self.verbose,
        }
    }
}

impl<B: Backend> Ctx<B> {
    fn record(&self, entry: LogEntry) {
        if self.verbose {
            eprintln!(
                "[gateway] {} {} range={:?} -> {} ({} bytes){}{}{}",
                entry.method,
                entry.url,
                entry.range,
                entry.status,
                entry.body_len,
                if entry.upgraded { " [update]" } else { "" },
                if entry.streamed { " [stream]" } else { "" },
                if entry.verified { " [verified]" } else { "" }
            );
        }
        if let Ok(mut log) = self.log.lock() {
            log.push(entry);
        }
    }

    /// One `http_request` (and `http_request_update` if asked), verified if `verify` and the
    /// backend gives a root key, logged.
    fn call(
        &self,
        canister: Principal,
        request: &HttpRequest<'static>,
        streamed: bool,
        verify: bool,
    ) -> Result<HttpResponse<'static>, (u16, String)> {
        let mut entry = LogEntry {
            method: request.method().to_string(),
            url: request.url().to_string(),
            canister: Some(canister),
            range: header(request.headers(), "range").map(str::to_string),
            status: 0,
            body_len: 0,
            upgraded: false,
            streamed,
            verified: false,
        };
        let mut result = call_canister(&*self.backend, canister, request, &mut entry.upgraded);
        if let (Ok(response), true, false) = (&result, verify, entry.upgraded) {
            if let Some(v) = self.backend.verification() {
                match verify_response(&v, canister, request, response) {
                    Ok(()) => entry.verified = true,
                    Err(e) => result = Err((503, format!("response verification failed: {e}"))),
                }
            }
        }
        match &result {
            Ok(r) => {
                entry.status = r.status_code().as_u16();
                entry.body_len = r.body().len() as u64;
            }
            Err((status, message)) => {
                entry.status = *status;
                entry.body_len = message.len() as u64;
            }
        }
        self.record(entry);
        result
    }
}

/// Queries `http_request`; repeats as `http_request_update` when the answer says `upgrade`.
/// Errors are (status, message) for the client.
pub fn call_canister(
    backend: &dyn Backend,
    canister: Principal,
    request: &HttpRequest<'static>,
    upgraded: &mut bool,
) -> Result<HttpResponse<'static>, (u16, String)> {
    let arg =
        candid::encode_one(request).map_err(|e| (500, format!("candid encoding failed: {e}")))?;
    let reply = backend
        .query(canister, "http_request", arg)
        .map_err(call_error)?;
    let response = decode_response(&reply)?;
    if response.upgrade() != Some(true) {
        return Ok(response);
    }
    *upgraded = true;
    let update: HttpUpdateRequest<'static> = request.clone().into();
    let arg =
        candid::encode_one(&update).map_err(|e| (500, format!("candid encoding failed: {e}")))?;
    let reply = backend
        .update(canister, "http_request_update", arg)
        .map_err(call_error)?;
    decode_response(&reply)
}

/// What the IC's HTTP gateway checks on its verified domains: the certificate (signature under
/// `root_key_der`, freshness, the canister's certified data), the witness, and that the tree
/// holds this request's and response's hashes (HTTP certification v2 only: canvid's canisters
/// certify every answer in v2).
pub fn verify_response(
    v: &Verification,
    canister: Principal,
    request: &HttpRequest<'static>,
    response: &HttpResponse<'static>,
) -> Result<(), String> {
    let info = ic_response_verification::verify_request_response_pair(
        request.clone(),
        response.clone(),
        canister.as_slice(),
        v.now_ns,
        MAX_CERT_AGE_NS,
        &v.root_key_der,
        2,
    )
    .map_err(|e| e.to_string())?;
    let verified = info.response.ok_or("no certified response")?;
    if verified.status_code != Some(response.status_code().as_u16())
        || verified.body != response.body()
    {
        return Err("the certified response differs from the one served".into());
    }
    Ok(())
}

fn call_error(e: CallError) -> (u16, String) {
    match e {
        CallError::CanisterNotFound(m) => (404, format!("canister not found: {m}")),
        CallError::Rejected(m) => (502, format!("canister error: {m}")),
    }
}

/// Decodes an `HttpResponse` reply (a `streaming_strategy` field, if present, is ignored).
pub fn decode_response(reply: &[u8]) -> Result<HttpResponse<'static>, (u16, String)> {
    candid::decode_one::<HttpResponse<'static>>(reply)
        .map_err(|e| (502, format!("malformed http_request reply: {e}")))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The canister a request is for: the first label of a `<id>.localhost[:port]` (or
/// `<id>.raw.localhost`) Host, else a `canisterId` query parameter.
pub fn resolve_canister(host: Option<&str>, url: &str) -> Option<Principal> {
    if let Some(host) = host {
        let host = host_name(host);
        if let Some(id) = host
            .strip_suffix(".raw.localhost")
            .or_else(|| host.strip_suffix(".localhost"))
        {
            if !id.contains('.') {
                if let Ok(p) = Principal::from_text(id) {
                    return Some(p);
                }
            }
        }
    }
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "canisterId")
            .then(|| Principal::from_text(v).ok())
            .flatten()
    })
}

/// The candid `HttpRequest` for a client request: method, path-and-query, all headers (as the
/// IC gateway forwards them), body, and `certificate_version = 2`.
pub fn to_canister_request(
    method: &str,
    url: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Result<HttpRequest<'static>, String> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| format!("bad method: {e}"))?;
    // tiny_http gives origin-form URLs; an absolute-form one is reduced to its path and query.
    let url = match url.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string()),
        None => url.to_string(),
    };
    Ok(HttpRequest::builder()
        .with_method(method)
        .with_url(url)
        .with_headers(headers)
        .with_body(body)
        .with_certificate_version(2)
        .build())
}

/// A Host header's name: without the port and a trailing dot, lowercase.
fn host_name(host: &str) -> String {
    let host = host
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Is the Host a raw domain (`<id>.raw.localhost`): answers are served unverified?
fn is_raw_host(host: Option<&str>) -> bool {
    host.is_some_and(|h| host_name(h).ends_with(".raw.localhost"))
}

/// `(start, end, total)` of a `Content-Range: bytes start-end/total` header.
pub fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, total) = (
        start.trim().parse().ok()?,
        end.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (start <= end && end < total).then_some((start, end, total))
}

fn handle<B: Backend>(ctx: &Ctx<B>, mut request: tiny_http::Request) {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_string(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let method = request.method().as_str().to_string();
    let url = request.url().to_string();
    let mut called = false;
    let reply = match prepare(ctx, &mut request, &method, &url, headers, &mut called) {
        Ok(reply) => reply,
        Err((status, message)) => {
            // A failed canister call is already in the log (`Ctx::call`); errors before any
            // canister call are logged here, without a canister.
            if !called {
                ctx.record(LogEntry {
                    method: method.clone(),
                    url: url.clone(),
                    canister: None,
                    range: None,
                    status,
                    body_len: message.len() as u64,
                    upgraded: false,
                    streamed: false,
                    verified: false,
                });
            }
            Reply::error(status, &message)
        }
    };
    let _ = request.respond(reply.into_tiny());
}

fn prepare<B: Backend>(
    ctx: &Ctx<B>,
    request: &mut tiny_http::Request,
    method: &str,
    url: &str,
    headers: Vec<(String, String)>,
    called: &mut bool,
) -> Result<Reply, (u16, String)> {
    let canister = resolve_canister(header(&headers, "host"), url).ok_or((
        400,
        "no canister: use http://<canister-id>.localhost:<port>/ or ?canisterId=<id>".to_string(),
    ))?;
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_REQUEST_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| (400, format!("reading the request body: {e}")))?;
    if body.len() as u64 > MAX_REQUEST_BODY {
        return Err((413, "request body too large".into()));
    }
    let is_range_request = header(&headers, "range").is_some();
    let verify = !is_raw_host(header(&headers, "host"));
    let canister_request = to_canister_request(method, url, headers, body).map_err(|e| (400, e))?;
    *called = true;
    let response = ctx.call(canister, &canister_request, false, verify)?;
    let status = response.status_code().as_u16();
    let mut out_headers: Vec<(String, String)> = response.headers().to_vec();
    if status == 206 && !is_range_request && method == "GET" {
        // The canister answered a plain GET with its first chunk: stream the whole file.
        if let Some((0, end, total)) =
            header(response.headers(), "content-range").and_then(parse_content_range)
        {
            if response.body().len() as u64 == end + 1 {
                out_headers.retain(|(n, _)| {
                    !n.eq_ignore_ascii_case("content-range")
                        && !n.eq_ignore_ascii_case("content-length")
                });
                let stream = Stream {
                    ctx: ctx.clone(),
                    canister,
                    request: canister_request,
                    buf: response.body().to_vec(),
                    pos: 0,
                    fetched: end + 1,
                    total,
                    chunks: 1,
                    verify,
                };
                return Ok(Reply {
                    status: 200,
                    headers: out_headers,
                    body: Body::Stream(Box::new(stream), total),
                    head: false,
                });
            }
        }
    }
    let head = method == "HEAD";
    Ok(Reply {
        status,
        headers: out_headers,
        body: Body::Bytes(response.body().to_vec()),
        head,
    })
}

/// Lazily fetches `Range: bytes=N-` chunks while the client reads.
struct Stream<B: Backend> {
    ctx: Ctx<B>,
    canister: Principal,
    request: HttpRequest<'static>,
    buf: Vec<u8>,
    pos: usize,
    fetched: u64,
    total: u64,
    chunks: usize,
    /// Verify the continuation answers too (the IC's gateway does not yet; canvid certifies
    /// them, so the local gateway is stricter).
    verify: bool,
}

impl<B: Backend> Read for Stream<B> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.fetched >= self.total {
                return Ok(0);
            }
            if self.chunks >= MAX_STREAM_CHUNKS {
                return Err(io::Error::other("too many chunks"));
            }
            let mut headers: Vec<(String, String)> = self
                .request
                .headers()
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("range"))
                .cloned()
                .collect();
            headers.push(("Range".into(), format!("bytes={}-", self.fetched)));
            let mut request = self.request.clone();
            *request.headers_mut() = headers;
            let response = self
                .ctx
                .call(self.canister, &request, true, self.verify)
                .map_err(|(s, m)| io::Error::other(format!("{s}: {m}")))?;
            // Only a 206 continuing exactly where the previous chunk ended is accepted: anything
            // else would corrupt the stream silently.
            let ok = response.status_code().as_u16() == 206
                && header(response.headers(), "content-range")
                    .and_then(parse_content_range)
                    .is_some_and(|(s, e, t)| {
                        s == self.fetched
                            && t == self.total
                            && e - s + 1 == response.body().len() as u64
                    });
            if !ok || response.body().is_empty() {
                return Err(io::Error::other(format!(
                    "bad continuation at byte {}",
                    self.fetched
                )));
            }
            self.fetched += response.body().len() as u64;
            self.buf = response.body().to_vec();
            self.pos = 0;
            self.chunks += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

enum Body {
    Bytes(Vec<u8>),
    Stream(Box<dyn Read + Send>, u64),
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
    /// HEAD: keep the canister's Content-Length (tiny_http sends no body for HEAD).
    head: bool,
}

impl Reply {
    fn error(status: u16, message: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: Body::Bytes(format!("{message}\n").into_bytes()),
            head: false,
        }
    }

    fn into_tiny(self) -> tiny_http::Response<Box<dyn Read + Send>> {
        let (reader, len): (Box<dyn Read + Send>, Option<usize>) = match self.body {
            Body::Bytes(b) => {
                let len = b.len();
                (Box::new(io::Cursor::new(b)), Some(len))
            }
            Body::Stream(r, len) => (r, usize::try_from(len).ok()),
        };
        let mut headers = Vec::new();
        let mut head_length = None;
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case("content-length") {
                // tiny_http derives Content-Length from the body length, except for HEAD.
                head_length = v.parse::<usize>().ok();
                continue;
            }
            if let Ok(h) = tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()) {
                headers.push(h);
            }
        }
        let len = if self.head { head_length.or(len) } else { len };
        tiny_http::Response::new(
            tiny_http::StatusCode(self.status),
            headers,
            reader,
            len,
            None,
        )
        .with_chunked_threshold(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_canister_from_host_and_query() {
        let id = Principal::from_text("rrkah-fqaaa-aaaaa-aaaaq-cai").unwrap();
        assert_eq!(
            resolve_canister(Some("rrkah-fqaaa-aaaaa-aaaaq-cai.localhost:4943"), "/"),
            Some(id)
        );
        assert_eq!(
            resolve_canister(Some("RRKAH-FQAAA-AAAAA-AAAAQ-CAI.localhost"), "/"),
            Some(id)
        );
        assert_eq!(
            resolve_canister(Some("rrkah-fqaaa-aaaaa-aaaaq-cai.raw.localhost:80"), "/x"),
            Some(id)
        );
        assert_eq!(
            resolve_canister(
                Some("127.0.0.1:4943"),
                "/video?canisterId=rrkah-fqaaa-aaaaa-aaaaq-cai"
            ),
            Some(id)
        );
        assert_eq!(
            resolve_canister(
                Some("localhost:1"),
                "/?a=1&canisterId=rrkah-fqaaa-aaaaa-aaaaq-cai#frag"
            ),
            Some(id)
        );
        assert_eq!(resolve_canister(Some("localhost:1"), "/"), None);
        assert_eq!(resolve_canister(Some("a.b.localhost"), "/"), None);
        assert_eq!(
            resolve_canister(Some("not-a-principal.localhost"), "/"),
            None
        );
        assert_eq!(resolve_canister(None, "/?canisterId=garbage"), None);
    }

    #[test]
    fn builds_the_canister_request() {
        let headers = vec![
            ("Range".to_string(), "bytes=0-".to_string()),
            ("X-Other".to_string(), "1".to_string()),
        ];
        let r = to_canister_request("GET", "/video?t=1", headers.clone(), vec![]).unwrap();
        assert_eq!(r.method().as_str(), "GET");
        assert_eq!(r.url(), "/video?t=1");
        assert_eq!(r.headers(), headers.as_slice());
        assert_eq!(r.certificate_version(), Some(2));
        assert_eq!(
            to_canister_request("GET", "http://x.localhost:1/a?b", vec![], vec![])
                .unwrap()
                .url(),
            "/a?b"
        );
        assert!(to_canister_request("BAD METHOD", "/", vec![], vec![]).is_err());
        // The candid encoding decodes back as the IC's HttpRequest record.
        let bytes = candid::encode_one(&r).unwrap();
        assert_eq!(candid::decode_one::<HttpRequest>(&bytes).unwrap(), r);
    }

    #[test]
    fn parses_content_range() {
        assert_eq!(parse_content_range("bytes 0-99/1000"), Some((0, 99, 1000)));
        assert_eq!(parse_content_range("bytes  5-5/6"), Some((5, 5, 6)));
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("bytes 9-5/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn refuses_non_loopback() {
        struct Nothing;
        impl Backend for Nothing {
            fn query(&self, _: Principal, _: &str, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
                Err(CallError::Rejected("x".into()))
            }
            fn update(&self, _: Principal, _: &str, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
                Err(CallError::Rejected("x".into()))
            }
        }
        let err = serve_backend(Arc::new(Nothing), "0.0.0.0:0".parse().unwrap())
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let handle = serve_backend(Arc::new(Nothing), "127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(handle.port() > 0);
        assert!(handle
            .url_for(Principal::anonymous())
            .starts_with("http://2vxsx-fae.localhost:"));
        handle.shutdown();
    }

    /// An answer that does not verify is not passed on by the verified domain (503), only by
    /// the raw one; upgraded answers are not checked.
    #[test]
    fn unverifiable_answers_are_refused_on_the_verified_domain() {
        struct Forger;
        impl Backend for Forger {
            fn query(&self, _: Principal, _: &str, arg: Vec<u8>) -> Result<Vec<u8>, CallError> {
                let request: HttpRequest = candid::decode_one(&arg).unwrap();
                let upgrade = request.url().starts_with("/upgrade");
                let response = HttpResponse::builder()
                    .with_status_code(ic_http_certification::StatusCode::OK)
                    .with_headers(vec![("ic-certificate".into(), "version=2".into())])
                    .with_body(b"forged".to_vec())
                    .with_upgrade(upgrade)
                    .build();
                Ok(candid::encode_one(response).unwrap())
            }
            fn update(&self, _: Principal, _: &str, _: Vec<u8>) -> Result<Vec<u8>, CallError> {
                let response = HttpResponse::builder()
                    .with_status_code(ic_http_certification::StatusCode::OK)
                    .with_body(b"by consensus".to_vec())
                    .build();
                Ok(candid::encode_one(response).unwrap())
            }
            fn verification(&self) -> Option<Verification> {
                Some(Verification {
                    root_key_der: vec![7; 133],
                    now_ns: 1_700_000_000_000_000_000,
                })
            }
        }
        let handle = serve_backend(Arc::new(Forger), "127.0.0.1:0".parse().unwrap()).unwrap();
        let get = |host: &str, path: &str| -> (u16, Vec<u8>) {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect(("127.0.0.1", handle.port())).unwrap();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).unwrap();
            let text = String::from_utf8_lossy(&raw).to_string();
            let status = text[9..12].parse().unwrap();
            let body = raw[text.find("\r\n\r\n").unwrap() + 4..].to_vec();
            (status, body)
        };
        let (status, body) = get("2vxsx-fae.localhost", "/");
        assert_eq!(status, 503);
        assert!(String::from_utf8_lossy(&body).contains("response verification failed"));
        assert_eq!(
            get("2vxsx-fae.raw.localhost", "/"),
            (200, b"forged".to_vec())
        );
        assert_eq!(
            get("2vxsx-fae.localhost", "/upgrade"),
            (200, b"by consensus".to_vec())
        );
        let log = handle.log();
        assert_eq!(
            log.iter()
                .map(|e| (e.status, e.verified))
                .collect::<Vec<_>>(),
            [(503, false), (200, false), (200, false)]
        );
        handle.shutdown();
    }
}
