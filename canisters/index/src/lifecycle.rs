//! Install and upgrade: everything is in stable memory, so there is no `pre_upgrade`, and
//! `post_upgrade` just reopens the store and applies its argument, like `init`; both certify the
//! ICRC-3 tip, start the backfill of mint blocks for videos registered before the collection,
//! and the recovery of transfers an upgrade cut off.

use canvid_types::index::IndexInit;
use ic_cdk::api::msg_caller;
use ic_cdk::{init, post_upgrade};
use ic_stable_structures::DefaultMemoryImpl;

use crate::store::{self, IndexStore};

/// Opens the store and applies an install/upgrade argument (admins default to the installer
/// when the list is empty), then installs it.
fn open(arg: Option<IndexInit>) {
    let installer = msg_caller();
    let mut index = IndexStore::open(DefaultMemoryImpl::default(), installer);
    if let Some(arg) = arg {
        // Trapping on a bad argument fails the install/upgrade: nothing is changed.
        if !arg.admins.is_empty() {
            index
                .set_admins(&arg.admins)
                .unwrap_or_else(|e| ic_cdk::trap(e.to_string()));
        }
        // Like `admins`, an empty list keeps the stored one: an upgrade argument written for
        // the admins alone must not silently stop every registration.
        if !arg.registrars.is_empty() {
            index
                .set_registrars(&arg.registrars)
                .unwrap_or_else(|e| ic_cdk::trap(e.to_string()));
        }
    }
    store::install(index);
    crate::certify();
    let now = ic_cdk::api::time();
    if store::with_mut(|s| s.start_backfill_if_needed(now)) {
        arm_backfill();
    }
    if store::with(|s| !s.pending_videos(1).is_empty()) {
        // Calls do not survive an upgrade: whatever transfer was pending is settled from the
        // IC's view of its video.
        crate::collection::transfer::arm_recovery(0);
    }
}

/// Mints per timer run of the backfill (each ~100 k instructions with its hashing).
const BACKFILL_PER_RUN: usize = 2_000;

fn arm_backfill() {
    ic_cdk_timers::set_timer(std::time::Duration::ZERO, async {
        let more = store::with_mut(|s| s.backfill_mints(ic_cdk::api::time(), BACKFILL_PER_RUN));
        crate::certify();
        if more {
            arm_backfill();
        }
    });
}

#[init]
fn init(arg: Option<IndexInit>) {
    open(arg);
}

#[post_upgrade]
fn post_upgrade(arg: Option<IndexInit>) {
    open(arg);
}
