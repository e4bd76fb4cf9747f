//! `canvid nft ...` against `canvid serve`: the index as an ICRC-7 collection from the command
//! line. A video uploaded through spawn is a token; list, show, approve a marketplace identity,
//! the marketplace's transfer-from to a buyer (the video canister moves: certified controllers),
//! the buyer's own transfer back, refusals with their exit codes, and the ICRC-3 history.

mod common;

use common::{canvid, last_line, net, ok, principal_of, require_wasm, text, Serve};
use std::process::Command;

fn fails(cmd: &mut Command, code: i32, needle: &str) -> String {
    let o = cmd.output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{cmd:?}: stderr {err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    err
}

fn owner_line(show: &str) -> String {
    show.lines()
        .find_map(|l| l.strip_prefix("owner           "))
        .unwrap_or_else(|| panic!("no owner line in {show}"))
        .to_string()
}

#[test]
fn nft_list_show_approve_transfer_from_transfer_history() {
    require_wasm();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    // Any bytes are a video to the canisters: 300 kB, one chunk.
    let file = tmp.path().join("clip.mp4");
    std::fs::write(
        &file,
        (0..300_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let _serve = Serve::start(&state);

    let out = ok(net(canvid().arg("upload").arg(&file), &state));
    let video = last_line(&out);
    let tid = canvid_types::icrc::token_id_of(&candid::Principal::from_text(&video).unwrap())
        .unwrap()
        .to_string();
    let me = principal_of(&state.join("identity.pem"), &state);
    let pem = |name: &str, seed: u8| {
        let p = tmp.path().join(format!("{name}.pem"));
        std::fs::write(&p, canvid_cli::identity::ed25519_pem(&[seed; 32])).unwrap();
        let principal = principal_of(&p, &state);
        (p, principal)
    };
    let (market_pem, market) = pem("marketplace", 7);
    let (buyer_pem, buyer) = pem("buyer", 8);

    // The video is a token, listed with its canister and owner; by owner too.
    let list = ok(net(canvid().args(["nft", "list"]), &state));
    assert!(list.contains(&format!("{tid}  {video}  {me}")), "{list}");
    assert!(list.contains("token(s) in collection"), "{list}");
    let mine = ok(net(canvid().args(["nft", "list", "--owner", &me]), &state));
    assert!(mine.contains(&format!("{tid}  {video}  {me}")), "{mine}");
    assert!(mine.contains(&format!("1 token(s) held by {me}")), "{mine}");
    let none = ok(net(
        canvid().args(["nft", "list", "--owner", &buyer]),
        &state,
    ));
    assert!(none.contains("0 token(s) held by"), "{none}");

    // show, by canister id and by token id: the same token.
    let show = ok(net(canvid().args(["nft", "show", &video]), &state));
    assert!(show.contains(&format!("token           {tid}")), "{show}");
    assert!(show.contains(&format!("video canister  {video}")), "{show}");
    assert_eq!(owner_line(&show), me);
    assert!(
        show.contains(&format!("canvid:video_canister = {video}")),
        "{show}"
    );
    assert!(show.contains("icrc97:metadata = [https://"), "{show}");
    assert!(show.contains("approvals       none"), "{show}");
    assert_eq!(ok(net(canvid().args(["nft", "show", &tid]), &state)), show);
    // The collection re-reads the video's own metadata (file name as title, size).
    let refreshed = ok(net(canvid().args(["nft", "refresh", &tid]), &state));
    assert!(refreshed.contains("icrc7:name = clip.mp4"), "{refreshed}");
    assert!(refreshed.contains("canvid:size = 300000"), "{refreshed}");
    let shown = ok(net(canvid().args(["nft", "show", &tid]), &state));
    assert!(shown.contains("icrc7:name = clip.mp4"), "{shown}");

    // The holder approves the marketplace for a day.
    let out = ok(net(
        canvid().args(["nft", "approve", &tid, &market, "--expires-in", "1d"]),
        &state,
    ));
    assert!(
        out.contains(&format!("approved {market} to transfer token {tid}")),
        "{out}"
    );
    let show = ok(net(canvid().args(["nft", "show", &tid]), &state));
    assert!(
        show.contains(&format!("approved        {market} (until ")),
        "{show}"
    );

    // The marketplace sells it to the buyer: the video canister moves, checked in the
    // certified state.
    let out = ok(net(
        canvid()
            .args([
                "nft",
                "transfer-from",
                &tid,
                "--from",
                &me,
                "--to",
                &buyer,
                "--identity",
            ])
            .arg(&market_pem),
        &state,
    ));
    assert!(
        out.contains(&format!(
            "transferred token {tid} (video {video}) to {buyer}"
        )),
        "{out}"
    );
    let certified = out
        .lines()
        .find_map(|l| l.strip_prefix("certified controllers "))
        .unwrap_or_else(|| panic!("no certified controllers in {out}"));
    assert!(
        certified.contains(&buyer) && !certified.contains(&me),
        "{out}"
    );
    let show = ok(net(canvid().args(["nft", "show", &tid]), &state));
    assert_eq!(owner_line(&show), buyer);
    // The transfer revoked the token's approvals.
    assert!(show.contains("approvals       none"), "{show}");
    // The video's own owner followed (`canvid info`).
    let info = ok(net(canvid().args(["info", &video]), &state));
    assert!(info.contains(&format!("owner      {buyer}")), "{info}");

    // Refusals: the marketplace's approval died with the transfer (refused at ingress), the
    // seller no longer holds the token, a principal is no token.
    fails(
        net(
            canvid()
                .args([
                    "nft",
                    "transfer-from",
                    &tid,
                    "--from",
                    &buyer,
                    "--to",
                    &market,
                    "--identity",
                ])
                .arg(&market_pem),
            &state,
        ),
        7,
        "icrc37_transfer_from",
    );
    fails(
        net(canvid().args(["nft", "approve", &tid, &market]), &state),
        7,
        "icrc37_approve_tokens",
    );
    fails(
        net(canvid().args(["nft", "show", "2vxsx-fae"]), &state),
        3,
        "not a canister id",
    );
    fails(
        net(canvid().args(["nft", "show", "424242"]), &state),
        7,
        "not in the collection",
    );
    let o = canvid()
        .args(["nft", "approve", &tid, &market, "--expires-in", "soon"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));

    // The buyer transfers it back with icrc7_transfer.
    let out = ok(net(
        canvid()
            .args(["nft", "transfer", &tid, &me, "--identity"])
            .arg(&buyer_pem),
        &state,
    ));
    assert!(
        out.contains(&format!("transferred token {tid} (video {video}) to {me}")),
        "{out}"
    );
    assert_eq!(
        owner_line(&ok(net(canvid().args(["nft", "show", &tid]), &state))),
        me
    );

    // The log: the mint, the metadata refresh, the approval, the marketplace's transfer, the
    // buyer's transfer.
    let history = ok(net(canvid().args(["nft", "history"]), &state));
    let lines: Vec<&str> = history
        .lines()
        .filter(|l| l.contains(&format!("token {tid}")))
        .collect();
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l.split("  ").nth(2).unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["7mint", "7update_token", "37approve", "37xfer", "7xfer"],
        "{history}"
    );
    assert!(
        lines[3].contains(&format!("from {me}")) && lines[3].contains(&format!("to {buyer}")),
        "{history}"
    );
    assert!(lines[3].contains(&format!("spender {market}")), "{history}");
    assert!(lines[2].contains("expires "), "{history}");
    assert!(history.contains("block(s) shown of"), "{history}");
    let one = ok(net(
        canvid().args(["nft", "history", "--start", "0", "--length", "1"]),
        &state,
    ));
    assert!(one.contains("1 block(s) shown of"), "{one}");
}
