//! Cycles budget under attack (issue 15): scripted hostile traffic must not lower a video
//! canister's, the spawn's or the index's balance, except for the one documented exception, the
//! bounded `http_request_update` budget of the video canister (docs/reliability.md).
//!
//! The scenario deploys index + spawn with the mainnet configuration (no `default_quota`; the
//! owner gets a quota of their own), creates and uploads a three-chunk video, then sends as
//! ingress, from the anonymous principal and from a fresh self-authenticating identity per
//! message:
//! - every method name of `candid/{video,spawn,index}.did` (query methods included, sent as
//!   updates) and a few names no interface has, each with an empty argument, a malformed one,
//!   `()`, and one at the ingress size limit ([`max_arg`]);
//! - typed, valid arguments for the methods that move cycles (`create_video`, `top_up`,
//!   `put_chunk`, `change_owner`, `register_video`, ...);
//! - `http_request_update` with every request shape of docs/http.md: the certified ones, the
//!   uncertified errors and the ranges no certified answer holds, at and beyond the 16 KiB cap;
//!   then more uncertifiable requests than the per-minute budget admits.
//!
//! Each message is measured on its own (`cycle_balance` before and after is free): anything
//! refused must cost 0; the allowance for the idle storage burn is computed from
//! `idle_cycles_burned_per_day` and the simulated time that passed. Only `http_request_update`
//! may be accepted, at most [`MAX_HTTP_UPDATES_PER_WINDOW`] per minute, each costing at most
//! [`HTTP_UPDATE_WORST_CASE`].

use std::collections::BTreeMap;
use std::time::Duration;

use canvid_tests::clients::{ok, Video};
use canvid_tests::deploy::{deploy_with, T};
use canvid_tests::http_types::HttpUpdateRequest;
use canvid_tests::{backend_tests, principal, Backend, GenFile, Principal};
use canvid_types::spawn::{CreateVideoArgs, QuotaArgs};
use serde_bytes::ByteBuf;

/// `canvid_video::http::MAX_HTTP_UPDATES_PER_WINDOW`: `http_request_update` calls a video
/// canister accepts per minute.
const MAX_HTTP_UPDATES_PER_WINDOW: usize = 120;
/// `canvid_video::http::MAX_HTTP_UPDATE_CYCLES_PER_WINDOW`: what the accepted calls of a minute
/// may cost together (the canister's estimates are upper bounds of the charges).
const MAX_HTTP_UPDATE_CYCLES_PER_WINDOW: i128 = 1_500_000_000;
/// `canvid_video::guards::MAX_HTTP_UPDATE_ARG_BYTES`.
const MAX_HTTP_UPDATE_ARG_BYTES: usize = 16 * 1024;
/// The ingress limit of one message's argument (ic-notes.md).
const MAX_INGRESS_ARG: usize = 2 * 1024 * 1024;

/// What one accepted `http_request_update` can cost the video canister at most, on a 13-node
/// subnet (ic-notes.md):
/// - ingress: 1.2 M + 2,000 per byte of the argument (≤ 16 KiB, larger ones are refused), the
///   method name and the request envelope (≈ 150 bytes): ≤ 34.3 M;
/// - execution: 5 M + the instructions. The largest answer is one whole chunk (≤ 2,000,000
///   bytes) read from stable memory and candid-encoded: measured on PocketIC 10 at ≈ 110 M
///   cycles of execution for a 1,999,999-byte answer (≈ 54 per byte; the embedded replica
///   charges ≈ 5 M for it, a fidelity gap), ≈ 2 M for a small one. Bounded here by 165 M.
///
/// The reply of an ingress message is not charged. So ≤ 200 M cycles per message (measured
/// worst: 148 M). Per minute the canister accepts what its estimates put at ≤ 1.5 B cycles
/// ([`MAX_HTTP_UPDATE_CYCLES_PER_WINDOW`]).
const HTTP_UPDATE_WORST_CASE: u128 =
    1_200_000 + 2_000 * (MAX_HTTP_UPDATE_ARG_BYTES as u128 + 19 + 150) + 165_000_000;

const CHUNK: u64 = 2_000_000;
const SIZE: u64 = 4_500_000;

