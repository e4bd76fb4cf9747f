//! A test-only NFT marketplace (fixture of `tests/tests/nft.rs`): it sells canvid videos — tokens
//! of the index canister's ICRC-7 collection — for tokens of a real ICRC-2 ledger, the way a
//! marketplace on the IC would, using only the published standards (no canvid-specific call).
//!
//! - `list(token_id, price)`: the caller must hold the token (`icrc7_owner_of`) and have approved
//!   this canister for it (`icrc37_is_approved`, after `icrc37_approve_tokens` or
//!   `icrc37_approve_collection`); the price must exceed the ledger fee (the seller is paid
//!   `price - fee`).
//! - `buy(token_id)`, an escrow sale: the buyer approved this canister on the ledger beforehand
//!   (`icrc2_approve`, at least `price + fee`);
//!   1. `icrc2_transfer_from` buyer → this canister's account, `price` (the buyer also pays the
//!      ledger fee);
//!   2. `icrc37_transfer_from` seller → buyer on the collection (which moves the video canister);
//!   3. on `Ok`, `icrc1_transfer` of `price - fee` to the seller; on `Err`, the same amount back
//!      to the buyer, and the listing is withdrawn (its approval or the video is not good for a
//!      sale any more).
//!
//! Safe across awaits: `buy` marks the listing in progress before its first await, so a second
//! buyer is refused (`NotAvailable`) while the first sale runs, and `list` refuses a token whose
//! sale is in progress. Calls use unbounded waits: their answers are the real outcomes, never
//! "unknown" (a sale must not be settled on a guess); a rejected collection call is resolved from
//! `icrc7_owner_of`.
//!
//! `relay_transfer_from` passes one `icrc37_transfer_from` request through as this canister (no
//! check, no ledger): tests use it to see what the collection lets this spender do.

use candid::{CandidType, Deserialize, Nat, Principal};
use canvid_types::icrc::{Account, TransferFromArg, TransferFromError};

pub mod types {
    //! The marketplace's candid interface.
    use super::*;

    /// Install argument.
    #[derive(Clone, Debug, CandidType, Deserialize)]
    pub struct MarketInit {
        /// The ICRC-7/37 collection (canvid's index canister).
        pub collection: Principal,
        /// The ICRC-2 ledger prices are paid in.
        pub ledger: Principal,
    }

    #[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
    pub enum ListingState {
        Open,
        /// A `buy` by `buyer` is running.
        InProgress {
            buyer: Principal,
        },
        Sold {
            buyer: Principal,
            /// The collection's block of the transfer (`None`: its answer was lost, the
            /// collection showed the buyer holding the token).
            transfer_block: Option<Nat>,
            /// The ledger block paying the seller.
            payout_block: Nat,
        },
    }

    #[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
    pub struct Listing {
        pub token_id: Nat,
        pub seller: Principal,
        pub price: Nat,
        /// The ledger fee when listed: the seller receives `price - fee`.
        pub fee: Nat,
        pub state: ListingState,
    }

    #[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
    pub struct Sale {
        /// `None`: the collection's answer was lost; it showed the buyer holding the token.
        pub transfer_block: Option<Nat>,
        pub payment_block: Nat,
        pub payout_block: Nat,
        /// What the seller received: `price - fee`.
        pub paid_to_seller: Nat,
    }

    #[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
    pub enum MarketError {
        /// The collection has no such token.
        NonExistingToken,
        /// The caller does not hold the token.
        NotHolder { holder: Option<Account> },
        /// The collection does not show this marketplace approved for the token.
        NotApproved,
        /// The price does not exceed the ledger fee.
        PriceTooLow { fee: Nat },
        /// The token is not listed.
        NotListed,
        /// The listing is being bought or was sold.
        NotAvailable { state: ListingState },
        /// The seller cannot buy their own listing.
        OwnListing,
        /// The ledger refused the payment (`icrc2_transfer_from`): nothing happened.
        PaymentRefused { error: String },
        /// The collection refused the transfer: the buyer was refunded `price - fee` (block
        /// `refund_block`, or why the refund failed) and the listing is withdrawn.
        TransferRefused {
            error: TransferFromError,
            refund_block: Result<Nat, String>,
        },
        /// The video moved to the buyer but paying the seller failed; the funds stay here.
        PayoutFailed {
            transfer_block: Option<Nat>,
            error: String,
        },
        /// A call failed before anything moved.
        CallFailed { method: String, reason: String },
    }

    pub type ListResult = Result<Listing, MarketError>;
    pub type BuyResult = Result<Sale, MarketError>;
}

pub use types::*;

