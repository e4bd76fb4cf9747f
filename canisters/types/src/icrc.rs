//! Candid types of the token standards the index canister serves as canvid's ICRC-7 collection:
//! ICRC-7 (tokens), ICRC-37 (approvals) and ICRC-10 (supported standards), field for field as
//! published (`../shared/standards/*.did`; the index's interface is checked against those files
//! with candid's subtype check). ICRC-3's types (the transaction log) are `canvid-icrc3`'s.
//!
//! Token ids and transaction indices are `nat` on the wire ([`Nat`]); canvid's token ids fit a
//! `u64` (see [`token_id_of`]), so anything larger is a token that does not exist.

use candid::{CandidType, Deserialize, Nat, Principal};
use serde::Serialize;
use serde_bytes::ByteBuf;

/// An ICRC-1 account: a principal and an optional 32-byte subaccount. `None` and 32 zero bytes
/// are the same account (the default subaccount), see [`Account::normalized`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, CandidType, Deserialize, Serialize)]
pub struct Account {
    pub owner: Principal,
    pub subaccount: Option<ByteBuf>,
}

impl Account {
    pub fn of(owner: Principal) -> Account {
        Account {
            owner,
            subaccount: None,
        }
    }

    /// The default subaccount written as `None`, so that equal accounts compare equal.
    pub fn normalized(&self) -> Account {
        match &self.subaccount {
            Some(s) if s.iter().all(|b| *b == 0) => Account::of(self.owner),
            _ => self.clone(),
        }
    }

    /// The subaccount's 32 bytes (zeros for the default one); `None` if it is not 32 bytes.
    pub fn subaccount_bytes(&self) -> Option<[u8; 32]> {
        match &self.subaccount {
            None => Some([0; 32]),
            Some(s) => <[u8; 32]>::try_from(s.as_slice()).ok(),
        }
    }

    /// Is this a principal's default account (the only kind that can hold a video, see
    /// docs/nft.md)?
    pub fn is_default(&self) -> bool {
        self.subaccount_bytes() == Some([0; 32])
    }
}

/// The token id of a video canister: the canister's number on the IC, i.e. the first 8 bytes of
/// its 10-byte id (`<u64 big-endian> 0x01 0x01`) read as a big-endian integer. Every canister id
/// has that form, so the mapping is a bijection between video canisters and token ids that any
/// client computes from the canister id alone; `None` for a principal that is not a canister id.
pub fn token_id_of(video: &Principal) -> Option<u64> {
    let b = video.as_slice();
    if b.len() != 10 || b[8..] != [1, 1] {
        return None;
    }
    Some(u64::from_be_bytes(b[..8].try_into().ok()?))
}

/// The video canister of a token id (the inverse of [`token_id_of`]).
pub fn video_of_token(token_id: u64) -> Principal {
    let mut b = [1u8; 10];
    b[..8].copy_from_slice(&token_id.to_be_bytes());
    Principal::from_slice(&b)
}

/// A wire token id as canvid's `u64`, `None` if it is larger (no such token).
pub fn token_id_from_nat(n: &Nat) -> Option<u64> {
    u64::try_from(&n.0).ok()
}

