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

/// Largest ingress argument of a collection method: a full batch of transfers or approvals
/// (10 requests of a few hundred bytes) fits many times over.
pub const MAX_COLLECTION_ARG_BYTES: usize = 16 * 1024;

/// The ingress policy (every accepted message is paid by the index): the admin methods for
/// admins and registrars (registrations and ownership reports normally come from canisters,
/// which do not go through this hook); the collection's updates for those who could succeed —
/// holders of a token, and for `icrc37_transfer_from` and token revocations also principals
/// some approval names, for collection revocations also principals that gave a collection
/// approval — with a bounded argument. The endpoints check again: `inspect_message`
/// is not a security boundary for inter-canister calls.
pub fn accepts_ingress<M: Memory>(
    s: &IndexStore<M>,
    caller: &Principal,
    method: &str,
    arg_size: usize,
) -> bool {
    let holder = || s.count_by_owner(caller) > 0;
    let collection = |ok: bool| ok && arg_size <= MAX_COLLECTION_ARG_BYTES;
    match method {
        "icrc7_transfer" | "icrc37_approve_tokens" | "icrc37_approve_collection" => {
            collection(holder())
        }
        "refresh_token_metadata" => collection(holder() || s.is_admin(caller)),
        // A collection approval outlives the tokens (it covers future ones too): whoever gave
        // one must be able to revoke it after selling their last token.
        "icrc37_revoke_collection_approvals" => {
            collection(holder() || s.has_collection_approvals(caller))
        }
        "icrc37_transfer_from" | "icrc37_revoke_token_approvals" => {
            collection(holder() || s.is_spender(caller))
        }
        _ => s.is_admin(caller) || s.is_registrar(caller),
    }
}

#[inspect_message]
fn inspect_message() {
    let caller = msg_caller();
    let method = ic_cdk::api::msg_method_name();
    // The size alone: copying a (possibly 2 MiB) argument would cost instructions.
    let arg_size = ic0::msg_arg_data_size();
    if store::with(|s| accepts_ingress(s, &caller, &method, arg_size)) {
        ic_cdk::api::accept_message();
    }
}
