//! DFINITY's asset canister (`target/canisters/asset.wasm`, built from crates.io's
//! `ic-certified-assets` 0.3.0 by `scripts/build-wasm.sh`, see `bench/asset-canister`) driven
//! through its batch upload API exactly as the `ic-asset` client library (0.29) uploads one file:
//!
//! 1. `list` and `api_version` (queries), `create_batch` (update);
//! 2. every full 1,900,000-byte piece (`ic-asset`'s `MAX_CHUNK_SIZE`) with `create_chunk`;
//! 3. the last, shorter piece: with `create_chunks` if it is longer than `MAX_CHUNK_SIZE / 2`,
//!    else inside `commit_batch` as `last_chunk`;
//! 4. `commit_batch` with `CreateAsset` and `SetAssetContent` (encoding `identity`, the file's
//!    SHA-256 computed by the client).
//!
//! `ic-asset` itself cannot be used here: it talks to a canister through `ic-agent` over HTTP,
//! and the embedded replica of the benchmark is in-process. The candid types below are those of
//! the canister's `assets.did` (ic-certified-assets 0.3.0), written out because the library cannot
//! be a dependency of this crate (its ic-cdk 0.18 conflicts with canvid's 0.20).

use crate::backend::{Backend, BackendExt, Cost, Reject};
use crate::data::GenFile;
use crate::wasm;
use candid::{define_function, CandidType, Deserialize, Nat, Principal};
use serde_bytes::ByteBuf;

