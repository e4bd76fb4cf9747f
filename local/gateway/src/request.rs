//! Request handling: which canister a client request is for, the candid `HttpRequest` sent to it,
//! and the answer ([`Gateway::handle`]), logged.

use candid::Principal;
use ic_http_certification::{HttpRequest, HttpResponse, Method};
use std::io::Read;
use std::sync::{Arc, Mutex};

use crate::stream::{parse_content_range, Body, Reply, Stream};
use crate::verify::{call_canister, verify_response};
use crate::{Backend, LogEntry};

/// Largest request body forwarded (the IC's ingress limit).
const MAX_REQUEST_BODY: u64 = 2 * 1024 * 1024;

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

    /// Answers one HTTP request for a `<canister-id>.localhost` host; a `?canisterId=` request
    /// on another host is redirected there ([`own_origin_redirect`]).
    pub fn handle(&self, request: tiny_http::Request) {
        handle(&self.ctx, request)
    }

    /// Calls made so far, oldest first.
    pub fn log(&self) -> Vec<LogEntry> {
        self.ctx.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The log itself, shared (a [`crate::GatewayHandle`] reads it).
    pub(crate) fn log_handle(&self) -> Arc<Mutex<Vec<LogEntry>>> {
        self.ctx.log.clone()
    }
}

pub(crate) struct Ctx<B: Backend> {
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
    pub(crate) fn call(
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
    let host = header(&headers, "host");
    if let Some(location) = own_origin_redirect(host, url) {
        // Logged as the gateway's own answer: no canister was called.
        ctx.record(LogEntry {
            method: method.to_string(),
            url: url.to_string(),
            canister: None,
            range: None,
            status: 307,
            body_len: 0,
            upgraded: false,
            streamed: false,
            verified: false,
        });
        return Ok(Reply::redirect(location));
    }
    let canister = host_canister(host).ok_or((
        400,
        "no canister: use http://<canister-id>.localhost:<port>/ or ?canisterId=<id> \
         (with a Host header)"
            .to_string(),
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

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The canister a request names: the first label of a `<id>.localhost[:port]` (or
/// `<id>.raw.localhost`) Host, else a `canisterId` query parameter. Only the Host form is
/// served; the `canisterId` form is redirected to it ([`own_origin_redirect`]).
pub fn resolve_canister(host: Option<&str>, url: &str) -> Option<Principal> {
    host_canister(host).or_else(|| query_canister(url))
}

/// The canister of a `<id>.localhost[:port]` or `<id>.raw.localhost[:port]` Host.
fn host_canister(host: Option<&str>) -> Option<Principal> {
    let host = host_name(host?);
    let id = host
        .strip_suffix(".raw.localhost")
        .or_else(|| host.strip_suffix(".localhost"))?;
    if id.contains('.') {
        return None;
    }
    Principal::from_text(id).ok()
}

/// The canister of the first valid `canisterId` query parameter.
fn query_canister(url: &str) -> Option<Principal> {
    let url = origin_form(url);
    let (_, query) = split_query(&url);
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "canisterId")
            .then(|| Principal::from_text(v).ok())
            .flatten()
    })
}

/// `(path, query)` of an origin-form URL, without the fragment.
fn split_query(url: &str) -> (&str, Option<&str>) {
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    }
}

/// The path-and-query of a request target (tiny_http gives origin-form URLs; an absolute-form
/// one is reduced to its path and query).
fn origin_form(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string()),
        None => url.to_string(),
    }
}

/// Where a `?canisterId=<id>` request on a host that is not the canister's own subdomain is
/// sent (security review L2): `http://<id>.localhost[:port]<path>?<the other parameters>`,
/// keeping the Host's port. Serving it there would put every canister on one origin (the
/// replica API's or the gateway's), where one canister's page could read what another dApp keeps
/// in that origin's storage (an agent's delegation, say). `None` when the Host already names a
/// canister (the `canisterId` parameter is then passed on as any other) or no valid `canisterId`
/// is given, or there is no Host to take the port from.
pub fn own_origin_redirect(host: Option<&str>, url: &str) -> Option<String> {
    let host = host?;
    if host_canister(Some(host)).is_some() {
        return None;
    }
    let canister = query_canister(url)?;
    let port = host
        .rsplit_once(':')
        .filter(|(h, p)| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']'))
        })
        .map_or(String::new(), |(_, p)| format!(":{p}"));
    let target = origin_form(url);
    let (path, query) = split_query(&target);
    let rest: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some("canisterId"))
        .collect();
    let path = if path.starts_with('/') { path } else { "/" };
    let query = if rest.is_empty() {
        String::new()
    } else {
        format!("?{}", rest.join("&"))
    };
    Some(format!("http://{canister}.localhost{port}{path}{query}"))
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
    let url = origin_form(url);
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
