//! The scheduler: rounds ([`State::tick`]), message handlers, call contexts and the execution
//! of one message ([`State::execute`]).
//!
//! A round executes every message queued before it started (ingress, inter-canister requests and
//! responses), the responses of best-effort calls whose deadline passed, due global timers and
//! heartbeats. Messages produced in a round wait for the next one.

use candid::Principal;

use crate::canister::{Entry, ExecError, Finish, Outcome};
use crate::cycles;
use crate::faults::Fault;
use crate::ids;
use crate::limits::TOUCH_UPDATE;
use crate::state::{
    method_kind, reject_of, CallContext, Callback, Charged, Msg, Origin, Payment, State,
};
use crate::system_api::{Exec, ExecKind, OutCall, Response};
use crate::types::*;

impl State {
    fn stat(&mut self, root: Option<u64>, instructions: u64, cycles: u128) {
        if let Some(r) = root {
            // Only while the message's entry exists: executions of a call context that outlives
            // its ingress message's retention (or `update_call`'s removal) must not re-create it.
            if let Some(s) = self.stats.get_mut(&r) {
                s.instructions += instructions;
                s.cycles_charged += cycles;
            }
        }
    }

    /// Runs one execution on canister `cid` and charges it (see [`Payment`]). The outcome's
    /// `unspent` is what is left of a [`Payment::Reserved`] reservation (not yet refunded).
    #[allow(clippy::too_many_arguments)]
    pub fn execute(
        &mut self,
        cid: Principal,
        entry: Entry,
        mut exec: Exec,
        finish: Finish,
        fuel_limit: u64,
        touch_limit: u64,
        root: Option<u64>,
        payment: Payment,
    ) -> Charged {
        let c = self
            .canisters
            .get_mut(&cid)
            .expect("caller checked existence");
        let reserve = c.reserve();
        exec.reserve = reserve;
        exec.time = match exec.kind {
            // Read-only executions run on the latest state, at its time.
            ExecKind::NonReplicatedQuery | ExecKind::CompositeQuery | ExecKind::InspectMessage => {
                self.state_time
            }
            _ => self.time,
        };
        exec.fuel_limit = fuel_limit;
        exec.max_reply = self.limits.reply_bytes(exec.kind);
        exec.call_reservation = cycles::call_reservation(self.limits.update_instructions);
        exec.freezing_threshold = c.freezing_threshold;
        // What this execution may spend on instructions, already taken from the balance.
        let prepaid = match payment {
            Payment::Free => 0,
            Payment::Reserved(r) => r,
            Payment::Prepay => {
                let prepay = cycles::execution_fee(fuel_limit);
                let needed = reserve.saturating_add(prepay);
                let balance = c.ctx().balance;
                if balance < needed {
                    return Charged {
                        out: Outcome {
                            result: Err(ExecError::OutOfCycles {
                                needed: needed - balance,
                            }),
                            exec,
                            instructions: 0,
                        },
                        unspent: 0,
                    };
                }
                c.ctx_mut().balance -= prepay;
                prepay
            }
        };
        let out = c.run(&self.engine, &self.linker, entry, exec, finish, touch_limit);
        let mut cost = out.exec.call_fees;
        let mut unspent = 0;
        if payment != Payment::Free {
            // The prepayment covers the whole limit, so the fee never exceeds it.
            let fee = cycles::execution_fee(out.instructions).min(prepaid);
            cost += fee;
            match payment {
                Payment::Prepay => c.ctx_mut().balance += prepaid - fee,
                _ => unspent = prepaid - fee,
            }
        }
        self.stat(root, out.instructions, cost);
        Charged { out, unspent }
    }

    // ------------------------------------------------------------------ call contexts

    #[allow(clippy::too_many_arguments)]
    fn new_context(
        &mut self,
        canister: Principal,
        origin: Origin,
        caller: Principal,
        method: &str,
        cycles: u128,
        deadline: u64,
        root: Option<u64>,
    ) -> u64 {
        let id = self.next_ctx;
        self.next_ctx += 1;
        let responded = matches!(origin, Origin::System);
        self.contexts.insert(
            id,
            CallContext {
                canister,
                origin,
                caller,
                method: method.to_string(),
                cycles,
                responded,
                outstanding: 0,
                deadline,
                instructions: 0,
                root,
                last_error: None,
            },
        );
        if let Some(c) = self.canisters.get_mut(&canister) {
            c.open_contexts += 1;
        }
        id
    }

