//! Chunk encryption of scheme `canvid-aes256gcm-v1` (see `canvid_types::encryption`): stored
//! chunk `i` = nonce (12) ‖ AES-256-GCM ciphertext ‖ tag (16), associated data `chunk_aad`,
//! synthetic nonce `HMAC-SHA256(key, NONCE_LABEL ‖ aad ‖ SHA-256(plaintext))[..12]`.

use std::io::{self, Read, Write};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use candid::Principal;
use canvid_types::encryption::{
    chunk_aad, Encryption, CHUNK_OVERHEAD, NONCE_LABEL, NONCE_LEN, SCHEME_AES256GCM_V1,
};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const NONCE_BYTES: usize = NONCE_LEN as usize;

/// Why a chunk or file could not be encrypted or decrypted.
#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    #[error("unknown encryption scheme {0:?} (this client knows {SCHEME_AES256GCM_V1:?})")]
    UnknownScheme(String),
    #[error("an encrypted file needs plain_size and plain_chunk_size of at least 1")]
    Empty,
    #[error("{count} chunks: more than a chunk index (u32) can number")]
    TooManyChunks { count: u64 },
    #[error("chunk {index} does not exist (the file has {count} chunks)")]
    NoSuchChunk { index: u32, count: u64 },
    #[error("chunk {index} holds {expected} plaintext bytes, not {actual}")]
    PlainLength {
        index: u32,
        expected: u64,
        actual: u64,
    },
    #[error("stored chunk {index} must be {expected} bytes, not {actual}")]
    StoredLength {
        index: u32,
        expected: u64,
        actual: u64,
    },
    /// GCM's tag does not match: another key, or the chunk was altered, moved to another index,
    /// file or canister, or the file's declared sizes are not the ones it was encrypted with.
    #[error(
        "stored chunk {index} does not decrypt: wrong key, or the chunk was altered or belongs \
         to another place, file or canister"
    )]
    Authentication { index: u32 },
    #[error("plaintext range {start}..{end} is empty or not inside the file's {size} bytes")]
    RangeOutsideFile { start: u64, end: u64, size: u64 },
    #[error("the input ended after {actual} bytes, {expected} expected")]
    InputShorter { expected: u64, actual: u64 },
    #[error("the input is longer than the {expected} bytes expected")]
    InputLonger { expected: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Which stored bytes hold a plaintext byte range (a player's seek, an HTTP range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSpan {
    /// First and last (inclusive) chunk holding the range.
    pub first: u32,
    pub last: u32,
    /// The stored bytes of those chunks: `stored_start..stored_end` of the stored file.
    pub stored_start: u64,
    pub stored_end: u64,
    /// Plaintext bytes to drop from the front of the first chunk's plaintext.
    pub skip: u64,
    /// Plaintext bytes of the range (kept after `skip`).
    pub len: u64,
}

/// One video's key, canister and [`Encryption`]: encrypts and decrypts its chunks.
pub struct VideoCipher {
    aead: Aes256Gcm,
    /// The AES key is also the synthetic nonce's HMAC key.
    key: [u8; 32],
    canister: Principal,
    enc: Encryption,
}

impl VideoCipher {
    /// Refuses an encryption this client cannot handle (unknown scheme, empty sizes, more chunks
    /// than the AAD's u32 index numbers).
    pub fn new(
        key: &[u8; 32],
        canister: Principal,
        enc: Encryption,
    ) -> Result<VideoCipher, CipherError> {
        if enc.scheme != SCHEME_AES256GCM_V1 {
            return Err(CipherError::UnknownScheme(enc.scheme));
        }
        if enc.plain_size == 0 || enc.plain_chunk_size == 0 {
            return Err(CipherError::Empty);
        }
        if enc.chunk_count() > u64::from(u32::MAX) {
            return Err(CipherError::TooManyChunks {
                count: enc.chunk_count(),
            });
        }
        Ok(VideoCipher {
            aead: Aes256Gcm::new(key.into()),
            key: *key,
            canister,
            enc,
        })
    }

    pub fn encryption(&self) -> &Encryption {
        &self.enc
    }

    /// Number of chunks; fits a u32 (checked by [`VideoCipher::new`]).
    pub fn chunk_count(&self) -> u32 {
        self.enc.chunk_count() as u32
    }

    /// Offset of stored chunk `index` in the stored file.
    pub fn stored_offset(&self, index: u32) -> u64 {
        u64::from(index) * self.enc.stored_chunk_size()
    }

    /// Bytes of stored chunk `index` (its plaintext's plus [`CHUNK_OVERHEAD`]).
    pub fn stored_len(&self, index: u32) -> u64 {
        self.enc.plain_len(u64::from(index)) + u64::from(CHUNK_OVERHEAD)
    }

    /// Plaintext bytes of chunk `index`.
    pub fn plain_len(&self, index: u32) -> u64 {
        self.enc.plain_len(u64::from(index))
    }

    fn check_index(&self, index: u32) -> Result<(), CipherError> {
        if index >= self.chunk_count() {
            return Err(CipherError::NoSuchChunk {
                index,
                count: self.enc.chunk_count(),
            });
        }
        Ok(())
    }

    /// The associated data of chunk `index` (`chunk_aad`).
    pub fn aad(&self, index: u32) -> Vec<u8> {
        chunk_aad(&self.canister, &self.enc, index)
    }

    /// The synthetic nonce of `plain` at the place `aad` describes.
    pub fn nonce(&self, aad: &[u8], plain: &[u8]) -> [u8; NONCE_BYTES] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            // HMAC takes keys of any length.
            .expect("HMAC key");
        mac.update(NONCE_LABEL);
        mac.update(aad);
        mac.update(&Sha256::digest(plain));
        let tag = mac.finalize().into_bytes();
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&tag[..NONCE_BYTES]);
        nonce
    }

    /// Stored chunk `index` of plaintext chunk `plain` (which must have the chunk's length).
    /// Deterministic: the same plaintext at the same place always gives the same bytes.
    pub fn encrypt_chunk(&self, index: u32, plain: &[u8]) -> Result<Vec<u8>, CipherError> {
        self.check_index(index)?;
        let expected = self.plain_len(index);
        if plain.len() as u64 != expected {
            return Err(CipherError::PlainLength {
                index,
                expected,
                actual: plain.len() as u64,
            });
        }
        let aad = self.aad(index);
        let nonce = self.nonce(&aad, plain);
        let sealed = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            // AES-GCM refuses only messages over 64 GiB; a chunk is at most 4 GiB (u32).
            .expect("AES-GCM encrypts a chunk");
        let mut stored = Vec::with_capacity(NONCE_BYTES + sealed.len());
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&sealed);
        Ok(stored)
    }

    /// The plaintext of stored chunk `index`, authenticated (key, place, file shape). The nonce
    /// is taken as stored, never recomputed.
    pub fn decrypt_chunk(&self, index: u32, stored: &[u8]) -> Result<Vec<u8>, CipherError> {
        self.check_index(index)?;
        let expected = self.stored_len(index);
        if stored.len() as u64 != expected {
            return Err(CipherError::StoredLength {
                index,
                expected,
                actual: stored.len() as u64,
            });
        }
        let (nonce, sealed) = stored.split_at(NONCE_BYTES);
        let aad = self.aad(index);
        self.aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| CipherError::Authentication { index })
    }

    /// The chunks and stored bytes that hold plaintext bytes `start..end` (end exclusive; the
    /// range must be non-empty and inside the file).
    pub fn plain_range_to_chunks(&self, start: u64, end: u64) -> Result<ChunkSpan, CipherError> {
        let size = self.enc.plain_size;
        if start >= end || end > size {
            return Err(CipherError::RangeOutsideFile { start, end, size });
        }
        let chunk = u64::from(self.enc.plain_chunk_size);
        // Both below chunk_count(), which fits a u32.
        let first = (start / chunk) as u32;
        let last = ((end - 1) / chunk) as u32;
        Ok(ChunkSpan {
            first,
            last,
            stored_start: self.stored_offset(first),
            stored_end: self.stored_offset(last) + self.stored_len(last),
            skip: start - u64::from(first) * chunk,
            len: end - start,
        })
    }

    /// The stored chunks of the plaintext `source` yields, one at a time (memory: one chunk).
    /// `source` must hold exactly `plain_size` bytes: fewer or more is an error (the declared
    /// sizes are bound into every chunk).
    pub fn encrypt_reader<R: Read>(&self, source: R) -> EncryptedChunks<'_, R> {
        EncryptedChunks {
            cipher: self,
            source,
            next: 0,
            failed: false,
        }
    }

    /// Decrypts the stored file `stored` (exactly `stored_size` bytes) chunk by chunk into `out`;
    /// returns the plaintext bytes written. On an error `out` may hold the chunks before it.
    pub fn decrypt_to_writer<R: Read, W: Write>(
        &self,
        mut stored: R,
        mut out: W,
    ) -> Result<u64, CipherError> {
        let mut written = 0;
        for index in 0..self.chunk_count() {
            let chunk = read_exactly(
                &mut stored,
                self.stored_len(index),
                self.stored_offset(index),
            )?;
            let plain = self.decrypt_chunk(index, &chunk)?;
            out.write_all(&plain)?;
            written += plain.len() as u64;
        }
        expect_end(&mut stored, self.enc.stored_size())?;
        out.flush()?;
        Ok(written)
    }
}

