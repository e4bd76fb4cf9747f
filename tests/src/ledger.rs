//! DFINITY's ICRC-1/2/3 ledger as a test fixture (`../shared/fixtures/icrc-ledger`, or
//! `$ICRC_LEDGER_DIR`; its README gives the init arguments): installing it, balances,
//! approvals, allowances and its ICRC-3 blocks. Where the folder is absent, [`ledger_wasm`]
//! prints `SKIPPED <test>: ...` to stderr and the test returns early (a user's clone of the
//! repository has no fixtures).

use crate::backend::{Backend, BackendExt};
use crate::data::principal;
use crate::deploy::T;
use candid::{CandidType, Deserialize, Nat, Principal};
use canvid_icrc3::types::{GetBlocksRequest, GetBlocksResult};
use canvid_icrc3::Value;
use canvid_types::icrc::Account;
use serde_bytes::ByteBuf;
use std::path::PathBuf;

/// The ledger's transfer fee (`transfer_fee` at install). An `icrc2_approve` costs it, and an
/// `icrc2_transfer_from` costs it on top of the amount (so an approval must cover both).
pub const FEE: u64 = 10_000;

/// The ledger module, or `None` after printing `SKIPPED <test>: ...` when the fixture is absent.
pub fn ledger_wasm(test: &str) -> Option<Vec<u8>> {
    let dir = std::env::var_os("ICRC_LEDGER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/fixtures/icrc-ledger"
            ))
        });
    let file = dir.join("ic-icrc1-ledger.wasm.gz");
    match std::fs::read(&file) {
        Ok(w) => Some(w),
        Err(e) => {
            canvid_did_check::skipped(
                test,
                &format!(
                    "DFINITY's ICRC ledger is not at {} ({e}); set ICRC_LEDGER_DIR",
                    file.display()
                ),
            );
            None
        }
    }
}

#[derive(CandidType)]
enum MetadataValue {
    #[allow(dead_code)]
    Text(String),
}

#[derive(CandidType)]
struct FeatureFlags {
    icrc2: bool,
}

#[derive(CandidType)]
struct ArchiveOptions {
    num_blocks_to_archive: u64,
    max_transactions_per_response: Option<u64>,
    trigger_threshold: u64,
    max_message_size_bytes: Option<u64>,
    cycles_for_archive_creation: Option<u64>,
    node_max_memory_size_bytes: Option<u64>,
    controller_id: Principal,
    more_controller_ids: Option<Vec<Principal>>,
}

#[derive(CandidType)]
struct InitArgs {
    minting_account: Account,
    fee_collector_account: Option<Account>,
    transfer_fee: Nat,
    decimals: Option<u8>,
    max_memo_length: Option<u16>,
    token_symbol: String,
    token_name: String,
    metadata: Vec<(String, MetadataValue)>,
    initial_balances: Vec<(Account, Nat)>,
    feature_flags: Option<FeatureFlags>,
    archive_options: ArchiveOptions,
    index_principal: Option<Principal>,
}

#[derive(CandidType)]
enum LedgerArg {
    Init(InitArgs),
}

#[derive(CandidType)]
struct ApproveArgs {
    fee: Option<Nat>,
    memo: Option<ByteBuf>,
    from_subaccount: Option<ByteBuf>,
    created_at_time: Option<u64>,
    amount: Nat,
    expected_allowance: Option<Nat>,
    expires_at: Option<u64>,
    spender: Account,
}

#[derive(CandidType, Deserialize, Debug)]
pub enum ApproveError {
    GenericError { message: String, error_code: Nat },
    TemporarilyUnavailable,
    Duplicate { duplicate_of: Nat },
    BadFee { expected_fee: Nat },
    AllowanceChanged { current_allowance: Nat },
    CreatedInFuture { ledger_time: u64 },
    TooOld,
    Expired { ledger_time: u64 },
    InsufficientFunds { balance: Nat },
}

#[derive(CandidType)]
struct AllowanceArgs {
    account: Account,
    spender: Account,
}

#[derive(CandidType, Deserialize)]
struct Allowance {
    allowance: Nat,
    expires_at: Option<u64>,
}

