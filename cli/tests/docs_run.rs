//! Docs that run (issue 16): the `icp …` commands of `README.md` and `docs/*.md` are executed,
//! in document order, with the real icp-cli binary against a fresh `canvid serve`, and every
//! `dfx …` command is checked to send the same candid as its icp-cli form. The convention, for
//! whoever writes docs (also in docs/testing.md, "Docs that run"):
//!
//! * Only fenced ```` ```sh ```` blocks are read. A block is a *run block* when it holds an icp
//!   command (a command naming `icp` or `$ICP`), or when the line before it is
//!   `<!-- docs-test: run -->` (a block of helpers, e.g. the one writing an argument file). Every
//!   command of a run block runs, in order, in bash (`set -euo pipefail`), except dfx commands
//!   and those listed in [`NOT_RUN`] with the reason. It must exit 0.
//! * Shell variables carry over from one command to the next, and from one file to the next in
//!   [`ORDER`] (`ICP`, `NET` set in serve.md or deploy.md are used by later files).
//! * Placeholders `<video-id>`, `<owner>`, `<buyer>`, … are replaced by the values of the
//!   [`placeholder`] table (the test's fixtures: a video uploaded by `canvid upload`, icp
//!   identities, the canisters deploy.md created). `/tmp/` becomes a directory of the test.
//! * `# → a … b` after a command (on its line or the comment lines right below) is its expected
//!   output: each part between ` … ` must appear in its stdout (whitespace ignored).
//! * Each `dfx` command must have an icp form in the same file (same method, or same module
//!   installed) whose candid argument text is identical, dfx-only spellings aside
//!   (`$(dfx canister id spawn)` = `$SPAWN`, `$(dfx identity get-principal)` =
//!   `$($ICP identity principal)`; `--argument-file F` = `--args-file F`) — or be listed in
//!   [`DFX_ONLY`] with the reason. dfx itself is not run: it is not installable here.
//!
//! The working directory has `target/canisters` and the icp binary at the path the docs use
//! (`target/npm-tools/...`), as symlinks, and `.canvid` is the serve's state: the docs' commands
//! run as written for a checkout where `canvid serve` runs on the default state directory.

mod common;

use common::{canvid, last_line, net, ok, require_wasm, text, Serve};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files whose icp commands run, in this order (state carries over). Any other
/// `docs/*.md` holding an icp command fails the test until it is added here.
const ORDER: [&str; 7] = [
    "README.md",
    "docs/serve.md",
    "docs/deploy.md",
    "docs/spawn-and-index.md",
    "docs/video-canister.md",
    "docs/nft.md",
    "docs/access.md",
];

/// Commands of run blocks that are not run: (file, a fragment of the command, why).
const NOT_RUN: [(&str, &str, &str); 3] = [
    (
        "docs/video-canister.md",
        "cancel_offer",
        "the alternative to accept_ownership just above: once accepted, there is no offer to cancel",
    ),
    (
        "docs/video-canister.md",
        "curl -s \"http://$V.localhost:4943/metadata.json\"",
        "the gateway of a dfx/icp local network on port 4943; canvid serve's gateway is tested in serve_agent.rs",
    ),
    (
        "docs/video-canister.md",
        "curl -s -H 'Range: bytes=0-'",
        "the gateway of a dfx/icp local network on port 4943; canvid serve's gateway is tested in serve_agent.rs",
    ),
];

/// dfx commands without an icp form: (fragment, why).
const DFX_ONLY: [(&str, &str); 3] = [
    (
        "dfx start",
        "starts dfx's own local replica; the icp form is `canvid serve` (docs/serve.md)",
    ),
    (
        "dfx canister deposit-cycles",
        "no candid argument to compare: its icp form is `icp canister top-up` (the cycles \
         ledger's withdraw, tested in icp_cli.rs); deploy.md's icp section funds the spawn pool \
         at creation (`icp canister create --cycles`)",
    ),
    (
        "--wallet",
        "a dfx cycles wallet forwarding cycles; icp-cli has no wallet (a canister attaching \
         cycles is tested in tests/tests/spawn.rs)",
    ),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One shell command of a ```sh block (several lines with heredocs, continuations, quotes).
#[derive(Debug, Clone)]
struct Cmd {
    file: String,
    line: usize,
    /// As written (heredoc bodies included).
    text: String,
    /// The command without comments and heredoc bodies: what is classified.
    code: String,
    /// `# → …` parts.
    expect: Vec<String>,
    run_block: bool,
}

