//! Fault injection (issue 15): every inter-canister and management call the user actions make —
//! upload through spawn (`create_video` + upload), stream/get, list via the index, change owner —
//! is made to reject, trap in its callback, or time out, one await point at a time; the system is
//! then left to recover (timers, the spawn's `retry_pending`, the index's own checks) and the
//! invariants are asserted:
//!
//! * no acknowledged chunk is lost or changed;
//! * the owner the video records, its controllers, the spawn's record and the index agree;
//! * nothing is left half done: no creation in flight, an empty outbox, every canister the spawn
//!   created either registered or parked as a spare that the payer's next `create_video` reuses,
//!   and no canister nobody knows about;
//! * the spawn pool only falls by about what a fault-free creation costs.
//!
//! Recovery is faulted too (`spawn_recovery_with_faults_in_its_own_calls`,
//! `video_recovery_with_faults_in_its_own_calls`): the calls of the spawn's retry timer and
//! `retry_pending`, of the video's notification retry timer and of `reconcile_transfer` fail on
//! two attempts in a row; once the faults stop, the timers alone must converge.
//!
//! The await points are not hard-coded: each action runs once without faults and the replica's
//! call log ([`canvid_replica::Replica::take_call_log`]) lists the calls it made; then the action
//! runs again once per (call, fault kind).
//!
//! Embedded replica only (plain `#[test]`s, not `backend_tests!`): PocketIC has no way to make a
//! canister's call reject, trap in its callback or time out on demand, so these scenarios cannot
//! run there.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use canvid_replica::{CallRecord, Fault, FaultRule, RejectCode};
use canvid_tests::clients::{ok, Video};
use canvid_tests::deploy::{deploy, Deployment};
use canvid_tests::{principal, Backend, BackendExt, GenFile, Principal, ReplicaBackend};
use canvid_types::spawn::{CreateVideoArgs, SpawnStatus};
use canvid_types::video::{ControlStatus, VideoMetadata, VideoStatus};

/// What a run counts.
#[derive(Default, Debug)]
struct Figures {
    scenarios: u32,
    faults: u64,
    invariants: u32,
}

fn set(v: impl IntoIterator<Item = Principal>) -> BTreeSet<Principal> {
    v.into_iter().collect()
}

/// The controllers a spawned video has when nothing is in flight: itself and the spawn, and its
/// owner once the upload is finished and control was handed over (security review M3).
fn expected_controllers(
    meta: &VideoMetadata,
    id: Principal,
    spawn: Principal,
) -> BTreeSet<Principal> {
    match meta.control {
        Some(ControlStatus::Owner) | None => set([meta.owner, id, spawn]),
        Some(_) => set([id, spawn]),
    }
}

/// The await points of a logged action: each call with its occurrence number among the calls
/// with the same (caller, callee, method).
fn await_points(log: &[CallRecord]) -> Vec<(CallRecord, u32)> {
    let mut seen: HashMap<(Principal, Principal, String), u32> = HashMap::new();
    log.iter()
        .map(|c| {
            let n = seen
                .entry((c.caller, c.callee, c.method.clone()))
                .or_default();
            *n += 1;
            (c.clone(), *n - 1)
        })
        .collect()
}

/// Prints an action's await points (caller, method, occurrence), for the test log.
fn show_await_points(action: &str, points: &[(CallRecord, u32)]) {
    eprintln!(
        "{action} await points: {:?}",
        points
            .iter()
            .map(|(c, n)| format!(
                "{}->{}#{n}{}",
                c.caller,
                c.method,
                if c.bounded { " (bounded)" } else { "" }
            ))
            .collect::<Vec<_>>()
    );
}

/// The faults worth injecting at one call.
fn kinds(call: &CallRecord) -> Vec<Fault> {
    let mut k = vec![
        Fault::Reject(RejectCode::SysTransient, "injected: queue full".into()),
        Fault::Reject(RejectCode::CanisterError, "injected: callee trapped".into()),
        Fault::TrapInCallback,
    ];
    // Unbounded-wait calls never time out on the IC.
    if call.bounded {
        k.push(Fault::Timeout);
    }
    k
}

fn rule(call: &CallRecord, nth: u32, kind: Fault) -> FaultRule {
    FaultRule {
        caller: Some(call.caller),
        callee: Some(call.callee),
        method: Some(call.method.clone()),
        skip: nth,
        times: 1,
        kind,
    }
}

struct World<'a> {
    r: &'a ReplicaBackend,
    d: Deployment<'a>,
    fig: Figures,
    /// Creations whose `create_canister` callback trapped: the canister exists but the spawn
    /// never learnt its id (see [`orphaned_by_a_trap`]).
    orphans: u64,
}

/// The one outcome the spawn documents as not recoverable (`SpawnStore::recover_op`,
/// docs/spawn-and-index.md): when the callback of `create_canister` traps, the rollback loses
/// the new canister's id, so the canister is out of the spawn's reach and the operation stays in
/// flight, its step saying so and what was paid, for an admin to see in `stats`.
fn orphaned_by_a_trap(f: &canvid_types::spawn::InFlight) -> bool {
    f.canister_id.is_none()
        && f.step
            .starts_with("interrupted before a canister was recorded")
}

