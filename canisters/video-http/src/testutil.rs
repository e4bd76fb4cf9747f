//! An in-memory [`VideoSource`] for tests.

use crate::{sha256, NamedFile, Poster, ReadError, VideoInfo, VideoSource, VideoStatus};
use std::collections::BTreeMap;

/// A named file of a [`MemVideo`].
pub struct MemFile {
    pub mime_type: String,
    pub bytes: Vec<u8>,
    pub chunk_size: u64,
}

impl MemFile {
    fn digest(&self) -> [u8; 32] {
        let digests: Vec<[u8; 32]> = self
            .bytes
            .chunks(self.chunk_size as usize)
            .map(sha256)
            .collect();
        sha256(&digests.concat())
    }
}

/// `size` deterministic pseudo-random bytes, different for each `seed`.
pub fn pseudo_random(size: usize, seed: u64) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ size as u64 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub struct MemVideo {
    pub bytes: Vec<u8>,
    pub chunk_size: u64,
    pub mime_type: String,
    pub status: VideoStatus,
    pub declared: bool,
    pub metadata: String,
    pub poster: Option<Poster>,
    /// Named files by path.
    pub named: BTreeMap<String, MemFile>,
    /// Counts `named_files_after` calls (budgeted certification asks for one file at a time).
    pub listings: std::cell::Cell<usize>,
}

impl MemVideo {
    /// A ready video of `size` deterministic pseudo-random bytes.
    pub fn new(size: usize, chunk_size: u64) -> Self {
        let bytes = pseudo_random(size, 0);
        MemVideo {
            bytes,
            chunk_size,
            mime_type: "video/mp4".into(),
            status: VideoStatus::Ready,
            declared: true,
            metadata: r#"{"title":"t"}"#.into(),
            poster: None,
            named: BTreeMap::new(),
            listings: std::cell::Cell::new(0),
        }
    }

    /// Adds a named file of `size` pseudo-random bytes.
    pub fn add_named(&mut self, path: &str, mime_type: &str, size: usize, chunk_size: u64) {
        let seed = self.named.len() as u64 + 1;
        self.named.insert(
            path.to_string(),
            MemFile {
                mime_type: mime_type.into(),
                bytes: pseudo_random(size, seed),
                chunk_size,
            },
        );
    }

    pub fn named_bytes(&self, path: &str) -> &[u8] {
        &self.named[path].bytes
    }

    pub fn named_digest(&self, path: &str) -> [u8; 32] {
        self.named[path].digest()
    }

    pub fn chunk_digests(&self) -> Vec<[u8; 32]> {
        self.bytes
            .chunks(self.chunk_size as usize)
            .map(sha256)
            .collect()
    }

    pub fn digest(&self) -> [u8; 32] {
        sha256(&self.chunk_digests().concat())
    }
}

impl VideoSource for MemVideo {
    fn info(&self) -> Option<VideoInfo> {
        self.declared.then(|| VideoInfo {
            mime_type: self.mime_type.clone(),
            size: self.bytes.len() as u64,
            chunk_size: self.chunk_size,
            digest: self.digest(),
            status: self.status,
        })
    }

    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, ReadError> {
        let (start, end) = (offset as usize, (offset + len) as usize);
        self.bytes
            .get(start..end)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| ReadError(format!("{start}..{end} out of range")))
    }

    fn chunk_digest(&self, index: u64) -> Option<[u8; 32]> {
        self.bytes
            .chunks(self.chunk_size as usize)
            .nth(index as usize)
            .map(sha256)
    }

    fn metadata_json(&self) -> String {
        self.metadata.clone()
    }

    fn poster(&self) -> Option<Poster> {
        self.poster.clone()
    }

    fn named_file(&self, path: &str) -> Option<NamedFile> {
        self.named.get(path).map(|f| NamedFile {
            path: path.to_string(),
            mime_type: f.mime_type.clone(),
            size: f.bytes.len() as u64,
            chunk_size: f.chunk_size,
            digest: f.digest(),
        })
    }

    fn named_files_after(&self, after: Option<&str>, limit: usize) -> Vec<NamedFile> {
        use std::ops::Bound;
        self.listings.set(self.listings.get() + 1);
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_string()));
        self.named
            .range((lower, Bound::Unbounded))
            .take(limit)
            .filter_map(|(path, _)| self.named_file(path))
            .collect()
    }

    fn read_named(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>, ReadError> {
        let (start, end) = (offset as usize, (offset + len) as usize);
        self.named
            .get(path)
            .and_then(|f| f.bytes.get(start..end))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| ReadError(format!("{path} {start}..{end} out of range")))
    }

    fn named_chunk_digest(&self, path: &str, index: u64) -> Option<[u8; 32]> {
        let f = self.named.get(path)?;
        f.bytes
            .chunks(f.chunk_size as usize)
            .nth(index as usize)
            .map(sha256)
    }
}
