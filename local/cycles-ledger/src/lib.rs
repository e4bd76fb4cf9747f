//! The cycles ledger `canvid serve` installs at `um5iw-rqaaa-aaaaq-qaaba-cai`, the id of the IC's
//! cycles ledger, which icp-cli calls to create canisters (`icp canister create`, `icp deploy`)
//! and to read or spend a principal's cycles (`icp cycles balance`, `icp canister top-up`).
//!
//! It implements those endpoints of DFINITY's published `cycles-ledger.did` with the same types,
//! the same rules and the same 100M-cycle fee (INTERFACE_SPECIFICATION.md of dfinity/cycles-ledger):
//!
//! * `deposit`: the attached cycles (at least 100M, else the call is rejected) are credited to
//!   `to`, without fee;
//! * `withdraw`: `amount` + fee leave the caller's account, `amount` goes to canister `to` with
//!   `deposit_cycles`; if that fails, `amount` comes back and the fee is kept (`FailedToWithdraw`);
//! * `create_canister`: `amount` + fee leave the caller's account; the management canister's
//!   `create_canister` is called with `amount` attached (the replica takes its creation fee from
//!   it) and the settings given, controllers defaulting to the caller; on failure `amount` comes
//!   back (`FailedToCreate`). canvid serve has one subnet: a subnet selection is accepted as is;
//! * `icrc1_balance_of` and the ICRC-1 metadata queries (`TCYCLES`, 12 decimals).
//!
//! Cycles are real: every credited cycle is in this canister's balance (a deposit attaches them, a
//! `provisional_deposit` first tops the ledger up with the management canister's
//! `provisional_top_up_canister`, which only local replicas offer), and every withdrawal or
//! creation sends them on. `provisional_deposit` is not in the IC's interface: it is how
//! identities get cycles on `canvid serve` (on an icp-cli local network they come from
//! `icp cycles mint`, through the ICP ledger and the cycles minting canister, which serve does not
//! run). `created_at_time` is checked (not older than 24 h, not more than 2 min ahead) but not
//! deduplicated; block indices count operations but no ICRC-3 block log is kept; ICRC-2,
//! `icrc1_transfer`, `create_canister_from` and `withdraw_from` are absent.
//!
//! State lives on the heap: canvid serve's snapshots and write-ahead log keep it across
//! restarts, and serve never upgrades this canister.

use std::cell::RefCell;
use std::collections::BTreeMap;

use candid::{CandidType, Nat, Principal};
use ic_cdk::api::{canister_self, msg_caller, msg_cycles_accept, msg_cycles_available, time};
use ic_cdk::call::{Call, CallFailed};
use ic_cdk::{query, update};
use serde::Deserialize;

/// The IC cycles ledger's id, which icp-cli calls.
pub const CYCLES_LEDGER_ID: &str = "um5iw-rqaaa-aaaaq-qaaba-cai";
/// Fee of `withdraw` and `create_canister` (and the least a `deposit` may attach).
pub const FEE: u128 = 100_000_000;
const DAY_NS: u64 = 24 * 3600 * 1_000_000_000;
const DRIFT_NS: u64 = 120 * 1_000_000_000;

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct Account {
    pub owner: Principal,
    pub subaccount: Option<Vec<u8>>,
}

type Key = (Principal, [u8; 32]);

fn key(owner: Principal, subaccount: &Option<Vec<u8>>) -> Key {
    let mut s = [0u8; 32];
    if let Some(b) = subaccount {
        if b.len() != 32 {
            ic_cdk::trap(format!(
                "a subaccount is 32 bytes, this one has {}",
                b.len()
            ));
        }
        s.copy_from_slice(b);
    }
    (owner, s)
}

#[derive(Default)]
struct Ledger {
    balances: BTreeMap<Key, u128>,
    /// Number of operations so far: the next block index.
    blocks: u64,
    total_supply: u128,
}

thread_local! {
    static LEDGER: RefCell<Ledger> = RefCell::new(Ledger::default());
}

fn balance(k: &Key) -> u128 {
    LEDGER.with(|l| l.borrow().balances.get(k).copied().unwrap_or(0))
}

