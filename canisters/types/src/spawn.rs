//! Candid types of the spawn canister.
//!
//! The spawn canister creates one video canister per video, installs the video wasm it holds,
//! hands control to the owner and the video canister itself, and registers the video with the
//! index. Cycle amounts are `nat` (`u128`). See docs/spawn-and-index.md for who pays, the cycles
//! formula and the failure/recovery state machine.

use candid::{CandidType, Deserialize, Principal};
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::error::Error;

/// Page size when `SpawnListArgs::limit` is absent, and the largest page.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
pub const MAX_PAGE_LIMIT: u32 = 1000;

/// Install (and optional upgrade) argument of the spawn canister.
///
/// `admins` empty means "the installer is the only admin". Fields left `None` keep their
/// defaults at install and their current value at upgrade.
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct SpawnInit {
    pub admins: Vec<Principal>,
    /// Index canister to register videos with (also passed to each video as `VideoInit::index`).
    pub index: Option<Principal>,
    /// Video canister wasm (raw or gzip-compressed). No hash is required at install: the
    /// installer controls the argument anyway.
    pub video_wasm: Option<ByteBuf>,
    /// Quota of callers without a quota of their own (pool-funded creations). Default: none.
    pub default_quota: Option<QuotaArgs>,
    /// Cycle formula parameters; default base ≈ 392 B, per_byte 2,714, reserve 2 T
    /// (docs/spawn-and-index.md). A base below the default or a per_byte below 2,000 is refused.
    pub cycles: Option<CyclesConfig>,
    /// App canisters whose `create_video` calls name the video's creator: the owner they give.
    /// Every other caller is the creator of what it creates. Default: none; `opt vec {}` clears
    /// the list (also `set_app_canisters`).
    pub app_canisters: Option<Vec<Principal>>,
    /// The platform's share of every pass sold by the videos this canister installs from now on
    /// (docs/access.md). Default: none (also `set_platform_fee`).
    pub platform_fee: Option<crate::access::PlatformFee>,
}

/// `set_video_wasm` argument: `sha256` must be the SHA-256 of `wasm` exactly as given (the gzip
/// bytes for a compressed module).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct SetWasmArgs {
    pub wasm: ByteBuf,
    pub sha256: ByteBuf,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct WasmInfo {
    pub sha256: ByteBuf,
    pub size: u64,
    /// The module starts with the gzip magic bytes (installed as-is; the IC decompresses it).
    pub gzipped: bool,
}

/// Parameters of the cycles formula (all in cycles):
/// `required = creation_fee + base + declared_size * per_byte`, where `creation_fee` is what the
/// subnet charges for `create_canister` at the time of the call (`ic0.cost_create_canister`,
/// 500 B on a 13-node subnet) and the rest is handed to the new canister.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct CyclesConfig {
    /// Left in the new canister whatever its size: the install's 300 B instruction prepayment
    /// (refunded after the install, then the headroom later messages prepay from), compilation,
    /// and storage of the fixed footprint. At least ≈ 392 B.
    pub base: u128,
    /// Per declared byte: ingress + execution of the upload + the freezing reserve and 30 days
    /// of storage above it.
    pub per_byte: u128,
    /// Pool-funded creations never take the spawn canister's balance below this.
    pub reserve: u128,
}

/// `set_quota` argument: what one caller may create from the operator's pool (cumulative).
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct QuotaArgs {
    pub max_videos: u64,
    pub max_cycles: u128,
}

/// A caller's pool quota and use so far (`quota_of`).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct QuotaStatus {
    /// The caller's own quota, or the default quota when they have none.
    pub quota: QuotaArgs,
    pub is_default: bool,
    pub used_videos: u64,
    pub used_cycles: u128,
    /// Parked canisters (install failed) the caller already paid for; the next `create_video`
    /// of this caller reuses one without charging its cycles again.
    pub spares: Vec<Principal>,
    /// Cycles the caller paid for a creation that failed before a canister existed; spent first
    /// by the caller's next `create_video`.
    pub credit: u128,
}

