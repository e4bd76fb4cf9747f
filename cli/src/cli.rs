//! Command-line interface: argument definitions (clap) and dispatch.

use std::path::{Path, PathBuf};

use candid::Principal;
use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};

const AFTER_HELP: &str = "\
Exit codes: 0 ok · 1 an upload or verification failed, I/O error · 2 bad command line ·
3 bad input (missing file, invalid principal) · 4 missing tool or build (canister wasm not
built: run scripts/build-wasm.sh; ffmpeg missing: run scripts/setup.sh) · 5 network unreachable
(`canvid serve` not running) or not supported · 6 unusable identity file · 7 a canister refused
(not authorized, invalid request, quota).

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
    /// Run the embedded replica (index and spawn canisters deployed) on one loopback port:
    /// the IC HTTP interface for agents and the HTTP gateway for browsers.
    ///
    /// State persists in DIR: a snapshot of the replica is saved every --save-interval seconds
    /// when something changed (only the stable-memory pages written since the last save), and on
    /// Ctrl-C / SIGTERM. A restart on the same DIR restores the same canisters, ids, root key and
    /// videos; a kill -9 loses at most what happened since the last save (docs/serve.md). The
    /// first start deploys fresh canisters. Writes DIR/canister_ids.json and, while running,
    /// DIR/serve.json (URL, pid, root key) which `canvid upload|get|ls|transfer|info` read.
    Serve {
        /// Port on 127.0.0.1 (0 picks a free port).
        #[arg(long, default_value_t = 4944)]
        port: u16,
        /// State directory (snapshot, canister_ids.json, serve.json).
        #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE)]
        state: PathBuf,
        /// Upload this video (as the demo identity "alice") before serving (repeatable).
        #[arg(long, value_name = "FILE")]
        upload: Vec<PathBuf>,
        /// Also make this principal an admin of the spawn and index canisters (repeatable), e.g.
        /// your own identity's, to set quotas or upgrade videos with the SDK or icp. The
        /// deployment's own admin is a demo identity nobody holds the key of.
        #[arg(long, value_name = "PRINCIPAL")]
        admin: Vec<String>,
        /// Seconds between snapshot saves (a save with nothing changed writes nothing).
        #[arg(long, value_name = "SECS", default_value_t = 5)]
        save_interval: u64,
        /// No write-ahead log: answers are not held for an fsync, and a crash (kill -9, power
        /// loss) loses up to --save-interval seconds of acknowledged calls.
        #[arg(long)]
        no_wal: bool,
        /// Install DFINITY's ICRC-1/2/3 ledger (ICRC-2 on, fee 10000, symbol TST) to sell paid
        /// videos with: its module (ic-icrc1-ledger.wasm.gz) or a folder holding it. Kept in
        /// the state (canister_ids.json "icrc_ledger"); serve prints `icrc ledger <id>`.
        /// Default: none.
        #[arg(long, value_name = "PATH", env = "CANVID_ICRC_LEDGER")]
        icrc_ledger: Option<PathBuf>,
        /// Mint AMOUNT test tokens (smallest unit) to PRINCIPAL on that ledger at every start
        /// (repeatable; needs --icrc-ledger).
        #[arg(long, value_name = "PRINCIPAL=AMOUNT", requires = "icrc_ledger")]
        fund: Vec<String>,
    },
    /// Upload a video: create its canister through the spawn canister, send the chunks the
    /// canister is missing (4 in flight), finish and verify the digest.
    ///
    /// An interrupted upload resumes when the same file is uploaded again to the same network
    /// (the canister is remembered in DIR/uploads.json), or into --resume ID: only the chunks
    /// the canister does not have are sent. Prints the video canister id as the last line.
    ///
    /// With --hls, the video is also transcoded into an HLS ladder (1080p..240p, never above
    /// the source; docs/streaming.md) uploaded as named files beside the original, and with
    /// --hls-dir a ladder made by `canvid hls prepare` is uploaded.
    ///
    /// With --encrypt, the file is encrypted end to end before it leaves this machine (AES-256-GCM
    /// under a key from the canister's vetKD, docs/encryption.md): the canister stores only
    /// ciphertext, the video is made private, and the owner, the uploaders and the viewers on its
    /// allowlist (`canvid access viewers add`) decrypt it with `canvid get`.
    Upload {
        /// The video (with --hls: the source of the ladder, also uploaded as the main file
        /// unless --no-original).
        #[arg(required_unless_present = "hls_dir")]
        file: Option<PathBuf>,
        /// Title (default: the file name).
        #[arg(long)]
        title: Option<String>,
        /// Transcode FILE into an HLS ladder (kept in DIR/hls-work/ until the upload is finished,
        /// so a re-run resumes with the same files) and upload it too.
        #[arg(long)]
        hls: bool,
        /// Upload the HLS tree prepared in DIR by `canvid hls prepare` (no transcoding).
        #[arg(long, value_name = "DIR", conflicts_with = "hls")]
        hls_dir: Option<PathBuf>,
        /// With --hls/--hls-dir: do not upload FILE itself as the main file (the video is the
        /// ladder only).
        #[arg(long)]
        no_original: bool,
        #[command(flatten)]
        ladder: LadderArgs,
        /// Encrypt the video end to end (the canister never sees the plaintext); makes a
        /// public video private, since a public video's key goes only to its owner and uploaders.
        #[arg(long)]
        encrypt: bool,
        /// With --encrypt: the vetKD master key the video key is derived under (key_1,
        /// test_key_1 or dfx_test_key; default key_1, or the resumed upload's).
        #[arg(long, value_name = "NAME", requires = "encrypt", value_parser = parse_key_name)]
        key_name: Option<String>,
        /// Continue the upload into this video canister.
        #[arg(long, value_name = "ID")]
        resume: Option<String>,
        /// Test hook: stop after this many chunks were stored (an interrupted upload).
        #[arg(long, hide = true)]
        stop_after_chunks: Option<u32>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Download a video's bytes, each chunk checked against the certified file digest.
    ///
    /// An encrypted video is decrypted with this identity's key (the owner, an uploader, a
    /// viewer on the allowlist or a pass holder), each chunk authenticated; anyone else is told
    /// why not and nothing is written. --raw saves the stored ciphertext instead.
    Get {
        /// Video canister id.
        id: String,
        /// Output file (default: standard output).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// A named file instead of the main file (e.g. /hls/master.m3u8), checked against its
        /// chunk digests and the file digest `files` lists.
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
        /// An encrypted video's stored bytes (the ciphertext, verified by its digests) instead of
        /// the decrypted video; needs no key.
        #[arg(long)]
        raw: bool,
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
    /// Hand a video (canister control and app-level ownership) to another principal, then check
    /// the controllers in the IC's certified state (printed with the module hash).
    Transfer {
        /// Video canister id.
        id: String,
        /// Principal of the new owner.
        new_owner: String,
        /// A controller to keep besides the new owner and the video itself (repeatable), e.g.
        /// the spawn canister. Without --keep or --keep-none the video keeps the canister that
        /// installed it, as its stored state names it: name the controllers when buying.
        #[arg(long = "keep", value_name = "PRINCIPAL")]
        keep: Vec<String>,
        /// Keep no controller but the new owner and the video itself.
        #[arg(long, conflicts_with = "keep")]
        keep_none: bool,
        /// Offer the video instead (two-step transfer): nothing changes until the new owner runs
        /// `canvid accept ID` within 7 days, so a mistyped principal orphans nothing.
        #[arg(long)]
        offer: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Accept a video offered to this identity (`canvid transfer --offer`); verifies the certified
    /// controllers like `transfer`. With --cancel, the owner withdraws their offer instead.
    Accept {
        /// Video canister id.
        id: String,
        /// Withdraw the pending offer (owner or operator) instead of accepting it.
        #[arg(long)]
        cancel: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// The videos as an ICRC-7 NFT collection (the index canister): list, show, approve,
    /// transfer, transfer-from, history (docs/nft.md).
    Nft {
        #[command(subcommand)]
        command: crate::nft::NftCommand,
    },
    /// Who may watch a video: public, private (allowlist) or paid (passes sold over an ICRC-2
    /// ledger); viewers, receipts, playback tokens (docs/access.md). The same rules give out the
    /// key of an encrypted video (`upload --encrypt`), except that a public one's key goes only
    /// to its owner and uploaders.
    Access {
        #[command(subcommand)]
        command: crate::access::AccessCommand,
    },
    /// Buy a pass to a paid video: approve the video canister on the offer's ledger for price +
    /// fee, then buy_access (a pending payment is retried; charged at most once).
    Buy(crate::access::BuyArgs),
    /// HLS ladders: `canvid hls prepare SOURCE DIR` transcodes a video into the tree that
    /// `canvid upload --hls-dir DIR` (or the SDK's folder upload) stores (docs/streaming.md).
    Hls {
        #[command(subcommand)]
        command: HlsCommand,
    },
    /// Show a video's metadata and its canister's storage and cycles.
    Info {
        /// Video canister id.
        id: String,
        #[command(flatten)]
        net: NetArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum HlsCommand {
    /// Transcode SOURCE into an HLS ladder under OUT_DIR: hls/master.m3u8, hls/<rung>/
    /// (index.m3u8, init.mp4, seg-NNNNN.m4s), hls/subs/<lang>.m3u8 and subs/<lang>.vtt for the
    /// source's text subtitles and --subtitles files. H.264 + AAC in fMP4, rungs 1080p..240p
    /// not above the source, keyframe-aligned segments, every file at most 2,000,000 bytes.
    Prepare {
        source: PathBuf,
        out_dir: PathBuf,
        #[command(flatten)]
        ladder: LadderArgs,
    },
}

/// How a ladder is made (`hls prepare`, `upload --hls`).
#[derive(Debug, Clone, Args)]
pub struct LadderArgs {
    /// An external subtitle file, LANG=PATH with a .vtt or .srt file (repeatable), e.g.
    /// en=movie.en.srt.
    #[arg(long = "subtitles", value_name = "LANG=PATH")]
    pub subtitles: Vec<String>,
    /// Also make a thumbnail sprite (thumbs/sprite.jpg) and its WebVTT track (thumbs/thumbs.vtt).
    #[arg(long)]
    pub thumbnails: bool,
    /// x264 preset (ultrafast .. veryslow): slower is smaller at the same quality.
    #[arg(long, value_name = "PRESET", default_value = "veryfast")]
    pub preset: String,
    /// Segment duration in seconds (1..=6) instead of the one computed from the bitrate caps;
    /// the 2,000,000-byte check still applies.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..=6))]
    pub segment_seconds: Option<u32>,
}

impl LadderArgs {
    fn is_default(&self) -> bool {
        self.subtitles.is_empty()
            && !self.thumbnails
            && self.preset == "veryfast"
            && self.segment_seconds.is_none()
    }

    fn options(&self) -> Result<crate::hls::PrepareOptions> {
        let subtitles = self
            .subtitles
            .iter()
            .map(|s| crate::hls::parse_subtitle_arg(s))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for (_, path) in &subtitles {
            check_readable_file(path)?;
        }
        Ok(crate::hls::PrepareOptions {
            subtitles,
            preset: Some(self.preset.clone()),
            segment_seconds: self.segment_seconds,
            thumbnails: self.thumbnails,
            max_file_bytes: None,
        })
    }
}

/// Prepares SOURCE into OUT (progress lines on stderr) and prints the tree's summary.
fn prepare_ladder(source: &Path, out: &Path, ladder: &LadderArgs) -> Result<crate::hls::Prepared> {
    check_readable_file(source)?;
    let opts = ladder.options()?;
    std::fs::create_dir_all(out)
        .map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
    let started = std::time::Instant::now();
    let prepared = crate::hls::prepare(source, out, &opts, &|line| eprintln!("  {line}"))?;
    let bytes: u64 = prepared.files.iter().map(|f| f.size).sum();
    let largest = prepared.files.iter().map(|f| f.size).max().unwrap_or(0);
    eprintln!(
        "prepared {} file(s), {} (largest {}), {} s segments, in {:.1} s",
        prepared.files.len(),
        crate::fmt::bytes(bytes),
        crate::fmt::bytes(largest),
        prepared.segment_seconds,
        started.elapsed().as_secs_f64()
    );
    for v in &prepared.variants {
        eprintln!(
            "  {:6} {}x{}  peak {} kbit/s  average {} kbit/s  {}",
            v.name,
            v.width,
            v.height,
            v.peak_bps / 1000,
            v.average_bps / 1000,
            v.codecs
        );
    }
    Ok(prepared)
}

/// Default state directory of `serve` and of the other commands.
pub const DEFAULT_STATE: &str = ".canvid";

#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    /// Network: embedded (a running `canvid serve --state DIR`), local (127.0.0.1:4943), ic
    /// (icp-api.io), or a replica URL.
    #[arg(long, default_value = "embedded", value_parser = parse_network)]
    pub network: Network,
    /// PEM private key (Ed25519 or secp256k1, as dfx writes) to call with. Default:
    /// DIR/identity.pem, created on first use.
    #[arg(long, value_name = "PEM")]
    pub identity: Option<PathBuf>,
    /// State directory: serve.json and canister_ids.json of `canvid serve`, the default
    /// identity, unfinished uploads.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE)]
    pub state: PathBuf,
    /// Index canister id (default: from DIR/canister_ids.json).
    #[arg(long, value_name = "ID", value_parser = parse_principal)]
    pub index: Option<Principal>,
    /// Spawn canister id (default: from DIR/canister_ids.json).
    #[arg(long, value_name = "ID", value_parser = parse_principal)]
    pub spawn: Option<Principal>,
}

fn parse_key_name(s: &str) -> std::result::Result<String, String> {
    use canvid_types::encryption::KEY_NAMES;
    if KEY_NAMES.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!("'{s}' is not one of {}", KEY_NAMES.join(", ")))
    }
}

fn parse_principal(s: &str) -> std::result::Result<Principal, String> {
    Principal::from_text(s).map_err(|e| e.to_string())
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
            admin,
            save_interval,
            no_wal,
            icrc_ledger,
            fund,
        } => crate::serve::run(crate::serve::ServeOptions {
            icrc_ledger,
            fund: fund
                .iter()
                .map(|f| crate::test_ledger::parse_fund(f))
                .collect::<crate::error::Result<Vec<_>>>()?,
            port,
            state,
            upload,
            admins: admin
                .iter()
                .map(|a| {
                    candid::Principal::from_text(a).map_err(|e| {
                        crate::error::Error::InvalidPrincipal {
                            what: "--admin",
                            text: a.clone(),
                            reason: e.to_string(),
                        }
                    })
                })
                .collect::<crate::error::Result<Vec<_>>>()?,
            save_interval: std::time::Duration::from_secs(save_interval.max(1)),
            wal: !no_wal,
        }),
        Command::Upload {
            file,
            title,
            hls,
            hls_dir,
            no_original,
            ladder,
            encrypt,
            key_name,
            resume,
            stop_after_chunks,
            net,
        } => {
            if !hls && !ladder.is_default() {
                return Err(Error::Input(
                    "--subtitles, --thumbnails, --preset and --segment-seconds make a ladder: \
                     they need --hls (a --hls-dir tree is uploaded as it is)"
                        .into(),
                ));
            }
            if encrypt && (hls || hls_dir.is_some()) {
                return Err(Error::NotSupported(
                    "--encrypt with --hls or --hls-dir: an HLS ladder is named files, and only \
                     the main file can be encrypted so far (upload with --encrypt alone)"
                        .into(),
                ));
            }
            if hls || hls_dir.is_some() {
                return upload_hls(
                    file,
                    title,
                    hls_dir,
                    no_original,
                    &ladder,
                    resume,
                    stop_after_chunks,
                    &net,
                );
            }
            if no_original {
                return Err(Error::Input(
                    "--no-original only applies with --hls or --hls-dir".into(),
                ));
            }
            let Some(file) = file else {
                return Err(Error::Input("name the video FILE to upload".into()));
            };
            check_readable_file(&file)?;
            let resume = resume.map(|r| principal("video id", &r)).transpose()?;
            check_identity(&net)?;
            with_client(&net, |c| async move {
                crate::commands::upload(
                    &c,
                    crate::commands::UploadArgs {
                        file,
                        title,
                        resume,
                        stop_after_chunks,
                        encrypt: encrypt.then_some(crate::commands::EncryptArgs { key_name }),
                    },
                )
                .await
            })
        }
        Command::Get {
            id,
            output,
            path,
            raw,
            net,
        } => {
            let id = principal("video id", &id)?;
            if let Some(out) = &output {
                check_output(out)?;
            }
            if let Some(p) = &path {
                canvid_types::files::validate_path(p)
                    .map_err(|e| Error::Input(format!("--path: {e}")))?;
            }
            check_identity(&net)?;
            with_client(&net, |c| async move {
                match path {
                    Some(p) => crate::hls_upload::get_named(&c, id, &p, output).await,
                    None => crate::commands::get(&c, id, output, raw).await,
                }
            })
        }
        Command::Ls {
            creator,
            owner,
            net,
        } => {
            let creator = creator.map(|c| principal("creator", &c)).transpose()?;
            let owner = owner.map(|o| principal("owner", &o)).transpose()?;
            check_identity(&net)?;
            with_client(&net, |c| async move {
                crate::commands::ls(&c, creator, owner).await
            })
        }
        Command::Transfer {
            id,
            new_owner,
            keep,
            keep_none,
            offer,
            net,
        } => {
            let id = principal("video id", &id)?;
            let new_owner = principal("new owner", &new_owner)?;
            let keep = if keep_none {
                Some(Vec::new())
            } else if keep.is_empty() {
                None
            } else {
                Some(
                    keep.iter()
                        .map(|k| principal("controller to keep", k))
                        .collect::<Result<Vec<_>>>()?,
                )
            };
            check_identity(&net)?;
            with_client(&net, |c| async move {
                if offer {
                    crate::commands::offer(&c, id, new_owner, keep).await
                } else {
                    crate::commands::transfer(&c, id, new_owner, keep).await
                }
            })
        }
        Command::Accept { id, cancel, net } => {
            let id = principal("video id", &id)?;
            check_identity(&net)?;
            with_client(&net, |c| async move {
                if cancel {
                    crate::commands::cancel_offer(&c, id).await
                } else {
                    crate::commands::accept(&c, id).await
                }
            })
        }
        Command::Nft { command } => {
            check_identity(command.net())?;
            crate::nft::run(command)
        }
        Command::Access { command } => {
            check_identity(command.net())?;
            crate::access::run(command)
        }
        Command::Buy(args) => {
            check_identity(&args.net)?;
            crate::access::run_buy(args)
        }
        Command::Hls {
            command:
                HlsCommand::Prepare {
                    source,
                    out_dir,
                    ladder,
                },
        } => {
            prepare_ladder(&source, &out_dir, &ladder)?;
            println!("{}", out_dir.join("hls").join("master.m3u8").display());
            Ok(())
        }
        Command::Info { id, net } => {
            let id = principal("video id", &id)?;
            check_identity(&net)?;
            with_client(&net, |c| async move { crate::commands::info(&c, id).await })
        }
    }
}

