//! `canvid access ...` and `canvid buy`: who may watch a video (public, private with an
//! allowlist, paid with passes sold over an ICRC-2 ledger), receipts, playback tokens
//! (docs/access.md), with the CLI's identity and network options.
//!
//! `canvid buy` approves the video canister on the offer's ledger for the price plus the
//! ledger's fee, then calls `buy_access` with a `created_at_time` it keeps: a `Pending` answer
//! (the payment's outcome is not known yet) is retried with the same value, which the canister
//! and the ledger both deduplicate, so the buyer is charged at most once.

use std::time::Duration;

use candid::{Nat, Principal};
use canvid_types::access::{
    AccessGrant, AccessInfo, AccessMode, AccessPolicy, BuyAccessArgs, BuyError, MyAccess, Offer,
    PaidAccess, PlaybackToken, PlaybackTokenArgs, Receipt, ReceiptsArgs, ReceiptsPage, ViewersArgs,
    ViewersPage, MAX_TOKEN_SECONDS,
};
use canvid_types::icrc::Account;
use canvid_types::ledger::{Allowance, AllowanceArgs, ApproveArgs, ApproveError};
use canvid_types::video::VideoMetadata;
use clap::{Args, Subcommand};

use crate::cli::NetArgs;
use crate::error::{Error, Result};
use crate::network::{Client, Kind};
use crate::nft::{parse_duration, utc};

