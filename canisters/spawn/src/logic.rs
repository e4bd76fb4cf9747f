//! Plain-Rust decisions of the spawn canister: the cycles formula, who pays, quota accounting,
//! the transitions of the creation state machine, which videos an upgrade may touch, and the
//! admin list's bounds. No system API here, so all of it has
//! native unit tests; the endpoints gather inputs (balance, attached cycles, fees) and apply
//! the decisions.

use candid::{Encode, Principal};
use canvid_types::spawn::{CyclesConfig, Payer, QuotaArgs, SpawnStatus, SpawnedVideo};
use canvid_types::video::{validate_text_fields, MAX_VIDEO_SIZE};
use canvid_types::{is_canister_id, Error, Result};
use serde::{Deserialize, Serialize};

/// Ingress fee per byte the video canister pays while its file is uploaded (13-node subnet).
pub const INGRESS_PER_BYTE: u128 = 2_000;
/// Execution of `put_chunk` per byte: stable writes (~1.25 instr/byte) + SHA-256 (~75/byte) on
/// wasm32 + the certification tree (~4.5/byte), rounded up (measured on PocketIC 10: 83/byte).
pub const EXECUTION_PER_BYTE: u128 = 100;
/// Storage for 30 days (the default freezing threshold): 127,000 cycles per GiB per second
/// x 2,592,000 s / 2^30 bytes = 306.6, rounded up.
pub const STORAGE_30_DAYS_PER_BYTE: u128 = 307;
/// Storage per byte the new canister is given: its freezing reserve (30 days, the default
/// threshold: a canister whose balance falls below it is frozen) plus 30 days of runway above
/// it, so a new video stays online a month before its owner must top it up.
pub const STORAGE_PER_BYTE: u128 = 2 * STORAGE_30_DAYS_PER_BYTE;
/// The IC prepays an install's whole instruction limit (300 B instructions at 1 cycle each, plus
/// the 5 M execution base) above the freezing reserve: a canister holding less cannot be
/// installed at all. What the install does not use is refunded and stays in the canister, where
/// it is the operating headroom every later message needs: 40 B prepaid per update or timer,
/// 42.1 B reserved per outstanding call (change_owner and the index notifications make one at
/// a time) and the ingress fee of a 2 MiB chunk (4.2 B): ≈ 130 B with two messages in flight.
pub const INSTALL_PREPAYMENT: u128 = 300_005_000_000;
/// Compiling the video module the first time on a subnet (6,000 instructions per instrumented
/// wasm instruction: 3.4 B measured on PocketIC 10 for canvid's module) and running its init.
pub const COMPILATION_AND_INIT: u128 = 10_000_000_000;
/// The video canister's memory besides the video bytes (wasm, heap, the stable structures'
/// buckets): 52 MB empty and 89 MB holding a 5 MB video, measured on PocketIC 10; its storage
/// (reserve + runway) is part of `base`.
pub const FIXED_FOOTPRINT_BYTES: u128 = 128 << 20;

/// The least `reserve` the spawn canister keeps for itself: each of its own messages prepays
/// 40 B and each call it makes (create_canister, install_code, the index) reserves 42.1 B for
/// its response until it returns, with a few creations in flight at once.
pub const MIN_SPAWN_RESERVE: u128 = 500_000_000_000;

/// `base` in the shape of an old deployment's default (before prepayment was modelled):
/// refused for new configurations, and replaced on upgrade ([`migrate_cycles_config`]).
pub const V1_DEFAULT_BASE: u128 = 200_000_000_000;
pub const V1_DEFAULT_PER_BYTE: u128 = 2_407;

/// The defaults (see docs/spawn-and-index.md):
/// - `base` ≈ 392 B = install prepayment (300 B) + compilation and init (10 B) + storage of the
///   fixed footprint (128 MiB × 614);
/// - `per_byte` = ingress + execution + storage (reserve + 30-day runway) = 2,714;
/// - `reserve` 2 T: the spawn canister keeps this for its own operation.
pub fn default_cycles_config() -> CyclesConfig {
    CyclesConfig {
        base: min_base(),
        per_byte: INGRESS_PER_BYTE + EXECUTION_PER_BYTE + STORAGE_PER_BYTE,
        reserve: 2_000_000_000_000,
    }
}

