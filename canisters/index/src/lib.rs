//! canvid index canister: maps creators and current owners to video canisters.
//!
//! Writes:
//! - `register_video`: registrars only (the spawn canister), once per video (idempotent).
//! - `report_owner_change`: the video canister itself, after an ownership transfer; reports not
//!   newer than the stored `transfer_seq` are acknowledged without effect.
//! - `set_admins` / `set_registrars`: admins.
//!
//! Reads are queries open to everybody. All state is in stable memory (see `storage`).

use std::cell::RefCell;

use candid::Principal;
use canvid_types::index::{
    IndexInit, IndexStats, ListArgs, OwnerChange, Page, VideoEntry, VideoRegistration,
};
use canvid_types::{Error, Result};
use ic_cdk::api::{msg_caller, time};
use ic_cdk::{init, inspect_message, post_upgrade, query, update};
use ic_stable_structures::DefaultMemoryImpl;

pub mod storage;

use storage::Index;

thread_local! {
    static STATE: RefCell<Option<Index<DefaultMemoryImpl>>> = const { RefCell::new(None) };
}

fn with<R>(f: impl FnOnce(&Index<DefaultMemoryImpl>) -> R) -> R {
    STATE.with(|s| {
        f(s.borrow()
            .as_ref()
            .expect("index state is opened in init/post_upgrade"))
    })
}

fn with_mut<R>(f: impl FnOnce(&mut Index<DefaultMemoryImpl>) -> R) -> R {
    STATE.with(|s| {
        f(s.borrow_mut()
            .as_mut()
            .expect("index state is opened in init/post_upgrade"))
    })
}

/// Opens the stable state and applies an install/upgrade argument (admins default to the
/// installer when the list is empty).
fn open(arg: Option<IndexInit>) {
    let installer = msg_caller();
    let mut index = Index::open(DefaultMemoryImpl::default(), installer);
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
    STATE.with(|s| *s.borrow_mut() = Some(index));
}

#[init]
fn init(arg: Option<IndexInit>) {
    open(arg);
}

#[post_upgrade]
fn post_upgrade(arg: Option<IndexInit>) {
    open(arg);
}

fn require_admin(caller: Principal) -> Result<()> {
    Error::require_admin(caller, with(|s| s.is_admin(&caller)))
}

/// Ingress filter: update calls from users are only for admins and registrars (registrations and
/// ownership reports normally come from canisters, which do not go through this hook). The
/// endpoints check again: inspect_message is not a security boundary for inter-canister calls.
#[inspect_message]
fn inspect_message() {
    let caller = msg_caller();
    if with(|s| s.is_admin(&caller) || s.is_registrar(&caller)) {
        ic_cdk::api::accept_message();
    }
}

#[update]
fn register_video(reg: VideoRegistration) -> Result<()> {
    let caller = msg_caller();
    if !with(|s| s.is_registrar(&caller)) {
        return Err(Error::NotAuthorized {
            caller,
            reason: "only a registrar may register videos".into(),
        });
    }
    with_mut(|s| s.register(&reg, time())).map(|_| ())
}

#[update]
fn report_owner_change(change: OwnerChange) -> Result<()> {
    let caller = msg_caller();
    with_mut(|s| s.report_owner_change(&caller, &change)).map(|_| ())
}

#[update]
fn set_admins(admins: Vec<Principal>) -> Result<()> {
    require_admin(msg_caller())?;
    with_mut(|s| s.set_admins(&admins))
}

#[update]
fn set_registrars(registrars: Vec<Principal>) -> Result<()> {
    require_admin(msg_caller())?;
    with_mut(|s| s.set_registrars(&registrars))
}

#[query]
fn get_video(video: Principal) -> Option<VideoEntry> {
    with(|s| s.get(&video))
}

#[query]
fn videos_by_creator(args: ListArgs) -> Page {
    with(|s| s.by_creator(&args))
}

#[query]
fn videos_by_owner(args: ListArgs) -> Page {
    with(|s| s.by_owner(&args))
}

#[query]
fn count_by_creator(p: Principal) -> u64 {
    with(|s| s.count_by_creator(&p))
}

#[query]
fn count_by_owner(p: Principal) -> u64 {
    with(|s| s.count_by_owner(&p))
}

#[query]
fn stats() -> IndexStats {
    with(|s| s.stats())
}

ic_cdk::export_candid!();

#[cfg(test)]
mod tests;
