import { test } from 'node:test';
import assert from 'node:assert/strict';
import { downloadAll, downloadStream, toDigestPage, type DownloadOptions } from '../../src/download.js';
import { uploadVideo } from '../../src/upload.js';
import { AbortError, ChunkOutOfRangeError, IntegrityError, NetworkError, NotReadyError } from '../../src/errors.js';
import { fileDigest } from '../../src/bytes.js';
import { FAST_RETRY, FakeNetwork, FakeVideo, nodeSha256, randomBytes } from '../support/fake.js';

async function uploaded(size: number, chunkSize = 1000) {
  const net = new FakeNetwork();
  const data = randomBytes(size, size);
  const r = await uploadVideo(net, data, { title: 'd' }, { chunkSize, retry: FAST_RETRY });
  const v = net.video(r.videoId);
  v.calls = [];
  return { net, data, r, v };
}

/** Reads the stream to its end or its error; returns what was delivered and how it ended. */
async function consume(stream: ReadableStream<Uint8Array>): Promise<{ delivered: Uint8Array[]; error?: unknown }> {
  const reader = stream.getReader();
  const delivered: Uint8Array[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { delivered };
      delivered.push(value);
    }
  } catch (error) {
    return { delivered, error };
  }
}

const calls = (v: FakeVideo, method: string) => v.calls.filter((c) => c.method === method).map((c) => c.index);

function download(v: FakeVideo, id: string, options: DownloadOptions = {}) {
  return consume(downloadStream(id, v, { retry: FAST_RETRY, ...options }));
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
  assert.ok(v.maxInFlight <= 3, `max in flight ${v.maxInFlight}`); // the one digest page came first
  assert.ok(calls(v, 'get_chunk').length === 11);
  assert.deepEqual(calls(v, 'chunk_digests'), [0], 'one page of digests for 11 chunks');
  assert.deepEqual(Buffer.from(await downloadAll(r.videoId, v, { retry: FAST_RETRY })), Buffer.from(data));
});

test('by default a corrupt chunk is caught before it is delivered (the canister\'s chunk_digests)', async () => {
  const { r, v } = await uploaded(5000);
  v.corruptChunk = 3;
  const { delivered, error } = await download(v, r.videoId);
  assert.ok(error instanceof IntegrityError, `got ${String(error)}`);
  assert.equal(error.index, 3);
  assert.match(error.message, /chunk_digests/);
  assert.deepEqual(error.expected, r.chunkDigests[3]);
  // The consumer got chunks 0..2, all intact, and never the corrupt one.
  assert.equal(delivered.length, 3);
  delivered.forEach((c, i) => assert.deepEqual(nodeSha256(c), r.chunkDigests[i]));
});

test('skipVerification neither asks for digests nor catches a corrupt chunk', async () => {
  const { r, v } = await uploaded(5000);
  v.corruptChunk = 3;
  const { delivered, error } = await download(v, r.videoId, { skipVerification: true });
  assert.equal(error, undefined);
  assert.equal(delivered.length, 5);
  assert.notDeepEqual(nodeSha256(delivered[3]!), r.chunkDigests[3]);
  assert.deepEqual(calls(v, 'chunk_digests'), []);
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
    (e: unknown) => e instanceof IntegrityError && e.index === 2 && /expectedChunkDigests/.test(e.message),
  );
  assert.equal(delivered.length, 2);
  // The caller's digests win: the canister's are not asked for.
  assert.deepEqual(calls(v, 'chunk_digests'), []);
});

test('expectedChunkDigests that do not combine into the published file digest fail before any chunk is fetched', async () => {
  const { r, v } = await uploaded(5000);
  const wrong = r.chunkDigests.map((d) => d.slice());
  wrong[4]![0] ^= 1;
  const { delivered, error } = await download(v, r.videoId, { expectedChunkDigests: wrong });
  assert.ok(error instanceof IntegrityError && error.index === undefined && /expectedChunkDigests combine/.test(error.message), String(error));
  assert.equal(delivered.length, 0);
  assert.deepEqual(calls(v, 'get_chunk'), []);
});

test('a canister digest list inconsistent with the file digest fails before anything is delivered (one page)', async () => {
  const { r, v } = await uploaded(5000);
  // Chunk 2 and its listed digest are forged consistently: only the file digest can tell.
  v.forgedChunk = 2;
  const { delivered, error } = await download(v, r.videoId);
  assert.ok(error instanceof IntegrityError && error.index === undefined, String(error));
  assert.match(error.message, /chunk digests combine to [0-9a-f]{64}, not its published file digest/);
  assert.deepEqual(error.expected, r.fileDigest);
  assert.equal(delivered.length, 0);
});

test('an inconsistent digest list spread over pages fails when its last page arrives, before the stream closes', async () => {
  const { r, v } = await uploaded(10_000); // 10 chunks
  v.digestPage = 3;
  v.forgedChunk = 1;
  const { delivered, error } = await download(v, r.videoId, { prefetch: 2 });
  assert.ok(error instanceof IntegrityError && /combine/.test(error.message), String(error));
  assert.ok(delivered.length < 10, `delivered ${delivered.length} chunks`);
  assert.deepEqual(calls(v, 'chunk_digests'), [0, 3, 6, 9]);
});

test('a Ready video with a missing (null) or wrong-length listed digest is an IntegrityError', async () => {
  for (const [bad, pattern] of [
    [[] as [], /no digest for chunk 4/],
    [[new Uint8Array(31)] as [Uint8Array], /chunk 4 is 31 bytes, not 32/],
  ] as const) {
    const { r, v } = await uploaded(10_000);
    v.digestPage = 3;
    v.digestOverride.set(4, bad);
    const { delivered, error } = await download(v, r.videoId, { prefetch: 1 });
    assert.ok(error instanceof IntegrityError, String(error));
    assert.equal(error.index, 4);
    assert.match(error.message, pattern);
    assert.ok(delivered.length <= 3, `delivered ${delivered.length}`); // chunk 4's page failed: nothing past it
  }
});