impl<'a> World<'a> {
    /// A fresh deployment (index + spawn) on `r`, nothing counted yet.
    fn new(r: &'a ReplicaBackend) -> Self {
        World {
            r,
            d: deploy(r),
            fig: Figures::default(),
            orphans: 0,
        }
    }

    fn check(&mut self, cond: bool, what: impl FnOnce() -> String) {
        self.fig.invariants += 1;
        assert!(cond, "{}", what());
    }

    /// Timers (the video's notification retry, the spawn's outbox and in-flight recovery) and
    /// the admin's `retry_pending`, until nothing is left to do.
    fn recover(&self) {
        for _ in 0..3 {
            // Past the longest first backoff (60 s) and the reconcile timer.
            self.r.advance_time(Duration::from_secs(120));
            for _ in 0..6 {
                self.r.tick();
            }
            let _ = self.d.spawn_client().retry_pending(self.d.admin);
            self.r.replica.run_until_idle();
        }
    }

    fn create(&self, owner: Principal) -> Result<Principal, String> {
        self.create_declared(owner, 300_000)
    }

    fn create_declared(&self, owner: Principal, declared_size: u64) -> Result<Principal, String> {
        let args = CreateVideoArgs {
            title: "faulty".into(),
            description: String::new(),
            tags: vec![],
            declared_size,
            owner: None,
        };
        match self.d.spawn_client().create_video(owner, &args) {
            Ok(Ok(v)) => Ok(v.canister_id),
            Ok(Err(e)) => Err(format!("{e:?}")),
            Err(r) => Err(r.to_string()),
        }
    }

    /// The global invariants, after recovery.
    fn invariants(&mut self, ctx: &str) {
        let spawn = self.d.spawn_client();
        let stats = spawn.stats();
        let stuck = stats.in_flight.iter().filter(|f| !orphaned_by_a_trap(f));
        self.check(stuck.count() == 0, || {
            format!("{ctx}: creations still in flight: {:?}", stats.in_flight)
        });
        let (orphans, expected) = (stats.in_flight.len() as u64, self.orphans);
        self.check(orphans == expected, || {
            format!("{ctx}: {orphans} creations lost their canister, expected {expected}")
        });
        self.check(stats.outbox == 0, || {
            format!("{ctx}: outbox not drained: {}", stats.outbox)
        });
        let videos = spawn.all_videos(self.d.admin);
        let index = self.d.index_client();
        let mut registered = 0u64;
        for v in &videos {
            match v.status {
                SpawnStatus::Registered => {
                    registered += 1;
                    let meta = self.d.video(v.canister_id).metadata();
                    let entry = index.get_video(v.canister_id);
                    let controllers = set(self.r.controllers(v.canister_id));
                    self.check(
                        controllers == expected_controllers(&meta, v.canister_id, self.d.spawn),
                        || {
                            format!(
                                "{ctx}: {} controllers {controllers:?} vs owner {}",
                                v.canister_id, meta.owner
                            )
                        },
                    );
                    self.check(entry.as_ref().map(|e| e.owner) == Some(meta.owner), || {
                        format!("{ctx}: index {entry:?} vs owner {}", meta.owner)
                    });
                    let listed = index
                        .by_owner(meta.owner)
                        .iter()
                        .any(|e| e.video == v.canister_id);
                    self.check(listed, || {
                        format!(
                            "{ctx}: the index does not list {} for its owner",
                            v.canister_id
                        )
                    });
                    self.check(
                        entry.as_ref().map(|e| e.transfer_seq) == Some(meta.transfer_seq),
                        || format!("{ctx}: index {entry:?} vs seq {}", meta.transfer_seq),
                    );
                }
                SpawnStatus::Spare => {
                    self.check(index.get_video(v.canister_id).is_none(), || {
                        format!("{ctx}: spare {} is listed by the index", v.canister_id)
                    });
                }
                s => self.check(false, || {
                    format!("{ctx}: {} left in status {s:?}", v.canister_id)
                }),
            }
        }
        self.check(index.stats().videos == registered, || {
            format!(
                "{ctx}: index lists {} videos, spawn registered {registered}",
                index.stats().videos
            )
        });
        // index + spawn + every canister the spawn knows: no orphan.
        let count = self.r.canister_count();
        self.check(count == 2 + videos.len() as u64 + expected, || {
            format!(
                "{ctx}: {count} canisters, spawn knows {} (+{expected} orphans)",
                videos.len()
            )
        });
    }
}

