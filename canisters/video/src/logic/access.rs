//! Who may watch, purchases as a state machine, and playback tokens: plain decisions over the
//! [`VideoStore`], unit-tested natively. The endpoints and the ledger calls are in
//! `crate::access`; docs/access.md explains the design.
//!
//! A purchase is recorded ([`begin_purchase`]) before the ledger is called, and the ledger's
//! answer is applied by [`settle_purchase`]. An answer that does not say whether the transfer
//! happened (a reject, an upgrade that dropped the callback) leaves the record; sending the
//! *same* `icrc2_transfer_from` again (same memo, amount and `created_at_time`) is safe because
//! the ledger deduplicates it and answers `Duplicate { duplicate_of }` if the first went
//! through. So a purchase is charged at most once, and a pass exists iff it was charged.

use candid::{Nat, Principal};
use canvid_types::access::{
    receipt_memo, AccessGrant, AccessInfo, AccessMode, AccessPolicy, BuyAccessArgs, BuyError,
    MyAccess, Receipt, ViewersArgs, ViewersPage, MAX_FAILED_PURCHASES_PER_MINUTE,
    MAX_PURCHASE_AGE_NS, MAX_PURCHASE_DRIFT_NS, MAX_VIEWERS, MAX_VIEWERS_PER_CALL,
};
use canvid_types::icrc::Account;
use canvid_types::video::VideoStatus;
use canvid_types::{Error, Result};
use hmac::{Hmac, Mac};
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;
use sha2::Sha256;

use crate::store::access::{LEG_OWNER, LEG_PLATFORM};
use crate::store::{Pass, Payout, Purchase, State, VideoStore};

/// Most purchases waiting for the ledger at once: bounds the retry timer's work and what a
/// flood of purchases from fresh principals can pin.
pub const MAX_PENDING_PURCHASES: usize = 64;

pub fn policy(s: &State) -> AccessPolicy {
    s.access.clone().unwrap_or_else(AccessPolicy::public)
}

/// The stored policy, read in place (`None`: public); for per-request checks.
pub fn policy_ref(s: &State) -> Option<&AccessPolicy> {
    s.access.as_ref()
}

pub fn is_public(s: &State) -> bool {
    s.access.as_ref().is_none_or(|p| p.is_public())
}

/// File bytes `[0, preview_end)` anyone may read: the whole file of a public video, else the
/// preview rounded up to whole upload chunks.
pub fn preview_end(s: &State) -> u64 {
    let Some(u) = &s.upload else { return 0 };
    if is_public(s) {
        return u.total_size;
    }
    // Read in place: this runs for every HTTP request of a gated video.
    let asked = s.access.as_ref().and_then(|p| p.preview_bytes).unwrap_or(0);
    if asked == 0 {
        return 0;
    }
    let chunk = u.chunk_size.max(1) as u64;
    asked
        .div_ceil(chunk)
        .saturating_mul(chunk)
        .min(u.total_size)
}

/// Why `who` may watch at `now`, if they may.
pub fn grant<M: Memory>(v: &VideoStore<M>, who: &Principal, now: u64) -> Option<AccessGrant> {
    let s = v.state();
    if *who == s.owner {
        return Some(AccessGrant::Owner);
    }
    if s.uploaders.contains(who) {
        return Some(AccessGrant::Uploader);
    }
    if is_public(s) {
        return Some(AccessGrant::Public);
    }
    if *who == Principal::anonymous() {
        return None;
    }
    if v.access().is_viewer(who) {
        return Some(AccessGrant::Viewer);
    }
    // A pass bought while the video was paid stays valid if the owner makes it private later:
    // the buyer paid for it.
    match v.access().pass(who) {
        Some(Pass {
            expires_at,
            receipt,
        }) if expires_at.is_none_or(|e| now < e) => Some(AccessGrant::Pass {
            expires_at,
            receipt,
        }),
        _ => None,
    }
}

/// May `who` read file bytes ending at `end` (exclusive) at `now`? Everything below
/// [`preview_end`] is public. (The upload status is checked by `guards::authorize` first.)
pub fn check_read<M: Memory>(v: &VideoStore<M>, who: &Principal, now: u64, end: u64) -> Result<()> {
    if end <= preview_end(v.state()) || grant(v, who, now).is_some() {
        return Ok(());
    }
    Err(Error::NotAuthorized {
        caller: *who,
        reason: format!(
            "this video is {}: only its first {} bytes (the preview) are public",
            match policy(v.state()).mode {
                AccessMode::Paid(_) => "paid (buy a pass with buy_access)",
                _ => "private",
            },
            preview_end(v.state())
        ),
    })
}

