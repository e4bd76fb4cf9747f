//! A candid-encoded stable value.
//!
//! Records that change shape over time (a map's values, a canister's small state cell) are stored
//! candid-encoded: candid's subtyping lets a newer module read what an older one wrote when the
//! new type only adds `opt` fields, so most layout changes need no migration. Blobs never go
//! here (they live in raw regions), and the values stay small.

use std::borrow::Cow;

use candid::{CandidType, Decode, Encode};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::Storable;
use serde::Deserialize;

/// A value stored as its candid encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candid<T>(pub T);

impl<T: CandidType + for<'de> Deserialize<'de> + Clone> Storable for Candid<T> {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(encode(&self.0))
    }
    fn into_bytes(self) -> Vec<u8> {
        encode(&self.0)
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // Only `to_bytes` wrote these bytes: a value that does not decode is corrupted or from
        // an incompatible layout, and trapping (failing the upgrade or the message) is the only
        // reaction that does not reinterpret it.
        Candid(Decode!(&bytes, T).unwrap_or_else(|e| {
            panic!(
                "stable value of type {}: undecodable: {e}",
                std::any::type_name::<T>()
            )
        }))
    }
    const BOUND: Bound = Bound::Unbounded;
}

fn encode<T: CandidType>(value: &T) -> Vec<u8> {
    // Encoding a value of a candid type into memory has no failure case for our records.
    Encode!(value).expect("candid encoding of a stored value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
    struct V1 {
        a: u64,
    }
    #[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
    struct V2 {
        a: u64,
        b: Option<String>,
    }

    #[test]
    fn round_trips_and_reads_older_records_with_new_optional_fields() {
        let v = Candid(V1 { a: 7 });
        assert_eq!(Candid::<V1>::from_bytes(v.to_bytes()), v);
        let newer = Candid::<V2>::from_bytes(Cow::Owned(v.into_bytes()));
        assert_eq!(newer.0, V2 { a: 7, b: None });
    }

    #[test]
    #[should_panic(expected = "undecodable")]
    fn garbage_traps_instead_of_being_reinterpreted() {
        Candid::<V1>::from_bytes(Cow::Borrowed(b"not candid"));
    }
}
