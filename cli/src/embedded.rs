//! The embedded replica as the CLI uses it: locating the canister wasm, deploying the index and
//! spawn canisters, typed candid calls that report their cost, and a [`VideoClient`] for the
//! upload pipeline.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use canvid_replica::{CallStats, CanisterSettings, Replica};
use canvid_types::spawn::QuotaArgs;
use canvid_types::video::{ChunkReceipt, ChunkUpload, MissingArgs, MissingChunks, VideoMetadata};
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

use crate::error::{Error, Result};
pub use crate::network::Kind;
use crate::upload::{Digest, UploadPlan, VideoClient};

/// Cycles the demo deployment gives the spawn canister's pool (it pays for each video canister:
/// creation fee + base + per-byte reserve) and the index (it pays for its own execution).
pub const SPAWN_CYCLES: u128 = 1_000_000_000_000_000; // 1,000 T
pub const INDEX_CYCLES: u128 = 10_000_000_000_000; // 10 T

/// The compiled canisters the CLI deploys.
pub struct Wasms {
    pub dir: PathBuf,
    pub video: Vec<u8>,
    pub spawn: Vec<u8>,
    pub index: Vec<u8>,
}

/// Where the canister wasm lives: `$CANVID_WASM_DIR`, else `target/canisters` in the nearest
/// ancestor of the current directory that has one, else in the workspace this binary was built
/// from ([`canvid_devkit::wasm::wasm_dir_near`]).
pub fn wasm_dir() -> PathBuf {
    match std::env::current_dir() {
        Ok(cwd) => canvid_devkit::wasm::wasm_dir_near(&cwd),
        Err(_) => canvid_devkit::wasm_dir(),
    }
}

impl Wasms {
    pub fn load() -> Result<Self> {
        Self::load_from(&wasm_dir())
    }

    pub fn load_from(dir: &Path) -> Result<Self> {
        let read = |name: &str| -> Result<Vec<u8>> {
            canvid_devkit::read_wasm(dir, name).map_err(|e| {
                if e.is_missing() {
                    Error::WasmMissing { path: e.path }
                } else {
                    Error::io(format!("reading {}", e.path.display()), e.source)
                }
            })
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            video: read("video")?,
            spawn: read("spawn")?,
            index: read("index")?,
        })
    }
}

/// A deterministic demo principal (self-authenticating form, like a real key's) for `name`.
pub fn demo_identity(name: &str) -> Principal {
    Principal::self_authenticating(format!("canvid demo identity {name}"))
}

/// Cost of what the CLI did, accumulated over calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub calls: u64,
    pub instructions: u64,
    pub cycles: u128,
}

impl Cost {
    pub fn add(&mut self, s: CallStats) {
        self.calls += 1;
        self.instructions += s.instructions;
        self.cycles += s.cycles_charged;
    }
    pub fn of(s: CallStats) -> Self {
        let mut c = Cost::default();
        c.add(s);
        c
    }
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let calls = if self.calls == 1 {
            String::new()
        } else {
            format!("{} calls, ", self.calls)
        };
        write!(
            f,
            "{calls}{} instructions (embedded), {} cycles",
            crate::fmt::count(self.instructions as u128),
            crate::fmt::count(self.cycles)
        )
    }
}

/// Candid-encodes `args` (a tuple).
pub fn encode(args: impl ArgumentEncoder, canister: Principal, method: &str) -> Result<Vec<u8>> {
    candid::encode_args(args).map_err(|e| Error::BadReply {
        canister,
        method: method.into(),
        reason: format!("cannot encode the argument: {e}"),
    })
}

/// One typed call on the embedded replica (update or query, see [`Kind`]); returns the decoded
/// single reply and its cost.
pub fn call<R>(
    replica: &Replica,
    kind: Kind,
    canister: Principal,
    sender: Principal,
    method: &str,
    args: impl ArgumentEncoder,
) -> Result<(R, CallStats)>
where
    R: CandidType + DeserializeOwned,
{
    let arg = encode(args, canister, method)?;
    let (res, stats) = match kind {
        Kind::Update => replica.update_call_with_stats(canister, sender, method, arg),
        Kind::Query => replica.query_call_with_stats(canister, sender, method, arg),
    };
    let bytes = res.map_err(|reject| Error::Rejected {
        canister,
        method: method.into(),
        reject: Box::new(reject),
    })?;
    let (r,): (R,) = candid::decode_args(&bytes).map_err(|e| Error::BadReply {
        canister,
        method: method.into(),
        reason: e.to_string(),
    })?;
    Ok((r, stats))
}

