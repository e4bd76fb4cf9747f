//! Model-based property test of the video canister (issue 15), in the style of DFINITY's
//! cycles-ledger tests: the real wasm on the embedded replica is driven by random sequences of
//! endpoint calls from random callers, and after every step it is compared with a small
//! in-memory model of what the canister must have done.
//!
//! **Embedded replica only.** A sequence of 150 steps is about a thousand calls (each step is
//! followed by four to six checking calls): ~2 s in-process on the embedded replica. On PocketIC
//! every call is an HTTP round trip to its server and at least one round there, too slow for
//! thousands of calls per CI run. The PocketIC suites cover the same endpoints one scenario at a
//! time.
//!
//! Steps: `begin_upload` (new, identical resume, invalid declarations), `put_chunk` (valid,
//! duplicate, tampered, wrong size, out-of-range and boundary indices, > 2 MiB ingress),
//! `finish_upload` (complete, incomplete, wrong declared file digest), `reset_upload`,
//! `missing_chunks`, `update_metadata` (valid, too long), `add_uploader`/`remove_uploader`,
//! `approve`, `change_owner`, `offer_ownership`/`accept_ownership`/`cancel_offer`, `set_poster`
//! (an image, a bad MIME type, one byte over the limit, empty),
//! `get_chunk`, `read_range`, `chunk_digests`, upgrades (by the owner, or refused), and raw malformed candid to
//! every method; callers are the owner,
//! uploaders, the operator, strangers and the anonymous principal (whatever the random roles make
//! of the same five principals).
//!
//! Checked after every step:
//! - the outcome is the model's: `Ok`, the typed `Error` variant, an `inspect_message` refusal
//!   (IC0406; IC0503 with an explanation for a query method) for an ingress update that cannot
//!   succeed, or a system reject (malformed candid, an argument over the ingress limit) — never a trap where the model expects a typed answer;
//! - nothing changes on a refusal or a reject (the whole metadata and the uploaders are
//!   compared with the model after every step);
//! - every acknowledged chunk is stored byte-exact (`get_chunk` of one random chunk every step,
//!   of all of them after `finish_upload` and at the end; `read_range` and `chunk_digests`
//!   against the model);
//! - status transitions are legal (Empty → Uploading → Ready, Uploading → Empty by reset only);
//! - the app-level owner and the controllers agree (`{owner, video}`);
//! - the canister's cycle balance never rises, and queries and refused ingress leave it alone.
//!
//! Cases: `CANVID_PROPTEST_CASES` sequences (default 3) of `CANVID_PROPERTY_STEPS` steps
//! (default 150) from random seeds (printed), plus the fixed regression seeds below;
//! `CANVID_PROPERTY_SEED=<n>` replays one sequence.

use std::collections::BTreeMap;

use candid::Principal;
use canvid_tests::clients::{sha256, Answer, Video};
use canvid_tests::deploy::standalone_video;
use canvid_tests::{principal, Backend, BackendExt, ReplicaBackend, Rng};
use canvid_types::protocol::file_digest;
use canvid_types::video::{
    DigestsArgs, MetadataPatch, MissingArgs, MissingChunks, PosterArgs, UploadSpec, VideoMetadata,
    VideoStatus,
};
use serde_bytes::ByteBuf;

/// Seeds that once failed: always run. Seed 2 found two errors of the model while it was
/// written (a record of other fields is a valid all-`opt` `MissingArgs`; an over-long title is
/// `TooLarge`, not `InvalidArgument`); no seed has found a canister bug yet (about 18,000 random
/// steps run while writing it). Add a failing seed here once understood.
const REGRESSION_SEEDS: &[u64] = &[1, 2];

