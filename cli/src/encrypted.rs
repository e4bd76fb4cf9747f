//! End-to-end encrypted videos in the CLI (`upload --encrypt`, `get`, docs/encryption.md): the
//! video key from the canister's `video_key`, the encrypted file as the upload pipeline's
//! [`ChunkSource`], and the access policy an encrypted video needs.
//!
//! Why the pipeline is reused unchanged: the canister stores the ciphertext as an ordinary file
//! (digests, resume, retries all over stored bytes). Encryption is deterministic (synthetic
//! nonces, `canvid_encryption`), so reading a stored chunk twice — once to hash it, once to send
//! it, again after a crash — gives the same bytes, which is all the pipeline asks of a source.

use std::io;
use std::ops::Range;

use candid::Principal;
use canvid_encryption::{
    Encryption, TransportKey, VideoCipher, VideoKey, VideoKeyArgs, CHUNK_OVERHEAD,
    DEFAULT_KEY_NAME, SCHEME_AES256GCM_V1,
};
use canvid_types::access::{AccessGrant, AccessInfo, AccessMode, AccessPolicy, MyAccess};
use canvid_types::encryption::{MAX_KEYS_PER_VIEWER, MAX_VIEWER_KEYS};
use serde_bytes::ByteBuf;

use crate::error::{Error, Result};
use crate::network::{Client, Kind};
use crate::upload::{ChunkSource, CHUNK_SIZE};

/// Plaintext bytes per chunk of an encrypted upload: a stored chunk (plaintext + nonce + tag)
/// is then exactly the CLI's [`CHUNK_SIZE`], within the canister's chunk limit.
pub const PLAIN_CHUNK_SIZE: u32 = CHUNK_SIZE as u32 - CHUNK_OVERHEAD;

/// The [`Encryption`] of a new upload of `plain_size` bytes under vetKD key `key_name`
/// (epoch 0: the first key of a video).
pub fn new_encryption(plain_size: u64, key_name: &str) -> Encryption {
    Encryption {
        scheme: SCHEME_AES256GCM_V1.into(),
        key_name: key_name.into(),
        key_epoch: 0,
        plain_size,
        plain_chunk_size: PLAIN_CHUNK_SIZE,
    }
}

/// The encryption to continue with in a video whose upload declared `declared` (a resumed
/// upload must encrypt exactly as before), else a new one. `key_name`: the one asked for on the
/// command line, if any.
pub fn encryption_for(
    video: Principal,
    declared: Option<&Encryption>,
    plain_size: u64,
    key_name: Option<&str>,
) -> Result<Encryption> {
    let Some(d) = declared else {
        return Ok(new_encryption(
            plain_size,
            key_name.unwrap_or(DEFAULT_KEY_NAME),
        ));
    };
    if key_name.is_some_and(|k| k != d.key_name) {
        return Err(Error::Input(format!(
            "{video}'s upload is encrypted under vetKD key {:?}, not {:?}: resume it without \
             --key-name",
            d.key_name,
            key_name.unwrap_or_default()
        )));
    }
    if d.plain_size != plain_size {
        return Err(Error::Input(format!(
            "{video}'s upload is of a {}-byte file, this one has {plain_size} bytes",
            d.plain_size
        )));
    }
    Ok(d.clone())
}

/// The stored (encrypted) file of a plaintext source, read one stored chunk at a time.
pub struct EncryptedSource<'a, S: ?Sized> {
    plain: &'a S,
    cipher: VideoCipher,
}

impl<'a, S: ChunkSource + ?Sized> EncryptedSource<'a, S> {
    pub fn new(plain: &'a S, cipher: VideoCipher) -> Self {
        Self { plain, cipher }
    }

    /// The index of the stored chunk whose bytes are exactly `range`.
    fn chunk_at(&self, range: &Range<u64>) -> Option<u32> {
        let stored_chunk = self.cipher.encryption().stored_chunk_size();
        let index = u32::try_from(range.start / stored_chunk).ok()?;
        let whole = index < self.cipher.chunk_count()
            && range.start == self.cipher.stored_offset(index)
            && range.end - range.start == self.cipher.stored_len(index);
        whole.then_some(index)
    }
}

