//! Model-based property test of **spawn + index + video together** (issue 15), the companion of
//! `properties.rs` (which drives one video canister alone): the real wasm of the three canisters
//! on the embedded replica is driven by random sequences of the spawn's and the index's
//! endpoints interleaved with video-level actions, occasional upgrades, time passing so timers
//! fire, and randomly injected faults (`Replica::inject_fault`) on the inter-canister and
//! management calls; after every step the canisters are compared with an in-memory model.
//!
//! **Embedded replica only**: a sequence is thousands of calls, and PocketIC cannot inject
//! faults.
//!
//! Steps (each from a random caller: the admin, four people, the anonymous principal, or a relay
//! canister that attaches cycles and bypasses `inspect_message`):
//! - `create_video` with random owners (the caller, another person, anonymous), declared sizes
//!   (0, small, `MAX_VIDEO_SIZE`, one over), text fields at and over their limits, an argument
//!   over the ingress size `inspect_message` allows, and attached cycles (none, one short of the
//!   charge, exact, more);
//! - `set_quota` / `set_default_quota` by the admin and by others; `set_cycles_config` with valid
//!   and invalid values; `retry_pending`; `upgrade_videos`; `estimate_cycles`, `quota_of`;
//!   `set_admins` (empty, 65 entries), `set_app_canisters` (a user principal), `set_video_wasm`
//!   (wrong digest, not wasm, one byte over the limit);
//! - the index's `register_video` / `report_owner_change` / `set_registrars` by unauthorised
//!   callers (ingress and canister), its queries;
//! - malformed candid to every spawn and index update that takes a non-`opt` argument;
//! - video-level: a small upload by the owner or someone else, `change_owner`, and
//!   `offer_ownership` + `accept_ownership` between random principals (anonymous, the index, the
//!   same owner included);
//! - upgrades of the spawn and the index (by the admin, or refused for anyone else);
//! - time passing (timers fire), and a *recovery* (faults cleared, time past the back-offs,
//!   rounds, the admin's `retry_pending`) followed by the full invariant check.
//!
//! About one step in five runs with a fault rule in force, on a step that makes calls (a
//! creation, a transfer, `upgrade_videos`, `retry_pending`, time passing) and on a call that
//! step makes: a reject (`SysTransient`, `CanisterError`), a trap in the caller's callback, or a
//! timeout (bounded-wait calls), once or twice, on one of `create_canister`, `install_code`,
//! `canister_status`, `update_settings`, `register_video`, `deposit_cycles` (creations),
//! `canister_status`, `update_settings`, `report_owner_change`, `canister_info` (transfers,
//! timers) or `stop_canister`, `install_code` (`upgrade_videos`, rejects only). Not a trap in
//! `create_canister`'s callback (the one loss the spawn documents, covered by `faults.rs`), nor
//! a failed `start_canister` (an open bug, its own ignored test below).
//!
//! Checked after every step:
//! - the outcome is the model's (`Ok`, the typed `Error` variant, an `inspect_message` refusal
//!   IC0406, or a system reject); with a fault in force, the fault-free outcome or the failure the
//!   fault explains (`CallFailed`, a trapped callback's reject);
//! - every caller's quota use, credit and spares follow `canisters/spawn/src/logic.rs`
//!   (`decide_funding`, `commit_funding`, `refund_funding`): exactly after a fault-free step;
//!   after a faulted creation, one of "committed", "refunded as credit", "parked as a spare" or
//!   "recovered into a video" (a trap after the install);
//! - the spawn's balance: unchanged by refused ingress and queries; a creation costs exactly its
//!   charge (creation fee + `base` + `declared_size × per_byte`, or a spare's top-up) minus the
//!   cycles it accepted, plus at most a bounded operating cost; a typed refusal costs at most the
//!   operating cost; it never rises by more than the cycles a caller attached;
//! - a video's app-level owner and its controllers agree (`expected_controllers`) whenever no
//!   fault left its transfer or set-up unsettled.
//!
//! After each recovery (and at the end), for every video: the spawn record is `Registered`, no
//! creation is in flight, the outbox is empty; owner (video) = owner (index by id and by owner
//! list) = the model's, controllers = `expected_controllers`, creator (index by creator list) =
//! the caller; `transfer_seq` agrees; the index lists exactly the registered videos; no canister
//! nobody knows about; every acknowledged upload reads back byte-exact.
//!
//! Cases: `CANVID_PROPTEST_CASES` sequences (default 1) of `CANVID_PROPERTY_STEPS` steps
//! (default 100) from random seeds (printed), plus the regression seeds below with the step
//! counts that found them; `CANVID_PROPERTY_SEED=<n>` replays one sequence
//! (`CANVID_PROPERTY_TRACE=1` prints every call and fault).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use candid::Principal;
use canvid_replica::{Fault, FaultRule, RejectCode};
use canvid_tests::clients::{Answer, CallOutcome, Relay};
use canvid_tests::deploy::{deploy, Deployment, T};
use canvid_tests::{principal, Backend, BackendExt, GenFile, ReplicaBackend, Rng};
use canvid_types::index::{ListArgs, OwnerChange, Page, VideoRegistration};
use canvid_types::spawn::{
    CreateVideoArgs, CreatedVideo, CyclesConfig, QuotaArgs, QuotaStatus, SetWasmArgs, SpawnStatus,
    UpgradeArgs, UpgradeOutcome,
};
use canvid_types::video::{
    MAX_DESCRIPTION_BYTES, MAX_TAGS, MAX_TAG_BYTES, MAX_TITLE_BYTES, MAX_VIDEO_SIZE,
};
use serde_bytes::ByteBuf;

/// Seeds that once failed: always run. Seed 1 (120 steps) found that the embedded replica lost
/// a timer armed in `post_upgrade` (a video upgraded by `upgrade_videos` with an index
/// notification pending never sent it: fixed in `local/replica`, pinned on both backends by
/// `fidelity.rs::a_timer_armed_in_post_upgrade_fires`); seeds 2, 3, 4, 5 and 7 found mistakes of
/// the model, now fixed (a trap after the install still gives the caller a video; a transfer
/// refused while a faulted one is in flight; an earlier step's open call holding a reservation;
/// an accepted 2 MB admin argument costs its ingress bytes). The canister bug found while
/// writing it is its own test below (`upgrade_videos_leaves_a_video_stopped_…`).
/// Seed 3848790339606087586 (a run of 25 sequences) found one more: a transfer of a video whose
/// registration a fault delayed is acknowledged without reaching the index (which does not know
/// the video yet); the video's retry timer delivers it later.
/// Each with the number of steps that found it.
/// Seeds 12 and 13 found that a transfer of a video whose controllers step a fault left half
/// done may go either way (model), and seed 12 the spare bug
/// (`a_spare_reused_for_another_owner_keeps_the_first_owners_controllers`).
const REGRESSION_SEEDS: &[(u64, usize)] = &[
    (1, 120),
    (2, 120),
    (3_848_790_339_606_087_586, 80),
    (12, 40),
    (13, 30),
];

/// The spawn's own cost of one message it handles (ingress, execution, the calls it makes and
/// their fees), beyond the cycles it hands to a video: the bound every step is checked against.
/// Measured on the embedded replica: ≤ 0.44 B for a creation (five calls), less for a typed
/// refusal or an admin call.
const OPS_SLACK: u128 = 2_000_000_000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The sequences to run: (seed, steps).
fn seeds(default_cases: u64, default_steps: u64) -> Vec<(u64, usize)> {
    let steps = env_u64("CANVID_PROPERTY_STEPS", default_steps) as usize;
    match std::env::var("CANVID_PROPERTY_SEED") {
        Ok(s) => vec![(s.parse().expect("CANVID_PROPERTY_SEED is a u64"), steps)],
        Err(_) => {
            let random = env_u64("CANVID_PROPTEST_CASES", default_cases);
            let base = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            let mut r = Rng::new(base);
            REGRESSION_SEEDS
                .iter()
                .copied()
                .chain((0..random).map(|_| (r.next_u64(), steps)))
                .collect()
        }
    }
}

#[test]
fn spawn_index_and_videos_agree_with_the_model() {
    for (seed, steps) in seeds(1, 100) {
        run_seed(seed, steps);
    }
}

fn run_seed(seed: u64, steps: usize) {
    eprintln!("properties_spawn: seed {seed} ({steps} steps)");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let b = ReplicaBackend::new();
        run_sequence(&b, seed, steps)
    }));
    if let Err(panic) = outcome {
        eprintln!(
            "properties_spawn: FAILED with seed {seed} ({steps} steps): replay with \
             CANVID_PROPERTY_SEED={seed} CANVID_PROPERTY_STEPS={steps} and keep it as a named \
             regression test once understood"
        );
        std::panic::resume_unwind(panic);
    }
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct VideoM {
    id: Principal,
    /// Who called `create_video` (the index's creator: no caller here is an allow-listed app).
    creator: Principal,
    /// The app-level owner.
    owner: Principal,
    transfer_seq: u64,
    /// The acknowledged upload (finished), if any.
    file: Option<GenFile>,
    /// A pending offer's new owner.
    offer: Option<Principal>,
    /// A fault hit this video's set-up or transfer since the last recovery: its owner is known
    /// (read back, one of the two the model allows) but controllers and index may lag.
    unsettled: bool,
    /// A transfer to this principal failed under a fault and may still take effect (its
    /// reconciliation runs on a timer): the owner is the model's, or this one once it commits.
    /// Any other owner, or an acknowledged transfer undone, is a failure.
    open_transfer: Option<Principal>,
    /// The owner the video was created for (what the index names until a transfer reaches it).
    first_owner: Principal,
    /// Cycles the video gave back to the spawn so far (`SpawnedVideo::cycles_returned`).
    returned: u128,
}

