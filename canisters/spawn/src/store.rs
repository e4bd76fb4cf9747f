//! The spawn canister's store: its whole state, in stable memory, as [`SpawnStore`], and the
//! canister's singleton of it ([`install`], [`with`], [`with_mut`]).
//!
//! Nothing that matters is kept on the heap: every creation step is recorded here before the
//! await that follows it, so an upgrade, a trap in a later callback, or a concurrent call cannot
//! lose a canister or a caller's cycles.
//!
//! # Layout (version 1)
//!
//! `MemoryManager` (default buckets) virtual memories:
//!
//! | id | structure | key | value |
//! | -- | --------- | --- | ----- |
//! | 0  | `StableCell<Header>` | – | header, below |
//! | 1  | raw region | – | bytes `[0, wasm.size)`: the current video module, exactly as set |
//! | 2  | `StableBTreeMap` videos | `PKey` (canister) | candid `SpawnedVideo` |
//! | 3  | `StableBTreeMap` in flight | `u64` op id (BE) | candid `InFlight` |
//! | 4  | `StableBTreeMap` quotas | `PKey` (caller) | candid `QuotaArgs` |
//! | 5  | `StableBTreeMap` accounts | `PKey` (caller) | candid `logic::Account` |
//! | 6  | `StableBTreeMap` spares | `PairKey` (payer, canister) | `()` |
//! | 7  | `StableBTreeMap` outbox | `PKey` (canister) | `()` |
//! | 8  | `StableBTreeMap` outbox retries | `PKey` (canister) | `logic::Retry` (12 bytes) |
//! | 9  | `StableBTreeMap` restarts | `PKey` (canister) | `logic::Retry` (12 bytes) |
//!
//! `PKey` (30 bytes, fixed): the principal's bytes left-aligned, zero-padded to 29, then its
//! length in byte 29. `PairKey` (60 bytes): `PKey(payer) || PKey(canister)`. Both keys and the
//! header's magic + version prefix are implemented in `canvid-stable-common` (shared with the
//! index canister, byte-identical).
//!
//! `Header` bytes: magic `b"CVSP"` [0..4] · layout version u32 LE [4..8] · candid encoding of
//! `Config` [8..]. Candid keeps the config extensible (new `opt` fields decode from old bytes).
//! The `StableCell` adds its own 8-byte header in front.
//!
//! `Retry` (12 bytes, fixed): failed attempts in a row u32 LE [0..4] · next automatic retry, IC
//! time in ns, u64 LE [4..12]. Only outbox entries that failed have one; it is removed when the
//! entry succeeds or leaves the outbox. Memory 8 was added to layout 1 without moving anything:
//! a memory written before it has no bucket for id 8, which opens as an empty map, meaning "no
//! failed attempt yet, due now", the right state for those entries
//! (`tests/tests/upgrade.rs::spawn_upgrade_corrects_the_first_default_cycles_config` upgrades
//! a released module's real state; its header also predates `Config::app_canisters`).
//!
//! Memory 9 lists the videos `upgrade_videos` stopped and has not started again yet (the start
//! failed, or a callback trapped after the stop), with the retry state of their restart; the
//! outbox timer and `retry_pending` start them. Added like memory 8: an older memory opens it
//! empty.
//!
//! Candid values in the maps are small records (< 1 KiB), stored as
//! `canvid_stable_common::Candid<T>` (the bytes of `Encode!(&value)`); a value that does not
//! decode means the layout is not ours, and the canister traps rather than guessing.

use canvid_types::access::PlatformFee;
use std::borrow::Cow;
use std::collections::BTreeSet;

use std::ops::Bound as RangeBound;

use candid::{CandidType, Decode, Encode, Principal};
use canvid_stable_common::paging::{page_limit, take_page};
use canvid_stable_common::{header_body, header_prefix, Candid};
pub use canvid_stable_common::{PKey, PairKey};
use canvid_types::spawn::{
    CyclesConfig, InFlight, QuotaArgs, SpawnListArgs, SpawnPage, SpawnStatus, SpawnedVideo,
    DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT,
};
use canvid_types::Result;
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{DefaultMemoryImpl, Memory, StableBTreeMap, StableCell, Storable};
use serde::Deserialize;

use crate::logic::{self, default_cycles_config, Account, Retry};

// The canister's one store: opened by `lifecycle` in init/post_upgrade, borrowed by every
// endpoint, the creation flow and the timer.
canvid_stable_common::canister_store!(SpawnStore<DefaultMemoryImpl>, "the spawn store");

