// End-to-end: encrypted videos with the SDK in Node against `canvid serve` (the real video
// canister and the embedded replica's vetKD): an encrypted upload aborted and resumed (the
// canister accepts the same declaration again and the re-encrypted chunks match their declared
// digests), the owner's and an allowlisted viewer's decrypted download and range read, the
// gateway serving only ciphertext, and the typed refusals of `video_key`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { AbortError, CanvidClient, DecryptionError, NotAuthorizedError, NotReadyError, UsageError } from '../../src/index.js';
import { randomBytes } from '../support/fake.js';
import { gatewayGet, startServe, type Served } from '../support/serve.js';

const owner = Ed25519KeyIdentity.generate();
const viewer = Ed25519KeyIdentity.generate();
const stranger = Ed25519KeyIdentity.generate();
const CHUNK = 4096;

let served: Served;
const client = (identity: Ed25519KeyIdentity) =>
  CanvidClient.create({ host: served.url, identity, rootKey: served.rootKey, spawnId: served.spawnId, indexId: served.indexId });

before(async () => {
  served = await startServe();
});
after(async () => {
  await served?.stop();
});

test('encrypted upload: abort, resume, decrypt as owner and viewer; refusals are typed', { timeout: 300_000 }, async () => {
  const canvid = await client(owner);
  const data = randomBytes(40 * (CHUNK - 28) + 1234, 41); // 41 chunks
  const ac = new AbortController();
  let videoId = '';
  let sent = 0;
  let aborted: AbortError | undefined;
  await assert.rejects(
    canvid.upload(data, { title: 'secret', mimeType: 'video/mp4' }, {
      chunkSize: CHUNK,
      encrypt: { keyName: 'test_key_1' },
      concurrency: 2,
      signal: ac.signal,
      onCreated: (id) => (videoId = id),
      onProgress: (p) => {
        if (p.phase === 'uploading' && p.chunksUploaded > sent) sent = p.chunksUploaded;
        if (sent >= 10) ac.abort(new Error('stop'));
      },
    }),
    (e: unknown) => {
      aborted = e as AbortError;
      return e instanceof AbortError && e.videoId === videoId;
    },
  );
  await aborted!.settled;
  const mid = await canvid.getMetadata(videoId);
  assert.equal(mid.status, 'Uploading');
  assert.deepEqual(mid.encryption, { scheme: 'canvid-aes256gcm-v1', keyName: 'test_key_1', keyEpoch: 0, plainSize: data.length, plainChunkSize: CHUNK - 28 });
  // A viewer gets no key before the upload is finished (nor does a stranger).
  const asViewer = await client(viewer);
  await assert.rejects(asViewer.videoKey(videoId), (e: unknown) => e instanceof NotAuthorizedError || e instanceof NotReadyError);
  // Resuming in the clear is refused by the SDK; with `encrypt` the same ciphertext is declared and sent.
  await assert.rejects(canvid.upload(data, { title: 'x' }, { resume: videoId }), UsageError);
  const r = await canvid.upload(data, { title: 'x' }, { resume: videoId, encrypt: true });
  assert.equal(r.resumed, true);
  assert.ok(r.chunksSkipped >= 10 && r.chunksSkipped < 41, `skipped ${r.chunksSkipped}`);
  assert.equal(r.metadata.size, BigInt(data.length + 41 * 28));

  const access = canvid.access({ gateway: served.url });
  assert.equal((await access.accessInfo(videoId)).policy.mode, 'private');
  await access.addViewers(videoId, [viewer.getPrincipal().toText()]);

  // The owner and the viewer read the plaintext; the viewer fetches the key once and reuses it.
  assert.deepEqual(await canvid.downloadDecrypted(videoId), data);
  const key = await asViewer.videoKey(videoId);
  assert.equal(key.keyName, 'test_key_1');
  assert.deepEqual(await asViewer.downloadDecrypted(videoId, { key }), data);
  assert.deepEqual(await asViewer.readDecrypted(videoId, 100_000, 100_500, { key }), data.subarray(100_000, 100_500));
  // Another key (another epoch's, as the owner may ask) does not decrypt it.
  const other = await canvid.videoKey(videoId, { keyName: 'test_key_1', keyEpoch: 1 });
  await assert.rejects(canvid.readDecrypted(videoId, 0, 10, { key: other }), DecryptionError);
  // The viewer may not ask for another epoch; a stranger gets nothing.
  await assert.rejects(asViewer.videoKey(videoId, { keyEpoch: 1 }), NotAuthorizedError);
  await assert.rejects((await client(stranger)).videoKey(videoId), NotAuthorizedError);

  // The gateway serves ciphertext (with the owner's token), as application/octet-stream.
  const { token } = await access.playbackUrl(videoId, { gateway: served.url });
  const g = await gatewayGet(served.port, videoId, `/video?token=${encodeURIComponent(token!)}`, { range: `bytes=0-${CHUNK - 1}` });
  assert.equal(g.status, 206);
  assert.equal(g.headers['content-type'], 'application/octet-stream');
  assert.equal(g.body.length, CHUNK);
  assert.equal(Buffer.from(g.body).indexOf(Buffer.from(data.subarray(0, 32))), -1);

  // keepPublic leaves a public video public: then only the owner gets its key.
  const pub = await canvid.upload(randomBytes(5000, 42), { title: 'public' }, { chunkSize: CHUNK, encrypt: true, keepPublic: true });
  assert.equal((await access.accessInfo(pub.videoId)).policy.mode, 'public');
  await assert.rejects(asViewer.videoKey(pub.videoId), NotAuthorizedError);
  assert.equal((await canvid.downloadDecrypted(pub.videoId)).length, 5000);
});
