//! What `canvid serve` runs at `rkp4c-7iaaa-aaaaa-aaaca-cai`, the id of the IC's cycles minting
//! canister (CMC): only `get_default_subnets`, the query icp-cli sends before it creates a
//! canister through the cycles ledger (`icp canister create`, `icp deploy` without `--subnet`),
//! answering the one subnet serve has (its id is the install argument). Everything else of the
//! CMC (converting ICP to cycles, `notify_*`, the exchange rate) is absent: serve runs no ICP
//! ledger; cycles come from the cycles ledger's `provisional_deposit` (docs/serve.md).

use std::cell::Cell;

use candid::Principal;
use ic_cdk::{init, query};

thread_local! {
    static SUBNET: Cell<Principal> = const { Cell::new(Principal::anonymous()) };
}

#[init]
fn init(subnet: Principal) {
    SUBNET.with(|s| s.set(subnet));
}

/// The subnets a canister is created on when the caller names none: serve's one subnet.
#[query]
fn get_default_subnets() -> Vec<Principal> {
    vec![SUBNET.with(Cell::get)]
}
