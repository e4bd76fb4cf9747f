//! The asynchronous creation flow and the driver that finishes interrupted creations.
//!
//! Every step is recorded in stable memory before the await that follows it, and nothing read
//! before an await is trusted after it: each callback re-reads the record it updates. The state
//! machine (per created canister, `SpawnStatus`):
//!
//! ```text
//!  (in flight: funding committed) --create_canister ok--> Created --install ok--> Installed
//!        | create fails: refund as credit                   | install fails twice: Spare
//!        v                                                  v
//!     (nothing exists)                               (parked for the payer)
//!  Installed --update_settings ok--> ControllersSet --register ok--> Registered
//!     | fails: stays Installed (outbox)                 | fails: IndexPending (outbox)
//! ```
//! Records in the outbox are driven again by a timer and by `retry_pending`. The timer backs
//! each entry off after a failure (60 s doubling to a day) and parks it after 20 failures in a
//! row: it stays in the outbox, visible, and only an admin's `retry_pending` tries it again
//! (`logic::Retry`).
//!
//! A creation whose future is gone before it finished (a callback trapped — the trap rolls back
//! that callback, then ic-cdk's cleanup drops the future — or the spawn canister was upgraded
//! while it awaited) is resumed from its in-flight record: [`LiveOp`] recovers it in the cleanup
//! itself, and every `create_video`, `retry_pending`, timer run and `post_upgrade` recovers the
//! in-flight operations no live future drives (`SpawnStore::recover_op`): a canister without code is
//! parked as a spare for the caller (their next `create_video` reuses it without charging its
//! cycles again), an installed one goes to the outbox.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::time::Duration;

use candid::{Encode, Principal};
use canvid_types::index::VideoRegistration;
use canvid_types::spawn::{CreateVideoArgs, CreatedVideo, InFlight, SpawnStatus, SpawnedVideo};
use canvid_types::video::{ControlStatus, VideoInit, VideoMetadata};
use canvid_types::{Error, Result};
use ic_cdk::api::{
    canister_liquid_cycle_balance, canister_self, cost_create_canister, msg_cycles_accept,
    msg_cycles_available, time,
};
use ic_cdk::call::Call;
use ic_cdk_management_canister::{
    create_canister_with_extra_cycles, deposit_cycles, install_code, start_canister,
    update_settings, CanisterIdRecord, CanisterInstallMode, CanisterSettings, CreateCanisterArgs,
    InstallCodeArgs, UpdateSettingsArgs,
};
use ic_cdk_timers::TimerId;
use serde_bytes::ByteBuf;

use crate::logic::{self, AfterInstallFailure, Funding, FundingInput, NextStep};
use crate::store::{with, with_mut, PKey};
use canvid_stable_common::Candid;

fn mgmt_failed(method: &str, reason: impl std::fmt::Display) -> Error {
    Error::CallFailed {
        target: Principal::management_canister(),
        method: method.into(),
        reason: reason.to_string(),
    }
}

fn set_step(op: u64, id: Option<Principal>, step: &str) {
    with_mut(|s| {
        if let Some(mut f) = s.in_flight.get(&op).map(|c| c.0) {
            if id.is_some() {
                f.canister_id = id;
            }
            f.step = step.into();
            s.in_flight.insert(op, Candid(f));
        }
    });
}

thread_local! {
    /// In-flight operations a live `create_video` future drives. Heap only: empty after an
    /// upgrade, when no future survives.
    static LIVE: RefCell<BTreeSet<u64>> = const { RefCell::new(BTreeSet::new()) };
}

/// Marks an operation as driven by the current `create_video` future for as long as it lives.
/// Dropped when the future ends, or by ic-cdk's cleanup after a trap in one of its callbacks:
/// then the trap rolled that callback back and the operation is recovered at once.
struct LiveOp(u64);

impl LiveOp {
    fn new(op: u64) -> Self {
        LIVE.with(|l| l.borrow_mut().insert(op));
        LiveOp(op)
    }
}

impl Drop for LiveOp {
    fn drop(&mut self) {
        LIVE.with(|l| l.borrow_mut().remove(&self.0));
        if ic_cdk::futures::is_recovering_from_trap() {
            with_mut(|s| s.recover_op(self.0, time(), "a callback trapped"));
        }
    }
}

