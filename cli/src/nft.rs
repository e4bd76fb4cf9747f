//! `canvid nft ...`: the index canister as canvid's ICRC-7 collection (docs/nft.md) from the
//! command line — tokens, owners, ICRC-37 approvals, transfers and the ICRC-3 log — with the
//! CLI's identity and network options. Token ids are video canister numbers
//! ([`canvid_types::icrc::token_id_of`]); every command takes a token id or a canister id.

use std::collections::BTreeMap;
use std::time::Duration;

use candid::{Nat, Principal};
use canvid_icrc3::types::{GetBlocksRequest, GetBlocksResult};
use canvid_icrc3::Value;
use canvid_types::icrc::{
    token_id_from_nat, token_id_of, video_of_token, Account, ApprovalInfo, ApproveTokenArg,
    ApproveTokenError, TokenApproval, TransferArg, TransferError, TransferFromArg,
    TransferFromError,
};
use clap::Subcommand;

use crate::cli::NetArgs;
use crate::error::{Error, Result};
use crate::network::{Client, Kind};

/// The `canvid nft` subcommands.
#[derive(Debug, Subcommand)]
pub enum NftCommand {
    /// List the collection's tokens (every video canister is one), with their owners.
    List {
        /// Only this principal's tokens.
        #[arg(long, value_name = "PRINCIPAL")]
        owner: Option<String>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Show one token: its id and video canister, owner, metadata and approvals.
    Show {
        /// Token id (a number) or video canister id.
        token: String,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Approve a spender (e.g. a marketplace) to transfer a token you hold (ICRC-37).
    Approve {
        /// Token id or video canister id.
        token: String,
        /// Principal of the spender.
        spender: String,
        /// The approval ends after this long: seconds, or a number with s, m, h or d
        /// (e.g. 30m, 7d). Default: no expiry.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires_in: Option<Duration>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Transfer a token you hold (ICRC-7): the video canister itself moves to the recipient,
    /// then its controllers are checked in the IC's certified state.
    Transfer {
        /// Token id or video canister id.
        token: String,
        /// Principal of the recipient.
        to: String,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Transfer a token as an approved spender (ICRC-37 transfer_from), as a marketplace does.
    TransferFrom {
        /// Token id or video canister id.
        token: String,
        /// The current holder.
        #[arg(long, value_name = "PRINCIPAL")]
        from: String,
        /// The recipient.
        #[arg(long, value_name = "PRINCIPAL")]
        to: String,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Have the collection re-read the video's own title, description, size and digest into the
    /// token's metadata (after an upload or a metadata edit; the holder or an admin).
    Refresh {
        /// Token id or video canister id.
        token: String,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Print the collection's ICRC-3 log: mints, transfers, approvals, revocations.
    History {
        /// First block.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Blocks to print (at most 500 per call to the collection).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=500))]
        length: u64,
        #[command(flatten)]
        net: NetArgs,
    },
}

impl NftCommand {
    /// The network options of the subcommand.
    pub fn net(&self) -> &NetArgs {
        match self {
            NftCommand::List { net, .. }
            | NftCommand::Show { net, .. }
            | NftCommand::Approve { net, .. }
            | NftCommand::Transfer { net, .. }
            | NftCommand::TransferFrom { net, .. }
            | NftCommand::Refresh { net, .. }
            | NftCommand::History { net, .. } => net,
        }
    }
}

/// `30`, `30s`, `10m`, `2h`, `7d`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 3600, 30m, 2h or 7d"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .filter(|s| *s > 0)
    .ok_or_else(|| format!("'{s}' is not a positive duration like 3600, 30m, 2h or 7d"))?;
    Ok(Duration::from_secs(secs))
}

/// A token id from a number or a video canister id.
pub fn parse_token(text: &str) -> Result<u64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| Error::InvalidPrincipal {
            what: "token",
            text: text.into(),
            reason: "larger than any token id (2^64 - 1)".into(),
        });
    }
    let p = crate::cli::principal("token (a token id or a video canister id)", text)?;
    token_id_of(&p).ok_or_else(|| Error::InvalidPrincipal {
        what: "token",
        text: text.into(),
        reason: "not a canister id, so no token".into(),
    })
}

/// Validates the arguments, then runs the subcommand.
pub fn run(cmd: NftCommand) -> Result<()> {
    let net = cmd.net().clone();
    match cmd {
        NftCommand::List { owner, .. } => {
            let owner = owner
                .map(|o| crate::cli::principal("owner", &o))
                .transpose()?;
            crate::cli::with_client(&net, |c| async move { list(&c, owner).await })
        }
        NftCommand::Show { token, .. } => {
            let tid = parse_token(&token)?;
            crate::cli::with_client(&net, |c| async move { show(&c, tid).await })
        }
        NftCommand::Approve {
            token,
            spender,
            expires_in,
            ..
        } => {
            let tid = parse_token(&token)?;
            let spender = crate::cli::principal("spender", &spender)?;
            crate::cli::with_client(&net, |c| async move {
                approve(&c, tid, spender, expires_in).await
            })
        }
        NftCommand::Transfer { token, to, .. } => {
            let tid = parse_token(&token)?;
            let to = crate::cli::principal("recipient", &to)?;
            crate::cli::with_client(&net, |c| async move { transfer(&c, tid, None, to).await })
        }
        NftCommand::TransferFrom {
            token, from, to, ..
        } => {
            let tid = parse_token(&token)?;
            let from = crate::cli::principal("--from", &from)?;
            let to = crate::cli::principal("--to", &to)?;
            crate::cli::with_client(
                &net,
                |c| async move { transfer(&c, tid, Some(from), to).await },
            )
        }
        NftCommand::Refresh { token, .. } => {
            let tid = parse_token(&token)?;
            crate::cli::with_client(&net, |c| async move { refresh(&c, tid).await })
        }
        NftCommand::History { start, length, .. } => {
            crate::cli::with_client(&net, |c| async move { history(&c, start, length).await })
        }
    }
}

/// `refresh_token_metadata` for one token, then the metadata as the collection now shows it.
pub async fn refresh(client: &Client, tid: u64) -> Result<()> {
    let index = client.index()?;
    let method = "refresh_token_metadata";
    let r: Vec<canvid_types::Result<()>> = client
        .call(Kind::Update, index, method, (vec![nat(tid)],))
        .await?;
    let n = r.len();
    match r.into_iter().next() {
        Some(Ok(())) if n == 1 => {}
        Some(Err(e)) => return Err(refused(client, method, e.to_string())),
        _ => {
            return Err(Error::BadReply {
                canister: index,
                method: method.into(),
                reason: format!("{n} answer(s) to one request"),
            })
        }
    }
    show(client, tid).await
}

fn nat(n: u64) -> Nat {
    Nat::from(n)
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// An ICRC-7/37 error variant as one line: the variant, the collection's message and, for a
/// `GenericError`, what its code means (docs/nft.md "Error codes").
pub fn describe_icrc_error(variant: &str, code: Option<&Nat>, message: Option<&str>) -> String {
    let meaning = |c: &Nat| {
        match token_id_from_nat(c) {
        Some(1) => "busy: the token is being transferred or its video is busy; retry",
        Some(2) => "the holder does not control the video canister alone, or it runs a module the platform did not install",
        Some(3) => "the video canister refused the transfer or did not move",
        Some(4) => "a call failed: nothing changed, or the collection settles the outcome within minutes (check `canvid nft show`)",
        Some(5) => "the memo is longer than 32 bytes",
        Some(6) => "the recipient cannot hold a video (only a principal's default account can)",
        Some(7) => "too many approvals",
        Some(8) => "approvals are made from the default account",
        Some(9) => "the expiry is not in the future",
        Some(10) => "too many requests in one call",
        _ => "error",
    }
    };
    match (code, message) {
        (Some(c), Some(m)) => format!("{variant} {c} ({}): {m}", meaning(c)),
        (None, Some(m)) => format!("{variant}: {m}"),
        _ => match variant {
            "NonExistingTokenId" => "NonExistingTokenId: no such token in this collection".into(),
            "Unauthorized" => {
                "Unauthorized: this identity does not hold the token and is not approved for it"
                    .into()
            }
            "InvalidRecipient" => {
                "InvalidRecipient: the recipient already holds the token or cannot hold it".into()
            }
            "InvalidSpender" => "InvalidSpender: the spender is the holder itself".into(),
            "TooOld" => "TooOld: created_at_time is older than the transaction window".into(),
            other => other.to_string(),
        },
    }
}

fn transfer_error_text(e: &TransferError) -> String {
    match e {
        TransferError::GenericError {
            error_code,
            message,
        }
        | TransferError::GenericBatchError {
            error_code,
            message,
        } => describe_icrc_error("GenericError", Some(error_code), Some(message)),
        TransferError::Duplicate { duplicate_of } => {
            format!("Duplicate: the same request was already applied as block {duplicate_of}")
        }
        TransferError::CreatedInFuture { ledger_time } => {
            format!("CreatedInFuture: the collection's time is {ledger_time}")
        }
        other => describe_icrc_error(&format!("{other:?}"), None, None),
    }
}

fn transfer_from_error_text(e: &TransferFromError) -> String {
    match e {
        TransferFromError::GenericError {
            error_code,
            message,
        }
        | TransferFromError::GenericBatchError {
            error_code,
            message,
        } => describe_icrc_error("GenericError", Some(error_code), Some(message)),
        TransferFromError::Duplicate { duplicate_of } => {
            format!("Duplicate: the same request was already applied as block {duplicate_of}")
        }
        TransferFromError::CreatedInFuture { ledger_time } => {
            format!("CreatedInFuture: the collection's time is {ledger_time}")
        }
        other => describe_icrc_error(&format!("{other:?}"), None, None),
    }
}

fn approve_error_text(e: &ApproveTokenError) -> String {
    match e {
        ApproveTokenError::GenericError {
            error_code,
            message,
        }
        | ApproveTokenError::GenericBatchError {
            error_code,
            message,
        } => describe_icrc_error("GenericError", Some(error_code), Some(message)),
        ApproveTokenError::CreatedInFuture { ledger_time } => {
            format!("CreatedInFuture: the collection's time is {ledger_time}")
        }
        other => describe_icrc_error(&format!("{other:?}"), None, None),
    }
}

fn refused(client: &Client, method: &str, detail: String) -> Error {
    Error::CollectionRefused {
        canister: client.index().unwrap_or(Principal::anonymous()),
        method: method.into(),
        detail,
    }
}

/// The one answer of a one-request batch.
fn single<T>(client: &Client, method: &str, answers: Vec<Option<T>>) -> Result<T> {
    let n = answers.len();
    answers
        .into_iter()
        .next()
        .flatten()
        .filter(|_| n == 1)
        .ok_or_else(|| Error::BadReply {
            canister: client.index().unwrap_or(Principal::anonymous()),
            method: method.into(),
            reason: format!("{n} answer(s) to one request"),
        })
}

async fn owner_of(client: &Client, tid: u64) -> Result<Option<Principal>> {
    let r: Vec<Option<Account>> = client
        .call(
            Kind::Query,
            client.index()?,
            "icrc7_owner_of",
            (vec![nat(tid)],),
        )
        .await?;
    Ok(r.into_iter().next().flatten().map(|a| a.owner))
}

async fn owners_of(client: &Client, tids: &[Nat]) -> Result<Vec<Option<Principal>>> {
    let mut out = Vec::with_capacity(tids.len());
    for batch in tids.chunks(100) {
        let r: Vec<Option<Account>> = client
            .call(
                Kind::Query,
                client.index()?,
                "icrc7_owner_of",
                (batch.to_vec(),),
            )
            .await?;
        out.extend(r.into_iter().map(|a| a.map(|a| a.owner)));
    }
    Ok(out)
}

const PAGE: u64 = 1000;

pub async fn list(client: &Client, owner: Option<Principal>) -> Result<()> {
    let index = client.index()?;
    let mut tokens: Vec<Nat> = Vec::new();
    let mut prev: Option<Nat> = None;
    loop {
        let page: Vec<Nat> = match owner {
            Some(o) => {
                client
                    .call(
                        Kind::Query,
                        index,
                        "icrc7_tokens_of",
                        (Account::of(o), prev.clone(), Some(nat(PAGE))),
                    )
                    .await?
            }
            None => {
                client
                    .call(
                        Kind::Query,
                        index,
                        "icrc7_tokens",
                        (prev.clone(), Some(nat(PAGE))),
                    )
                    .await?
            }
        };
        let full = page.len() as u64 == PAGE;
        let last = page.last().cloned();
        tokens.extend(page);
        match last {
            Some(l) if full && Some(&l) != prev.as_ref() => prev = Some(l),
            _ => break,
        }
    }
    let owners = owners_of(client, &tokens).await?;
    for (t, o) in tokens.iter().zip(owners) {
        let video = token_id_from_nat(t)
            .map(|tid| video_of_token(tid).to_text())
            .unwrap_or_else(|| "?".into());
        let owner = o.map(|p| p.to_text()).unwrap_or_else(|| "-".into());
        println!("{t}  {video}  {owner}");
    }
    match owner {
        Some(o) => println!("{} token(s) held by {o}", tokens.len()),
        None => println!("{} token(s) in collection {index}", tokens.len()),
    }
    Ok(())
}

/// An ICRC-3 `Value` as short text.
fn value_text(v: &Value) -> String {
    match v {
        Value::Nat(n) => n.to_string().replace('_', ""),
        Value::Int(i) => i.to_string().replace('_', ""),
        Value::Text(t) => t.clone(),
        Value::Blob(b) => account_text(v).unwrap_or_else(|| hex::encode(b)),
        Value::Array(items) => account_text(v).unwrap_or_else(|| {
            format!(
                "[{}]",
                items.iter().map(value_text).collect::<Vec<_>>().join(", ")
            )
        }),
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}: {}", value_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// An ICRC-3 account (`vec { blob owner; opt blob subaccount }`) as `principal[.subaccount hex]`.
fn account_text(v: &Value) -> Option<String> {
    let Value::Array(items) = v else {
        return None;
    };
    let Some(Value::Blob(owner)) = items.first() else {
        return None;
    };
    if owner.len() > 29 || items.len() > 2 {
        return None;
    }
    let p = Principal::try_from_slice(owner).ok()?.to_text();
    match items.get(1) {
        Some(Value::Blob(sub)) if sub.iter().any(|b| *b != 0) => {
            Some(format!("{p}.{}", hex::encode(sub)))
        }
        _ => Some(p),
    }
}

/// Nanoseconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub async fn show(client: &Client, tid: u64) -> Result<()> {
    let index = client.index()?;
    let video = video_of_token(tid);
    let meta: Vec<Option<Vec<(String, Value)>>> = client
        .call(
            Kind::Query,
            index,
            "icrc7_token_metadata",
            (vec![nat(tid)],),
        )
        .await?;
    let Some(meta) = meta.into_iter().next().flatten() else {
        return Err(refused(
            client,
            "icrc7_token_metadata",
            format!("token {tid} (video canister {video}) is not in the collection"),
        ));
    };
    let owner = owner_of(client, tid).await?;
    println!("token           {tid}");
    println!("video canister  {video}");
    println!(
        "owner           {}",
        owner.map(|p| p.to_text()).unwrap_or_else(|| "-".into())
    );
    println!("metadata");
    let meta: BTreeMap<String, Value> = meta.into_iter().collect();
    for (k, v) in &meta {
        let text = match (k.as_str(), v) {
            ("canvid:registered_at", Value::Nat(n)) => token_id_from_nat(n)
                .map(|ns| format!("{} ({ns})", utc(ns)))
                .unwrap_or_else(|| value_text(v)),
            _ => value_text(v),
        };
        println!("  {k} = {text}");
    }
    let approvals: Vec<TokenApproval> = client
        .call(
            Kind::Query,
            index,
            "icrc37_get_token_approvals",
            (nat(tid), None::<TokenApproval>, None::<Nat>),
        )
        .await?;
    if approvals.is_empty() {
        println!("approvals       none");
    }
    for a in approvals {
        let exp = a
            .approval_info
            .expires_at
            .map(|e| format!("until {}", utc(e)))
            .unwrap_or_else(|| "no expiry".into());
        println!(
            "approved        {} ({exp})",
            account_line(&a.approval_info.spender)
        );
    }
    Ok(())
}

fn account_line(a: &Account) -> String {
    match &a.subaccount {
        Some(s) if s.iter().any(|b| *b != 0) => format!("{}.{}", a.owner, hex::encode(s)),
        _ => a.owner.to_text(),
    }
}

pub async fn approve(
    client: &Client,
    tid: u64,
    spender: Principal,
    expires_in: Option<Duration>,
) -> Result<()> {
    let now = now_ns();
    let expires_at = expires_in.map(|d| now.saturating_add(d.as_nanos() as u64));
    let arg = ApproveTokenArg {
        token_id: nat(tid),
        approval_info: ApprovalInfo {
            spender: Account::of(spender),
            from_subaccount: None,
            expires_at,
            memo: None,
            created_at_time: now,
        },
    };
    let method = "icrc37_approve_tokens";
    let r: Vec<Option<std::result::Result<Nat, ApproveTokenError>>> = client
        .call(Kind::Update, client.index()?, method, (vec![arg],))
        .await?;
    let block =
        single(client, method, r)?.map_err(|e| refused(client, method, approve_error_text(&e)))?;
    let until = expires_at
        .map(|e| format!("until {}", utc(e)))
        .unwrap_or_else(|| "no expiry".into());
    println!(
        "approved {spender} to transfer token {tid} (video {}) {until}: block {block}",
        video_of_token(tid)
    );
    Ok(())
}

/// `icrc7_transfer` (`from` = None) or `icrc37_transfer_from`, then the certified check that
/// the recipient controls the video canister.
pub async fn transfer(
    client: &Client,
    tid: u64,
    from: Option<Principal>,
    to: Principal,
) -> Result<()> {
    let index = client.index()?;
    let video = video_of_token(tid);
    let block = match from {
        None => {
            let method = "icrc7_transfer";
            let arg = TransferArg {
                from_subaccount: None,
                to: Account::of(to),
                token_id: nat(tid),
                memo: None,
                created_at_time: None,
            };
            let r: Vec<Option<std::result::Result<Nat, TransferError>>> = client
                .call(Kind::Update, index, method, (vec![arg],))
                .await?;
            single(client, method, r)?
                .map_err(|e| refused(client, method, transfer_error_text(&e)))?
        }
        Some(from) => {
            let method = "icrc37_transfer_from";
            let arg = TransferFromArg {
                spender_subaccount: None,
                from: Account::of(from),
                to: Account::of(to),
                token_id: nat(tid),
                memo: None,
                created_at_time: None,
            };
            let r: Vec<Option<std::result::Result<Nat, TransferFromError>>> = client
                .call(Kind::Update, index, method, (vec![arg],))
                .await?;
            single(client, method, r)?
                .map_err(|e| refused(client, method, transfer_from_error_text(&e)))?
        }
    };
    println!("transferred token {tid} (video {video}) to {to}: block {block}");
    // The collection answered Ok only once the IC showed the recipient in control; check it
    // ourselves in the certified state (a replica a round behind may still show the old one).
    let mut controllers = certified_controllers(client, video).await?;
    for _ in 1..3 {
        if controllers.contains(&to) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        controllers = certified_controllers(client, video).await?;
    }
    println!(
        "certified controllers {}",
        controllers
            .iter()
            .map(Principal::to_text)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !controllers.contains(&to) {
        return Err(Error::Verify(format!(
            "the collection answered block {block}, but {to} is not among the certified controllers of {video}"
        )));
    }
    Ok(())
}

async fn certified_controllers(client: &Client, canister: Principal) -> Result<Vec<Principal>> {
    client
        .agent
        .read_state_canister_controllers(canister)
        .await
        .map_err(|e| crate::network::map_agent(&client.target, canister, "read_state", e))
}

/// One block as a line: `#id  time  btype  token N  from A  to B  spender S  exp T`.
pub fn block_line(id: &Nat, block: &Value) -> String {
    let Value::Map(top) = block else {
        return format!("#{id}  {}", value_text(block));
    };
    let mut parts = vec![format!("#{id}").replace('_', "")];
    if let Some(Value::Nat(ts)) = top.get("ts") {
        parts.push(
            token_id_from_nat(ts)
                .map(utc)
                .unwrap_or_else(|| ts.to_string()),
        );
    }
    parts.push(
        top.get("btype")
            .map(value_text)
            .unwrap_or_else(|| "?".into()),
    );
    if let Some(Value::Map(tx)) = top.get("tx") {
        for (key, label) in [
            ("tid", "token"),
            ("from", "from"),
            ("to", "to"),
            ("spender", "spender"),
            ("exp", "expires"),
            ("memo", "memo"),
        ] {
            if let Some(v) = tx.get(key) {
                let text = match (key, v) {
                    ("exp", Value::Nat(n)) => token_id_from_nat(n)
                        .map(utc)
                        .unwrap_or_else(|| value_text(v)),
                    _ => value_text(v),
                };
                parts.push(format!("{label} {text}"));
            }
        }
    }
    parts.join("  ")
}

pub async fn history(client: &Client, start: u64, length: u64) -> Result<()> {
    let r: GetBlocksResult = client
        .call(
            Kind::Query,
            client.index()?,
            "icrc3_get_blocks",
            (vec![GetBlocksRequest {
                start: nat(start),
                length: nat(length),
            }],),
        )
        .await?;
    for b in &r.blocks {
        println!("{}", block_line(&b.id, &b.block));
    }
    println!(
        "{} block(s) shown of {} in the log",
        r.blocks.len(),
        r.log_length.to_string().replace('_', "")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn tokens_are_numbers_or_canister_ids() {
        assert_eq!(parse_token("1").unwrap(), 1);
        assert_eq!(parse_token("rrkah-fqaaa-aaaaa-aaaaq-cai").unwrap(), 1);
        assert!(parse_token("2vxsx-fae").is_err());
        assert!(parse_token("99999999999999999999").is_err());
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            utc(1_764_892_800 * 1_000_000_000 + 3_661_000_000_000),
            "2025-12-05 01:01:01 UTC"
        );
    }

    #[test]
    fn blocks_read_as_one_line() {
        let owner = Principal::from_text("2vxsx-fae").unwrap();
        let acct = Value::Array(vec![Value::blob(owner.as_slice().to_vec())]);
        let tx: BTreeMap<String, Value> = [
            ("tid".to_string(), Value::Nat(Nat::from(5u8))),
            ("from".to_string(), acct.clone()),
            ("to".to_string(), acct),
        ]
        .into_iter()
        .collect();
        let block = Value::Map(
            [
                ("btype".to_string(), Value::Text("7xfer".into())),
                ("ts".to_string(), Value::Nat(Nat::from(0u8))),
                ("tx".to_string(), Value::Map(tx)),
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(
            block_line(&Nat::from(3u8), &block),
            "#3  1970-01-01 00:00:00 UTC  7xfer  token 5  from 2vxsx-fae  to 2vxsx-fae"
        );
    }

    #[test]
    fn generic_error_codes_are_explained() {
        let t = describe_icrc_error("GenericError", Some(&Nat::from(2u8)), Some("m"));
        assert!(t.contains("alone") && t.ends_with(": m"), "{t}");
        assert!(describe_icrc_error("Unauthorized", None, None).contains("not approved"));
    }
}
