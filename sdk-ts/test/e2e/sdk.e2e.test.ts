// End-to-end: the SDK in Node against `canvid serve` (real canister wasm in the embedded replica,
// spoken to over the IC HTTP interface by the unmodified @icp-sdk/core agent with its default
// verification). Needs ffmpeg and either $CANVID_BIN or cargo. Fails (never skips) when the
// server cannot be started.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { HttpAgent } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import {
  AbortError,
  CanvidClient,
  CertificationError,
  IntegrityError,
  NotAuthorizedError,
  NotReadyError,
  RejectedError,
  downloadStream,
  toHex,
  type UploadProgress,
  type UploadResult,
} from '../../src/index.js';
import { gatewayGet, startServe, type Served } from '../support/serve.js';
import { nodeSha256, randomBytes } from '../support/fake.js';

let served: Served;
let work: string;
let videoFile: string;
let video: Uint8Array<ArrayBuffer>;
const alice = Ed25519KeyIdentity.generate();
const bob = Ed25519KeyIdentity.generate();
const carol = Ed25519KeyIdentity.generate();
const market = Ed25519KeyIdentity.generate();
const operator = Ed25519KeyIdentity.generate();
const aliceId = alice.getPrincipal().toText();
const bobId = bob.getPrincipal().toText();

async function client(identity?: Ed25519KeyIdentity): Promise<CanvidClient> {
  return CanvidClient.create({
    host: served.url,
    identity,
    rootKey: served.rootKey,
    spawnId: served.spawnId,
    indexId: served.indexId,
  });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'canvid-sdk-video-'));
  videoFile = join(work, 'out.mp4');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=duration=4:size=320x240:rate=25',
    '-pix_fmt', 'yuv420p', '-c:v', 'libx264', videoFile]);
  video = new Uint8Array(readFileSync(videoFile));
  assert.ok(video.length > 10_000, `ffmpeg made only ${video.length} bytes`);
  served = await startServe({ admins: [operator.getPrincipal().toText()] });
});

