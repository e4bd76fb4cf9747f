//! Ingress: submission ([`State::submit`]: size, existence and `inspect_message` checks, the
//! ingress fee), request ids, certificates and keys (what the IC's HTTP interface needs from the
//! replica), and the retention of answers.
//!
//! Agents name an update call by its *request id* (the representation-independent hash of the
//! call's content) and poll `/request_status/<request id>` in read_state certificates until it
//! reads `replied` or `rejected`. [`Replica::submit_ingress`] queues a message exactly like
//! [`Replica::submit_call`] (inspect_message, existence checks, ingress fee) and remembers the
//! request id; the status follows the message through the queue: `received` while it waits for a
//! round, `processing` once it executed and waits on downstream calls, then `replied`/`rejected`
//! with the reply or reject.
//!
//! ## Retention: `done`, then forgotten
//!
//! A long-running replica (`canvid serve`) answers a browser's video Range requests with update
//! calls whose replies are up to 2 MiB each, so the ingress history must not keep replies
//! forever. Every message (by request id or by [`crate::MessageId`] alike) is enrolled, when it
//! becomes final, in a time-ordered queue keyed by the replica time it became final; each round
//! ([`State::tick`]) pops what is due — no scan of the history:
//!
//! 1. [`REPLY_RETENTION_NS`] (6 min) after it became final, the reply or reject is dropped and
//!    the status becomes `done` (the interface specification's "the call has been completed, and
//!    it has been long enough that the reply/reject data has been purged"):
//!    `/request_status/<id>/status` reads `done` with no other leaf, [`Replica::request_status`]
//!    is [`RequestStatus::Done`], and [`Replica::await_call`] answers a clear reject (SysFatal,
//!    `IC0100`) instead of the reply. Agents treat `done` as "reply no longer available"
//!    (ic-agent: `RequestStatusDoneNoReply`). Why 6 minutes: the HTTP interface accepts requests
//!    expiring up to 5 minutes (`MAX_INGRESS_TTL`) plus 60 s of drift after the replica's time at
//!    submission, and agents stop polling at their request's expiry. A message becomes final no
//!    earlier than it was submitted, so keeping the reply 5 min + 60 s after that point outlives
//!    every request's expiry: an agent polling within its expiry always finds the reply. (The IC
//!    keeps a final status for `MAX_INGRESS_TTL` = 5 min after it became final, turning replies
//!    into `done` earlier only under memory pressure; the extra minute covers the drift the
//!    expiry check allows.)
//! 2. [`FORGET_AFTER_NS`] (15 min) after it became final, the message is forgotten entirely: its
//!    request id reads as absent (`unknown`), [`Replica::await_call`] answers "unknown message".
//!    By then every request submitted before the message became final has expired, so the HTTP
//!    interface refuses a replay of it (the IC forgets final statuses after 5 min for the same
//!    reason); until then a late poller gets the precise `done`. Forgetting bounds the memory of
//!    a long session to the messages of the last 15 minutes (a `done` entry is ~200 bytes) and
//!    keeps `/request_status` certificates, which walk every known request id, cheap.
//!
//! Times are the replica's (`Replica::advance_time`/`set_time` move them): tests that submit a
//! message, advance time by more than the retention window and only then await it get the
//! `done` reject. [`Replica::update_call`] drops its message's entry as soon as it returns the
//! reply (nobody else holds its id). Snapshots never save the ingress history.

use std::collections::{BTreeSet, HashMap, HashSet};

use candid::Principal;

use crate::canister::{Entry, Finish};
use crate::cycles;
use crate::ids;
use crate::keys::Keys;
use crate::limits::{
    ingress_message_bytes, ingress_too_large_message, MAX_INGRESS_MESSAGE_BYTES, TOUCH_UPDATE,
};
use crate::state::{reject_of, IngressState, Msg, Payment, State};
use crate::system_api::{Exec, ExecKind};
use crate::{CallStats, RejectResponse, Replica};

