//! The block types of ICRC-7 and ICRC-37, built as the published block schemas say.
//!
//! Both standards put the block type in the block's top-level `btype` field (not in `tx.op`, as
//! their early drafts did) and record the caller's intent in `tx`:
//!
//! | `btype` | `tx` fields (`?` = only when given) |
//! | ------- | ----------------------------------- |
//! | `7mint` | `tid`, `from?`, `to`, `meta` |
//! | `7burn` | `tid`, `from`, `to?` |
//! | `7xfer` | `tid`, `from`, `to` |
//! | `7update_token` | `tid`, `from?`, `meta` |
//! | `37approve` | `tid`, `from`, `spender`, `exp?` |
//! | `37approve_coll` | `from`, `spender`, `exp?` |
//! | `37revoke` | `tid`, `from`, `spender?` (absent: all spenders) |
//! | `37revoke_coll` | `from`, `spender?` (absent: all spenders) |
//! | `37xfer` | `tid`, `spender`, `from`, `to` |
//!
//! Every `tx` may also carry `memo: Blob` and `ts: Nat` (the call's `created_at_time`), but only
//! when the caller gave them ([`CallerFields`]): ICRC-3 requires optional call parameters that were
//! not present to be omitted. Accounts are ICRC-3's `Array [Blob owner, Blob subaccount?]`, the
//! subaccount present exactly when the caller gave one.
//!
//! The block itself (`btype`, `ts`, `phash`, `tx`) is assembled by [`crate::BlockLog::append`].

use candid::{CandidType, Deserialize, Nat, Principal};
use serde::Serialize;

use crate::value::Value;

/// An ICRC-1 subaccount.
pub type Subaccount = [u8; 32];

/// The ICRC-1 account: `record { owner : principal; subaccount : opt blob }`.
#[derive(
    CandidType, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct Account {
    pub owner: Principal,
    pub subaccount: Option<Subaccount>,
}

impl Account {
    /// The account of `owner` with no subaccount given (its default account).
    pub fn of(owner: Principal) -> Self {
        Account {
            owner,
            subaccount: None,
        }
    }

    /// ICRC-3's encoding: `Array [Blob owner]` or `Array [Blob owner, Blob subaccount]`.
    pub fn to_value(&self) -> Value {
        let mut parts = vec![Value::blob(self.owner.as_slice())];
        if let Some(sub) = &self.subaccount {
            parts.push(Value::blob(sub.to_vec()));
        }
        Value::Array(parts)
    }
}

impl From<Principal> for Account {
    fn from(owner: Principal) -> Self {
        Account::of(owner)
    }
}

/// The optional fields every ICRC-7/37 `tx` may carry, set only if the caller passed them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerFields {
    /// The call's `memo`, recorded as `tx.memo`.
    pub memo: Option<Vec<u8>>,
    /// The call's `created_at_time` (ns since the epoch), recorded as `tx.ts`.
    pub created_at_time: Option<u64>,
}

/// One ICRC-7 or ICRC-37 transaction: which block it becomes and what goes in its `tx`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tx {
    /// `7mint`. `meta` SHOULD be `Map { "icrc7:token_metadata": <metadata map> }` (ICRC-7).
    Mint {
        tid: Nat,
        from: Option<Account>,
        to: Account,
        meta: Value,
        caller: CallerFields,
    },
    /// `7burn`.
    Burn {
        tid: Nat,
        from: Account,
        to: Option<Account>,
        caller: CallerFields,
    },
    /// `7xfer`: `icrc7_transfer`, one block per transferred token.
    Transfer {
        tid: Nat,
        from: Account,
        to: Account,
        caller: CallerFields,
    },
    /// `7update_token`: the token's metadata changed (no ICRC-7 method; the ledger's own).
    UpdateToken {
        tid: Nat,
        from: Option<Account>,
        meta: Value,
        caller: CallerFields,
    },
    /// `37approve`: `icrc37_approve_tokens`, one block per token.
    ApproveToken {
        tid: Nat,
        from: Account,
        spender: Account,
        expires_at: Option<u64>,
        caller: CallerFields,
    },
    /// `37approve_coll`: `icrc37_approve_collection`.
    ApproveCollection {
        from: Account,
        spender: Account,
        expires_at: Option<u64>,
        caller: CallerFields,
    },
    /// `37revoke`: `icrc37_revoke_token_approvals`; no spender revokes all of the token's.
    RevokeToken {
        tid: Nat,
        from: Account,
        spender: Option<Account>,
        caller: CallerFields,
    },
    /// `37revoke_coll`: `icrc37_revoke_collection_approvals`; no spender revokes all.
    RevokeCollection {
        from: Account,
        spender: Option<Account>,
        caller: CallerFields,
    },
    /// `37xfer`: `icrc37_transfer_from`, one block per token.
    TransferFrom {
        tid: Nat,
        spender: Account,
        from: Account,
        to: Account,
        caller: CallerFields,
    },
}

