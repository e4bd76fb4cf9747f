//! # canvid-replica: an embedded Internet Computer replica
//!
//! Runs real compiled canister wasm (ic-cdk 0.20 canisters) in-process with the
//! [wasmi](https://docs.rs/wasmi) interpreter (fuel metering on), following the IC interface
//! specification: System API (`ic0`) with its availability rules, entry points, callbacks,
//! inter-canister calls, upgrades, the management canister, cycles, timers and data certificates.
//! The API is shaped like the `pocket-ic` crate's so the same tests can target either.
//!
//! ## Design
//!
//! * **State** (`state`, `scheduler`, `query`): one `Mutex` around canisters, call contexts,
//!   callbacks, the message queue and the ingress history. A round ([`Replica::tick`]) executes
//!   every message queued before it started; messages produced during a round wait for the next
//!   one. Time advances by 1 ns per round (strictly increasing) and can be set or advanced.
//! * **Modules** (`engine`): each distinct module (SHA-256 of the gunzipped wasm) is compiled
//!   once and instantiated per canister. Before compilation the module is *rewritten* to export
//!   its funcref table (ic-cdk passes callbacks to `call_new` as table indices, and the host must
//!   call them) and all mutable globals (the shadow stack pointer must be restored after a trap).
//!   Only the export section changes.
//! * **Rollback** (`canister`, `memory`): a trap rolls back the message's heap, stable memory,
//!   mutable globals, cycle balance, certified data and timer. Stable memory can be hundreds of
//!   GiB, so it is never copied: the first write of a message to a 64 KiB page saves that page in
//!   an undo *journal*, dropped on commit and replayed on trap. The heap is restored from a
//!   committed copy refreshed after each committed message (heaps are small). Queries always roll
//!   back. An update's state is committed at each await point exactly as on the IC: the
//!   execution up to `call_perform`'s return is one message, each callback another. A callback
//!   that traps is rolled back and then its cleanup callback runs (and is committed).
//! * **System API** (`system_api`, one file per section of the spec): every `ic0` import an ic-cdk 0.20 canister uses, with the
//!   spec's per-context availability (misuse traps); unknown `ic0` imports link to a stub that
//!   traps "not implemented", so such modules still install.
//! * **Calls**: unbounded-wait and bounded-wait (`call_with_best_effort_response`; an expired
//!   deadline answers `SYS_UNKNOWN`), attached cycles with refunds of unaccepted cycles, calls to
//!   query methods (executed as replicated queries), and rejects with the IC's codes
//!   (`DestinationInvalid` for unknown canisters, `CanisterError` for traps / missing methods /
//!   stopped canisters, `CanisterReject` for `msg_reject`). Error codes follow the IC (IC0301 not
//!   found, IC0406 rejected, IC0502 trapped, IC0503 called trap, IC0504 contract violation, IC0506
//!   no reply, IC0508 stopped, IC0512 not a controller, IC0522 instruction limit, IC0536 no such
//!   method, IC0537 no module, IC0207 out of cycles); the reject code follows from the error
//!   code's class as on the IC.
//! * **Management canister** (`management`): create_canister (500 B cycles fee from attached
//!   cycles for canister callers; the API's `create_canister*` is provisional and free, like
//!   pocket-ic), install_code (install / reinstall / upgrade = pre_upgrade → new module →
//!   post_upgrade keeping stable memory; a failed upgrade leaves the old module and state
//!   untouched), uninstall_code, update_settings, canister_status, canister_info,
//!   deposit_cycles, start/stop/delete_canister, raw_rand (deterministic), provisional_* methods,
//!   vetkd_public_key / vetkd_derive_key (`vetkd`: the IC's BLS12-381 vetKD, canister callers
//!   only).
//!   Candid types are those of `ic-management-canister-types` (the spec's candid, as
//!   ic-cdk-management-canister uses it).
//! * **Cycles** ([`cycles`]): see that module for the model (ingress, execution, call fees,
//!   freezing reserve, creation fee).
//! * **Limits**: instructions per message (40 B update/callback/timer, 5 B query, 300 B
//!   install/upgrade, 200 M inspect_message), reply size (2 MiB replicated, 3 MiB query), ingress
//!   argument (2 MiB, rejected before execution), inter-canister payload (10 MiB), stable memory
//!   touched per message (2 GiB update, 8 GiB upgrade), 500 GiB stable memory, `wasm_memory_limit`.
//!   The instruction and reply-size limits are the IC's by default and configurable
//!   ([`Replica::with_limits`], [`Limits`]) so tests can see them enforced at small scale.
//! * **Certification** (`keys`, `state_tree`, `certificate`): a BLS12-381 root key (the
//!   IC's min-sig scheme, DER as `/api/v2/status` reports it) derived from a 32-byte seed
//!   ([`Replica::with_seed`]; [`Replica::new`] draws one from the OS) signs certificates of the
//!   system state tree (`/time`, `/request_status`, `/canister/<id>/{certified_data,
//!   module_hash, controllers, metadata}`, `/subnet`, `/canister_ranges`), pruned to the
//!   requested paths with absence proofs ([`Replica::read_state_certificate`]). Non-replicated
//!   queries see the same kind of certificate (`/time` + their `certified_data`). An Ed25519
//!   node key ([`Replica::node_sign`]) signs query responses; its key is certified under
//!   `/subnet/<subnet>/node/<node>/public_key`.
//! * **Ingress by request id** (`ingress_api`): [`Replica::submit_ingress`] records an update
//!   under the agent's request id; its status (received → processing → replied/rejected → done)
//!   is certified under `/request_status/<id>`. Replies are dropped 6 minutes (replica time)
//!   after a message completes (status `done`) and the message is forgotten after 15 minutes,
//!   so a long-running replica's memory stays bounded (see `ingress_api` for the reasons).
//!
//! ## Not implemented
//!
//! No consensus, no subnet topology (one subnet, every call is local), no HTTP outcalls, no
//! threshold signatures (ECDSA/Schnorr/vetKD), no canister snapshots, no chunked code install,
//! no canister logs API, no composite-query calls (a composite query runs, but calls it makes are
//! not executed), no query charging / query stats, no memory allocation or compute allocation,
//! no certificate delegations (one subnet holds the root key), no ingress-history memory cap
//! (replies are dropped by age only). Instruction counts are wasmi fuel ("instructions (embedded)"),
//! not the IC's weighted counts.
//!
//! ## Public API
//!
//! [`Replica`] (its methods follow the `pocket-ic` crate's, plus the ingress-by-request-id,
//! certificate and key methods the HTTP interface needs, limits, and saving to / loading from
//! a directory: [`Replica::save_snapshot`], [`Replica::load_snapshot`]), the types of its
//! signatures ([`RejectResponse`], [`CanisterSettings`], [`Limits`], [`RequestStatus`],
//! [`SnapshotError`], ...), the ingress retention windows, [`compile_module`], and the cycles
//! cost model ([`cycles`]). Every other module is internal to the crate.

