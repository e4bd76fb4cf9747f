//! Fault injection, for tests: make inter-canister and management calls made by canisters
//! reject, trap in their callback, or time out, on demand ([`crate::Replica::inject_fault`]).
//!
//! A rule is checked when a canister's request is delivered (the round after the call was
//! performed), in the order the rules were injected; the first rule that matches and still has
//! faults to fire decides. Matching is deterministic: a rule counts the requests it matches and
//! fires for the ones numbered `skip .. skip + times` (0-based). What each fault does, as the IC
//! would:
//!
//! * [`Fault::Reject`]: the callee never runs; the caller's reject callback gets `code` and
//!   `message` (e.g. `SysTransient` 2 for a full queue, `CanisterError` 5 for a trapped callee),
//!   and the attached cycles are refunded.
//! * [`Fault::TrapInCallback`]: the callee runs and answers; the caller's callback then traps
//!   before it changes anything (the IC rolls a trapped callback back in full, so this is where
//!   the trap happens), and the call's cleanup callback runs and is committed. The call context
//!   gets the trap's reject (`CanisterError`, `IC0503`) if it was not answered yet.
//! * [`Fault::Timeout`]: only for bounded-wait (best-effort) calls: the callee runs, but its
//!   response is lost and the caller gets `SysUnknown` (6) "Call deadline has expired." — the
//!   worst case of a timeout, where the call's effect happened and the caller cannot tell.
//!   Unbounded-wait calls never time out on the IC, so a `Timeout` rule does not match them
//!   (they are not counted either).
//!
//! The replica also records every request delivered from a canister ([`CallRecord`],
//! [`crate::Replica::take_call_log`]), so a test can list a flow's await points by running it
//! once without faults.

use candid::Principal;

use crate::types::RejectCode;

/// What a matching call suffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call is rejected with this code and message without reaching the callee.
    Reject(RejectCode, String),
    /// The callee runs; the caller's callback traps (rolled back; cleanup runs).
    TrapInCallback,
    /// Bounded-wait calls only: the callee runs, its response is lost, the caller gets
    /// `SysUnknown` "Call deadline has expired.".
    Timeout,
}

/// Which calls a fault applies to, and how many times. `None` matches anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// The calling canister.
    pub caller: Option<Principal>,
    /// The callee (`Principal::management_canister()` for management calls).
    pub callee: Option<Principal>,
    pub method: Option<String>,
    /// Matching calls let through before the first fault (0: the first matching call faults).
    pub skip: u32,
    /// Faults to fire (consecutive matching calls after `skip`).
    pub times: u32,
    pub kind: Fault,
}

impl FaultRule {
    /// A rule firing once, on the first call of `method` (to any callee).
    pub fn once(method: &str, kind: Fault) -> Self {
        FaultRule {
            caller: None,
            callee: None,
            method: Some(method.to_string()),
            skip: 0,
            times: 1,
            kind,
        }
    }

    /// The same rule, letting `skip` matching calls through first.
    pub fn skip(mut self, skip: u32) -> Self {
        self.skip = skip;
        self
    }
}

/// A request a canister made, as delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    pub caller: Principal,
    pub callee: Principal,
    pub method: String,
    /// A bounded-wait (best-effort) call: the only kind a [`Fault::Timeout`] applies to.
    pub bounded: bool,
}

/// The rules in force and what they did.
#[derive(Default)]
pub(crate) struct Faults {
    rules: Vec<(FaultRule, u32)>,
    pub fired: u64,
    pub log: Vec<CallRecord>,
    /// Callbacks whose execution must trap ([`Fault::TrapInCallback`]).
    pub trap_callbacks: std::collections::HashSet<u64>,
}

impl Faults {
    pub fn add(&mut self, rule: FaultRule) {
        self.rules.push((rule, 0));
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Records a delivered request and returns the fault it suffers, if any.
    pub fn on_request(&mut self, call: CallRecord) -> Option<Fault> {
        let mut hit = None;
        for (rule, seen) in self.rules.iter_mut() {
            let applies = rule.caller.is_none_or(|c| c == call.caller)
                && rule.callee.is_none_or(|c| c == call.callee)
                && rule.method.as_ref().is_none_or(|m| *m == call.method)
                && (call.bounded || rule.kind != Fault::Timeout);
            if !applies {
                continue;
            }
            let n = *seen;
            *seen += 1;
            if n >= rule.skip && n - rule.skip < rule.times {
                hit = Some(rule.kind.clone());
                break;
            }
        }
        self.log.push(call);
        if hit.is_some() {
            self.fired += 1;
        }
        hit
    }
}