/// ICRC-7's specification, the `url` of its block types in `icrc3_supported_block_types`.
pub const ICRC7_URL: &str = "https://github.com/dfinity/ICRC/blob/main/ICRCs/ICRC-7/ICRC-7.md";
/// ICRC-37's specification, the `url` of its block types in `icrc3_supported_block_types`.
pub const ICRC37_URL: &str = "https://github.com/dfinity/ICRC/blob/main/ICRCs/ICRC-37/ICRC-37.md";

/// Every block type [`Tx`] produces, with the standard defining it.
pub const BLOCK_TYPES: [(&str, &str); 9] = [
    ("7mint", ICRC7_URL),
    ("7burn", ICRC7_URL),
    ("7xfer", ICRC7_URL),
    ("7update_token", ICRC7_URL),
    ("37approve", ICRC37_URL),
    ("37approve_coll", ICRC37_URL),
    ("37revoke", ICRC37_URL),
    ("37revoke_coll", ICRC37_URL),
    ("37xfer", ICRC37_URL),
];

impl Tx {
    /// The block's `btype`.
    pub fn btype(&self) -> &'static str {
        match self {
            Tx::Mint { .. } => "7mint",
            Tx::Burn { .. } => "7burn",
            Tx::Transfer { .. } => "7xfer",
            Tx::UpdateToken { .. } => "7update_token",
            Tx::ApproveToken { .. } => "37approve",
            Tx::ApproveCollection { .. } => "37approve_coll",
            Tx::RevokeToken { .. } => "37revoke",
            Tx::RevokeCollection { .. } => "37revoke_coll",
            Tx::TransferFrom { .. } => "37xfer",
        }
    }

    /// The block's `tx` map.
    pub fn to_value(&self) -> Value {
        let mut m = std::collections::BTreeMap::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        let caller = match self {
            Tx::Mint {
                tid,
                from,
                to,
                meta,
                caller,
            } => {
                put("tid", Value::Nat(tid.clone()));
                if let Some(from) = from {
                    put("from", from.to_value());
                }
                put("to", to.to_value());
                put("meta", meta.clone());
                caller
            }
            Tx::Burn {
                tid,
                from,
                to,
                caller,
            } => {
                put("tid", Value::Nat(tid.clone()));
                put("from", from.to_value());
                if let Some(to) = to {
                    put("to", to.to_value());
                }
                caller
            }
            Tx::Transfer {
                tid,
                from,
                to,
                caller,
            } => {
                put("tid", Value::Nat(tid.clone()));
                put("from", from.to_value());
                put("to", to.to_value());
                caller
            }
            Tx::UpdateToken {
                tid,
                from,
                meta,
                caller,
            } => {
                put("tid", Value::Nat(tid.clone()));
                if let Some(from) = from {
                    put("from", from.to_value());
                }
                put("meta", meta.clone());
                caller
            }
            Tx::ApproveToken {
                tid,
                from,
                spender,
                expires_at,
                caller,
            } => {
                put("tid", Value::Nat(tid.clone()));
                put("from", from.to_value());
                put("spender", spender.to_value());
                if let Some(exp) = expires_at {
                    put("exp", Value::nat(*exp));
                }
                caller
            }
            Tx::ApproveCollection {
                from,
                spender,
                expires_at,
                caller,
            } => {
                put("from", from.to_value());
                put("spender", spender.to_value());
                if let Some(exp) = expires_at {
                    put("exp", Value::nat(*exp));
                }
                caller
            }
            Tx::RevokeToken {
                tid,
                from,
                spender,
                caller,
            } => {
                put("tid", Value::Nat(tid.clone()));
                put("from", from.to_value());
                if let Some(spender) = spender {
                    put("spender", spender.to_value());
                }
                caller
            }
            Tx::RevokeCollection {
                from,
                spender,
                caller,
            } => {
                put("from", from.to_value());
                if let Some(spender) = spender {
                    put("spender", spender.to_value());
                }
                caller
            }
            Tx::TransferFrom {
                tid,
                spender,
                from,
                to,
                caller,
            } => {
                put("tid", Value::Nat(tid.clone()));
                put("spender", spender.to_value());
                put("from", from.to_value());
                put("to", to.to_value());
                caller
            }
        };
        if let Some(memo) = &caller.memo {
            put("memo", Value::blob(memo.clone()));
        }
        if let Some(ts) = caller.created_at_time {
            put("ts", Value::nat(ts));
        }
        Value::Map(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u8) -> Principal {
        Principal::from_slice(&[n; 29])
    }

    fn keys(v: &Value) -> Vec<&str> {
        match v {
            Value::Map(m) => m.keys().map(String::as_str).collect(),
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn accounts_are_encoded_as_icrc3_arrays() {
        let owner = Principal::from_slice(b"\x00\x00\x00\x00\x00\xf0\x13x\x01\x01");
        assert_eq!(
            Account::of(owner).to_value(),
            Value::Array(vec![Value::blob(owner.as_slice())])
        );
        let sub = Account {
            owner,
            subaccount: Some([0; 32]),
        };
        assert_eq!(
            sub.to_value(),
            Value::Array(vec![
                Value::blob(owner.as_slice()),
                Value::blob(vec![0; 32])
            ])
        );
    }

    #[test]
    fn account_round_trips_through_candid_as_the_icrc_record() {
        let a = Account {
            owner: p(1),
            subaccount: Some([7; 32]),
        };
        let bytes = candid::encode_one(a).unwrap();
        assert_eq!(candid::decode_one::<Account>(&bytes).unwrap(), a);
        // The ICRC record shape: `subaccount : opt blob`.
        #[derive(CandidType, Deserialize)]
        struct Icrc {
            owner: Principal,
            subaccount: Option<serde_bytes::ByteBuf>,
        }
        let theirs: Icrc = candid::decode_one(&bytes).unwrap();
        assert_eq!(theirs.owner, p(1));
        assert_eq!(theirs.subaccount.unwrap().into_vec(), vec![7; 32]);
    }

    #[test]
    fn tx_fields_follow_the_published_schemas() {
        let none = CallerFields::default();
        let given = CallerFields {
            memo: Some(vec![1, 2]),
            created_at_time: Some(5),
        };
        let tid = || Nat::from(9u8);
        let cases: Vec<(Tx, &str, Vec<&str>)> = vec![
            (
                Tx::Mint {
                    tid: tid(),
                    from: None,
                    to: p(1).into(),
                    meta: Value::map([("icrc7:token_metadata", Value::map::<&str>([]))]),
                    caller: none.clone(),
                },
                "7mint",
                vec!["meta", "tid", "to"],
            ),
            (
                Tx::Burn {
                    tid: tid(),
                    from: p(1).into(),
                    to: None,
                    caller: none.clone(),
                },
                "7burn",
                vec!["from", "tid"],
            ),
            (
                Tx::Transfer {
                    tid: tid(),
                    from: p(1).into(),
                    to: p(2).into(),
                    caller: given.clone(),
                },
                "7xfer",
                vec!["from", "memo", "tid", "to", "ts"],
            ),
            (
                Tx::UpdateToken {
                    tid: tid(),
                    from: Some(p(1).into()),
                    meta: Value::map::<&str>([]),
                    caller: none.clone(),
                },
                "7update_token",
                vec!["from", "meta", "tid"],
            ),
            (
                Tx::ApproveToken {
                    tid: tid(),
                    from: p(1).into(),
                    spender: p(2).into(),
                    expires_at: Some(10),
                    caller: none.clone(),
                },
                "37approve",
                vec!["exp", "from", "spender", "tid"],
            ),
            (
                Tx::ApproveCollection {
                    from: p(1).into(),
                    spender: p(2).into(),
                    expires_at: None,
                    caller: none.clone(),
                },
                "37approve_coll",
                vec!["from", "spender"],
            ),
            (
                Tx::RevokeToken {
                    tid: tid(),
                    from: p(1).into(),
                    spender: None,
                    caller: none.clone(),
                },
                "37revoke",
                vec!["from", "tid"],
            ),
            (
                Tx::RevokeCollection {
                    from: p(1).into(),
                    spender: Some(p(2).into()),
                    caller: none.clone(),
                },
                "37revoke_coll",
                vec!["from", "spender"],
            ),
            (
                Tx::TransferFrom {
                    tid: tid(),
                    spender: p(3).into(),
                    from: p(1).into(),
                    to: p(2).into(),
                    caller: given.clone(),
                },
                "37xfer",
                vec!["from", "memo", "spender", "tid", "to", "ts"],
            ),
        ];
        for (tx, btype, fields) in cases {
            assert_eq!(tx.btype(), btype);
            assert!(BLOCK_TYPES.iter().any(|(b, _)| *b == btype));
            let v = tx.to_value();
            assert_eq!(keys(&v), fields, "{btype}");
            if let Some(tid) = v.get("tid") {
                assert_eq!(tid, &Value::Nat(Nat::from(9u8)));
            }
        }
        let xfer = Tx::Transfer {
            tid: tid(),
            from: p(1).into(),
            to: p(2).into(),
            caller: given,
        }
        .to_value();
        assert_eq!(xfer.get("memo"), Some(&Value::blob(vec![1, 2])));
        assert_eq!(xfer.get("ts"), Some(&Value::nat(5)));
        assert_eq!(xfer.get("to"), Some(&Account::of(p(2)).to_value()));
    }
}
