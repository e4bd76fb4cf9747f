//! DFINITY's ICRC-1/2/3 ledger as a test fixture (`../shared/fixtures/icrc-ledger`, or
//! `$ICRC_LEDGER_DIR`; its README gives the init arguments): installing it, balances,
//! approvals, allowances and its ICRC-3 blocks. Where the folder is absent, [`ledger_wasm`]
//! prints `SKIPPED <test>: ...` to stderr and the test returns early (a user's clone of the
//! repository has no fixtures).

use crate::backend::{Backend, BackendExt};
use crate::data::principal;
use crate::deploy::T;
use candid::{Nat, Principal};
use canvid_icrc3::types::{GetBlocksRequest, GetBlocksResult};
use canvid_icrc3::Value;
use canvid_types::icrc::Account;
pub use canvid_types::ledger::ApproveError;
use canvid_types::ledger::{Allowance, AllowanceArgs, ApproveArgs};

/// The ledger's transfer fee (`transfer_fee` at install). An `icrc2_approve` costs it, and an
/// `icrc2_transfer_from` costs it on top of the amount (so an approval must cover both).
pub const FEE: u64 = 10_000;

/// The ledger module, or `None` after printing `SKIPPED <test>: ...` when the fixture is absent.
pub fn ledger_wasm(test: &str) -> Option<Vec<u8>> {
    canvid_devkit::icrc_ledger::read_fixture()
        .map_err(|why| canvid_did_check::skipped(test, &why))
        .ok()
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
    let balances: Vec<(Principal, Nat)> =
        balances.iter().map(|(p, n)| (*p, Nat::from(*n))).collect();
    let init = canvid_devkit::icrc_ledger::init_arg(&canvid_devkit::icrc_ledger::LedgerInit {
        minter: principal("minter"),
        transfer_fee: FEE,
        max_memo_length: None,
        initial_balances: &balances,
        archive_controller: admin,
    });
    b.install(id, wasm, init, Some(admin))
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
