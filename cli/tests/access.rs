//! `canvid access ...` and `canvid buy` against `canvid serve`, with DFINITY's real ICRC ledger
//! (`../shared/fixtures/icrc-ledger`, or `$ICRC_LEDGER_DIR`; where it is absent the test says
//! so on stderr and returns). The owner makes a 3-chunk video paid with a one-chunk preview; a
//! buyer (another identity) cannot get a token, buys a 24h pass with `canvid buy` (approve
//! price + fee, buy_access), then a forever pass; the balances add up to the token (the owner
//! gets exactly the prices, the buyer pays prices + an approval fee + a transfer fee each);
//! receipts as owner and buyer; the token URL served over serve's HTTP port (206 for a range
//! past the preview with the token, 401 without, 206 inside the preview without); the owner
//! revokes the buyer's tokens (403); the allowlist; refusals with their exit codes.

mod common;
// `upload --encrypt` / `get` of encrypted videos: here rather than a binary of their own (one
// link less in CI), as they are about who may watch.
#[path = "access/encryption.rs"]
mod encryption;

use candid::{CandidType, Deserialize, Encode, Nat, Principal};
use canvid_types::icrc::Account;
use canvid_types::ledger::ApproveArgs;
use common::{canvid, last_line, net, ok, principal_of, require_wasm, text, Serve};
use ic_agent::identity::BasicIdentity;
use ic_agent::Agent;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

const FEE: u64 = 10_000;
const START: u64 = 100_000_000;
const DAY_PRICE: u64 = 500_000;
const FOREVER_PRICE: u64 = 5_000_000;
const CHUNK: u64 = 2_000_000;

fn ledger_wasm() -> Option<Vec<u8>> {
    canvid_devkit::icrc_ledger::read_fixture()
        .map_err(|why| eprintln!("SKIPPED access_paid_buy_receipts_tokens: {why}"))
        .ok()
}

#[derive(CandidType)]
struct ProvisionalCreate {
    amount: Option<Nat>,
    settings: Option<()>,
}

#[derive(CandidType, Deserialize)]
struct CanisterIdRecord {
    canister_id: Principal,
}

#[derive(CandidType)]
#[allow(non_camel_case_types)]
enum Mode {
    install,
}

#[derive(CandidType)]
struct InstallCode {
    mode: Mode,
    canister_id: Principal,
    wasm_module: serde_bytes::ByteBuf,
    arg: serde_bytes::ByteBuf,
}

/// The serve's URL and an agent calling as the identity in `pem`.
fn agent_of(state: &Path, pem: &Path) -> (Agent, String) {
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("serve.json")).unwrap()).unwrap();
    let url = info["url"].as_str().unwrap().to_string();
    let agent = Agent::builder()
        .with_url(url.clone())
        .with_identity(BasicIdentity::from_pem_file(pem).unwrap())
        .build()
        .unwrap();
    agent.set_root_key(hex::decode(info["root_key"].as_str().unwrap()).unwrap());
    (agent, url)
}

/// Creates a canister on serve and installs DFINITY's ledger in it, `balances` minted.
fn install_ledger(
    rt: &tokio::runtime::Runtime,
    agent: &Agent,
    near: Principal,
    wasm: Vec<u8>,
    balances: &[(Principal, u64)],
) -> Principal {
    let me = agent.get_principal().unwrap();
    rt.block_on(async {
        let mgmt = Principal::management_canister();
        let out = agent
            .update(&mgmt, "provisional_create_canister_with_cycles")
            .with_effective_canister_id(near)
            .with_arg(
                Encode!(&ProvisionalCreate {
                    amount: Some(Nat::from(10_000_000_000_000u64)),
                    settings: None,
                })
                .unwrap(),
            )
            .call_and_wait()
            .await
            .expect("provisional_create_canister_with_cycles");
        let id = candid::decode_one::<CanisterIdRecord>(&out)
            .unwrap()
            .canister_id;
        let balances: Vec<(Principal, Nat)> =
            balances.iter().map(|(p, n)| (*p, Nat::from(*n))).collect();
        let init = canvid_devkit::icrc_ledger::init_arg(&canvid_devkit::icrc_ledger::LedgerInit {
            minter: Principal::from_slice(&[0xaa; 29]),
            transfer_fee: FEE,
            max_memo_length: None,
            initial_balances: &balances,
            archive_controller: me,
        });
        agent
            .update(&mgmt, "install_code")
            .with_effective_canister_id(id)
            .with_arg(
                Encode!(&InstallCode {
                    mode: Mode::install,
                    canister_id: id,
                    wasm_module: serde_bytes::ByteBuf::from(wasm),
                    arg: serde_bytes::ByteBuf::from(init),
                })
                .unwrap(),
            )
            .call_and_wait()
            .await
            .unwrap_or_else(|e| panic!("installing DFINITY's ICRC ledger: {e}"));
        id
    })
}