// ---------------------------------------------------------------------------------------------
// ICRC-7
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct TransferArg {
    pub from_subaccount: Option<ByteBuf>,
    pub to: Account,
    pub token_id: Nat,
    pub memo: Option<ByteBuf>,
    pub created_at_time: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum TransferError {
    NonExistingTokenId,
    InvalidRecipient,
    Unauthorized,
    TooOld,
    CreatedInFuture { ledger_time: u64 },
    Duplicate { duplicate_of: Nat },
    GenericError { error_code: Nat, message: String },
    GenericBatchError { error_code: Nat, message: String },
}

/// `variant { Ok : nat; Err : TransferError }`.
pub type TransferResult = std::result::Result<Nat, TransferError>;

// ---------------------------------------------------------------------------------------------
// ICRC-37
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ApprovalInfo {
    pub spender: Account,
    pub from_subaccount: Option<ByteBuf>,
    pub expires_at: Option<u64>,
    pub memo: Option<ByteBuf>,
    pub created_at_time: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ApproveTokenArg {
    pub token_id: Nat,
    pub approval_info: ApprovalInfo,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum ApproveTokenError {
    InvalidSpender,
    Unauthorized,
    NonExistingTokenId,
    TooOld,
    CreatedInFuture { ledger_time: u64 },
    GenericError { error_code: Nat, message: String },
    GenericBatchError { error_code: Nat, message: String },
}

pub type ApproveTokenResult = std::result::Result<Nat, ApproveTokenError>;

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct ApproveCollectionArg {
    pub approval_info: ApprovalInfo,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum ApproveCollectionError {
    InvalidSpender,
    TooOld,
    CreatedInFuture { ledger_time: u64 },
    GenericError { error_code: Nat, message: String },
    GenericBatchError { error_code: Nat, message: String },
}

pub type ApproveCollectionResult = std::result::Result<Nat, ApproveCollectionError>;

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct RevokeTokenApprovalArg {
    pub spender: Option<Account>,
    pub from_subaccount: Option<ByteBuf>,
    pub token_id: Nat,
    pub memo: Option<ByteBuf>,
    pub created_at_time: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum RevokeTokenApprovalError {
    ApprovalDoesNotExist,
    Unauthorized,
    NonExistingTokenId,
    TooOld,
    CreatedInFuture { ledger_time: u64 },
    GenericError { error_code: Nat, message: String },
    GenericBatchError { error_code: Nat, message: String },
}

pub type RevokeTokenApprovalResponse = std::result::Result<Nat, RevokeTokenApprovalError>;

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct RevokeCollectionApprovalArg {
    pub spender: Option<Account>,
    pub from_subaccount: Option<ByteBuf>,
    pub memo: Option<ByteBuf>,
    pub created_at_time: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum RevokeCollectionApprovalError {
    ApprovalDoesNotExist,
    TooOld,
    CreatedInFuture { ledger_time: u64 },
    GenericError { error_code: Nat, message: String },
    GenericBatchError { error_code: Nat, message: String },
}

pub type RevokeCollectionApprovalResult = std::result::Result<Nat, RevokeCollectionApprovalError>;

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct IsApprovedArg {
    pub spender: Account,
    pub from_subaccount: Option<ByteBuf>,
    pub token_id: Nat,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct TokenApproval {
    pub token_id: Nat,
    pub approval_info: ApprovalInfo,
}

pub type CollectionApproval = ApprovalInfo;

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct TransferFromArg {
    pub spender_subaccount: Option<ByteBuf>,
    pub from: Account,
    pub to: Account,
    pub token_id: Nat,
    pub memo: Option<ByteBuf>,
    pub created_at_time: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub enum TransferFromError {
    InvalidRecipient,
    Unauthorized,
    NonExistingTokenId,
    TooOld,
    CreatedInFuture { ledger_time: u64 },
    Duplicate { duplicate_of: Nat },
    GenericError { error_code: Nat, message: String },
    GenericBatchError { error_code: Nat, message: String },
}

pub type TransferFromResult = std::result::Result<Nat, TransferFromError>;

// ---------------------------------------------------------------------------------------------
// ICRC-10
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize, Serialize)]
pub struct SupportedStandard {
    pub name: String,
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_are_canister_numbers_and_map_back() {
        // rrkah-fqaaa-aaaaa-aaaaq-cai is canister number 1: 00 00 00 00 00 00 00 01 01 01.
        let c = Principal::from_text("rrkah-fqaaa-aaaaa-aaaaq-cai").unwrap();
        assert_eq!(token_id_of(&c), Some(1));
        assert_eq!(video_of_token(1), c);
        for n in [0u64, 1, 0x1234_5678, u64::MAX] {
            assert_eq!(token_id_of(&video_of_token(n)), Some(n));
        }
        assert_eq!(token_id_of(&Principal::anonymous()), None);
        assert_eq!(token_id_of(&Principal::from_slice(&[0; 29])), None);
        assert_eq!(token_id_from_nat(&Nat::from(7u64)), Some(7));
        assert_eq!(
            token_id_from_nat(&(Nat::from(u64::MAX) + Nat::from(1u8))),
            None
        );
    }

    #[test]
    fn the_default_subaccount_has_two_spellings() {
        let p = Principal::from_slice(&[9; 29]);
        let zeros = Account {
            owner: p,
            subaccount: Some(ByteBuf::from(vec![0; 32])),
        };
        assert_eq!(zeros.normalized(), Account::of(p));
        assert!(zeros.is_default() && Account::of(p).is_default());
        let other = Account {
            owner: p,
            subaccount: Some(ByteBuf::from(vec![1; 32])),
        };
        assert!(!other.is_default());
        assert_eq!(other.normalized(), other);
        let short = Account {
            owner: p,
            subaccount: Some(ByteBuf::from(vec![0; 3])),
        };
        assert_eq!(short.subaccount_bytes(), None);
        assert!(!short.is_default());
    }
}
