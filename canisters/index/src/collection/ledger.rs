//! The collection's operations on the index store. Each one that changes something writes its
//! ICRC-3 block first and then the maps, so a block that cannot be written (stable memory full)
//! leaves everything as it was; none of them traps, which matters because the transfer settles
//! after awaits (a trap there would roll back a callback while the video has moved).

use candid::{Nat, Principal};
use canvid_icrc3::blocks::{Account as BlockAccount, CallerFields, Tx};
use canvid_icrc3::Value;
use canvid_stable_common::{Candid, PKey};
use canvid_types::icrc::{
    token_id_from_nat, token_id_of, video_of_token, Account, ApprovalInfo, IsApprovedArg,
    TokenApproval,
};
use canvid_types::index::OwnerChange;
use ic_cdk_management_canister::CanisterInfoResult;
use ic_stable_structures::Memory;
use serde_bytes::ByteBuf;

use super::logic::{self, TimeError};
use super::store::{collection_approval_key, token_approval_key, PendingTransfer, TokenSummary};
use super::{codes, DEDUP_PRUNE_PER_CALL, MAX_APPROVALS, MAX_MEMO_BYTES, MAX_REVOKE_APPROVALS};
use crate::store::IndexStore;

/// Why a transfer (`icrc7_transfer` or `icrc37_transfer_from`) is refused: the variants both
/// methods' error types share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XferError {
    NonExistingTokenId,
    InvalidRecipient,
    Unauthorized,
    TooOld,
    CreatedInFuture { ledger_time: u64 },
    Duplicate { duplicate_of: u64 },
    Generic { code: u64, message: String },
}

impl XferError {
    pub fn generic(code: u64, message: impl Into<String>) -> Self {
        XferError::Generic {
            code,
            message: message.into(),
        }
    }
}

impl From<TimeError> for XferError {
    fn from(e: TimeError) -> Self {
        match e {
            TimeError::TooOld => XferError::TooOld,
            TimeError::CreatedInFuture { ledger_time } => {
                XferError::CreatedInFuture { ledger_time }
            }
        }
    }
}

/// Why an approval or revocation is refused (mapped onto each method's error type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApprovalError {
    InvalidSpender,
    Unauthorized,
    NonExistingTokenId,
    ApprovalDoesNotExist,
    TooOld,
    CreatedInFuture { ledger_time: u64 },
    Generic { code: u64, message: String },
}

impl From<TimeError> for ApprovalError {
    fn from(e: TimeError) -> Self {
        match e {
            TimeError::TooOld => ApprovalError::TooOld,
            TimeError::CreatedInFuture { ledger_time } => {
                ApprovalError::CreatedInFuture { ledger_time }
            }
        }
    }
}

impl ApprovalError {
    /// The block could not be written (stable memory full): nothing changed.
    fn log_full(message: String) -> Self {
        ApprovalError::Generic {
            code: codes::CALL_FAILED,
            message,
        }
    }
}

/// The checks every ICRC-37 request gets: its `created_at_time` within the window, its memo
/// within `icrc7:max_memo_size`.
fn check_time_and_memo(
    now: u64,
    created_at_time: Option<u64>,
    memo: &Option<ByteBuf>,
) -> Result<(), ApprovalError> {
    logic::check_created_at(now, created_at_time)?;
    if !logic::memo_fits(memo) {
        return Err(ApprovalError::Generic {
            code: codes::MEMO_TOO_LONG,
            message: format!("a memo has at most {MAX_MEMO_BYTES} bytes"),
        });
    }
    Ok(())
}

/// A transfer as requested, once decoded: `spender` is set for `icrc37_transfer_from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRequest {
    pub caller: Principal,
    pub token_id: Nat,
    /// The account the token leaves: for `icrc7_transfer` the caller's (with
    /// `from_subaccount`), for `icrc37_transfer_from` the request's `from`.
    pub from: Account,
    pub to: Account,
    pub spender: Option<Account>,
    pub memo: Option<ByteBuf>,
    pub created_at_time: Option<u64>,
    /// [`logic::dedup_key`] of the request, when it has a `created_at_time`.
    pub dedup: Option<[u8; 32]>,
}

/// The ICRC-3 encoding of an account (the default subaccount written as absent).
pub fn block_account(a: &Account) -> BlockAccount {
    let a = a.normalized();
    BlockAccount {
        owner: a.owner,
        subaccount: a
            .subaccount
            .as_ref()
            .and_then(|s| s.as_slice().try_into().ok()),
    }
}

