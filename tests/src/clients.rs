//! Typed clients of the three canisters: one method per endpoint, `sender` explicit.
//!
//! The outer `Result<_, Reject>` is the system's answer (trap, inspect_message refusal, ...);
//! the inner `canvid_types::Result` is the canister's typed answer. Tests assert on both.

use crate::backend::{Backend, BackendExt, CallId, Cost, Reject};
use crate::data::GenFile;
use candid::Principal;
use canvid_types::index::{IndexStats, ListArgs, OwnerChange, Page, VideoEntry, VideoRegistration};
use canvid_types::spawn::{
    CreateVideoArgs, CreatedVideo, QuotaArgs, QuotaStatus, SetWasmArgs, SpawnListArgs, SpawnPage,
    SpawnStats, SpawnedVideo, UpgradeArgs, UpgradeOutcome, WasmInfo,
};
use canvid_types::video::{
    CanisterInfo, ChangeOwnerArgs, ChangeOwnerResult, ChunkDigests, ChunkReceipt, ChunkUpload,
    DigestsArgs, MetadataPatch, MissingArgs, MissingChunks, OfferArgs, OwnershipOffer, RangeArgs,
    UploadSpec, VideoMetadata,
};
use canvid_types::Result as CResult;
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

pub type Answer<T> = Result<CResult<T>, Reject>;

/// Unwraps both layers, panicking with the method name and the error otherwise.
#[track_caller]
pub fn ok<T>(what: &str, a: Answer<T>) -> T {
    match a {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: canister error {e:?}"),
        Err(r) => panic!("{what}: rejected: {r}"),
    }
}

/// The canister's typed error, panicking if the call succeeded or was rejected by the system.
#[track_caller]
pub fn err<T: std::fmt::Debug>(what: &str, a: Answer<T>) -> canvid_types::Error {
    match a {
        Ok(Err(e)) => e,
        Ok(Ok(v)) => panic!("{what}: expected a typed error, got Ok({v:?})"),
        Err(r) => panic!("{what}: expected a typed error, got a system reject: {r}"),
    }
}

