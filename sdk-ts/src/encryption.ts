// End-to-end encrypted videos, scheme `canvid-aes256gcm-v1` (docs/encryption.md; the Rust side is
// `canisters/types/src/encryption.rs`, byte for byte the same strings and sizes):
//
// * the video key: `video_key` returns the vetKey of input `"canvid-video-key" ‖ epoch` under
//   context `"canvid/video-key/v1"`, encrypted to a fresh transport key; it is decrypted and
//   verified here (`@dfinity/vetkeys`) and the AES-256 key derived as HKDF-SHA256(ikm = the
//   48-byte vetKey, salt = "", info = aesKeyInfo(canister, epoch));
// * stored chunk i = nonce (12) ‖ AES-256-GCM ciphertext ‖ tag (16), aad = chunkAad(canister,
//   enc, i), nonce = HMAC-SHA256(AES key bytes, "canvid-nonce-v1" ‖ aad ‖ SHA-256(plain_i))[..12]
//   (synthetic: encrypting the same chunk again gives the same bytes, so uploads resume).
//
// Everything runs on WebCrypto (`crypto.subtle`): Node >= 20, browsers (secure contexts) and
// service workers. The key delivery (`fetchVideoKey`, @dfinity/vetkeys) is in video-key.ts, so
// that the service worker's bundle carries only this file's code. The raw AES key bytes exist only while the two CryptoKeys (AES-GCM and the
// nonce's HMAC) are imported from them; both are non-extractable.
import { Principal } from '@icp-sdk/core/principal';
import type { Encryption as CandidEncryption } from './bindings/video.did.js';
import { concatBytes, sha256 } from './bytes.js';
import { DecryptionError, KeyVerificationError, UsageError } from './errors.js';

export { DecryptionError, KeyVerificationError };

/** The one scheme so far. */
export const SCHEME_AES256GCM_V1 = 'canvid-aes256gcm-v1';
/** AES-GCM nonce bytes stored in front of each chunk. */
export const NONCE_LEN = 12;
/** AES-GCM tag bytes stored after each chunk's ciphertext. */
export const TAG_LEN = 16;
/** A stored chunk is this much longer than its plaintext. */
export const CHUNK_OVERHEAD = NONCE_LEN + TAG_LEN;
/** The vetKD keys a video may be encrypted under (the IC's, and dfx/PocketIC's local one). */
export const KEY_NAMES = ['key_1', 'test_key_1', 'dfx_test_key'] as const;
/** The key `video_key` uses when neither the caller nor the upload names one. */
export const DEFAULT_KEY_NAME = 'key_1';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
/** Label of the synthetic nonce's HMAC message. */
export const NONCE_LABEL: Uint8Array = utf8('canvid-nonce-v1');
/** The vetKD context of video keys. */
export const VETKD_CONTEXT: Uint8Array = utf8('canvid/video-key/v1');

/** How a video's main file is encrypted (`VideoMetadata.encryption`), with numbers. */
export interface EncryptionInfo {
  scheme: string;
  keyName: string;
  keyEpoch: number;
  /** Size of the plaintext (the source file). */
  plainSize: number;
  /** Plaintext bytes per chunk; the stored chunk is `CHUNK_OVERHEAD` bytes longer. */
  plainChunkSize: number;
}

export function fromCandidEncryption(e: CandidEncryption): EncryptionInfo {
  return { scheme: e.scheme, keyName: e.key_name, keyEpoch: e.key_epoch, plainSize: Number(e.plain_size), plainChunkSize: e.plain_chunk_size };
}

export function toCandidEncryption(e: EncryptionInfo): CandidEncryption {
  return { scheme: e.scheme, key_name: e.keyName, key_epoch: e.keyEpoch, plain_size: BigInt(e.plainSize), plain_chunk_size: e.plainChunkSize };
}

/** Chunks of the plaintext (and of the stored file alike). */
export function encChunkCount(e: EncryptionInfo): number {
  return Math.ceil(e.plainSize / e.plainChunkSize);
}

/** Bytes per stored chunk (all but the last). */
export function storedChunkSize(e: EncryptionInfo): number {
  return e.plainChunkSize + CHUNK_OVERHEAD;
}

/** Size of the stored (encrypted) file. */
export function storedSize(e: EncryptionInfo): number {
  return e.plainSize + encChunkCount(e) * CHUNK_OVERHEAD;
}

/** Plaintext bytes of chunk `index`. */
export function plainLen(e: EncryptionInfo, index: number): number {
  return Math.max(0, Math.min(e.plainChunkSize, e.plainSize - index * e.plainChunkSize));
}