/// May `who` read the named file at `path` at `now`? Free paths (`AccessPolicy::free_paths`)
/// are public; the others need what the main file past its preview needs.
pub fn check_read_path<M: Memory>(
    v: &VideoStore<M>,
    who: &Principal,
    now: u64,
    path: &str,
) -> Result<()> {
    if policy_ref(v.state()).is_none_or(|p| p.is_free_path(path)) || grant(v, who, now).is_some() {
        return Ok(());
    }
    Err(Error::NotAuthorized {
        caller: *who,
        reason: format!(
            "this video is {}: {path} is not one of its free paths",
            match policy(v.state()).mode {
                AccessMode::Paid(_) => "paid (buy a pass with buy_access)",
                _ => "private",
            },
        ),
    })
}

pub fn access_info<M: Memory>(v: &VideoStore<M>) -> AccessInfo {
    AccessInfo {
        policy: policy(v.state()),
        preview_end: preview_end(v.state()),
        viewer_count: v.access().viewer_count(),
        receipt_count: v.access().receipt_count(),
        platform_fee: v.state().platform_fee.clone(),
        payouts_pending: v.access().payout_count(),
    }
}

pub fn my_access<M: Memory>(v: &VideoStore<M>, who: &Principal, now: u64) -> MyAccess {
    MyAccess {
        grant: grant(v, who, now),
        preview_end: preview_end(v.state()),
        pending_purchases: v
            .access()
            .purchases()
            .into_iter()
            .filter(|p| p.buyer == *who)
            .map(|p| p.id)
            .collect(),
    }
}

/// Owner only (checked by the endpoint). Touches no chunk: only the state cell.
pub fn set_policy<M: Memory>(v: &mut VideoStore<M>, policy: AccessPolicy, now: u64) -> Result<()> {
    policy.validate()?;
    v.update_state(|s| {
        s.access = Some(policy);
        s.updated_at = now;
        Ok(())
    })
}

fn check_viewer_list(list: &[Principal]) -> Result<()> {
    if list.len() > MAX_VIEWERS_PER_CALL {
        return Err(Error::TooLarge {
            size: list.len() as u64,
            limit: MAX_VIEWERS_PER_CALL as u64,
        });
    }
    if list.contains(&Principal::anonymous()) {
        return Err(Error::InvalidArgument {
            reason: "the anonymous principal cannot be a viewer: make the video public instead"
                .into(),
        });
    }
    Ok(())
}

/// Adds viewers; all or none (the list is checked first). Returns the allowlist's size.
pub fn add_viewers<M: Memory>(v: &mut VideoStore<M>, list: &[Principal]) -> Result<u32> {
    check_viewer_list(list)?;
    let mut fresh: Vec<Principal> = list
        .iter()
        .filter(|p| !v.access().is_viewer(p))
        .copied()
        .collect();
    fresh.sort();
    fresh.dedup();
    let total = v.access().viewer_count() + fresh.len() as u32;
    if total > MAX_VIEWERS {
        return Err(Error::TooLarge {
            size: total as u64,
            limit: MAX_VIEWERS as u64,
        });
    }
    v.access_mut().add_viewers(&fresh);
    Ok(total)
}

/// Removes viewers (absent ones are ignored) and voids the playback tokens they hold. Returns
/// the allowlist's size.
pub fn remove_viewers<M: Memory>(v: &mut VideoStore<M>, list: &[Principal]) -> Result<u32> {
    check_viewer_list(list)?;
    for p in v.access_mut().remove_viewers(list) {
        // Void the tokens issued so far: adding the viewer back must not revive them.
        let epoch = v.access().token_epoch(&p).wrapping_add(1);
        v.access_mut().set_token_epoch(&p, epoch);
    }
    Ok(v.access().viewer_count())
}

