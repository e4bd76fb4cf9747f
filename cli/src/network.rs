//! Talking to a network through `ic-agent`: which URL and root key (`--network`), which identity
//! (`--identity`, else one the CLI creates once in the state directory), typed candid calls
//! with errors mapped to [`Error`], and the upload pipeline's [`VideoClient`] over the agent.
//!
//! ## Networks
//! * `embedded` (default): a running `canvid serve --state DIR`. Its `DIR/serve.json` gives the
//!   URL and the root key (hex DER), `DIR/canister_ids.json` the index and spawn ids. No
//!   `fetch_root_key` is needed: the key comes from the file the server wrote.
//! * `local`: `http://127.0.0.1:4943` (dfx / icp-cli); the root key is fetched (a local
//!   replica's key is not the IC's).
//! * `ic`: `https://icp-api.io` with the IC's built-in root key (never fetched).
//! * a URL: like `local` at that URL.
//!
//! For networks other than `embedded`, canister ids come from `--index`/`--spawn` or from
//! `DIR/canister_ids.json` under the network's name (`local`, `ic`, or the URL).

use std::path::{Path, PathBuf};
use std::time::Duration;

use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::{CandidType, Principal};
use canvid_types::video::{
    ChunkReceipt, ChunkUpload, MissingArgs, MissingChunks, UploadSpec, VideoMetadata,
};
use ic_agent::identity::{BasicIdentity, Secp256k1Identity};
use ic_agent::{Agent, AgentError, Identity};
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

use crate::cli::{NetArgs, Network};
use crate::error::{Error, Result};
use crate::upload::{Digest, UploadPlan, VideoClient};

pub const LOCAL_URL: &str = "http://127.0.0.1:4943";
pub const IC_URL: &str = "https://icp-api.io";
/// The identity the CLI creates in the state directory when no `--identity` is given.
pub const DEFAULT_IDENTITY: &str = "identity.pem";

/// Where and how to reach a network.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    /// Name under which canister ids are looked up in `canister_ids.json`.
    pub network_name: String,
    /// Root key to trust: `Some` for embedded (from serve.json), `None` = fetch it (local/URL)
    /// or use the IC's built-in key (`ic`).
    pub root_key: Option<Vec<u8>>,
    pub fetch_root_key: bool,
    pub state_dir: PathBuf,
    pub index: Option<Principal>,
    pub spawn: Option<Principal>,
}

/// Reads `DIR/canister_ids.json` (dfx's shape) for `network`: (index, spawn).
pub fn read_canister_ids(
    dir: &Path,
    network: &str,
) -> Result<(Option<Principal>, Option<Principal>)> {
    let path = dir.join("canister_ids.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, None)),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::State(format!("{} is not valid JSON: {e}", path.display())))?;
    let id = |name: &str| -> Result<Option<Principal>> {
        match v[name][network].as_str() {
            None => Ok(None),
            Some(t) => Principal::from_text(t)
                .map(Some)
                .map_err(|e| Error::State(format!("{}: bad {name} id '{t}': {e}", path.display()))),
        }
    };
    Ok((id("index")?, id("spawn")?))
}

/// The contents of `DIR/serve.json`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ServeInfo {
    pub url: String,
    pub pid: u32,
    pub root_key: String,
    /// The replica's subnet (the self-authenticating principal of the root key): what
    /// `icp canister create --subnet` names (docs/serve.md). Absent in files of older versions.
    #[serde(default)]
    pub subnet_id: String,
}

pub fn serve_json(dir: &Path) -> PathBuf {
    dir.join("serve.json")
}

/// Resolves `--network` and `--state` into a [`Target`].
pub fn resolve(net: &NetArgs) -> Result<Target> {
    let dir = net.state.clone();
    let (url, name, root_key, fetch) = match &net.network {
        Network::Embedded => {
            let path = serve_json(&dir);
            let text =
                std::fs::read_to_string(&path).map_err(|_| Error::NotServing(dir.clone()))?;
            let info: ServeInfo = serde_json::from_str(&text)
                .map_err(|e| Error::State(format!("{} is not valid: {e}", path.display())))?;
            let key = hex::decode(&info.root_key)
                .map_err(|e| Error::State(format!("{}: bad root_key: {e}", path.display())))?;
            (info.url, "embedded".to_string(), Some(key), false)
        }
        Network::Local => (LOCAL_URL.to_string(), "local".to_string(), None, true),
        Network::Ic => (IC_URL.to_string(), "ic".to_string(), None, false),
        Network::Url(u) => (u.clone(), u.clone(), None, true),
    };
    let (index, spawn) = read_canister_ids(&dir, &name)?;
    Ok(Target {
        url,
        network_name: name,
        root_key,
        fetch_root_key: fetch,
        state_dir: dir,
        index: net.index.or(index),
        spawn: net.spawn.or(spawn),
    })
}

