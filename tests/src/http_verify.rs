//! What the IC's HTTP gateways run on a certified query answer of `http_request`
//! (`ic-response-verification`, response certification v2): shared by the HTTP and access tests.

use crate::backend::{Backend, BackendExt};
use crate::http_types::{HttpRequest, HttpResponse, HttpUpdateRequest};
use candid::Principal;
use serde_bytes::ByteBuf;
use std::time::SystemTime;

/// Runs the HTTP gateway's response verification (certification v2 required) on a query answer.
pub fn verify_v2(
    request: &HttpRequest,
    resp: &HttpResponse,
    canister: Principal,
    root_key: &[u8],
    time: SystemTime,
) -> Result<ic_response_verification::types::VerifiedResponse, String> {
    use ic_http_certification as cert;
    let method = cert::Method::from_bytes(request.method.as_bytes()).map_err(|e| e.to_string())?;
    let request = cert::HttpRequest::builder()
        .with_method(method)
        .with_url(request.url.clone())
        .with_headers(request.headers.clone())
        .with_body(request.body.to_vec())
        .with_certificate_version(2)
        .build();
    let status = cert::StatusCode::from_u16(resp.status_code).map_err(|e| e.to_string())?;
    let response = cert::HttpResponse::builder()
        .with_status_code(status)
        .with_headers(resp.headers.clone())
        .with_body(resp.body.to_vec())
        .build();
    let now_ns = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos();
    // The gateways' default: a certificate may be at most 5 minutes old.
    const MAX_CERT_AGE_NS: u128 = 5 * 60 * 1_000_000_000;
    let info = ic_response_verification::verify_request_response_pair(
        request,
        response,
        canister.as_slice(),
        now_ns,
        MAX_CERT_AGE_NS,
        root_key,
        2,
    )
    .map_err(|e| format!("{e:?}"))?;
    if info.verification_version != 2 {
        return Err(format!("verified as version {}", info.verification_version));
    }
    info.response
        .ok_or_else(|| "verification returned no response".to_string())
}

/// What an HTTP gateway does: `http_request` as a query (anonymously), its answer verified as a
/// gateway verifies it (refusals included). Panics if the canister asks to upgrade to an update
/// call: callers use it for answers the query must give on its own.
pub fn certified_query(
    b: &dyn Backend,
    video: Principal,
    method: &str,
    url: &str,
    range: Option<&str>,
) -> HttpResponse {
    let headers: Vec<(String, String)> = range
        .map(|r| vec![("Range".to_string(), r.to_string())])
        .unwrap_or_default();
    let req = HttpRequest {
        method: method.into(),
        url: url.into(),
        headers: headers.clone(),
        body: ByteBuf::new(),
        certificate_version: Some(2),
    };
    let resp: HttpResponse = b
        .query1(video, Principal::anonymous(), "http_request", &req)
        .unwrap_or_else(|e| panic!("http_request {url}: {e}"));
    if resp.upgrade == Some(true) {
        let upd = HttpUpdateRequest {
            method: method.into(),
            url: url.into(),
            headers,
            body: ByteBuf::new(),
        };
        let resp: HttpResponse = b
            .update1(video, Principal::anonymous(), "http_request_update", &upd)
            .unwrap_or_else(|e| panic!("http_request_update {url}: {e}"));
        panic!(
            "{}: {method} {url} {range:?} was upgraded (status {} after the update)",
            b.name(),
            resp.status_code
        );
    }
    // A certified answer, as a verifying gateway checks it: refusals included.
    let verified = verify_v2(&req, &resp, video, &b.root_key(), b.time()).unwrap_or_else(|e| {
        panic!(
            "{}: {method} {url} {range:?} (status {}): the gateway's verification refuses it: {e}",
            b.name(),
            resp.status_code
        )
    });
    assert_eq!(verified.status_code, Some(resp.status_code));
    assert!(verified.body == resp.body.as_slice(), "verified body");
    resp
}