/** Checks what the Rust `Encryption::validate` checks that does not depend on a declared file. */
export function checkEncryption(e: EncryptionInfo): void {
  if (e.scheme !== SCHEME_AES256GCM_V1) throw new UsageError(`unknown encryption scheme ${JSON.stringify(e.scheme)} (this SDK knows ${SCHEME_AES256GCM_V1})`);
  if (!(KEY_NAMES as readonly string[]).includes(e.keyName)) throw new UsageError(`unknown vetKD key ${JSON.stringify(e.keyName)} (one of ${KEY_NAMES.join(', ')})`);
  if (!Number.isSafeInteger(e.plainSize) || e.plainSize < 1) throw new UsageError(`plainSize must be a positive integer, got ${e.plainSize}`);
  if (!Number.isInteger(e.plainChunkSize) || e.plainChunkSize < 1) throw new UsageError(`plainChunkSize must be a positive integer, got ${e.plainChunkSize}`);
  if (!Number.isInteger(e.keyEpoch) || e.keyEpoch < 0 || e.keyEpoch > 0xffff_ffff) throw new UsageError(`keyEpoch must be a u32, got ${e.keyEpoch}`);
}

function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}

function u64be(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

/** A canister id as its principal bytes. */
export function canisterBytes(canister: string | Principal | Uint8Array): Uint8Array {
  if (canister instanceof Uint8Array) return canister;
  return (typeof canister === 'string' ? Principal.fromText(canister) : canister).toUint8Array();
}

/** The vetKD input of the video key of `epoch`: `"canvid-video-key" ‖ epoch (u32 BE)`. */
export function vetkdInput(epoch: number): Uint8Array {
  return concatBytes([utf8('canvid-video-key'), u32be(epoch)]);
}

/** HKDF info of the AES key: `"canvid-aes256gcm-v1" ‖ len(canister) (u8) ‖ canister ‖ epoch (u32 BE)`. */
export function aesKeyInfo(canister: string | Principal | Uint8Array, epoch: number): Uint8Array {
  const id = canisterBytes(canister);
  return concatBytes([utf8(SCHEME_AES256GCM_V1), Uint8Array.of(id.length), id, u32be(epoch)]);
}

/**
 * Associated data of chunk `index`: `"canvid-chunk-v1" ‖ len(canister) (u8) ‖ canister ‖ index
 * (u32) ‖ chunk count (u32) ‖ plain_size (u64) ‖ plain_chunk_size (u32) ‖ key_epoch (u32)`, BE.
 */
export function chunkAad(canister: string | Principal | Uint8Array, e: EncryptionInfo, index: number): Uint8Array {
  const id = canisterBytes(canister);
  return concatBytes([
    utf8('canvid-chunk-v1'),
    Uint8Array.of(id.length),
    id,
    u32be(index),
    u32be(encChunkCount(e)),
    u64be(e.plainSize),
    u32be(e.plainChunkSize),
    u32be(e.keyEpoch),
  ]);
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new UsageError('WebCrypto (crypto.subtle) is not available: use Node >= 20, or a page served over https or localhost');
  return s;
}

const buf = (b: Uint8Array): Uint8Array<ArrayBuffer> => b as Uint8Array<ArrayBuffer>;

/**
 * A video's key, ready to use: the AES-256-GCM key (non-extractable; `decrypt`, and `encrypt`
 * when `nonceKey` is present) and what it belongs to. A `CryptoKey` survives `postMessage`
 * (structured clone), so a page can hand `aes` to its service worker without exposing the bytes.
 */
export interface VideoKeyMaterial {
  /** The video canister (the key's HKDF info and every chunk's AAD bind it). */
  canisterId: string;
  keyName: string;
  keyEpoch: number;
  /** AES-256-GCM. */
  aes: CryptoKey;
  /** HMAC-SHA256 keyed with the same 32 bytes: the synthetic nonces of encryption. Absent: decrypt only. */
  nonceKey?: CryptoKey;
}

/**
 * The AES key (and the nonce key when `forEncryption`) of a vetKey: HKDF-SHA256(ikm = the vetKey
 * bytes, salt = "", info = aesKeyInfo(canister, epoch), 32 bytes).
 */
export async function deriveVideoKey(
  vetKeyBytes: Uint8Array,
  canisterId: string,
  keyName: string,
  keyEpoch: number,
  forEncryption = true,
): Promise<VideoKeyMaterial> {
  const s = subtle();
  const ikm = await s.importKey('raw', buf(vetKeyBytes), 'HKDF', false, ['deriveBits']);
  const raw = new Uint8Array(
    await s.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(), info: buf(aesKeyInfo(canisterId, keyEpoch)) }, ikm, 256),
  );
  try {
    const aes = await s.importKey('raw', raw, { name: 'AES-GCM' }, false, forEncryption ? ['encrypt', 'decrypt'] : ['decrypt']);
    const nonceKey = forEncryption ? await s.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']) : undefined;
    return { canisterId, keyName, keyEpoch, aes, ...(nonceKey ? { nonceKey } : {}) };
  } finally {
    raw.fill(0);
  }
}

