//! [`BlockLog`]: the ICRC-3 block log, append-only, in stable memory.
//!
//! Blocks are never rewritten and only ever read by index, which is exactly
//! `ic_stable_structures::StableLog`: an index memory of end offsets and a data memory of entry
//! bytes. Everything lives in those two memories, so an upgrade only reopens the log
//! ([`BlockLog::init`]); the one value kept on the heap, the tip's hash, is recomputed from the
//! last entry on open.
//!
//! The log never archives: one canister holds it all. At the measured 131 bytes of data + 8 of
//! index per `7xfer` block (166 + 8 for `37xfer`), the 500 GiB a canister's stable memory may
//! reach hold ~3.9 billion transfers (~3.1 billion `37xfer`s), far beyond what canvid's
//! collection will log. `archived_blocks` is therefore always empty and `icrc3_get_archives`
//! answers an empty list.
//!
//! # Layout (format 1)
//!
//! The caller passes two memories (e.g. two `MemoryManager` virtual memories):
//!
//! - **index memory** (`StableLog`'s index): magic `b"GLI"` [0..3] · layout version u8 [3] ·
//!   28 reserved bytes [4..32] · number of entries `L` u64 LE [32..40] · then per entry a u64 LE,
//!   the end offset of that entry in the data area (entry `i` spans `end(i-1)..end(i)`).
//! - **data memory** (`StableLog`'s data): magic `b"GLD"` [0..3] · layout version u8 [3] ·
//!   28 reserved bytes [4..32] · then the entries back to back from byte 32. Entry `i` is
//!   block `i`.
//!
//! Entry (variable length): byte 0 is the format version, `1`; then the whole block (the `Map`
//! with `btype`, `ts`, `phash` except in block 0, and `tx`) as one encoded value:
//!
//! | first byte | variant | followed by |
//! | ---------- | ------- | ----------- |
//! | `0` | `Blob` | length (unsigned LEB128), the bytes |
//! | `1` | `Text` | length (unsigned LEB128), the UTF-8 bytes |
//! | `2` | `Nat`  | the number in unsigned LEB128 (self-delimiting) |
//! | `3` | `Int`  | the number in signed LEB128 (self-delimiting) |
//! | `4` | `Array`| count (unsigned LEB128), the elements |
//! | `5` | `Map`  | count (unsigned LEB128), then per entry in key order: key, value |
//!
//! A map key is one byte `k`: `k ≥ 1` names entry `k - 1` of the known-key table `btype`(1),
//! `ts`(2), `phash`(3), `tx`(4), `tid`(5), `from`(6), `to`(7), `spender`(8), `memo`(9),
//! `exp`(10), `meta`(11), `icrc7:token_metadata`(12), `fee`(13); `k = 0` is followed by the key
//! spelled out (length in unsigned LEB128, UTF-8 bytes). The table only ever grows.
//!
//! Example, a `7xfer` of token 42 between two 29-byte principals at `ts` ≈ 1.76·10¹⁸ ns: format
//! (1) · map header (2) · `btype` "7xfer" (1+1+1+5) · `ts` (1+1+9) · `phash` (1+1+1+32) · `tx`
//! key and map header (1+1+1) · `tid` (1+1+1) · `from` (1+1+1+1+1+29) · `to` (34) = 131 bytes
//! (measured by the test `bytes_per_block`, which also measures `37xfer`: 166, the longer
//! `btype` and the `spender` account).
//!
//! Decoding checks every tag, length and key and fails with [`DecodeError`] instead of
//! panicking; the log only ever reads back what it wrote, so a failure means corruption.

use candid::Nat;
use ic_stable_structures::log::WriteError;
use ic_stable_structures::{Memory, StableLog};

use crate::blocks::Tx;
use crate::codec::{decode_block, encode_block, DecodeError};
use crate::types::{BlockWithId, GetBlocksArgs, GetBlocksResult};
use crate::value::{Hash, Value};

