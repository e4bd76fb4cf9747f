//! The System API (`ic0` imports) as host functions, with the interface specification's
//! availability rules: every import checks the kind of the running execution and traps when it is
//! not available there (e.g. `call_new` in a query or `init`, `msg_reply` in `init` or after the
//! call was answered, `msg_reject_code` outside callbacks, `accept_message` outside
//! `canister_inspect_message`).
//!
//! The host state of a canister ([`HostCtx`]) lives in its wasmi `Store`: the persistent part
//! (stable memory, balance, certified data, timer, ...) plus the per-execution part ([`Exec`]).

use candid::Principal;
use wasmi::{Caller, Error, Linker, Memory};

use crate::cycles;
use crate::memory::{StableError, StableMemory};

/// The kind of the running execution (the spec's I, G, U, RQ, NRQ, CQ, Ry, Rt, C, F, T and the
/// module's start function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecKind {
    Start = 0,
    Init,
    PreUpgrade,
    PostUpgrade,
    Update,
    ReplicatedQuery,
    NonReplicatedQuery,
    CompositeQuery,
    ReplyCallback,
    RejectCallback,
    Cleanup,
    InspectMessage,
    Timer,
}

impl ExecKind {
    const fn bit(self) -> u32 {
        1 << self as u32
    }
    fn name(self) -> &'static str {
        match self {
            ExecKind::Start => "start",
            ExecKind::Init => "init",
            ExecKind::PreUpgrade => "pre_upgrade",
            ExecKind::PostUpgrade => "post_upgrade",
            ExecKind::Update => "update",
            ExecKind::ReplicatedQuery => "replicated query",
            ExecKind::NonReplicatedQuery => "non-replicated query",
            ExecKind::CompositeQuery => "composite query",
            ExecKind::ReplyCallback => "reply callback",
            ExecKind::RejectCallback => "reject callback",
            ExecKind::Cleanup => "cleanup",
            ExecKind::InspectMessage => "inspect message",
            ExecKind::Timer => "system task",
        }
    }
    /// Whether state changes of this kind persist (queries and inspect_message never do).
    pub fn persists(self) -> bool {
        !matches!(
            self,
            ExecKind::ReplicatedQuery
                | ExecKind::NonReplicatedQuery
                | ExecKind::CompositeQuery
                | ExecKind::InspectMessage
        )
    }
}

use ExecKind as K;
const I: u32 = K::Init.bit() | K::PostUpgrade.bit();
const G: u32 = K::PreUpgrade.bit();
const U: u32 = K::Update.bit();
const RQ: u32 = K::ReplicatedQuery.bit();
const NRQ: u32 = K::NonReplicatedQuery.bit();
const CQ: u32 = K::CompositeQuery.bit();
const RY: u32 = K::ReplyCallback.bit();
const RT: u32 = K::RejectCallback.bit();
const C: u32 = K::Cleanup.bit();
const F: u32 = K::InspectMessage.bit();
const T: u32 = K::Timer.bit();
/// `*` in the spec: everything but the start function.
const ALL: u32 = I | G | U | RQ | NRQ | CQ | RY | RT | C | F | T;
const ALL_S: u32 = ALL | K::Start.bit();

/// Reply size limits.
pub const MAX_REPLY_REPLICATED: usize = 2 * 1024 * 1024;
pub const MAX_REPLY_QUERY: usize = 3 * 1024 * 1024;
/// Inter-canister request payload limit (same subnet).
pub const MAX_CALL_PAYLOAD: usize = 10 * 1024 * 1024;
/// Fuel charged per host call, and per byte copied.
const SYSCALL_BASE: u64 = 20;

/// Why an execution trapped in a host function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostTrap {
    /// `ic0.trap` (a Rust panic in ic-cdk).
    Called(String),
    /// A System API misuse (the IC's "contract violation").
    Violation(String),
    /// The instruction limit (or the instructions the canister can pay for) was exhausted.
    OutOfInstructions,
    /// The stable memory the message may touch was exhausted.
    StableTouchLimit(String),
}

impl std::fmt::Display for HostTrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostTrap::Called(m) => write!(f, "{m}"),
            HostTrap::Violation(m) => write!(f, "{m}"),
            HostTrap::OutOfInstructions => write!(f, "instruction limit exceeded"),
            HostTrap::StableTouchLimit(m) => write!(f, "{m}"),
        }
    }
}

impl wasmi::errors::HostError for HostTrap {}

fn violation(msg: impl Into<String>) -> Error {
    Error::host(HostTrap::Violation(msg.into()))
}

/// An answer to a call context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Reply(Vec<u8>),
    Reject(String),
}

