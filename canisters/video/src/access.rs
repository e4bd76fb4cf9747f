//! Access endpoints: the policy, the allowlist, buying passes over an ICRC-2 ledger, receipts
//! and playback tokens (docs/access.md). They decode, authorise and call
//! [`crate::logic::access`]; `buy_access` and the retry timer are the only code here that awaits.
//!
//! `buy_access`, in order:
//! 1. [`logic::begin_purchase`] checks the offer and price and records the purchase in stable
//!    memory (memo, amount, recipient, `created_at_time`) before any await;
//! 2. `icrc2_transfer_from` buyer → owner on the offer's ledger, with this canister as spender;
//! 3. [`logic::settle_purchase`] applies the answer: a receipt and a pass, a typed refusal, or
//!    — when the answer does not say whether the transfer happened — the record stays, and
//!    sending the identical transfer again later (the buyer's retry with the same
//!    `created_at_time`, or the timer below) lets the ledger's deduplication tell.
//!
//! Every await is a point where state may have changed: step 3 re-reads the record by id and
//! never assumes step 1's view (an owner change in between does not matter: the transfer's
//! recipient is the one recorded in step 1, the owner when the payment was made).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use candid::{Nat, Principal};
use canvid_types::access::{
    receipt_memo, AccessInfo, AccessPolicy, BuyAccessArgs, BuyError, BuyResult, MyAccess,
    PlaybackToken, PlaybackTokenArgs, ReceiptsArgs, ReceiptsPage, ViewersArgs, ViewersPage,
    DEFAULT_TOKEN_SECONDS, MAX_RECEIPTS_PER_PAGE, MAX_TOKEN_SECONDS,
};
use canvid_types::icrc::Account;
use canvid_types::ledger::{TransferArg, TransferError, TransferFromArgs, TransferFromError};
use canvid_types::{Error, Result};
use ic_cdk::api::{canister_self, msg_caller, time};
use ic_cdk::call::Call;
use serde_bytes::ByteBuf;

use crate::guards::{authorize, Action};
use crate::logic::access as logic;
use crate::logic::access::{Begin, LedgerOutcome};
use crate::store::{canister, Purchase};
use crate::updates::authorized;

