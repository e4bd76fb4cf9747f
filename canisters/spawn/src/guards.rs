//! Who may call what: the admin check of the admin endpoints, and the ingress filter
//! (`inspect_message`), whose decision is the plain function [`accepts_ingress`] so that it is
//! tested natively over a store on `VectorMemory`.

use candid::Principal;
use canvid_types::{Error, Result};
use ic_cdk::api::{msg_caller, msg_method_name};
use ic_cdk::inspect_message;
use ic_stable_structures::Memory;

use crate::logic;
use crate::store::{self, SpawnStore};

/// The caller, if it is an admin; `NotAuthorized` otherwise. First thing every admin endpoint
/// does (`inspect_message` only filters ingress, not calls from canisters).
pub fn require_admin() -> Result<Principal> {
    let caller = msg_caller();
    let admin = store::with(|s| s.is_admin(&caller));
    Error::require_admin(caller, admin).map(|()| caller)
}

/// The ingress policy. Every accepted message is paid by the spawn canister, so only what can
/// succeed is accepted (the endpoints check again): `create_video` from callers with a way to
/// pay and an argument of a request's size ([`logic::inspect_create_video`]); every other update
/// from admins only; `return_unused_cycles` never (canisters call it).
pub fn accepts_ingress<M: Memory>(
    s: &SpawnStore<M>,
    method: &str,
    caller: &Principal,
    arg_size: usize,
) -> bool {
    match method {
        "create_video" => {
            let (quota, _) = s.quota(caller);
            logic::inspect_create_video(
                caller,
                arg_size,
                &s.account(caller),
                !s.spares_of(caller).is_empty(),
                quota.as_ref(),
            )
        }
        // Only video canisters call it, with cycles: ingress carries none.
        "return_unused_cycles" => false,
        _ => s.is_admin(caller),
    }
}

#[inspect_message]
fn inspect_message() {
    let caller = msg_caller();
    let method = msg_method_name();
    // `msg_arg_data_size` from ic0: ic-cdk 0.20 only offers a copy of the argument.
    let arg_size = ic0::msg_arg_data_size();
    if store::with(|s| accepts_ingress(s, &method, &caller, arg_size)) {
        ic_cdk::api::accept_message();
    }
}