after(async () => {
  await served?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

let first: UploadResult;

test('upload a real MP4, read its metadata, download it byte-exact (whole and streamed)', { timeout: 300_000 }, async () => {
  const canvid = await client(alice);
  const progress: UploadProgress[] = [];
  // 4 KiB chunks: the small (~20 KB) test video spans several chunks.
  first = await canvid.upload(new Blob([video], { type: 'video/mp4' }), { title: 'testsrc', description: 'ffmpeg test pattern', tags: ['test'], durationMs: 4000 }, {
    chunkSize: 4096,
    concurrency: 3,
    onProgress: (p) => progress.push(p),
  });
  assert.ok(first.metadata.chunk_count > 2, `only ${first.metadata.chunk_count} chunks`);
  assert.equal(progress[progress.length - 1]!.phase, 'done');
  assert.equal(progress[progress.length - 1]!.bytesUploaded, video.length);

  const meta = await canvid.getMetadata(first.videoId);
  assert.equal(meta.status, 'Ready');
  assert.equal(meta.title, 'testsrc');
  assert.deepEqual(meta.tags, ['test']);
  assert.equal(meta.mimeType, 'video/mp4');
  assert.equal(meta.size, video.length);
  assert.equal(meta.durationMs, 4000);
  assert.equal(meta.owner, aliceId);
  assert.equal(meta.creator, aliceId);
  assert.equal(meta.digest, toHex(first.fileDigest));

  // Anyone (here: anonymous) can read a Ready video.
  const reader = await client();
  const bytes = await reader.download(first.videoId);
  assert.equal(Buffer.compare(Buffer.from(bytes), Buffer.from(video)), 0);
  const parts: Uint8Array[] = [];
  const stream = reader.downloadStream(first.videoId, { expectedChunkDigests: first.chunkDigests, prefetch: 2 });
  for await (const c of stream as unknown as AsyncIterable<Uint8Array>) parts.push(c);
  assert.equal(parts.length, first.metadata.chunk_count);
  assert.equal(Buffer.compare(Buffer.concat(parts), Buffer.from(video)), 0);
});

test('downloads check every chunk against the canister\'s chunk_digests before delivering it', { timeout: 300_000 }, async () => {
  const reader = await client();
  // The canister lists exactly the digests the upload computed, page by page.
  assert.deepEqual(await reader.chunkDigests(first.videoId), first.chunkDigests);
  const page = await reader.chunkDigestsPage(first.videoId, { start: 1, limit: 2 });
  assert.deepEqual(page, { start: 1, chunkCount: first.metadata.chunk_count, digests: first.chunkDigests.slice(1, 3), next: 3 });
  // A chunk altered in transit (here: by a wrapper around the real read calls) is refused
  // against the real canister's digests, without the caller passing any, before delivery.
  const real = reader.videoReadApi(first.videoId);
  const delivered: Uint8Array[] = [];
  const tampered = downloadStream(first.videoId, {
    ...real,
    getChunk: async (i) => {
      const c = await real.getChunk(i);
      if (i === 1) c[0] = c[0]! ^ 0xff;
      return c;
    },
  });
  await assert.rejects(
    (async () => {
      for await (const c of tampered as unknown as AsyncIterable<Uint8Array>) delivered.push(c);
    })(),
    (e: unknown) => e instanceof IntegrityError && e.index === 1 && /chunk_digests/.test(e.message),
  );
  assert.equal(delivered.length, 1);
});

test('downloads take the file digest from the certified /metadata.json (response verification v2)', { timeout: 300_000 }, async () => {
  const reader = await client();
  const real = reader.videoReadApi(first.videoId);
  // The canister's certified document verifies against canvid serve's root key.
  const doc = await real.certifiedMetadata!();
  assert.equal(doc.status, 'ready');
  assert.deepEqual(doc.digest, first.metadata.digest[0]);
  assert.equal(doc.chunkCount, first.metadata.chunk_count);
  // A replica lying in the metadata query (a consistent fake file would need exactly that) is
  // caught against the certified digest before any chunk is fetched.
  const forged = Uint8Array.from(first.metadata.digest[0]!);
  forged[0] = forged[0]! ^ 1;
  let fetched = 0;
  const lying = downloadStream(first.videoId, {
    ...real,
    metadata: async () => ({ ...(await real.metadata()), digest: [forged] }),
    getChunk: (i) => {
      fetched++;
      return real.getChunk(i);
    },
  });
  await assert.rejects(new Response(lying).arrayBuffer(), (e: unknown) => e instanceof IntegrityError && /certified \/metadata.json/.test(e.message));
  assert.equal(fetched, 0);
  // Another root key: the certificate does not verify.
  const other = await CanvidClient.create({ host: served.url, rootKey: served.rootKey.replace(/.$/, (c) => (c === '0' ? '1' : '0')), spawnId: served.spawnId, verifyQuerySignatures: false });
  await assert.rejects(other.videoReadApi(first.videoId).certifiedMetadata!(), CertificationError);
});

test('the gateway URL serves the uploaded bytes (what a <video> tag loads)', async () => {
  const url = (await client()).videoUrl(first.videoId, served.url);
  assert.equal(url, `http://${first.videoId}.localhost:${served.port}/video`);
  const whole = await gatewayGet(served.port, first.videoId, '/video');
  assert.equal(whole.status, 200);
  assert.equal(Buffer.compare(whole.body, Buffer.from(video)), 0);
  const ranged = await gatewayGet(served.port, first.videoId, '/video', { range: 'bytes=100-199' });
  assert.equal(ranged.status, 206);
  assert.equal(Buffer.compare(ranged.body, Buffer.from(video.subarray(100, 200))), 0);
});

test('a Node stream with a size uploads without buffering', { timeout: 300_000 }, async () => {
  const canvid = await client(alice);
  const size = statSync(videoFile).size;
  const r = await canvid.upload(createReadStream(videoFile), { title: 'from a stream', mimeType: 'video/mp4' }, { size, chunkSize: 5000 });
  const back = await canvid.download(r.videoId, { expectedChunkDigests: r.chunkDigests });
  assert.equal(Buffer.compare(Buffer.from(back), Buffer.from(video)), 0);
});

test('list by creator and by owner, paginated', { timeout: 300_000 }, async () => {
  const canvid = await client(alice);
  // Two more small videos so that pages of 2 need several requests.
  const extra = [];
  for (const n of [1, 2]) extra.push((await canvid.upload(randomBytes(5000 + n, n), { title: `extra ${n}`, mimeType: 'application/octet-stream' })).videoId);
  const byCreator = [];
  for await (const v of canvid.listByCreator(aliceId, { pageSize: 2 })) byCreator.push(v);
  const ids = byCreator.map((v) => v.videoId);
  for (const id of [first.videoId, ...extra]) assert.ok(ids.includes(id), `${id} not listed`);
  assert.ok(byCreator.length >= 4);
  // Ascending by the ids' bytes (the index's order), no duplicates across pages.
  const bytes = ids.map((id) => Buffer.from(Principal.fromText(id).toUint8Array()));
  for (let i = 1; i < bytes.length; i++) assert.ok(Buffer.compare(bytes[i - 1]!, bytes[i]!) < 0, `${ids[i - 1]} !< ${ids[i]}`);
  assert.equal(new Set(ids).size, ids.length);
  const page = await canvid.listPage('creator', aliceId, { pageSize: 2 });
  assert.equal(page.items.length, 2);
  assert.ok(page.nextCursor);
  const owned = [];
  for await (const v of canvid.listByOwner(aliceId, { pageSize: 3 })) owned.push(v.videoId);
  assert.deepEqual(owned, ids);
});

test('transfer ownership; the old owner and strangers get NotAuthorizedError', { timeout: 300_000 }, async () => {
  const asAlice = await client(alice);
  const asBob = await client(bob);
  const asCarol = await client(carol);
  // A stranger cannot take the video.
  await assert.rejects(asCarol.transferOwnership(first.videoId, carol.getPrincipal()), (e: unknown) => {
    assert.ok(e instanceof NotAuthorizedError, `got ${(e as Error).name}: ${(e as Error).message}`);
    return true;
  });
  // The official module hash (the spawn's video_wasm_info) is what the video runs: the SDK checks
  // it, and the controllers, in the certified state after the transfer.
  const official = await asAlice.officialVideoModuleHash();
  assert.match(official ?? '', /^[0-9a-f]{64}$/);
  const t = await asAlice.transferOwnership(first.videoId, bobId, { expectedModuleHash: official });
  assert.equal(t.moduleHash, official);
  assert.equal(t.transferSeq, 1n);
  assert.equal(t.ownerControls, true, 'the upload is finished: bob controls the canister');
  assert.ok(t.controllers.includes(bobId));
  assert.ok(!t.controllers.includes(aliceId));
  const meta = await asBob.getMetadata(first.videoId);
  assert.equal(meta.owner, bobId);
  assert.equal(meta.creator, aliceId);
  // The old owner lost every right.
  await assert.rejects(asAlice.transferOwnership(first.videoId, aliceId), NotAuthorizedError);
  await assert.rejects(asAlice.updateMetadata(first.videoId, { title: 'mine again' }), NotAuthorizedError);
  // The new owner has them.
  assert.equal((await asBob.updateMetadata(first.videoId, { title: 'bought' })).title, 'bought');
  // The index follows (the video notifies it in the transfer call, or soon after by timer).
  let bobs: string[] = [];
  for (let i = 0; i < 50; i++) {
    bobs = [];
    for await (const v of asBob.listByOwner(bobId)) bobs.push(v.videoId);
    if (bobs.includes(first.videoId)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(bobs, [first.videoId]);
  const alices = [];
  for await (const v of asAlice.listByOwner(aliceId)) alices.push(v.videoId);
  assert.ok(!alices.includes(first.videoId));
  const created = [];
  for await (const v of asAlice.listByCreator(aliceId)) created.push(v.videoId);
  assert.ok(created.includes(first.videoId));
});

test('an approved operator (marketplace) can transfer on the owner\'s behalf', { timeout: 300_000 }, async () => {
  const asBob = await client(bob);
  const asMarket = await client(market);
  await assert.rejects(asMarket.transferOwnership(first.videoId, carol.getPrincipal()), NotAuthorizedError);
  await asBob.approveOperator(first.videoId, market.getPrincipal());
  assert.equal((await asBob.getMetadata(first.videoId)).operator, market.getPrincipal().toText());
  // The marketplace names the controllers it accepts besides the buyer and the video.
  const t = await asMarket.transferOwnership(first.videoId, carol.getPrincipal(), { keepControllers: [served.spawnId] });
  assert.equal(t.transferSeq, 2n);
  assert.deepEqual(new Set(t.controllers), new Set([carol.getPrincipal().toText(), first.videoId, served.spawnId]));
  const meta = await asBob.getMetadata(first.videoId);
  assert.equal(meta.owner, carol.getPrincipal().toText());
  assert.equal(meta.operator, undefined); // a transfer clears the approval
});

test('two-step transfer: an offer changes nothing until the offered principal accepts', { timeout: 300_000 }, async () => {
  const asCarol = await client(carol);
  const asAlice = await client(alice);
  const asBob = await client(bob);
  // A withdrawn offer cannot be accepted.
  await asCarol.offerOwnership(first.videoId, bobId);
  await asCarol.cancelOwnershipOffer(first.videoId);
  await assert.rejects(asBob.acceptOwnership(first.videoId), NotAuthorizedError);
  const offer = await asCarol.offerOwnership(first.videoId, aliceId, { keepControllers: [served.spawnId] });
  assert.equal(offer.newOwner, aliceId);
  assert.deepEqual(offer.keepControllers, [served.spawnId]);
  assert.ok(offer.expiresAt > offer.offeredAt);
  // Only the principal the offer names can take it; until then nothing changed.
  await assert.rejects(asBob.acceptOwnership(first.videoId), NotAuthorizedError);
  assert.equal((await asCarol.getMetadata(first.videoId)).owner, carol.getPrincipal().toText());
  const official = await asAlice.officialVideoModuleHash();
  const t = await asAlice.acceptOwnership(first.videoId, { expectedModuleHash: official });
  assert.equal(t.transferSeq, 3n);
  assert.deepEqual(new Set(t.controllers), new Set([aliceId, first.videoId, served.spawnId]));
  assert.equal((await asAlice.getMetadata(first.videoId)).owner, aliceId);
});

test('abort mid-upload, then resume by video id: only missing chunks are sent', { timeout: 600_000 }, async () => {
  const canvid = await client(alice);
  const data = randomBytes(1_500_000, 77);
  const chunkSize = 50_000; // 30 chunks
  const ac = new AbortController();
  let videoId = '';
  let aborted: AbortError | undefined;
  await assert.rejects(
    canvid.upload(new Blob([data], { type: 'video/mp4' }), { title: 'interrupted' }, {
      chunkSize,
      concurrency: 2,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.phase === 'uploading' && p.chunksUploaded >= 8) ac.abort(new Error('test aborts'));
      },
    }),
    (e: unknown) => {
      assert.ok(e instanceof AbortError, `got ${(e as Error).name}: ${(e as Error).message}`);
      videoId = (e as AbortError).videoId!;
      aborted = e as AbortError;
      return true;
    },
  );
  assert.ok(videoId);
  assert.ok(aborted?.settled);
  await aborted.settled; // the calls already sent have landed
  const mid = await canvid.getMetadata(videoId);
  assert.equal(mid.status, 'Uploading');
  assert.ok(mid.uploadedChunks >= 8 && mid.uploadedChunks < 30, `uploaded ${mid.uploadedChunks}`);

  // A stranger cannot resume into it (inspect_message or the canister refuses).
  const asCarol = await client(carol);
  await assert.rejects(asCarol.upload(data, { title: 'x' }, { resume: videoId, retry: { retries: 0 } }), NotAuthorizedError);

  const r = await canvid.upload(new Blob([data], { type: 'video/mp4' }), { title: 'interrupted' }, { resume: videoId });
  assert.equal(r.videoId, videoId);
  assert.equal(r.resumed, true);
  assert.equal(r.chunksSkipped, mid.uploadedChunks);
  assert.equal(r.bytesSent, data.length - mid.uploadedBytes);
  const back = await canvid.download(videoId);
  assert.equal(Buffer.compare(Buffer.from(back), Buffer.from(data)), 0);
});

test('resetUpload abandons an unfinished upload; the canister then takes another file', { timeout: 300_000 }, async () => {
  const canvid = await client(alice);
  const asCarol = await client(carol);
  const firstFile = randomBytes(9000, 31);
  const videoId = await canvid.createVideo({ title: 'reset me', description: '', tags: [], declaredSize: firstFile.length });
  const api = canvid.videoUploadApi(videoId);
  await api.beginUpload({ mime_type: 'video/mp4', total_size: BigInt(firstFile.length), chunk_size: 3000, chunk_digests: [], file_digest: [], duration_ms: [], path: [], rendition: [], encryption: [] });
  await api.putChunk(1, firstFile.subarray(3000, 6000));
  // Before Ready the owner sees the digests stored so far; others may not read them yet.
  assert.deepEqual(await canvid.chunkDigests(videoId), [null, nodeSha256(firstFile.subarray(3000, 6000)), null]);
  await assert.rejects(asCarol.chunkDigestsPage(videoId, { retry: { retries: 0 } }), NotReadyError);
  // Only the owner may reset.
  await assert.rejects(asCarol.resetUpload(videoId, { retry: { retries: 0 } }), NotAuthorizedError);
  assert.equal((await canvid.getMetadata(videoId)).uploadedChunks, 1);

  const reset = await canvid.resetUpload(videoId);
  assert.equal(reset.status, 'Empty');
  assert.equal(reset.uploadedChunks, 0);
  // Another file (other size and chunking) goes into the same canister.
  const second = randomBytes(7000, 32);
  const r = await canvid.upload(second, { title: 'reset me' }, { resume: videoId, chunkSize: 2000 });
  assert.equal(r.videoId, videoId);
  assert.equal(Buffer.compare(Buffer.from(await canvid.download(videoId)), Buffer.from(second)), 0);
  assert.deepEqual(await canvid.chunkDigests(videoId), r.chunkDigests);
});

test('anonymous callers cannot upload; a canister that does not exist is a RejectedError', async () => {
  const anon = await client();
  await assert.rejects(anon.upload(randomBytes(100), { title: 'anon' }, { retry: { retries: 0 } }), NotAuthorizedError);
  // Canister sequence number 0xffff: in the replica's range, far beyond the ids this run allocates
  // (a small one such as rdmx6-jaaaa-aaaaa-aaadq-cai, number 7, exists once enough videos do).
  const nowhere = Principal.fromUint8Array(new Uint8Array([0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 1])).toText();
  await assert.rejects(anon.getMetadata(nowhere, { retry: { retries: 0 } }), (e: unknown) => {
    assert.ok(e instanceof RejectedError, `got ${(e as Error).name}: ${(e as Error).message}`);
    assert.equal(e.rejectCode, 3);
    return true;
  });
});

test('client from an agent with local: true fetches the root key; without it nothing is fetched', async () => {
  const agent = await HttpAgent.create({ host: served.url, identity: alice });
  assert.equal(agent.rootKey === null || toHex(agent.rootKey) !== served.rootKey, true);
  const canvid = await CanvidClient.create({ agent, local: true, spawnId: served.spawnId, indexId: served.indexId });
  assert.equal(toHex((canvid.agent as HttpAgent).rootKey!), served.rootKey);
  assert.equal((await canvid.getMetadata(first.videoId)).status, 'Ready');
});

test('every public method: poster, uploaders, ranges, canister facts, spawn and index queries, admin helpers', { timeout: 300_000 }, async () => {
  const asAlice = await client(alice);
  const asOperator = await client(operator);
  const dave = Ed25519KeyIdentity.generate();
  const daveId = dave.getPrincipal().toText();

  // A video of alice's, with an uploader she authorises and revokes.
  const estimate = await asAlice.estimateCycles(video.length);
  assert.ok(estimate > 500_000_000_000n, `estimate ${estimate}`);
  const quotaBefore = await asAlice.quotaOf();
  const up = await asAlice.upload(new Blob([video], { type: 'video/mp4' }), { title: 'complete', durationMs: 4000 }, { chunkSize: 8192 });
  const id = up.videoId;
  const record = await asAlice.spawnRecord(id);
  assert.equal(record?.owner.toText(), aliceId);
  assert.ok('Registered' in record!.status, JSON.stringify(record!.status));
  assert.equal((await asAlice.quotaOf(aliceId)).used_videos, quotaBefore.used_videos + 1n);
  await asAlice.addUploader(id, daveId);
  assert.deepEqual(await asAlice.uploaders(id), [daveId]);
  await asAlice.removeUploader(id, daveId);
  assert.deepEqual(await asAlice.uploaders(id), []);

  // Poster, served at /poster.
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]);
  await asAlice.setPoster(id, { mimeType: 'image/png', data: png });
  const poster = await gatewayGet(served.port, id, '/poster');
  assert.equal(poster.status, 200);
  assert.deepEqual(new Uint8Array(poster.body), png);

  // A byte range straddling a chunk boundary, and the canister's own report.
  const range = await asAlice.readRange(id, 8000, 400);
  assert.deepEqual(range, video.subarray(8000, 8400));
  const info = await asAlice.canisterInfo(id);
  assert.equal(info.chunk_bytes_stored, BigInt(video.length));
  assert.ok(info.cycles > 0n);

  // Spawn and index queries.
  const stats = await asAlice.spawnStats();
  assert.ok(stats.admins.some((p) => p.toText() === operator.getPrincipal().toText()), 'serve --admin made the operator an admin');
  assert.equal((await asAlice.indexEntry(id))?.owner.toText(), aliceId);
  assert.ok((await asAlice.countBy('owner', aliceId)) >= 1n);
  assert.ok((await asAlice.countBy('creator', aliceId)) >= 1n);
  assert.ok((await asAlice.indexStats()).videos >= 1n);

  // Admin helpers: refused for alice, working for the operator.
  await assert.rejects(asAlice.spawnAdmin().setQuota(daveId, { maxVideos: 1, maxCycles: 1n }), NotAuthorizedError);
  const admin = asOperator.spawnAdmin();
  await admin.setQuota(daveId, { maxVideos: 2, maxCycles: 5_000_000_000_000n });
  const q = await asOperator.quotaOf(daveId);
  assert.deepEqual([q.quota.max_videos, q.quota.max_cycles, q.is_default], [2n, 5_000_000_000_000n, false]);
  const listed: string[] = [];
  for await (const v of admin.listVideos({ pageSize: 1 })) listed.push(v.canister_id.toText());
  assert.ok(listed.includes(id) && listed.includes(first.videoId), listed.join(' '));
  const outcomes = await admin.upgradeVideos([id]);
  assert.deepEqual(outcomes.map((o) => [o.video.toText(), 'Ok' in o.result]), [[id, true]]);
  // The upgrade kept the data.
  assert.deepEqual(await asAlice.readRange(id, 0, 100), video.subarray(0, 100));
  await admin.topUp(id, 1_000_000_000n);
  assert.ok((await asAlice.canisterInfo(id)).cycles > 0n);
  assert.deepEqual(await admin.retryPending(), []);
  const indexAdmin = asOperator.indexAdmin();
  const indexStats = await asOperator.indexStats();
  await indexAdmin.setRegistrars(indexStats.registrars.map((p) => p.toText()));
  await assert.rejects(asAlice.indexAdmin().setAdmins([aliceId]), NotAuthorizedError);
});