/// The least `base` with which a video canister can be installed and keep running: anything
/// below fails on the IC at `install_code` or soon after.
pub fn min_base() -> u128 {
    INSTALL_PREPAYMENT + COMPILATION_AND_INIT + FIXED_FOOTPRINT_BYTES * STORAGE_PER_BYTE
}

/// Refuses a configuration with which creations would fail on the IC: a `base` below
/// [`min_base`] (the install cannot be prepaid), a `per_byte` below the ingress fee (the upload
/// could not be paid for), a `reserve` below [`MIN_SPAWN_RESERVE`] (the pool could be spent
/// down to where the spawn canister cannot make its own calls).
pub fn validate_cycles_config(cfg: &CyclesConfig) -> Result<()> {
    if cfg.reserve < MIN_SPAWN_RESERVE {
        return Err(Error::InvalidArgument {
            reason: format!(
                "reserve {} is below {MIN_SPAWN_RESERVE}: the spawn canister prepays 40 B per \
                 message and reserves 42.1 B per call it makes",
                cfg.reserve
            ),
        });
    }
    if cfg.base < min_base() {
        return Err(Error::InvalidArgument {
            reason: format!(
                "base {} is below {}: the IC prepays 300 B instructions for installing a canister, \
                 and the video canister's fixed footprint needs storage",
                cfg.base,
                min_base()
            ),
        });
    }
    if cfg.per_byte < INGRESS_PER_BYTE {
        return Err(Error::InvalidArgument {
            reason: format!(
                "per_byte {} is below the ingress fee of {INGRESS_PER_BYTE} per byte",
                cfg.per_byte
            ),
        });
    }
    Ok(())
}

/// A deployment still on the first defaults (base 200 B, per_byte 2,407), which cannot install
/// a video on the IC, gets the current ones on upgrade; its `reserve` is kept. A customised
/// configuration is left alone (`set_cycles_config` corrects it).
pub fn migrate_cycles_config(cfg: &CyclesConfig) -> CyclesConfig {
    if cfg.base == V1_DEFAULT_BASE && cfg.per_byte == V1_DEFAULT_PER_BYTE {
        CyclesConfig {
            reserve: cfg.reserve,
            ..default_cycles_config()
        }
    } else {
        cfg.clone()
    }
}

/// Cycles the new canister receives (on top of the creation fee):
/// `base + declared_size * per_byte`. Checked: an overflow is an argument error, not a wrap.
pub fn cycles_to_give(cfg: &CyclesConfig, declared_size: u64) -> Result<u128> {
    (declared_size as u128)
        .checked_mul(cfg.per_byte)
        .and_then(|c| c.checked_add(cfg.base))
        .ok_or_else(|| Error::InvalidArgument {
            reason: "cycles formula overflows".into(),
        })
}

/// The largest `create_video` argument accepted as ingress: the longest title, description and
/// tags `validate_create` allows, plus candid framing. Larger ones would be refused by the
/// endpoint after the spawn canister paid their ingress bytes.
pub const MAX_CREATE_VIDEO_ARG_BYTES: usize = canvid_types::video::MAX_TITLE_BYTES
    + canvid_types::video::MAX_DESCRIPTION_BYTES
    + canvid_types::video::MAX_TAGS * (canvid_types::video::MAX_TAG_BYTES + 8)
    + 1024;

/// Could a `create_video` ingress message (which never carries cycles) succeed? Only from a
/// non-anonymous caller with a way to pay — credit from a failed attempt, a parked spare, or a
/// pool quota with room — and an argument within [`MAX_CREATE_VIDEO_ARG_BYTES`]. Everything else
/// is refused before the spawn canister pays for the message (self-authenticating principals
/// cost nothing to make, so a quota-less caller's ingress would be free pool drain). Callers
/// refused here get their typed answer from the endpoint when they call from a canister.
pub fn inspect_create_video(
    caller: &Principal,
    arg_size: usize,
    account: &Account,
    has_spare: bool,
    quota: Option<&QuotaArgs>,
) -> bool {
    let quota_room = quota
        .is_some_and(|q| account.used_videos < q.max_videos && account.used_cycles < q.max_cycles);
    *caller != Principal::anonymous()
        && arg_size <= MAX_CREATE_VIDEO_ARG_BYTES
        && (account.credit > 0 || has_spare || quota_room)
}

