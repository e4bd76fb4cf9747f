//! canvid spawn canister: creates one video canister per video.
//!
//! Endpoints are thin: they check the caller and call into `flow` (the async creation state
//! machine), `logic` (plain-Rust decisions with native tests) and `storage` (stable memory).
//! See docs/spawn-and-index.md for who pays, the cycles formula and the recovery rules.

use std::cell::RefCell;

use candid::{Encode, Principal};
use canvid_types::spawn::{
    CreateVideoArgs, CreatedVideo, InFlight, QuotaArgs, QuotaStatus, SetWasmArgs, SpawnInit,
    SpawnListArgs, SpawnPage, SpawnStats, SpawnedVideo, TopUpArgs, UpgradeArgs, UpgradeOutcome,
    WasmInfo, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT,
};
use canvid_types::{Error, Result};
use ic_cdk::api::{
    canister_cycle_balance, canister_liquid_cycle_balance, msg_caller, msg_method_name,
};
use ic_cdk::{init, inspect_message, post_upgrade, query, update};
use ic_cdk_management_canister::{
    deposit_cycles, install_code, start_canister, stop_canister, CanisterIdRecord,
    CanisterInstallMode, InstallCodeArgs,
};
use ic_stable_structures::DefaultMemoryImpl;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

pub mod flow;
pub mod logic;
pub mod storage;

use storage::{PKey, State};

thread_local! {
    static STATE: RefCell<Option<State<DefaultMemoryImpl>>> = const { RefCell::new(None) };
}

pub(crate) fn with<R>(f: impl FnOnce(&State<DefaultMemoryImpl>) -> R) -> R {
    STATE.with(|s| {
        f(s.borrow()
            .as_ref()
            .expect("spawn state is opened in init/post_upgrade"))
    })
}

pub(crate) fn with_mut<R>(f: impl FnOnce(&mut State<DefaultMemoryImpl>) -> R) -> R {
    STATE.with(|s| {
        f(s.borrow_mut()
            .as_mut()
            .expect("spawn state is opened in init/post_upgrade"))
    })
}

/// Applies an install/upgrade argument. Errors trap, which fails the install/upgrade and so
/// changes nothing.
fn apply_init(state: &mut State<DefaultMemoryImpl>, arg: SpawnInit) -> Result<()> {
    if !arg.admins.is_empty() {
        let admins = dedup(&arg.admins)?;
        state.update_config(|c| c.admins = admins);
    }
    if arg.index.is_some() {
        state.update_config(|c| c.index = arg.index);
    }
    if let Some(q) = arg.default_quota {
        state.update_config(|c| c.default_quota = Some(q));
    }
    if let Some(cy) = arg.cycles {
        logic::validate_cycles_config(&cy)?;
        state.update_config(|c| c.cycles = cy);
    }
    if let Some(wasm) = arg.video_wasm {
        let sha = Sha256::digest(&wasm).to_vec();
        logic::check_wasm(&wasm, &sha, &sha)?;
        state.set_wasm(&wasm, sha);
    }
    Ok(())
}

/// Most admins.
const MAX_ADMINS: usize = 64;

fn dedup(list: &[Principal]) -> Result<Vec<Principal>> {
    canvid_stable_common::dedup_principals("admins", list, MAX_ADMINS)
}

fn open(arg: Option<SpawnInit>) {
    let mut state = State::open(DefaultMemoryImpl::default(), msg_caller());
    if let Some(arg) = arg {
        apply_init(&mut state, arg).unwrap_or_else(|e| ic_cdk::trap(e.to_string()));
    }
    STATE.with(|s| *s.borrow_mut() = Some(state));
}

#[init]
fn init(arg: Option<SpawnInit>) {
    open(arg);
}

#[post_upgrade]
fn post_upgrade(arg: Option<SpawnInit>) {
    open(arg);
    // Deployments still on the first defaults could not install a video on the IC.
    with_mut(|s| s.update_config(|c| c.cycles = logic::migrate_cycles_config(&c.cycles)));
    // No create_video future survives an upgrade: finish what they left in flight.
    flow::recover_stale("the spawn canister was upgraded");
    // Timers do not survive an upgrade.
    if with(|s| !s.outbox.is_empty()) {
        flow::arm_timer();
    }
}

fn is_admin(p: &Principal) -> bool {
    with(|s| s.config().admins.contains(p))
}

fn require_admin() -> Result<Principal> {
    let caller = msg_caller();
    Error::require_admin(caller, is_admin(&caller)).map(|()| caller)
}

/// Ingress filter: every accepted message is paid by the spawn canister, so only what can
/// succeed is accepted (the endpoints check again): admin methods from admins; `create_video`
/// from callers with a way to pay and an argument of a request's size
/// ([`logic::inspect_create_video`]).
#[inspect_message]
fn inspect_message() {
    let caller = msg_caller();
    let ok = match msg_method_name().as_str() {
        "create_video" => with(|s| {
            let (quota, _) = s.quota(&caller);
            logic::inspect_create_video(
                &caller,
                ic0::msg_arg_data_size(),
                &s.account(&caller),
                !s.spares_of(&caller).is_empty(),
                quota.as_ref(),
            )
        }),
        _ => is_admin(&caller),
    };
    if ok {
        ic_cdk::api::accept_message();
    }
}

