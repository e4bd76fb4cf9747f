//! canvid's ICRC-3 block log: the transaction log of the video NFT collection (ICRC-7 tokens
//! with ICRC-37 approvals) that the index canister serves.
//!
//! It is a library rather than code inside the index canister so that everything a client
//! verifies — the value hash, the block schemas, the chain links, the tip certificate — is
//! tested natively, without a replica: the crate never calls the IC's system API. The canister
//! passes the time to [`BlockLog::append`], sets [`BlockLog::certified_data`] as its certified
//! data, and hands the IC's data certificate to [`BlockLog::tip_certificate`].
//!
//! - [`value`]: ICRC-3's [`Value`] and its representation-independent hash.
//! - [`blocks`]: [`Account`] and the ICRC-7/37 transactions ([`Tx`]) as their block schemas say.
//! - [`log`]: [`BlockLog`], the append-only log in stable memory (layout documented there);
//!   a `7xfer` block takes 131 bytes + 8 of index, a `37xfer` 166 + 8.
//! - [`certification`]: the ICRC-3 tip tree (`last_block_index`, `last_block_hash`).
//! - [`types`]: the candid types of `ICRC-3.did`.
//!
//! # Wiring it into a canister
//!
//! ```ignore
//! use canvid_icrc3::{BlockLog, Tx, types::*};
//! // Two virtual memories of the canister's MemoryManager, reserved for the log forever.
//! const LOG_INDEX: MemoryId = MemoryId::new(7);
//! const LOG_DATA: MemoryId = MemoryId::new(8);
//!
//! // init and post_upgrade:
//! let log = BlockLog::init(mm.get(LOG_INDEX), mm.get(LOG_DATA));
//! ic_cdk::api::certified_data_set(log.certified_data());
//!
//! // after the state change of an update call (icrc7_transfer, one block per token):
//! let index = log.append_tx(ic_cdk::api::time(), &Tx::Transfer { tid, from, to, caller })?;
//! ic_cdk::api::certified_data_set(log.certified_data());
//!
//! // queries:
//! #[query] fn icrc3_get_blocks(args: GetBlocksArgs) -> GetBlocksResult {
//!     with_log(|l| l.get_blocks(&args, MAX_BLOCKS_PER_CALL))
//! }
//! #[query] fn icrc3_get_tip_certificate() -> Option<DataCertificate> {
//!     with_log(|l| l.tip_certificate(ic_cdk::api::data_certificate()?))
//! }
//! #[query] fn icrc3_get_archives(args: GetArchivesArgs) -> GetArchivesResult { get_archives(&args) }
//! #[query] fn icrc3_supported_block_types() -> Vec<SupportedBlockType> { supported_block_types() }
//! ```

pub mod blocks;
pub mod certification;
mod codec;
pub mod log;
pub mod types;
pub mod value;

pub use blocks::{Account, CallerFields, Subaccount, Tx};
pub use codec::DecodeError;
pub use log::{AppendError, BlockLog, MAX_BLOCKS_PER_CALL};
pub use types::{get_archives, supported_block_types};
pub use value::{Hash, Value};
