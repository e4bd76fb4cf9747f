//! Who may watch a video, and paying for it (docs/access.md, docs/http.md "Private and paid
//! videos"): the policy, the allowlist, passes bought over DFINITY's real ICRC-2 ledger
//! (`../shared/fixtures/icrc-ledger`, `canvid_tests::ledger`), receipts checked against the
//! ledger's ICRC-3 blocks, playback tokens at the HTTP gate, and what upgrades, an owner change,
//! a stopped ledger and faults at the ledger call do to a purchase.
//!
//! Every payment test checks the ledger balances exactly (fees included): the buyer pays one
//! fee for the approval and one for the transfer, the owner receives the price, and the video
//! canister never holds tokens. A purchase is charged at most once, and a pass exists iff it was.
//!
//! The scenarios of `backend_tests!` run on the embedded replica and on PocketIC. Those that
//! need to hold the ledger's answer back or inject a fault at the video's ledger call
//! (`an_upgrade_while_the_ledger_call_is_in_flight`, `faults_at_the_ledger_call`) run on the
//! embedded replica only: PocketIC executes a round's inter-canister messages together and has
//! no fault injection. Where the ledger fixture is absent the payment scenarios print
//! `SKIPPED ...` and return; the private-mode scenario needs no ledger.
//!
//! `encryption` (in this binary to save CI a link): end-to-end encrypted videos, whose keys go
//! to the viewers this policy admits.

#[path = "access/encryption.rs"]
mod encryption;

use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

use candid::{Nat, Principal};
use canvid_icrc3::Value;
use canvid_replica::{Fault, FaultRule, RejectCode as ReplicaRejectCode};
use canvid_tests::clients::{ok, Video};
use canvid_tests::deploy::{standalone_video, T};
use canvid_tests::http_types::{HttpRequest, HttpResponse};
use canvid_tests::ledger::{
    account_value, install_ledger, ledger_allowance, ledger_approve, ledger_balance, ledger_blocks,
    ledger_wasm, FEE,
};
use canvid_tests::{
    backend_tests, principal, Backend, BackendExt, GenFile, Reject, ReplicaBackend,
};
use canvid_types::access::{
    receipt_memo, AccessGrant, AccessInfo, AccessMode, AccessPolicy, BuyAccessArgs, BuyError,
    BuyResult, MyAccess, Offer, PaidAccess, PlaybackToken, PlaybackTokenArgs, Receipt,
    ReceiptsArgs, ReceiptsPage, ViewersArgs, ViewersPage,
};
use canvid_types::icrc::Account;
use canvid_types::Error;
use serde_bytes::ByteBuf;

/// Upload chunk size and the file: 5 chunks, the last one short.
const CHUNK: u64 = 1_000;
const SIZE: u64 = 4 * CHUNK + 321;
/// Asked preview: rounded up to the chunk grid, 2 chunks.
const PREVIEW_ASKED: u64 = CHUNK + 500;
const PREVIEW_END: u64 = 2 * CHUNK;

const DAY_PRICE: u64 = 250_000;
const FOREVER_PRICE: u64 = 1_000_000;
const DAY_SECS: u64 = 24 * 3600;
/// Every buyer's starting balance.
const START: u64 = 100_000_000;

fn file() -> GenFile {
    GenFile::new(0xacce55, SIZE, CHUNK)
}

fn now_ns(b: &dyn Backend) -> u64 {
    b.time().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn creator() -> Principal {
    principal("access-creator")
}

/// A Ready video of [`creator`] holding [`file`].
fn uploaded_video(b: &dyn Backend) -> Video<'_> {
    let v = standalone_video(b, creator(), None, 50 * T);
    v.upload(creator(), &file());
    assert_eq!(file().chunk_count(), 5);
    v
}

fn paid_policy(ledger: Principal) -> AccessPolicy {
    AccessPolicy {
        free_paths: None,
        mode: AccessMode::Paid(PaidAccess {
            ledger,
            offers: vec![
                Offer {
                    id: "day".into(),
                    price: Nat::from(DAY_PRICE),
                    duration_seconds: Some(DAY_SECS),
                },
                Offer {
                    id: "forever".into(),
                    price: Nat::from(FOREVER_PRICE),
                    duration_seconds: None,
                },
            ],
        }),
        preview_bytes: Some(PREVIEW_ASKED),
    }
}

fn set_policy(v: &Video, who: Principal, policy: &AccessPolicy) -> AccessInfo {
    ok(
        "set_access_policy",
        v.b.update1(v.id, who, "set_access_policy", policy),
    )
}

fn access_info(v: &Video) -> AccessInfo {
    v.b.query::<_, (AccessInfo,)>(v.id, Principal::anonymous(), "access_policy", ())
        .unwrap()
        .0
}

fn my_access(v: &Video, who: Principal) -> MyAccess {
    v.b.query::<_, (MyAccess,)>(v.id, who, "my_access", ())
        .unwrap()
        .0
}

fn receipts(
    v: &Video,
    who: Principal,
    buyer: Option<Principal>,
) -> canvid_types::Result<Vec<Receipt>> {
    let page: canvid_types::Result<ReceiptsPage> =
        v.b.query1(
            v.id,
            who,
            "receipts",
            &ReceiptsArgs {
                buyer,
                ..Default::default()
            },
        )
        .unwrap();
    page.map(|p| {
        assert_eq!(p.next, None, "one page");
        p.receipts
    })
}

fn buy_args(ledger: Principal, offer: &str, created_at_time: Option<u64>) -> BuyAccessArgs {
    BuyAccessArgs {
        offer: offer.into(),
        ledger,
        price: Nat::from(price_of(offer)),
        created_at_time,
    }
}

fn price_of(offer: &str) -> u64 {
    match offer {
        "day" => DAY_PRICE,
        "forever" => FOREVER_PRICE,
        other => panic!("no offer {other}"),
    }
}

fn try_buy(
    v: &Video,
    who: Principal,
    ledger: Principal,
    offer: &str,
    created_at_time: Option<u64>,
) -> Result<BuyResult, Reject> {
    v.b.update1(
        v.id,
        who,
        "buy_access",
        &buy_args(ledger, offer, created_at_time),
    )
}

fn buy(
    v: &Video,
    who: Principal,
    ledger: Principal,
    offer: &str,
    created_at_time: Option<u64>,
) -> BuyResult {
    try_buy(v, who, ledger, offer, created_at_time)
        .unwrap_or_else(|e| panic!("buy_access by {who}: rejected: {e}"))
}

fn bought(
    v: &Video,
    who: Principal,
    ledger: Principal,
    offer: &str,
    created_at_time: Option<u64>,
) -> Receipt {
    buy(v, who, ledger, offer, created_at_time)
        .unwrap_or_else(|e| panic!("buy_access {offer} by {who}: {e:?}"))
}

/// `playback_token` as ingress. A caller who may not watch is refused by `inspect_message`
/// (IC0406, free for the canister); that refusal comes back as the `NotAuthorized` a call from a
/// canister would get, so the tests read the same either way.
fn token(
    v: &Video,
    who: Principal,
    ttl_seconds: Option<u32>,
) -> canvid_types::Result<PlaybackToken> {
    match v.b.update1(
        v.id,
        who,
        "playback_token",
        &PlaybackTokenArgs { ttl_seconds },
    ) {
        Ok(r) => r,
        Err(rej) if rej.error_code == "IC0406" => Err(Error::NotAuthorized {
            caller: who,
            reason: format!("refused by inspect_message: {rej}"),
        }),
        Err(rej) => panic!("playback_token: {rej:?}"),
    }
}