// ------------------------------------------------------------------ identity

/// Loads a PEM identity as dfx writes it: Ed25519 (PKCS#8) or secp256k1 (SEC1 `EC PRIVATE KEY`).
pub fn load_identity(path: &Path) -> Result<Box<dyn Identity>> {
    let bad = |reason: String| Error::Identity {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad("file not found".into()))
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    let text = String::from_utf8(bytes).map_err(|_| bad("it is not a text (PEM) file".into()))?;
    crate::identity::check_pem(&text).map_err(bad)?;
    if let Ok(id) = BasicIdentity::from_pem(text.as_bytes()) {
        return Ok(Box::new(id));
    }
    match Secp256k1Identity::from_pem(text.as_bytes()) {
        Ok(id) => Ok(Box::new(id)),
        Err(e) => Err(bad(format!(
            "neither an Ed25519 nor a secp256k1 private key ({e})"
        ))),
    }
}

/// The identity in effect: `--identity`, else `DIR/identity.pem` (created on first use, and
/// said so on stderr).
pub fn identity(net: &NetArgs) -> Result<Box<dyn Identity>> {
    if let Some(p) = &net.identity {
        return load_identity(p);
    }
    let path = net.state.join(DEFAULT_IDENTITY);
    if !path.exists() {
        std::fs::create_dir_all(&net.state)
            .map_err(|e| Error::io(format!("creating {}", net.state.display()), e))?;
        let pem = crate::identity::new_ed25519_pem()
            .map_err(|e| Error::Agent(format!("no randomness for a new key: {e}")))?;
        crate::identity::write_private(&path, &pem)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        let id = load_identity(&path)?;
        let who = id
            .sender()
            .map(|p| p.to_text())
            .unwrap_or_else(|_| "?".into());
        eprintln!(
            "created identity {} (principal {who}); pass --identity PEM to use another",
            path.display()
        );
        return Ok(id);
    }
    load_identity(&path)
}

// ------------------------------------------------------------------ client

/// An agent bound to a [`Target`].
pub struct Client {
    pub agent: Agent,
    pub target: Target,
    pub me: Principal,
}

impl Client {
    pub async fn connect(net: &NetArgs) -> Result<Client> {
        let target = resolve(net)?;
        let identity = identity(net)?;
        let me = identity
            .sender()
            .map_err(|e| Error::Agent(format!("identity has no principal: {e}")))?;
        let agent = Agent::builder()
            .with_url(target.url.clone())
            .with_boxed_identity(identity)
            .with_ingress_expiry(Duration::from_secs(240))
            .build()
            .map_err(|e| Error::Agent(e.to_string()))?;
        if let Some(key) = &target.root_key {
            agent.set_root_key(key.clone());
        } else if target.fetch_root_key {
            agent
                .fetch_root_key()
                .await
                .map_err(|e| map_agent(&target, Principal::management_canister(), "status", e))?;
        }
        Ok(Client { agent, target, me })
    }

    pub fn index(&self) -> Result<Principal> {
        self.target.index.ok_or_else(|| self.missing_id("index"))
    }

    pub fn spawn(&self) -> Result<Principal> {
        self.target.spawn.ok_or_else(|| self.missing_id("spawn"))
    }

    fn missing_id(&self, name: &str) -> Error {
        Error::State(format!(
            "no {name} canister id for network {} in {}: pass --{name} ID",
            self.target.network_name,
            self.target.state_dir.join("canister_ids.json").display()
        ))
    }

