// End-to-end: named files with the SDK in Node against `canvid serve` (real canister wasm in the
// embedded replica): a small HLS ladder made with ffmpeg (the layout of `canvid hls prepare`)
// uploaded from its folder, listed, read back byte-exact through the canister API and through the
// HTTP gateway (Content-Type, 200 whole), then free paths of a private video; an upload of more
// than one batch of files (several `begin_files` batches, the next declared once the previous is stored)
// aborted in the second batch and resumed. Fails (never skips) when the server cannot be started.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { AbortError, CanvidClient, type NamedFile } from '../../src/index.js';
import { filesFromDirectory } from '../../src/node.js';
import { makeHlsLadder, RUNGS_1080_360 } from '../support/hls.js';
import { gatewayGet, startServe, type Served } from '../support/serve.js';
import { nodeFileDigest, randomBytes } from '../support/fake.js';

let served: Served;
let work: string;
const alice = Ed25519KeyIdentity.generate();

async function client(): Promise<CanvidClient> {
  return CanvidClient.create({ host: served.url, identity: alice, rootKey: served.rootKey, spawnId: served.spawnId, indexId: served.indexId });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'canvid-sdk-files-'));
  // Small rungs: this test is about files, not pictures.
  makeHlsLadder(work, {
    seconds: 4,
    segmentSeconds: 2,
    rungs: [
      { ...RUNGS_1080_360[0]!, name: '480p', width: 854, height: 480, kbps: 600 },
      { ...RUNGS_1080_360[1]!, name: '240p', width: 426, height: 240, kbps: 200 },
    ],
  });
  served = await startServe();
});