pub fn viewers<M: Memory>(v: &VideoStore<M>, args: &ViewersArgs) -> ViewersPage {
    let limit = args
        .limit
        .map_or(MAX_VIEWERS_PER_CALL, |l| l as usize)
        .clamp(1, MAX_VIEWERS_PER_CALL);
    // One more than the page tells whether there is a next page.
    let mut viewers = v.access().viewers(args.start_after.as_ref(), limit + 1);
    let next = if viewers.len() > limit {
        viewers.truncate(limit);
        viewers.last().copied()
    } else {
        None
    };
    ViewersPage {
        viewers,
        next,
        total: v.access().viewer_count(),
    }
}

// -------------------------------------------------------------------------------------------
// Purchases
// -------------------------------------------------------------------------------------------

const FAILURE_WINDOW_NS: u64 = 60_000_000_000;

/// Failed purchases in the current one-minute window (kept on the heap: an upgrade resets it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureWindow {
    start: u64,
    failed: u32,
}

impl FailureWindow {
    pub const EMPTY: FailureWindow = FailureWindow {
        start: 0,
        failed: 0,
    };

    fn current(self, now: u64) -> FailureWindow {
        if now.saturating_sub(self.start) >= FAILURE_WINDOW_NS {
            FailureWindow {
                start: now,
                failed: 0,
            }
        } else {
            self
        }
    }

    /// May a new purchase start at `now`?
    pub fn open(self, now: u64) -> bool {
        self.current(now).failed < MAX_FAILED_PURCHASES_PER_MINUTE
    }

    /// Counts one failed purchase at `now`.
    pub fn fail(self, now: u64) -> FailureWindow {
        let c = self.current(now);
        FailureWindow {
            failed: c.failed.saturating_add(1),
            ..c
        }
    }
}

/// What [`begin_purchase`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// This purchase was paid already (a retry with the same `created_at_time`).
    Settled(Receipt),
    /// Call the ledger with this purchase (new, or one whose outcome is not known yet).
    Charge(Purchase),
}

fn refused(e: Error) -> BuyError {
    BuyError::Refused(e)
}

/// Step 1 of `buy_access`: checks, and records the purchase before the ledger is called.
/// `in_call(id)` says whether a call for purchase `id` is waiting for the ledger right now.
/// `video` is this canister (the escrow account when the video has a platform fee); `open`:
/// the [`FailureWindow`] admits new purchases (a purchase already recorded is answered or
/// resent whatever it says).
#[allow(clippy::too_many_arguments)]
pub fn begin_purchase<M: Memory>(
    v: &mut VideoStore<M>,
    video: Principal,
    buyer: Principal,
    args: &BuyAccessArgs,
    now: u64,
    open: bool,
    in_call: impl Fn(u64) -> bool,
) -> std::result::Result<Begin, BuyError> {
    if buyer == Principal::anonymous() {
        return Err(refused(Error::NotAuthorized {
            caller: buyer,
            reason: "the anonymous principal cannot buy: sign in".into(),
        }));
    }
    let created_at_time = args.created_at_time.unwrap_or(now);
    // A purchase made before is answered first, however old: its receipt, or a resend.
    if let Some(id) = v.access().purchase_by_time(&buyer, created_at_time) {
        if let Some(r) = v.access().receipt(id) {
            return Ok(Begin::Settled(r));
        }
        if let Some(p) = v.access().purchase(id) {
            if in_call(id) {
                return Err(refused(Error::Busy {
                    reason: format!("purchase {id} is waiting for the ledger"),
                }));
            }
            return Ok(Begin::Charge(p));
        }
    }
    if created_at_time.saturating_add(MAX_PURCHASE_AGE_NS) < now
        || created_at_time > now.saturating_add(MAX_PURCHASE_DRIFT_NS)
    {
        return Err(refused(Error::InvalidArgument {
            reason: format!(
                "created_at_time {created_at_time} is more than an hour old or more than a \
                 minute ahead of the canister's clock ({now})"
            ),
        }));
    }
    if !open {
        return Err(refused(Error::Busy {
            reason: format!(
                "more than {MAX_FAILED_PURCHASES_PER_MINUTE} purchases of this video failed in the \
                 last minute: retry in a minute"
            ),
        }));
    }
    let s = v.state();
    if buyer == s.owner {
        return Err(refused(Error::InvalidArgument {
            reason: "the owner may watch already".into(),
        }));
    }
    if s.status() != VideoStatus::Ready {
        return Err(refused(Error::NotReady {
            reason: "passes are sold once the upload is finished".into(),
        }));
    }
    let AccessMode::Paid(paid) = policy(s).mode else {
        return Err(refused(Error::InvalidArgument {
            reason: "this video is not for sale (its access mode is not Paid)".into(),
        }));
    };
    let Some(offer) = paid.offers.iter().find(|o| o.id == args.offer).cloned() else {
        return Err(refused(Error::NotFound {
            what: format!("offer {:?}", args.offer),
        }));
    };
    if paid.ledger != args.ledger || offer.price != args.price {
        return Err(BuyError::PriceChanged {
            ledger: paid.ledger,
            offer,
        });
    }
    let pending = v.access().purchases();
    if pending.len() >= MAX_PENDING_PURCHASES {
        return Err(refused(Error::Busy {
            reason: "too many purchases are waiting for the ledger: retry in a minute".into(),
        }));
    }
    if pending.iter().any(|p| p.buyer == buyer && in_call(p.id)) {
        return Err(refused(Error::Busy {
            reason: "another purchase of yours is waiting for the ledger".into(),
        }));
    }
    // `Offer::validate` keeps prices within u128.
    let amount = u128::try_from(offer.price.0.clone()).unwrap_or(u128::MAX);
    let platform_fee = s.platform_fee.clone();
    // One transfer_from pays one account: with a platform fee, this canister's, which pays the
    // shares out (`PlatformFee`).
    let paid_to = match &platform_fee {
        Some(_) => Account::of(video),
        None => Account::of(s.owner),
    };
    let id = v.mutate_state(|s| {
        let id = s.next_purchase.unwrap_or(0);
        s.next_purchase = Some(id + 1);
        id
    });
    let purchase = Purchase {
        id,
        buyer,
        offer,
        ledger: paid.ledger,
        amount,
        paid_to,
        platform_fee,
        created_at_time,
        started_at: now,
        sends: 0,
        attempts: 0,
        last_error: None,
    };
    v.access_mut().put_purchase(&purchase);
    v.access_mut()
        .set_purchase_by_time(&buyer, created_at_time, id);
    Ok(Begin::Charge(purchase))
}

