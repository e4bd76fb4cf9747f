//! The index canister's store: its whole state, in stable memory, as [`IndexStore`] (the model
//! operating on it included), and the canister's singleton of it ([`install`], [`with`],
//! [`with_mut`]).
//!
//! Everything that matters lives in stable memory (nothing on the heap survives or needs to
//! survive an upgrade), so `pre_upgrade` does nothing and `post_upgrade` just reopens the maps.
//!
//! # Layout (version 1)
//!
//! The stable memory is split by `ic-stable-structures`' `MemoryManager` (default buckets) into
//! virtual memories:
//!
//! | id | structure | key | value |
//! | -- | --------- | --- | ----- |
//! | 0  | `StableCell<Header>` | – | header, below |
//! | 1  | `StableBTreeMap` videos | `PKey` (video) | `Entry` (106 bytes) |
//! | 2  | `StableBTreeMap` by creator | `PairKey` (creator, video) | `()` |
//! | 3  | `StableBTreeMap` by owner | `PairKey` (owner, video) | `()` |
//! | 4  | `StableBTreeMap` creator counts | `PKey` (creator) | `u64` videos |
//! | 5  | `StableBTreeMap` owner counts | `PKey` (owner) | `u64` videos |
//! | 6  | `StableBTreeMap` applied history | `PKey` (video) | `u64` |
//!
//! Memory 6 holds, per video, the IC's `total_num_changes` (the canister-history counter that
//! `canister_info` returns) read when the index last applied an ownership report of that video;
//! a later report is applied only if the counter has moved past it (`logic::judge_report`). It
//! was added to layout 1 without moving anything: a memory written before it has no bucket for
//! id 6, which opens as an empty map, and a missing entry means 0 (no report applied yet), which
//! is exactly right for those videos (the integration test
//! `index_upgrade_recovers_from_a_forged_report` upgrades the previous module's real state). The
//! `u64` value is `ic-stable-structures`' fixed 8-byte little-endian encoding.
//!
//! `PKey` (30 bytes, fixed): bytes `0..29` the principal's bytes left-aligned and zero-padded,
//! byte 29 its length (0..=29). Ordering is byte-wise; pagination cursors use the same encoding,
//! so the order is consistent across pages.
//!
//! `PairKey` (60 bytes, fixed): `PKey(first) || PKey(video)`; all videos of one principal are a
//! contiguous key range. Both keys and the header's magic + version prefix are implemented in
//! `canvid-stable-common` (shared with the spawn canister, byte-identical).
//!
//! `Entry` (106 bytes, fixed): `PKey(creator)` [0..30] · `PKey(owner)` [30..60] ·
//! `PKey(registered owner)` [60..90] · `transfer_seq` u64 LE [90..98] · `registered_at` u64 LE
//! (ns) [98..106]. The registered owner is kept so a retried registration is recognised as
//! identical even after the video changed hands. `transfer_seq` is the one the last applied
//! report carried, kept for display only (it orders nothing: see memory 6).
//!
//! `Header` (variable, little endian): magic `b"CVIX"` [0..4] · layout version u32 [4..8] ·
//! owner changes applied u64 [8..16] · admin count u16 [16..18] · admins `PKey` × n ·
//! registrar count u16 · registrars `PKey` × m. At most `logic::MAX_PRINCIPALS` of each.
//!
//! The cell (`StableCell`) adds its own 8-byte header in front of these bytes.

use std::borrow::Cow;
use std::ops::Bound;

use candid::Principal;
use canvid_stable_common::paging::{page_limit, take_page};
use canvid_stable_common::{header_body, header_prefix, u64_at, PKey, PairKey, PKEY_LEN};
use canvid_types::index::{
    IndexStats, ListArgs, OwnerChange, Page, VideoEntry, VideoRegistration, DEFAULT_PAGE_LIMIT,
    MAX_PAGE_LIMIT,
};
use canvid_types::{Error, Result};
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::storable::Bound as StorableBound;
use ic_stable_structures::{DefaultMemoryImpl, Memory, StableBTreeMap, StableCell, Storable};