    /// Answers a call context.
    fn respond(&mut self, ctx_id: u64, result: Result<Vec<u8>, RejectResponse>) {
        let Some(ctx) = self.contexts.get_mut(&ctx_id) else {
            return;
        };
        if ctx.responded {
            return;
        }
        ctx.responded = true;
        let refund = std::mem::take(&mut ctx.cycles);
        match ctx.origin.clone() {
            Origin::Ingress(id) => self.finish_ingress(id, result),
            Origin::Canister { callback } => {
                let result = result.map_err(|r| (r.reject_code as u32, r.reject_message));
                self.queue.push_back(Msg::Response {
                    callback,
                    result,
                    refund,
                });
            }
            Origin::System => {}
        }
    }

    /// Closes a context without outstanding callbacks (answering it if nobody did).
    fn maybe_close(&mut self, ctx_id: u64) {
        let Some(ctx) = self.contexts.get(&ctx_id) else {
            return;
        };
        if ctx.outstanding > 0 {
            return;
        }
        if !ctx.responded {
            let err = ctx.last_error.clone().unwrap_or_else(|| {
                RejectResponse::ic(
                    506,
                    format!(
                        "Error from Canister {}: Canister did not reply to the call.",
                        ctx.canister
                    ),
                )
            });
            self.respond(ctx_id, Err(err));
        }
        if let Some(ctx) = self.contexts.remove(&ctx_id) {
            if let Some(c) = self.canisters.get_mut(&ctx.canister) {
                c.open_contexts = c.open_contexts.saturating_sub(1);
            }
            self.check_stopped(ctx.canister);
        }
    }

    fn enqueue_call(&mut self, caller: Principal, ctx_id: u64, call: OutCall) {
        let message_bytes = cycles::call_message_bytes(call.method.len(), call.arg.len());
        if let Some(c) = self.canisters.get_mut(&caller) {
            c.message_memory += message_bytes;
        }
        let cb = self.next_cb;
        self.next_cb += 1;
        let generation = self.canisters.get(&caller).map_or(0, |c| c.generation);
        let deadline = call
            .timeout_seconds
            .map(|t| self.time + t as u64 * 1_000_000_000);
        let root = self.contexts.get_mut(&ctx_id).map(|ctx| {
            ctx.outstanding += 1;
            ctx.root
        });
        self.callbacks.insert(
            cb,
            Callback {
                caller,
                context: ctx_id,
                reply: call.reply,
                reject: call.reject,
                cleanup: call.cleanup,
                deadline,
                generation,
                reservation: call.reservation,
                message_bytes,
            },
        );
        self.queue.push_back(Msg::Request {
            caller,
            callee: call.callee,
            method: call.method,
            arg: call.arg,
            cycles: call.cycles,
            callback: cb,
            deadline: deadline.unwrap_or(0),
            root: root.flatten(),
        });
    }

    /// Executes `entry` in call context `ctx_id`, paid as `payment` says, and applies the
    /// outcome (calls, response). Returns what is left of a [`Payment::Reserved`] reservation.
    #[allow(clippy::too_many_arguments)]
    fn run_in_context(
        &mut self,
        cid: Principal,
        ctx_id: u64,
        kind: ExecKind,
        entry: Entry,
        arg: Vec<u8>,
        reject: Option<(u32, String)>,
        refunded: u128,
        payment: Payment,
    ) -> (Result<(), ExecError>, u128) {
        let unspent_if_not_run = match payment {
            Payment::Reserved(r) => r,
            _ => 0,
        };
        let Some(ctx) = self.contexts.get(&ctx_id) else {
            return (Ok(()), unspent_if_not_run);
        };
        let exec = Exec {
            kind,
            caller: ctx.caller,
            method: ctx.method.clone(),
            arg,
            reject,
            deadline: ctx.deadline,
            replied_before: ctx.responded,
            cycles_available: ctx.cycles,
            cycles_refunded: refunded,
            context_instructions: ctx.instructions,
            ..Exec::default()
        };
        let root = ctx.root;
        let (finish, limit) = match kind {
            ExecKind::ReplicatedQuery => (Finish::Rollback, self.limits.query_instructions),
            _ => (Finish::Commit, self.limits.update_instructions),
        };
        let Charged { out, unspent } =
            self.execute(cid, entry, exec, finish, limit, TOUCH_UPDATE, root, payment);
        if let Some(ctx) = self.contexts.get_mut(&ctx_id) {
            ctx.instructions += out.instructions;
        }
        let result = match out.result {
            Ok(()) => {
                if let Some(ctx) = self.contexts.get_mut(&ctx_id) {
                    ctx.cycles -= out.exec.cycles_accepted.min(ctx.cycles);
                }
                for call in out.exec.calls {
                    self.enqueue_call(cid, ctx_id, call);
                }
                match out.exec.response {
                    Some(Response::Reply(b)) => self.respond(ctx_id, Ok(b)),
                    Some(Response::Reject(m)) => {
                        self.respond(ctx_id, Err(RejectResponse::ic(406, m)))
                    }
                    None => {}
                }
                Ok(())
            }
            Err(e) => {
                let r = reject_of(cid, &e);
                if let Some(ctx) = self.contexts.get_mut(&ctx_id) {
                    ctx.last_error = Some(r);
                }
                Err(e)
            }
        };
        (result, unspent)
    }

