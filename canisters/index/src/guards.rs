//! Who may call what: the admin and registrar checks of the update endpoints, and the ingress
//! filter (`inspect_message`), whose decision is the plain function [`accepts_ingress`].

use candid::Principal;
use canvid_types::{Error, Result};
use ic_cdk::api::msg_caller;
use ic_cdk::inspect_message;
use ic_stable_structures::Memory;

use crate::store::{self, IndexStore};

/// The caller, if it is an admin; `NotAuthorized` otherwise.
pub fn require_admin() -> Result<Principal> {
    let caller = msg_caller();
    Error::require_admin(caller, store::with(|s| s.is_admin(&caller))).map(|()| caller)
}

/// The caller, if it is a registrar (the spawn canister); `NotAuthorized` otherwise.
pub fn require_registrar() -> Result<Principal> {
    let caller = msg_caller();
    if store::with(|s| s.is_registrar(&caller)) {
        Ok(caller)
    } else {
        Err(Error::NotAuthorized {
            caller,
            reason: "only a registrar may register videos".into(),
        })
    }
}

/// The ingress policy: update calls from users are only for admins and registrars
/// (registrations and ownership reports normally come from canisters, which do not go through
/// this hook). The endpoints check again: `inspect_message` is not a security boundary for
/// inter-canister calls.
pub fn accepts_ingress<M: Memory>(s: &IndexStore<M>, caller: &Principal) -> bool {
    s.is_admin(caller) || s.is_registrar(caller)
}

#[inspect_message]
fn inspect_message() {
    let caller = msg_caller();
    if store::with(|s| accepts_ingress(s, &caller)) {
        ic_cdk::api::accept_message();
    }
}
