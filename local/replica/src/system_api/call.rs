//! `ic0` imports: inter-canister calls (`call_new` … `call_perform`).

use super::*;

pub(super) fn define(linker: &mut Linker<HostCtx>) -> Result<(), wasmi::errors::LinkerError> {
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
            avail(&mut c, "call_new", CALLS)?;
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
            avail(&mut c, "call_on_cleanup", CALLS)?;
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
            avail(&mut c, "call_data_append", CALLS)?;
            building(&mut c, "call_data_append")?;
            let bytes = read_mem_at(
                &mut c,
                src,
                size,
                "call_data_append",
                complexity::BYTE_TRANSMISSION_COST_FACTOR,
            )?;
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
            avail(&mut c, "call_with_best_effort_response", CALLS)?;
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
            avail(&mut c, "call_cycles_add128", U | RY | RT | T)?;
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
        avail(&mut c, "call_perform", CALLS)?;
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
    Ok(())
}
