//! Native tests of the spawn canister: its plain-Rust decisions (`logic`), its store over
//! in-memory stable memory (`store`), the ingress policy (`guards`), and the checked-in candid
//! interface.

use candid::Principal;
use canvid_types::spawn::{Payer, SpawnStatus, SpawnedVideo};

mod guards;
mod logic;
mod store;

fn user(n: u8) -> Principal {
    // Self-authenticating principals end with 0x02.
    Principal::from_slice(&[n, n, n, 0x02])
}
fn canister(n: u8) -> Principal {
    Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, n, 0x01, 0x01])
}

fn video(id: Principal, owner: Principal, status: SpawnStatus) -> SpawnedVideo {
    SpawnedVideo {
        canister_id: id,
        owner,
        creator: owner,
        status,
        payer: Payer::Pool,
        caller: owner,
        cycles_given: 10,
        created_at: 1,
        updated_at: 1,
        wasm_sha256: None,
        last_error: None,
        cycles_returned: None,
    }
}

/// `candid/spawn.did` is what the code exports, and clients built against the released
/// interface keep working (`canvid-did-check`).
#[test]
fn candid_interface_is_current_and_compatible_with_the_released_one() {
    let generated = crate::__export_service();
    canvid_did_check::assert_current("spawn", &generated);
    canvid_did_check::assert_compatible_with_released("spawn", &generated);
}
