//! The IC HTTP interface endpoints: status, query, call (asynchronous v2, synchronous v3/v4),
//! read_state for canisters and subnets.
//!
//! Status codes follow the IC: 200 with a CBOR body for answers (including a query's or a
//! call's non-replicated rejection), 202 for an accepted asynchronous call, 400 for requests
//! that fail validation (malformed envelope, wrong effective canister id, expired, bad
//! signature or delegation, wrong request type), 403 for read_state paths the sender may not
//! read, 404 for unknown endpoints, 405 for wrong HTTP methods, 413 for oversized bodies.

use crate::auth::{authenticate, AuthError, Authenticated, Verifier};
use crate::hash::hash_of_map;
use candid::Principal;
use canvid_replica::{RejectResponse, Replica, RequestStatus};
use ic_transport_types::EnvelopeContent;
use serde_cbor::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest request body accepted: a 2 MiB ingress argument plus envelope and signatures.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// How long a synchronous call waits for its result before answering 202 (the agent then polls).
pub const SYNC_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The CBOR self-describe tag every answer carries.
const SELF_DESCRIBE: [u8; 3] = [0xd9, 0xd9, 0xf7];

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, message: impl Into<String>) -> Response {
        let mut body = message.into().into_bytes();
        body.push(b'\n');
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
        }
    }

    fn cbor(status: u16, value: &Value) -> Response {
        let mut body = SELF_DESCRIBE.to_vec();
        // Serialising a Value into memory cannot fail.
        body.extend(serde_cbor::to_vec(value).unwrap_or_default());
        Response {
            status,
            content_type: "application/cbor",
            body,
        }
    }

    fn accepted() -> Response {
        Response {
            status: 202,
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
        }
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (text(k), v))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// The state the API keeps besides the replica: which effective canister id each ingress
/// message was sent to (read_state answers a request's status only at that canister's endpoint).
#[derive(Default)]
pub struct ApiState {
    ingress_targets: Mutex<Targets>,
}

/// Entries younger than this (replica time) survive a sweep even if the replica does not know
/// their request id: the call that added one may not have reached `submit_ingress` yet.
const TARGET_GRACE_NS: u64 = 60_000_000_000;

/// Effective canister ids by request id. The replica forgets request ids after a while (see
/// `canvid_replica::FORGET_AFTER_NS`); entries of forgotten (or refused) requests are swept out once
/// the map has doubled since the last sweep, so a long-running server's map stays bounded at
/// O(1) amortised cost per call.
#[derive(Default)]
struct Targets {
    /// Effective canister id and the replica time the entry was added.
    by_request: HashMap<[u8; 32], (Principal, u64)>,
    /// Size at which the next sweep runs.
    sweep_at: usize,
}

impl Targets {
    /// Remembers the first effective canister id `request_id` was sent to (a resubmission is a
    /// no-op, as on the replica).
    fn add(&mut self, replica: &Replica, request_id: [u8; 32], ecid: Principal, now: u64) {
        if self.by_request.len() >= self.sweep_at {
            self.by_request.retain(|id, (_, added)| {
                now.saturating_sub(*added) < TARGET_GRACE_NS || replica.request_sender(id).is_some()
            });
            self.sweep_at = (2 * self.by_request.len()).max(1024);
        }
        self.by_request.entry(request_id).or_insert((ecid, now));
    }

    fn get(&self, request_id: &[u8; 32]) -> Option<Principal> {
        self.by_request.get(request_id).map(|(p, _)| *p)
    }
}