use crate::collection::store::CollectionMaps;
use crate::logic;
use canvid_icrc3::BlockLog;

// The canister's one store: opened by `lifecycle` in init/post_upgrade, borrowed by every
// endpoint.
canvid_stable_common::canister_store!(IndexStore<DefaultMemoryImpl>, "the index store");

pub const LAYOUT_VERSION: u32 = 1;
const MAGIC: &[u8; 4] = b"CVIX";

// ---------------------------------------------------------------------------------------------
// Values (the keys, `PKey` and `PairKey`, are `canvid_stable_common`'s)
// ---------------------------------------------------------------------------------------------

const ENTRY_LEN: usize = 3 * PKEY_LEN + 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub creator: Principal,
    pub owner: Principal,
    pub registered_owner: Principal,
    pub transfer_seq: u64,
    pub registered_at: u64,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(ENTRY_LEN);
        b.extend_from_slice(&PKey::new(&self.creator).0);
        b.extend_from_slice(&PKey::new(&self.owner).0);
        b.extend_from_slice(&PKey::new(&self.registered_owner).0);
        b.extend_from_slice(&self.transfer_seq.to_le_bytes());
        b.extend_from_slice(&self.registered_at.to_le_bytes());
        b
    }
    fn to_video_entry(&self, video: Principal) -> VideoEntry {
        VideoEntry {
            video,
            creator: self.creator,
            owner: self.owner,
            transfer_seq: self.transfer_seq,
            registered_at: self.registered_at,
        }
    }
}

impl Storable for Entry {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.encode())
    }
    fn into_bytes(self) -> Vec<u8> {
        self.encode()
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let b = &bytes;
        Entry {
            creator: PKey::from_slice(&b[0..]).principal(),
            owner: PKey::from_slice(&b[PKEY_LEN..]).principal(),
            registered_owner: PKey::from_slice(&b[2 * PKEY_LEN..]).principal(),
            transfer_seq: u64_at(b, 3 * PKEY_LEN),
            registered_at: u64_at(b, 3 * PKEY_LEN + 8),
        }
    }
    const BOUND: StorableBound = StorableBound::Bounded {
        max_size: ENTRY_LEN as u32,
        is_fixed_size: true,
    };
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub owner_changes_applied: u64,
    pub admins: Vec<Principal>,
    pub registrars: Vec<Principal>,
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let mut b = header_prefix(MAGIC, self.version);
        b.reserve(12 + PKEY_LEN * (self.admins.len() + self.registrars.len()));
        b.extend_from_slice(&self.owner_changes_applied.to_le_bytes());
        for list in [&self.admins, &self.registrars] {
            b.extend_from_slice(&(list.len() as u16).to_le_bytes());
            for p in list {
                b.extend_from_slice(&PKey::new(p).0);
            }
        }
        b
    }

    /// Decodes; `Err` names what is wrong (an unknown layout must stop an upgrade, not be
    /// silently reinterpreted).
    fn decode(b: &[u8]) -> std::result::Result<Header, String> {
        let version = LAYOUT_VERSION;
        let b = header_body(b, MAGIC, version, "index")?;
        if b.len() < 8 {
            return Err("index header: truncated".into());
        }
        let owner_changes_applied = u64_at(b, 0);
        let mut at = 8;
        let mut lists = Vec::new();
        for _ in 0..2 {
            if b.len() < at + 2 {
                return Err("index header: truncated".into());
            }
            let n = u16::from_le_bytes([b[at], b[at + 1]]) as usize;
            at += 2;
            if b.len() < at + n * PKEY_LEN {
                return Err("index header: truncated".into());
            }
            let list: Vec<Principal> = (0..n)
                .map(|i| PKey::from_slice(&b[at + i * PKEY_LEN..]).principal())
                .collect();
            at += n * PKEY_LEN;
            lists.push(list);
        }
        let registrars = lists.pop().unwrap_or_default();
        let admins = lists.pop().unwrap_or_default();
        Ok(Header {
            version,
            owner_changes_applied,
            admins,
            registrars,
        })
    }
}

