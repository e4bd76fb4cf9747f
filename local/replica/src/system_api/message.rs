//! `ic0` imports: message arguments and caller (`msg_arg_data_*`, `msg_caller_*`, `msg_reject_code`/`_msg_*`, `msg_deadline`).

use super::*;

pub(super) fn define(linker: &mut Linker<HostCtx>) -> Result<(), wasmi::errors::LinkerError> {
    linker.func_wrap(
        M,
        "msg_arg_data_size",
        |mut c: Cx<'_>| -> Result<u32, Error> {
            avail(&mut c, "msg_arg_data_size", I | U | RQ | NRQ | CQ | RY | F)?;
            Ok(c.data().exec.arg.len() as u32)
        },
    )?;
    linker.func_wrap(
        M,
        "msg_arg_data_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&mut c, "msg_arg_data_copy", I | U | RQ | NRQ | CQ | RY | F)?;
            copy_out(&mut c, dst, off, size, "msg_arg_data_copy", |h| &h.exec.arg)
        },
    )?;
    linker.func_wrap(
        M,
        "msg_caller_size",
        |mut c: Cx<'_>| -> Result<u32, Error> {
            avail(&mut c, "msg_caller_size", ALL)?;
            Ok(c.data().exec.caller.as_slice().len() as u32)
        },
    )?;
    linker.func_wrap(
        M,
        "msg_caller_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&mut c, "msg_caller_copy", ALL)?;
            copy_out(&mut c, dst, off, size, "msg_caller_copy", |h| {
                h.exec.caller.as_slice()
            })
        },
    )?;
    linker.func_wrap(
        M,
        "msg_reject_code",
        |mut c: Cx<'_>| -> Result<u32, Error> {
            avail(&mut c, "msg_reject_code", RY | RT)?;
            Ok(c.data().exec.reject.as_ref().map_or(0, |r| r.0))
        },
    )?;
    linker.func_wrap(
        M,
        "msg_reject_msg_size",
        |mut c: Cx<'_>| -> Result<u32, Error> {
            avail(&mut c, "msg_reject_msg_size", RT)?;
            Ok(c.data().exec.reject.as_ref().map_or(0, |r| r.1.len()) as u32)
        },
    )?;
    linker.func_wrap(
        M,
        "msg_reject_msg_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&mut c, "msg_reject_msg_copy", RT)?;
            copy_out(&mut c, dst, off, size, "msg_reject_msg_copy", |h| {
                h.exec.reject.as_ref().map_or(&[][..], |r| r.1.as_bytes())
            })
        },
    )?;
    linker.func_wrap(M, "msg_deadline", |mut c: Cx<'_>| -> Result<u64, Error> {
        avail(&mut c, "msg_deadline", U | RQ | NRQ | CQ | RY | RT)?;
        Ok(c.data().exec.deadline)
    })?;
    Ok(())
}
