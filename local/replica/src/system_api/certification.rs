//! `ic0` imports: certified data and data certificates.

use super::*;

pub(super) fn define(linker: &mut Linker<HostCtx>) -> Result<(), wasmi::errors::LinkerError> {
    linker.func_wrap(
        M,
        "certified_data_set",
        |mut c: Cx<'_>, src: u32, size: u32| -> Result<(), Error> {
            avail(&mut c, "certified_data_set", I | G | U | RY | RT | T)?;
            if size > 32 {
                return Err(violation(format!(
                    "ic0.certified_data_set: certified data is {size} bytes, the limit is 32"
                )));
            }
            let bytes = read_mem(&mut c, src, size, "certified_data_set")?;
            c.data_mut().certified_data = bytes;
            Ok(())
        },
    )?;
    linker.func_wrap(
        M,
        "data_certificate_present",
        |mut c: Cx<'_>| -> Result<u32, Error> {
            avail(&mut c, "data_certificate_present", ALL)?;
            Ok(c.data().exec.certificate.is_some() as u32)
        },
    )?;
    linker.func_wrap(
        M,
        "data_certificate_size",
        |mut c: Cx<'_>| -> Result<u32, Error> {
            avail(&mut c, "data_certificate_size", NRQ | CQ)?;
            c.data()
                .exec
                .certificate
                .as_ref()
                .map(|v| v.len() as u32)
                .ok_or_else(|| violation("ic0.data_certificate_size: no certificate is present"))
        },
    )?;
    linker.func_wrap(
        M,
        "data_certificate_copy",
        |mut c: Cx<'_>, dst: u32, off: u32, size: u32| -> Result<(), Error> {
            avail(&mut c, "data_certificate_copy", NRQ | CQ)?;
            if c.data().exec.certificate.is_none() {
                return Err(violation(
                    "ic0.data_certificate_copy: no certificate is present",
                ));
            }
            copy_out(&mut c, dst, off, size, "data_certificate_copy", |h| {
                h.exec.certificate.as_deref().unwrap_or(&[])
            })
        },
    )?;
    Ok(())
}
