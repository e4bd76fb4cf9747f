//! Certification of the log's tip, as ICRC-3 prescribes: the canister's certified data is the
//! root of a hash tree with two labeled leaves, `last_block_index` (the index in unsigned LEB128)
//! and `last_block_hash` (the 32-byte hash). A client downloads the tip certificate, checks the
//! IC's signature over the certified data, checks the tree reconstructs that root, and then
//! verifies blocks backwards from the tip through their `phash` links.
//!
//! The crate does not call the IC: the canister sets [`BlockLog::certified_data`] with
//! `ic_cdk::api::certified_data_set` after every append (and in `post_upgrade`), and answers
//! `icrc3_get_tip_certificate` with [`BlockLog::tip_certificate`] of
//! `ic_cdk::api::data_certificate()`.
//!
//! Clients look the two labels up at the root of the certified tree, so the tip tree must be the
//! root of the canister's certified data. A canister that certifies more (HTTP assets, say) must
//! put its other labels beside these two in one tree, built from [`tip_tree`]'s leaves, and
//! serve that whole tree (pruned) instead; canvid's index certifies only the tip.

use ic_certification::{fork, label, leaf, HashTree};
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;

use crate::types::DataCertificate;
use crate::value::{write_uleb, Hash};
use crate::BlockLog;

/// Label of the leaf holding the index of the last block (LEB128).
pub const LAST_BLOCK_INDEX: &str = "last_block_index";
/// Label of the leaf holding the hash of the last block.
pub const LAST_BLOCK_HASH: &str = "last_block_hash";

/// The tip tree for the block `last_index` with hash `last_hash`. Labels of a fork are sorted
/// (`..._hash` < `..._index`), as the IC's lookup requires.
pub fn tip_tree(last_index: u64, last_hash: Hash) -> HashTree {
    let mut index = Vec::new();
    write_uleb(&mut index, last_index);
    fork(
        label(
            LAST_BLOCK_HASH.as_bytes().to_vec(),
            leaf(last_hash.to_vec()),
        ),
        label(LAST_BLOCK_INDEX.as_bytes().to_vec(), leaf(index)),
    )
}

impl<M: Memory> BlockLog<M> {
    /// The tip tree, `None` while the log is empty.
    pub fn tip_hash_tree(&self) -> Option<HashTree> {
        let hash = self.last_hash()?;
        Some(tip_tree(self.len() - 1, hash))
    }

    /// What the canister passes to `certified_data_set`: the tip tree's root hash, or the hash of
    /// the empty tree while the log is empty (nothing to certify; the tip certificate is `None`).
    pub fn certified_data(&self) -> Hash {
        match self.tip_hash_tree() {
            Some(tree) => tree.digest(),
            None => ic_certification::empty().digest(),
        }
    }

