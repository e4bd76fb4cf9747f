//! init / upgrade hooks and `canister_inspect_message`.

use canvid_types::video::VideoInit;
use ic_cdk::api::{accept_message, msg_caller, msg_method_name, time};
use ic_stable_structures::DefaultMemoryImpl;

use crate::{http, model, ownership, storage};

/// `caller` is whoever called `install_code`: usually the spawn canister, not the owner.
#[ic_cdk::init]
fn init(arg: VideoInit) {
    match storage::Storage::init(DefaultMemoryImpl::default(), &arg, msg_caller(), time()) {
        Ok(s) => storage::install(s),
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
    match storage::Storage::load(DefaultMemoryImpl::default()) {
        Ok(s) => storage::install(s),
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
}

/// Refuses ingress updates that cannot succeed, so that they cost the canister nothing. Every
/// endpoint checks again (inter-canister calls do not pass through here).
#[ic_cdk::inspect_message]
fn inspect_message() {
    let method = msg_method_name();
    let caller = msg_caller();
    let arg_size = ic0::msg_arg_data_size();
    if storage::with(|s| model::inspect(s.state(), &caller, &method, arg_size)) {
        accept_message();
    }
}