/// The method names of the service in `candid/<name>.did`.
fn did_methods(name: &str) -> Vec<String> {
    let path = format!("{}/../candid/{name}.did", env!("CARGO_MANIFEST_DIR"));
    let did = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let service = &did[did.find("service :").expect("a service")..];
    let methods: Vec<String> = service
        .lines()
        .skip(1)
        .filter_map(|l| {
            let l = l.trim();
            let (name, rest) = l.split_once(" : ")?;
            (rest.starts_with('(') && !name.contains(' ')).then(|| name.to_string())
        })
        .collect();
    assert!(methods.len() >= 10, "{path}: only {methods:?}");
    methods
}

/// Names no interface exports (and ic-cdk's candid export, a query).
const UNKNOWN_METHODS: [&str; 5] = [
    "no_such_method",
    "__get_candid_interface_tmp_hack",
    "canister_inspect_message",
    "http_request_update ",
    "x",
];

/// The largest argument `b` takes in one ingress message. The IC (and PocketIC) limit the whole
/// message, envelope included, to 2 MiB: an argument of 2 MiB - 173 bytes or more is refused at
/// submission (`tests/tests/ingress_size.rs`); the embedded replica counts the same bytes.
fn max_arg(_b: &dyn Backend) -> usize {
    MAX_INGRESS_ARG - 512
}

/// The argument shapes every method name is sent with.
fn arg_shapes(max_arg: usize) -> Vec<(&'static str, Vec<u8>)> {
    let mut max = b"DIDL\x01\x6d\x7b\x01\x00".to_vec();
    max.resize(max_arg, 0xa5);
    vec![
        ("empty", vec![]),
        ("malformed", b"DIDL\xff\xff\xff not candid".to_vec()),
        ("unit", candid::encode_args(()).unwrap()),
        ("max size", max),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Video,
    Spawn,
    Index,
}

/// One message and what it did.
struct Sent {
    target: Target,
    what: String,
    /// `None`: answered (the canister executed it); `Some(code)`: refused or rejected.
    refused: Option<String>,
    /// Fall of the target's balance over this message (negative: it rose).
    cost: i128,
    /// Instructions, where the backend measures them (embedded replica).
    instructions: Option<u64>,
}

struct Attack<'a> {
    b: &'a dyn Backend,
    ids: BTreeMap<Target, Principal>,
    sent: Vec<Sent>,
    fresh: u64,
    /// The balances read after the previous message. Only `send` makes the backend execute
    /// anything while an `Attack` is in use (reading a balance runs no round), so they are the
    /// balances before the next message: reading them again would double the calls to PocketIC.
    last_balances: Option<Vec<u128>>,
}

impl Attack<'_> {
    fn fresh(&mut self) -> Principal {
        self.fresh += 1;
        principal(&format!("hostile-fresh-{}", self.fresh))
    }

    fn send(&mut self, target: Target, sender: Principal, method: &str, arg: Vec<u8>, what: &str) {
        let id = self.ids[&target];
        let before: Vec<u128> = self.last_balances.take().unwrap_or_else(|| {
            self.ids
                .values()
                .map(|c| self.b.cycle_balance(*c))
                .collect()
        });
        let (r, cost) = self.b.update_raw_with_cost(id, sender, method, arg);
        let after: Vec<u128> = self
            .ids
            .values()
            .map(|c| self.b.cycle_balance(*c))
            .collect();
        // A message to one canister must not cost another one anything either.
        for ((t, _), (x, y)) in self.ids.iter().zip(before.iter().zip(&after)) {
            if *t != target {
                assert!(
                    y >= x,
                    "{}: {what} to {target:?} cost {t:?} {} cycles",
                    self.b.name(),
                    x - y
                );
            }
        }
        let i = self.ids.keys().position(|t| *t == target).unwrap();
        self.last_balances = Some(after.clone());
        let who = if sender == Principal::anonymous() {
            "anonymous"
        } else {
            "fresh"
        };
        self.sent.push(Sent {
            target,
            what: format!("{target:?} {method} ({what}, {who})"),
            refused: r.err().map(|e| e.error_code),
            cost: before[i] as i128 - after[i] as i128,
            instructions: cost.map(|c| c.instructions),
        });
    }

    /// Every method name with every argument shape, from the anonymous principal and a fresh
    /// identity.
    fn every_method(&mut self, target: Target, did: &str) {
        let mut names = did_methods(did);
        names.extend(UNKNOWN_METHODS.iter().map(|m| m.to_string()));
        for name in &names {
            for (shape, arg) in arg_shapes(max_arg(self.b)) {
                self.send(target, Principal::anonymous(), name, arg.clone(), shape);
                let f = self.fresh();
                self.send(target, f, name, arg, shape);
            }
        }
    }

    fn typed<A: candid::CandidType>(&mut self, target: Target, method: &str, arg: &A) {
        let bytes = candid::encode_one(arg).unwrap();
        self.send(
            target,
            Principal::anonymous(),
            method,
            bytes.clone(),
            "typed",
        );
        let f = self.fresh();
        self.send(target, f, method, bytes, "typed");
    }
}