/// Recovers the in-flight operations no live future drives (see the module docs); returns how
/// many it touched.
pub fn recover_stale(why: &str) -> usize {
    let live = LIVE.with(|l| l.borrow().clone());
    with_mut(|s| s.recover_stale(&live, time(), why).len())
}

/// What `prepare` committed before the first await.
struct Prepared {
    op: u64,
    funding: Funding,
    new_video: bool,
    give: u128,
    spare: Option<SpawnedVideo>,
}

/// Checks, decides who pays and commits it (accepting attached cycles, charging the quota,
/// claiming a spare, recording the in-flight operation) — all without an await, so a refusal
/// leaves nothing behind and concurrent calls see each other's commitments.
fn prepare(caller: Principal, owner: Principal, args: &CreateVideoArgs) -> Result<Prepared> {
    logic::validate_create(
        &args.title,
        &args.description,
        &args.tags,
        args.declared_size,
    )?;
    with_mut(|s| {
        let cfg = s.config().clone();
        if cfg.wasm.is_none() {
            return Err(Error::NotReady {
                reason: "no video wasm has been set".into(),
            });
        }
        let give = logic::cycles_to_give(&cfg.cycles, args.declared_size)?;
        let spare_id = s.spares_of(&caller).first().copied();
        let spare = spare_id.and_then(|id| s.video(&id));
        let charge = match &spare {
            Some(sp) => logic::charge_for_spare(give, sp.cycles_given),
            None => logic::charge_for_new(cost_create_canister(), give)?,
        };
        let account = s.account(&caller);
        let (quota, _) = s.quota(&caller);
        let funding = logic::decide_funding(
            &FundingInput {
                charge,
                account: &account,
                attached: msg_cycles_available(),
                quota: quota.as_ref(),
                balance: canister_liquid_cycle_balance(),
                reserve: cfg.cycles.reserve,
            },
            caller,
        )?;
        if funding.accept > 0 {
            let got = msg_cycles_accept(funding.accept);
            if got != funding.accept {
                // Cannot happen (available >= accept was checked); refuse rather than under-fund.
                return Err(Error::InsufficientCycles {
                    required: funding.accept,
                    available: got,
                });
            }
        }
        s.set_account(
            &caller,
            logic::commit_funding(&account, &funding, charge.new_video),
        );
        let spare = if spare.is_some() {
            s.claim_spare(&caller)
        } else {
            None
        };
        let op = s.next_op();
        s.in_flight.insert(
            op,
            Candid(InFlight {
                op,
                caller,
                owner,
                payer: funding.payer,
                cycles: charge.amount,
                started_at: time(),
                canister_id: spare.as_ref().map(|v| v.canister_id),
                step: if spare.is_some() {
                    "topping up spare"
                } else {
                    "creating"
                }
                .into(),
            }),
        );
        Ok(Prepared {
            op,
            funding,
            new_video: charge.new_video,
            give,
            spare,
        })
    })
}

/// Undoes `prepare` after a failure before a (new) canister exists: everything paid becomes
/// credit, pool use is returned, a claimed spare is parked again.
fn abandon(caller: Principal, p: &Prepared) {
    with_mut(|s| {
        let a = s.account(&caller);
        s.set_account(&caller, logic::refund_funding(&a, &p.funding, p.new_video));
        if let Some(sp) = &p.spare {
            s.park_spare(&caller, &sp.canister_id);
        }
        s.in_flight.remove(&p.op);
    });
}