    // ------------------------------------------------------------------ message handlers

    /// Checks that `cid` can receive a message for `method`; returns the export and kind.
    pub(crate) fn check_target(
        &self,
        cid: Principal,
        method: &str,
    ) -> Result<(String, ExecKind), RejectResponse> {
        let c = self.canister(cid)?;
        match c.status {
            CanisterStatusKind::Running => {}
            CanisterStatusKind::Stopping => {
                return Err(RejectResponse::ic(
                    509,
                    format!("Canister {cid} is stopping"),
                ))
            }
            CanisterStatusKind::Stopped => {
                return Err(RejectResponse::ic(
                    508,
                    format!("Canister {cid} is stopped"),
                ))
            }
        }
        if c.module.is_none() {
            return Err(RejectResponse::ic(
                537,
                format!("Error from Canister {cid}: Attempted to execute a message, but the canister contains no Wasm module."),
            ));
        }
        method_kind(c, method).ok_or_else(|| {
            RejectResponse::ic(
                536,
                format!("Error from Canister {cid}: Canister has no update method '{method}'."),
            )
        })
    }

    /// An ingress message to the management canister (`install_code`, `update_settings`, ...)
    /// is paid by the canister it names, when it is inducted: before the call runs, whether or
    /// not it then succeeds. Only a controller's message gets that far (the IC's ingress filter
    /// refuses others for free); the call itself answers everyone else. Unlike ingress to the
    /// canister itself, a frozen canister still takes it (measured on PocketIC 10: lowering a
    /// frozen canister's freezing threshold works and costs the fee), so its controller can
    /// unfreeze it.
    pub fn charge_management_ingress(
        &mut self,
        sender: Principal,
        cid: Principal,
        method: &str,
        arg_len: usize,
    ) -> Result<(), RejectResponse> {
        let Some(c) = self.canisters.get(&cid) else {
            return Ok(());
        };
        if !c.ctx().controllers.contains(&sender) {
            return Ok(());
        }
        let fee = cycles::ingress_fee(method.len(), arg_len);
        let balance = c.ctx().balance;
        if balance < fee {
            return Err(RejectResponse::ic(
                207,
                cycles::out_of_cycles_message(cid, fee - balance),
            ));
        }
        if let Some(c) = self.canisters.get_mut(&cid) {
            c.ctx_mut().balance -= fee;
        }
        Ok(())
    }

    pub(crate) fn frozen_check(&self, cid: Principal, fee: u128) -> Result<(), RejectResponse> {
        let c = self.canister(cid)?;
        let reserve = c.reserve();
        // Frozen: the balance is below the freezing reserve (plus the fee at hand).
        if c.ctx().balance < reserve.saturating_add(fee) {
            return Err(RejectResponse::ic(
                207,
                cycles::out_of_cycles_message(cid, (reserve + fee).saturating_sub(c.ctx().balance)),
            ));
        }
        Ok(())
    }