/// The system reject, panicking if the call reached the canister's logic and answered.
#[track_caller]
pub fn rejected<T: std::fmt::Debug>(what: &str, a: Answer<T>) -> Reject {
    match a {
        Err(r) => r,
        Ok(v) => panic!("{what}: expected a system reject, got {v:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Video
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
pub struct Video<'a> {
    pub b: &'a dyn Backend,
    pub id: Principal,
}

pub fn sha256(bytes: &[u8]) -> ByteBuf {
    ByteBuf::from(Sha256::digest(bytes).to_vec())
}

/// The video canister's file digest: SHA-256 over the concatenated 32-byte chunk digests.
///
/// An independent oracle on purpose: written from the definition, not taken from
/// `canvid_types::protocol::file_digest` (which the canister and the CLI share), so that a
/// mistake there cannot hide from the tests by being made on both sides.
pub fn file_digest(chunk_digests: impl IntoIterator<Item = [u8; 32]>) -> [u8; 32] {
    let mut h = Sha256::new();
    for d in chunk_digests {
        h.update(d);
    }
    h.finalize().into()
}

/// An `UploadSpec` for a generated file, with all chunk digests and the file digest declared.
pub fn spec_for(file: &GenFile, with_digests: bool) -> UploadSpec {
    let chunk_size = u32::try_from(file.chunk_size).expect("chunk size fits u32");
    let (chunk_digests, file_digest_) = if with_digests {
        let digests: Vec<[u8; 32]> = (0..file.chunk_count())
            .map(|i| file.chunk_digest(i))
            .collect();
        let fd = file_digest(digests.iter().copied());
        (
            Some(
                digests
                    .into_iter()
                    .map(|d| ByteBuf::from(d.to_vec()))
                    .collect(),
            ),
            Some(ByteBuf::from(fd.to_vec())),
        )
    } else {
        (None, None)
    };
    UploadSpec {
        path: None,
        rendition: None,
        mime_type: "video/mp4".into(),
        total_size: file.size,
        chunk_size,
        chunk_digests,
        file_digest: file_digest_,
        duration_ms: Some(1_000),
        encryption: None,
    }
}

impl<'a> Video<'a> {
    pub fn new(b: &'a dyn Backend, id: Principal) -> Self {
        Self { b, id }
    }

    pub fn begin_upload(&self, sender: Principal, spec: &UploadSpec) -> Answer<VideoMetadata> {
        self.b.update1(self.id, sender, "begin_upload", spec)
    }

    pub fn put_chunk(&self, sender: Principal, index: u32, data: Vec<u8>) -> Answer<ChunkReceipt> {
        self.put_chunk_with_cost(sender, index, data).0
    }

    pub fn put_chunk_with_cost(
        &self,
        sender: Principal,
        index: u32,
        data: Vec<u8>,
    ) -> (Answer<ChunkReceipt>, Option<Cost>) {
        let arg = ChunkUpload {
            path: None,
            index,
            data: ByteBuf::from(data),
        };
        self.b.update1_with_cost(self.id, sender, "put_chunk", &arg)
    }

    pub fn finish_upload(&self, sender: Principal) -> Answer<VideoMetadata> {
        self.b
            .update::<_, (CResult<VideoMetadata>,)>(self.id, sender, "finish_upload", ())
            .map(|(r,)| r)
    }

    pub fn finish_upload_with_cost(
        &self,
        sender: Principal,
    ) -> (Answer<VideoMetadata>, Option<Cost>) {
        let arg = candid::encode_args(()).expect("encode ()");
        let (r, c) = self
            .b
            .update_raw_with_cost(self.id, sender, "finish_upload", arg);
        (
            r.map(|bytes| {
                candid::decode_one::<CResult<VideoMetadata>>(&bytes)
                    .expect("finish_upload reply decodes")
            }),
            c,
        )
    }

    pub fn missing_chunks(&self, sender: Principal, args: &MissingArgs) -> Answer<MissingChunks> {
        self.b.query1(self.id, sender, "missing_chunks", args)
    }

    pub fn chunk_digests(&self, sender: Principal, args: &DigestsArgs) -> Answer<ChunkDigests> {
        self.b.query1(self.id, sender, "chunk_digests", args)
    }

    pub fn get_chunk(&self, sender: Principal, index: u32) -> Answer<ByteBuf> {
        self.b.query1(self.id, sender, "get_chunk", &index)
    }

    pub fn get_chunk_with_cost(
        &self,
        sender: Principal,
        index: u32,
    ) -> (Answer<ByteBuf>, Option<Cost>) {
        self.b
            .query1_with_cost(self.id, sender, "get_chunk", &index)
    }

    pub fn read_range(&self, sender: Principal, offset: u64, length: u64) -> Answer<ByteBuf> {
        self.b.query1(
            self.id,
            sender,
            "read_range",
            &RangeArgs {
                path: None,
                offset,
                length,
            },
        )
    }

    pub fn metadata(&self) -> VideoMetadata {
        self.b
            .query::<_, (VideoMetadata,)>(self.id, Principal::anonymous(), "metadata", ())
            .expect("metadata query")
            .0
    }

    pub fn canister_info(&self) -> CanisterInfo {
        self.b
            .query::<_, (CanisterInfo,)>(self.id, Principal::anonymous(), "canister_info", ())
            .expect("canister_info query")
            .0
    }

    pub fn update_metadata(
        &self,
        sender: Principal,
        patch: &MetadataPatch,
    ) -> Answer<VideoMetadata> {
        self.b.update1(self.id, sender, "update_metadata", patch)
    }

    pub fn add_uploader(&self, sender: Principal, uploader: Principal) -> Answer<()> {
        self.b.update1(self.id, sender, "add_uploader", &uploader)
    }

    pub fn approve(&self, sender: Principal, operator: Option<Principal>) -> Answer<()> {
        self.b.update1(self.id, sender, "approve", &operator)
    }

    pub fn change_owner(
        &self,
        sender: Principal,
        new_owner: Principal,
    ) -> Answer<ChangeOwnerResult> {
        self.change_owner_keeping(sender, new_owner, None)
    }

    /// `change_owner` naming the controllers to keep (`None`: the video's default).
    pub fn change_owner_keeping(
        &self,
        sender: Principal,
        new_owner: Principal,
        keep_controllers: Option<Vec<Principal>>,
    ) -> Answer<ChangeOwnerResult> {
        self.b.update1(
            self.id,
            sender,
            "change_owner",
            &ChangeOwnerArgs {
                new_owner,
                keep_controllers,
            },
        )
    }

    /// `offer_ownership`: step one of a two-step transfer.
    pub fn offer_ownership(
        &self,
        sender: Principal,
        new_owner: Principal,
        keep_controllers: Option<Vec<Principal>>,
    ) -> Answer<OwnershipOffer> {
        self.b.update1(
            self.id,
            sender,
            "offer_ownership",
            &OfferArgs {
                new_owner,
                keep_controllers,
            },
        )
    }

    pub fn cancel_offer(&self, sender: Principal) -> Answer<()> {
        self.b
            .update::<_, (CResult<()>,)>(self.id, sender, "cancel_offer", ())
            .map(|(r,)| r)
    }

    /// `accept_ownership`: step two, by the offered principal.
    pub fn accept_ownership(&self, sender: Principal) -> Answer<ChangeOwnerResult> {
        self.b
            .update::<_, (CResult<ChangeOwnerResult>,)>(self.id, sender, "accept_ownership", ())
            .map(|(r,)| r)
    }

    /// Uploads `file` in the given chunk order (`None` = ascending), checking every receipt's
    /// digest and length against the generated chunk. Returns the total instructions measured.
    pub fn upload_chunks(&self, sender: Principal, file: &GenFile, order: Option<&[u32]>) -> u64 {
        let ascending: Vec<u32>;
        let order = match order {
            Some(o) => o,
            None => {
                ascending = (0..file.chunk_count()).collect();
                &ascending
            }
        };
        let mut instructions = 0u64;
        for &i in order {
            let data = file.chunk(i);
            let digest = Sha256::digest(&data);
            let len = data.len() as u32;
            let (r, cost) = self.put_chunk_with_cost(sender, i, data);
            let receipt = ok(&format!("put_chunk {i}"), r);
            assert_eq!(receipt.index, i);
            assert_eq!(receipt.len, len, "receipt length of chunk {i}");
            assert_eq!(
                receipt.sha256.as_slice(),
                digest.as_slice(),
                "receipt digest of chunk {i}"
            );
            assert_eq!(receipt.chunk_count, file.chunk_count());
            instructions += cost.map_or(0, |c| c.instructions);
        }
        instructions
    }

    /// begin_upload (with digests) + every chunk + finish_upload: a Ready video holding `file`.
    pub fn upload(&self, sender: Principal, file: &GenFile) -> VideoMetadata {
        ok(
            "begin_upload",
            self.begin_upload(sender, &spec_for(file, true)),
        );
        self.upload_chunks(sender, file, None);
        ok("finish_upload", self.finish_upload(sender))
    }

    /// Reads the whole file back with `get_chunk` and compares each chunk to the generated one
    /// (streamed: one chunk in memory at a time). Returns the query instructions measured.
    pub fn verify_chunks(&self, reader: Principal, file: &GenFile) -> u64 {
        let mut instructions = 0u64;
        for i in 0..file.chunk_count() {
            let (r, cost) = self.get_chunk_with_cost(reader, i);
            let got = ok(&format!("get_chunk {i}"), r);
            let want = file.chunk(i);
            assert!(
                got.as_slice() == want.as_slice(),
                "chunk {i} differs from what was uploaded (len {} vs {})",
                got.len(),
                want.len()
            );
            instructions += cost.map_or(0, |c| c.instructions);
        }
        instructions
    }

    /// Reads the whole file back with `read_range` windows of `window` bytes that straddle chunk
    /// boundaries, and returns the SHA-256 of the bytes read.
    pub fn read_all_ranges(&self, reader: Principal, size: u64, window: u64) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut offset = 0u64;
        while offset < size {
            let len = window.min(size - offset);
            let got = ok(
                &format!("read_range {offset}+{len}"),
                self.read_range(reader, offset, len),
            );
            assert_eq!(got.len() as u64, len, "read_range {offset}+{len} length");
            h.update(&got);
            offset += len;
        }
        h.finalize().into()
    }
}

// ---------------------------------------------------------------------------------------------
// Spawn
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
pub struct Spawn<'a> {
    pub b: &'a dyn Backend,
    pub id: Principal,
}