pub async fn create_video(caller: Principal, args: CreateVideoArgs) -> Result<CreatedVideo> {
    let owner = args.owner.unwrap_or(caller);
    if owner == Principal::anonymous() {
        return Err(Error::InvalidArgument {
            reason: "the anonymous principal cannot own a video".into(),
        });
    }
    let spawn = canister_self();
    let app_canister = with(|s| s.is_app_canister(&caller));
    let creator = logic::creator_for(caller, owner, app_canister);
    // Everything that can fail without a call fails before anything is committed: once a
    // canister exists, every way out parks it or finishes it.
    let init = VideoInit {
        owner,
        creator,
        index: with(|s| s.config().index),
        title: args.title.clone(),
        description: args.description.clone(),
        tags: args.tags.clone(),
        funded_by: Some(spawn),
        platform_fee: with(|s| s.config().platform_fee.clone()),
    };
    let arg = Encode!(&init).map_err(|e| Error::InvalidArgument {
        reason: e.to_string(),
    })?;
    // Creations interrupted earlier (e.g. this caller's) are parked first, so a spare they left
    // is reused by this very call.
    recover_stale("found interrupted by a later create_video");
    let p = prepare(caller, owner, &args)?;
    let _live = LiveOp::new(p.op);

    // Step 1: a canister, new or a parked spare (topped up to what this video needs).
    let (id, mode) = match &p.spare {
        Some(sp) => {
            let id = sp.canister_id;
            let extra = p.funding.credit_used + p.funding.accept + p.funding.pool;
            if extra > 0 {
                if let Err(e) = deposit_cycles(&CanisterIdRecord { canister_id: id }, extra).await {
                    abandon(caller, &p);
                    return Err(mgmt_failed("deposit_cycles", e));
                }
            }
            with_mut(|s| {
                let mut v = s.video(&id).unwrap_or_else(|| sp.clone());
                v.owner = owner;
                v.creator = creator;
                v.caller = caller;
                v.payer = p.funding.payer;
                v.cycles_given = v.cycles_given.saturating_add(extra);
                v.status = SpawnStatus::Created;
                v.updated_at = time();
                s.put_video(v);
            });
            (id, CanisterInstallMode::Reinstall)
        }
        None => {
            let settings = CanisterSettings {
                controllers: Some(logic::initial_controllers(spawn)),
                ..Default::default()
            };
            let created = create_canister_with_extra_cycles(
                &CreateCanisterArgs {
                    settings: Some(settings),
                },
                p.give,
            )
            .await;
            let id = match created {
                Ok(r) => r.canister_id,
                Err(e) => {
                    // A rejected create_canister refunds the attached cycles to this canister;
                    // the caller gets them back as credit.
                    abandon(caller, &p);
                    return Err(mgmt_failed("create_canister", e));
                }
            };
            let now = time();
            with_mut(|s| {
                s.put_video(SpawnedVideo {
                    canister_id: id,
                    owner,
                    creator,
                    status: SpawnStatus::Created,
                    payer: p.funding.payer,
                    caller,
                    cycles_given: p.give,
                    created_at: now,
                    updated_at: now,
                    wasm_sha256: None,
                    last_error: None,
                    cycles_returned: None,
                });
                s.update_config(|c| c.videos_created += 1);
            });
            (id, CanisterInstallMode::Install)
        }
    };

    // Step 2: install the video module (retried once, then parked as a spare).
    let mut attempts = 0;
    loop {
        attempts += 1;
        let Some((wasm, sha)) = with(|s| s.wasm()) else {
            // The wasm cannot be unset, but do not trap holding a canister.
            park(caller, p.op, id, "no video wasm".into());
            return Err(Error::NotReady {
                reason: "no video wasm has been set".into(),
            });
        };
        set_step(p.op, Some(id), &format!("installing (attempt {attempts})"));
        let result = install_code(&InstallCodeArgs {
            mode,
            canister_id: id,
            wasm_module: wasm,
            arg: arg.clone(),
        })
        .await;
        match result {
            Ok(()) => {
                with_mut(|s| {
                    if let Some(mut v) = s.video(&id) {
                        v.status = SpawnStatus::Installed;
                        v.wasm_sha256 = Some(ByteBuf::from(sha));
                        v.last_error = None;
                        v.updated_at = time();
                        s.put_video(v);
                    }
                    s.outbox.insert(PKey::new(&id), ());
                });
                // Armed before the next await: if a later callback traps, the timer still
                // finishes this canister.
                arm_timer();
                break;
            }
            Err(e) => match logic::after_install_failure(attempts) {
                AfterInstallFailure::Retry => continue,
                AfterInstallFailure::Park => {
                    let reason = e.to_string();
                    park(caller, p.op, id, reason.clone());
                    return Err(mgmt_failed(
                        "install_code",
                        format!("{reason}; canister {id} is parked as a spare: your next create_video reuses it without charging its cycles again"),
                    ));
                }
            },
        }
    }

    // Steps 3 and 4: controllers, then the index.
    set_step(p.op, Some(id), "setting controllers / registering");
    let status = drive(id).await;
    with_mut(|s| s.in_flight.remove(&p.op));
    if with(|s| !s.outbox.is_empty()) {
        arm_timer();
    }
    let v = with(|s| s.video(&id));
    Ok(CreatedVideo {
        canister_id: id,
        cycles_given: v.map(|v| v.cycles_given).unwrap_or(p.give),
        indexed: status == SpawnStatus::Registered && with(|s| s.config().index.is_some()),
    })
}