/// The most blocks one `icrc3_get_blocks` call returns, over all its ranges. A `7xfer` block
/// costs 154 bytes of candid in the reply (measured by `bytes_per_block`), so 500 of them are
/// ~77 KB. Mints carry the token's metadata: while `meta` stays under ~4 KiB, 500 blocks fit the
/// 2 MiB reply limit of a replicated call (a canister with bigger metadata passes a smaller
/// `max_blocks`). Serving a block only decodes it (no hashing), far inside the instruction limit.
pub const MAX_BLOCKS_PER_CALL: u64 = 500;

/// Why a block could not be appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendError {
    /// Stable memory could not grow (the canister's stable memory limit or the subnet's).
    /// Nothing was written: the log is unchanged.
    OutOfMemory {
        current_pages: u64,
        delta_pages: u64,
    },
    /// The `tx` passed to [`BlockLog::append`] is not a `Map`, as ICRC-3 requires.
    TxNotAMap,
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::OutOfMemory {
                current_pages,
                delta_pages,
            } => write!(
                f,
                "the block log cannot grow its stable memory ({current_pages} pages + {delta_pages})"
            ),
            AppendError::TxNotAMap => write!(f, "a block's tx must be a Map"),
        }
    }
}

impl std::error::Error for AppendError {}

/// The block log. See the module docs for its layout.
pub struct BlockLog<M: Memory> {
    log: StableLog<Vec<u8>, M, M>,
    /// Hash of the last block; `None` while the log is empty.
    last_hash: Option<Hash>,
}

impl<M: Memory> BlockLog<M> {
    /// Opens the log stored in `index` and `data`, or starts an empty one on fresh memories.
    /// Call it in `init` and `post_upgrade` with the same two memories.
    ///
    /// Panics if the last stored block does not decode (corrupt memory): an upgrade must fail
    /// rather than continue a chain it cannot link to.
    pub fn init(index: M, data: M) -> Self {
        let log = StableLog::init(index, data);
        let last_hash = match log.len() {
            0 => None,
            n => Some(
                decode_stored(&log, n - 1)
                    .unwrap_or_else(|e| panic!("block log: last block {}: {e}", n - 1))
                    .hash(),
            ),
        };
        BlockLog { log, last_hash }
    }

    /// Number of blocks.
    pub fn len(&self) -> u64 {
        self.log.len()
    }

    /// Whether the log has no block yet.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// Hash of the last block (the tip); `None` while the log is empty.
    pub fn last_hash(&self) -> Option<Hash> {
        self.last_hash
    }

    /// Appends the block `{ btype, ts, phash, tx }` and returns its index. `ts` is the canister's
    /// time (ns) when the block was made; `phash` is the previous block's hash, absent in block 0.
    /// After it, the canister must set its certified data to [`BlockLog::certified_data`].
    pub fn append(&mut self, btype: &str, ts: u64, tx: Value) -> Result<u64, AppendError> {
        if !matches!(tx, Value::Map(_)) {
            return Err(AppendError::TxNotAMap);
        }
        let mut block = Value::map([
            ("btype", Value::text(btype)),
            ("ts", Value::nat(ts)),
            ("tx", tx),
        ]);
        if let (Some(phash), Value::Map(m)) = (self.last_hash, &mut block) {
            m.insert("phash".to_string(), Value::blob(phash.to_vec()));
        }
        let index = self.log.append(&encode_block(&block)).map_err(
            |WriteError::GrowFailed {
                 current_size,
                 delta,
             }| AppendError::OutOfMemory {
                current_pages: current_size,
                delta_pages: delta,
            },
        )?;
        self.last_hash = Some(block.hash());
        Ok(index)
    }

    /// [`BlockLog::append`] of an ICRC-7/37 transaction (its `btype` and `tx`).
    pub fn append_tx(&mut self, ts: u64, tx: &Tx) -> Result<u64, AppendError> {
        self.append(tx.btype(), ts, tx.to_value())
    }

    /// Block `index`, `None` beyond the end.
    ///
    /// Panics if the stored bytes do not decode ([`BlockLog::try_get`] returns the error).
    pub fn get(&self, index: u64) -> Option<Value> {
        self.try_get(index)
            .map(|r| r.unwrap_or_else(|e| panic!("block log: block {index}: {e}")))
    }

    /// Block `index`, `None` beyond the end, `Some(Err)` if its bytes are corrupt.
    pub fn try_get(&self, index: u64) -> Option<Result<Value, DecodeError>> {
        (index < self.len()).then(|| decode_stored(&self.log, index))
    }