/// `canvid upload --hls | --hls-dir`: prepare (or read) the tree, then upload it with the
/// original into one new video canister.
#[allow(clippy::too_many_arguments)]
fn upload_hls(
    file: Option<PathBuf>,
    title: Option<String>,
    hls_dir: Option<PathBuf>,
    no_original: bool,
    ladder: &LadderArgs,
    resume: Option<String>,
    stop_after_chunks: Option<u32>,
    net: &NetArgs,
) -> Result<()> {
    if let Some(f) = &file {
        check_readable_file(f)?;
    }
    let original = if no_original { None } else { file.clone() };
    if original.is_none() && !no_original {
        return Err(Error::Input(
            "name the original video FILE, or pass --no-original to upload the ladder only".into(),
        ));
    }
    let resume = resume.map(|r| principal("video id", &r)).transpose()?;
    check_identity(net)?;
    // A ladder made here is kept in the state directory until its upload is finished, so that
    // a re-run resumes with the same bytes: x264 under a VBV cap with frame threads does not
    // encode the same source to the same bytes twice, and the canister refuses a file declared
    // again with other bytes.
    let mut work_dir = None;
    let files = match &hls_dir {
        Some(dir) => crate::hls::scan(dir)?,
        None => {
            let source = file
                .as_deref()
                .ok_or_else(|| Error::Input("--hls needs the source video FILE".into()))?;
            let dir = ladder_work_dir(&net.state, source, ladder)?;
            let done = dir.join(PREPARED_MARKER);
            let files = if done.is_file() {
                eprintln!(
                    "reusing the ladder prepared in {} (an unfinished upload)",
                    dir.display()
                );
                crate::hls::scan(&dir)?
            } else {
                let prepared = prepare_ladder(source, &dir, ladder)?;
                std::fs::write(&done, b"")
                    .map_err(|e| Error::io(format!("writing {}", done.display()), e))?;
                prepared.files
            };
            work_dir = Some(dir);
            files
        }
    };
    let title = title.unwrap_or_else(|| {
        file.as_ref()
            .or(hls_dir.as_ref())
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    with_client(net, |c| async move {
        crate::hls_upload::upload_hls(
            &c,
            crate::hls_upload::HlsUploadArgs {
                original,
                files,
                title,
                resume,
                stop_after_chunks,
            },
        )
        .await
    })?;
    if let Some(dir) = work_dir {
        // Uploaded and verified: the ladder is in the canister now.
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// Marks a ladder work directory whose `prepare` completed.
const PREPARED_MARKER: &str = ".prepared";

/// `DIR/hls-work/<key>`: where `upload --hls` prepares the ladder of `source`, keyed by the
/// source (path, size, modification time) and the ladder options, so the same upload finds it
/// again and a changed source or option does not.
fn ladder_work_dir(state: &Path, source: &Path, ladder: &LadderArgs) -> Result<PathBuf> {
    let meta = std::fs::metadata(source).map_err(|e| Error::from_open(source, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let canonical = std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
    let key = crate::upload::sha256(
        format!(
            "{}\0{}\0{mtime}\0{:?}",
            canonical.display(),
            meta.len(),
            ladder
        )
        .as_bytes(),
    );
    let dir = state.join("hls-work").join(hex::encode(&key[..12]));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

/// Runs `f` with an agent for `net` on a tokio runtime (the agent is async).
pub(crate) fn with_client<F, Fut>(net: &NetArgs, f: F) -> Result<()>
where
    F: FnOnce(std::sync::Arc<crate::network::Client>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    rt.block_on(async {
        let client = crate::network::Client::connect(net).await?;
        f(std::sync::Arc::new(client)).await
    })
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