/// `create_video` (and an upload to what it created) with a fault at each of its await points.
#[test]
fn create_video_with_a_fault_at_every_await_point() {
    let r = ReplicaBackend::new();
    let mut w = World::new(&r);
    let file = GenFile::new(15, 120_000, 50_000);
    let _ = r.replica.take_call_log();
    let before = w.d.spawn_client().stats().balance;
    let first = w.create(principal("owner-0")).expect("fault-free creation");
    let log = r.replica.take_call_log();
    let cost = before - w.d.spawn_client().stats().balance;
    w.recover();
    let _ = r.replica.take_call_log();
    w.invariants("fault-free");
    let video = w.d.video(first);
    video.upload(principal("owner-0"), &file);
    let points = await_points(&log);
    assert!(points.len() >= 4, "creation await points: {points:?}");
    show_await_points("create_video", &points);
    let mut i = 0;
    for (call, nth) in &points {
        for kind in kinds(call) {
            i += 1;
            let owner = principal(&format!("owner-{i}"));
            let ctx = format!("create_video, {kind:?} at {}#{nth}", call.method);
            let fired = r.replica.faults_fired();
            let balance = w.d.spawn_client().stats().balance;
            let mut rule = rule(call, *nth, kind.clone());
            if call.method == "metadata" {
                // The spawn asks the video it just created: a new canister each time.
                rule.callee = None;
            }
            r.replica.inject_fault(rule);
            let outcome = w.create(owner);
            r.replica.clear_faults();
            if call.method == "create_canister" && kind == Fault::TrapInCallback {
                w.orphans += 1;
            }
            w.fig.faults += r.replica.faults_fired() - fired;
            w.check(r.replica.faults_fired() == fired + 1, || {
                format!("{ctx}: the fault did not fire")
            });
            w.recover();
            w.invariants(&ctx);
            // The owner gets a working video: the one created, or (after a failure) a new
            // attempt, which reuses a parked spare.
            let id = match outcome {
                Ok(id) => id,
                Err(_) => {
                    let spares = w.d.spawn_client().stats().spares;
                    let id = w
                        .create(owner)
                        .unwrap_or_else(|e| panic!("{ctx}: retry failed: {e}"));
                    let after = w.d.spawn_client().stats().spares;
                    w.check(after <= spares, || format!("{ctx}: spares grew on retry"));
                    w.recover();
                    w.invariants(&format!("{ctx}, retried"));
                    id
                }
            };
            let meta = w.d.video(id).metadata();
            w.check(meta.owner == owner, || {
                format!("{ctx}: owner {} instead of {owner}", meta.owner)
            });
            // Loosely: a faulted creation (with its retry) costs the pool at most about two
            // fault-free ones.
            let spent = balance.saturating_sub(w.d.spawn_client().stats().balance);
            w.check(spent <= 2 * cost + cost / 2, || {
                format!("{ctx}: the pool fell by {spent}, a creation costs {cost}")
            });
            let v = w.d.video(id);
            v.upload(owner, &file);
            v.verify_chunks(owner, &file);
            w.fig.scenarios += 1;
            let _ = r.replica.take_call_log();
        }
    }
    // The first video's chunks survived every fault around it.
    video.verify_chunks(principal("owner-0"), &file);
    let spares = w.d.spawn_client().stats().spares;
    w.check(spares == 0, || format!("{spares} spares never reused"));
    eprintln!("create_video faults: {:?}", w.fig);
}

/// `change_owner` (and the index's check of the report) with a fault at each await point;
/// the uploaded chunks stay readable throughout.
#[test]
fn change_owner_with_a_fault_at_every_await_point() {
    let r = ReplicaBackend::new();
    let mut w = World::new(&r);
    let file = GenFile::new(16, 120_000, 50_000);
    let creator = principal("creator");
    let id = w.create(creator).expect("creation");
    w.recover();
    let v: Video = w.d.video(id);
    v.upload(creator, &file);
    let _ = r.replica.take_call_log();
    let mut owner = principal("owner-0");
    ok("change_owner", v.change_owner(creator, owner));
    let log = r.replica.take_call_log();
    w.recover();
    let _ = r.replica.take_call_log();
    w.invariants("fault-free transfer");
    let points = await_points(&log);
    show_await_points("change_owner", &points);
    assert!(points.len() >= 3, "change_owner await points: {points:?}");
    let mut i = 0;
    for (call, nth) in &points {
        for kind in kinds(call) {
            i += 1;
            let to = principal(&format!("owner-{i}"));
            let ctx = format!("change_owner, {kind:?} at {}#{nth}", call.method);
            let fired = r.replica.faults_fired();
            let seq = v.metadata().transfer_seq;
            r.replica.inject_fault(rule(call, *nth, kind.clone()));
            let outcome = v.change_owner(owner, to);
            r.replica.clear_faults();
            w.fig.faults += r.replica.faults_fired() - fired;
            w.check(r.replica.faults_fired() == fired + 1, || {
                format!("{ctx}: the fault did not fire")
            });
            w.recover();
            w.invariants(&ctx);
            let meta = v.metadata();
            match outcome {
                Ok(Ok(res)) => {
                    w.check(
                        meta.owner == to && meta.transfer_seq == res.transfer_seq,
                        || format!("{ctx}: acknowledged transfer not in effect: {meta:?}"),
                    );
                }
                // A failed transfer either never happened or was found to have taken effect.
                other => w.check(meta.owner == to || meta.owner == owner, || {
                    format!("{ctx}: owner {} after {other:?}", meta.owner)
                }),
            }
            w.check(meta.transfer_seq <= seq + 1, || {
                format!("{ctx}: seq jumped from {seq} to {}", meta.transfer_seq)
            });
            if meta.owner != to {
                // Not in effect: the transfer can be made again now.
                ok(&format!("{ctx}: retry"), v.change_owner(owner, to));
                w.recover();
                w.invariants(&format!("{ctx}, retried"));
            }
            owner = to;
            w.check(v.metadata().owner == owner, || format!("{ctx}: owner"));
            v.verify_chunks(owner, &file);
            w.fig.invariants += 1;
            w.fig.scenarios += 1;
            let _ = r.replica.take_call_log();
        }
    }
    eprintln!("change_owner faults: {:?}", w.fig);
}