const CYCLES: u128 = 50_000_000_000_000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_endpoint_sequences_agree_with_the_model() {
    let steps = env_u64("CANVID_PROPERTY_STEPS", 150) as usize;
    let seeds: Vec<u64> = match std::env::var("CANVID_PROPERTY_SEED") {
        Ok(s) => vec![s.parse().expect("CANVID_PROPERTY_SEED is a u64")],
        Err(_) => {
            let random = env_u64("CANVID_PROPTEST_CASES", 3);
            let base = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            let mut r = Rng::new(base);
            REGRESSION_SEEDS
                .iter()
                .copied()
                .chain((0..random).map(|_| r.next_u64()))
                .collect()
        }
    };
    let b = ReplicaBackend::new();
    for seed in seeds {
        eprintln!("properties: seed {seed} ({steps} steps)");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_sequence(&b, seed, steps)
        }));
        if let Err(panic) = outcome {
            eprintln!(
                "properties: FAILED with seed {seed}: replay with CANVID_PROPERTY_SEED={seed} \
                 and keep it in REGRESSION_SEEDS once fixed"
            );
            std::panic::resume_unwind(panic);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
struct Decl {
    spec: UploadSpec,
    count: u32,
}

impl Decl {
    fn chunk_len(&self, i: u32) -> u64 {
        let cs = self.spec.chunk_size as u64;
        (self.spec.total_size - i as u64 * cs).min(cs)
    }
}

#[derive(Clone, Debug)]
struct Model {
    id: Principal,
    owner: Principal,
    uploaders: Vec<Principal>,
    operator: Option<Principal>,
    title: String,
    decl: Option<Decl>,
    /// Acknowledged chunks, as sent.
    chunks: BTreeMap<u32, Vec<u8>>,
    ready: Option<[u8; 32]>,
    transfer_seq: u64,
    /// (new owner, offered by)
    offer: Option<(Principal, Principal)>,
    /// The bytes the next valid puts send: chunk `i` of the declared file.
    file_seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Owner,
    Uploader,
    Operator,
    Other,
}

impl Model {
    fn role(&self, p: Principal) -> Role {
        if p == self.owner {
            Role::Owner
        } else if self.uploaders.contains(&p) {
            Role::Uploader
        } else if self.operator == Some(p) {
            Role::Operator
        } else {
            Role::Other
        }
    }
    fn status(&self) -> VideoStatus {
        match (&self.decl, &self.ready) {
            (None, _) => VideoStatus::Empty,
            (Some(_), None) => VideoStatus::Uploading,
            (Some(_), Some(_)) => VideoStatus::Ready,
        }
    }
    fn may_upload(&self, p: Principal) -> bool {
        matches!(self.role(p), Role::Owner | Role::Uploader)
    }
    fn may_transfer(&self, p: Principal) -> bool {
        p == self.owner || self.operator == Some(p)
    }
    fn may_read(&self, p: Principal) -> bool {
        self.status() == VideoStatus::Ready || self.may_upload(p)
    }
    /// The declared file's chunk `i` (what an honest uploader sends).
    fn good_chunk(&self, d: &Decl, i: u32) -> Vec<u8> {
        let mut r = Rng::new(self.file_seed ^ (u64::from(i) << 32) ^ 0x5eed);
        let mut v = vec![0u8; d.chunk_len(i) as usize];
        r.fill(&mut v);
        v
    }
    fn bad_new_owner(&self, to: Principal) -> bool {
        to == Principal::anonymous() || to == self.owner || to == self.id
    }
    fn commit_transfer(&mut self, to: Principal) {
        self.owner = to;
        self.transfer_seq += 1;
        self.operator = None;
        self.uploaders.clear();
        self.offer = None;
    }
}

/// What the model expects of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    /// The typed error variant.
    Err(&'static str),
    /// `inspect_message` refuses the ingress message (IC0406).
    Refused,
    /// The system rejects it (a trap decoding the argument, or an ingress over the limit).
    Rejected,
}

/// What happened.
#[derive(Clone, Debug)]
enum Got {
    Ok,
    Err(canvid_types::Error),
    Rejected(canvid_tests::Reject),
}

fn variant(e: &canvid_types::Error) -> String {
    let s = format!("{e:?}");
    s.split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_string()
}

fn got<T>(a: &Answer<T>) -> Got {
    match a {
        Ok(Ok(_)) => Got::Ok,
        Ok(Err(e)) => Got::Err(e.clone()),
        Err(r) => Got::Rejected(r.clone()),
    }
}

thread_local! {
    /// Outcomes seen per call, for the summary each sequence prints (coverage at a glance).
    static SEEN: std::cell::RefCell<BTreeMap<String, usize>> = Default::default();
}

fn agree(step: usize, what: &str, expect: &Expect, got: &Got) {
    let name = what.split(' ').next().unwrap_or(what);
    let outcome = match got {
        Got::Ok => "ok".to_string(),
        Got::Err(e) => variant(e),
        Got::Rejected(r) => r.error_code.clone(),
    };
    SEEN.with(|s| {
        *s.borrow_mut()
            .entry(format!("{name}:{outcome}"))
            .or_default() += 1
    });
    let fine = match (expect, got) {
        (Expect::Ok, Got::Ok) => true,
        (Expect::Err(v), Got::Err(e)) => *v == variant(e),
        (Expect::Refused, Got::Rejected(r)) => r.error_code == "IC0406",
        (Expect::Rejected, Got::Rejected(r)) => r.error_code != "IC0406",
        _ => false,
    };
    assert!(
        fine,
        "step {step}: {what}: the model expects {expect:?}, the canister answered {got:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// A sequence
// ---------------------------------------------------------------------------------------------

const UPDATE_METHODS: &[&str] = &[
    "begin_upload",
    "put_chunk",
    "update_metadata",
    "add_uploader",
    "remove_uploader",
    "change_owner",
    "offer_ownership",
    "set_poster",
];
// Not `approve`: its argument is an `opt`, and candid decodes a value of another type (or a
// missing argument) as `null`, a valid call.
const QUERY_METHODS_WITH_ARGS: &[&str] = &["get_chunk", "read_range", "missing_chunks"];

fn run_sequence(b: &ReplicaBackend, seed: u64, steps: usize) {
    let mut r = Rng::new(seed);
    let people: Vec<Principal> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|n| principal(n))
        .chain([Principal::anonymous()])
        .collect();
    let first_owner = people[0];
    let v = standalone_video(b, first_owner, None, CYCLES);
    let mut m = Model {
        id: v.id,
        owner: first_owner,
        uploaders: vec![],
        operator: None,
        title: "test video".into(),
        decl: None,
        chunks: BTreeMap::new(),
        ready: None,
        transfer_seq: 0,
        offer: None,
        file_seed: r.next_u64(),
    };
    let mut balance = b.cycle_balance(v.id);
    check_state(b, &v, &m, 0, &mut r);
    for step in 1..=steps {
        // Half the calls from the owner, a fifth from someone holding a role, the rest from
        // anyone (strangers and the anonymous principal included).
        let holders: Vec<Principal> = m.uploaders.iter().copied().chain(m.operator).collect();
        let caller = match r.below(10) {
            0..=4 => m.owner,
            5 | 6 if !holders.is_empty() => holders[r.below(holders.len() as u64) as usize],
            _ => people[r.below(people.len() as u64) as usize],
        };
        let other = people[r.below(people.len() as u64) as usize];
        let before = m.status();
        let query = one_step(b, &v, &mut m, &mut r, step, caller, other);
        let after = m.status();
        assert!(
            before == after
                || matches!(
                    (before, after),
                    (VideoStatus::Empty, VideoStatus::Uploading)
                        | (VideoStatus::Uploading, VideoStatus::Ready)
                        | (VideoStatus::Uploading, VideoStatus::Empty)
                ),
            "step {step}: illegal transition {before:?} -> {after:?}"
        );
        let now = b.cycle_balance(v.id);
        assert!(
            now <= balance,
            "step {step}: the balance rose from {balance} to {now}"
        );
        if let Some(refused_or_query) = query {
            assert_eq!(
                now, balance,
                "step {step}: {refused_or_query} cost the canister cycles"
            );
        }
        balance = now;
        check_state(b, &v, &m, step, &mut r);
    }
    // Every acknowledged chunk, byte-exact.
    check_all_chunks(&v, &m, steps);
    let seen = SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()));
    eprintln!(
        "properties: seed {seed}: final status {:?}, {} transfers, outcomes {seen:?}",
        m.status(),
        m.transfer_seq
    );
}