pub const LAYOUT_VERSION: u32 = 1;
const MAGIC: &[u8; 4] = b"CVSP";
const WASM_PAGE: u64 = 65536;

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct WasmMeta {
    pub sha256: Vec<u8>,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct Config {
    pub admins: Vec<Principal>,
    pub index: Option<Principal>,
    pub default_quota: Option<QuotaArgs>,
    pub cycles: CyclesConfig,
    pub wasm: Option<WasmMeta>,
    pub next_op: u64,
    pub videos_created: u64,
    /// App canisters allowed to name a video's creator (security review M5). `opt`: a header
    /// written before the field existed decodes to `None` (= none).
    pub app_canisters: Option<Vec<Principal>>,
    /// Given to every video installed from then on (`VideoInit::platform_fee`). `opt`: older
    /// headers decode to `None`.
    pub platform_fee: Option<PlatformFee>,
}

impl Config {
    pub fn new(admin: Principal) -> Self {
        Config {
            admins: vec![admin],
            index: None,
            default_quota: None,
            cycles: default_cycles_config(),
            wasm: None,
            next_op: 0,
            videos_created: 0,
            app_canisters: None,
            platform_fee: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header(pub Config);

impl Storable for Header {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.clone().into_bytes())
    }
    fn into_bytes(self) -> Vec<u8> {
        let mut b = header_prefix(MAGIC, LAYOUT_VERSION);
        b.extend(Encode!(&self.0).expect("candid encoding of Config cannot fail"));
        b
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // Trapping aborts init/post_upgrade and keeps the previous module: an unknown layout
        // must never be reinterpreted.
        let body =
            header_body(&bytes, MAGIC, LAYOUT_VERSION, "spawn").unwrap_or_else(|e| panic!("{e}"));
        Header(Decode!(body, Config).unwrap_or_else(|e| panic!("spawn header: {e}")))
    }
    const BOUND: Bound = Bound::Unbounded;
}

const RETRY_LEN: usize = 12;

impl Storable for Retry {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }
    fn into_bytes(self) -> Vec<u8> {
        let mut b = Vec::with_capacity(RETRY_LEN);
        b.extend_from_slice(&self.attempts.to_le_bytes());
        b.extend_from_slice(&self.next_at.to_le_bytes());
        b
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let b = &bytes;
        Retry {
            attempts: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            next_at: canvid_stable_common::u64_at(b, 4),
        }
    }
    const BOUND: Bound = Bound::Bounded {
        max_size: RETRY_LEN as u32,
        is_fixed_size: true,
    };
}

/// The whole stable state of the spawn canister (layout in the module docs). Generic over the
/// memory so that all of it, recovery and paging included, is tested natively on `VectorMemory`.
pub struct SpawnStore<M: Memory> {
    header: StableCell<Header, VirtualMemory<M>>,
    wasm: VirtualMemory<M>,
    pub videos: StableBTreeMap<PKey, Candid<SpawnedVideo>, VirtualMemory<M>>,
    pub in_flight: StableBTreeMap<u64, Candid<InFlight>, VirtualMemory<M>>,
    pub quotas: StableBTreeMap<PKey, Candid<QuotaArgs>, VirtualMemory<M>>,
    pub accounts: StableBTreeMap<PKey, Candid<Account>, VirtualMemory<M>>,
    pub spares: StableBTreeMap<PairKey, (), VirtualMemory<M>>,
    pub outbox: StableBTreeMap<PKey, (), VirtualMemory<M>>,
    /// Memory 8: retry state of outbox entries that failed (see [`SpawnStore::record_attempt`]).
    pub retries: StableBTreeMap<PKey, Retry, VirtualMemory<M>>,
    /// Memory 9: videos stopped by `upgrade_videos` and not started again yet.
    pub restarts: StableBTreeMap<PKey, Retry, VirtualMemory<M>>,
}

impl<M: Memory + Clone> SpawnStore<M> {
    /// Opens the state; an empty memory gets a fresh layout with `installer` as the admin.
    pub fn open(memory: M, installer: Principal) -> Self {
        let mm = MemoryManager::init(memory);
        let m = |id| mm.get(MemoryId::new(id));
        SpawnStore {
            header: StableCell::init(m(0), Header(Config::new(installer))),
            wasm: m(1),
            videos: StableBTreeMap::init(m(2)),
            in_flight: StableBTreeMap::init(m(3)),
            quotas: StableBTreeMap::init(m(4)),
            accounts: StableBTreeMap::init(m(5)),
            spares: StableBTreeMap::init(m(6)),
            outbox: StableBTreeMap::init(m(7)),
            retries: StableBTreeMap::init(m(8)),
            restarts: StableBTreeMap::init(m(9)),
        }
    }
}

impl<M: Memory> SpawnStore<M> {
    pub fn config(&self) -> &Config {
        &self.header.get().0
    }

    pub fn is_admin(&self, p: &Principal) -> bool {
        self.config().admins.contains(p)
    }

    /// Whether `p` is an allow-listed app canister (it may name a video's creator).
    pub fn is_app_canister(&self, p: &Principal) -> bool {
        self.config()
            .app_canisters
            .as_ref()
            .is_some_and(|l| l.contains(p))
    }

    pub fn update_config(&mut self, f: impl FnOnce(&mut Config)) {
        let mut c = self.config().clone();
        f(&mut c);
        self.header.set(Header(c));
    }

    /// Allocates an operation id (persisted, so ids are never reused across upgrades).
    pub fn next_op(&mut self) -> u64 {
        let mut id = 0;
        self.update_config(|c| {
            id = c.next_op;
            c.next_op += 1;
        });
        id
    }

    /// Stores a new video module (already checked) and its metadata.
    pub fn set_wasm(&mut self, wasm: &[u8], sha256: Vec<u8>) {
        let needed_pages = (wasm.len() as u64).div_ceil(WASM_PAGE);
        let have = self.wasm.size();
        if needed_pages > have {
            // Growing a virtual memory only fails when stable memory is exhausted; then nothing
            // is written and the header still names the old module.
            if self.wasm.grow(needed_pages - have) < 0 {
                panic!("out of stable memory storing the video wasm");
            }
        }
        self.wasm.write(0, wasm);
        self.update_config(|c| {
            c.wasm = Some(WasmMeta {
                sha256,
                size: wasm.len() as u64,
            })
        });
    }

    /// The current video module and its SHA-256, copied out of stable memory.
    pub fn wasm(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let meta = self.config().wasm.clone()?;
        let mut buf = vec![0u8; meta.size as usize];
        self.wasm.read(0, &mut buf);
        Some((buf, meta.sha256))
    }

    pub fn account(&self, p: &Principal) -> Account {
        self.accounts
            .get(&PKey::new(p))
            .map(|c| c.0)
            .unwrap_or_default()
    }

    pub fn set_account(&mut self, p: &Principal, a: Account) {
        if a == Account::default() {
            self.accounts.remove(&PKey::new(p));
        } else {
            self.accounts.insert(PKey::new(p), Candid(a));
        }
    }

    pub fn quota(&self, p: &Principal) -> (Option<QuotaArgs>, bool) {
        match self.quotas.get(&PKey::new(p)) {
            Some(q) => (Some(q.0), false),
            None => (self.config().default_quota.clone(), true),
        }
    }

    pub fn video(&self, id: &Principal) -> Option<SpawnedVideo> {
        self.videos.get(&PKey::new(id)).map(|c| c.0)
    }

    pub fn put_video(&mut self, v: SpawnedVideo) {
        self.videos.insert(PKey::new(&v.canister_id), Candid(v));
    }

    /// One page of the videos this canister created, in key order (`PKey`, so pages stay
    /// consistent while creations continue): at most `limit` records (default
    /// `DEFAULT_PAGE_LIMIT`, clamped to `1..=MAX_PAGE_LIMIT`) strictly after `cursor`;
    /// `next_cursor` is set only when more follow.
    pub fn list_videos(&self, args: &SpawnListArgs) -> SpawnPage {
        let limit = page_limit(args.limit, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT);
        let start = match args.cursor {
            Some(c) => RangeBound::Excluded(PKey::new(&c)),
            None => RangeBound::Unbounded,
        };
        let records = self
            .videos
            .range((start, RangeBound::Unbounded))
            .map(|e| e.value().0);
        let (videos, next_cursor) = take_page(records, limit, |v| v.canister_id);
        SpawnPage {
            videos,
            next_cursor,
        }
    }

    /// The canisters `upgrade_videos` goes through: the ones asked for, in the order asked, or
    /// else every video this canister created, in key order.
    pub fn upgrade_targets(&self, requested: Option<Vec<Principal>>) -> Vec<Principal> {
        match requested {
            Some(v) => v,
            None => self.videos.keys().map(|k| k.principal()).collect(),
        }
    }

    /// Whether `video` can be upgraded now ([`logic::check_upgradable`] on its record). Asked
    /// again for each target just before its upgrade, since earlier upgrades awaited and a
    /// creation may have moved it meanwhile.
    pub fn check_upgradable(&self, video: &Principal) -> Result<()> {
        logic::check_upgradable(video, self.video(video).as_ref())
    }

    /// The retry state of `id`'s outbox entry (default: never failed, due).
    pub fn retry_of(&self, id: &Principal) -> Retry {
        self.retries.get(&PKey::new(id)).unwrap_or_default()
    }

    /// Records one attempt at `id`'s outbox entry: a success clears its retry state, a failure
    /// backs the next automatic one off ([`logic::after_failed_attempt`]). Returns the state
    /// after a failure.
    pub fn record_attempt(&mut self, id: &Principal, ok: bool, now: u64) -> Option<Retry> {
        let k = PKey::new(id);
        if ok {
            self.retries.remove(&k);
            return None;
        }
        let r = logic::after_failed_attempt(self.retry_of(id), now);
        self.retries.insert(k, r);
        Some(r)
    }

    /// Removes `id` from the outbox, with its retry state.
    pub fn outbox_remove(&mut self, id: &Principal) {
        let k = PKey::new(id);
        self.outbox.remove(&k);
        self.retries.remove(&k);
    }

    /// Up to `limit` outbox entries, in key order: every one (`due_only` false: an admin's
    /// `retry_pending`, parked ones included), or only those the timer should drive at `now`.
    pub fn outbox_batch(&self, due_only: bool, now: u64, limit: usize) -> Vec<Principal> {
        self.outbox
            .keys()
            .map(|k| k.principal())
            .filter(|id| !due_only || logic::is_due(&self.retry_of(id), now))
            .take(limit)
            .collect()
    }

    /// When the timer has work next: the earliest retry time of the entries not parked (an
    /// entry that never failed: 0, now). `None` when every entry is parked, or none is left.
    pub fn next_retry_at(&self) -> Option<u64> {
        let restarts = self.restarts.values();
        self.outbox
            .keys()
            .map(|k| self.retry_of(&k.principal()))
            .chain(restarts)
            .filter(|r| !logic::is_parked(r))
            .map(|r| r.next_at)
            .min()
    }

    /// `upgrade_videos` is about to stop `id`: until [`Self::restarted`], it is to be started —
    /// by the timer from [`logic::RESTART_GRACE_SECS`] on, should the upgrade's own start never
    /// come (a failed `start_canister`, a trapped callback).
    pub fn stopping(&mut self, id: &Principal, now: u64) {
        self.restarts.insert(
            PKey::new(id),
            Retry {
                attempts: 0,
                next_at: now.saturating_add(logic::RESTART_GRACE_SECS * 1_000_000_000),
            },
        );
    }

    /// `id` runs again.
    pub fn restarted(&mut self, id: &Principal) {
        self.restarts.remove(&PKey::new(id));
    }

    /// A start of `id` failed at `now`: backed off (and parked) like an outbox entry.
    pub fn restart_failed(&mut self, id: &Principal, now: u64) -> Retry {
        let k = PKey::new(id);
        let r = logic::after_failed_attempt(self.restarts.get(&k).unwrap_or_default(), now);
        self.restarts.insert(k, r);
        r
    }

    /// Up to `limit` videos to start: those due at `now` (`due_only`: the timer) or all.
    pub fn restart_batch(&self, due_only: bool, now: u64, limit: usize) -> Vec<Principal> {
        self.restarts
            .iter()
            .filter(|e| !due_only || logic::is_due(&e.value(), now))
            .map(|e| e.key().principal())
            .take(limit)
            .collect()
    }

    /// Outbox entries the timer gave up on (parked).
    pub fn parked_count(&self) -> u64 {
        self.outbox
            .keys()
            .filter(|k| logic::is_parked(&self.retry_of(&k.principal())))
            .count() as u64
    }

    /// Spares parked for `payer`, in key order.
    pub fn spares_of(&self, payer: &Principal) -> Vec<Principal> {
        let pk = PKey::new(payer);
        self.spares
            .keys_range(PairKey::from_keys(pk, PKey::MIN)..)
            .take_while(|k| k.first() == pk)
            .map(|k| k.second().principal())
            .collect()
    }

    /// Takes (removes) one of `payer`'s spares, so a concurrent call cannot take it too.
    pub fn claim_spare(&mut self, payer: &Principal) -> Option<SpawnedVideo> {
        let id = *self.spares_of(payer).first()?;
        self.spares.remove(&PairKey::new(payer, &id));
        self.video(&id)
    }

    pub fn park_spare(&mut self, payer: &Principal, id: &Principal) {
        self.spares.insert(PairKey::new(payer, id), ());
    }

    /// Finishes, without any call, an in-flight creation whose `create_video` future is gone (a
    /// callback trapped, or the spawn canister was upgraded while it awaited), so its canister and
    /// the caller's payment are not stranded in `Created`:
    /// - no code installed yet (`Created`, or a claimed `Spare`): parked as a spare for the
    ///   caller; their next `create_video` reinstalls it without charging its cycles again;
    /// - installed: put in the outbox, whose driver sets the controllers and registers it;
    /// - no canister known (`create_canister` never answered in a callback that committed): the
    ///   operation stays in flight, its step saying so, for an admin to see in `stats`.
    ///
    /// Must only be called for operations no live future drives (`flow` tracks those).
    pub fn recover_op(&mut self, op: u64, now: u64, why: &str) -> Recovery {
        let Some(f) = self.in_flight.get(&op).map(|c| c.0) else {
            return Recovery::NotInFlight;
        };
        let Some(mut v) = f.canister_id.and_then(|id| self.video(&id)) else {
            let mut f = f;
            f.step = format!(
                "interrupted before a canister was recorded ({why}); cycles paid: {}",
                f.cycles
            );
            self.in_flight.insert(op, Candid(f));
            return Recovery::NoCanister;
        };
        let id = v.canister_id;
        let recovery = match v.status {
            SpawnStatus::Created | SpawnStatus::Spare => {
                v.status = SpawnStatus::Spare;
                v.last_error = Some(format!(
                    "creation interrupted ({why}); parked as a spare for the caller's next create_video"
                ));
                v.updated_at = now;
                self.put_video(v);
                self.park_spare(&f.caller, &id);
                Recovery::Parked(id)
            }
            SpawnStatus::Installed | SpawnStatus::ControllersSet | SpawnStatus::IndexPending => {
                self.outbox.insert(PKey::new(&id), ());
                Recovery::Outbox(id)
            }
            SpawnStatus::Registered => Recovery::Done(id),
        };
        self.in_flight.remove(&op);
        recovery
    }

    /// [`SpawnStore::recover_op`] for every in-flight operation not in `live`.
    pub fn recover_stale(
        &mut self,
        live: &BTreeSet<u64>,
        now: u64,
        why: &str,
    ) -> Vec<(u64, Recovery)> {
        let stale: Vec<u64> = self
            .in_flight
            .keys()
            .filter(|op| !live.contains(op))
            .collect();
        stale
            .into_iter()
            .map(|op| (op, self.recover_op(op, now, why)))
            .collect()
    }
}

/// What [`SpawnStore::recover_op`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    NotInFlight,
    /// Kept in flight: no canister is known for it.
    NoCanister,
    /// Parked as a spare for the caller.
    Parked(Principal),
    /// Installed: left to the outbox driver.
    Outbox(Principal),
    /// Already complete; only the in-flight record was dropped.
    Done(Principal),
}

