//! The management canister (`aaaaa-aa`): the same implementation serves the replica's API (acting
//! for an ingress sender) and canisters' calls (candid-encoded, with the calling canister as
//! sender and attached cycles).

use candid::{CandidType, Nat, Principal};
use ic_management_canister_types as mc;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::canister::{instantiate, link_stubs, Canister, Entry, Finish};
use crate::cycles;
use crate::limits::TOUCH_UPGRADE;
use crate::state::{reject_of, State};
use crate::system_api::{Exec, ExecKind, HostCtx};
use crate::types::*;

pub const MAX_CONTROLLERS: usize = 10;

/// Instructions of `install_code` messages a canister may execute per round (the IC's
/// `install_code_rate_limit` = `MAX_INSTRUCTIONS_PER_SLICE`, 2 B, `rs/config/src/subnet_config.rs`:
/// "Denotes how many instructions each canister is allowed to execute in install_code messages
/// per round. Canisters may go over this limit in a single round, but will then reject
/// install_code messages for several rounds until they are back under the allowed rate.").
///
/// The rule, as `rs/execution_environment` applies it: a successful install adds the
/// instructions it consumed (compilation included) to the canister's `install_code_debit`; at
/// the end of every round each canister's debit drops by 2 B (saturating); an `install_code`
/// while the debit is above 0 is refused (IC0209) before anything is charged but its ingress.
pub const INSTALL_CODE_RATE_LIMIT: u64 = 2_000_000_000;

/// Changes `canister_info` keeps (the IC keeps at least the 20 most recent).
pub const HISTORY_KEPT: usize = 20;

/// A canister's history as `canister_info` returns it. As on the IC, only changes count:
/// creation, code install / reinstall / upgrade, uninstall, and `update_settings` calls that name
/// controllers (even the same ones). Executing messages and other settings do not, unlike
/// `canister_version`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub total_num_changes: u64,
    /// Oldest first, at most [`HISTORY_KEPT`].
    pub recent: std::collections::VecDeque<Change>,
}

impl History {
    /// The history of a canister whose history is unknown (restored from a snapshot of format 1,
    /// written before snapshots held it, `crate::persist`): no recent changes, and a count of `at_least`, which the
    /// caller takes from `canister_version` (it grows with every change too, so the count never
    /// goes below one `canister_info` returned before the state was saved).
    fn unknown(at_least: u64) -> Self {
        History {
            total_num_changes: at_least,
            recent: Default::default(),
        }
    }
}

/// The interface specification's `change` record. `details` is not `opt` there (nor in what the
/// IC and PocketIC send), unlike `ic-management-canister-types` 0.11's `Change`.
#[derive(Clone, Debug, PartialEq, Eq, CandidType, serde::Deserialize)]
pub struct Change {
    pub timestamp_nanos: u64,
    pub canister_version: u64,
    pub origin: mc::ChangeOrigin,
    pub details: mc::ChangeDetails,
}

/// The specification's `canister_info_result`, with [`Change`].
#[derive(Clone, Debug, PartialEq, Eq, CandidType, serde::Deserialize)]
pub struct CanisterInfo {
    pub total_num_changes: u64,
    pub recent_changes: Vec<Change>,
    pub module_hash: Option<Vec<u8>>,
    pub controllers: Vec<Principal>,
}

fn decode<T: DeserializeOwned + CandidType>(arg: &[u8]) -> Result<T, RejectResponse> {
    candid::decode_one(arg).map_err(|e| {
        RejectResponse::ic(
            408,
            format!("Error decoding candid payload of the management canister call: {e}"),
        )
    })
}

/// A vetKD call the IC cannot route (its argument does not decode, or it names a key no subnet
/// holds): reject code 3 (`DESTINATION_INVALID`) with the IC's text. Only canisters call these
/// methods and a canister sees the reject code and message only, so the error code (IC0301
/// here) is never observed.
fn vetkd_routing_error(method: &str, why: String) -> RejectResponse {
    RejectResponse::ic(
        301,
        format!("Unable to route management canister request {method}: {why}"),
    )
}

fn vetkd_decode<T: DeserializeOwned + CandidType>(
    method: &str,
    arg: &[u8],
) -> Result<T, RejectResponse> {
    candid::decode_one(arg).map_err(|e| {
        vetkd_routing_error(
            method,
            format!("UserError(UserError {{ code: InvalidManagementPayload, description: \"Error decoding candid: {e}\" }})"),
        )
    })
}

fn encode<T: CandidType>(v: &T) -> Vec<u8> {
    candid::encode_one(v).expect("encoding management results cannot fail")
}

fn nat_u64(n: &Nat, what: &str) -> Result<u64, RejectResponse> {
    u64::try_from(n.0.clone())
        .map_err(|_| RejectResponse::ic(408, format!("{what} does not fit 64 bits")))
}

