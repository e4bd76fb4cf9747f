//! Building blocks every canvid canister shares: the store singleton ([`store`]), candid-encoded
//! stable values ([`Candid`]), cursor paging ([`paging`]), fixed-size principal keys and the
//! versioned header prefix.
//!
//! Both canisters key their `StableBTreeMap`s by principals and start their header cell with
//! the same magic + version prefix. The byte layouts below are part of both canisters' stable
//! layouts (version 1): changing them breaks existing data, so they are pinned by tests.
//!
//! `PKey` (30 bytes, fixed): bytes `0..29` the principal's bytes left-aligned and zero-padded,
//! byte 29 its length (0..=29). Byte-wise ordering groups a principal's keys and gives a stable
//! order for pagination cursors.
//!
//! `PairKey` (60 bytes, fixed): `PKey(first) || PKey(second)`: all pairs with the same first
//! principal are one contiguous key range.
//!
//! Header prefix (8 bytes): a 4-byte magic · layout version u32 LE. What follows is the
//! canister's own.

pub mod candid_value;
pub mod paging;
pub mod store;

pub use candid_value::Candid;
pub use store::StoreCell;

use std::borrow::Cow;

use candid::Principal;
use canvid_types::{Error, Result};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::Storable;

/// Bytes of a [`PKey`].
pub const PKEY_LEN: usize = 30;

/// A principal as a fixed-size, byte-wise ordered key (layout in the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PKey(pub [u8; PKEY_LEN]);

impl PKey {
    pub fn new(p: &Principal) -> Self {
        let bytes = p.as_slice();
        let mut k = [0u8; PKEY_LEN];
        // A principal is at most 29 bytes (`Principal` enforces it), so the length byte is free.
        k[..bytes.len()].copy_from_slice(bytes);
        k[PKEY_LEN - 1] = bytes.len() as u8;
        PKey(k)
    }

    /// The smallest key: sorts before every real principal (range scans start here).
    pub const MIN: PKey = PKey([0u8; PKEY_LEN]);

    pub fn principal(&self) -> Principal {
        // Clamp: a corrupted length must not make `from_slice` panic.
        let len = (self.0[PKEY_LEN - 1] as usize).min(PKEY_LEN - 1);
        Principal::from_slice(&self.0[..len])
    }

    /// The key stored in the first `PKEY_LEN` bytes of `b` (which must hold that many: callers
    /// pass slices of fixed-size records).
    pub fn from_slice(b: &[u8]) -> Self {
        let mut k = [0u8; PKEY_LEN];
        k.copy_from_slice(&b[..PKEY_LEN]);
        PKey(k)
    }
}

impl Storable for PKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
    fn into_bytes(self) -> Vec<u8> {
        self.0.to_vec()
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        PKey::from_slice(&bytes)
    }
    const BOUND: Bound = Bound::Bounded {
        max_size: PKEY_LEN as u32,
        is_fixed_size: true,
    };
}

/// Two principals as one key (layout in the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PairKey(pub [u8; 2 * PKEY_LEN]);

impl PairKey {
    pub fn new(a: &Principal, b: &Principal) -> Self {
        Self::from_keys(PKey::new(a), PKey::new(b))
    }
    pub fn from_keys(a: PKey, b: PKey) -> Self {
        let mut k = [0u8; 2 * PKEY_LEN];
        k[..PKEY_LEN].copy_from_slice(&a.0);
        k[PKEY_LEN..].copy_from_slice(&b.0);
        PairKey(k)
    }
    pub fn first(&self) -> PKey {
        PKey::from_slice(&self.0[..PKEY_LEN])
    }
    pub fn second(&self) -> PKey {
        PKey::from_slice(&self.0[PKEY_LEN..])
    }
}

impl Storable for PairKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
    fn into_bytes(self) -> Vec<u8> {
        self.0.to_vec()
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut k = [0u8; 2 * PKEY_LEN];
        k.copy_from_slice(&bytes[..2 * PKEY_LEN]);
        PairKey(k)
    }
    const BOUND: Bound = Bound::Bounded {
        max_size: 2 * PKEY_LEN as u32,
        is_fixed_size: true,
    };
}

/// Bytes of the header prefix: magic (4) + layout version (4).
pub const HEADER_PREFIX_LEN: usize = 8;

/// The header prefix: `magic` · `version` u32 LE.
pub fn header_prefix(magic: &[u8; 4], version: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_PREFIX_LEN);
    b.extend_from_slice(magic);
    b.extend_from_slice(&version.to_le_bytes());
    b
}

