//! `canvid serve --icrc-ledger PATH --fund PRINCIPAL=AMOUNT`: DFINITY's ICRC-1/2/3 ledger (the
//! code that runs ckBTC, ckUSDC and SNS ledgers, built from the IC repository; never a home-made
//! one) in the embedded replica, so paid videos (docs/access.md) can be bought locally.
//!
//! * PATH is the module (`ic-icrc1-ledger.wasm.gz` or `.wasm`) or a folder holding
//!   `ic-icrc1-ledger.wasm.gz` (e.g. `../shared/fixtures/icrc-ledger`); also `$CANVID_ICRC_LEDGER`.
//! * Installed once, with ICRC-2 on, transfer fee [`FEE`], 8 decimals, symbol `TST`, minting
//!   account [`minter`]; the id is kept in `DIR/canister_ids.json` as `"icrc_ledger"`, so a
//!   restart on the same state restores the same ledger with its balances and blocks.
//! * Every `--fund` mints (an `icrc1_transfer` from the minting account) on every start.
//! * serve prints `icrc ledger <id>` and each `funded <principal> with <amount>`.

use std::path::{Path, PathBuf};

use candid::{Nat, Principal};
use canvid_replica::Replica;
use canvid_types::icrc::Account;
use canvid_types::ledger::{TransferArg, TransferError};

use crate::embedded::{self, demo_identity};
use crate::error::{Error, Result};

/// The ledger's transfer fee (in its smallest unit).
pub const FEE: u64 = 10_000;
/// Operating cycles of the ledger canister.
const LEDGER_CYCLES: u128 = 100_000_000_000_000;
/// The environment variable naming the ledger when `--icrc-ledger` is absent.
pub const LEDGER_VAR: &str = "CANVID_ICRC_LEDGER";
/// The module's file name in a folder.
pub const LEDGER_FILE: &str = canvid_devkit::icrc_ledger::MODULE_FILE;
/// The key of the ledger in `canister_ids.json`.
pub const IDS_KEY: &str = "icrc_ledger";

/// The ledger's minting account owner (a demo identity: nobody holds its key; serve mints as it).
pub fn minter() -> Principal {
    demo_identity("icrc-minter")
}

/// `--fund PRINCIPAL=AMOUNT`.
pub fn parse_fund(text: &str) -> Result<(Principal, Nat)> {
    let bad = |reason: String| Error::InvalidPrincipal {
        what: "--fund",
        text: text.to_string(),
        reason,
    };
    let (p, n) = text
        .split_once('=')
        .ok_or_else(|| bad("expected PRINCIPAL=AMOUNT".into()))?;
    let principal = Principal::from_text(p.trim()).map_err(|e| bad(e.to_string()))?;
    let digits: String = n.trim().chars().filter(|c| *c != '_').collect();
    let amount: u64 = digits
        .parse()
        .map_err(|e| bad(format!("amount {n:?}: {e}")))?;
    Ok((principal, Nat::from(amount)))
}

/// The module at `path` (a file, or a folder holding [`LEDGER_FILE`]).
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    let file: PathBuf = if path.is_dir() {
        path.join(LEDGER_FILE)
    } else {
        path.to_path_buf()
    };
    std::fs::read(&file)
        .map_err(|e| Error::io(format!("reading the ICRC ledger {}", file.display()), e))
}

/// The ledger `ids` names if the replica has it, else a fresh install of `module`; then mints
/// each of `funds`. Returns the ledger's id.
pub fn ensure(
    replica: &Replica,
    existing: Option<Principal>,
    module: Vec<u8>,
    funds: &[(Principal, Nat)],
) -> Result<Principal> {
    let admin = demo_identity("admin");
    let id = match existing {
        Some(id) if replica.canister_exists(id) => {
            println!("icrc ledger {id} (restored)");
            id
        }
        _ => {
            let id = replica.create_canister_with_settings(
                Some(admin),
                Some(canvid_replica::CanisterSettings {
                    controllers: Some(vec![admin]),
                    ..Default::default()
                }),
            );
            replica.add_cycles(id, LEDGER_CYCLES);
            let arg =
                canvid_devkit::icrc_ledger::init_arg(&canvid_devkit::icrc_ledger::LedgerInit {
                    minter: minter(),
                    transfer_fee: FEE,
                    max_memo_length: Some(64),
                    initial_balances: &[],
                    archive_controller: admin,
                });
            replica
                .install_code(
                    canvid_replica::InstallMode::Install,
                    id,
                    module,
                    arg,
                    Some(admin),
                )
                .map_err(|e| Error::Deploy(format!("installing the ICRC ledger at {id}: {e}")))?;
            println!("icrc ledger {id} (ICRC-1/2/3, fee {FEE}, symbol TST)");
            id
        }
    };
    for (who, amount) in funds {
        let arg = TransferArg {
            from_subaccount: None,
            to: Account::of(*who),
            amount: amount.clone(),
            fee: None,
            memo: None,
            created_at_time: None,
        };
        let (r, _): (std::result::Result<Nat, TransferError>, _) =
            embedded::update(replica, id, minter(), "icrc1_transfer", (arg,))?;
        match r {
            Ok(block) => println!("funded {who} with {amount} (block {block})"),
            Err(e) => return Err(Error::State(format!("minting {amount} for {who}: {e:?}"))),
        }
    }
    Ok(id)
}

/// Adds `"icrc_ledger": {"embedded": id}` to `DIR/canister_ids.json` (other entries kept).
pub fn record_id(dir: &Path, id: Principal) -> Result<()> {
    let path = dir.join("canister_ids.json");
    let mut map = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&t).ok())
        .unwrap_or_default();
    map.insert(
        IDS_KEY.into(),
        serde_json::json!({ "embedded": id.to_text() }),
    );
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(map))
        .map_err(|e| Error::State(e.to_string()))?;
    let tmp = dir.join("canister_ids.json.tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// The ledger recorded in `DIR/canister_ids.json`, if any.
pub fn recorded_id(dir: &Path) -> Option<Principal> {
    let text = std::fs::read_to_string(dir.join("canister_ids.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Principal::from_text(v.get(IDS_KEY)?.get("embedded")?.as_str()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fund_parses_principal_and_amount() {
        let (p, n) = parse_fund("2vxsx-fae=1_000_000").unwrap();
        assert_eq!(p, Principal::anonymous());
        assert_eq!(n, Nat::from(1_000_000u64));
        assert!(parse_fund("2vxsx-fae").is_err());
        assert!(parse_fund("nope=1").is_err());
        assert!(parse_fund("2vxsx-fae=-1").is_err());
    }
}
