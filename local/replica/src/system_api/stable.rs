//! `ic0` imports: stable memory (64-bit API).

use super::*;

pub(super) fn define(linker: &mut Linker<HostCtx>) -> Result<(), wasmi::errors::LinkerError> {
    linker.func_wrap(M, "stable64_size", |mut c: Cx<'_>| -> Result<u64, Error> {
        avail(&mut c, "stable64_size", ALL_S)?;
        Ok(c.data().stable.size_pages())
    })?;
    linker.func_wrap(
        M,
        "stable64_grow",
        |mut c: Cx<'_>, n: u64| -> Result<u64, Error> {
            avail(&mut c, "stable64_grow", ALL_S)?;
            Ok(c.data_mut().stable.grow(n).unwrap_or(u64::MAX))
        },
    )?;
    linker.func_wrap(
        M,
        "stable64_write",
        |mut c: Cx<'_>, offset: u64, src: u64, size: u64| -> Result<(), Error> {
            avail(&mut c, "stable64_write", ALL_S)?;
            charge(&mut c, size)?;
            let m = memory(&c)?;
            let (data, h) = m.data_and_store_mut(&mut c);
            let s = usize::try_from(src)
                .map_err(|_| violation("stable64_write: heap out of bounds"))?;
            let n = usize::try_from(size)
                .map_err(|_| violation("stable64_write: heap out of bounds"))?;
            let bytes = s
                .checked_add(n)
                .and_then(|end| data.get(s..end))
                .ok_or_else(|| violation("stable64_write: heap out of bounds"))?;
            let fresh = h.stable.write(offset, bytes).map_err(stable_err)?;
            // The IC's dirty-page overhead: 1,000 instructions per page first written by
            // this message.
            charge(
                &mut c,
                fresh.saturating_mul(complexity::DIRTY_PAGE_OVERHEAD),
            )
        },
    )?;
    linker.func_wrap(
        M,
        "stable64_read",
        |mut c: Cx<'_>, dst: u64, offset: u64, size: u64| -> Result<(), Error> {
            avail(&mut c, "stable64_read", ALL_S)?;
            charge(&mut c, size)?;
            let m = memory(&c)?;
            let (data, h) = m.data_and_store_mut(&mut c);
            let d =
                usize::try_from(dst).map_err(|_| violation("stable64_read: heap out of bounds"))?;
            let n = usize::try_from(size)
                .map_err(|_| violation("stable64_read: heap out of bounds"))?;
            let out = d
                .checked_add(n)
                .and_then(|end| data.get_mut(d..end))
                .ok_or_else(|| violation("stable64_read: heap out of bounds"))?;
            h.stable.read(offset, out).map_err(stable_err)
        },
    )?;
    Ok(())
}