impl<'a> Spawn<'a> {
    pub fn create_video(&self, sender: Principal, args: &CreateVideoArgs) -> Answer<CreatedVideo> {
        self.b.update1(self.id, sender, "create_video", args)
    }

    pub fn submit_create_video(
        &self,
        sender: Principal,
        args: &CreateVideoArgs,
    ) -> Result<CallId, Reject> {
        self.b.submit1(self.id, sender, "create_video", args)
    }

    pub fn await_create_video(&self, id: CallId) -> Answer<CreatedVideo> {
        self.b.await1(id, "create_video")
    }

    /// Runs rounds until a submitted creation awaits `install_code`; returns its canister.
    pub fn tick_until_installing(&self) -> Principal {
        for _ in 0..50 {
            self.b.tick();
            let stats = self.stats();
            if let Some(f) = stats.in_flight.first() {
                if f.step.starts_with("installing") {
                    return f
                        .canister_id
                        .expect("a canister is recorded before installing");
                }
            }
        }
        panic!(
            "the creation never reached install_code: {:?}",
            self.stats()
        );
    }

    pub fn set_video_wasm(&self, sender: Principal, wasm: Vec<u8>) -> Answer<WasmInfo> {
        let sha = sha256(&wasm);
        self.b.update1(
            self.id,
            sender,
            "set_video_wasm",
            &SetWasmArgs {
                wasm: ByteBuf::from(wasm),
                sha256: sha,
            },
        )
    }