mod canister;
mod certificate;
pub mod cycles;
mod engine;
pub mod faults;
mod ids;
mod ingress_api;
mod keys;
pub mod limits;
mod management;
mod memory;
mod persist;
mod query;
mod scheduler;
mod state;
mod state_tree;
mod system_api;
mod types;
mod vetkd;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use candid::Principal;
pub use faults::{CallRecord, Fault, FaultRule};
pub use ingress_api::{RequestStatus, FORGET_AFTER_NS, REPLY_RETENTION_NS};
pub use limits::Limits;
pub use persist::{SaveReport, SnapshotError, WalStats};
pub use types::{
    CallStats, CanisterSettings, CanisterStatus, CanisterStatusKind, InstallMode, MessageId,
    RejectCode, RejectResponse,
};

use state::State;

/// Rounds after which `run_until_idle`/`await_call` give up (a message loop).
const MAX_ROUNDS: usize = 100_000;
/// Candid framing of an `install_code` argument beyond its two blobs (header, mode, canister
/// id, lengths, optional fields): what the ingress byte fee counts besides wasm and arg.
const INSTALL_ARGS_FRAMING: usize = 100;
/// Size of the small management arguments (a canister id record, a settings change) for the
/// ingress byte fee.
const SMALL_MGMT_ARGS: usize = 64;

/// The embedded replica. All methods take `&self`; the state sits behind one mutex.
pub struct Replica {
    state: Mutex<State>,
}

impl Default for Replica {
    fn default() -> Self {
        Self::new()
    }
}

fn anon(sender: Option<Principal>) -> Principal {
    sender.unwrap_or_else(Principal::anonymous)
}

