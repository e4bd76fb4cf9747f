//! The compact binary encoding of a block in the log; the format is documented byte by byte at
//! the top of `log.rs`. Candid or CBOR would repeat every map key as text and tag every value
//! with wide headers; this encoding replaces the keys the ICRC-7/37 blocks use by one byte.

use std::collections::BTreeMap;
use std::fmt;

use candid::{Int, Nat};
use serde_bytes::ByteBuf;

use crate::value::{int_sleb128, nat_leb128, write_uleb, Value};

/// The first byte of every entry: the version of the encoding that follows.
pub(crate) const FORMAT_V1: u8 = 1;

const TAG_BLOB: u8 = 0;
const TAG_TEXT: u8 = 1;
const TAG_NAT: u8 = 2;
const TAG_INT: u8 = 3;
const TAG_ARRAY: u8 = 4;
const TAG_MAP: u8 = 5;

/// Map keys stored as one byte, `index + 1`. Append-only: an entry's position is its encoding,
/// so reordering or removing one would misread every stored block.
const KNOWN_KEYS: [&str; 13] = [
    "btype",
    "ts",
    "phash",
    "tx",
    "tid",
    "from",
    "to",
    "spender",
    "memo",
    "exp",
    "meta",
    "icrc7:token_metadata",
    "fee",
];

/// Deeper nesting is refused when decoding (blocks are a handful of levels deep), so a corrupt
/// entry cannot overflow the stack.
const MAX_DEPTH: usize = 64;

/// Why stored bytes are not a block. Only corruption or a newer format produces these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The entry is empty or starts with a format version this code does not know.
    UnknownFormat(Option<u8>),
    /// The bytes end inside a value.
    Truncated,
    /// A value tag that is not one of the six variants.
    UnknownTag(u8),
    /// A one-byte key beyond the known-key table.
    UnknownKey(u8),
    /// A `Text` or key that is not UTF-8.
    InvalidUtf8,
    /// A malformed (S)LEB128 number.
    InvalidNumber,
    /// Nesting deeper than the limit.
    TooDeep,
    /// Bytes left over after the block.
    TrailingBytes,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt block entry: {self:?}")
    }
}

impl std::error::Error for DecodeError {}

/// The entry stored for `block`: the format byte and the value.
pub(crate) fn encode_block(block: &Value) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    encode_value(block, &mut out);
    out
}

/// The block stored as `bytes`.
pub(crate) fn decode_block(bytes: &[u8]) -> Result<Value, DecodeError> {
    match bytes.first() {
        Some(&FORMAT_V1) => {}
        other => return Err(DecodeError::UnknownFormat(other.copied())),
    }
    let mut r = Reader { bytes, pos: 1 };
    let v = r.value(0)?;
    if r.pos != bytes.len() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(v)
}

fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Blob(b) => {
            out.push(TAG_BLOB);
            write_uleb(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Text(t) => {
            out.push(TAG_TEXT);
            write_uleb(out, t.len() as u64);
            out.extend_from_slice(t.as_bytes());
        }
        Value::Nat(n) => {
            out.push(TAG_NAT);
            out.extend_from_slice(&nat_leb128(n));
        }
        Value::Int(i) => {
            out.push(TAG_INT);
            out.extend_from_slice(&int_sleb128(i));
        }
        Value::Array(items) => {
            out.push(TAG_ARRAY);
            write_uleb(out, items.len() as u64);
            for item in items {
                encode_value(item, out);
            }
        }
        Value::Map(entries) => {
            out.push(TAG_MAP);
            write_uleb(out, entries.len() as u64);
            for (k, v) in entries {
                match KNOWN_KEYS.iter().position(|known| known == k) {
                    Some(i) => out.push(i as u8 + 1),
                    None => {
                        out.push(0);
                        write_uleb(out, k.len() as u64);
                        out.extend_from_slice(k.as_bytes());
                    }
                }
                encode_value(v, out);
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.bytes.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let rest = &self.bytes[self.pos..];
        let n = usize::try_from(n).map_err(|_| DecodeError::Truncated)?;
        let taken = rest.get(..n).ok_or(DecodeError::Truncated)?;
        self.pos += n;
        Ok(taken)
    }

    fn uleb(&mut self) -> Result<u64, DecodeError> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::InvalidNumber);
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DecodeError::InvalidNumber)
    }

    fn text(&mut self) -> Result<String, DecodeError> {
        let len = self.uleb()?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// The bytes of one (S)LEB128 number: up to and including the first byte below 0x80.
    fn leb_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        while self.byte()? & 0x80 != 0 {}
        Ok(&self.bytes[start..self.pos])
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        Ok(match self.byte()? {
            TAG_BLOB => {
                let len = self.uleb()?;
                Value::Blob(ByteBuf::from(self.take(len)?.to_vec()))
            }
            TAG_TEXT => Value::Text(self.text()?),
            TAG_NAT => {
                let mut b = self.leb_bytes()?;
                Value::Nat(Nat::decode(&mut b).map_err(|_| DecodeError::InvalidNumber)?)
            }
            TAG_INT => {
                let mut b = self.leb_bytes()?;
                Value::Int(Int::decode(&mut b).map_err(|_| DecodeError::InvalidNumber)?)
            }
            TAG_ARRAY => {
                let n = self.uleb()?;
                // Every element takes at least one byte: a count beyond the rest is corrupt
                // (and must not size an allocation).
                if n > (self.bytes.len() - self.pos) as u64 {
                    return Err(DecodeError::Truncated);
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            TAG_MAP => {
                let n = self.uleb()?;
                let mut m = BTreeMap::new();
                for _ in 0..n {
                    let key = match self.byte()? {
                        0 => self.text()?,
                        i => KNOWN_KEYS
                            .get(usize::from(i) - 1)
                            .ok_or(DecodeError::UnknownKey(i))?
                            .to_string(),
                    };
                    let v = self.value(depth + 1)?;
                    m.insert(key, v);
                }
                Value::Map(m)
            }
            tag => return Err(DecodeError::UnknownTag(tag)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_variant() {
        let v = Value::map([
            ("btype", Value::text("7xfer")),
            ("ts", Value::nat(1_764_000_000_000_000_000)),
            ("unknown key", Value::Int(Int::from(-1_000_000_000_000i64))),
            (
                "tx",
                Value::Array(vec![
                    Value::blob(vec![1; 40]),
                    Value::Nat(Nat::parse(b"123456789012345678901234567890").unwrap()),
                    Value::Int(Int::from(0)),
                    Value::map::<&str>([]),
                    Value::text("é"),
                ]),
            ),
        ]);
        let bytes = encode_block(&v);
        assert_eq!(decode_block(&bytes), Ok(v));
    }

    #[test]
    fn exact_bytes_of_a_small_block() {
        let v = Value::map([("btype", Value::text("ab")), ("zz", Value::nat(300))]);
        assert_eq!(
            encode_block(&v),
            vec![
                1, // format
                5, 2, // map, 2 entries
                1, 1, 2, b'a', b'b', // "btype" (key 1): text "ab"
                0, 2, b'z', b'z', 2, 0xac, 0x02, // "zz" spelled out: nat 300
            ]
        );
    }

    #[test]
    fn corrupt_entries_are_errors_not_panics() {
        let good = encode_block(&Value::map([("tx", Value::blob(vec![1, 2, 3]))]));
        assert_eq!(decode_block(&[]), Err(DecodeError::UnknownFormat(None)));
        assert_eq!(decode_block(&[9]), Err(DecodeError::UnknownFormat(Some(9))));
        for cut in 1..good.len() {
            assert!(decode_block(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode_block(&trailing), Err(DecodeError::TrailingBytes));
        assert_eq!(decode_block(&[1, 9]), Err(DecodeError::UnknownTag(9)));
        assert_eq!(
            decode_block(&[1, 5, 1, 200, 2, 0]),
            Err(DecodeError::UnknownKey(200))
        );
        assert_eq!(
            decode_block(&[1, 1, 1, 0xff]),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            decode_block(&[1, 4, 0xff, 0xff, 0xff, 0x0f]),
            Err(DecodeError::Truncated)
        );
        let mut deep = vec![1];
        deep.extend(std::iter::repeat_n([4, 1], 100).flatten());
        deep.extend([2, 0]);
        assert_eq!(decode_block(&deep), Err(DecodeError::TooDeep));
    }
}