/// The current time for validation: the replica's clock, which the driver keeps at or ahead of
/// the wall clock.
fn now_ns(replica: &Replica) -> u64 {
    let wall = SystemTime::now();
    let t = replica.get_time().max(wall);
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Answers one request under `/api/`. `wake` tells the driver that messages were queued.
pub fn handle(
    replica: &Replica,
    state: &ApiState,
    method: &str,
    path: &str,
    body: &[u8],
    wake: &dyn Fn(),
) -> Response {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "v2", "status"] => {
            if method != "GET" {
                return Response::text(405, "use GET for /api/v2/status");
            }
            status(replica)
        }
        ["api", version, kind @ ("canister" | "subnet"), id, endpoint] => {
            if method != "POST" {
                return Response::text(405, format!("use POST for /{path}"));
            }
            let id = match Principal::from_text(id) {
                Ok(p) => p,
                Err(e) => return Response::text(400, format!("invalid {kind} id in the URL: {e}")),
            };
            if body.len() > MAX_BODY {
                return Response::text(413, "request body too large");
            }
            let v = Verifier {
                now_ns: now_ns(replica),
                root_key_der: &replica.root_key_der(),
            };
            let req = match authenticate(body, &v) {
                Ok(r) => r,
                Err(e @ AuthError::Expiry(_)) => return Response::text(400, e.to_string()),
                Err(e) => {
                    return Response::text(400, format!("Failed to authenticate request: {e}"))
                }
            };
            // The IC counts an ingress message's size as the body it received (the signed CBOR
            // envelope: `SignedIngress::count_bytes()`), refusing more than 2 MiB with 413.
            let limit = canvid_replica::limits::MAX_INGRESS_MESSAGE_BYTES;
            if *endpoint == "call" && body.len() > limit {
                return Response::text(
                    413,
                    canvid_replica::limits::ingress_too_large_message(&req.request_id, body.len()),
                );
            }
            match (*version, *kind, *endpoint) {
                ("v2" | "v3", "canister", "query") => query(replica, id, &req),
                ("v2", "canister", "call") => call(replica, state, id, &req, false, wake),
                ("v3" | "v4", "canister", "call") => call(replica, state, id, &req, true, wake),
                ("v2" | "v3", "canister", "read_state") => {
                    read_state(replica, state, Target::Canister(id), &req)
                }
                ("v2" | "v3", "subnet", "read_state") => {
                    read_state(replica, state, Target::Subnet(id), &req)
                }
                _ => Response::text(404, format!("/{path} is not an endpoint of this replica")),
            }
        }
        _ => Response::text(404, format!("/{path} is not an endpoint of this replica")),
    }
}

fn status(replica: &Replica) -> Response {
    Response::cbor(
        200,
        &map(vec![
            (
                "impl_version",
                text(concat!("canvid-replica ", env!("CARGO_PKG_VERSION"))),
            ),
            ("impl_source", text("canvid embedded replica")),
            ("root_key", Value::Bytes(replica.root_key_der())),
            ("replica_health_status", text("healthy")),
        ]),
    )
}

/// The effective canister id a call to `canister` must be sent to (None: any id will do).
fn effective_canister_id(
    canister: Principal,
    method: &str,
    arg: &[u8],
) -> Result<Option<Principal>, String> {
    if canister != Principal::management_canister() {
        return Ok(Some(canister));
    }
    #[derive(candid::CandidType, candid::Deserialize)]
    struct WithCanisterId {
        canister_id: Principal,
    }
    #[derive(candid::CandidType, candid::Deserialize)]
    struct WithTarget {
        target_canister: Principal,
    }
    match method {
        "provisional_create_canister_with_cycles" => Ok(None),
        "install_chunked_code" => candid::decode_args::<(WithTarget,)>(arg)
            .map(|(a,)| Some(a.target_canister))
            .map_err(|e| format!("install_chunked_code needs a `target_canister` argument: {e}")),
        _ => candid::decode_args::<(WithCanisterId,)>(arg)
            .map(|(a,)| Some(a.canister_id))
            .map_err(|_| {
                format!(
                    "the management canister's `{method}` cannot be called by ingress messages \
                     (its argument has no `canister_id` to route it by)"
                )
            }),
    }
}

fn check_target(
    req: &Authenticated,
    ecid: Principal,
    canister: Principal,
    method: &str,
    arg: &[u8],
) -> Result<(), Response> {
    match effective_canister_id(canister, method, arg) {
        Err(e) => return Err(Response::text(400, e)),
        Ok(Some(expected)) if expected != ecid => {
            return Err(Response::text(
                400,
                format!(
                    "Specified CanisterId {expected} does not match effective canister id in URL {ecid}"
                ),
            ))
        }
        Ok(_) => {}
    }
    // The called canister, not the effective canister id, must be in the chain's targets, also
    // for the management canister: the specification's `E.content.canister_id ∈
    // verify_envelope(..)` and the IC's validator (`tests/refusals.rs`,
    // l10_management_calls_under_targets_follow_the_specification).
    if !req.may_target(&canister) {
        return Err(Response::text(
            400,
            format!("Failed to authenticate request: the delegation chain does not allow calls to {canister}"),
        ));
    }
    Ok(())
}