/// What the ledger said about a purchase's transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerOutcome {
    /// The transfer is in block `block_index` (a fresh one, or the earlier duplicate).
    Paid { block_index: Nat },
    /// The ledger refused: nothing was transferred.
    Refused(BuyError),
    /// Not known whether the transfer happened: keep the purchase, send it again later.
    Unknown(String),
}

/// Step 2 of `buy_access` (and of the retry timer): applies the ledger's answer.
pub fn settle_purchase<M: Memory>(
    v: &mut VideoStore<M>,
    video: Principal,
    id: u64,
    outcome: LedgerOutcome,
    now: u64,
) -> std::result::Result<Receipt, BuyError> {
    let Some(mut p) = v.access().purchase(id) else {
        // Settled meanwhile (the timer and a retry raced): the receipt says how.
        return v.access().receipt(id).ok_or_else(|| {
            refused(Error::NotFound {
                what: format!("purchase {id}"),
            })
        });
    };
    match outcome {
        LedgerOutcome::Paid { block_index } => {
            let current = v.access().pass(&p.buyer);
            // Buying again extends: from the end of a pass that still runs.
            let valid_from = match current {
                Some(Pass {
                    expires_at: Some(e),
                    ..
                }) if e > now => e,
                _ => now,
            };
            let forever_already = matches!(
                current,
                Some(Pass {
                    expires_at: None,
                    ..
                })
            );
            let valid_until = match p.offer.duration_seconds {
                _ if forever_already => None,
                None => None,
                Some(d) => Some(valid_from.saturating_add(d.saturating_mul(1_000_000_000))),
            };
            let receipt = Receipt {
                id,
                video,
                buyer: p.buyer,
                offer: p.offer.id.clone(),
                ledger: p.ledger,
                block_index,
                amount: Nat::from(p.amount),
                paid_to: p.paid_to.clone(),
                platform_share: p
                    .platform_fee
                    .as_ref()
                    .map(|f| Nat::from(f.share(p.amount))),
                memo: ByteBuf::from(receipt_memo(&video, id)),
                created_at_time: p.created_at_time,
                paid_at: now,
                valid_from,
                valid_until,
            };
            let a = v.access_mut();
            a.add_receipt(&receipt);
            a.set_pass(
                &p.buyer,
                Pass {
                    expires_at: valid_until,
                    receipt: id,
                },
            );
            a.remove_purchase(id);
            if let Some(fee) = &p.platform_fee {
                // The money is in this canister's account: owe the owner of this moment and the
                // platform their shares.
                let platform = fee.share(p.amount);
                let owner = Account::of(v.state().owner);
                for (leg, to, gross) in [
                    (LEG_OWNER, owner, p.amount - platform),
                    (LEG_PLATFORM, fee.account.clone(), platform),
                ] {
                    if gross > 0 {
                        v.access_mut().put_payout(&Payout {
                            purchase: id,
                            leg,
                            ledger: p.ledger,
                            to,
                            gross,
                            fee: None,
                            created_at_time: None,
                            sends: 0,
                            attempts: 0,
                            last_error: None,
                        });
                    }
                }
            }
            Ok(receipt)
        }
        LedgerOutcome::Refused(e) => {
            let a = v.access_mut();
            a.remove_purchase(id);
            // The same `created_at_time` may be tried again (e.g. after a larger approval).
            a.forget_purchase_by_time(&p.buyer, p.created_at_time);
            Err(e)
        }
        LedgerOutcome::Unknown(reason) => {
            p.attempts = p.attempts.saturating_add(1);
            p.last_error = Some(reason.clone());
            v.access_mut().put_purchase(&p);
            Err(BuyError::Pending {
                purchase: id,
                reason,
            })
        }
    }
}