fn caller_fields(memo: &Option<ByteBuf>, created_at_time: Option<u64>) -> CallerFields {
    CallerFields {
        memo: memo.as_ref().map(|m| m.to_vec()),
        created_at_time,
    }
}

fn out_of_memory(e: impl std::fmt::Display) -> String {
    format!("the collection's log could not grow: {e}")
}

fn is_active(a: &ApprovalInfo, now: u64) -> bool {
    a.expires_at.is_none_or(|e| e > now)
}

/// The token id of a registered video (as `Nat`).
pub fn tid_nat(tid: u64) -> Nat {
    Nat::from(tid)
}

impl<M: Memory> IndexStore<M> {
    // -----------------------------------------------------------------------------------------
    // Tokens
    // -----------------------------------------------------------------------------------------

    /// The holder of token `tid`, if it is a registered video.
    pub fn token_holder(&self, tid: u64) -> Option<Principal> {
        self.get(&video_of_token(tid)).map(|e| e.owner)
    }

    fn registered_tid(&self, token_id: &Nat) -> Option<(u64, Principal)> {
        let tid = token_id_from_nat(token_id)?;
        Some((tid, self.token_holder(tid)?))
    }

    /// Tokens (registered video canisters) in token-id order, after `prev`.
    pub fn tokens(&self, prev: Option<&Nat>, take: usize) -> Vec<Nat> {
        let start = match prev {
            None => None,
            Some(p) => match token_id_from_nat(p) {
                Some(t) => Some(PKey::new(&video_of_token(t))),
                None => return vec![],
            },
        };
        self.video_keys_after(start, take, |k| token_id_of(&k.principal()))
            .into_iter()
            .map(tid_nat)
            .collect()
    }

    /// `account`'s tokens in token-id order, after `prev` (only default accounts hold videos).
    pub fn tokens_of(&self, account: &Account, prev: Option<&Nat>, take: usize) -> Vec<Nat> {
        if !account.is_default() {
            return vec![];
        }
        let after = match prev {
            None => None,
            Some(p) => match token_id_from_nat(p) {
                Some(t) => Some(video_of_token(t)),
                None => return vec![],
            },
        };
        self.owner_videos_after(&account.owner, after.as_ref(), take)
            .into_iter()
            .filter_map(|v| token_id_of(&v))
            .map(tid_nat)
            .collect()
    }

    pub fn balance_of(&self, account: &Account) -> Nat {
        if !account.is_default() {
            return Nat::from(0u8);
        }
        Nat::from(self.count_by_owner(&account.owner))
    }

    /// Token metadata: what the collection knows of the video, and where its own certified
    /// metadata and media are (ICRC-97 `icrc97:metadata`: URLs of JSON metadata).
    pub fn token_metadata(&self, token_id: &Nat) -> Option<Vec<(String, Value)>> {
        let (tid, _) = self.registered_tid(token_id)?;
        let video = video_of_token(tid);
        let e = self.get(&video)?;
        let mut entries = token_metadata_entries(&video, &e.creator, e.registered_at);
        if let Some(summary) = self.collection.summaries.get(&PKey::new(&video)) {
            for (k, v) in summary_entries(&summary.0, false) {
                match entries.iter_mut().find(|(key, _)| *key == k) {
                    Some(e) => e.1 = v,
                    None => entries.push((k, v)),
                }
            }
        }
        Some(entries)
    }