    /// Raw update call.
    pub async fn update_raw(
        &self,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>> {
        self.agent
            .update(&canister, method)
            .with_arg(arg)
            .call_and_wait()
            .await
            .map_err(|e| map_agent(&self.target, canister, method, e))
    }

    /// Raw query call.
    pub async fn query_raw(
        &self,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>> {
        self.agent
            .query(&canister, method)
            .with_arg(arg)
            .call()
            .await
            .map_err(|e| map_agent(&self.target, canister, method, e))
    }

    /// A typed call (update or query) returning one value.
    pub async fn call<R>(
        &self,
        kind: Kind,
        canister: Principal,
        method: &str,
        args: impl ArgumentEncoder,
    ) -> Result<R>
    where
        R: CandidType + DeserializeOwned,
    {
        let arg = crate::embedded::encode(args, canister, method)?;
        let bytes = match kind {
            Kind::Update => self.update_raw(canister, method, arg).await?,
            Kind::Query => self.query_raw(canister, method, arg).await?,
        };
        let (r,): (R,) = decode(&bytes, canister, method)?;
        Ok(r)
    }

    /// [`Client::call`] for methods returning `Result<T, canvid_types::Error>`.
    pub async fn call_ok<T>(
        &self,
        kind: Kind,
        canister: Principal,
        method: &str,
        args: impl ArgumentEncoder,
    ) -> Result<T>
    where
        T: CandidType + DeserializeOwned,
    {
        let r: std::result::Result<T, canvid_types::Error> =
            self.call(kind, canister, method, args).await?;
        r.map_err(|error| refused(canister, method, error))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Update,
    Query,
}

fn decode<R: for<'a> ArgumentDecoder<'a>>(
    bytes: &[u8],
    canister: Principal,
    method: &str,
) -> Result<R> {
    candid::decode_args(bytes).map_err(|e| Error::BadReply {
        canister,
        method: method.into(),
        reason: e.to_string(),
    })
}

/// A canvid error from a canister; `NotAuthorized` gets its own message and exit code.
pub fn refused(canister: Principal, method: &str, error: canvid_types::Error) -> Error {
    match error {
        canvid_types::Error::NotAuthorized { caller, reason } => Error::NotAuthorized {
            canister,
            method: method.into(),
            detail: format!("caller {caller}: {reason}"),
        },
        error => Error::Refused {
            canister,
            method: method.into(),
            error: Box::new(error),
        },
    }
}

fn reject_code(code: ic_agent::agent::RejectCode) -> canvid_replica::RejectCode {
    use canvid_replica::RejectCode as R;
    use ic_agent::agent::RejectCode as A;
    match code {
        A::SysFatal => R::SysFatal,
        A::SysTransient => R::SysTransient,
        A::DestinationInvalid => R::DestinationInvalid,
        A::CanisterReject => R::CanisterReject,
        A::CanisterError => R::CanisterError,
    }
}

/// Maps an agent error to the CLI's: unreachable network, not authorized (IC0406 from
/// `inspect_message`, or IC0512 not a controller), other rejects, the rest.
pub fn map_agent(target: &Target, canister: Principal, method: &str, e: AgentError) -> Error {
    match e {
        AgentError::CertifiedReject { reject, .. }
        | AgentError::UncertifiedReject { reject, .. } => {
            let code = reject.error_code.clone().unwrap_or_default();
            if code == "IC0406" || code == "IC0512" {
                return Error::NotAuthorized {
                    canister,
                    method: method.into(),
                    detail: crate::error::one_line(&reject.reject_message),
                };
            }
            Error::Rejected {
                canister,
                method: method.into(),
                reject: Box::new(canvid_replica::RejectResponse {
                    reject_code: reject_code(reject.reject_code),
                    reject_message: reject.reject_message,
                    error_code: code,
                }),
            }
        }
        AgentError::TransportError(t) => Error::Unavailable {
            url: target.url.clone(),
            reason: crate::error::one_line(&t.to_string()),
            hint: unavailable_hint(target),
        },
        AgentError::TimeoutWaitingForResponse() => Error::Unavailable {
            url: target.url.clone(),
            reason: format!("{canister}.{method} timed out"),
            hint: unavailable_hint(target),
        },
        AgentError::HttpError(p) => Error::Agent(format!(
            "{canister}.{method}: HTTP {} from {}: {}",
            p.status,
            target.url,
            crate::error::one_line(&String::from_utf8_lossy(&p.content))
        )),
        other => Error::Agent(format!(
            "{canister}.{method}: {}",
            crate::error::one_line(&other.to_string())
        )),
    }
}

fn unavailable_hint(target: &Target) -> String {
    if target.network_name == "embedded" {
        format!(
            "is `canvid serve --state {}` still running? start it again",
            target.state_dir.display()
        )
    } else {
        "check the URL and your connection".into()
    }
}

/// Whether retrying may help: network trouble, a transient reject, a busy canister.
pub fn is_transient(error: &Error) -> bool {
    match error {
        Error::Unavailable { .. } => true,
        Error::Rejected { reject, .. } => {
            reject.reject_code == canvid_replica::RejectCode::SysTransient
        }
        Error::Refused { error, .. } => matches!(**error, canvid_types::Error::Busy { .. }),
        Error::Agent(m) => m.contains("HTTP 429") || m.contains("HTTP 5"),
        _ => false,
    }
}

// ------------------------------------------------------------------ upload client

/// The upload pipeline's client for a video canister, over the agent. Several `put`s run
/// concurrently (the pipeline's `buffer_unordered`), each an update call of its own.
pub struct AgentVideo<'a> {
    pub client: &'a Client,
    pub video: Principal,
    pub mime_type: String,
    /// Test hook (`--stop-after-chunks`): fail every put after this many succeeded.
    pub stop_after: Option<u32>,
    pub stored: std::sync::atomic::AtomicU32,
    /// Declared in `begin_upload`: the file is this encryption's ciphertext (`upload --encrypt`).
    pub encryption: Option<canvid_types::encryption::Encryption>,
}

impl<'a> AgentVideo<'a> {
    pub fn new(client: &'a Client, video: Principal, mime_type: impl Into<String>) -> Self {
        Self {
            client,
            video,
            mime_type: mime_type.into(),
            stop_after: None,
            stored: Default::default(),
            encryption: None,
        }
    }
}

impl VideoClient for AgentVideo<'_> {
    type Error = Error;

    async fn begin(&self, plan: &UploadPlan) -> Result<()> {
        let spec = UploadSpec {
            encryption: self.encryption.clone(),
            ..upload_spec(plan, &self.mime_type)?
        };
        let _: VideoMetadata = self
            .client
            .call_ok(Kind::Update, self.video, "begin_upload", (spec,))
            .await?;
        Ok(())
    }

    async fn put(&self, index: u32, bytes: Vec<u8>) -> Result<()> {
        use std::sync::atomic::Ordering;
        if let Some(n) = self.stop_after {
            if self.stored.load(Ordering::SeqCst) >= n {
                return Err(Error::Interrupted(format!(
                    "stopped after {n} chunk(s) as asked (--stop-after-chunks)"
                )));
            }
        }
        let _: ChunkReceipt = self
            .client
            .call_ok(
                Kind::Update,
                self.video,
                "put_chunk",
                (ChunkUpload {
                    path: None,
                    index,
                    data: ByteBuf::from(bytes),
                },),
            )
            .await?;
        self.stored.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn missing(&self) -> Result<Vec<u32>> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let page: MissingChunks = self
                .client
                .call_ok(
                    Kind::Query,
                    self.video,
                    "missing_chunks",
                    (MissingArgs {
                        path: None,
                        start,
                        limit: None,
                    },),
                )
                .await?;
            all.extend(page.missing);
            match crate::embedded::next_missing_page(self.video, start, page.next)? {
                Some(next) => start = Some(next),
                None => return Ok(all),
            }
        }
    }

