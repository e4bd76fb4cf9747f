//! The parts of the management canister's answers canvid's canisters read.
//!
//! Why not `ic-cdk-management-canister`'s full `CanisterStatusResult`: its decoder expects every
//! field of the newest interface, and a subnet that answers with an older (or newer) record
//! fails to decode — measured: PocketIC 10's `canister_status` answer does not decode as
//! ic-cdk-management-canister 0.3's type. Candid skips the fields a record type does not name,
//! so these small types decode every version (and keep the large decoder out of the wasm).

use candid::{CandidType, Deserialize, Principal};

/// `canister_status`'s answer, as far as its controllers.
#[derive(Clone, Debug, CandidType, Deserialize)]
pub struct StatusControllers {
    pub settings: SettingsControllers,
}

#[derive(Clone, Debug, CandidType, Deserialize)]
pub struct SettingsControllers {
    pub controllers: Vec<Principal>,
}
