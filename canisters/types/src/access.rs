//! Who may watch a video, and how a viewer pays for it (docs/access.md).
//!
//! A video's owner sets an [`AccessPolicy`]: public (the default), private (an allowlist of
//! viewers the owner manages) or paid (passes sold over an ICRC-2 ledger, plus the allowlist for
//! viewers the owner lets in for free). Whatever the mode, the first `preview_bytes` of the file
//! stay public (a teaser), and the metadata and poster are always public.
//!
//! A pass is bought with `buy_access`: the viewer approves the video canister on the ledger, then
//! the canister pulls the price with `icrc2_transfer_from` straight into the owner's account and
//! grants the pass. Every purchase is a [`Receipt`] that names the ledger block, so a third party
//! can check it against the ledger. The policy lives in the video's own state, so it follows the
//! video through an owner change, and the revenue goes to whoever owns the video when the
//! payment is made.
//!
//! A browser's `<video>` element cannot sign IC calls, so a viewer who may watch gets a
//! [`PlaybackToken`] from an authenticated call and plays the URL it names; `http_request` checks
//! it. Agent reads (`get_chunk`, `read_range`, `chunk_digests`) check the caller.

use candid::{CandidType, Deserialize, Nat, Principal};
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::icrc::Account;
use crate::Error;

/// Most offers a paid video may have (e.g. 24 hours, 7 days, forever, per minute).
pub const MAX_OFFERS: usize = 8;
/// Longest offer id.
pub const MAX_OFFER_ID_BYTES: usize = 32;
/// Shortest pass an offer may sell: one minute (pay-as-you-watch extends it step by step).
pub const MIN_PASS_SECONDS: u64 = 60;
/// Longest finite pass: ten years (longer: sell a pass without expiry).
pub const MAX_PASS_SECONDS: u64 = 10 * 365 * 24 * 3600;
/// Most principals on a video's viewer allowlist.
pub const MAX_VIEWERS: u32 = 10_000;
/// Most principals one `add_viewers` / `remove_viewers` call may name, and the largest page of
/// `viewers`.
pub const MAX_VIEWERS_PER_CALL: usize = 500;
/// Largest page of `receipts`.
pub const MAX_RECEIPTS_PER_PAGE: u32 = 100;
/// Default and longest life of a playback token.
pub const DEFAULT_TOKEN_SECONDS: u32 = 3_600;
pub const MAX_TOKEN_SECONDS: u32 = 24 * 3_600;
/// Most purchases a video lets fail (refused by the ledger, or with an unknown outcome) in a
/// minute before it stops accepting new ones for the rest of that minute. Each costs the video
/// its execution and a call to the ledger (~10–30 M cycles, docs/performance.md) while an
/// ingress message costs its sender nothing: without a bound, anyone could drain a paid video
/// by buying without an approval from fresh principals. Legitimate buyers rarely fail; when the
/// bound is hit they are told to retry (`Busy`), and `inspect_message` refuses for free.
pub const MAX_FAILED_PURCHASES_PER_MINUTE: u32 = 20;
/// How far in the past a purchase's `created_at_time` may be: the ledger deduplicates
/// transactions for 24 hours, and the canister must be able to retry a purchase whose outcome it
/// did not learn inside that window.
pub const MAX_PURCHASE_AGE_NS: u64 = 60 * 60 * 1_000_000_000;
/// How far in the future a purchase's `created_at_time` may be (the ledger allows 2 minutes of
/// clock drift).
pub const MAX_PURCHASE_DRIFT_NS: u64 = 60 * 1_000_000_000;

/// A platform's share of every sale: configured on the spawn canister (`set_platform_fee`) and
/// given to each video it installs from then on (`VideoInit::platform_fee`). With a fee, a
/// buyer's payment goes to the video canister's own account, which then pays the owner and the
/// platform their shares (`icrc1_transfer`, each paying one ledger fee out of its share): a
/// single ICRC-2 `transfer_from` can pay only one account, and paying the two in two transfers
/// could charge a buyer the fee without granting a pass.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct PlatformFee {
    pub account: Account,
    /// 1 to 10,000 (100 %); the platform gets `floor(price * basis_points / 10,000)`.
    pub basis_points: u16,
}