/// [`VideoCipher::encrypt_reader`]'s iterator: `Ok(stored chunk)` in index order; after an
/// error, nothing more.
pub struct EncryptedChunks<'a, R> {
    cipher: &'a VideoCipher,
    source: R,
    next: u32,
    failed: bool,
}

impl<R: Read> EncryptedChunks<'_, R> {
    fn encrypt_next(&mut self) -> Result<Vec<u8>, CipherError> {
        let c = self.cipher;
        let index = self.next;
        let offset = u64::from(index) * u64::from(c.enc.plain_chunk_size);
        let plain = read_exactly(&mut self.source, c.plain_len(index), offset)?;
        if index + 1 == c.chunk_count() {
            expect_end(&mut self.source, c.enc.plain_size)?;
        }
        c.encrypt_chunk(index, &plain)
    }
}

impl<R: Read> Iterator for EncryptedChunks<'_, R> {
    type Item = Result<Vec<u8>, CipherError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.cipher.chunk_count() {
            return None;
        }
        let item = self.encrypt_next();
        self.failed = item.is_err();
        self.next += 1;
        Some(item)
    }
}

/// Reads `len` bytes; `offset` (of the first of them in the whole input) and `len` only word
/// the error when the input ends early.
fn read_exactly<R: Read>(input: &mut R, len: u64, offset: u64) -> Result<Vec<u8>, CipherError> {
    let mut buf = Vec::new();
    let got = input.by_ref().take(len).read_to_end(&mut buf)? as u64;
    if got < len {
        return Err(CipherError::InputShorter {
            expected: offset + len,
            actual: offset + got,
        });
    }
    Ok(buf)
}

/// Errs if `input` has bytes left after the `expected` it should hold.
fn expect_end<R: Read>(input: &mut R, expected: u64) -> Result<(), CipherError> {
    let mut one = [0u8; 1];
    loop {
        match input.read(&mut one) {
            Ok(0) => return Ok(()),
            Ok(_) => return Err(CipherError::InputLonger { expected }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests;