    /// Bytes of stable memory in use (both memories, headers included).
    pub fn size_bytes(&self) -> u64 {
        self.log.log_size_bytes()
    }

    /// The answer of `icrc3_get_blocks`: the requested ranges in order, clipped to the log, at
    /// most `max_blocks` blocks in all (itself capped at [`MAX_BLOCKS_PER_CALL`]); a range
    /// that no longer fits is cut short and the ranges after it are skipped. A client asks
    /// again from the last id it got. `archived_blocks` is always empty (the log never archives).
    pub fn get_blocks(&self, args: &GetBlocksArgs, max_blocks: u64) -> GetBlocksResult {
        let len = self.len();
        let mut budget = max_blocks.min(MAX_BLOCKS_PER_CALL);
        let mut blocks = Vec::new();
        for range in args {
            if budget == 0 {
                break;
            }
            let start = nat_to_u64_saturating(&range.start);
            if start >= len {
                continue;
            }
            let length = nat_to_u64_saturating(&range.length);
            let end = start.saturating_add(length.min(budget)).min(len);
            for id in start..end {
                blocks.push(BlockWithId {
                    id: Nat::from(id),
                    block: self.get(id).expect("id < len"),
                });
            }
            budget -= end - start;
        }
        GetBlocksResult {
            log_length: Nat::from(len),
            blocks,
            archived_blocks: Vec::new(),
        }
    }
}

fn decode_stored<M: Memory>(
    log: &StableLog<Vec<u8>, M, M>,
    index: u64,
) -> Result<Value, DecodeError> {
    let mut buf = Vec::new();
    log.read_entry(index, &mut buf)
        .map_err(|_| DecodeError::Truncated)?;
    decode_block(&buf)
}