thread_local! {
    /// Purchases whose ledger call is outstanding, with the time it was sent. Heap only: after
    /// an upgrade no call is outstanding any more. An entry older than [`STALE_CALL_NS`] is
    /// ignored (a trap in the callback may have kept it).
    static IN_CALL: RefCell<BTreeMap<u64, u64>> = const { RefCell::new(BTreeMap::new()) };
    /// Failed purchases of the current minute (`logic::FailureWindow`).
    static FAILURES: std::cell::Cell<logic::FailureWindow> =
        const { std::cell::Cell::new(logic::FailureWindow::EMPTY) };
    /// The retry timer is armed.
    static RETRY_ARMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

const STALE_CALL_NS: u64 = 10 * 60 * 1_000_000_000;
/// How often the timer sends unsettled purchases again.
const RETRY_SECS: u64 = 60;

/// Whether new purchases are accepted now (`logic::MAX_FAILED_PURCHASES_PER_MINUTE`); also
/// `inspect_message`'s test for `buy_access`.
pub fn purchases_open(now: u64) -> bool {
    FAILURES.get().open(now)
}

fn in_call(id: u64, now: u64) -> bool {
    IN_CALL.with_borrow(|m| {
        m.get(&id)
            .is_some_and(|t| now < t.saturating_add(STALE_CALL_NS))
    })
}

/// Clears the in-call mark when the future ends (or is dropped by ic-cdk's cleanup after a
/// trap in the callback), and arms the retry timer then, since the trap rolled back the
/// callback's settlement.
struct CallMark(u64);

impl Drop for CallMark {
    fn drop(&mut self) {
        IN_CALL.with_borrow_mut(|m| m.remove(&self.0));
        if ic_cdk::futures::is_recovering_from_trap() {
            arm_retry();
        }
    }
}

// -------------------------------------------------------------------------------------------
// The ledger (ICRC-2 `icrc2_transfer_from`, as published in ICRC-2.did)
// -------------------------------------------------------------------------------------------

/// Sends purchase `p`'s transfer (always the same bytes for the same purchase) and classifies
/// the answer.
async fn charge(p: &Purchase) -> LedgerOutcome {
    let video = canister_self();
    let args = TransferFromArgs {
        spender_subaccount: None,
        from: Account::of(p.buyer),
        to: p.paid_to.clone(),
        amount: Nat::from(p.amount),
        fee: None,
        memo: Some(ByteBuf::from(receipt_memo(&video, p.id))),
        created_at_time: Some(p.created_at_time),
    };
    let answer = Call::unbounded_wait(p.ledger, "icrc2_transfer_from")
        .with_arg(&args)
        .await;
    let response = match answer {
        Ok(r) => r,
        // A reject does not prove the ledger did nothing (it could have trapped after an inner
        // await, or its answer could have been lost): ask again later.
        Err(e) => return LedgerOutcome::Unknown(format!("the ledger call failed: {e}")),
    };
    match response.candid::<std::result::Result<Nat, TransferFromError>>() {
        Ok(Ok(block_index)) => LedgerOutcome::Paid { block_index },
        Ok(Err(e)) => classify(e, p.sends.saturating_sub(1)),
        Err(e) => LedgerOutcome::Unknown(format!("the ledger's answer did not decode: {e}")),
    }
}

/// What a refusal means. The ledger checks deduplication before balance and allowance, so
/// `InsufficientFunds`/`InsufficientAllowance` prove that no earlier send of the same transfer
/// went through (it would have been a `Duplicate`). The other refusals can come before that
/// check (time window, fee, a ledger busy archiving): after an earlier send whose answer was
/// lost (`earlier_sends > 0`) they say nothing about it, so the purchase stays unsettled.
fn classify(e: TransferFromError, earlier_sends: u32) -> LedgerOutcome {
    use TransferFromError as E;
    let refused = |e| LedgerOutcome::Refused(e);
    let ambiguous = !matches!(
        e,
        E::Duplicate { .. } | E::InsufficientAllowance { .. } | E::InsufficientFunds { .. }
    );
    if earlier_sends > 0 && ambiguous {
        return LedgerOutcome::Unknown(format!(
            "the ledger refused a resend ({e:?}), which does not tell whether the first send              went through: kept, to be sent again (TooOld: check its memo in the ledger's blocks)"
        ));
    }
    match e {
        E::Duplicate { duplicate_of } => LedgerOutcome::Paid {
            block_index: duplicate_of,
        },
        E::InsufficientAllowance { allowance } => {
            refused(BuyError::InsufficientAllowance { allowance })
        }
        E::InsufficientFunds { balance } => refused(BuyError::InsufficientFunds { balance }),
        E::BadFee { expected_fee } => refused(BuyError::BadFee { expected_fee }),
        E::TemporarilyUnavailable => refused(BuyError::TemporarilyUnavailable),
        E::TooOld => refused(BuyError::LedgerRejected {
            reason: "TooOld".into(),
        }),
        E::CreatedInFuture { ledger_time } => refused(BuyError::LedgerRejected {
            reason: format!("CreatedInFuture (ledger time {ledger_time})"),
        }),
        E::BadBurn { min_burn_amount } => refused(BuyError::LedgerRejected {
            reason: format!("BadBurn (min_burn_amount {min_burn_amount})"),
        }),
        E::GenericError {
            error_code,
            message,
        } => refused(BuyError::LedgerRejected {
            reason: format!("GenericError {error_code}: {message}"),
        }),
    }
}

/// Sends purchase `p` to the ledger and applies the answer.
async fn run_purchase(p: Purchase) -> BuyResult {
    let id = p.id;
    let Some(p) = canister::with_mut(|s| logic::record_send(s, id)) else {
        // Settled meanwhile (a concurrent retry or the timer): its receipt.
        return canister::with(|s| s.access().receipt(id)).ok_or_else(|| {
            BuyError::Refused(Error::NotFound {
                what: format!("purchase {id}"),
            })
        });
    };
    IN_CALL.with_borrow_mut(|m| m.insert(p.id, time()));
    let _mark = CallMark(p.id);
    let outcome = charge(&p).await;
    let unknown = matches!(outcome, LedgerOutcome::Unknown(_));
    if !matches!(outcome, LedgerOutcome::Paid { .. }) {
        FAILURES.set(FAILURES.get().fail(time()));
    }
    let out =
        canister::with_mut(|s| logic::settle_purchase(s, canister_self(), p.id, outcome, time()));
    if unknown {
        arm_retry();
    }
    // A paid sale of a video with a platform fee leaves shares to pay out.
    if p.platform_fee.is_some() {
        arm_payouts(Duration::ZERO);
    }
    out
}

// -------------------------------------------------------------------------------------------
// Payouts (videos with a platform fee): `icrc1_transfer` from this canister's account
// -------------------------------------------------------------------------------------------

thread_local! {
    /// The payout loop is running or scheduled.
    static PAYOUTS_ARMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `"cvpo"` · purchase id (u64 BE) · leg (0 owner, 1 platform): 13 bytes.
pub fn payout_memo(purchase: u64, leg: u8) -> Vec<u8> {
    let mut memo = b"cvpo".to_vec();
    memo.extend_from_slice(&purchase.to_be_bytes());
    memo.push(leg);
    memo
}

async fn ledger_fee(ledger: Principal) -> std::result::Result<u128, String> {
    let r = Call::bounded_wait(ledger, "icrc1_fee")
        .await
        .map_err(|e| format!("icrc1_fee failed: {e}"))?;
    let fee: Nat = r
        .candid()
        .map_err(|e| format!("icrc1_fee did not decode: {e}"))?;
    u128::try_from(fee.0).map_err(|_| "the ledger's fee does not fit u128".to_string())
}

/// Sends one payout and applies the outcome.
async fn pay_out(p: crate::store::Payout) {
    use logic::PayoutOutcome as O;
    let settle = |out: O| {
        canister::with_mut(|s| logic::settle_payout(s, p.purchase, p.leg, out));
    };
    let fee = match p.fee {
        Some(f) => f,
        None => match ledger_fee(p.ledger).await {
            Ok(f) => f,
            Err(e) => return settle(O::Retry(e)),
        },
    };
    if p.gross <= fee {
        return settle(O::BelowFee);
    }
    let Some(p) = canister::with_mut(|s| logic::fix_payout(s, p.purchase, p.leg, fee, time()))
    else {
        return;
    };
    let (fee, created_at_time) = (p.fee.unwrap_or(fee), p.created_at_time.unwrap_or(0));
    let arg = TransferArg {
        from_subaccount: None,
        to: p.to.clone(),
        amount: Nat::from(p.gross - fee),
        fee: Some(Nat::from(fee)),
        memo: Some(ByteBuf::from(payout_memo(p.purchase, p.leg))),
        created_at_time: Some(created_at_time),
    };
    let out = match Call::unbounded_wait(p.ledger, "icrc1_transfer")
        .with_arg(&arg)
        .await
    {
        Err(e) => O::Retry(format!("icrc1_transfer failed: {e}")),
        Ok(r) => match r.candid::<std::result::Result<Nat, TransferError>>() {
            Ok(Ok(_)) | Ok(Err(TransferError::Duplicate { .. })) => O::Paid,
            // A new fee means a new transaction, which is safe only if no earlier attempt may
            // have gone through (the ledger checks the fee before deduplicating).
            Ok(Err(TransferError::BadFee { .. })) if p.sends == 1 => O::FeeChanged,
            Ok(Err(e)) => O::Retry(format!("icrc1_transfer refused: {e:?}")),
            Err(e) => O::Retry(format!("icrc1_transfer answer did not decode: {e}")),
        },
    };
    settle(out);
}

/// Pays out every share owed, one transfer at a time; re-arms itself while some fail.
fn arm_payouts(delay: Duration) {
    if PAYOUTS_ARMED.get() {
        return;
    }
    PAYOUTS_ARMED.set(true);
    ic_cdk_timers::set_timer(delay, async {
        // Cleared when the loop ends, or by ic-cdk's cleanup if a callback traps.
        struct Disarm;
        impl Drop for Disarm {
            fn drop(&mut self) {
                PAYOUTS_ARMED.set(false);
                if ic_cdk::futures::is_recovering_from_trap() {
                    arm_payouts(Duration::from_secs(RETRY_SECS));
                }
            }
        }
        let disarm = Disarm;
        let before: Vec<(u64, u8, u32)> = canister::with(|s| s.access().payouts(32))
            .iter()
            .map(|p| (p.purchase, p.leg, p.attempts))
            .collect();
        for (purchase, leg, _) in &before {
            if let Some(p) = canister::with(|s| s.access().payout(*purchase, *leg)) {
                pay_out(p).await;
            }
        }
        drop(disarm);
        // Left: failures (retry in a minute) or more than one batch (go on at once).
        let left = canister::with(|s| s.access().payouts(32));
        if !left.is_empty() {
            let progressed = left
                .iter()
                .any(|p| !before.iter().any(|b| (b.0, b.1) == (p.purchase, p.leg)));
            arm_payouts(if progressed {
                Duration::ZERO
            } else {
                Duration::from_secs(RETRY_SECS)
            });
        }
    });
}

#[ic_cdk::update]
async fn buy_access(args: BuyAccessArgs) -> BuyResult {
    let buyer = msg_caller();
    let now = time();
    let begin = canister::with_mut(|s| {
        logic::begin_purchase(
            s,
            canister_self(),
            buyer,
            &args,
            now,
            purchases_open(now),
            |id| in_call(id, now),
        )
    })?;
    match begin {
        Begin::Settled(receipt) => Ok(receipt),
        Begin::Charge(p) => run_purchase(p).await,
    }
}

/// Sends every unsettled purchase again (one at a time), while any is left.
fn arm_retry() {
    if RETRY_ARMED.get() {
        return;
    }
    RETRY_ARMED.set(true);
    ic_cdk_timers::set_timer(Duration::from_secs(RETRY_SECS), async {
        RETRY_ARMED.set(false);
        let now = time();
        let due: Vec<Purchase> = canister::with(|s| s.access().purchases())
            .into_iter()
            .filter(|p| !in_call(p.id, now) && logic::still_retryable(p, now))
            .collect();
        for p in due {
            // Each call settles or leaves its purchase; its outcome re-arms the timer if needed.
            let _ = run_purchase(p).await;
        }
    });
}

/// `post_upgrade`: a purchase the upgrade cut off from its answer is sent again, and owed
/// shares are paid out.
pub fn after_upgrade() {
    let now = time();
    if canister::with(|s| s.access().payout_count() > 0) {
        arm_payouts(Duration::ZERO);
    }
    if canister::with(|s| {
        s.access()
            .purchases()
            .iter()
            .any(|p| logic::still_retryable(p, now))
    }) {
        arm_retry();
    }
}

// -------------------------------------------------------------------------------------------
// Policy, allowlist, receipts
// -------------------------------------------------------------------------------------------

#[ic_cdk::query]
fn access_policy() -> AccessInfo {
    canister::with(logic::access_info)
}

/// Owner only. Changes who may watch; the stored video is not touched.
#[ic_cdk::update]
fn set_access_policy(policy: AccessPolicy) -> Result<AccessInfo> {
    let info = authorized(Action::OwnerWrite, |s| {
        logic::set_policy(s, policy, time())?;
        Ok(logic::access_info(s))
    })?;
    Ok(info)
}

#[ic_cdk::update]
fn add_viewers(viewers: Vec<Principal>) -> Result<u32> {
    authorized(Action::OwnerWrite, |s| logic::add_viewers(s, &viewers))
}

#[ic_cdk::update]
fn remove_viewers(viewers: Vec<Principal>) -> Result<u32> {
    authorized(Action::OwnerWrite, |s| logic::remove_viewers(s, &viewers))
}

/// Owner only: the allowlist, a page at a time.
#[ic_cdk::query]
fn viewers(args: ViewersArgs) -> Result<ViewersPage> {
    let caller = msg_caller();
    canister::with(|s| {
        authorize(s.state(), &caller, Action::OwnerWrite)?;
        Ok(logic::viewers(s, &args))
    })
}

/// The shares of sales this canister still has to pay out (at most 100, oldest first), and why
/// the last attempt failed: for owners and platforms checking their revenue.
#[ic_cdk::query]
fn pending_payouts() -> Vec<canvid_types::access::PendingPayout> {
    canister::with(|s| {
        s.access()
            .payouts(100)
            .into_iter()
            .map(|p| canvid_types::access::PendingPayout {
                purchase: p.purchase,
                leg: p.leg,
                to: p.to,
                amount: Nat::from(p.gross),
                sends: p.sends,
                last_error: p.last_error,
            })
            .collect()
    })
}

/// The caller's own access.
#[ic_cdk::query]
fn my_access() -> MyAccess {
    let caller = msg_caller();
    canister::with(|s| logic::my_access(s, &caller, time()))
}

/// A buyer's own receipts; the owner's view of everyone's (or of `buyer`'s).
#[ic_cdk::query]
fn receipts(args: ReceiptsArgs) -> Result<ReceiptsPage> {
    let caller = msg_caller();
    canister::with(|s| {
        let buyer = if caller == s.state().owner {
            args.buyer
        } else if args.buyer.is_none_or(|b| b == caller) && caller != Principal::anonymous() {
            Some(caller)
        } else {
            return Err(Error::NotAuthorized {
                caller,
                reason: "a buyer sees their own receipts; the owner sees everyone's".into(),
            });
        };
        let limit = args
            .limit
            .unwrap_or(MAX_RECEIPTS_PER_PAGE)
            .clamp(1, MAX_RECEIPTS_PER_PAGE) as usize;
        let mut receipts = s
            .access()
            .receipts(buyer.as_ref(), args.start_after, limit + 1);
        let next = if receipts.len() > limit {
            receipts.truncate(limit);
            receipts.last().map(|r| r.id)
        } else {
            None
        };
        Ok(ReceiptsPage { receipts, next })
    })
}

// -------------------------------------------------------------------------------------------
// Playback tokens
// -------------------------------------------------------------------------------------------

/// A token for `http_request`, for a caller who may watch now (docs/access.md). The first call
/// of a video draws the signing secret from the IC's randomness.
#[ic_cdk::update]
async fn playback_token(args: PlaybackTokenArgs) -> Result<PlaybackToken> {
    let caller = msg_caller();
    let ttl = args.ttl_seconds.unwrap_or(DEFAULT_TOKEN_SECONDS);
    if !(1..=MAX_TOKEN_SECONDS).contains(&ttl) {
        return Err(Error::InvalidArgument {
            reason: format!("ttl_seconds must be 1 to {MAX_TOKEN_SECONDS}"),
        });
    }
    let may = |now| {
        canister::with(|s| {
            logic::grant(s, &caller, now).ok_or_else(|| Error::NotAuthorized {
                caller,
                reason: "you may not watch this video (yet): buy a pass or ask its owner".into(),
            })
        })
    };
    may(time())?;
    if canister::with(|s| s.state().token_secret.is_none()) {
        let bytes =
            ic_cdk_management_canister::raw_rand()
                .await
                .map_err(|e| Error::CallFailed {
                    method: "raw_rand".into(),
                    target: Principal::management_canister(),
                    reason: e.to_string(),
                })?;
        // Another call may have drawn one meanwhile: the first one stays (tokens signed with
        // it must keep working).
        canister::with_mut(|s| {
            s.mutate_state(|st| {
                if st.token_secret.is_none() {
                    st.token_secret = Some(ByteBuf::from(bytes));
                }
            })
        });
    }
    // After the await: access may have changed.
    let now = time();
    let grant = may(now)?;
    let video = canister_self();
    canister::with(|s| {
        let secret = s.state().token_secret.clone().unwrap_or_default();
        let expires_at = logic::token_expiry(&grant, now, ttl as u64 * 1_000_000_000);
        let epoch = s.access().token_epoch(&caller);
        let token = logic::mint_token(&secret, &video, &caller, expires_at, epoch);
        Ok(PlaybackToken {
            path: format!("/?token={token}"),
            token,
            expires_at,
        })
    })
}

/// Whether `caller` may call `revoke_playback_tokens` for `viewer`: the owner, or a viewer who
/// could hold tokens (`inspect_message` refuses everyone else for free).
pub fn may_revoke<M: ic_stable_structures::Memory>(
    s: &crate::store::VideoStore<M>,
    caller: &Principal,
    viewer: &Principal,
    now: u64,
) -> bool {
    *caller == s.state().owner
        || (caller == viewer
            && (may_request_token(s, viewer, now) || s.access().pass(viewer).is_some()))
}

/// Whether `inspect_message` lets `caller`'s `playback_token` through: a video that is not
/// public (a public one plays without a token, and accepting everyone's calls would let anyone
/// make it pay for ingress) and a caller who may watch it now.
pub fn may_request_token<M: ic_stable_structures::Memory>(
    s: &crate::store::VideoStore<M>,
    caller: &Principal,
    now: u64,
) -> bool {
    !logic::is_public(s.state())
        && *caller != Principal::anonymous()
        && logic::grant(s, caller, now).is_some()
}

/// Voids every playback token issued so far to `viewer` (default: the caller). A viewer may
/// revoke their own; the owner anyone's. Returns the viewer's new token epoch.
#[ic_cdk::update]
fn revoke_playback_tokens(viewer: Option<Principal>) -> Result<u32> {
    let caller = msg_caller();
    let viewer = viewer.unwrap_or(caller);
    canister::with_mut(|s| {
        if caller != viewer {
            authorize(s.state(), &caller, Action::OwnerWrite)?;
        }
        // Only someone who could have been issued tokens has any to void: anyone else would
        // only make the canister store an epoch for them.
        let could_hold = logic::grant(s, &viewer, time()).is_some()
            || s.access().pass(&viewer).is_some()
            || viewer == s.state().owner;
        if viewer == Principal::anonymous() || !could_hold {
            return Err(Error::InvalidArgument {
                reason: format!("{viewer} holds no playback tokens of this video"),
            });
        }
        let epoch = s.access().token_epoch(&viewer).wrapping_add(1);
        s.access_mut().set_token_epoch(&viewer, epoch);
        Ok(epoch)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nat(n: u32) -> Nat {
        Nat::from(n)
    }

    /// A first send's refusals are final; after a send whose answer was lost only the refusals
    /// the ledger gives after its duplicate check are.
    #[test]
    fn refusals_of_a_resend_are_final_only_after_the_duplicate_check() {
        use TransferFromError as E;
        let all = || {
            vec![
                E::BadFee {
                    expected_fee: nat(1),
                },
                E::BadBurn {
                    min_burn_amount: nat(1),
                },
                E::InsufficientFunds { balance: nat(1) },
                E::InsufficientAllowance { allowance: nat(1) },
                E::TooOld,
                E::CreatedInFuture { ledger_time: 1 },
                E::TemporarilyUnavailable,
                E::GenericError {
                    error_code: nat(1),
                    message: "x".into(),
                },
            ]
        };
        for e in all() {
            assert!(matches!(classify(e, 0), LedgerOutcome::Refused(_)));
        }
        for e in all() {
            let final_ = matches!(
                e,
                E::InsufficientFunds { .. } | E::InsufficientAllowance { .. }
            );
            let out = classify(e, 1);
            assert_eq!(matches!(out, LedgerOutcome::Refused(_)), final_, "{out:?}");
            assert_eq!(matches!(out, LedgerOutcome::Unknown(_)), !final_, "{out:?}");
        }
        for earlier in [0, 3] {
            assert_eq!(
                classify(
                    E::Duplicate {
                        duplicate_of: nat(7)
                    },
                    earlier
                ),
                LedgerOutcome::Paid {
                    block_index: nat(7)
                }
            );
        }
    }
}
