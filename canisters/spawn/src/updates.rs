//! Update endpoints: creating videos (`create_video`, driven by [`crate::flow`]), the admin
//! configuration (`set_*`), and the admin operations on created videos (`top_up`,
//! `retry_pending`, `upgrade_videos`).
//!
//! Doc comments on endpoints are exported into candid/spawn.did, so notes meant for readers of
//! this file only are `//` comments.

use candid::Principal;
use canvid_types::spawn::{
    CreateVideoArgs, CreatedVideo, CyclesConfig, QuotaArgs, SetWasmArgs, SpawnedVideo, TopUpArgs,
    UpgradeArgs, UpgradeOutcome, WasmInfo,
};
use canvid_types::{Error, Result};
use ic_cdk::api::{
    canister_liquid_cycle_balance, msg_caller, msg_cycles_accept, msg_cycles_available, time,
};
use ic_cdk::update;
use ic_cdk_management_canister::{
    deposit_cycles, install_code, stop_canister, CanisterIdRecord, CanisterInstallMode,
    InstallCodeArgs,
};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::guards::require_admin;
use crate::store::{self, PKey};
use crate::{flow, logic};
use canvid_stable_common::Candid;

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

/// Called by a video canister this spawn canister created, with cycles attached, when its
/// upload is finished and before it makes its owner a controller: it gives back what it does
/// not need for the video it actually holds. The cycles are accepted and credited to whoever
/// paid for the creation (their own cycles become credit for their next `create_video`; pool
/// cycles give the caller's quota back). Returns the cycles accepted. Anyone else is refused
/// and keeps their cycles (not accepted, so the IC refunds them).
#[update]
fn return_unused_cycles() -> Result<u128> {
    let caller = msg_caller();
    store::with_mut(|s| {
        let Some(mut v) = s.video(&caller) else {
            return Err(Error::NotAuthorized {
                caller,
                reason: "only a video canister this spawn canister created returns cycles".into(),
            });
        };
        let amount = msg_cycles_accept(msg_cycles_available());
        let account = s.account(&v.caller);
        s.set_account(&v.caller, logic::credit_returned(&account, v.payer, amount));
        v.cycles_returned = Some(v.cycles_returned.unwrap_or(0).saturating_add(amount));
        v.updated_at = time();
        s.put_video(v);
        Ok(amount)
    })
}

// ---------------------------------------------------------------------------------------------
// Admin configuration
// ---------------------------------------------------------------------------------------------

#[update]
fn set_video_wasm(args: SetWasmArgs) -> Result<WasmInfo> {
    require_admin()?;
    let actual = Sha256::digest(&args.wasm).to_vec();
    logic::check_wasm(&args.wasm, &args.sha256, &actual)?;
    store::with_mut(|s| s.set_wasm(&args.wasm, actual.clone()));
    Ok(WasmInfo {
        sha256: ByteBuf::from(actual),
        size: args.wasm.len() as u64,
        gzipped: logic::is_gzip(&args.wasm),
    })
}

#[update]
fn set_admins(admins: Vec<Principal>) -> Result<()> {
    require_admin()?;
    let admins = logic::dedup_admins(&admins)?;
    if admins.is_empty() {
        return Err(Error::InvalidArgument {
            reason: "the admin list may not be empty".into(),
        });
    }
    store::with_mut(|s| s.update_config(|c| c.admins = admins));
    Ok(())
}

#[update]
fn set_index(index: Option<Principal>) -> Result<()> {
    require_admin()?;
    store::with_mut(|s| s.update_config(|c| c.index = index));
    Ok(())
}

#[update]
fn set_quota(p: Principal, quota: QuotaArgs) -> Result<()> {
    require_admin()?;
    store::with_mut(|s| s.quotas.insert(PKey::new(&p), Candid(quota)));
    Ok(())
}