fn http(method: &str, url: &str, headers: &[(&str, &str)], body: usize) -> HttpUpdateRequest {
    HttpUpdateRequest {
        method: method.into(),
        url: url.into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: ByteBuf::from(vec![b'b'; body]),
    }
}

/// A request padded with one header so that its candid encoding is `total` bytes long.
fn padded(mut req: HttpUpdateRequest, total: usize) -> HttpUpdateRequest {
    req.headers.push(("X-Pad".into(), String::new()));
    let len = candid::encode_one(&req).unwrap().len();
    assert!(len <= total);
    let pad = total - len;
    req.headers.last_mut().unwrap().1 = "p".repeat(pad);
    // The length prefix of the value may have grown by a byte or two.
    while candid::encode_one(&req).unwrap().len() > total {
        req.headers.last_mut().unwrap().1.pop();
    }
    req
}

/// What `inspect_message` must do with an HTTP shape (docs/http.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// The query answers it (certified, or an error an update would repeat): refused.
    Refused,
    /// No certified answer holds it: accepted while the budget lasts.
    Update,
}

/// Every request shape of docs/http.md for a Ready video of three 2,000,000-byte-grid chunks.
fn http_shapes(etag: &str) -> Vec<(String, HttpUpdateRequest, Expect)> {
    use Expect::*;
    let inm = format!("\"{etag}\"");
    let weak = format!("W/\"{etag}\"");
    let list = format!("\"x\", \"{etag}\"");
    let mut v: Vec<(String, HttpUpdateRequest, Expect)> = Vec::new();
    let mut add = |what: &str, req: HttpUpdateRequest, e: Expect| v.push((what.into(), req, e));
    for path in ["/", "/video"] {
        // Certified (docs/http.md "What is in the tree").
        add("GET", http("GET", path, &[], 0), Refused);
        add(
            "GET bytes=0-",
            http("GET", path, &[("Range", "bytes=0-")], 0),
            Refused,
        );
        add(
            "GET bytes=kC-",
            http("GET", path, &[("Range", "bytes=2000000-")], 0),
            Refused,
        );
        add(
            "GET bytes=kC-e_k",
            http("GET", path, &[("Range", "bytes=2000000-3999999")], 0),
            Refused,
        );
        add(
            "GET bytes=kC-(size-1)",
            http("GET", path, &[("Range", "bytes=2000000-4499999")], 0),
            Refused,
        );
        add(
            "GET media seek",
            http(
                "GET",
                path,
                &[("Range", "bytes=2500000-"), ("Sec-Fetch-Dest", "video")],
                0,
            ),
            Refused,
        );
        add("HEAD", http("HEAD", path, &[], 0), Refused);
        add(
            "HEAD with Range",
            http("HEAD", path, &[("Range", "bytes=5-9")], 0),
            Refused,
        );
        add(
            "GET If-None-Match exact",
            http("GET", path, &[("If-None-Match", &inm)], 0),
            Refused,
        );
        for m in ["POST", "PUT", "DELETE", "PATCH"] {
            add(&format!("{m} (405)"), http(m, path, &[], 0), Refused);
        }
        add(
            "OPTIONS (204 preflight)",
            http("OPTIONS", path, &[], 0),
            Refused,
        );
        // Uncertified errors: the query serves them, an update would repeat them.
        add(
            "GET If-None-Match *",
            http("GET", path, &[("If-None-Match", "*")], 0),
            Refused,
        );
        add(
            "GET If-None-Match weak",
            http("GET", path, &[("If-None-Match", &weak)], 0),
            Refused,
        );
        add(
            "GET If-None-Match list",
            http("GET", path, &[("If-None-Match", &list)], 0),
            Refused,
        );
        add("TRACE (405)", http("TRACE", path, &[], 0), Refused);
        add(
            "POST with a body (405)",
            http("POST", path, &[], 100),
            Refused,
        );
        // Ranges no certified answer holds: the update path.
        // A 416 too (docs/http.md: a client resuming past the end gets the verified answer).
        add(
            "GET 416",
            http("GET", path, &[("Range", "bytes=9999999-")], 0),
            Update,
        );
        add(
            "GET bytes=1-",
            http("GET", path, &[("Range", "bytes=1-")], 0),
            Update,
        );
        add(
            "GET bytes=1-2",
            http("GET", path, &[("Range", "bytes=1-2")], 0),
            Update,
        );
        add(
            "GET bytes=kC-M",
            http("GET", path, &[("Range", "bytes=2000000-2000009")], 0),
            Update,
        );
        add(
            "GET bytes=-5",
            http("GET", path, &[("Range", "bytes=-5")], 0),
            Update,
        );
        add(
            "GET Safari media seek",
            http(
                "GET",
                path,
                &[
                    ("Range", "bytes=2500000-"),
                    ("Sec-Fetch-Dest", "video"),
                    ("X-Playback-Session-Id", "1"),
                ],
                0,
            ),
            Update,
        );
    }
    for path in ["/metadata.json", "/poster", "/nowhere", "/video/../x"] {
        add("GET", http("GET", path, &[], 0), Refused);
        add("HEAD", http("HEAD", path, &[], 0), Refused);
        add("POST (405)", http("POST", path, &[], 0), Refused);
    }
    add(
        "GET unparsable URL (400)",
        http("GET", "http://[::1", &[], 0),
        Refused,
    );
    // At the size cap and beyond.
    add(
        "GET bytes=1- padded to 16 KiB",
        padded(
            http("GET", "/video", &[("Range", "bytes=1-")], 0),
            MAX_HTTP_UPDATE_ARG_BYTES,
        ),
        Update,
    );
    add(
        "GET bytes=1- padded to 16 KiB + 1",
        padded(
            http("GET", "/video", &[("Range", "bytes=1-")], 0),
            MAX_HTTP_UPDATE_ARG_BYTES + 1,
        ),
        Refused,
    );
    add(
        "GET padded to 16 KiB (certified)",
        padded(http("GET", "/video", &[], 0), MAX_HTTP_UPDATE_ARG_BYTES),
        Refused,
    );
    add(
        "GET bytes=1- with a 1.9 MB body",
        http("GET", "/video", &[("Range", "bytes=1-")], 1_900_000),
        Refused,
    );
    v
}

