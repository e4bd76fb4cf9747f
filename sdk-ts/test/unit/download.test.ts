import { test } from 'node:test';
import assert from 'node:assert/strict';
import { downloadAll, downloadStream } from '../../src/download.js';
import { uploadVideo } from '../../src/upload.js';
import { AbortError, IntegrityError, NetworkError, NotReadyError } from '../../src/errors.js';
import { FAST_RETRY, FakeNetwork, FakeVideo, randomBytes } from '../support/fake.js';

async function uploaded(size: number, chunkSize = 1000) {
  const net = new FakeNetwork();
  const data = randomBytes(size, size);
  const r = await uploadVideo(net, data, { title: 'd' }, { chunkSize, retry: FAST_RETRY });
  return { net, data, r, v: net.video(r.videoId) };
}

test('download returns the exact bytes, chunk by chunk, with bounded prefetch', async () => {
  const { data, r, v } = await uploaded(10_001);
  v.latencyMs = 2;
  v.calls = [];
  v.maxInFlight = 0;
  const chunks: number[] = [];
  const stream = downloadStream(r.videoId, v, { prefetch: 3, retry: FAST_RETRY });
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value.length);
  }
  assert.deepEqual(chunks, [...Array(10).fill(1000), 1]);
  assert.ok(v.maxInFlight <= 3, `max in flight ${v.maxInFlight}`);
  assert.deepEqual(Buffer.from(await downloadAll(r.videoId, v, { retry: FAST_RETRY })), Buffer.from(data));
});

test('a corrupt chunk fails the file digest check before the stream closes', async () => {
  const { r, v } = await uploaded(5000);
  v.corruptChunk = 3;
  await assert.rejects(downloadAll(r.videoId, v, { retry: FAST_RETRY }), (e: unknown) => e instanceof IntegrityError && e.index === undefined && /file digest/.test(e.message));
});

test('with the chunk digests, a corrupt chunk is caught before it is delivered', async () => {
  const { r, v } = await uploaded(5000);
  v.corruptChunk = 2;
  const delivered: number[] = [];
  const reader = downloadStream(r.videoId, v, { expectedChunkDigests: r.chunkDigests, retry: FAST_RETRY }).getReader();
  await assert.rejects(
    (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        delivered.push(value.length);
      }
    })(),
    (e: unknown) => e instanceof IntegrityError && e.index === 2,
  );
  assert.equal(delivered.length, 2);
});

test('a chunk of the wrong length is an IntegrityError (no silent truncation)', async () => {
  const { r, v } = await uploaded(3000);
  const get = v.getChunk.bind(v);
  v.getChunk = async (i) => (i === 1 ? (await get(i)).subarray(0, 999) : get(i));
  await assert.rejects(downloadAll(r.videoId, v, { retry: FAST_RETRY }), (e: unknown) => e instanceof IntegrityError && e.index === 1);
});

test('transient read failures are retried; a video that is not Ready is NotReady', async () => {
  const { data, r, v } = await uploaded(4000);
  v.failNext('get_chunk', new NetworkError('reset'), new NetworkError('503', { status: 503 }));
  assert.deepEqual(Buffer.from(await downloadAll(r.videoId, v, { retry: FAST_RETRY })), Buffer.from(data));
  const empty = new FakeVideo('aaaaa-aa');
  await assert.rejects(downloadAll('aaaaa-aa', empty, { retry: FAST_RETRY }), NotReadyError);
});

test('abort stops a download', async () => {
  const { r, v } = await uploaded(20_000);
  v.latencyMs = 5;
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 12);
  await assert.rejects(downloadAll(r.videoId, v, { signal: ac.signal, prefetch: 1, retry: FAST_RETRY }), AbortError);
});
