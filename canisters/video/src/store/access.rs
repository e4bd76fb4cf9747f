//! Memory 6 (layout version 3): the access records of a private or paid video.
//!
//! One `StableBTreeMap<AccessKey, AccessValue>` holds every kind of record, told apart by the
//! key's first byte, so that access costs one virtual memory (one 16 MiB bucket) and only for
//! videos that use it: the map is created on the first write, and a public video never grows
//! memory 6.
//!
//! Keys (at most 48 bytes; `PKey` is the 30-byte principal key of `canvid-stable-common`;
//! integers big-endian so that byte order is numeric order):
//!
//! ```text
//! tag  key                                    value
//! 0    0                                      12 bytes: viewers u32 LE the sizes, so that
//!                                             · receipts u64 LE        queries never count
//! 1    1 · PKey(viewer)                       (empty)                 the allowlist
//! 2    2 · PKey(buyer)                        16 bytes: expires_at u64 LE (u64::MAX: forever)
//!                                             · receipt id u64 LE     a pass
//! 3    3 · id u64                             candid `Receipt`        a paid purchase
//! 4    4 · PKey(buyer) · id u64               (empty)                 a buyer's receipts
//! 5    5 · id u64                             candid `Purchase`       a purchase whose payment
//!                                                                     is not settled yet
//! 6    6 · PKey(buyer) · created_at u64       id u64 LE               idempotency: a buyer's
//!                                                                     purchase by its time
//! 7    7 · PKey(viewer)                       epoch u32 LE            playback tokens issued
//!                                                                     before `epoch` are void
//! 8    8 · purchase id u64 · leg u8           candid `Payout`         a share of a sale this
//!                                                                     canister still has to pay
//!                                                                     out (platform fee only)
//! ```
//!
//! Values are at most [`MAX_VALUE_BYTES`] (a receipt is ~250 bytes of candid). The policy
//! itself, the receipt counter and the token secret are small and live in the state cell
//! (memory 1, `State::access`).

use std::borrow::Cow;

use candid::{CandidType, Deserialize, Principal};
use canvid_stable_common::PKey;
use canvid_types::access::{Offer, PlatformFee, Receipt};
use canvid_types::icrc::Account;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory, StableBTreeMap, Storable};

pub const MAX_KEY_BYTES: u32 = 48;
pub const MAX_VALUE_BYTES: u32 = 2048;

const TAG_COUNTS: u8 = 0;
const TAG_VIEWER: u8 = 1;
const TAG_PASS: u8 = 2;
const TAG_RECEIPT: u8 = 3;
const TAG_BUYER_RECEIPT: u8 = 4;
const TAG_PURCHASE: u8 = 5;
const TAG_IDEMPOTENCY: u8 = 6;
const TAG_TOKEN_EPOCH: u8 = 7;
const TAG_PAYOUT: u8 = 8;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccessKey(Vec<u8>);

impl Storable for AccessKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
    fn into_bytes(self) -> Vec<u8> {
        self.0
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        AccessKey(bytes.into_owned())
    }
    const BOUND: Bound = Bound::Bounded {
        max_size: MAX_KEY_BYTES,
        is_fixed_size: false,
    };
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessValue(Vec<u8>);

impl Storable for AccessValue {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
    fn into_bytes(self) -> Vec<u8> {
        self.0
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        AccessValue(bytes.into_owned())
    }
    const BOUND: Bound = Bound::Bounded {
        max_size: MAX_VALUE_BYTES,
        is_fixed_size: false,
    };
}

fn key(tag: u8, parts: &[&[u8]]) -> AccessKey {
    let mut k = vec![tag];
    for p in parts {
        k.extend_from_slice(p);
    }
    AccessKey(k)
}

fn pkey(p: &Principal) -> [u8; 30] {
    PKey::new(p).0
}

/// A pass: until `expires_at` (`None`: forever), last extended by receipt `receipt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    pub expires_at: Option<u64>,
    pub receipt: u64,
}

