//! The records kept in the video's stable memories 1 and 2, with their encodings (pinned by
//! tests: they are part of the stable layout documented in `store`).

use std::borrow::Cow;

use candid::{CandidType, Deserialize, Principal};
use canvid_types::access::{AccessPolicy, PlatformFee};
use canvid_types::video::{OwnershipOffer, PendingNotification, VideoStatus};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::Storable;
use serde_bytes::ByteBuf;

use super::Digest32;

/// One chunk-table value: 36 bytes, fixed size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkEntry {
    pub len: u32,
    pub sha256: Digest32,
}

impl Storable for ChunkEntry {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }
    fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(36);
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.sha256);
        out
    }
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // The map only ever holds values written by `into_bytes` (36 bytes); the BTreeMap checks
        // the bound on insert.
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[0..4]);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&bytes[4..36]);
        ChunkEntry {
            len: u32::from_le_bytes(len),
            sha256,
        }
    }
    const BOUND: Bound = Bound::Bounded {
        max_size: 36,
        is_fixed_size: true,
    };
}

/// The upload declared by `begin_upload` (the digests of the chunks are in memory 3).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct UploadDecl {
    pub mime_type: String,
    pub total_size: u64,
    pub chunk_size: u32,
    pub chunk_count: u32,
    pub has_chunk_digests: bool,
    pub file_digest: Option<ByteBuf>,
    pub duration_ms: Option<u64>,
    /// `UploadSpec::encryption` (absent in declarations written before it existed: in the
    /// clear).
    pub encryption: Option<canvid_types::encryption::Encryption>,
}

/// An ownership transfer waiting for the management canister (set before the first await).
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct InFlight {
    pub new_owner: Principal,
    pub requested_by: Principal,
    pub started_at: u64,
    /// `ChangeOwnerArgs::keep_controllers`, checked (absent in records of older modules).
    pub keep: Option<Vec<Principal>>,
    /// The controllers `update_settings` was asked to set, recorded before that call: after an
    /// upgrade cut the callback off, the transfer took effect iff they are the controllers.
    /// Absent until computed, and in records of older modules.
    pub controllers: Option<Vec<Principal>>,
}

/// Everything but the chunk bytes and tables. Stored in the state cell (memory 1) as
/// `canvid_stable_common::Candid<State>`, i.e. `Encode!(&state)`.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct State {
    pub owner: Principal,
    pub creator: Principal,
    /// Who called `install_code` (the spawn canister, or the developer's dfx identity).
    pub installer: Principal,
    pub index: Option<Principal>,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub created_at: u64,
    pub updated_at: u64,
    pub upload: Option<UploadDecl>,
    pub uploaded_bytes: u64,
    /// Set by `finish_upload`: the video is Ready.
    pub digest: Option<ByteBuf>,
    pub ready_at: Option<u64>,
    pub uploaders: Vec<Principal>,
    pub operator: Option<Principal>,
    pub transfer_seq: u64,
    pub transfer_in_flight: Option<InFlight>,
    /// Outbox of one: the latest ownership change the index has not acknowledged. One slot is
    /// enough because the index only keeps the newest `transfer_seq`: a newer change replaces an
    /// unsent older one.
    pub pending_notification: Option<PendingNotification>,
    /// The two-step transfer offered by `offer_ownership` and not yet accepted, cancelled or
    /// superseded by a transfer. Absent in cells written before it existed: candid decodes a
    /// missing `opt` field as `None`, so no migration is needed.
    pub pending_offer: Option<OwnershipOffer>,
    /// Present iff the video was installed with `VideoInit::funded_by`: the hand-over of control
    /// to the owner (see `crate::control`). Absent in older cells (the owner controls).
    pub handover: Option<Handover>,
    /// Who may watch (layout version 3; absent in older cells: public). The records it needs
    /// (allowlist, passes, receipts, purchases) are in memory 6 (`store::access`).
    pub access: Option<AccessPolicy>,
    /// The id the next purchase gets (= its receipt id). Absent: 0.
    pub next_purchase: Option<u64>,
    /// 32 random bytes (from `raw_rand`, drawn at the first `playback_token`) that sign playback
    /// tokens. Absent until then.
    pub token_secret: Option<ByteBuf>,
    /// `VideoInit::platform_fee` (layout version 3; absent: none).
    pub platform_fee: Option<PlatformFee>,
    /// Named-file counters (`store::files`; absent: no named file).
    pub files: Option<super::FilesState>,
}