impl Storable for Header {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.encode())
    }
    fn into_bytes(self) -> Vec<u8> {
        self.encode()
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // Trapping here aborts init/post_upgrade, which keeps the previous module installed.
        Header::decode(&bytes).unwrap_or_else(|e| panic!("{e}"))
    }
    const BOUND: StorableBound = StorableBound::Unbounded;
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// The whole stable state of the index canister (layout in the module docs). Generic over the
/// memory so that all of it runs natively on `VectorMemory` in tests.
pub struct IndexStore<M: Memory> {
    header: StableCell<Header, VirtualMemory<M>>,
    videos: StableBTreeMap<PKey, Entry, VirtualMemory<M>>,
    by_creator: StableBTreeMap<PairKey, (), VirtualMemory<M>>,
    by_owner: StableBTreeMap<PairKey, (), VirtualMemory<M>>,
    creator_counts: StableBTreeMap<PKey, u64, VirtualMemory<M>>,
    owner_counts: StableBTreeMap<PKey, u64, VirtualMemory<M>>,
    /// Memory 6: `total_num_changes` at the last applied ownership report, per video.
    applied_history: StableBTreeMap<PKey, u64, VirtualMemory<M>>,
    /// Memories 7–10, 13–15: the ICRC-7/37 collection (`crate::collection::store`).
    pub(crate) collection: CollectionMaps<VirtualMemory<M>>,
    /// Memories 11–12: the ICRC-3 block log.
    pub(crate) log: BlockLog<VirtualMemory<M>>,
    /// Memory 16: the backfill of mint blocks for videos registered before the collection
    /// (key 0: cursor `PKey` · started_at u64 LE, 38 bytes; absent = nothing to backfill).
    backfill: StableBTreeMap<u8, [u8; 38], VirtualMemory<M>>,
}

fn inc(map: &mut StableBTreeMap<PKey, u64, impl Memory>, k: PKey) {
    let n = map.get(&k).unwrap_or(0);
    map.insert(k, n + 1);
}

fn dec(map: &mut StableBTreeMap<PKey, u64, impl Memory>, k: PKey) {
    match map.get(&k).unwrap_or(0) {
        0 | 1 => {
            map.remove(&k);
        }
        n => {
            map.insert(k, n - 1);
        }
    }
}

impl<M: Memory + Clone> IndexStore<M> {
    /// Opens the state in `memory`, creating an empty layout (with `installer` as admin) if the
    /// memory is empty. Traps (through `Header::from_bytes`) on an unknown layout.
    pub fn open(memory: M, installer: Principal) -> Self {
        let mm = MemoryManager::init(memory);
        let m = |id| mm.get(MemoryId::new(id));
        let default = Header {
            version: LAYOUT_VERSION,
            owner_changes_applied: 0,
            admins: vec![installer],
            registrars: vec![],
        };
        IndexStore {
            header: StableCell::init(m(0), default),
            videos: StableBTreeMap::init(m(1)),
            by_creator: StableBTreeMap::init(m(2)),
            by_owner: StableBTreeMap::init(m(3)),
            creator_counts: StableBTreeMap::init(m(4)),
            owner_counts: StableBTreeMap::init(m(5)),
            applied_history: StableBTreeMap::init(m(6)),
            collection: CollectionMaps::init(&m),
            log: BlockLog::init(m(11), m(12)),
            backfill: StableBTreeMap::init(m(16)),
        }
    }
}

impl<M: Memory> IndexStore<M> {
    pub fn is_admin(&self, p: &Principal) -> bool {
        self.header.get().admins.contains(p)
    }
    pub fn is_registrar(&self, p: &Principal) -> bool {
        self.header.get().registrars.contains(p)
    }

    /// Replaces the admins ([`logic::validate_admins`]: never empty).
    pub fn set_admins(&mut self, admins: &[Principal]) -> Result<()> {
        let admins = logic::validate_admins(admins)?;
        let mut h = self.header.get().clone();
        h.admins = admins;
        self.header.set(h);
        Ok(())
    }