/// `ic-asset`'s chunk size (`batch_upload::plumbing::MAX_CHUNK_SIZE`).
pub const MAX_CHUNK_SIZE: u64 = 1_900_000;

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct CreateBatchResponse {
    pub batch_id: Nat,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct CreateChunkArg {
    pub batch_id: Nat,
    pub content: ByteBuf,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct CreateChunkResponse {
    pub chunk_id: Nat,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct CreateChunksArg {
    pub batch_id: Nat,
    pub content: Vec<ByteBuf>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct CreateChunksResponse {
    pub chunk_ids: Vec<Nat>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct CreateAssetArguments {
    pub key: String,
    pub content_type: String,
    pub max_age: Option<u64>,
    pub headers: Option<Vec<(String, String)>>,
    pub enable_aliasing: Option<bool>,
    pub allow_raw_access: Option<bool>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct SetAssetContentArguments {
    pub key: String,
    pub content_encoding: String,
    pub chunk_ids: Vec<Nat>,
    pub last_chunk: Option<ByteBuf>,
    pub sha256: Option<ByteBuf>,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub enum BatchOperationKind {
    CreateAsset(CreateAssetArguments),
    SetAssetContent(SetAssetContentArguments),
}

#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct CommitBatchArguments {
    pub batch_id: Nat,
    pub operations: Vec<BatchOperationKind>,
}

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StreamingCallbackToken {
    pub key: String,
    pub content_encoding: String,
    pub index: Nat,
    pub sha256: Option<ByteBuf>,
}

/// What `http_request_streaming_callback` answers. (`assets.did` declares the callback's result
/// `opt`; the Rust canister returns it bare, as HTTP gateways decode it.)
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct StreamingCallbackHttpResponse {
    pub body: ByteBuf,
    pub token: Option<StreamingCallbackToken>,
}

define_function!(pub CallbackFunc : (StreamingCallbackToken) -> (StreamingCallbackHttpResponse) query);

#[derive(CandidType, Deserialize, Clone, Debug)]
pub enum StreamingStrategy {
    Callback {
        callback: CallbackFunc,
        token: StreamingCallbackToken,
    },
}

/// The asset canister's `HttpResponse` (the video canister's plus `streaming_strategy`).
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct AssetHttpResponse {
    pub status_code: u16,
    pub headers: Vec<(String, String)>,
    pub body: ByteBuf,
    pub streaming_strategy: Option<StreamingStrategy>,
    pub upgrade: Option<bool>,
}

impl AssetHttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn token(&self) -> Option<&StreamingCallbackToken> {
        match &self.streaming_strategy {
            Some(StreamingStrategy::Callback { token, .. }) => Some(token),
            None => None,
        }
    }
}

/// Creates an asset canister with `cycles`, controlled by `owner`, installed by `owner` with no
/// init argument (as `dfx deploy` does): the installer gets the `Commit` permission.
pub fn install(b: &dyn Backend, owner: Principal, cycles: u128) -> Principal {
    let id = b.create_canister(Some(owner), Some(vec![owner]), cycles);
    b.install(
        id,
        wasm::load("asset"),
        candid::encode_args(()).expect("encode ()"),
        Some(owner),
    )
    .unwrap_or_else(|e| panic!("installing the asset canister: {e}"));
    id
}

/// What an upload cost: update calls made, instructions they executed (embedded replica only).
#[derive(Clone, Copy, Debug, Default)]
pub struct UploadStats {
    pub updates: u32,
    pub instructions: u64,
}

impl UploadStats {
    fn add(&mut self, cost: Option<Cost>) {
        self.updates += 1;
        self.instructions += cost.map_or(0, |c| c.instructions);
    }
}

fn update<A: CandidType, R: CandidType + for<'de> Deserialize<'de>>(
    b: &dyn Backend,
    canister: Principal,
    sender: Principal,
    method: &str,
    arg: &A,
    stats: &mut UploadStats,
) -> Result<R, Reject> {
    let (r, cost) = b.update1_with_cost(canister, sender, method, arg);
    stats.add(cost);
    r
}

/// Uploads `file` as the asset `key` the way `ic-asset`'s `upload` does (module docs). The file
/// is produced piece by piece, never held whole.
pub fn upload(
    b: &dyn Backend,
    canister: Principal,
    sender: Principal,
    key: &str,
    content_type: &str,
    file: &GenFile,
) -> Result<UploadStats, Reject> {
    let mut stats = UploadStats::default();
    // ic-asset asks which assets exist and which API version the canister speaks (queries).
    b.query_raw(
        canister,
        sender,
        "list",
        candid::encode_args(()).expect("()"),
    )?;
    let (api_version,): (u16,) = b.query(canister, sender, "api_version", ())?;
    assert!(api_version >= 1, "batch API version {api_version}");
    let batch: CreateBatchResponse = {
        let (r, cost) = b.update_raw_with_cost(
            canister,
            sender,
            "create_batch",
            candid::encode_one(EmptyRecord {}).expect("record {}"),
        );
        stats.add(cost);
        candid::decode_one(&r?).expect("create_batch reply")
    };
    let mut chunk_ids = Vec::new();
    let mut last_chunk = None;
    let mut offset = 0;
    while offset < file.size {
        let len = (file.size - offset).min(MAX_CHUNK_SIZE);
        let content = ByteBuf::from(file.range(offset, len));
        if len == MAX_CHUNK_SIZE {
            let r: CreateChunkResponse = update(
                b,
                canister,
                sender,
                "create_chunk",
                &CreateChunkArg {
                    batch_id: batch.batch_id.clone(),
                    content,
                },
                &mut stats,
            )?;
            chunk_ids.push(r.chunk_id);
        } else if len > MAX_CHUNK_SIZE / 2 {
            let r: CreateChunksResponse = update(
                b,
                canister,
                sender,
                "create_chunks",
                &CreateChunksArg {
                    batch_id: batch.batch_id.clone(),
                    content: vec![content],
                },
                &mut stats,
            )?;
            chunk_ids.extend(r.chunk_ids);
        } else {
            last_chunk = Some(content);
        }
        offset += len;
    }
    let commit = CommitBatchArguments {
        batch_id: batch.batch_id,
        operations: vec![
            BatchOperationKind::CreateAsset(CreateAssetArguments {
                key: key.to_string(),
                content_type: content_type.to_string(),
                max_age: None,
                headers: None,
                enable_aliasing: Some(false),
                allow_raw_access: Some(false),
            }),
            BatchOperationKind::SetAssetContent(SetAssetContentArguments {
                key: key.to_string(),
                content_encoding: "identity".into(),
                chunk_ids,
                last_chunk,
                sha256: Some(ByteBuf::from(file.sha256().to_vec())),
            }),
        ],
    };
    let arg = candid::encode_one(&commit).expect("encode CommitBatchArguments");
    let (r, cost) = b.update_raw_with_cost(canister, sender, "commit_batch", arg);
    stats.add(cost);
    r?;
    Ok(stats)
}

#[derive(CandidType, Deserialize)]
struct EmptyRecord {}

/// The management canister's `canister_status`, the memory part (the embedded replica and the
/// IC fill `memory_metrics`).
#[derive(CandidType, Deserialize, Clone, Debug)]
pub struct MemoryMetrics {
    pub wasm_memory_size: Nat,
    pub stable_memory_size: Nat,
}

#[derive(CandidType, Deserialize, Clone, Debug)]
struct StatusMemory {
    memory_metrics: MemoryMetrics,
}

#[derive(CandidType, Deserialize)]
struct CanisterIdRecord {
    canister_id: Principal,
}

/// Heap (wasm memory) and stable memory of `canister` in bytes, from `canister_status` called
/// by `controller` (an ingress message: it costs the canister its ingress fee).
pub fn memory(b: &dyn Backend, canister: Principal, controller: Principal) -> (u64, u64) {
    let s: StatusMemory = b
        .update1(
            Principal::management_canister(),
            controller,
            "canister_status",
            &CanisterIdRecord {
                canister_id: canister,
            },
        )
        .unwrap_or_else(|e| panic!("canister_status: {e}"));
    let n = |v: &Nat| u64::try_from(v.0.clone()).expect("fits u64");
    (
        n(&s.memory_metrics.wasm_memory_size),
        n(&s.memory_metrics.stable_memory_size),
    )
}
