//! An in-memory [`VideoSource`] for tests.

use crate::{sha256, Poster, ReadError, VideoInfo, VideoSource, VideoStatus};

pub struct MemVideo {
    pub bytes: Vec<u8>,
    pub chunk_size: u64,
    pub mime_type: String,
    pub status: VideoStatus,
    pub declared: bool,
    pub metadata: String,
    pub poster: Option<Poster>,
}

impl MemVideo {
    /// A ready video of `size` deterministic pseudo-random bytes.
    pub fn new(size: usize, chunk_size: u64) -> Self {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ size as u64;
        let bytes = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        MemVideo {
            bytes,
            chunk_size,
            mime_type: "video/mp4".into(),
            status: VideoStatus::Ready,
            declared: true,
            metadata: r#"{"title":"t"}"#.into(),
            poster: None,
        }
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
}