/// [`call`] for methods returning `Result<T, canvid_types::Error>`: a canister error becomes
/// [`Error::Refused`] (or [`Error::NotAuthorized`]).
pub fn call_ok<T>(
    replica: &Replica,
    kind: Kind,
    canister: Principal,
    sender: Principal,
    method: &str,
    args: impl ArgumentEncoder,
) -> Result<(T, CallStats)>
where
    T: CandidType + DeserializeOwned,
{
    let (r, stats): (std::result::Result<T, canvid_types::Error>, _) =
        call(replica, kind, canister, sender, method, args)?;
    r.map(|v| (v, stats))
        .map_err(|error| crate::network::refused(canister, method, error))
}

/// An ingress update call (see [`call`]).
pub fn update<R: CandidType + DeserializeOwned>(
    replica: &Replica,
    canister: Principal,
    sender: Principal,
    method: &str,
    args: impl ArgumentEncoder,
) -> Result<(R, CallStats)> {
    call(replica, Kind::Update, canister, sender, method, args)
}

/// An update returning `Result<T, canvid_types::Error>` (see [`call_ok`]).
pub fn update_ok<T: CandidType + DeserializeOwned>(
    replica: &Replica,
    canister: Principal,
    sender: Principal,
    method: &str,
    args: impl ArgumentEncoder,
) -> Result<(T, CallStats)> {
    call_ok(replica, Kind::Update, canister, sender, method, args)
}

/// A query call, free on the IC (see [`call`]).
pub fn query<R: CandidType + DeserializeOwned>(
    replica: &Replica,
    canister: Principal,
    sender: Principal,
    method: &str,
    args: impl ArgumentEncoder,
) -> Result<(R, CallStats)> {
    call(replica, Kind::Query, canister, sender, method, args)
}

/// A query returning `Result<T, canvid_types::Error>` (see [`call_ok`]).
pub fn query_ok<T: CandidType + DeserializeOwned>(
    replica: &Replica,
    canister: Principal,
    sender: Principal,
    method: &str,
    args: impl ArgumentEncoder,
) -> Result<(T, CallStats)> {
    call_ok(replica, Kind::Query, canister, sender, method, args)
}

/// The next `missing_chunks` page start, refusing a cursor that does not advance (a canister
/// answering so would make the client loop forever).
pub fn next_missing_page(
    video: Principal,
    start: Option<u32>,
    next: Option<u32>,
) -> Result<Option<u32>> {
    match next {
        Some(n) if start.is_none_or(|s| n > s) => Ok(Some(n)),
        Some(n) => Err(Error::BadReply {
            canister: video,
            method: "missing_chunks".into(),
            reason: format!("page cursor did not advance ({n})"),
        }),
        None => Ok(None),
    }
}

/// The digest of a video `finish_upload` made Ready.
pub fn ready_digest(video: Principal, meta: &VideoMetadata) -> Result<Digest> {
    let digest = meta.digest.as_ref().ok_or_else(|| Error::BadReply {
        canister: video,
        method: "finish_upload".into(),
        reason: "the video is not Ready after finish_upload".into(),
    })?;
    <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| Error::BadReply {
        canister: video,
        method: "finish_upload".into(),
        reason: format!("digest has {} bytes, expected 32", digest.len()),
    })
}

/// The index and spawn canisters deployed on an embedded replica.
pub struct Deployment {
    pub replica: Arc<Replica>,
    /// Controller of both canisters and admin of both.
    pub admin: Principal,
    pub index: Principal,
    pub spawn: Principal,
    /// Cost of installing each canister.
    pub index_install: CallStats,
    pub spawn_install: CallStats,
    /// Size of the (gzip-compressed) video wasm handed to the spawn canister.
    pub video_wasm_size: usize,
}

/// Deploys index and spawn ([`canvid_devkit::deploy`]): the index's registrar is the spawn
/// canister; the spawn canister holds the (gzipped) video wasm, registers videos with the index,
/// and funds creations from its pool with a default quota so any caller can create videos.
pub fn deploy(replica: Arc<Replica>, wasms: &Wasms, admin: Principal) -> Result<Deployment> {
    let d = canvid_devkit::deploy::deploy_index_and_spawn(
        &OnReplica(&replica),
        canvid_devkit::deploy::IndexAndSpawn {
            admin,
            index_cycles: INDEX_CYCLES,
            spawn_cycles: SPAWN_CYCLES,
            default_quota: Some(QuotaArgs {
                max_videos: 1_000,
                max_cycles: SPAWN_CYCLES / 2,
            }),
            index_wasm: wasms.index.clone(),
            spawn_wasm: wasms.spawn.clone(),
            video_wasm: wasms.video.clone(),
        },
    )
    .map_err(|e| Error::Deploy(e.to_string()))?;
    Ok(Deployment {
        replica,
        admin,
        index: d.index,
        spawn: d.spawn,
        index_install: d.index_install,
        spawn_install: d.spawn_install,
        video_wasm_size: d.video_wasm_size,
    })
}

