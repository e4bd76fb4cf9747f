import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { chunkCount, chunkRange, rechunk, toSource, MAX_CHUNK_SIZE } from '../../src/chunking.js';
import { fileDigest, sha256, toHex, fromHex } from '../../src/bytes.js';
import { UsageError } from '../../src/errors.js';
import { nodeFileDigest, nodeSha256, randomBytes } from '../support/fake.js';

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out = [];
  for await (const c of it) out.push(c);
  return out;
}

async function* pieces(bytes: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let off = 0;
  let k = 0;
  while (off < bytes.length) {
    const n = sizes[k++ % sizes.length]!;
    yield bytes.subarray(off, off + n);
    off += n;
  }
}

test('grid: chunk count and ranges follow ceil(size / chunkSize)', () => {
  assert.equal(chunkCount(1, 1), 1);
  assert.equal(chunkCount(10, 3), 4);
  assert.equal(chunkCount(9, 3), 3);
  assert.equal(chunkCount(4_000_001, MAX_CHUNK_SIZE), 3);
  assert.deepEqual(chunkRange(10, 3, 0), [0, 3]);
  assert.deepEqual(chunkRange(10, 3, 3), [9, 10]);
  assert.throws(() => chunkRange(10, 3, 4), RangeError);
  assert.throws(() => chunkCount(0, 3), UsageError);
  assert.throws(() => chunkCount(10, MAX_CHUNK_SIZE + 1), UsageError);
  assert.throws(() => chunkCount(10, 0), UsageError);
});

test('rechunk cuts arbitrary pieces into the exact grid', async () => {
  const data = randomBytes(10_007, 3);
  for (const sizes of [[1], [7, 13], [4096], [10_007], [3000, 1, 5000]]) {
    const chunks = await collect(rechunk(pieces(data, sizes), data.length, 1000));
    assert.equal(chunks.length, 11);
    assert.ok(chunks.slice(0, 10).every((c) => c.length === 1000));
    assert.equal(chunks[10]!.length, 7);
    assert.deepEqual(Buffer.concat(chunks), Buffer.from(data));
  }
});

test('rechunk refuses a stream shorter or longer than declared (no truncation, no padding)', async () => {
  const data = randomBytes(5000);
  await assert.rejects(collect(rechunk(pieces(data, [999]), 5001, 1000)), (e: unknown) => e instanceof UsageError && /ended after 5000/.test(e.message));
  await assert.rejects(collect(rechunk(pieces(data, [999]), 4999, 1000)), (e: unknown) => e instanceof UsageError && /more than/.test(e.message));
});

test('toSource: blobs and bytes are random access, streams with a size are sequential', async () => {
  const data = randomBytes(3000);
  const fromBlob = await toSource(new Blob([data]));
  assert.equal(fromBlob.kind, 'random');
  assert.equal(fromBlob.size, 3000);
  assert.deepEqual(await (fromBlob as { read: (s: number, e: number) => Promise<Uint8Array> }).read(100, 200), data.subarray(100, 200));
  assert.equal((await toSource(data)).kind, 'random');
  assert.equal((await toSource(data.buffer as ArrayBuffer)).size, 3000);

  const node = await toSource(Readable.from([Buffer.from(data.subarray(0, 1000)), Buffer.from(data.subarray(1000))]), 3000);
  assert.equal(node.kind, 'sequential');
  const web = await toSource(new Blob([data]).stream(), 3000);
  assert.equal(web.kind, 'sequential');
  const webChunks = await collect(rechunk((web as { pieces: AsyncIterable<Uint8Array> }).pieces, 3000, 1024));
  assert.deepEqual(Buffer.concat(webChunks), Buffer.from(data));

  // Without a size a stream is buffered and becomes random access.
  const buffered = await toSource(Readable.from([Buffer.from(data)]));
  assert.equal(buffered.kind, 'random');
  assert.equal(buffered.size, 3000);
  await assert.rejects(toSource(Readable.from(['text'])), UsageError);
  await assert.rejects(toSource(42 as unknown as Uint8Array), UsageError);
});

test('sha256 (WebCrypto) matches node:crypto, also on views into larger buffers', async () => {
  const big = randomBytes(100_000, 9);
  const view = big.subarray(12_345, 67_890);
  assert.deepEqual(await sha256(view), nodeSha256(view));
  assert.equal(toHex(await sha256(new Uint8Array())), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('file digest = SHA-256 over the concatenated chunk digests', async () => {
  const data = randomBytes(25_000, 5);
  const chunkSize = 4096;
  const digests = [];
  for (let s = 0; s < data.length; s += chunkSize) digests.push(await sha256(data.subarray(s, s + chunkSize)));
  assert.deepEqual(await fileDigest(digests), nodeFileDigest(data, chunkSize));
  // It is not the SHA-256 of the file, and it depends on the chunk size.
  assert.notDeepEqual(await fileDigest(digests), nodeSha256(data));
  assert.notDeepEqual(nodeFileDigest(data, 4096), nodeFileDigest(data, 8192));
  await assert.rejects(fileDigest([new Uint8Array(31)]), TypeError);
  assert.deepEqual(fromHex('00ff10'), new Uint8Array([0, 255, 16]));
  assert.throws(() => fromHex('abc'), TypeError);
});