/// Validates a `create_video` request with the video canister's own limits, so a request the
/// video's `init` would refuse is refused before any cycles are spent.
pub fn validate_create(
    title: &str,
    description: &str,
    tags: &[String],
    declared_size: u64,
) -> Result<()> {
    validate_text_fields(Some(title), Some(description), Some(tags))?;
    if declared_size > MAX_VIDEO_SIZE {
        return Err(Error::TooLarge {
            size: declared_size,
            limit: MAX_VIDEO_SIZE,
        });
    }
    Ok(())
}

/// Pool use and credit of one caller (stable, per principal).
#[derive(Clone, Debug, Default, PartialEq, Eq, candid::CandidType, Serialize, Deserialize)]
pub struct Account {
    pub used_videos: u64,
    pub used_cycles: u128,
    /// Cycles paid for a creation that failed before a canister existed.
    pub credit: u128,
}

/// What the caller must be charged for one creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge {
    /// Cycles this creation costs the caller: `fee + give` for a new canister, or what a reused
    /// spare lacks (`give - spare's cycles`, never negative) — the spare was paid for already.
    pub amount: u128,
    /// A new canister counts against the caller's `max_videos`; a reused spare does not.
    pub new_video: bool,
}

pub fn charge_for_new(creation_fee: u128, give: u128) -> Result<Charge> {
    let amount = creation_fee
        .checked_add(give)
        .ok_or_else(|| Error::InvalidArgument {
            reason: "cycles formula overflows".into(),
        })?;
    Ok(Charge {
        amount,
        new_video: true,
    })
}

pub fn charge_for_spare(give: u128, spare_cycles: u128) -> Charge {
    Charge {
        amount: give.saturating_sub(spare_cycles),
        new_video: false,
    }
}

/// How a creation is funded. All amounts come out of different places:
/// `credit_used` from the caller's credit, `accept` from the cycles the calling canister attached,
/// `pool` from the spawn canister's own balance (charged to the caller's quota).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Funding {
    pub payer: Payer,
    pub credit_used: u128,
    pub accept: u128,
    pub pool: u128,
}

/// Inputs of the funding decision, gathered by the endpoint before anything is created.
#[derive(Clone, Debug)]
pub struct FundingInput<'a> {
    pub charge: Charge,
    pub account: &'a Account,
    /// `msg_cycles_available()`: non-zero when the caller is a canister that attached cycles.
    pub attached: u128,
    /// The caller's own quota, else the default quota (None = no quota at all).
    pub quota: Option<&'a QuotaArgs>,
    /// The spawn canister's balance and the reserve it keeps for itself.
    pub balance: u128,
    pub reserve: u128,
}

/// Decides who pays. Rules (docs/spawn-and-index.md, "Who pays"):
/// 1. The caller's credit is spent first; a creation it pays entirely is `Payer::Attached`.
/// 2. If the caller attached cycles, they pay the rest: attached < rest → InsufficientCycles;
///    else exactly the rest is accepted (the IC refunds the remainder). Quotas do not apply.
/// 3. Otherwise the operator's pool pays, within the caller's quota (cycles first, then the
///    video count) and never below the reserve.
pub fn decide_funding(input: &FundingInput<'_>, caller: Principal) -> Result<Funding> {
    let credit_used = input.account.credit.min(input.charge.amount);
    let rest = input.charge.amount - credit_used;
    // Fully paid by credit (the caller's own cycles from a failed attempt): like attached
    // cycles, no quota applies.
    if input.attached > 0 || rest == 0 {
        if input.attached < rest {
            return Err(Error::InsufficientCycles {
                required: rest,
                available: input.attached,
            });
        }
        return Ok(Funding {
            payer: Payer::Attached,
            credit_used,
            accept: rest,
            pool: 0,
        });
    }
    let zero = QuotaArgs::default();
    let quota = input.quota.unwrap_or(&zero);
    if rest > 0 {
        let quota_left = quota.max_cycles.saturating_sub(input.account.used_cycles);
        if rest > quota_left {
            return Err(Error::InsufficientCycles {
                required: rest,
                available: quota_left,
            });
        }
    }
    if input.charge.new_video && input.account.used_videos >= quota.max_videos {
        return Err(Error::NotAuthorized {
            caller,
            reason: format!(
                "pool quota of {} video(s) used up; attach cycles or ask an admin for a quota",
                quota.max_videos
            ),
        });
    }
    let pool_available = input.balance.saturating_sub(input.reserve);
    if rest > pool_available {
        return Err(Error::InsufficientCycles {
            required: rest,
            available: pool_available,
        });
    }
    Ok(Funding {
        payer: Payer::Pool,
        credit_used,
        accept: 0,
        pool: rest,
    })
}

