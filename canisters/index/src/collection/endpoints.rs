//! The ICRC-7, ICRC-37, ICRC-3 and ICRC-10 methods, as `../shared/standards/*.did` declare
//! them (a test checks the canister's interface against those files). Endpoints decode, bound
//! the batch and call the store or the transfer; the decisions are in `ledger` and `logic`.
//!
//! Batches: queries larger than `icrc7:max_query_batch_size` trap (a query costs the caller, not
//! the collection); an update batch larger than `icrc7:max_update_batch_size` is answered with
//! one `GenericBatchError`. Update answers are positional, one per request.

use candid::{CandidType, Nat};
use canvid_icrc3::types::{
    DataCertificate, GetArchivesArgs, GetArchivesResult, GetBlocksArgs, GetBlocksResult,
    SupportedBlockType,
};
use canvid_icrc3::{Value, MAX_BLOCKS_PER_CALL};
use canvid_types::icrc::{
    Account, ApproveCollectionArg, ApproveCollectionError, ApproveTokenArg, ApproveTokenError,
    ApproveTokenResult, CollectionApproval, IsApprovedArg, RevokeCollectionApprovalArg,
    RevokeCollectionApprovalError, RevokeCollectionApprovalResult, RevokeTokenApprovalArg,
    RevokeTokenApprovalError, RevokeTokenApprovalResponse, SupportedStandard, TokenApproval,
    TransferArg, TransferError, TransferFromArg, TransferFromError, TransferFromResult,
    TransferResult,
};
use ic_cdk::api::{msg_caller, time};
use ic_cdk::{query, update};

use super::ledger::{ApprovalError, TransferRequest, XferError};
use super::logic::dedup_key;
use super::transfer;
use super::*;
use crate::store;

fn nat(n: usize) -> Nat {
    Nat::from(n)
}

fn check_query_batch(len: usize) {
    if len > MAX_QUERY_BATCH {
        ic_cdk::trap(format!(
            "{len} requests in one query; icrc7:max_query_batch_size is {MAX_QUERY_BATCH}"
        ));
    }
}

fn take_of(take: Option<Nat>) -> usize {
    match take {
        None => DEFAULT_TAKE,
        Some(t) => usize::try_from(&t.0).unwrap_or(MAX_TAKE).min(MAX_TAKE),
    }
}