/** Encrypts plaintext chunk `index` into its stored form (nonce ‖ ciphertext ‖ tag). */
export async function encryptChunk(key: VideoKeyMaterial, e: EncryptionInfo, index: number, plain: Uint8Array): Promise<Uint8Array> {
  if (!key.nonceKey) throw new UsageError('this video key is for decryption only (derived without the nonce key)');
  const want = plainLen(e, index);
  if (plain.length !== want) throw new UsageError(`plaintext chunk ${index} is ${plain.length} bytes, expected ${want}`);
  const s = subtle();
  const aad = chunkAad(key.canisterId, e, index);
  const mac = new Uint8Array(await s.sign('HMAC', key.nonceKey, buf(concatBytes([NONCE_LABEL, aad, await sha256(plain)]))));
  const nonce = mac.subarray(0, NONCE_LEN);
  const ct = new Uint8Array(await s.encrypt({ name: 'AES-GCM', iv: buf(nonce), additionalData: buf(aad), tagLength: 128 }, key.aes, buf(plain)));
  return concatBytes([nonce, ct]);
}

/** Decrypts and authenticates stored chunk `index`; `DecryptionError` if it does not. */
export async function decryptChunk(
  key: VideoKeyMaterial | CryptoKey,
  canisterId: string | Principal | Uint8Array,
  e: EncryptionInfo,
  index: number,
  stored: Uint8Array,
): Promise<Uint8Array> {
  const want = plainLen(e, index) + CHUNK_OVERHEAD;
  if (index < 0 || index >= encChunkCount(e)) throw new DecryptionError(`chunk ${index} outside 0..${encChunkCount(e)}`, index);
  if (stored.length !== want) throw new DecryptionError(`stored chunk ${index} is ${stored.length} bytes, expected ${want}`, index);
  const aes = 'aes' in key ? key.aes : key;
  const aad = chunkAad(canisterId, e, index);
  try {
    return new Uint8Array(
      await subtle().decrypt(
        { name: 'AES-GCM', iv: buf(stored.subarray(0, NONCE_LEN)), additionalData: buf(aad), tagLength: 128 },
        aes,
        buf(stored.subarray(NONCE_LEN)),
      ),
    );
  } catch (err) {
    throw new DecryptionError(`chunk ${index} does not decrypt (wrong key, or changed bytes)`, index, { cause: err });
  }
}

/** Plaintext byte range `[start, end)` → the chunks covering it, `[first, last]`. */
export function coveringChunks(e: EncryptionInfo, start: number, end: number): [number, number] {
  if (!(start >= 0 && end > start && end <= e.plainSize)) throw new RangeError(`range [${start}, ${end}) outside 0..${e.plainSize}`);
  return [Math.floor(start / e.plainChunkSize), Math.floor((end - 1) / e.plainChunkSize)];
}

/** Byte range `[start, end)` of stored chunk `index` in the stored file. */
export function storedChunkRange(e: EncryptionInfo, index: number): [number, number] {
  const s = index * storedChunkSize(e);
  return [s, s + plainLen(e, index) + CHUNK_OVERHEAD];
}

// --- Reading -------------------------------------------------------------------------------------

/**
 * The plaintext of a stream of stored chunks (one per chunk, in order, as `downloadStream`
 * delivers them): each is decrypted and authenticated before it is passed on; the stream errors
 * with `DecryptionError` on a chunk that does not decrypt, or if it ends before the last chunk.
 */
export function decryptStream(stored: ReadableStream<Uint8Array>, key: VideoKeyMaterial | CryptoKey, canisterId: string, e: EncryptionInfo): ReadableStream<Uint8Array> {
  const reader = stored.getReader();
  let index = 0;
  const count = encChunkCount(e);
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) {
          if (index !== count) throw new DecryptionError(`the stored file ended after ${index} of ${count} chunks`, index);
          controller.close();
          return;
        }
        controller.enqueue(await decryptChunk(key, canisterId, e, index, value));
        index++;
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * Plaintext bytes `[start, end)` of an encrypted video: fetches (`getChunk(i)`, the stored chunk
 * i) and decrypts only the chunks covering the range, at most `concurrency` at once.
 */
export async function readDecryptedRange(
  getChunk: (index: number) => Promise<Uint8Array>,
  key: VideoKeyMaterial | CryptoKey,
  canisterId: string,
  e: EncryptionInfo,
  start: number,
  end: number,
  concurrency = 4,
): Promise<Uint8Array> {
  const [first, last] = coveringChunks(e, start, end);
  const parts: Uint8Array[] = new Array(last - first + 1);
  let next = first;
  const worker = async () => {
    while (next <= last) {
      const i = next++;
      parts[i - first] = await decryptChunk(key, canisterId, e, i, await getChunk(i));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, last - first + 1) }, worker));
  const all = concatBytes(parts);
  const off = start - first * e.plainChunkSize;
  return all.slice(off, off + (end - start));
}