/// A call produced by `call_new` ... `call_perform`.
#[derive(Debug, Clone)]
pub struct OutCall {
    pub callee: Principal,
    pub method: String,
    pub arg: Vec<u8>,
    pub cycles: u128,
    pub reply: (u32, u32),
    pub reject: (u32, u32),
    pub cleanup: Option<(u32, u32)>,
    pub timeout_seconds: Option<u32>,
    /// Taken from the caller at `call_perform` for the response (see `crate::cycles`).
    pub reservation: u128,
}

/// The state of one execution (one message).
#[derive(Debug, Clone)]
pub struct Exec {
    pub kind: ExecKind,
    pub caller: Principal,
    pub method: String,
    /// Argument (or reply data in a reply callback).
    pub arg: Vec<u8>,
    /// Reject code and message in a reject callback.
    pub reject: Option<(u32, String)>,
    pub time: u64,
    pub deadline: u64,
    /// The call context was already answered by an earlier execution.
    pub replied_before: bool,
    pub reply_buf: Vec<u8>,
    pub response: Option<Response>,
    /// Cycles of the call context still available to accept (before this execution).
    pub cycles_available: u128,
    pub cycles_accepted: u128,
    pub cycles_refunded: u128,
    pub building: Option<OutCall>,
    pub calls: Vec<OutCall>,
    /// Cycles withdrawn for call fees in this execution.
    pub call_fees: u128,
    pub accepted_message: bool,
    pub certificate: Option<Vec<u8>>,
    pub fuel_limit: u64,
    /// Largest reply this execution may build, in bytes (`State::execute` sets it from the
    /// replica's `Limits`).
    pub max_reply: usize,
    /// Instructions already spent by the call context before this execution.
    pub context_instructions: u64,
    pub reserve: u128,
    /// What a call reserves for its response ([`cycles::call_reservation`] of the replica's
    /// callback limit; `State::execute` sets it).
    pub call_reservation: u128,
    /// The canister's freezing threshold (seconds): a call's message memory raises the reserve.
    pub freezing_threshold: u64,
}

impl Default for Exec {
    fn default() -> Self {
        Exec {
            kind: ExecKind::Start,
            caller: Principal::anonymous(),
            method: String::new(),
            arg: Vec::new(),
            reject: None,
            time: 0,
            deadline: 0,
            replied_before: false,
            reply_buf: Vec::new(),
            response: None,
            cycles_available: 0,
            cycles_accepted: 0,
            cycles_refunded: 0,
            building: None,
            calls: Vec::new(),
            call_fees: 0,
            accepted_message: false,
            certificate: None,
            fuel_limit: 0,
            max_reply: MAX_REPLY_REPLICATED,
            context_instructions: 0,
            reserve: 0,
            call_reservation: 0,
            freezing_threshold: 0,
        }
    }
}

/// Per-canister host state, stored in the canister's wasmi `Store`.
pub struct HostCtx {
    pub id: Principal,
    pub memory: Option<Memory>,
    pub stable: StableMemory,
    pub balance: u128,
    pub controllers: Vec<Principal>,
    pub certified_data: Vec<u8>,
    pub global_timer: u64,
    pub canister_version: u64,
    /// 1 running, 2 stopping, 3 stopped (as `ic0.canister_status`).
    pub status: u32,
    pub log: Vec<String>,
    pub echo: bool,
    pub limits: wasmi::StoreLimits,
    pub exec: Exec,
    pub subnet: Principal,
}

impl HostCtx {
    pub fn new(id: Principal) -> Self {
        HostCtx {
            id,
            memory: None,
            stable: StableMemory::new(),
            balance: 0,
            controllers: Vec::new(),
            certified_data: Vec::new(),
            global_timer: 0,
            canister_version: 0,
            status: 1,
            log: Vec::new(),
            echo: std::env::var_os("CANVID_REPLICA_DEBUG").is_some(),
            limits: wasmi::StoreLimitsBuilder::new().build(),
            exec: Exec::default(),
            subnet: Principal::from_slice(&[0x2a; 29]),
        }
    }

    pub fn debug_print(&mut self, line: String) {
        if self.echo {
            eprintln!("[{}] {}", self.id, line);
        }
        self.log.push(line);
    }
}

type Cx<'a> = Caller<'a, HostCtx>;

/// Checks that `name` may be called in the running execution.
fn avail(c: &Cx<'_>, name: &str, allowed: u32) -> Result<(), Error> {
    let kind = c.data().exec.kind;
    if kind.bit() & allowed == 0 {
        return Err(violation(format!(
            "\"ic0_{name}\" cannot be executed in {} mode",
            kind.name()
        )));
    }
    Ok(())
}

fn charge(c: &mut Cx<'_>, amount: u64) -> Result<(), Error> {
    let fuel = c.get_fuel()?;
    if fuel < amount {
        c.set_fuel(0)?;
        return Err(Error::host(HostTrap::OutOfInstructions));
    }
    c.set_fuel(fuel - amount)
}

