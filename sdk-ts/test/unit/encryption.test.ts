// Scheme canvid-aes256gcm-v1 in WebCrypto (src/encryption.ts): the byte strings as the Rust crate
// documents them, an independent re-computation with node:crypto (HKDF, HMAC, AES-GCM), the
// test vectors made by the Rust crate (sdk-ts/test/fixtures/encryption-vectors.json), tamper
// detection, encrypted upload / resume / decrypted reads over the in-memory fake, and
// fetchVideoKey's checks and refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createHash, createHmac, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Principal } from '@icp-sdk/core/principal';
import { TransportSecretKey } from '@dfinity/vetkeys';
import {
  CHUNK_OVERHEAD,
  DecryptionError,
  type EncryptionInfo,
  KeyVerificationError,
  SCHEME_AES256GCM_V1,
  VETKD_CONTEXT,
  aesKeyInfo,
  chunkAad,
  decryptChunk,
  decryptStream,
  deriveVideoKey,
  encryptChunk,
  plainLen,
  readDecryptedRange,
  storedSize,
  vetkdInput,
} from '../../src/encryption.js';
import { AbortError, NotAuthorizedError, BusyError, UsageError } from '../../src/errors.js';
import { uploadVideo } from '../../src/upload.js';
import type { VideoKeyMaterial } from '../../src/encryption.js';
import { type FetchVideoKeyOptions, type VideoKeyCall, fetchVideoKey } from '../../src/video-key.js';
import { FAST_RETRY, FakeNetwork, randomBytes } from '../support/fake.js';

const enc = (plainSize: number, plainChunkSize: number, keyEpoch = 0): EncryptionInfo => ({
  scheme: SCHEME_AES256GCM_V1,
  keyName: 'key_1',
  keyEpoch,
  plainSize,
  plainChunkSize,
});
const CANISTER = 'rrkah-fqaaa-aaaaa-aaaaq-cai';
const VETKEY = randomBytes(48, 77);

test('byte strings are exactly the Rust crate documented ones', () => {
  const c = new Uint8Array([1, 2, 3]);
  assert.deepEqual(Buffer.from(vetkdInput(7)), Buffer.from('canvid-video-key\0\0\0\x07', 'latin1'));
  assert.deepEqual(Buffer.from(aesKeyInfo(c, 1)), Buffer.from('canvid-aes256gcm-v1\x03\x01\x02\x03\0\0\0\x01', 'latin1'));
  const want = Buffer.concat([
    Buffer.from('canvid-chunk-v1\x03\x01\x02\x03', 'latin1'),
    Buffer.from([0, 0, 0, 2, 0, 0, 0, 3]),
    Buffer.from([0, 0, 0, 0, 0, 0, 0, 10]),
    Buffer.from([0, 0, 0, 4, 0, 0, 0, 0]),
  ]);
  assert.deepEqual(Buffer.from(chunkAad(c, enc(10, 4), 2)), want);
  assert.equal(Buffer.from(VETKD_CONTEXT).toString(), 'canvid/video-key/v1');
  assert.equal(storedSize(enc(10, 4)), 10 + 3 * 28);
  assert.deepEqual([0, 1, 2, 3].map((i) => plainLen(enc(10, 4), i)), [4, 4, 2, 0]);
  // A 10-byte canister id (as on the IC) in the AAD and info.
  assert.equal(aesKeyInfo(CANISTER, 0).length, 19 + 1 + 10 + 4);
});

test('encryptChunk is the documented composition (checked with node:crypto) and deterministic', async () => {
  const e = enc(10_000, 4096, 3);
  const key = await deriveVideoKey(VETKEY, CANISTER, 'key_1', 3);
  const plain = randomBytes(10_000, 5);
  const rawKey = Buffer.from(hkdfSync('sha256', VETKEY, new Uint8Array(), aesKeyInfo(CANISTER, 3), 32));
  for (let i = 0; i < 3; i++) {
    const p = plain.subarray(i * 4096, i * 4096 + plainLen(e, i));
    const stored = await encryptChunk(key, e, i, p);
    assert.equal(stored.length, p.length + CHUNK_OVERHEAD);
    const aad = chunkAad(CANISTER, e, i);
    const nonce = createHmac('sha256', rawKey).update(Buffer.from('canvid-nonce-v1')).update(aad).update(createHash('sha256').update(p).digest()).digest().subarray(0, 12);
    assert.deepEqual(Buffer.from(stored.subarray(0, 12)), nonce);
    const d = createDecipheriv('aes-256-gcm', rawKey, nonce);
    d.setAAD(aad);
    d.setAuthTag(stored.subarray(stored.length - 16));
    const back = Buffer.concat([d.update(stored.subarray(12, stored.length - 16)), d.final()]);
    assert.deepEqual(back, Buffer.from(p));
    // Synthetic nonce: the same chunk encrypts to the same bytes; other bytes get another nonce.
    assert.deepEqual(await encryptChunk(key, e, i, p), stored);
    const other = p.slice();
    other[0]! ^= 1;
    assert.notDeepEqual(Buffer.from((await encryptChunk(key, e, i, other)).subarray(0, 12)), nonce);
    assert.deepEqual(await decryptChunk(key, CANISTER, e, i, stored), p);
  }
});

