import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Principal } from '@icp-sdk/core/principal';
import { uploadVideo, type UploadResult } from '../../src/upload.js';
import type { UploadProgress } from '../../src/progress.js';
import {
  AbortError,
  AlreadyFinishedError,
  IntegrityError,
  NetworkError,
  NotAuthorizedError,
  UsageError,
  fromCandidError,
} from '../../src/errors.js';
import { FAST_RETRY, FakeNetwork, nodeFileDigest, nodeSha256, randomBytes } from '../support/fake.js';

const CHUNK = 1000;

function check(net: FakeNetwork, r: UploadResult, data: Uint8Array) {
  const v = net.video(r.videoId);
  assert.ok(v.ready);
  assert.deepEqual(Buffer.from(v.bytes()), Buffer.from(data));
  assert.deepEqual(r.fileDigest, nodeFileDigest(data, r.chunkSize));
  assert.deepEqual(r.metadata.digest[0], r.fileDigest);
  assert.equal(r.chunkDigests.length, Math.ceil(data.length / r.chunkSize));
  r.chunkDigests.forEach((d, i) => assert.deepEqual(d, nodeSha256(data.subarray(i * r.chunkSize, (i + 1) * r.chunkSize))));
}

test('uploads a Blob: creates through spawn, declares digests, sends every chunk once, verifies', async () => {
  const net = new FakeNetwork();
  const data = randomBytes(10_500, 1);
  const created: string[] = [];
  const r = await uploadVideo(net, new Blob([data], { type: 'video/webm' }), { title: 'Holiday', tags: ['a'], durationMs: 4000 }, {
    chunkSize: CHUNK,
    onCreated: (id) => created.push(id),
    retry: FAST_RETRY,
  });
  check(net, r, data);
  assert.deepEqual(created, [r.videoId]);
  assert.deepEqual(net.created, [{ title: 'Holiday', description: '', tags: ['a'], owner: undefined, declaredSize: 10_500 }]);
  const v = net.video(r.videoId);
  assert.equal(v.spec!.mime_type, 'video/webm');
  assert.equal(v.spec!.chunk_digests[0]!.length, 11);
  assert.deepEqual(v.spec!.file_digest[0], r.fileDigest);
  assert.deepEqual(v.spec!.duration_ms, [4000n]);
  const puts = v.calls.filter((c) => c.method === 'put_chunk').map((c) => c.index);
  assert.deepEqual(puts.sort((a, b) => a! - b!), Array.from({ length: 11 }, (_, i) => i));
  assert.equal(r.bytesSent, 10_500);
  assert.equal(r.resumed, false);
  assert.equal(r.chunksSkipped, 0);
});

test('bounded concurrency: never more than `concurrency` put_chunk calls in flight', async () => {
  for (const concurrency of [1, 3, 8]) {
    const net = new FakeNetwork();
    const origVideo = net.video.bind(net);
    net.video = (id: string) => {
      const v = origVideo(id);
      v.latencyMs = 3;
      return v;
    };
    const data = randomBytes(20 * CHUNK, 2);
    const r = await uploadVideo(net, data, { title: 'c' }, { chunkSize: CHUNK, concurrency, retry: FAST_RETRY });
    assert.equal(net.video(r.videoId).maxInFlight, concurrency);
  }
});

test('transient failures (Busy, network, SYS_TRANSIENT) are retried; the upload succeeds', async () => {
  const net = new FakeNetwork();
  const data = randomBytes(5 * CHUNK + 1, 3);
  const ac = new AbortController();
  const p = uploadVideo(net, data, { title: 'r' }, {
    chunkSize: CHUNK,
    retry: FAST_RETRY,
    signal: ac.signal,
    onCreated: (id) => {
      const v = net.video(id);
      v.failNext('begin_upload', new NetworkError('socket hang up'));
      v.failNext('put_chunk', fromCandidError({ Busy: { reason: 'busy' } }), new NetworkError('HTTP 503', { status: 503 }), new NetworkError('reset'));
      v.failNext('finish_upload', new NetworkError('timeout'));
      v.lostReplies.set('put_chunk', 1); // stored, but the reply got lost: the retry is idempotent
    },
  });
  const r = await p;
  check(net, r, data);
  const v = net.video(r.videoId);
  assert.equal(v.calls.filter((c) => c.method === 'begin_upload').length, 2);
  assert.equal(v.calls.filter((c) => c.method === 'put_chunk').length, 6 + 4);
});

test('a lost finish_upload reply is recognised (AlreadyFinished -> metadata says Ready)', async () => {
  const net = new FakeNetwork();
  const data = randomBytes(3 * CHUNK, 4);
  const r = await uploadVideo(net, data, { title: 'f' }, {
    chunkSize: CHUNK,
    retry: FAST_RETRY,
    onCreated: (id) => net.video(id).lostReplies.set('finish_upload', 1),
  });
  check(net, r, data);
  assert.equal(net.video(r.videoId).calls.filter((c) => c.method === 'finish_upload').length, 2);
});