    /// Records what the video said of itself (`metadata`), if it changed: a `7update_token`
    /// block first, then the summary. Refused (nothing stored) beyond the video's own bounds.
    pub fn set_token_summary(
        &mut self,
        video: &Principal,
        summary: TokenSummary,
        now: u64,
    ) -> Result<Option<u64>, String> {
        use canvid_types::video::{MAX_DESCRIPTION_BYTES, MAX_TITLE_BYTES};
        let Some(tid) = token_id_of(video).filter(|t| self.token_holder(*t).is_some()) else {
            return Err(format!("{video} is not a token of this collection"));
        };
        if summary.title.len() > MAX_TITLE_BYTES
            || summary.description.len() > MAX_DESCRIPTION_BYTES
            || summary.mime_type.len() > MAX_MIME_BYTES
            || summary.digest.as_ref().is_some_and(|d| d.len() != 32)
        {
            return Err(format!(
                "video {video} answered metadata beyond the bounds of canvid's video canister"
            ));
        }
        let key = PKey::new(video);
        let same = |old: &TokenSummary| {
            TokenSummary {
                refreshed_at: 0,
                ..old.clone()
            } == TokenSummary {
                refreshed_at: 0,
                ..summary.clone()
            }
        };
        if self
            .collection
            .summaries
            .get(&key)
            .is_some_and(|old| same(&old.0))
        {
            self.collection.summaries.insert(key, Candid(summary));
            return Ok(None);
        }
        let tx = Tx::UpdateToken {
            tid: tid_nat(tid),
            from: None,
            meta: Value::map([(
                "icrc7:token_metadata",
                Value::map(summary_entries(&summary, true)),
            )]),
            caller: CallerFields::default(),
        };
        let b = self.append_block(now, &tx)?;
        self.collection.summaries.insert(key, Candid(summary));
        Ok(Some(b))
    }

    // -----------------------------------------------------------------------------------------
    // Mints
    // -----------------------------------------------------------------------------------------

    /// The `7mint` block of a newly registered video (written by `register` before the maps).
    pub(crate) fn mint_block(
        &mut self,
        video: &Principal,
        owner: &Principal,
        creator: &Principal,
        now: u64,
    ) -> Result<Option<u64>, String> {
        let Some(tid) = token_id_of(video) else {
            // Not a canister id: `register_video` refuses those, so only a native test of the
            // store gets here; such an entry is not a token.
            return Ok(None);
        };
        // What registration knows, and nothing derivable from it (the URLs follow from the
        // canister id): every mint block is stored for good.
        let meta = Value::map([(
            "icrc7:token_metadata",
            Value::map([
                ("canvid:video_canister", Value::text(video.to_text())),
                ("canvid:creator", Value::text(creator.to_text())),
                ("canvid:registered_at", Value::nat(now)),
            ]),
        )]);
        let tx = Tx::Mint {
            tid: tid_nat(tid),
            from: None,
            to: BlockAccount::of(*owner),
            meta,
            caller: CallerFields::default(),
        };
        self.append_block(now, &tx).map(Some)
    }

    /// Writes the mints of videos registered before the collection existed, at most `max`,
    /// from the stored cursor; returns whether any remain. Videos registered since the
    /// backfill began minted themselves and are skipped.
    pub fn backfill_mints(&mut self, now: u64, max: usize) -> bool {
        let Some((cursor, started_at)) = self.backfill_state() else {
            return false;
        };
        let batch = self.videos_after_key(cursor, max);
        for (key, video, owner, creator, registered_at) in &batch {
            if *registered_at < started_at && self.mint_block(video, owner, creator, now).is_err() {
                // Out of stable memory: stop here, the cursor stays on the last one minted.
                return true;
            }
            self.set_backfill_state(Some((*key, started_at)));
        }
        if batch.len() < max {
            self.set_backfill_state(None);
            return false;
        }
        true
    }

    // -----------------------------------------------------------------------------------------
    // Transfers
    // -----------------------------------------------------------------------------------------

    /// Checks a transfer and, if it may go ahead, locks its token with a [`PendingTransfer`].
    pub fn begin_transfer(
        &mut self,
        req: &TransferRequest,
        index_id: &Principal,
        now: u64,
    ) -> Result<PendingTransfer, XferError> {
        let (tid, holder) = self
            .registered_tid(&req.token_id)
            .ok_or(XferError::NonExistingTokenId)?;
        let video = video_of_token(tid);
        if !logic::memo_fits(&req.memo) {
            return Err(XferError::generic(
                codes::MEMO_TOO_LONG,
                format!("a memo has at most {MAX_MEMO_BYTES} bytes"),
            ));
        }
        logic::check_created_at(now, req.created_at_time)?;
        if let Some(key) = &req.dedup {
            self.collection.prune_dedup(now, DEDUP_PRUNE_PER_CALL);
            if let Some(b) = self.collection.duplicate_of(key) {
                return Err(XferError::Duplicate { duplicate_of: b });
            }
        }
        let holder_account = Account::of(holder);
        if req.from.normalized() != holder_account {
            return Err(XferError::Unauthorized);
        }
        if let Some(spender) = &req.spender {
            if !self.may_spend(tid, &holder, spender, now) {
                return Err(XferError::Unauthorized);
            }
        } else if req.caller != holder {
            return Err(XferError::Unauthorized);
        }
        if req.to.normalized() == holder_account {
            return Err(XferError::InvalidRecipient);
        }
        if let Some(problem) = logic::recipient_problem(&req.to, &video, index_id) {
            return Err(XferError::generic(codes::BAD_RECIPIENT, problem));
        }
        if self.collection.in_flight.contains_key(&PKey::new(&video)) {
            return Err(XferError::generic(
                codes::BUSY,
                format!("token {tid} is being transferred; retry"),
            ));
        }
        let pending = PendingTransfer {
            tid,
            from: holder,
            to: req.to.owner,
            spender: req.spender.as_ref().map(|s| s.normalized()),
            memo: req.memo.clone(),
            created_at_time: req.created_at_time,
            dedup: req.dedup.map(|k| ByteBuf::from(k.to_vec())),
            started_at: now,
            block: None,
        };
        self.collection
            .in_flight
            .insert(PKey::new(&video), Candid(pending.clone()));
        Ok(pending)
    }

