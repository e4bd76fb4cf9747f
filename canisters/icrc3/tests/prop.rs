//! Property test of the block log against a `Vec` model: random appends (typed ICRC-7/37
//! transactions and arbitrary `tx` values), interleaved with reopening the log on the same
//! memories as an upgrade does, and random `get_blocks` calls.

use candid::{Int, Nat, Principal};
use canvid_icrc3::types::{GetBlocksRequest, GetBlocksResult};
use canvid_icrc3::{Account, BlockLog, CallerFields, Tx, Value, MAX_BLOCKS_PER_CALL};
use ic_stable_structures::VectorMemory;
use proptest::collection::{btree_map, vec};
use proptest::option::of as opt;
use proptest::prelude::*;

fn account() -> impl Strategy<Value = Account> {
    (vec(any::<u8>(), 0..=29), opt(any::<[u8; 32]>())).prop_map(|(owner, subaccount)| Account {
        owner: Principal::from_slice(&owner),
        subaccount,
    })
}

fn nat() -> impl Strategy<Value = Nat> {
    prop_oneof![
        any::<u64>().prop_map(Nat::from),
        any::<u128>().prop_map(Nat::from)
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        vec(any::<u8>(), 0..40).prop_map(Value::blob),
        ".{0,12}".prop_map(Value::Text),
        nat().prop_map(Value::Nat),
        any::<i128>().prop_map(|i| Value::Int(Int::from(i))),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            // Keys from the codec's table and others.
            btree_map(
                prop_oneof![
                    Just("tid".to_string()),
                    Just("meta".to_string()),
                    "[a-z:]{0,8}"
                ],
                inner,
                0..4
            )
            .prop_map(Value::Map),
        ]
    })
}

fn caller() -> impl Strategy<Value = CallerFields> {
    (opt(vec(any::<u8>(), 0..32)), opt(any::<u64>())).prop_map(|(memo, created_at_time)| {
        CallerFields {
            memo,
            created_at_time,
        }
    })
}

fn tx() -> impl Strategy<Value = Tx> {
    prop_oneof![
        (nat(), opt(account()), account(), value(), caller()).prop_map(
            |(tid, from, to, meta, caller)| Tx::Mint {
                tid,
                from,
                to,
                meta,
                caller
            }
        ),
        (nat(), account(), opt(account()), caller()).prop_map(|(tid, from, to, caller)| Tx::Burn {
            tid,
            from,
            to,
            caller
        }),
        (nat(), account(), account(), caller()).prop_map(|(tid, from, to, caller)| Tx::Transfer {
            tid,
            from,
            to,
            caller
        }),
        (nat(), opt(account()), value(), caller()).prop_map(|(tid, from, meta, caller)| {
            Tx::UpdateToken {
                tid,
                from,
                meta,
                caller,
            }
        }),
        (nat(), account(), account(), opt(any::<u64>()), caller()).prop_map(
            |(tid, from, spender, expires_at, caller)| Tx::ApproveToken {
                tid,
                from,
                spender,
                expires_at,
                caller
            }
        ),
        (account(), account(), opt(any::<u64>()), caller()).prop_map(
            |(from, spender, expires_at, caller)| Tx::ApproveCollection {
                from,
                spender,
                expires_at,
                caller
            }
        ),
        (nat(), account(), opt(account()), caller()).prop_map(|(tid, from, spender, caller)| {
            Tx::RevokeToken {
                tid,
                from,
                spender,
                caller,
            }
        }),
        (account(), opt(account()), caller()).prop_map(|(from, spender, caller)| {
            Tx::RevokeCollection {
                from,
                spender,
                caller,
            }
        }),
        (nat(), account(), account(), account(), caller()).prop_map(
            |(tid, spender, from, to, caller)| Tx::TransferFrom {
                tid,
                spender,
                from,
                to,
                caller
            }
        ),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Typed(u64, Tx),
    /// An arbitrary `tx` map under an arbitrary `btype` (the log does not interpret either).
    Raw(String, u64, Value),
    /// Drop the log and open it again on the same memories (an upgrade).
    Reopen,
    GetBlocks(Vec<(u64, u64)>, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u64>(), tx()).prop_map(|(ts, tx)| Op::Typed(ts, tx)),
        2 => ("[0-9a-z_]{1,14}", any::<u64>(), btree_map("[a-z]{0,6}", value(), 0..4))
            .prop_map(|(b, ts, m)| Op::Raw(b, ts, Value::Map(m))),
        1 => Just(Op::Reopen),
        2 => (vec((0u64..40, 0u64..30), 0..4), 0u64..30).prop_map(|(r, max)| Op::GetBlocks(r, max)),
    ]
}