fn reject_fields(r: &RejectResponse) -> Vec<(&'static str, Value)> {
    vec![
        ("reject_code", Value::Integer(r.reject_code as i128)),
        ("reject_message", text(&r.reject_message)),
        ("error_code", text(&r.error_code)),
    ]
}

fn query(replica: &Replica, ecid: Principal, req: &Authenticated) -> Response {
    let EnvelopeContent::Query {
        canister_id,
        method_name,
        arg,
        ..
    } = &req.content
    else {
        return Response::text(400, "the query endpoint takes requests of type `query`");
    };
    if let Err(r) = check_target(req, ecid, *canister_id, method_name, arg) {
        return r;
    }
    let result = if *canister_id == Principal::management_canister() {
        Err(RejectResponse {
            reject_code: canvid_replica::RejectCode::CanisterReject,
            reject_message: format!(
                "the management canister's `{method_name}` cannot be called as a query here"
            ),
            error_code: "IC0536".into(),
        })
    } else {
        replica.query_call(*canister_id, req.sender, method_name, arg.clone())
    };
    let timestamp = now_ns(replica);
    let mut fields = match &result {
        Ok(reply) => vec![
            ("status", text("replied")),
            ("reply", map(vec![("arg", Value::Bytes(reply.clone()))])),
        ],
        Err(r) => {
            let mut f = vec![("status", text("rejected"))];
            f.extend(reject_fields(r));
            f
        }
    };
    // The node signs `\x0Bic-response` ++ hash of the response fields plus request id and
    // timestamp (interface specification, "Query call"), as agents verify it.
    let mut signed = fields.clone();
    signed.push(("request_id", Value::Bytes(req.request_id.to_vec())));
    signed.push(("timestamp", Value::Integer(timestamp as i128)));
    let hash = match hash_of_map(&map(signed)) {
        Ok(h) => h,
        Err(e) => return Response::text(500, format!("hashing the response: {e}")),
    };
    let mut message = b"\x0Bic-response".to_vec();
    message.extend_from_slice(&hash);
    let signature = replica.node_sign(&message);
    fields.push((
        "signatures",
        Value::Array(vec![map(vec![
            ("timestamp", Value::Integer(timestamp as i128)),
            ("signature", Value::Bytes(signature.to_vec())),
            (
                "identity",
                Value::Bytes(replica.node_id().as_slice().to_vec()),
            ),
        ])]),
    ));
    Response::cbor(200, &map(fields))
}