    /// May `spender` move token `tid` of `holder` now (the holder itself, an active token
    /// approval from the default account, or an active collection approval)?
    pub fn may_spend(&self, tid: u64, holder: &Principal, spender: &Account, now: u64) -> bool {
        if spender.normalized() == Account::of(*holder) {
            return true;
        }
        let token = self
            .collection
            .token_approvals
            .get(&token_approval_key(tid, spender))
            .is_some_and(|a| is_active(&a.0, now));
        token
            || self
                .collection
                .collection_approvals
                .get(&collection_approval_key(holder, spender))
                .is_some_and(|a| is_active(&a.0, now))
    }

    /// The transfer of `video` in flight, if any.
    pub fn pending_transfer(&self, video: &Principal) -> Option<PendingTransfer> {
        self.collection
            .in_flight
            .get(&PKey::new(video))
            .map(|p| p.0)
    }

    /// All transfers in flight (for the recovery after an upgrade or a lost answer).
    pub fn pending_videos(&self, max: usize) -> Vec<Principal> {
        self.collection
            .in_flight
            .keys()
            .take(max)
            .map(|k| k.principal())
            .collect()
    }

    /// Drops the lock of a transfer that did not happen.
    pub fn abandon_transfer(&mut self, video: &Principal) {
        self.collection.in_flight.remove(&PKey::new(video));
    }

    /// Settles the transfer of `video` with what the IC says now (`info`): applied (its block
    /// index) if the IC shows the recipient as a controller with a newer history than the last
    /// applied change — or if the video's ownership report applied it meanwhile; otherwise it
    /// did not happen. Either way the lock is gone. `Err` only if the block could not be
    /// written (the lock then stays for the recovery to retry).
    pub fn settle_transfer(
        &mut self,
        video: &Principal,
        info: &CanisterInfoResult,
        transfer_seq: Option<u64>,
        now: u64,
    ) -> Result<Option<u64>, String> {
        let Some(p) = self.pending_transfer(video) else {
            return Ok(None);
        };
        if let Some(b) = p.block {
            self.abandon_transfer(video);
            return Ok(Some(b));
        }
        let verified = crate::logic::VerifiedInfo {
            controllers: info.controllers.clone(),
            total_num_changes: info.total_num_changes,
        };
        // `transfer_seq` is for display; when the video's answer was lost, each transfer bumps
        // it by one.
        let seq = transfer_seq.unwrap_or_else(|| {
            self.get(video)
                .map_or(1, |e| e.transfer_seq.saturating_add(1))
        });
        let change = OwnerChange {
            new_owner: p.to,
            transfer_seq: seq,
        };
        match crate::logic::judge_report(video, self.applied_history(video), &verified, &change) {
            Ok(true) => {}
            _ => {
                self.abandon_transfer(video);
                return Ok(None);
            }
        }
        let block = self.apply_owner_change(video, &change, info.total_num_changes, now)?;
        self.abandon_transfer(video);
        Ok(block)
    }