/// What `get_blocks` must answer, computed on the model.
fn model_get_blocks(model: &[Value], ranges: &[(u64, u64)], max: u64) -> Vec<(u64, Value)> {
    let mut budget = max.min(MAX_BLOCKS_PER_CALL);
    let mut out = Vec::new();
    for &(start, length) in ranges {
        for id in start..start + length {
            if budget == 0 {
                return out;
            }
            if let Some(b) = model.get(id as usize) {
                out.push((id, b.clone()));
                budget -= 1;
            } else {
                break;
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_a_vec_model(ops in vec(op(), 1..60)) {
        let (index, data) = (VectorMemory::default(), VectorMemory::default());
        let mut log = BlockLog::init(index.clone(), data.clone());
        // The blocks as the log must serve them.
        let mut model: Vec<Value> = Vec::new();
        for op in ops {
            match op {
                Op::Typed(ts, tx) => {
                    let i = log.append_tx(ts, &tx).unwrap();
                    prop_assert_eq!(i, model.len() as u64);
                    let b = log.get(i).unwrap();
                    prop_assert_eq!(b.get("btype"), Some(&Value::text(tx.btype())));
                    prop_assert_eq!(b.get("ts"), Some(&Value::nat(ts)));
                    prop_assert_eq!(b.get("tx"), Some(&tx.to_value()));
                    model.push(b);
                }
                Op::Raw(btype, ts, tx) => {
                    let i = log.append(&btype, ts, tx.clone()).unwrap();
                    prop_assert_eq!(i, model.len() as u64);
                    let b = log.get(i).unwrap();
                    prop_assert_eq!(b.get("btype"), Some(&Value::Text(btype)));
                    prop_assert_eq!(b.get("tx"), Some(&tx));
                    model.push(b);
                }
                Op::Reopen => {
                    let before = log.last_hash();
                    drop(log);
                    log = BlockLog::init(index.clone(), data.clone());
                    prop_assert_eq!(log.last_hash(), before);
                }
                Op::GetBlocks(ranges, max) => {
                    let args: Vec<GetBlocksRequest> = ranges
                        .iter()
                        .map(|&(s, l)| GetBlocksRequest { start: Nat::from(s), length: Nat::from(l) })
                        .collect();
                    let GetBlocksResult { log_length, blocks, archived_blocks } = log.get_blocks(&args, max);
                    prop_assert_eq!(log_length, Nat::from(model.len() as u64));
                    prop_assert!(archived_blocks.is_empty());
                    let got: Vec<(u64, Value)> = blocks
                        .into_iter()
                        .map(|b| (u64::try_from(&b.id.0).unwrap(), b.block))
                        .collect();
                    prop_assert_eq!(got, model_get_blocks(&model, &ranges, max));
                }
            }
            prop_assert_eq!(log.len(), model.len() as u64);
            prop_assert_eq!(log.last_hash(), model.last().map(Value::hash));
        }
        // Every block reads back identically after a final reopen, and the chain links.
        let log = BlockLog::init(index, data);
        prop_assert_eq!(log.len(), model.len() as u64);
        for (i, expected) in model.iter().enumerate() {
            let block = log.get(i as u64).unwrap();
            prop_assert_eq!(&block, expected);
            let phash = block.get("phash");
            if i == 0 {
                prop_assert!(phash.is_none());
            } else {
                prop_assert_eq!(phash, Some(&Value::blob(model[i - 1].hash().to_vec())));
            }
        }
        prop_assert_eq!(log.last_hash(), model.last().map(Value::hash));
    }
}