/// A write refused to a caller who may not make it: by `inspect_message` (IC0406, before it
/// costs anything) or by the method (`NotAuthorized`).
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(r: Result<canvid_types::Result<T>, Reject>, what: &str) {
    match r {
        Err(rej) => assert_eq!(rej.error_code, "IC0406", "{what}: {rej}"),
        Ok(Err(Error::NotAuthorized { .. })) => {}
        Ok(other) => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

fn is_not_authorized<T: std::fmt::Debug>(r: canvid_types::Result<T>) -> bool {
    matches!(r, Err(Error::NotAuthorized { .. }))
}

/// The chunks `who` may read with `get_chunk` (checking the bytes of those it may).
fn readable_chunks(v: &Video, who: Principal) -> Vec<u32> {
    let f = file();
    (0..f.chunk_count())
        .filter(|&i| match v.get_chunk(who, i).unwrap() {
            Ok(bytes) => {
                assert!(bytes.as_slice() == f.chunk(i).as_slice(), "chunk {i} bytes");
                true
            }
            Err(Error::NotAuthorized { .. }) => false,
            Err(e) => panic!("get_chunk {i} by {who}: {e:?}"),
        })
        .collect()
}

/// The balances of `who` must be exactly these.
#[track_caller]
fn assert_balances(b: &dyn Backend, ledger: Principal, expected: &[(Principal, u64)], ctx: &str) {
    for (who, want) in expected {
        assert_eq!(
            ledger_balance(b, ledger, *who),
            *want,
            "{}: {ctx}: balance of {who}",
            b.name()
        );
    }
}

/// A paid video and a ledger where `buyers` hold [`START`] each.
struct Paid<'a> {
    b: &'a dyn Backend,
    v: Video<'a>,
    ledger: Principal,
}

fn paid_video<'a>(b: &'a dyn Backend, test: &str, buyers: &[Principal]) -> Option<Paid<'a>> {
    let wasm = ledger_wasm(test)?;
    let balances: Vec<(Principal, u64)> = buyers.iter().map(|p| (*p, START)).collect();
    let ledger = install_ledger(b, principal("ledger-admin"), wasm, &balances);
    let v = uploaded_video(b);
    let info = set_policy(&v, creator(), &paid_policy(ledger));
    assert_eq!(info.policy, paid_policy(ledger));
    assert_eq!(
        info.preview_end, PREVIEW_END,
        "the preview is rounded up to the grid"
    );
    assert_eq!(info.receipt_count, 0);
    Some(Paid { b, v, ledger })
}