/// A purchase between its start and the ledger's answer (tag 5). Everything needed to send the
/// *same* `icrc2_transfer_from` again, which the ledger then recognises as a duplicate.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct Purchase {
    pub id: u64,
    pub buyer: Principal,
    pub offer: Offer,
    pub ledger: Principal,
    pub amount: u128,
    /// The owner's account, or with a platform fee this canister's (escrow).
    pub paid_to: Account,
    /// The fee that applied when the purchase started: the payment then goes to this
    /// canister, which pays the shares out.
    pub platform_fee: Option<PlatformFee>,
    pub created_at_time: u64,
    pub started_at: u64,
    /// Transfers sent so far, counted in stable memory *before* each goes out: an answer lost to
    /// a trap or an upgrade still leaves the count, so a later answer is read knowing that an
    /// earlier send may have gone through.
    pub sends: u32,
    /// Ledger calls whose outcome was not learnt, and the last reason.
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// Which share of a sale a payout is.
pub const LEG_OWNER: u8 = 0;
pub const LEG_PLATFORM: u8 = 1;

/// A share of a sale held in this canister's account until it is paid out (tag 8). Like a
/// purchase, everything needed to send the identical `icrc1_transfer` again.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct Payout {
    pub purchase: u64,
    pub leg: u8,
    pub ledger: Principal,
    pub to: Account,
    /// The share before the ledger's fee (which is paid out of it).
    pub gross: u128,
    /// The ledger fee and `created_at_time` of the transfer, fixed (recorded) before it is
    /// first sent, so that a resend is the same transaction.
    pub fee: Option<u128>,
    pub created_at_time: Option<u64>,
    /// Transfers sent so far (counted before each send, like `Purchase::sends`).
    pub sends: u32,
    pub attempts: u32,
    pub last_error: Option<String>,
}

fn encode<T: CandidType>(v: &T) -> AccessValue {
    AccessValue(candid::encode_one(v).expect("candid encoding of an access record"))
}

fn decode<T: for<'de> Deserialize<'de> + CandidType>(v: &AccessValue) -> T {
    candid::decode_one(&v.0).expect("candid decoding of an access record this module wrote")
}