    pub fn set_quota(&self, sender: Principal, who: Principal, quota: QuotaArgs) -> Answer<()> {
        self.b
            .update::<_, (CResult<()>,)>(self.id, sender, "set_quota", (who, quota))
            .map(|(r,)| r)
    }

    pub fn quota_of(&self, who: Principal) -> QuotaStatus {
        self.b
            .query1(self.id, Principal::anonymous(), "quota_of", &who)
            .expect("quota_of query")
    }

    /// Admins only.
    pub fn list_videos(&self, sender: Principal, args: &SpawnListArgs) -> Answer<SpawnPage> {
        self.b.query1(self.id, sender, "list_videos", args)
    }

    /// Every record, following the cursor (as admin `sender`).
    pub fn all_videos(&self, sender: Principal) -> Vec<SpawnedVideo> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = ok(
                "list_videos",
                self.list_videos(
                    sender,
                    &SpawnListArgs {
                        cursor,
                        limit: None,
                    },
                ),
            );
            out.extend(page.videos);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
    }

    pub fn get_video(&self, id: Principal) -> Option<SpawnedVideo> {
        self.b
            .query1(self.id, Principal::anonymous(), "get_video", &id)
            .expect("spawn get_video query")
    }

    pub fn estimate_cycles(&self, declared_size: u64) -> u128 {
        ok(
            "estimate_cycles",
            self.b.query1(
                self.id,
                Principal::anonymous(),
                "estimate_cycles",
                &declared_size,
            ),
        )
    }

    pub fn set_default_quota(&self, sender: Principal, quota: Option<QuotaArgs>) -> Answer<()> {
        self.b.update1(self.id, sender, "set_default_quota", &quota)
    }

    pub fn retry_pending(&self, sender: Principal) -> Answer<Vec<SpawnedVideo>> {
        self.b
            .update::<_, (CResult<Vec<SpawnedVideo>>,)>(self.id, sender, "retry_pending", ())
            .map(|(r,)| r)
    }

    pub fn stats(&self) -> SpawnStats {
        self.b
            .query::<_, (SpawnStats,)>(self.id, Principal::anonymous(), "stats", ())
            .expect("spawn stats query")
            .0
    }

    pub fn upgrade_videos(
        &self,
        sender: Principal,
        args: &UpgradeArgs,
    ) -> Answer<Vec<UpgradeOutcome>> {
        self.b.update1(self.id, sender, "upgrade_videos", args)
    }
}

// ---------------------------------------------------------------------------------------------
// Index
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
pub struct Index<'a> {
    pub b: &'a dyn Backend,
    pub id: Principal,
}

