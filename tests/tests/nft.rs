//! canvid as an ICRC-7 collection (docs/nft.md): every spawned video is a token of the index
//! canister, and moving the token moves the video canister itself.
//!
//! Every scenario runs on the embedded replica and on PocketIC. The marketplace sale uses the
//! test marketplace canister (`tests/marketplace`) and DFINITY's ICRC-1/2/3 ledger from
//! `../shared/fixtures/icrc-ledger` (or `$ICRC_LEDGER_DIR`); where that folder is absent the sale
//! prints `SKIPPED ...` to stderr instead of running. The other scenarios use the marketplace
//! only as an approved spender (`relay_transfer_from`), without a ledger.

use candid::Nat;
use canvid_icrc3::types::{DataCertificate, GetBlocksRequest, GetBlocksResult, SupportedBlockType};
use canvid_icrc3::Value;
use canvid_test_marketplace::{BuyResult, ListResult, ListingState, MarketError, MarketInit};
use canvid_tests::clients::ok;
use canvid_tests::deploy::{deploy, Deployment, T};
use canvid_tests::http_types::{HttpRequest, HttpResponse};
use canvid_tests::ledger::{install_ledger, ledger_approve, ledger_balance, ledger_wasm, FEE};
use canvid_tests::{backend_tests, principal, wasm, Backend, BackendExt, GenFile, Principal};
use canvid_types::icrc::{
    token_id_of, Account, ApprovalInfo, ApproveCollectionArg, ApproveCollectionError,
    ApproveTokenArg, ApproveTokenResult, IsApprovedArg, RevokeTokenApprovalArg,
    RevokeTokenApprovalResponse, TokenApproval, TransferArg, TransferError, TransferFromArg,
    TransferFromError, TransferFromResult, TransferResult,
};
use canvid_types::spawn::CreateVideoArgs;
use serde_bytes::ByteBuf;
use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

/// `GenericError` codes of the collection (docs/nft.md).
const BUSY: u64 = 1;
const NOT_SOLE_CONTROL: u64 = 2;
const MEMO_TOO_LONG: u64 = 5;
const BAD_RECIPIENT: u64 = 6;
const BATCH_TOO_LARGE: u64 = 10;

fn set(v: impl IntoIterator<Item = Principal>) -> BTreeSet<Principal> {
    v.into_iter().collect()
}

fn file() -> GenFile {
    GenFile::new(7, 5_000, 5_000)
}

/// A spawned, uploaded and finished video of `owner`.
fn finished_video(d: &Deployment, owner: Principal) -> Principal {
    let id = ok(
        "create_video",
        d.spawn_client().create_video(
            owner,
            &CreateVideoArgs {
                title: "token".into(),
                description: String::new(),
                tags: vec![],
                declared_size: 5_000,
                owner: None,
            },
        ),
    )
    .canister_id;
    d.video(id).upload(owner, &file());
    assert_eq!(set(d.b.controllers(id)), set([owner, id, d.spawn]));
    id
}

fn tid_of(video: Principal) -> u64 {
    token_id_of(&video).expect("a canister id")
}

fn now_ns(b: &dyn Backend) -> u64 {
    b.time().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

// ---------------------------------------------------------------------------------------------
// The collection's methods
// ---------------------------------------------------------------------------------------------

fn owner_of(d: &Deployment, tid: u64) -> Option<Account> {
    let r: Vec<Option<Account>> =
        d.b.query1(
            d.index,
            Principal::anonymous(),
            "icrc7_owner_of",
            &vec![Nat::from(tid)],
        )
        .unwrap();
    r.into_iter().next().flatten()
}

fn tokens_of(d: &Deployment, who: Principal) -> Vec<Nat> {
    d.b.query::<_, (Vec<Nat>,)>(
        d.index,
        Principal::anonymous(),
        "icrc7_tokens_of",
        (Account::of(who), None::<Nat>, None::<Nat>),
    )
    .unwrap()
    .0
}

fn balance_of(d: &Deployment, who: Principal) -> Nat {
    let r: Vec<Nat> =
        d.b.query1(
            d.index,
            Principal::anonymous(),
            "icrc7_balance_of",
            &vec![Account::of(who)],
        )
        .unwrap();
    r.into_iter().next().expect("one answer")
}

fn transfer(d: &Deployment, by: Principal, tid: u64, to: Principal) -> TransferResult {
    transfer_to(d, by, tid, Account::of(to))
}

fn transfer_to(d: &Deployment, by: Principal, tid: u64, to: Account) -> TransferResult {
    try_transfer(d, by, tid, to).unwrap_or_else(|e| panic!("icrc7_transfer by {by}: {e}"))
}

fn try_transfer(
    d: &Deployment,
    by: Principal,
    tid: u64,
    to: Account,
) -> Result<TransferResult, canvid_tests::Reject> {
    let r: Vec<Option<TransferResult>> = d.b.update1(
        d.index,
        by,
        "icrc7_transfer",
        &vec![TransferArg {
            from_subaccount: None,
            to,
            token_id: Nat::from(tid),
            memo: None,
            created_at_time: None,
        }],
    )?;
    Ok(r.into_iter().next().flatten().expect("one answer"))
}

fn approval(spender: Principal, now: u64, expires_at: Option<u64>) -> ApprovalInfo {
    ApprovalInfo {
        spender: Account::of(spender),
        from_subaccount: None,
        expires_at,
        memo: None,
        created_at_time: now,
    }
}

fn approve_token(
    d: &Deployment,
    holder: Principal,
    tid: u64,
    spender: Principal,
    expires_at: Option<u64>,
) -> Nat {
    let r: Vec<Option<ApproveTokenResult>> =
        d.b.update1(
            d.index,
            holder,
            "icrc37_approve_tokens",
            &vec![ApproveTokenArg {
                token_id: Nat::from(tid),
                approval_info: approval(spender, now_ns(d.b), expires_at),
            }],
        )
        .unwrap();
    match r.into_iter().next().flatten() {
        Some(Ok(block)) => block,
        other => panic!("icrc37_approve_tokens: {other:?}"),
    }
}

fn is_approved(d: &Deployment, tid: u64, spender: Principal) -> bool {
    let r: Vec<bool> =
        d.b.query1(
            d.index,
            Principal::anonymous(),
            "icrc37_is_approved",
            &vec![IsApprovedArg {
                spender: Account::of(spender),
                from_subaccount: None,
                token_id: Nat::from(tid),
            }],
        )
        .unwrap();
    r == [true]
}

fn token_approvals(d: &Deployment, tid: u64) -> Vec<TokenApproval> {
    d.b.query::<_, (Vec<TokenApproval>,)>(
        d.index,
        Principal::anonymous(),
        "icrc37_get_token_approvals",
        (Nat::from(tid), None::<TokenApproval>, None::<Nat>),
    )
    .unwrap()
    .0
}

/// Every block of the collection's log.
/// The last block that is not a `7update_token` (the collection re-reads a video's metadata from
/// a timer after a transfer; the first time, that is a block).
fn last_transfer_block(d: &Deployment) -> Value {
    blocks(d)
        .into_iter()
        .rev()
        .find(|b| btype(b) != "7update_token")
        .expect("a block")
}

/// Not the `7update_token` of the metadata refresh a collection transfer schedules (its timer
/// may or may not have run when a test looks).
fn not_a_refresh(btype: &&str) -> bool {
    *btype != "7update_token"
}

fn blocks(d: &Deployment) -> Vec<Value> {
    let r: GetBlocksResult =
        d.b.query1(
            d.index,
            Principal::anonymous(),
            "icrc3_get_blocks",
            &vec![GetBlocksRequest {
                start: Nat::from(0u8),
                length: Nat::from(1_000u32),
            }],
        )
        .unwrap();
    assert!(r.archived_blocks.is_empty());
    assert_eq!(r.log_length, Nat::from(r.blocks.len()));
    r.blocks
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            assert_eq!(b.id, Nat::from(i), "blocks in order");
            b.block
        })
        .collect()
}

