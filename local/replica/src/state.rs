//! The replica's state: canisters, call contexts, callbacks, the message queue, ingress history,
//! time and timers. What runs on it: rounds and message handlers in [`crate::scheduler`],
//! non-replicated queries in [`crate::query`], ingress submission in [`crate::ingress_api`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use candid::Principal;
use wasmi::{Engine, Linker};

use crate::canister::{Canister, ExecError, Outcome};
use crate::cycles;
use crate::engine::{new_engine, ModuleCache};
use crate::ids;
use crate::system_api::{self, ExecKind, HostCtx};
use crate::types::*;

#[derive(Clone, Debug)]
pub enum Origin {
    Ingress(u64),
    Canister {
        callback: u64,
    },
    /// Timers and heartbeats: nobody waits for an answer.
    System,
}

pub struct CallContext {
    pub canister: Principal,
    pub origin: Origin,
    pub caller: Principal,
    pub method: String,
    pub cycles: u128,
    pub responded: bool,
    pub outstanding: u32,
    pub deadline: u64,
    pub instructions: u64,
    pub root: Option<u64>,
    pub last_error: Option<RejectResponse>,
}

pub struct Callback {
    pub caller: Principal,
    pub context: u64,
    pub reply: (u32, u32),
    pub reject: (u32, u32),
    pub cleanup: Option<(u32, u32)>,
    pub deadline: Option<u64>,
    pub generation: u64,
    /// Cycles the call reserved for its response ([`cycles::call_reservation`]).
    pub reservation: u128,
    /// The call's message memory ([`cycles::call_message_bytes`]), held until the response.
    pub message_bytes: u64,
}

pub enum Msg {
    Ingress {
        id: u64,
        canister: Principal,
        sender: Principal,
        method: String,
        arg: Vec<u8>,
    },
    Request {
        caller: Principal,
        callee: Principal,
        method: String,
        arg: Vec<u8>,
        cycles: u128,
        callback: u64,
        deadline: u64,
        root: Option<u64>,
    },
    Response {
        callback: u64,
        result: Result<Vec<u8>, (u32, String)>,
        refund: u128,
    },
}

pub enum IngressState {
    Pending,
    Done(Result<Vec<u8>, RejectResponse>),
    /// Answered, and the answer dropped after the retention window (status `done`; see
    /// [`crate::ingress_api`]).
    Pruned,
}

/// Waiters on a `stop_canister` that has not completed yet (canister callers' callbacks).
pub type StopWaiters = HashMap<Principal, Vec<u64>>;

pub struct State {
    pub engine: Engine,
    pub linker: Linker<HostCtx>,
    pub stubs: HashSet<String>,
    pub cache: ModuleCache,
    pub canisters: BTreeMap<Principal, Canister>,
    pub next_canister: u64,
    /// The clock: the time the next round executes at (`set_time` / `advance_time` move it).
    pub time: u64,
    /// The time of the last executed round: what queries, `inspect_message` and certificates
    /// see. The IC answers them from the latest state, so after the clock moves they see the
    /// old time until a round has run (PocketIC does the same).
    pub state_time: u64,
    pub queue: VecDeque<Msg>,
    pub next_msg: u64,
    pub ingress: HashMap<u64, IngressState>,
    /// When final ingress messages lose their replies and are forgotten (see `ingress_api`).
    pub retention: crate::ingress_api::Retention,
    pub stats: HashMap<u64, CallStats>,
    pub contexts: HashMap<u64, CallContext>,
    pub next_ctx: u64,
    pub callbacks: HashMap<u64, Callback>,
    pub next_cb: u64,
    pub rng_counter: u64,
    pub stop_waiters: StopWaiters,
    /// Root (certificate) and node keys.
    pub keys: crate::keys::Keys,
    /// Ingress messages by the agent's request id (see `ingress_api`).
    pub requests: crate::ingress_api::IngressRecords,
    /// Instruction and reply-size limits per message (the IC's unless a test set others).
    pub limits: crate::limits::Limits,
    /// The last data certificate made for each canister (see `State::data_certificate`).
    pub data_certs: HashMap<Principal, crate::certificate::CachedDataCertificate>,
    /// Canister history (`canister_info`), kept by `management`.
    pub history: HashMap<Principal, crate::management::History>,
    /// `install_code` instruction debit per canister (the IC's rate limiting of install_code,
    /// `crate::management::INSTALL_CODE_RATE_LIMIT`). Not saved: a restart forgives it.
    pub install_code_debit: HashMap<Principal, u64>,
    /// Injected faults and the log of canister requests (tests only; never persisted).
    pub(crate) faults: crate::faults::Faults,
    /// The write-ahead log, when enabled (`persist::wal`): it holds back ingress answers until
    /// the round that produced them is durable.
    pub wal: Option<Box<crate::persist::wal::Wal>>,
}