test('digests are fetched page by page as the download advances (retried like chunks)', async () => {
  const { data, r, v } = await uploaded(10_001); // 11 chunks
  v.digestPage = 3;
  v.failNext('chunk_digests', new NetworkError('reset'), new NetworkError('503', { status: 503 }));
  const pagesAtChunk: number[] = [];
  const { delivered, error } = await download(v, r.videoId, {
    prefetch: 1,
    onProgress: (p) => pagesAtChunk.push(new Set(calls(v, 'chunk_digests')).size),
  });
  assert.equal(error, undefined);
  assert.equal(Buffer.compare(Buffer.concat(delivered), Buffer.from(data)), 0);
  // Two failed attempts at page 0, then each page once, in order.
  assert.deepEqual(calls(v, 'chunk_digests'), [0, 0, 0, 3, 6, 9]);
  // Lazily: one page known when the first chunk is delivered, never more than one page ahead.
  assert.equal(pagesAtChunk[0], 1);
  pagesAtChunk.forEach((pages, k) => assert.ok(pages <= Math.floor((k + 1) / 3) + 2, `${pages} pages after chunk ${k}`));
  assert.equal(pagesAtChunk[pagesAtChunk.length - 1], 4);
});

test('toDigestPage: the page must line up with the request; nulls are allowed while uploading', async () => {
  const v = new FakeVideo('aaaaa-aa');
  const data = randomBytes(2500, 9);
  await v.beginUpload({ mime_type: 'video/mp4', chunk_digests: [], total_size: 2500n, chunk_size: 1000, duration_ms: [], file_digest: [], path: [], rendition: [], encryption: [] });
  await v.putChunk(1, data.subarray(1000, 2000));
  const page = toDigestPage('x', 0, await v.chunkDigests(0));
  assert.deepEqual(page, { start: 0, chunkCount: 3, digests: [null, nodeSha256(data.subarray(1000, 2000)), null], next: undefined });
  assert.deepEqual(toDigestPage('x', 3, await v.chunkDigests(3)), { start: 3, chunkCount: 3, digests: [], next: undefined });
  await assert.rejects(v.chunkDigests(4), ChunkOutOfRangeError);
  // Before Ready only the owner (and uploaders) may read digests.
  v.caller = 'stranger';
  await assert.rejects(v.chunkDigests(0), NotReadyError);

  const ok = { start: 3, chunk_count: 10, digests: [[new Uint8Array(32)], []] as Array<[] | [Uint8Array]>, next: [5] as [] | [number] };
  assert.equal(toDigestPage('x', 3, ok).next, 5);
  for (const [raw, pattern] of [
    [{ ...ok, start: 2 }, /starts at 2/],
    [{ ...ok, next: [6] }, /next is 6/],
    [{ ...ok, next: [] }, /next is absent/],
    [{ ...ok, chunk_count: 4 }, /beyond the 4 chunks/],
    [{ ...ok, digests: [] }, /empty page/],
    [{ ...ok, digests: [[new Uint8Array(32)], [new Uint8Array(33)]] }, /chunk 4 is 33 bytes/],
  ] as const) {
    assert.throws(() => toDigestPage('x', 3, raw as typeof ok), (e: unknown) => e instanceof IntegrityError && pattern.test(e.message));
  }
});

test('abort while a digest page is being fetched (or its retry waits) stops the download', async () => {
  {
    const { r, v } = await uploaded(10_000);
    v.digestPage = 3;
    const ac = new AbortController();
    const orig = v.chunkDigests.bind(v);
    v.chunkDigests = (start, limit) => {
      if (start === 0) return orig(start, limit);
      setTimeout(() => ac.abort(new Error('user')), 5);
      return new Promise(() => {}); // never answers
    };
    const { delivered, error } = await download(v, r.videoId, { signal: ac.signal, prefetch: 1 });
    assert.ok(error instanceof AbortError, String(error));
    assert.equal(delivered.length, 3);
  }
  {
    const { r, v } = await uploaded(5000);
    v.failNext('chunk_digests', ...Array.from({ length: 5 }, () => new NetworkError('down')));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    const t0 = Date.now();
    const { error } = await download(v, r.videoId, {
      signal: ac.signal,
      retry: { retries: 5, baseDelayMs: 10_000, maxDelayMs: 10_000, factor: 1, jitter: 0 },
    });
    assert.ok(error instanceof AbortError, String(error));
    assert.ok(Date.now() - t0 < 5_000, 'the retry wait was not cut short');
    assert.deepEqual(calls(v, 'chunk_digests'), [0]);
    assert.deepEqual(calls(v, 'get_chunk'), []);
  }
});

test('a published file digest the listed chunk digests do not combine into fails before anything is delivered', async () => {
  const { r, v } = await uploaded(3000);
  // The other side of the consistency check: chunks and listed digests agree, metadata does not.
  const forged = await fileDigest(r.chunkDigests.map((d, i) => (i === 1 ? nodeSha256(new Uint8Array([i])) : d)));
  v.digest = forged;
  const { delivered, error } = await download(v, r.videoId);
  assert.ok(error instanceof IntegrityError && /combine/.test(error.message), String(error));
  assert.deepEqual(error.expected, forged);
  assert.deepEqual(error.actual, r.fileDigest);
  assert.equal(delivered.length, 0);
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