/// The hand-over of control of a funded video (security review M3): the owner becomes a
/// controller only once the upload is finished, after the cycles the video does not need went
/// back to the funder.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, Deserialize)]
pub struct Handover {
    /// The spawn canister that funded the video: a controller until then, and where unused
    /// cycles go back.
    pub funded_by: Principal,
    /// Set once the owner is a controller; from then on transfers manage the controllers.
    pub handed_at: Option<u64>,
    /// A hand-over is awaiting the management canister or the funder (transfers get `Busy`).
    pub in_flight: bool,
    /// Failed attempts so far, the last failure, and the cycles returned to the funder.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub cycles_returned: u128,
}

impl State {
    /// Ready once `finish_upload` set `ready_at` (with the main file's `digest` when there is
    /// one); Uploading while a main file or a named file is declared; else Empty.
    pub fn status(&self) -> VideoStatus {
        let named = self.files.as_ref().is_some_and(|f| f.declared > 0);
        if self.digest.is_some() || self.ready_at.is_some() {
            VideoStatus::Ready
        } else if self.upload.is_some() || named {
            VideoStatus::Uploading
        } else {
            VideoStatus::Empty
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candid::{Decode, Encode};
    use canvid_stable_common::Candid;

    fn state() -> State {
        let p = Principal::from_slice(&[1, 2]);
        State {
            owner: p,
            creator: p,
            installer: Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 8, 1, 1]),
            index: None,
            title: "t".into(),
            description: String::new(),
            tags: vec!["a".into()],
            created_at: 1,
            updated_at: 2,
            upload: None,
            uploaded_bytes: 0,
            digest: Some(ByteBuf::from(vec![7; 32])),
            ready_at: None,
            uploaders: vec![p],
            operator: None,
            transfer_seq: 3,
            transfer_in_flight: None,
            pending_notification: None,
            pending_offer: None,
            handover: None,
            access: None,
            next_purchase: None,
            token_secret: None,
            platform_fee: None,
            files: None,
        }
    }

    /// The state cell's bytes are the plain candid encoding of `State`, as the hand-written
    /// `Storable` of layouts 1 and 2 stored them: cells written before `Candid<State>` read back.
    #[test]
    fn state_cell_bytes_are_the_candid_encoding() {
        let s = state();
        let bytes = Candid(s.clone()).into_bytes();
        assert_eq!(bytes, Encode!(&s).unwrap());
        assert_eq!(Candid(s.clone()).to_bytes().as_ref(), &bytes[..]);
        assert_eq!(Decode!(&bytes, State).unwrap(), s);
        assert_eq!(Candid::<State>::from_bytes(Cow::Owned(bytes)).0, s);
    }

    /// A cell written by a module whose `State` had no `pending_offer` (the released 71179eb
    /// and everything before the two-step transfer) reads back with `pending_offer = None`.
    #[test]
    fn older_cells_without_an_offer_decode() {
        #[derive(CandidType)]
        struct Before {
            owner: Principal,
            creator: Principal,
            installer: Principal,
            index: Option<Principal>,
            title: String,
            description: String,
            tags: Vec<String>,
            created_at: u64,
            updated_at: u64,
            upload: Option<UploadDecl>,
            uploaded_bytes: u64,
            digest: Option<ByteBuf>,
            ready_at: Option<u64>,
            uploaders: Vec<Principal>,
            operator: Option<Principal>,
            transfer_seq: u64,
            transfer_in_flight: Option<InFlight>,
            pending_notification: Option<PendingNotification>,
        }
        let s = state();
        let old = Before {
            owner: s.owner,
            creator: s.creator,
            installer: s.installer,
            index: s.index,
            title: s.title.clone(),
            description: s.description.clone(),
            tags: s.tags.clone(),
            created_at: s.created_at,
            updated_at: s.updated_at,
            upload: s.upload.clone(),
            uploaded_bytes: s.uploaded_bytes,
            digest: s.digest.clone(),
            ready_at: s.ready_at,
            uploaders: s.uploaders.clone(),
            operator: s.operator,
            transfer_seq: s.transfer_seq,
            transfer_in_flight: None,
            pending_notification: None,
        };
        let bytes = Encode!(&old).unwrap();
        assert_eq!(Candid::<State>::from_bytes(Cow::Owned(bytes)).0, s);
    }

    #[test]
    fn chunk_entry_is_len_then_sha256() {
        let e = ChunkEntry {
            len: 0x0102_0304,
            sha256: [9; 32],
        };
        let bytes = e.into_bytes();
        assert_eq!(bytes.len(), 36);
        assert_eq!(&bytes[..4], &[4, 3, 2, 1]);
        assert_eq!(&bytes[4..], &[9; 32]);
        assert_eq!(ChunkEntry::from_bytes(Cow::Owned(bytes)), e);
    }
}