fn idle_allowance(per_day: u128, elapsed: Duration) -> u128 {
    (per_day * elapsed.as_nanos()).div_ceil(86_400 * 1_000_000_000)
}

fn hostile_ingress_costs_nothing_but_the_http_update_budget(b: &dyn Backend) {
    // Mainnet configuration: no default quota (docs/deploy.md); the owner has a quota.
    let d = deploy_with(b, None, 100 * T);
    let owner = principal("hostile-owner");
    let sp = d.spawn_client();
    ok(
        "set_quota",
        sp.set_quota(
            d.admin,
            owner,
            QuotaArgs {
                max_videos: 2,
                max_cycles: 10 * T,
            },
        ),
    );
    let args = CreateVideoArgs {
        title: "target".into(),
        description: "the video under attack".into(),
        tags: vec![],
        declared_size: SIZE,
        owner: None,
    };
    let v = ok("create_video", sp.create_video(owner, &args)).canister_id;
    let video = Video::new(b, v);
    let file = GenFile::new(15, SIZE, CHUNK);
    let meta = video.upload(owner, &file);
    let etag = hex::encode(meta.digest.expect("Ready").as_slice());
    // Let the certification tree and any timer finish.
    for _ in 0..5 {
        b.tick();
    }

    let per_day: BTreeMap<Target, u128> = [
        (Target::Video, b.status(v, Some(owner))),
        (Target::Spawn, b.status(d.spawn, Some(d.admin))),
        (Target::Index, b.status(d.index, Some(d.admin))),
    ]
    .into_iter()
    .map(|(t, s)| (t, s.expect("canister_status").idle_cycles_burned_per_day))
    .collect();
    let mut a = Attack {
        b,
        ids: [
            (Target::Video, v),
            (Target::Spawn, d.spawn),
            (Target::Index, d.index),
        ]
        .into_iter()
        .collect(),
        sent: Vec::new(),
        fresh: 0,
        last_balances: None,
    };
    let start_balances: Vec<u128> = a.ids.values().map(|c| b.cycle_balance(*c)).collect();
    let t0 = b.time();

    a.every_method(Target::Video, "video");
    a.every_method(Target::Spawn, "spawn");
    a.every_method(Target::Index, "index");

    // Valid arguments for what moves cycles or state.
    let victim = a.fresh();
    let mut create = args.clone();
    create.title = "sybil".into();
    a.typed(Target::Spawn, "create_video", &create);
    create.owner = Some(owner);
    a.typed(Target::Spawn, "create_video", &create);
    let mut huge = create.clone();
    huge.description = "d".repeat(2_000_000);
    a.typed(Target::Spawn, "create_video", &huge);
    a.typed(
        Target::Spawn,
        "top_up",
        &canvid_types::spawn::TopUpArgs {
            video: v,
            amount: 10 * T,
        },
    );
    a.send(
        Target::Spawn,
        victim,
        "set_quota",
        candid::encode_args((
            victim,
            QuotaArgs {
                max_videos: 1_000,
                max_cycles: 1_000 * T,
            },
        ))
        .unwrap(),
        "typed, for itself",
    );
    a.typed(
        Target::Video,
        "put_chunk",
        &canvid_types::video::ChunkUpload {
            path: None,
            index: 0,
            data: ByteBuf::from(file.chunk(0)),
        },
    );
    a.typed(
        Target::Video,
        "change_owner",
        &canvid_types::video::ChangeOwnerArgs {
            new_owner: victim,
            keep_controllers: None,
        },
    );
    a.typed(
        Target::Video,
        "offer_ownership",
        &canvid_types::video::OfferArgs {
            new_owner: victim,
            keep_controllers: None,
        },
    );
    a.typed(Target::Video, "approve", &Some(victim));
    a.typed(Target::Video, "add_uploader", &victim);
    a.typed(
        Target::Index,
        "register_video",
        &canvid_types::index::VideoRegistration {
            video: v,
            creator: victim,
            owner: victim,
        },
    );
    a.typed(
        Target::Index,
        "report_owner_change",
        &canvid_types::index::OwnerChange {
            new_owner: victim,
            transfer_seq: u64::MAX,
        },
    );

    // Hostile HTTP: every shape, anonymous (as a gateway) and from a fresh identity.
    let shapes = http_shapes(&etag);
    let mut mismatched = Vec::new();
    for (what, req, expect) in &shapes {
        for anonymous in [true, false] {
            let sender = if anonymous {
                Principal::anonymous()
            } else {
                a.fresh()
            };
            a.send(
                Target::Video,
                sender,
                "http_request_update",
                candid::encode_one(req).unwrap(),
                &format!("HTTP {} {} {what}", req.method, req.url),
            );
            let s = a.sent.last().unwrap();
            let got = if s.refused.is_some() {
                Expect::Refused
            } else {
                Expect::Update
            };
            if got != *expect {
                mismatched.push(format!("{}: expected {expect:?}, {:?}", s.what, s.refused));
            }
        }
    }
    assert!(
        mismatched.is_empty(),
        "{}: HTTP shapes not handled as docs/http.md says:\n{}",
        b.name(),
        mismatched.join("\n")
    );
    // Then more uncertifiable requests than the budget admits, within the same minute.
    let off_grid = candid::encode_one(http("GET", "/video", &[("Range", "bytes=1-")], 0)).unwrap();
    for _ in 0..MAX_HTTP_UPDATES_PER_WINDOW + 10 {
        a.send(
            Target::Video,
            Principal::anonymous(),
            "http_request_update",
            off_grid.clone(),
            "HTTP GET /video bytes=1- (budget)",
        );
    }

    let elapsed = b.time().duration_since(t0).unwrap_or_default();
    let end_balances: Vec<u128> = a.ids.values().map(|c| b.cycle_balance(*c)).collect();

    // --- Figures ---
    let name = b.name();
    eprintln!(
        "hostile traffic on {name} ({} s simulated):",
        elapsed.as_secs_f64()
    );
    let mut http_worst: i128 = 0;
    let mut http_worst_instructions: Option<u64> = None;
    for (i, t) in a.ids.keys().enumerate() {
        let mine: Vec<&Sent> = a.sent.iter().filter(|s| s.target == *t).collect();
        let refused = mine.iter().filter(|s| s.refused.is_some()).count();
        let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &mine {
            *codes
                .entry(s.refused.as_deref().unwrap_or("answered"))
                .or_default() += 1;
        }
        let worst = mine.iter().map(|s| s.cost).max().unwrap_or(0);
        let fall = start_balances[i] as i128 - end_balances[i] as i128;
        eprintln!(
            "  {t:?}: {} messages, {refused} refused, {} accepted; balance fell by {fall} \
             cycles; worst message {worst} cycles; outcomes {codes:?}",
            mine.len(),
            mine.len() - refused,
        );
        if *t == Target::Video {
            let mut by_shape: BTreeMap<&str, (i128, Option<u64>)> = BTreeMap::new();
            for s in mine.iter().filter(|s| s.refused.is_none()) {
                let e = by_shape.entry(s.what.as_str()).or_default();
                *e = (e.0.max(s.cost), e.1.max(s.instructions));
            }
            for (what, (cost, instructions)) in by_shape {
                let ins = instructions.map_or("not measured".to_string(), |i| i.to_string());
                eprintln!("    accepted {what}: {cost} cycles, instructions {ins}");
            }
            for s in mine.iter().filter(|s| s.refused.is_none()) {
                http_worst = http_worst.max(s.cost);
                http_worst_instructions = http_worst_instructions.max(s.instructions);
            }
        }
    }
    eprintln!(
        "  per-message worst case: refused 0 cycles; accepted http_request_update {http_worst} \
         cycles measured ({}), {HTTP_UPDATE_WORST_CASE} documented",
        http_worst_instructions.map_or("instructions not measured".into(), |i| format!(
            "{i} instructions"
        )),
    );

    // --- Assertions ---
    for (i, t) in a.ids.keys().enumerate() {
        let idle = idle_allowance(per_day[t], elapsed) as i128;
        let mut accepted_cost: i128 = 0;
        let mut accepted = 0usize;
        for s in a.sent.iter().filter(|s| s.target == *t) {
            match &s.refused {
                // Refused or rejected: it cost nothing (up to the idle burn).
                Some(code) => assert!(
                    s.cost <= idle,
                    "{name}: {} was refused ({code}) but cost {} cycles",
                    s.what,
                    s.cost
                ),
                None => {
                    // Only the video's http_request_update may be accepted, and it is bounded.
                    assert!(
                        *t == Target::Video && s.what.contains("http_request_update"),
                        "{name}: {} was accepted (cost {})",
                        s.what,
                        s.cost
                    );
                    assert!(
                        s.cost as u128 <= HTTP_UPDATE_WORST_CASE,
                        "{name}: {} cost {}, more than the documented worst case {}",
                        s.what,
                        s.cost,
                        HTTP_UPDATE_WORST_CASE
                    );
                    accepted += 1;
                    accepted_cost += s.cost;
                }
            }
        }
        assert!(
            accepted <= MAX_HTTP_UPDATES_PER_WINDOW,
            "{name}: {accepted} http_request_update accepted within a minute"
        );
        assert!(
            accepted_cost <= MAX_HTTP_UPDATE_CYCLES_PER_WINDOW,
            "{name}: the accepted http_request_update of one minute cost {accepted_cost}"
        );
        let fall = start_balances[i] as i128 - end_balances[i] as i128;
        assert!(
            fall <= accepted_cost + idle,
            "{name}: {t:?} fell by {fall}: accepted messages {accepted_cost}, idle burn {idle}"
        );
        assert!(
            fall <= accepted as i128 * HTTP_UPDATE_WORST_CASE as i128 + idle,
            "{name}: {t:?} fell by {fall}"
        );
    }
    // The budget was reached: the last requests were refused.
    let last = a.sent.last().unwrap();
    assert!(
        last.refused.as_deref() == Some("IC0406"),
        "{name}: request over the budget: {:?}",
        last.refused
    );
}