/// Credits `amount` (minted: the cycles are in the canister), returns (new balance, block index).
fn credit(k: Key, amount: u128) -> (u128, u64) {
    LEDGER.with(|l| {
        let mut l = l.borrow_mut();
        let b = l.balances.entry(k).or_insert(0);
        *b += amount;
        let balance = *b;
        l.total_supply += amount;
        let block = l.blocks;
        l.blocks += 1;
        (balance, block)
    })
}

/// Debits `amount` if the account holds it; returns the block index, or the balance.
fn debit(k: &Key, amount: u128) -> Result<u64, u128> {
    LEDGER.with(|l| {
        let mut l = l.borrow_mut();
        let have = l.balances.get(k).copied().unwrap_or(0);
        if have < amount {
            return Err(have);
        }
        if have == amount {
            l.balances.remove(k);
        } else {
            l.balances.insert(*k, have - amount);
        }
        l.total_supply -= amount;
        let block = l.blocks;
        l.blocks += 1;
        Ok(block)
    })
}

fn nat_u128(n: &Nat) -> Option<u128> {
    u128::try_from(n.0.clone()).ok()
}

// ------------------------------------------------------------------------------ deposit

#[derive(CandidType, Deserialize)]
pub struct DepositArgs {
    pub to: Account,
    pub memo: Option<Vec<u8>>,
}

#[derive(CandidType, Deserialize, Debug)]
pub struct DepositResult {
    pub balance: Nat,
    pub block_index: Nat,
}

#[update]
fn deposit(args: DepositArgs) -> DepositResult {
    let attached = msg_cycles_available();
    if attached < FEE {
        ic_cdk::trap(format!(
            "deposit: at least {FEE} cycles must be attached, got {attached}"
        ));
    }
    let got = msg_cycles_accept(attached);
    let (balance, block) = credit(key(args.to.owner, &args.to.subaccount), got);
    DepositResult {
        balance: balance.into(),
        block_index: block.into(),
    }
}

#[derive(CandidType, Deserialize)]
pub struct ProvisionalDepositArgs {
    pub to: Account,
    pub amount: Nat,
}

/// Local replicas only: the management canister's `provisional_top_up_canister` adds `amount`
/// to this canister, then `amount` is credited to `to` as a deposit would.
#[update]
async fn provisional_deposit(args: ProvisionalDepositArgs) -> DepositResult {
    let Some(amount) = nat_u128(&args.amount) else {
        ic_cdk::trap("provisional_deposit: amount over 2^128")
    };
    let k = key(args.to.owner, &args.to.subaccount);
    ic_cdk_management_canister::provisional_top_up_canister(
        &ic_cdk_management_canister::ProvisionalTopUpCanisterArgs {
            canister_id: canister_self(),
            amount: args.amount.clone(),
        },
    )
    .await
    .unwrap_or_else(|e| ic_cdk::trap(format!("provisional_top_up_canister: {e}")));
    let (balance, block) = credit(k, amount);
    DepositResult {
        balance: balance.into(),
        block_index: block.into(),
    }
}

// ------------------------------------------------------------------------------ withdraw

#[derive(CandidType, Deserialize, Clone, Debug)]
pub enum RejectionCode {
    NoError,
    CanisterError,
    SysTransient,
    DestinationInvalid,
    Unknown,
    SysFatal,
    CanisterReject,
}

fn rejection(e: &CallFailed) -> (RejectionCode, String) {
    let code = match e {
        CallFailed::CallRejected(r) => match r.raw_reject_code() {
            1 => RejectionCode::SysFatal,
            2 => RejectionCode::SysTransient,
            3 => RejectionCode::DestinationInvalid,
            4 => RejectionCode::CanisterReject,
            5 => RejectionCode::CanisterError,
            _ => RejectionCode::Unknown,
        },
        _ => RejectionCode::Unknown,
    };
    (code, e.to_string())
}

#[derive(CandidType, Deserialize)]
pub struct WithdrawArgs {
    pub amount: Nat,
    pub from_subaccount: Option<Vec<u8>>,
    pub to: Principal,
    pub created_at_time: Option<u64>,
}

