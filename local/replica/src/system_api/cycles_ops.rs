//! `ic0` imports: cycles (available, refunded, accepted, burned, balances).

use super::*;

pub(super) fn define(linker: &mut Linker<HostCtx>) -> Result<(), wasmi::errors::LinkerError> {
    linker.func_wrap(
        M,
        "msg_cycles_available128",
        |mut c: Cx<'_>, dst: u32| -> Result<(), Error> {
            avail(&mut c, "msg_cycles_available128", U | RQ | RY | RT)?;
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
            avail(&mut c, "msg_cycles_refunded128", RY | RT)?;
            let v = c.data().exec.cycles_refunded;
            write_u128(&mut c, dst, v, "msg_cycles_refunded128")
        },
    )?;
    linker.func_wrap(
        M,
        "msg_cycles_accept128",
        |mut c: Cx<'_>, hi: u64, lo: u64, dst: u32| -> Result<(), Error> {
            avail(&mut c, "msg_cycles_accept128", U | RQ | RY | RT)?;
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
            avail(&mut c, "cycles_burn128", I | G | U | RQ | RY | RT | C | T)?;
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
            avail(&mut c, "canister_cycle_balance128", ALL)?;
            let v = c.data().balance;
            write_u128(&mut c, dst, v, "canister_cycle_balance128")
        },
    )?;
    linker.func_wrap(
        M,
        "canister_liquid_cycle_balance128",
        |mut c: Cx<'_>, dst: u32| -> Result<(), Error> {
            avail(&mut c, "canister_liquid_cycle_balance128", ALL)?;
            let h = c.data();
            let v = cycles::liquid(h.balance, h.exec.reserve);
            write_u128(&mut c, dst, v, "canister_liquid_cycle_balance128")
        },
    )?;
    Ok(())
}