/// Runs one random step. Returns `Some(what)` when the step must cost the canister nothing (a
/// query, or ingress refused by `inspect_message`).
fn one_step(
    b: &ReplicaBackend,
    v: &Video,
    m: &mut Model,
    r: &mut Rng,
    step: usize,
    caller: Principal,
    other: Principal,
) -> Option<String> {
    let kind = r.below(100);
    match kind {
        // begin_upload
        0..=11 => {
            let spec = match (r.below(6), &m.decl) {
                (0, Some(d)) => d.spec.clone(),
                (1, _) => UploadSpec {
                    mime_type: "text/html".into(),
                    ..new_spec(r, m)
                },
                (2, _) => UploadSpec {
                    total_size: 0,
                    ..new_spec(r, m)
                },
                (3, _) => UploadSpec {
                    chunk_size: 0,
                    ..new_spec(r, m)
                },
                _ => new_spec(r, m),
            };
            let count = if spec.chunk_size == 0 {
                0
            } else {
                spec.total_size.div_ceil(spec.chunk_size as u64) as u32
            };
            let expect = if !m.may_upload(caller) || m.status() == VideoStatus::Ready {
                Expect::Refused
            } else if !spec.mime_type.starts_with("video/")
                || spec.total_size == 0
                || spec.chunk_size == 0
            {
                Expect::Err("InvalidArgument")
            } else if m.decl.as_ref().is_some_and(|d| d.spec == spec) {
                Expect::Ok
            } else if m.decl.is_some() && !m.chunks.is_empty() {
                Expect::Err("Conflict")
            } else {
                Expect::Ok
            };
            let a = v.begin_upload(caller, &spec);
            agree(step, "begin_upload", &expect, &got(&a));
            let refused = expect == Expect::Refused;
            if expect == Expect::Ok && m.decl.as_ref().is_none_or(|d| d.spec != spec) {
                m.decl = Some(Decl { spec, count });
                m.chunks.clear();
                m.file_seed = r.next_u64();
            }
            refused.then(|| "a refused begin_upload".into())
        }
        // put_chunk
        12..=44 => {
            let Some(d) = m.decl.clone() else {
                let a = v.put_chunk(caller, r.below(3) as u32, vec![1, 2, 3]);
                let expect = if !m.may_upload(caller) {
                    Expect::Refused
                } else {
                    Expect::Err("NotReady")
                };
                agree(step, "put_chunk without a declaration", &expect, &got(&a));
                return (expect == Expect::Refused).then(|| "a refused put_chunk".into());
            };
            let index = match r.below(10) {
                0 => d.count,
                1 => u32::MAX,
                2 => d.count.saturating_sub(1),
                // A duplicate of an acknowledged chunk, if any.
                3 if !m.chunks.is_empty() => *m
                    .chunks
                    .keys()
                    .nth(r.below(m.chunks.len() as u64) as usize)
                    .unwrap(),
                // Mostly a missing chunk, as an uploader would send.
                4..=7 if m.chunks.len() < d.count as usize => {
                    (0..d.count).find(|i| !m.chunks.contains_key(i)).unwrap()
                }
                _ => r.below(d.count as u64) as u32,
            };
            let in_range = index < d.count;
            let good = if in_range {
                m.good_chunk(&d, index)
            } else {
                vec![7; 10]
            };
            let (data, tampered, oversized) = match r.below(20) {
                0 => (vec![0u8; 2_100_000], false, true),
                1 | 2 => {
                    let mut x = good.clone();
                    x.push(0);
                    (x, false, false)
                }
                3 if good.len() > 1 => (good[1..].to_vec(), false, false),
                4 | 5 if !good.is_empty() => {
                    let mut x = good.clone();
                    let at = r.below(x.len() as u64) as usize;
                    x[at] ^= 0x40;
                    (x, true, false)
                }
                _ => (good.clone(), false, false),
            };
            let expect = if oversized {
                Expect::Rejected
            } else if !m.may_upload(caller) || m.status() == VideoStatus::Ready {
                Expect::Refused
            } else if !in_range {
                Expect::Err("ChunkOutOfRange")
            } else if data.len() as u64 != d.chunk_len(index) {
                Expect::Err("WrongChunkSize")
            } else if tampered && d.spec.chunk_digests.is_some() {
                Expect::Err("WrongDigest")
            } else {
                Expect::Ok
            };
            let a = v.put_chunk(caller, index, data.clone());
            agree(step, &format!("put_chunk {index}"), &expect, &got(&a));
            if let Ok(Ok(receipt)) = &a {
                assert_eq!(receipt.sha256, sha256(&data), "step {step}: receipt digest");
                m.chunks.insert(index, data);
                assert_eq!(receipt.uploaded_chunks as usize, m.chunks.len());
            }
            if oversized {
                return Some("an argument over the ingress limit".into());
            }
            (expect == Expect::Refused).then(|| "a refused put_chunk".into())
        }
        // finish_upload
        45..=50 => {
            let expect = if !m.may_upload(caller) || m.status() == VideoStatus::Ready {
                Expect::Refused
            } else {
                match &m.decl {
                    None => Expect::Err("NotReady"),
                    Some(d) if m.chunks.len() as u32 != d.count => Expect::Err("Incomplete"),
                    Some(d) => {
                        let digest = file_digest(m.chunks.values().map(|c| {
                            let mut h = [0u8; 32];
                            h.copy_from_slice(&sha256(c));
                            h
                        }));
                        match &d.spec.file_digest {
                            Some(want) if want.as_slice() != digest => Expect::Err("WrongDigest"),
                            _ => Expect::Ok,
                        }
                    }
                }
            };
            let a = v.finish_upload(caller);
            agree(step, "finish_upload", &expect, &got(&a));
            if let Ok(Ok(meta)) = &a {
                let mut d = [0u8; 32];
                d.copy_from_slice(meta.digest.as_ref().expect("a Ready video has a digest"));
                m.ready = Some(d);
                check_all_chunks(v, m, step);
            }
            (expect == Expect::Refused).then(|| "a refused finish_upload".into())
        }
        // reset_upload
        51..=53 => {
            let expect = if caller != m.owner {
                Expect::Refused
            } else if m.status() == VideoStatus::Ready {
                Expect::Err("AlreadyFinished")
            } else {
                Expect::Ok
            };
            let a = b
                .update::<_, (canvid_types::Result<VideoMetadata>,)>(
                    v.id,
                    caller,
                    "reset_upload",
                    (),
                )
                .map(|(x,)| x);
            agree(step, "reset_upload", &expect, &got(&a));
            if expect == Expect::Ok {
                m.decl = None;
                m.chunks.clear();
            }
            (expect == Expect::Refused).then(|| "a refused reset_upload".into())
        }
        // missing_chunks (query)
        54..=57 => {
            let start = r.below(60) as u32;
            let limit = [None, Some(0), Some(1), Some(5), Some(u32::MAX)][r.below(5) as usize];
            let args = MissingArgs {
                path: None,
                start: Some(start),
                limit,
            };
            let a: Answer<MissingChunks> = v.missing_chunks(caller, &args);
            let expect = if !m.may_upload(caller) {
                Expect::Err("NotAuthorized")
            } else if m.decl.is_none() {
                Expect::Err("NotReady")
            } else {
                Expect::Ok
            };
            agree(step, "missing_chunks", &expect, &got(&a));
            if let (Ok(Ok(page)), Some(d)) = (&a, &m.decl) {
                let lim = limit.unwrap_or(10_000).clamp(1, 10_000) as usize;
                let want: Vec<u32> = (start..d.count)
                    .filter(|i| !m.chunks.contains_key(i))
                    .take(lim)
                    .collect();
                assert_eq!(page.missing, want, "step {step}: missing_chunks {args:?}");
                assert_eq!(
                    page.missing_count as usize,
                    d.count as usize - m.chunks.len()
                );
            }
            Some("missing_chunks".into())
        }
        // update_metadata
        58..=61 => {
            let long = r.below(4) == 0;
            let title = if long {
                "x".repeat(300)
            } else {
                format!("title {}", r.below(1000))
            };
            let patch = MetadataPatch {
                title: Some(title.clone()),
                ..Default::default()
            };
            let expect = if caller != m.owner {
                Expect::Refused
            } else if long {
                Expect::Err("TooLarge")
            } else {
                Expect::Ok
            };
            let a = v.update_metadata(caller, &patch);
            agree(step, "update_metadata", &expect, &got(&a));
            if expect == Expect::Ok {
                m.title = title;
            }
            (expect == Expect::Refused).then(|| "a refused update_metadata".into())
        }
        // add_uploader / remove_uploader
        62..=69 => {
            let add = r.below(3) != 0;
            let expect = if caller != m.owner {
                Expect::Refused
            } else if add && other == Principal::anonymous() {
                Expect::Err("InvalidArgument")
            } else {
                Expect::Ok
            };
            let a: Answer<()> = if add {
                v.add_uploader(caller, other)
            } else {
                b.update1(v.id, caller, "remove_uploader", &other)
            };
            agree(step, "add/remove_uploader", &expect, &got(&a));
            if expect == Expect::Ok {
                if add {
                    if other != m.owner && !m.uploaders.contains(&other) {
                        m.uploaders.push(other);
                    }
                } else {
                    m.uploaders.retain(|u| *u != other);
                }
            }
            (expect == Expect::Refused).then(|| "a refused uploader change".into())
        }
        // approve
        70..=73 => {
            let op = (r.below(4) != 0).then_some(other);
            let expect = if caller != m.owner {
                Expect::Refused
            } else if op == Some(Principal::anonymous()) {
                Expect::Err("InvalidArgument")
            } else {
                Expect::Ok
            };
            let a = v.approve(caller, op);
            agree(step, "approve", &expect, &got(&a));
            if expect == Expect::Ok {
                m.operator = op;
            }
            (expect == Expect::Refused).then(|| "a refused approve".into())
        }
        // change_owner / offer_ownership / cancel_offer
        74..=79 => {
            let which = r.below(3);
            let expect = if !m.may_transfer(caller) {
                Expect::Refused
            } else if which != 2 && m.bad_new_owner(other) {
                Expect::Err("InvalidArgument")
            } else {
                Expect::Ok
            };
            let (name, g) = match which {
                0 => ("change_owner", got(&v.change_owner(caller, other))),
                1 => (
                    "offer_ownership",
                    got(&v.offer_ownership(caller, other, None)),
                ),
                _ => ("cancel_offer", got(&v.cancel_offer(caller))),
            };
            agree(step, name, &expect, &g);
            if expect == Expect::Ok {
                match which {
                    0 => m.commit_transfer(other),
                    1 => m.offer = Some((other, caller)),
                    _ => m.offer = None,
                }
            }
            (expect == Expect::Refused).then(|| format!("a refused {name}"))
        }
        // accept_ownership, mostly by the principal an offer names
        80..=82 => {
            let caller = match m.offer {
                Some((to, _)) if r.below(3) != 0 => to,
                _ => caller,
            };
            let expect = match m.offer {
                Some((to, by)) if to == caller && m.may_transfer(by) => Expect::Ok,
                _ => Expect::Refused,
            };
            let a = v.accept_ownership(caller);
            agree(step, "accept_ownership", &expect, &got(&a));
            if expect == Expect::Ok {
                m.commit_transfer(caller);
            }
            (expect == Expect::Refused).then(|| "a refused accept_ownership".into())
        }
        // set_poster: an image, a bad MIME type, one byte over the limit (still under the
        // ingress limit), or empty (clears it)
        83..=84 => {
            let bad_mime = r.below(3) == 0;
            let data = match r.below(6) {
                0 => vec![0u8; 2_000_001],
                1 => vec![],
                _ => vec![0x89, b'P', b'N', b'G', r.below(256) as u8],
            };
            let expect = if caller != m.owner {
                Expect::Refused
            } else if data.len() > 2_000_000 {
                Expect::Err("TooLarge")
            } else if bad_mime && !data.is_empty() {
                Expect::Err("InvalidArgument")
            } else {
                Expect::Ok
            };
            let args = PosterArgs {
                mime_type: if bad_mime { "text/html" } else { "image/png" }.into(),
                data: ByteBuf::from(data),
            };
            let a: Answer<()> = b.update1(v.id, caller, "set_poster", &args);
            agree(step, "set_poster", &expect, &got(&a));
            (expect == Expect::Refused).then(|| "a refused set_poster".into())
        }
        // get_chunk / read_range (queries)
        85..=92 => {
            read_step(v, m, r, step, caller);
            Some("a read".into())
        }
        // An upgrade to the same module, by a controller (the owner) or not: the state must
        // survive it exactly (checked after the step), or stay as it was when refused.
        93..=94 => {
            let by = if r.below(3) == 0 { caller } else { m.owner };
            let arg = candid::encode_args(()).unwrap();
            let res = b.upgrade(v.id, canvid_tests::wasm::video_gz(), arg, Some(by));
            if by == m.owner {
                res.unwrap_or_else(|e| panic!("step {step}: upgrade by the owner: {e}"));
            } else {
                res.expect_err("an upgrade by a non-controller");
            }
            None
        }
        // Malformed candid to a method, or a query method sent as ingress.
        _ => {
            let arg = match r.below(3) {
                0 => b"DIDL\x01".to_vec(),
                1 => {
                    let mut x = b"DIDL".to_vec();
                    for _ in 0..r.below(40) {
                        x.push(r.below(256) as u8);
                    }
                    x
                }
                // A value of another type. (Not a record: a record of other fields is a valid
                // `MissingArgs` or `MetadataPatch`, whose fields are all `opt`.)
                _ => candid::encode_one("nonsense").unwrap(),
            };
            if r.below(4) == 0 {
                let method = QUERY_METHODS_WITH_ARGS[r.below(3) as usize];
                let q = b.query_raw(v.id, caller, method, arg.clone());
                assert!(
                    q.is_err(),
                    "step {step}: {method} accepted malformed candid {arg:?}"
                );
                // The same as ingress: a query method is always refused, by inspect_message's
                // trap that tells the caller to query it (canisters/video/src/guards.rs).
                let u = b.update_raw(v.id, caller, method, arg);
                let e = u.expect_err("a query method as ingress");
                assert_eq!(
                    e.error_code, "IC0503",
                    "step {step}: {method} as ingress: {e}"
                );
                assert!(
                    e.message.contains(&format!("`{method}` is a query")),
                    "step {step}: {method} as ingress: {e}"
                );
                return Some("malformed queries".into());
            }
            let method = UPDATE_METHODS[r.below(UPDATE_METHODS.len() as u64) as usize];
            let may = match method {
                "begin_upload" | "put_chunk" => {
                    m.may_upload(caller) && m.status() != VideoStatus::Ready
                }
                "change_owner" | "offer_ownership" => m.may_transfer(caller),
                _ => caller == m.owner,
            };
            let expect = if may {
                Expect::Rejected
            } else {
                Expect::Refused
            };
            let a = b.update_raw(v.id, caller, method, arg);
            let g = match a {
                Ok(bytes) => panic!("step {step}: {method} accepted malformed candid: {bytes:?}"),
                Err(e) => Got::Rejected(e),
            };
            agree(step, &format!("malformed {method}"), &expect, &g);
            (expect == Expect::Refused).then(|| format!("a refused malformed {method}"))
        }
    }
}

