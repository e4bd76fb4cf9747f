//! canvid's modules and `canvid serve` as the IC ecosystem's tools see them (issue 16):
//!
//! - the built modules in `target/canisters/` carry public `candid:service` metadata equal to the
//!   checked-in `candid/<name>.did`, and `canvid:version` (scripts/build-wasm.sh adds both);
//! - `canvid serve` certifies them: read_state `/canister/<id>/metadata/<name>` through its IC
//!   HTTP interface (ic-agent, verified against serve's root key) returns those bytes;
//! - the real icp-cli binary (npm `@icp-sdk/icp-cli-linux-x64`, pinned in scripts/npm-tools/,
//!   installed by scripts/setup.sh) pointed at serve by URL and root key: a query prints real
//!   field names, an update works, and a query method sent as an update is refused with an
//!   explanation. Without the binary that test is reported as *ignored* with the reason
//!   (cli/build.rs), never as passed;
//! - the cycles ledger and the CMC's `get_default_subnets` serve installs at their IC ids, as
//!   icp-cli uses them to create canisters (`cycles_ledger_against_canvid_serve`; `icp deploy`
//!   itself runs in docs_run.rs, from docs/deploy.md).

mod common;

use common::{canvid, last_line, net, ok, require_wasm, text, Serve};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const CANISTERS: [&str; 3] = ["video", "spawn", "index"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn did(name: &str) -> Vec<u8> {
    let p = repo().join(format!("candid/{name}.did"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The custom sections of a wasm module, by name (read with wasmparser, independently of the
/// replica's own reader).
fn custom_sections(wasm: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CustomSection(r) = payload.expect("a valid module") {
            let old = out.insert(r.name().to_string(), r.data().to_vec());
            assert!(old.is_none(), "custom section {} twice", r.name());
        }
    }
    out
}

fn built(name: &str) -> Vec<u8> {
    let p = canvid_devkit::wasm_dir().join(format!("{name}.wasm"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}: run scripts/build-wasm.sh", p.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `<crate version> <40 hex digits>[-dirty]`, or `<crate version> unknown` outside git.
fn check_version(name: &str, v: &[u8]) {
    let v = std::str::from_utf8(v).unwrap();
    let (version, commit) = v
        .split_once(' ')
        .unwrap_or_else(|| panic!("{name}: canvid:version {v:?}"));
    assert_eq!(version, env!("CARGO_PKG_VERSION"), "{name}: {v:?}");
    let hash = commit.strip_suffix("-dirty").unwrap_or(commit);
    assert!(
        commit == "unknown" || (hash.len() == 40 && hash.bytes().all(|b| b.is_ascii_hexdigit())),
        "{name}: canvid:version {v:?}"
    );
}

#[test]
fn built_modules_carry_public_candid_service_and_version() {
    require_wasm();
    for name in CANISTERS {
        let sections = custom_sections(&built(name));
        let service = sections
            .get("icp:public candid:service")
            .unwrap_or_else(|| {
                panic!(
                    "{name}.wasm has no public candid:service: {:?}",
                    sections.keys()
                )
            });
        assert!(
            service == &did(name),
            "{name}.wasm: candid:service differs from candid/{name}.did: rebuild with scripts/build-wasm.sh"
        );
        check_version(
            name,
            sections
                .get("icp:public canvid:version")
                .unwrap_or_else(|| panic!("{name}.wasm has no canvid:version")),
        );
        // Nothing private: every tool may read what is there, and there is nothing else.
        assert!(
            !sections.keys().any(|k| k.starts_with("icp:private ")),
            "{name}: {:?}",
            sections.keys()
        );
    }
}

/// serve's URL, root key (hex DER) and index / spawn ids.
struct Net {
    url: String,
    root_key: String,
    index: String,
    spawn: String,
}

fn net_of(state: &Path) -> Net {
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(state.join(f)).unwrap()).unwrap()
    };
    let (info, ids) = (read("serve.json"), read("canister_ids.json"));
    Net {
        url: info["url"].as_str().unwrap().into(),
        root_key: info["root_key"].as_str().unwrap().into(),
        index: ids["index"]["embedded"].as_str().unwrap().into(),
        spawn: ids["spawn"]["embedded"].as_str().unwrap().into(),
    }
}

/// Uploads a small file (one chunk) and returns the new video canister's id.
fn upload(state: &Path, dir: &Path, identity: Option<&Path>, title: &str) -> String {
    let file = dir.join(format!("{title}.bin"));
    let bytes: Vec<u8> = (0..100_000u32)
        .map(|i| (i * 7 + title.len() as u32) as u8)
        .collect();
    std::fs::write(&file, bytes).unwrap();
    let mut cmd = canvid();
    cmd.args(["upload", "--title", title]).arg(&file);
    if let Some(pem) = identity {
        cmd.arg("--identity").arg(pem);
    }
    last_line(&ok(net(&mut cmd, state)))
}

#[test]
fn serve_certifies_public_metadata() {
    require_wasm();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let _serve = Serve::start(&state);
    let n = net_of(&state);
    let video = upload(&state, tmp.path(), None, "metadata");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let agent = ic_agent::Agent::builder()
            .with_url(n.url.as_str())
            .build()
            .unwrap();
        agent.set_root_key(hex::decode(&n.root_key).unwrap());
        for (name, id) in [("video", &video), ("spawn", &n.spawn), ("index", &n.index)] {
            let id = candid::Principal::from_text(id).unwrap();
            let sections = custom_sections(&built(name));
            for meta in ["candid:service", "canvid:version"] {
                // Certified: ic-agent checks the certificate against serve's root key.
                let got = agent
                    .read_state_canister_metadata(id, meta)
                    .await
                    .unwrap_or_else(|e| panic!("{name} {id}: read_state metadata/{meta}: {e}"));
                assert!(
                    got == sections[&format!("icp:public {meta}")],
                    "{name}: metadata/{meta} differs from the built module's"
                );
            }
            assert!(
                agent
                    .read_state_canister_metadata(id, "candid:service")
                    .await
                    .unwrap()
                    == did(name)
            );
            // The module hash `icp canister status` shows: the sha256 scripts/build-wasm.sh
            // prints for the modules installed as built (index, spawn); a video canister runs
            // video.wasm as spawn holds it, gzipped by the deploy recipe.
            let installed = match name {
                "video" => canvid_devkit::gzip(&built(name)),
                _ => built(name),
            };
            let hash = agent
                .read_state_canister_module_hash(id)
                .await
                .unwrap_or_else(|e| panic!("{name}: module_hash: {e}"));
            assert_eq!(hex::encode(hash), sha256_hex(&installed), "{name}");
            // A name the module does not carry is absent, not empty.
            let e = agent
                .read_state_canister_metadata(id, "no-such-section")
                .await
                .expect_err("absent metadata");
            assert!(
                matches!(e, ic_agent::AgentError::LookupPathAbsent(_)),
                "{e:?}"
            );
        }
    });
}

/// The icp binary cli/build.rs found (`ICP_CLI_BIN`, or target/npm-tools/...).
fn icp(home: &Path) -> Command {
    let mut c = Command::new(env!("ICP_CLI_PATH"));
    // Its identities and settings in a throwaway home, no telemetry, no icp.yaml project around.
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("DO_NOT_TRACK", "1")
        .env("RUST_BACKTRACE", "0")
        .env_remove("ICP_NETWORK")
        .env_remove("ICP_ENVIRONMENT")
        .current_dir(home);
    c
}

/// `icp canister call` against serve by URL and root key.
fn call(home: &Path, n: &Net, args: &[&str]) -> std::process::Output {
    let mut c = icp(home);
    c.args(["canister", "call", "-n", &n.url, "-k", &n.root_key])
        .args(args);
    c.output().unwrap()
}

#[test]
#[cfg_attr(
    not(canvid_icp_cli),
    ignore = "icp-cli not installed: run scripts/setup.sh (npm @icp-sdk/icp-cli-linux-x64 into target/npm-tools) or set ICP_CLI_BIN"
)]
fn icp_cli_against_canvid_serve() {
    require_wasm();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let state = tmp.path().join("state");
    let _serve = Serve::start(&state);
    let n = net_of(&state);

    let version = ok(icp(&home).arg("--version"));
    assert!(version.starts_with("icp "), "{version}");

    // An identity made by icp, exported as PEM: canvid uploads with it, so icp's calls come
    // from the video's owner.
    ok(icp(&home).args(["identity", "new", "owner", "--storage", "plaintext", "-q"]));
    let pem = tmp.path().join("owner.pem");
    std::fs::write(&pem, ok(icp(&home).args(["identity", "export", "owner"]))).unwrap();
    let principal = ok(icp(&home).args(["identity", "principal", "--identity", "owner"]));
    let video = upload(&state, tmp.path(), Some(&pem), "icp-clip");

    // A query: the interface comes from the canister's candid:service metadata, so the answer
    // has real field names (without it icp prints hashed labels like `100_394_802 = ...`).
    let o = call(&home, &n, &[&video, "metadata", "()", "--query"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("title = \"icp-clip\""), "{out}");
    assert!(out.contains("status = variant { Ready }"), "{out}");
    assert!(
        out.contains(&format!("owner = principal \"{}\"", principal.trim())),
        "{out}"
    );
    assert!(!out.contains("100_394_802"), "hashed field names: {out}");

    // An update as the owner, then the query sees it.
    let o = call(
        &home,
        &n,
        &[
            "--identity",
            "owner",
            &video,
            "update_metadata",
            "(record { title = opt \"renamed by icp\" })",
        ],
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("Ok = record"), "{out}");
    assert!(out.contains("title = \"renamed by icp\""), "{out}");
    let o = call(&home, &n, &[&video, "metadata", "()", "--query"]);
    assert!(text(&o.stdout).contains("title = \"renamed by icp\""));

    // A query method sent without --query is an update call, which the video canister's
    // inspect_message refuses (the canister would pay for it): the refusal says what to do.
    let o = call(&home, &n, &[&video, "metadata", "()"]);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{}", text(&o.stdout));
    assert!(
        err.contains("`metadata` is a query: call it as a query (icp, dfx: --query)"),
        "{err}"
    );

    // The owner (a controller) sees the module hash: spawn's `video_wasm_info` names the same.
    let status = ok(icp(&home).args([
        "canister",
        "status",
        "-n",
        &n.url,
        "-k",
        &n.root_key,
        "--identity",
        "owner",
        &video,
    ]));
    let gz_hash = sha256_hex(&canvid_devkit::gzip(&built("video")));
    assert!(
        status.contains(&format!("Module hash: 0x{gz_hash}")),
        "{status}"
    );
    // The build's video.wasm.gz (whose hash scripts/build-wasm.sh prints) is that very module.
    let built_gz = std::fs::read(canvid_devkit::wasm_dir().join("video.wasm.gz"))
        .expect("scripts/build-wasm.sh writes target/canisters/video.wasm.gz");
    assert_eq!(
        sha256_hex(&built_gz),
        gz_hash,
        "video.wasm.gz is not what spawn installs"
    );
    let o = call(&home, &n, &[&n.spawn, "video_wasm_info", "()", "--query"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("gzipped = true"), "{out}");
    let blob: String = gz_hash
        .as_bytes()
        .chunks(2)
        .map(|h| format!("\\{}", std::str::from_utf8(h).unwrap()))
        .collect();
    assert!(out.contains(&format!("sha256 = blob \"{blob}\"")), "{out}");

    // The index's and the spawn's interfaces too: their answers about the video carry names.
    let arg = format!("(principal \"{video}\")");
    for (canister, field) in [
        (&n.index, "video = principal"),
        (&n.spawn, "canister_id = principal"),
    ] {
        let o = call(&home, &n, &[canister, "get_video", &arg, "--query"]);
        let out = text(&o.stdout);
        assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
        assert!(out.contains(&format!("{field} \"{video}\"")), "{out}");
        assert!(
            out.contains(&format!("owner = principal \"{}\"", principal.trim())),
            "{out}"
        );
    }
}

/// `icp` with serve's root key and URL (`-n URL -k KEY`), as `identity`.
fn icp_as(home: &Path, n: &Net, identity: &str, args: &[&str]) -> std::process::Output {
    let mut c = icp(home);
    c.args(args)
        .args(["-n", &n.url, "-k", &n.root_key, "--identity", identity]);
    c.output().unwrap()
}

fn balance_of(home: &Path, n: &Net, identity: &str) -> String {
    let o = icp_as(home, n, identity, &["cycles", "balance"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout).trim().to_string()
}

/// The cycles ledger and CMC `canvid serve` runs (docs/serve.md, "Deploying your own canisters"),
/// as icp-cli uses them: balances, `icp canister create` paid from the account (amount + the
/// 100 M fee, controllers = the caller), refusals for want of cycles, `icp canister top-up`
/// (the ledger's `withdraw`), a withdrawal to a canister that does not exist (refunded, fee kept),
/// `deposit` without cycles refused, and the CMC's `get_default_subnets`.
#[test]
#[cfg_attr(
    not(canvid_icp_cli),
    ignore = "icp-cli not installed: run scripts/setup.sh (npm @icp-sdk/icp-cli-linux-x64 into target/npm-tools) or set ICP_CLI_BIN"
)]
fn cycles_ledger_against_canvid_serve() {
    require_wasm();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let state = tmp.path().join("state");
    let _serve = Serve::start(&state);
    let n = net_of(&state);
    let ledger = "um5iw-rqaaa-aaaaq-qaaba-cai";
    let call = |args: &[&str]| icp_as(&home, &n, "dev", args);

    ok(icp(&home).args(["identity", "new", "dev", "--storage", "plaintext", "-q"]));
    let me = ok(icp(&home).args(["identity", "principal", "--identity", "dev"]));
    let me = me.trim();
    assert_eq!(balance_of(&home, &n, "dev"), "Balance: 0 cycles");

    // Nothing on the account: the ledger refuses, icp says why.
    let o = call(&["canister", "create", "--detached"]);
    assert!(!o.status.success(), "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("Insufficient cycles"),
        "{}",
        text(&o.stderr)
    );

    let deposit = format!(
        "(record {{ to = record {{ owner = principal \"{me}\"; subaccount = null }}; amount = 5_000_000_000_000 }})"
    );
    let o = call(&["canister", "call", ledger, "provisional_deposit", &deposit]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("balance = 5_000_000_000_000 : nat"));
    assert_eq!(
        balance_of(&home, &n, "dev"),
        "Balance: 5_000_000_000_000 cycles"
    );

    // 3 T for the canister + 100 M fee; the caller controls it.
    let o = call(&["canister", "create", "--detached", "-q", "--cycles", "3t"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let id = text(&o.stdout).trim().to_string();
    assert!(id.ends_with("-cai"), "{id}");
    assert_eq!(
        balance_of(&home, &n, "dev"),
        "Balance: 1_999_900_000_000 cycles"
    );
    let status = text(&call(&["canister", "status", &id]).stdout);
    assert!(status.contains(&format!("controller: {me}")), "{status}");

    // Not enough left for another 3 T: refused, nothing taken.
    let o = call(&["canister", "create", "--detached", "--cycles", "3t"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("Insufficient cycles"));
    assert_eq!(
        balance_of(&home, &n, "dev"),
        "Balance: 1_999_900_000_000 cycles"
    );

    // icp canister top-up: the ledger's withdraw, 1 T + 100 M fee.
    let o = call(&["canister", "top-up", &id, "--amount", "1t"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        balance_of(&home, &n, "dev"),
        "Balance: 999_800_000_000 cycles"
    );

    // A withdrawal to a canister that does not exist: refunded, the fee kept.
    let nowhere = candid::Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0x27, 0x10, 1, 1]);
    let withdraw = format!(
        "(record {{ amount = 500_000_000_000; from_subaccount = null; to = principal \"{nowhere}\"; created_at_time = null }})"
    );
    let o = call(&["canister", "call", ledger, "withdraw", &withdraw]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.contains("FailedToWithdraw"), "{out}");
    assert_eq!(
        balance_of(&home, &n, "dev"),
        "Balance: 999_700_000_000 cycles"
    );

    // deposit takes the cycles a canister attaches: an ingress message attaches none.
    let arg =
        format!("(record {{ to = record {{ owner = principal \"{me}\"; subaccount = null }}; memo = null }})");
    let o = call(&["canister", "call", ledger, "deposit", &arg]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("at least 100000000 cycles must be attached"),
        "{}",
        text(&o.stderr)
    );

    // The CMC's one query answers serve's subnet (serve.json's subnet_id).
    let cmc = "rkp4c-7iaaa-aaaaa-aaaca-cai";
    let o = call(&[
        "canister",
        "call",
        cmc,
        "get_default_subnets",
        "()",
        "--query",
    ]);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("serve.json")).unwrap()).unwrap();
    let subnet = info["subnet_id"].as_str().unwrap();
    assert!(subnet.len() > 60, "{subnet}");
    assert!(
        text(&o.stdout).contains(&format!("principal \"{subnet}\"")),
        "{}",
        text(&o.stdout)
    );
}