impl Cmd {
    fn is_icp(&self) -> bool {
        has_word(&self.code, "icp") || self.code.contains("$ICP ")
    }
    fn is_dfx(&self) -> bool {
        has_word(&self.code, "dfx")
    }
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// `w` as a command word: at the start or after a space, `(`, `;`, `|`, `&`, followed by a space.
fn has_word(code: &str, w: &str) -> bool {
    code.match_indices(w).any(|(i, _)| {
        let before = code[..i].chars().last();
        let after = code[i + w.len()..].chars().next();
        matches!(before, None | Some(' ' | '(' | ';' | '|' | '&' | '\n'))
            && matches!(after, Some(' '))
    })
}

/// The ```sh blocks of a markdown file, split into commands.
fn commands(file: &str, md: &str) -> Vec<Cmd> {
    let lines: Vec<&str> = md.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "```sh" {
            i += 1;
            continue;
        }
        let marked = i > 0 && lines[i - 1].trim() == "<!-- docs-test: run -->";
        let start = i + 1;
        let mut end = start;
        while end < lines.len() && lines[end].trim() != "```" {
            end += 1;
        }
        let mut block = split_block(file, start, &lines[start..end]);
        let run = marked || block.iter().any(Cmd::is_icp);
        for c in &mut block {
            c.run_block = run;
        }
        out.extend(block);
        i = end + 1;
    }
    out
}

/// Splits a block into commands: a command ends at a newline outside quotes, heredocs and `\`
/// continuations. Comment lines `# → …` right after a command are its expected output.
fn split_block(file: &str, first: usize, lines: &[&str]) -> Vec<Cmd> {
    let mut out: Vec<Cmd> = Vec::new();
    let mut cur: Option<Cmd> = None;
    let (mut single, mut double) = (false, false);
    let mut heredoc: Option<String> = None;
    let mut attach = false; // a comment line may still add to the last command's expectation
    for (k, line) in lines.iter().enumerate() {
        if let Some(term) = &heredoc {
            let c = cur.as_mut().unwrap();
            c.text.push('\n');
            c.text.push_str(line);
            if line.trim() == term {
                heredoc = None;
                out.push(cur.take().unwrap());
                attach = true;
            }
            continue;
        }
        if cur.is_none() {
            let t = line.trim();
            if t.is_empty() {
                attach = false;
                continue;
            }
            if let Some(c) = t.strip_prefix('#') {
                if let (true, Some(last)) = (attach, out.last_mut()) {
                    if let Some(e) = c.trim().strip_prefix('→') {
                        last.expect.extend(parts(e));
                    }
                } else {
                    attach = false;
                }
                continue;
            }
            cur = Some(Cmd {
                file: file.into(),
                line: first + k + 1,
                text: String::new(),
                code: String::new(),
                expect: Vec::new(),
                run_block: false,
            });
        }
        let c = cur.as_mut().unwrap();
        if !c.text.is_empty() {
            c.text.push('\n');
            c.code.push('\n');
        }
        c.text.push_str(line);
        // Scan for quotes, comments and `<<` outside quotes.
        let b = line.as_bytes();
        let mut j = 0;
        let mut comment = None;
        while j < b.len() {
            let ch = b[j];
            if single {
                single = ch != b'\'';
            } else if double {
                if ch == b'\\' {
                    j += 1;
                } else if ch == b'"' {
                    double = false;
                }
            } else {
                match ch {
                    b'\\' => j += 1,
                    b'\'' => single = true,
                    b'"' => double = true,
                    b'#' if j == 0 || b[j - 1] == b' ' => {
                        comment = Some(j);
                        break;
                    }
                    b'<' if b.get(j + 1) == Some(&b'<') && b.get(j + 2) != Some(&b'<') => {
                        let rest = line[j + 2..].trim_start_matches('-').trim_start();
                        let term: String = rest
                            .trim_start_matches(['\'', '"'])
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        heredoc = Some(term);
                        j += 1;
                    }
                    _ => {}
                }
            }
            j += 1;
        }
        let code = &line[..comment.unwrap_or(line.len())];
        c.code.push_str(code);
        if let Some(e) = comment.and_then(|j| line[j + 1..].trim().strip_prefix('→')) {
            c.expect.extend(parts(e));
        }
        let continued = code.trim_end().ends_with('\\');
        if !single && !double && heredoc.is_none() && !continued {
            out.push(cur.take().unwrap());
            attach = true;
        }
    }
    assert!(
        cur.is_none(),
        "{file}:{first}: unterminated command in a sh block"
    );
    out
}

