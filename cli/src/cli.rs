//! Command-line interface: argument definitions (clap) and dispatch.

use std::path::{Path, PathBuf};

use candid::Principal;
use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};

const AFTER_HELP: &str = "\
Exit codes: 0 ok · 1 a canister refused, or an upload/verification failed · 2 bad command line ·
3 bad input (missing file, unreadable identity, invalid principal) · 4 missing tool or build
(canister wasm not built: run scripts/build-wasm.sh; ffmpeg missing: run scripts/setup.sh) ·
5 network unavailable or not yet supported.

Canister wasm is read from target/canisters/ under the workspace (override: CANVID_WASM_DIR).";

/// canvid: video storage and streaming on the Internet Computer.
///
/// A spawn canister creates one video canister per video; the file is uploaded into it in
/// 2,000,000-byte chunks, verified by SHA-256, and streamed back over HTTP with ranges. An
/// index canister lists videos by creator and owner. `canvid demo` runs all of it in-process on
/// the embedded replica.
#[derive(Debug, Parser)]
#[command(name = "canvid", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole flow on an in-process replica: deploy, upload, verify, read back, list,
    /// transfer, then serve over HTTP.
    ///
    /// Starts the embedded replica, deploys the index and spawn canisters, creates a video
    /// canister through the spawn canister, uploads FILE (or a generated H.264 test video) with
    /// a progress bar, verifies its digest, reads it back byte-exact, lists the creator's videos
    /// from the index, transfers ownership to a second identity and shows the index following.
    /// Every step prints its cost in instructions and cycles. Finally serves the HTTP gateway on
    /// 127.0.0.1 until Ctrl-C (unless --no-serve).
    Demo {
        /// Video to upload. Default: a few seconds of generated test video (needs ffmpeg).
        file: Option<PathBuf>,
        /// Stop after the checks instead of serving over HTTP.
        #[arg(long)]
        no_serve: bool,
        /// Gateway port on 127.0.0.1 (0 picks a free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Length of the generated video in seconds (6 s is about 4.8 MB: three chunks).
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=600))]
        seconds: u32,
    },
    /// Run the embedded replica with the index and spawn canisters behind an HTTP gateway.
    ///
    /// Prints the gateway URL and the canister ids. The replica's state lives in memory only:
    /// the embedded replica has no snapshot support yet, so nothing survives a restart and
    /// every start deploys fresh canisters. --state DIR only receives canister_ids.json for the
    /// running deployment. Other canvid commands cannot reach this replica yet (it has no HTTP
    /// API for calls); use --upload to serve your own videos.
    Serve {
        /// Gateway port on 127.0.0.1 (0 picks a free port).
        #[arg(long, default_value_t = 4944)]
        port: u16,
        /// Directory that receives canister_ids.json (no state is restored from it).
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Upload this video before serving (repeatable).
        #[arg(long, value_name = "FILE")]
        upload: Vec<PathBuf>,
    },
    /// Upload a video: create its canister through the spawn canister and send it in chunks.
    Upload {
        file: PathBuf,
        /// Title (default: the file name).
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Download a video's bytes.
    Get {
        /// Video canister id.
        id: String,
        /// Output file (default: standard output).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// List videos from the index, by creator or by current owner (default: your own).
    Ls {
        #[arg(long, value_name = "PRINCIPAL", conflicts_with = "owner")]
        creator: Option<String>,
        #[arg(long, value_name = "PRINCIPAL")]
        owner: Option<String>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Hand a video (canister control and app-level ownership) to another principal.
    Transfer {
        /// Video canister id.
        id: String,
        /// Principal of the new owner.
        new_owner: String,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Show a video's metadata and its canister's storage and cycles.
    Info {
        /// Video canister id.
        id: String,
        #[command(flatten)]
        net: NetArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    /// Network: embedded, local (a replica on 127.0.0.1:4943), ic, or a replica URL.
    #[arg(long, default_value = "embedded", value_parser = parse_network)]
    pub network: Network,
    /// PEM private key of the identity to call with (default: anonymous).
    #[arg(long, value_name = "PEM")]
    pub identity: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    Embedded,
    Local,
    Ic,
    Url(String),
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Network::Embedded => f.write_str("the embedded network"),
            Network::Local => f.write_str("the local network (http://127.0.0.1:4943)"),
            Network::Ic => f.write_str("the IC mainnet"),
            Network::Url(u) => write!(f, "{u}"),
        }
    }
}

pub fn parse_network(s: &str) -> std::result::Result<Network, String> {
    match s {
        "embedded" => Ok(Network::Embedded),
        "local" => Ok(Network::Local),
        "ic" => Ok(Network::Ic),
        u if (u.starts_with("http://") || u.starts_with("https://"))
            && u.len() > "https://".len() =>
        {
            Ok(Network::Url(u.to_string()))
        }
        other => Err(format!(
            "'{other}' is not embedded, local, ic or an http(s):// URL"
        )),
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo {
            file,
            no_serve,
            port,
            seconds,
        } => crate::demo::run(crate::demo::DemoOptions {
            file,
            serve: !no_serve,
            port,
            seconds,
        }),
        Command::Serve {
            port,
            state,
            upload,
        } => crate::serve::run(crate::serve::ServeOptions {
            port,
            state,
            upload,
        }),
        Command::Upload {
            file,
            title: _,
            net,
        } => {
            check_readable_file(&file)?;
            check_identity(&net)?;
            not_yet("upload", &net.network)
        }
        Command::Get { id, output, net } => {
            principal("video id", &id)?;
            if let Some(out) = &output {
                check_output(out)?;
            }
            check_identity(&net)?;
            not_yet("get", &net.network)
        }
        Command::Ls {
            creator,
            owner,
            net,
        } => {
            if let Some(c) = &creator {
                principal("creator", c)?;
            }
            if let Some(o) = &owner {
                principal("owner", o)?;
            }
            check_identity(&net)?;
            not_yet("ls", &net.network)
        }
        Command::Transfer { id, new_owner, net } => {
            principal("video id", &id)?;
            principal("new owner", &new_owner)?;
            check_identity(&net)?;
            not_yet("transfer", &net.network)
        }
        Command::Info { id, net } => {
            principal("video id", &id)?;
            check_identity(&net)?;
            not_yet("info", &net.network)
        }
    }
}

fn not_yet(command: &str, network: &Network) -> Result<()> {
    Err(Error::NotSupported(match network {
        Network::Embedded => format!(
            "`canvid {command}` on the embedded network: the embedded replica lives inside one process and has no \
             call API for other processes yet; use `canvid demo FILE` or `canvid serve --upload FILE`"
        ),
        other => format!(
            "`canvid {command}` on {other}: real networks need the ic-agent client, which is not built in yet; \
             use `canvid demo FILE` to run the same flow on the embedded replica"
        ),
    }))
}

pub fn principal(what: &'static str, text: &str) -> Result<Principal> {
    Principal::from_text(text).map_err(|e| Error::InvalidPrincipal {
        what,
        text: text.into(),
        reason: e.to_string(),
    })
}

fn check_readable_file(path: &Path) -> Result<()> {
    let f = std::fs::File::open(path).map_err(|e| Error::from_open(path, e))?;
    let meta = f.metadata().map_err(|e| Error::from_open(path, e))?;
    if meta.is_dir() {
        return Err(Error::FileUnreadable {
            path: path.into(),
            reason: "it is a directory".into(),
        });
    }
    if meta.len() == 0 {
        return Err(Error::EmptyFile(path.into()));
    }
    Ok(())
}

fn check_output(path: &Path) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Error::Io {
            what: format!("cannot write {}", path.display()),
            reason: format!("directory {} does not exist", parent.display()),
        });
    }
    Ok(())
}

/// Checks that `--identity` names a readable PEM private key. (Signing with it needs the agent;
/// checking it now gives the user the right error first.)
fn check_identity(net: &NetArgs) -> Result<()> {
    let Some(path) = &net.identity else {
        return Ok(());
    };
    let bad = |reason: String| Error::Identity {
        path: path.clone(),
        reason,
    };
    let text = match std::fs::read(path) {
        Ok(bytes) => {
            String::from_utf8(bytes).map_err(|_| bad("it is not a text (PEM) file".into()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad("file not found".into()))
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    crate::identity::check_pem(&text).map_err(bad)
}