    /// Applies an ownership change the IC bore out (the report path and the transfer path):
    /// the block (the pending transfer's, if it is this change, else a `7xfer` of a direct
    /// transfer), the owner maps, the token's approvals revoked. `Ok(None)` when the owner did
    /// not actually change (the history moved for another reason).
    pub(crate) fn apply_owner_change(
        &mut self,
        video: &Principal,
        change: &OwnerChange,
        total_num_changes: u64,
        now: u64,
    ) -> Result<Option<u64>, String> {
        let Some(entry) = self.get(video) else {
            return Ok(None);
        };
        let old = entry.owner;
        let new = change.new_owner;
        let mut block = None;
        if old != new {
            if let Some(tid) = token_id_of(video) {
                let pending = self
                    .pending_transfer(video)
                    .filter(|p| p.to == new && p.from == old && p.block.is_none());
                let tx = match &pending {
                    Some(p) => {
                        let caller = caller_fields(&p.memo, p.created_at_time);
                        match &p.spender {
                            Some(s) => Tx::TransferFrom {
                                tid: tid_nat(tid),
                                spender: block_account(s),
                                from: BlockAccount::of(old),
                                to: BlockAccount::of(new),
                                caller,
                            },
                            None => Tx::Transfer {
                                tid: tid_nat(tid),
                                from: BlockAccount::of(old),
                                to: BlockAccount::of(new),
                                caller,
                            },
                        }
                    }
                    None => Tx::Transfer {
                        tid: tid_nat(tid),
                        from: BlockAccount::of(old),
                        to: BlockAccount::of(new),
                        caller: CallerFields::default(),
                    },
                };
                let b = self.append_block(now, &tx)?;
                block = Some(b);
                self.collection.clear_token_approvals(tid);
                if let Some(mut p) = pending {
                    if let Some(key) = p.dedup.as_ref().and_then(|k| k.as_slice().try_into().ok()) {
                        self.collection
                            .remember(key, b, p.created_at_time.unwrap_or(now));
                    }
                    p.block = Some(b);
                    self.collection
                        .in_flight
                        .insert(PKey::new(video), Candid(p));
                }
            }
        }
        self.set_owner(video, change, total_num_changes);
        Ok(block)
    }

    /// Learns the module hashes the IC's history shows a registrar installing.
    pub fn learn_modules(&mut self, info: &CanisterInfoResult) {
        let registrars = self.registrars();
        for h in logic::modules_installed_by(info, &registrars) {
            self.collection.trusted_modules.insert(h, ());
        }
    }

    /// Does `info` show `holder` controlling `video` alone with a trusted module?
    pub fn sole_control_problem(
        &self,
        info: &CanisterInfoResult,
        holder: &Principal,
        video: &Principal,
    ) -> Option<String> {
        logic::sole_control_problem(info, holder, video, &self.registrars(), |h| {
            self.collection.trusted_modules.contains_key(h)
        })
    }

    // -----------------------------------------------------------------------------------------
    // Approvals
    // -----------------------------------------------------------------------------------------

    fn check_approval_request(&self, info: &ApprovalInfo, now: u64) -> Result<(), ApprovalError> {
        check_time_and_memo(now, Some(info.created_at_time), &info.memo)?;
        let from = Account {
            owner: Principal::anonymous(),
            subaccount: info.from_subaccount.clone(),
        };
        if !from.is_default() {
            return Err(ApprovalError::Generic {
                code: codes::FROM_SUBACCOUNT,
                message: "videos are held by default accounts: approve from the default subaccount"
                    .into(),
            });
        }
        if info.expires_at.is_some_and(|e| e <= now) {
            return Err(ApprovalError::Generic {
                code: codes::EXPIRED,
                message: "expires_at is not in the future".into(),
            });
        }
        if info.spender.owner == Principal::anonymous() {
            return Err(ApprovalError::InvalidSpender);
        }
        Ok(())
    }