/// How long a final ingress status keeps its reply or reject (replica time, ns): the 5-minute
/// maximum ingress TTL plus the 60 s drift the expiry check permits (see the module docs).
pub const REPLY_RETENTION_NS: u64 = 6 * 60 * 1_000_000_000;
/// How long after becoming final an ingress message is forgotten entirely (ns): it stays `done`
/// from [`REPLY_RETENTION_NS`] until then.
pub const FORGET_AFTER_NS: u64 = 15 * 60 * 1_000_000_000;

/// The status of an ingress message, as `/request_status/<id>/status` certifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestStatus {
    /// Never submitted (or forgotten).
    Unknown,
    /// Accepted, waiting for a round.
    Received,
    /// Executed, waiting on downstream calls before it can answer.
    Processing,
    Replied(Vec<u8>),
    Rejected(RejectResponse),
    /// Answered, and the answer dropped (the IC does this after expiry).
    Done,
}

/// One ingress message submitted under a request id.
pub(crate) struct Record {
    /// The message id of the ingress queue ([`crate::MessageId`]).
    pub msg: u64,
    pub sender: Principal,
    /// Digest of the `/request_status/<id>` subtree once final. A final status changes once more
    /// (to `done`, see [`IngressRecords::mark_done`]), which clears it.
    pub digest: Option<[u8; 32]>,
}

/// Request ids of submitted ingress messages (a field of [`State`]).
#[derive(Default)]
pub struct IngressRecords {
    pub(crate) records: HashMap<[u8; 32], Record>,
    /// The request id of each message submitted by request id (to find the record when the
    /// message's reply is dropped or the message forgotten).
    by_msg: HashMap<u64, [u8; 32]>,
    /// Digest of `/request_status` when every record was final. Cleared by every change of the
    /// set of records or of a final status (a record added, turned `done`, forgotten); a status
    /// becoming final needs no clearing (the digest is only set while all records are final).
    pub(crate) all_final: Option<[u8; 32]>,
}

impl IngressRecords {
    pub(crate) fn insert(&mut self, request_id: [u8; 32], record: Record) {
        self.by_msg.insert(record.msg, request_id);
        self.records.insert(request_id, record);
        self.all_final = None;
    }

    /// Message `msg`'s reply was dropped: its status is now `done` (cached digests are stale).
    pub(crate) fn mark_done(&mut self, msg: u64) {
        if let Some(r) = self
            .by_msg
            .get(&msg)
            .and_then(|id| self.records.get_mut(id))
        {
            r.digest = None;
            self.all_final = None;
        }
    }

    /// Message `msg` is forgotten: its request id becomes unknown.
    pub(crate) fn forget(&mut self, msg: u64) {
        if let Some(id) = self.by_msg.remove(&msg) {
            self.records.remove(&id);
            self.all_final = None;
        }
    }

    pub(crate) fn digest(&self, id: &[u8; 32]) -> Option<[u8; 32]> {
        self.records.get(id).and_then(|r| r.digest)
    }