impl PlatformFee {
    pub fn validate(&self) -> Result<(), Error> {
        if !(1..=10_000).contains(&self.basis_points) {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "a platform fee is 1 to 10,000 basis points, not {}",
                    self.basis_points
                ),
            });
        }
        if self.account.owner == Principal::anonymous() {
            return Err(Error::InvalidArgument {
                reason: "the platform fee account cannot be the anonymous principal's".into(),
            });
        }
        if self.account.subaccount_bytes().is_none() {
            return Err(Error::InvalidArgument {
                reason: "a subaccount is 32 bytes".into(),
            });
        }
        Ok(())
    }

    /// The platform's share of `amount`.
    pub fn share(&self, amount: u128) -> u128 {
        // amount * bps / 10_000 without overflow: split amount into quotient and remainder.
        let bps = self.basis_points as u128;
        (amount / 10_000) * bps + (amount % 10_000) * bps / 10_000
    }
}

/// What a pass bought with an offer lasts and costs.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct Offer {
    /// Names the offer in `buy_access` and in receipts: 1 to 32 characters of `a-z 0-9 - _`.
    pub id: String,
    /// Price in the ledger's smallest unit, paid to the owner's default account. The buyer also
    /// pays the ledger's transfer fee, so the approval must cover `price + fee`.
    pub price: Nat,
    /// How long a pass bought with this offer lasts, from the purchase or from the end of the
    /// buyer's current pass, whichever is later (buying again extends). `None`: forever.
    pub duration_seconds: Option<u64>,
}

/// Passes for sale over one ICRC-2 ledger.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct PaidAccess {
    /// The ICRC-2 ledger the prices are in (ICP, ckBTC, ckUSDC, an SNS token...).
    pub ledger: Principal,
    /// 1 to [`MAX_OFFERS`] offers with distinct ids.
    pub offers: Vec<Offer>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum AccessMode {
    /// Anyone may watch (the default).
    Public,
    /// Only the owner, the uploaders and the viewers on the allowlist.
    Private,
    /// The allowlist, plus whoever holds a pass bought from one of the offers.
    Paid(PaidAccess),
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct AccessPolicy {
    pub mode: AccessMode,
    /// The first bytes of the file anyone may watch, whatever the mode: a teaser. Rounded up to
    /// whole upload chunks (the grid HTTP and certification use). `None` or 0: no preview.
    pub preview_bytes: Option<u64>,
    /// Named files anyone may fetch whatever the mode: each entry is a file path
    /// (`/hls/master.m3u8`) or a path prefix ending in `/` (`/hls/480p/`), at most
    /// [`MAX_FREE_PATHS`]. This is how a video offers a free low rendition and sells the
    /// others: the master playlist and `/hls/480p/` free, the rest behind a pass. The main
    /// file is governed by `preview_bytes` only.
    pub free_paths: Option<Vec<String>>,
}

/// Most entries in `AccessPolicy::free_paths`.
pub const MAX_FREE_PATHS: usize = 32;

impl AccessPolicy {
    /// May anyone fetch the named file at `path` (whatever the mode)?
    pub fn is_free_path(&self, path: &str) -> bool {
        self.is_public()
            || self.free_paths.iter().flatten().any(|free| {
                if free.ends_with('/') {
                    path.starts_with(free.as_str())
                } else {
                    path == free
                }
            })
    }
}

impl AccessPolicy {
    pub fn public() -> AccessPolicy {
        AccessPolicy {
            mode: AccessMode::Public,
            preview_bytes: None,
            free_paths: None,
        }
    }

    pub fn is_public(&self) -> bool {
        self.mode == AccessMode::Public
    }

    /// Checks the limits documented on the fields.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Err(Error::InvalidArgument { reason });
        let free = self.free_paths.as_deref().unwrap_or_default();
        if free.len() > MAX_FREE_PATHS {
            return invalid(format!(
                "at most {MAX_FREE_PATHS} free paths, not {}",
                free.len()
            ));
        }
        for path in free {
            // A prefix `/a/b/` is valid when `/a/b` is a valid file path.
            crate::files::validate_path(path.strip_suffix('/').unwrap_or(path)).map_err(|_| {
                Error::InvalidArgument {
                    reason: format!(
                        "free path {path:?} is neither a file path nor a path prefix ending                          in / (segments of A-Z a-z 0-9 . _ ~ -)"
                    ),
                }
            })?;
        }
        if let AccessMode::Paid(paid) = &self.mode {
            if paid.offers.is_empty() || paid.offers.len() > MAX_OFFERS {
                return invalid(format!(
                    "a paid video needs 1 to {MAX_OFFERS} offers, not {}",
                    paid.offers.len()
                ));
            }
            if paid.ledger == Principal::anonymous()
                || paid.ledger == Principal::management_canister()
            {
                return invalid(format!("{} is not a ledger canister", paid.ledger));
            }
            for (i, offer) in paid.offers.iter().enumerate() {
                offer.validate()?;
                if paid.offers[..i].iter().any(|o| o.id == offer.id) {
                    return invalid(format!("two offers are named {:?}", offer.id));
                }
            }
        }
        Ok(())
    }
}