#[update]
fn set_default_quota(quota: Option<QuotaArgs>) -> Result<()> {
    require_admin()?;
    store::with_mut(|s| s.update_config(|c| c.default_quota = quota));
    Ok(())
}

/// Replaces the app canisters allowed to name a video's creator (the owner they pass to
/// `create_video`); every other caller is the creator of what it creates. Canister ids only,
/// at most 64; `vec {}` clears the list.
#[update]
fn set_app_canisters(apps: Vec<Principal>) -> Result<()> {
    require_admin()?;
    let apps = logic::validate_app_canisters(&apps)?;
    store::with_mut(|s| s.update_config(|c| c.app_canisters = Some(apps)));
    Ok(())
}

/// Sets (or, with `null`, clears) the platform's share of every pass sold by the videos this
/// canister installs from now on (docs/access.md "Platform fee"). Videos installed earlier keep
/// the fee they were installed with.
#[update]
fn set_platform_fee(fee: Option<canvid_types::access::PlatformFee>) -> Result<()> {
    require_admin()?;
    if let Some(f) = &fee {
        f.validate()?;
    }
    store::with_mut(|s| s.update_config(|c| c.platform_fee = fee));
    Ok(())
}

#[update]
fn set_cycles_config(cycles: CyclesConfig) -> Result<()> {
    require_admin()?;
    logic::validate_cycles_config(&cycles)?;
    store::with_mut(|s| s.update_config(|c| c.cycles = cycles));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Admin operations on created videos
// ---------------------------------------------------------------------------------------------

/// Deposits `amount` cycles from the pool into a video canister (any canister, in fact), never
/// taking the balance below the reserve.
#[update]
async fn top_up(args: TopUpArgs) -> Result<()> {
    require_admin()?;
    let reserve = store::with(|s| s.config().cycles.reserve);
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
    .map_err(|e| management_failed("deposit_cycles", e))
}

/// Drives the outbox now (controllers not yet set, registrations the index has not
/// acknowledged), up to 50 entries, those the timer parked after 20 failed attempts included;
/// returns those records afterwards.
#[update]
async fn retry_pending() -> Result<Vec<SpawnedVideo>> {
    require_admin()?;
    let out = flow::retry_outbox(false).await;
    flow::arm_timer();
    Ok(out)
}

/// Upgrades video canisters with the current wasm. Canisters not (or no longer) installed are
/// reported, not upgraded; a canister whose owner removed the spawn canister from its
/// controllers reports the management canister's refusal.
#[update]
async fn upgrade_videos(args: UpgradeArgs) -> Result<Vec<UpgradeOutcome>> {
    require_admin()?;
    let Some((wasm, sha)) = store::with(|s| s.wasm()) else {
        return Err(Error::NotReady {
            reason: "no video wasm has been set".into(),
        });
    };
    let targets = store::with(|s| s.upgrade_targets(args.videos));
    let arg = logic::upgrade_arg(args.arg.map(ByteBuf::into_vec))?;
    let mut out = Vec::with_capacity(targets.len());
    for video in targets {
        // Checked per target, after the previous ones' awaits: a record may have moved.
        let result = match store::with(|s| s.check_upgradable(&video)) {
            Err(e) => Err(e),
            Ok(()) => upgrade_stopped(video, &wasm, &sha, &arg).await,
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
    // Recorded before the stop: if the start below fails, or a callback traps after the stop,
    // the outbox timer starts the video (and `retry_pending` does at once).
    store::with_mut(|s| s.stopping(&video, ic_cdk::api::time()));
    flow::arm_timer();
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
        store::with_mut(|s| {
            if let Some(mut v) = s.video(&video) {
                v.wasm_sha256 = Some(ByteBuf::from(sha.to_vec()));
                v.updated_at = ic_cdk::api::time();
                s.put_video(v);
            }
        });
    }
    // Started again on every path: a stop that failed may have left it stopping.
    let started = flow::restart(video)
        .await
        .map_err(|e| management_failed("start_canister", e));
    upgraded.and(started)
}