fn memory(c: &Cx<'_>) -> Result<Memory, Error> {
    c.data()
        .memory
        .ok_or_else(|| violation("the canister module exports no memory"))
}

fn read_mem(c: &mut Cx<'_>, src: u32, size: u32, name: &str) -> Result<Vec<u8>, Error> {
    charge(c, SYSCALL_BASE + size as u64)?;
    let m = memory(c)?;
    let data = m.data(&*c);
    let (s, n) = (src as usize, size as usize);
    data.get(s..s + n)
        .map(|b| b.to_vec())
        .ok_or_else(|| violation(format!("ic0.{name}: heap out of bounds")))
}

fn write_mem(c: &mut Cx<'_>, dst: u32, bytes: &[u8], name: &str) -> Result<(), Error> {
    charge(c, SYSCALL_BASE + bytes.len() as u64)?;
    let m = memory(c)?;
    let data = m.data_mut(&mut *c);
    let d = dst as usize;
    data.get_mut(d..d + bytes.len())
        .ok_or_else(|| violation(format!("ic0.{name}: heap out of bounds")))?
        .copy_from_slice(bytes);
    Ok(())
}

fn write_u128(c: &mut Cx<'_>, dst: u32, v: u128, name: &str) -> Result<(), Error> {
    write_mem(c, dst, &v.to_le_bytes(), name)
}

/// `*_copy(dst, offset, size)`: copies `src[offset..offset+size]` to the heap at `dst`.
fn copy_out(
    c: &mut Cx<'_>,
    dst: u32,
    offset: u32,
    size: u32,
    name: &str,
    src: impl Fn(&HostCtx) -> &[u8],
) -> Result<(), Error> {
    charge(c, SYSCALL_BASE + size as u64)?;
    let m = memory(c)?;
    let (data, ctx) = m.data_and_store_mut(&mut *c);
    let src = src(ctx);
    let (o, n, d) = (offset as usize, size as usize, dst as usize);
    let from = src
        .get(o..o + n)
        .ok_or_else(|| violation(format!("ic0.{name}: source out of bounds")))?;
    data.get_mut(d..d + n)
        .ok_or_else(|| violation(format!("ic0.{name}: heap out of bounds")))?
        .copy_from_slice(from);
    Ok(())
}

fn responded(c: &Cx<'_>) -> bool {
    let e = &c.data().exec;
    e.replied_before || e.response.is_some()
}

fn stable_err(e: StableError) -> Error {
    match e {
        StableError::OutOfBounds => violation("stable memory out of bounds"),
        StableError::TouchLimit(_) => Error::host(HostTrap::StableTouchLimit(e.to_string())),
    }
}

fn building<'a>(c: &'a mut Cx<'_>, name: &str) -> Result<&'a mut OutCall, Error> {
    c.data_mut()
        .exec
        .building
        .as_mut()
        .ok_or_else(|| violation(format!("ic0.{name}: no call is under construction")))
}

/// Every `ic0` import this module implements (others link to a trapping stub).
pub const IMPLEMENTED: &[&str] = &[
    "msg_arg_data_size",
    "msg_arg_data_copy",
    "msg_caller_size",
    "msg_caller_copy",
    "msg_reject_code",
    "msg_reject_msg_size",
    "msg_reject_msg_copy",
    "msg_deadline",
    "msg_reply_data_append",
    "msg_reply",
    "msg_reject",
    "msg_cycles_available128",
    "msg_cycles_refunded128",
    "msg_cycles_accept128",
    "cycles_burn128",
    "canister_self_size",
    "canister_self_copy",
    "canister_cycle_balance128",
    "canister_liquid_cycle_balance128",
    "canister_status",
    "canister_version",
    "subnet_self_size",
    "subnet_self_copy",
    "msg_method_name_size",
    "msg_method_name_copy",
    "accept_message",
    "call_new",
    "call_on_cleanup",
    "call_data_append",
    "call_with_best_effort_response",
    "call_cycles_add128",
    "call_perform",
    "stable64_size",
    "stable64_grow",
    "stable64_write",
    "stable64_read",
    "certified_data_set",
    "data_certificate_present",
    "data_certificate_size",
    "data_certificate_copy",
    "time",
    "global_timer_set",
    "performance_counter",
    "is_controller",
    "in_replicated_execution",
    "cost_call",
    "cost_create_canister",
    "env_var_count",
    "env_var_name_exists",
    "debug_print",
    "trap",
];