/// A `Nat` as `u64`, values beyond `u64::MAX` as `u64::MAX` (no log reaches that far).
fn nat_to_u64_saturating(n: &Nat) -> u64 {
    u64::try_from(&n.0).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::{Account, CallerFields};
    use crate::types::GetBlocksRequest;
    use candid::Principal;
    use ic_stable_structures::VectorMemory;

    fn mems() -> (VectorMemory, VectorMemory) {
        (VectorMemory::default(), VectorMemory::default())
    }

    fn range(start: u64, length: u64) -> GetBlocksRequest {
        GetBlocksRequest {
            start: Nat::from(start),
            length: Nat::from(length),
        }
    }

    fn xfer(tid: u64) -> Tx {
        Tx::Transfer {
            tid: Nat::from(tid),
            from: Account::of(Principal::from_slice(&[1; 29])),
            to: Account::of(Principal::from_slice(&[2; 29])),
            caller: CallerFields::default(),
        }
    }

    #[test]
    fn blocks_chain_and_survive_reopening() {
        let (i, d) = mems();
        let mut log = BlockLog::init(i.clone(), d.clone());
        assert!(log.is_empty());
        assert_eq!(log.last_hash(), None);
        for n in 0..5 {
            assert_eq!(log.append_tx(100 + n, &xfer(n)).unwrap(), n);
        }
        let b0 = log.get(0).unwrap();
        assert_eq!(b0.get("phash"), None, "block 0 has no phash");
        assert_eq!(b0.get("btype"), Some(&Value::text("7xfer")));
        assert_eq!(b0.get("ts"), Some(&Value::nat(100)));
        assert_eq!(b0.get("tx"), Some(&xfer(0).to_value()));
        for n in 1..5 {
            let prev = log.get(n - 1).unwrap().hash();
            assert_eq!(
                log.get(n).unwrap().get("phash"),
                Some(&Value::blob(prev.to_vec()))
            );
        }
        assert_eq!(log.last_hash(), Some(log.get(4).unwrap().hash()));
        assert_eq!(log.get(5), None);

        let reopened = BlockLog::init(i, d);
        assert_eq!(reopened.len(), 5);
        assert_eq!(reopened.last_hash(), log.last_hash());
        for n in 0..5 {
            assert_eq!(reopened.get(n), log.get(n));
        }
    }

    #[test]
    fn a_tx_must_be_a_map() {
        let (i, d) = mems();
        let mut log = BlockLog::init(i, d);
        assert_eq!(
            log.append("7xfer", 1, Value::nat(1)),
            Err(AppendError::TxNotAMap)
        );
        assert!(log.is_empty());
    }

    #[test]
    fn get_blocks_clips_ranges_and_caps_the_total() {
        let (i, d) = mems();
        let mut log = BlockLog::init(i, d);
        for n in 0..10 {
            log.append_tx(n, &xfer(n)).unwrap();
        }
        let ids = |r: &GetBlocksResult| -> Vec<u64> {
            r.blocks
                .iter()
                .map(|b| u64::try_from(&b.id.0).unwrap())
                .collect()
        };
        let r = log.get_blocks(&vec![range(8, 5), range(2, 2), range(20, 1)], 100);
        assert_eq!(r.log_length, Nat::from(10u64));
        assert_eq!(ids(&r), vec![8, 9, 2, 3]);
        assert!(r.archived_blocks.is_empty());
        assert_eq!(r.blocks[0].block, log.get(8).unwrap());
        // The budget cuts the second range short and skips the third.
        let r = log.get_blocks(&vec![range(0, 3), range(5, 5), range(1, 1)], 5);
        assert_eq!(ids(&r), vec![0, 1, 2, 5, 6]);
        // A huge start or length saturates instead of failing.
        let huge = Nat::parse(b"1000000000000000000000000000").unwrap();
        let r = log.get_blocks(
            &vec![
                GetBlocksRequest {
                    start: huge.clone(),
                    length: Nat::from(1u8),
                },
                GetBlocksRequest {
                    start: Nat::from(9u8),
                    length: huge,
                },
            ],
            100,
        );
        assert_eq!(ids(&r), vec![9]);
        // The per-call maximum holds whatever the caller asks.
        let r = log.get_blocks(&vec![range(0, 10)], u64::MAX);
        assert_eq!(r.blocks.len(), 10);
    }

    #[test]
    fn per_call_maximum_is_enforced() {
        let (i, d) = mems();
        let mut log = BlockLog::init(i, d);
        for n in 0..MAX_BLOCKS_PER_CALL + 3 {
            log.append_tx(n, &xfer(n)).unwrap();
        }
        let r = log.get_blocks(&vec![range(0, u64::MAX)], u64::MAX);
        assert_eq!(r.blocks.len() as u64, MAX_BLOCKS_PER_CALL);
    }

    #[test]
    fn bytes_per_block() {
        // Realistic values: 29-byte principals (self-authenticating), a 2025 timestamp.
        let ts = 1_764_000_000_000_000_000u64;
        let user = |n: u8| Account::of(Principal::from_slice(&[n; 29]));
        let (i, d) = mems();
        let mut log = BlockLog::init(i, d);
        log.append_tx(ts, &xfer(41)).unwrap();
        let entry = |log: &BlockLog<VectorMemory>, n: u64| {
            let mut buf = Vec::new();
            log.log.read_entry(n, &mut buf).unwrap();
            buf.len()
        };
        log.append_tx(ts, &xfer(42)).unwrap();
        let xfer_bytes = entry(&log, 1);
        log.append_tx(
            ts,
            &Tx::TransferFrom {
                tid: Nat::from(43u8),
                spender: user(3),
                from: user(1),
                to: user(2),
                caller: CallerFields::default(),
            },
        )
        .unwrap();
        let xfer37_bytes = entry(&log, 2);
        println!("7xfer: {xfer_bytes} bytes + 8 index; 37xfer: {xfer37_bytes} bytes + 8 index");
        // The figures in the module docs.
        assert_eq!(xfer_bytes, 131);
        assert_eq!(xfer37_bytes, 166);

        // What a block costs in an `icrc3_get_blocks` reply (bounds MAX_BLOCKS_PER_CALL).
        let reply = |n: u64| {
            candid::encode_one(log.get_blocks(&vec![range(0, n)], n).blocks)
                .unwrap()
                .len()
        };
        let candid_xfer = reply(2) - reply(1);
        println!("7xfer in a get_blocks reply: {candid_xfer} bytes of candid");
        assert!(candid_xfer < 300, "{candid_xfer}");
    }
}