fn settings_from(s: mc::CanisterSettings) -> Result<CanisterSettings, RejectResponse> {
    Ok(CanisterSettings {
        controllers: s.controllers,
        freezing_threshold: s
            .freezing_threshold
            .as_ref()
            .map(|n| nat_u64(n, "freezing_threshold"))
            .transpose()?,
        wasm_memory_limit: s
            .wasm_memory_limit
            .as_ref()
            .map(|n| nat_u64(n, "wasm_memory_limit"))
            .transpose()?,
    })
}

fn status_kind(s: CanisterStatusKind) -> mc::CanisterStatusType {
    match s {
        CanisterStatusKind::Running => mc::CanisterStatusType::Running,
        CanisterStatusKind::Stopping => mc::CanisterStatusType::Stopping,
        CanisterStatusKind::Stopped => mc::CanisterStatusType::Stopped,
    }
}

impl State {
    /// The end of a round for `install_code` rate limiting: every debit drops by
    /// [`INSTALL_CODE_RATE_LIMIT`].
    pub(crate) fn settle_install_code_debits(&mut self) {
        self.install_code_debit.retain(|_, d| {
            *d = d.saturating_sub(INSTALL_CODE_RATE_LIMIT);
            *d > 0
        });
    }

    /// Records a change of `cid` made by `caller`, at the canister's current version.
    fn record_change(&mut self, caller: Principal, cid: Principal, details: mc::ChangeDetails) {
        let Some(version) = self.canisters.get(&cid).map(|c| c.ctx().canister_version) else {
            return;
        };
        let origin = match self.canisters.get(&caller) {
            Some(c) => mc::ChangeOrigin::FromCanister(mc::FromCanisterRecord {
                canister_id: caller,
                canister_version: Some(c.ctx().canister_version),
            }),
            None => mc::ChangeOrigin::FromUser(mc::FromUserRecord { user_id: caller }),
        };
        let change = Change {
            timestamp_nanos: self.time,
            canister_version: version,
            origin,
            details,
        };
        let h = self
            .history
            .entry(cid)
            .or_insert_with(|| History::unknown(version));
        h.total_num_changes += 1;
        h.recent.push_back(change);
        while h.recent.len() > HISTORY_KEPT {
            h.recent.pop_front();
        }
    }

    /// `canister_info`'s answer for `cid`, with its `wanted` most recent changes.
    pub fn canister_info(
        &self,
        cid: Principal,
        wanted: Option<u64>,
    ) -> Result<CanisterInfo, RejectResponse> {
        let c = self.canister(cid)?;
        let h = self
            .history
            .get(&cid)
            .cloned()
            .unwrap_or_else(|| History::unknown(c.ctx().canister_version + 1));
        let n = usize::try_from(wanted.unwrap_or(0)).unwrap_or(usize::MAX);
        let skip = h.recent.len().saturating_sub(n);
        Ok(CanisterInfo {
            total_num_changes: h.total_num_changes,
            recent_changes: h.recent.into_iter().skip(skip).collect(),
            module_hash: c.module_hash.map(|h| h.to_vec()),
            controllers: c.ctx().controllers.clone(),
        })
    }