impl<'a> Index<'a> {
    pub fn register_video(&self, sender: Principal, reg: &VideoRegistration) -> Answer<()> {
        self.b.update1(self.id, sender, "register_video", reg)
    }

    pub fn report_owner_change(&self, sender: Principal, change: &OwnerChange) -> Answer<()> {
        self.b
            .update1(self.id, sender, "report_owner_change", change)
    }

    pub fn set_registrars(&self, sender: Principal, registrars: Vec<Principal>) -> Answer<()> {
        self.b
            .update1(self.id, sender, "set_registrars", &registrars)
    }

    pub fn get_video(&self, video: Principal) -> Option<VideoEntry> {
        self.b
            .query1(self.id, Principal::anonymous(), "get_video", &video)
            .expect("get_video query")
    }

    fn list(&self, method: &str, who: Principal) -> Vec<VideoEntry> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page: Page = self
                .b
                .query1(
                    self.id,
                    Principal::anonymous(),
                    method,
                    &ListArgs {
                        principal: who,
                        cursor,
                        limit: None,
                    },
                )
                .unwrap_or_else(|e| panic!("{method} query: {e}"));
            out.extend(page.videos);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
    }

    /// Every video created by `who` (all pages).
    pub fn by_creator(&self, who: Principal) -> Vec<VideoEntry> {
        self.list("videos_by_creator", who)
    }

    /// Every video currently owned by `who` (all pages).
    pub fn by_owner(&self, who: Principal) -> Vec<VideoEntry> {
        self.list("videos_by_owner", who)
    }

    pub fn stats(&self) -> IndexStats {
        self.b
            .query::<_, (IndexStats,)>(self.id, Principal::anonymous(), "stats", ())
            .expect("index stats query")
            .0
    }
}

// ---------------------------------------------------------------------------------------------
// Relay: the replica's probe fixture canister, used as a *canister* caller
// ---------------------------------------------------------------------------------------------

/// The probe canister's candid types (`canvid-replica-probe-types`).
pub use canvid_replica_probe_types::{CallOutcome, CallSpec};

/// A canister that forwards calls (the probe fixture's `call_other`). Inter-canister calls do not
/// pass through `canister_inspect_message`, so this reaches the endpoints' own checks and their
/// typed errors, and it can attach cycles.
#[derive(Clone, Copy)]
pub struct Relay<'a> {
    pub b: &'a dyn Backend,
    pub id: Principal,
}

impl<'a> Relay<'a> {
    /// Creates and installs a relay controlled by `controller`, with `cycles`.
    pub fn deploy(b: &'a dyn Backend, controller: Principal, cycles: u128) -> Self {
        let id = b.create_canister(Some(controller), Some(vec![controller]), cycles);
        b.install(
            id,
            crate::wasm::load("replica-probe"),
            candid::encode_args(()).expect("()"),
            Some(controller),
        )
        .unwrap_or_else(|e| panic!("installing the relay (probe) canister: {e}"));
        Self { b, id }
    }

    /// `target.method(arg)` made by the relay with `cycles` attached; the raw outcome.
    pub fn call_raw(
        &self,
        target: Principal,
        method: &str,
        arg: Vec<u8>,
        cycles: u128,
    ) -> CallOutcome {
        let spec = CallSpec {
            target,
            method: method.into(),
            arg: ByteBuf::from(arg),
            cycles,
            bounded: false,
        };
        self.b
            .update1(self.id, Principal::anonymous(), "call_other", &spec)
            .unwrap_or_else(|e| panic!("relay call_other: {e}"))
    }

    /// `target.method(arg)` decoded as `R`; panics if the callee rejected.
    pub fn call<A: candid::CandidType, R: candid::CandidType + serde::de::DeserializeOwned>(
        &self,
        target: Principal,
        method: &str,
        arg: &A,
        cycles: u128,
    ) -> R {
        match self.call_raw(
            target,
            method,
            candid::encode_one(arg).expect("encode"),
            cycles,
        ) {
            CallOutcome::Reply { data, .. } => candid::decode_one(&data)
                .unwrap_or_else(|e| panic!("relay: reply of {method} does not decode: {e}")),
            other => panic!("relay: {method} was not answered: {other:?}"),
        }
    }
}