/// A declaration of at most 50 chunks (under the 64-chunk upload window: `Busy` is its own
/// scenario in upload.rs), sometimes with chunk digests, sometimes a file digest (right or not).
fn new_spec(r: &mut Rng, m: &Model) -> UploadSpec {
    let chunk_size = 1 + r.below(4_000) as u32;
    // Mostly a few chunks (so that uploads finish within a sequence), sometimes up to 50.
    let max_chunks = if r.below(4) == 0 { 50 } else { 6 };
    let total_size = 1 + r.below(chunk_size as u64 * max_chunks);
    let count = total_size.div_ceil(chunk_size as u64) as u32;
    let tmp = Decl {
        spec: UploadSpec {
            path: None,
            rendition: None,
            mime_type: "video/mp4".into(),
            total_size,
            chunk_size,
            chunk_digests: None,
            file_digest: None,
            duration_ms: None,
            encryption: None,
        },
        count,
    };
    // The chunks an honest uploader of this declaration sends: those of the *next* file seed
    // are not known yet, so the digests describe a file of this model's current seed; the
    // model switches to it only if the declaration is accepted. Keep it simple: derive the
    // digests from a fresh model copy with the seed it will get.
    let with_digests = r.below(3) == 0;
    let file_digest_kind = r.below(4);
    let mut spec = tmp.spec.clone();
    if with_digests || file_digest_kind > 0 {
        let mut probe = m.clone();
        probe.file_seed = peek_seed(r);
        let digests: Vec<[u8; 32]> = (0..count)
            .map(|i| {
                let mut h = [0u8; 32];
                h.copy_from_slice(&sha256(&probe.good_chunk(&tmp, i)));
                h
            })
            .collect();
        if with_digests {
            spec.chunk_digests = Some(digests.iter().map(|d| ByteBuf::from(d.to_vec())).collect());
        }
        match file_digest_kind {
            1 => spec.file_digest = Some(ByteBuf::from(file_digest(digests).to_vec())),
            2 => spec.file_digest = Some(ByteBuf::from(vec![0xAB; 32])),
            _ => {}
        }
    }
    spec
}