pub fn reject_of(canister: Principal, e: &ExecError) -> RejectResponse {
    match e {
        ExecError::CalledTrap(m) => RejectResponse::ic(
            503,
            format!("Error from Canister {canister}: Canister called `ic0.trap` with message: '{m}'."),
        ),
        ExecError::Trapped(m) => RejectResponse::ic(
            502,
            format!("Error from Canister {canister}: Canister trapped: {m}."),
        ),
        ExecError::Violation(m) => RejectResponse::ic(
            504,
            format!("Error from Canister {canister}: Canister violated contract: {m}."),
        ),
        ExecError::InstructionLimit => RejectResponse::ic(
            522,
            format!("Error from Canister {canister}: Canister exceeded the limit of instructions for single message execution."),
        ),
        ExecError::OutOfCycles { needed } => {
            RejectResponse::ic(207, cycles::out_of_cycles_message(canister, *needed))
        }
        ExecError::StableTouchLimit(m) => RejectResponse::ic(
            524,
            format!("Error from Canister {canister}: {m}."),
        ),
        ExecError::Missing(m) => RejectResponse::ic(
            536,
            format!("Error from Canister {canister}: {m}."),
        ),
    }
}

/// How an execution's instructions are paid for (the IC's rules, `crate::cycles`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payment {
    /// Queries and `inspect_message`.
    Free,
    /// Updates, timers, heartbeats: the whole limit is prepaid before the message runs (a
    /// canister that cannot pay it above its freezing reserve does not run the message) and the
    /// unused part refunded after it.
    Prepay,
    /// Response callbacks and cleanups: paid from the reservation the call made at
    /// `call_perform`; what is left is returned in [`Charged::unspent`].
    Reserved(u128),
}

impl Payment {
    /// How a message (an update, or a query method executed as one) is paid: both are prepaid.
    /// A query method called as an update runs replicated and the IC charges it like an update
    /// (dfinity/ic `execution/replicated_query.rs`: "Withdraw execution cycles. ...
    /// cycles_account_manager.prepay_execution_cycles(..., instruction_limit, ...)"), with the
    /// query's instruction limit.
    pub(crate) fn for_message(_kind: ExecKind) -> Payment {
        Payment::Prepay
    }
}

/// An execution's outcome and what is left of its reservation.
pub struct Charged {
    pub out: Outcome,
    pub unspent: u128,
}

pub(crate) fn method_kind(c: &Canister, method: &str) -> Option<(String, ExecKind)> {
    let update = format!("canister_update {method}");
    if c.exports(&update) {
        return Some((update, ExecKind::Update));
    }
    let query = format!("canister_query {method}");
    if c.exports(&query) {
        return Some((query, ExecKind::ReplicatedQuery));
    }
    None
}

impl State {
    pub fn new() -> Self {
        let engine = new_engine();
        let mut linker = Linker::new(&engine);
        system_api::define(&mut linker).expect("ic0 imports are defined once each");
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1_700_000_000_000_000_000);
        State {
            engine,
            linker,
            stubs: HashSet::new(),
            cache: ModuleCache::default(),
            canisters: BTreeMap::new(),
            next_canister: 0,
            time,
            state_time: time,
            queue: VecDeque::new(),
            next_msg: 0,
            ingress: HashMap::new(),
            retention: Default::default(),
            stats: HashMap::new(),
            contexts: HashMap::new(),
            next_ctx: 0,
            callbacks: HashMap::new(),
            next_cb: 0,
            rng_counter: 0,
            stop_waiters: HashMap::new(),
            keys: crate::keys::Keys::generate(),
            requests: Default::default(),
            data_certs: HashMap::new(),
            history: HashMap::new(),
            install_code_debit: HashMap::new(),
            faults: Default::default(),
            limits: crate::limits::Limits::IC,
            wal: None,
        }
    }

    pub fn not_found(id: Principal) -> RejectResponse {
        RejectResponse::ic(301, format!("Canister {id} not found"))
    }

    pub fn canister(&self, id: Principal) -> Result<&Canister, RejectResponse> {
        self.canisters.get(&id).ok_or_else(|| Self::not_found(id))
    }

    pub fn new_canister(&mut self, controllers: Vec<Principal>, cycles: u128) -> Principal {
        // Ids in order, skipping one a specified-id creation took.
        let mut id = ids::canister_id(self.next_canister);
        self.next_canister += 1;
        while self.canisters.contains_key(&id) {
            id = ids::canister_id(self.next_canister);
            self.next_canister += 1;
        }
        self.new_canister_at(id, controllers, cycles)
    }

    /// A canister at `id`, which must not be in use.
    pub fn new_canister_at(
        &mut self,
        id: Principal,
        controllers: Vec<Principal>,
        cycles: u128,
    ) -> Principal {
        debug_assert!(!self.canisters.contains_key(&id), "{id} in use");
        let mut c = Canister::new(&self.engine, id);
        c.ctx_mut().controllers = controllers;
        c.ctx_mut().balance = cycles;
        self.canisters.insert(id, c);
        id
    }

    // ------------------------------------------------------------------ stopping

    /// Moves a stopping canister without open call contexts to stopped and answers waiters.
    pub fn check_stopped(&mut self, cid: Principal) {
        let Some(c) = self.canisters.get_mut(&cid) else {
            return;
        };
        if c.status == CanisterStatusKind::Stopping && c.open_contexts == 0 {
            c.status = CanisterStatusKind::Stopped;
            c.ctx_mut().status = 3;
            for callback in self.stop_waiters.remove(&cid).unwrap_or_default() {
                self.queue.push_back(Msg::Response {
                    callback,
                    result: Ok(candid::encode_args(()).unwrap_or_default()),
                    refund: 0,
                });
            }
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}