/// The deploy recipe's target: canisters controlled by the admin, installs that report their cost.
struct OnReplica<'a>(&'a Replica);

impl canvid_devkit::deploy::Target for OnReplica<'_> {
    type Installed = CallStats;
    type Error = String;

    fn create_canister(&self, admin: Principal, cycles: u128) -> Principal {
        let id = self.0.create_canister_with_settings(
            Some(admin),
            Some(CanisterSettings {
                controllers: Some(vec![admin]),
                ..CanisterSettings::default()
            }),
        );
        self.0.add_cycles(id, cycles);
        id
    }

    fn install(
        &self,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        admin: Principal,
    ) -> std::result::Result<CallStats, String> {
        self.0
            .install_code(
                canvid_replica::InstallMode::Install,
                canister,
                wasm,
                arg,
                Some(admin),
            )
            .map_err(|r| crate::error::one_line(&r.reject_message))
    }
}

/// Chunk digests go into `begin_upload` (so each `put_chunk` is checked on arrival) while the
/// declaration fits comfortably in one 2 MiB ingress message: 33 candid bytes per digest.
/// Larger files are checked by the file digest at `finish_upload` only.
pub const MAX_DECLARED_DIGESTS: usize = 45_000;

/// The upload pipeline's client for a video canister on the embedded replica.
///
/// Synchronous underneath: each call runs to completion inside the `async fn`, so the pipeline
/// runs sequentially whatever its concurrency (the replica executes one message at a time).
pub struct EmbeddedVideo<'a> {
    pub replica: &'a Replica,
    pub video: Principal,
    pub sender: Principal,
    pub mime_type: String,
    /// Cost of every call made through this client.
    pub cost: Mutex<Cost>,
}

impl<'a> EmbeddedVideo<'a> {
    pub fn new(
        replica: &'a Replica,
        video: Principal,
        sender: Principal,
        mime_type: impl Into<String>,
    ) -> Self {
        Self {
            replica,
            video,
            sender,
            mime_type: mime_type.into(),
            cost: Mutex::new(Cost::default()),
        }
    }

    fn record(&self, s: CallStats) {
        self.cost.lock().unwrap_or_else(|p| p.into_inner()).add(s);
    }

    pub fn total_cost(&self) -> Cost {
        *self.cost.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn upd<T: CandidType + DeserializeOwned>(
        &self,
        method: &str,
        args: impl ArgumentEncoder,
    ) -> Result<T> {
        let (v, s) = update_ok(self.replica, self.video, self.sender, method, args)?;
        self.record(s);
        Ok(v)
    }
}

impl VideoClient for EmbeddedVideo<'_> {
    type Error = Error;

    async fn begin(&self, plan: &UploadPlan) -> Result<()> {
        let spec = crate::network::upload_spec(plan, &self.mime_type)?;
        let _: VideoMetadata = self.upd("begin_upload", (spec,))?;
        Ok(())
    }

    async fn put(&self, index: u32, bytes: Vec<u8>) -> Result<()> {
        let _: ChunkReceipt = self.upd(
            "put_chunk",
            (ChunkUpload {
                path: None,
                index,
                data: ByteBuf::from(bytes),
            },),
        )?;
        Ok(())
    }

    async fn missing(&self) -> Result<Vec<u32>> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let (page, _): (MissingChunks, _) = query_ok(
                self.replica,
                self.video,
                self.sender,
                "missing_chunks",
                (MissingArgs {
                    path: None,
                    start,
                    limit: None,
                },),
            )?;
            all.extend(page.missing);
            match next_missing_page(self.video, start, page.next)? {
                Some(next) => start = Some(next),
                None => return Ok(all),
            }
        }
    }

    async fn finish(&self) -> Result<Digest> {
        let meta: VideoMetadata = self.upd("finish_upload", ())?;
        ready_digest(self.video, &meta)
    }

    fn is_transient(&self, error: &Error) -> bool {
        crate::network::is_transient(error)
    }
}