    /// The answer of `icrc3_get_tip_certificate`, given the IC's `data_certificate()` (only
    /// available in queries): `None` while the log is empty, else the certificate with the
    /// CBOR-encoded tip tree.
    pub fn tip_certificate(&self, certificate: Vec<u8>) -> Option<DataCertificate> {
        let tree = self.tip_hash_tree()?;
        let hash_tree = serde_cbor::to_vec(&tree).expect("a hash tree always encodes");
        Some(DataCertificate {
            certificate: ByteBuf::from(certificate),
            hash_tree: ByteBuf::from(hash_tree),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::{Account, CallerFields, Tx};
    use candid::{Nat, Principal};
    use ic_certification::LookupResult;
    use ic_stable_structures::VectorMemory;

    fn leb_decode(bytes: &[u8]) -> u64 {
        let mut n = 0u64;
        for (i, b) in bytes.iter().enumerate() {
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                assert_eq!(i + 1, bytes.len(), "trailing bytes after LEB128");
                return n;
            }
        }
        panic!("unterminated LEB128")
    }

    #[test]
    fn empty_log_has_no_tip_certificate() {
        let log = BlockLog::init(VectorMemory::default(), VectorMemory::default());
        assert_eq!(log.tip_certificate(vec![1, 2, 3]), None);
        assert_eq!(log.certified_data(), ic_certification::empty().digest());
    }

    #[test]
    fn the_tip_tree_certifies_the_last_block() {
        let mut log = BlockLog::init(VectorMemory::default(), VectorMemory::default());
        let tx = |n: u64| Tx::Transfer {
            tid: Nat::from(n),
            from: Account::of(Principal::anonymous()),
            to: Account::of(Principal::management_canister()),
            caller: CallerFields::default(),
        };
        let mut previous = log.certified_data();
        for n in 0..200u64 {
            log.append_tx(n, &tx(n)).unwrap();
            let cert = log.tip_certificate(b"certificate".to_vec()).unwrap();
            assert_eq!(cert.certificate.as_slice(), b"certificate");

            // The CBOR decodes back to a tree whose root is the certified data.
            let tree: HashTree = serde_cbor::from_slice(&cert.hash_tree).unwrap();
            assert_eq!(tree.digest(), log.certified_data());
            assert_ne!(
                tree.digest(),
                previous,
                "the certified data moves with the tip"
            );
            previous = tree.digest();

            // Its leaves are the tip.
            let LookupResult::Found(index) = tree.lookup_path([LAST_BLOCK_INDEX.as_bytes()]) else {
                panic!("no last_block_index");
            };
            assert_eq!(leb_decode(index), n);
            let LookupResult::Found(hash) = tree.lookup_path([LAST_BLOCK_HASH.as_bytes()]) else {
                panic!("no last_block_hash");
            };
            assert_eq!(hash, log.get(n).unwrap().hash().as_slice());
        }
        // Index 127 is one LEB128 byte, 128 is two: the encoding is LEB128, not fixed width.
        let mut b = Vec::new();
        write_uleb(&mut b, 128);
        assert_eq!(b, vec![0x80, 0x01]);
    }

    #[test]
    fn hash_tree_cbor_is_the_ic_encoding() {
        // The IC's CBOR for hash trees (interface spec, "Encoding of certificates"): a fork is
        // [1, l, r], a labeled node [2, label, t], a leaf [3, bytes], with CBOR byte strings.
        let tree = tip_tree(1, [0xab; 32]);
        let cbor: serde_cbor::Value =
            serde_cbor::from_slice(&serde_cbor::to_vec(&tree).unwrap()).unwrap();
        use serde_cbor::Value as C;
        let labeled = |l: &str, v: Vec<u8>| {
            C::Array(vec![
                C::Integer(2),
                C::Bytes(l.as_bytes().to_vec()),
                C::Array(vec![C::Integer(3), C::Bytes(v)]),
            ])
        };
        assert_eq!(
            cbor,
            C::Array(vec![
                C::Integer(1),
                labeled(LAST_BLOCK_HASH, vec![0xab; 32]),
                labeled(LAST_BLOCK_INDEX, vec![1]),
            ])
        );
    }

    #[test]
    fn a_client_verifies_the_whole_chain_from_the_tip() {
        // ICRC-3's "Blocks Verification": take the certified tip, then walk back through phash.
        let mut log = BlockLog::init(VectorMemory::default(), VectorMemory::default());
        for n in 0..20u64 {
            let tx = Tx::Burn {
                tid: Nat::from(n),
                from: Account::of(Principal::anonymous()),
                to: None,
                caller: CallerFields::default(),
            };
            log.append_tx(1_000 + n, &tx).unwrap();
        }
        let cert = log.tip_certificate(vec![]).unwrap();
        let tree: HashTree = serde_cbor::from_slice(&cert.hash_tree).unwrap();
        assert_eq!(tree.digest(), log.certified_data());
        let LookupResult::Found(index) = tree.lookup_path([LAST_BLOCK_INDEX.as_bytes()]) else {
            panic!("no index");
        };
        let LookupResult::Found(hash) = tree.lookup_path([LAST_BLOCK_HASH.as_bytes()]) else {
            panic!("no hash");
        };
        let mut expected = hash.to_vec();
        let blocks = log.get_blocks(
            &vec![crate::types::GetBlocksRequest {
                start: Nat::from(0u8),
                length: Nat::from(leb_decode(index) + 1),
            }],
            100,
        );
        assert_eq!(blocks.blocks.len(), 20);
        for b in blocks.blocks.iter().rev() {
            assert_eq!(b.block.hash().to_vec(), expected, "block {}", b.id);
            expected = match b.block.get("phash") {
                Some(crate::Value::Blob(p)) => p.to_vec(),
                None => Vec::new(),
                other => panic!("phash {other:?}"),
            };
        }
        assert!(expected.is_empty(), "block 0 has no parent");
    }
}
