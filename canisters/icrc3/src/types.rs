//! The candid types of ICRC-3's interface (`ICRC-3.did`), for the endpoints the index canister
//! exposes: `icrc3_get_blocks`, `icrc3_get_archives`, `icrc3_get_tip_certificate` and
//! `icrc3_supported_block_types`. The crate's tests check them against the published `.did`
//! with candid's subtype check, so a drift from the standard fails a test.

use candid::{CandidType, Deserialize, Nat, Principal};
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::value::Value;

/// One requested range: `record { start : nat; length : nat }`.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GetBlocksRequest {
    pub start: Nat,
    pub length: Nat,
}

/// `GetBlocksArgs = vec record { start : nat; length : nat }`.
pub type GetBlocksArgs = Vec<GetBlocksRequest>;

/// `record { id : nat; block : Value }`.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BlockWithId {
    pub id: Nat,
    pub block: Value,
}

candid::define_function!(pub GetBlocksCallback : (GetBlocksArgs) -> (GetBlocksResult) query);

/// `record { args : GetBlocksArgs; callback : func (GetBlocksArgs) -> (GetBlocksResult) query }`:
/// where a client fetches blocks that moved to an archive. The log never archives (see
/// [`crate::BlockLog`]), so results carry none, but the type is part of the interface.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ArchivedBlocks {
    pub args: GetBlocksArgs,
    pub callback: GetBlocksCallback,
}

/// `GetBlocksResult`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GetBlocksResult {
    /// Total number of blocks in the log.
    pub log_length: Nat,
    pub blocks: Vec<BlockWithId>,
    pub archived_blocks: Vec<ArchivedBlocks>,
}

/// `GetArchivesArgs = record { from : opt principal }`.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GetArchivesArgs {
    pub from: Option<Principal>,
}

/// One archive: `record { canister_id : principal; start : nat; end : nat }`.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ArchiveInfo {
    pub canister_id: Principal,
    pub start: Nat,
    pub end: Nat,
}

/// `GetArchivesResult = vec record { canister_id : principal; start : nat; end : nat }`.
pub type GetArchivesResult = Vec<ArchiveInfo>;

/// `DataCertificate = record { certificate : blob; hash_tree : blob }`: the IC's certificate
/// (`ic0.data_certificate`) and the CBOR-encoded hash tree whose root it certifies.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DataCertificate {
    pub certificate: ByteBuf,
    pub hash_tree: ByteBuf,
}

/// `record { block_type : text; url : text }`, an element of `icrc3_supported_block_types`.
#[derive(CandidType, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SupportedBlockType {
    pub block_type: String,
    pub url: String,
}

/// The answer of `icrc3_get_archives`: the log has no archives, whatever `from` is.
pub fn get_archives(_args: &GetArchivesArgs) -> GetArchivesResult {
    Vec::new()
}

/// The answer of `icrc3_supported_block_types`: every ICRC-7 and ICRC-37 block type.
pub fn supported_block_types() -> Vec<SupportedBlockType> {
    crate::blocks::BLOCK_TYPES
        .iter()
        .map(|(btype, url)| SupportedBlockType {
            block_type: btype.to_string(),
            url: url.to_string(),
        })
        .collect()
}