/// Defines every implemented `ic0` import in `linker`.
pub fn define(linker: &mut Linker<HostCtx>) -> Result<(), wasmi::errors::LinkerError> {
    const M: &str = "ic0";
    // --- message arguments and caller ---
    linker.func_wrap(M, "msg_arg_data_size", |c: Cx<'_>| -> Result<u32, Error> {
        avail(&c, "msg_arg_data_size", I | U | RQ | NRQ | CQ | RY | F)?;
        Ok(c.data().exec.arg.len() as u32)
    })?;
    linker.func_wrap(
        M,
        "msg_arg_data_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&c, "msg_arg_data_copy", I | U | RQ | NRQ | CQ | RY | F)?;
            copy_out(&mut c, dst, off, size, "msg_arg_data_copy", |h| &h.exec.arg)
        },
    )?;
    linker.func_wrap(M, "msg_caller_size", |c: Cx<'_>| -> Result<u32, Error> {
        avail(&c, "msg_caller_size", ALL)?;
        Ok(c.data().exec.caller.as_slice().len() as u32)
    })?;
    linker.func_wrap(
        M,
        "msg_caller_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&c, "msg_caller_copy", ALL)?;
            copy_out(&mut c, dst, off, size, "msg_caller_copy", |h| {
                h.exec.caller.as_slice()
            })
        },
    )?;
    linker.func_wrap(M, "msg_reject_code", |c: Cx<'_>| -> Result<u32, Error> {
        avail(&c, "msg_reject_code", RY | RT)?;
        Ok(c.data().exec.reject.as_ref().map_or(0, |r| r.0))
    })?;
    linker.func_wrap(
        M,
        "msg_reject_msg_size",
        |c: Cx<'_>| -> Result<u32, Error> {
            avail(&c, "msg_reject_msg_size", RT)?;
            Ok(c.data().exec.reject.as_ref().map_or(0, |r| r.1.len()) as u32)
        },
    )?;
    linker.func_wrap(
        M,
        "msg_reject_msg_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&c, "msg_reject_msg_copy", RT)?;
            copy_out(&mut c, dst, off, size, "msg_reject_msg_copy", |h| {
                h.exec.reject.as_ref().map_or(&[][..], |r| r.1.as_bytes())
            })
        },
    )?;
    linker.func_wrap(M, "msg_deadline", |c: Cx<'_>| -> Result<u64, Error> {
        avail(&c, "msg_deadline", U | RQ | NRQ | CQ | RY | RT)?;
        Ok(c.data().exec.deadline)
    })?;
    // --- replying ---
    linker.func_wrap(
        M,
        "msg_reply_data_append",
        |mut c: Cx<'_>, src: u32, size: u32| -> Result<(), Error> {
            avail(&c, "msg_reply_data_append", U | RQ | NRQ | CQ | RY | RT)?;
            if responded(&c) {
                return Err(violation(
                    "ic0.msg_reply_data_append: the call is already replied",
                ));
            }
            let bytes = read_mem(&mut c, src, size, "msg_reply_data_append")?;
            let e = &mut c.data_mut().exec;
            let limit = e.max_reply;
            if e.reply_buf.len() + bytes.len() > limit {
                return Err(violation(format!(
                    "ic0.msg_reply_data_append: application payload size ({}) cannot be larger than {limit}",
                    e.reply_buf.len() + bytes.len()
                )));
            }
            e.reply_buf.extend_from_slice(&bytes);
            Ok(())
        },
    )?;
    linker.func_wrap(M, "msg_reply", |mut c: Cx<'_>| -> Result<(), Error> {
        avail(&c, "msg_reply", U | RQ | NRQ | CQ | RY | RT)?;
        if responded(&c) {
            return Err(violation("ic0.msg_reply: the call is already replied"));
        }
        let e = &mut c.data_mut().exec;
        e.response = Some(Response::Reply(std::mem::take(&mut e.reply_buf)));
        Ok(())
    })?;
    linker.func_wrap(
        M,
        "msg_reject",
        |mut c: Cx<'_>, src: u32, size: u32| -> Result<(), Error> {
            avail(&c, "msg_reject", U | RQ | NRQ | CQ | RY | RT)?;
            if responded(&c) {
                return Err(violation("ic0.msg_reject: the call is already replied"));
            }
            let bytes = read_mem(&mut c, src, size, "msg_reject")?;
            let msg = String::from_utf8(bytes)
                .map_err(|_| violation("ic0.msg_reject: message is not valid UTF-8"))?;
            c.data_mut().exec.response = Some(Response::Reject(msg));
            Ok(())
        },
    )?;
    // --- cycles ---
    linker.func_wrap(
        M,
        "msg_cycles_available128",
        |mut c: Cx<'_>, dst: u32| -> Result<(), Error> {
            avail(&c, "msg_cycles_available128", U | RQ | RY | RT)?;
            let e = &c.data().exec;
            let v = if e.replied_before {
                0
            } else {
                e.cycles_available - e.cycles_accepted
            };
            write_u128(&mut c, dst, v, "msg_cycles_available128")
        },
    )?;
    linker.func_wrap(
        M,
        "msg_cycles_refunded128",
        |mut c: Cx<'_>, dst: u32| -> Result<(), Error> {
            avail(&c, "msg_cycles_refunded128", RY | RT)?;
            let v = c.data().exec.cycles_refunded;
            write_u128(&mut c, dst, v, "msg_cycles_refunded128")
        },
    )?;
    linker.func_wrap(
        M,
        "msg_cycles_accept128",
        |mut c: Cx<'_>, hi: u64, lo: u64, dst: u32| -> Result<(), Error> {
            avail(&c, "msg_cycles_accept128", U | RQ | RY | RT)?;
            let max = ((hi as u128) << 64) | lo as u128;
            let h = c.data_mut();
            let amount = if h.exec.replied_before || h.exec.response.is_some() {
                0
            } else {
                max.min(h.exec.cycles_available - h.exec.cycles_accepted)
            };
            h.exec.cycles_accepted += amount;
            h.balance += amount;
            write_u128(&mut c, dst, amount, "msg_cycles_accept128")
        },
    )?;
    linker.func_wrap(
        M,
        "cycles_burn128",
        |mut c: Cx<'_>, hi: u64, lo: u64, dst: u32| -> Result<(), Error> {
            avail(&c, "cycles_burn128", I | G | U | RQ | RY | RT | C | T)?;
            let want = ((hi as u128) << 64) | lo as u128;
            let h = c.data_mut();
            let amount = want.min(cycles::liquid(h.balance, h.exec.reserve));
            h.balance -= amount;
            write_u128(&mut c, dst, amount, "cycles_burn128")
        },
    )?;
    linker.func_wrap(
        M,
        "canister_cycle_balance128",
        |mut c: Cx<'_>, dst: u32| -> Result<(), Error> {
            avail(&c, "canister_cycle_balance128", ALL)?;
            let v = c.data().balance;
            write_u128(&mut c, dst, v, "canister_cycle_balance128")
        },
    )?;
    linker.func_wrap(
        M,
        "canister_liquid_cycle_balance128",
        |mut c: Cx<'_>, dst: u32| -> Result<(), Error> {
            avail(&c, "canister_liquid_cycle_balance128", ALL)?;
            let h = c.data();
            let v = cycles::liquid(h.balance, h.exec.reserve);
            write_u128(&mut c, dst, v, "canister_liquid_cycle_balance128")
        },
    )?;
    // --- canister ---
    linker.func_wrap(M, "canister_self_size", |c: Cx<'_>| -> Result<u32, Error> {
        avail(&c, "canister_self_size", ALL)?;
        Ok(c.data().id.as_slice().len() as u32)
    })?;
    linker.func_wrap(
        M,
        "canister_self_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&c, "canister_self_copy", ALL)?;
            copy_out(&mut c, dst, off, size, "canister_self_copy", |h| {
                h.id.as_slice()
            })
        },
    )?;
    linker.func_wrap(M, "canister_status", |c: Cx<'_>| -> Result<u32, Error> {
        avail(&c, "canister_status", ALL)?;
        Ok(c.data().status)
    })?;
    linker.func_wrap(M, "canister_version", |c: Cx<'_>| -> Result<u64, Error> {
        avail(&c, "canister_version", ALL)?;
        Ok(c.data().canister_version)
    })?;
    linker.func_wrap(M, "subnet_self_size", |c: Cx<'_>| -> Result<u32, Error> {
        avail(&c, "subnet_self_size", ALL)?;
        Ok(c.data().subnet.as_slice().len() as u32)
    })?;
    linker.func_wrap(
        M,
        "subnet_self_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&c, "subnet_self_copy", ALL)?;
            copy_out(&mut c, dst, off, size, "subnet_self_copy", |h| {
                h.subnet.as_slice()
            })
        },
    )?;
    linker.func_wrap(
        M,
        "msg_method_name_size",
        |c: Cx<'_>| -> Result<u32, Error> {
            avail(&c, "msg_method_name_size", F)?;
            Ok(c.data().exec.method.len() as u32)
        },
    )?;
    linker.func_wrap(
        M,
        "msg_method_name_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&c, "msg_method_name_copy", F)?;
            copy_out(&mut c, dst, off, size, "msg_method_name_copy", |h| {
                h.exec.method.as_bytes()
            })
        },
    )?;
    linker.func_wrap(M, "accept_message", |mut c: Cx<'_>| -> Result<(), Error> {
        avail(&c, "accept_message", F)?;
        let e = &mut c.data_mut().exec;
        if e.accepted_message {
            return Err(violation(
                "ic0.accept_message: the message was already accepted",
            ));
        }
        e.accepted_message = true;
        Ok(())
    })?;
    // --- inter-canister calls ---
    const CALLS: u32 = U | CQ | RY | RT | T;
    linker.func_wrap(
        M,
        "call_new",
        |mut c: Cx<'_>,
         callee_src: u32,
         callee_size: u32,
         name_src: u32,
         name_size: u32,
         reply_fun: u32,
         reply_env: u32,
         reject_fun: u32,
         reject_env: u32|
         -> Result<(), Error> {
            avail(&c, "call_new", CALLS)?;
            let callee = read_mem(&mut c, callee_src, callee_size, "call_new")?;
            if callee.len() > 29 {
                return Err(violation("ic0.call_new: invalid callee principal"));
            }
            let name = read_mem(&mut c, name_src, name_size, "call_new")?;
            let method = String::from_utf8(name)
                .map_err(|_| violation("ic0.call_new: method name is not valid UTF-8"))?;
            // A call under construction that was never performed is discarded (as on the IC).
            let h = c.data_mut();
            if let Some(old) = h.exec.building.take() {
                h.balance += old.cycles;
            }
            h.exec.building = Some(OutCall {
                callee: Principal::from_slice(&callee),
                method,
                arg: Vec::new(),
                cycles: 0,
                reply: (reply_fun, reply_env),
                reject: (reject_fun, reject_env),
                cleanup: None,
                timeout_seconds: None,
                reservation: 0,
            });
            Ok(())
        },
    )?;
    linker.func_wrap(
        M,
        "call_on_cleanup",
        |mut c: Cx<'_>, fun: u32, env: u32| -> Result<(), Error> {
            avail(&c, "call_on_cleanup", CALLS)?;
            let call = building(&mut c, "call_on_cleanup")?;
            if call.cleanup.is_some() {
                return Err(violation("ic0.call_on_cleanup: cleanup already set"));
            }
            call.cleanup = Some((fun, env));
            Ok(())
        },
    )?;
    linker.func_wrap(
        M,
        "call_data_append",
        |mut c: Cx<'_>, src: u32, size: u32| -> Result<(), Error> {
            avail(&c, "call_data_append", CALLS)?;
            building(&mut c, "call_data_append")?;
            let bytes = read_mem(&mut c, src, size, "call_data_append")?;
            let call = building(&mut c, "call_data_append")?;
            if call.arg.len() + bytes.len() > MAX_CALL_PAYLOAD {
                return Err(violation(format!(
                    "ic0.call_data_append: call payload size ({}) exceeds the limit of {MAX_CALL_PAYLOAD} bytes",
                    call.arg.len() + bytes.len()
                )));
            }
            call.arg.extend_from_slice(&bytes);
            Ok(())
        },
    )?;
    linker.func_wrap(
        M,
        "call_with_best_effort_response",
        |mut c: Cx<'_>, timeout: u32| -> Result<(), Error> {
            avail(&c, "call_with_best_effort_response", CALLS)?;
            let call = building(&mut c, "call_with_best_effort_response")?;
            if call.timeout_seconds.is_some() {
                return Err(violation(
                    "ic0.call_with_best_effort_response: timeout already set",
                ));
            }
            call.timeout_seconds = Some(timeout.min(300));
            Ok(())
        },
    )?;
    linker.func_wrap(
        M,
        "call_cycles_add128",
        |mut c: Cx<'_>, hi: u64, lo: u64| -> Result<(), Error> {
            avail(&c, "call_cycles_add128", U | RY | RT | T)?;
            building(&mut c, "call_cycles_add128")?;
            let amount = ((hi as u128) << 64) | lo as u128;
            let h = c.data_mut();
            if cycles::liquid(h.balance, h.exec.reserve) < amount {
                return Err(violation(format!(
                    "ic0.call_cycles_add128: canister cannot transfer {amount} cycles: insufficient liquid balance {}",
                    cycles::liquid(h.balance, h.exec.reserve)
                )));
            }
            h.balance -= amount;
            if let Some(call) = h.exec.building.as_mut() {
                call.cycles += amount;
            }
            Ok(())
        },
    )?;
    linker.func_wrap(M, "call_perform", |mut c: Cx<'_>| -> Result<u32, Error> {
        avail(&c, "call_perform", CALLS)?;
        charge(&mut c, SYSCALL_BASE)?;
        let h = c.data_mut();
        let call = h
            .exec
            .building
            .take()
            .ok_or_else(|| violation("ic0.call_perform: no call is under construction"))?;
        let mut call = call;
        let fee = cycles::call_fee(call.method.len() as u64, call.arg.len() as u64);
        let reservation = h.exec.call_reservation;
        // The calls of this execution, this one included, are message memory the freezing
        // reserve grows by.
        let message_bytes: u64 = h
            .exec
            .calls
            .iter()
            .chain(std::iter::once(&call))
            .map(|c| cycles::call_message_bytes(c.method.len(), c.arg.len()))
            .sum();
        let reserve =
            h.exec.reserve + cycles::freezing_reserve(message_bytes, h.exec.freezing_threshold);
        if cycles::liquid(h.balance, reserve) < fee + reservation {
            // The call is not sent; its cycles return to the balance.
            h.balance += call.cycles;
            return Ok(2); // SYS_TRANSIENT: the canister cannot pay for the call.
        }
        h.balance -= fee + reservation;
        h.exec.call_fees += fee;
        call.reservation = reservation;
        h.exec.calls.push(call);
        Ok(0)
    })?;
    // --- stable memory ---
    linker.func_wrap(M, "stable64_size", |c: Cx<'_>| -> Result<u64, Error> {
        avail(&c, "stable64_size", ALL_S)?;
        Ok(c.data().stable.size_pages())
    })?;
    linker.func_wrap(
        M,
        "stable64_grow",
        |mut c: Cx<'_>, n: u64| -> Result<u64, Error> {
            avail(&c, "stable64_grow", ALL_S)?;
            charge(&mut c, SYSCALL_BASE)?;
            Ok(c.data_mut().stable.grow(n).unwrap_or(u64::MAX))
        },
    )?;
    linker.func_wrap(
        M,
        "stable64_write",
        |mut c: Cx<'_>, offset: u64, src: u64, size: u64| -> Result<(), Error> {
            avail(&c, "stable64_write", ALL_S)?;
            charge(&mut c, SYSCALL_BASE.saturating_add(size))?;
            let m = memory(&c)?;
            let (data, h) = m.data_and_store_mut(&mut c);
            let s = usize::try_from(src)
                .map_err(|_| violation("stable64_write: heap out of bounds"))?;
            let n = usize::try_from(size)
                .map_err(|_| violation("stable64_write: heap out of bounds"))?;
            let bytes = s
                .checked_add(n)
                .and_then(|end| data.get(s..end))
                .ok_or_else(|| violation("stable64_write: heap out of bounds"))?;
            h.stable.write(offset, bytes).map_err(stable_err)
        },
    )?;
    linker.func_wrap(
        M,
        "stable64_read",
        |mut c: Cx<'_>, dst: u64, offset: u64, size: u64| -> Result<(), Error> {
            avail(&c, "stable64_read", ALL_S)?;
            charge(&mut c, SYSCALL_BASE.saturating_add(size))?;
            let m = memory(&c)?;
            let (data, h) = m.data_and_store_mut(&mut c);
            let d =
                usize::try_from(dst).map_err(|_| violation("stable64_read: heap out of bounds"))?;
            let n = usize::try_from(size)
                .map_err(|_| violation("stable64_read: heap out of bounds"))?;
            let out = d
                .checked_add(n)
                .and_then(|end| data.get_mut(d..end))
                .ok_or_else(|| violation("stable64_read: heap out of bounds"))?;
            h.stable.read(offset, out).map_err(stable_err)
        },
    )?;
    // --- certification ---
    linker.func_wrap(
        M,
        "certified_data_set",
        |mut c: Cx<'_>, src: u32, size: u32| -> Result<(), Error> {
            avail(&c, "certified_data_set", I | G | U | RY | RT | T)?;
            if size > 32 {
                return Err(violation(format!(
                    "ic0.certified_data_set: certified data is {size} bytes, the limit is 32"
                )));
            }
            let bytes = read_mem(&mut c, src, size, "certified_data_set")?;
            c.data_mut().certified_data = bytes;
            Ok(())
        },
    )?;
    linker.func_wrap(
        M,
        "data_certificate_present",
        |c: Cx<'_>| -> Result<u32, Error> {
            avail(&c, "data_certificate_present", ALL)?;
            Ok(c.data().exec.certificate.is_some() as u32)
        },
    )?;
    linker.func_wrap(
        M,
        "data_certificate_size",
        |c: Cx<'_>| -> Result<u32, Error> {
            avail(&c, "data_certificate_size", NRQ | CQ)?;
            c.data()
                .exec
                .certificate
                .as_ref()
                .map(|v| v.len() as u32)
                .ok_or_else(|| violation("ic0.data_certificate_size: no certificate is present"))
        },
    )?;
    linker.func_wrap(
        M,
        "data_certificate_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&c, "data_certificate_copy", NRQ | CQ)?;
            if c.data().exec.certificate.is_none() {
                return Err(violation(
                    "ic0.data_certificate_copy: no certificate is present",
                ));
            }
            copy_out(&mut c, dst, off, size, "data_certificate_copy", |h| {
                h.exec.certificate.as_deref().unwrap_or(&[])
            })
        },
    )?;
    // --- time, timers, counters ---
    linker.func_wrap(M, "time", |c: Cx<'_>| -> Result<u64, Error> {
        avail(&c, "time", ALL)?;
        Ok(c.data().exec.time)
    })?;
    linker.func_wrap(
        M,
        "global_timer_set",
        |mut c: Cx<'_>, ts: u64| -> Result<u64, Error> {
            avail(&c, "global_timer_set", I | G | U | RY | RT | C | T)?;
            Ok(std::mem::replace(&mut c.data_mut().global_timer, ts))
        },
    )?;
    linker.func_wrap(
        M,
        "performance_counter",
        |c: Cx<'_>, kind: u32| -> Result<u64, Error> {
            avail(&c, "performance_counter", ALL_S)?;
            let used = c.data().exec.fuel_limit.saturating_sub(c.get_fuel()?);
            match kind {
                0 => Ok(used),
                1 => Ok(c.data().exec.context_instructions + used),
                _ => Err(violation(format!(
                    "ic0.performance_counter: unknown counter type {kind}"
                ))),
            }
        },
    )?;
    linker.func_wrap(
        M,
        "is_controller",
        |mut c: Cx<'_>, src: u32, size: u32| -> Result<u32, Error> {
            avail(&c, "is_controller", ALL_S)?;
            if size > 29 {
                return Err(violation("ic0.is_controller: invalid principal"));
            }
            let bytes = read_mem(&mut c, src, size, "is_controller")?;
            let p = Principal::from_slice(&bytes);
            Ok(c.data().controllers.contains(&p) as u32)
        },
    )?;
    linker.func_wrap(
        M,
        "in_replicated_execution",
        |c: Cx<'_>| -> Result<u32, Error> {
            avail(&c, "in_replicated_execution", ALL_S)?;
            let k = c.data().exec.kind;
            Ok(!matches!(
                k,
                ExecKind::NonReplicatedQuery | ExecKind::CompositeQuery | ExecKind::InspectMessage
            ) as u32)
        },
    )?;
    linker.func_wrap(
        M,
        "cost_call",
        |mut c: Cx<'_>, method_len: u64, payload_len: u64, dst: u32| -> Result<(), Error> {
            avail(&c, "cost_call", ALL_S)?;
            let cost = cycles::call_fee(method_len, payload_len) + c.data().exec.call_reservation;
            write_u128(&mut c, dst, cost, "cost_call")
        },
    )?;
    linker.func_wrap(
        M,
        "cost_create_canister",
        |mut c: Cx<'_>, dst: u32| -> Result<(), Error> {
            avail(&c, "cost_create_canister", ALL_S)?;
            write_u128(&mut c, dst, cycles::CREATION_FEE, "cost_create_canister")
        },
    )?;
    linker.func_wrap(M, "env_var_count", |c: Cx<'_>| -> Result<u32, Error> {
        avail(&c, "env_var_count", ALL_S)?;
        Ok(0)
    })?;
    linker.func_wrap(
        M,
        "env_var_name_exists",
        |c: Cx<'_>, _src: u32, _size: u32| -> Result<u32, Error> {
            avail(&c, "env_var_name_exists", ALL_S)?;
            Ok(0)
        },
    )?;
    // --- debugging ---
    linker.func_wrap(
        M,
        "debug_print",
        |mut c: Cx<'_>, src: u32, size: u32| -> Result<(), Error> {
            avail(&c, "debug_print", ALL_S)?;
            let bytes = read_mem(&mut c, src, size, "debug_print")?;
            c.data_mut()
                .debug_print(String::from_utf8_lossy(&bytes).into_owned());
            Ok(())
        },
    )?;
    linker.func_wrap(
        M,
        "trap",
        |mut c: Cx<'_>, src: u32, size: u32| -> Result<(), Error> {
            avail(&c, "trap", ALL_S)?;
            let bytes = read_mem(&mut c, src, size.min(16 * 1024), "trap")?;
            Err(Error::host(HostTrap::Called(
                String::from_utf8_lossy(&bytes).into_owned(),
            )))
        },
    )?;
    Ok(())
}

/// Links `ic0.<name>` of type `ty` to a function that traps with "not implemented", so modules
/// importing System API functions this replica lacks still instantiate.
pub fn define_stub(
    linker: &mut Linker<HostCtx>,
    name: &str,
    ty: wasmi::FuncType,
) -> Result<(), wasmi::errors::LinkerError> {
    let msg = format!("ic0.{name} is not implemented by canvid-replica");
    linker.func_new("ic0", name, ty, move |_c, _params, _results| {
        Err(violation(msg.clone()))
    })?;
    Ok(())
}