/// Creates a canister controlled by `admin` and installs the ledger with `balances`, fee
/// [`FEE`], ICRC-2 on.
pub fn install_ledger(
    b: &dyn Backend,
    admin: Principal,
    wasm: Vec<u8>,
    balances: &[(Principal, u64)],
) -> Principal {
    let id = b.create_canister(Some(admin), Some(vec![admin]), 10 * T);
    let init = LedgerArg::Init(InitArgs {
        minting_account: Account::of(principal("minter")),
        fee_collector_account: None,
        transfer_fee: Nat::from(FEE),
        decimals: Some(8),
        max_memo_length: None,
        token_symbol: "TST".into(),
        token_name: "Test token".into(),
        metadata: vec![],
        initial_balances: balances
            .iter()
            .map(|(p, n)| (Account::of(*p), Nat::from(*n)))
            .collect(),
        feature_flags: Some(FeatureFlags { icrc2: true }),
        archive_options: ArchiveOptions {
            num_blocks_to_archive: 1_000,
            max_transactions_per_response: None,
            trigger_threshold: 2_000,
            max_message_size_bytes: None,
            cycles_for_archive_creation: Some(0),
            node_max_memory_size_bytes: None,
            controller_id: admin,
            more_controller_ids: None,
        },
        index_principal: None,
    });
    b.install(id, wasm, candid::encode_one(init).unwrap(), Some(admin))
        .unwrap_or_else(|e| panic!("installing DFINITY's ICRC ledger: {e}"));
    id
}

fn nat_u64(n: &Nat) -> u64 {
    u64::try_from(&n.0).unwrap_or_else(|_| panic!("{n} does not fit u64"))
}

/// `icrc1_balance_of` of `who`'s default account.
pub fn ledger_balance(b: &dyn Backend, ledger: Principal, who: Principal) -> u64 {
    let n: Nat = b
        .query1(
            ledger,
            Principal::anonymous(),
            "icrc1_balance_of",
            &Account::of(who),
        )
        .unwrap_or_else(|e| panic!("icrc1_balance_of: {e}"));
    nat_u64(&n)
}

/// `icrc2_approve` by `owner` of `amount` for `spender` (it costs `owner` [`FEE`]): the ledger's
/// answer.
pub fn try_ledger_approve(
    b: &dyn Backend,
    ledger: Principal,
    owner: Principal,
    spender: Principal,
    amount: u64,
) -> Result<Nat, ApproveError> {
    b.update1(
        ledger,
        owner,
        "icrc2_approve",
        &ApproveArgs {
            fee: None,
            memo: None,
            from_subaccount: None,
            created_at_time: None,
            amount: Nat::from(amount),
            expected_allowance: None,
            expires_at: None,
            spender: Account::of(spender),
        },
    )
    .unwrap_or_else(|e| panic!("icrc2_approve: {e}"))
}

/// [`try_ledger_approve`], which must succeed.
pub fn ledger_approve(
    b: &dyn Backend,
    ledger: Principal,
    owner: Principal,
    spender: Principal,
    amount: u64,
) {
    try_ledger_approve(b, ledger, owner, spender, amount)
        .unwrap_or_else(|e| panic!("icrc2_approve: {e:?}"));
}

/// `icrc2_allowance` of `spender` over `owner`'s default account.
pub fn ledger_allowance(
    b: &dyn Backend,
    ledger: Principal,
    owner: Principal,
    spender: Principal,
) -> u64 {
    let a: Allowance = b
        .query1(
            ledger,
            Principal::anonymous(),
            "icrc2_allowance",
            &AllowanceArgs {
                account: Account::of(owner),
                spender: Account::of(spender),
            },
        )
        .unwrap_or_else(|e| panic!("icrc2_allowance: {e}"));
    let _ = a.expires_at;
    nat_u64(&a.allowance)
}

/// Every block of the ledger (`icrc3_get_blocks`; the tests stay far below the archiving
/// threshold, so none is archived).
pub fn ledger_blocks(b: &dyn Backend, ledger: Principal) -> Vec<Value> {
    let r: GetBlocksResult = b
        .query1(
            ledger,
            Principal::anonymous(),
            "icrc3_get_blocks",
            &vec![GetBlocksRequest {
                start: Nat::from(0u8),
                length: Nat::from(10_000u32),
            }],
        )
        .unwrap_or_else(|e| panic!("icrc3_get_blocks: {e}"));
    assert!(r.archived_blocks.is_empty(), "no archived blocks expected");
    assert_eq!(r.log_length, Nat::from(r.blocks.len()));
    r.blocks
        .into_iter()
        .enumerate()
        .map(|(i, blk)| {
            assert_eq!(blk.id, Nat::from(i), "blocks in order");
            blk.block
        })
        .collect()
}

/// ICRC-3's encoding of a default account: `[owner bytes]`.
pub fn account_value(p: Principal) -> Value {
    Value::Array(vec![Value::blob(p.as_slice())])
}