/// The holder's `icrc7_transfer` through the collection, with a fault at each of its await
/// points (the collection's `canister_info` before and after, its call to the video, the
/// video's own steps and its ownership report, the metadata refresh): after recovery (timers,
/// including the collection's recovery of a transfer whose outcome it could not read) the
/// video, its controllers, the index and `icrc7_owner_of` agree, the token is not left locked,
/// an acknowledged transfer is in effect, and a failed one either never happened or is in
/// effect as the IC shows.
#[test]
fn icrc7_transfer_with_a_fault_at_every_await_point() {
    use candid::Nat;
    use canvid_types::icrc::{token_id_of, Account, TransferArg, TransferError, TransferResult};
    let r = ReplicaBackend::new();
    let mut w = World::new(&r);
    let file = GenFile::new(17, 60_000, 30_000);
    let creator = principal("nft-creator");
    let id = w.create(creator).expect("creation");
    w.recover();
    let v: Video = w.d.video(id);
    v.upload(creator, &file);
    w.recover();
    let tid = token_id_of(&id).expect("a canister id");
    let index = w.d.index;
    let transfer = |from: Principal, to: Principal| -> Result<TransferResult, String> {
        let out: Result<Vec<Option<TransferResult>>, _> = r.update1(
            index,
            from,
            "icrc7_transfer",
            &vec![TransferArg {
                from_subaccount: None,
                to: Account::of(to),
                token_id: Nat::from(tid),
                memo: None,
                created_at_time: None,
            }],
        );
        out.map_err(|e| e.to_string())
            .map(|v| v.into_iter().next().flatten().expect("one answer"))
    };
    let owner_of = || -> Option<Principal> {
        let o: Vec<Option<Account>> = r
            .query1(
                index,
                Principal::anonymous(),
                "icrc7_owner_of",
                &vec![Nat::from(tid)],
            )
            .unwrap();
        o.into_iter().next().flatten().map(|a| a.owner)
    };
    // The collection's recovery settles a transfer 10 minutes after it started.
    let recover = |w: &World| {
        w.recover();
        w.r.advance_time(Duration::from_secs(11 * 60));
        for _ in 0..6 {
            w.r.tick();
        }
        w.recover();
    };
    let _ = r.replica.take_call_log();
    let mut owner = principal("nft-owner-0");
    assert!(matches!(transfer(creator, owner), Ok(Ok(_))));
    recover(&w);
    let log = r.replica.take_call_log();
    w.invariants("fault-free icrc7_transfer");
    let points = await_points(&log);
    show_await_points("icrc7_transfer", &points);
    assert!(points.len() >= 5, "icrc7_transfer await points: {points:?}");
    let mut i = 0;
    for (call, nth) in &points {
        for kind in kinds(call) {
            i += 1;
            let to = principal(&format!("nft-owner-{i}"));
            let ctx = format!(
                "icrc7_transfer, {kind:?} at {}->{}#{nth}",
                call.caller, call.method
            );
            let fired = r.replica.faults_fired();
            r.replica.inject_fault(rule(call, *nth, kind.clone()));
            let outcome = transfer(owner, to);
            r.replica.clear_faults();
            w.fig.faults += r.replica.faults_fired() - fired;
            recover(&w);
            w.invariants(&ctx);
            let meta = v.metadata();
            w.check(owner_of() == Some(meta.owner), || {
                format!(
                    "{ctx}: icrc7_owner_of {:?} vs the video's owner {}",
                    owner_of(),
                    meta.owner
                )
            });
            match &outcome {
                Ok(Ok(_)) => w.check(meta.owner == to, || {
                    format!(
                        "{ctx}: acknowledged transfer not in effect: owner {}",
                        meta.owner
                    )
                }),
                other => w.check(meta.owner == to || meta.owner == owner, || {
                    format!("{ctx}: owner {} after {other:?}", meta.owner)
                }),
            }
            if meta.owner != to {
                // Not in effect, and not locked: the transfer can be made again now.
                let again = transfer(owner, to);
                w.check(matches!(again, Ok(Ok(_))), || {
                    format!("{ctx}: retry answered {again:?}")
                });
                recover(&w);
                w.invariants(&format!("{ctx}, retried"));
            }
            owner = to;
            w.check(owner_of() == Some(owner), || format!("{ctx}: owner_of"));
            // The old holder can do nothing.
            let stale = transfer(principal("nft-creator"), principal("thief"));
            w.check(
                !matches!(stale, Ok(Ok(_)))
                    && !matches!(stale, Ok(Err(TransferError::Duplicate { .. }))),
                || format!("{ctx}: a former holder's transfer answered {stale:?}"),
            );
            v.verify_chunks(owner, &file);
            w.fig.scenarios += 1;
            let _ = r.replica.take_call_log();
        }
    }
    eprintln!("icrc7_transfer faults: {:?}", w.fig);
}

