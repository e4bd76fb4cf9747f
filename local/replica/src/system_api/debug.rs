//! `ic0` imports: debugging (`debug_print`, `trap`).

use super::*;

pub(super) fn define(linker: &mut Linker<HostCtx>) -> Result<(), wasmi::errors::LinkerError> {
    linker.func_wrap(
        M,
        "debug_print",
        |mut c: Cx<'_>, src: u32, size: u32| -> Result<(), Error> {
            avail(&mut c, "debug_print", ALL_S)?;
            let log = complexity::logging_charge_bytes(size as u64, c.data().log_tail_bytes());
            charge(&mut c, log)?;
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
            avail(&mut c, "trap", ALL_S)?;
            let log = complexity::logging_charge_bytes(size as u64, c.data().log_tail_bytes());
            charge(&mut c, log.saturating_add(size as u64))?;
            let bytes = read_mem_at(&mut c, src, size.min(16 * 1024), "trap", 0)?;
            Err(Error::host(HostTrap::Called(
                String::from_utf8_lossy(&bytes).into_owned(),
            )))
        },
    )?;
    Ok(())
}