/// `stop_canister` / `start_canister` of the ledger (the test's owner identity controls it).
fn set_running(rt: &tokio::runtime::Runtime, agent: &Agent, ledger: Principal, running: bool) {
    let method = if running {
        "start_canister"
    } else {
        "stop_canister"
    };
    rt.block_on(async {
        agent
            .update(&Principal::management_canister(), method)
            .with_effective_canister_id(ledger)
            .with_arg(
                Encode!(&CanisterIdRecord {
                    canister_id: ledger
                })
                .unwrap(),
            )
            .call_and_wait()
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"));
    })
}

fn balance(rt: &tokio::runtime::Runtime, agent: &Agent, ledger: Principal, who: &str) -> u64 {
    let who = Principal::from_text(who).unwrap();
    rt.block_on(async {
        let out = agent
            .query(&ledger, "icrc1_balance_of")
            .with_arg(Encode!(&Account::of(who)).unwrap())
            .call()
            .await
            .unwrap();
        let n: Nat = candid::decode_one(&out).unwrap();
        u64::try_from(&n.0).unwrap()
    })
}

/// GET `path` of `video` on serve's gateway with an optional Range: the status code.
fn http_status(url: &str, video: &str, path: &str, range: Option<&str>) -> u16 {
    let port: u16 = url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let range = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {video}.localhost:{port}\r\n{range}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = text(&head);
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"))
}