test('decryption fails on a changed byte, another index, another canister, another grid or key', async () => {
  const e = enc(100, 40);
  const key = await deriveVideoKey(VETKEY, CANISTER, 'key_1', 0);
  const p0 = randomBytes(40, 1);
  const c0 = await encryptChunk(key, e, 0, p0);
  const flipped = c0.slice();
  flipped[20]! ^= 0x80;
  await assert.rejects(decryptChunk(key, CANISTER, e, 0, flipped), DecryptionError);
  await assert.rejects(decryptChunk(key, CANISTER, e, 1, c0), DecryptionError);
  await assert.rejects(decryptChunk(key, 'ryjl3-tyaaa-aaaaa-aaaba-cai', e, 0, c0), DecryptionError);
  await assert.rejects(decryptChunk(key, CANISTER, enc(120, 40), 0, c0), DecryptionError);
  await assert.rejects(decryptChunk(key, CANISTER, e, 0, c0.subarray(0, 60)), DecryptionError);
  const otherKey = await deriveVideoKey(randomBytes(48, 78), CANISTER, 'key_1', 0);
  await assert.rejects(decryptChunk(otherKey, CANISTER, e, 0, c0), DecryptionError);
  const otherEpoch = await deriveVideoKey(VETKEY, CANISTER, 'key_1', 1);
  await assert.rejects(decryptChunk(otherEpoch, CANISTER, e, 0, c0), DecryptionError);
  // A decrypt-only key cannot encrypt.
  const ro = await deriveVideoKey(VETKEY, CANISTER, 'key_1', 0, false);
  await assert.rejects(encryptChunk(ro, e, 0, p0), UsageError);
  assert.deepEqual(await decryptChunk(ro.aes, CANISTER, e, 0, c0), p0);
});

// Written by the Rust crate canvid-encryption (client/encryption/tests/vectors.rs).
const VECTORS = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/encryption-vectors.json');

test('the Rust test vectors (test/fixtures/encryption-vectors.json): byte for byte', async () => {
  const doc = JSON.parse(readFileSync(VECTORS, 'utf8')) as { cases: Array<Record<string, any>> };
  assert.ok(doc.cases.length >= 2);
  const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
  const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  for (const v of doc.cases) {
    const c = v.encryption;
    const e: EncryptionInfo = { scheme: c.scheme, keyName: c.key_name, keyEpoch: c.key_epoch, plainSize: Number(c.plain_size), plainChunkSize: c.plain_chunk_size };
    const what = `vector "${v.name}"`;
    assert.equal(toHex(vetkdInput(e.keyEpoch)), v.vetkd_input, what);
    assert.equal(toHex(aesKeyInfo(v.canister, e.keyEpoch)), v.hkdf_info, what);
    assert.equal(toHex(chunkAad(v.canister, e, 0)), v.chunk0_aad, what);
    // The AES key itself (non-extractable in the SDK): HKDF recomputed with node:crypto, and
    // encrypting with the SDK's key matches the stored bytes below.
    assert.equal(Buffer.from(hkdfSync('sha256', hex(v.vetkey), new Uint8Array(), hex(v.hkdf_info), 32)).toString('hex'), v.aes_key, what);
    const key = await deriveVideoKey(hex(v.vetkey), v.canister, e.keyName, e.keyEpoch);
    const plain = hex(v.plaintext);
    assert.equal(plain.length, e.plainSize, what);
    const out: Uint8Array[] = [];
    for (let i = 0; i * e.plainChunkSize < e.plainSize; i++) {
      out.push(await encryptChunk(key, e, i, plain.subarray(i * e.plainChunkSize, i * e.plainChunkSize + plainLen(e, i))));
    }
    assert.equal(toHex(out[0]!.subarray(0, 12)), v.chunk0_nonce, what);
    assert.equal(toHex(Buffer.concat(out)), v.stored, what);
    assert.equal(storedSize(e), hex(v.stored).length, what);
    // And the stored bytes decrypt back, chunk by chunk.
    const stored = hex(v.stored);
    for (let i = 0; i < out.length; i++) {
      const s0 = i * (e.plainChunkSize + CHUNK_OVERHEAD);
      const chunk = stored.subarray(s0, s0 + plainLen(e, i) + CHUNK_OVERHEAD);
      assert.deepEqual(await decryptChunk(key, v.canister, e, i, chunk), plain.subarray(i * e.plainChunkSize, i * e.plainChunkSize + plainLen(e, i)), what);
    }
  }
});

