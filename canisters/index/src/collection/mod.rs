//! The index canister as canvid's ICRC-7 collection: every registered video canister is one
//! token (ICRC-7), tokens can be approved for others to transfer (ICRC-37), and every mint,
//! transfer and approval is a block of a certified log (ICRC-3). See docs/nft.md.
//!
//! Why the index: it already holds, for every video the spawn canister created, its creator and
//! its current owner, checked against the IC (a video's own reports are only hints). Making it
//! the collection adds no second source of truth about who owns a video.
//!
//! - Token id = the video canister's number on the IC ([`canvid_types::icrc::token_id_of`]),
//!   minted (`7mint`) when the spawn canister registers the video.
//! - A transfer (`icrc7_transfer`, `icrc37_transfer_from`) moves the canister itself: the
//!   collection checks with the IC that the holder controls the video alone with a module the
//!   platform installed, asks the video to move (`collection_transfer`, which only the video's
//!   index may call and which names the expected current owner), and answers `Ok` only after
//!   the IC shows the recipient controlling the video alone ([`logic::sole_control_problem`]).
//! - A direct `change_owner` on the video reaches the collection as the video's ownership
//!   report: once the IC bears it out it is a `7xfer` block too, and token approvals die with it.
//! - Accounts: only default accounts hold videos (a holder is a controller, and controllers are
//!   principals); spenders may be any account.
//!
//! Files: `logic` (plain decisions), `store` (stable maps: approvals, deduplication, transfers
//! in flight, trusted modules), `ledger` (the collection's operations on the index store, each
//! writing its block with `canvid-icrc3`), `transfer` (the async transfer and its recovery),
//! `endpoints` (the ICRC-7/37/3/10 methods).

pub mod ledger;
pub mod limits;
pub mod logic;
pub mod store;

pub(crate) mod endpoints;
pub(crate) mod refresh;
pub(crate) mod transfer;

/// Token metadata and batch limits, as the collection announces them
/// (`icrc7_collection_metadata`).
pub const SYMBOL: &str = "CANVID";
pub const NAME: &str = "canvid videos";
pub const DESCRIPTION: &str =
    "Videos stored on the Internet Computer, one canister each: owning the token is controlling the video canister.";
/// Largest batch of a query (`icrc7_owner_of`, `icrc7_token_metadata`, ...).
pub const MAX_QUERY_BATCH: usize = 100;
/// Largest batch of an update. A transfer makes three inter-canister calls (the IC's view of
/// the video before and after, and the video's own transfer), so batches stay small.
pub const MAX_UPDATE_BATCH: usize = 10;
pub const DEFAULT_TAKE: usize = 100;
pub const MAX_TAKE: usize = 1000;
pub const MAX_MEMO_BYTES: usize = 32;
/// Deduplication window and permitted drift, in seconds (ICRC-7 metadata units).
pub const TX_WINDOW_SECS: u64 = 24 * 3600;
pub const PERMITTED_DRIFT_SECS: u64 = 120;
/// Active approvals per token, and per owner for the collection (ICRC-37).
pub const MAX_APPROVALS: usize = 16;
/// Approvals one revoke call may remove.
pub const MAX_REVOKE_APPROVALS: usize = 16;
/// Deduplication entries forgotten per update (they expire after the window): bounds the work
/// of one call while keeping the table no larger than a window's worth of requests.
pub const DEDUP_PRUNE_PER_CALL: usize = 32;

/// `GenericError` codes the collection answers with (docs/nft.md lists them).
pub mod codes {
    /// The token is being transferred, or its video is busy: retry.
    pub const BUSY: u64 = 1;
    /// The IC's view of the video does not allow a sale: its holder does not control it alone,
    /// or its module is not one the platform installed.
    pub const NOT_SOLE_CONTROL: u64 = 2;
    /// The video canister refused or failed the transfer (the message says why).
    pub const VIDEO_REFUSED: u64 = 3;
    /// A call to the management canister or the video failed; nothing changed.
    pub const CALL_FAILED: u64 = 4;
    /// The memo is longer than `icrc7:max_memo_size`.
    pub const MEMO_TOO_LONG: u64 = 5;
    /// The recipient cannot hold a video (a subaccount, the video itself, ...).
    pub const BAD_RECIPIENT: u64 = 6;
    /// Too many approvals for this token or owner (`icrc37_max_approvals_per_token_or_collection`).
    pub const TOO_MANY_APPROVALS: u64 = 7;
    /// Approvals are made from the default account, which holds the videos.
    pub const FROM_SUBACCOUNT: u64 = 8;
    /// `expires_at` is not in the future.
    pub const EXPIRED: u64 = 9;
    /// More requests in one call than `icrc7:max_update_batch_size` (or revokes than
    /// `icrc37:max_revoke_approvals`).
    pub const BATCH_TOO_LARGE: u64 = 10;
    /// Only a holder of at least one token may approve the collection (approval spam).
    pub const NOT_A_HOLDER: u64 = 11;
    /// The token was transferred through the collection too often this hour: retry later (the
    /// message says when). See `limits`.
    pub const RATE_LIMITED: u64 = 12;
}

#[cfg(test)]
mod tests;