fn btype(block: &Value) -> &str {
    match block.get("btype") {
        Some(Value::Text(t)) => t,
        other => panic!("btype {other:?} in {block:?}"),
    }
}

fn tx<'a>(block: &'a Value, field: &str) -> Option<&'a Value> {
    block.get("tx").and_then(|tx| tx.get(field))
}

fn account_value(p: Principal) -> Value {
    Value::Array(vec![Value::blob(p.as_slice())])
}

// ---------------------------------------------------------------------------------------------
// The marketplace fixture
// ---------------------------------------------------------------------------------------------

fn install_market(d: &Deployment, ledger: Principal) -> Principal {
    let id =
        d.b.create_canister(Some(d.admin), Some(vec![d.admin]), 10 * T);
    d.b.install(
        id,
        wasm::load("test-marketplace"),
        candid::encode_one(MarketInit {
            collection: d.index,
            ledger,
        })
        .unwrap(),
        Some(d.admin),
    )
    .unwrap_or_else(|e| panic!("installing the marketplace: {e}"));
    id
}

/// `icrc37_transfer_from` made by the marketplace canister (an inter-canister call, so the
/// index's ingress filter plays no part).
fn relay(d: &Deployment, market: Principal, arg: TransferFromArg) -> TransferFromResult {
    let r: Result<TransferFromResult, String> =
        d.b.update1(market, principal("relay"), "relay_transfer_from", &arg)
            .unwrap_or_else(|e| panic!("relay_transfer_from: {e}"));
    r.unwrap_or_else(|e| panic!("relay_transfer_from: {e}"))
}

fn from_to(
    tid: u64,
    from: Principal,
    to: Principal,
    created_at_time: Option<u64>,
) -> TransferFromArg {
    TransferFromArg {
        spender_subaccount: None,
        from: Account::of(from),
        to: Account::of(to),
        token_id: Nat::from(tid),
        memo: None,
        created_at_time,
    }
}

