//! The ICRC-3 generic [`Value`] and its representation-independent hash.
//!
//! ICRC-3 serves blocks as `Value`s rather than typed candid records because candid's subtyping
//! lets a client silently drop fields it does not know, and a client that verifies the chain must
//! hash exactly what the canister hashed. The hash is the IC's representation-independent hash
//! of structured data (ICRC-3 `HASHINGVALUES.md`): SHA-256 of the bytes for `Blob`/`Text`, of the
//! (S)LEB128 encoding for `Nat`/`Int`, of the concatenated element hashes for `Array`, and of the
//! sorted concatenation of `hash(key) ‖ hash(value)` pairs for `Map`.

use std::collections::BTreeMap;

use candid::{CandidType, Deserialize, Int, Nat};
use serde::Serialize;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

/// A 32-byte SHA-256 digest: block hashes, `phash`, the certified tip hash.
pub type Hash = [u8; 32];

/// ICRC-3's `Value`:
/// `variant { Blob: blob; Text: text; Nat: nat; Int: int; Array: vec Value; Map: vec record { text; Value } }`.
///
/// `Map` is a `BTreeMap`: its candid form is the same `vec record { text; Value }`, its keys are
/// unique (a map with a repeated key has no well-defined meaning for the hash) and the order in
/// which the canister serves them is deterministic.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Blob(ByteBuf),
    Text(String),
    Nat(Nat),
    Int(Int),
    Array(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// `Value::Blob` from anything byte-like.
    pub fn blob(bytes: impl Into<Vec<u8>>) -> Self {
        Value::Blob(ByteBuf::from(bytes.into()))
    }

    /// `Value::Text` from anything string-like.
    pub fn text(text: impl Into<String>) -> Self {
        Value::Text(text.into())
    }

    /// `Value::Nat` from a `u64` (timestamps, expiries).
    pub fn nat(n: u64) -> Self {
        Value::Nat(Nat::from(n))
    }

    /// `Value::Map` from `(key, value)` pairs; a repeated key keeps the last value.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Self {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The entry `key` of a `Map`; `None` for other variants or a missing key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.get(key),
            _ => None,
        }
    }

    /// The representation-independent hash of ICRC-3 (see the module docs).
    pub fn hash(&self) -> Hash {
        match self {
            Value::Blob(b) => sha256(b),
            Value::Text(t) => sha256(t.as_bytes()),
            Value::Nat(n) => sha256(&nat_leb128(n)),
            Value::Int(i) => sha256(&int_sleb128(i)),
            Value::Array(items) => {
                let mut h = Sha256::new();
                for item in items {
                    h.update(item.hash());
                }
                h.finalize().into()
            }
            Value::Map(entries) => {
                let mut pairs: Vec<(Hash, Hash)> = entries
                    .iter()
                    .map(|(k, v)| (sha256(k.as_bytes()), v.hash()))
                    .collect();
                pairs.sort_unstable();
                let mut h = Sha256::new();
                for (k, v) in &pairs {
                    h.update(k);
                    h.update(v);
                }
                h.finalize().into()
            }
        }
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// Unsigned LEB128 of a `Nat` (candid's own encoding of `nat` is exactly this).
pub(crate) fn nat_leb128(n: &Nat) -> Vec<u8> {
    let mut out = Vec::new();
    n.encode(&mut out).expect("writing to a Vec cannot fail");
    out
}

/// Signed LEB128 of an `Int` (candid's own encoding of `int` is exactly this).
pub(crate) fn int_sleb128(i: &Int) -> Vec<u8> {
    let mut out = Vec::new();
    i.encode(&mut out).expect("writing to a Vec cannot fail");
    out
}

/// Unsigned LEB128 of a `u64`, appended to `out`.
pub(crate) fn write_uleb(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(h: Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    // The test vectors of ICRC-3's HASHINGVALUES.md (dfinity/ICRC-1, standards/ICRC-3), verbatim.
    #[test]
    fn icrc3_spec_test_vectors() {
        assert_eq!(
            hex(Value::nat(42).hash()),
            "684888c0ebb17f374298b65ee2807526c066094c701bcc7ebbe1c1095f494fc1"
        );
        assert_eq!(
            hex(Value::Int(Int::from(-42)).hash()),
            "de5a6f78116eca62d7fc5ce159d23ae6b889b365a1739ad2cf36f925a140d0cc"
        );
        assert_eq!(
            hex(Value::text("Hello, World!").hash()),
            "dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f"
        );
        assert_eq!(
            hex(Value::blob(vec![1, 2, 3, 4]).hash()),
            "9f64a747e1b97f131fabb6b447296c9b6f0201e79fb3c5356e6c77e89b6a806a"
        );
        assert_eq!(
            hex(Value::Array(vec![
                Value::nat(3),
                Value::text("foo"),
                Value::blob(vec![5, 6])
            ])
            .hash()),
            "514a04011caa503990d446b7dec5d79e19c221ae607fb08b2848c67734d468d6"
        );
        let map = Value::map([
            (
                "from",
                Value::blob(
                    b"\x00\xab\xcd\xef\x00\x12\x34\x00\x56\x78\x9a\x00\xbc\xde\xf0\x00\x01\x23\x45\x67\x89\x00\xab\xcd\xef\x01"
                        .to_vec(),
                ),
            ),
            (
                "to",
                Value::blob(
                    b"\x00\xab\x0d\xef\x00\x12\x34\x00\x56\x78\x9a\x00\xbc\xde\xf0\x00\x01\x23\x45\x67\x89\x00\xab\xcd\xef\x01"
                        .to_vec(),
                ),
            ),
            ("amount", Value::nat(42)),
            ("created_at", Value::nat(1699218263)),
            ("memo", Value::nat(0)),
        ]);
        assert_eq!(
            hex(map.hash()),
            "c56ece650e1de4269c5bdeff7875949e3e2033f85b2d193c2ff4f7f78bdcfc75"
        );
    }

    #[test]
    fn leb128_matches_the_textbook_encoding() {
        // Wikipedia's LEB128 examples: 624485 -> e5 8e 26, -123456 -> c0 bb 78.
        assert_eq!(nat_leb128(&Nat::from(624_485u32)), vec![0xe5, 0x8e, 0x26]);
        assert_eq!(int_sleb128(&Int::from(-123_456)), vec![0xc0, 0xbb, 0x78]);
        let mut out = Vec::new();
        write_uleb(&mut out, 624_485);
        assert_eq!(out, vec![0xe5, 0x8e, 0x26]);
        for n in [0u64, 1, 127, 128, 300, u64::MAX] {
            let mut out = Vec::new();
            write_uleb(&mut out, n);
            assert_eq!(out, nat_leb128(&Nat::from(n)), "{n}");
        }
    }

    #[test]
    fn value_round_trips_through_candid() {
        let v = Value::map([
            (
                "a",
                Value::Array(vec![Value::nat(1), Value::Int(Int::from(-5))]),
            ),
            ("b", Value::blob(vec![0, 1])),
        ]);
        let bytes = candid::encode_one(&v).unwrap();
        let back: Value = candid::decode_one(&bytes).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.hash(), v.hash());
    }
}