// ---------------------------------------------------------------------------------------------
// Creating videos
// ---------------------------------------------------------------------------------------------

#[update]
async fn create_video(args: CreateVideoArgs) -> Result<CreatedVideo> {
    let caller = msg_caller();
    if caller == Principal::anonymous() {
        return Err(Error::NotAuthorized {
            caller,
            reason: "anonymous callers cannot create videos".into(),
        });
    }
    flow::create_video(caller, args).await
}

/// Cycles a `create_video` with this `declared_size` costs now: creation fee + `base` +
/// `declared_size * per_byte` (a parked spare costs less).
#[query]
fn estimate_cycles(declared_size: u64) -> Result<u128> {
    let cfg = with(|s| s.config().cycles.clone());
    let give = logic::cycles_to_give(&cfg, declared_size)?;
    Ok(logic::charge_for_new(ic_cdk::api::cost_create_canister(), give)?.amount)
}

#[query]
fn quota_of(p: Principal) -> QuotaStatus {
    with(|s| {
        let (quota, is_default) = s.quota(&p);
        let a = s.account(&p);
        QuotaStatus {
            quota: quota.unwrap_or_default(),
            is_default,
            used_videos: a.used_videos,
            used_cycles: a.used_cycles,
            spares: s.spares_of(&p),
            credit: a.credit,
        }
    })
}

#[query]
fn get_video(id: Principal) -> Option<SpawnedVideo> {
    with(|s| s.video(&id))
}

#[query]
fn video_wasm_info() -> Option<WasmInfo> {
    with(|s| {
        let meta = s.config().wasm.clone()?;
        let gzipped = s.wasm().map(|(w, _)| logic::is_gzip(&w)).unwrap_or(false);
        Some(WasmInfo {
            sha256: ByteBuf::from(meta.sha256),
            size: meta.size,
            gzipped,
        })
    })
}

