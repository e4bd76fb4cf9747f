//! A browser's request through DFINITY's `ic-http-gateway`: which canister (the Host), the
//! request handed to the library, its answer passed on, and the log entry.

use bytes::Bytes;
use candid::Principal;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use ic_http_gateway::{HttpGatewayClient, HttpGatewayRequestArgs};
use std::sync::{Arc, Mutex};

use crate::host::{host_canister, is_raw_host, own_origin_redirect};
use crate::server::Body;
use crate::LogEntry;

/// Largest request body forwarded (the IC's ingress limit).
const MAX_REQUEST_BODY: usize = 2 * 1024 * 1024;

/// The gateway: the library's client (an agent on the in-process HTTP interface) and the log.
#[derive(Clone)]
pub(crate) struct Gateway {
    pub(crate) client: HttpGatewayClient,
    pub(crate) log: Arc<Mutex<Vec<LogEntry>>>,
    pub(crate) verbose: bool,
}

impl Gateway {
    fn record(&self, entry: LogEntry) {
        if self.verbose {
            eprintln!(
                "[gateway] {} {} range={:?} -> {} ({} bytes){}{}",
                entry.method,
                entry.url,
                entry.range,
                entry.status,
                entry.body_len,
                if entry.upgraded { " [update]" } else { "" },
                if entry.verified { " [verified]" } else { "" }
            );
        }
        if let Ok(mut log) = self.log.lock() {
            log.push(entry);
        }
    }

    /// The gateway's own answer (no canister called), logged without a canister.
    fn own_answer(&self, method: &str, url: &str, response: Response<Body>) -> Response<Body> {
        self.record(LogEntry {
            method: method.to_string(),
            url: url.to_string(),
            canister: None,
            range: None,
            status: response.status().as_u16(),
            body_len: body_len(&response).unwrap_or(0),
            upgraded: false,
            streamed: false,
            verified: false,
        });
        response
    }

    /// Answers one request that is not for the IC HTTP interface.
    pub(crate) async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let method = request.method().as_str().to_string();
        let url = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| request.uri().authority().map(|a| a.to_string()));
        if let Some(location) = own_origin_redirect(host.as_deref(), &url) {
            let response = Response::builder()
                .status(307)
                .header(http::header::LOCATION, location)
                .body(full(Bytes::new()))
                .unwrap_or_default();
            return self.own_answer(&method, &url, response);
        }
        let Some(canister) = host_canister(host.as_deref()) else {
            let response = text(
                400,
                "no canister: use http://<canister-id>.localhost:<port>/ or ?canisterId=<id> \
                 (with a Host header)",
            );
            return self.own_answer(&method, &url, response);
        };
        let raw = is_raw_host(host.as_deref());
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                let response = if e.is::<http_body_util::LengthLimitError>() {
                    text(413, "request body too large")
                } else {
                    text(400, &format!("reading the request body: {e}"))
                };
                return self.own_answer(&method, &url, response);
            }
        };
        let range = parts
            .headers
            .get(http::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut canister_request = Request::builder().method(parts.method).uri(url.as_str());
        for (name, value) in &parts.headers {
            canister_request = canister_request.header(name, value);
        }
        let Ok(canister_request) = canister_request.body(body) else {
            return self.own_answer(&method, &url, text(400, "malformed request"));
        };
        self.call(canister, canister_request, raw, &method, &url, range)
            .await
    }

    pub(crate) async fn call(
        &self,
        canister: Principal,
        canister_request: Request<Bytes>,
        raw: bool,
        method: &str,
        url: &str,
        range: Option<String>,
    ) -> Response<Body> {
        let mut builder = self.client.request(HttpGatewayRequestArgs {
            canister_request,
            canister_id: canister,
        });
        // `<id>.raw.localhost`, like `<id>.raw.icp0.io`: answers are passed on unverified.
        builder.unsafe_set_skip_verification(raw);
        let answer = builder.send().await;
        if let (true, Some(e)) = (self.verbose, &answer.metadata.internal_error) {
            eprintln!("[gateway] {method} {url}: {e}");
        }
        let (mut parts, body) = answer.canister_response.into_parts();
        // A whole body (not a stream of chunks) is framed by the server: a certified
        // `Content-Length` that differs from it (HEAD keeps it) must not reach hyper.
        let body: Body = match body {
            http_body_util::Either::Right(full) => {
                if method != "HEAD" {
                    parts.headers.remove(http::header::CONTENT_LENGTH);
                }
                full.map_err(|never| match never {}).boxed_unsync()
            }
            http_body_util::Either::Left(stream) => {
                // A plain GET completed from a 206: the library appends the whole length as
                // the last `Content-Length`. On the raw domain (verification skipped) it also
                // copies the first chunk's `Content-Length` and `Content-Range` (0.4.3; the
                // verified path drops them): keep the whole length only, as one 200 carries.
                let total = parts
                    .headers
                    .get_all(http::header::CONTENT_LENGTH)
                    .iter()
                    .next_back()
                    .cloned();
                parts.headers.remove(http::header::CONTENT_LENGTH);
                if let Some(total) = total {
                    parts.headers.insert(http::header::CONTENT_LENGTH, total);
                }
                if parts.status == http::StatusCode::OK {
                    parts.headers.remove(http::header::CONTENT_RANGE);
                }
                stream.map_err(Into::into).boxed_unsync()
            }
        };
        let response_len = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let response = Response::from_parts(parts, body);
        let body_len = if method == "HEAD" {
            Some(0)
        } else {
            body_len(&response)
        };
        self.record(LogEntry {
            method: method.to_string(),
            url: url.to_string(),
            canister: Some(canister),
            range,
            status: response.status().as_u16(),
            body_len: body_len.or(response_len).unwrap_or(0),
            upgraded: answer.metadata.upgraded_to_update_call,
            streamed: false,
            verified: answer.metadata.response_verification_version.is_some(),
        });
        response
    }
}

fn body_len(response: &Response<Body>) -> Option<u64> {
    hyper::body::Body::size_hint(response.body()).exact()
}

pub(crate) fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn text(status: u16, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(Bytes::from(format!("{message}\n"))))
        .unwrap_or_default()
}
