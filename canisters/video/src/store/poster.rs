//! The poster image (memory 5; its layout is in the `store` module docs).

use canvid_types::video::{validate_poster_mime, MAX_POSTER_BYTES, MAX_POSTER_MIME_BYTES};
use canvid_types::{Error, Result};
use ic_stable_structures::Memory;

use super::{ensure_size, sha256, Digest32, VideoStore};

pub const POSTER_MAGIC: &[u8; 4] = b"CVPO";
/// Offset of the poster bytes in memory 5 (after the fixed header).
const POSTER_DATA_OFFSET: u64 = 256;
/// Size of the MIME type field of the header (stable layout: never changes).
const POSTER_MIME_FIELD: usize = 127;
// Every MIME type the interface accepts fits the field.
const _: () = assert!(MAX_POSTER_MIME_BYTES <= POSTER_MIME_FIELD);

/// The stored poster image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPoster {
    pub mime_type: String,
    pub bytes: Vec<u8>,
    pub sha256: Digest32,
}

impl<M: Memory> VideoStore<M> {
    /// Stores (replaces) the poster; empty `data` removes it. Authorisation is the caller's job.
    pub fn set_poster(&mut self, mime_type: &str, data: &[u8], now: u64) -> Result<()> {
        if data.len() as u64 > MAX_POSTER_BYTES {
            return Err(Error::TooLarge {
                size: data.len() as u64,
                limit: MAX_POSTER_BYTES,
            });
        }
        let mut header = [0u8; POSTER_DATA_OFFSET as usize];
        header[0..4].copy_from_slice(POSTER_MAGIC);
        if !data.is_empty() {
            validate_poster_mime(mime_type)?;
            header[4..8].copy_from_slice(&(data.len() as u32).to_le_bytes());
            header[8..40].copy_from_slice(&sha256(data));
            header[40] = mime_type.len() as u8;
            header[41..41 + mime_type.len()].copy_from_slice(mime_type.as_bytes());
        } else if self.poster.size() == 0 {
            // Nothing to clear, and no reason to allocate a bucket for it.
            return Ok(());
        }
        ensure_size(&self.poster, POSTER_DATA_OFFSET + data.len() as u64)?;
        self.poster.write(POSTER_DATA_OFFSET, data);
        self.poster.write(0, &header);
        self.update_state(|s| {
            s.updated_at = now;
            Ok(())
        })
    }

    /// The poster, if one is stored.
    pub fn poster(&self) -> Option<StoredPoster> {
        if self.poster.size() == 0 {
            return None;
        }
        let mut header = [0u8; POSTER_DATA_OFFSET as usize];
        self.poster.read(0, &mut header);
        if &header[0..4] != POSTER_MAGIC {
            return None;
        }
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as u64;
        if len == 0 || len > MAX_POSTER_BYTES {
            return None;
        }
        let mut sha = [0u8; 32];
        sha.copy_from_slice(&header[8..40]);
        let m = (header[40] as usize).min(POSTER_MIME_FIELD);
        let mime_type = String::from_utf8_lossy(&header[41..41 + m]).into_owned();
        let mut bytes = vec![0u8; len as usize];
        self.poster.read(POSTER_DATA_OFFSET, &mut bytes);
        Some(StoredPoster {
            mime_type,
            bytes,
            sha256: sha,
        })
    }

    /// `(mime type, length)` of the poster without reading its bytes.
    pub fn poster_info(&self) -> Option<(String, u64)> {
        if self.poster.size() == 0 {
            return None;
        }
        let mut header = [0u8; 168];
        self.poster.read(0, &mut header);
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as u64;
        if &header[0..4] != POSTER_MAGIC || len == 0 {
            return None;
        }
        let m = (header[40] as usize).min(POSTER_MIME_FIELD);
        Some((
            String::from_utf8_lossy(&header[41..41 + m]).into_owned(),
            len,
        ))
    }
}
