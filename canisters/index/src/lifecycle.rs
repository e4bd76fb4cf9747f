//! Install and upgrade: everything is in stable memory, so there is no `pre_upgrade`, and
//! `post_upgrade` just reopens the store and applies its argument, like `init`.

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
}

#[init]
fn init(arg: Option<IndexInit>) {
    open(arg);
}

#[post_upgrade]
fn post_upgrade(arg: Option<IndexInit>) {
    open(arg);
}