    fn handle_ingress(
        &mut self,
        id: u64,
        cid: Principal,
        sender: Principal,
        method: String,
        arg: Vec<u8>,
    ) {
        let (export, kind) = match self.check_target(cid, &method) {
            Ok(t) => t,
            Err(e) => return self.finish_ingress(id, Err(e)),
        };
        let ctx = self.new_context(cid, Origin::Ingress(id), sender, &method, 0, 0, Some(id));
        let payment = Payment::for_message(kind);
        let _ = self.run_in_context(cid, ctx, kind, Entry::Export(export), arg, None, 0, payment);
        self.maybe_close(ctx);
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_request(
        &mut self,
        caller: Principal,
        callee: Principal,
        method: String,
        arg: Vec<u8>,
        cycles: u128,
        callback: u64,
        deadline: u64,
        root: Option<u64>,
    ) {
        let reply = |s: &mut State, result: Result<Vec<u8>, RejectResponse>, refund: u128| {
            s.queue.push_back(Msg::Response {
                callback,
                result: result.map_err(|r| (r.reject_code as u32, r.reject_message)),
                refund,
            });
        };
        let fault = self.faults.on_request(crate::faults::CallRecord {
            caller,
            callee,
            method: method.clone(),
            bounded: deadline != 0,
        });
        match fault {
            None => {}
            Some(Fault::Reject(code, message)) => {
                self.queue.push_back(Msg::Response {
                    callback,
                    result: Err((code as u32, message)),
                    refund: cycles,
                });
                return;
            }
            Some(Fault::TrapInCallback) => {
                self.faults.trap_callbacks.insert(callback);
            }
            Some(Fault::Timeout) => {
                // The deadline expires first: this answer reaches the callback before the
                // callee's, which is then dropped (the callback is gone).
                if let Some(cb) = self.callbacks.get_mut(&callback) {
                    cb.deadline = None;
                }
                self.queue.push_back(Msg::Response {
                    callback,
                    result: Err((
                        RejectCode::SysUnknown as u32,
                        "Call deadline has expired.".into(),
                    )),
                    refund: 0,
                });
            }
        }
        if callee == ids::management() {
            // `None`: answered later (a stop_canister waiting for open call contexts).
            if let Some((result, refund)) =
                self.management_call(caller, &method, &arg, cycles, Some(callback))
            {
                reply(self, result, refund);
            }
            return;
        }
        let target = self
            .check_target(callee, &method)
            .and_then(|t| self.frozen_check(callee, 0).map(|_| t));
        let (export, kind) = match target {
            Ok(t) => t,
            Err(e) => return reply(self, Err(e), cycles),
        };
        let ctx = self.new_context(
            callee,
            Origin::Canister { callback },
            caller,
            &method,
            cycles,
            deadline,
            root,
        );
        let payment = Payment::for_message(kind);
        let _ = self.run_in_context(
            callee,
            ctx,
            kind,
            Entry::Export(export),
            arg,
            None,
            0,
            payment,
        );
        self.maybe_close(ctx);
    }

    fn handle_response(
        &mut self,
        callback: u64,
        result: Result<Vec<u8>, (u32, String)>,
        refund: u128,
    ) {
        let Some(cb) = self.callbacks.remove(&callback) else {
            return; // already answered (best-effort deadline) — the late response is dropped
        };
        let root = self.contexts.get(&cb.context).and_then(|ctx| ctx.root);
        let Some(c) = self.canisters.get_mut(&cb.caller) else {
            return;
        };
        c.message_memory = c.message_memory.saturating_sub(cb.message_bytes);
        // The reservation (`cycles::call_reservation`) has two parts: the largest response's
        // transmission, paid by the actual response's size with the rest refunded now, and the
        // callback's execution, which pays for the callback (and a cleanup) below.
        let transmission_reserved = cycles::CALL_PER_BYTE * cycles::MAX_RESPONSE_BYTES;
        let response_bytes = match &result {
            Ok(bytes) => bytes.len(),
            Err((_, msg)) => msg.len(),
        } as u128;
        let transmission = (cycles::CALL_PER_BYTE * response_bytes).min(transmission_reserved);
        let execution_reserved = cb.reservation - transmission_reserved;
        c.ctx_mut().balance += refund + transmission_reserved - transmission;
        self.stat(root, 0, transmission);
        let Some(c) = self.canisters.get_mut(&cb.caller) else {
            return;
        };
        let current = c.generation == cb.generation && c.module.is_some();
        if let Some(ctx) = self.contexts.get_mut(&cb.context) {
            ctx.outstanding = ctx.outstanding.saturating_sub(1);
        }
        let mut unspent = execution_reserved;
        if current {
            let (kind, fun, arg, reject) = match result {
                Ok(bytes) => (ExecKind::ReplyCallback, cb.reply, bytes, None),
                Err((code, msg)) => (
                    ExecKind::RejectCallback,
                    cb.reject,
                    Vec::new(),
                    Some((code, msg)),
                ),
            };
            let (r, left) = if self.faults.trap_callbacks.remove(&callback) {
                // An injected trap (`Fault::TrapInCallback`): the callback is rolled back in
                // full, which is the same as trapping before it changed anything.
                let e = ExecError::CalledTrap("injected fault: trap in callback".into());
                if let Some(ctx) = self.contexts.get_mut(&cb.context) {
                    ctx.last_error = Some(reject_of(cb.caller, &e));
                }
                (Err(e), unspent)
            } else {
                self.run_in_context(
                    cb.caller,
                    cb.context,
                    kind,
                    Entry::Callback(fun.0, fun.1),
                    arg,
                    reject,
                    refund,
                    Payment::Reserved(unspent),
                )
            };
            unspent = left;
            if r.is_err() {
                if let Some((f, env)) = cb.cleanup {
                    unspent = self.run_cleanup(cb.caller, cb.context, f, env, unspent);
                }
            }
        }
        if let Some(c) = self.canisters.get_mut(&cb.caller) {
            c.ctx_mut().balance += unspent;
        }
        self.maybe_close(cb.context);
    }

    /// Runs a cleanup callback on what is left of the response's reservation; returns what
    /// is left after it.
    fn run_cleanup(
        &mut self,
        cid: Principal,
        ctx_id: u64,
        f: u32,
        env: u32,
        reserved: u128,
    ) -> u128 {
        let Some(ctx) = self.contexts.get(&ctx_id) else {
            return reserved;
        };
        let exec = Exec {
            kind: ExecKind::Cleanup,
            caller: ctx.caller,
            method: ctx.method.clone(),
            replied_before: ctx.responded,
            context_instructions: ctx.instructions,
            ..Exec::default()
        };
        let root = ctx.root;
        let Charged { out, unspent } = self.execute(
            cid,
            Entry::Callback(f, env),
            exec,
            Finish::Commit,
            self.limits.update_instructions,
            TOUCH_UPDATE,
            root,
            Payment::Reserved(reserved),
        );
        if let Some(ctx) = self.contexts.get_mut(&ctx_id) {
            ctx.instructions += out.instructions;
        }
        unspent
    }

    fn run_system_task(&mut self, cid: Principal, export: &str) {
        let ctx = self.new_context(cid, Origin::System, cid, "", 0, 0, None);
        let _ = self.run_in_context(
            cid,
            ctx,
            ExecKind::Timer,
            Entry::Export(export.to_string()),
            Vec::new(),
            None,
            0,
            Payment::Prepay,
        );
        self.maybe_close(ctx);
    }

    // ------------------------------------------------------------------ rounds

    pub fn tick(&mut self) {
        self.time += 1;
        self.state_time = self.time;
        self.prune_ingress();
        let mut batch: Vec<Msg> = self.queue.drain(..).collect();
        let now = self.time;
        let mut expired: Vec<u64> = self
            .callbacks
            .iter()
            .filter(|(_, cb)| cb.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        expired.sort_unstable();
        for id in expired {
            if let Some(cb) = self.callbacks.get_mut(&id) {
                cb.deadline = None;
            }
            batch.push(Msg::Response {
                callback: id,
                result: Err((
                    RejectCode::SysUnknown as u32,
                    "Call deadline has expired.".into(),
                )),
                refund: 0,
            });
        }
        let mut timers = Vec::new();
        let mut heartbeats = Vec::new();
        for (id, c) in self.canisters.iter_mut() {
            if c.status != CanisterStatusKind::Running || c.module.is_none() {
                continue;
            }
            let t = c.ctx().global_timer;
            if t != 0 && now >= t && c.exports("canister_global_timer") {
                // One-shot: the timer is deactivated before it runs.
                c.ctx_mut().global_timer = 0;
                timers.push(*id);
            }
            if c.exports("canister_heartbeat") {
                heartbeats.push(*id);
            }
        }
        for msg in batch {
            match msg {
                Msg::Ingress {
                    id,
                    canister,
                    sender,
                    method,
                    arg,
                } => self.handle_ingress(id, canister, sender, method, arg),
                Msg::Request {
                    caller,
                    callee,
                    method,
                    arg,
                    cycles,
                    callback,
                    deadline,
                    root,
                } => self.handle_request(
                    caller, callee, method, arg, cycles, callback, deadline, root,
                ),
                Msg::Response {
                    callback,
                    result,
                    refund,
                } => self.handle_response(callback, result, refund),
            }
        }
        for id in heartbeats {
            if self.canisters.contains_key(&id) {
                self.run_system_task(id, "canister_heartbeat");
            }
        }
        for id in timers {
            if self.canisters.contains_key(&id) {
                self.run_system_task(id, "canister_global_timer");
            }
        }
        self.settle_install_code_debits();
    }

    /// Whether a round would do anything besides timers/heartbeats.
    pub fn has_work(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Earliest best-effort deadline still pending.
    pub fn next_deadline(&self) -> Option<u64> {
        self.callbacks.values().filter_map(|cb| cb.deadline).min()
    }
}