/// Property tests (issue 15) of the spawn canister's stable records: `CANVID_PROPTEST_CASES`
/// cases.
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

    fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
        p.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        /// Any 12 bytes are a retry record, and round-trip.
        #[test]
        fn retry_decodes_any_bytes_and_round_trips(raw in prop::collection::vec(any::<u8>(), RETRY_LEN)) {
            let r = Retry::from_bytes(Cow::Borrowed(&raw[..]));
            prop_assert_eq!(r.into_bytes(), raw);
        }

        /// The header round-trips; overwritten or truncated bytes read back as what they decode
        /// to, or trap with "spawn header" (bad magic, another version, undecodable candid).
        #[test]
        fn header_round_trips_or_traps_as_documented(
            admin in prop::collection::vec(any::<u8>(), 0..=29),
            next_op in any::<u64>(),
            edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            cut in any::<usize>(),
        ) {
            let mut config = Config::new(Principal::from_slice(&admin));
            config.next_op = next_op;
            let h = Header(config);
            let bytes = h.clone().into_bytes();
            prop_assert_eq!(Header::from_bytes(Cow::Borrowed(&bytes[..])), h);
            let mut bad = bytes.clone();
            for (at, b) in &edits {
                let at = at % bad.len();
                bad[at] = *b;
            }
            bad.truncate(cut % (bad.len() + 1));
            let decodes = header_body(&bad, MAGIC, LAYOUT_VERSION, "spawn")
                .ok()
                .and_then(|body| Decode!(body, Config).ok());
            let got = std::panic::catch_unwind(|| Header::from_bytes(Cow::Owned(bad.clone())));
            match (decodes, got) {
                (Some(c), Ok(h)) => prop_assert_eq!(h.0, c),
                (None, Err(p)) => {
                    let msg = panic_message(p);
                    prop_assert!(msg.starts_with("spawn header"), "{}", msg);
                }
                (d, g) => prop_assert!(false, "decodes {:?}, from_bytes {:?}", d.is_some(), g.is_ok()),
            }
        }
    }
}