fn call(
    replica: &Replica,
    state: &ApiState,
    ecid: Principal,
    req: &Authenticated,
    synchronous: bool,
    wake: &dyn Fn(),
) -> Response {
    let EnvelopeContent::Call {
        canister_id,
        method_name,
        arg,
        ..
    } = &req.content
    else {
        return Response::text(400, "the call endpoint takes requests of type `call`");
    };
    if let Err(r) = check_target(req, ecid, *canister_id, method_name, arg) {
        return r;
    }
    if req.queries_only {
        return Response::text(
            400,
            "Failed to authenticate request: the delegation chain permits only queries and read_state",
        );
    }
    if let Ok(mut t) = state.ingress_targets.lock() {
        // The first submission of a request id counts (a resubmission is a no-op).
        t.add(replica, req.request_id, ecid, now_ns(replica));
    }
    if let Err(r) = replica.submit_ingress(
        req.request_id,
        req.sender,
        *canister_id,
        method_name,
        arg.clone(),
    ) {
        let mut fields = vec![("status", text("non_replicated_rejection"))];
        fields.extend(reject_fields(&r));
        return Response::cbor(200, &map(fields));
    }
    wake();
    if !synchronous {
        return Response::accepted();
    }
    let deadline = Instant::now() + SYNC_CALL_TIMEOUT;
    loop {
        match replica.request_status(&req.request_id) {
            RequestStatus::Replied(_) | RequestStatus::Rejected(_) | RequestStatus::Done => break,
            _ if Instant::now() >= deadline => return Response::accepted(),
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    let certificate = replica.read_state_certificate(&[
        vec![b"time".to_vec()],
        vec![b"request_status".to_vec(), req.request_id.to_vec()],
    ]);
    Response::cbor(
        200,
        &map(vec![
            ("status", text("replied")),
            ("certificate", Value::Bytes(certificate)),
        ]),
    )
}

enum Target {
    Canister(Principal),
    Subnet(Principal),
}

fn forbidden(message: String) -> Response {
    Response::text(403, message)
}

/// Authorises each requested path (interface specification, "Request: Read state") and answers
/// with a certificate of the pruned state tree.
fn read_state(
    replica: &Replica,
    state: &ApiState,
    target: Target,
    req: &Authenticated,
) -> Response {
    let EnvelopeContent::ReadState { paths, .. } = &req.content else {
        return Response::text(
            400,
            "the read_state endpoint takes requests of type `read_state`",
        );
    };
    match target {
        Target::Canister(ecid) if !req.may_target(&ecid) => {
            return Response::text(
                400,
                format!("Failed to authenticate request: the delegation chain does not allow requests to {ecid}"),
            )
        }
        Target::Subnet(id) if id != replica.subnet_id() => {
            return Response::text(404, format!("subnet {id} is not this replica's subnet"))
        }
        _ => {}
    }
    let mut request_id: Option<Vec<u8>> = None;
    let mut labels: Vec<Vec<Vec<u8>>> = Vec::with_capacity(paths.len() + 1);
    for path in paths {
        let path: Vec<Vec<u8>> = path.iter().map(|l| l.as_bytes().to_vec()).collect();
        let first = path.first().map(Vec::as_slice);
        match (first, &target) {
            (Some(b"time"), _)
            | (Some(b"subnet"), _)
            | (Some(b"canister_ranges"), _)
            | (Some(b"api_boundary_nodes"), _) => {}
            (Some(b"request_status"), Target::Canister(ecid)) => {
                let Some(id) = path.get(1) else {
                    return forbidden("/request_status must name a request id".into());
                };
                if path.len() > 3 {
                    return forbidden("unknown path under /request_status/<id>".into());
                }
                match &request_id {
                    Some(prev) if prev != id => {
                        return Response::text(
                            400,
                            "all /request_status paths of one read_state request must name the same request id",
                        )
                    }
                    _ => request_id = Some(id.clone()),
                }
                if let Ok(id) = <[u8; 32]>::try_from(id.as_slice()) {
                    if let Some(original) = replica.request_sender(&id) {
                        if original != req.sender {
                            return forbidden(format!(
                                "request {} was sent by another principal: only its sender may read its status",
                                hex::encode(id)
                            ));
                        }
                        let sent_to = state.ingress_targets.lock().ok().and_then(|t| t.get(&id));
                        if sent_to.is_some_and(|t| t != *ecid) {
                            return forbidden(format!(
                                "request {} was sent to another effective canister id",
                                hex::encode(id)
                            ));
                        }
                    }
                }
            }
            (Some(b"canister"), Target::Canister(ecid)) => {
                let cid = path.get(1).and_then(|c| Principal::try_from_slice(c).ok());
                if cid != Some(*ecid) {
                    return forbidden(format!(
                        "/canister paths must name the effective canister id {ecid}"
                    ));
                }
                match path.get(2).map(Vec::as_slice) {
                    Some(b"module_hash") | Some(b"controllers") if path.len() == 3 => {}
                    Some(b"metadata") if path.len() == 4 => {
                        let Ok(name) = std::str::from_utf8(&path[3]) else {
                            return forbidden("metadata names must be UTF-8".into());
                        };
                        if replica.metadata_is_private(*ecid, name.as_bytes())
                            && !replica.get_controllers(*ecid).contains(&req.sender)
                        {
                            return forbidden(format!(
                                "metadata section `{name}` of {ecid} is private: only controllers may read it"
                            ));
                        }
                    }
                    _ => {
                        return forbidden(
                            "only /canister/<id>/module_hash, /controllers and /metadata/<name> can be read"
                                .into(),
                        )
                    }
                }
            }
            _ => {
                return forbidden(format!(
                    "path /{} cannot be read at this endpoint",
                    path.iter()
                        .map(|l| String::from_utf8(l.clone()).unwrap_or_else(|_| hex::encode(l)))
                        .collect::<Vec<_>>()
                        .join("/")
                ))
            }
        }
        labels.push(path);
    }
    // Every certificate carries the time.
    if !labels.iter().any(|p| p.len() == 1 && p[0] == b"time") {
        labels.push(vec![b"time".to_vec()]);
    }
    let certificate = replica.read_state_certificate(&labels);
    Response::cbor(200, &map(vec![("certificate", Value::Bytes(certificate))]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candid::Encode;

    #[test]
    fn targets_of_forgotten_requests_are_swept() {
        let replica = Replica::new();
        let c = Principal::from_text("rrkah-fqaaa-aaaaa-aaaaq-cai").unwrap();
        let mut t = Targets::default();
        // None of these request ids is known to the replica (as once it forgot them).
        for i in 0..1024u32 {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_le_bytes());
            t.add(&replica, id, c, 0);
        }
        assert_eq!(t.by_request.len(), 1024);
        // Within the grace period nothing is swept (a submission may still be on its way).
        t.add(&replica, [0xff; 32], c, TARGET_GRACE_NS - 1);
        assert_eq!(t.by_request.len(), 1025);
        assert_eq!(t.get(&[0xff; 32]), Some(c));
        // The next sweep drops the unknown, old entries and keeps the recent one.
        t.sweep_at = 0;
        t.add(&replica, [0xfe; 32], c, TARGET_GRACE_NS + 1);
        assert_eq!(t.by_request.len(), 2);
        assert_eq!(t.get(&[0xff; 32]), Some(c));
        assert_eq!(t.get(&[0u8; 32]), None);
    }

    #[test]
    fn effective_ids_of_management_calls() {
        let c = Principal::from_text("rrkah-fqaaa-aaaaa-aaaaq-cai").unwrap();
        let m = Principal::management_canister();
        assert_eq!(effective_canister_id(c, "x", &[]).unwrap(), Some(c));
        #[derive(candid::CandidType)]
        struct Arg {
            canister_id: Principal,
            extra: u8,
        }
        let arg = Encode!(&Arg {
            canister_id: c,
            extra: 1
        })
        .unwrap();
        assert_eq!(
            effective_canister_id(m, "canister_status", &arg).unwrap(),
            Some(c)
        );
        assert_eq!(
            effective_canister_id(m, "provisional_create_canister_with_cycles", &[]).unwrap(),
            None
        );
        assert!(effective_canister_id(m, "raw_rand", &Encode!().unwrap()).is_err());
    }

    #[test]
    fn query_signable_matches_ic_transport_types() {
        // The hash this module signs equals the one ic-agent checks.
        use ic_transport_types::{QueryResponse, ReplyResponse, RequestId};
        let request_id = [5u8; 32];
        let response = QueryResponse::Replied {
            reply: ReplyResponse {
                arg: b"DIDL\x00\x00".to_vec(),
            },
            signatures: vec![],
        };
        let expected = response.signable(RequestId::new(&request_id), 42);
        let ours = hash_of_map(&map(vec![
            ("status", text("replied")),
            (
                "reply",
                map(vec![("arg", Value::Bytes(b"DIDL\x00\x00".to_vec()))]),
            ),
            ("request_id", Value::Bytes(request_id.to_vec())),
            ("timestamp", Value::Integer(42)),
        ]))
        .unwrap();
        assert_eq!(&expected[12..], &ours);
        let rejected = QueryResponse::Rejected {
            reject: ic_transport_types::RejectResponse {
                reject_code: ic_transport_types::RejectCode::CanisterError,
                reject_message: "trap".into(),
                error_code: Some("IC0503".into()),
            },
            signatures: vec![],
        };
        let expected = rejected.signable(RequestId::new(&request_id), 7);
        let r = RejectResponse {
            reject_code: canvid_replica::RejectCode::CanisterError,
            reject_message: "trap".into(),
            error_code: "IC0503".into(),
        };
        let mut fields = vec![("status", text("rejected"))];
        fields.extend(reject_fields(&r));
        fields.push(("request_id", Value::Bytes(request_id.to_vec())));
        fields.push(("timestamp", Value::Integer(7)));
        assert_eq!(&expected[12..], &hash_of_map(&map(fields)).unwrap());
    }
}