impl Paid<'_> {
    /// `who` approves the video canister for `amount` (paying [`FEE`]).
    fn approve(&self, who: Principal, amount: u64) {
        ledger_approve(self.b, self.ledger, who, self.v.id, amount);
        assert_eq!(
            ledger_allowance(self.b, self.ledger, who, self.v.id),
            amount
        );
    }

    /// The receipt names a block of the ledger that is exactly this transfer: the third-party
    /// check of a purchase.
    #[track_caller]
    fn check_on_ledger(&self, r: &Receipt) {
        let b = self.b;
        assert_eq!(r.video, self.v.id);
        assert_eq!(r.ledger, self.ledger);
        assert_eq!(r.memo.as_slice(), receipt_memo(&self.v.id, r.id).as_slice());
        assert_eq!(r.amount, Nat::from(price_of(&r.offer)));
        let blocks = ledger_blocks(b, self.ledger);
        let i = usize::try_from(&r.block_index.0).expect("block index");
        let block = blocks
            .get(i)
            .unwrap_or_else(|| panic!("receipt {}: no block {i} in the ledger", r.id));
        let tx = block
            .get("tx")
            .unwrap_or_else(|| panic!("block {i}: no tx: {block:?}"));
        let field = |name: &str| tx.get(name).cloned();
        assert_eq!(
            field("op"),
            Some(Value::Text("xfer".into())),
            "block {i}: {block:?}"
        );
        assert_eq!(
            field("from"),
            Some(account_value(r.buyer)),
            "block {i}: from"
        );
        assert_eq!(
            field("to"),
            Some(account_value(r.paid_to.owner)),
            "block {i}: to"
        );
        assert_eq!(r.paid_to.subaccount, None);
        assert_eq!(
            field("spender"),
            Some(account_value(self.v.id)),
            "block {i}: spender"
        );
        assert_eq!(
            field("amt"),
            Some(Value::Nat(r.amount.clone())),
            "block {i}: amount"
        );
        assert_eq!(
            field("memo"),
            Some(Value::blob(r.memo.to_vec())),
            "block {i}: memo"
        );
        assert_eq!(
            field("ts"),
            Some(Value::Nat(Nat::from(r.created_at_time))),
            "block {i}: created_at_time"
        );
        // Exactly one block carries this memo: charged once.
        let with_memo = blocks
            .iter()
            .filter(|blk| {
                blk.get("tx").and_then(|t| t.get("memo")) == Some(&Value::blob(r.memo.to_vec()))
            })
            .count();
        assert_eq!(
            with_memo,
            1,
            "{}: receipt {} is charged once",
            b.name(),
            r.id
        );
    }

    /// Transfers to the video's owners so far (`xfer` blocks with the video as spender).
    fn purchase_blocks(&self) -> usize {
        ledger_blocks(self.b, self.ledger)
            .iter()
            .filter(|blk| {
                let tx = blk.get("tx");
                tx.and_then(|t| t.get("op")) == Some(&Value::Text("xfer".into()))
                    && tx.and_then(|t| t.get("spender")) == Some(&account_value(self.v.id))
            })
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. A pass, its receipt on the ledger, the preview, a too small approval, expiry
// ---------------------------------------------------------------------------------------------

fn a_pass_unlocks_the_video_and_its_receipt_is_on_the_ledger(b: &dyn Backend) {
    let (a, bb) = (principal("viewer-a"), principal("viewer-b"));
    let Some(p) = paid_video(
        b,
        "a_pass_unlocks_the_video_and_its_receipt_is_on_the_ledger",
        &[a, bb],
    ) else {
        return;
    };
    let (v, ledger) = (&p.v, p.ledger);
    let owner = creator();

    // Without a pass: the preview only, by both read paths; the owner reads everything.
    assert_eq!(readable_chunks(v, bb), vec![0, 1]);
    assert_eq!(readable_chunks(v, Principal::anonymous()), vec![0, 1]);
    assert_eq!(readable_chunks(v, owner), vec![0, 1, 2, 3, 4]);
    assert!(ok("read_range", v.read_range(bb, 0, PREVIEW_END)).len() as u64 == PREVIEW_END);
    assert!(is_not_authorized(
        v.read_range(bb, PREVIEW_END - 1, 2).unwrap()
    ));
    assert_eq!(my_access(v, bb).grant, None);
    assert_eq!(my_access(v, bb).preview_end, PREVIEW_END);

    // A approves price + fee and buys the 24 h pass.
    p.approve(a, DAY_PRICE + FEE);
    let before = now_ns(b);
    let r = bought(v, a, ledger, "day", None);
    assert_eq!((r.id, r.buyer, r.offer.as_str()), (0, a, "day"));
    assert_eq!(r.paid_to, Account::of(owner));
    assert!(r.paid_at >= before && r.valid_from == r.paid_at);
    assert_eq!(r.valid_until, Some(r.valid_from + DAY_SECS * 1_000_000_000));
    p.check_on_ledger(&r);
    assert_balances(
        b,
        ledger,
        &[
            (a, START - FEE - DAY_PRICE - FEE),
            (owner, DAY_PRICE),
            (v.id, 0),
            (bb, START),
        ],
        "after A's pass",
    );
    assert_eq!(
        ledger_allowance(b, ledger, a, v.id),
        0,
        "the approval is used up"
    );
    assert_eq!(
        my_access(v, a).grant,
        Some(AccessGrant::Pass {
            expires_at: r.valid_until,
            receipt: 0
        })
    );
    assert!(my_access(v, a).pending_purchases.is_empty());
    assert_eq!(access_info(v).receipt_count, 1);

    // A reads every chunk, and the whole file by ranges across chunk boundaries.
    assert_eq!(readable_chunks(v, a), vec![0, 1, 2, 3, 4]);
    assert_eq!(v.read_all_ranges(a, SIZE, 777), file().sha256());

    // Receipts: A's own, the owner's view; not B's.
    assert_eq!(receipts(v, a, None).unwrap(), vec![r.clone()]);
    assert_eq!(receipts(v, owner, None).unwrap(), vec![r.clone()]);
    assert_eq!(receipts(v, owner, Some(a)).unwrap(), vec![r.clone()]);
    assert_eq!(receipts(v, bb, None).unwrap(), vec![]);
    assert!(is_not_authorized(receipts(v, bb, Some(a))));
    assert!(is_not_authorized(receipts(v, Principal::anonymous(), None)));

    // B approves the price without the fee: InsufficientAllowance, nothing charged but the
    // approval's own fee, no pass, nothing pending.
    p.approve(bb, DAY_PRICE);
    match buy(v, bb, ledger, "day", None) {
        Err(BuyError::InsufficientAllowance { allowance }) => {
            assert_eq!(allowance, Nat::from(DAY_PRICE))
        }
        other => panic!("{}: B's buy with a short approval: {other:?}", b.name()),
    }
    assert_balances(
        b,
        ledger,
        &[(bb, START - FEE), (owner, DAY_PRICE), (v.id, 0)],
        "after B's refused buy",
    );
    assert_eq!(my_access(v, bb).grant, None);
    assert!(my_access(v, bb).pending_purchases.is_empty());
    assert_eq!(readable_chunks(v, bb), vec![0, 1]);
    assert_eq!(receipts(v, owner, None).unwrap().len(), 1);
    // A stale price is refused before the ledger is asked.
    let mut stale = buy_args(ledger, "day", None);
    stale.price = Nat::from(DAY_PRICE - 1);
    let r2: BuyResult = b.update1(v.id, bb, "buy_access", &stale).unwrap();
    assert!(matches!(r2, Err(BuyError::PriceChanged { .. })), "{r2:?}");
    // So is the owner, who may watch already.
    assert!(matches!(
        buy(v, owner, ledger, "day", None),
        Err(BuyError::Refused(Error::InvalidArgument { .. }))
    ));

    // The pass expires after 24 hours: A is back to the preview.
    b.advance_time(Duration::from_secs(DAY_SECS - 60));
    b.tick();
    assert_eq!(
        readable_chunks(v, a),
        vec![0, 1, 2, 3, 4],
        "a minute before expiry"
    );
    // A token never outlives the pass it is issued under.
    let late = token(v, a, Some(3600)).expect("playback_token");
    assert_eq!(Some(late.expires_at), r.valid_until);
    assert_chunk_served(b, v.id, &late.path, 4);
    b.advance_time(Duration::from_secs(61));
    b.tick();
    assert_eq!(readable_chunks(v, a), vec![0, 1], "after expiry");
    assert_eq!(my_access(v, a).grant, None);
    assert!(is_not_authorized(token(v, a, None)));
    assert_eq!(
        chunk_status(b, v.id, &late.path, 4),
        403,
        "the pass expired"
    );
    // The receipt stays.
    assert_eq!(receipts(v, a, None).unwrap(), vec![r]);
}

// ---------------------------------------------------------------------------------------------
// 2. The HTTP gate
// ---------------------------------------------------------------------------------------------

/// What an HTTP gateway does (anonymously): every answer this file asks for is one the query
/// can give (pre-certified ranges, certified refusals), so an upgrade is a failure.
fn http(
    b: &dyn Backend,
    video: Principal,
    method: &str,
    url: &str,
    range: Option<&str>,
) -> HttpResponse {
    canvid_tests::http_verify::certified_query(b, video, method, url, range)
}

/// `GET url` of the exact chunk `k`: must be 206 with its bytes.
#[track_caller]
fn assert_chunk_served(b: &dyn Backend, video: Principal, url: &str, k: u64) {
    let f = file();
    let start = k * CHUNK;
    let end = (start + CHUNK).min(SIZE) - 1;
    let resp = http(b, video, "GET", url, Some(&format!("bytes={start}-{end}")));
    assert_eq!(resp.status_code, 206, "{}: {url} chunk {k}", b.name());
    assert_eq!(
        resp.header("content-range"),
        Some(format!("bytes {start}-{end}/{SIZE}").as_str())
    );
    assert!(
        resp.body.as_slice() == f.range(start, end - start + 1).as_slice(),
        "{url} chunk {k}: bytes"
    );
}

/// `GET url` of chunk `k`: the refusal's status.
fn chunk_status(b: &dyn Backend, video: Principal, url: &str, k: u64) -> u16 {
    let start = k * CHUNK;
    let end = (start + CHUNK).min(SIZE) - 1;
    let resp = http(b, video, "GET", url, Some(&format!("bytes={start}-{end}")));
    if resp.status_code == 401 || resp.status_code == 403 {
        assert_eq!(resp.header("cache-control"), Some("no-store"));
        assert!(
            resp.body.as_slice() != file().range(start, resp.body.len() as u64).as_slice(),
            "a refusal carries no video bytes"
        );
    }
    if resp.status_code == 401 {
        assert!(resp.header("www-authenticate").is_some());
    }
    resp.status_code
}

fn playback_tokens_open_the_http_gate(b: &dyn Backend) {
    let a = principal("viewer-a");
    let Some(p) = paid_video(b, "playback_tokens_open_the_http_gate", &[a]) else {
        return;
    };
    let v = &p.v;
    // Before any purchase: the preview plays without a token, the rest is 401.
    assert_chunk_served(b, v.id, "/", 0);
    assert_chunk_served(b, v.id, "/video", 1);
    assert_eq!(chunk_status(b, v.id, "/", 2), 401);
    assert_eq!(chunk_status(b, v.id, "/video", 4), 401);
    // HEAD and the metadata carry no media bytes: unchanged.
    assert_eq!(http(b, v.id, "HEAD", "/", None).status_code, 200);
    assert_eq!(
        http(b, v.id, "GET", "/metadata.json", None).status_code,
        200
    );
    // No pass, no token.
    assert!(is_not_authorized(token(v, a, None)));
    assert_eq!(chunk_status(b, v.id, "/?token=not-a-real-token", 2), 403);

    p.approve(a, FOREVER_PRICE + FEE);
    let r = bought(v, a, p.ledger, "forever", None);
    assert_eq!(r.valid_until, None);
    p.check_on_ledger(&r);
    assert_balances(
        b,
        p.ledger,
        &[
            (a, START - FOREVER_PRICE - 2 * FEE),
            (creator(), FOREVER_PRICE),
        ],
        "after the pass",
    );

    let t = token(v, a, Some(600)).expect("playback_token");
    assert_eq!(t.path, format!("/?token={}", t.token));
    let video_url = format!("/video?token={}", t.token);
    for k in 0..5 {
        assert_chunk_served(b, v.id, &t.path, k);
    }
    assert_chunk_served(b, v.id, &video_url, 3);
    // Without the token, or with a mangled one: refused.
    assert_eq!(chunk_status(b, v.id, "/", 2), 401);
    let mut mangled = t.token.clone().into_bytes();
    let last = mangled.len() - 1;
    mangled[last] = if mangled[last] == b'A' { b'B' } else { b'A' };
    let mangled = String::from_utf8(mangled).unwrap();
    assert_eq!(chunk_status(b, v.id, &format!("/?token={mangled}"), 2), 403);

    // Expired: a 1 s token, 2 s later.
    let short = token(v, a, Some(1)).expect("playback_token");
    assert_chunk_served(b, v.id, &short.path, 2);
    b.advance_time(Duration::from_secs(2));
    b.tick();
    assert_eq!(
        chunk_status(b, v.id, &short.path, 2),
        403,
        "an expired token"
    );
    assert_chunk_served(b, v.id, &t.path, 2);

    // Revoked: every token issued so far stops at once; a new one works.
    let epoch: u32 = ok(
        "revoke_playback_tokens",
        b.update1(v.id, a, "revoke_playback_tokens", &None::<Principal>),
    );
    assert!(epoch >= 1);
    assert_eq!(chunk_status(b, v.id, &t.path, 2), 403, "a revoked token");
    assert_eq!(chunk_status(b, v.id, &video_url, 4), 403, "a revoked token");
    // The preview still plays with it (the rule is on the answer).
    assert_chunk_served(b, v.id, &t.path, 1);
    let fresh = token(v, a, None).expect("playback_token");
    assert_chunk_served(b, v.id, &fresh.path, 2);
    // The owner revokes A's tokens.
    let _: u32 = ok(
        "revoke_playback_tokens",
        b.update1(v.id, creator(), "revoke_playback_tokens", &Some(a)),
    );
    assert_eq!(chunk_status(b, v.id, &fresh.path, 2), 403);
    // A stranger may not revoke A's.
    assert_refused(
        b.update1::<_, canvid_types::Result<u32>>(
            v.id,
            principal("stranger"),
            "revoke_playback_tokens",
            &Some(a),
        ),
        "a stranger revokes A's tokens",
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Owner change
// ---------------------------------------------------------------------------------------------

fn revenue_goes_to_whoever_owns_the_video(b: &dyn Backend) {
    let (a, bb) = (principal("viewer-a"), principal("viewer-b"));
    let Some(p) = paid_video(b, "revenue_goes_to_whoever_owns_the_video", &[a, bb]) else {
        return;
    };
    let (v, ledger) = (&p.v, p.ledger);
    let (old, new) = (creator(), principal("new-owner"));
    p.approve(a, DAY_PRICE + FEE);
    let ra = bought(v, a, ledger, "day", None);
    assert_eq!(ra.paid_to, Account::of(old));

    let policy_before = access_info(v).policy;
    ok("change_owner", v.change_owner(old, new));
    assert_eq!(v.metadata().owner, new);
    let info = access_info(v);
    assert_eq!(info.policy, policy_before, "the policy follows the video");
    assert_eq!(info.receipt_count, 1);
    // A's pass too.
    assert_eq!(readable_chunks(v, a), vec![0, 1, 2, 3, 4]);
    // The old owner is now a viewer like any other; the new one sets the policy.
    assert_eq!(readable_chunks(v, old), vec![0, 1]);
    assert_refused(
        b.update1::<_, canvid_types::Result<AccessInfo>>(
            v.id,
            old,
            "set_access_policy",
            &AccessPolicy::public(),
        ),
        "the old owner sets the policy",
    );

    p.approve(bb, DAY_PRICE + FEE);
    let rb = bought(v, bb, ledger, "day", None);
    assert_eq!(rb.id, 1);
    assert_eq!(rb.paid_to, Account::of(new), "the new owner is paid");
    p.check_on_ledger(&ra);
    p.check_on_ledger(&rb);
    assert_balances(
        b,
        ledger,
        &[
            (old, DAY_PRICE),
            (new, DAY_PRICE),
            (a, START - DAY_PRICE - 2 * FEE),
            (bb, START - DAY_PRICE - 2 * FEE),
            (v.id, 0),
        ],
        "after the owner change",
    );
    // The new owner sees every receipt, the old owner's included.
    assert_eq!(receipts(v, new, None).unwrap(), vec![ra, rb]);
    assert_eq!(receipts(v, old, None).unwrap(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// 4. Idempotency
// ---------------------------------------------------------------------------------------------

fn one_purchase_is_charged_once(b: &dyn Backend) {
    let a = principal("viewer-a");
    let Some(p) = paid_video(b, "one_purchase_is_charged_once", &[a]) else {
        return;
    };
    let (v, ledger) = (&p.v, p.ledger);
    p.approve(a, 5 * (DAY_PRICE + FEE));

    // The same call twice in sequence: one purchase, one charge, the same receipt.
    let t1 = now_ns(b);
    let r1 = bought(v, a, ledger, "day", Some(t1));
    let again = bought(v, a, ledger, "day", Some(t1));
    assert_eq!(again, r1, "a retry returns the receipt");
    p.check_on_ledger(&r1);
    assert_balances(
        b,
        ledger,
        &[(a, START - FEE - DAY_PRICE - FEE), (creator(), DAY_PRICE)],
        "after the sequential retry",
    );
    assert_eq!(p.purchase_blocks(), 1);

    // Two identical calls submitted together: one charge; the other answers with the same
    // receipt or Busy.
    let t2 = t1 + 1;
    let args = buy_args(ledger, "day", Some(t2));
    let c1 = b.submit1(v.id, a, "buy_access", &args).unwrap();
    let c2 = b.submit1(v.id, a, "buy_access", &args).unwrap();
    let o1: BuyResult = b.await1(c1, "buy_access").unwrap();
    let o2: BuyResult = b.await1(c2, "buy_access").unwrap();
    let receipts_now: Vec<&Receipt> = [&o1, &o2]
        .into_iter()
        .filter_map(|o| o.as_ref().ok())
        .collect();
    assert!(!receipts_now.is_empty(), "{}: {o1:?} / {o2:?}", b.name());
    for o in [&o1, &o2] {
        match o {
            Ok(r) => assert_eq!(r, receipts_now[0]),
            Err(BuyError::Refused(Error::Busy { .. })) => {}
            other => panic!("{}: concurrent buy: {other:?}", b.name()),
        }
    }
    let r2 = receipts_now[0].clone();
    assert_eq!(r2.id, 1);
    p.check_on_ledger(&r2);
    // Buying again extends the pass from its end.
    assert_eq!(Some(r2.valid_from), r1.valid_until);
    assert_eq!(
        r2.valid_until,
        Some(r2.valid_from + DAY_SECS * 1_000_000_000)
    );
    // A retry of the settled one returns it.
    assert_eq!(bought(v, a, ledger, "day", Some(t2)), r2);
    assert_balances(
        b,
        ledger,
        &[
            (a, START - FEE - 2 * (DAY_PRICE + FEE)),
            (creator(), 2 * DAY_PRICE),
            (v.id, 0),
        ],
        "after the concurrent pair",
    );
    assert_eq!(p.purchase_blocks(), 2);
    assert_eq!(access_info(v).receipt_count, 2);
    assert_eq!(receipts(v, a, None).unwrap(), vec![r1, r2.clone()]);
    assert_eq!(
        my_access(v, a).grant,
        Some(AccessGrant::Pass {
            expires_at: r2.valid_until,
            receipt: 1
        })
    );
    // Without created_at_time every call is a new purchase.
    let r3 = bought(v, a, ledger, "day", None);
    assert_eq!(r3.id, 2);
    assert_eq!(p.purchase_blocks(), 3);
}

// ---------------------------------------------------------------------------------------------
// 5. The ledger unreachable
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn assert_pending(o: BuyResult, ctx: &str) -> u64 {
    match o {
        Err(BuyError::Pending { purchase, .. }) => purchase,
        other => panic!("{ctx}: expected Pending, got {other:?}"),
    }
}

/// Advances time by a minute and ticks until `done`, a few minutes at most (the video's retry
/// timer runs every 60 s).
fn let_the_timer_run(b: &dyn Backend, done: impl Fn() -> bool) -> bool {
    for _ in 0..5 {
        b.advance_time(Duration::from_secs(61));
        for _ in 0..6 {
            b.tick();
            if done() {
                return true;
            }
        }
    }
    done()
}

fn a_stopped_ledger_leaves_the_purchase_pending(b: &dyn Backend) {
    let (a, bb) = (principal("viewer-a"), principal("viewer-b"));
    let Some(p) = paid_video(b, "a_stopped_ledger_leaves_the_purchase_pending", &[a, bb]) else {
        return;
    };
    let (v, ledger) = (&p.v, p.ledger);
    let admin = principal("ledger-admin");
    p.approve(a, DAY_PRICE + FEE);
    p.approve(bb, DAY_PRICE + FEE);
    let paid_nothing = [(a, START - FEE), (bb, START - FEE), (creator(), 0)];

    // The buyer retries.
    b.stop(ledger, Some(admin)).expect("stop the ledger");
    let t = now_ns(b);
    let id = assert_pending(buy(v, a, ledger, "day", Some(t)), "ledger stopped");
    let mine = my_access(v, a);
    assert_eq!(mine.grant, None, "no pass without payment");
    assert_eq!(mine.pending_purchases, vec![id]);
    assert_eq!(readable_chunks(v, a), vec![0, 1]);
    assert_eq!(receipts(v, a, None).unwrap(), vec![]);
    b.start(ledger, Some(admin)).expect("start the ledger");
    assert_balances(b, ledger, &paid_nothing, "while pending");
    let r = bought(v, a, ledger, "day", Some(t));
    assert_eq!(r.id, id);
    p.check_on_ledger(&r);
    assert!(my_access(v, a).pending_purchases.is_empty());
    assert_eq!(readable_chunks(v, a), vec![0, 1, 2, 3, 4]);

    // The canister's timer settles it.
    b.stop(ledger, Some(admin)).expect("stop the ledger");
    let id = assert_pending(buy(v, bb, ledger, "day", None), "ledger stopped");
    assert_eq!(my_access(v, bb).pending_purchases, vec![id]);
    // While the ledger stays stopped the timer's attempts change nothing.
    b.advance_time(Duration::from_secs(61));
    for _ in 0..4 {
        b.tick();
    }
    assert_eq!(my_access(v, bb).pending_purchases, vec![id]);
    assert_eq!(my_access(v, bb).grant, None);
    b.start(ledger, Some(admin)).expect("start the ledger");
    assert!(
        let_the_timer_run(b, || my_access(v, bb).pending_purchases.is_empty()),
        "{}: the retry timer did not settle purchase {id}",
        b.name()
    );
    let rb = receipts(v, bb, None).unwrap();
    assert_eq!(rb.len(), 1);
    assert_eq!(rb[0].id, id);
    p.check_on_ledger(&rb[0]);
    assert!(
        matches!(my_access(v, bb).grant, Some(AccessGrant::Pass { receipt, .. }) if receipt == id)
    );
    assert_balances(
        b,
        ledger,
        &[
            (a, START - DAY_PRICE - 2 * FEE),
            (bb, START - DAY_PRICE - 2 * FEE),
            (creator(), 2 * DAY_PRICE),
            (v.id, 0),
        ],
        "after both settled",
    );
    assert_eq!(p.purchase_blocks(), 2);
}

// ---------------------------------------------------------------------------------------------
// 6. Upgrades
// ---------------------------------------------------------------------------------------------

fn upgrade_video(b: &dyn Backend, v: &Video) {
    b.upgrade(
        v.id,
        canvid_tests::wasm::video_gz(),
        candid::encode_args(()).unwrap(),
        Some(creator()),
    )
    .unwrap_or_else(|e| panic!("{}: upgrading the video: {e}", b.name()));
}

fn upgrades_keep_policy_passes_and_receipts(b: &dyn Backend) {
    let a = principal("viewer-a");
    let Some(p) = paid_video(b, "upgrades_keep_policy_passes_and_receipts", &[a]) else {
        return;
    };
    let (v, ledger) = (&p.v, p.ledger);
    p.approve(a, DAY_PRICE + FEE);
    // Upgraded between the approval and the purchase.
    upgrade_video(b, v);
    let r = bought(v, a, ledger, "day", None);
    p.check_on_ledger(&r);
    let tok = token(v, a, None).expect("playback_token");
    // Upgraded after it: everything stays, the token still plays.
    let info = access_info(v);
    upgrade_video(b, v);
    assert_eq!(access_info(v), info);
    assert_eq!(receipts(v, a, None).unwrap(), vec![r.clone()]);
    assert_eq!(
        my_access(v, a).grant,
        Some(AccessGrant::Pass {
            expires_at: r.valid_until,
            receipt: r.id
        })
    );
    assert_eq!(readable_chunks(v, a), vec![0, 1, 2, 3, 4]);
    assert_chunk_served(b, v.id, &tok.path, 3);
    assert_eq!(chunk_status(b, v.id, "/", 3), 401);
    assert_eq!(bought(v, a, ledger, "day", Some(r.created_at_time)), r);
    assert_balances(
        b,
        ledger,
        &[
            (a, START - DAY_PRICE - 2 * FEE),
            (creator(), DAY_PRICE),
            (v.id, 0),
        ],
        "after the upgrades",
    );
}

/// The video is upgraded while its `icrc2_transfer_from` is outstanding: (1) before the ledger
/// ran it, (2) after the ledger ran it, before the answer came back. Either way the purchase
/// settles (the post-upgrade timer, or the buyer's retry) to one charge and one pass; never a
/// pass without payment. (The answer then reaches the new module, whose ic-cdk does not know the
/// call: the callback traps, the ingress call is rejected, and the record of the purchase is
/// what settles it.) Embedded replica only: it executes one hop per round, which is what
/// lets the test stop between them (PocketIC runs the ledger's call in the same round).
#[test]
fn an_upgrade_while_the_ledger_call_is_in_flight() {
    let r = ReplicaBackend::new();
    let b: &dyn Backend = &r;
    let buyers: Vec<Principal> = (0..4)
        .map(|i| principal(&format!("in-flight-{i}")))
        .collect();
    let Some(p) = paid_video(b, "an_upgrade_while_the_ledger_call_is_in_flight", &buyers) else {
        return;
    };
    let (v, ledger) = (&p.v, p.ledger);
    let mut owner_revenue = 0;
    for (i, &who) in buyers.iter().enumerate() {
        // Rounds before the upgrade: 1 = the video sent the call; 2 = the ledger answered.
        let rounds = 1 + (i % 2);
        let by_retry = i >= 2;
        let ctx = format!(
            "buyer {i}: upgrade after {rounds} round(s), settled by {}",
            if by_retry { "a retry" } else { "the timer" }
        );
        p.approve(who, DAY_PRICE + FEE);
        let t = now_ns(b);
        let call = b
            .submit1(v.id, who, "buy_access", &buy_args(ledger, "day", Some(t)))
            .unwrap();
        for _ in 0..rounds {
            b.tick();
        }
        let mine = my_access(v, who);
        assert_eq!(
            mine.pending_purchases.len(),
            1,
            "{ctx}: the purchase is in flight"
        );
        assert_eq!(mine.grant, None, "{ctx}");
        let charged = ledger_balance(b, ledger, who) < START - FEE;
        assert_eq!(
            charged,
            rounds == 2,
            "{ctx}: the ledger ran the transfer iff 2 rounds"
        );
        upgrade_video(b, v);
        // The call's answer reaches a module that did not make it: no pass from it.
        let answer: Result<BuyResult, Reject> = b.await1(call, "buy_access");
        eprintln!("{ctx}: the interrupted buy_access answered {answer:?}");
        match &answer {
            Ok(Ok(r)) => panic!("{ctx}: a receipt from a callback of the old module: {r:?}"),
            Ok(Err(BuyError::Pending { .. })) | Err(_) => {}
            Ok(Err(e)) => panic!("{ctx}: {e:?}"),
        }
        let id = mine.pending_purchases[0];
        assert_eq!(
            my_access(v, who).grant,
            None,
            "{ctx}: no pass yet: {answer:?}"
        );
        if by_retry {
            let rc = bought(v, who, ledger, "day", Some(t));
            assert_eq!(rc.id, id, "{ctx}");
        } else {
            assert!(
                let_the_timer_run(b, || my_access(v, who).pending_purchases.is_empty()),
                "{ctx}: the timer did not settle it"
            );
        }
        let rs = receipts(v, who, None).unwrap();
        assert_eq!(rs.len(), 1, "{ctx}");
        assert_eq!(rs[0].id, id, "{ctx}");
        p.check_on_ledger(&rs[0]);
        assert!(
            matches!(my_access(v, who).grant, Some(AccessGrant::Pass { .. })),
            "{ctx}"
        );
        owner_revenue += DAY_PRICE;
        assert_balances(
            b,
            ledger,
            &[
                (who, START - DAY_PRICE - 2 * FEE),
                (creator(), owner_revenue),
                (v.id, 0),
            ],
            &ctx,
        );
    }
    assert_eq!(p.purchase_blocks(), buyers.len());
}

// ---------------------------------------------------------------------------------------------
// 7. Faults at the ledger call (embedded replica)
// ---------------------------------------------------------------------------------------------

/// `buy_access`'s one await, the video's `icrc2_transfer_from`, rejected before the ledger
/// (system or callee error) or answered into a trapping callback, once or twice in a row: the
/// outcome is never a double charge nor a pass without payment, and the buyer's retry or the
/// timer settles it. Embedded replica only (PocketIC has no fault injection).
#[test]
fn faults_at_the_ledger_call() {
    let r = ReplicaBackend::new();
    let b: &dyn Backend = &r;
    let kinds = [
        Fault::Reject(
            ReplicaRejectCode::SysTransient,
            "injected: queue full".into(),
        ),
        Fault::Reject(
            ReplicaRejectCode::CanisterError,
            "injected: callee trapped".into(),
        ),
        Fault::TrapInCallback,
    ];
    let mut cases = Vec::new();
    for kind in &kinds {
        for times in [1u32, 2] {
            for by_retry in [true, false] {
                cases.push((kind.clone(), times, by_retry));
            }
        }
    }
    let buyers: Vec<Principal> = (0..cases.len())
        .map(|i| principal(&format!("faulted-{i}")))
        .collect();
    let Some(p) = paid_video(b, "faults_at_the_ledger_call", &buyers) else {
        return;
    };
    let (v, ledger) = (&p.v, p.ledger);
    let mut owner_revenue = 0;
    for (i, (kind, times, by_retry)) in cases.into_iter().enumerate() {
        let who = buyers[i];
        let ctx = format!(
            "{kind:?} x{times}, settled by {}",
            if by_retry { "retries" } else { "the timer" }
        );
        p.approve(who, DAY_PRICE + FEE);
        let fired = r.replica.faults_fired();
        r.replica.inject_fault(FaultRule {
            caller: Some(v.id),
            callee: Some(ledger),
            method: Some("icrc2_transfer_from".into()),
            skip: 0,
            times,
            kind: kind.clone(),
        });
        let t = now_ns(b);
        let answer = try_buy(v, who, ledger, "day", Some(t));
        let reaches_ledger = kind == Fault::TrapInCallback;
        match (&answer, reaches_ledger) {
            (Ok(Err(BuyError::Pending { .. })), false) => {}
            // The callback trapped: the ingress call is rejected, the record stays.
            (Err(rej), true) => assert_eq!(
                rej.code,
                canvid_tests::RejectCode::CanisterError,
                "{ctx}: {rej}"
            ),
            other => panic!("{ctx}: {other:?}"),
        }
        assert_eq!(
            r.replica.faults_fired(),
            fired + 1,
            "{ctx}: the fault fired"
        );
        let mine = my_access(v, who);
        assert_eq!(
            mine.grant, None,
            "{ctx}: no pass before the payment is known"
        );
        assert_eq!(mine.pending_purchases.len(), 1, "{ctx}");
        let id = mine.pending_purchases[0];
        let charged = if reaches_ledger { DAY_PRICE + FEE } else { 0 };
        assert_balances(b, ledger, &[(who, START - FEE - charged)], &ctx);

        if by_retry {
            if times == 2 {
                // The second fault hits the buyer's first retry: still no pass.
                let out = try_buy(v, who, ledger, "day", Some(t));
                assert_eq!(r.replica.faults_fired(), fired + 2, "{ctx}");
                match (out, reaches_ledger) {
                    (Ok(o), false) => {
                        assert_pending(o, &ctx);
                    }
                    (Err(rej), true) => assert_eq!(
                        rej.code,
                        canvid_tests::RejectCode::CanisterError,
                        "{ctx}: {rej}"
                    ),
                    other => panic!("{ctx}: the first retry: {other:?}"),
                }
                assert_eq!(my_access(v, who).grant, None, "{ctx}");
            }
            let out = buy(v, who, ledger, "day", Some(t));
            let rc = out.unwrap_or_else(|e| panic!("{ctx}: the retry: {e:?}"));
            assert_eq!(rc.id, id, "{ctx}");
        } else {
            assert!(
                let_the_timer_run(b, || my_access(v, who).pending_purchases.is_empty()),
                "{ctx}: the timer did not settle it"
            );
            assert_eq!(r.replica.faults_fired(), fired + times as u64, "{ctx}");
        }
        r.replica.clear_faults();
        let rs = receipts(v, who, None).unwrap();
        assert_eq!(rs.len(), 1, "{ctx}");
        assert_eq!(rs[0].id, id, "{ctx}");
        p.check_on_ledger(&rs[0]);
        assert!(
            matches!(my_access(v, who).grant, Some(AccessGrant::Pass { .. })),
            "{ctx}"
        );
        owner_revenue += DAY_PRICE;
        assert_balances(
            b,
            ledger,
            &[
                (who, START - DAY_PRICE - 2 * FEE),
                (creator(), owner_revenue),
                (v.id, 0),
            ],
            &ctx,
        );
        // A later retry of the settled purchase changes nothing.
        assert_eq!(bought(v, who, ledger, "day", Some(t)), rs[0], "{ctx}");
    }
    assert_eq!(p.purchase_blocks(), buyers.len());
    assert_eq!(access_info(v).receipt_count, buyers.len() as u64);
}

// ---------------------------------------------------------------------------------------------
// 8. Private mode
// ---------------------------------------------------------------------------------------------

fn viewers_page(
    v: &Video,
    who: Principal,
    args: &ViewersArgs,
) -> canvid_types::Result<ViewersPage> {
    v.b.query1(v.id, who, "viewers", args).unwrap()
}

fn all_viewers(v: &Video, page: u32) -> Vec<Principal> {
    let mut out = Vec::new();
    let mut start_after = None;
    loop {
        let p = viewers_page(
            v,
            creator(),
            &ViewersArgs {
                start_after,
                limit: Some(page),
            },
        )
        .unwrap();
        assert!(p.viewers.len() <= page as usize);
        out.extend(p.viewers);
        match p.next {
            Some(n) => start_after = Some(n),
            None => return out,
        }
    }
}

fn the_allowlist_of_a_private_video(b: &dyn Backend) {
    let v = uploaded_video(b);
    let owner = creator();
    let private = AccessPolicy {
        free_paths: None,
        mode: AccessMode::Private,
        preview_bytes: None,
    };
    // Only the owner sets the policy.
    assert_refused(
        b.update1::<_, canvid_types::Result<AccessInfo>>(
            v.id,
            principal("stranger"),
            "set_access_policy",
            &private,
        ),
        "a stranger sets the policy",
    );
    assert_eq!(
        readable_chunks(&v, principal("stranger")),
        vec![0, 1, 2, 3, 4],
        "public"
    );
    let info = set_policy(&v, owner, &private);
    assert_eq!(info.preview_end, 0);

    let viewers: Vec<Principal> = (0..7).map(|i| principal(&format!("allowed-{i}"))).collect();
    let n: u32 = ok(
        "add_viewers",
        b.update1(v.id, owner, "add_viewers", &viewers[..5].to_vec()),
    );
    assert_eq!(n, 5);
    // Adding again counts once.
    let n: u32 = ok(
        "add_viewers",
        b.update1(v.id, owner, "add_viewers", &viewers[3..].to_vec()),
    );
    assert_eq!(n, 7);
    assert_refused(
        b.update1::<_, canvid_types::Result<u32>>(
            v.id,
            viewers[0],
            "add_viewers",
            &vec![principal("friend")],
        ),
        "a viewer adds viewers",
    );
    let r: canvid_types::Result<u32> = b
        .update1(v.id, owner, "add_viewers", &vec![Principal::anonymous()])
        .unwrap();
    assert!(r.is_err(), "the anonymous principal is no viewer");
    let mut sorted = viewers.clone();
    sorted.sort();
    for page in [1, 3, 7, 500] {
        assert_eq!(all_viewers(&v, page), sorted, "pages of {page}");
    }
    assert_eq!(
        viewers_page(&v, owner, &ViewersArgs::default())
            .unwrap()
            .total,
        7
    );
    assert!(is_not_authorized(viewers_page(
        &v,
        viewers[0],
        &ViewersArgs::default()
    )));
    assert_eq!(access_info(&v).viewer_count, 7);

    // Viewers read and play; others get nothing (no preview).
    let (x, y) = (viewers[1], viewers[2]);
    assert_eq!(readable_chunks(&v, x), vec![0, 1, 2, 3, 4]);
    assert_eq!(my_access(&v, x).grant, Some(AccessGrant::Viewer));
    assert_eq!(
        readable_chunks(&v, principal("stranger")),
        Vec::<u32>::new()
    );
    assert!(is_not_authorized(token(&v, principal("stranger"), None)));
    let tx = token(&v, x, None).expect("playback_token");
    let ty = token(&v, y, None).expect("playback_token");
    assert_chunk_served(b, v.id, &tx.path, 0);
    assert_chunk_served(b, v.id, &tx.path, 4);
    assert_chunk_served(b, v.id, &ty.path, 2);
    assert_eq!(
        chunk_status(b, v.id, "/", 0),
        401,
        "no preview: even chunk 0"
    );
    // Not a purchase: the video is not for sale (inspect_message refuses it).
    let nope: Result<BuyResult, Reject> = b.update1(
        v.id,
        x,
        "buy_access",
        &buy_args(principal("ledger-admin"), "day", None),
    );
    match nope {
        Err(rej) => assert_eq!(rej.error_code, "IC0406", "{rej}"),
        Ok(o) => assert!(matches!(o, Err(BuyError::Refused(_))), "{o:?}"),
    }

    // Removed: the token is refused at once, and so are the agent reads; the others keep theirs.
    let n: u32 = ok(
        "remove_viewers",
        b.update1(
            v.id,
            owner,
            "remove_viewers",
            &vec![x, principal("never-added")],
        ),
    );
    assert_eq!(n, 6);
    assert_eq!(
        chunk_status(b, v.id, &tx.path, 0),
        403,
        "a removed viewer's token"
    );
    assert_eq!(readable_chunks(&v, x), Vec::<u32>::new());
    assert_eq!(my_access(&v, x).grant, None);
    assert!(is_not_authorized(token(&v, x, None)));
    assert_chunk_served(b, v.id, &ty.path, 2);
    let rest: Vec<Principal> = sorted.iter().copied().filter(|p| *p != x).collect();
    assert_eq!(all_viewers(&v, 2), rest);
    // Removing voids the tokens the viewer held: adding them back does not revive them.
    let _: u32 = ok(
        "add_viewers",
        b.update1(v.id, owner, "add_viewers", &vec![x]),
    );
    assert_eq!(readable_chunks(&v, x), vec![0, 1, 2, 3, 4]);
    assert_eq!(
        chunk_status(b, v.id, &tx.path, 0),
        403,
        "a token voided by the removal"
    );
    let tx2 = token(&v, x, None).expect("playback_token");
    assert_chunk_served(b, v.id, &tx2.path, 0);

    // Back to public: everyone, no token needed.
    set_policy(&v, owner, &AccessPolicy::public());
    assert_chunk_served(b, v.id, "/", 3);
    assert_eq!(
        readable_chunks(&v, principal("stranger")),
        vec![0, 1, 2, 3, 4]
    );
    let set: BTreeSet<Principal> = all_viewers(&v, 500).into_iter().collect();
    assert_eq!(
        set.len(),
        7,
        "the allowlist is kept for the next time the video is private"
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Platform fee
// ---------------------------------------------------------------------------------------------

/// A video spawned after the spawn canister's admins set a platform fee: the buyer pays the video
/// canister's account in one transfer, and the canister pays the owner and the platform their
/// shares (one ledger fee each, out of the share), each payout once, found by its memo.
fn a_platform_fee_is_paid_out_of_the_video_account(b: &dyn Backend) {
    use canvid_tests::deploy::deploy;
    use canvid_types::access::PlatformFee;
    use canvid_types::spawn::CreateVideoArgs;
    let a = principal("viewer-a");
    let Some(wasm) = ledger_wasm("a_platform_fee_is_paid_out_of_the_video_account") else {
        return;
    };
    let ledger = install_ledger(b, principal("ledger-admin"), wasm, &[(a, START)]);
    let d = deploy(b);
    let platform = principal("platform");
    let fee = PlatformFee {
        account: Account::of(platform),
        basis_points: 250,
    };
    ok(
        "set_platform_fee",
        b.update1::<_, canvid_types::Result<()>>(
            d.spawn,
            d.admin,
            "set_platform_fee",
            &Some(fee.clone()),
        ),
    );
    let created = ok(
        "create_video",
        d.spawn_client().create_video(
            creator(),
            &CreateVideoArgs {
                title: "with a platform fee".into(),
                description: String::new(),
                tags: vec![],
                declared_size: SIZE,
                owner: None,
            },
        ),
    );
    let v = d.video(created.canister_id);
    v.upload(creator(), &file());
    let info = set_policy(&v, creator(), &paid_policy(ledger));
    assert_eq!(
        info.platform_fee,
        Some(fee),
        "the video carries the spawn's fee"
    );
    let p = Paid { b, v, ledger };
    let v = &p.v;
    p.approve(a, FOREVER_PRICE + FEE);
    let r = bought(v, a, ledger, "forever", None);
    let share = FOREVER_PRICE * 250 / 10_000;
    assert_eq!(
        r.paid_to,
        Account::of(v.id),
        "one transfer, into the video's account"
    );
    assert_eq!(r.platform_share, Some(Nat::from(share)));
    p.check_on_ledger(&r);
    assert!(
        let_the_timer_run(b, || access_info(v).payouts_pending == 0),
        "the shares are paid out: {:?}",
        b.query1::<_, Vec<canvid_types::access::PendingPayout>>(v.id, a, "pending_payouts", &())
    );
    assert_balances(
        b,
        ledger,
        &[
            (a, START - FOREVER_PRICE - 2 * FEE),
            (creator(), FOREVER_PRICE - share - FEE),
            (platform, share - FEE),
            (v.id, 0),
        ],
        "after the payouts",
    );
    // Each payout is one block, with the memo "cvpo" · purchase id · leg, from the video.
    let blocks = ledger_blocks(b, ledger);
    for (leg, to, amount) in [
        (0u8, creator(), FOREVER_PRICE - share - FEE),
        (1, platform, share - FEE),
    ] {
        let mut memo = b"cvpo".to_vec();
        memo.extend_from_slice(&r.id.to_be_bytes());
        memo.push(leg);
        let found: Vec<&Value> = blocks
            .iter()
            .filter(|bl| {
                bl.get("tx").and_then(|t| t.get("memo"))
                    == Some(&Value::Blob(ByteBuf::from(memo.clone())))
            })
            .collect();
        assert_eq!(found.len(), 1, "payout leg {leg}: {found:?}");
        let tx = found[0].get("tx").unwrap();
        assert_eq!(
            tx.get("from").cloned(),
            Some(account_value(v.id)),
            "leg {leg} from"
        );
        assert_eq!(
            tx.get("to").cloned(),
            Some(account_value(to)),
            "leg {leg} to"
        );
        assert_eq!(
            tx.get("amt").cloned(),
            Some(Value::Nat(Nat::from(amount))),
            "leg {leg} amount"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 11. A flood of failing purchases
// ---------------------------------------------------------------------------------------------

/// Buying without an approval costs the buyer nothing (ingress is free) and the video a ledger
/// call: after 20 failures in a minute the video refuses new purchases in `inspect_message`
/// (free), for everyone, until the minute is over; then a real buyer buys.
fn failing_purchases_are_bounded(b: &dyn Backend) {
    use canvid_types::access::MAX_FAILED_PURCHASES_PER_MINUTE as MAX;
    let a = principal("viewer-a");
    let Some(p) = paid_video(b, "failing_purchases_are_bounded", &[a]) else {
        return;
    };
    let v = &p.v;
    for i in 0..MAX {
        let who = principal(&format!("flooder-{i}"));
        assert!(
            matches!(
                try_buy(v, who, p.ledger, "day", None),
                Ok(Err(BuyError::InsufficientAllowance { .. }))
            ),
            "failure {i}"
        );
    }
    let before = b.cycle_balance(v.id);
    let r = try_buy(v, principal("flooder-x"), p.ledger, "day", None);
    assert!(
        matches!(&r, Err(rej) if rej.error_code == "IC0406"),
        "the 21st in the minute is refused by inspect_message: {r:?}"
    );
    assert!(
        before - b.cycle_balance(v.id) < 5_000_000,
        "a refused purchase costs (almost) nothing"
    );
    p.approve(a, DAY_PRICE + FEE);
    assert!(
        try_buy(v, a, p.ledger, "day", None).is_err(),
        "closed for everyone this minute (the price of not being drained)"
    );
    b.advance_time(Duration::from_secs(61));
    b.tick();
    let receipt = bought(v, a, p.ledger, "day", None);
    p.check_on_ledger(&receipt);
}

backend_tests!(
    failing_purchases_are_bounded,
    a_platform_fee_is_paid_out_of_the_video_account,
    a_pass_unlocks_the_video_and_its_receipt_is_on_the_ledger,
    playback_tokens_open_the_http_gate,
    revenue_goes_to_whoever_owns_the_video,
    one_purchase_is_charged_once,
    a_stopped_ledger_leaves_the_purchase_pending,
    upgrades_keep_policy_passes_and_receipts,
    the_allowlist_of_a_private_video,
);

// ---------------------------------------------------------------------------------------------
// 10. What access costs (figures for docs/performance.md)
// ---------------------------------------------------------------------------------------------

/// Instructions and cycles of the access calls on the embedded replica, printed for
/// docs/performance.md ("Private and paid viewing"): `cargo nextest run -p canvid-tests --test
/// access what_access_costs --no-capture`. Asserts that each call did what it should and that
/// memory 6 stays one bucket for 2,000 viewers and 50 receipts.
#[test]
fn what_access_costs() {
    let r = ReplicaBackend::new();
    let b: &dyn Backend = &r;
    let buyers: Vec<Principal> = (0..50).map(|i| principal(&format!("buyer-{i}"))).collect();
    let Some(p) = paid_video(b, "what_access_costs", &buyers) else {
        return;
    };
    let v = &p.v;
    let stable = |v: &Video| v.canister_info().stable_memory_bytes;
    let before = stable(v);
    let line = |what: &str, cost: Option<canvid_tests::Cost>| {
        let c = cost.expect("the embedded replica measures");
        eprintln!(
            "access cost: {what}: {} instructions, {} cycles charged",
            c.instructions, c.cycles_charged
        );
    };
    // The allowlist: 2,000 viewers in 4 calls of 500.
    for round in 0..4 {
        let list: Vec<Principal> = (0..500)
            .map(|i| principal(&format!("viewer-{round}-{i}")))
            .collect();
        let (res, cost) = b.update1_with_cost::<_, canvid_types::Result<u32>>(
            v.id,
            creator(),
            "add_viewers",
            &list,
        );
        assert_eq!(res.unwrap().unwrap(), 500 * (round + 1));
        if round == 3 {
            line("add_viewers, 500 new (allowlist 1,500 -> 2,000)", cost);
        }
    }
    // Purchases: 50 buyers, one day pass each.
    for (i, who) in buyers.iter().enumerate() {
        p.approve(*who, DAY_PRICE + FEE);
        let (res, cost) = b.update1_with_cost::<_, BuyResult>(
            v.id,
            *who,
            "buy_access",
            &buy_args(p.ledger, "day", None),
        );
        let receipt = res.unwrap().unwrap();
        assert_eq!(receipt.id, i as u64);
        if i == buyers.len() - 1 {
            line("buy_access (the video's side, ledger call included)", cost);
        }
    }
    let viewer = principal("viewer-3-7");
    let (tok, cost) = b.update1_with_cost::<_, canvid_types::Result<PlaybackToken>>(
        v.id,
        viewer,
        "playback_token",
        &PlaybackTokenArgs { ttl_seconds: None },
    );
    let tok = tok.unwrap().unwrap();
    line("playback_token (secret drawn at the first)", cost);
    let (_, cost) = b.update1_with_cost::<_, canvid_types::Result<PlaybackToken>>(
        v.id,
        viewer,
        "playback_token",
        &PlaybackTokenArgs { ttl_seconds: None },
    );
    line("playback_token", cost);
    let (res, cost) =
        b.query1_with_cost::<_, canvid_types::Result<ByteBuf>>(v.id, buyers[0], "get_chunk", &4u32);
    assert!(res.unwrap().is_ok());
    line("get_chunk past the preview, a pass holder", cost);
    let (res, cost) = b.query1_with_cost::<_, canvid_types::Result<ByteBuf>>(
        v.id,
        principal("nobody"),
        "get_chunk",
        &4u32,
    );
    assert!(is_not_authorized(res.unwrap()));
    line("get_chunk past the preview, refused", cost);
    for (what, url) in [
        (
            "http_request with a valid token",
            format!("/video?token={}", tok.token),
        ),
        ("http_request without a token (401)", "/video".to_string()),
    ] {
        let req = HttpRequest {
            method: "GET".into(),
            url,
            headers: vec![("Range".into(), format!("bytes={}-", 3 * CHUNK))],
            body: ByteBuf::new(),
            certificate_version: Some(2),
        };
        let (res, cost) = b.query1_with_cost::<_, HttpResponse>(
            v.id,
            Principal::anonymous(),
            "http_request",
            &req,
        );
        let status = res.unwrap().status_code;
        assert!(status == 206 || status == 401, "{what}: {status}");
        line(what, cost);
    }
    let after = stable(v);
    eprintln!(
        "access cost: stable memory {before} bytes before, {after} after 2,000 viewers and 50 receipts \
         (+{} bytes: memory 6)",
        after - before
    );
    assert!(
        after - before <= 16 * 1024 * 1024,
        "memory 6 grew past one 16 MiB bucket"
    );
}