#[derive(CandidType, Deserialize, Debug)]
pub enum WithdrawError {
    GenericError {
        message: String,
        error_code: Nat,
    },
    TemporarilyUnavailable,
    FailedToWithdraw {
        fee_block: Option<Nat>,
        rejection_code: RejectionCode,
        rejection_reason: String,
    },
    Duplicate {
        duplicate_of: Nat,
    },
    BadFee {
        expected_fee: Nat,
    },
    InvalidReceiver {
        receiver: Principal,
    },
    CreatedInFuture {
        ledger_time: u64,
    },
    TooOld,
    InsufficientFunds {
        balance: Nat,
    },
}

/// `Err(Some(ledger_time))`: in the future; `Err(None)`: too old.
fn check_time(created_at_time: Option<u64>) -> Result<(), Option<u64>> {
    let now = time();
    match created_at_time {
        Some(t) if t > now.saturating_add(DRIFT_NS) => Err(Some(now)),
        Some(t) if t.saturating_add(DAY_NS + DRIFT_NS) < now => Err(None),
        _ => Ok(()),
    }
}

#[update]
async fn withdraw(args: WithdrawArgs) -> Result<Nat, WithdrawError> {
    match check_time(args.created_at_time) {
        Err(Some(ledger_time)) => return Err(WithdrawError::CreatedInFuture { ledger_time }),
        Err(None) => return Err(WithdrawError::TooOld),
        Ok(()) => {}
    }
    let from = key(msg_caller(), &args.from_subaccount);
    let Some(amount) = nat_u128(&args.amount) else {
        return Err(WithdrawError::InsufficientFunds {
            balance: balance(&from).into(),
        });
    };
    if args.to == Principal::management_canister() || args.to.as_slice().len() != 10 {
        return Err(WithdrawError::InvalidReceiver { receiver: args.to });
    }
    let block = debit(&from, amount.saturating_add(FEE)).map_err(|balance| {
        WithdrawError::InsufficientFunds {
            balance: balance.into(),
        }
    })?;
    let sent = Call::unbounded_wait(Principal::management_canister(), "deposit_cycles")
        .with_arg(CanisterIdRecord {
            canister_id: args.to,
        })
        .with_cycles(amount)
        .await;
    match sent {
        Ok(_) => Ok(block.into()),
        Err(e) => {
            // The fee is kept; the amount comes back (a rejected call refunds what it carried).
            credit(from, amount);
            let (rejection_code, rejection_reason) = rejection(&e);
            Err(WithdrawError::FailedToWithdraw {
                fee_block: Some(block.into()),
                rejection_code,
                rejection_reason,
            })
        }
    }
}

// ------------------------------------------------------------------------------ create_canister

