//! Update endpoints:
//! - `register_video`: registrars only (the spawn canister), once per video (idempotent);
//! - `report_owner_change`: the video canister itself, after an ownership transfer; reports not
//!   newer than the stored `transfer_seq` are acknowledged without effect;
//! - `set_admins` / `set_registrars`: admins.

use candid::Principal;
use canvid_types::index::{OwnerChange, VideoRegistration};
use canvid_types::Result;
use ic_cdk::api::{msg_caller, time};
use ic_cdk::update;

use crate::guards::{require_admin, require_registrar};
use crate::store;

#[update]
fn register_video(reg: VideoRegistration) -> Result<()> {
    require_registrar()?;
    store::with_mut(|s| s.register(&reg, time())).map(|_| ())
}

#[update]
fn report_owner_change(change: OwnerChange) -> Result<()> {
    // The reporting video is the caller: a canister can only report on itself.
    let caller = msg_caller();
    store::with_mut(|s| s.report_owner_change(&caller, &change)).map(|_| ())
}

#[update]
fn set_admins(admins: Vec<Principal>) -> Result<()> {
    require_admin()?;
    store::with_mut(|s| s.set_admins(&admins))
}

#[update]
fn set_registrars(registrars: Vec<Principal>) -> Result<()> {
    require_admin()?;
    store::with_mut(|s| s.set_registrars(&registrars))
}