/// The value `r.next_u64()` will return next, without consuming it.
fn peek_seed(r: &Rng) -> u64 {
    r.clone().next_u64()
}

fn read_step(v: &Video, m: &Model, r: &mut Rng, step: usize, caller: Principal) {
    let readable = m.may_read(caller);
    let which = r.below(5);
    if which == 4 {
        let count = m.decl.as_ref().map_or(3, |d| d.count);
        let start = match r.below(4) {
            0 => count,
            1 => count + 1,
            2 => u32::MAX,
            _ => r.below(count as u64) as u32,
        };
        let limit = [None, Some(0), Some(1), Some(3), Some(u32::MAX)][r.below(5) as usize];
        let args = DigestsArgs {
            path: None,
            start,
            limit,
        };
        let a = v.chunk_digests(caller, &args);
        let expect = if !readable || m.decl.is_none() {
            Expect::Err("NotReady")
        } else if start > count {
            Expect::Err("ChunkOutOfRange")
        } else {
            Expect::Ok
        };
        agree(step, &format!("chunk_digests {args:?}"), &expect, &got(&a));
        if let Ok(Ok(page)) = a {
            let lim = limit.unwrap_or(10_000).clamp(1, 10_000);
            let end = start.saturating_add(lim).min(count);
            let want: Vec<Option<ByteBuf>> = (start..end)
                .map(|i| m.chunks.get(&i).map(|c| sha256(c)))
                .collect();
            assert_eq!(page.digests, want, "step {step}: chunk_digests {args:?}");
            assert_eq!(page.next, (end < count).then_some(end), "step {step}");
        }
    } else if which < 2 {
        let count = m.decl.as_ref().map_or(3, |d| d.count);
        let index = match r.below(4) {
            0 => count,
            1 => u32::MAX,
            _ => r.below(count.max(1) as u64) as u32,
        };
        let a = v.get_chunk(caller, index);
        // Not readable by this caller yet, or nothing declared: NotReady either way.
        let expect = if !readable || m.decl.is_none() {
            Expect::Err("NotReady")
        } else if index >= count {
            Expect::Err("ChunkOutOfRange")
        } else if !m.chunks.contains_key(&index) {
            Expect::Err("NotFound")
        } else {
            Expect::Ok
        };
        agree(step, &format!("get_chunk {index}"), &expect, &got(&a));
        if let Ok(Ok(bytes)) = a {
            assert_eq!(
                bytes.as_slice(),
                m.chunks[&index].as_slice(),
                "step {step}: chunk {index} changed"
            );
        }
    } else {
        let total = m.decl.as_ref().map_or(10, |d| d.spec.total_size);
        let (offset, length) = match r.below(6) {
            0 => (total, 1),
            1 => (u64::MAX, 2),
            2 => (0, 2_000_001),
            3 => (total, 0),
            _ => {
                let o = r.below(total);
                (o, r.below(total - o + 1))
            }
        };
        let a = v.read_range(caller, offset, length);
        let expect = match &m.decl {
            _ if !readable => Expect::Err("NotReady"),
            None => Expect::Err("NotReady"),
            Some(_) if length > 2_000_000 => Expect::Err("TooLarge"),
            Some(d)
                if offset
                    .checked_add(length)
                    .is_none_or(|e| e > d.spec.total_size) =>
            {
                Expect::Err("InvalidArgument")
            }
            Some(_) if length == 0 => Expect::Ok,
            Some(d) => {
                let cs = d.spec.chunk_size as u64;
                let all = (offset / cs..=(offset + length - 1) / cs)
                    .all(|i| m.chunks.contains_key(&(i as u32)));
                if all {
                    Expect::Ok
                } else {
                    Expect::Err("NotFound")
                }
            }
        };
        agree(
            step,
            &format!("read_range {offset}+{length}"),
            &expect,
            &got(&a),
        );
        if let (Ok(Ok(bytes)), Some(d)) = (a, &m.decl) {
            let cs = d.spec.chunk_size as u64;
            let want: Vec<u8> = (offset..offset + length)
                .map(|at| m.chunks[&((at / cs) as u32)][(at % cs) as usize])
                .collect();
            assert!(
                bytes.as_slice() == want.as_slice(),
                "step {step}: read_range {offset}+{length} differs from the acknowledged chunks"
            );
        }
    }
}