fn park(caller: Principal, op: u64, id: Principal, reason: String) {
    with_mut(|s| {
        if let Some(mut v) = s.video(&id) {
            v.status = SpawnStatus::Spare;
            v.last_error = Some(reason);
            v.updated_at = time();
            s.put_video(v);
        }
        s.park_spare(&caller, &id);
        s.in_flight.remove(&op);
    });
}

/// Rank in the state machine: a driver never moves a record backwards when a concurrent driver
/// advanced it during an await.
fn rank(s: SpawnStatus) -> u8 {
    match s {
        SpawnStatus::Spare => 0,
        SpawnStatus::Created => 1,
        SpawnStatus::Installed => 2,
        SpawnStatus::ControllersSet => 3,
        SpawnStatus::IndexPending => 4,
        SpawnStatus::Registered => 5,
    }
}

/// Drives one record through the remaining steps (controllers, index) and returns its status.
/// Safe to run concurrently for the same canister: both steps are idempotent.
pub async fn drive(id: Principal) -> SpawnStatus {
    let spawn = canister_self();
    loop {
        let Some(v) = with(|s| s.video(&id)) else {
            return SpawnStatus::Created;
        };
        let index = with(|s| s.config().index);
        let step = logic::next_step(v.status, index.is_some());
        let outcome: std::result::Result<(), String> = match step {
            NextStep::None => {
                with_mut(|s| s.outbox_remove(&id));
                return v.status;
            }
            NextStep::SetControllers => set_controllers(id, spawn).await,
            NextStep::Register => {
                let index = index.unwrap_or(Principal::anonymous());
                let reg = VideoRegistration {
                    video: id,
                    creator: v.creator,
                    owner: v.owner,
                };
                match Call::bounded_wait(index, "register_video")
                    .with_arg(&reg)
                    .await
                {
                    Ok(resp) => match resp.candid::<Result<()>>() {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(format!("register_video: {e}")),
                        Err(e) => Err(format!("register_video: {e}")),
                    },
                    Err(e) => Err(format!("register_video: {e}")),
                }
            }
        };
        let ok = outcome.is_ok();
        let progressed = with_mut(|s| {
            let Some(mut cur) = s.video(&id) else {
                return false;
            };
            let has_index = s.config().index.is_some();
            let new = logic::after_step(v.status, step, ok, has_index);
            if rank(new) > rank(cur.status) || (!ok && cur.status == v.status) {
                cur.status = new;
            }
            let now = time();
            // Each failure backs the entry's next automatic retry off, and parks it after
            // `MAX_AUTO_ATTEMPTS` (security review L7); a success starts the count again.
            let retry = s.record_attempt(&id, ok, now);
            cur.last_error = outcome.err().map(|e| match retry {
                Some(r) => format!("{e}; {}", logic::retry_note(&r, now)),
                None => e,
            });
            cur.updated_at = now;
            let progressed = ok;
            if !logic::needs_work(cur.status, has_index) {
                s.outbox_remove(&id);
            } else {
                s.outbox.insert(PKey::new(&id), ());
            }
            s.put_video(cur);
            progressed
        });
        if !progressed {
            return with(|s| s.video(&id).map(|v| v.status).unwrap_or(v.status));
        }
    }
}

/// The "controllers" step: asks the installed video who owns it and whether it hands control
/// over itself (its `metadata` query, as an inter-canister call), reads its controllers and
/// writes [`logic::plan_controllers`]'s set, unless the video already controls itself.
async fn set_controllers(id: Principal, spawn: Principal) -> std::result::Result<(), String> {
    let metadata: VideoMetadata = Call::bounded_wait(id, "metadata")
        .await
        .map_err(|e| format!("metadata: {e}"))?
        .candid()
        .map_err(|e| format!("metadata: {e}"))?;
    let view = logic::VideoView {
        owner: metadata.owner,
        hands_over: matches!(
            metadata.control,
            Some(ControlStatus::AfterUpload { .. } | ControlStatus::HandingOver { .. })
        ),
    };
    let status: canvid_types::management::StatusControllers =
        Call::bounded_wait(Principal::management_canister(), "canister_status")
            .with_arg(CanisterIdRecord { canister_id: id })
            .await
            .map_err(|e| format!("canister_status: {e}"))?
            .candid()
            .map_err(|e| format!("canister_status: {e}"))?;
    match logic::plan_controllers(&status.settings.controllers, &view, id, spawn) {
        logic::ControllersPlan::AlreadyDone => Ok(()),
        logic::ControllersPlan::Set(controllers) => update_settings(&UpdateSettingsArgs {
            canister_id: id,
            settings: CanisterSettings {
                controllers: Some(controllers),
                ..Default::default()
            },
        })
        .await
        .map_err(|e| format!("update_settings: {e}")),
    }
}

