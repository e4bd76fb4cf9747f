//! The collection's stable state, next to the index's maps in the same `MemoryManager`
//! (memory ids continue the index's layout, see `crate::store`):
//!
//! | id | structure | key | value |
//! | -- | --------- | --- | ----- |
//! | 7  | `StableBTreeMap` token approvals | token id u64 BE (8) · spender `AccountKey` (62) | `Candid<ApprovalInfo>` |
//! | 8  | `StableBTreeMap` collection approvals | owner `PKey` (30) · spender `AccountKey` (62) | `Candid<ApprovalInfo>` |
//! | 9  | `StableBTreeMap` deduplication | request key (32, [`super::logic::dedup_key`]) | block u64 LE · created_at_time u64 LE (16) |
//! | 10 | `StableBTreeMap` deduplication by time | created_at_time u64 BE (8) · request key (32) | `()` |
//! | 11 | ICRC-3 block log, index | (`canvid_icrc3::BlockLog`) | |
//! | 12 | ICRC-3 block log, data | (`canvid_icrc3::BlockLog`) | |
//! | 13 | `StableBTreeMap` transfers in flight | video `PKey` (30) | `Candid<PendingTransfer>` |
//! | 14 | `StableBTreeMap` trusted modules | module SHA-256 (32) | `()` |
//! | 15 | `StableBTreeMap` approvals per spender principal | spender `PKey` (30) | u64 (8, LE) |
//! | 17 | `StableBTreeMap` token summaries | video `PKey` (30) | `Candid<TokenSummary>` |
//!
//! (Memory 16 is the index's backfill cursor, `crate::store`.)
//!
//! `AccountKey` (62 bytes): `PKey(owner)` (30) · subaccount (32; zeros for the default one),
//! so the default subaccount has one spelling. Fixed-size big-endian keys keep every map in
//! token / principal order, which is the paging order of the ICRC queries.
//!
//! Memories 7–15 were added to layout 1 without moving anything: a memory written before them
//! opens them empty, and an empty log means "no block yet" (the mints of videos registered
//! before the collection existed are written by `backfill_mints`).

use candid::{CandidType, Deserialize, Principal};
use canvid_stable_common::{Candid, PKey, PKEY_LEN};
use canvid_types::icrc::{Account, ApprovalInfo};
use ic_stable_structures::{Memory, StableBTreeMap};
use serde_bytes::ByteBuf;

pub type AccountKey = [u8; 62];
pub type TokenApprovalKey = [u8; 70];
pub type CollectionApprovalKey = [u8; 92];

pub fn account_key(a: &Account) -> AccountKey {
    let mut k = [0u8; 62];
    k[..PKEY_LEN].copy_from_slice(&PKey::new(&a.owner).0);
    if let Some(s) = a.subaccount_bytes() {
        k[PKEY_LEN..].copy_from_slice(&s);
    }
    k
}

pub fn account_of_key(k: &[u8]) -> Account {
    let owner = PKey::from_slice(&k[..PKEY_LEN]).principal();
    let sub = &k[PKEY_LEN..PKEY_LEN + 32];
    Account {
        owner,
        subaccount: if sub.iter().all(|b| *b == 0) {
            None
        } else {
            Some(ByteBuf::from(sub.to_vec()))
        },
    }
}

pub fn token_approval_key(tid: u64, spender: &Account) -> TokenApprovalKey {
    let mut k = [0u8; 70];
    k[..8].copy_from_slice(&tid.to_be_bytes());
    k[8..].copy_from_slice(&account_key(spender));
    k
}

pub fn collection_approval_key(owner: &Principal, spender: &Account) -> CollectionApprovalKey {
    let mut k = [0u8; 92];
    k[..PKEY_LEN].copy_from_slice(&PKey::new(owner).0);
    k[PKEY_LEN..].copy_from_slice(&account_key(spender));
    k
}

/// A transfer the collection started and has not settled (memory 13): the token is locked
/// meanwhile (other transfers and approvals of it answer `GenericError` BUSY). It says which
/// block to write when the IC shows the recipient in control, whoever sees it first: the
/// transfer's own call, or the video's ownership report that the transfer causes.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct PendingTransfer {
    pub tid: u64,
    pub from: Principal,
    pub to: Principal,
    /// The approved spender, for `icrc37_transfer_from` (a `37xfer` block); `None` for the
    /// holder's own `icrc7_transfer` (`7xfer`).
    pub spender: Option<Account>,
    pub memo: Option<ByteBuf>,
    pub created_at_time: Option<u64>,
    /// The deduplication key, when the request had a `created_at_time`.
    pub dedup: Option<ByteBuf>,
    pub started_at: u64,
    /// Set when the transfer was applied (its block index), by whichever path saw it first.
    pub block: Option<u64>,
}

/// What the collection shows of a video in its token metadata, read from the video's own
/// `metadata` (refreshed by `refresh_token_metadata` and after every transfer). Bounded like the
/// video's own fields; a video whose answer exceeds them is not summarised (no truncation).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct TokenSummary {
    pub title: String,
    pub description: String,
    pub mime_type: String,
    pub size: u64,
    pub duration_ms: Option<u64>,
    pub digest: Option<ByteBuf>,
    /// The video's content is final (`Ready`).
    pub ready: bool,
    pub refreshed_at: u64,
}