/// What the ledger said about a payout's `icrc1_transfer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayoutOutcome {
    /// Done (a fresh block, or the earlier duplicate).
    Paid,
    /// The share does not exceed the ledger's fee: nothing to send; it stays in this
    /// canister's account.
    BelowFee,
    /// The ledger wants another fee: quote again and send a new transaction (the old one was
    /// refused, so it cannot also happen).
    FeeChanged,
    /// Refused or unknown: try the same transaction again later.
    Retry(String),
}

/// Before a payout's transfer is sent: fixes the fee and time it is sent with (at the first
/// send; resends are the same transaction) and counts the send.
pub fn fix_payout<M: Memory>(
    v: &mut VideoStore<M>,
    purchase: u64,
    leg: u8,
    fee: u128,
    now: u64,
) -> Option<Payout> {
    let mut p = v.access().payout(purchase, leg)?;
    if p.fee.is_none() {
        p.fee = Some(fee);
        p.created_at_time = Some(now);
    }
    p.sends = p.sends.saturating_add(1);
    v.access_mut().put_payout(&p);
    Some(p)
}

/// Before a purchase's transfer is sent: counts the send (see `Purchase::sends`). `None`: the
/// purchase was settled meanwhile.
pub fn record_send<M: Memory>(v: &mut VideoStore<M>, id: u64) -> Option<Purchase> {
    let mut p = v.access().purchase(id)?;
    p.sends = p.sends.saturating_add(1);
    v.access_mut().put_purchase(&p);
    Some(p)
}

/// Applies a payout's outcome.
pub fn settle_payout<M: Memory>(v: &mut VideoStore<M>, purchase: u64, leg: u8, out: PayoutOutcome) {
    let Some(mut p) = v.access().payout(purchase, leg) else {
        return;
    };
    match out {
        PayoutOutcome::Paid | PayoutOutcome::BelowFee => {
            v.access_mut().remove_payout(purchase, leg)
        }
        PayoutOutcome::FeeChanged => {
            p.fee = None;
            p.created_at_time = None;
            v.access_mut().put_payout(&p);
        }
        PayoutOutcome::Retry(reason) => {
            p.attempts = p.attempts.saturating_add(1);
            p.last_error = Some(reason);
            v.access_mut().put_payout(&p);
        }
    }
}

/// Whether the retry timer should still send purchase `p` again at `now`: the ledger
/// deduplicates for 24 hours from `created_at_time`; past 23 hours the outcome can no longer be
/// learnt by sending it again, and the record stays for a person to check (docs/access.md).
pub fn still_retryable(p: &Purchase, now: u64) -> bool {
    now < p.created_at_time.saturating_add(23 * 3600 * 1_000_000_000)
}