    fn controlled(&self, caller: Principal, cid: Principal) -> Result<&Canister, RejectResponse> {
        let c = self.canister(cid)?;
        if !c.ctx().controllers.contains(&caller) {
            return Err(RejectResponse::ic(
                512,
                format!(
                    "Only the controllers of the canister {cid} can control it.\nCanister's controllers: {}\nSender's ID: {caller}",
                    c.ctx()
                        .controllers
                        .iter()
                        .map(|p| p.to_text())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            ));
        }
        Ok(c)
    }

    fn validate_settings(s: &CanisterSettings) -> Result<(), RejectResponse> {
        if let Some(c) = &s.controllers {
            if c.len() > MAX_CONTROLLERS {
                return Err(RejectResponse::ic(
                    408,
                    format!(
                        "Invalid settings: {} controllers given, at most {MAX_CONTROLLERS} are allowed",
                        c.len()
                    ),
                ));
            }
        }
        if let Some(l) = s.wasm_memory_limit {
            if l > 1 << 48 {
                return Err(RejectResponse::ic(
                    408,
                    "Invalid settings: wasm_memory_limit must be at most 2^48",
                ));
            }
        }
        Ok(())
    }

    fn apply_settings(&mut self, cid: Principal, s: CanisterSettings) {
        let Some(c) = self.canisters.get_mut(&cid) else {
            return;
        };
        if let Some(ctrl) = s.controllers {
            let mut dedup: Vec<Principal> = Vec::new();
            for p in ctrl {
                if !dedup.contains(&p) {
                    dedup.push(p);
                }
            }
            c.ctx_mut().controllers = dedup;
        }
        if let Some(t) = s.freezing_threshold {
            c.freezing_threshold = t;
        }
        if let Some(l) = s.wasm_memory_limit {
            c.wasm_memory_limit = if l == 0 { u64::MAX } else { l };
            let limit = usize::try_from(c.wasm_memory_limit).unwrap_or(usize::MAX);
            c.ctx_mut().limits = wasmi::StoreLimitsBuilder::new().memory_size(limit).build();
        }
        c.ctx_mut().canister_version += 1;
    }

    /// `create_canister`. `fee` is the creation fee taken from `cycles` (0 for the provisional API).
    pub fn create_canister_with(
        &mut self,
        caller: Principal,
        settings: Option<CanisterSettings>,
        cycles: u128,
        fee: u128,
    ) -> Result<Principal, RejectResponse> {
        self.create_canister_at(caller, None, settings, cycles, fee)
    }

    /// [`Self::create_canister_with`] at `specified` (`provisional_create_canister_with_cycles`'
    /// `specified_id`, as PocketIC and a local replica accept it: any id not in use), else at
    /// the next free id.
    pub fn create_canister_at(
        &mut self,
        caller: Principal,
        specified: Option<Principal>,
        settings: Option<CanisterSettings>,
        cycles: u128,
        fee: u128,
    ) -> Result<Principal, RejectResponse> {
        if let Some(id) = specified {
            if self.canisters.contains_key(&id) {
                return Err(RejectResponse::ic(
                    409,
                    format!("The specified canister id {id} is already in use"),
                ));
            }
            let len = id.as_slice().len();
            if len != 10 || id.as_slice()[8..] != [1, 1] {
                return Err(RejectResponse::ic(
                    400,
                    format!("The specified id {id} is not a canister id"),
                ));
            }
        }
        if cycles < fee {
            return Err(RejectResponse::ic(
                403,
                format!(
                    "Creating a canister requires a fee of {fee} that is deducted from the canister's initial balance but only {cycles} cycles were received with the create_canister request."
                ),
            ));
        }
        let settings = settings.unwrap_or_default();
        Self::validate_settings(&settings)?;
        let id = match specified {
            Some(id) => self.new_canister_at(id, vec![caller], cycles - fee),
            None => self.new_canister(vec![caller], cycles - fee),
        };
        if settings != CanisterSettings::default() {
            self.apply_settings(id, settings);
        }
        self.history.insert(id, History::default());
        let controllers = match self.canisters.get_mut(&id) {
            Some(c) => {
                c.ctx_mut().canister_version = 0;
                c.ctx().controllers.clone()
            }
            None => Vec::new(),
        };
        self.record_change(
            caller,
            id,
            mc::ChangeDetails::Creation(mc::CreationRecord {
                controllers,
                environment_variables_hash: None,
            }),
        );
        Ok(id)
    }

    pub fn update_settings(
        &mut self,
        caller: Principal,
        cid: Principal,
        settings: CanisterSettings,
    ) -> Result<(), RejectResponse> {
        self.controlled(caller, cid)?;
        Self::validate_settings(&settings)?;
        let names_controllers = settings.controllers.is_some();
        self.apply_settings(cid, settings);
        if names_controllers {
            let controllers = self.canister(cid)?.ctx().controllers.clone();
            self.record_change(
                caller,
                cid,
                mc::ChangeDetails::ControllersChange(mc::ControllersChangeRecord { controllers }),
            );
        }
        Ok(())
    }

    pub fn status(
        &self,
        caller: Principal,
        cid: Principal,
    ) -> Result<CanisterStatus, RejectResponse> {
        let c = self.canister(cid)?;
        if caller != cid {
            self.controlled(caller, cid)?;
        }
        Ok(CanisterStatus {
            status: c.status,
            controllers: c.ctx().controllers.clone(),
            module_hash: c.module_hash,
            cycles: c.ctx().balance,
            memory_size: c.memory_size(),
            idle_cycles_burned_per_day: cycles::freezing_reserve(c.memory_size(), 86_400),
            freezing_threshold: c.freezing_threshold,
            canister_version: c.ctx().canister_version,
        })
    }

    fn status_candid(&self, caller: Principal, cid: Principal) -> Result<Vec<u8>, RejectResponse> {
        let s = self.status(caller, cid)?;
        let c = self.canister(cid)?;
        let heap = c.heap_bytes();
        let stable = c.ctx().stable.size_bytes();
        let binary = c.module.as_ref().map_or(0, |m| m.size as u64);
        let idle = cycles::freezing_reserve(c.memory_size(), 86_400);
        let r = mc::CanisterStatusResult {
            status: status_kind(s.status),
            ready_for_migration: false,
            version: s.canister_version,
            settings: mc::DefiniteCanisterSettings {
                controllers: s.controllers,
                compute_allocation: Nat::from(0u8),
                memory_allocation: Nat::from(0u8),
                freezing_threshold: Nat::from(s.freezing_threshold),
                reserved_cycles_limit: Nat::from(5_000_000_000_000u64),
                minimum_incoming_canister_call_cycles: Nat::from(0u8),
                log_visibility: mc::LogVisibility::Controllers,
                log_memory_limit: Nat::from(0u8),
                snapshot_visibility: Default::default(),
                status_visibility: Default::default(),
                wasm_memory_limit: Nat::from(c.wasm_memory_limit),
                wasm_memory_threshold: Nat::from(0u8),
                environment_variables: Vec::new(),
            },
            module_hash: s.module_hash.map(|h| h.to_vec()),
            memory_size: Nat::from(s.memory_size + binary),
            memory_metrics: mc::MemoryMetrics {
                wasm_memory_size: Nat::from(heap),
                stable_memory_size: Nat::from(stable),
                global_memory_size: Nat::from(0u8),
                wasm_binary_size: Nat::from(binary),
                custom_sections_size: Nat::from(0u8),
                canister_history_size: Nat::from(0u8),
                wasm_chunk_store_size: Nat::from(0u8),
                snapshots_size: Nat::from(0u8),
                log_memory_store_size: Nat::from(0u8),
            },
            cycles: Nat::from(s.cycles),
            reserved_cycles: Nat::from(0u8),
            idle_cycles_burned_per_day: Nat::from(idle),
            query_stats: mc::QueryStats {
                num_calls_total: Nat::from(0u8),
                num_instructions_total: Nat::from(0u8),
                request_payload_bytes_total: Nat::from(0u8),
                response_payload_bytes_total: Nat::from(0u8),
            },
        };
        Ok(encode(&r))
    }

    pub fn start(&mut self, caller: Principal, cid: Principal) -> Result<(), RejectResponse> {
        self.controlled(caller, cid)?;
        let c = self.canisters.get_mut(&cid).expect("checked");
        if c.status != CanisterStatusKind::Running {
            c.status = CanisterStatusKind::Running;
            c.ctx_mut().status = 1;
            // Pending stop requests are cancelled.
            for callback in self.stop_waiters.remove(&cid).unwrap_or_default() {
                self.queue.push_back(crate::state::Msg::Response {
                    callback,
                    result: Err((
                        RejectCode::CanisterError as u32,
                        format!("Canister {cid}'s stop request was cancelled."),
                    )),
                    refund: 0,
                });
            }
        }
        Ok(())
    }

    /// Starts stopping `cid`; `Ok(true)` when it is stopped already.
    pub fn begin_stop(
        &mut self,
        caller: Principal,
        cid: Principal,
        waiter: Option<u64>,
    ) -> Result<bool, RejectResponse> {
        self.controlled(caller, cid)?;
        let c = self.canisters.get_mut(&cid).expect("checked");
        if c.status == CanisterStatusKind::Stopped {
            return Ok(true);
        }
        c.status = CanisterStatusKind::Stopping;
        c.ctx_mut().status = 2;
        if let Some(w) = waiter {
            self.stop_waiters.entry(cid).or_default().push(w);
        }
        let before = self.queue.len();
        self.check_stopped(cid);
        let stopped = self.canisters[&cid].status == CanisterStatusKind::Stopped;
        if stopped && waiter.is_some() {
            // check_stopped queued the waiter's answer; it is answered by the caller instead.
            self.queue.truncate(before);
        }
        Ok(stopped)
    }

    pub fn delete(&mut self, caller: Principal, cid: Principal) -> Result<(), RejectResponse> {
        let c = self.controlled(caller, cid)?;
        if c.status != CanisterStatusKind::Stopped {
            return Err(RejectResponse::ic(
                510,
                format!("Canister {cid} must be stopped before it is deleted."),
            ));
        }
        // Remaining cycles are lost, as on the IC.
        self.canisters.remove(&cid);
        self.history.remove(&cid);
        self.install_code_debit.remove(&cid);
        Ok(())
    }

    pub fn uninstall(&mut self, caller: Principal, cid: Principal) -> Result<(), RejectResponse> {
        self.controlled(caller, cid)?;
        let engine = self.engine.clone();
        let c = self.canisters.get_mut(&cid).expect("checked");
        let old = std::mem::replace(
            &mut c.store,
            crate::canister::new_store(&engine, HostCtx::new(cid)),
        );
        let old = old.into_data();
        let h = c.ctx_mut();
        h.balance = old.balance;
        h.controllers = old.controllers;
        h.log = old.log;
        h.canister_version = old.canister_version + 1;
        h.status = old.status;
        h.limits = old.limits;
        c.instance = None;
        c.module = None;
        c.module_hash = None;
        c.globals.clear();
        c.table = None;
        c.committed_heap = Vec::new();
        c.committed_globals.clear();
        c.generation += 1;
        self.record_change(caller, cid, mc::ChangeDetails::CodeUninstall);
        Ok(())
    }

    /// The master key `key_id` names, or the IC's refusal of a key it does not hold (a routing
    /// error: the IC looks the key up to find the subnet that holds it). The list names the
    /// keys this replica holds; PocketIC's also names its ECDSA and Schnorr keys, which the
    /// embedded replica does not implement.
    fn vetkd_key(
        &self,
        method: &str,
        key_id: &mc::VetKDKeyId,
    ) -> Result<crate::vetkd::DerivedKey, RejectResponse> {
        if !crate::vetkd::KEY_NAMES.contains(&key_id.name.as_str()) {
            let mut existing: Vec<String> = crate::vetkd::KEY_NAMES
                .iter()
                .map(|n| format!("vetkd:Bls12_381_G2:{n}"))
                .collect();
            existing.sort();
            let (unknown, listed) = if method == "vetkd_derive_key" {
                ("unknown or disabled", "existing enabled keys")
            } else {
                ("unknown", "existing keys")
            };
            return Err(vetkd_routing_error(
                method,
                format!(
                    "ChainKeyError(\"Requested {unknown} threshold key: vetkd:Bls12_381_G2:{}, {listed}: [{}]\")",
                    key_id.name,
                    existing.join(", ")
                ),
            ));
        }
        Ok(crate::vetkd::DerivedKey::master(
            &self.keys.seed(),
            &key_id.name,
        ))
    }

    pub fn raw_rand(&mut self) -> Vec<u8> {
        self.rng_counter += 1;
        let mut h = Sha256::new();
        h.update(b"canvid-replica raw_rand");
        h.update(self.rng_counter.to_le_bytes());
        h.finalize().to_vec()
    }

    /// `install_code` in any mode. Failure leaves the canister exactly as it was (minus the
    /// execution cycles spent).
    pub fn install_code(
        &mut self,
        caller: Principal,
        mode: InstallMode,
        cid: Principal,
        wasm: &[u8],
        arg: Vec<u8>,
        skip_pre_upgrade: bool,
    ) -> Result<CallStats, RejectResponse> {
        let c = self.controlled(caller, cid)?;
        match mode {
            InstallMode::Install if c.module.is_some() => {
                return Err(RejectResponse::ic(
                    514,
                    format!("Canister {cid} cannot be installed because the canister is not empty. Try installing with mode='reinstall' instead."),
                ))
            }
            InstallMode::Upgrade if c.module.is_none() => {
                return Err(RejectResponse::ic(
                    537,
                    format!("Error from Canister {cid}: Attempted to upgrade a canister that contains no Wasm module."),
                ))
            }
            _ => {}
        }
        if self.install_code_debit.get(&cid).is_some_and(|d| *d > 0) {
            return Err(RejectResponse::ic(
                209,
                format!("Canister {cid} is rate limited because it executed too many instructions in the previous install_code messages. Please retry installation after several minutes."),
            ));
        }
        // The IC prepays the install message's whole instruction limit (300 B) above the
        // freezing reserve before doing anything (compiling included), and refunds what was
        // not used (`crate::cycles`).
        let balance_before = c.ctx().balance;
        let reserve = c.reserve();
        let prepay = cycles::execution_fee(self.limits.install_instructions);
        let needed = reserve.saturating_add(prepay);
        if balance_before < needed {
            return Err(RejectResponse::ic(
                207,
                format!(
                    "Canister installation failed with `{}`.",
                    cycles::out_of_cycles_message(cid, needed - balance_before)
                ),
            ));
        }
        let (module, compiled_now) = self
            .cache
            .get_or_compile_tracked(&self.engine, wasm)
            .map_err(|e| RejectResponse::ic(505, format!("Error from Canister {cid}: {e}")))?;
        // Compiling the module is part of the install's instructions (the IC's compilation
        // cost); a module compiled before is deserialized for a hundredth of that.
        let compile_instructions = {
            let full = module
                .wasm_instructions
                .saturating_mul(crate::engine::COMPILE_INSTRUCTIONS_PER_WASM_INSTRUCTION);
            if compiled_now {
                full
            } else {
                full / crate::engine::DESERIALIZATION_SPEED_UP
            }
        };
        link_stubs(&mut self.linker, &mut self.stubs, &module);
        let mut stats = CallStats {
            instructions: compile_instructions,
            ..CallStats::default()
        };
        let mut budget = self
            .limits
            .install_instructions
            .saturating_sub(compile_instructions);
        let engine = self.engine.clone();
        let time = self.time;
        let c = self.canisters.get_mut(&cid).expect("checked");
        let old_version = c.ctx().canister_version;
        c.ctx_mut().balance -= prepay;
        // The prepayment less what `instr` instructions cost: refunded to the canister.
        let refund_for = |instr: u64| prepay - cycles::execution_fee(instr).min(prepay);
        let call_reservation = cycles::call_reservation(self.limits.update_instructions);

        let certified_before = c.ctx().certified_data.clone();
        let timer_before = c.ctx().global_timer;
        if mode == InstallMode::Upgrade && !c.ctx().stable.journaling() {
            // One journal spans pre_upgrade, the start function and post_upgrade, so a failure
            // anywhere restores the stable memory the old module left.
            c.ctx_mut().stable.begin(TOUCH_UPGRADE);
        }
        // --- pre_upgrade on the old instance (changes kept until the upgrade completes) ---
        if mode == InstallMode::Upgrade && !skip_pre_upgrade && c.exports("canister_pre_upgrade") {
            let exec = Exec {
                kind: ExecKind::PreUpgrade,
                caller,
                time,
                reserve,
                fuel_limit: budget,
                call_reservation,
                ..Exec::default()
            };
            let out = c.run(
                &engine,
                &self.linker,
                Entry::Export("canister_pre_upgrade".into()),
                exec,
                Finish::Keep,
                TOUCH_UPGRADE,
            );
            stats.instructions += out.instructions;
            budget -= out.instructions.min(budget);
            if let Err(e) = out.result {
                c.ctx_mut().balance += refund_for(stats.instructions);
                let mut r = reject_of(cid, &e);
                r.reject_message = format!("{} (in canister_pre_upgrade)", r.reject_message);
                return Err(r);
            }
        }

        // --- the new instance ---
        let mem_limit = usize::try_from(c.wasm_memory_limit).unwrap_or(usize::MAX);
        let new_ctx = {
            let h = c.ctx_mut();
            let mut n = HostCtx::new(cid);
            n.balance = h.balance;
            n.controllers = h.controllers.clone();
            n.log = std::mem::take(&mut h.log);
            n.echo = h.echo;
            n.canister_version = old_version;
            n.status = h.status;
            n.limits = wasmi::StoreLimitsBuilder::new()
                .memory_size(mem_limit)
                .build();
            if mode == InstallMode::Upgrade {
                n.stable = std::mem::take(&mut h.stable);
                n.certified_data = h.certified_data.clone();
            }
            n
        };
        // Undo everything on the old canister after a failure past pre_upgrade.
        let fail = |c: &mut Canister,
                    mut ctx: HostCtx,
                    linker: &wasmi::Linker<HostCtx>,
                    instr: u64,
                    r: RejectResponse| {
            ctx.stable.rollback();
            let h = c.ctx_mut();
            h.log.append(&mut ctx.log);
            if mode == InstallMode::Upgrade {
                h.stable = std::mem::take(&mut ctx.stable);
            }
            h.balance = balance_before - prepay + refund_for(instr);
            h.certified_data = certified_before.clone();
            h.global_timer = timer_before;
            c.restore_committed(&engine, linker);
            Err(r)
        };
        let start_fuel = budget;
        let (store, instance, globals, table, used) =
            match instantiate(&engine, &self.linker, &module, new_ctx, start_fuel) {
                Ok(x) => x,
                Err(failed) => {
                    let (ctx, msg) = *failed;
                    let r = RejectResponse::ic(505, format!("Error from Canister {cid}: {msg}"));
                    let instr = stats.instructions;
                    return fail(c, ctx, &self.linker, instr, r);
                }
            };
        stats.instructions += used;
        budget -= used.min(budget);
        let mut fresh = Canister::new(&engine, cid);
        fresh.freezing_threshold = c.freezing_threshold;
        fresh.wasm_memory_limit = c.wasm_memory_limit;
        fresh.status = c.status;
        fresh.open_contexts = c.open_contexts;
        fresh.message_memory = c.message_memory;
        fresh.generation = if mode == InstallMode::Upgrade {
            c.generation
        } else {
            c.generation + 1
        };
        fresh.adopt(module.clone(), store, instance, globals, table);
        fresh.module_hash = Some(crate::engine::sha256(wasm));

        // --- canister_init / canister_post_upgrade ---
        let (entry, kind) = match mode {
            InstallMode::Upgrade => ("canister_post_upgrade", ExecKind::PostUpgrade),
            _ => ("canister_init", ExecKind::Init),
        };
        if fresh.exports(entry) {
            let exec = Exec {
                kind,
                caller,
                arg,
                time,
                reserve,
                fuel_limit: budget,
                call_reservation,
                ..Exec::default()
            };
            let out = fresh.run(
                &engine,
                &self.linker,
                Entry::Export(entry.into()),
                exec,
                Finish::Commit,
                TOUCH_UPGRADE,
            );
            stats.instructions += out.instructions;
            if let Err(e) = out.result {
                let ctx = std::mem::replace(
                    &mut fresh.store,
                    crate::canister::new_store(&engine, HostCtx::new(cid)),
                )
                .into_data();
                let mut r = reject_of(cid, &e);
                r.reject_message = format!("{} (in {entry})", r.reject_message);
                let instr = stats.instructions;
                return fail(c, ctx, &self.linker, instr, r);
            }
        } else {
            fresh.ctx_mut().stable.commit();
        }
        let refund = refund_for(stats.instructions);
        fresh.ctx_mut().balance += refund;
        stats.cycles_charged = prepay - refund;
        fresh.ctx_mut().canister_version = old_version + 1;
        // The global timer: the new instance's context started with none (the IC deactivates
        // it before the install runs), so what `canister_init` / `canister_post_upgrade` armed
        // stays armed, as on the IC (tests/tests/fidelity.rs::a_timer_armed_in_post_upgrade_fires).
        let module_hash = fresh.module_hash.map(|h| h.to_vec()).unwrap_or_default();
        *c = fresh;
        let mode = match mode {
            InstallMode::Install => mc::CodeDeploymentMode::Install,
            InstallMode::Reinstall => mc::CodeDeploymentMode::Reinstall,
            InstallMode::Upgrade => mc::CodeDeploymentMode::Upgrade,
        };
        self.record_change(
            caller,
            cid,
            mc::ChangeDetails::CodeDeployment(mc::CodeDeploymentRecord { mode, module_hash }),
        );
        *self.install_code_debit.entry(cid).or_default() += stats.instructions;
        Ok(stats)
    }

    /// Dispatches a call to the management canister. Returns the result and the cycles refunded
    /// to the caller, or `None` when the answer comes later (a `stop_canister` that waits for
    /// open call contexts; `waiter` is the caller's callback).
    pub fn management_call(
        &mut self,
        caller: Principal,
        method: &str,
        arg: &[u8],
        cycles: u128,
        waiter: Option<u64>,
    ) -> Option<(Result<Vec<u8>, RejectResponse>, u128)> {
        let unit = || candid::encode_args(()).expect("encoding () cannot fail");
        if method == "stop_canister" {
            let a: Result<mc::CanisterIdRecord, _> = decode(arg);
            return match a.and_then(|a| self.begin_stop(caller, a.canister_id, waiter)) {
                Ok(true) => Some((Ok(unit()), cycles)),
                Ok(false) if waiter.is_some() => None,
                Ok(false) => Some((Ok(unit()), cycles)),
                Err(e) => Some((Err(e), cycles)),
            };
        }
        let r: Result<(Vec<u8>, u128), RejectResponse> = (|| match method {
            "create_canister" => {
                let a: mc::CreateCanisterArgs = decode(arg)?;
                let settings = a.settings.map(settings_from).transpose()?;
                let id =
                    self.create_canister_with(caller, settings, cycles, cycles::CREATION_FEE)?;
                Ok((encode(&mc::CanisterIdRecord { canister_id: id }), 0))
            }
            "provisional_create_canister_with_cycles" => {
                let a: mc::ProvisionalCreateCanisterWithCyclesArgs = decode(arg)?;
                let settings = a.settings.map(settings_from).transpose()?;
                let amount = a
                    .amount
                    .map(|n| u128::try_from(n.0).unwrap_or(u128::MAX))
                    .unwrap_or(100_000_000_000_000);
                let id = self.create_canister_at(caller, a.specified_id, settings, amount, 0)?;
                Ok((encode(&mc::CanisterIdRecord { canister_id: id }), cycles))
            }
            "provisional_top_up_canister" => {
                let a: mc::ProvisionalTopUpCanisterArgs = decode(arg)?;
                let amount = u128::try_from(a.amount.0).unwrap_or(u128::MAX);
                let c = self
                    .canisters
                    .get_mut(&a.canister_id)
                    .ok_or_else(|| State::not_found(a.canister_id))?;
                c.ctx_mut().balance += amount;
                Ok((unit(), cycles))
            }
            "update_settings" => {
                let a: mc::UpdateSettingsArgs = decode(arg)?;
                self.update_settings(caller, a.canister_id, settings_from(a.settings)?)?;
                Ok((unit(), cycles))
            }
            "install_code" => {
                let a: mc::InstallCodeArgs = decode(arg)?;
                let (mode, skip) = match a.mode {
                    mc::CanisterInstallMode::Install => (InstallMode::Install, false),
                    mc::CanisterInstallMode::Reinstall => (InstallMode::Reinstall, false),
                    mc::CanisterInstallMode::Upgrade(flags) => (
                        InstallMode::Upgrade,
                        flags.and_then(|f| f.skip_pre_upgrade).unwrap_or(false),
                    ),
                };
                self.install_code(caller, mode, a.canister_id, &a.wasm_module, a.arg, skip)?;
                Ok((unit(), cycles))
            }
            "uninstall_code" => {
                let a: mc::UninstallCodeArgs = decode(arg)?;
                self.uninstall(caller, a.canister_id)?;
                Ok((unit(), cycles))
            }
            "canister_status" => {
                let a: mc::CanisterIdRecord = decode(arg)?;
                Ok((self.status_candid(caller, a.canister_id)?, cycles))
            }
            "canister_info" => {
                let a: mc::CanisterInfoArgs = decode(arg)?;
                let r = self.canister_info(a.canister_id, a.num_requested_changes)?;
                Ok((encode(&r), cycles))
            }
            "deposit_cycles" => {
                let a: mc::CanisterIdRecord = decode(arg)?;
                let c = self
                    .canisters
                    .get_mut(&a.canister_id)
                    .ok_or_else(|| State::not_found(a.canister_id))?;
                c.ctx_mut().balance += cycles;
                Ok((unit(), 0))
            }
            "start_canister" => {
                let a: mc::CanisterIdRecord = decode(arg)?;
                self.start(caller, a.canister_id)?;
                Ok((unit(), cycles))
            }
            "delete_canister" => {
                let a: mc::CanisterIdRecord = decode(arg)?;
                self.delete(caller, a.canister_id)?;
                Ok((unit(), cycles))
            }
            "raw_rand" => {
                let bytes = self.raw_rand();
                Ok((encode(&serde_bytes::ByteBuf::from(bytes)), cycles))
            }
            "vetkd_public_key" => {
                let a: mc::VetKDPublicKeyArgs = vetkd_decode(method, arg)?;
                let key = self.vetkd_key(method, &a.key_id)?;
                let canister = a.canister_id.unwrap_or(caller);
                let public_key = key.canister(canister).context(&a.context).public_key();
                let r = mc::VetKDPublicKeyResult {
                    public_key: public_key.to_vec(),
                };
                Ok((encode(&r), cycles))
            }
            "vetkd_derive_key" => {
                let a: mc::VetKDDeriveKeyArgs = vetkd_decode(method, arg)?;
                // The IC's candid type is a 48-byte array: another length fails decoding,
                // which happens while routing the call (PocketIC 10's answer).
                if a.transport_public_key.len() != 48 {
                    return Err(vetkd_routing_error(
                        method,
                        format!(
                            "UserError(UserError {{ code: InvalidManagementPayload, description: \"Error decoding candid: Deserialize error: invalid length {}, expected a byte array of length 48\" }})",
                            a.transport_public_key.len()
                        ),
                    ));
                }
                let key = self.vetkd_key(method, &a.key_id)?;
                // As on PocketIC 10: an invalid point is refused before the fee is looked at.
                let transport =
                    crate::vetkd::transport_key(&a.transport_public_key).ok_or_else(|| {
                        RejectResponse::ic(406, "The provided transport public key is invalid.")
                    })?;
                let fee = cycles::VETKD_DERIVE_KEY_FEE;
                if cycles < fee {
                    return Err(RejectResponse::ic(
                        406,
                        format!(
                            "vetkd_derive_key request sent with {} cycles, but {} cycles are required.",
                            cycles::underscored(cycles),
                            cycles::underscored(fee)
                        ),
                    ));
                }
                self.rng_counter += 1;
                let r = crate::vetkd::encryption_randomness(
                    &self.keys.seed(),
                    self.rng_counter,
                    &[
                        caller.as_slice(),
                        &a.context,
                        &a.input,
                        &a.transport_public_key,
                    ],
                );
                let derived = key.canister(caller).context(&a.context);
                let encrypted_key = derived.encrypted_key(&a.input, &transport, r);
                Ok((
                    encode(&mc::VetKDDeriveKeyResult { encrypted_key }),
                    cycles - fee,
                ))
            }
            other => Err(RejectResponse::ic(
                536,
                format!("Management canister has no method '{other}'"),
            )),
        })();
        Some(match r {
            Ok((bytes, refund)) => (Ok(bytes), refund),
            Err(e) => (Err(e), cycles),
        })
    }
}