fn generic_code(e: &TransferFromError) -> Option<u64> {
    match e {
        TransferFromError::GenericError { error_code, .. } => u64::try_from(&error_code.0).ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// DFINITY's ICRC ledger (canvid_tests::ledger)
// ---------------------------------------------------------------------------------------------

fn list(d: &Deployment, market: Principal, seller: Principal, tid: u64, price: u64) -> ListResult {
    d.b.update::<_, (ListResult,)>(market, seller, "list", (Nat::from(tid), Nat::from(price)))
        .unwrap()
        .0
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

fn the_holder_transfers_the_canister(b: &dyn Backend) {
    let d = deploy(b);
    let (alice, bob) = (principal("alice"), principal("bob"));
    let video = finished_video(&d, alice);
    let tid = tid_of(video);
    assert_eq!(owner_of(&d, tid), Some(Account::of(alice)));
    // Not a holder of any token: refused at ingress, which the collection does not pay for.
    let r = try_transfer(&d, bob, tid, Account::of(bob)).unwrap_err();
    assert_eq!(r.error_code, "IC0406", "{r}");
    // A holder of another token: the typed refusal.
    let carol = principal("carol");
    let _carols = finished_video(&d, carol);
    assert_eq!(
        transfer(&d, carol, tid, carol),
        Err(TransferError::Unauthorized)
    );
    let block = transfer(&d, alice, tid, bob).expect("the holder's transfer");
    assert_eq!(owner_of(&d, tid), Some(Account::of(bob)));
    assert_eq!(set(b.controllers(video)), set([bob, video, d.spawn]));
    assert_eq!(d.video(video).metadata().owner, bob);
    assert!(block >= 1u8, "after the mint: {block}");
    // The seller can do nothing any more.
    let r = try_transfer(&d, alice, tid, Account::of(alice)).unwrap_err();
    assert_eq!(r.error_code, "IC0406", "{r}");
}

/// The marketplace flow: the seller approves the marketplace and lists; a buyer
/// approves the ledger and buys; the marketplace takes the payment, moves the video with
/// `icrc37_transfer_from` and pays the seller. A second buyer, concurrent, is refused.
fn a_marketplace_sells_a_video_for_ledger_tokens(b: &dyn Backend) {
    let Some(ledger_wasm) = ledger_wasm("a_marketplace_sells_a_video_for_ledger_tokens") else {
        return;
    };
    let d = deploy(b);
    let (seller, buyer, rival) = (principal("seller"), principal("buyer"), principal("rival"));
    const START: u64 = 10_000_000;
    const PRICE: u64 = 1_000_000;
    let ledger = install_ledger(d.b, d.admin, ledger_wasm, &[(buyer, START), (rival, START)]);
    let market = install_market(&d, ledger);
    let video = finished_video(&d, seller);
    let tid = tid_of(video);

    // Listing needs the approval.
    assert_eq!(
        list(&d, market, seller, tid, PRICE),
        Err(MarketError::NotApproved)
    );
    approve_token(&d, seller, tid, market, None);
    assert!(is_approved(&d, tid, market));
    assert_eq!(
        list(&d, market, buyer, tid, PRICE),
        Err(MarketError::NotHolder {
            holder: Some(Account::of(seller))
        })
    );
    assert_eq!(
        list(&d, market, seller, tid, FEE),
        Err(MarketError::PriceTooLow {
            fee: Nat::from(FEE)
        })
    );
    let listing = list(&d, market, seller, tid, PRICE).expect("listed");
    assert_eq!(listing.state, ListingState::Open);

    // Two buyers approve the marketplace on the ledger (price + the transfer_from fee) and buy
    // at once: the first one's sale runs across its awaits, the second is refused meanwhile.
    for who in [buyer, rival] {
        ledger_approve(d.b, ledger, who, market, PRICE + FEE);
    }
    let first = b.submit1(market, buyer, "buy", &Nat::from(tid)).unwrap();
    let second = b.submit1(market, rival, "buy", &Nat::from(tid)).unwrap();
    let first = b.await1::<BuyResult>(first, "buy").unwrap();
    let second = b.await1::<BuyResult>(second, "buy").unwrap();
    // Which of the two ran first is the IC's choice (PocketIC may run the later submission
    // first): exactly one buys, and from here `buyer` is the one who did.
    let (buyer, rival, sale, refused) = match (first, second) {
        (Ok(sale), refused) => (buyer, rival, sale, refused),
        (refused, Ok(sale)) => (rival, buyer, sale, refused),
        other => panic!("neither buyer bought: {other:?}"),
    };
    assert!(
        matches!(
            refused,
            Err(MarketError::NotAvailable {
                state: ListingState::InProgress { .. } | ListingState::Sold { .. }
            })
        ),
        "{refused:?}"
    );
    assert_eq!(sale.paid_to_seller, Nat::from(PRICE - FEE));
    let transfer_block = sale
        .transfer_block
        .clone()
        .expect("the collection's answer");

    // The ledger: the seller got the price less the fee, the buyer paid the price and two fees
    // (approve, transfer_from), the rival only its approve fee, the escrow is empty.
    assert_eq!(ledger_balance(d.b, ledger, seller), PRICE - FEE);
    assert_eq!(ledger_balance(d.b, ledger, buyer), START - PRICE - 2 * FEE);
    assert_eq!(ledger_balance(d.b, ledger, rival), START - FEE);
    assert_eq!(ledger_balance(d.b, ledger, market), 0);

    // The IC: the buyer controls the video with only the video and the spawn canister, in its
    // certified state (read_state, checked against the root key) as in canister_status.
    assert_eq!(
        certified_controllers(b, video),
        set([buyer, video, d.spawn])
    );
    assert_eq!(set(b.controllers(video)), set([buyer, video, d.spawn]));
    let status = b
        .status(video, Some(buyer))
        .expect("the buyer is a controller");
    assert_eq!(set(status.controllers), set([buyer, video, d.spawn]));
    assert!(b.status(video, Some(seller)).is_err(), "the seller is not");

    // The collection and the video agree.
    assert_eq!(owner_of(&d, tid), Some(Account::of(buyer)));
    assert!(tokens_of(&d, buyer).contains(&Nat::from(tid)));
    assert_eq!(balance_of(&d, buyer), Nat::from(1u8));
    assert_eq!(balance_of(&d, seller), Nat::from(0u8));
    assert!(tokens_of(&d, seller).is_empty());
    assert_eq!(d.video(video).metadata().owner, buyer);
    // The sale's block (the collection then re-reads the video's metadata from a timer, which
    // may already have added a `7update_token` block after it).
    let all = blocks(&d);
    let sale = all
        .iter()
        .rposition(|b| btype(b) != "7update_token")
        .expect("the sale's block");
    assert!(all[sale + 1..].iter().all(|b| btype(b) == "7update_token"));
    let last = all[sale].clone();
    assert_eq!(btype(&last), "37xfer");
    assert_eq!(transfer_block, Nat::from(sale));
    assert_eq!(tx(&last, "to"), Some(&account_value(buyer)));
    assert_eq!(tx(&last, "spender"), Some(&account_value(market)));

    // It plays: its chunks and its HTTP answer are the uploaded bytes.
    d.video(video).verify_chunks(buyer, &file());
    let resp: HttpResponse = b
        .query1(
            video,
            Principal::anonymous(),
            "http_request",
            &HttpRequest {
                method: "GET".into(),
                url: "/video".into(),
                headers: vec![("Range".into(), "bytes=0-".into())],
                body: ByteBuf::new(),
                certificate_version: Some(2),
            },
        )
        .unwrap();
    assert!(
        matches!(resp.status_code, 200 | 206),
        "status {}",
        resp.status_code
    );
    assert_eq!(resp.body.as_slice(), file().bytes().as_slice());

    // The listing is sold; the seller can do nothing.
    let listing: Option<canvid_test_marketplace::Listing> = b
        .query1(
            market,
            Principal::anonymous(),
            "get_listing",
            &Nat::from(tid),
        )
        .unwrap();
    assert!(
        matches!(listing.map(|l| l.state), Some(ListingState::Sold { buyer: who, .. }) if who == buyer)
    );
    let r = try_transfer(&d, seller, tid, Account::of(seller)).unwrap_err();
    assert_eq!(
        r.error_code, "IC0406",
        "no token left: refused at ingress: {r}"
    );
    // Refused by the video's ingress filter or by the method itself.
    if let Ok(Ok(r)) = d.video(video).change_owner(seller, seller) {
        panic!("change_owner by the seller: {r:?}");
    }
    assert!(
        token_approvals(&d, tid).is_empty(),
        "the transfer revoked the approval"
    );
    assert!(!is_approved(&d, tid, market));
    assert_eq!(
        relay(&d, market, from_to(tid, buyer, seller, None)),
        Err(TransferFromError::Unauthorized),
        "the marketplace cannot move the token again"
    );
    assert_eq!(
        list(&d, market, seller, tid, PRICE),
        Err(MarketError::NotHolder {
            holder: Some(Account::of(buyer))
        })
    );
    assert_eq!(owner_of(&d, tid), Some(Account::of(buyer)));
    assert_eq!(set(b.controllers(video)), set([buyer, video, d.spawn]));

    // A sale the collection refuses refunds the buyer: the seller revoked the approval after
    // listing another video.
    let other = finished_video(&d, seller);
    let other_tid = tid_of(other);
    // Holding a token again, the seller passes the index's ingress filter: the sold token is
    // refused by the methods themselves.
    assert_eq!(
        transfer(&d, seller, tid, seller),
        Err(TransferError::Unauthorized)
    );
    let r: Vec<Option<TransferFromResult>> = b
        .update1(
            d.index,
            seller,
            "icrc37_transfer_from",
            &vec![from_to(tid, buyer, seller, None)],
        )
        .unwrap();
    assert_eq!(r, vec![Some(Err(TransferFromError::Unauthorized))]);
    assert_eq!(owner_of(&d, tid), Some(Account::of(buyer)));
    approve_token(&d, seller, other_tid, market, None);
    list(&d, market, seller, other_tid, PRICE).expect("listed");
    let revoked: Vec<Option<RevokeTokenApprovalResponse>> = b
        .update1(
            d.index,
            seller,
            "icrc37_revoke_token_approvals",
            &vec![RevokeTokenApprovalArg {
                spender: Some(Account::of(market)),
                from_subaccount: None,
                token_id: Nat::from(other_tid),
                memo: None,
                created_at_time: None,
            }],
        )
        .unwrap();
    assert!(matches!(revoked.as_slice(), [Some(Ok(_))]), "{revoked:?}");
    ledger_approve(d.b, ledger, rival, market, PRICE + FEE);
    let r = b
        .update1::<_, BuyResult>(market, rival, "buy", &Nat::from(other_tid))
        .unwrap();
    match r {
        Err(MarketError::TransferRefused {
            error: TransferFromError::Unauthorized,
            refund_block: Ok(_),
        }) => {}
        other => panic!("a refused transfer: {other:?}"),
    }
    // Refunded the price less the refund's fee; paid the approve and transfer_from fees.
    assert_eq!(ledger_balance(d.b, ledger, rival), START - 4 * FEE);
    assert_eq!(ledger_balance(d.b, ledger, market), 0);
    assert_eq!(owner_of(&d, other_tid), Some(Account::of(seller)));
    assert_eq!(set(b.controllers(other)), set([seller, other, d.spawn]));
}

/// ICRC-3: the mint, the approval and the marketplace's transfer are blocks in order, chained
/// by `phash`, and the tip certificate is signed by the IC (checked against the root key).
fn the_log_records_mint_approval_and_transfer_and_its_tip_is_certified(b: &dyn Backend) {
    let d = deploy(b);
    let (seller, buyer) = (principal("seller"), principal("buyer"));
    let market = install_market(&d, principal("no-ledger"));
    let video = finished_video(&d, seller);
    let tid = tid_of(video);
    let approved_at = now_ns(b);
    let expires = approved_at + 3_600_000_000_000;
    let r: Vec<Option<ApproveTokenResult>> = b
        .update1(
            d.index,
            seller,
            "icrc37_approve_tokens",
            &vec![ApproveTokenArg {
                token_id: Nat::from(tid),
                approval_info: ApprovalInfo {
                    spender: Account::of(market),
                    from_subaccount: None,
                    expires_at: Some(expires),
                    memo: Some(ByteBuf::from(b"listing".to_vec())),
                    created_at_time: approved_at,
                },
            }],
        )
        .unwrap();
    assert_eq!(r, vec![Some(Ok(Nat::from(1u8)))]);
    let moved = relay(&d, market, from_to(tid, seller, buyer, None)).expect("transfer_from");
    assert_eq!(moved, Nat::from(2u8));

    let log = blocks(&d);
    assert_eq!(
        log.iter()
            .map(btype)
            .filter(not_a_refresh)
            .collect::<Vec<_>>(),
        ["7mint", "37approve", "37xfer"]
    );
    let (types,): (Vec<SupportedBlockType>,) = b
        .query(
            d.index,
            Principal::anonymous(),
            "icrc3_supported_block_types",
            (),
        )
        .unwrap();
    let types: BTreeSet<String> = types.into_iter().map(|t| t.block_type).collect();
    for t in [
        "7mint",
        "7xfer",
        "37approve",
        "37approve_coll",
        "37revoke",
        "37xfer",
    ] {
        assert!(types.contains(t), "{t} in icrc3_supported_block_types");
    }
    let tid_value = Value::Nat(Nat::from(tid));
    // 7mint: the token to its creator, with its metadata.
    assert_eq!(tx(&log[0], "tid"), Some(&tid_value));
    assert_eq!(tx(&log[0], "to"), Some(&account_value(seller)));
    assert_eq!(tx(&log[0], "from"), None);
    let meta = tx(&log[0], "meta").and_then(|m| m.get("icrc7:token_metadata"));
    assert_eq!(
        meta.and_then(|m| m.get("canvid:video_canister")),
        Some(&Value::text(video.to_text()))
    );
    // 37approve: the caller's fields as given.
    assert_eq!(tx(&log[1], "tid"), Some(&tid_value));
    assert_eq!(tx(&log[1], "from"), Some(&account_value(seller)));
    assert_eq!(tx(&log[1], "spender"), Some(&account_value(market)));
    assert_eq!(tx(&log[1], "exp"), Some(&Value::nat(expires)));
    assert_eq!(tx(&log[1], "ts"), Some(&Value::nat(approved_at)));
    assert_eq!(tx(&log[1], "memo"), Some(&Value::blob(b"listing".to_vec())));
    // 37xfer: no memo or created_at_time given, none recorded.
    assert_eq!(tx(&log[2], "tid"), Some(&tid_value));
    assert_eq!(tx(&log[2], "spender"), Some(&account_value(market)));
    assert_eq!(tx(&log[2], "from"), Some(&account_value(seller)));
    assert_eq!(tx(&log[2], "to"), Some(&account_value(buyer)));
    assert_eq!(tx(&log[2], "memo"), None);
    assert_eq!(tx(&log[2], "ts"), None);
    // Timestamps and the chain.
    let mut previous_ts = Nat::from(0u8);
    for (i, block) in log.iter().enumerate() {
        let Some(Value::Nat(ts)) = block.get("ts") else {
            panic!("block {i} has no ts: {block:?}");
        };
        assert!(*ts >= previous_ts, "block {i}: timestamps do not decrease");
        previous_ts = ts.clone();
        match (i, block.get("phash")) {
            (0, None) => {}
            (0, Some(p)) => panic!("block 0 has a parent: {p:?}"),
            (_, Some(Value::Blob(p))) => {
                assert_eq!(p.as_slice(), log[i - 1].hash(), "phash of block {i}")
            }
            (_, other) => panic!("phash of block {i}: {other:?}"),
        }
    }

    check_tip_certificate(&d, &log);
}

/// `icrc3_get_tip_certificate`: the IC's certificate (checked against the root key) holds the
/// index's certified data, which is the root of the returned hash tree, whose leaves are the
/// index and hash of the last block of `log`.
fn check_tip_certificate(d: &Deployment, log: &[Value]) {
    let b = d.b;
    let (cert,): (Option<DataCertificate>,) = b
        .query(
            d.index,
            Principal::anonymous(),
            "icrc3_get_tip_certificate",
            (),
        )
        .unwrap();
    let cert = cert.expect("a certificate once the log has blocks");
    let certified = certified_data(&cert.certificate, &b.root_key(), d.index);
    let tree: ic_certification::HashTree = serde_cbor::from_slice(&cert.hash_tree).unwrap();
    assert_eq!(
        tree.digest().as_slice(),
        certified.as_slice(),
        "the hash tree is the index's certified data"
    );
    let leaf = |label: &str| match tree.lookup_path([label.as_bytes()]) {
        ic_certification::LookupResult::Found(v) => v.to_vec(),
        other => panic!("{label}: {other:?}"),
    };
    assert_eq!(leb128(&leaf("last_block_index")), log.len() as u64 - 1);
    assert_eq!(leaf("last_block_hash"), log.last().unwrap().hash().to_vec());
}

fn leb128(bytes: &[u8]) -> u64 {
    let mut n = 0u64;
    for (i, b) in bytes.iter().enumerate() {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            assert_eq!(i + 1, bytes.len(), "trailing bytes after LEB128");
            return n;
        }
    }
    panic!("unterminated LEB128")
}

/// Checks `certificate` (CBOR) as an IC client does — its BLS signature by the subnet, whose key
/// a delegation signed by the root key vouches for (PocketIC's application subnet, which must
/// hold `canister`), or by the root key itself (the embedded replica's one subnet) — and returns
/// its state tree.
fn verified_tree(
    certificate: &[u8],
    root_key_der: &[u8],
    canister: Principal,
) -> ic_certification::HashTree {
    use ic_certification::{Certificate, LookupResult};
    let cert: Certificate = serde_cbor::from_slice(certificate).expect("CBOR certificate");
    let key = match &cert.delegation {
        None => root_key_der.to_vec(),
        Some(delegation) => {
            let parent: Certificate =
                serde_cbor::from_slice(&delegation.certificate).expect("CBOR delegation");
            assert!(parent.delegation.is_none(), "one level of delegation");
            check_signature(&parent, root_key_der);
            let subnet = delegation.subnet_id.as_slice();
            // The subnet must be the canister's: its ranges are in the delegation.
            match parent.tree.lookup_path([
                b"subnet".as_slice(),
                subnet,
                b"canister_ranges".as_slice(),
            ]) {
                LookupResult::Found(ranges) => {
                    let ranges: Vec<(ByteBuf, ByteBuf)> =
                        serde_cbor::from_slice(ranges).expect("CBOR canister ranges");
                    let c = canister.as_slice();
                    assert!(
                        ranges
                            .iter()
                            .any(|(lo, hi)| lo.as_slice() <= c && c <= hi.as_slice()),
                        "{canister} is not in the delegated subnet's ranges"
                    );
                }
                other => panic!("the delegation has no canister ranges: {other:?}"),
            }
            match parent
                .tree
                .lookup_path([b"subnet".as_slice(), subnet, b"public_key".as_slice()])
            {
                LookupResult::Found(k) => k.to_vec(),
                other => panic!("the delegation has no subnet key: {other:?}"),
            }
        }
    };
    check_signature(&cert, &key);
    cert.tree
}

/// `canister`'s certified data, from a verified certificate.
fn certified_data(certificate: &[u8], root_key_der: &[u8], canister: Principal) -> Vec<u8> {
    let tree = verified_tree(certificate, root_key_der, canister);
    match tree.lookup_path([
        b"canister".as_slice(),
        canister.as_slice(),
        b"certified_data".as_slice(),
    ]) {
        ic_certification::LookupResult::Found(d) => d.to_vec(),
        other => panic!("no certified data of {canister}: {other:?}"),
    }
}

/// `canister`'s controllers as the IC certifies them: `read_state` of
/// `/canister/<id>/controllers`, the certificate checked against the root key.
fn certified_controllers(b: &dyn Backend, canister: Principal) -> BTreeSet<Principal> {
    let path = vec![
        b"canister".to_vec(),
        canister.as_slice().to_vec(),
        b"controllers".to_vec(),
    ];
    let cert = b
        .read_state(canister, vec![path.clone()])
        .unwrap_or_else(|e| panic!("read_state of {canister}'s controllers: {e}"));
    let tree = verified_tree(&cert, &b.root_key(), canister);
    match tree.lookup_path(&path) {
        ic_certification::LookupResult::Found(v) => {
            let c: Vec<ByteBuf> = serde_cbor::from_slice(v).expect("CBOR controllers");
            c.iter().map(|p| Principal::from_slice(p)).collect()
        }
        other => panic!("/canister/{canister}/controllers: {other:?}"),
    }
}

fn check_signature(cert: &ic_certification::Certificate, key_der: &[u8]) {
    // A BLS12-381 G2 key in DER: a fixed 37-byte prefix and the 96-byte point.
    assert_eq!(key_der.len(), 133, "a BLS12-381 DER key");
    let mut msg = b"\x0Dic-state-root".to_vec();
    msg.extend_from_slice(&cert.tree.digest());
    ic_verify_bls_signature::verify_bls_signature(&cert.signature, &msg, &key_der[37..])
        .expect("the certificate's signature verifies");
}

/// A direct `change_owner` on the video (not through the collection) is a `7xfer` block once the
/// index has checked the video's report against the IC, and it revokes the token's approvals.
fn a_direct_change_owner_is_a_7xfer_and_ends_the_approvals(b: &dyn Backend) {
    let d = deploy(b);
    let (seller, carol) = (principal("seller"), principal("carol"));
    let market = install_market(&d, principal("no-ledger"));
    let video = finished_video(&d, seller);
    let tid = tid_of(video);
    approve_token(&d, seller, tid, market, None);
    assert_eq!(token_approvals(&d, tid).len(), 1);
    let before = blocks(&d).len();

    let r = ok("change_owner", d.video(video).change_owner(seller, carol));
    assert!(r.index_notified, "the index took the report");
    let log = blocks(&d);
    assert_eq!(log.len(), before + 1);
    let last = log.last().unwrap();
    assert_eq!(btype(last), "7xfer");
    assert_eq!(tx(last, "tid"), Some(&Value::Nat(Nat::from(tid))));
    assert_eq!(tx(last, "from"), Some(&account_value(seller)));
    assert_eq!(tx(last, "to"), Some(&account_value(carol)));
    assert_eq!(
        last.get("phash"),
        Some(&Value::blob(log[log.len() - 2].hash().to_vec()))
    );
    assert_eq!(owner_of(&d, tid), Some(Account::of(carol)));
    assert_eq!(tokens_of(&d, carol), vec![Nat::from(tid)]);
    assert!(
        token_approvals(&d, tid).is_empty(),
        "approvals die with the transfer"
    );
    assert!(!is_approved(&d, tid, market));
    assert_eq!(
        relay(&d, market, from_to(tid, carol, seller, None)),
        Err(TransferFromError::Unauthorized)
    );
    assert_eq!(
        relay(&d, market, from_to(tid, seller, market, None)),
        Err(TransferFromError::Unauthorized),
        "the old holder's approval is gone too"
    );
    assert_eq!(
        certified_controllers(b, video),
        set([carol, video, d.spawn])
    );
}

/// `icrc37_transfer_from` under each kind of approval, and the deduplication and time checks.
fn transfer_from_needs_a_live_approval_and_deduplicates(b: &dyn Backend) {
    let d = deploy(b);
    let (alice, bob, carol) = (principal("alice"), principal("bob"), principal("carol"));
    let market = install_market(&d, principal("no-ledger"));
    let video = finished_video(&d, alice);
    let tid = tid_of(video);

    // Without approval.
    assert_eq!(
        relay(&d, market, from_to(tid, alice, bob, None)),
        Err(TransferFromError::Unauthorized)
    );
    // A collection approval covers the holder's tokens.
    let r: Vec<Option<ApproveCollectionError>> = b
        .update1(
            d.index,
            alice,
            "icrc37_approve_collection",
            &vec![ApproveCollectionArg {
                approval_info: approval(market, now_ns(b), None),
            }],
        )
        .unwrap();
    assert_eq!(r, vec![None]);
    assert!(is_approved(&d, tid, market));
    relay(&d, market, from_to(tid, alice, bob, None)).expect("with a collection approval");
    assert_eq!(owner_of(&d, tid), Some(Account::of(bob)));
    // Alice's collection approval does not cover Bob's token.
    assert_eq!(
        relay(&d, market, from_to(tid, bob, carol, None)),
        Err(TransferFromError::Unauthorized)
    );

    // An expired approval.
    let in_a_minute = now_ns(b) + 60_000_000_000;
    approve_token(&d, bob, tid, market, Some(in_a_minute));
    assert!(is_approved(&d, tid, market));
    b.advance_time(Duration::from_secs(120));
    b.tick();
    assert!(!is_approved(&d, tid, market));
    assert_eq!(
        relay(&d, market, from_to(tid, bob, carol, None)),
        Err(TransferFromError::Unauthorized)
    );

    // A revoked approval.
    approve_token(&d, bob, tid, market, None);
    assert!(is_approved(&d, tid, market));
    let revoked: Vec<Option<RevokeTokenApprovalResponse>> = b
        .update1(
            d.index,
            bob,
            "icrc37_revoke_token_approvals",
            &vec![RevokeTokenApprovalArg {
                spender: Some(Account::of(market)),
                from_subaccount: None,
                token_id: Nat::from(tid),
                memo: None,
                created_at_time: None,
            }],
        )
        .unwrap();
    assert!(matches!(revoked.as_slice(), [Some(Ok(_))]), "{revoked:?}");
    assert!(!is_approved(&d, tid, market));
    assert_eq!(
        relay(&d, market, from_to(tid, bob, carol, None)),
        Err(TransferFromError::Unauthorized)
    );

    // The time window.
    approve_token(&d, bob, tid, market, None);
    let now = now_ns(b);
    let day = 24 * 3_600_000_000_000u64;
    assert_eq!(
        relay(
            &d,
            market,
            from_to(tid, bob, carol, Some(now - day - 300_000_000_000))
        ),
        Err(TransferFromError::TooOld)
    );
    match relay(
        &d,
        market,
        from_to(tid, bob, carol, Some(now + 3_600_000_000_000)),
    ) {
        Err(TransferFromError::CreatedInFuture { ledger_time }) => {
            assert!(
                ledger_time.abs_diff(now) < 60_000_000_000,
                "{ledger_time} vs {now}"
            )
        }
        other => panic!("CreatedInFuture expected: {other:?}"),
    }
    assert_eq!(owner_of(&d, tid), Some(Account::of(bob)));

    // Deduplication: the same request twice is the first one's block.
    let request = from_to(tid, bob, carol, Some(now));
    let block = relay(&d, market, request.clone()).expect("transfer_from with created_at_time");
    assert_eq!(owner_of(&d, tid), Some(Account::of(carol)));
    assert_eq!(
        relay(&d, market, request),
        Err(TransferFromError::Duplicate {
            duplicate_of: block.clone()
        })
    );
    let last = last_transfer_block(&d);
    assert_eq!(btype(&last), "37xfer");
    assert_eq!(tx(&last, "ts"), Some(&Value::nat(now)));
    assert_eq!(owner_of(&d, tid), Some(Account::of(carol)));
    assert_eq!(set(b.controllers(video)), set([carol, video, d.spawn]));

    // A spender account with a subaccount: only that account may spend.
    let sub = ByteBuf::from(vec![5; 32]);
    let spender = Account {
        owner: market,
        subaccount: Some(sub.clone()),
    };
    let r: Vec<Option<ApproveTokenResult>> = b
        .update1(
            d.index,
            carol,
            "icrc37_approve_tokens",
            &vec![ApproveTokenArg {
                token_id: Nat::from(tid),
                approval_info: ApprovalInfo {
                    spender: spender.clone(),
                    ..approval(market, now_ns(b), None)
                },
            }],
        )
        .unwrap();
    assert!(matches!(r.as_slice(), [Some(Ok(_))]), "{r:?}");
    assert!(
        !is_approved(&d, tid, market),
        "the default account is not approved"
    );
    assert_eq!(
        relay(&d, market, from_to(tid, carol, alice, None)),
        Err(TransferFromError::Unauthorized)
    );
    let with_sub = TransferFromArg {
        spender_subaccount: Some(sub.clone()),
        ..from_to(tid, carol, alice, None)
    };
    relay(&d, market, with_sub).expect("the approved subaccount spends");
    assert_eq!(owner_of(&d, tid), Some(Account::of(alice)));
    let last = last_transfer_block(&d);
    assert_eq!(btype(&last), "37xfer");
    assert_eq!(
        tx(&last, "spender"),
        Some(&Value::Array(vec![
            Value::blob(market.as_slice()),
            Value::blob(sub.to_vec())
        ]))
    );
}

/// A holder who could take the video back after a sale cannot sell it: an extra controller, or a
/// module the platform did not install, and `icrc37_transfer_from` refuses (code 2) with nothing
/// moved.
fn a_tampered_video_cannot_be_sold(b: &dyn Backend) {
    let d = deploy(b);
    let (seller, buyer, accomplice) = (
        principal("seller"),
        principal("buyer"),
        principal("accomplice"),
    );
    let market = install_market(&d, principal("no-ledger"));
    let video = finished_video(&d, seller);
    let tid = tid_of(video);
    approve_token(&d, seller, tid, market, None);
    let before = blocks(&d).len();
    let refused = |what: &str, runs_the_video_module: bool| {
        let r = relay(&d, market, from_to(tid, seller, buyer, None));
        let code = r.as_ref().err().and_then(generic_code);
        assert_eq!(code, Some(NOT_SOLE_CONTROL), "{what}: {r:?}");
        assert_eq!(owner_of(&d, tid), Some(Account::of(seller)), "{what}");
        if runs_the_video_module {
            assert_eq!(d.video(video).metadata().owner, seller, "{what}");
        }
        assert_eq!(blocks(&d).len(), before, "{what}: no block");
        assert!(is_approved(&d, tid, market), "{what}: the approval stays");
    };

    // An extra controller.
    let keep = [seller, video, d.spawn];
    b.set_controllers(
        video,
        Some(seller),
        vec![seller, video, d.spawn, accomplice],
    )
    .unwrap();
    refused("an extra controller", true);
    assert_eq!(
        set(b.controllers(video)),
        set([seller, video, d.spawn, accomplice])
    );
    b.set_controllers(video, Some(seller), keep.to_vec())
        .unwrap();

    // Another module, installed by the seller.
    let probe = wasm::load("replica-probe");
    let mut installed = b.reinstall(video, probe.clone(), vec![], Some(seller));
    for _ in 0..10 {
        match &installed {
            Err(e) if e.error_code == "IC0209" => {
                // Rate limited after the spawn's install: let rounds pass.
                b.advance_time(Duration::from_secs(60));
                b.tick();
                installed = b.reinstall(video, probe.clone(), vec![], Some(seller));
            }
            _ => break,
        }
    }
    installed.unwrap_or_else(|e| panic!("the seller reinstalls their video: {e}"));
    assert_eq!(
        b.module_hash(video, Some(seller)),
        Some(wasm::sha256(&probe))
    );
    refused("a module the platform did not install", false);
    assert_eq!(certified_controllers(b, video), set(keep));
}

/// What the seller arranged on the video itself before the sale dies with it: an operator it
/// approved cannot `change_owner`, a principal it offered the video to cannot accept, and its
/// collection approval does not reach the buyer's token.
fn the_sellers_operator_and_offer_die_with_the_sale(b: &dyn Backend) {
    let d = deploy(b);
    let (seller, buyer) = (principal("seller"), principal("buyer"));
    let (operator, offered) = (principal("operator"), principal("offered"));
    let market = install_market(&d, principal("no-ledger"));
    let video = finished_video(&d, seller);
    let tid = tid_of(video);
    let v = d.video(video);
    ok("approve", v.approve(seller, Some(operator)));
    ok("offer_ownership", v.offer_ownership(seller, offered, None));
    let r: Vec<Option<ApproveCollectionError>> = b
        .update1(
            d.index,
            seller,
            "icrc37_approve_collection",
            &vec![ApproveCollectionArg {
                approval_info: approval(market, now_ns(b), None),
            }],
        )
        .unwrap();
    assert_eq!(r, vec![None]);
    relay(&d, market, from_to(tid, seller, buyer, None)).expect("the sale");
    assert_eq!(owner_of(&d, tid), Some(Account::of(buyer)));
    let m = v.metadata();
    assert_eq!((m.owner, m.operator), (buyer, None));

    if let Ok(Ok(r)) = v.change_owner(operator, operator) {
        panic!("the seller's operator moved the video: {r:?}");
    }
    if let Ok(Ok(r)) = v.accept_ownership(offered) {
        panic!("the seller's offer was accepted after the sale: {r:?}");
    }
    assert_eq!(
        relay(&d, market, from_to(tid, buyer, seller, None)),
        Err(TransferFromError::Unauthorized),
        "the seller's collection approval does not cover the buyer's token"
    );
    assert_eq!(owner_of(&d, tid), Some(Account::of(buyer)));
    assert_eq!(v.metadata().owner, buyer);
    assert_eq!(
        certified_controllers(b, video),
        set([buyer, video, d.spawn])
    );
}

/// Two transfers of one token at once: the first locks the token across its awaits, so the
/// second is answered `GenericError` BUSY (code 1), and the video ends with exactly one of the
/// recipients.
fn concurrent_transfers_of_one_token_move_it_once(b: &dyn Backend) {
    let d = deploy(b);
    let (alice, bob, carol) = (principal("alice"), principal("bob"), principal("carol"));
    let video = finished_video(&d, alice);
    let tid = tid_of(video);
    let arg = |to: Principal| {
        vec![TransferArg {
            from_subaccount: None,
            to: Account::of(to),
            token_id: Nat::from(tid),
            memo: None,
            created_at_time: None,
        }]
    };
    let first = b
        .submit1(d.index, alice, "icrc7_transfer", &arg(bob))
        .unwrap();
    let second = b
        .submit1(d.index, alice, "icrc7_transfer", &arg(carol))
        .unwrap();
    let answer = |id| -> TransferResult {
        let r: Vec<Option<TransferResult>> = b.await1(id, "icrc7_transfer").unwrap();
        r.into_iter().next().flatten().expect("one answer")
    };
    let (first, second) = (answer(first), answer(second));
    let (winner, refused) = match (&first, &second) {
        (Ok(_), _) => (bob, second),
        (_, Ok(_)) => (carol, first),
        _ => panic!("neither transfer happened: {first:?} {second:?}"),
    };
    // Both messages are inducted before the first one's awaits end (on both backends).
    match &refused {
        Err(TransferError::GenericError { error_code, .. }) => {
            assert_eq!(*error_code, Nat::from(BUSY), "{refused:?}")
        }
        other => panic!("the second transfer: {other:?}"),
    }
    assert_eq!(owner_of(&d, tid), Some(Account::of(winner)));
    assert_eq!(d.video(video).metadata().owner, winner);
    assert_eq!(
        certified_controllers(b, video),
        set([winner, video, d.spawn])
    );
    let log = blocks(&d);
    assert_eq!(
        log.iter()
            .map(btype)
            .filter(not_a_refresh)
            .collect::<Vec<_>>(),
        ["7mint", "7xfer"]
    );
}

/// Recipients that cannot hold a video, and tokens that do not exist.
fn transfers_to_bad_recipients_and_unknown_tokens_are_refused(b: &dyn Backend) {
    let d = deploy(b);
    let (alice, bob) = (principal("alice"), principal("bob"));
    let video = finished_video(&d, alice);
    let tid = tid_of(video);
    let sub = Account {
        owner: bob,
        subaccount: Some(ByteBuf::from(vec![1; 32])),
    };
    match transfer_to(&d, alice, tid, sub) {
        Err(TransferError::GenericError { error_code, .. }) => {
            assert_eq!(error_code, Nat::from(BAD_RECIPIENT))
        }
        other => panic!("a subaccount: {other:?}"),
    }
    for (who, what) in [
        (video, "the video itself"),
        (d.index, "the collection"),
        (Principal::anonymous(), "the anonymous principal"),
        (Principal::management_canister(), "the management canister"),
    ] {
        match transfer(&d, alice, tid, who) {
            Err(TransferError::GenericError { error_code, .. }) => {
                assert_eq!(error_code, Nat::from(BAD_RECIPIENT), "{what}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(
        transfer(&d, alice, tid, alice),
        Err(TransferError::InvalidRecipient)
    );
    assert_eq!(
        transfer(&d, alice, tid + 1_000, bob),
        Err(TransferError::NonExistingTokenId)
    );
    assert_eq!(owner_of(&d, tid + 1_000), None);
    // A memo over `icrc7:max_memo_size` (32 bytes), and a batch over
    // `icrc7:max_update_batch_size` (10).
    let long_memo = TransferArg {
        from_subaccount: None,
        to: Account::of(bob),
        token_id: Nat::from(tid),
        memo: Some(ByteBuf::from(vec![1; 33])),
        created_at_time: None,
    };
    let r: Vec<Option<TransferResult>> = b
        .update1(d.index, alice, "icrc7_transfer", &vec![long_memo.clone()])
        .unwrap();
    match r.as_slice() {
        [Some(Err(TransferError::GenericError { error_code, .. }))] => {
            assert_eq!(*error_code, Nat::from(MEMO_TOO_LONG))
        }
        other => panic!("a 33-byte memo: {other:?}"),
    }
    let r: Vec<Option<TransferResult>> = b
        .update1(d.index, alice, "icrc7_transfer", &vec![long_memo; 11])
        .unwrap();
    match r.as_slice() {
        [Some(Err(TransferError::GenericBatchError { error_code, .. }))] => {
            assert_eq!(*error_code, Nat::from(BATCH_TOO_LARGE))
        }
        other => panic!("11 requests: {other:?}"),
    }
    assert_eq!(owner_of(&d, tid), Some(Account::of(alice)));
    assert_eq!(set(b.controllers(video)), set([alice, video, d.spawn]));
    assert_eq!(blocks(&d).len(), 1, "the mint only");
}

/// Ingress is paid by the collection and a transfer costs it three calls: one token moves through
/// the collection at most 10 times an hour (`GenericError` code 12 after that, nothing moves),
/// and again in the next hour.
fn transfers_of_one_token_are_rate_limited(b: &dyn Backend) {
    let d = deploy(b);
    let (alice, bob) = (principal("alice"), principal("bob"));
    let video = finished_video(&d, alice);
    let tid = token_id_of(&video).unwrap();
    let (mut from, mut to) = (alice, bob);
    for n in 0..10 {
        transfer(&d, from, tid, to).unwrap_or_else(|e| panic!("transfer {n}: {e:?}"));
        std::mem::swap(&mut from, &mut to);
    }
    match transfer(&d, from, tid, to) {
        Err(TransferError::GenericError {
            error_code,
            message,
        }) => {
            assert_eq!(error_code, 12u8, "{message}");
            assert!(message.contains("retry in"), "{message}");
        }
        other => panic!("the 11th transfer this hour: {other:?}"),
    }
    assert_eq!(owner_of(&d, tid), Some(Account::of(from)), "nothing moved");
    assert_eq!(set(b.controllers(video)), set([from, video, d.spawn]));
    b.advance_time(std::time::Duration::from_secs(3_601));
    b.tick();
    transfer(&d, from, tid, to).expect("the next hour");
    assert_eq!(owner_of(&d, tid), Some(Account::of(to)));
}

backend_tests!(
    transfers_of_one_token_are_rate_limited,
    the_holder_transfers_the_canister,
    a_marketplace_sells_a_video_for_ledger_tokens,
    the_log_records_mint_approval_and_transfer_and_its_tip_is_certified,
    a_direct_change_owner_is_a_7xfer_and_ends_the_approvals,
    transfer_from_needs_a_live_approval_and_deduplicates,
    a_tampered_video_cannot_be_sold,
    the_sellers_operator_and_offer_die_with_the_sale,
    concurrent_transfers_of_one_token_move_it_once,
    transfers_to_bad_recipients_and_unknown_tokens_are_refused,
);
