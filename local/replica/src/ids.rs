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

/// Inverse of [`canister_id`]; `None` for principals that are not canister ids.
pub fn canister_seq(p: &Principal) -> Option<u64> {
    let b = p.as_slice();
    if b.len() != 10 || b[8] != 1 || b[9] != 1 {
        return None;
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&b[..8]);
    Some(u64::from_be_bytes(n))
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

    #[test]
    fn seq_roundtrip() {
        for n in [0u64, 1, 255, 1 << 40, u64::MAX] {
            assert_eq!(canister_seq(&canister_id(n)), Some(n));
        }
        assert_eq!(canister_seq(&Principal::anonymous()), None);
        assert_eq!(canister_seq(&management()), None);
    }
}