    async fn finish(&self) -> Result<Digest> {
        let meta: VideoMetadata = self
            .client
            .call_ok(Kind::Update, self.video, "finish_upload", ())
            .await?;
        crate::embedded::ready_digest(self.video, &meta)
    }

    fn is_transient(&self, error: &Error) -> bool {
        is_transient(error)
    }

    async fn sleep(&self, delay: Duration) {
        tokio::time::sleep(delay).await
    }
}

/// The `begin_upload` argument for `plan` (shared with the embedded client).
pub fn upload_spec(plan: &UploadPlan, mime_type: &str) -> Result<UploadSpec> {
    let chunk_size = u32::try_from(plan.chunk_size).map_err(|_| {
        Error::Upload(format!(
            "chunk size {} does not fit the interface",
            plan.chunk_size
        ))
    })?;
    let digests = (plan.chunk_digests.len() <= crate::embedded::MAX_DECLARED_DIGESTS).then(|| {
        plan.chunk_digests
            .iter()
            .map(|d| ByteBuf::from(d.to_vec()))
            .collect()
    });
    Ok(UploadSpec {
        path: None,
        rendition: None,
        mime_type: mime_type.to_string(),
        total_size: plan.size,
        chunk_size,
        chunk_digests: digests,
        file_digest: Some(ByteBuf::from(plan.file_digest.to_vec())),
        duration_ms: None,
        encryption: None,
    })
}