test('permanent errors are not retried and carry the video id to resume with', async () => {
  const net = new FakeNetwork();
  const data = randomBytes(4 * CHUNK, 5);
  let id = '';
  await assert.rejects(
    uploadVideo(net, data, { title: 'p' }, {
      chunkSize: CHUNK,
      retry: FAST_RETRY,
      concurrency: 1,
      onCreated: (vid) => {
        id = vid;
        net.video(vid).failNext('put_chunk', fromCandidError({ NotAuthorized: { caller: Principal.anonymous(), reason: 'not the owner' } }));
      },
    }),
    (e: unknown) => e instanceof NotAuthorizedError && e.videoId === id && e.reason.includes('not the owner'),
  );
  assert.equal(net.video(id).calls.filter((c) => c.method === 'put_chunk').length, 1);
});

test('create_video is not retried (a lost reply must not pay for two canisters)', async () => {
  const net = new FakeNetwork();
  net.createFailures.push(new NetworkError('reset'));
  await assert.rejects(uploadVideo(net, randomBytes(10), { title: 'x' }, { retry: FAST_RETRY }), NetworkError);
  assert.equal(net.created.length, 0);
});

test('abort mid-upload, then resume by video id: only the missing chunks are sent', async () => {
  const net = new FakeNetwork();
  const data = randomBytes(30 * CHUNK + 123, 6);
  const ac = new AbortController();
  let id = '';
  let puts = 0;
  let aborted: AbortError | undefined;
  await assert.rejects(
    uploadVideo(net, new Blob([data]), { title: 'resume me' }, {
      chunkSize: CHUNK,
      concurrency: 2,
      signal: ac.signal,
      retry: FAST_RETRY,
      onCreated: (vid) => {
        id = vid;
        net.video(vid).onPut = () => {
          if (++puts === 12) ac.abort(new Error('user pressed cancel'));
        };
      },
    }),
    (e: unknown) => {
      aborted = e as AbortError;
      return e instanceof AbortError && e.videoId === id;
    },
  );
  assert.ok(aborted?.settled);
  await aborted.settled; // the puts already in flight have landed
  const v = net.video(id);
  const stored = new Set(v.chunks.keys());
  assert.ok(stored.size >= 11 && stored.size < 31, `stored ${stored.size}`);
  assert.ok(!v.ready);
  v.onPut = undefined;
  v.calls = [];
  v.missingPage = 7; // exercise missing_chunks pagination

  const progress: UploadProgress[] = [];
  const r = await uploadVideo(net, new Blob([data]), { title: 'ignored on resume' }, {
    resume: id,
    retry: FAST_RETRY,
    onProgress: (p) => progress.push(p),
  });
  check(net, r, data);
  assert.equal(r.resumed, true);
  assert.equal(r.chunkSize, CHUNK); // taken from the canister's declaration
  assert.equal(r.chunksSkipped, stored.size);
  const sent = v.calls.filter((c) => c.method === 'put_chunk').map((c) => c.index!);
  assert.deepEqual(new Set(sent), new Set(Array.from({ length: 31 }, (_, i) => i).filter((i) => !stored.has(i))));
  assert.equal(sent.length, 31 - stored.size);
  assert.equal(v.calls.filter((c) => c.method === 'begin_upload').length, 0);
  assert.ok(v.calls.filter((c) => c.method === 'missing_chunks').length >= 2);
  assert.equal(net.created.length, 1); // no second canister
  const last = progress[progress.length - 1]!;
  assert.equal(last.phase, 'done');
  assert.equal(last.bytesUploaded, data.length);
  assert.equal(last.bytesSent, r.bytesSent);
  assert.ok(r.bytesSent < data.length);
});

test('resume refuses a different file, and a Ready video with the same file sends nothing', async () => {
  const net = new FakeNetwork();
  const data = randomBytes(5 * CHUNK, 7);
  const first = await uploadVideo(net, data, { title: 'x' }, { chunkSize: CHUNK, retry: FAST_RETRY });
  const v = net.video(first.videoId);
  v.calls = [];
  const again = await uploadVideo(net, data, { title: 'x' }, { resume: first.videoId, retry: FAST_RETRY });
  assert.equal(again.bytesSent, 0);
  assert.deepEqual(again.fileDigest, first.fileDigest);
  assert.deepEqual(v.calls.map((c) => c.method), ['metadata']);
  const other = randomBytes(5 * CHUNK, 8);
  await assert.rejects(uploadVideo(net, other, { title: 'x' }, { resume: first.videoId, retry: FAST_RETRY }), AlreadyFinishedError);
  await assert.rejects(uploadVideo(net, randomBytes(7), { title: 'x' }, { resume: first.videoId, retry: FAST_RETRY }), UsageError);
});