impl VideoM {
    /// What the index names (owner, transfer_seq): a transfer of a video whose upload is not
    /// finished reaches the index only when `finish_upload` handed control to the owner (the
    /// index checks the new owner is a controller).
    fn indexed(&self) -> (Principal, u64) {
        if self.file.is_some() || self.transfer_seq == 0 {
            (self.owner, self.transfer_seq)
        } else {
            (self.first_owner, 0)
        }
    }

    /// Takes an open transfer's outcome from the video's metadata, then checks that the owner
    /// and `transfer_seq` are the model's: nothing acknowledged is lost.
    fn settle(&mut self, meta: &canvid_types::video::VideoMetadata, in_flight: bool, ctx: &str) {
        if let Some(to) = self.open_transfer {
            if meta.owner == to && self.owner != to {
                self.owner = to;
                self.transfer_seq += 1;
                self.open_transfer = None;
            } else if !in_flight {
                self.open_transfer = None;
            }
        }
        self.offer = meta.pending_offer.as_ref().map(|o| o.new_owner);
        check(
            meta.owner == self.owner && meta.transfer_seq == self.transfer_seq,
            || {
                format!(
                    "{ctx}: {} owner {} seq {} vs model {self:?}",
                    self.id, meta.owner, meta.transfer_seq
                )
            },
        );
    }
}

/// The controllers a spawned video must have, from the model.
///
/// **The one place that encodes when the owner is a controller** (security review M3): from
/// `create_canister` the spawn alone; after the spawn's controllers step (`set_up`; false while
/// the spawn's record says `Installed`) {video, spawn}; once the upload is finished (the video
/// hands control over in `finish_upload`) {owner, video, spawn}, which `change_owner` /
/// `accept_ownership` rewrite to {new owner, video} + the spawn, kept by default.
fn expected_controllers(v: &VideoM, spawn: Principal, set_up: bool) -> BTreeSet<Principal> {
    if !set_up {
        set([spawn])
    } else if v.file.is_none() {
        set([v.id, spawn])
    } else {
        set([v.owner, v.id, spawn])
    }
}

fn set(v: impl IntoIterator<Item = Principal>) -> BTreeSet<Principal> {
    v.into_iter().collect()
}

/// `logic::Account`, as the model keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Account {
    used_videos: u64,
    used_cycles: u128,
    credit: u128,
}

/// `logic::Funding`.
#[derive(Clone, Copy, Debug)]
struct Funding {
    pool: bool,
    credit_used: u128,
    accept: u128,
    pool_amount: u128,
    amount: u128,
    new_video: bool,
}

struct Model {
    admin: Principal,
    spawn: Principal,
    index: Principal,
    relay: Principal,
    cfg: CyclesConfig,
    /// `cost_create_canister` (constant on the embedded replica).
    fee: u128,
    default_quota: Option<QuotaArgs>,
    quotas: BTreeMap<Principal, QuotaArgs>,
    accounts: BTreeMap<Principal, Account>,
    /// Parked spares per payer, in the spawn's order.
    spares: BTreeMap<Principal, Vec<Principal>>,
    videos: Vec<VideoM>,
}

impl Model {
    fn quota(&self, p: Principal) -> Option<QuotaArgs> {
        self.quotas
            .get(&p)
            .cloned()
            .or_else(|| self.default_quota.clone())
    }
    fn account(&self, p: Principal) -> Account {
        self.accounts.get(&p).copied().unwrap_or_default()
    }
    fn spares_of(&self, p: Principal) -> Vec<Principal> {
        self.spares.get(&p).cloned().unwrap_or_default()
    }
    fn give(&self, declared: u64) -> u128 {
        self.cfg.base + declared as u128 * self.cfg.per_byte
    }
    /// `inspect_create_video`.
    fn inspect_create(&self, caller: Principal, arg_size: usize) -> bool {
        let a = self.account(caller);
        let room = self
            .quota(caller)
            .is_some_and(|q| a.used_videos < q.max_videos && a.used_cycles < q.max_cycles);
        caller != Principal::anonymous()
            && arg_size <= MAX_CREATE_VIDEO_ARG_BYTES
            && (a.credit > 0 || !self.spares_of(caller).is_empty() || room)
    }
    fn video(&mut self, id: Principal) -> &mut VideoM {
        self.videos.iter_mut().find(|v| v.id == id).unwrap()
    }
}

/// `logic::MAX_CREATE_VIDEO_ARG_BYTES`, written out.
const MAX_CREATE_VIDEO_ARG_BYTES: usize =
    MAX_TITLE_BYTES + MAX_DESCRIPTION_BYTES + MAX_TAGS * (MAX_TAG_BYTES + 8) + 1024;

/// What the model expects of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    Err(&'static str),
    /// `inspect_message` refuses the ingress message (IC0406).
    Refused,
    /// A system reject other than IC0406 (malformed candid, an argument over the ingress limit).
    Rejected,
}

#[derive(Clone, Debug)]
enum Got {
    Ok,
    Err(canvid_types::Error),
    /// The error code and the whole reject, for the failure message.
    Rejected(String, #[allow(dead_code)] String),
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
        Err(r) => Got::Rejected(r.error_code.clone(), r.to_string()),
    }
}

fn matches(expect: &Expect, got: &Got) -> bool {
    match (expect, got) {
        (Expect::Ok, Got::Ok) => true,
        (Expect::Err(v), Got::Err(e)) => *v == variant(e),
        (Expect::Refused, Got::Rejected(code, _)) => code == "IC0406",
        (Expect::Rejected, Got::Rejected(code, _)) => code != "IC0406",
        _ => false,
    }
}

/// With a fault in force: the fault-free outcome, or a failure the fault explains.
fn matches_faulted(expect: &Expect, got: &Got) -> bool {
    matches(expect, got)
        || matches!(got, Got::Err(e) if variant(e) == "CallFailed")
        // A trapped callback answers the call with the trap's reject (IC0503).
        || matches!(got, Got::Rejected(code, _) if code == "IC0503")
}

thread_local! {
    /// A step's outcome was accepted only because a fault may explain it.
    static LENIENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The step touched a video whose set-up a fault left unsure (see `transfer_step`).
    static UNSURE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static SEEN: std::cell::RefCell<BTreeMap<String, usize>> = Default::default();
    static FIG: std::cell::RefCell<Figures> = Default::default();
}

#[derive(Default, Debug, Clone)]
struct Figures {
    steps: u64,
    messages: u64,
    faults: u64,
    recoveries: u64,
    invariants: u64,
    creations: u64,
    max_ops: u128,
}

fn fig(f: impl FnOnce(&mut Figures)) {
    FIG.with(|x| f(&mut x.borrow_mut()));
}

fn check(cond: bool, what: impl FnOnce() -> String) {
    fig(|f| f.invariants += 1);
    assert!(cond, "{}", what());
}

fn agree(step: usize, what: &str, expect: &Expect, g: &Got, faulted: bool) {
    let name = what.split(' ').next().unwrap_or(what);
    let outcome = match g {
        Got::Ok => "ok".to_string(),
        Got::Err(e) => variant(e),
        Got::Rejected(code, _) => code.clone(),
    };
    SEEN.with(|s| {
        *s.borrow_mut()
            .entry(format!("{name}:{outcome}"))
            .or_default() += 1
    });
    fig(|f| f.messages += 1);
    if std::env::var_os("CANVID_PROPERTY_TRACE").is_some() {
        eprintln!("step {step}: {what}: {g:?}");
    }
    let fine = if faulted {
        if !matches(expect, g) {
            // Only a fault that fired (or a video a fault left unsure) may explain this:
            // checked after the step.
            LENIENT.with(|l| l.set(true));
        }
        matches_faulted(expect, g)
    } else {
        matches(expect, g)
    };
    check(fine, || {
        format!(
            "step {step}: {what}: the model expects {expect:?}{}, the canisters answered {g:?}",
            if faulted {
                " (or a fault's failure)"
            } else {
                ""
            }
        )
    });
}

// ---------------------------------------------------------------------------------------------
// A sequence
// ---------------------------------------------------------------------------------------------

struct World<'a> {
    b: &'a ReplicaBackend,
    d: Deployment<'a>,
    relay: Relay<'a>,
    m: Model,
    people: Vec<Principal>,
    spawn_wasm: Vec<u8>,
    seed: u64,
}

/// What a step did to the spawn's balance, for the balance check.
#[derive(Default)]
struct Money {
    /// The step must not cost the spawn anything (a query, refused ingress).
    free: bool,
    /// Cycles the spawn handed to a video canister (a charge's `amount`).
    out: u128,
    /// Cycles the spawn accepted from a caller.
    accepted: u128,
    /// A typed refusal or a plain admin update: operating cost only.
    ops_only: bool,
    /// Anything goes within "never rises from nothing" (faults, upgrades, timers).
    loose: bool,
    /// Bytes of an accepted ingress argument beyond a few KiB: the spawn pays 2,000 cycles per
    /// byte for them (docs/reliability.md, "What `inspect_message` refuses").
    ingress_bytes: u128,
}

