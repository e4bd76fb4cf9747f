//! init / upgrade hooks. (`canister_inspect_message` is in `guards`.)

use canvid_types::video::VideoInit;
use ic_cdk::api::{msg_caller, time};
use ic_stable_structures::DefaultMemoryImpl;

use crate::store::{canister, VideoStore};
use crate::{access, control, http, ownership};

/// `caller` is whoever called `install_code`: usually the spawn canister, not the owner.
#[ic_cdk::init]
fn init(arg: VideoInit) {
    match VideoStore::init(DefaultMemoryImpl::default(), &arg, msg_caller(), time()) {
        Ok(s) => canister::install(s),
        // Failing the install is the only way to refuse bad init arguments.
        Err(e) => ic_cdk::trap(format!("video canister init: {e}")),
    }
    http::recertify();
}

/// Nothing to save: all state already lives in stable memory.
#[ic_cdk::pre_upgrade]
fn pre_upgrade() {}

#[ic_cdk::post_upgrade]
fn post_upgrade() {
    match VideoStore::load(DefaultMemoryImpl::default()) {
        Ok(s) => canister::install(s),
        // Trapping rolls the upgrade back to the previous module with its state intact.
        Err(e) => ic_cdk::trap(format!("video canister post_upgrade: {e}")),
    }
    // The certification tree lived on the old heap: rebuild it from stable memory (reads only
    // the stored chunk digests; see docs/http.md "Cost") and publish its root again.
    http::reset();
    http::recertify();
    // Timers do not survive an upgrade: re-arm the index notification and the check of an
    // interrupted transfer.
    ownership::after_upgrade();
    control::after_upgrade();
    access::after_upgrade();
}