    pub fn set_registrars(&mut self, registrars: &[Principal]) -> Result<()> {
        let registrars = logic::validate_principals("registrars", registrars)?;
        let mut h = self.header.get().clone();
        h.registrars = registrars;
        self.header.set(h);
        Ok(())
    }

    /// Registers a video. Idempotent: the same registration again is Ok; a different one for the
    /// same video is a `Conflict`.
    pub fn register(&mut self, reg: &VideoRegistration, now: u64) -> Result<VideoEntry> {
        let vk = PKey::new(&reg.video);
        if let Some(e) = self.videos.get(&vk) {
            logic::check_reregistration(reg, &e.creator, &e.registered_owner)?;
            return Ok(e.to_video_entry(reg.video));
        }
        // The token's mint block first: if the log cannot grow, nothing is registered and the
        // spawn canister's outbox retries.
        self.mint_block(&reg.video, &reg.owner, &reg.creator, now)
            .map_err(|reason| Error::Conflict { reason })?;
        let entry = Entry {
            creator: reg.creator,
            owner: reg.owner,
            registered_owner: reg.owner,
            transfer_seq: 0,
            registered_at: now,
        };
        let ck = PKey::new(&reg.creator);
        let ok = PKey::new(&reg.owner);
        self.videos.insert(vk, entry.clone());
        self.by_creator.insert(PairKey::from_keys(ck, vk), ());
        self.by_owner.insert(PairKey::from_keys(ok, vk), ());
        inc(&mut self.creator_counts, ck);
        inc(&mut self.owner_counts, ok);
        Ok(entry.to_video_entry(reg.video))
    }

    /// Whether `video` may report an ownership change at all (it is registered): checked before
    /// the index asks the IC about it, so unregistered canisters cannot make the index call.
    pub fn check_reporter(&self, video: &Principal) -> Result<()> {
        if self.videos.contains_key(&PKey::new(video)) {
            Ok(())
        } else {
            Err(Error::NotFound {
                what: format!("registered video {video}"),
            })
        }
    }

    /// The IC's history counter read when the last report of `video` was applied (0: none).
    pub fn applied_history(&self, video: &Principal) -> u64 {
        self.applied_history.get(&PKey::new(video)).unwrap_or(0)
    }

    /// Applies an ownership change reported by `video` itself, checked against `info`, what the
    /// IC said about the video (read by the caller; [`logic::judge_report`] decides). Returns
    /// whether it changed anything: a report whose owner is not a controller is a `Conflict`
    /// and changes nothing; one the IC's history counter shows is not newer than the last
    /// applied is acknowledged without effect.
    pub fn report_owner_change(
        &mut self,
        video: &Principal,
        change: &OwnerChange,
        info: &logic::VerifiedInfo,
        now: u64,
    ) -> Result<bool> {
        let vk = PKey::new(video);
        if !self.videos.contains_key(&vk) {
            return Err(Error::NotFound {
                what: format!("registered video {video}"),
            });
        }
        if !logic::judge_report(video, self.applied_history(video), info, change)? {
            return Ok(false);
        }
        self.apply_owner_change(video, change, info.total_num_changes, now)
            .map_err(|reason| Error::Conflict { reason })?;
        Ok(true)
    }

    /// Records `change` as applied: the owner maps, the history counter, the stats.
    pub(crate) fn set_owner(
        &mut self,
        video: &Principal,
        change: &OwnerChange,
        total_num_changes: u64,
    ) {
        let vk = PKey::new(video);
        let Some(mut e) = self.videos.get(&vk) else {
            return;
        };
        let old = PKey::new(&e.owner);
        let new = PKey::new(&change.new_owner);
        if old != new {
            self.by_owner.remove(&PairKey::from_keys(old, vk));
            dec(&mut self.owner_counts, old);
            self.by_owner.insert(PairKey::from_keys(new, vk), ());
            inc(&mut self.owner_counts, new);
        }
        e.owner = change.new_owner;
        e.transfer_seq = change.transfer_seq;
        self.videos.insert(vk, e);
        self.applied_history.insert(vk, total_num_changes);
        let mut h = self.header.get().clone();
        h.owner_changes_applied += 1;
        self.header.set(h);
    }