#[query]
fn stats() -> SpawnStats {
    with(|s| {
        let c = s.config();
        SpawnStats {
            admins: c.admins.clone(),
            index: c.index,
            video_wasm: c.wasm.as_ref().map(|m| WasmInfo {
                sha256: ByteBuf::from(m.sha256.clone()),
                size: m.size,
                gzipped: s.wasm().map(|(w, _)| logic::is_gzip(&w)).unwrap_or(false),
            }),
            cycles: c.cycles.clone(),
            default_quota: c.default_quota.clone(),
            balance: canister_cycle_balance(),
            videos_created: c.videos_created,
            spares: s.spares.len(),
            outbox: s.outbox.len(),
            in_flight: s
                .in_flight
                .iter()
                .map(|e| e.value().0)
                .collect::<Vec<InFlight>>(),
            layout_version: storage::LAYOUT_VERSION,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------------

#[update]
fn set_video_wasm(args: SetWasmArgs) -> Result<WasmInfo> {
    require_admin()?;
    let actual = Sha256::digest(&args.wasm).to_vec();
    logic::check_wasm(&args.wasm, &args.sha256, &actual)?;
    with_mut(|s| s.set_wasm(&args.wasm, actual.clone()));
    Ok(WasmInfo {
        sha256: ByteBuf::from(actual),
        size: args.wasm.len() as u64,
        gzipped: logic::is_gzip(&args.wasm),
    })
}

#[update]
fn set_admins(admins: Vec<Principal>) -> Result<()> {
    require_admin()?;
    let admins = dedup(&admins)?;
    if admins.is_empty() {
        return Err(Error::InvalidArgument {
            reason: "the admin list may not be empty".into(),
        });
    }
    with_mut(|s| s.update_config(|c| c.admins = admins));
    Ok(())
}

#[update]
fn set_index(index: Option<Principal>) -> Result<()> {
    require_admin()?;
    with_mut(|s| s.update_config(|c| c.index = index));
    Ok(())
}

#[update]
fn set_quota(p: Principal, quota: QuotaArgs) -> Result<()> {
    require_admin()?;
    with_mut(|s| s.quotas.insert(PKey::new(&p), storage::Cand(quota)));
    Ok(())
}

#[update]
fn set_default_quota(quota: Option<QuotaArgs>) -> Result<()> {
    require_admin()?;
    with_mut(|s| s.update_config(|c| c.default_quota = quota));
    Ok(())
}

#[update]
fn set_cycles_config(cycles: canvid_types::spawn::CyclesConfig) -> Result<()> {
    require_admin()?;
    logic::validate_cycles_config(&cycles)?;
    with_mut(|s| s.update_config(|c| c.cycles = cycles));
    Ok(())
}

/// Deposits `amount` cycles from the pool into a video canister (any canister, in fact), never
/// taking the balance below the reserve.
#[update]
async fn top_up(args: TopUpArgs) -> Result<()> {
    require_admin()?;
    let reserve = with(|s| s.config().cycles.reserve);
    let available = canister_liquid_cycle_balance().saturating_sub(reserve);
    if args.amount > available {
        return Err(Error::InsufficientCycles {
            required: args.amount,
            available,
        });
    }
    deposit_cycles(
        &CanisterIdRecord {
            canister_id: args.video,
        },
        args.amount,
    )
    .await
    .map_err(|e| Error::CallFailed {
        target: Principal::management_canister(),
        method: "deposit_cycles".into(),
        reason: e.to_string(),
    })
}

#[query]
fn list_videos(args: SpawnListArgs) -> Result<SpawnPage> {
    require_admin()?;
    let limit = args
        .limit
        .unwrap_or(DEFAULT_PAGE_LIMIT)
        .clamp(1, MAX_PAGE_LIMIT) as usize;
    Ok(with(|s| {
        let start = match args.cursor {
            Some(c) => std::ops::Bound::Excluded(PKey::new(&c)),
            None => std::ops::Bound::Unbounded,
        };
        let mut videos: Vec<SpawnedVideo> = Vec::new();
        let mut more = false;
        for e in s.videos.range((start, std::ops::Bound::Unbounded)) {
            if videos.len() == limit {
                more = true;
                break;
            }
            videos.push(e.value().0);
        }
        let next_cursor = if more {
            videos.last().map(|v| v.canister_id)
        } else {
            None
        };
        SpawnPage {
            videos,
            next_cursor,
        }
    }))
}

/// Drives the outbox now (controllers not yet set, registrations the index has not
/// acknowledged), up to `flow::RETRY_BATCH` entries; returns those records afterwards.
#[update]
async fn retry_pending() -> Result<Vec<SpawnedVideo>> {
    require_admin()?;
    let out = flow::retry_outbox().await;
    if with(|s| !s.outbox.is_empty()) {
        flow::arm_timer();
    }
    Ok(out)
}

/// Upgrades video canisters with the current wasm. Canisters not (or no longer) installed are
/// reported, not upgraded; a canister whose owner removed the spawn canister from its
/// controllers reports the management canister's refusal.
#[update]
async fn upgrade_videos(args: UpgradeArgs) -> Result<Vec<UpgradeOutcome>> {
    require_admin()?;
    let Some((wasm, sha)) = with(|s| s.wasm()) else {
        return Err(Error::NotReady {
            reason: "no video wasm has been set".into(),
        });
    };
    let targets: Vec<Principal> = match args.videos {
        Some(v) => v,
        None => with(|s| s.videos.keys().map(|k| k.principal()).collect()),
    };
    let arg = match args.arg {
        Some(a) => a.into_vec(),
        None => Encode!().map_err(|e| Error::InvalidArgument {
            reason: e.to_string(),
        })?,
    };
    let mut out = Vec::with_capacity(targets.len());
    for video in targets {
        let result = match with(|s| s.video(&video)) {
            None => Err(Error::NotFound {
                what: format!("video canister {video} created by this spawn canister"),
            }),
            Some(v)
                if matches!(
                    v.status,
                    canvid_types::spawn::SpawnStatus::Created
                        | canvid_types::spawn::SpawnStatus::Spare
                ) =>
            {
                Err(Error::NotReady {
                    reason: format!("{video} has no video module installed"),
                })
            }
            Some(_) => upgrade_stopped(video, &wasm, &sha, &arg).await,
        };
        out.push(UpgradeOutcome { video, result });
    }
    Ok(out)
}

fn management_failed(method: &str, e: impl std::fmt::Display) -> Error {
    Error::CallFailed {
        target: Principal::management_canister(),
        method: method.into(),
        reason: e.to_string(),
    }
}

/// Stops `video`, upgrades it (recording the module's hash once it is installed), and starts it
/// again whatever the upgrade did. Stopping first lets its open calls (a `change_owner` awaiting
/// `update_settings`, an index notification) finish under the module that made them: upgraded
/// while one is out, the response would reach the new module, where ic-cdk 0.20 would resume a
/// callback from a pointer into the old heap.
async fn upgrade_stopped(video: Principal, wasm: &[u8], sha: &[u8], arg: &[u8]) -> Result<()> {
    let id = CanisterIdRecord { canister_id: video };
    let upgraded = match stop_canister(&id).await {
        Err(e) => Err(management_failed("stop_canister", e)),
        Ok(()) => install_code(&InstallCodeArgs {
            mode: CanisterInstallMode::Upgrade(None),
            canister_id: video,
            wasm_module: wasm.to_vec(),
            arg: arg.to_vec(),
        })
        .await
        .map_err(|e| management_failed("install_code", e)),
    };
    if upgraded.is_ok() {
        with_mut(|s| {
            if let Some(mut v) = s.video(&video) {
                v.wasm_sha256 = Some(ByteBuf::from(sha.to_vec()));
                v.updated_at = ic_cdk::api::time();
                s.put_video(v);
            }
        });
    }
    // Started again on every path: a stop that failed may have left it stopping.
    let started = start_canister(&id)
        .await
        .map_err(|e| management_failed("start_canister", e));
    upgraded.and(started)
}

ic_cdk::export_candid!();

#[cfg(test)]
mod tests;
