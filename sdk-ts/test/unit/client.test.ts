// `CanvidClient`'s own wiring of the video canister's read calls and `reset_upload` — argument
// encoding, `Result` unwrapping, typed errors, retries — against the in-memory fake, plugged in
// where the client keeps its actors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from '@icp-sdk/core/agent';
import type { UploadSpec } from '../../src/bindings/video.did.js';
import { CanvidClient } from '../../src/client.js';
import { AlreadyFinishedError, IntegrityError, NetworkError, NotAuthorizedError, NotReadyError } from '../../src/errors.js';
import { uploadVideo } from '../../src/upload.js';
import { FAST_RETRY, FakeNetwork, type FakeVideo, fakeVideoActor, nodeSha256, randomBytes } from '../support/fake.js';

async function clientFor(v: FakeVideo): Promise<CanvidClient> {
  // No network: the agent is never used, the video's actor is the fake.
  const client = await CanvidClient.create({ agent: {} as Agent, spawnId: 'aaaaa-aa', retry: FAST_RETRY });
  (client as unknown as { videos: Map<string, unknown> }).videos.set(v.id, fakeVideoActor(v));
  return client;
}

async function uploaded(size: number) {
  const net = new FakeNetwork();
  const data = randomBytes(size, 5);
  const r = await uploadVideo(net, data, { title: 'c' }, { chunkSize: 1000, retry: FAST_RETRY });
  return { data, r, v: net.video(r.videoId) };
}

/** A video with an upload declared and chunks 0 and 2 of 4 stored. */
async function uploading() {
  const net = new FakeNetwork();
  const id = await net.createVideo({ title: 'u', description: '', tags: [], declaredSize: 3500 });
  const v = net.video(id);
  const data = randomBytes(3500, 6);
  await v.beginUpload({ mime_type: 'video/mp4', chunk_digests: [], total_size: 3500n, chunk_size: 1000, duration_ms: [], file_digest: [] });
  await v.putChunk(0, data.subarray(0, 1000));
  await v.putChunk(2, data.subarray(2000, 3000));
  return { v, data };
}

test('client.chunkDigests: every page, in order; chunkDigestsPage: one page', async () => {
  const { r, v } = await uploaded(10_500); // 11 chunks
  v.digestPage = 4;
  const client = await clientFor(v);
  v.calls = [];
  assert.deepEqual(await client.chunkDigests(r.videoId), r.chunkDigests);
  assert.deepEqual(v.calls.map((c) => c.index), [0, 4, 8]);
  const page = await client.chunkDigestsPage(r.videoId, { start: 4, limit: 2 });
  assert.deepEqual(page, { start: 4, chunkCount: 11, digests: r.chunkDigests.slice(4, 6), next: 6 });
});

test('client: digests while uploading (owner: nulls for missing chunks; others: NotReady)', async () => {
  const { v, data } = await uploading();
  const client = await clientFor(v);
  assert.deepEqual(await client.chunkDigests(v.id), [nodeSha256(data.subarray(0, 1000)), null, nodeSha256(data.subarray(2000, 3000)), null]);
  v.caller = 'stranger';
  await assert.rejects(client.chunkDigests(v.id), (e: unknown) => e instanceof NotReadyError && e.method === 'chunk_digests' && e.canisterId === v.id);
});

test('client.download checks each chunk against chunk_digests (wired through the actor)', async () => {
  const { data, r, v } = await uploaded(5000);
  const client = await clientFor(v);
  v.failNext('chunk_digests', new NetworkError('reset'));
  assert.equal(Buffer.compare(Buffer.from(await client.download(r.videoId)), Buffer.from(data)), 0);
  v.corruptChunk = 1;
  await assert.rejects(client.download(r.videoId), (e: unknown) => e instanceof IntegrityError && e.index === 1);
});

test('client.resetUpload abandons the upload: declaration and chunks are gone, another file fits', async () => {
  const { v } = await uploading();
  const client = await clientFor(v);
  const otherSpec: UploadSpec = { mime_type: 'video/webm', chunk_digests: [], total_size: 1234n, chunk_size: 500, duration_ms: [], file_digest: [] };
  // While chunks are stored, a different file is refused...
  await assert.rejects(v.beginUpload(otherSpec), /Conflict/);
  const after = await client.resetUpload(v.id);
  assert.equal(after.status, 'Empty');
  assert.equal(after.uploadedChunks, 0);
  assert.equal(after.size, 0);
  assert.equal(v.chunks.size, 0);
  // ...and accepted after the reset.
  assert.equal(Object.keys((await v.beginUpload(otherSpec)).status)[0], 'Uploading');
  assert.equal(v.count(), 3);
  // Idempotent and retried: a lost reply (Busy) is retried; the reset of an Empty video succeeds.
  await client.resetUpload(v.id);
  v.lostReplies.set('reset_upload', 1);
  assert.equal((await client.resetUpload(v.id)).status, 'Empty');
  assert.equal(v.calls.filter((c) => c.method === 'reset_upload').length, 4);
});

test('client.resetUpload refusals are typed: a stranger (NotAuthorized), a Ready video (AlreadyFinished)', async () => {
  const { v } = await uploading();
  const client = await clientFor(v);
  v.caller = 'stranger';
  await assert.rejects(client.resetUpload(v.id), (e: unknown) => e instanceof NotAuthorizedError && e.method === 'reset_upload' && e.canisterId === v.id);
  assert.equal(v.chunks.size, 2, 'nothing was dropped');
  const done = await uploaded(2000);
  const c2 = await clientFor(done.v);
  await assert.rejects(c2.resetUpload(done.v.id), AlreadyFinishedError);
  assert.equal(done.v.ready, true);
});
