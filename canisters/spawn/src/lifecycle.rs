//! Install and upgrade: open the store (everything is in stable memory, so there is no
//! `pre_upgrade`), apply the argument, migrate, finish what an upgrade interrupted, and arm the
//! retry timer again (timers do not survive an upgrade).

use canvid_types::spawn::SpawnInit;
use canvid_types::Result;
use ic_cdk::api::msg_caller;
use ic_cdk::{init, post_upgrade};
use ic_stable_structures::{DefaultMemoryImpl, Memory};
use sha2::{Digest, Sha256};

use crate::flow;
use crate::logic;
use crate::store::{self, SpawnStore};

/// Applies an install/upgrade argument. Errors trap (in [`open`]), which fails the
/// install/upgrade and so changes nothing.
fn apply_init<M: Memory>(state: &mut SpawnStore<M>, arg: SpawnInit) -> Result<()> {
    if !arg.admins.is_empty() {
        let admins = logic::dedup_admins(&arg.admins)?;
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
    if let Some(fee) = arg.platform_fee {
        fee.validate()?;
        state.update_config(|c| c.platform_fee = Some(fee));
    }
    if let Some(apps) = arg.app_canisters {
        let apps = logic::validate_app_canisters(&apps)?;
        state.update_config(|c| c.app_canisters = Some(apps));
    }
    if let Some(wasm) = arg.video_wasm {
        let sha = Sha256::digest(&wasm).to_vec();
        logic::check_wasm(&wasm, &sha, &sha)?;
        state.set_wasm(&wasm, sha);
    }
    Ok(())
}

/// Opens the store (a fresh layout names the installer as admin), applies `arg`, installs it.
fn open(arg: Option<SpawnInit>) {
    let mut state = SpawnStore::open(DefaultMemoryImpl::default(), msg_caller());
    if let Some(arg) = arg {
        apply_init(&mut state, arg).unwrap_or_else(|e| ic_cdk::trap(e.to_string()));
    }
    store::install(state);
}

#[init]
fn init(arg: Option<SpawnInit>) {
    open(arg);
}

#[post_upgrade]
fn post_upgrade(arg: Option<SpawnInit>) {
    open(arg);
    // Deployments still on the first defaults could not install a video on the IC.
    store::with_mut(|s| s.update_config(|c| c.cycles = logic::migrate_cycles_config(&c.cycles)));
    // No create_video future survives an upgrade: finish what they left in flight.
    flow::recover_stale("the spawn canister was upgraded");
    // Timers do not survive an upgrade.
    flow::arm_timer();
}