    /// `icrc37_approve_tokens`, one request: the holder approves `spender` for token `tid`
    /// (replacing an earlier approval of the same spender).
    pub fn approve_token(
        &mut self,
        caller: &Principal,
        token_id: &Nat,
        info: &ApprovalInfo,
        now: u64,
    ) -> Result<u64, ApprovalError> {
        let (tid, holder) = self
            .registered_tid(token_id)
            .ok_or(ApprovalError::NonExistingTokenId)?;
        self.check_approval_request(info, now)?;
        if *caller != holder {
            return Err(ApprovalError::Unauthorized);
        }
        if info.spender.normalized() == Account::of(holder) {
            return Err(ApprovalError::InvalidSpender);
        }
        self.refuse_if_in_flight(tid)?;
        let key = token_approval_key(tid, &info.spender);
        let existing = self.collection.token_approvals.get(&key).is_some();
        if !existing {
            self.drop_expired_token_approvals(tid, now);
            if self.collection.token_approvals_of(tid).len() >= MAX_APPROVALS {
                return Err(ApprovalError::Generic {
                    code: codes::TOO_MANY_APPROVALS,
                    message: format!("token {tid} has {MAX_APPROVALS} approvals already"),
                });
            }
        }
        let tx = Tx::ApproveToken {
            tid: tid_nat(tid),
            from: BlockAccount::of(holder),
            spender: block_account(&info.spender),
            expires_at: info.expires_at,
            caller: caller_fields(&info.memo, Some(info.created_at_time)),
        };
        let b = self
            .append_block(now, &tx)
            .map_err(ApprovalError::log_full)?;
        let mut stored = info.clone();
        stored.spender = info.spender.normalized();
        stored.from_subaccount = None;
        self.collection.token_approvals.insert(key, Candid(stored));
        if !existing {
            self.collection.spender_added(&info.spender.owner);
        }
        Ok(b)
    }

    /// `icrc37_approve_collection`, one request: `caller` approves `spender` for all its
    /// tokens, present and future.
    pub fn approve_collection(
        &mut self,
        caller: &Principal,
        info: &ApprovalInfo,
        now: u64,
    ) -> Result<u64, ApprovalError> {
        self.check_approval_request(info, now)?;
        if info.spender.normalized() == Account::of(*caller) {
            return Err(ApprovalError::InvalidSpender);
        }
        // ICRC-7's advice against approval spam: only holders approve.
        if self.count_by_owner(caller) == 0 {
            return Err(ApprovalError::Generic {
                code: codes::NOT_A_HOLDER,
                message: "only a holder of at least one token may approve the collection".into(),
            });
        }
        let key = collection_approval_key(caller, &info.spender);
        let existing = self.collection.collection_approvals.get(&key).is_some();
        if !existing {
            // Expired approvals make room (they can never be used again).
            let mut active = 0;
            for (k, a) in self.collection.collection_approvals_of(caller) {
                if is_active(&a, now) {
                    active += 1;
                } else {
                    self.collection.collection_approvals.remove(&k);
                    self.collection.spender_removed(&a.spender.owner);
                }
            }
            if active >= MAX_APPROVALS {
                return Err(ApprovalError::Generic {
                    code: codes::TOO_MANY_APPROVALS,
                    message: format!("{caller} has {MAX_APPROVALS} collection approvals already"),
                });
            }
        }
        let tx = Tx::ApproveCollection {
            from: BlockAccount::of(*caller),
            spender: block_account(&info.spender),
            expires_at: info.expires_at,
            caller: caller_fields(&info.memo, Some(info.created_at_time)),
        };
        let b = self
            .append_block(now, &tx)
            .map_err(ApprovalError::log_full)?;
        let mut stored = info.clone();
        stored.spender = info.spender.normalized();
        stored.from_subaccount = None;
        self.collection
            .collection_approvals
            .insert(key, Candid(stored));
        if !existing {
            self.collection.spender_added(&info.spender.owner);
        }
        Ok(b)
    }

    /// `icrc37_revoke_token_approvals`, one request: the holder revokes one spender's approval
    /// of `tid`, or all of them (`spender` absent). The spender itself may revoke its own.
    #[allow(clippy::too_many_arguments)]
    pub fn revoke_token(
        &mut self,
        caller: &Principal,
        token_id: &Nat,
        spender: Option<&Account>,
        from_subaccount: &Option<ByteBuf>,
        memo: &Option<ByteBuf>,
        created_at_time: Option<u64>,
        now: u64,
    ) -> Result<u64, ApprovalError> {
        let (tid, holder) = self
            .registered_tid(token_id)
            .ok_or(ApprovalError::NonExistingTokenId)?;
        check_time_and_memo(now, created_at_time, memo)?;
        let from = Account {
            owner: *caller,
            subaccount: from_subaccount.clone(),
        };
        let by_spender = spender.is_some_and(|s| s.owner == *caller) && *caller != holder;
        if !by_spender && from.normalized() != Account::of(holder) {
            return Err(ApprovalError::Unauthorized);
        }
        let targets: Vec<_> = match spender {
            Some(s) => {
                let k = token_approval_key(tid, s);
                self.collection
                    .token_approvals
                    .get(&k)
                    .map(|a| vec![(k, a.0)])
                    .unwrap_or_default()
            }
            None => self.collection.token_approvals_of(tid),
        };
        if targets.is_empty() {
            return Err(ApprovalError::ApprovalDoesNotExist);
        }
        if targets.len() > MAX_REVOKE_APPROVALS {
            // Cannot happen with MAX_APPROVALS <= MAX_REVOKE_APPROVALS; kept as a guard.
            return Err(ApprovalError::Generic {
                code: codes::BATCH_TOO_LARGE,
                message: format!("at most {MAX_REVOKE_APPROVALS} approvals per revocation"),
            });
        }
        let tx = Tx::RevokeToken {
            tid: tid_nat(tid),
            from: BlockAccount::of(holder),
            spender: spender.map(block_account),
            caller: caller_fields(memo, created_at_time),
        };
        let b = self
            .append_block(now, &tx)
            .map_err(ApprovalError::log_full)?;
        for (k, a) in targets {
            self.collection.token_approvals.remove(&k);
            self.collection.spender_removed(&a.spender.owner);
        }
        Ok(b)
    }