    pub fn registrars(&self) -> Vec<Principal> {
        self.header.get().registrars.clone()
    }

    /// Registered videos with a key after `start` (all with `None`), mapped by `f` and skipping
    /// those it maps to `None`, at most `take`.
    pub(crate) fn video_keys_after<T>(
        &self,
        start: Option<PKey>,
        take: usize,
        f: impl Fn(&PKey) -> Option<T>,
    ) -> Vec<T> {
        let lower = match start {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        self.videos
            .keys_range((lower, Bound::Unbounded))
            .filter_map(|k| f(&k))
            .take(take)
            .collect()
    }

    /// `owner`'s videos after `after` in key order, at most `take`.
    pub(crate) fn owner_videos_after(
        &self,
        owner: &Principal,
        after: Option<&Principal>,
        take: usize,
    ) -> Vec<Principal> {
        let pk = PKey::new(owner);
        let start = match after {
            Some(c) => Bound::Excluded(PairKey::from_keys(pk, PKey::new(c))),
            None => Bound::Included(PairKey::from_keys(pk, PKey::MIN)),
        };
        self.by_owner
            .keys_range((start, Bound::Unbounded))
            .take_while(|key| key.first() == pk)
            .map(|key| key.second().principal())
            .take(take)
            .collect()
    }

    /// Up to `max` videos after `cursor`: key, video, owner, creator, registered_at.
    pub(crate) fn videos_after_key(
        &self,
        cursor: PKey,
        max: usize,
    ) -> Vec<(PKey, Principal, Principal, Principal, u64)> {
        self.videos
            .range((Bound::Excluded(cursor), Bound::Unbounded))
            .take(max)
            .map(|e| {
                let k = *e.key();
                let v = e.value();
                (k, k.principal(), v.owner, v.creator, v.registered_at)
            })
            .collect()
    }

    /// The backfill of mint blocks in progress: cursor and start time.
    pub(crate) fn backfill_state(&self) -> Option<(PKey, u64)> {
        self.backfill.get(&0).map(|b| {
            (
                PKey::from_slice(&b[..PKEY_LEN]),
                u64::from_le_bytes(b[PKEY_LEN..].try_into().unwrap_or_default()),
            )
        })
    }

    pub(crate) fn set_backfill_state(&mut self, state: Option<(PKey, u64)>) {
        match state {
            None => {
                self.backfill.remove(&0);
            }
            Some((k, t)) => {
                let mut b = [0u8; 38];
                b[..PKEY_LEN].copy_from_slice(&k.0);
                b[PKEY_LEN..].copy_from_slice(&t.to_le_bytes());
                self.backfill.insert(0, b);
            }
        }
    }

    /// After an upgrade: a log that is empty while videos are registered means they were
    /// registered before the collection existed; their mints are backfilled from `now` on.
    pub fn start_backfill_if_needed(&mut self, now: u64) -> bool {
        if self.log.is_empty() && !self.videos.is_empty() && self.backfill_state().is_none() {
            self.set_backfill_state(Some((PKey::MIN, now)));
        }
        self.backfill_state().is_some()
    }

    pub fn get(&self, video: &Principal) -> Option<VideoEntry> {
        self.videos
            .get(&PKey::new(video))
            .map(|e| e.to_video_entry(*video))
    }

    pub fn by_creator(&self, args: &ListArgs) -> Page {
        self.list(&self.by_creator, args)
    }
    pub fn by_owner(&self, args: &ListArgs) -> Page {
        self.list(&self.by_owner, args)
    }

    /// One page of `args.principal`'s videos in `set` (a contiguous `PairKey` range), strictly
    /// after `args.cursor`, at most `limit` (default `DEFAULT_PAGE_LIMIT`, clamped to
    /// `1..=MAX_PAGE_LIMIT`); `next_cursor` is set only when more follow.
    fn list(&self, set: &StableBTreeMap<PairKey, (), VirtualMemory<M>>, args: &ListArgs) -> Page {
        let limit = page_limit(args.limit, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT);
        let pk = PKey::new(&args.principal);
        let start = match &args.cursor {
            Some(c) => Bound::Excluded(PairKey::from_keys(pk, PKey::new(c))),
            None => Bound::Included(PairKey::from_keys(pk, PKey::MIN)),
        };
        let entries = set
            .keys_range((start, Bound::Unbounded))
            .take_while(|key| key.first() == pk)
            // The sets and the video map are written together, so the entry exists; skipping a
            // missing one (instead of trapping) keeps the listing available if it ever did not.
            .filter_map(|key| {
                let vk = key.second();
                self.videos
                    .get(&vk)
                    .map(|e| e.to_video_entry(vk.principal()))
            });
        let (videos, next_cursor) = take_page(entries, limit, |v| v.video);
        Page {
            videos,
            next_cursor,
        }
    }

    pub fn count_by_creator(&self, p: &Principal) -> u64 {
        self.creator_counts.get(&PKey::new(p)).unwrap_or(0)
    }
    pub fn count_by_owner(&self, p: &Principal) -> u64 {
        self.owner_counts.get(&PKey::new(p)).unwrap_or(0)
    }

    pub fn stats(&self) -> IndexStats {
        let h = self.header.get();
        IndexStats {
            videos: self.videos.len(),
            creators: self.creator_counts.len(),
            owners: self.owner_counts.len(),
            owner_changes_applied: h.owner_changes_applied,
            admins: h.admins.clone(),
            registrars: h.registrars.clone(),
            layout_version: h.version,
        }
    }
}

/// Property tests (issue 15) of the index's stable records: `CANVID_PROPTEST_CASES` cases.
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

    fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
        p.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// Any 108 bytes are an entry (principal lengths clamped); entries round-trip.
        #[test]
        fn entry_decodes_any_bytes_and_round_trips(
            raw in prop::collection::vec(any::<u8>(), ENTRY_LEN),
            e in (principal(), principal(), principal(), any::<u64>(), any::<u64>()),
        ) {
            let _ = Entry::from_bytes(Cow::Borrowed(&raw[..]));
            let e = Entry {
                creator: e.0,
                owner: e.1,
                registered_owner: e.2,
                transfer_seq: e.3,
                registered_at: e.4,
            };
            prop_assert_eq!(e.to_bytes().len(), ENTRY_LEN);
            prop_assert_eq!(Entry::from_bytes(Cow::Owned(e.clone().into_bytes())), e);
        }

        /// Valid headers round-trip; other bytes are refused by `decode` with a message naming
        /// the problem, and `from_bytes` traps with exactly that message.
        #[test]
        fn header_round_trips_or_is_refused(
            admins in prop::collection::vec(principal(), 0..4),
            registrars in prop::collection::vec(principal(), 0..4),
            applied in any::<u64>(),
            edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            cut in any::<usize>(),
        ) {
            let h = Header {
                version: LAYOUT_VERSION,
                owner_changes_applied: applied,
                admins,
                registrars,
            };
            let bytes = h.encode();
            prop_assert_eq!(Header::decode(&bytes), Ok(h.clone()));
            prop_assert_eq!(Header::from_bytes(Cow::Borrowed(&bytes[..])), h);
            let mut bad = bytes.clone();
            for (at, b) in &edits {
                let at = at % bad.len();
                bad[at] = *b;
            }
            bad.truncate(cut % (bad.len() + 1));
            match Header::decode(&bad) {
                Ok(d) => {
                    // A decodable header re-encodes to its own prefix (trailing bytes ignored).
                    let again = d.encode();
                    prop_assert!(bad.starts_with(&again[..8]));
                }
                Err(e) => {
                    prop_assert!(e.starts_with("index header: "), "{}", e);
                    let trap = std::panic::catch_unwind(|| Header::from_bytes(Cow::Owned(bad.clone())))
                        .expect_err("from_bytes traps on what decode refuses");
                    prop_assert_eq!(panic_message(trap), e);
                }
            }
        }
    }
}
