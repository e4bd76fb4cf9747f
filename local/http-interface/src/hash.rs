//! The IC's representation-independent hash, computed over the CBOR value as the client sent it.
//!
//! A request id is the hash of the `content` map exactly as received: every field the client
//! put there is covered by its signature, including fields this server does not interpret
//! (`nonce`, `sender_info`, future fields). Hashing the decoded struct instead would silently
//! drop unknown fields, so a client could attach data that its signature does not cover.
//! `ic_transport_types::to_request_id` computes the same function over the typed struct; the
//! unit tests check that both agree on what the agents send.

use serde_cbor::Value;
use sha2::{Digest, Sha256};

/// Why a value has no representation-independent hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("map keys must be text")]
    NonTextKey,
    #[error("floating-point and boolean values cannot be hashed")]
    Unsupported,
}

fn leb128(mut n: u128) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn sleb128(mut n: i128) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        let done = (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0);
        if done {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Hash of one value: blobs and text hash their bytes, naturals their LEB128 encoding, arrays
/// the concatenation of their elements' hashes, maps [`hash_of_map`].
pub fn hash_value(value: &Value) -> Result<[u8; 32], HashError> {
    Ok(match value {
        Value::Bytes(b) => Sha256::digest(b).into(),
        Value::Text(t) => Sha256::digest(t.as_bytes()).into(),
        Value::Integer(i) if *i >= 0 => Sha256::digest(leb128(*i as u128)).into(),
        Value::Integer(i) => Sha256::digest(sleb128(*i)).into(),
        Value::Array(items) => {
            let mut h = Sha256::new();
            for item in items {
                h.update(hash_value(item)?);
            }
            h.finalize().into()
        }
        Value::Map(_) => hash_of_map(value)?,
        Value::Tag(_, inner) => hash_value(inner)?,
        _ => return Err(HashError::Unsupported),
    })
}

/// Hash of a map: SHA-256 of the sorted concatenation of `hash(key) ++ hash(value)`. Null
/// values count as absent (the JS agent drops `undefined` fields the same way).
pub fn hash_of_map(value: &Value) -> Result<[u8; 32], HashError> {
    let map = match value {
        Value::Map(m) => m,
        Value::Tag(_, inner) => return hash_of_map(inner),
        _ => return hash_value(value),
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (k, v) in map {
        let Value::Text(k) = k else {
            return Err(HashError::NonTextKey);
        };
        if matches!(v, Value::Null) {
            continue;
        }
        let mut pair = Vec::with_capacity(64);
        pair.extend_from_slice(&Sha256::digest(k.as_bytes()));
        pair.extend_from_slice(&hash_value(v)?);
        pairs.push(pair);
    }
    pairs.sort();
    let mut h = Sha256::new();
    for p in pairs {
        h.update(p);
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candid::Principal;
    use ic_transport_types::{Delegation, EnvelopeContent};

    fn value_of<T: serde::Serialize>(t: &T) -> Value {
        // Through bytes, as a request arrives (principals encode as blobs).
        serde_cbor::from_slice(&serde_cbor::to_vec(t).unwrap()).unwrap()
    }

    #[test]
    fn agrees_with_ic_transport_types() {
        let canister = Principal::from_text("rrkah-fqaaa-aaaaa-aaaaq-cai").unwrap();
        let contents = [
            EnvelopeContent::Call {
                nonce: Some(vec![1, 2, 3]),
                ingress_expiry: 1_700_000_000_000_000_000,
                sender: Principal::anonymous(),
                canister_id: canister,
                method_name: "greet".into(),
                arg: b"DIDL\x00\x00".to_vec(),
                sender_info: None,
            },
            EnvelopeContent::Query {
                ingress_expiry: 5,
                sender: Principal::management_canister(),
                canister_id: canister,
                method_name: String::new(),
                arg: vec![],
                nonce: None,
                sender_info: None,
            },
            EnvelopeContent::ReadState {
                ingress_expiry: 300,
                sender: Principal::anonymous(),
                paths: vec![
                    vec!["time".into()],
                    vec!["request_status".into(), vec![7u8; 32].into()],
                ],
            },
        ];
        for c in &contents {
            assert_eq!(
                hash_of_map(&value_of(c)).unwrap(),
                *c.to_request_id(),
                "{c:?}"
            );
        }
        let d = Delegation {
            pubkey: vec![9; 44],
            expiration: 1 << 62,
            targets: Some(vec![canister]),
            permissions: None,
        };
        let signable = d.signable();
        assert_eq!(&signable[27..], &hash_of_map(&value_of(&d)).unwrap());
    }

    #[test]
    fn spec_example() {
        // The interface specification's example: hash of
        // {request_type: "call", canister_id: 00000000000004D2, method_name: "hello", arg: "DIDL\0\xFD*"}.
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            Value::Text("request_type".into()),
            Value::Text("call".into()),
        );
        m.insert(
            Value::Text("canister_id".into()),
            Value::Bytes(vec![0, 0, 0, 0, 0, 0, 0x04, 0xD2]),
        );
        m.insert(
            Value::Text("method_name".into()),
            Value::Text("hello".into()),
        );
        m.insert(
            Value::Text("arg".into()),
            Value::Bytes(b"DIDL\x00\xFD*".to_vec()),
        );
        assert_eq!(
            hex::encode(hash_of_map(&Value::Map(m)).unwrap()),
            "8781291c347db32a9d8c10eb62b710fce5a93be676474c42babc74c51858f94b"
        );
    }

    #[test]
    fn leb_encodings() {
        assert_eq!(leb128(0), vec![0]);
        assert_eq!(leb128(624485), vec![0xe5, 0x8e, 0x26]);
        assert_eq!(sleb128(-123456), vec![0xc0, 0xbb, 0x78]);
        assert_eq!(sleb128(-1), vec![0x7f]);
        assert_eq!(sleb128(63), vec![0x3f]);
        assert_eq!(sleb128(64), vec![0xc0, 0x00]);
    }
}