/// Account after a video gave back `amount` unused cycles when its upload finished
/// (`return_unused_cycles`): the payer's own cycles become credit for their next creation; cycles
/// from the pool stay in the pool and give the caller's quota back the same amount.
pub fn credit_returned(account: &Account, payer: Payer, amount: u128) -> Account {
    let mut a = account.clone();
    match payer {
        Payer::Attached => a.credit = a.credit.saturating_add(amount),
        Payer::Pool => a.used_cycles = a.used_cycles.saturating_sub(amount),
    }
    a
}

/// Account after the funding is committed (before the first await).
pub fn commit_funding(account: &Account, f: &Funding, new_video: bool) -> Account {
    let mut a = account.clone();
    a.credit -= f.credit_used.min(a.credit);
    if f.payer == Payer::Pool {
        a.used_cycles = a.used_cycles.saturating_add(f.pool);
        if new_video {
            a.used_videos += 1;
        }
    }
    a
}

/// Account after a creation failed before any canister existed (or a spare could not be topped
/// up): pool use is given back, and everything the caller paid (credit used + accepted cycles)
/// becomes credit, so nothing is lost.
pub fn refund_funding(account: &Account, f: &Funding, new_video: bool) -> Account {
    let mut a = account.clone();
    a.credit = a
        .credit
        .saturating_add(f.credit_used)
        .saturating_add(f.accept);
    if f.payer == Payer::Pool {
        a.used_cycles = a.used_cycles.saturating_sub(f.pool);
        if new_video {
            a.used_videos = a.used_videos.saturating_sub(1);
        }
    }
    a
}

/// Install attempts before a created canister is parked as a spare.
pub const INSTALL_ATTEMPTS: u32 = 2;

/// What to do after an install attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterInstallFailure {
    Retry,
    Park,
}

pub fn after_install_failure(attempts_made: u32) -> AfterInstallFailure {
    if attempts_made < INSTALL_ATTEMPTS {
        AfterInstallFailure::Retry
    } else {
        AfterInstallFailure::Park
    }
}

/// The next step the driver (create flow, timer, `retry_pending`) must take for a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// Controllers are still [owner, spawn]: set [owner, video, spawn].
    SetControllers,
    /// Register with the index.
    Register,
    /// Nothing (done, parked, or waiting for install by the create call that owns it).
    None,
}

pub fn next_step(status: SpawnStatus, has_index: bool) -> NextStep {
    match status {
        SpawnStatus::Installed => NextStep::SetControllers,
        SpawnStatus::ControllersSet | SpawnStatus::IndexPending if has_index => NextStep::Register,
        _ => NextStep::None,
    }
}

/// Status after `next_step`'s action succeeded / failed.
pub fn after_step(status: SpawnStatus, step: NextStep, ok: bool, has_index: bool) -> SpawnStatus {
    match (step, ok) {
        (NextStep::SetControllers, true) if has_index => SpawnStatus::ControllersSet,
        (NextStep::SetControllers, true) => SpawnStatus::Registered,
        (NextStep::SetControllers, false) => SpawnStatus::Installed,
        (NextStep::Register, true) => SpawnStatus::Registered,
        (NextStep::Register, false) => SpawnStatus::IndexPending,
        (NextStep::None, _) => status,
    }
}

/// Statuses the driver still has work for (kept in the outbox).
pub fn needs_work(status: SpawnStatus, has_index: bool) -> bool {
    next_step(status, has_index) != NextStep::None
}