/** The fake network with video keys derived from one fixed "vetKey" per canister. */
class KeyedNetwork extends FakeNetwork {
  keyCalls = 0;
  async videoKey(id: string, o: FetchVideoKeyOptions): Promise<VideoKeyMaterial> {
    this.keyCalls++;
    return deriveVideoKey(VETKEY, id, o.keyName ?? 'key_1', o.keyEpoch ?? 0, o.forEncryption);
  }
}

async function decryptAll(net: KeyedNetwork, id: string, e: EncryptionInfo): Promise<Uint8Array> {
  const key = await net.videoKey(id, { keyName: e.keyName, keyEpoch: e.keyEpoch });
  const stored = net.video(id).bytes();
  const size = e.plainChunkSize + CHUNK_OVERHEAD;
  const chunks: Uint8Array[] = [];
  for (let i = 0; i * size < stored.length; i++) chunks.push(stored.subarray(i * size, (i + 1) * size));
  const s = decryptStream(new ReadableStream({ start(c) { chunks.forEach((x) => c.enqueue(x)); c.close(); } }), key, id, e);
  return new Uint8Array(await new Response(s).arrayBuffer());
}

test('encrypted upload: declares the encryption, stores and hashes ciphertext that decrypts to the source', async () => {
  const net = new KeyedNetwork();
  const data = randomBytes(10_500, 11);
  const r = await uploadVideo(net, new Blob([data]), { title: 'secret' }, { chunkSize: 1028, encrypt: { keyName: 'dfx_test_key' }, retry: FAST_RETRY });
  const v = net.video(r.videoId);
  assert.ok(v.ready);
  const e = r.encryption!;
  assert.deepEqual(e, { scheme: SCHEME_AES256GCM_V1, keyName: 'dfx_test_key', keyEpoch: 0, plainSize: 10_500, plainChunkSize: 1000 });
  assert.deepEqual(v.spec!.encryption, [{ scheme: SCHEME_AES256GCM_V1, key_name: 'dfx_test_key', key_epoch: 0, plain_size: 10_500n, plain_chunk_size: 1000 }]);
  assert.equal(Number(v.spec!.total_size), 10_500 + 11 * 28);
  assert.equal(net.created[0]!.declaredSize, 10_500 + 11 * 28);
  const stored = v.bytes();
  assert.equal(stored.length, 10_500 + 11 * 28);
  // No plaintext in the clear: no 32-byte window of the source appears in what is stored.
  const hay = Buffer.from(stored);
  for (let off = 0; off + 32 <= data.length; off += 500) assert.equal(hay.indexOf(data.subarray(off, off + 32)), -1);
  assert.deepEqual(await decryptAll(net, r.videoId, e), data);
  // A byte changed in storage fails the decrypted read.
  v.chunks.get(0)![100]! ^= 1;
  await assert.rejects(decryptAll(net, r.videoId, e), DecryptionError);
});