/// Most outbox entries one timer run / `retry_pending` call drives (bounds one run's work).
pub const RETRY_BATCH: usize = 50;
/// The timer never fires sooner than this: a creation's own `drive` gets the first go at an
/// entry it just put in the outbox.
const MIN_TIMER_DELAY: Duration = Duration::from_secs(logic::RETRY_FIRST_DELAY_SECS);

thread_local! {
    /// The armed retry timer and the IC time (ns) it fires at. Heap only: timers do not survive
    /// an upgrade, and `post_upgrade` arms one again.
    static TIMER: Cell<Option<(TimerId, u64)>> = const { Cell::new(None) };
}

/// Starts a video `upgrade_videos` stopped, and records the outcome: started, it leaves the
/// restart list; failed, it is retried by the timer with back-off (parked after 20 failures,
/// when only `retry_pending` tries it).
pub async fn restart(video: Principal) -> std::result::Result<(), String> {
    match start_canister(&CanisterIdRecord { canister_id: video }).await {
        Ok(()) => {
            with_mut(|s| s.restarted(&video));
            Ok(())
        }
        Err(e) => {
            with_mut(|s| s.restart_failed(&video, time()));
            arm_timer();
            Err(e.to_string())
        }
    }
}

/// Recovers interrupted creations, then drives up to `RETRY_BATCH` outbox entries: those due
/// (`due_only`: the timer; never the parked ones), or all of them, parked ones included (an
/// admin's `retry_pending`). Returns their records afterwards.
pub async fn retry_outbox(due_only: bool) -> Vec<SpawnedVideo> {
    recover_stale("found interrupted by the outbox driver");
    for video in with(|s| s.restart_batch(due_only, time(), RETRY_BATCH)) {
        // The outcome is recorded by `restart`.
        let _ = restart(video).await;
    }
    let ids: Vec<Principal> = with(|s| s.outbox_batch(due_only, time(), RETRY_BATCH));
    let mut out = Vec::new();
    for id in ids {
        drive(id).await;
        if let Some(v) = with(|s| s.video(&id)) {
            out.push(v);
        }
    }
    out
}

/// Re-arms the retry timer if a callback of its run traps: the trap rolls that callback back and
/// ic-cdk's cleanup drops the future before its last line (`arm_timer`), which would leave the
/// outbox without a timer until the next `create_video` or `retry_pending`. (The cleanup only
/// arms a timer: it reads the store and sets the IC's global timer.)
struct RearmIfTrapped;

impl Drop for RearmIfTrapped {
    fn drop(&mut self) {
        if ic_cdk::futures::is_recovering_from_trap() {
            arm_timer();
        }
    }
}

/// Arms the retry timer for the earliest entry the timer should drive (at least
/// `MIN_TIMER_DELAY` from now), unless one fires by then already; nothing when every entry is
/// parked or the outbox is empty. Timers do not survive upgrades: `post_upgrade` calls this.
pub fn arm_timer() {
    let Some(due) = with(|s| s.next_retry_at()) else {
        return;
    };
    let now = time();
    let at = due.max(now.saturating_add(MIN_TIMER_DELAY.as_nanos() as u64));
    if let Some((id, armed_at)) = TIMER.get() {
        if armed_at <= at {
            return;
        }
        ic_cdk_timers::clear_timer(id);
    }
    let id = ic_cdk_timers::set_timer(Duration::from_nanos(at - now), async {
        TIMER.set(None);
        let _rearm = RearmIfTrapped;
        retry_outbox(true).await;
        arm_timer();
    });
    TIMER.set(Some((id, at)));
}
