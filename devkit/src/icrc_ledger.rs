//! DFINITY's ICRC-1/2/3 ledger (the code behind ckBTC, ckUSDC and SNS ledgers) as canvid installs
//! it for payments locally and in tests: where the module is, and its init argument. Used by
//! `canvid serve --icrc-ledger`, the integration tests and the CLI's tests, so the three install
//! the same ledger (ICRC-2 on, 8 decimals, symbol `TST`).
//!
//! The fixture lives in `../shared/fixtures/icrc-ledger` next to the repository (its README gives
//! the init argument's fields), or wherever `$ICRC_LEDGER_DIR` says; a user's clone has none, and
//! the payment tests then say so and skip.

use std::path::PathBuf;

use candid::{CandidType, Nat, Principal};
use canvid_types::icrc::Account;

/// The module's file name in the fixture folder.
pub const MODULE_FILE: &str = "ic-icrc1-ledger.wasm.gz";

/// `$ICRC_LEDGER_DIR`, else `../shared/fixtures/icrc-ledger` beside the repository.
pub fn fixture_dir() -> PathBuf {
    std::env::var_os("ICRC_LEDGER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/fixtures/icrc-ledger"
            ))
        })
}

/// The fixture's module, or why it cannot be read (naming the file and `ICRC_LEDGER_DIR`).
pub fn read_fixture() -> Result<Vec<u8>, String> {
    let file = fixture_dir().join(MODULE_FILE);
    std::fs::read(&file).map_err(|e| {
        format!(
            "DFINITY's ICRC ledger is not at {} ({e}); set ICRC_LEDGER_DIR",
            file.display()
        )
    })
}

/// What differs between canvid's ledger installs.
pub struct LedgerInit<'a> {
    /// Owner of the minting account (transfers from it mint).
    pub minter: Principal,
    pub transfer_fee: u64,
    /// Memo bytes a transfer may carry; `None`: the ledger's default (32).
    pub max_memo_length: Option<u16>,
    /// Default accounts funded at install.
    pub initial_balances: &'a [(Principal, Nat)],
    /// Controller of the archive canisters the ledger may spawn.
    pub archive_controller: Principal,
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
    metadata: Vec<(String, String)>,
    initial_balances: Vec<(Account, Nat)>,
    feature_flags: Option<FeatureFlags>,
    archive_options: ArchiveOptions,
    index_principal: Option<Principal>,
}

#[derive(CandidType)]
enum LedgerArg {
    Init(InitArgs),
}

/// The candid-encoded `LedgerArg::Init` (the fixture's `ledger.did`) for `init`.
pub fn init_arg(init: &LedgerInit) -> Vec<u8> {
    candid::encode_one(LedgerArg::Init(InitArgs {
        minting_account: Account::of(init.minter),
        fee_collector_account: None,
        transfer_fee: Nat::from(init.transfer_fee),
        decimals: Some(8),
        max_memo_length: init.max_memo_length,
        token_symbol: "TST".into(),
        token_name: "canvid test token".into(),
        metadata: vec![],
        initial_balances: init
            .initial_balances
            .iter()
            .map(|(p, n)| (Account::of(*p), n.clone()))
            .collect(),
        feature_flags: Some(FeatureFlags { icrc2: true }),
        archive_options: ArchiveOptions {
            num_blocks_to_archive: 1_000,
            max_transactions_per_response: None,
            trigger_threshold: 2_000,
            max_message_size_bytes: None,
            cycles_for_archive_creation: Some(0),
            node_max_memory_size_bytes: None,
            controller_id: init.archive_controller,
            more_controller_ids: None,
        },
        index_principal: None,
    }))
    .expect("encoding the ledger's init argument")
}
