//! Read endpoints: cost estimates, quotas, the records of created videos, the video module and
//! the canister's stats. `list_videos` is for admins; the others are open to everybody.
//!
//! Doc comments on endpoints are exported into candid/spawn.did, so notes meant for readers of
//! this file only are `//` comments.

use candid::Principal;
use canvid_types::spawn::{
    InFlight, QuotaStatus, SpawnListArgs, SpawnPage, SpawnStats, SpawnedVideo, WasmInfo,
};
use canvid_types::Result;
use ic_cdk::api::canister_cycle_balance;
use ic_cdk::query;
use serde_bytes::ByteBuf;

use crate::guards::require_admin;
use crate::logic;
use crate::store::{self, LAYOUT_VERSION};

/// Cycles a `create_video` with this `declared_size` costs now: creation fee + `base` +
/// `declared_size * per_byte` (a parked spare costs less).
#[query]
fn estimate_cycles(declared_size: u64) -> Result<u128> {
    let cfg = store::with(|s| s.config().cycles.clone());
    let give = logic::cycles_to_give(&cfg, declared_size)?;
    Ok(logic::charge_for_new(ic_cdk::api::cost_create_canister(), give)?.amount)
}

#[query]
fn quota_of(p: Principal) -> QuotaStatus {
    store::with(|s| {
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
    store::with(|s| s.video(&id))
}

#[query]
fn video_wasm_info() -> Option<WasmInfo> {
    store::with(|s| {
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
    store::with(|s| {
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
            outbox_parked: s.parked_count(),
            in_flight: s
                .in_flight
                .iter()
                .map(|e| e.value().0)
                .collect::<Vec<InFlight>>(),
            layout_version: LAYOUT_VERSION,
            app_canisters: c.app_canisters.clone().unwrap_or_default(),
            platform_fee: c.platform_fee.clone(),
        }
    })
}

// Admins only: the records carry callers, payers and errors.
#[query]
fn list_videos(args: SpawnListArgs) -> Result<SpawnPage> {
    require_admin()?;
    Ok(store::with(|s| s.list_videos(&args)))
}
