//! [`Backend`] on the embedded replica (`canvid_replica::Replica`): the default backend.

use crate::backend::{Backend, CallId, Cost, InstallMode, Reject, RejectCode, RunState, Status};
use candid::Principal;
use canvid_replica as rep;
use std::time::{Duration, SystemTime};

pub struct ReplicaBackend {
    /// Shared, so the HTTP gateway can serve the same replica
    /// (`canvid_gateway::serve_backend(rb.replica.clone(), addr)`).
    pub replica: std::sync::Arc<rep::Replica>,
}

impl Default for ReplicaBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplicaBackend {
    pub fn new() -> Self {
        Self {
            replica: std::sync::Arc::new(rep::Replica::new()),
        }
    }

    /// `debug_print` lines of a canister, for diagnostics in failing tests.
    pub fn debug_log(&self, canister: Principal) -> Vec<String> {
        self.replica.debug_log(canister)
    }
}

fn reject(r: rep::RejectResponse) -> Reject {
    Reject {
        code: match r.reject_code {
            rep::RejectCode::SysFatal => RejectCode::SysFatal,
            rep::RejectCode::SysTransient => RejectCode::SysTransient,
            rep::RejectCode::DestinationInvalid => RejectCode::DestinationInvalid,
            rep::RejectCode::CanisterReject => RejectCode::CanisterReject,
            rep::RejectCode::CanisterError => RejectCode::CanisterError,
            rep::RejectCode::SysUnknown => RejectCode::SysUnknown,
        },
        error_code: r.error_code,
        message: r.reject_message,
    }
}

fn cost(s: rep::CallStats) -> Cost {
    Cost {
        instructions: s.instructions,
        cycles_charged: s.cycles_charged,
    }
}

impl Backend for ReplicaBackend {
    fn name(&self) -> &'static str {
        "replica"
    }

    fn create_canister(
        &self,
        sender: Option<Principal>,
        controllers: Option<Vec<Principal>>,
        cycles: u128,
    ) -> Principal {
        let settings = controllers.map(|c| rep::CanisterSettings {
            controllers: Some(c),
            ..Default::default()
        });
        let id = self.replica.create_canister_with_settings(sender, settings);
        if cycles > 0 {
            self.replica.add_cycles(id, cycles);
        }
        id
    }

    fn install_code(
        &self,
        mode: InstallMode,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), Reject> {
        let mode = match mode {
            InstallMode::Install => rep::InstallMode::Install,
            InstallMode::Reinstall => rep::InstallMode::Reinstall,
            InstallMode::Upgrade => rep::InstallMode::Upgrade,
        };
        self.replica
            .install_code(mode, canister, wasm, arg, sender)
            .map(|_| ())
            .map_err(reject)
    }

    fn add_cycles(&self, canister: Principal, amount: u128) -> u128 {
        self.replica.add_cycles(canister, amount)
    }

    fn cycle_balance(&self, canister: Principal) -> u128 {
        self.replica.cycle_balance(canister)
    }

    fn controllers(&self, canister: Principal) -> Vec<Principal> {
        self.replica.get_controllers(canister)
    }

    fn set_controllers(
        &self,
        canister: Principal,
        sender: Option<Principal>,
        controllers: Vec<Principal>,
    ) -> Result<(), Reject> {
        self.replica
            .set_controllers(canister, sender, controllers)
            .map_err(reject)
    }

    fn set_freezing_threshold(
        &self,
        canister: Principal,
        sender: Option<Principal>,
        seconds: u64,
    ) -> Result<(), Reject> {
        self.replica
            .update_canister_settings(
                canister,
                sender,
                canvid_replica::CanisterSettings {
                    freezing_threshold: Some(seconds),
                    ..Default::default()
                },
            )
            .map_err(reject)
    }

    fn status(&self, canister: Principal, sender: Option<Principal>) -> Result<Status, Reject> {
        let s = self
            .replica
            .canister_status(canister, sender)
            .map_err(reject)?;
        Ok(Status {
            status: match s.status {
                rep::CanisterStatusKind::Running => RunState::Running,
                rep::CanisterStatusKind::Stopping => RunState::Stopping,
                rep::CanisterStatusKind::Stopped => RunState::Stopped,
            },
            controllers: s.controllers,
            module_hash: s.module_hash,
            cycles: s.cycles,
            memory_size: s.memory_size,
            idle_cycles_burned_per_day: s.idle_cycles_burned_per_day,
            freezing_threshold: s.freezing_threshold,
        })
    }

    fn start(&self, canister: Principal, sender: Option<Principal>) -> Result<(), Reject> {
        self.replica
            .start_canister(canister, sender)
            .map_err(reject)
    }

    fn stop(&self, canister: Principal, sender: Option<Principal>) -> Result<(), Reject> {
        self.replica.stop_canister(canister, sender).map_err(reject)
    }

    fn canister_exists(&self, canister: Principal) -> bool {
        self.replica.canister_exists(canister)
    }

    fn canister_count(&self) -> u64 {
        self.replica.canister_ids().len() as u64
    }

    fn update_raw(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        self.replica
            .update_call(canister, sender, method, arg)
            .map_err(reject)
    }

    fn update_raw_with_cost(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> (Result<Vec<u8>, Reject>, Option<Cost>) {
        let (r, s) = self
            .replica
            .update_call_with_stats(canister, sender, method, arg);
        (r.map_err(reject), Some(cost(s)))
    }

    fn query_raw(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, Reject> {
        self.replica
            .query_call(canister, sender, method, arg)
            .map_err(reject)
    }

    fn query_raw_with_cost(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> (Result<Vec<u8>, Reject>, Option<Cost>) {
        let (r, s) = self
            .replica
            .query_call_with_stats(canister, sender, method, arg);
        (r.map_err(reject), Some(cost(s)))
    }

    fn submit(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<CallId, Reject> {
        self.replica
            .submit_call(canister, sender, method, arg)
            .map(|id| CallId(id.0))
            .map_err(reject)
    }

    fn await_call(&self, id: CallId) -> Result<Vec<u8>, Reject> {
        self.replica
            .await_call(rep::MessageId(id.0))
            .map_err(reject)
    }

    fn tick(&self) {
        self.replica.tick()
    }

    fn root_key(&self) -> Vec<u8> {
        self.replica.root_key_der()
    }

    fn stable_memory(&self, canister: Principal) -> Vec<u8> {
        self.replica.get_stable_memory(canister)
    }

    /// The certificate `canvid serve`'s HTTP interface would answer (`read_state_certificate`);
    /// the HTTP layer's access rules are not applied, so tests read public paths only.
    fn read_state(
        &self,
        _canister: Principal,
        paths: Vec<Vec<Vec<u8>>>,
    ) -> Result<Vec<u8>, String> {
        Ok(self.replica.read_state_certificate(&paths))
    }

    fn time(&self) -> SystemTime {
        self.replica.get_time()
    }

    fn advance_time(&self, by: Duration) {
        self.replica.advance_time(by)
    }
}