fn fails(cmd: &mut Command, code: i32, needle: &str) -> String {
    let o = cmd.output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{cmd:?}: stderr {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    err
}

#[test]
fn access_paid_buy_receipts_tokens() {
    require_wasm();
    let Some(wasm) = ledger_wasm() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    // 5,000,000 bytes: three chunks of 2,000,000 (the last one shorter).
    let file = tmp.path().join("clip.mp4");
    std::fs::write(
        &file,
        (0..5_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let _serve = Serve::start(&state);
    let video = last_line(&ok(net(canvid().arg("upload").arg(&file), &state)));
    let owner_pem = state.join("identity.pem");
    let owner = principal_of(&owner_pem, &state);
    let pem = |name: &str, seed: u8| {
        let p = tmp.path().join(format!("{name}.pem"));
        std::fs::write(&p, canvid_cli::identity::ed25519_pem(&[seed; 32])).unwrap();
        let principal = principal_of(&p, &state);
        (p, principal)
    };
    let (buyer_pem, buyer) = pem("buyer", 21);
    let (poor_pem, _poor) = pem("poor", 22);
    let (friend_pem, friend) = pem("friend", 23);
    let (late_pem, late) = pem("late", 24);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (agent, url) = agent_of(&state, &owner_pem);
    let vid = Principal::from_text(&video).unwrap();
    let ledger = install_ledger(
        &rt,
        &agent,
        vid,
        wasm,
        &[
            (Principal::from_text(&buyer).unwrap(), START),
            (Principal::from_text(&late).unwrap(), START),
        ],
    )
    .to_text();

    // Public by default: the whole file plays without a token.
    let show = ok(net(canvid().args(["access", "show", &video]), &state));
    assert!(show.contains("mode            public"), "{show}");
    assert!(show.contains("you             may watch (owner)"), "{show}");
    assert_eq!(
        http_status(&url, &video, "/", Some("bytes=2000000-2000099")),
        206
    );

    // Paid, two offers, a preview of 1 byte: rounded up to the first chunk.
    let set = ok(net(
        canvid().args([
            "access",
            "set",
            &video,
            "--paid",
            "--ledger",
            &ledger,
            "--offer",
            &format!("24h={DAY_PRICE}:86400"),
            "--offer",
            &format!("forever={FOREVER_PRICE}"),
            "--preview-bytes",
            "1",
        ]),
        &state,
    ));
    assert!(set.contains("mode            paid"), "{set}");
    assert!(set.contains(&format!("ledger          {ledger}")), "{set}");
    assert!(
        set.contains(&format!(
            "offer           24h  price {DAY_PRICE}  a pass of 1d (86400 s)"
        )),
        "{set}"
    );
    assert!(
        set.contains(&format!(
            "offer           forever  price {FOREVER_PRICE}  a pass that never expires"
        )),
        "{set}"
    );
    assert!(
        set.contains(&format!("bytes [0, {CHUNK}) are public (asked 1")),
        "{set}"
    );
    // Past the preview without a token: 401; inside it: served.
    assert_eq!(
        http_status(&url, &video, "/", Some("bytes=2000000-2000099")),
        401
    );
    assert_eq!(http_status(&url, &video, "/", Some("bytes=0-99")), 206);

    // The buyer may watch the preview only, and gets no token.
    let as_buyer = |args: &[&str]| {
        let mut c = canvid();
        c.args(args).arg("--identity").arg(&buyer_pem);
        net(&mut c, &state);
        c
    };
    let show = ok(&mut as_buyer(&["access", "show", &video]));
    assert!(show.contains("you             the preview only"), "{show}");
    fails(
        &mut as_buyer(&["access", "token", &video]),
        7,
        "not authorized",
    );

    // Refusals: an unknown offer, a video not for sale is checked before anything is paid;
    // an identity without funds cannot even approve.
    fails(
        &mut as_buyer(&["buy", &video, "--offer", "week"]),
        7,
        "no offer \"week\"",
    );
    fails(
        net(
            canvid()
                .args(["buy", &video, "--offer", "24h", "--identity"])
                .arg(&poor_pem),
            &state,
        ),
        7,
        "icrc2_approve",
    );
    // --paid needs a ledger and offers (clap: 2); a bad offer is bad input too.
    let o = net(canvid().args(["access", "set", &video, "--paid"]), &state)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = net(
        canvid().args(["access", "set", &video, "--private", "--offer", "x=0"]),
        &state,
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    fails(
        net(
            canvid().args([
                "access",
                "set",
                &video,
                "--preview-seconds",
                "3",
                "--private",
            ]),
            &state,
        ),
        3,
        "duration is unknown",
    );
    // Not the owner: refused.
    fails(
        &mut as_buyer(&["access", "set", &video, "--public"]),
        7,
        "not authorized",
    );
    assert_eq!(balance(&rt, &agent, ledger.parse().unwrap(), &buyer), START);

    // The buyer buys a day: approval (fee) + price + transfer fee.
    let out = ok(&mut as_buyer(&["buy", &video, "--offer", "24h"]));
    assert!(
        out.contains(&format!("receipt         0 of video {video}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("amount          {DAY_PRICE} paid to {owner}")),
        "{out}"
    );
    assert!(out.contains(&format!("buyer           {buyer}")), "{out}");
    // The memo: "cvid" · receipt id (u64 BE) · the video's principal bytes.
    let memo = format!("63766964{}{}", "00".repeat(8), hex::encode(vid.as_slice()));
    assert!(out.contains(&format!("memo            {memo}")), "{out}");
    let l: Principal = ledger.parse().unwrap();
    assert_eq!(balance(&rt, &agent, l, &owner), DAY_PRICE);
    assert_eq!(balance(&rt, &agent, l, &buyer), START - DAY_PRICE - 2 * FEE);
    let show = ok(&mut as_buyer(&["access", "show", &video]));
    assert!(show.contains("you             a pass until "), "{show}");
    assert!(show.contains("(receipt 0)"), "{show}");

    // And then the forever pass.
    let out = ok(&mut as_buyer(&["buy", &video, "--offer", "forever"]));
    assert!(out.contains("receipt         1 of video"), "{out}");
    assert!(out.contains("until forever"), "{out}");
    assert_eq!(balance(&rt, &agent, l, &owner), DAY_PRICE + FOREVER_PRICE);
    assert_eq!(
        balance(&rt, &agent, l, &buyer),
        START - DAY_PRICE - FOREVER_PRICE - 4 * FEE
    );
    // Every token is accounted for: what left the buyer is the owner's plus the burnt fees.
    assert_eq!(
        START - balance(&rt, &agent, l, &buyer),
        balance(&rt, &agent, l, &owner) + 4 * FEE
    );

    // Receipts: the owner sees both, the buyer their own, not someone else's.
    let r = ok(net(canvid().args(["access", "receipts", &video]), &state));
    assert!(
        r.contains(&format!(
            "#0  offer 24h  buyer {buyer}  amount {DAY_PRICE}  block "
        )),
        "{r}"
    );
    assert!(
        r.contains(&format!(
            "#1  offer forever  buyer {buyer}  amount {FOREVER_PRICE}"
        )),
        "{r}"
    );
    assert!(r.contains("2 receipt(s)"), "{r}");
    let r = ok(net(
        canvid().args(["access", "receipts", &video, "--buyer", &friend]),
        &state,
    ));
    assert!(r.contains("0 receipt(s)"), "{r}");
    let r = ok(&mut as_buyer(&["access", "receipts", &video]));
    assert!(r.contains("2 receipt(s)"), "{r}");
    fails(
        &mut as_buyer(&["access", "receipts", &video, "--buyer", &owner]),
        7,
        "not authorized",
    );
    let show = ok(net(canvid().args(["access", "show", &video]), &state));
    assert!(show.contains("receipts        2"), "{show}");

    // The buyer's token URL plays past the preview; the URL without the token does not.
    let out = ok(&mut as_buyer(&["access", "token", &video, "--ttl", "10m"]));
    let token_url = last_line(&out);
    let prefix = format!("http://{video}.localhost:");
    assert!(token_url.starts_with(&prefix), "{out}");
    let path = &token_url[token_url.find("/?token=").unwrap()..];
    assert_eq!(
        http_status(&url, &video, path, Some("bytes=2000000-2000099")),
        206
    );
    assert_eq!(http_status(&url, &video, path, Some("bytes=4000000-")), 206);
    assert_eq!(
        http_status(&url, &video, "/", Some("bytes=2000000-2000099")),
        401
    );
    assert_eq!(
        http_status(
            &url,
            &video,
            "/?token=forged",
            Some("bytes=2000000-2000099")
        ),
        403
    );

    // The owner revokes the buyer's tokens: the URL stops working; the pass stays.
    let out = ok(net(
        canvid().args(["access", "revoke", &video, &buyer]),
        &state,
    ));
    assert!(
        out.contains(&format!("revoked every playback token issued to {buyer}")),
        "{out}"
    );
    assert_eq!(
        http_status(&url, &video, path, Some("bytes=2000000-2000099")),
        403
    );
    let fresh = last_line(&ok(&mut as_buyer(&["access", "token", &video])));
    let fresh_path = &fresh[fresh.find("/?token=").unwrap()..];
    assert_eq!(
        http_status(&url, &video, fresh_path, Some("bytes=2000000-2000099")),
        206
    );

    // The allowlist: a friend watches for free.
    let out = ok(net(
        canvid().args(["access", "viewers", "add", &video, &friend]),
        &state,
    ));
    assert!(
        out.contains("added 1 viewer(s); 1 on the allowlist"),
        "{out}"
    );
    let list = ok(net(
        canvid().args(["access", "viewers", "list", &video]),
        &state,
    ));
    assert!(
        list.contains(&friend) && list.contains("1 viewer(s)"),
        "{list}"
    );
    let show = ok(net(
        canvid()
            .args(["access", "show", &video, "--identity"])
            .arg(&friend_pem),
        &state,
    ));
    assert!(
        show.contains("you             may watch (on the allowlist)"),
        "{show}"
    );
    let out = ok(net(
        canvid().args(["access", "viewers", "remove", &video, &friend]),
        &state,
    ));
    assert!(
        out.contains("removed 1 viewer(s); 0 on the allowlist"),
        "{out}"
    );
    fails(
        net(
            canvid()
                .args(["access", "viewers", "list", &video, "--identity"])
                .arg(&buyer_pem),
            &state,
        ),
        7,
        "not authorized",
    );

    // A purchase whose payment outcome is not known: the ledger is stopped after the buyer's
    // approval, so the canister's transfer_from is rejected and the purchase stays Pending.
    // `canvid buy` retries it with the same created_at_time, gives up after --wait and prints
    // how to resume; once the ledger runs again the resumed purchase is charged exactly once.
    let (late_agent, _) = agent_of(&state, &late_pem);
    rt.block_on(async {
        late_agent
            .update(&l, "icrc2_approve")
            .with_arg(
                Encode!(&ApproveArgs {
                    fee: None,
                    memo: None,
                    from_subaccount: None,
                    created_at_time: None,
                    amount: Nat::from(DAY_PRICE + FEE),
                    expected_allowance: None,
                    expires_at: None,
                    spender: Account::of(vid),
                })
                .unwrap(),
            )
            .call_and_wait()
            .await
            .unwrap();
    });
    set_running(&rt, &agent, l, false);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string();
    let as_late = |args: &[&str]| {
        let mut c = canvid();
        c.args(args).arg("--identity").arg(&late_pem);
        net(&mut c, &state);
        c
    };
    let resume = [
        "buy",
        &video,
        "--offer",
        "24h",
        "--created-at-time",
        &t,
        "--wait",
        "2s",
    ];
    let err = fails(&mut as_late(&resume), 1, "purchase pending");
    assert!(err.contains("outcome is not known yet"), "{err}");
    assert!(err.contains(&format!("--created-at-time {t}")), "{err}");
    let show = ok(&mut as_late(&["access", "show", &video]));
    assert!(show.contains("you             the preview only"), "{show}");
    assert!(show.contains("pending         purchase(s) [2]"), "{show}");
    set_running(&rt, &agent, l, true);
    assert_eq!(
        balance(&rt, &agent, l, &late),
        START - FEE,
        "only the approval"
    );
    let out = ok(&mut as_late(&resume));
    assert!(out.contains("receipt         2 of video"), "{out}");
    assert!(out.contains(&format!("created_at_time {t}")), "{out}");
    // Again: the same receipt, nothing charged twice.
    let again = ok(&mut as_late(&resume));
    assert_eq!(again, out);
    assert_eq!(balance(&rt, &agent, l, &late), START - DAY_PRICE - 2 * FEE);
    assert_eq!(
        balance(&rt, &agent, l, &owner),
        2 * DAY_PRICE + FOREVER_PRICE
    );
    let show = ok(&mut as_late(&["access", "show", &video]));
    assert!(show.contains("you             a pass until "), "{show}");
    assert!(!show.contains("pending"), "{show}");

    // Back to public: no token needed any more.
    let out = ok(net(
        canvid().args(["access", "set", &video, "--public"]),
        &state,
    ));
    assert!(out.contains("mode            public"), "{out}");
    assert_eq!(
        http_status(&url, &video, "/", Some("bytes=2000000-2000099")),
        206
    );
    fails(
        &mut as_buyer(&["buy", &video, "--offer", "24h"]),
        7,
        "not for sale",
    );
}
