//! `ic0` imports: time, timers, counters, cost and environment queries.

use super::*;

pub(super) fn define(linker: &mut Linker<HostCtx>) -> Result<(), wasmi::errors::LinkerError> {
    linker.func_wrap(M, "time", |mut c: Cx<'_>| -> Result<u64, Error> {
        avail(&mut c, "time", ALL)?;
        Ok(c.data().exec.time)
    })?;
    linker.func_wrap(
        M,
        "global_timer_set",
        |mut c: Cx<'_>, ts: u64| -> Result<u64, Error> {
            avail(&mut c, "global_timer_set", I | G | U | RY | RT | C | T)?;
            Ok(std::mem::replace(&mut c.data_mut().global_timer, ts))
        },
    )?;
    linker.func_wrap(
        M,
        "performance_counter",
        |mut c: Cx<'_>, kind: u32| -> Result<u64, Error> {
            avail(&mut c, "performance_counter", ALL_S)?;
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
            avail(&mut c, "is_controller", ALL_S)?;
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
        |mut c: Cx<'_>| -> Result<u32, Error> {
            avail(&mut c, "in_replicated_execution", ALL_S)?;
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
            avail(&mut c, "cost_call", ALL_S)?;
            let cost = cycles::call_fee(method_len, payload_len) + c.data().exec.call_reservation;
            write_u128(&mut c, dst, cost, "cost_call")
        },
    )?;
    linker.func_wrap(
        M,
        "cost_create_canister",
        |mut c: Cx<'_>, dst: u32| -> Result<(), Error> {
            avail(&mut c, "cost_create_canister", ALL_S)?;
            write_u128(&mut c, dst, cycles::CREATION_FEE, "cost_create_canister")
        },
    )?;
    linker.func_wrap(
        M,
        "cost_vetkd_derive_key",
        |mut c: Cx<'_>, src: u32, size: u32, curve: u32, dst: u32| -> Result<u32, Error> {
            avail(&mut c, "cost_vetkd_derive_key", ALL_S)?;
            let name = read_mem(&mut c, src, size, "cost_vetkd_derive_key")?;
            // The interface specification's codes: 1 for an unknown curve (0 is
            // bls12_381_g2, the only one), 2 for a key name the subnet does not know (an
            // invalid UTF-8 name included); `dst` is written only on success.
            if curve != 0 {
                return Ok(1);
            }
            let known =
                std::str::from_utf8(&name).is_ok_and(|n| crate::vetkd::KEY_NAMES.contains(&n));
            if !known {
                return Ok(2);
            }
            write_u128(
                &mut c,
                dst,
                cycles::VETKD_DERIVE_KEY_FEE,
                "cost_vetkd_derive_key",
            )?;
            Ok(0)
        },
    )?;
    linker.func_wrap(M, "env_var_count", |mut c: Cx<'_>| -> Result<u32, Error> {
        avail(&mut c, "env_var_count", ALL_S)?;
        Ok(0)
    })?;
    linker.func_wrap(
        M,
        "env_var_name_exists",
        |mut c: Cx<'_>, _src: u32, _size: u32| -> Result<u32, Error> {
            avail(&mut c, "env_var_name_exists", ALL_S)?;
            Ok(0)
        },
    )?;
    Ok(())
}