impl Offer {
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Err(Error::InvalidArgument { reason });
        let id_ok = !self.id.is_empty()
            && self.id.len() <= MAX_OFFER_ID_BYTES
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return invalid(format!(
                "offer id {:?} must be 1 to {MAX_OFFER_ID_BYTES} characters of a-z 0-9 - _",
                self.id
            ));
        }
        if self.price.0 == 0u8.into() {
            return invalid(format!(
                "offer {:?} is free: put free viewers on the allowlist instead",
                self.id
            ));
        }
        if u128::try_from(self.price.0.clone()).is_err() {
            return invalid(format!("offer {:?}: price too large", self.id));
        }
        if let Some(d) = self.duration_seconds {
            if !(MIN_PASS_SECONDS..=MAX_PASS_SECONDS).contains(&d) {
                return invalid(format!(
                    "offer {:?}: a pass lasts {MIN_PASS_SECONDS} to {MAX_PASS_SECONDS} seconds, \
                     or forever (no duration)",
                    self.id
                ));
            }
        }
        Ok(())
    }
}

/// `access_policy` answer: the policy, and what it means for this video now.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct AccessInfo {
    pub policy: AccessPolicy,
    /// File bytes `[0, preview_end)` anyone may watch: `preview_bytes` rounded up to the chunk
    /// grid (0 before an upload is declared, the file size for a public video).
    pub preview_end: u64,
    /// Principals on the allowlist.
    pub viewer_count: u32,
    /// Passes sold so far (receipts).
    pub receipt_count: u64,
    /// The platform's share of each sale, if the spawn canister that installed the video set one.
    pub platform_fee: Option<PlatformFee>,
    /// Owner and platform shares of paid sales not paid out yet (with a platform fee only).
    pub payouts_pending: u32,
}

/// Why a principal may watch.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum AccessGrant {
    /// The video is public.
    Public,
    Owner,
    Uploader,
    /// On the owner's allowlist.
    Viewer,
    /// A pass, until `expires_at` (nanoseconds since the epoch; `None`: forever), bought with
    /// the receipt `receipt` (the latest one that extended it).
    Pass {
        expires_at: Option<u64>,
        receipt: u64,
    },
}

/// `my_access` answer.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct MyAccess {
    /// `None`: the caller may watch the preview only.
    pub grant: Option<AccessGrant>,
    pub preview_end: u64,
    /// The caller's purchases whose payment outcome is not known yet (settled by a retry of
    /// `buy_access` with the same `created_at_time`, or by the canister's timer).
    pub pending_purchases: Vec<u64>,
}

/// `viewers` argument: the allowlist in principal order, after `start_after`.
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ViewersArgs {
    pub start_after: Option<Principal>,
    /// Default and maximum [`MAX_VIEWERS_PER_CALL`].
    pub limit: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ViewersPage {
    pub viewers: Vec<Principal>,
    /// Pass as `start_after` for the next page; `None` when this page reached the end.
    pub next: Option<Principal>,
    pub total: u32,
}

/// `buy_access` argument.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct BuyAccessArgs {
    /// The offer's id.
    pub offer: String,
    /// The ledger and price the buyer agreed to (as `access_policy` showed them): if the owner
    /// changed either since, nothing is charged (`PriceChanged`).
    pub ledger: Principal,
    pub price: Nat,
    /// Makes the purchase idempotent: one buyer's calls with the same `created_at_time` are one
    /// purchase, charged at most once (the ledger deduplicates the transfer by it too). A retry
    /// after an unknown outcome returns the receipt, or settles the payment first. Nanoseconds
    /// since the epoch, at most one hour old and one minute ahead of the canister's clock.
    /// `None`: the canister's time (every call is then a new purchase).
    pub created_at_time: Option<u64>,
}

