//! The binary encoding of manifests and deltas: little-endian integers, length-prefixed byte
//! strings and principals, sealed with a trailing SHA-256.

use candid::Principal;
use sha2::{Digest, Sha256};

use super::{Result, SnapshotError, FORMAT_VERSION, OLDEST_FORMAT_VERSION};

#[derive(Default)]
pub(super) struct Enc(pub(super) Vec<u8>);

impl Enc {
    pub(super) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(super) fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.raw(b);
    }
    pub(super) fn principal(&mut self, p: &Principal) {
        let b = p.as_slice();
        self.u8(b.len() as u8);
        self.raw(b);
    }
    /// Appends the SHA-256 of everything so far.
    pub(super) fn seal(mut self) -> Vec<u8> {
        let d: [u8; 32] = Sha256::digest(&self.0).into();
        self.raw(&d);
        self.0
    }
}

pub(super) struct Dec<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
    pub(super) what: &'static str,
    /// The format version of what is decoded (fields added later are absent in older ones).
    pub(super) version: u32,
}

impl<'a> Dec<'a> {
    /// Checks the trailing SHA-256 and the magic/version header.
    pub(super) fn open(buf: &'a [u8], magic: &[u8; 8], what: &'static str) -> Result<Self> {
        if buf.len() < 8 + 4 + 32 {
            return Err(SnapshotError::Corrupt(format!("{what} is truncated")));
        }
        let (body, digest) = buf.split_at(buf.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(SnapshotError::Corrupt(format!(
                "{what} fails its checksum (torn or altered)"
            )));
        }
        let mut d = Dec {
            buf: body,
            pos: 0,
            what,
            version: FORMAT_VERSION,
        };
        if d.take(8)? != magic {
            return Err(SnapshotError::Corrupt(format!(
                "{what} has the wrong magic"
            )));
        }
        let version = d.u32()?;
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(SnapshotError::Corrupt(format!(
                "{what} has format version {version}; this replica reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}"
            )));
        }
        d.version = version;
        Ok(d)
    }
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| SnapshotError::Corrupt(format!("{} is truncated", self.what)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(super) fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    pub(super) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    pub(super) fn u128(&mut self) -> Result<u128> {
        Ok(u128::from_le_bytes(self.arr()?))
    }
    pub(super) fn bytes(&mut self) -> Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    pub(super) fn principal(&mut self) -> Result<Principal> {
        let n = self.u8()? as usize;
        let b = self.take(n)?;
        Principal::try_from_slice(b)
            .map_err(|e| SnapshotError::Corrupt(format!("{}: bad principal: {e}", self.what)))
    }
    pub(super) fn done(&self) -> Result<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(SnapshotError::Corrupt(format!(
                "{} has trailing bytes",
                self.what
            )))
        }
    }
}