/// Regression: a trap in a callback of `change_owner` (here after `update_settings` applied the
/// new controllers) used to leave the transfer marker behind — the video answered `Busy` to
/// every later transfer and its owner disagreed with its controllers until an upgrade. The
/// cleanup now schedules the reconciliation `post_upgrade` runs.
#[test]
fn a_trapped_transfer_callback_is_reconciled() {
    let r = ReplicaBackend::new();
    let mut w = World::new(&r);
    let creator = principal("creator");
    let id = w.create(creator).expect("creation");
    let v = w.d.video(id);
    v.upload(creator, &GenFile::new(17, 1_000, 1_000));
    let to = principal("new owner");
    r.replica
        .inject_fault(FaultRule::once("update_settings", Fault::TrapInCallback));
    let e = v
        .change_owner(creator, to)
        .expect_err("the callback trapped");
    assert_eq!(e.error_code, "IC0503", "{e}");
    assert_eq!(r.replica.faults_fired(), 1);
    // The controllers changed before the trap; the reconciliation commits the transfer.
    w.recover();
    w.invariants("trap after update_settings");
    assert_eq!(v.metadata().owner, to);
    assert_eq!(w.d.index_client().get_video(id).map(|e| e.owner), Some(to));
    // And the video takes transfers again.
    ok("change_owner", v.change_owner(to, creator));
    assert_eq!(v.metadata().owner, creator);
}

/// `finish_upload` of a spawned video hands control to the owner (security review M3): unused
/// cycles back to the spawn (`return_unused_cycles`), the controllers read and the owner added,
/// then a transfer made before the upload reaches the index. A fault at each of those await
/// points; after recovery (the video's retry timer) the owner controls the video, the index
/// names them, the chunks are intact, and the spawn's books show every returned cycle once.
#[test]
fn finish_upload_with_a_fault_at_every_await_point() {
    let r = ReplicaBackend::new();
    let mut w = World::new(&r);
    let file = GenFile::new(18, 120_000, 50_000);
    // One fault-free run finds the await points.
    let scenario = |w: &mut World, n: usize| -> (Principal, Principal, Principal) {
        let (creator, buyer) = (
            principal(&format!("creator-{n}")),
            principal(&format!("buyer-{n}")),
        );
        // 20 MB declared, 120 KB uploaded: the video has cycles to give back.
        let id = w.create_declared(creator, 20_000_000).expect("creation");
        w.recover();
        let v = w.d.video(id);
        ok(
            "begin_upload",
            v.begin_upload(creator, &canvid_tests::clients::spec_for(&file, true)),
        );
        v.upload_chunks(creator, &file, None);
        // Sold before the upload is finished: app-level only, the index learns it later.
        let r = ok("change_owner", v.change_owner(creator, buyer));
        w.check(r.owner_controls == Some(false) && !r.index_notified, || {
            format!("a transfer before the hand-over: {r:?}")
        });
        (id, creator, buyer)
    };
    let (id, _, buyer) = scenario(&mut w, 0);
    let _ = r.replica.take_call_log();
    ok("finish_upload", w.d.video(id).finish_upload(buyer));
    let log = r.replica.take_call_log();
    w.recover();
    w.invariants("fault-free hand-over");
    let points = await_points(&log);
    let methods: Vec<&str> = points.iter().map(|(c, _)| c.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "return_unused_cycles",
            "canister_status",
            "update_settings",
            "report_owner_change",
            "canister_info"
        ],
        "the hand-over's await points"
    );
    let mut n = 0;
    for (call, nth) in &points {
        for kind in kinds(call) {
            n += 1;
            let ctx = format!("finish_upload, {kind:?} at {}#{nth}", call.method);
            let (id, creator, buyer) = scenario(&mut w, n);
            let quota_before = w.d.spawn_client().quota_of(creator).used_cycles;
            let fired = r.replica.faults_fired();
            r.replica
                .inject_fault(rule_for_video(call, id, *nth, kind.clone()));
            let outcome = w.d.video(id).finish_upload(buyer);
            r.replica.clear_faults();
            w.fig.faults += r.replica.faults_fired() - fired;
            w.check(r.replica.faults_fired() == fired + 1, || {
                format!("{ctx}: the fault did not fire")
            });
            // The upload is acknowledged whatever happened to the hand-over — except that a trap
            // in a callback cannot be answered: the IC rejects the call (IC0503) although the
            // first message, which made the video Ready, committed.
            let answered_ready = matches!(&outcome, Ok(Ok(m)) if m.status == VideoStatus::Ready);
            let trapped = kind == Fault::TrapInCallback
                && matches!(&outcome, Err(r) if r.error_code == "IC0503");
            w.check(answered_ready || trapped, || {
                format!("{ctx}: finish_upload answered {outcome:?}")
            });
            w.check(
                w.d.video(id).metadata().status == VideoStatus::Ready,
                || format!("{ctx}: the upload is not Ready"),
            );
            w.recover();
            let v = w.d.video(id);
            let meta = v.metadata();
            w.check(meta.control == Some(ControlStatus::Owner), || {
                format!("{ctx}: control {:?} after recovery", meta.control)
            });
            w.invariants(&ctx);
            w.check(meta.owner == buyer, || {
                format!("{ctx}: owner {}", meta.owner)
            });
            // Every cycle the video returned is on the creator's quota exactly once.
            let rec = w.d.spawn_client().get_video(id).expect("record");
            let returned = rec.cycles_returned.unwrap_or(0);
            let quota_after = w.d.spawn_client().quota_of(creator).used_cycles;
            w.check(quota_after + returned == quota_before, || {
                format!("{ctx}: quota {quota_before} -> {quota_after}, returned {returned}")
            });
            v.verify_chunks(buyer, &file);
            w.fig.scenarios += 1;
            let _ = r.replica.take_call_log();
        }
    }
    eprintln!("finish_upload faults: {:?}", w.fig);
}