    pub(crate) fn set_digest(&mut self, id: &[u8; 32], d: [u8; 32]) {
        if let Some(r) = self.records.get_mut(id) {
            r.digest = Some(d);
        }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Replica {
    /// A replica whose keys derive from `seed` (deterministic root key, subnet id, node id).
    pub fn with_seed(seed: [u8; 32]) -> Replica {
        let r = Replica::new();
        r.lock().keys = Keys::from_seed(seed);
        r
    }

    /// The seed every key derives from (what a snapshot stores to keep the root key).
    pub fn key_seed(&self) -> [u8; 32] {
        self.lock().keys.seed()
    }

    /// DER-encoded BLS12-381 G2 root public key (133 bytes), as `/api/v2/status` reports it.
    pub fn root_key_der(&self) -> Vec<u8> {
        self.lock().keys.root_key_der()
    }

    /// The subnet id: self-authenticating principal of [`Replica::root_key_der`].
    pub fn subnet_id(&self) -> Principal {
        self.lock().keys.subnet_id()
    }

    /// The (only) node's id: self-authenticating principal of its Ed25519 key.
    pub fn node_id(&self) -> Principal {
        self.lock().keys.node_id()
    }

    /// DER-encoded Ed25519 node public key (44 bytes).
    pub fn node_public_key_der(&self) -> Vec<u8> {
        self.lock().keys.node_public_key_der()
    }

    /// Ed25519 signature of `msg` with the node key (the caller adds the domain separator, e.g.
    /// `\x0Bic-response` for query responses).
    pub fn node_sign(&self, msg: &[u8]) -> [u8; 64] {
        self.lock().keys.node_sign(msg)
    }

    /// Accepts an ingress update under the agent's request id: inspect_message, canister and
    /// method checks, ingress fee and argument size exactly as [`Replica::submit_call`]. A request
    /// id seen before is a no-op `Ok(())` (agents retry; the IC deduplicates by request id).
    /// Calls to the management canister (`aaaaa-aa`) execute at once, as with `submit_call`.
    pub fn submit_ingress(
        &self,
        request_id: [u8; 32],
        sender: Principal,
        canister: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<(), RejectResponse> {
        let mut s = self.lock();
        if s.requests.records.contains_key(&request_id) {
            return Ok(());
        }
        let msg = s.submit(canister, sender, method, arg, Some(&request_id))?;
        s.requests.insert(
            request_id,
            Record {
                msg,
                sender,
                digest: None,
            },
        );
        Ok(())
    }

    /// The status of the ingress message submitted under `request_id`.
    pub fn request_status(&self, request_id: &[u8; 32]) -> RequestStatus {
        let s = self.lock();
        let Some(r) = s.requests.records.get(request_id) else {
            return RequestStatus::Unknown;
        };
        let queued: HashSet<u64> = s.queued_ingress();
        s.message_status(r.msg, &queued)
    }

    /// Who sent the message submitted under `request_id` (read_state of `/request_status/<id>`
    /// is refused to other senders on the IC).
    pub fn request_sender(&self, request_id: &[u8; 32]) -> Option<Principal> {
        self.lock()
            .requests
            .records
            .get(request_id)
            .map(|r| r.sender)
    }

    /// The [`crate::MessageId`] of the message submitted under `request_id` (for
    /// [`Replica::await_call`]).
    pub fn request_message_id(&self, request_id: &[u8; 32]) -> Option<crate::MessageId> {
        self.lock()
            .requests
            .records
            .get(request_id)
            .map(|r| crate::MessageId(r.msg))
    }

    /// CBOR certificate (self-describe tag 55799, `{tree, signature}`, no delegation) of the state
    /// tree pruned to `paths` (each a list of labels) plus `/time`, signed with the root key.
    /// Absent paths are provably absent. See `state_tree.rs` for the paths served. The
    /// caller (the HTTP interface) enforces who may read what (see
    /// [`Replica::metadata_is_private`], [`Replica::request_sender`]).
    pub fn read_state_certificate(&self, paths: &[Vec<Vec<u8>>]) -> Vec<u8> {
        self.lock().certificate(paths)
    }

    /// Whether `/canister/<canister>/metadata/<name>` is an `icp:private` section (readable only
    /// by the canister's controllers). `false` for public or absent sections.
    pub fn metadata_is_private(&self, canister: Principal, name: &[u8]) -> bool {
        let s = self.lock();
        let Some(m) = s.canisters.get(&canister).and_then(|c| c.module.as_ref()) else {
            return false;
        };
        std::str::from_utf8(name)
            .ok()
            .and_then(|n| m.metadata.get(n))
            .is_some_and(|sec| !sec.public)
    }
}

/// The retention queues of the ingress history (a field of [`State`]): final messages by the
/// replica time they became final, `(time, message id)`, ordered by time (a `BTreeSet`, so a
/// clock set backwards delays pruning but never reorders it).
#[derive(Default)]
pub struct Retention {
    /// Final messages still holding their reply or reject.
    with_reply: BTreeSet<(u64, u64)>,
    /// Messages turned `done`, waiting to be forgotten.
    done: BTreeSet<(u64, u64)>,
}

impl Retention {
    /// Final messages whose reply-drop is still ahead (for tests and diagnostics). Includes
    /// messages whose entry [`Replica::update_call`] already removed: their queue slot (16 bytes)
    /// stays until the window ends.
    #[cfg(test)]
    pub fn replies_kept(&self) -> usize {
        self.with_reply.len()
    }
}

/// Pops the entries of `queue` that became final at least `window` ns before `now`.
fn due(queue: &mut BTreeSet<(u64, u64)>, now: u64, window: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    while let Some(&(t, id)) = queue.first() {
        if t.saturating_add(window) > now {
            break;
        }
        queue.pop_first();
        out.push((t, id));
    }
    out
}

impl State {
    /// Records the answer of ingress message `id` (now final) and enrols it for pruning.
    pub(crate) fn finish_ingress(&mut self, id: u64, result: Result<Vec<u8>, RejectResponse>) {
        if let Some(wal) = self.wal.as_mut() {
            // Visible only once the round is in the log (`persist::wal`).
            wal.hold(id, result);
            return;
        }
        self.release_ingress(id, result);
    }

    /// Makes the answer of ingress message `id` visible.
    pub(crate) fn release_ingress(&mut self, id: u64, result: Result<Vec<u8>, RejectResponse>) {
        self.ingress.insert(id, IngressState::Done(result));
        self.retention.with_reply.insert((self.time, id));
    }

    /// Drops the replies of messages final for [`REPLY_RETENTION_NS`] (status `done`) and
    /// forgets messages final for [`FORGET_AFTER_NS`]. Runs every round; costs O(log n) per
    /// message due (and O(1) when none is).
    pub(crate) fn prune_ingress(&mut self) {
        let now = self.time;
        for (t, id) in due(&mut self.retention.with_reply, now, REPLY_RETENTION_NS) {
            // Absent: already removed (`update_call` drops its entry once it has the reply).
            if let Some(e @ IngressState::Done(_)) = self.ingress.get_mut(&id) {
                *e = IngressState::Pruned;
                self.requests.mark_done(id);
                self.retention.done.insert((t, id));
            }
        }
        for (_, id) in due(&mut self.retention.done, now, FORGET_AFTER_NS) {
            if matches!(self.ingress.get(&id), Some(IngressState::Pruned)) {
                self.ingress.remove(&id);
            }
            self.stats.remove(&id);
            self.requests.forget(id);
        }
    }

    // ------------------------------------------------------------------ submission

    /// Submits an ingress message (`request_id`: its id when it came through the HTTP interface).
    /// A message over the IC's 2 MiB (envelope included, [`ingress_message_bytes`]) is refused
    /// with the IC's text.
    pub fn submit(
        &mut self,
        cid: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
        request_id: Option<&[u8; 32]>,
    ) -> Result<u64, RejectResponse> {
        let bytes = ingress_message_bytes(&cid, &sender, method, arg.len());
        if bytes > MAX_INGRESS_MESSAGE_BYTES {
            // An in-process submission has no request id: a digest of its fields stands in.
            let digest: [u8; 32] = {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                for part in [cid.as_slice(), sender.as_slice(), method.as_bytes(), &arg] {
                    h.update((part.len() as u64).to_le_bytes());
                    h.update(part);
                }
                h.finalize().into()
            };
            return Err(RejectResponse::ic(
                504,
                ingress_too_large_message(request_id.unwrap_or(&digest), bytes),
            ));
        }
        if cid == ids::management() && ONLY_FROM_CANISTERS.contains(&method) {
            return Err(RejectResponse::ic(
                406,
                format!("ic00 method {method} can not be called via ingress messages"),
            ));
        }
        if cid == ids::management() {
            /// The effective canister of a management call: its argument's `canister_id`.
            #[derive(candid::CandidType, candid::Deserialize)]
            struct Target {
                canister_id: Principal,
            }
            if let Ok(t) = candid::decode_one::<Target>(&arg) {
                self.charge_management_ingress(sender, t.canister_id, method, arg.len())?;
            }
        }
        let id = self.next_msg;
        self.next_msg += 1;
        if cid == ids::management() {
            let result = self
                .management_call(sender, method, &arg, 0, None)
                .map(|r| r.0)
                .unwrap_or_else(|| Ok(candid::encode_args(()).unwrap_or_default()));
            self.finish_ingress(id, result);
            return Ok(id);
        }
        // A stopped canister or one without a module refuses at once; a method the module does
        // not export is refused after `inspect_message`, which sees every method name first
        // (measured on PocketIC 10: an unknown name to a canister whose inspect refuses it is
        // IC0406, not IC0536).
        let inspects = self.canister(cid)?.exports("canister_inspect_message");
        match self.check_target(cid, method) {
            Err(e) if inspects && e.error_code == "IC0536" => {}
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        if inspects {
            let exec = Exec {
                kind: ExecKind::InspectMessage,
                caller: sender,
                method: method.to_string(),
                arg: arg.clone(),
                ..Exec::default()
            };
            let out = self
                .execute(
                    cid,
                    Entry::Export("canister_inspect_message".into()),
                    exec,
                    Finish::Rollback,
                    self.limits.inspect_instructions,
                    TOUCH_UPDATE,
                    None,
                    Payment::Free,
                )
                .out;
            match out.result {
                Err(e) => return Err(reject_of(cid, &e)),
                Ok(()) if !out.exec.accepted_message => {
                    return Err(RejectResponse::ic(
                        406,
                        format!("Canister {cid} rejected the message in inspect_message (it did not call ic0.accept_message)"),
                    ))
                }
                Ok(()) => {}
            }
            self.check_target(cid, method)?;
        }
        let fee = cycles::ingress_fee(method.len(), arg.len());
        self.frozen_check(cid, fee)?;
        if let Some(c) = self.canisters.get_mut(&cid) {
            c.ctx_mut().balance -= fee;
        }
        self.stats.insert(
            id,
            CallStats {
                instructions: 0,
                cycles_charged: fee,
            },
        );
        self.ingress.insert(id, IngressState::Pending);
        self.queue.push_back(Msg::Ingress {
            id,
            canister: cid,
            sender,
            method: method.to_string(),
            arg,
        });
        Ok(id)
    }

    /// The answer of ingress message `id`: `None` while it is pending or unknown; a reject
    /// explaining it when the answer was already dropped (status `done`).
    pub fn ingress_result(&self, id: u64) -> Option<Result<Vec<u8>, RejectResponse>> {
        match self.ingress.get(&id) {
            Some(IngressState::Done(r)) => Some(r.clone()),
            Some(IngressState::Pruned) => Some(Err(RejectResponse::ic(
                100,
                format!(
                    "message {id} was answered more than {} s ago (replica time) and its reply \
                     has been dropped (request status `done`): await a message within that \
                     window after it completes",
                    crate::ingress_api::REPLY_RETENTION_NS / 1_000_000_000
                ),
            ))),
            _ => None,
        }
    }
}

/// Management methods the IC refuses at ingress submission ("ic00 method ... can not be called
/// via ingress messages", IC0406): the vetKD methods derive keys for the *calling canister*.
const ONLY_FROM_CANISTERS: [&str; 2] = ["vetkd_public_key", "vetkd_derive_key"];