impl<S: ChunkSource + ?Sized> ChunkSource for EncryptedSource<'_, S> {
    fn size(&self) -> u64 {
        self.cipher.encryption().stored_size()
    }

    /// Reads whole stored chunks only (what the pipeline asks for: its chunk size is the stored
    /// chunk size).
    fn read(&self, range: Range<u64>) -> io::Result<Vec<u8>> {
        let index = self.chunk_at(&range).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{range:?} is not one whole stored chunk of the encrypted file"),
            )
        })?;
        let plain_chunk = u64::from(self.cipher.encryption().plain_chunk_size);
        let start = u64::from(index) * plain_chunk;
        let plain = self
            .plain
            .read(start..start + self.cipher.plain_len(index))?;
        self.cipher
            .encrypt_chunk(index, &plain)
            .map_err(io::Error::other)
    }
}

/// The video's AES key for this identity: `video_key` with a fresh transport key, the answer
/// verified (`canvid_encryption::TransportKey::open`). `key_name`/`key_epoch`: `None` for the
/// upload's. A refusal becomes [`Error::NoVideoKey`] saying why.
pub async fn video_key(
    client: &Client,
    video: Principal,
    key_name: Option<String>,
    key_epoch: Option<u32>,
) -> Result<([u8; 32], VideoKey)> {
    let transport = TransportKey::random()
        .map_err(|e| Error::Agent(format!("no randomness for a transport key: {e}")))?;
    let args = VideoKeyArgs {
        transport_public_key: ByteBuf::from(transport.public_key()),
        key_name,
        key_epoch,
    };
    let answer: VideoKey = match client
        .call_ok(Kind::Update, video, "video_key", (args,))
        .await
    {
        Ok(a) => a,
        Err(Error::NotAuthorized { detail, .. }) => {
            return Err(Error::NoVideoKey {
                video,
                reason: refusal_reason(client, video, &detail).await,
            })
        }
        Err(e) => return Err(e),
    };
    let key = transport
        .open(&answer, &video)
        .map_err(|e| Error::Verify(format!("the key {video} answered cannot be used: {e}")))?;
    Ok((key, answer))
}

/// Why `video_key` refused this identity. `inspect_message` refuses without a reason (IC0406),
/// so the caller's own access (`my_access`) says which rule applied.
async fn refusal_reason(client: &Client, video: Principal, detail: &str) -> String {
    let me = client.me;
    let mine = client
        .call::<MyAccess>(Kind::Query, video, "my_access", ())
        .await;
    let why = match mine.map(|m| m.grant) {
        Ok(Some(AccessGrant::Public)) => format!(
            "the video is public, and a public video's key goes only to its owner and \
             uploaders (the owner can run `canvid access set {video} --private`, then add \
             viewers)"
        ),
        Ok(None) => format!(
            "{me} is not on its allowlist and holds no pass (the owner can run `canvid access \
             viewers add {video} {me}`)"
        ),
        Ok(Some(AccessGrant::Viewer | AccessGrant::Pass { .. })) => format!(
            "{me} may watch it, but gets no key now: a viewer gets at most \
             {MAX_KEYS_PER_VIEWER} keys a day and all viewers together {MAX_VIEWER_KEYS} (try \
             again later)"
        ),
        _ => format!("the canister refused the key to {me}"),
    };
    format!("{why}; the canister said: {detail}")
}

/// Makes `video` private when it is public: an encrypted video's key goes only to the owner and
/// uploaders while it is public, so nobody else could ever watch it. Says so on stderr. An
/// uploader who is not the owner cannot change the policy: told so, the upload goes on.
pub async fn make_private(client: &Client, video: Principal) -> Result<()> {
    let info: AccessInfo = client.call(Kind::Query, video, "access_policy", ()).await?;
    if !info.policy.is_public() {
        return Ok(());
    }
    let policy = AccessPolicy {
        mode: AccessMode::Private,
        preview_bytes: None,
        free_paths: None,
    };
    let set: Result<AccessInfo> = client
        .call_ok(Kind::Update, video, "set_access_policy", (policy,))
        .await;
    if let Err(Error::NotAuthorized { .. }) = set {
        // An uploader who is not the owner: the upload is still encrypted; the owner decides.
        eprintln!(
            "{video} is public, so only its owner and uploaders get its key, and only the owner \
             can make it private: ask them to run `canvid access set {video} --private`"
        );
        return Ok(());
    }
    set?;
    eprintln!(
        "made {video} private: a public video's key goes only to its owner and uploaders; give \
         viewers the key with `canvid access viewers add {video} PRINCIPAL`"
    );
    Ok(())
}