/// Checks the header prefix and returns the bytes after it. `Err` names what is wrong (prefixed
/// with `what`): an unknown layout must stop an upgrade, not be silently reinterpreted.
pub fn header_body<'a>(
    bytes: &'a [u8],
    magic: &[u8; 4],
    version: u32,
    what: &str,
) -> std::result::Result<&'a [u8], String> {
    if bytes.len() < HEADER_PREFIX_LEN || &bytes[0..4] != magic {
        return Err(format!("{what} header: bad magic"));
    }
    let found = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if found != version {
        return Err(format!("{what} header: unsupported layout version {found}"));
    }
    Ok(&bytes[HEADER_PREFIX_LEN..])
}

/// The u64 LE at `at` (`b` must hold 8 bytes there: callers read fixed-size records).
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A principal list for a header (admins, registrars): at most `max` entries, duplicates
/// dropped, first-seen order kept. `what` names the list in the error.
pub fn dedup_principals(what: &str, list: &[Principal], max: usize) -> Result<Vec<Principal>> {
    if list.len() > max {
        return Err(Error::InvalidArgument {
            reason: format!("{} {what}, at most {max}", list.len()),
        });
    }
    let mut out: Vec<Principal> = Vec::with_capacity(list.len());
    for p in list {
        if !out.contains(p) {
            out.push(*p);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u8, len: usize) -> Principal {
        Principal::from_slice(&vec![n; len])
    }

    /// The exact bytes both canisters have stored since layout version 1.
    #[test]
    fn pkey_bytes_are_pinned() {
        let k = PKey::new(&p(7, 10));
        let mut want = [0u8; PKEY_LEN];
        want[..10].copy_from_slice(&[7; 10]);
        want[29] = 10;
        assert_eq!(k.0, want);
        assert_eq!(k.to_bytes().as_ref(), &want);
        assert_eq!(PKey::from_bytes(Cow::Borrowed(&want)).principal(), p(7, 10));
        // The longest principal (29 bytes) and the anonymous one round-trip.
        for q in [
            p(0xff, 29),
            Principal::anonymous(),
            Principal::management_canister(),
        ] {
            assert_eq!(PKey::new(&q).principal(), q);
        }
        // A corrupted length byte does not panic.
        let mut bad = want;
        bad[29] = 200;
        assert_eq!(PKey(bad).principal().as_slice().len(), 29);
    }

    #[test]
    fn pair_key_is_two_pkeys_and_groups_by_first() {
        let (a, b) = (p(1, 10), p(2, 29));
        let k = PairKey::new(&a, &b);
        assert_eq!(&k.0[..PKEY_LEN], &PKey::new(&a).0);
        assert_eq!(&k.0[PKEY_LEN..], &PKey::new(&b).0);
        assert_eq!(k.first().principal(), a);
        assert_eq!(k.second().principal(), b);
        assert_eq!(PairKey::from_bytes(k.to_bytes()), k);
        // Everything of `a` sorts between (a, MIN) and the next first principal.
        assert!(PairKey::from_keys(PKey::new(&a), PKey::MIN) < k);
        assert!(k < PairKey::new(&p(1, 11), &p(0, 1)));
    }

    #[test]
    fn header_prefix_round_trips_and_refuses_others() {
        let mut b = header_prefix(b"ABCD", 3);
        assert_eq!(b, [b'A', b'B', b'C', b'D', 3, 0, 0, 0]);
        b.extend_from_slice(b"rest");
        assert_eq!(header_body(&b, b"ABCD", 3, "x"), Ok(&b"rest"[..]));
        assert_eq!(
            header_body(&b, b"ABCE", 3, "x"),
            Err("x header: bad magic".to_string())
        );
        assert_eq!(
            header_body(&b, b"ABCD", 1, "x"),
            Err("x header: unsupported layout version 3".to_string())
        );
        assert_eq!(
            header_body(&b[..7], b"ABCD", 3, "x"),
            Err("x header: bad magic".to_string())
        );
    }

    #[test]
    fn dedup_keeps_order_and_bounds_the_list() {
        let (a, b) = (p(1, 3), p(2, 3));
        assert_eq!(dedup_principals("admins", &[a, b, a], 3), Ok(vec![a, b]));
        assert_eq!(
            dedup_principals("admins", &[a, b, a], 2),
            Err(Error::InvalidArgument {
                reason: "3 admins, at most 2".into()
            })
        );
        assert_eq!(u64_at(&[0, 1, 0, 0, 0, 0, 0, 0, 0], 1), 1);
    }
}

/// Property tests (issue 15) of the shared stable encodings: `CANVID_PROPTEST_CASES` cases.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn cases() -> u32 {
        std::env::var("CANVID_PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256)
    }

    fn principal() -> impl Strategy<Value = Principal> {
        prop::collection::vec(any::<u8>(), 0..=29).prop_map(|b| Principal::from_slice(&b))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// Any 30 stored bytes decode to some principal (a corrupted length byte is clamped,
        /// never a panic); valid keys round-trip and order like their bytes.
        #[test]
        fn pkey_decodes_any_bytes_and_round_trips(
            raw in prop::array::uniform30(any::<u8>()),
            a in principal(),
            b in principal(),
        ) {
            let p = PKey::from_bytes(Cow::Borrowed(&raw[..])).principal();
            prop_assert!(p.as_slice().len() <= 29);
            let (ka, kb) = (PKey::new(&a), PKey::new(&b));
            prop_assert_eq!(PKey::from_bytes(ka.to_bytes()).principal(), a);
            prop_assert_eq!(ka.into_bytes().len(), PKEY_LEN);
            // Equal keys iff equal principals.
            prop_assert_eq!(ka == kb, a == b);
        }

        #[test]
        fn pair_key_decodes_any_bytes_and_round_trips(
            raw in prop::collection::vec(any::<u8>(), 2 * PKEY_LEN),
            a in principal(),
            b in principal(),
        ) {
            let k = PairKey::from_bytes(Cow::Borrowed(&raw[..]));
            let _ = (k.first().principal(), k.second().principal());
            let k = PairKey::new(&a, &b);
            let back = PairKey::from_bytes(k.to_bytes());
            prop_assert_eq!(back, k);
            prop_assert_eq!(back.first().principal(), a);
            prop_assert_eq!(back.second().principal(), b);
        }

        /// `header_body` accepts exactly the prefix it wrote, and names what is wrong otherwise.
        #[test]
        fn header_body_accepts_only_its_prefix(
            raw in prop::collection::vec(any::<u8>(), 0..20),
            magic in prop::array::uniform4(any::<u8>()),
            version in any::<u32>(),
            body in prop::collection::vec(any::<u8>(), 0..20),
        ) {
            let ok = raw.len() >= HEADER_PREFIX_LEN
                && raw[0..4] == magic
                && raw[4..8] == version.to_le_bytes();
            match header_body(&raw, &magic, version, "x") {
                Ok(rest) => {
                    prop_assert!(ok);
                    prop_assert_eq!(rest, &raw[HEADER_PREFIX_LEN..]);
                }
                Err(e) => {
                    prop_assert!(!ok);
                    prop_assert!(
                        e == "x header: bad magic"
                            || e.starts_with("x header: unsupported layout version"),
                        "{}", e
                    );
                }
            }
            let mut written = header_prefix(&magic, version);
            written.extend_from_slice(&body);
            prop_assert_eq!(header_body(&written, &magic, version, "x"), Ok(&body[..]));
        }

        /// `Candid<T>`: a valid value round-trips; other bytes either decode (they are a valid
        /// encoding) or trap with the documented "undecodable" message, never anything else.
        #[test]
        fn candid_value_round_trips_or_traps_as_documented(
            v in (any::<u64>(), ".{0,8}", prop::option::of(principal())),
            raw in prop::collection::vec(any::<u8>(), 0..48),
            didl in any::<bool>(),
        ) {
            let c = Candid(v.clone());
            prop_assert_eq!(Candid::<(u64, String, Option<Principal>)>::from_bytes(c.to_bytes()).0, v);
            let mut bytes = if didl { b"DIDL".to_vec() } else { Vec::new() };
            bytes.extend_from_slice(&raw);
            let decoded = candid::decode_one::<(u64, String, Option<Principal>)>(&bytes);
            let got = std::panic::catch_unwind(|| {
                Candid::<(u64, String, Option<Principal>)>::from_bytes(Cow::Owned(bytes.clone())).0
            });
            match (decoded, got) {
                (Ok(want), Ok(got)) => prop_assert_eq!(got, want),
                (Err(_), Err(panic)) => {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_default();
                    prop_assert!(msg.contains("undecodable"), "{}", msg);
                }
                (d, g) => prop_assert!(false, "decode {:?} vs from_bytes {:?}", d.is_ok(), g.is_ok()),
            }
        }
    }
}