/// `buy_access` error. The ledger's refusals come back as they are; nothing was charged unless
/// the variant says otherwise.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum BuyError {
    /// The canister refused before asking the ledger: not for sale, unknown offer, bad
    /// argument, caller not allowed, a purchase in progress (`Busy`)...
    Refused(Error),
    /// The owner changed the offer (or the ledger) since the buyer looked: here it is now.
    PriceChanged {
        ledger: Principal,
        offer: Offer,
    },
    /// The buyer's approval for this canister is below `price + fee`.
    InsufficientAllowance {
        allowance: Nat,
    },
    InsufficientFunds {
        balance: Nat,
    },
    /// The ledger's fee is not what the canister offered to pay (it passes no fee: this only
    /// comes from ledgers that demand one).
    BadFee {
        expected_fee: Nat,
    },
    TemporarilyUnavailable,
    /// Any other ledger refusal (`TooOld`, `CreatedInFuture`, `GenericError`...), as the ledger
    /// said it.
    LedgerRejected {
        reason: String,
    },
    /// The payment's outcome is not known yet: the ledger did not answer, or the canister was
    /// upgraded while it waited. The purchase is kept; calling `buy_access` again with the same
    /// `created_at_time` (or the canister's own retry timer) settles it. It is charged at most
    /// once, and a pass is granted iff it was.
    Pending {
        purchase: u64,
        reason: String,
    },
}

/// A purchase, as the video canister recorded it. Everything a third party needs to check it
/// against the ledger: block `block_index` of `ledger` is a transfer of `amount` from `buyer`
/// to `paid_to` with this canister as spender, `memo` and `created_at_time`.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct Receipt {
    /// Sequence number of the purchase in this video (0, 1, ...).
    pub id: u64,
    pub video: Principal,
    pub buyer: Principal,
    pub offer: String,
    pub ledger: Principal,
    pub block_index: Nat,
    pub amount: Nat,
    /// The account the buyer paid: the owner's default account when the payment was made, or,
    /// for a video with a platform fee, the video canister's own account (it then pays the
    /// owner of that time and the platform their shares).
    pub paid_to: Account,
    /// The platform's share of `amount`, when the video has a platform fee.
    pub platform_share: Option<Nat>,
    /// The transfer's memo: `receipt_memo(video, id)`.
    pub memo: ByteBuf,
    pub created_at_time: u64,
    /// When the canister learnt of the payment.
    pub paid_at: u64,
    /// The time the pass this purchase bought runs from (later than `paid_at` when it extended
    /// a current pass) and until (`None`: forever).
    pub valid_from: u64,
    pub valid_until: Option<u64>,
}

/// The memo of a purchase's ledger transfer: `"cvid"`, the receipt id (u64 big-endian), then the
/// video canister's principal bytes. At most 4 + 8 + 29 = 41 bytes; canister ids are 10 bytes,
/// so in practice 22 (ICRC ledgers accept 32 by default).
pub fn receipt_memo(video: &Principal, receipt: u64) -> Vec<u8> {
    let mut memo = Vec::with_capacity(22);
    memo.extend_from_slice(b"cvid");
    memo.extend_from_slice(&receipt.to_be_bytes());
    memo.extend_from_slice(video.as_slice());
    memo
}

/// `receipts` argument. A buyer sees their own receipts; the owner sees everyone's (or one
/// buyer's with `buyer`).
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ReceiptsArgs {
    pub buyer: Option<Principal>,
    /// Receipts with ids greater than this.
    pub start_after: Option<u64>,
    /// Default and maximum [`MAX_RECEIPTS_PER_PAGE`].
    pub limit: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ReceiptsPage {
    pub receipts: Vec<Receipt>,
    /// Pass as `start_after` for the next page; `None` at the end.
    pub next: Option<u64>,
}

/// `playback_token` argument.
#[derive(Clone, Debug, Default, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct PlaybackTokenArgs {
    /// Default [`DEFAULT_TOKEN_SECONDS`], at most [`MAX_TOKEN_SECONDS`]. A token never outlives
    /// the pass it was issued under.
    pub ttl_seconds: Option<u32>,
}

/// A bearer credential for `http_request`: whoever has the URL can play the video until
/// `expires_at`, as long as the viewer it was issued to may still watch. Revoked by
/// `revoke_playback_tokens`, or by losing access (an expired pass, removal from the allowlist).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct PlaybackToken {
    pub token: String,
    pub expires_at: u64,
    /// The path to play, token included: `/?token=...` (on `https://<video>.icp0.io`).
    pub path: String,
}

/// A share of a sale the video canister still has to pay out (videos with a platform fee):
/// `pending_payouts`.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct PendingPayout {
    /// The purchase (receipt id) the share comes from.
    pub purchase: u64,
    /// 0: the owner's share, 1: the platform's.
    pub leg: u8,
    pub to: Account,
    /// The share; the transfer sends it less the ledger fee.
    pub amount: Nat,
    /// Transfers sent so far, and why the last one did not settle it.
    pub sends: u32,
    pub last_error: Option<String>,
}

/// `buy_access` result.
pub type BuyResult = std::result::Result<Receipt, BuyError>;