/// `create_video` argument. The text fields are checked with the video canister's limits
/// (`video::validate_text_fields`) before anything is created.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct CreateVideoArgs {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// Expected file size in bytes (`<= video::MAX_VIDEO_SIZE`): the cycles given to the new
    /// canister are computed from it.
    pub declared_size: u64,
    /// App-level owner and first controller; default the caller. The video's creator is the
    /// caller, except for an app canister the admins allow-listed (`set_app_canisters`), which
    /// makes the owner it names the creator.
    pub owner: Option<Principal>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct CreatedVideo {
    pub canister_id: Principal,
    /// Cycles the new canister received (on top of the creation fee), including a reused
    /// spare's earlier cycles.
    pub cycles_given: u128,
    /// The index acknowledged the registration in this call. False when no index is configured
    /// or the call failed (then it is retried from a stable outbox by a timer and `retry_pending`).
    pub indexed: bool,
}

/// Who paid for a creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum Payer {
    /// The caller's own cycles: attached to the call by a calling canister, or credit left from
    /// an earlier failed attempt.
    Attached,
    /// The operator's pool (the spawn canister's balance), charged to the caller's quota.
    Pool,
}

/// Where a created video canister is in the creation state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum SpawnStatus {
    /// `create_canister` answered; the controller is the spawn canister alone; no code yet.
    Created,
    /// The video wasm is installed.
    Installed,
    /// Controllers are [video, spawn]: the owner becomes one when the upload is finished (the
    /// video hands control over itself, see `VideoInit::funded_by`).
    ControllersSet,
    /// Done: the index acknowledged the registration (or there is no index).
    Registered,
    /// Done, but the index registration is waiting in the outbox.
    IndexPending,
    /// Installing failed twice: parked, reserved for the payer's next `create_video`.
    Spare,
}

/// One canister created by the spawn canister (`list_videos`).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct SpawnedVideo {
    pub canister_id: Principal,
    pub owner: Principal,
    pub creator: Principal,
    pub status: SpawnStatus,
    pub payer: Payer,
    /// Who called `create_video` (and is credited with the canister if it is parked as a spare).
    pub caller: Principal,
    pub cycles_given: u128,
    /// IC time (ns) of `create_canister`'s answer and of the last status change.
    pub created_at: u64,
    pub updated_at: u64,
    /// SHA-256 of the wasm last installed by the spawn canister, if any.
    pub wasm_sha256: Option<ByteBuf>,
    pub last_error: Option<String>,
    /// Cycles the video gave back (`return_unused_cycles`) when its upload finished, credited to
    /// the payer (absent in records of older modules, and until then).
    pub cycles_returned: Option<u128>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct SpawnListArgs {
    pub cursor: Option<Principal>,
    pub limit: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct SpawnPage {
    pub videos: Vec<SpawnedVideo>,
    pub next_cursor: Option<Principal>,
}

/// `top_up` argument: deposit `amount` cycles from the pool into `video`.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct TopUpArgs {
    pub video: Principal,
    pub amount: u128,
}

/// `upgrade_videos` argument: `videos` default all canisters the spawn canister created;
/// `arg` is the raw (candid-encoded) upgrade argument, default the encoding of `()`.
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct UpgradeArgs {
    pub videos: Option<Vec<Principal>>,
    pub arg: Option<ByteBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct UpgradeOutcome {
    pub video: Principal,
    pub result: Result<(), Error>,
}

/// A creation interrupted between two awaits (normally empty; visible to admins).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct InFlight {
    pub op: u64,
    pub caller: Principal,
    pub owner: Principal,
    pub payer: Payer,
    pub cycles: u128,
    pub started_at: u64,
    /// Set once `create_canister` answered.
    pub canister_id: Option<Principal>,
    pub step: String,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct SpawnStats {
    pub admins: Vec<Principal>,
    pub index: Option<Principal>,
    pub video_wasm: Option<WasmInfo>,
    pub cycles: CyclesConfig,
    pub default_quota: Option<QuotaArgs>,
    pub balance: u128,
    pub videos_created: u64,
    pub spares: u64,
    /// Outbox entries (videos whose controllers or registration are still to be done).
    pub outbox: u64,
    /// Of those, entries the retry timer gave up on after 20 failed attempts in a row: kept,
    /// and retried only by `retry_pending` (their record's `last_error` says so).
    pub outbox_parked: u64,
    pub in_flight: Vec<InFlight>,
    pub layout_version: u32,
    /// App canisters allowed to attribute a video's creator to the owner they name.
    pub app_canisters: Vec<Principal>,
    /// The platform fee given to videos installed from now on.
    pub platform_fee: Option<crate::access::PlatformFee>,
}