/// The `canvid access` subcommands.
#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Show a video's access policy: mode, offers and prices, preview, allowlist size, passes
    /// sold, and this identity's own access.
    Show {
        /// Video canister id.
        video: String,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Set who may watch (owner only): --public, --private (the allowlist), or --paid with a
    /// ledger and offers. The stored video is not touched.
    Set(SetArgs),
    /// The allowlist: viewers who may watch a private or paid video for free, and who get the
    /// key of an end-to-end encrypted one (`canvid get` decrypts it for them) (owner only).
    Viewers {
        #[command(subcommand)]
        command: ViewersCommand,
    },
    /// List purchases: a buyer sees their own; the owner sees everyone's (or --buyer's).
    Receipts {
        /// Video canister id.
        video: String,
        /// Only this buyer's receipts (the owner's view).
        #[arg(long, value_name = "PRINCIPAL")]
        buyer: Option<String>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Get a playback token for this identity and print the URL a browser plays (a bearer
    /// URL: whoever has it can watch until it expires or is revoked).
    Token {
        /// Video canister id.
        video: String,
        /// Lifetime: seconds, or a number with s, m or h (default 1h, at most 24h; never past
        /// the end of your pass).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        ttl: Option<Duration>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Void every playback token issued so far to a viewer (default: this identity). The owner
    /// may revoke anyone's; the viewer keeps their access and can get new tokens.
    Revoke {
        /// Video canister id.
        video: String,
        /// The viewer whose tokens to void (default: this identity).
        viewer: Option<String>,
        #[command(flatten)]
        net: NetArgs,
    },
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// Video canister id.
    pub video: String,
    /// Anyone may watch (the default of a new video).
    #[arg(long, group = "mode")]
    pub public: bool,
    /// Only the owner, the uploaders and the allowlist (`canvid access viewers add`). An
    /// encrypted video must stay private or paid: a public one's key goes to nobody else.
    #[arg(long, group = "mode")]
    pub private: bool,
    /// The allowlist plus whoever buys a pass from an --offer, paid on --ledger.
    #[arg(long, group = "mode", requires_all = ["ledger", "offer"])]
    pub paid: bool,
    /// The ICRC-2 ledger the prices are in (ICP, ckBTC, ckUSDC, an SNS token...).
    #[arg(long, value_name = "ID")]
    pub ledger: Option<String>,
    /// An offer, ID=PRICE[:DURATION] (repeatable, at most 8): PRICE in the ledger's smallest
    /// unit, DURATION in seconds or with s, m, h, d (e.g. 24h=500:86400, week=2000:7d); no
    /// DURATION: a pass that never expires (forever=5000).
    #[arg(long, value_name = "ID=PRICE[:DURATION]", value_parser = parse_offer)]
    pub offer: Vec<Offer>,
    /// Bytes anyone may watch from the start, whatever the mode (rounded up to whole chunks by
    /// the canister).
    #[arg(long, value_name = "N", conflicts_with = "preview_seconds")]
    pub preview_bytes: Option<u64>,
    /// Seconds anyone may watch from the start: converted to bytes with the video's duration
    /// and size (a constant bitrate is assumed), then rounded up to whole chunks.
    #[arg(long, value_name = "S")]
    pub preview_seconds: Option<f64>,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Subcommand)]
pub enum ViewersCommand {
    /// Put principals on the allowlist.
    Add {
        /// Video canister id.
        video: String,
        #[arg(required = true, value_name = "PRINCIPAL")]
        principals: Vec<String>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Take principals off the allowlist (their playback tokens stop working at once).
    Remove {
        /// Video canister id.
        video: String,
        #[arg(required = true, value_name = "PRINCIPAL")]
        principals: Vec<String>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Print the allowlist.
    List {
        /// Video canister id.
        video: String,
        #[command(flatten)]
        net: NetArgs,
    },
}

/// `canvid buy`.
#[derive(Debug, Args)]
pub struct BuyArgs {
    /// Video canister id.
    pub video: String,
    /// The offer's id (as `canvid access show` lists them).
    #[arg(long, value_name = "ID")]
    pub offer: String,
    /// Resume a purchase whose outcome was not known: the value `canvid buy` printed (within
    /// the hour). The canister and the ledger deduplicate by it: charged at most once.
    #[arg(long, value_name = "NS")]
    pub created_at_time: Option<u64>,
    /// How long to keep retrying a pending payment before giving up (the canister keeps
    /// settling it on its own).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub wait: Duration,
    #[command(flatten)]
    pub net: NetArgs,
}

impl AccessCommand {
    pub fn net(&self) -> &NetArgs {
        match self {
            AccessCommand::Show { net, .. }
            | AccessCommand::Set(SetArgs { net, .. })
            | AccessCommand::Receipts { net, .. }
            | AccessCommand::Token { net, .. }
            | AccessCommand::Revoke { net, .. } => net,
            AccessCommand::Viewers { command } => match command {
                ViewersCommand::Add { net, .. }
                | ViewersCommand::Remove { net, .. }
                | ViewersCommand::List { net, .. } => net,
            },
        }
    }
}

/// `24h=500:86400`, `week=2000:7d`, `forever=5000`.
pub fn parse_offer(s: &str) -> std::result::Result<Offer, String> {
    let bad =
        |why: &str| format!("'{s}': {why} (expected ID=PRICE[:DURATION], e.g. 24h=500:86400)");
    let (id, rest) = s.split_once('=').ok_or_else(|| bad("no '='"))?;
    let (price, duration) = match rest.split_once(':') {
        Some((p, d)) => (p, Some(d)),
        None => (rest, None),
    };
    let price: u128 = price
        .replace('_', "")
        .parse()
        .map_err(|_| bad("the price is not a whole number"))?;
    let duration_seconds = duration
        .map(|d| parse_duration(d).map(|d| d.as_secs()))
        .transpose()?;
    let offer = Offer {
        id: id.to_string(),
        price: Nat::from(price),
        duration_seconds,
    };
    offer.validate().map_err(|e| e.to_string())?;
    Ok(offer)
}

fn input(what: &'static str, text: &str, reason: impl Into<String>) -> Error {
    let reason = reason.into();
    if text.is_empty() {
        Error::Input(format!("{what}: {reason}"))
    } else {
        Error::Input(format!("invalid {what} '{text}': {reason}"))
    }
}

/// Validates the arguments, then runs the subcommand.
pub fn run(cmd: AccessCommand) -> Result<()> {
    let net = cmd.net().clone();
    let video_id = |v: &str| crate::cli::principal("video id", v);
    match cmd {
        AccessCommand::Show { video, .. } => {
            let video = video_id(&video)?;
            crate::cli::with_client(&net, |c| async move { show(&c, video).await })
        }
        AccessCommand::Set(args) => {
            let video = video_id(&args.video)?;
            let mode = if args.paid {
                let text = args.ledger.clone().unwrap_or_default();
                let ledger = crate::cli::principal("ledger", &text)?;
                AccessMode::Paid(PaidAccess {
                    ledger,
                    offers: args.offer.clone(),
                })
            } else if args.private {
                AccessMode::Private
            } else if args.public {
                AccessMode::Public
            } else {
                return Err(input(
                    "access mode",
                    "",
                    "pass --public, --private or --paid",
                ));
            };
            if !args.paid && (args.ledger.is_some() || !args.offer.is_empty()) {
                return Err(input(
                    "access mode",
                    "--ledger/--offer",
                    "offers only go with --paid",
                ));
            }
            let policy = AccessPolicy {
                free_paths: None,
                mode,
                preview_bytes: args.preview_bytes,
            };
            policy
                .validate()
                .map_err(|e| input("policy", "", e.to_string()))?;
            let seconds = args.preview_seconds;
            if let Some(s) = seconds {
                if !(s.is_finite() && s >= 0.0) {
                    return Err(input(
                        "--preview-seconds",
                        &s.to_string(),
                        "not a number of seconds",
                    ));
                }
            }
            crate::cli::with_client(
                &net,
                |c| async move { set(&c, video, policy, seconds).await },
            )
        }
        AccessCommand::Viewers { command } => match command {
            ViewersCommand::Add {
                video, principals, ..
            } => {
                let video = video_id(&video)?;
                let ps = principals_of(&principals)?;
                crate::cli::with_client(&net, |c| async move {
                    change_viewers(&c, video, ps, true).await
                })
            }
            ViewersCommand::Remove {
                video, principals, ..
            } => {
                let video = video_id(&video)?;
                let ps = principals_of(&principals)?;
                crate::cli::with_client(&net, |c| async move {
                    change_viewers(&c, video, ps, false).await
                })
            }
            ViewersCommand::List { video, .. } => {
                let video = video_id(&video)?;
                crate::cli::with_client(&net, |c| async move { list_viewers(&c, video).await })
            }
        },
        AccessCommand::Receipts { video, buyer, .. } => {
            let video = video_id(&video)?;
            let buyer = buyer
                .map(|b| crate::cli::principal("buyer", &b))
                .transpose()?;
            crate::cli::with_client(&net, |c| async move { receipts(&c, video, buyer).await })
        }
        AccessCommand::Token { video, ttl, .. } => {
            let video = video_id(&video)?;
            let ttl = match ttl {
                None => None,
                Some(d) if d.as_secs() <= MAX_TOKEN_SECONDS as u64 => Some(d.as_secs() as u32),
                Some(d) => {
                    return Err(input(
                        "--ttl",
                        &format!("{}s", d.as_secs()),
                        format!("a token lives at most {MAX_TOKEN_SECONDS} s (24h)"),
                    ))
                }
            };
            crate::cli::with_client(&net, |c| async move { token(&c, video, ttl).await })
        }
        AccessCommand::Revoke { video, viewer, .. } => {
            let video = video_id(&video)?;
            let viewer = viewer
                .map(|v| crate::cli::principal("viewer", &v))
                .transpose()?;
            crate::cli::with_client(&net, |c| async move { revoke(&c, video, viewer).await })
        }
    }
}

/// `canvid buy`: validates the arguments, then buys.
pub fn run_buy(args: BuyArgs) -> Result<()> {
    let video = crate::cli::principal("video id", &args.video)?;
    let net = args.net.clone();
    crate::cli::with_client(&net, |c| async move { buy(&c, video, &args).await })
}

fn principals_of(texts: &[String]) -> Result<Vec<Principal>> {
    texts
        .iter()
        .map(|t| crate::cli::principal("viewer", t))
        .collect()
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn nat_text(n: &Nat) -> String {
    n.to_string().replace('_', "")
}

/// `86400` → `1d`, `5400` → `90m`, `61` → `61s`.
fn duration_text(secs: u64) -> String {
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= n && secs.is_multiple_of(n) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

fn offer_line(o: &Offer) -> String {
    let lasts = match o.duration_seconds {
        Some(d) => format!("a pass of {} ({d} s)", duration_text(d)),
        None => "a pass that never expires".into(),
    };
    format!("{}  price {}  {lasts}", o.id, nat_text(&o.price))
}

fn grant_text(g: &Option<AccessGrant>) -> String {
    match g {
        None => "the preview only".into(),
        Some(AccessGrant::Public) => "may watch (the video is public)".into(),
        Some(AccessGrant::Owner) => "may watch (owner)".into(),
        Some(AccessGrant::Uploader) => "may watch (uploader)".into(),
        Some(AccessGrant::Viewer) => "may watch (on the allowlist)".into(),
        Some(AccessGrant::Pass {
            expires_at,
            receipt,
        }) => match expires_at {
            Some(e) => format!("a pass until {} (receipt {receipt})", utc(*e)),
            None => format!("a pass that never expires (receipt {receipt})"),
        },
    }
}

fn print_info(video: Principal, info: &AccessInfo) {
    println!("video           {video}");
    match &info.policy.mode {
        AccessMode::Public => println!("mode            public: anyone may watch"),
        AccessMode::Private => {
            println!("mode            private: the owner, the uploaders and the allowlist")
        }
        AccessMode::Paid(p) => {
            println!("mode            paid: the allowlist and pass holders");
            println!("ledger          {}", p.ledger);
            for o in &p.offers {
                println!("offer           {}", offer_line(o));
            }
        }
    }
    if !info.policy.is_public() {
        let asked = info.policy.preview_bytes.unwrap_or(0);
        println!(
            "preview         bytes [0, {}) are public (asked {asked}, rounded up to whole chunks)",
            info.preview_end
        );
    }
    println!("viewers         {} on the allowlist", info.viewer_count);
    println!("receipts        {}", info.receipt_count);
}

async fn access_info(client: &Client, video: Principal) -> Result<AccessInfo> {
    client.call(Kind::Query, video, "access_policy", ()).await
}

pub async fn show(client: &Client, video: Principal) -> Result<()> {
    let info = access_info(client, video).await?;
    print_info(video, &info);
    let mine: MyAccess = client.call(Kind::Query, video, "my_access", ()).await?;
    println!("you             {}", grant_text(&mine.grant));
    if !mine.pending_purchases.is_empty() {
        println!(
            "pending         purchase(s) {:?}: payment not settled yet (retry `canvid buy` with its --created-at-time, or wait for the canister's retry)",
            mine.pending_purchases
        );
    }
    Ok(())
}

/// Bytes covering the first `seconds` of a video of `size` bytes lasting `duration_ms`, at a
/// constant bitrate (rounded up).
pub fn seconds_to_bytes(seconds: f64, size: u64, duration_ms: u64) -> u64 {
    if duration_ms == 0 {
        return size;
    }
    let bytes = (seconds * 1000.0 * size as f64 / duration_ms as f64).ceil();
    (bytes as u64).min(size)
}

pub async fn set(
    client: &Client,
    video: Principal,
    mut policy: AccessPolicy,
    preview_seconds: Option<f64>,
) -> Result<()> {
    if let Some(s) = preview_seconds {
        let meta: VideoMetadata = client.call(Kind::Query, video, "metadata", ()).await?;
        let Some(d) = meta.duration_ms.filter(|d| *d > 0) else {
            return Err(input(
                "--preview-seconds",
                &s.to_string(),
                "the video's duration is unknown (not declared at upload): pass --preview-bytes",
            ));
        };
        let bytes = seconds_to_bytes(s, meta.size, d);
        eprintln!(
            "--preview-seconds {s}: {bytes} of {} bytes ({} s of {:.1} s at a constant bitrate); the canister rounds it up to whole chunks of {} bytes",
            meta.size,
            s,
            d as f64 / 1000.0,
            meta.chunk_size
        );
        policy.preview_bytes = Some(bytes);
    }
    let info: AccessInfo = client
        .call_ok(Kind::Update, video, "set_access_policy", (policy,))
        .await?;
    print_info(video, &info);
    Ok(())
}

pub async fn change_viewers(
    client: &Client,
    video: Principal,
    principals: Vec<Principal>,
    add: bool,
) -> Result<()> {
    let method = if add { "add_viewers" } else { "remove_viewers" };
    let mut total = 0u32;
    for batch in principals.chunks(canvid_types::access::MAX_VIEWERS_PER_CALL) {
        total = client
            .call_ok::<u32>(Kind::Update, video, method, (batch.to_vec(),))
            .await?;
    }
    let verb = if add { "added" } else { "removed" };
    println!(
        "{verb} {} viewer(s); {total} on the allowlist of {video}",
        principals.len()
    );
    Ok(())
}

pub async fn list_viewers(client: &Client, video: Principal) -> Result<()> {
    let mut start_after = None;
    let total = loop {
        let page: ViewersPage = client
            .call_ok(
                Kind::Query,
                video,
                "viewers",
                (ViewersArgs {
                    start_after,
                    limit: None,
                },),
            )
            .await?;
        for v in &page.viewers {
            println!("{v}");
        }
        match page.next {
            Some(n) if Some(n) != start_after => start_after = Some(n),
            _ => break page.total,
        }
    };
    println!("{total} viewer(s) on the allowlist of {video}");
    Ok(())
}

fn receipt_line(r: &Receipt) -> String {
    let until = r.valid_until.map(utc).unwrap_or_else(|| "forever".into());
    format!(
        "#{}  offer {}  buyer {}  amount {}  block {}  paid {}  valid until {until}",
        r.id,
        r.offer,
        r.buyer,
        nat_text(&r.amount),
        nat_text(&r.block_index),
        utc(r.paid_at)
    )
}

pub async fn receipts(client: &Client, video: Principal, buyer: Option<Principal>) -> Result<()> {
    let mut start_after = None;
    let mut n = 0;
    loop {
        let page: ReceiptsPage = client
            .call_ok(
                Kind::Query,
                video,
                "receipts",
                (ReceiptsArgs {
                    buyer,
                    start_after,
                    limit: None,
                },),
            )
            .await?;
        for r in &page.receipts {
            println!("{}", receipt_line(r));
            n += 1;
        }
        match page.next {
            Some(next) if Some(next) != start_after => start_after = Some(next),
            _ => break,
        }
    }
    println!("{n} receipt(s) of {video}");
    Ok(())
}

/// Where a browser plays `path` of `video` on the client's network: `<id>.localhost:<port>`
/// for `canvid serve` and local replicas, `<id>.icp0.io` on the IC, `?canisterId=` elsewhere.
pub fn playback_url(client: &Client, video: Principal, path: &str) -> String {
    let url = client.target.url.trim_end_matches('/');
    if client.target.network_name == "ic" {
        return format!("https://{video}.icp0.io{path}");
    }
    for host in ["127.0.0.1", "localhost"] {
        for scheme in ["http://", "https://"] {
            let prefix = format!("{scheme}{host}");
            if let Some(port) = url.strip_prefix(&prefix) {
                if port.is_empty() || port.starts_with(':') {
                    return format!("{scheme}{video}.localhost{port}{path}");
                }
            }
        }
    }
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{url}{path}{sep}canisterId={video}")
}

pub async fn token(client: &Client, video: Principal, ttl_seconds: Option<u32>) -> Result<()> {
    // A public video plays without a token (and refuses token requests as ingress).
    if access_info(client, video).await?.policy.is_public() {
        println!("{video} is public: it plays without a token");
        println!("{}", playback_url(client, video, "/"));
        return Ok(());
    }
    let t: PlaybackToken = client
        .call_ok(
            Kind::Update,
            video,
            "playback_token",
            (PlaybackTokenArgs { ttl_seconds },),
        )
        .await?;
    println!(
        "token for {} expires {} (a bearer URL: whoever has it can watch until then; `canvid access revoke {video}` voids it)",
        client.me,
        utc(t.expires_at)
    );
    println!("{}", playback_url(client, video, &t.path));
    Ok(())
}

pub async fn revoke(client: &Client, video: Principal, viewer: Option<Principal>) -> Result<()> {
    let epoch: u32 = client
        .call_ok(Kind::Update, video, "revoke_playback_tokens", (viewer,))
        .await?;
    let who = viewer.unwrap_or(client.me);
    println!(
        "revoked every playback token issued to {who} for {video} (token epoch {epoch}); their access itself is unchanged"
    );
    Ok(())
}

// -------------------------------------------------------------------------------------------
// Buying: ICRC-2 approve on the ledger, then buy_access.
// -------------------------------------------------------------------------------------------

fn payment_error(video: Principal, method: &str, detail: String) -> Error {
    Error::Payment {
        canister: video,
        method: method.into(),
        detail,
    }
}

/// A `buy_access` refusal as one line that says what to do.
pub fn buy_error_text(e: &BuyError, fee: Option<&Nat>) -> String {
    match e {
        BuyError::Refused(e) => format!("refused: {e}"),
        BuyError::PriceChanged { ledger, offer } => format!(
            "the owner changed the offer since you looked: now {} on ledger {ledger}; nothing was charged (run again to buy at the new price)",
            offer_line(offer)
        ),
        BuyError::InsufficientAllowance { allowance } => format!(
            "the approval for the video canister is {} , below price + fee: nothing was charged (approve again, or run `canvid buy` again)",
            nat_text(allowance)
        ),
        BuyError::InsufficientFunds { balance } => format!(
            "your balance on the ledger is {}, less than the price + the ledger fee{}: nothing was charged",
            nat_text(balance),
            fee.map(|f| format!(" ({})", nat_text(f))).unwrap_or_default()
        ),
        BuyError::BadFee { expected_fee } => format!(
            "the ledger wants a fee of {}: nothing was charged",
            nat_text(expected_fee)
        ),
        BuyError::TemporarilyUnavailable => {
            "the ledger is temporarily unavailable: nothing was charged; try again later".into()
        }
        BuyError::LedgerRejected { reason } => {
            format!("the ledger refused the payment ({reason}): nothing was charged")
        }
        BuyError::Pending { purchase, reason } => format!(
            "purchase {purchase}: the payment's outcome is not known yet ({reason})"
        ),
    }
}

async fn ledger_fee(client: &Client, ledger: Principal) -> Result<Nat> {
    client.call(Kind::Query, ledger, "icrc1_fee", ()).await
}

async fn allowance(client: &Client, ledger: Principal, spender: Principal) -> Result<Allowance> {
    client
        .call(
            Kind::Query,
            ledger,
            "icrc2_allowance",
            (AllowanceArgs {
                account: Account::of(client.me),
                spender: Account::of(spender),
            },),
        )
        .await
}

/// Approves `video` on `ledger` for `amount` (replacing any earlier approval), for an hour.
async fn approve(
    client: &Client,
    ledger: Principal,
    video: Principal,
    amount: &Nat,
) -> Result<Nat> {
    let now = now_ns();
    let args = ApproveArgs {
        from_subaccount: None,
        spender: Account::of(video),
        amount: amount.clone(),
        expected_allowance: None,
        expires_at: Some(now + 3_600 * 1_000_000_000),
        fee: None,
        memo: None,
        created_at_time: Some(now),
    };
    let r: std::result::Result<Nat, ApproveError> = client
        .call(Kind::Update, ledger, "icrc2_approve", (args,))
        .await?;
    r.map_err(|e| {
        let detail = match e {
            ApproveError::InsufficientFunds { balance } => format!(
                "your balance is {}: not enough for the approval's own fee",
                nat_text(&balance)
            ),
            ApproveError::GenericError {
                error_code,
                message,
            } => format!("GenericError {error_code}: {message}"),
            other => format!("{other:?}"),
        };
        payment_error(ledger, "icrc2_approve", detail)
    })
}

/// Approves `video` for `price + fee` unless a large enough, live approval is in place.
async fn ensure_approval(
    client: &Client,
    ledger: Principal,
    video: Principal,
    price: &Nat,
    fee: &Nat,
) -> Result<()> {
    let needed = price.clone() + fee.clone();
    let a = allowance(client, ledger, video).await?;
    let live = a
        .expires_at
        .is_none_or(|e| e > now_ns() + 60 * 1_000_000_000);
    if a.allowance >= needed && live {
        eprintln!(
            "the video canister is already approved for {} on the ledger",
            nat_text(&a.allowance)
        );
        return Ok(());
    }
    let block = approve(client, ledger, video, &needed).await?;
    eprintln!(
        "approved the video canister for {} on the ledger (block {}; the approval costs a fee of {} too)",
        nat_text(&needed),
        nat_text(&block),
        nat_text(fee)
    );
    Ok(())
}

fn print_receipt(r: &Receipt) {
    println!("receipt         {} of video {}", r.id, r.video);
    println!("offer           {}", r.offer);
    println!("buyer           {}", r.buyer);
    println!(
        "amount          {} paid to {}",
        nat_text(&r.amount),
        r.paid_to.owner
    );
    println!(
        "ledger          {} block {}",
        r.ledger,
        nat_text(&r.block_index)
    );
    println!("memo            {}", hex::encode(&r.memo));
    println!("created_at_time {}", r.created_at_time);
    println!("paid            {}", utc(r.paid_at));
    println!(
        "pass            from {} until {}",
        utc(r.valid_from),
        r.valid_until.map(utc).unwrap_or_else(|| "forever".into())
    );
}

pub async fn buy(client: &Client, video: Principal, args: &BuyArgs) -> Result<()> {
    let info = access_info(client, video).await?;
    let AccessMode::Paid(paid) = &info.policy.mode else {
        return Err(payment_error(
            video,
            "buy_access",
            "this video is not for sale (its access mode is not paid)".into(),
        ));
    };
    let Some(offer) = paid.offers.iter().find(|o| o.id == args.offer) else {
        return Err(payment_error(
            video,
            "buy_access",
            format!(
                "no offer {:?}; the offers are: {}",
                args.offer,
                paid.offers
                    .iter()
                    .map(offer_line)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    };
    let ledger = paid.ledger;
    let resuming = args.created_at_time.is_some();
    let created_at_time = args.created_at_time.unwrap_or_else(now_ns);
    // A resumed purchase goes to the canister first: its approval may be spent already (it was
    // charged), and the ledger need not be reachable for the canister to answer.
    let mut fee = None;
    if resuming {
        eprintln!(
            "resuming the purchase of {} of {video} (created_at_time {created_at_time})",
            offer_line(offer)
        );
    } else {
        let f = ledger_fee(client, ledger).await?;
        eprintln!(
            "buying {} of {video}: price {} + ledger fee {} on {ledger} (created_at_time {created_at_time})",
            offer_line(offer),
            nat_text(&offer.price),
            nat_text(&f)
        );
        ensure_approval(client, ledger, video, &offer.price, &f).await?;
        fee = Some(f);
    }
    let mut approved = !resuming;
    let arg = BuyAccessArgs {
        offer: offer.id.clone(),
        ledger,
        price: offer.price.clone(),
        created_at_time: Some(created_at_time),
    };
    let deadline = std::time::Instant::now() + args.wait;
    let mut delay = Duration::from_millis(500);
    let mut last_pending = None;
    loop {
        let answer: Result<std::result::Result<Receipt, BuyError>> = client
            .call(Kind::Update, video, "buy_access", (arg.clone(),))
            .await;
        let retry_why = match answer {
            Ok(Ok(receipt)) => {
                print_receipt(&receipt);
                return Ok(());
            }
            Ok(Err(BuyError::InsufficientAllowance { .. })) if !approved => {
                let f = ledger_fee(client, ledger).await?;
                ensure_approval(client, ledger, video, &offer.price, &f).await?;
                fee = Some(f);
                approved = true;
                continue;
            }
            Ok(Err(e @ BuyError::Pending { .. })) => {
                let text = buy_error_text(&e, fee.as_ref());
                last_pending = Some(text.clone());
                text
            }
            Ok(Err(BuyError::Refused(canvid_types::Error::Busy { reason }))) => {
                format!("busy: {reason}")
            }
            Ok(Err(BuyError::Refused(e))) => {
                return Err(crate::network::refused(video, "buy_access", e))
            }
            Ok(Err(e)) => {
                return Err(payment_error(
                    video,
                    "buy_access",
                    buy_error_text(&e, fee.as_ref()),
                ))
            }
            // The call itself may or may not have run: the same created_at_time is safe.
            Err(e) if crate::network::is_transient(&e) => e.to_string(),
            Err(e) => return Err(e),
        };
        if std::time::Instant::now() + delay > deadline {
            let why = last_pending.unwrap_or(retry_why);
            return Err(Error::PurchasePending(format!(
                "{why}. You are charged at most once and get the pass iff you were; the canister retries every minute. Run `canvid buy {video} --offer {} --created-at-time {created_at_time}` within the hour to learn the outcome",
                offer.id
            )));
        }
        eprintln!("{retry_why}; retrying with the same created_at_time in {delay:?}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_parse() {
        let o = parse_offer("24h=500:86400").unwrap();
        assert_eq!(
            (o.id.as_str(), o.price.clone(), o.duration_seconds),
            ("24h", Nat::from(500u32), Some(86_400))
        );
        assert_eq!(
            parse_offer("week=2_000:7d").unwrap().duration_seconds,
            Some(604_800)
        );
        assert_eq!(parse_offer("forever=5000").unwrap().duration_seconds, None);
        assert!(parse_offer("x=0").is_err(), "free");
        assert!(parse_offer("X=5").is_err(), "upper case id");
        assert!(parse_offer("x=5:30").is_err(), "shorter than a minute");
        assert!(parse_offer("x5").is_err());
    }

    #[test]
    fn preview_seconds_become_bytes() {
        assert_eq!(seconds_to_bytes(10.0, 6_000_000, 60_000), 1_000_000);
        assert_eq!(seconds_to_bytes(100.0, 6_000_000, 60_000), 6_000_000);
        assert_eq!(seconds_to_bytes(0.5, 1000, 3_000), 167);
    }

    #[test]
    fn durations_read_back() {
        assert_eq!(duration_text(86_400), "1d");
        assert_eq!(duration_text(5_400), "90m");
        assert_eq!(duration_text(61), "61s");
    }
}
