//! Deterministic test data: the same seed gives the same bytes on every run and backend, so a
//! failure reproduces, and a large file never needs to exist in memory at once (any chunk can be
//! regenerated from its offset).

use sha2::{Digest, Sha256};

/// xorshift64* — small, fast, and good enough to make bytes that do not compress or repeat.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Zero is xorshift's fixed point; mix the seed so nearby seeds diverge.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for block in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            block.copy_from_slice(&v[..block.len()]);
        }
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// A virtual file of `size` pseudo-random bytes cut into `chunk_size` chunks. Chunk `i` depends
/// only on `(seed, i)`, so chunks can be produced in any order without holding the file.
#[derive(Clone, Debug)]
pub struct GenFile {
    pub seed: u64,
    pub size: u64,
    pub chunk_size: u64,
}

impl GenFile {
    pub fn new(seed: u64, size: u64, chunk_size: u64) -> Self {
        assert!(chunk_size > 0);
        Self {
            seed,
            size,
            chunk_size,
        }
    }

    // The chunk arithmetic is written out here rather than taken from `canvid_types::protocol`:
    // an independent oracle, like `clients::file_digest`.
    pub fn chunk_count(&self) -> u32 {
        u32::try_from(self.size.div_ceil(self.chunk_size)).expect("chunk count fits u32")
    }

    pub fn chunk_len(&self, index: u32) -> u64 {
        let start = index as u64 * self.chunk_size;
        assert!(start < self.size, "chunk {index} is past the end");
        (self.size - start).min(self.chunk_size)
    }

    pub fn chunk(&self, index: u32) -> Vec<u8> {
        let mut buf = vec![0u8; self.chunk_len(index) as usize];
        Rng::new(self.seed ^ ((index as u64 + 1) << 32)).fill(&mut buf);
        buf
    }

    pub fn chunk_digest(&self, index: u32) -> [u8; 32] {
        Sha256::digest(self.chunk(index)).into()
    }

    /// The whole file (small files only).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size as usize);
        for i in 0..self.chunk_count() {
            out.extend_from_slice(&self.chunk(i));
        }
        out
    }

    /// Bytes `[offset, offset + len)` of the file, regenerated from the chunks they fall in.
    pub fn range(&self, offset: u64, len: u64) -> Vec<u8> {
        assert!(offset + len <= self.size);
        let mut out = Vec::with_capacity(len as usize);
        let mut pos = offset;
        while pos < offset + len {
            let index = (pos / self.chunk_size) as u32;
            let chunk = self.chunk(index);
            let within = (pos - index as u64 * self.chunk_size) as usize;
            let take = ((offset + len - pos) as usize).min(chunk.len() - within);
            out.extend_from_slice(&chunk[within..within + take]);
            pos += take as u64;
        }
        out
    }

    /// SHA-256 of the whole file, streamed chunk by chunk.
    pub fn sha256(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for i in 0..self.chunk_count() {
            h.update(self.chunk(i));
        }
        h.finalize().into()
    }
}

/// A deterministic principal for test actors ("alice", "bob", ...): a self-authenticating-style
/// id derived from the name, distinct from the anonymous and management principals.
pub fn principal(name: &str) -> candid::Principal {
    let mut bytes = Sha256::digest(name.as_bytes())[..28].to_vec();
    bytes.push(0x02); // self-authenticating suffix
    candid::Principal::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_deterministic_and_distinct() {
        let f = GenFile::new(7, 10_000, 3_000);
        assert_eq!(f.chunk_count(), 4);
        assert_eq!(f.chunk_len(3), 1_000);
        assert_eq!(f.chunk(1), f.chunk(1));
        assert_ne!(f.chunk(0), f.chunk(1)[..3_000].to_vec());
        assert_ne!(GenFile::new(8, 10_000, 3_000).chunk(0), f.chunk(0));
        let all = f.bytes();
        assert_eq!(all.len(), 10_000);
        assert_eq!(f.range(2_990, 20), all[2_990..3_010].to_vec());
        assert_eq!(f.sha256(), <[u8; 32]>::from(Sha256::digest(&all)));
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<u32> = (0..100).collect();
        Rng::new(1).shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}