/// [`rule`] for the same call in another scenario's video `id`: the video makes every call of
/// the hand-over but the index's `canister_info` (the index asking the IC about the video).
fn rule_for_video(call: &CallRecord, id: Principal, nth: u32, kind: Fault) -> FaultRule {
    let mut c = call.clone();
    if c.method != "canister_info" {
        c.caller = id;
    }
    rule(&c, nth, kind)
}

// ---------------------------------------------------------------------------------------------
// Faults during recovery itself
// ---------------------------------------------------------------------------------------------

/// Time past the first back-off (60 s) and rounds: the timers alone (no `retry_pending`).
fn timers_only(r: &ReplicaBackend, secs: u64) {
    r.advance_time(Duration::from_secs(secs));
    for _ in 0..6 {
        r.tick();
    }
    r.replica.run_until_idle();
}

/// A rule for every call of `method` made by `caller`, `times` times in a row.
fn every(caller: Principal, method: &str, times: u32, kind: Fault) -> FaultRule {
    FaultRule {
        caller: Some(caller),
        callee: None,
        method: Some(method.into()),
        skip: 0,
        times,
        kind,
    }
}

/// The faults of [`kinds`] for a call named `method` with the given bounded-ness.
fn kinds_for(method: &str, bounded: bool) -> Vec<Fault> {
    kinds(&CallRecord {
        caller: Principal::anonymous(),
        callee: Principal::anonymous(),
        method: method.into(),
        bounded,
    })
}

/// The spawn's recovery of a creation left in its outbox — the retry timer and the admin's
/// `retry_pending` driving the controllers step (`canister_status`, `update_settings`) and the
/// index step (`register_video`) — with those very calls failing: each recovery call, each fault
/// kind, on two attempts in a row (first the timer's, then `retry_pending`'s). Then the faults
/// stop and the timer alone must finish the work (no `retry_pending`); the global invariants
/// hold, and the video works.
#[test]
fn spawn_recovery_with_faults_in_its_own_calls() {
    let r = ReplicaBackend::new();
    let mut w = World::new(&r);
    let spawn = w.d.spawn;
    let file = GenFile::new(17, 30_000, 10_000);
    // Where the creation is left (the call its own drive fails on) and the recovery calls that
    // then still have to be made.
    let stuck: [(&str, &[(&str, bool)]); 2] = [
        (
            "update_settings",
            &[
                ("canister_status", true),
                ("update_settings", false),
                ("register_video", true),
            ],
        ),
        ("register_video", &[("register_video", true)]),
    ];
    let mut i = 0;
    for (stuck_at, recovery_calls) in stuck {
        for &(method, bounded) in recovery_calls {
            for kind in kinds_for(method, bounded) {
                i += 1;
                let owner = principal(&format!("recovery-owner-{i}"));
                let ctx = format!("stuck at {stuck_at}, recovery {method} {kind:?}");
                // 1. A creation its own drive cannot finish.
                r.replica.inject_fault(every(
                    spawn,
                    stuck_at,
                    1,
                    Fault::Reject(RejectCode::SysTransient, "injected: queue full".into()),
                ));
                let fired = r.replica.faults_fired();
                let id = w
                    .create(owner)
                    .unwrap_or_else(|e| panic!("{ctx}: creation: {e}"));
                r.replica.clear_faults();
                w.check(w.d.spawn_client().stats().outbox == 1, || {
                    format!("{ctx}: the creation is not in the outbox")
                });
                // 2. Recovery, its own calls failing twice: the timer's attempt, then the
                // admin's retry_pending.
                r.replica
                    .inject_fault(every(spawn, method, 2, kind.clone()));
                timers_only(&r, 61);
                let _ = w.d.spawn_client().retry_pending(w.d.admin);
                r.replica.run_until_idle();
                r.replica.clear_faults();
                let fired = r.replica.faults_fired() - fired;
                w.fig.faults += fired;
                w.check(fired >= 2, || {
                    format!("{ctx}: {fired} faults fired, the recovery made no faulted call")
                });
                // 3. The faults stop: the timer alone finishes (its back-off is at most a few
                // minutes after three failures). Not after a trap in the recovery's callback:
                // that stops the timer until the next `retry_pending` or `create_video`
                // (`a_trap_in_the_spawns_recovery_stops_its_retry_timer`, ignored: a bug), so
                // then `recover` below (which calls `retry_pending`) finishes it.
                for _ in 0..4 {
                    timers_only(&r, 600);
                }
                let stats = w.d.spawn_client().stats();
                let record = w.d.spawn_client().get_video(id);
                w.check(stats.outbox == 0 || kind == Fault::TrapInCallback, || {
                    format!(
                        "{ctx}: the retry timer alone did not finish: outbox {}, record {record:?}",
                        stats.outbox
                    )
                });
                w.recover();
                w.invariants(&ctx);
                let v = w.d.video(id);
                v.upload(owner, &file);
                v.verify_chunks(owner, &file);
                w.fig.scenarios += 1;
            }
        }
    }
    eprintln!("spawn recovery faults: {:?}", w.fig);
}