pub(crate) struct CollectionMaps<M: Memory> {
    pub token_approvals: StableBTreeMap<TokenApprovalKey, Candid<ApprovalInfo>, M>,
    pub collection_approvals: StableBTreeMap<CollectionApprovalKey, Candid<ApprovalInfo>, M>,
    pub dedup: StableBTreeMap<[u8; 32], [u8; 16], M>,
    pub dedup_by_time: StableBTreeMap<[u8; 40], (), M>,
    pub in_flight: StableBTreeMap<PKey, Candid<PendingTransfer>, M>,
    pub trusted_modules: StableBTreeMap<[u8; 32], (), M>,
    pub spender_counts: StableBTreeMap<PKey, u64, M>,
    pub summaries: StableBTreeMap<PKey, Candid<TokenSummary>, M>,
}

impl<M: Memory> CollectionMaps<M> {
    pub fn init(m: impl Fn(u8) -> M) -> Self {
        CollectionMaps {
            token_approvals: StableBTreeMap::init(m(7)),
            collection_approvals: StableBTreeMap::init(m(8)),
            dedup: StableBTreeMap::init(m(9)),
            dedup_by_time: StableBTreeMap::init(m(10)),
            in_flight: StableBTreeMap::init(m(13)),
            trusted_modules: StableBTreeMap::init(m(14)),
            spender_counts: StableBTreeMap::init(m(15)),
            summaries: StableBTreeMap::init(m(17)),
        }
    }

    pub fn spender_added(&mut self, spender: &Principal) {
        let k = PKey::new(spender);
        let n = self.spender_counts.get(&k).unwrap_or(0);
        self.spender_counts.insert(k, n + 1);
    }

    pub fn spender_removed(&mut self, spender: &Principal) {
        let k = PKey::new(spender);
        match self.spender_counts.get(&k).unwrap_or(0) {
            0 | 1 => {
                self.spender_counts.remove(&k);
            }
            n => {
                self.spender_counts.insert(k, n - 1);
            }
        }
    }

    /// Is `spender` named by any approval (for the ingress filter)?
    pub fn is_spender(&self, spender: &Principal) -> bool {
        self.spender_counts.contains_key(&PKey::new(spender))
    }

    /// The token approvals of `tid`, in spender order.
    pub fn token_approvals_of(&self, tid: u64) -> Vec<(TokenApprovalKey, ApprovalInfo)> {
        let lo = token_approval_key_bound(tid, 0);
        let hi = token_approval_key_bound(tid, 0xff);
        self.token_approvals
            .range(lo..=hi)
            .map(|e| (*e.key(), e.value().0))
            .collect()
    }

    /// Drops every token approval of `tid` (a transfer revokes them).
    pub fn clear_token_approvals(&mut self, tid: u64) {
        for (k, a) in self.token_approvals_of(tid) {
            self.token_approvals.remove(&k);
            self.spender_removed(&a.spender.owner);
        }
    }

    /// The collection approvals `owner` gave, in spender order.
    pub fn collection_approvals_of(
        &self,
        owner: &Principal,
    ) -> Vec<(CollectionApprovalKey, ApprovalInfo)> {
        let mut lo = [0u8; 92];
        lo[..PKEY_LEN].copy_from_slice(&PKey::new(owner).0);
        let mut hi = lo;
        hi[PKEY_LEN..].fill(0xff);
        self.collection_approvals
            .range(lo..=hi)
            .map(|e| (*e.key(), e.value().0))
            .collect()
    }

    /// The block of an earlier identical request still within the window.
    pub fn duplicate_of(&self, key: &[u8; 32]) -> Option<u64> {
        self.dedup
            .get(key)
            .map(|v| u64::from_le_bytes(v[..8].try_into().unwrap_or_default()))
    }

    pub fn remember(&mut self, key: [u8; 32], block: u64, created_at_time: u64) {
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&block.to_le_bytes());
        v[8..].copy_from_slice(&created_at_time.to_le_bytes());
        self.dedup.insert(key, v);
        let mut t = [0u8; 40];
        t[..8].copy_from_slice(&created_at_time.to_be_bytes());
        t[8..].copy_from_slice(&key);
        self.dedup_by_time.insert(t, ());
    }

    /// Forgets up to `max` deduplication entries whose window has passed.
    pub fn prune_dedup(&mut self, now: u64, max: usize) {
        let old: Vec<[u8; 40]> = self
            .dedup_by_time
            .keys()
            .take(max)
            .take_while(|k| {
                let t = u64::from_be_bytes(k[..8].try_into().unwrap_or_default());
                super::logic::dedup_expired(now, t)
            })
            .collect();
        for k in old {
            self.dedup_by_time.remove(&k);
            let key: [u8; 32] = k[8..].try_into().unwrap_or_default();
            self.dedup.remove(&key);
        }
    }
}

fn token_approval_key_bound(tid: u64, fill: u8) -> TokenApprovalKey {
    let mut k = [fill; 70];
    k[..8].copy_from_slice(&tid.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_keys_round_trip_and_have_one_default_spelling() {
        let p = Principal::from_slice(&[3; 29]);
        let a = Account::of(p);
        let zeros = Account {
            owner: p,
            subaccount: Some(ByteBuf::from(vec![0; 32])),
        };
        assert_eq!(account_key(&a), account_key(&zeros));
        assert_eq!(account_of_key(&account_key(&zeros)), a);
        let s = Account {
            owner: p,
            subaccount: Some(ByteBuf::from(vec![5; 32])),
        };
        assert_eq!(account_of_key(&account_key(&s)), s);
        let k = token_approval_key(9, &s);
        assert_eq!(&k[..8], &9u64.to_be_bytes());
        assert!(token_approval_key_bound(9, 0) <= k && k <= token_approval_key_bound(9, 0xff));
    }
}