test('a Node stream with a size is uploaded without buffering it, receipts checked', async () => {
  const net = new FakeNetwork();
  const data = randomBytes(12 * CHUNK + 5, 9);
  const pieces = [];
  for (let s = 0; s < data.length; s += 777) pieces.push(Buffer.from(data.subarray(s, s + 777)));
  const r = await uploadVideo(net, Readable.from(pieces), { title: 's', mimeType: 'video/mp4' }, { chunkSize: CHUNK, size: data.length, retry: FAST_RETRY });
  check(net, r, data);
  const v = net.video(r.videoId);
  assert.deepEqual(v.spec!.chunk_digests, []); // streams cannot declare digests up front
});

test('a stream resumed after an abort sends only the missing chunks', async () => {
  const net = new FakeNetwork();
  const data = randomBytes(10 * CHUNK, 10);
  const ac = new AbortController();
  let id = '';
  let puts = 0;
  let aborted: AbortError | undefined;
  const stream = () => new Blob([data]).stream();
  await assert.rejects(
    uploadVideo(net, stream(), { title: 's' }, {
      chunkSize: CHUNK,
      size: data.length,
      concurrency: 1,
      signal: ac.signal,
      retry: FAST_RETRY,
      onCreated: (vid) => {
        id = vid;
        net.video(vid).onPut = () => {
          if (++puts === 4) ac.abort();
        };
      },
    }),
    (e: unknown) => {
      aborted = e as AbortError;
      return e instanceof AbortError;
    },
  );
  assert.ok(aborted?.settled);
  await aborted.settled; // the put in flight has landed
  const v = net.video(id);
  v.onPut = undefined;
  const had = v.chunks.size;
  v.calls = [];
  const r = await uploadVideo(net, stream(), { title: 's' }, { resume: id, size: data.length, retry: FAST_RETRY });
  check(net, r, data);
  assert.equal(v.calls.filter((c) => c.method === 'put_chunk').length, 10 - had);
});

test('a receipt whose digest differs from what was sent is an IntegrityError', async () => {
  const net = new FakeNetwork();
  const data = randomBytes(3 * CHUNK, 11);
  await assert.rejects(
    uploadVideo(net, Readable.from([Buffer.from(data)]), { title: 'i' }, {
      chunkSize: CHUNK,
      size: data.length,
      retry: FAST_RETRY,
      onCreated: (id) => {
        const v = net.video(id);
        const put = v.putChunk.bind(v);
        v.putChunk = async (index, bytes) => {
          const receipt = await put(index, bytes);
          return index === 1 ? { ...receipt, sha256: new Uint8Array(32) } : receipt;
        };
      },
    }),
    (e: unknown) => e instanceof IntegrityError && e.index === 1,
  );
});

test('progress: phases in order, monotonic bytes, final = total, rate reported', async () => {
  const net = new FakeNetwork();
  const data = randomBytes(8 * CHUNK, 12);
  const seen: UploadProgress[] = [];
  let now = 0;
  await uploadVideo(net, data, { title: 'p' }, {
    chunkSize: CHUNK,
    concurrency: 2,
    retry: FAST_RETRY,
    onProgress: (p) => {
      now += 100;
      seen.push(p);
    },
  }, () => now);
  const phases = [...new Set(seen.map((p) => p.phase))];
  assert.deepEqual(phases, ['hashing', 'creating', 'uploading', 'finishing', 'done']);
  const uploading = seen.filter((p) => p.phase === 'uploading');
  for (let i = 1; i < uploading.length; i++) assert.ok(uploading[i]!.bytesUploaded >= uploading[i - 1]!.bytesUploaded);
  const last = seen[seen.length - 1]!;
  assert.equal(last.bytesUploaded, data.length);
  assert.equal(last.chunksUploaded, 8);
  assert.equal(last.bytesHashed, data.length);
  assert.ok(uploading.some((p) => p.bytesPerSecond > 0));
  assert.ok(last.videoId);
});

test('usage errors: empty input, bad chunk size, bad concurrency', async () => {
  const net = new FakeNetwork();
  await assert.rejects(uploadVideo(net, new Uint8Array(), { title: 'e' }), UsageError);
  await assert.rejects(uploadVideo(net, randomBytes(10), { title: 'e' }, { chunkSize: 3_000_000 }), UsageError);
  await assert.rejects(uploadVideo(net, randomBytes(10), { title: 'e' }, { concurrency: 0 }), UsageError);
  assert.equal(net.created.length, 0);
});