/// What the "controllers" step writes, given the video's controllers now and what the installed
/// video module says of itself (its `metadata` query). A spawned video is controlled by itself
/// (it rewrites its controllers on ownership transfer and hands control over) and the spawn
/// canister (upgrades and top-ups); its owner becomes a controller only when the upload is
/// finished, by the video itself (security review M3: until then nobody else can change the
/// code, so the cycles given for the declared size cannot be diverted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControllersPlan {
    /// Nothing to write: the video already controls itself (the step ran before, or the video
    /// has been transferred since).
    AlreadyDone,
    /// Write exactly these controllers.
    Set(Vec<Principal>),
}

/// The installed video module's answer to `metadata`, as far as the controllers step needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoView {
    /// The app-level owner now (never the spawn's possibly stale record: security review M1).
    pub owner: Principal,
    /// The module hands control to its owner after the upload (`control` is `AfterUpload` or
    /// `HandingOver`); false for modules older than the hand-over, which expect their owner to
    /// be a controller from the start.
    pub hands_over: bool,
}

/// The "controllers" step from the video's current controllers. The spawn canister created the
/// canister with itself as the only controller, so nobody else can have changed them between
/// the step's read and its write (the M1 read-then-write window is closed).
pub fn plan_controllers(
    current: &[Principal],
    video: &VideoView,
    id: Principal,
    spawn: Principal,
) -> ControllersPlan {
    if current.contains(&id) {
        return ControllersPlan::AlreadyDone;
    }
    if video.hands_over {
        // Anyone else (an owner an older spawn module made a controller of a spare) is dropped.
        return ControllersPlan::Set(vec![id, spawn]);
    }
    let mut c = current.to_vec();
    for p in [video.owner, id, spawn] {
        if !c.contains(&p) {
            c.push(p);
        }
    }
    ControllersPlan::Set(c)
}

/// Controllers at `create_canister`: the spawn canister alone (the video's id is not known yet,
/// and the owner gets control from the video once the upload is finished).
pub fn initial_controllers(spawn: Principal) -> Vec<Principal> {
    vec![spawn]
}

/// Checks a video module: wasm (`\0asm`) or gzip (`1f 8b`) magic, size limit, SHA-256.
pub fn check_wasm(wasm: &[u8], sha256: &[u8], actual_sha256: &[u8]) -> Result<()> {
    if wasm.len() as u64 > MAX_WASM_SIZE {
        return Err(Error::TooLarge {
            size: wasm.len() as u64,
            limit: MAX_WASM_SIZE,
        });
    }
    if !(wasm.starts_with(b"\0asm") || wasm.starts_with(&[0x1f, 0x8b])) {
        return Err(Error::InvalidArgument {
            reason: "not a wasm module (or gzip of one)".into(),
        });
    }
    if sha256 != actual_sha256 {
        return Err(Error::WrongDigest {
            index: None,
            expected: sha256.to_vec(),
            actual: actual_sha256.to_vec(),
        });
    }
    Ok(())
}

/// Largest video module: one `install_code` message must fit 2 MiB with its argument
/// (docs/ic-notes); larger modules would need chunked installation, which is not implemented.
pub const MAX_WASM_SIZE: u64 = 2_000_000;

pub fn is_gzip(wasm: &[u8]) -> bool {
    wasm.starts_with(&[0x1f, 0x8b])
}

/// Whether `upgrade_videos` may upgrade `video`, from its record here (`None`: not created by
/// this canister). Only canisters with the video module installed are upgraded: a `Created`
/// one is still being installed by its `create_video`, and a `Spare` has no module (its next
/// owner's `create_video` reinstalls it); upgrading either would fail or race that install.
pub fn check_upgradable(video: &Principal, record: Option<&SpawnedVideo>) -> Result<()> {
    match record.map(|v| v.status) {
        None => Err(Error::NotFound {
            what: format!("video canister {video} created by this spawn canister"),
        }),
        Some(SpawnStatus::Created | SpawnStatus::Spare) => Err(Error::NotReady {
            reason: format!("{video} has no video module installed"),
        }),
        Some(_) => Ok(()),
    }
}

/// The argument `upgrade_videos` passes to each video's `post_upgrade`: the admin's bytes as
/// given, else the empty candid argument list (the video canister's `post_upgrade` takes none).
pub fn upgrade_arg(arg: Option<Vec<u8>>) -> Result<Vec<u8>> {
    match arg {
        Some(a) => Ok(a),
        None => Encode!().map_err(|e| Error::InvalidArgument {
            reason: e.to_string(),
        }),
    }
}

