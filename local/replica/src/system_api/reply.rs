//! `ic0` imports: replying (`msg_reply_data_append`, `msg_reply`, `msg_reject`).

use super::*;

pub(super) fn define(linker: &mut Linker<HostCtx>) -> Result<(), wasmi::errors::LinkerError> {
    linker.func_wrap(
        M,
        "msg_reply_data_append",
        |mut c: Cx<'_>, src: u32, size: u32| -> Result<(), Error> {
            avail(&mut c, "msg_reply_data_append", U | RQ | NRQ | CQ | RY | RT)?;
            if responded(&c) {
                return Err(violation(
                    "ic0.msg_reply_data_append: the call is already replied",
                ));
            }
            let bytes = read_mem_at(
                &mut c,
                src,
                size,
                "msg_reply_data_append",
                complexity::BYTE_TRANSMISSION_COST_FACTOR,
            )?;
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
        avail(&mut c, "msg_reply", U | RQ | NRQ | CQ | RY | RT)?;
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
            avail(&mut c, "msg_reject", U | RQ | NRQ | CQ | RY | RT)?;
            if responded(&c) {
                return Err(violation("ic0.msg_reject: the call is already replied"));
            }
            let bytes = read_mem_at(
                &mut c,
                src,
                size,
                "msg_reject",
                complexity::BYTE_TRANSMISSION_COST_FACTOR,
            )?;
            let msg = String::from_utf8(bytes)
                .map_err(|_| violation("ic0.msg_reject: message is not valid UTF-8"))?;
            c.data_mut().exec.response = Some(Response::Reject(msg));
            Ok(())
        },
    )?;
    Ok(())
}