// -------------------------------------------------------------------------------------------
// Playback tokens
// -------------------------------------------------------------------------------------------

const TOKEN_VERSION: u8 = 1;
const MAC_BYTES: usize = 16;

fn mac(secret: &[u8], video: &Principal, body: &[u8]) -> [u8; MAC_BYTES] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(b"canvid playback token");
    m.update(&[video.as_slice().len() as u8]);
    m.update(video.as_slice());
    m.update(body);
    let full = m.finalize().into_bytes();
    let mut out = [0u8; MAC_BYTES];
    out.copy_from_slice(&full[..MAC_BYTES]);
    out
}

/// A token: base64url (no padding) of `version (1) · viewer length (1) · viewer · expires_at
/// (u64 BE) · epoch (u32 BE) · HMAC-SHA256(secret, context · video · all of the above)[..16]`.
/// Nothing is stored per token: the viewer's epoch (bumped by `revoke_playback_tokens`) and
/// their access at the time of each request decide whether it still works.
pub fn mint_token(
    secret: &[u8],
    video: &Principal,
    viewer: &Principal,
    expires_at: u64,
    epoch: u32,
) -> String {
    use base64::Engine;
    let v = viewer.as_slice();
    let mut body = vec![TOKEN_VERSION, v.len() as u8];
    body.extend_from_slice(v);
    body.extend_from_slice(&expires_at.to_be_bytes());
    body.extend_from_slice(&epoch.to_be_bytes());
    let tag = mac(secret, video, &body);
    body.extend_from_slice(&tag);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body)
}

/// The viewer, expiry and epoch a token names, if its MAC is right.
pub fn read_token(secret: &[u8], video: &Principal, token: &str) -> Option<(Principal, u64, u32)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let (&version, rest) = bytes.split_first()?;
    let (&n, rest) = rest.split_first()?;
    let n = n as usize;
    if version != TOKEN_VERSION || n > 29 || rest.len() != n + 8 + 4 + MAC_BYTES {
        return None;
    }
    let body_len = 2 + n + 12;
    let expected = mac(secret, video, &bytes[..body_len]);
    // Constant time: a byte-by-byte early exit would let an attacker time their way to a MAC.
    let diff = expected
        .iter()
        .zip(&bytes[body_len..])
        .fold(0u8, |d, (a, b)| d | (a ^ b));
    if diff != 0 {
        return None;
    }
    let viewer = Principal::try_from_slice(&rest[..n]).ok()?;
    let mut e = [0u8; 8];
    e.copy_from_slice(&rest[n..n + 8]);
    let mut ep = [0u8; 4];
    ep.copy_from_slice(&rest[n + 8..n + 12]);
    Some((viewer, u64::from_be_bytes(e), u32::from_be_bytes(ep)))
}

/// What a request's playback token is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    NoToken,
    /// Unknown, forged, expired, revoked, or its viewer may no longer watch.
    Denied,
    Allowed,
}

/// What `http_request` makes of a request's token for a video that is not public.
pub fn check_token<M: Memory>(
    v: &VideoStore<M>,
    video: &Principal,
    token: Option<&str>,
    now: u64,
) -> TokenCheck {
    use TokenCheck as Viewer;
    let Some(token) = token else {
        return Viewer::NoToken;
    };
    let Some(secret) = v.state().token_secret.as_ref() else {
        return Viewer::Denied;
    };
    match read_token(secret, video, token) {
        Some((viewer, expires_at, epoch))
            if now < expires_at
                && epoch == v.access().token_epoch(&viewer)
                && grant(v, &viewer, now).is_some() =>
        {
            Viewer::Allowed
        }
        _ => Viewer::Denied,
    }
}

/// When a token issued now for `grant` should expire: after `ttl_ns`, and never after the pass
/// it is issued under.
pub fn token_expiry(grant: &AccessGrant, now: u64, ttl_ns: u64) -> u64 {
    let wanted = now.saturating_add(ttl_ns);
    match grant {
        AccessGrant::Pass {
            expires_at: Some(e),
            ..
        } => wanted.min(*e),
        _ => wanted,
    }
}

#[cfg(test)]
mod tests;