impl Replica {
    pub fn new() -> Self {
        Replica {
            state: Mutex::new(State::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic inside the replica leaves the state as consistent as a panic allows; keep
        // going rather than poisoning every later call.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ------------------------------------------------------------------ faults (tests)

    /// Injects a fault into the canister calls that match `rule` (see [`faults`]): checked
    /// when a canister's request is delivered, after the rules injected before it.
    pub fn inject_fault(&self, rule: FaultRule) {
        self.lock().faults.add(rule);
    }

    /// Removes every fault rule (the count of fired faults and the call log stay).
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// How many injected faults fired since the replica started.
    pub fn faults_fired(&self) -> u64 {
        self.lock().faults.fired
    }

    /// The requests canisters made (inter-canister and management) since the last call, in
    /// delivery order; a way to list a flow's await points.
    pub fn take_call_log(&self) -> Vec<CallRecord> {
        std::mem::take(&mut self.lock().faults.log)
    }

    // ------------------------------------------------------------------ canisters

    /// Creates a canister controlled by the anonymous principal, with 0 cycles (like pocket-ic).
    pub fn create_canister(&self) -> Principal {
        self.create_canister_with_settings(None, None)
    }

    /// Provisional creation (no fee): controllers default to `[sender]`.
    pub fn create_canister_with_settings(
        &self,
        sender: Option<Principal>,
        settings: Option<CanisterSettings>,
    ) -> Principal {
        self.lock()
            .create_canister_with(anon(sender), settings, 0, 0)
            .unwrap_or_else(|e| panic!("create_canister failed: {e}"))
    }

    /// A canister at `id` (as `provisional_create_canister_with_cycles` with `specified_id`)
    /// holding `cycles`, controlled by `controller`.
    pub fn create_canister_at(
        &self,
        id: Principal,
        controller: Principal,
        cycles: u128,
    ) -> Result<Principal, RejectResponse> {
        self.lock()
            .create_canister_at(controller, Some(id), None, cycles, 0)
    }

    pub fn add_cycles(&self, canister: Principal, amount: u128) -> u128 {
        let mut s = self.lock();
        match s.canisters.get_mut(&canister) {
            Some(c) => {
                c.ctx_mut().balance += amount;
                c.ctx().balance
            }
            None => panic!("add_cycles: canister {canister} not found"),
        }
    }

    pub fn cycle_balance(&self, canister: Principal) -> u128 {
        self.lock()
            .canisters
            .get(&canister)
            .map_or(0, |c| c.ctx().balance)
    }

    /// Installs code; panics on failure, like pocket-ic.
    pub fn install_canister(
        &self,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) {
        if let Err(e) = self.install_code(InstallMode::Install, canister, wasm, arg, sender) {
            panic!("install_canister failed: {e}");
        }
    }

    pub fn install_code(
        &self,
        mode: InstallMode,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<CallStats, RejectResponse> {
        // An ingress message: paid by the canister (the candid `install_code_args` record adds
        // its framing and the canister id to the two blobs), and no larger than the IC's 2 MiB
        // ingress limit — a module over it must be sent gzipped (or in chunks), as PocketIC and
        // the IC refuse it.
        let size = wasm.len() + arg.len() + INSTALL_ARGS_FRAMING;
        let bytes = limits::ingress_message_bytes(
            &candid::Principal::management_canister(),
            &anon(sender),
            "install_code",
            size,
        );
        if bytes > limits::MAX_INGRESS_MESSAGE_BYTES {
            let digest: [u8; 32] = {
                use sha2::Digest;
                sha2::Sha256::digest(&wasm).into()
            };
            return Err(RejectResponse::ic(
                504,
                limits::ingress_too_large_message(&digest, bytes),
            ));
        }
        let mut s = self.lock();
        s.charge_management_ingress(anon(sender), canister, "install_code", size)?;
        // An install through the API executes as one round of its own (as an ingress
        // `install_code` does on the IC): the round's end settles the install debits.
        let r = s.install_code(anon(sender), mode, canister, &wasm, arg, false);
        s.settle_install_code_debits();
        r
    }

    pub fn upgrade_canister(
        &self,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.install_code(InstallMode::Upgrade, canister, wasm, arg, sender)
            .map(|_| ())
    }

    pub fn reinstall_canister(
        &self,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.install_code(InstallMode::Reinstall, canister, wasm, arg, sender)
            .map(|_| ())
    }

    pub fn set_controllers(
        &self,
        canister: Principal,
        sender: Option<Principal>,
        new_controllers: Vec<Principal>,
    ) -> Result<(), RejectResponse> {
        self.update_canister_settings(
            canister,
            sender,
            CanisterSettings {
                controllers: Some(new_controllers),
                ..CanisterSettings::default()
            },
        )
    }

    pub fn get_controllers(&self, canister: Principal) -> Vec<Principal> {
        self.lock()
            .canisters
            .get(&canister)
            .map(|c| c.ctx().controllers.clone())
            .unwrap_or_default()
    }

    pub fn update_canister_settings(
        &self,
        canister: Principal,
        sender: Option<Principal>,
        settings: CanisterSettings,
    ) -> Result<(), RejectResponse> {
        let mut s = self.lock();
        s.charge_management_ingress(anon(sender), canister, "update_settings", SMALL_MGMT_ARGS)?;
        s.update_settings(anon(sender), canister, settings)
    }

    pub fn canister_status(
        &self,
        canister: Principal,
        sender: Option<Principal>,
    ) -> Result<CanisterStatus, RejectResponse> {
        let mut s = self.lock();
        s.charge_management_ingress(anon(sender), canister, "canister_status", SMALL_MGMT_ARGS)?;
        s.status(anon(sender), canister)
    }

    pub fn start_canister(
        &self,
        canister: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        let mut s = self.lock();
        s.charge_management_ingress(anon(sender), canister, "start_canister", SMALL_MGMT_ARGS)?;
        s.start(anon(sender), canister)
    }

    /// Stops the canister, running rounds until its open call contexts are closed.
    pub fn stop_canister(
        &self,
        canister: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        let stopped = {
            let mut s = self.lock();
            s.charge_management_ingress(anon(sender), canister, "stop_canister", SMALL_MGMT_ARGS)?;
            s.begin_stop(anon(sender), canister, None)?
        };
        if stopped {
            return Ok(());
        }
        for _ in 0..MAX_ROUNDS {
            let mut s = self.lock();
            match s.canisters.get(&canister).map(|c| c.status) {
                Some(CanisterStatusKind::Stopped) => return Ok(()),
                Some(CanisterStatusKind::Stopping) => {}
                // Started again or deleted meanwhile.
                _ => {
                    return Err(RejectResponse::ic(
                        511,
                        format!("Canister {canister}'s stop request was cancelled."),
                    ))
                }
            }
            if !s.has_work() {
                if let Some(d) = s.next_deadline() {
                    s.time = s.time.max(d);
                }
            }
            s.tick();
            s.wal_round();
        }
        Err(RejectResponse::ic(
            206,
            format!("Stop canister request for {canister} timed out"),
        ))
    }

    pub fn delete_canister(
        &self,
        canister: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.lock().delete(anon(sender), canister)
    }

    pub fn canister_exists(&self, canister: Principal) -> bool {
        self.lock().canisters.contains_key(&canister)
    }

    pub fn module_hash(&self, canister: Principal) -> Option<[u8; 32]> {
        self.lock()
            .canisters
            .get(&canister)
            .and_then(|c| c.module_hash)
    }

    pub fn get_stable_memory(&self, canister: Principal) -> Vec<u8> {
        self.lock()
            .canisters
            .get(&canister)
            .map(|c| c.ctx().stable.to_vec())
            .unwrap_or_default()
    }

    /// The canister's stable memory as (size in bytes, its pages holding a non-zero byte): what
    /// [`Replica::get_stable_memory`] holds, without copying gigabytes of zeros.
    pub fn stable_memory_sparse(
        &self,
        canister: Principal,
    ) -> (u64, std::collections::BTreeMap<u64, Vec<u8>>) {
        self.lock()
            .canisters
            .get(&canister)
            .map(|c| (c.ctx().stable.size_bytes(), c.ctx().stable.nonzero_pages()))
            .unwrap_or_default()
    }

    /// `debug_print` lines of the canister, in order.
    pub fn debug_log(&self, canister: Principal) -> Vec<String> {
        self.lock()
            .canisters
            .get(&canister)
            .map(|c| c.ctx().log.clone())
            .unwrap_or_default()
    }

    pub fn canister_ids(&self) -> Vec<Principal> {
        self.lock().canisters.keys().copied().collect()
    }

    // ------------------------------------------------------------------ messages

    pub fn update_call(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        self.update_call_with_stats(canister, sender, method, arg).0
    }

    pub fn update_call_with_stats(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> (Result<Vec<u8>, RejectResponse>, CallStats) {
        let id = match self.submit_call(canister, sender, method, arg) {
            Ok(id) => id,
            Err(e) => return (Err(e), CallStats::default()),
        };
        let r = self.await_call(id);
        let mut s = self.lock();
        let stats = s.stats.remove(&id.0).unwrap_or_default();
        // Nobody else knows this message id: drop the reply now rather than when its retention
        // window ends (a dev server's gateway makes many 2 MiB `http_request_update` calls).
        if matches!(s.ingress.get(&id.0), Some(state::IngressState::Done(_))) {
            s.ingress.remove(&id.0);
        }
        (r, stats)
    }

    pub fn query_call(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        self.query_call_with_stats(canister, sender, method, arg).0
    }

    pub fn query_call_with_stats(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> (Result<Vec<u8>, RejectResponse>, CallStats) {
        self.lock().query(canister, sender, method, arg)
    }

    /// Enqueues an ingress update without executing it (inspect_message refusals, unknown
    /// canisters or methods, frozen canisters and oversized arguments are returned here).
    pub fn submit_call(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<MessageId, RejectResponse> {
        self.lock()
            .submit(canister, sender, method, arg, None)
            .map(MessageId)
    }

    /// Runs rounds until the submitted message is answered. Answers are kept for
    /// [`REPLY_RETENTION_NS`] of replica time after the message completes: awaiting
    /// it later gives a reject (`IC0100`, "reply has been dropped"), and after
    /// [`FORGET_AFTER_NS`] the message id is unknown.
    pub fn await_call(&self, id: MessageId) -> Result<Vec<u8>, RejectResponse> {
        for _ in 0..MAX_ROUNDS {
            let mut s = self.lock();
            if let Some(r) = s.ingress_result(id.0) {
                return r;
            }
            if !s.ingress.contains_key(&id.0) {
                let why = if id.0 < s.next_msg {
                    format!(
                        "it was refused at submission, or it completed more than {} s (replica \
                         time) ago and was forgotten",
                        ingress_api::FORGET_AFTER_NS / 1_000_000_000
                    )
                } else {
                    "it was never submitted".to_string()
                };
                return Err(RejectResponse::ic(
                    100,
                    format!("unknown message id {}: {why}", id.0),
                ));
            }
            if !s.has_work() {
                match s.next_deadline() {
                    // Only a best-effort call is pending: let time reach its deadline.
                    Some(d) => s.time = s.time.max(d),
                    None => {
                        return Err(RejectResponse::ic(
                            100,
                            format!("message {} can never complete: nothing is queued", id.0),
                        ))
                    }
                }
            }
            s.tick();
            s.wal_round();
        }
        Err(RejectResponse::ic(
            202,
            format!(
                "message {} did not complete within {MAX_ROUNDS} rounds",
                id.0
            ),
        ))
    }

    /// One round: executes every message queued before it started (see `scheduler`).
    pub fn tick(&self) {
        let mut s = self.lock();
        s.tick();
        s.wal_round();
    }

    /// `tick()` until no message is queued; panics after a large bound to expose loops.
    pub fn run_until_idle(&self) {
        for _ in 0..MAX_ROUNDS {
            let mut s = self.lock();
            if !s.has_work() {
                return;
            }
            s.tick();
            s.wal_round();
        }
        panic!("run_until_idle: still busy after {MAX_ROUNDS} rounds (a message loop?)");
    }

    // ------------------------------------------------------------------ time

    pub fn get_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.lock().time)
    }

    pub fn set_time(&self, time: SystemTime) {
        let ns = time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        self.lock().time = ns;
    }

    pub fn advance_time(&self, by: Duration) {
        let mut s = self.lock();
        s.time = s.time.saturating_add(by.as_nanos() as u64);
    }

    // ------------------------------------------------------------------ extras

    /// The certified data last set by the canister.
    pub fn certified_data(&self, canister: Principal) -> Vec<u8> {
        self.lock()
            .canisters
            .get(&canister)
            .map(|c| c.ctx().certified_data.clone())
            .unwrap_or_default()
    }

    /// Number of distinct compiled modules in the cache.
    pub fn compiled_modules(&self) -> usize {
        self.lock().cache.len()
    }

    /// True while messages are queued (ingress, inter-canister requests or responses): the HTTP
    /// interface's driver thread (`canvid-http-interface`) runs rounds while this holds and idles
    /// otherwise.
    pub fn has_pending_work(&self) -> bool {
        self.lock().has_work()
    }
}

/// Decodes (gunzip), rewrites and compiles `wasm` as installing it does, outside any replica:
/// the `bench` example times compilation with it.
pub fn compile_module(wasm: &[u8]) -> Result<(), String> {
    engine::ModuleCache::default()
        .get_or_compile(&engine::new_engine(), wasm)
        .map(|_| ())
}

#[cfg(test)]
mod send_sync {
    #[test]
    fn replica_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Replica>();
    }
}
#[cfg(test)]
mod cert_tests;
#[cfg(test)]
mod tests;