fn batch_too_large(len: usize, max: usize) -> Option<(Nat, String)> {
    (len > max).then(|| {
        (
            Nat::from(codes::BATCH_TOO_LARGE),
            format!("{len} requests in one call; at most {max}"),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// ICRC-7 queries
// ---------------------------------------------------------------------------------------------

#[query]
fn icrc7_collection_metadata() -> Vec<(String, Value)> {
    let supply = store::with(|s| s.stats().videos);
    vec![
        ("icrc7:symbol".into(), Value::text(SYMBOL)),
        ("icrc7:name".into(), Value::text(NAME)),
        ("icrc7:description".into(), Value::text(DESCRIPTION)),
        ("icrc7:total_supply".into(), Value::nat(supply)),
        (
            "icrc7:max_query_batch_size".into(),
            Value::nat(MAX_QUERY_BATCH as u64),
        ),
        (
            "icrc7:max_update_batch_size".into(),
            Value::nat(MAX_UPDATE_BATCH as u64),
        ),
        (
            "icrc7:default_take_value".into(),
            Value::nat(DEFAULT_TAKE as u64),
        ),
        ("icrc7:max_take_value".into(), Value::nat(MAX_TAKE as u64)),
        (
            "icrc7:max_memo_size".into(),
            Value::nat(MAX_MEMO_BYTES as u64),
        ),
        ("icrc7:tx_window".into(), Value::nat(TX_WINDOW_SECS)),
        (
            "icrc7:permitted_drift".into(),
            Value::nat(PERMITTED_DRIFT_SECS),
        ),
        (
            "icrc37:max_approvals_per_token_or_collection".into(),
            Value::nat(MAX_APPROVALS as u64),
        ),
        (
            "icrc37:max_revoke_approvals".into(),
            Value::nat(MAX_REVOKE_APPROVALS as u64),
        ),
    ]
}

#[query]
fn icrc7_symbol() -> String {
    SYMBOL.into()
}

#[query]
fn icrc7_name() -> String {
    NAME.into()
}

#[query]
fn icrc7_description() -> Option<String> {
    Some(DESCRIPTION.into())
}

#[query]
fn icrc7_logo() -> Option<String> {
    None
}

#[query]
fn icrc7_total_supply() -> Nat {
    Nat::from(store::with(|s| s.stats().videos))
}

/// No cap: every video the spawn canister creates is a token.
#[query]
fn icrc7_supply_cap() -> Option<Nat> {
    None
}

#[query]
fn icrc7_max_query_batch_size() -> Option<Nat> {
    Some(nat(MAX_QUERY_BATCH))
}

#[query]
fn icrc7_max_update_batch_size() -> Option<Nat> {
    Some(nat(MAX_UPDATE_BATCH))
}

#[query]
fn icrc7_default_take_value() -> Option<Nat> {
    Some(nat(DEFAULT_TAKE))
}

#[query]
fn icrc7_max_take_value() -> Option<Nat> {
    Some(nat(MAX_TAKE))
}

#[query]
fn icrc7_max_memo_size() -> Option<Nat> {
    Some(nat(MAX_MEMO_BYTES))
}

#[query]
fn icrc7_atomic_batch_transfers() -> Option<bool> {
    Some(false)
}

#[query]
fn icrc7_tx_window() -> Option<Nat> {
    Some(Nat::from(TX_WINDOW_SECS))
}

#[query]
fn icrc7_permitted_drift() -> Option<Nat> {
    Some(Nat::from(PERMITTED_DRIFT_SECS))
}

#[query]
fn icrc7_token_metadata(token_ids: Vec<Nat>) -> Vec<Option<Vec<(String, Value)>>> {
    check_query_batch(token_ids.len());
    store::with(|s| token_ids.iter().map(|t| s.token_metadata(t)).collect())
}

#[query]
fn icrc7_owner_of(token_ids: Vec<Nat>) -> Vec<Option<Account>> {
    check_query_batch(token_ids.len());
    store::with(|s| {
        token_ids
            .iter()
            .map(|t| {
                canvid_types::icrc::token_id_from_nat(t)
                    .and_then(|tid| s.token_holder(tid))
                    .map(Account::of)
            })
            .collect()
    })
}

#[query]
fn icrc7_balance_of(accounts: Vec<Account>) -> Vec<Nat> {
    check_query_batch(accounts.len());
    store::with(|s| accounts.iter().map(|a| s.balance_of(a)).collect())
}

#[query]
fn icrc7_tokens(prev: Option<Nat>, take: Option<Nat>) -> Vec<Nat> {
    store::with(|s| s.tokens(prev.as_ref(), take_of(take)))
}

#[query]
fn icrc7_tokens_of(account: Account, prev: Option<Nat>, take: Option<Nat>) -> Vec<Nat> {
    store::with(|s| s.tokens_of(&account, prev.as_ref(), take_of(take)))
}

// ---------------------------------------------------------------------------------------------
// Transfers
// ---------------------------------------------------------------------------------------------

fn dedup_of<T: CandidType>(
    method: &str,
    arg: &T,
    created_at_time: Option<u64>,
) -> Option<[u8; 32]> {
    created_at_time?;
    let bytes = candid::encode_one(arg).ok()?;
    Some(dedup_key(method, &msg_caller(), &bytes))
}

fn to_transfer_error(e: XferError) -> TransferError {
    match e {
        XferError::NonExistingTokenId => TransferError::NonExistingTokenId,
        XferError::InvalidRecipient => TransferError::InvalidRecipient,
        XferError::Unauthorized => TransferError::Unauthorized,
        XferError::TooOld => TransferError::TooOld,
        XferError::CreatedInFuture { ledger_time } => {
            TransferError::CreatedInFuture { ledger_time }
        }
        XferError::Duplicate { duplicate_of } => TransferError::Duplicate {
            duplicate_of: Nat::from(duplicate_of),
        },
        XferError::Generic { code, message } => TransferError::GenericError {
            error_code: Nat::from(code),
            message,
        },
    }
}

fn to_transfer_from_error(e: XferError) -> TransferFromError {
    match e {
        XferError::NonExistingTokenId => TransferFromError::NonExistingTokenId,
        XferError::InvalidRecipient => TransferFromError::InvalidRecipient,
        XferError::Unauthorized => TransferFromError::Unauthorized,
        XferError::TooOld => TransferFromError::TooOld,
        XferError::CreatedInFuture { ledger_time } => {
            TransferFromError::CreatedInFuture { ledger_time }
        }
        XferError::Duplicate { duplicate_of } => TransferFromError::Duplicate {
            duplicate_of: Nat::from(duplicate_of),
        },
        XferError::Generic { code, message } => TransferFromError::GenericError {
            error_code: Nat::from(code),
            message,
        },
    }
}

/// The holder's transfers: each moves the video canister itself (see `transfer`).
#[update]
async fn icrc7_transfer(args: Vec<TransferArg>) -> Vec<Option<TransferResult>> {
    if let Some((error_code, message)) = batch_too_large(args.len(), MAX_UPDATE_BATCH) {
        return vec![Some(Err(TransferError::GenericBatchError {
            error_code,
            message,
        }))];
    }
    let caller = msg_caller();
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        let req = TransferRequest {
            caller,
            token_id: arg.token_id.clone(),
            from: Account {
                owner: caller,
                subaccount: arg.from_subaccount.clone(),
            },
            to: arg.to.clone(),
            spender: None,
            memo: arg.memo.clone(),
            created_at_time: arg.created_at_time,
            dedup: dedup_of("icrc7_transfer", &arg, arg.created_at_time),
        };
        let r = transfer::transfer(req).await;
        out.push(Some(r.map(Nat::from).map_err(to_transfer_error)));
    }
    out
}

/// Transfers by an approved spender (or the holder): the marketplace's call.
#[update]
async fn icrc37_transfer_from(args: Vec<TransferFromArg>) -> Vec<Option<TransferFromResult>> {
    if let Some((error_code, message)) = batch_too_large(args.len(), MAX_UPDATE_BATCH) {
        return vec![Some(Err(TransferFromError::GenericBatchError {
            error_code,
            message,
        }))];
    }
    let caller = msg_caller();
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        let req = TransferRequest {
            caller,
            token_id: arg.token_id.clone(),
            from: arg.from.clone(),
            to: arg.to.clone(),
            spender: Some(Account {
                owner: caller,
                subaccount: arg.spender_subaccount.clone(),
            }),
            memo: arg.memo.clone(),
            created_at_time: arg.created_at_time,
            dedup: dedup_of("icrc37_transfer_from", &arg, arg.created_at_time),
        };
        let r = transfer::transfer(req).await;
        out.push(Some(r.map(Nat::from).map_err(to_transfer_from_error)));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// ICRC-37 approvals
// ---------------------------------------------------------------------------------------------

#[query]
fn icrc37_max_approvals_per_token_or_collection() -> Option<Nat> {
    Some(nat(MAX_APPROVALS))
}

#[query]
fn icrc37_max_revoke_approvals() -> Option<Nat> {
    Some(nat(MAX_REVOKE_APPROVALS))
}

fn generic(code: u64, message: String) -> (Nat, String) {
    (Nat::from(code), message)
}

#[update]
fn icrc37_approve_tokens(args: Vec<ApproveTokenArg>) -> Vec<Option<ApproveTokenResult>> {
    if let Some((error_code, message)) = batch_too_large(args.len(), MAX_UPDATE_BATCH) {
        return vec![Some(Err(ApproveTokenError::GenericBatchError {
            error_code,
            message,
        }))];
    }
    let caller = msg_caller();
    let now = time();
    let out = store::with_mut(|s| {
        args.iter()
            .map(|a| {
                Some(
                    s.approve_token(&caller, &a.token_id, &a.approval_info, now)
                        .map(Nat::from)
                        .map_err(|e| match e {
                            ApprovalError::InvalidSpender => ApproveTokenError::InvalidSpender,
                            ApprovalError::Unauthorized | ApprovalError::ApprovalDoesNotExist => {
                                ApproveTokenError::Unauthorized
                            }
                            ApprovalError::NonExistingTokenId => {
                                ApproveTokenError::NonExistingTokenId
                            }
                            ApprovalError::TooOld => ApproveTokenError::TooOld,
                            ApprovalError::CreatedInFuture { ledger_time } => {
                                ApproveTokenError::CreatedInFuture { ledger_time }
                            }
                            ApprovalError::Generic { code, message } => {
                                let (error_code, message) = generic(code, message);
                                ApproveTokenError::GenericError {
                                    error_code,
                                    message,
                                }
                            }
                        }),
                )
            })
            .collect()
    });
    crate::certify();
    out
}

/// As published, the answer per request is `opt ApproveCollectionError`: `null` is success.
#[update]
fn icrc37_approve_collection(
    args: Vec<ApproveCollectionArg>,
) -> Vec<Option<ApproveCollectionError>> {
    if let Some((error_code, message)) = batch_too_large(args.len(), MAX_UPDATE_BATCH) {
        return vec![Some(ApproveCollectionError::GenericBatchError {
            error_code,
            message,
        })];
    }
    let caller = msg_caller();
    let now = time();
    let out = store::with_mut(|s| {
        args.iter()
            .map(|a| {
                s.approve_collection(&caller, &a.approval_info, now)
                    .err()
                    .map(|e| match e {
                        ApprovalError::InvalidSpender => ApproveCollectionError::InvalidSpender,
                        ApprovalError::TooOld => ApproveCollectionError::TooOld,
                        ApprovalError::CreatedInFuture { ledger_time } => {
                            ApproveCollectionError::CreatedInFuture { ledger_time }
                        }
                        ApprovalError::Generic { code, message } => {
                            let (error_code, message) = generic(code, message);
                            ApproveCollectionError::GenericError {
                                error_code,
                                message,
                            }
                        }
                        other => ApproveCollectionError::GenericError {
                            error_code: Nat::from(codes::VIDEO_REFUSED),
                            message: format!("{other:?}"),
                        },
                    })
            })
            .collect()
    });
    crate::certify();
    out
}

#[update]
fn icrc37_revoke_token_approvals(
    args: Vec<RevokeTokenApprovalArg>,
) -> Vec<Option<RevokeTokenApprovalResponse>> {
    if let Some((error_code, message)) = batch_too_large(args.len(), MAX_REVOKE_APPROVALS) {
        return vec![Some(Err(RevokeTokenApprovalError::GenericBatchError {
            error_code,
            message,
        }))];
    }
    let caller = msg_caller();
    let now = time();
    let out = store::with_mut(|s| {
        args.iter()
            .map(|a| {
                Some(
                    s.revoke_token(
                        &caller,
                        &a.token_id,
                        a.spender.as_ref(),
                        &a.from_subaccount,
                        &a.memo,
                        a.created_at_time,
                        now,
                    )
                    .map(Nat::from)
                    .map_err(|e| match e {
                        ApprovalError::ApprovalDoesNotExist => {
                            RevokeTokenApprovalError::ApprovalDoesNotExist
                        }
                        ApprovalError::Unauthorized | ApprovalError::InvalidSpender => {
                            RevokeTokenApprovalError::Unauthorized
                        }
                        ApprovalError::NonExistingTokenId => {
                            RevokeTokenApprovalError::NonExistingTokenId
                        }
                        ApprovalError::TooOld => RevokeTokenApprovalError::TooOld,
                        ApprovalError::CreatedInFuture { ledger_time } => {
                            RevokeTokenApprovalError::CreatedInFuture { ledger_time }
                        }
                        ApprovalError::Generic { code, message } => {
                            let (error_code, message) = generic(code, message);
                            RevokeTokenApprovalError::GenericError {
                                error_code,
                                message,
                            }
                        }
                    }),
                )
            })
            .collect()
    });
    crate::certify();
    out
}

#[update]
fn icrc37_revoke_collection_approvals(
    args: Vec<RevokeCollectionApprovalArg>,
) -> Vec<Option<RevokeCollectionApprovalResult>> {
    if let Some((error_code, message)) = batch_too_large(args.len(), MAX_REVOKE_APPROVALS) {
        return vec![Some(Err(
            RevokeCollectionApprovalError::GenericBatchError {
                error_code,
                message,
            },
        ))];
    }
    let caller = msg_caller();
    let now = time();
    let out = store::with_mut(|s| {
        args.iter()
            .map(|a| {
                Some(
                    s.revoke_collection(
                        &caller,
                        a.spender.as_ref(),
                        &a.from_subaccount,
                        &a.memo,
                        a.created_at_time,
                        now,
                    )
                    .map(Nat::from)
                    .map_err(|e| match e {
                        ApprovalError::TooOld => RevokeCollectionApprovalError::TooOld,
                        ApprovalError::CreatedInFuture { ledger_time } => {
                            RevokeCollectionApprovalError::CreatedInFuture { ledger_time }
                        }
                        ApprovalError::Generic { code, message } => {
                            let (error_code, message) = generic(code, message);
                            RevokeCollectionApprovalError::GenericError {
                                error_code,
                                message,
                            }
                        }
                        _ => RevokeCollectionApprovalError::ApprovalDoesNotExist,
                    }),
                )
            })
            .collect()
    });
    crate::certify();
    out
}

#[query]
fn icrc37_is_approved(args: Vec<IsApprovedArg>) -> Vec<bool> {
    check_query_batch(args.len());
    let now = time();
    store::with(|s| args.iter().map(|a| s.is_approved(a, now)).collect())
}

#[query]
fn icrc37_get_token_approvals(
    token_id: Nat,
    prev: Option<TokenApproval>,
    take: Option<Nat>,
) -> Vec<TokenApproval> {
    let now = time();
    store::with(|s| s.token_approvals(&token_id, prev.as_ref(), take_of(take), now))
}

#[query]
fn icrc37_get_collection_approvals(
    owner: Account,
    prev: Option<CollectionApproval>,
    take: Option<Nat>,
) -> Vec<CollectionApproval> {
    let now = time();
    store::with(|s| s.collection_approvals(&owner, prev.as_ref(), take_of(take), now))
}

// ---------------------------------------------------------------------------------------------
// ICRC-3 and ICRC-10
// ---------------------------------------------------------------------------------------------

#[query]
fn icrc3_get_blocks(args: GetBlocksArgs) -> GetBlocksResult {
    store::with(|s| s.log().get_blocks(&args, MAX_BLOCKS_PER_CALL))
}

#[query]
fn icrc3_get_archives(args: GetArchivesArgs) -> GetArchivesResult {
    canvid_icrc3::types::get_archives(&args)
}

#[query]
fn icrc3_get_tip_certificate() -> Option<DataCertificate> {
    let certificate = ic_cdk::api::data_certificate()?;
    store::with(|s| s.log().tip_certificate(certificate))
}

#[query]
fn icrc3_supported_block_types() -> Vec<SupportedBlockType> {
    canvid_icrc3::types::supported_block_types()
}

#[query]
fn icrc10_supported_standards() -> Vec<SupportedStandard> {
    [
        (
            "ICRC-7",
            "https://github.com/dfinity/ICRC/tree/main/ICRCs/ICRC-7",
        ),
        (
            "ICRC-37",
            "https://github.com/dfinity/ICRC/tree/main/ICRCs/ICRC-37",
        ),
        (
            "ICRC-3",
            "https://github.com/dfinity/ICRC-1/tree/main/standards/ICRC-3",
        ),
        (
            "ICRC-10",
            "https://github.com/dfinity/ICRC/tree/main/ICRCs/ICRC-10",
        ),
    ]
    .into_iter()
    .map(|(name, url)| SupportedStandard {
        name: name.into(),
        url: url.into(),
    })
    .collect()
}
