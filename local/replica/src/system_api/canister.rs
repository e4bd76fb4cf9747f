//! `ic0` imports: the canister and its environment (self id, status, version, subnet, method name, `accept_message`).

use super::*;

pub(super) fn define(linker: &mut Linker<HostCtx>) -> Result<(), wasmi::errors::LinkerError> {
    linker.func_wrap(
        M,
        "canister_self_size",
        |mut c: Cx<'_>| -> Result<u32, Error> {
            avail(&mut c, "canister_self_size", ALL)?;
            Ok(c.data().id.as_slice().len() as u32)
        },
    )?;
    linker.func_wrap(
        M,
        "canister_self_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&mut c, "canister_self_copy", ALL)?;
            copy_out(&mut c, dst, off, size, "canister_self_copy", |h| {
                h.id.as_slice()
            })
        },
    )?;
    linker.func_wrap(
        M,
        "canister_status",
        |mut c: Cx<'_>| -> Result<u32, Error> {
            avail(&mut c, "canister_status", ALL)?;
            Ok(c.data().status)
        },
    )?;
    linker.func_wrap(
        M,
        "canister_version",
        |mut c: Cx<'_>| -> Result<u64, Error> {
            avail(&mut c, "canister_version", ALL)?;
            Ok(c.data().canister_version)
        },
    )?;
    linker.func_wrap(
        M,
        "subnet_self_size",
        |mut c: Cx<'_>| -> Result<u32, Error> {
            avail(&mut c, "subnet_self_size", ALL)?;
            Ok(c.data().subnet.as_slice().len() as u32)
        },
    )?;
    linker.func_wrap(
        M,
        "subnet_self_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&mut c, "subnet_self_copy", ALL)?;
            copy_out(&mut c, dst, off, size, "subnet_self_copy", |h| {
                h.subnet.as_slice()
            })
        },
    )?;
    linker.func_wrap(
        M,
        "msg_method_name_size",
        |mut c: Cx<'_>| -> Result<u32, Error> {
            avail(&mut c, "msg_method_name_size", F)?;
            Ok(c.data().exec.method.len() as u32)
        },
    )?;
    linker.func_wrap(
        M,
        "msg_method_name_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&mut c, "msg_method_name_copy", F)?;
            copy_out(&mut c, dst, off, size, "msg_method_name_copy", |h| {
                h.exec.method.as_bytes()
            })
        },
    )?;
    linker.func_wrap(M, "accept_message", |mut c: Cx<'_>| -> Result<(), Error> {
        avail(&mut c, "accept_message", F)?;
        let e = &mut c.data_mut().exec;
        if e.accepted_message {
            return Err(violation(
                "ic0.accept_message: the message was already accepted",
            ));
        }
        e.accepted_message = true;
        Ok(())
    })?;
    Ok(())
}