/// The video's own recovery with its calls failing: the notification retry timer (the index's
/// `report_owner_change` and its nested `canister_info` failing on two attempts in a row), and
/// the reconciliation of a transfer whose callback trapped (its `canister_status` failing twice,
/// so it re-arms itself). Then the faults stop and the timers alone converge: owner, controllers
/// and index agree, the chunks are intact.
#[test]
fn video_recovery_with_faults_in_its_own_calls() {
    let r = ReplicaBackend::new();
    let mut w = World::new(&r);
    let file = GenFile::new(18, 30_000, 10_000);
    let creator = principal("recovery-creator");
    let id = w.create(creator).expect("creation");
    w.recover();
    let v = w.d.video(id);
    v.upload(creator, &file);
    // The spawn funds a video for its upload and a few upgrades; this test upgrades it a dozen
    // times (each install prepays the module's instructions), so it tops it up like an owner would.
    r.add_cycles(id, 10 * canvid_tests::deploy::T);
    let mut owner = creator;
    let mut i = 0;
    let index = w.d.index;
    // (the call the transfer itself fails on, what that leaves to recover, the recovery's
    // calls to fault)
    let notification_calls: [(Principal, &str, bool); 2] = [
        (id, "report_owner_change", true),
        (index, "canister_info", true),
    ];
    // A) The notification retry timer.
    for (caller, method, bounded) in notification_calls {
        for kind in kinds_for(method, bounded) {
            i += 1;
            let to = principal(&format!("recovery-to-{i}"));
            let ctx = format!("notification retry, {method} {kind:?}");
            let fired = r.replica.faults_fired();
            // The transfer's own notification fails...
            r.replica.inject_fault(every(
                id,
                "report_owner_change",
                1,
                Fault::Reject(RejectCode::SysTransient, "injected: queue full".into()),
            ));
            let res = ok("change_owner", v.change_owner(owner, to));
            r.replica.clear_faults();
            w.check(!res.index_notified, || format!("{ctx}: notified"));
            owner = to;
            // ...and so do the retries' calls, twice.
            r.replica
                .inject_fault(every(caller, method, 2, kind.clone()));
            for _ in 0..3 {
                timers_only(&r, 300);
            }
            r.replica.clear_faults();
            let fired = r.replica.faults_fired() - fired;
            w.fig.faults += fired;
            w.check(fired >= 3, || format!("{ctx}: only {fired} faults fired"));
            // The timers alone deliver it (back-off 60 s doubling: a few minutes).
            for _ in 0..4 {
                timers_only(&r, 900);
            }
            let info = v.canister_info();
            w.check(info.pending_index_notification.is_none(), || {
                format!("{ctx}: the notification is still pending: {info:?}")
            });
            w.recover();
            w.invariants(&ctx);
            w.check(v.metadata().owner == owner, || format!("{ctx}: owner"));
            v.verify_chunks(owner, &file);
            w.fig.scenarios += 1;
        }
    }
    // B) The reconciliation of a transfer whose callback trapped after the controllers changed
    // (the cleanup schedules what post_upgrade runs), its own canister_status failing twice.
    for kind in kinds_for("canister_status", true) {
        i += 1;
        let to = principal(&format!("recovery-to-{i}"));
        let ctx = format!("reconcile_transfer, canister_status {kind:?}");
        let fired = r.replica.faults_fired();
        r.replica
            .inject_fault(every(id, "update_settings", 1, Fault::TrapInCallback));
        // The reconciliation's reads fail twice (the transfer's own read comes first: let it
        // through).
        r.replica.inject_fault(FaultRule {
            skip: 1,
            ..every(id, "canister_status", 2, kind.clone())
        });
        let e = v.change_owner(owner, to).expect_err("the callback trapped");
        w.check(e.error_code == "IC0503", || format!("{ctx}: {e}"));
        r.replica.run_until_idle();
        w.check(v.canister_info().transfer_in_flight, || {
            format!("{ctx}: the reconciliation's read did not fail")
        });
        for _ in 0..3 {
            timers_only(&r, 61);
        }
        r.replica.clear_faults();
        let fired = r.replica.faults_fired() - fired;
        w.fig.faults += fired;
        w.check(fired >= 3, || format!("{ctx}: only {fired} faults fired"));
        // The timers alone settle it: the controllers changed, so the transfer commits.
        for _ in 0..4 {
            timers_only(&r, 900);
        }
        let info = v.canister_info();
        w.check(
            !info.transfer_in_flight && info.pending_index_notification.is_none(),
            || format!("{ctx}: not settled by the timers: {info:?}"),
        );
        owner = to;
        w.check(v.metadata().owner == owner, || format!("{ctx}: owner"));
        w.recover();
        w.invariants(&ctx);
        v.verify_chunks(owner, &file);
        w.fig.scenarios += 1;
    }
    // C) The same reconciliation run by post_upgrade: the video upgraded while a transfer is
    // in flight (cut off before update_settings), its reads failing twice.
    for kind in kinds_for("canister_status", true) {
        i += 1;
        let to = principal(&format!("recovery-to-{i}"));
        let ctx = format!("reconcile after an upgrade, canister_status {kind:?}");
        let fired = r.replica.faults_fired();
        let call = r
            .submit1(
                id,
                owner,
                "change_owner",
                &canvid_types::video::ChangeOwnerArgs {
                    new_owner: to,
                    keep_controllers: None,
                },
            )
            .expect("change_owner submitted");
        // Let the transfer record its marker and send its canister_status.
        r.tick();
        r.tick();
        w.check(v.canister_info().transfer_in_flight, || {
            format!("{ctx}: no transfer in flight")
        });
        r.replica
            .inject_fault(every(id, "canister_status", 2, kind.clone()));
        r.upgrade(
            id,
            canvid_tests::wasm::video_gz(),
            candid::encode_args(()).unwrap(),
            Some(owner),
        )
        .unwrap_or_else(|e| panic!("{ctx}: upgrade: {e}"));
        let _ = r.await_call(call);
        for _ in 0..3 {
            timers_only(&r, 61);
        }
        r.replica.clear_faults();
        let fired = r.replica.faults_fired() - fired;
        w.fig.faults += fired;
        w.check(fired >= 2, || format!("{ctx}: only {fired} faults fired"));
        for _ in 0..4 {
            timers_only(&r, 900);
        }
        let info = v.canister_info();
        w.check(!info.transfer_in_flight, || {
            format!("{ctx}: not settled by the timers: {info:?}")
        });
        let meta = v.metadata();
        // Cut off before update_settings: not in effect (or, if the old callback ran, in
        // effect); either way settled and consistent.
        w.check(meta.owner == owner || meta.owner == to, || {
            format!("{ctx}: owner {}", meta.owner)
        });
        owner = meta.owner;
        w.recover();
        w.invariants(&ctx);
        v.verify_chunks(owner, &file);
        w.fig.scenarios += 1;
    }
    eprintln!("video recovery faults: {:?}", w.fig);
}