/// Metadata, uploaders and controllers against the model, and one acknowledged chunk.
fn check_state(b: &ReplicaBackend, v: &Video, m: &Model, step: usize, r: &mut Rng) {
    let meta = v.metadata();
    let ctx = format!("step {step}: metadata {meta:?} vs model {m:?}");
    assert_eq!(meta.status, m.status(), "{ctx}");
    assert_eq!(meta.owner, m.owner, "{ctx}");
    assert_eq!(meta.operator, m.operator, "{ctx}");
    assert_eq!(meta.title, m.title, "{ctx}");
    assert_eq!(meta.transfer_seq, m.transfer_seq, "{ctx}");
    assert_eq!(
        meta.pending_offer
            .as_ref()
            .map(|o| (o.new_owner, o.offered_by)),
        m.offer,
        "{ctx}"
    );
    match &m.decl {
        None => assert_eq!((meta.size, meta.uploaded_chunks), (0, 0), "{ctx}"),
        Some(d) => {
            assert_eq!(meta.size, d.spec.total_size, "{ctx}");
            assert_eq!(meta.chunk_size, d.spec.chunk_size, "{ctx}");
            assert_eq!(meta.chunk_count, d.count, "{ctx}");
            assert_eq!(meta.uploaded_chunks as usize, m.chunks.len(), "{ctx}");
            let bytes: usize = m.chunks.values().map(Vec::len).sum();
            assert_eq!(meta.uploaded_bytes as usize, bytes, "{ctx}");
        }
    }
    assert_eq!(
        meta.digest.as_ref().map(|d| d.to_vec()),
        m.ready.filter(|_| m.decl.is_some()).map(|d| d.to_vec()),
        "{ctx}"
    );
    let uploaders: (Vec<Principal>,) = b
        .query(v.id, Principal::anonymous(), "uploaders", ())
        .expect("uploaders query");
    assert_eq!(uploaders.0, m.uploaders, "step {step}: uploaders");
    let mut controllers = b.controllers(v.id);
    controllers.sort();
    let mut want = vec![m.owner, v.id];
    want.sort();
    assert_eq!(
        controllers, want,
        "step {step}: the controllers disagree with the owner"
    );
    if !m.chunks.is_empty() {
        let i = *m
            .chunks
            .keys()
            .nth(r.below(m.chunks.len() as u64) as usize)
            .unwrap();
        let got = v.get_chunk(m.owner, i);
        match got {
            Ok(Ok(bytes)) => assert!(
                bytes.as_slice() == m.chunks[&i].as_slice(),
                "step {step}: acknowledged chunk {i} changed"
            ),
            other => panic!("step {step}: acknowledged chunk {i} unreadable: {other:?}"),
        }
    }
}

fn check_all_chunks(v: &Video, m: &Model, step: usize) {
    for (i, want) in &m.chunks {
        match v.get_chunk(m.owner, *i) {
            Ok(Ok(bytes)) => assert!(
                bytes.as_slice() == want.as_slice(),
                "step {step}: acknowledged chunk {i} changed"
            ),
            other => panic!("step {step}: acknowledged chunk {i} unreadable: {other:?}"),
        }
    }
}