fn run_sequence(b: &ReplicaBackend, seed: u64, steps: usize) {
    let mut r = Rng::new(seed);
    let d = deploy(b);
    let relay = Relay::deploy(b, d.admin, 1_000 * T);
    let spawn_c = d.spawn_client();
    let stats = spawn_c.stats();
    let fee = spawn_c.estimate_cycles(0) - stats.cycles.base;
    let people: Vec<Principal> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|n| principal(n))
        .chain([Principal::anonymous(), d.admin])
        .collect();
    let m = Model {
        admin: d.admin,
        spawn: d.spawn,
        index: d.index,
        relay: relay.id,
        cfg: stats.cycles.clone(),
        fee,
        default_quota: stats.default_quota.clone(),
        quotas: BTreeMap::new(),
        accounts: BTreeMap::new(),
        spares: BTreeMap::new(),
        videos: vec![],
    };
    let mut w = World {
        b,
        d,
        relay,
        m,
        people,
        spawn_wasm: canvid_tests::wasm::gzip(&canvid_tests::wasm::spawn()),
        seed,
    };
    for step in 1..=steps {
        fig(|f| f.steps += 1);
        // About one step in five runs with a fault rule in force, on a step that makes
        // inter-canister or management calls (a creation, a transfer, `upgrade_videos`,
        // `retry_pending`, timers) and on a call that step makes.
        let faulted = r.below(5) == 0;
        let kind = if faulted {
            pick(&mut r, &[0, 5, 10, 15, 20, 66, 70, 75, 36, 32, 83])
        } else {
            r.below(100)
        };
        let fault = faulted.then(|| random_fault(&mut r, kind));
        if std::env::var_os("CANVID_PROPERTY_TRACE").is_some() {
            eprintln!("step {step}: kind {kind}, fault {fault:?}");
        }
        let fired = b.replica.faults_fired();
        if let Some(rule) = &fault {
            b.replica.inject_fault(rule.clone());
        }
        // Quiescent before measuring: no call of an earlier step still holds a reservation.
        b.replica.run_until_idle();
        let outbox_before = w.d.spawn_client().stats().outbox;
        let before = b.cycle_balance(w.d.spawn);
        let mut money = one_step(&mut w, &mut r, step, kind, fault.is_some());
        b.replica.run_until_idle();
        // Cycles videos gave back (finished uploads hand control over after returning them):
        // the spawn accepted them, and the payer's account shows them.
        money.accepted += sync_returns(&mut w);
        b.replica.clear_faults();
        let fired = b.replica.faults_fired() - fired;
        fig(|f| f.faults += fired);
        let (lenient, unsure) = (LENIENT.with(|l| l.take()), UNSURE.with(|u| u.take()));
        check(!lenient || fired > 0 || unsure, || {
            format!("step {step}: a failure was put down to a fault that never fired")
        });
        let after = b.cycle_balance(w.d.spawn);
        check_money(step, before, after, &money, outbox_before, fired > 0);
        check_accounts(&w, step);
        if r.below(12) == 0 {
            recover(&mut w, step);
        }
    }
    recover(&mut w, steps + 1);
    let seen = SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let f = FIG.with(|x| x.borrow().clone());
    eprintln!(
        "properties_spawn: seed {}: {} videos, figures {f:?}, outcomes {seen:?}",
        w.seed,
        w.m.videos.len()
    );
}

/// The calls each kind of step makes (by the spawn, the videos, the index).
fn fault_methods(kind: u64) -> &'static [&'static str] {
    match kind {
        0..=21 => &[
            "create_canister",
            "install_code",
            "canister_status",
            "update_settings",
            "register_video",
            "deposit_cycles",
        ],
        66..=79 => &[
            "canister_status",
            "update_settings",
            "report_owner_change",
            "canister_info",
        ],
        // Rejects only (see `random_fault`): a failed `start_canister`, or a trap in a callback
        // after the stop, leaves the video stopped for good
        // (`upgrade_videos_leaves_a_video_stopped_when_its_restart_fails`).
        36..=39 => &["stop_canister", "install_code"],
        _ => &[
            "canister_status",
            "update_settings",
            "register_video",
            "report_owner_change",
            "canister_info",
        ],
    }
}

fn random_fault(r: &mut Rng, kind: u64) -> FaultRule {
    let method = pick(r, fault_methods(kind));
    let upgrade = (36..=39).contains(&kind);
    let kind = match r.below(4) {
        _ if upgrade => Fault::Reject(RejectCode::SysTransient, "injected: queue full".into()),
        0 => Fault::Reject(RejectCode::SysTransient, "injected: queue full".into()),
        1 => Fault::Reject(RejectCode::CanisterError, "injected: callee trapped".into()),
        // The documented loss (the new canister's id) is faults.rs's scenario, not this one's.
        2 if method != "create_canister" => Fault::TrapInCallback,
        _ => Fault::Timeout,
    };
    FaultRule::once(method, kind)
        .skip(u32::from(r.below(4) == 0))
        .times(1 + r.below(2) as u32)
}

trait Times {
    fn times(self, n: u32) -> Self;
}
impl Times for FaultRule {
    fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }
}

fn check_money(step: usize, before: u128, after: u128, m: &Money, outbox: u64, fired: bool) {
    check(after <= before + m.accepted, || {
        format!(
            "step {step}: the spawn's balance rose from {before} to {after} with {} accepted",
            m.accepted
        )
    });
    if fired || m.loose {
        return;
    }
    // What the step cost beyond what it handed out: the spawn's own operating cost.
    let spent = (before + m.accepted).saturating_sub(after);
    if m.free {
        // A timer of the spawn's may run in the same rounds while its outbox has work. (What it
        // accepted: cycles a video gave back, see `sync_returns`.)
        if outbox == 0 && m.accepted > 0 {
            check(spent <= OPS_SLACK, || {
                format!(
                    "step {step}: accepting {} returned cycles cost the spawn {spent}",
                    m.accepted
                )
            });
        } else if outbox == 0 {
            check(after == before, || {
                format!(
                    "step {step}: a refused or read-only step cost the spawn {before} -> {after}"
                )
            });
        }
    } else if m.ops_only {
        check(spent <= OPS_SLACK + 2_000 * m.ingress_bytes, || {
            format!("step {step}: a refusal or admin call cost the spawn {spent}")
        });
    } else {
        let ops = spent.checked_sub(m.out);
        check(ops.is_some_and(|o| o <= OPS_SLACK), || {
            format!(
                "step {step}: a creation handing out {} (accepting {}) cost the spawn {spent}",
                m.out, m.accepted
            )
        });
        let ops = ops.unwrap();
        fig(|f| f.max_ops = f.max_ops.max(ops));
    }
}

/// Takes the cycles each video returned since the last look (`return_unused_cycles`) into the
/// model: a pool payer's quota use falls by them, a paying caller gets them as credit. Returns
/// the total.
fn sync_returns(w: &mut World) -> u128 {
    let spawn = w.d.spawn_client();
    let mut total = 0;
    for i in 0..w.m.videos.len() {
        let id = w.m.videos[i].id;
        let Some(rec) = spawn.get_video(id) else {
            continue;
        };
        let now = rec.cycles_returned.unwrap_or(0);
        let delta = now.saturating_sub(w.m.videos[i].returned);
        if delta == 0 {
            continue;
        }
        w.m.videos[i].returned = now;
        let mut a = w.m.account(rec.caller);
        match rec.payer {
            canvid_types::spawn::Payer::Pool => a.used_cycles = a.used_cycles.saturating_sub(delta),
            canvid_types::spawn::Payer::Attached => a.credit = a.credit.saturating_add(delta),
        }
        w.m.accounts.insert(rec.caller, a);
        if std::env::var_os("CANVID_PROPERTY_TRACE").is_some() {
            eprintln!(
                "{id} returned {delta} cycles to the spawn (payer {:?})",
                rec.payer
            );
        }
        total += delta;
    }
    total
}

/// Every caller's quota use, credit and spares against the model.
fn check_accounts(w: &World, step: usize) {
    let spawn = w.d.spawn_client();
    for p in w.people.iter().copied().chain([w.m.relay]) {
        let q: QuotaStatus = spawn.quota_of(p);
        let a = w.m.account(p);
        check(
            (q.used_videos, q.used_cycles, q.credit) == (a.used_videos, a.used_cycles, a.credit),
            || format!("step {step}: account of {p}: spawn says {q:?}, the model {a:?}"),
        );
        check(q.spares == w.m.spares_of(p), || {
            format!(
                "step {step}: spares of {p}: spawn {:?}, model {:?}",
                q.spares,
                w.m.spares_of(p)
            )
        });
        let want = w.m.quota(p).unwrap_or_default();
        check(q.quota == want, || {
            format!(
                "step {step}: quota of {p}: spawn {:?}, model {want:?}",
                q.quota
            )
        });
    }
}

fn pick<T: Copy>(r: &mut Rng, v: &[T]) -> T {
    v[r.below(v.len() as u64) as usize]
}