/// Most admins: bounds the config and the linear membership check of every admin call.
pub const MAX_ADMINS: usize = 64;

/// An admin list as stored: duplicates dropped, at most [`MAX_ADMINS`].
pub fn dedup_admins(list: &[Principal]) -> Result<Vec<Principal>> {
    canvid_stable_common::dedup_principals("admins", list, MAX_ADMINS)
}

/// The video's creator: the caller, unless the caller is an app canister the admins
/// allow-listed (`app_canister`), which creates videos on behalf of the `owner` it names: then
/// the owner. Any other canister is the creator of what it creates: otherwise it could list
/// videos of its choosing under anyone's `videos_by_creator`, for good, as the index never
/// changes a creator (security review M5).
pub fn creator_for(caller: Principal, owner: Principal, app_canister: bool) -> Principal {
    if app_canister && is_canister_id(&caller) {
        owner
    } else {
        caller
    }
}

/// Most allow-listed app canisters (bounds the config and the membership check).
pub const MAX_APP_CANISTERS: usize = 64;

/// An app-canister allow-list as stored: duplicates dropped, at most [`MAX_APP_CANISTERS`], and
/// canister ids only (a user's principal would never call as a canister).
pub fn validate_app_canisters(list: &[Principal]) -> Result<Vec<Principal>> {
    let list = canvid_stable_common::dedup_principals("app_canisters", list, MAX_APP_CANISTERS)?;
    if let Some(p) = list.iter().find(|p| !is_canister_id(p)) {
        return Err(Error::InvalidArgument {
            reason: format!("{p} is not a canister id"),
        });
    }
    Ok(list)
}

/// First automatic retry of a failed outbox entry (seconds after the failure); each further
/// failure doubles the delay, up to [`RETRY_MAX_DELAY_SECS`] (security review L7).
pub const RETRY_FIRST_DELAY_SECS: u64 = 60;
/// Longest delay between two automatic retries: a day.
pub const RETRY_MAX_DELAY_SECS: u64 = 86_400;
/// Failed attempts after which the timer stops retrying an entry: it is *parked*, kept in the
/// outbox (visible in `stats` and in its record's `last_error`), and retried only by an admin's
/// `retry_pending`. 60 s doubling to a day: 20 attempts span about ten days.
pub const MAX_AUTO_ATTEMPTS: u32 = 20;

/// Retry state of one outbox entry: failed attempts in a row and when the timer may try again
/// (IC time, ns). An entry without one (never failed) is due.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub next_at: u64,
}

/// How long after `upgrade_videos` stopped a video the timer starts it if the upgrade did not:
/// longer than a stop + install + start ever takes, so the timer never starts a video the
/// upgrade is still working on.
pub const RESTART_GRACE_SECS: u64 = 600;

/// Delay before the automatic retry that follows `attempts` failures in a row (≥ 1).
pub fn retry_delay_secs(attempts: u32) -> u64 {
    let doublings = attempts.saturating_sub(1).min(32);
    RETRY_FIRST_DELAY_SECS
        .saturating_mul(1u64 << doublings)
        .min(RETRY_MAX_DELAY_SECS)
}

/// The retry state after one more failed attempt at `now` (ns).
pub fn after_failed_attempt(r: Retry, now: u64) -> Retry {
    let attempts = r.attempts.saturating_add(1);
    Retry {
        attempts,
        next_at: now.saturating_add(retry_delay_secs(attempts).saturating_mul(1_000_000_000)),
    }
}

/// Parked: the timer no longer retries it (only `retry_pending` does).
pub fn is_parked(r: &Retry) -> bool {
    r.attempts >= MAX_AUTO_ATTEMPTS
}

/// Whether the timer should drive the entry at `now`.
pub fn is_due(r: &Retry, now: u64) -> bool {
    !is_parked(r) && r.next_at <= now
}

/// What a record's `last_error` adds about its retries.
pub fn retry_note(r: &Retry, now: u64) -> String {
    if is_parked(r) {
        format!(
            "parked after {} failed attempts: the timer no longer retries it, an admin's \
             retry_pending does",
            r.attempts
        )
    } else {
        format!(
            "attempt {} failed; next automatic retry in {} s",
            r.attempts,
            r.next_at.saturating_sub(now) / 1_000_000_000
        )
    }
}