fn u64_le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn u64_be(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// Memory 6, opened lazily (see the module docs).
pub struct AccessStore<V: Memory> {
    /// Memory 6 until the map is created in it.
    memory: Option<V>,
    map: Option<StableBTreeMap<AccessKey, AccessValue, V>>,
}

impl<V: Memory> AccessStore<V> {
    /// Opens memory 6: an existing map, or none until the first write.
    pub fn open(memory: V) -> Self {
        if memory.size() > 0 {
            AccessStore {
                memory: None,
                map: Some(StableBTreeMap::init(memory)),
            }
        } else {
            AccessStore {
                memory: Some(memory),
                map: None,
            }
        }
    }

    /// Whether memory 6 was ever written (a public video's never is).
    pub fn in_use(&self) -> bool {
        self.map.is_some()
    }

    fn map_mut(&mut self) -> &mut StableBTreeMap<AccessKey, AccessValue, V> {
        let memory = &mut self.memory;
        self.map.get_or_insert_with(|| {
            StableBTreeMap::init(
                memory
                    .take()
                    .expect("memory 6 is kept until the map exists"),
            )
        })
    }

    fn get(&self, k: &AccessKey) -> Option<AccessValue> {
        self.map.as_ref()?.get(k)
    }

    fn insert(&mut self, k: AccessKey, v: AccessValue) {
        self.map_mut().insert(k, v);
    }

    fn remove(&mut self, k: &AccessKey) -> bool {
        match &mut self.map {
            Some(m) => m.remove(k).is_some(),
            None => false,
        }
    }

    /// Entries with keys in `[from, to)`, in key order, at most `limit`.
    fn scan(&self, from: AccessKey, to: AccessKey, limit: usize) -> Vec<(AccessKey, AccessValue)> {
        match &self.map {
            Some(m) => m
                .range(from..to)
                .take(limit)
                .map(|e| (e.key().clone(), e.value()))
                .collect(),
            None => vec![],
        }
    }

    /// (viewers, receipts), kept under tag 0 by every write that changes them.
    fn counts(&self) -> (u32, u64) {
        match self.get(&key(TAG_COUNTS, &[])) {
            Some(v) => (
                u32::from_le_bytes([v.0[0], v.0[1], v.0[2], v.0[3]]),
                u64_le(&v.0[4..12]),
            ),
            None => (0, 0),
        }
    }

    fn set_counts(&mut self, viewers: u32, receipts: u64) {
        let mut v = viewers.to_le_bytes().to_vec();
        v.extend_from_slice(&receipts.to_le_bytes());
        self.insert(key(TAG_COUNTS, &[]), AccessValue(v));
    }

    fn count(&self, tag: u8) -> u64 {
        match &self.map {
            Some(m) => m.range(key(tag, &[])..key(tag + 1, &[])).count() as u64,
            None => 0,
        }
    }

    // --- the allowlist ---------------------------------------------------------------------

    pub fn is_viewer(&self, p: &Principal) -> bool {
        self.get(&key(TAG_VIEWER, &[&pkey(p)])).is_some()
    }

    /// Adds viewers; returns how many were not there yet. (The count is written once.)
    pub fn add_viewers(&mut self, list: &[Principal]) -> u32 {
        let mut added = 0;
        for p in list {
            let k = key(TAG_VIEWER, &[&pkey(p)]);
            if self.map_mut().insert(k, AccessValue(vec![])).is_none() {
                added += 1;
            }
        }
        if added > 0 {
            let (viewers, receipts) = self.counts();
            self.set_counts(viewers + added, receipts);
        }
        added
    }

    /// Removes viewers; returns those that were there.
    pub fn remove_viewers(&mut self, list: &[Principal]) -> Vec<Principal> {
        let removed: Vec<Principal> = list
            .iter()
            .filter(|p| self.remove(&key(TAG_VIEWER, &[&pkey(p)])))
            .copied()
            .collect();
        if !removed.is_empty() {
            let (viewers, receipts) = self.counts();
            self.set_counts(viewers.saturating_sub(removed.len() as u32), receipts);
        }
        removed
    }

    pub fn viewer_count(&self) -> u32 {
        self.counts().0
    }

    /// Viewers after `start_after`, at most `limit`.
    pub fn viewers(&self, start_after: Option<&Principal>, limit: usize) -> Vec<Principal> {
        let from = match start_after {
            // The successor of the key: append a byte.
            Some(p) => key(TAG_VIEWER, &[&pkey(p), &[0]]),
            None => key(TAG_VIEWER, &[]),
        };
        self.scan(from, key(TAG_VIEWER + 1, &[]), limit)
            .into_iter()
            .map(|(k, _)| PKey::from_slice(&k.0[1..]).principal())
            .collect()
    }

    // --- passes ----------------------------------------------------------------------------

    pub fn pass(&self, buyer: &Principal) -> Option<Pass> {
        self.get(&key(TAG_PASS, &[&pkey(buyer)])).map(|v| {
            let e = u64_le(&v.0[0..8]);
            Pass {
                expires_at: (e != u64::MAX).then_some(e),
                receipt: u64_le(&v.0[8..16]),
            }
        })
    }

    pub fn set_pass(&mut self, buyer: &Principal, pass: Pass) {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&pass.expires_at.unwrap_or(u64::MAX).to_le_bytes());
        v.extend_from_slice(&pass.receipt.to_le_bytes());
        self.insert(key(TAG_PASS, &[&pkey(buyer)]), AccessValue(v));
    }

    // --- receipts --------------------------------------------------------------------------

    pub fn add_receipt(&mut self, r: &Receipt) {
        let id = r.id.to_be_bytes();
        if self
            .map_mut()
            .insert(key(TAG_RECEIPT, &[&id]), encode(r))
            .is_none()
        {
            let (viewers, receipts) = self.counts();
            self.set_counts(viewers, receipts + 1);
        }
        self.insert(
            key(TAG_BUYER_RECEIPT, &[&pkey(&r.buyer), &id]),
            AccessValue(vec![]),
        );
    }

    pub fn receipt(&self, id: u64) -> Option<Receipt> {
        self.get(&key(TAG_RECEIPT, &[&id.to_be_bytes()]))
            .map(|v| decode(&v))
    }

    pub fn receipt_count(&self) -> u64 {
        self.counts().1
    }

    /// Receipts with ids above `start_after`, at most `limit`; one buyer's if `buyer` is set.
    pub fn receipts(
        &self,
        buyer: Option<&Principal>,
        start_after: Option<u64>,
        limit: usize,
    ) -> Vec<Receipt> {
        let first = start_after.map_or(0, |id| id.saturating_add(1));
        if start_after == Some(u64::MAX) {
            return vec![];
        }
        match buyer {
            None => self
                .scan(
                    key(TAG_RECEIPT, &[&first.to_be_bytes()]),
                    key(TAG_RECEIPT + 1, &[]),
                    limit,
                )
                .into_iter()
                .map(|(_, v)| decode(&v))
                .collect(),
            Some(b) => {
                let pk = pkey(b);
                self.scan(
                    key(TAG_BUYER_RECEIPT, &[&pk, &first.to_be_bytes()]),
                    key(TAG_BUYER_RECEIPT, &[&pk, &[0xff; 9]]),
                    limit,
                )
                .into_iter()
                .filter_map(|(k, _)| self.receipt(u64_be(&k.0[31..39])))
                .collect()
            }
        }
    }

    // --- purchases in flight ---------------------------------------------------------------

    pub fn purchase(&self, id: u64) -> Option<Purchase> {
        self.get(&key(TAG_PURCHASE, &[&id.to_be_bytes()]))
            .map(|v| decode(&v))
    }

    pub fn put_purchase(&mut self, p: &Purchase) {
        self.insert(key(TAG_PURCHASE, &[&p.id.to_be_bytes()]), encode(p));
    }

    pub fn remove_purchase(&mut self, id: u64) {
        self.remove(&key(TAG_PURCHASE, &[&id.to_be_bytes()]));
    }

    /// Every unsettled purchase (bounded by `MAX_PENDING_PURCHASES`).
    pub fn purchases(&self) -> Vec<Purchase> {
        self.scan(
            key(TAG_PURCHASE, &[]),
            key(TAG_PURCHASE + 1, &[]),
            usize::MAX,
        )
        .into_iter()
        .map(|(_, v)| decode(&v))
        .collect()
    }

    // --- idempotency -----------------------------------------------------------------------

    /// The purchase a buyer started with `created_at_time`, if any.
    pub fn purchase_by_time(&self, buyer: &Principal, created_at_time: u64) -> Option<u64> {
        self.get(&key(
            TAG_IDEMPOTENCY,
            &[&pkey(buyer), &created_at_time.to_be_bytes()],
        ))
        .map(|v| u64_le(&v.0))
    }

    pub fn set_purchase_by_time(&mut self, buyer: &Principal, created_at_time: u64, id: u64) {
        self.insert(
            key(
                TAG_IDEMPOTENCY,
                &[&pkey(buyer), &created_at_time.to_be_bytes()],
            ),
            AccessValue(id.to_le_bytes().to_vec()),
        );
    }

    pub fn forget_purchase_by_time(&mut self, buyer: &Principal, created_at_time: u64) {
        self.remove(&key(
            TAG_IDEMPOTENCY,
            &[&pkey(buyer), &created_at_time.to_be_bytes()],
        ));
    }

    // --- payouts ---------------------------------------------------------------------------

    pub fn put_payout(&mut self, p: &Payout) {
        self.insert(
            key(TAG_PAYOUT, &[&p.purchase.to_be_bytes(), &[p.leg]]),
            encode(p),
        );
    }

    pub fn remove_payout(&mut self, purchase: u64, leg: u8) {
        self.remove(&key(TAG_PAYOUT, &[&purchase.to_be_bytes(), &[leg]]));
    }

    pub fn payout(&self, purchase: u64, leg: u8) -> Option<Payout> {
        self.get(&key(TAG_PAYOUT, &[&purchase.to_be_bytes(), &[leg]]))
            .map(|v| decode(&v))
    }

    /// The first `limit` payouts still to make, oldest sale first.
    pub fn payouts(&self, limit: usize) -> Vec<Payout> {
        self.scan(key(TAG_PAYOUT, &[]), key(TAG_PAYOUT + 1, &[]), limit)
            .into_iter()
            .map(|(_, v)| decode(&v))
            .collect()
    }

    pub fn payout_count(&self) -> u32 {
        self.count(TAG_PAYOUT) as u32
    }

    // --- playback token epochs -------------------------------------------------------------

    pub fn token_epoch(&self, viewer: &Principal) -> u32 {
        self.get(&key(TAG_TOKEN_EPOCH, &[&pkey(viewer)]))
            .map_or(0, |v| u32::from_le_bytes([v.0[0], v.0[1], v.0[2], v.0[3]]))
    }

    pub fn set_token_epoch(&mut self, viewer: &Principal, epoch: u32) {
        self.insert(
            key(TAG_TOKEN_EPOCH, &[&pkey(viewer)]),
            AccessValue(epoch.to_le_bytes().to_vec()),
        );
    }
}