/// One random step; returns what it did to the spawn's balance.
fn one_step(w: &mut World, r: &mut Rng, step: usize, kind: u64, faulted: bool) -> Money {
    // With a fault in force, mostly the admin (whose default quota has room): a fault only
    // matters on a call that gets past the refusals.
    let caller = match r.below(10) {
        0..=3 => w.m.admin,
        _ if faulted && r.below(3) != 0 => w.m.admin,
        _ => pick(r, &w.people),
    };
    match kind {
        0..=21 => create_step(w, r, step, caller, faulted),
        22..=27 => quota_step(w, r, step, caller),
        28..=31 => cycles_config_step(w, r, step, caller),
        32..=35 => {
            // retry_pending: the admin's, or refused.
            let a = w.d.spawn_client().retry_pending(caller);
            let expect = if caller == w.m.admin {
                Expect::Ok
            } else {
                Expect::Refused
            };
            agree(step, "retry_pending", &expect, &got(&a), faulted);
            Money {
                free: expect == Expect::Refused,
                loose: expect == Expect::Ok,
                ..Default::default()
            }
        }
        36..=39 => upgrade_videos_step(w, r, step, caller, faulted),
        40..=47 => index_step(w, r, step, caller),
        48..=52 => admin_refusals_step(w, r, step, caller),
        53..=57 => malformed_step(w, r, step, caller),
        58..=65 => upload_step(w, r, step),
        66..=79 => transfer_step(w, r, step, faulted),
        80..=82 => upgrade_step(w, r, step, caller),
        83..=88 => {
            // Time passes: the spawn's retry timer, the videos' notification retries.
            w.b.advance_time(Duration::from_secs(pick(r, &[1, 30, 61, 300, 3_600])));
            for _ in 0..4 {
                w.b.tick();
            }
            Money {
                loose: true,
                ..Default::default()
            }
        }
        _ => {
            // Read-only calls, checked against the model.
            let size = pick(r, &[0, 1, 300_000, MAX_VIDEO_SIZE]);
            let est = w.d.spawn_client().estimate_cycles(size);
            check(est == w.m.fee + w.m.give(size), || {
                format!(
                    "step {step}: estimate_cycles({size}) = {est}, model {}",
                    w.m.give(size)
                )
            });
            let stats = w.d.spawn_client().stats();
            check(
                stats.cycles == w.m.cfg && stats.default_quota == w.m.default_quota,
                || format!("step {step}: spawn config {stats:?}"),
            );
            Money {
                free: true,
                ..Default::default()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// create_video
// ---------------------------------------------------------------------------------------------

fn create_step(w: &mut World, r: &mut Rng, step: usize, caller: Principal, faulted: bool) -> Money {
    let via_relay = r.below(4) == 0;
    let caller = if via_relay { w.m.relay } else { caller };
    let owner = match r.below(12) {
        0 => Some(Principal::anonymous()),
        1 | 2 => Some(pick(r, &w.people[..4])),
        _ => None,
    };
    let declared_size = match r.below(16) {
        0 => 0,
        1 => MAX_VIDEO_SIZE,
        2 => MAX_VIDEO_SIZE + 1,
        3 => 20_000_000,
        _ => 1 + r.below(300_000),
    };
    let mut args = CreateVideoArgs {
        title: "prop".into(),
        description: String::new(),
        tags: vec!["t".into()],
        declared_size,
        owner,
    };
    match r.below(24) {
        0 => args.title = "x".repeat(MAX_TITLE_BYTES + 1),
        1 => args.title = "x".repeat(MAX_TITLE_BYTES),
        2 => args.description = "d".repeat(MAX_DESCRIPTION_BYTES + 1),
        3 => args.description = "d".repeat(MAX_CREATE_VIDEO_ARG_BYTES + 1),
        4 => args.tags = vec![String::new()],
        5 => args.tags = vec!["t".into(); MAX_TAGS + 1],
        _ => {}
    }
    // While `a_spare_reused_for_another_owner_keeps_the_first_owners_controllers` is open, a
    // caller holding a spare creates for the owner that spare was created for (or anonymous,
    // refused before the spare is touched).
    if let Some(sp) = w.m.spares_of(caller).first() {
        let first_owner = w.d.spawn_client().get_video(*sp).unwrap().owner;
        if args.owner != Some(Principal::anonymous()) {
            args.owner = (first_owner != caller).then_some(first_owner);
        }
    }
    let owner = args.owner;
    let arg = candid::encode_one(&args).unwrap();
    let m = &w.m;
    let account = m.account(caller);
    let spares = m.spares_of(caller);
    // The charge (`logic::charge_for_new` / `charge_for_spare`).
    let give = m.give(declared_size);
    let (amount, new_video) = match spares.first() {
        Some(sp) => {
            let had = w.d.spawn_client().get_video(*sp).unwrap().cycles_given;
            (give.saturating_sub(had), false)
        }
        None => (m.fee + give, true),
    };
    let attached = if via_relay {
        match r.below(5) {
            0 => 0,
            1 => amount.saturating_sub(account.credit).saturating_sub(1),
            2 => amount.saturating_sub(account.credit) + T,
            _ => amount.saturating_sub(account.credit),
        }
        // What the relay can afford (a 400 GiB declaration's charge is ~1,170 T).
        .min(400 * T)
    } else {
        0
    };
    let balance = w.b.cycle_balance(w.d.spawn);
    let records_before: BTreeSet<Principal> = if faulted {
        set(w
            .d
            .spawn_client()
            .all_videos(w.m.admin)
            .iter()
            .map(|v| v.canister_id))
    } else {
        BTreeSet::new()
    };
    // The endpoint's checks, in order, then `decide_funding`.
    let mut funding = None;
    let expect = if !via_relay && !m.inspect_create(caller, arg.len()) {
        Expect::Refused
    } else if owner == Some(Principal::anonymous()) {
        Expect::Err("InvalidArgument")
    } else if args.title.len() > MAX_TITLE_BYTES || args.description.len() > MAX_DESCRIPTION_BYTES {
        Expect::Err("TooLarge")
    } else if args.tags.len() > MAX_TAGS || args.tags.iter().any(String::is_empty) {
        Expect::Err("InvalidArgument")
    } else if declared_size > MAX_VIDEO_SIZE {
        Expect::Err("TooLarge")
    } else {
        let credit_used = account.credit.min(amount);
        let rest = amount - credit_used;
        if attached > 0 || rest == 0 {
            if attached < rest {
                Expect::Err("InsufficientCycles")
            } else {
                funding = Some(Funding {
                    pool: false,
                    credit_used,
                    accept: rest,
                    pool_amount: 0,
                    amount,
                    new_video,
                });
                Expect::Ok
            }
        } else {
            let q = m.quota(caller).unwrap_or_default();
            let pool_available = balance.saturating_sub(m.cfg.reserve);
            if rest > q.max_cycles.saturating_sub(account.used_cycles) {
                Expect::Err("InsufficientCycles")
            } else if new_video && account.used_videos >= q.max_videos {
                Expect::Err("NotAuthorized")
            } else if rest > pool_available {
                Expect::Err("InsufficientCycles")
            } else {
                funding = Some(Funding {
                    pool: true,
                    credit_used,
                    accept: 0,
                    pool_amount: rest,
                    amount,
                    new_video,
                });
                Expect::Ok
            }
        }
    };
    let a: Answer<CreatedVideo> = if via_relay {
        match w.relay.call_raw(w.d.spawn, "create_video", arg, attached) {
            CallOutcome::Reply { data, .. } => Ok(candid::decode_one(&data).unwrap_or_else(|e| {
                panic!("step {step}: create_video's reply does not decode: {e}")
            })),
            // A canister caller sees the spawn's trap as a reject with code 5 (CanisterError),
            // what an ingress caller sees as IC0503.
            CallOutcome::Reject { code, message, .. } => Err(canvid_tests::Reject {
                code: canvid_tests::RejectCode::CanisterError,
                error_code: if code == 5 {
                    "IC0503".into()
                } else {
                    format!("relay reject {code}")
                },
                message,
            }),
            CallOutcome::NotSent { message } => panic!("step {step}: relay: {message}"),
        }
    } else {
        w.d.spawn_client().create_video(caller, &args)
    };
    // A pool creation whose margin to the reserve is within the operating slack may go either
    // way; no step comes that close with these sizes and a 100 T pool unless a config step
    // raised the reserve, which the model then sees here.
    let what = format!(
        "create_video by {}{} size {declared_size} owner {owner:?} attached {attached}",
        if via_relay { "relay " } else { "" },
        caller
    );
    agree(step, &what, &expect, &got(&a), faulted);
    let mut money = Money::default();
    match expect {
        Expect::Refused => money.free = true,
        Expect::Ok => {}
        _ => money.ops_only = true,
    }
    let Some(f) = funding else {
        return money;
    };
    let owner = owner.unwrap_or(caller);
    let committed = commit(account, &f);
    let refunded = refund(committed, &f);
    let status = w.d.spawn_client().quota_of(caller);
    let got_account = Account {
        used_videos: status.used_videos,
        used_cycles: status.used_cycles,
        credit: status.credit,
    };
    match &a {
        Ok(Ok(created)) => {
            fig(|x| x.creations += 1);
            check(got_account == committed, || {
                format!("step {step}: {what}: account {got_account:?}, model {committed:?}")
            });
            let mut sp = spares.clone();
            if !new_video {
                check(created.canister_id == sp[0], || {
                    format!("step {step}: the spare {} was not reused", sp[0])
                });
                sp.remove(0);
            }
            w.m.spares.insert(caller, sp);
            w.m.accounts.insert(caller, committed);
            let record = w.d.spawn_client().get_video(created.canister_id).unwrap();
            let meta = w.d.video(created.canister_id).metadata();
            check(meta.owner == owner && record.owner == owner, || {
                format!(
                    "step {step}: {what}: owner {} / record {}",
                    meta.owner, record.owner
                )
            });
            let v = VideoM {
                id: created.canister_id,
                creator: caller,
                owner,
                transfer_seq: 0,
                file: None,
                offer: None,
                unsettled: faulted,
                open_transfer: None,
                first_owner: owner,
                returned: 0,
            };
            if !faulted {
                check(
                    record.status == SpawnStatus::Registered && created.indexed,
                    || format!("step {step}: {what}: {record:?} after a fault-free creation"),
                );
                let c = set(w.b.controllers(v.id));
                check(c == expected_controllers(&v, w.m.spawn, true), || {
                    format!("step {step}: {what}: controllers {c:?}")
                });
                let entry = w.d.index_client().get_video(v.id);
                check(
                    entry.as_ref().map(|e| (e.owner, e.creator)) == Some((owner, caller)),
                    || format!("step {step}: {what}: index entry {entry:?}"),
                );
            }
            w.m.videos.push(v);
            money.out = f.amount;
            money.accepted = f.accept;
        }
        _ => {
            // Only a fault explains a failure here (checked by `agree`): nothing created and
            // everything paid kept as credit (a claimed spare parked again), or the canister
            // parked as a spare for the caller with the charge committed (a new one, or the
            // claimed spare again).
            let now_spares = status.spares.clone();
            let before: BTreeSet<Principal> = spares.iter().copied().collect();
            let now: BTreeSet<Principal> = now_spares.iter().copied().collect();
            let added = now.difference(&before).count();
            // Or a trap after the install: the caller hears a reject, but the installed
            // canister is recovered into the outbox (`SpawnStore::recover_op`) and becomes the
            // caller's video, charge committed.
            let records = w.d.spawn_client().all_videos(w.m.admin);
            let installed: Vec<Principal> = records
                .iter()
                .filter(|v| {
                    !records_before.contains(&v.canister_id)
                        || (!new_video && v.canister_id == spares[0])
                })
                .filter(|v| v.status != SpawnStatus::Spare)
                .map(|v| v.canister_id)
                .collect();
            let fine = (now == before && got_account == refunded && installed.is_empty())
                || (now == before
                    && !new_video
                    && got_account == committed
                    && installed.is_empty())
                || (now.is_superset(&before)
                    && added == 1
                    && new_video
                    && got_account == committed
                    && installed.is_empty())
                || (installed.len() == 1
                    && got_account == committed
                    && now.len() + usize::from(!new_video) == before.len());
            check(fine, || {
                format!(
                    "step {step}: {what} failed: account {got_account:?} (committed {committed:?}, \
                     refunded {refunded:?}), spares {before:?} -> {now:?}, installed {installed:?}"
                )
            });
            if let [id] = installed[..] {
                let record = w.d.spawn_client().get_video(id).unwrap();
                check(record.owner == owner && record.caller == caller, || {
                    format!("step {step}: {what}: recovered {record:?}")
                });
                fig(|x| x.creations += 1);
                w.m.videos.push(VideoM {
                    id,
                    creator: caller,
                    owner,
                    transfer_seq: 0,
                    file: None,
                    offer: None,
                    unsettled: true,
                    open_transfer: None,
                    first_owner: owner,
                    returned: 0,
                });
            }
            w.m.accounts.insert(caller, got_account);
            w.m.spares.insert(caller, now_spares);
            money.loose = true;
            money.accepted = f.accept;
        }
    }
    money
}

/// `logic::commit_funding`.
fn commit(a: Account, f: &Funding) -> Account {
    let mut a = a;
    a.credit -= f.credit_used.min(a.credit);
    if f.pool {
        a.used_cycles += f.pool_amount;
        if f.new_video {
            a.used_videos += 1;
        }
    }
    a
}

/// `logic::refund_funding`.
fn refund(a: Account, f: &Funding) -> Account {
    let mut a = a;
    a.credit += f.credit_used + f.accept;
    if f.pool {
        a.used_cycles -= f.pool_amount;
        if f.new_video {
            a.used_videos -= 1;
        }
    }
    a
}

// ---------------------------------------------------------------------------------------------
// Admin configuration
// ---------------------------------------------------------------------------------------------

fn quota_step(w: &mut World, r: &mut Rng, step: usize, caller: Principal) -> Money {
    let q = QuotaArgs {
        max_videos: pick(r, &[0, 1, 2, 5, u64::MAX]),
        max_cycles: pick(r, &[0, T, 3 * T, 60 * T, u128::MAX]),
    };
    let expect = if caller == w.m.admin {
        Expect::Ok
    } else {
        Expect::Refused
    };
    if r.below(3) == 0 {
        let q = (r.below(3) != 0).then_some(q);
        let a = w.d.spawn_client().set_default_quota(caller, q.clone());
        agree(step, "set_default_quota", &expect, &got(&a), false);
        if expect == Expect::Ok {
            w.m.default_quota = q;
        }
    } else {
        let who = if r.below(5) == 0 {
            w.m.relay
        } else {
            pick(r, &w.people)
        };
        let a = w.d.spawn_client().set_quota(caller, who, q.clone());
        agree(step, "set_quota", &expect, &got(&a), false);
        if expect == Expect::Ok {
            w.m.quotas.insert(who, q);
        }
    }
    Money {
        free: expect == Expect::Refused,
        ops_only: true,
        ..Default::default()
    }
}

fn cycles_config_step(w: &mut World, r: &mut Rng, step: usize, caller: Principal) -> Money {
    let min_base = 300_005_000_000 + 10_000_000_000 + (128u128 << 20) * 614;
    let mut cfg = w.m.cfg.clone();
    let expect_invalid = match r.below(7) {
        0 => {
            cfg.reserve = 500_000_000_000 - 1;
            true
        }
        1 => {
            cfg.base = min_base - 1;
            true
        }
        2 => {
            cfg.per_byte = 1_999;
            true
        }
        3 => {
            cfg.base = min_base;
            cfg.per_byte = 2_000;
            cfg.reserve = 500_000_000_000;
            false
        }
        4 => {
            cfg.per_byte = 3_000;
            cfg.reserve = pick(r, &[2 * T, 60 * T, 100 * T]);
            false
        }
        _ => {
            cfg.base = min_base + T;
            cfg.per_byte = 2_714;
            cfg.reserve = 2 * T;
            false
        }
    };
    let expect = if caller != w.m.admin {
        Expect::Refused
    } else if expect_invalid {
        Expect::Err("InvalidArgument")
    } else {
        Expect::Ok
    };
    let a: Answer<()> = w.b.update1(w.d.spawn, caller, "set_cycles_config", &cfg);
    agree(step, "set_cycles_config", &expect, &got(&a), false);
    if expect == Expect::Ok {
        w.m.cfg = cfg;
    }
    Money {
        free: expect == Expect::Refused,
        ops_only: true,
        ..Default::default()
    }
}

fn upgrade_videos_step(
    w: &mut World,
    r: &mut Rng,
    step: usize,
    caller: Principal,
    faulted: bool,
) -> Money {
    let videos = match r.below(3) {
        0 => None,
        1 => Some(w.m.videos.iter().map(|v| v.id).collect::<Vec<_>>()),
        // A canister the spawn did not create: NotFound in its outcome.
        _ => Some(vec![w.m.relay]),
    };
    let args = UpgradeArgs {
        videos: videos.clone(),
        arg: None,
    };
    let a = w.d.spawn_client().upgrade_videos(caller, &args);
    let expect = if caller == w.m.admin {
        Expect::Ok
    } else {
        Expect::Refused
    };
    agree(step, "upgrade_videos", &expect, &got(&a), faulted);
    if let Ok(Ok(outcomes)) = &a {
        let outcomes: &Vec<UpgradeOutcome> = outcomes;
        for o in outcomes {
            let spare = w.m.spares.values().any(|s| s.contains(&o.video));
            let want = if o.video == w.m.relay {
                Expect::Err("NotFound")
            } else if spare {
                Expect::Err("NotReady")
            } else {
                Expect::Ok
            };
            let g = match &o.result {
                Ok(()) => Got::Ok,
                Err(e) => Got::Err(e.clone()),
            };
            agree(
                step,
                &format!("upgrade_videos:{}", o.video),
                &want,
                &g,
                faulted,
            );
        }
        if videos.is_none() {
            let known = w.m.videos.len() + w.m.spares.values().map(Vec::len).sum::<usize>();
            check(outcomes.len() == known, || {
                format!(
                    "step {step}: upgrade_videos touched {} of {known}",
                    outcomes.len()
                )
            });
        }
    }
    check_uploads(w, step);
    Money {
        free: expect == Expect::Refused,
        loose: expect == Expect::Ok,
        ..Default::default()
    }
}

/// Typed refusals of the spawn's other admin endpoints, boundary values included.
fn admin_refusals_step(w: &mut World, r: &mut Rng, step: usize, caller: Principal) -> Money {
    let admin = caller == w.m.admin;
    let spawn = w.d.spawn;
    if r.below(7) == 0 {
        // An argument over the 2 MiB ingress limit: rejected by the system (never inducted,
        // so free for the spawn) whoever sends it.
        let mut wasm = b"\0asm".to_vec();
        wasm.resize(2_100_000, 0);
        let sha = canvid_tests::clients::sha256(&wasm);
        let args = SetWasmArgs {
            wasm: ByteBuf::from(wasm),
            sha256: sha,
        };
        let a: Answer<canvid_types::spawn::WasmInfo> =
            w.b.update1(spawn, caller, "set_video_wasm", &args);
        let g = got(&a);
        // IC0504, before `inspect_message` runs.
        let expect = Expect::Rejected;
        agree(step, "set_video_wasm 2,100,000 bytes", &expect, &g, false);
        return Money {
            free: true,
            ..Default::default()
        };
    }
    let (what, expect, g) = match r.below(6) {
        0 => {
            let a: Answer<()> =
                w.b.update1(spawn, caller, "set_admins", &Vec::<Principal>::new());
            ("set_admins []", "InvalidArgument", got(&a))
        }
        1 => {
            let many: Vec<Principal> = (0..65u8)
                .map(|i| Principal::from_slice(&[i, 1, 2]))
                .collect();
            let a: Answer<()> = w.b.update1(spawn, caller, "set_admins", &many);
            ("set_admins 65", "InvalidArgument", got(&a))
        }
        2 => {
            let a: Answer<()> = w.b.update1(
                spawn,
                caller,
                "set_app_canisters",
                &vec![principal("not a canister")],
            );
            ("set_app_canisters user", "InvalidArgument", got(&a))
        }
        3 => {
            let wasm = b"\0asm\x01\0\0\0".to_vec();
            let args = SetWasmArgs {
                wasm: ByteBuf::from(wasm),
                sha256: ByteBuf::from(vec![0u8; 32]),
            };
            let a: Answer<canvid_types::spawn::WasmInfo> =
                w.b.update1(spawn, caller, "set_video_wasm", &args);
            ("set_video_wasm wrong digest", "WrongDigest", got(&a))
        }
        4 => {
            let wasm = vec![7u8; 100];
            let sha = canvid_tests::clients::sha256(&wasm);
            let args = SetWasmArgs {
                wasm: ByteBuf::from(wasm),
                sha256: sha,
            };
            let a: Answer<canvid_types::spawn::WasmInfo> =
                w.b.update1(spawn, caller, "set_video_wasm", &args);
            ("set_video_wasm not wasm", "InvalidArgument", got(&a))
        }
        _ => {
            // One byte over the module limit, still under the ingress limit.
            let mut wasm = b"\0asm".to_vec();
            wasm.resize(2_000_001, 0);
            let sha = canvid_tests::clients::sha256(&wasm);
            let args = SetWasmArgs {
                wasm: ByteBuf::from(wasm),
                sha256: sha,
            };
            let a: Answer<canvid_types::spawn::WasmInfo> =
                w.b.update1(spawn, caller, "set_video_wasm", &args);
            ("set_video_wasm 2,000,001 bytes", "TooLarge", got(&a))
        }
    };
    let expect = if admin {
        Expect::Err(expect)
    } else {
        Expect::Refused
    };
    agree(step, what, &expect, &g, false);
    Money {
        free: !admin,
        ops_only: true,
        ingress_bytes: if what.contains("2,000,001") {
            2_000_001
        } else {
            0
        },
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Index
// ---------------------------------------------------------------------------------------------

fn index_step(w: &mut World, r: &mut Rng, step: usize, caller: Principal) -> Money {
    let index = w.d.index_client();
    let some_video =
        (!w.m.videos.is_empty()).then(|| w.m.videos[r.below(w.m.videos.len() as u64) as usize].id);
    let target = some_video.unwrap_or(w.m.relay);
    match r.below(6) {
        0 => {
            // register_video by someone who is not a registrar: ingress refused (the admin
            // passes inspect_message and gets the endpoint's refusal), a canister refused.
            let reg = VideoRegistration {
                video: target,
                creator: caller,
                owner: caller,
            };
            if r.below(2) == 0 {
                let out: canvid_types::Result<()> =
                    w.relay.call(w.d.index, "register_video", &reg, 0);
                agree(
                    step,
                    "register_video by a canister",
                    &Expect::Err("NotAuthorized"),
                    &got(&Ok(out)),
                    false,
                );
            } else {
                let a = index.register_video(caller, &reg);
                let expect = if caller == w.m.admin {
                    Expect::Err("NotAuthorized")
                } else {
                    Expect::Refused
                };
                agree(step, "register_video", &expect, &got(&a), false);
            }
        }
        1 => {
            let change = OwnerChange {
                new_owner: caller,
                transfer_seq: pick(r, &[0, 1, u64::MAX]),
            };
            if r.below(2) == 0 {
                // From a canister that is no registered video.
                let out: canvid_types::Result<()> =
                    w.relay.call(w.d.index, "report_owner_change", &change, 0);
                agree(
                    step,
                    "report_owner_change by a canister",
                    &Expect::Err("NotFound"),
                    &got(&Ok(out)),
                    false,
                );
            } else {
                let a = index.report_owner_change(caller, &change);
                let expect = if caller == w.m.admin {
                    Expect::Err("NotFound")
                } else {
                    Expect::Refused
                };
                agree(step, "report_owner_change", &expect, &got(&a), false);
            }
        }
        2 => {
            // The registrars as they are (by the admin), or refused.
            let a = index.set_registrars(caller, vec![w.d.spawn]);
            let expect = if caller == w.m.admin {
                Expect::Ok
            } else {
                Expect::Refused
            };
            agree(step, "set_registrars", &expect, &got(&a), false);
        }
        3 => {
            let many: Vec<Principal> = (0..65u8).map(|i| Principal::from_slice(&[i, 9])).collect();
            let a: Answer<()> = w.b.update1(w.d.index, caller, "set_admins", &many);
            let expect = if caller == w.m.admin {
                Expect::Err("InvalidArgument")
            } else {
                Expect::Refused
            };
            agree(step, "index set_admins 65", &expect, &got(&a), false);
        }
        _ => {
            // Queries with boundary page limits and cursors.
            let who = pick(r, &w.people);
            let limit = pick(r, &[None, Some(0), Some(1), Some(u32::MAX)]);
            let cursor = pick(
                r,
                &[None, Some(Principal::management_canister()), Some(target)],
            );
            let method = pick(r, &["videos_by_owner", "videos_by_creator"]);
            let page: Page =
                w.b.query1(
                    w.d.index,
                    caller,
                    method,
                    &ListArgs {
                        principal: who,
                        cursor,
                        limit,
                    },
                )
                .unwrap_or_else(|e| panic!("step {step}: {method}: {e}"));
            check(
                page.videos.windows(2).all(|p| p[0].video < p[1].video)
                    && page
                        .videos
                        .iter()
                        .all(|e| cursor.is_none_or(|c| e.video > c)),
                || format!("step {step}: {method} page out of order: {page:?}"),
            );
            let count: (u64,) =
                w.b.query(
                    w.d.index,
                    caller,
                    if method == "videos_by_owner" {
                        "count_by_owner"
                    } else {
                        "count_by_creator"
                    },
                    (who,),
                )
                .unwrap();
            check(page.videos.len() as u64 <= count.0, || {
                format!(
                    "step {step}: {method} page of {} > count {}",
                    page.videos.len(),
                    count.0
                )
            });
            fig(|f| f.messages += 2);
        }
    }
    Money {
        free: caller != w.m.admin,
        loose: true,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed candid
// ---------------------------------------------------------------------------------------------

/// Updates taking a non-`opt` argument (an `opt` decodes anything as `null`, and a method without
/// arguments ignores extra ones: both are valid calls).
const SPAWN_UPDATES: &[&str] = &[
    "create_video",
    "set_admins",
    "set_quota",
    "set_app_canisters",
    "set_cycles_config",
    "set_video_wasm",
    "top_up",
    "upgrade_videos",
];
const INDEX_UPDATES: &[&str] = &[
    "register_video",
    "report_owner_change",
    "set_admins",
    "set_registrars",
];

fn malformed_step(w: &mut World, r: &mut Rng, step: usize, caller: Principal) -> Money {
    let arg = match r.below(3) {
        0 => b"DIDL\x01".to_vec(),
        1 => {
            let mut x = b"DIDL".to_vec();
            for _ in 0..r.below(40) {
                x.push(r.below(256) as u8);
            }
            x
        }
        _ => candid::encode_one("nonsense").unwrap(),
    };
    let on_spawn = r.below(2) == 0;
    let (canister, method) = if on_spawn {
        (w.d.spawn, pick(r, SPAWN_UPDATES))
    } else {
        (w.d.index, pick(r, INDEX_UPDATES))
    };
    // Random bytes can happen to be a valid empty-typed message; only the fixed shapes are
    // certain to be malformed.
    let passes_inspect = if on_spawn && method == "create_video" {
        w.m.inspect_create(caller, arg.len())
    } else {
        caller == w.m.admin
    };
    let expect = if passes_inspect {
        Expect::Rejected
    } else {
        Expect::Refused
    };
    let a = w.b.update_raw(canister, caller, method, arg.clone());
    let g = match a {
        Ok(bytes) => panic!("step {step}: {method} accepted malformed candid {arg:?}: {bytes:?}"),
        Err(e) => Got::Rejected(e.error_code.clone(), e.to_string()),
    };
    agree(step, &format!("malformed {method}"), &expect, &g, false);
    Money {
        free: !passes_inspect || !on_spawn,
        ops_only: true,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Video-level actions
// ---------------------------------------------------------------------------------------------

fn upload_step(w: &mut World, r: &mut Rng, step: usize) -> Money {
    let Some(i) = (!w.m.videos.is_empty()).then(|| r.below(w.m.videos.len() as u64) as usize)
    else {
        return Money {
            free: true,
            ..Default::default()
        };
    };
    resync(w, i);
    let v = w.m.videos[i].clone();
    let caller = if r.below(4) == 0 {
        pick(r, &w.people)
    } else {
        v.owner
    };
    let file = GenFile::new(r.next_u64(), 1 + r.below(30_000), 1_000 + r.below(11_000));
    let spec = canvid_tests::clients::spec_for(&file, r.below(2) == 0);
    let video = w.d.video(v.id);
    let a = video.begin_upload(caller, &spec);
    // Ingress: inspect_message refuses strangers and uploads after Ready.
    let expect = if caller != v.owner || v.file.is_some() {
        Expect::Refused
    } else {
        Expect::Ok
    };
    agree(step, "begin_upload", &expect, &got(&a), false);
    if expect == Expect::Ok {
        video.upload_chunks(caller, &file, None);
        let f = video.finish_upload(caller);
        agree(step, "finish_upload", &Expect::Ok, &got(&f), false);
        fig(|x| x.messages += file.chunk_count() as u64);
        w.m.videos[i].file = Some(file);
    }
    check_uploads(w, step);
    Money {
        free: true,
        ..Default::default()
    }
}

/// `change_owner` or `offer_ownership` + `accept_ownership`, between random principals.
fn transfer_step(w: &mut World, r: &mut Rng, step: usize, faulted: bool) -> Money {
    if w.m.videos.is_empty() {
        return Money {
            free: true,
            ..Default::default()
        };
    }
    let i = r.below(w.m.videos.len() as u64) as usize;
    resync(w, i);
    let v = w.m.videos[i].clone();
    let video = w.d.video(v.id);
    // A transfer a fault interrupted may still be in flight (its reconciliation runs on a
    // timer): then `inspect_message` refuses every other transfer until it settles.
    if v.unsettled && video.canister_info().transfer_in_flight {
        let a = video.change_owner(v.owner, pick(r, &w.people[..4]));
        agree(
            step,
            "change_owner while one is in flight",
            &Expect::Refused,
            &got(&a),
            false,
        );
        return Money {
            loose: true,
            ..Default::default()
        };
    }
    let caller = if !faulted && r.below(4) == 0 {
        pick(r, &w.people)
    } else {
        v.owner
    };
    let to = match r.below(if faulted { 20 } else { 10 }) {
        0 => Principal::anonymous(),
        1 => v.owner,
        2 => w.m.index,
        3 => w.m.spawn,
        4 => v.id,
        _ => pick(r, &w.people[..4]),
    };
    let bad_owner = to == Principal::anonymous()
        || to == v.owner
        || to == v.id
        || to == w.m.index
        || to == w.m.spawn;
    // The video reads its own controllers: before the spawn's controllers step it is not one,
    // and the transfer fails (CallFailed), changing nothing.
    let record = w.d.spawn_client().get_video(v.id).unwrap();
    let set_up = record.status != SpawnStatus::Installed;
    let two_step = r.below(3) == 0;
    // After a fault in the spawn's controllers step, its record may say `Installed` while the
    // controllers were written (a trap in the callback of `update_settings`): then the transfer
    // may go either way, and the recovery checks the outcome.
    let unsure = v.unsettled && !set_up;
    UNSURE.with(|u| u.set(unsure));
    let expect = if caller != v.owner {
        Expect::Refused
    } else if bad_owner {
        Expect::Err("InvalidArgument")
    } else if !set_up && !two_step && !unsure {
        Expect::Err("CallFailed")
    } else {
        Expect::Ok
    };
    let (name, g, result) = if two_step {
        let a = video.offer_ownership(caller, to, None);
        agree(step, "offer_ownership", &expect, &got(&a), false);
        if expect != Expect::Ok {
            return Money {
                free: true,
                ..Default::default()
            };
        }
        w.m.videos[i].offer = Some(to);
        // Accepted by the offered principal, or tried by someone else first (refused).
        let acceptor = if r.below(4) == 0 {
            pick(r, &w.people)
        } else {
            to
        };
        if acceptor != to {
            let a = video.accept_ownership(acceptor);
            agree(
                step,
                "accept_ownership by another",
                &Expect::Refused,
                &got(&a),
                false,
            );
        }
        let a = video.accept_ownership(to);
        let g = got(&a);
        ("accept_ownership", g, a.ok().and_then(|x| x.ok()))
    } else {
        let a = video.change_owner(caller, to);
        let g = got(&a);
        ("change_owner", g, a.ok().and_then(|x| x.ok()))
    };
    let expect_now = if two_step && !set_up && !unsure {
        Expect::Err("CallFailed")
    } else {
        expect.clone()
    };
    if !two_step && expect != Expect::Ok {
        agree(step, name, &expect, &g, false);
        return Money {
            free: true,
            ..Default::default()
        };
    }
    agree(step, name, &expect_now, &g, faulted || unsure);
    let meta = video.metadata();
    let vm = w.m.video(v.id);
    match (&g, result) {
        (Got::Ok, Some(res)) => {
            vm.owner = to;
            vm.transfer_seq += 1;
            vm.offer = None;
            check(
                meta.owner == to && res.transfer_seq == vm.transfer_seq,
                || format!("step {step}: {name} acknowledged, but {meta:?}"),
            );
            if faulted {
                vm.unsettled = true;
            } else if vm.file.is_none() {
                // Before the hand-over: app-level only, the index learns it at finish_upload.
                check(
                    res.owner_controls == Some(false) && !res.index_notified,
                    || format!("step {step}: {name} of an unfinished video: {res:?}"),
                );
            } else if !vm.unsettled && record.status == SpawnStatus::Registered {
                // (An unsettled video may not be registered yet: the index refuses its report
                // until then, and the video's retry timer delivers it later.)
                check(res.index_notified, || {
                    format!("step {step}: {name}: index not notified without a fault: {record:?}")
                });
            } else if std::env::var_os("CANVID_PROPERTY_TRACE").is_some() {
                eprintln!(
                    "step {step}: {name}: notified {} (unsettled {}, {:?})",
                    res.index_notified, vm.unsettled, record.status
                );
            }
        }
        _ => {
            // Failed: in effect or not (a fault may cut it after the controllers changed, then
            // the reconciliation commits it); never someone else.
            check(meta.owner == v.owner || meta.owner == to, || {
                format!("step {step}: {name} failed, owner is {}", meta.owner)
            });
            if faulted || unsure {
                vm.unsettled = true;
                vm.open_transfer = Some(to);
            }
        }
    }
    let vm = vm.clone();
    if !vm.unsettled {
        let c = set(w.b.controllers(v.id));
        check(c == expected_controllers(&vm, w.m.spawn, set_up), || {
            format!("step {step}: {name}: controllers {c:?} for {vm:?}")
        });
        check(
            meta.owner == vm.owner && meta.transfer_seq == vm.transfer_seq,
            || format!("step {step}: {name}: {meta:?} vs model {vm:?}"),
        );
    }
    Money {
        loose: true,
        ..Default::default()
    }
}

fn upgrade_step(w: &mut World, r: &mut Rng, step: usize, caller: Principal) -> Money {
    let spawn = r.below(2) == 0;
    let upgrade = |w: &World| {
        if spawn {
            let arg = candid::encode_one(None::<canvid_types::spawn::SpawnInit>).unwrap();
            w.b.upgrade(w.d.spawn, w.spawn_wasm.clone(), arg, Some(caller))
        } else {
            let arg = candid::encode_one(None::<canvid_types::index::IndexInit>).unwrap();
            w.b.upgrade(w.d.index, canvid_tests::wasm::index(), arg, Some(caller))
        }
    };
    let mut res = upgrade(w);
    // The IC rate-limits install_code per canister (IC0209 for an upgrade soon after the
    // deployment's install, as on PocketIC): time passes, as in the time step, and it retries.
    for _ in 0..10 {
        match &res {
            Err(e) if e.error_code == "IC0209" && caller == w.m.admin => {
                w.b.advance_time(Duration::from_secs(61));
                for _ in 0..4 {
                    w.b.tick();
                }
                res = upgrade(w);
            }
            _ => break,
        }
    }
    let what = if spawn { "spawn" } else { "index" };
    fig(|f| f.messages += 1);
    if caller == w.m.admin {
        res.unwrap_or_else(|e| panic!("step {step}: {what} upgrade by its controller: {e}"));
    } else {
        check(res.is_err(), || {
            format!("step {step}: {what} upgraded by a non-controller {caller}")
        });
    }
    // The configuration and accounts survive (checked after every step); so do the lists.
    Money {
        loose: true,
        ..Default::default()
    }
}

/// A video a fault left unsettled: the model takes its owner from the video (one of the two the
/// model allowed, checked when the fault happened) until the next recovery checks it all.
fn resync(w: &mut World, i: usize) {
    if !w.m.videos[i].unsettled {
        return;
    }
    let video = w.d.video(w.m.videos[i].id);
    let meta = video.metadata();
    let in_flight = video.canister_info().transfer_in_flight;
    w.m.videos[i].settle(&meta, in_flight, "before a step");
}

fn check_uploads(w: &World, step: usize) {
    for v in &w.m.videos {
        if let Some(file) = &v.file {
            // One chunk per video every time (all of them at each recovery).
            let i = (step as u32) % file.chunk_count();
            let got = w.d.video(v.id).get_chunk(v.owner, i);
            check(
                matches!(&got, Ok(Ok(bytes)) if bytes.as_slice() == file.chunk(i).as_slice()),
                || {
                    format!(
                        "step {step}: acknowledged chunk {i} of {} lost: {got:?}",
                        v.id
                    )
                },
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recovery and the global invariants
// ---------------------------------------------------------------------------------------------

/// Faults stop; time passes beyond the back-offs; the admin's `retry_pending`; then owner,
/// controllers, spawn records and index must agree, and nothing acknowledged is lost.
fn recover(w: &mut World, step: usize) {
    fig(|f| f.recoveries += 1);
    w.b.replica.clear_faults();
    for _ in 0..3 {
        w.b.advance_time(Duration::from_secs(7_200));
        for _ in 0..6 {
            w.b.tick();
        }
        let _ = w.d.spawn_client().retry_pending(w.m.admin);
        w.b.replica.run_until_idle();
    }
    let spawn = w.d.spawn_client();
    let index = w.d.index_client();
    let stats = spawn.stats();
    let ctx = format!("step {step} (recovered)");
    check(stats.in_flight.is_empty() && stats.outbox == 0, || {
        format!(
            "{ctx}: in flight {:?}, outbox {}",
            stats.in_flight, stats.outbox
        )
    });
    for vm in &mut w.m.videos {
        let meta = w.d.video(vm.id).metadata();
        let info = w.d.video(vm.id).canister_info();
        // A transfer of an unfinished video waits in the video's outbox for the hand-over.
        let waits = vm.file.is_none() && vm.transfer_seq > 0;
        check(
            !info.transfer_in_flight && (info.pending_index_notification.is_none() || waits),
            || {
                format!(
                    "{ctx}: {} left a transfer or a notification: {info:?}",
                    vm.id
                )
            },
        );
        let record = spawn.get_video(vm.id).unwrap();
        check(record.status == SpawnStatus::Registered, || {
            format!("{ctx}: {} left {:?}", vm.id, record)
        });
        // An open transfer's outcome (the reconciliation committed it or not), then the owner
        // and transfer_seq must be the model's.
        vm.settle(&meta, info.transfer_in_flight, &ctx);
        check(vm.open_transfer.is_none(), || {
            format!("{ctx}: {} transfer still open", vm.id)
        });
        vm.unsettled = false;
        let c = set(w.b.controllers(vm.id));
        check(c == expected_controllers(vm, w.m.spawn, true), || {
            format!("{ctx}: {} controllers {c:?} vs model {vm:?}", vm.id)
        });
        let entry = index.get_video(vm.id);
        let (owner, seq) = vm.indexed();
        check(
            entry.as_ref().map(|e| (e.owner, e.creator, e.transfer_seq))
                == Some((owner, vm.creator, seq)),
            || format!("{ctx}: index entry {entry:?} vs model {vm:?}"),
        );
    }
    // The index's lists: by owner and by creator, exactly the model's.
    let mut everyone: BTreeSet<Principal> = w.people.iter().copied().collect();
    everyone.insert(w.m.relay);
    for p in everyone {
        let by_owner = set(index.by_owner(p).iter().map(|e| e.video));
        let want = set(w
            .m
            .videos
            .iter()
            .filter(|v| v.indexed().0 == p)
            .map(|v| v.id));
        check(by_owner == want, || {
            format!("{ctx}: index lists {by_owner:?} for owner {p}, model {want:?}")
        });
        let by_creator = set(index.by_creator(p).iter().map(|e| e.video));
        let want = set(w.m.videos.iter().filter(|v| v.creator == p).map(|v| v.id));
        check(by_creator == want, || {
            format!("{ctx}: index lists {by_creator:?} for creator {p}, model {want:?}")
        });
    }
    let spares: usize = w.m.spares.values().map(Vec::len).sum();
    check(index.stats().videos == w.m.videos.len() as u64, || {
        format!(
            "{ctx}: index has {} videos, model {}",
            index.stats().videos,
            w.m.videos.len()
        )
    });
    check(
        stats.spares == spares as u64 && stats.videos_created as usize == w.m.videos.len() + spares,
        || {
            format!(
                "{ctx}: spawn stats {stats:?}, model {} videos + {spares} spares",
                w.m.videos.len()
            )
        },
    );
    // index + spawn + relay + every canister the spawn created: no orphan.
    let count = w.b.canister_count();
    check(count == 3 + (w.m.videos.len() + spares) as u64, || {
        format!(
            "{ctx}: {count} canisters, model {} + {spares} spares",
            w.m.videos.len()
        )
    });
    // Every acknowledged upload, every chunk.
    for v in &w.m.videos {
        if let Some(file) = &v.file {
            w.d.video(v.id).verify_chunks(v.owner, file);
            fig(|f| f.invariants += u64::from(file.chunk_count()));
        }
    }
    check_accounts(w, step);
}

/// Found while writing the property test (its upgrade steps now inject rejects on
/// `stop_canister` and `install_code` only, which `upgrade_stopped` survives). Steps: a video
/// created through the spawn; `upgrade_videos` by the admin while the management canister
/// rejects its `start_canister` (once, `SysTransient`); then the recovery the spawn documents
/// (time past the back-offs, rounds, `retry_pending`). Expected: the video runs again (the
/// spawn retries the start, or `retry_pending` does). Actual: `upgrade_videos` reports
/// `CallFailed start_canister` for it and nothing ever starts it: the video stays stopped, every
/// call to it (its owner's uploads, `metadata`, HTTP) is rejected IC0508 until an admin runs
/// `upgrade_videos` for it again. The same happens when a callback after the stop traps (a trap
/// in `install_code`'s callback): the future is dropped with the video stopped.
#[test]
fn upgrade_videos_leaves_a_video_stopped_when_its_restart_fails() {
    let b = ReplicaBackend::new();
    let d = deploy(&b);
    let owner = principal("stopped-owner");
    let created = canvid_tests::clients::ok(
        "create_video",
        d.spawn_client().create_video(
            owner,
            &CreateVideoArgs {
                title: "stopped".into(),
                description: String::new(),
                tags: vec![],
                declared_size: 1_000,
                owner: None,
            },
        ),
    );
    b.replica.inject_fault(FaultRule::once(
        "start_canister",
        Fault::Reject(RejectCode::SysTransient, "injected: queue full".into()),
    ));
    let outcomes = canvid_tests::clients::ok(
        "upgrade_videos",
        d.spawn_client().upgrade_videos(
            d.admin,
            &UpgradeArgs {
                videos: None,
                arg: None,
            },
        ),
    );
    b.replica.clear_faults();
    assert_eq!(b.replica.faults_fired(), 1);
    assert!(outcomes[0].result.is_err(), "{outcomes:?}");
    for _ in 0..3 {
        b.advance_time(Duration::from_secs(7_200));
        for _ in 0..6 {
            b.tick();
        }
        let _ = d.spawn_client().retry_pending(d.admin);
        b.replica.run_until_idle();
    }
    let status = b.status(created.canister_id, Some(d.spawn)).unwrap();
    assert_eq!(
        status.status,
        canvid_tests::RunState::Running,
        "the video stayed stopped after upgrade_videos reported {outcomes:?}"
    );
}

/// Found by the property test (seed 12, 120 steps: step 22 parks a spare, step 25 reuses it,
/// step 39's transfer fails). Steps: caller C asks for a video owned by X; both install
/// attempts fail (here `install_code` rejected twice; a trap in its callback does the same), so
/// the canister, created with controllers [X, spawn], is parked as C's spare. C then creates a
/// video for itself (`owner: None`): the spare is reused (reinstalled for owner C) and the call
/// succeeds. Expected: controllers {C, video, spawn}, like any new video. Actual: [X, spawn] —
/// the spawn's controllers step (`logic::plan_controllers`) sees the recorded owner C missing
/// from the controllers, takes it for a video sold meanwhile and writes nothing: X, who owns
/// nothing, controls C's video (and could take its cycles or reinstall it); C does not; and
/// the video cannot transfer itself (`change_owner` fails with `CallFailed`, not a controller).
#[test]
fn a_spare_reused_for_another_owner_keeps_the_first_owners_controllers() {
    let b = ReplicaBackend::new();
    let d = deploy(&b);
    let (c, x) = (principal("spare-caller"), principal("spare-first-owner"));
    let args = |owner| CreateVideoArgs {
        title: "spare".into(),
        description: String::new(),
        tags: vec![],
        declared_size: 1_000,
        owner,
    };
    b.replica.inject_fault(
        FaultRule::once(
            "install_code",
            Fault::Reject(RejectCode::SysTransient, "injected: queue full".into()),
        )
        .times(2),
    );
    let failed = d.spawn_client().create_video(c, &args(Some(x)));
    b.replica.clear_faults();
    assert!(matches!(failed, Ok(Err(_))), "{failed:?}");
    let spare = d.spawn_client().quota_of(c).spares;
    assert_eq!(spare.len(), 1, "parked as a spare");
    let created = canvid_tests::clients::ok(
        "create_video",
        d.spawn_client().create_video(c, &args(None)),
    );
    assert_eq!(created.canister_id, spare[0], "the spare was reused");
    let id = created.canister_id;
    assert_eq!(d.video(id).metadata().owner, c);
    // The first request's owner X controls nothing; C gets control when the upload is finished.
    assert_eq!(
        set(b.controllers(id)),
        set([id, d.spawn]),
        "the controllers of a set-up video whose upload is not finished"
    );
    d.video(id).upload(c, &GenFile::new(7, 1_000, 1_000));
    assert_eq!(
        set(b.controllers(id)),
        set([c, id, d.spawn]),
        "the owner and the controllers disagree"
    );
}