/// Found by `spawn_recovery_with_faults_in_its_own_calls`. Steps: a creation whose
/// controllers step fails (`update_settings` rejected once) is left in the spawn's outbox with
/// its retry timer armed; the timer fires (61 s later) and the callback of its `canister_status`
/// traps (once). Then no more faults, and only time passes (an hour, in rounds). Expected, as
/// the spawn documents ("Records in the outbox are driven again by a timer", backed off 60 s
/// doubling, parked after 20 failures): the timer tries again and finishes the creation.
/// Actual: nothing happens until an admin's `retry_pending` or someone's `create_video`: the
/// timer callback that trapped never reached `arm_timer()`, and the trapped attempt was rolled
/// back, so it is not even counted (`last_error` still says "attempt 1 failed; next automatic
/// retry in 60 s"). The same holds when `retry_pending`'s own drive traps.
#[test]
fn a_trap_in_the_spawns_recovery_stops_its_retry_timer() {
    let r = ReplicaBackend::new();
    let w = World::new(&r);
    let spawn = w.d.spawn;
    r.replica.inject_fault(every(
        spawn,
        "update_settings",
        1,
        Fault::Reject(RejectCode::SysTransient, "injected: queue full".into()),
    ));
    let id = w.create(principal("timer-owner")).expect("creation");
    r.replica.clear_faults();
    assert_eq!(w.d.spawn_client().stats().outbox, 1);
    r.replica
        .inject_fault(every(spawn, "canister_status", 1, Fault::TrapInCallback));
    timers_only(&r, 61);
    r.replica.clear_faults();
    assert_eq!(r.replica.faults_fired(), 2, "the timer's attempt trapped");
    for _ in 0..6 {
        timers_only(&r, 600);
    }
    let record = w.d.spawn_client().get_video(id);
    assert_eq!(
        w.d.spawn_client().stats().outbox,
        0,
        "the retry timer never tried again: {record:?}"
    );
}