backend_tests!(hostile_ingress_costs_nothing_but_the_http_update_budget);

/// The same HTTP shapes from a client through `canvid-gateway` over TCP (embedded replica
/// only), on the verified and the raw domain, then a flood of uncertifiable requests: only what
/// the gateway turns into `http_request_update` may cost the video, within the budget, each at
/// most [`HTTP_UPDATE_WORST_CASE`].
#[test]
fn hostile_http_through_the_gateway_costs_only_the_update_budget() {
    use canvid_devkit::raw_http::Request;
    use std::sync::Arc;
    let rb = Arc::new(canvid_tests::ReplicaBackend::new());
    let b: &dyn Backend = &*rb;
    let owner = principal("hostile-owner");
    let v = canvid_tests::deploy::standalone_video(b, owner, None, 50 * T);
    let file = GenFile::new(16, SIZE, CHUNK);
    let meta = v.upload(owner, &file);
    let etag = hex::encode(meta.digest.expect("Ready").as_slice());
    for _ in 0..5 {
        b.tick();
    }
    let gw = canvid_gateway::serve_backend(rb.replica.clone(), "127.0.0.1:0".parse().unwrap())
        .expect("start the gateway");
    let port = gw.port();
    let start = b.cycle_balance(v.id);
    let mut sent = 0usize;
    let mut paid = 0usize;
    let mut worst = 0u128;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut send = |req: &HttpUpdateRequest, host: &str| -> u128 {
        let headers: Vec<(&str, &str)> = req
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let before = b.cycle_balance(v.id);
        let r = Request::new(&req.method, &req.url)
            .host(host)
            .headers(&headers)
            .body(&req.body)
            .send(port);
        let cost = before.saturating_sub(b.cycle_balance(v.id));
        sent += 1;
        *statuses.entry(r.status).or_default() += 1;
        if cost > 0 {
            paid += 1;
            worst = worst.max(cost);
        }
        cost
    };
    let verified = format!("{}.localhost:{port}", v.id);
    let raw = format!("{}.raw.localhost:{port}", v.id);
    for (what, req, expect) in http_shapes(&etag) {
        if !req.url.starts_with('/') {
            continue;
        }
        for host in [&verified, &raw] {
            let cost = send(&req, host);
            assert!(
                expect == Expect::Update || cost == 0,
                "{what} through the gateway ({host}) cost the video {cost}"
            );
        }
    }
    let flood = http("GET", "/video", &[("Range", "bytes=1-")], 0);
    let mut flood_statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for _ in 0..MAX_HTTP_UPDATES_PER_WINDOW + 10 {
        let before = b.cycle_balance(v.id);
        let r = Request::get(&flood.url)
            .host(&verified)
            .header("Range", "bytes=1-")
            .send(port);
        let cost = before.saturating_sub(b.cycle_balance(v.id));
        sent += 1;
        *flood_statuses.entry(r.status).or_default() += 1;
        if cost > 0 {
            paid += 1;
            worst = worst.max(cost);
        }
    }
    gw.shutdown();
    let fall = start - b.cycle_balance(v.id);
    eprintln!(
        "hostile HTTP through canvid-gateway: {sent} requests, {paid} became paid updates, \
         video balance fell by {fall} cycles, worst request {worst}; statuses of the shapes \
         {statuses:?}, of the flood {flood_statuses:?}"
    );
    assert!(paid <= MAX_HTTP_UPDATES_PER_WINDOW, "{paid} paid updates");
    assert!(worst <= HTTP_UPDATE_WORST_CASE, "worst request {worst}");
    assert!(fall <= paid as u128 * HTTP_UPDATE_WORST_CASE);
}