after(async () => {
  await served?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('upload a prepared HLS folder, list it, read every file back through the API and the gateway', { timeout: 300_000 }, async () => {
  const canvid = await client();
  const files = await filesFromDirectory(work);
  assert.ok(files.length >= 11, `${files.length} files`);
  const r = await canvid.uploadFiles(files, { title: 'ladder', tags: ['hls'] });
  assert.equal(r.resumed, false);
  assert.equal(r.bytesSent, r.totalBytes);
  assert.ok('Ready' in r.metadata.status);

  const details = await canvid.getMetadata(r.videoId);
  assert.equal(details.status, 'Ready');
  assert.equal(details.files, files.length);
  assert.deepEqual(
    details.renditions.map((x) => [x.path, x.name, x.width, x.height, x.codecs]),
    [
      ['/hls/480p/index.m3u8', '480p', 854, 480, 'avc1.640028'],
      ['/hls/240p/index.m3u8', '240p', 426, 240, 'avc1.64001e'],
    ],
  );
  const listed = await canvid.listFiles(r.videoId);
  assert.deepEqual(listed.map((f) => f.path), files.map((f) => f.path).sort());
  const page = await canvid.listFilesPage(r.videoId, { limit: 3 });
  assert.equal(page.files.length, 3);
  assert.equal(page.total, files.length);
  assert.equal(page.next, page.files[2]!.path);

  for (const f of files) {
    const local = f.data as Uint8Array;
    const l = listed.find((x) => x.path === f.path)!;
    assert.equal(l.size, local.length);
    assert.equal(l.mimeType, f.mimeType);
    assert.equal(l.digest, Buffer.from(nodeFileDigest(local, l.chunkSize)).toString('hex'), f.path);
    assert.deepEqual(Buffer.from(await canvid.downloadFile(r.videoId, f.path)), Buffer.from(local), f.path);
    const got = await gatewayGet(served.port, r.videoId, f.path);
    assert.equal(got.status, 200, `${f.path}: ${got.status} ${got.body.subarray(0, 200)}`);
    assert.equal(got.headers['content-type'], f.mimeType, f.path);
    assert.deepEqual(got.body, Buffer.from(local), f.path);
  }
  // The master playlist as served is the file as written.
  const master = await gatewayGet(served.port, r.videoId, '/hls/master.m3u8');
  assert.equal(master.body.toString(), readFileSync(join(work, 'hls/master.m3u8'), 'utf8'));

  // A private video with a free low rendition (freePaths): anyone gets the master playlist and
  // 240p, the 480p rung only with a token.
  const access = canvid.access({ gateway: served.url });
  const freePaths = ['/hls/master.m3u8', '/hls/240p/', '/hls/subs/', '/subs/'];
  await access.setAccess(r.videoId, { mode: 'private', freePaths });
  const info = await access.accessInfo(r.videoId);
  assert.equal(info.policy.mode, 'private');
  assert.deepEqual(info.policy.freePaths, freePaths);
  assert.equal((await gatewayGet(served.port, r.videoId, '/hls/master.m3u8')).status, 200);
  assert.equal((await gatewayGet(served.port, r.videoId, '/hls/240p/seg-00000.m4s')).status, 200);
  const paid = await gatewayGet(served.port, r.videoId, '/hls/480p/seg-00000.m4s');
  assert.ok(paid.status === 401 || paid.status === 403, `480p without a token: ${paid.status}`);
  const { token } = await access.playbackUrl(r.videoId);
  const withToken = await gatewayGet(served.port, r.videoId, `/hls/480p/seg-00000.m4s?token=${encodeURIComponent(token!)}`);
  assert.equal(withToken.status, 200);
  assert.deepEqual(withToken.body, Buffer.from(readFileSync(join(work, 'hls/480p/seg-00000.m4s'))));
});

test('several begin_files batches; abort, then resume sends only what is missing', { timeout: 600_000 }, async () => {
  // 60 files in batches of 25 (`batchFiles`): the same path as 500-file batches (the next batch is
  // declared once the previous one is stored), at a tenth of the calls. The 500-file limit itself
  // is the canister's (its tests) and `declareBatches`' (unit tests).
  const canvid = await client();
  const n = 60;
  const files: NamedFile[] = Array.from({ length: n }, (_, i) => ({
    path: `/thumbs/t-${String(i).padStart(4, '0')}.jpg`,
    data: randomBytes(200 + (i % 50), i + 7),
    mimeType: 'image/jpeg',
  }));
  const ac = new AbortController();
  let videoId: string | undefined;
  let confirmed = 0;
  await assert.rejects(
    canvid.uploadFiles(files, { title: 'many files' }, {
      signal: ac.signal,
      concurrency: 8,
      batchFiles: 25,
      onCreated: (id) => (videoId = id),
      onProgress: (p) => {
        confirmed = p.chunksUploaded;
        if (p.chunksUploaded >= 30) ac.abort(); // in the second batch
      },
    }),
    AbortError,
  );
  assert.ok(videoId);
  assert.ok(confirmed >= 30 && confirmed < 50, `${confirmed} chunks before the abort`);
  // Calls in flight when the upload gave up still land; then see what the canister holds.
  await new Promise((r) => setTimeout(r, 3000));
  const partial = await canvid.listFilesPage(videoId!, { limit: 20 });
  assert.equal(partial.status, 'Uploading');
  assert.equal(partial.total, 50, 'two batches declared (the second after the first was stored), not the third');
  assert.equal(partial.files.length, 20);
  assert.ok(partial.next, 'a page of 20 out of 50 has a next one');
  const before = await canvid.listFiles(videoId!);
  assert.equal(before.length, 50);
  const stored = new Set(before.filter((f) => f.uploadedChunks === f.chunkCount).map((f) => f.path));
  assert.ok(stored.size >= 30 && stored.size < 50, `${stored.size} files stored`);

  const r = await canvid.uploadFiles(files, { title: 'many files' }, { resume: videoId, concurrency: 8, batchFiles: 25 });
  assert.ok(r.resumed);
  assert.equal(r.chunksSkipped, stored.size);
  const missingBytes = files.filter((f) => !stored.has(f.path)).reduce((k, f) => k + (f.data as Uint8Array).length, 0);
  assert.equal(r.bytesSent, missingBytes, 'the resume sent exactly the files the canister lacked');
  assert.equal(r.files.length, n);
  const all = await canvid.listFiles(videoId!);
  assert.equal(all.length, n);
  assert.ok(all.every((f) => f.uploadedChunks === f.chunkCount && f.digest));
  const i = 57;
  assert.deepEqual(Buffer.from(await canvid.downloadFile(videoId!, files[i]!.path)), Buffer.from(files[i]!.data as Uint8Array));
});
