//! Canister calls and response verification: `http_request` (repeated as `http_request_update`
//! when the canister asks), and the check the IC's gateways make on their verified domains.

use candid::Principal;
use ic_http_certification::{HttpRequest, HttpResponse, HttpUpdateRequest};

use crate::{Backend, CallError, Verification, MAX_CERT_AGE_NS};

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
