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
use crate::limits::{MAX_CALL_PAYLOAD, MAX_REPLY_REPLICATED};
use crate::memory::{StableError, StableMemory};

// `define` links one section of the System API at a time, one file per section.
mod call;
mod canister;
mod certification;
pub mod complexity;
mod cycles_ops;
mod debug;
mod message;
mod reply;
mod stable;
mod time;

/// The module every System API import comes from.
const M: &str = "ic0";

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

    /// Bytes of the canister log's last records, up to its capacity (what the IC's log buffer
    /// holds: [`complexity::logging_charge_bytes`] charges by the room left in it).
    pub fn log_tail_bytes(&self) -> u64 {
        let mut n = 0u64;
        for line in self.log.iter().rev() {
            if n >= complexity::LOG_CAPACITY {
                break;
            }
            n += line.len() as u64;
        }
        n
    }
}

type Cx<'a> = Caller<'a, HostCtx>;

/// Charges the IC's fixed overhead of `ic0.<name>` ([`complexity::overhead`]) and checks that
/// `name` may be called in the running execution.
fn avail(c: &mut Cx<'_>, name: &str, allowed: u32) -> Result<(), Error> {
    charge(c, complexity::overhead(name))?;
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

/// Reads `size` bytes of the heap at `src`, charging `per_byte` instructions per byte.
fn read_mem_at(
    c: &mut Cx<'_>,
    src: u32,
    size: u32,
    name: &str,
    per_byte: u64,
) -> Result<Vec<u8>, Error> {
    charge(c, per_byte.saturating_mul(size as u64))?;
    let m = memory(c)?;
    let data = m.data(&*c);
    let (s, n) = (src as usize, size as usize);
    data.get(s..s + n)
        .map(|b| b.to_vec())
        .ok_or_else(|| violation(format!("ic0.{name}: heap out of bounds")))
}

/// Reads `size` bytes of the heap at `src` (1 instruction per byte, as the IC charges a copy).
fn read_mem(c: &mut Cx<'_>, src: u32, size: u32, name: &str) -> Result<Vec<u8>, Error> {
    read_mem_at(c, src, size, name, 1)
}

/// Writes a value to the heap: the IC charges these (`*_cycles*128`, `cost_*`) no bytes.
fn write_mem(c: &mut Cx<'_>, dst: u32, bytes: &[u8], name: &str) -> Result<(), Error> {
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
    charge(c, size as u64)?;
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
    "cost_vetkd_derive_key",
    "env_var_count",
    "env_var_name_exists",
    "debug_print",
    "trap",
];

/// Defines every implemented `ic0` import in `linker`.
pub fn define(linker: &mut Linker<HostCtx>) -> Result<(), wasmi::errors::LinkerError> {
    message::define(linker)?;
    reply::define(linker)?;
    cycles_ops::define(linker)?;
    canister::define(linker)?;
    call::define(linker)?;
    stable::define(linker)?;
    certification::define(linker)?;
    time::define(linker)?;
    debug::define(linker)?;
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
