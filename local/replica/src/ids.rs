//! Principal ids as the IC allocates them.
//!
//! A canister id is an opaque principal of 10 bytes: an 8-byte big-endian counter followed by
//! `0x01 0x01` (the "opaque id" class byte preceded by the 0x01 used by the IC for canister ranges).
//! The management canister is the empty principal `aaaaa-aa`.

use candid::Principal;

/// The management canister `aaaaa-aa`.
pub fn management() -> Principal {
    Principal::management_canister()
}

/// The canister id with sequence number `n` (the IC's routing-table encoding).
pub fn canister_id(n: u64) -> Principal {
    let mut bytes = [0u8; 10];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes[8] = 0x01;
    bytes[9] = 0x01;
    Principal::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_canister_id_matches_the_ic() {
        // The NNS canisters are the first ids of the IC's first range: registry (0),
        // governance (1), ledger (2).
        assert_eq!(canister_id(0).to_text(), "rwlgt-iiaaa-aaaaa-aaaaa-cai");
        assert_eq!(canister_id(1).to_text(), "rrkah-fqaaa-aaaaa-aaaaq-cai");
        assert_eq!(canister_id(2).to_text(), "ryjl3-tyaaa-aaaaa-aaaba-cai");
    }
}