    /// `icrc37_revoke_collection_approvals`, one request.
    pub fn revoke_collection(
        &mut self,
        caller: &Principal,
        spender: Option<&Account>,
        from_subaccount: &Option<ByteBuf>,
        memo: &Option<ByteBuf>,
        created_at_time: Option<u64>,
        now: u64,
    ) -> Result<u64, ApprovalError> {
        check_time_and_memo(now, created_at_time, memo)?;
        let from = Account {
            owner: *caller,
            subaccount: from_subaccount.clone(),
        };
        if !from.is_default() {
            return Err(ApprovalError::ApprovalDoesNotExist);
        }
        let targets: Vec<_> = match spender {
            Some(s) => {
                let k = collection_approval_key(caller, s);
                self.collection
                    .collection_approvals
                    .get(&k)
                    .map(|a| vec![(k, a.0)])
                    .unwrap_or_default()
            }
            None => self.collection.collection_approvals_of(caller),
        };
        if targets.is_empty() {
            return Err(ApprovalError::ApprovalDoesNotExist);
        }
        let tx = Tx::RevokeCollection {
            from: BlockAccount::of(*caller),
            spender: spender.map(block_account),
            caller: caller_fields(memo, created_at_time),
        };
        let b = self
            .append_block(now, &tx)
            .map_err(ApprovalError::log_full)?;
        for (k, a) in targets {
            self.collection.collection_approvals.remove(&k);
            self.collection.spender_removed(&a.spender.owner);
        }
        Ok(b)
    }

    /// `icrc37_is_approved`, one request.
    pub fn is_approved(&self, arg: &IsApprovedArg, now: u64) -> bool {
        let Some((tid, holder)) = self.registered_tid(&arg.token_id) else {
            return false;
        };
        let from = Account {
            owner: holder,
            subaccount: arg.from_subaccount.clone(),
        };
        from.is_default()
            && arg.spender.normalized() != Account::of(holder)
            && self.may_spend(tid, &holder, &arg.spender, now)
    }

    /// `icrc37_get_token_approvals`: the active approvals of a token, in spender order, after
    /// `prev`'s spender.
    pub fn token_approvals(
        &self,
        token_id: &Nat,
        prev: Option<&TokenApproval>,
        take: usize,
        now: u64,
    ) -> Vec<TokenApproval> {
        let Some((tid, _)) = self.registered_tid(token_id) else {
            return vec![];
        };
        let after = prev.map(|p| token_approval_key(tid, &p.approval_info.spender));
        self.collection
            .token_approvals_of(tid)
            .into_iter()
            .filter(|(k, _)| after.is_none_or(|a| *k > a))
            .filter(|(_, a)| is_active(a, now))
            .take(take)
            .map(|(_, a)| TokenApproval {
                token_id: tid_nat(tid),
                approval_info: a,
            })
            .collect()
    }

    /// `icrc37_get_collection_approvals`: `owner`'s active collection approvals, in spender
    /// order, after `prev`'s spender.
    pub fn collection_approvals(
        &self,
        owner: &Account,
        prev: Option<&ApprovalInfo>,
        take: usize,
        now: u64,
    ) -> Vec<ApprovalInfo> {
        if !owner.is_default() {
            return vec![];
        }
        let after = prev.map(|p| collection_approval_key(&owner.owner, &p.spender));
        self.collection
            .collection_approvals_of(&owner.owner)
            .into_iter()
            .filter(|(k, _)| after.is_none_or(|a| *k > a))
            .filter(|(_, a)| is_active(a, now))
            .take(take)
            .map(|(_, a)| a)
            .collect()
    }

