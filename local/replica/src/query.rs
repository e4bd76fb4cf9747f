//! Non-replicated queries: executed at once, outside rounds, and always rolled back.

use candid::Principal;

use crate::canister::{Entry, Finish};
use crate::limits::TOUCH_UPDATE;
use crate::state::{reject_of, Payment, State};
use crate::system_api::{Exec, ExecKind, Response};
use crate::{CallStats, CanisterStatusKind, RejectResponse};

impl State {
    pub fn query(
        &mut self,
        cid: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> (Result<Vec<u8>, RejectResponse>, CallStats) {
        let c = match self.canister(cid) {
            Ok(c) => c,
            Err(e) => return (Err(e), CallStats::default()),
        };
        if c.status == CanisterStatusKind::Stopped {
            return (
                Err(RejectResponse::ic(
                    508,
                    format!("Canister {cid} is stopped"),
                )),
                CallStats::default(),
            );
        }
        if c.module.is_none() {
            return (
                Err(RejectResponse::ic(
                    537,
                    format!("Error from Canister {cid}: Attempted to execute a message, but the canister contains no Wasm module."),
                )),
                CallStats::default(),
            );
        }
        let (export, kind) = if c.exports(&format!("canister_query {method}")) {
            (
                format!("canister_query {method}"),
                ExecKind::NonReplicatedQuery,
            )
        } else if c.exports(&format!("canister_composite_query {method}")) {
            (
                format!("canister_composite_query {method}"),
                ExecKind::CompositeQuery,
            )
        } else {
            return (
                Err(RejectResponse::ic(
                    536,
                    format!("Error from Canister {cid}: Canister has no query method '{method}'."),
                )),
                CallStats::default(),
            );
        };
        let cert = self.data_certificate(cid);
        let exec = Exec {
            kind,
            caller: sender,
            method: method.to_string(),
            arg,
            certificate: Some(cert),
            ..Exec::default()
        };
        let out = self
            .execute(
                cid,
                Entry::Export(export),
                exec,
                Finish::Rollback,
                self.limits.query_instructions,
                TOUCH_UPDATE,
                None,
                Payment::Free,
            )
            .out;
        let stats = CallStats {
            instructions: out.instructions,
            cycles_charged: 0,
        };
        let result = match out.result {
            Err(e) => Err(reject_of(cid, &e)),
            Ok(()) => match out.exec.response {
                Some(Response::Reply(b)) => Ok(b),
                Some(Response::Reject(m)) => Err(RejectResponse::ic(406, m)),
                None => Err(RejectResponse::ic(
                    506,
                    format!("Error from Canister {cid}: Canister did not reply to the call."),
                )),
            },
        };
        (result, stats)
    }
}