/// A cipher for `video`'s stored file, checking that the metadata's sizes are the encryption's
/// (a mismatch would only fail later, chunk by chunk).
pub fn cipher_for(
    video: Principal,
    key: &[u8; 32],
    enc: &Encryption,
    stored_size: u64,
    stored_chunk_size: u32,
) -> Result<VideoCipher> {
    if stored_size != enc.stored_size() || u64::from(stored_chunk_size) != enc.stored_chunk_size() {
        return Err(Error::Verify(format!(
            "{video} stores {stored_size} bytes in chunks of {stored_chunk_size}, which is not \
             the encrypted file its encryption record describes ({} in chunks of {})",
            enc.stored_size(),
            enc.stored_chunk_size()
        )));
    }
    VideoCipher::new(key, video, enc.clone())
        .map_err(|e| Error::Verify(format!("{video}'s encryption: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video() -> Principal {
        Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 7, 1, 1])
    }

    #[test]
    fn stored_chunks_are_the_cli_chunk_size() {
        let e = new_encryption(5_000_000, DEFAULT_KEY_NAME);
        assert_eq!(e.stored_chunk_size(), CHUNK_SIZE);
        assert!(e.validate(e.stored_size(), CHUNK_SIZE as u32).is_ok());
    }

    #[test]
    fn the_source_yields_whole_encrypted_chunks_and_decrypts_back() {
        let plain: Vec<u8> = (0..50u32).map(|i| i as u8).collect();
        let mut enc = new_encryption(50, DEFAULT_KEY_NAME);
        enc.plain_chunk_size = 20;
        let cipher = || VideoCipher::new(&[1; 32], video(), enc.clone()).unwrap();
        let source = EncryptedSource::new(plain.as_slice(), cipher());
        assert_eq!(source.size(), 50 + 3 * 28);
        let plan =
            crate::upload::plan(&source, enc.stored_chunk_size(), &crate::upload::NoProgress)
                .unwrap();
        assert_eq!(plan.chunk_count(), 3);
        let mut out = Vec::new();
        for i in 0..3 {
            let stored = source.read(plan.chunk_range(i)).unwrap();
            assert_eq!(
                crate::upload::sha256(&stored),
                plan.chunk_digests[i as usize]
            );
            out.extend(cipher().decrypt_chunk(i, &stored).unwrap());
        }
        assert_eq!(out, plain);
        // Not a whole chunk: refused, not misread.
        for bad in [0..47, 1..49, 48..95, 96..200, 134..172] {
            assert!(source.read(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_resumed_upload_keeps_its_declared_encryption() {
        let declared = Encryption {
            key_name: "test_key_1".into(),
            key_epoch: 3,
            ..new_encryption(10, DEFAULT_KEY_NAME)
        };
        assert_eq!(
            encryption_for(video(), Some(&declared), 10, None).unwrap(),
            declared
        );
        assert!(encryption_for(video(), Some(&declared), 10, Some("key_1")).is_err());
        assert!(encryption_for(video(), Some(&declared), 11, None).is_err());
        let fresh = encryption_for(video(), None, 10, Some("dfx_test_key")).unwrap();
        assert_eq!(
            (fresh.key_name.as_str(), fresh.key_epoch),
            ("dfx_test_key", 0)
        );
    }

    #[test]
    fn sizes_that_are_not_the_encryption_are_refused() {
        let e = new_encryption(10, DEFAULT_KEY_NAME);
        assert!(cipher_for(video(), &[0; 32], &e, e.stored_size(), CHUNK_SIZE as u32).is_ok());
        assert!(cipher_for(
            video(),
            &[0; 32],
            &e,
            e.stored_size() + 1,
            CHUNK_SIZE as u32
        )
        .is_err());
        assert!(cipher_for(video(), &[0; 32], &e, e.stored_size(), PLAIN_CHUNK_SIZE).is_err());
    }
}