#[derive(CandidType, Deserialize, Clone, Debug, Default)]
pub struct CanisterSettings {
    pub controllers: Option<Vec<Principal>>,
    pub compute_allocation: Option<Nat>,
    pub memory_allocation: Option<Nat>,
    pub freezing_threshold: Option<Nat>,
    pub reserved_cycles_limit: Option<Nat>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct SubnetFilter {
    pub subnet_type: Option<String>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub enum SubnetSelection {
    Subnet { subnet: Principal },
    Filter(SubnetFilter),
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct CmcCreateCanisterArgs {
    pub settings: Option<CanisterSettings>,
    pub subnet_selection: Option<SubnetSelection>,
}

#[derive(CandidType, Deserialize)]
pub struct CreateCanisterArgs {
    pub from_subaccount: Option<Vec<u8>>,
    pub created_at_time: Option<u64>,
    pub amount: Nat,
    pub creation_args: Option<CmcCreateCanisterArgs>,
}

#[derive(CandidType, Deserialize, Debug)]
pub struct CreateCanisterSuccess {
    pub block_id: Nat,
    pub canister_id: Principal,
}

#[derive(CandidType, Deserialize, Debug)]
pub enum CreateCanisterError {
    InsufficientFunds {
        balance: Nat,
    },
    TooOld,
    CreatedInFuture {
        ledger_time: u64,
    },
    TemporarilyUnavailable,
    Duplicate {
        duplicate_of: Nat,
        canister_id: Option<Principal>,
    },
    FailedToCreate {
        fee_block: Option<Nat>,
        refund_block: Option<Nat>,
        error: String,
    },
    GenericError {
        message: String,
        error_code: Nat,
    },
}

/// The management canister's `create_canister` argument (the settings this ledger passes on).
#[derive(CandidType)]
struct MgmtCreate {
    settings: Option<MgmtSettings>,
}

#[derive(CandidType)]
struct MgmtSettings {
    controllers: Option<Vec<Principal>>,
    compute_allocation: Option<Nat>,
    memory_allocation: Option<Nat>,
    freezing_threshold: Option<Nat>,
    reserved_cycles_limit: Option<Nat>,
}

#[derive(CandidType, Deserialize)]
struct CanisterIdRecord {
    canister_id: Principal,
}

#[update]
async fn create_canister(
    args: CreateCanisterArgs,
) -> Result<CreateCanisterSuccess, CreateCanisterError> {
    match check_time(args.created_at_time) {
        Err(Some(ledger_time)) => return Err(CreateCanisterError::CreatedInFuture { ledger_time }),
        Err(None) => return Err(CreateCanisterError::TooOld),
        Ok(()) => {}
    }
    let caller = msg_caller();
    let from = key(caller, &args.from_subaccount);
    let Some(amount) = nat_u128(&args.amount) else {
        return Err(CreateCanisterError::InsufficientFunds {
            balance: balance(&from).into(),
        });
    };
    let block = debit(&from, amount.saturating_add(FEE)).map_err(|balance| {
        CreateCanisterError::InsufficientFunds {
            balance: balance.into(),
        }
    })?;
    let s = args
        .creation_args
        .and_then(|c| c.settings)
        .unwrap_or_default();
    let arg = MgmtCreate {
        settings: Some(MgmtSettings {
            controllers: Some(s.controllers.unwrap_or_else(|| vec![caller])),
            compute_allocation: s.compute_allocation,
            memory_allocation: s.memory_allocation,
            freezing_threshold: s.freezing_threshold,
            reserved_cycles_limit: s.reserved_cycles_limit,
        }),
    };
    let created = Call::unbounded_wait(Principal::management_canister(), "create_canister")
        .with_arg(&arg)
        .with_cycles(amount)
        .await;
    let created: Result<CanisterIdRecord, String> = match created {
        Ok(r) => r.candid().map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match created {
        Ok(r) => Ok(CreateCanisterSuccess {
            block_id: block.into(),
            canister_id: r.canister_id,
        }),
        Err(error) => {
            // A rejected call refunds the attached cycles: they go back to the account.
            let (_, refund) = credit(from, amount);
            Err(CreateCanisterError::FailedToCreate {
                fee_block: Some(block.into()),
                refund_block: Some(refund.into()),
                error,
            })
        }
    }
}

// ------------------------------------------------------------------------------ ICRC-1 queries

#[query]
fn icrc1_balance_of(account: Account) -> Nat {
    balance(&key(account.owner, &account.subaccount)).into()
}

#[query]
fn icrc1_decimals() -> u8 {
    12
}

#[query]
fn icrc1_fee() -> Nat {
    FEE.into()
}

#[query]
fn icrc1_name() -> String {
    "Cycles".into()
}

#[query]
fn icrc1_symbol() -> String {
    "TCYCLES".into()
}

#[query]
fn icrc1_total_supply() -> Nat {
    LEDGER.with(|l| l.borrow().total_supply).into()
}

#[query]
fn icrc1_minting_account() -> Option<Account> {
    None
}

#[derive(CandidType, Deserialize)]
pub enum MetadataValue {
    Nat(Nat),
    Int(candid::Int),
    Text(String),
    Blob(Vec<u8>),
}

#[query]
fn icrc1_metadata() -> Vec<(String, MetadataValue)> {
    vec![
        ("icrc1:decimals".into(), MetadataValue::Nat(12u8.into())),
        ("icrc1:name".into(), MetadataValue::Text("Cycles".into())),
        ("icrc1:symbol".into(), MetadataValue::Text("TCYCLES".into())),
        ("icrc1:fee".into(), MetadataValue::Nat(FEE.into())),
    ]
}

#[derive(CandidType, Deserialize)]
pub struct SupportedStandard {
    pub url: String,
    pub name: String,
}

#[query]
fn icrc1_supported_standards() -> Vec<SupportedStandard> {
    vec![SupportedStandard {
        name: "ICRC-1".into(),
        url: "https://github.com/dfinity/ICRC-1/tree/main/standards/ICRC-1".into(),
    }]
}