test('encrypted upload from a stream, and a resumed encrypted upload sends only what is missing', async () => {
  const net = new KeyedNetwork();
  const data = randomBytes(20 * 500 + 7, 12);
  async function* pieces() {
    for (let o = 0; o < data.length; o += 333) yield data.subarray(o, o + 333);
  }
  const s = await uploadVideo(net, pieces(), { title: 'stream' }, { size: data.length, chunkSize: 528, encrypt: true, retry: FAST_RETRY });
  assert.deepEqual(await decryptAll(net, s.videoId, s.encryption!), data);

  const ac = new AbortController();
  let id = '';
  let puts = 0;
  let aborted: AbortError | undefined;
  await assert.rejects(
    uploadVideo(net, new Blob([data]), { title: 'resume' }, {
      chunkSize: 528,
      encrypt: true,
      concurrency: 2,
      signal: ac.signal,
      retry: FAST_RETRY,
      onCreated: (vid) => {
        id = vid;
        net.video(vid).onPut = () => {
          if (++puts === 8) ac.abort(new Error('stop'));
        };
      },
    }),
    (e: unknown) => {
      aborted = e as AbortError;
      return e instanceof AbortError && e.videoId === id;
    },
  );
  await aborted!.settled;
  const v = net.video(id);
  v.onPut = undefined;
  const had = v.chunks.size;
  assert.ok(had >= 7 && had < 21);
  // Resuming without `encrypt` is refused rather than mixing plaintext into the ciphertext.
  await assert.rejects(uploadVideo(net, new Blob([data]), { title: 'x' }, { resume: id, retry: FAST_RETRY }), UsageError);
  v.calls = [];
  const r = await uploadVideo(net, new Blob([data]), { title: 'x' }, { resume: id, encrypt: true, retry: FAST_RETRY });
  assert.equal(r.chunksSkipped, had);
  assert.equal(v.calls.filter((c) => c.method === 'put_chunk').length, 21 - had);
  assert.deepEqual(await decryptAll(net, id, r.encryption!), data);
  // Resuming the finished video with the same file sends nothing (the ciphertext digests match);
  // another file of the same size is refused.
  v.calls = [];
  const again = await uploadVideo(net, new Blob([data]), { title: 'x' }, { resume: id, encrypt: true, retry: FAST_RETRY });
  assert.equal(again.chunksSkipped, 21);
  assert.equal(v.calls.filter((c) => c.method === 'put_chunk').length, 0);
  await assert.rejects(uploadVideo(net, new Blob([randomBytes(data.length, 99)]), { title: 'x' }, { resume: id, encrypt: true, retry: FAST_RETRY }), /already Ready with different content/);
  // The same plaintext in another video (another canister: other key and AAD) is other ciphertext.
  assert.notDeepEqual(Buffer.from(net.video(id).bytes()), Buffer.from(net.video(s.videoId).bytes()));
});

test('readDecryptedRange fetches only the covering chunks and returns the exact plaintext bytes', async () => {
  const e = enc(5000, 700);
  const key = await deriveVideoKey(VETKEY, CANISTER, 'key_1', 0);
  const data = randomBytes(5000, 13);
  const stored: Uint8Array[] = [];
  for (let i = 0; i < 8; i++) stored.push(await encryptChunk(key, e, i, data.subarray(i * 700, i * 700 + plainLen(e, i))));
  const asked: number[] = [];
  const get = async (i: number) => {
    asked.push(i);
    return stored[i]!;
  };
  assert.deepEqual(await readDecryptedRange(get, key, CANISTER, e, 1390, 2801), data.subarray(1390, 2801));
  assert.deepEqual(asked.sort(), [1, 2, 3, 4]);
  asked.length = 0;
  assert.deepEqual(await readDecryptedRange(get, key, CANISTER, e, 4999, 5000), data.subarray(4999));
  assert.deepEqual(asked, [7]);
  await assert.rejects(readDecryptedRange(get, key, CANISTER, e, 0, 5001), RangeError);
});

test('fetchVideoKey: refusals are typed, answers that do not verify are KeyVerificationError', async () => {
  const refuse = (err: object): VideoKeyCall => async () => ({ Err: err as never });
  await assert.rejects(fetchVideoKey(refuse({ NotAuthorized: { caller: Principal.anonymous(), reason: 'not a viewer' } }), CANISTER), NotAuthorizedError);
  await assert.rejects(fetchVideoKey(refuse({ Busy: { reason: 'rate limited' } }), CANISTER), BusyError);

  let sentTpk: Uint8Array | undefined;
  const answer = (patch: Record<string, unknown>): VideoKeyCall => async (args) => {
    sentTpk = args.transport_public_key;
    return {
      Ok: {
        encrypted_key: randomBytes(192, 1),
        public_key: randomBytes(96, 2),
        key_name: 'key_1',
        key_epoch: 0,
        context: VETKD_CONTEXT,
        input: vetkdInput(0),
        ...patch,
      } as never,
    };
  };
  await assert.rejects(fetchVideoKey(answer({ context: new TextEncoder().encode('other') }), CANISTER), /context/);
  await assert.rejects(fetchVideoKey(answer({ input: vetkdInput(1) }), CANISTER), /input/);
  await assert.rejects(fetchVideoKey(answer({ key_epoch: 2, input: vetkdInput(2) }), CANISTER, { keyEpoch: 0 }), /epoch/);
  await assert.rejects(fetchVideoKey(answer({}), CANISTER), KeyVerificationError); // garbage key bytes
  // The transport key sent is a fresh 48-byte G1 point (a different one per call).
  const first = sentTpk!;
  await assert.rejects(fetchVideoKey(answer({}), CANISTER), KeyVerificationError);
  assert.equal(first.length, 48);
  assert.notDeepEqual(Buffer.from(first), Buffer.from(sentTpk!));
  assert.equal(TransportSecretKey.random().publicKeyBytes().length, 48);
});