    fn drop_expired_token_approvals(&mut self, tid: u64, now: u64) {
        for (k, a) in self.collection.token_approvals_of(tid) {
            if !is_active(&a, now) {
                self.collection.token_approvals.remove(&k);
                self.collection.spender_removed(&a.spender.owner);
            }
        }
    }

    fn refuse_if_in_flight(&self, tid: u64) -> Result<(), ApprovalError> {
        if self
            .collection
            .in_flight
            .contains_key(&PKey::new(&video_of_token(tid)))
        {
            return Err(ApprovalError::Generic {
                code: codes::BUSY,
                message: format!("token {tid} is being transferred; retry"),
            });
        }
        Ok(())
    }

    /// Has `p` given a collection approval that is still stored (expired or not)? It may revoke
    /// it whether or not it holds a token now.
    pub fn has_collection_approvals(&self, p: &Principal) -> bool {
        !self.collection.collection_approvals_of(p).is_empty()
    }

    /// Is `p` named as a spender by some approval (the ingress filter lets it call
    /// `icrc37_transfer_from`)?
    pub fn is_spender(&self, p: &Principal) -> bool {
        self.collection.is_spender(p)
    }

    // -----------------------------------------------------------------------------------------
    // The log
    // -----------------------------------------------------------------------------------------

    fn append_block(&mut self, now: u64, tx: &Tx) -> Result<u64, String> {
        self.log.append_tx(now, tx).map_err(out_of_memory)
    }

    pub fn log(
        &self,
    ) -> &canvid_icrc3::BlockLog<ic_stable_structures::memory_manager::VirtualMemory<M>> {
        &self.log
    }
}

/// Longest MIME type kept in a summary.
pub const MAX_MIME_BYTES: usize = 255;

/// A summary as token metadata entries. In a block the description (up to 16 KiB) is replaced by
/// its SHA-256 (`canvid:description_sha256`), so that a block stays small enough for
/// `icrc3_get_blocks` to return hundreds per answer; `icrc7_token_metadata` has it whole.
fn summary_entries(s: &TokenSummary, in_block: bool) -> Vec<(String, Value)> {
    use sha2::{Digest, Sha256};
    let mut out = vec![
        ("icrc7:name".to_string(), Value::text(s.title.clone())),
        ("canvid:mime_type".into(), Value::text(s.mime_type.clone())),
        ("canvid:size".into(), Value::nat(s.size)),
        ("canvid:ready".into(), Value::nat(u64::from(s.ready))),
    ];
    if in_block {
        out.push((
            "canvid:description_sha256".into(),
            Value::blob(Sha256::digest(s.description.as_bytes()).to_vec()),
        ));
    } else {
        out.push((
            "icrc7:description".into(),
            Value::text(s.description.clone()),
        ));
    }
    if let Some(d) = s.duration_ms {
        out.push(("canvid:duration_ms".into(), Value::nat(d)));
    }
    if let Some(d) = &s.digest {
        out.push(("canvid:digest".into(), Value::blob(d.to_vec())));
    }
    out
}

/// The token metadata of a video: what a marketplace needs to list it without canvid-specific
/// code, and where the video's own certified `/metadata.json` (title, description, size, mime
/// type, duration, digest) and media are.
pub fn token_metadata_entries(
    video: &Principal,
    creator: &Principal,
    registered_at: u64,
) -> Vec<(String, Value)> {
    let base = format!("https://{video}.icp0.io");
    vec![
        (
            "icrc7:name".into(),
            Value::text(format!("canvid video {video}")),
        ),
        ("canvid:video_canister".into(), Value::text(video.to_text())),
        ("canvid:creator".into(), Value::text(creator.to_text())),
        ("canvid:registered_at".into(), Value::nat(registered_at)),
        (
            "icrc97:metadata".into(),
            Value::Array(vec![Value::text(format!("{base}/metadata.json"))]),
        ),
        (
            "canvid:media_url".into(),
            Value::text(format!("{base}/video")),
        ),
        (
            "canvid:poster_url".into(),
            Value::text(format!("{base}/poster")),
        ),
    ]
}