// ---------------------------------------------------------------------------------------------
// Ledger (ICRC-1/2) types, as DFINITY's ledger declares them
// ---------------------------------------------------------------------------------------------

// The ICRC-1/2 calls are `canvid_types::ledger`'s (TransferFromArgs, TransferArg, their errors).
use canvid_types::ledger::{
    TransferArg, TransferError as LedgerTransferError, TransferFromArgs,
    TransferFromError as LedgerTransferFromError,
};

mod canister {
    use super::*;
    use canvid_types::icrc::{IsApprovedArg, TransferFromResult};
    use ic_cdk::api::{canister_self, msg_caller};
    use ic_cdk::call::Call;
    use ic_cdk::{init, query, update};
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct State {
        collection: Option<Principal>,
        ledger: Option<Principal>,
        listings: BTreeMap<Nat, Listing>,
    }

    thread_local! {
        static STATE: RefCell<State> = RefCell::default();
    }

    fn ids() -> (Principal, Principal) {
        STATE.with(|s| {
            let s = s.borrow();
            (
                s.collection.expect("initialised"),
                s.ledger.expect("initialised"),
            )
        })
    }

    fn with_listing<T>(token_id: &Nat, f: impl FnOnce(&mut Option<Listing>) -> T) -> T {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            let mut entry = s.listings.remove(token_id);
            let out = f(&mut entry);
            if let Some(l) = entry {
                s.listings.insert(token_id.clone(), l);
            }
            out
        })
    }

    #[init]
    fn init(arg: MarketInit) {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            s.collection = Some(arg.collection);
            s.ledger = Some(arg.ledger);
        });
    }

    async fn call<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
        target: Principal,
        method: &str,
        arg: A,
    ) -> Result<R, MarketError> {
        let failed = |reason: String| MarketError::CallFailed {
            method: method.into(),
            reason,
        };
        let response = Call::unbounded_wait(target, method)
            .with_arg(arg)
            .await
            .map_err(|e| failed(e.to_string()))?;
        response.candid::<R>().map_err(|e| failed(e.to_string()))
    }

    async fn holder_of(
        collection: Principal,
        token_id: &Nat,
    ) -> Result<Option<Account>, MarketError> {
        let owners: Vec<Option<Account>> =
            call(collection, "icrc7_owner_of", vec![token_id.clone()]).await?;
        Ok(owners.into_iter().next().flatten())
    }

    #[update]
    async fn list(token_id: Nat, price: Nat) -> ListResult {
        let caller = msg_caller();
        let (collection, ledger) = ids();
        let holder = holder_of(collection, &token_id)
            .await?
            .ok_or(MarketError::NonExistingToken)?;
        if holder.normalized() != Account::of(caller) {
            return Err(MarketError::NotHolder {
                holder: Some(holder),
            });
        }
        let approved: Vec<bool> = call(
            collection,
            "icrc37_is_approved",
            vec![IsApprovedArg {
                spender: Account::of(canister_self()),
                from_subaccount: None,
                token_id: token_id.clone(),
            }],
        )
        .await?;
        if approved != [true] {
            return Err(MarketError::NotApproved);
        }
        let fee: Nat = call(ledger, "icrc1_fee", ()).await?;
        if price <= fee {
            return Err(MarketError::PriceTooLow { fee });
        }
        // After the awaits: a sale may have started meanwhile.
        with_listing(&token_id, |entry| {
            if let Some(l) = entry {
                if matches!(l.state, ListingState::InProgress { .. }) {
                    return Err(MarketError::NotAvailable {
                        state: l.state.clone(),
                    });
                }
            }
            let listing = Listing {
                token_id: token_id.clone(),
                seller: caller,
                price,
                fee,
                state: ListingState::Open,
            };
            *entry = Some(listing.clone());
            Ok(listing)
        })
    }

    #[update]
    async fn buy(token_id: Nat) -> BuyResult {
        let buyer = msg_caller();
        let (collection, ledger) = ids();
        // Checks and the mark, before the first await.
        let listing = with_listing(&token_id, |entry| {
            let l = entry.as_mut().ok_or(MarketError::NotListed)?;
            if l.state != ListingState::Open {
                return Err(MarketError::NotAvailable {
                    state: l.state.clone(),
                });
            }
            if l.seller == buyer {
                return Err(MarketError::OwnListing);
            }
            l.state = ListingState::InProgress { buyer };
            Ok(l.clone())
        })?;
        let reopen = |token_id: &Nat| {
            with_listing(token_id, |entry| {
                if let Some(l) = entry {
                    l.state = ListingState::Open;
                }
            })
        };
        let escrow = Account::of(canister_self());
        let amount_out = listing.price.clone() - listing.fee.clone();

        // 1. The buyer pays this canister.
        let paid: Result<Result<Nat, LedgerTransferFromError>, MarketError> = call(
            ledger,
            "icrc2_transfer_from",
            TransferFromArgs {
                spender_subaccount: None,
                from: Account::of(buyer),
                to: escrow,
                amount: listing.price.clone(),
                fee: Some(listing.fee.clone()),
                memo: None,
                created_at_time: None,
            },
        )
        .await;
        let payment_block = match paid {
            Ok(Ok(block)) => block,
            Ok(Err(e)) => {
                reopen(&token_id);
                return Err(MarketError::PaymentRefused {
                    error: format!("{e:?}"),
                });
            }
            Err(e) => {
                reopen(&token_id);
                return Err(e);
            }
        };

        // 2. The collection moves the video.
        let moved: Result<Vec<Option<TransferFromResult>>, MarketError> = call(
            collection,
            "icrc37_transfer_from",
            vec![TransferFromArg {
                spender_subaccount: None,
                from: Account::of(listing.seller),
                to: Account::of(buyer),
                token_id: token_id.clone(),
                memo: None,
                created_at_time: None,
            }],
        )
        .await;
        // `Ok(None)`: the answer was lost but the collection shows the buyer holding the token.
        let outcome: Result<Option<Nat>, TransferFromError> = match moved {
            Ok(answers) => match answers.into_iter().next().flatten() {
                Some(r) => r.map(Some),
                None => Err(TransferFromError::GenericError {
                    error_code: Nat::from(0u8),
                    message: "no answer for the request".into(),
                }),
            },
            // A rejected call: whether the video moved is read from the collection.
            Err(e) => match holder_of(collection, &token_id).await {
                Ok(Some(h)) if h.normalized() == Account::of(buyer) => Ok(None),
                _ => Err(TransferFromError::GenericError {
                    error_code: Nat::from(0u8),
                    message: format!("{e:?}"),
                }),
            },
        };

        // 3. Pay the seller, or refund the buyer.
        let pay = |to: Principal| {
            call::<_, Result<Nat, LedgerTransferError>>(
                ledger,
                "icrc1_transfer",
                TransferArg {
                    from_subaccount: None,
                    to: Account::of(to),
                    amount: amount_out.clone(),
                    fee: Some(listing.fee.clone()),
                    memo: None,
                    created_at_time: None,
                },
            )
        };
        match outcome {
            Ok(transfer_block) => {
                let payout_block = match pay(listing.seller).await {
                    Ok(Ok(b)) => b,
                    Ok(Err(e)) => {
                        return payout_failed(&token_id, transfer_block, format!("{e:?}"))
                    }
                    Err(e) => return payout_failed(&token_id, transfer_block, format!("{e:?}")),
                };
                with_listing(&token_id, |entry| {
                    if let Some(l) = entry {
                        l.state = ListingState::Sold {
                            buyer,
                            transfer_block: transfer_block.clone(),
                            payout_block: payout_block.clone(),
                        };
                    }
                });
                Ok(Sale {
                    transfer_block,
                    payment_block,
                    payout_block,
                    paid_to_seller: amount_out,
                })
            }
            Err(error) => {
                let refund_block = match pay(buyer).await {
                    Ok(Ok(b)) => Ok(b),
                    Ok(Err(e)) => Err(format!("{e:?}")),
                    Err(e) => Err(format!("{e:?}")),
                };
                with_listing(&token_id, |entry| *entry = None);
                Err(MarketError::TransferRefused {
                    error,
                    refund_block,
                })
            }
        }
    }

    /// The video is the buyer's but the seller was not paid: the listing is over either way.
    fn payout_failed(token_id: &Nat, transfer_block: Option<Nat>, error: String) -> BuyResult {
        with_listing(token_id, |entry| *entry = None);
        Err(MarketError::PayoutFailed {
            transfer_block,
            error,
        })
    }

    #[query]
    fn get_listing(token_id: Nat) -> Option<Listing> {
        STATE.with(|s| s.borrow().listings.get(&token_id).cloned())
    }

    /// One `icrc37_transfer_from` request as this canister, passed through unchecked (tests).
    #[update]
    async fn relay_transfer_from(arg: TransferFromArg) -> Result<TransferFromResult, String> {
        let (collection, _) = ids();
        let answers: Vec<Option<TransferFromResult>> =
            call(collection, "icrc37_transfer_from", vec![arg])
                .await
                .map_err(|e| format!("{e:?}"))?;
        answers
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| "no answer".to_string())
    }
}