/// `a … b … c` → the parts that say something.
fn parts(e: &str) -> Vec<String> {
    e.split('…')
        .map(|p| p.trim().to_string())
        .filter(|p| p.chars().any(|c| c.is_alphanumeric()))
        .collect()
}

fn all_docs() -> Vec<(String, String)> {
    let mut files = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|f| {
            let md = std::fs::read_to_string(repo().join(&f)).unwrap();
            (f, md)
        })
        .collect()
}

fn all_commands() -> Vec<Cmd> {
    all_docs()
        .iter()
        .flat_map(|(f, md)| commands(f, md))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// dfx ↔ icp: the same candid.

/// Shell words, quotes removed (`$VAR` and `$(...)` kept as text: compared, not expanded).
fn words(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut w = String::new();
    let mut has = false;
    let mut it = code.chars().peekable();
    let (mut single, mut double) = (false, false);
    let mut paren = 0; // inside $( … ) outside quotes: one word
    while let Some(c) = it.next() {
        if single {
            if c == '\'' {
                single = false
            } else {
                w.push(c)
            }
        } else if double {
            match c {
                '\\' => {
                    let n = it.next().unwrap_or('\\');
                    if !matches!(n, '"' | '\\' | '$' | '`') {
                        w.push('\\');
                    }
                    w.push(n);
                }
                '"' => double = false,
                _ => w.push(c),
            }
        } else {
            match c {
                '\'' => (single, has) = (true, true),
                '"' => (double, has) = (true, true),
                '\\' => {
                    if let Some(n) = it.next() {
                        if n != '\n' {
                            w.push(n);
                            has = true;
                        }
                    }
                }
                '(' if w.ends_with('$') || paren > 0 => {
                    paren += 1;
                    w.push(c);
                }
                ')' if paren > 0 => {
                    paren -= 1;
                    w.push(c);
                }
                ' ' | '\t' | '\n' if paren == 0 => {
                    if has || !w.is_empty() {
                        out.push(std::mem::take(&mut w));
                        has = false;
                    }
                }
                _ => {
                    w.push(c);
                    has = true;
                }
            }
        }
    }
    if has || !w.is_empty() {
        out.push(w);
    }
    out
}

/// What a dfx or icp command sends: (kind, method or module, candid argument).
#[derive(Debug, PartialEq)]
struct Sent {
    key: String,
    arg: String,
}

fn normalize_arg(a: &str) -> String {
    a.replace("$(dfx canister id index)", "$INDEX")
        .replace("$(dfx canister id spawn)", "$SPAWN")
        .replace("$(dfx identity get-principal)", "$ME")
        .replace("$($ICP identity principal)", "$ME")
        .replace("$(icp identity principal)", "$ME")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn sent(cmd: &Cmd) -> Option<Sent> {
    let w = words(&cmd.code);
    let tool = w
        .iter()
        .position(|x| x == "dfx" || x == "icp" || x == "$ICP")?;
    let w = &w[tool..];
    let mut pos = Vec::new();
    let mut arg = None;
    let mut wasm = None;
    let mut k = 1;
    while k < w.len() {
        let x = w[k].as_str();
        match x {
            "--argument" | "--args" => {
                arg = Some(w[k + 1].clone());
                k += 1;
            }
            "--argument-file" | "--args-file" => {
                arg = Some(format!("file {}", w[k + 1]));
                k += 1;
            }
            "--wasm" => {
                wasm = Some(w[k + 1].clone());
                k += 1;
            }
            "-n" | "-k" | "--identity" | "--network" | "--with-cycles" | "--wallet" | "-e"
            | "--candid" => k += 1,
            "\"${NET[@]}\"" | "${NET[@]}" => {}
            _ if x.starts_with('-') => {}
            _ => pos.push(x.to_string()),
        }
        k += 1;
    }
    let p: Vec<&str> = pos.iter().map(String::as_str).collect();
    let module = |name: &str| -> String {
        let n = name.rsplit('/').next().unwrap();
        let n = n.trim_end_matches(".wasm").trim_start_matches("canvid_");
        match n {
            "$V" => "video".into(),
            _ => n.to_string(),
        }
    };
    let (key, positional) = match p.as_slice() {
        ["canister", "call", _target, method, rest @ ..] => (
            format!("call {method}"),
            rest.first().map(|s| s.to_string()),
        ),
        ["deploy", name] => (format!("install {}", module(name)), None),
        ["canister", "install", target] => (
            format!("install {}", module(wasm.as_deref().unwrap_or(target))),
            None,
        ),
        _ => return None,
    };
    let arg = arg.or(positional).unwrap_or_else(|| "()".into());
    Some(Sent {
        key,
        arg: normalize_arg(&arg),
    })
}

#[test]
fn every_dfx_command_has_an_icp_form_with_the_same_candid() {
    let cmds = all_commands();
    let mut failures = Vec::new();
    let mut used = vec![false; cmds.len()];
    let mut pairs = 0;
    for (frag, _) in DFX_ONLY {
        if !cmds.iter().any(|c| c.is_dfx() && c.code.contains(frag)) {
            failures.push(format!(
                "DFX_ONLY entry `{frag}` matches no dfx command: remove it"
            ));
        }
    }
    for d in cmds.iter().filter(|c| c.is_dfx()) {
        if DFX_ONLY.iter().any(|(f, _)| d.code.contains(f)) {
            continue;
        }
        let Some(ds) = sent(d) else {
            failures.push(format!(
                "{}: a dfx command this test does not understand: {}",
                d.at(),
                d.code
            ));
            continue;
        };
        // The first unused icp command of the same file sending to the same method / module.
        let found = cmds.iter().enumerate().find(|(i, c)| {
            !used[*i] && c.file == d.file && c.is_icp() && sent(c).is_some_and(|s| s.key == ds.key)
        });
        match found {
            None => failures.push(format!(
                "{}: no icp form of `{}` in {} (or list it in DFX_ONLY with the reason)",
                d.at(),
                d.code.trim(),
                d.file
            )),
            Some((i, c)) => {
                used[i] = true;
                pairs += 1;
                let is = sent(c).unwrap();
                if is.arg != ds.arg {
                    failures.push(format!(
                        "{} and {}: `{}` sends different candid:\n  dfx: {}\n  icp: {}",
                        d.at(),
                        c.at(),
                        ds.key,
                        ds.arg,
                        is.arg
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The docs do pair commands (a parser that found nothing would pass vacuously).
    assert!(pairs >= 30, "only {pairs} dfx/icp pairs found");
}

#[test]
fn the_convention_parses_what_the_docs_write() {
    let md = "x\n```sh\n# a comment\nA=1   # set\nicp canister call \"${NET[@]}\" $V m '(record {\n  a = 1 })' --query\n# → a = 1 … b\ncat > /tmp/f <<'EOF'\n'\nEOF\ndfx canister call $V m '(record { a = 1 })'\n```\n";
    let c = commands("t.md", md);
    assert_eq!(c.len(), 4, "{c:#?}");
    assert_eq!((c[0].code.trim(), c[0].line), ("A=1", 4));
    assert!(c[1].is_icp() && !c[1].is_dfx() && c[1].run_block);
    assert_eq!(c[1].expect, ["a = 1", "b"]);
    assert!(c[2].text.ends_with("EOF") && !c[2].is_icp());
    assert!(c[3].is_dfx());
    assert_eq!(sent(&c[1]), sent(&c[3]));
    assert_eq!(sent(&c[1]).unwrap().key, "call m");
    assert_eq!(
        sent(&c[3]).unwrap().arg,
        "(record { a = 1 })",
        "quotes removed, whitespace collapsed"
    );
    assert!(!has_word("ICP=target/x/icp", "icp"));
}

// ---------------------------------------------------------------------------------------------
// Running the icp commands.

/// The running world: serve, the work dir, the shell variables, the fixtures' values.
struct World {
    work: PathBuf,
    home: PathBuf,
    bin: PathBuf,
    files: PathBuf,
    values: BTreeMap<String, String>,
}

/// Shell variables the docs set, carried from one command to the next.
const VARS: [&str; 10] = [
    "ICP",
    "NET",
    "INDEX",
    "SPAWN",
    "V",
    "ME",
    "LEDGER",
    "GW",
    "T",
    "TOKEN_PATH",
];

impl World {
    fn bash(&self, script: &str) -> std::process::Output {
        let state = self.work.join(".docs-test-vars.sh");
        let vals = self.work.join(".docs-test-vals");
        let full = format!(
            "set -euo pipefail\n[ -f '{s}' ] && . '{s}'\n{script}\n\
             declare -p {vars} 2>/dev/null > '{s}' || true\n\
             for v in {vars}; do [ -n \"${{!v+x}}\" ] && printf '%s=%s\\n' \"$v\" \"${{!v}}\"; done > '{vals}' || true\n",
            s = state.display(),
            vals = vals.display(),
            vars = VARS.join(" "),
        );
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("bash")
            .arg("-c")
            .arg(full)
            .current_dir(&self.work)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("DO_NOT_TRACK", "1")
            .env("RUST_BACKTRACE", "0")
            .env("PATH", path)
            .env("CANVID_WASM_DIR", canvid_devkit::wasm_dir())
            // icp.yaml's build step takes target/canisters/ as scripts/build-wasm.sh left it
            // (require_wasm): rebuilding inside `cargo test` would rewrite modules that other
            // tests are reading.
            .env("CANVID_PREBUILT_WASM", "1")
            .env_remove("ICP_NETWORK")
            .env_remove("ICP_ENVIRONMENT")
            .output()
            .unwrap()
    }

    /// The shell variables after the last command (`INDEX`, `SPAWN`, …).
    fn var(&self, name: &str) -> Option<String> {
        let vals = std::fs::read_to_string(self.work.join(".docs-test-vals")).ok()?;
        vals.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_string))
    }

    fn icp(&self, args: &str) -> String {
        let o = self.bash(&format!("icp {args}"));
        assert!(
            o.status.success(),
            "fixture `icp {args}` failed:\n{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    fn net(&self) -> String {
        let info: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(self.work.join(".canvid/serve.json")).unwrap(),
        )
        .unwrap();
        format!(
            "-n {} -k {}",
            info["url"].as_str().unwrap(),
            info["root_key"].as_str().unwrap()
        )
    }

    /// A video canister created through `$SPAWN` for icp's default identity (not finished).
    fn new_video(&self, title: &str) -> String {
        let spawn = self.var("SPAWN").expect("SPAWN set by deploy.md");
        let out = self.icp(&format!(
            "canister call {} {spawn} create_video '(record {{ title = \"{title}\"; description = \"\"; tags = vec {{}}; declared_size = 5_000_000 : nat64; owner = null }})'",
            self.net()
        ));
        principal_after(&out, "canister_id = principal")
    }
}

fn principal_after(out: &str, what: &str) -> String {
    let i = out
        .find(what)
        .unwrap_or_else(|| panic!("no `{what}` in {out}"));
    out[i + what.len()..]
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("no principal after `{what}` in {out}"))
        .to_string()
}

/// The value a placeholder stands for in `file` (None: not a placeholder of that file).
fn placeholder(w: &World, file: &str, name: &str) -> Option<String> {
    let v = |k: &str| w.values.get(k).cloned();
    match (file, name) {
        ("docs/serve.md", "<video-id>") => v("serve video"),
        (_, "<index-id>" | "<index>") => w.var("INDEX"),
        (_, "<spawn-id>") => w.var("SPAWN"),
        ("docs/spawn-and-index.md", "<video-id>") => v("demo video"),
        ("docs/nft.md", "<video-id>") => v("nft video"),
        ("docs/nft.md", "<token-id>") => v("nft token"),
        ("docs/access.md", "<video-id>") => v("access video"),
        ("docs/access.md", "<ledger-id>") => v("access ledger"),
        (_, "<owner>" | "<creator>" | "<user>") => v("me"),
        (_, "<buyer>") => v("buyer"),
        (_, "<uploader>") => v("uploader"),
        (_, "<marketplace>") => v("marketplace"),
        _ => None,
    }
}

fn substitute(w: &World, file: &str, s: &str) -> String {
    let mut out = s.replace("/tmp/", &format!("{}/", w.files.display()));
    let mut from = 0;
    while let Some(i) = out[from..].find('<').map(|i| i + from) {
        let Some(j) = out[i..].find('>').map(|j| j + i) else {
            break;
        };
        let name = &out[i..=j];
        let plain = name[1..name.len() - 1]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '-');
        match placeholder(w, file, name) {
            Some(val) if plain => {
                out.replace_range(i..=j, &val);
                from = i + val.len();
            }
            None if plain && !name.contains("<<") => {
                panic!("{file}: placeholder {name} has no value in the test's table")
            }
            _ => from = i + 1,
        }
    }
    out
}

/// Candid text as compared: no whitespace, and no separator before a closing `}` / `)` (icp-cli
/// prints `x = 1; }` and `},\n)`, the docs `x = 1 }` and `})`).
fn squash(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    s.replace(";}", "}").replace(",)", ")").replace(",}", "}")
}

/// DFINITY's ICRC ledger wasm (docs/access.md's `<ledger-id>`), where the fixture exists.
fn icrc_ledger_wasm() -> Option<PathBuf> {
    let file =
        canvid_devkit::icrc_ledger::fixture_dir().join(canvid_devkit::icrc_ledger::MODULE_FILE);
    file.is_file().then_some(file)
}

/// What the test prepares before the first command of a file (fixtures the prose describes).
/// False: the file's commands cannot run here (said on stderr), and are skipped.
fn before_file(w: &mut World, file: &str) -> bool {
    match file {
        "docs/serve.md" => {
            // "canvid upload clip.mp4" of serve.md's first block, with the CLI's identity.
            let clip = w.work.join("serve-clip.bin");
            std::fs::write(&clip, vec![7u8; 300_000]).unwrap();
            let state = w.work.join(".canvid");
            let id = last_line(&ok(net(canvid().arg("upload").arg(&clip), &state)));
            w.values.insert("serve video".into(), id);
        }
        "docs/deploy.md" => {
            // `icp deploy -e canvid`: the repository's icp.yaml and scripts, the network's URL
            // moved from serve's default port 4944 to this serve's port (nothing else changed).
            let yaml = std::fs::read_to_string(repo().join("icp.yaml")).unwrap();
            let url = w.net().split(' ').nth(1).unwrap().to_string();
            assert!(
                yaml.contains("url: http://127.0.0.1:4944\n"),
                "icp.yaml: {yaml}"
            );
            let yaml = yaml.replace("url: http://127.0.0.1:4944\n", &format!("url: {url}\n"));
            std::fs::write(w.work.join("icp.yaml"), yaml).unwrap();
            std::os::unix::fs::symlink(repo().join("scripts"), w.work.join("scripts")).unwrap();
        }
        "docs/spawn-and-index.md" => {
            let demo = w.values.get("demo video").cloned();
            assert!(demo.is_some(), "deploy.md's create_video did not run");
        }
        "docs/video-canister.md" => {
            // clip.mp4: the 5,000,000-byte file the upload below declares.
            let bytes: Vec<u8> = (0..5_000_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            std::fs::write(w.work.join("clip.mp4"), bytes).unwrap();
        }
        "docs/nft.md" => {
            // "a finished video the seller holds": uploaded with `canvid upload` as icp's default
            // identity (the seller, `<owner>`) through the spawn canister deploy.md created, so
            // it is a token of `$INDEX`.
            let name = w.icp("identity default").trim().to_string();
            let pem = w.files.join("seller.pem");
            std::fs::write(&pem, w.icp(&format!("identity export {name}"))).unwrap();
            let clip = w.work.join("nft-clip.bin");
            std::fs::write(&clip, vec![9u8; 300_000]).unwrap();
            let (spawn, index) = (w.var("SPAWN").unwrap(), w.var("INDEX").unwrap());
            let state = w.work.join(".canvid");
            let out = ok(net(
                canvid()
                    .args(["upload", "--spawn", &spawn, "--index", &index, "--identity"])
                    .arg(&pem)
                    .arg(&clip),
                &state,
            ));
            let id = last_line(&out);
            let tid = canvid_types::icrc::token_id_of(&candid::Principal::from_text(&id).unwrap())
                .expect("a canister id");
            w.values.insert("nft video".into(), id);
            w.values.insert("nft token".into(), tid.to_string());
        }
        "docs/access.md" => {
            let Some(wasm) = icrc_ledger_wasm() else {
                eprintln!(
                    "SKIPPED docs/access.md: DFINITY's ICRC ledger is not in ../shared/fixtures/icrc-ledger (set ICRC_LEDGER_DIR)"
                );
                return false;
            };
            // "a finished 5,000,000-byte video the owner uploaded": icp's default identity (its
            // key exported for nft.md).
            let pem = w.files.join("seller.pem");
            let clip = w.work.join("access-clip.bin");
            std::fs::write(
                &clip,
                (0..5_000_000u32)
                    .map(|i| (i % 251) as u8)
                    .collect::<Vec<_>>(),
            )
            .unwrap();
            // Through serve's own spawn canister: deploy.md's allows the seller one video
            // (nft.md's).
            let state = w.work.join(".canvid");
            let out = ok(net(
                canvid().args(["upload", "--identity"]).arg(&pem).arg(&clip),
                &state,
            ));
            w.values.insert("access video".into(), last_line(&out));
            // "an ICRC-2 ledger where the buyer has funds": DFINITY's, fee 10,000.
            let out = w.icp(&format!(
                "canister call {} aaaaa-aa provisional_create_canister_with_cycles '(record {{ amount = opt 10_000_000_000_000; settings = null }})'",
                w.net()
            ));
            let ledger = principal_after(&out, "= principal");
            let me = w.values.get("me").cloned().expect("icp's default identity");
            let minter = w.values.get("uploader").cloned().unwrap();
            let buyer = w.values.get("buyer").cloned().unwrap();
            let init = format!(
                "(variant {{ Init = record {{ minting_account = record {{ owner = principal \"{minter}\"; subaccount = null }}; fee_collector_account = null; transfer_fee = 10_000 : nat; decimals = opt (8 : nat8); max_memo_length = null; token_symbol = \"TST\"; token_name = \"Test token\"; metadata = vec {{}}; initial_balances = vec {{ record {{ record {{ owner = principal \"{buyer}\"; subaccount = null }}; 100_000_000 : nat }} }}; feature_flags = opt record {{ icrc2 = true }}; archive_options = record {{ num_blocks_to_archive = 1_000 : nat64; max_transactions_per_response = null; trigger_threshold = 2_000 : nat64; max_message_size_bytes = null; cycles_for_archive_creation = opt (0 : nat64); node_max_memory_size_bytes = null; controller_id = principal \"{me}\"; more_controller_ids = null }}; index_principal = null }} }})"
            );
            let args = w.files.join("ledger-init.did");
            std::fs::write(&args, init).unwrap();
            w.icp(&format!(
                "canister install {} {ledger} --wasm {} --args-file {}",
                w.net(),
                wasm.display(),
                args.display()
            ));
            w.values.insert("access ledger".into(), ledger);
        }
        _ => {}
    }
    true
}

/// Before a given command: (file, fragment) → fixture.
fn before_cmd(w: &mut World, c: &Cmd) {
    if c.file != "docs/video-canister.md" {
        return;
    }
    let v = if c.code.contains("canister install") {
        // "Install (normally done by the spawn canister)": an empty canister of our own.
        let out = w.icp(&format!(
            "canister call {} aaaaa-aa provisional_create_canister_with_cycles '(record {{ amount = null; settings = null }})'",
            w.net()
        ));
        principal_after(&out, "= principal")
    } else if c.code.contains(" begin_upload ") {
        // The upload: a video created through the spawn canister deploy.md installed, for icp's
        // default identity (the prose's normal case).
        w.new_video("Docs clip")
    } else if c.code.contains(" offer_ownership ") {
        // change_owner above gave $V away: the offer is made on a video of our own.
        w.new_video("Offered")
    } else {
        return;
    };
    w.bash(&format!("V={v}"));
}

/// After a command: values its output names for later placeholders.
fn after_cmd(w: &mut World, c: &Cmd, stdout: &str) {
    // The "Demo" video of deploy.md's icp-cli section, registered in its index ($INDEX).
    if c.file == "docs/deploy.md" && c.code.contains(" $SPAWN create_video ") {
        let id = principal_after(stdout, "canister_id = principal");
        w.values.insert("demo video".into(), id);
    }
}

#[test]
#[cfg_attr(
    not(canvid_icp_cli),
    ignore = "icp-cli not installed: run scripts/setup.sh (npm @icp-sdk/icp-cli-linux-x64 into target/npm-tools) or set ICP_CLI_BIN"
)]
fn the_icp_commands_of_the_docs_run_against_canvid_serve() {
    require_wasm();
    let t0 = std::time::Instant::now();
    let cmds = all_commands();
    for c in cmds.iter().filter(|c| c.is_icp()) {
        assert!(
            ORDER.contains(&c.file.as_str()),
            "{}: an icp command in a file the test does not run: add it to ORDER",
            c.at()
        );
    }
    for (f, frag, _) in NOT_RUN {
        assert!(
            cmds.iter()
                .any(|c| c.file == f && c.run_block && c.code.contains(frag)),
            "NOT_RUN entry ({f}, {frag}) matches no command of a run block: remove it"
        );
    }

    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let home = tmp.path().join("home");
    let bin = tmp.path().join("bin");
    let files = tmp.path().join("files");
    for d in [&work, &home, &bin, &files] {
        std::fs::create_dir_all(d).unwrap();
    }
    // The paths the docs use, relative to a checkout.
    let icp_rel = work.join("target/npm-tools/node_modules/@icp-sdk/icp-cli-linux-x64/bin");
    std::fs::create_dir_all(&icp_rel).unwrap();
    std::os::unix::fs::symlink(env!("ICP_CLI_PATH"), icp_rel.join("icp")).unwrap();
    std::os::unix::fs::symlink(env!("ICP_CLI_PATH"), bin.join("icp")).unwrap();
    std::os::unix::fs::symlink(canvid_devkit::wasm_dir(), work.join("target/canisters")).unwrap();

    let _serve = Serve::start(&work.join(".canvid"));
    let mut w = World {
        work,
        home,
        bin,
        files,
        values: BTreeMap::new(),
    };
    // Identities the placeholders name (their own keys, in the throwaway HOME).
    for who in ["buyer", "uploader", "marketplace"] {
        w.icp(&format!("identity new {who} --storage plaintext -q"));
        let p = w.icp(&format!("identity principal --identity {who}"));
        w.values.insert(who.into(), p.trim().to_string());
    }

    let mut ran = 0;
    for file in ORDER {
        if !before_file(&mut w, file) {
            continue;
        }
        for c in cmds.iter().filter(|c| c.file == file && c.run_block) {
            if c.is_dfx()
                || NOT_RUN
                    .iter()
                    .any(|(f, frag, _)| *f == file && c.code.contains(frag))
            {
                continue;
            }
            before_cmd(&mut w, c);
            if !w.values.contains_key("me") && w.var("ICP").is_some() {
                // icp's default identity once a doc made one (deploy.md).
                let o = w.bash("$ICP identity principal");
                if o.status.success() && !text(&o.stdout).trim().starts_with("2vxsx") {
                    w.values
                        .insert("me".into(), text(&o.stdout).trim().to_string());
                }
            }
            let script = substitute(&w, file, &c.text);
            let o = w.bash(&script);
            let (out, err) = (text(&o.stdout), text(&o.stderr));
            assert!(
                o.status.success(),
                "{}: failed ({}):\n{script}\nstdout: {out}\nstderr: {err}",
                c.at(),
                o.status
            );
            for e in &c.expect {
                let e = substitute(&w, file, e);
                assert!(
                    squash(&out).contains(&squash(&e)),
                    "{}: expected `{e}` in the output:\n{out}",
                    c.at()
                );
            }
            after_cmd(&mut w, c, &out);
            ran += 1;
        }
    }
    eprintln!("docs_run: {ran} commands ran in {:?}", t0.elapsed());
    assert!(ran >= 30, "only {ran} commands ran");
}
