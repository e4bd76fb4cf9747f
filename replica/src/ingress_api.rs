//! Ingress by request id, certificates and keys: what the IC's HTTP interface needs from the
//! replica.
//!
//! Agents name an update call by its *request id* (the representation-independent hash of the
//! call's content) and poll `/request_status/<request id>` in read_state certificates until it
//! reads `replied` or `rejected`. [`Replica::submit_ingress`] queues a message exactly like
//! [`Replica::submit_call`] (inspect_message, existence checks, ingress fee) and remembers the
//! request id; the status follows the message through the queue: `received` while it waits for a
//! round, `processing` once it executed and waits on downstream calls, then `replied`/`rejected`
//! with the reply or reject. The ingress history is kept for the replica's lifetime (no `done`
//! transition yet: replies are never dropped).

use std::collections::{HashMap, HashSet};

use candid::Principal;

use crate::keys::Keys;
use crate::{RejectResponse, Replica};

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
    /// Digest of the `/request_status/<id>` subtree once final (it never changes again).
    pub digest: Option<[u8; 32]>,
}

/// Request ids of submitted ingress messages (a field of [`State`]).
#[derive(Default)]
pub struct IngressRecords {
    pub(crate) records: HashMap<[u8; 32], Record>,
    /// `(number of records, digest of /request_status)` when every record was final: valid as
    /// long as no record is added (final statuses never change, records are never removed).
    pub(crate) all_final: Option<(usize, [u8; 32])>,
}

impl IngressRecords {
    pub(crate) fn digest(&self, id: &[u8; 32]) -> Option<[u8; 32]> {
        self.records.get(id).and_then(|r| r.digest)
    }

    pub(crate) fn set_digest(&mut self, id: &[u8; 32], d: [u8; 32]) {
        if let Some(r) = self.records.get_mut(id) {
            r.digest = Some(d);
        }
    }

    /// Number of request ids known.
    pub fn len(&self) -> usize {
        self.records.len()
    }

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

    /// Replaces the keys (e.g. restored from a snapshot's seed). Certificates issued before no
    /// longer verify against the new root key.
    pub fn set_keys(&self, keys: Keys) {
        self.lock().keys = keys;
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
        let msg = s.submit(canister, sender, method, arg)?;
        s.requests.records.insert(
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
    /// Absent paths are provably absent. See [`crate::state_tree`] for the paths served. The
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
