// Named files: folder -> files (paths, MIME types, renditions from the master playlist), the
// files upload (batched declarations, declaration order, bounded concurrency, Busy retried,
// abort + resume, verification), reading files back, and the client's wiring of it all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from '@icp-sdk/core/agent';
import { CanvidClient } from '../../src/client.js';
import { AbortError, IntegrityError, NetworkError, UsageError, fromCandidError } from '../../src/errors.js';
import {
  type NamedFile,
  checkFilePath,
  declareBatches,
  downloadFile,
  filesFromInput,
  mimeTypeForPath,
  parseMasterPlaylist,
  uploadFiles,
} from '../../src/files.js';
import { filesFromDirectory } from '../../src/node.js';
import type { UploadProgress } from '../../src/progress.js';
import { FAKE_ROOT_KEY, FAST_RETRY, FakeNetwork, fakeResponseVerifier, fakeVideoActor, nodeFileDigest, randomBytes } from '../support/fake.js';

const MASTER = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,URI="subs/en.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=5500000,AVERAGE-BANDWIDTH=5000000,RESOLUTION=1920x1080,CODECS="avc1.640028,mp4a.40.2",SUBTITLES="subs"
1080p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",SUBTITLES="subs"
360p/index.m3u8
`;
const MEDIA = '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2.0,\nseg-00000.m4s\n#EXT-X-ENDLIST\n';

/** An HLS ladder as `canvid hls prepare` lays it out, as relative path -> bytes. */
function ladder(): Record<string, Uint8Array> {
  const enc = (t: string) => new TextEncoder().encode(t);
  return {
    'hls/master.m3u8': enc(MASTER),
    'hls/1080p/index.m3u8': enc(MEDIA),
    'hls/1080p/init.mp4': randomBytes(700, 1),
    'hls/1080p/seg-00000.m4s': randomBytes(4500, 2),
    'hls/360p/index.m3u8': enc(MEDIA),
    'hls/360p/init.mp4': randomBytes(600, 3),
    'hls/360p/seg-00000.m4s': randomBytes(1500, 4),
    'hls/subs/en.m3u8': enc('#EXTM3U\n#EXTINF:4.0,\n../../subs/en.vtt\n#EXT-X-ENDLIST\n'),
    'subs/en.vtt': enc('WEBVTT\n\n00:00.000 --> 00:02.000\nHello\n'),
    'poster.jpg': randomBytes(300, 5),
  };
}

test('parseMasterPlaylist: RESOLUTION, BANDWIDTH, CODECS (quoted, with commas) and the rung name from the URI', () => {
  assert.deepEqual(parseMasterPlaylist(MASTER), [
    { uri: '1080p/index.m3u8', rendition: { name: '1080p', width: 1920, height: 1080, bandwidth: 5_500_000, codecs: 'avc1.640028,mp4a.40.2' } },
    { uri: '360p/index.m3u8', rendition: { name: '360p', width: 640, height: 360, bandwidth: 900_000, codecs: 'avc1.64001e,mp4a.40.2' } },
  ]);
  // A variant without RESOLUTION (audio only) is not a rung; a bare URI is named after its height.
  assert.deepEqual(parseMasterPlaylist('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=64000\na.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=320x240\nlow.m3u8\n'), [
    { uri: 'low.m3u8', rendition: { name: '240p', width: 320, height: 240, bandwidth: 1000 } },
  ]);
});

test('file paths follow the canister rule; MIME types by extension', () => {
  for (const ok of ['/hls/master.m3u8', '/hls/720p/seg-00042.m4s', '/subs/en.vtt', '/a', '/thumbs/sprite~1.jpg']) checkFilePath(ok);
  for (const bad of ['', 'hls/master.m3u8', '/', '/video', '/poster', '/metadata.json', '/hls/', '//x', '/a/../b', '/a/./b', '/a b', '/a?x=1', '/é', `/${'a'.repeat(160)}`]) {
    assert.throws(() => checkFilePath(bad), UsageError, bad);
  }
  checkFilePath(`/${'a'.repeat(159)}`);
  assert.equal(mimeTypeForPath('/hls/master.m3u8'), 'application/vnd.apple.mpegurl');
  assert.equal(mimeTypeForPath('/hls/720p/seg-00001.m4s'), 'video/mp4');
  assert.equal(mimeTypeForPath('/hls/720p/init.mp4'), 'video/mp4');
  assert.equal(mimeTypeForPath('/hls/720p/seg-00001.ts'), 'video/mp2t');
  assert.equal(mimeTypeForPath('/subs/en.vtt'), 'text/vtt');
  assert.equal(mimeTypeForPath('/poster.JPG'), 'image/jpeg');
  assert.equal(mimeTypeForPath('/thumb.png'), 'image/png');
  assert.equal(mimeTypeForPath('/notes'), 'application/octet-stream');
});

function checkLadderFiles(files: NamedFile[], data: Record<string, Uint8Array>) {
  assert.deepEqual(
    files.map((f) => f.path),
    // Playlists first, then the rest in path order.
    [
      '/hls/1080p/index.m3u8',
      '/hls/360p/index.m3u8',
      '/hls/master.m3u8',
      '/hls/subs/en.m3u8',
      '/hls/1080p/init.mp4',
      '/hls/1080p/seg-00000.m4s',
      '/hls/360p/init.mp4',
      '/hls/360p/seg-00000.m4s',
      '/poster.jpg',
      '/subs/en.vtt',
    ],
  );
  const by = new Map(files.map((f) => [f.path, f]));
  assert.deepEqual(by.get('/hls/1080p/index.m3u8')!.rendition, { name: '1080p', width: 1920, height: 1080, bandwidth: 5_500_000, codecs: 'avc1.640028,mp4a.40.2' });
  assert.equal(by.get('/hls/360p/index.m3u8')!.rendition!.name, '360p');
  assert.equal(files.filter((f) => f.rendition).length, 2);
  assert.equal(by.get('/hls/master.m3u8')!.mimeType, 'application/vnd.apple.mpegurl');
  assert.equal(by.get('/subs/en.vtt')!.mimeType, 'text/vtt');
  assert.equal(by.get('/hls/360p/seg-00000.m4s')!.mimeType, 'video/mp4');
  assert.equal(by.get('/poster.jpg')!.mimeType, 'image/jpeg');
  for (const f of files) assert.equal(Buffer.compare(Buffer.from(f.data as Uint8Array), Buffer.from(data[f.path.slice(1)]!)), 0, f.path);
}

test('filesFromDirectory walks a folder: "/" + relative path, MIME by extension, renditions, hidden files skipped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'canvid-files-'));
  try {
    const data = ladder();
    for (const [rel, bytes] of Object.entries(data)) {
      mkdirSync(join(dir, rel, '..'), { recursive: true });
      writeFileSync(join(dir, rel), bytes);
    }
    writeFileSync(join(dir, '.DS_Store'), 'x');
    mkdirSync(join(dir, '.git'));
    writeFileSync(join(dir, '.git', 'HEAD'), 'x');
    checkLadderFiles(await filesFromDirectory(dir), data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('filesFromInput: webkitRelativePath minus the chosen folder', async () => {
  const data = ladder();
  const list = Object.entries(data).map(([rel, bytes]) => {
    const f = new File([bytes as Uint8Array<ArrayBuffer>], rel.split('/').pop()!);
    Object.defineProperty(f, 'webkitRelativePath', { value: `out/${rel}` });
    return f as File & { webkitRelativePath: string };
  });
  const files = await filesFromInput(list);
  const asBytes = await Promise.all(files.map(async (f) => ({ ...f, data: new Uint8Array(await (f.data as Blob).arrayBuffer()) })));
  checkLadderFiles(asBytes, data);
});

function namedFiles(n: number, size = 1500): NamedFile[] {
  return Array.from({ length: n }, (_, i) => ({ path: `/f/${String(i).padStart(5, '0')}.m4s`, data: randomBytes(size + i, i + 1), mimeType: 'video/mp4' }));
}

test('declareBatches: at most 500 files and 40,000 chunk digests per begin_files', () => {
  const spec = (digests: number) => ({ chunk_digests: [Array.from({ length: digests }, () => new Uint8Array(32))] }) as never;
  assert.deepEqual(declareBatches(Array.from({ length: 1203 }, () => spec(1))).map((b) => b.length), [500, 500, 203]);
  assert.deepEqual(declareBatches(Array.from({ length: 60 }, () => spec(1)), 25).map((b) => b.length), [25, 25, 10]);
  assert.throws(() => declareBatches([spec(1)], 0), RangeError);
  assert.throws(() => declareBatches([spec(1)], 501), RangeError);
  assert.deepEqual(declareBatches([spec(30_000), spec(9_000), spec(2_000), spec(1)]).map((b) => b.length), [2, 2]);
  // ... and at most MAX_BATCH_BYTES (128 MB) declared; a larger file alone.
  const sized = (bytes: number) => ({ chunk_digests: [[new Uint8Array(32)]], total_size: BigInt(bytes) }) as never;
  assert.deepEqual(declareBatches([sized(60e6), sized(60e6), sized(10e6), sized(300e6), sized(1)]).map((b) => b.length), [2, 1, 1, 1]);
});

test('uploadFiles: batches of 500 declared with digests and renditions, every chunk once in declaration order, verified', async () => {
  const net = new FakeNetwork();
  const files = namedFiles(1203, 900);
  files[0]!.rendition = { name: '720p', width: 1280, height: 720, bandwidth: 3_000_000, codecs: 'avc1.64001f' };
  const r = await uploadFiles(net, files, { title: 'Ladder' }, { chunkSize: 1000, concurrency: 1, retry: FAST_RETRY });
  const v = net.video(r.videoId);
  assert.ok(v.ready);
  assert.deepEqual(net.created.map((c) => c.title), ['Ladder']);
  assert.equal(net.created[0]!.declaredSize, r.totalBytes);
  assert.equal(v.calls.filter((c) => c.method === 'begin_files').length, 3);
  // Batch by batch: a batch's chunks are all sent before the next batch is declared (the canister
  // refuses declarations while over 1 GiB of declared files is unwritten).
  const methods = v.calls.map((c) => c.method);
  const declares = methods.flatMap((m, i) => (m === 'begin_files' ? [i] : []));
  const batchPuts = (from: number, to: number) => methods.slice(from, to).filter((m) => m === 'put_chunk').length;
  const chunksOf = (fs: NamedFile[]) => fs.reduce((n, f) => n + Math.ceil((f.data as Uint8Array).length / 1000), 0);
  assert.equal(batchPuts(declares[0]!, declares[1]!), chunksOf(files.slice(0, 500)));
  assert.equal(batchPuts(declares[1]!, declares[2]!), chunksOf(files.slice(500, 1000)));
  assert.equal(batchPuts(declares[2]!, methods.length), chunksOf(files.slice(1000)));
  const puts = v.calls.filter((c) => c.method === 'put_chunk');
  // Files of 900..2102 bytes in 1000-byte chunks: 1 to 3 chunks each.
  const expectedPuts = files.reduce((n, f) => n + Math.ceil((f.data as Uint8Array).length / 1000), 0);
  assert.equal(puts.length, expectedPuts);
  assert.equal(r.bytesSent, r.totalBytes);
  for (const f of files) {
    assert.deepEqual(Buffer.from(v.fileBytes(f.path)), Buffer.from(f.data as Uint8Array));
    const spec = v.named.get(f.path)!.spec;
    assert.deepEqual(spec.file_digest[0], nodeFileDigest(f.data as Uint8Array, 1000));
    assert.equal(spec.chunk_digests[0]!.length, Math.ceil((f.data as Uint8Array).length / 1000));
  }
  // Declaration order = the order given; with concurrency 1 the chunks arrive in that order.
  assert.deepEqual([...v.named.keys()], files.map((f) => f.path));
  assert.equal(r.files.length, 1203);
  assert.deepEqual(r.files[0]!.rendition, { name: '720p', width: 1280, height: 720, bandwidth: 3_000_000, codecs: 'avc1.64001f' });
  assert.equal(r.files[0]!.digest, Buffer.from(nodeFileDigest(files[0]!.data as Uint8Array, 1000)).toString('hex'));
  assert.deepEqual(r.metadata.files, [1203]);
  assert.equal(r.metadata.renditions[0]![0]!.path, files[0]!.path);
});

test('uploadFiles: bounded concurrency across files; Busy past the per-file window is retried', async () => {
  for (const concurrency of [1, 6]) {
    const net = new FakeNetwork();
    const r = await uploadFiles(net, namedFiles(20), { title: 'c' }, { concurrency, retry: FAST_RETRY, onCreated: (id) => (net.video(id).latencyMs = 2) });
    assert.equal(net.video(r.videoId).maxInFlight, concurrency);
  }
  const net = new FakeNetwork();
  const files = namedFiles(40);
  const r = await uploadFiles(net, files, { title: 'w' }, {
    concurrency: 6,
    retry: { ...FAST_RETRY, retries: 50 },
    onCreated: (id) => {
      const v = net.video(id);
      v.latencyMs = 2;
      v.fileWindow = 2;
    },
  });
  const v = net.video(r.videoId);
  assert.ok(v.ready);
  assert.ok(v.maxInFlight <= 6);
  const puts = v.calls.filter((c) => c.method === 'put_chunk').length;
  assert.ok(puts > 40, `the window refused some chunks (Busy) and they were retried: ${puts} puts for 40 chunks`);
  for (const f of files) assert.deepEqual(Buffer.from(v.fileBytes(f.path)), Buffer.from(f.data as Uint8Array));
});

test('uploadFiles: abort, then resume re-declares identically and sends only the missing chunks', async () => {
  const net = new FakeNetwork();
  const files = namedFiles(30, 2500); // 3 chunks each of 1000
  const ac = new AbortController();
  let puts = 0;
  let videoId: string | undefined;
  await assert.rejects(
    uploadFiles(net, files, { title: 'r' }, {
      chunkSize: 1000,
      concurrency: 3,
      signal: ac.signal,
      retry: FAST_RETRY,
      onCreated: (id) => {
        videoId = id;
        net.video(id).onPut = () => {
          if (++puts === 40) ac.abort();
        };
      },
    }),
    (e: unknown) => e instanceof AbortError && (e as AbortError).videoId === videoId,
  );
  // Calls already in flight when the upload gave up still land.
  await new Promise((r) => setTimeout(r, 30));
  const v = net.video(videoId!);
  assert.ok(!v.ready);
  const stored = [...v.named.values()].reduce((n, f) => n + f.chunks.size, 0);
  assert.ok(stored >= 37 && stored < 90, `stored ${stored}`);
  v.onPut = undefined;
  const before = v.calls.length;
  const progress: UploadProgress[] = [];
  const r = await uploadFiles(net, files, { title: 'r' }, { chunkSize: 1000, resume: videoId, retry: FAST_RETRY, onProgress: (p) => progress.push(p) });
  const calls = v.calls.slice(before);
  assert.equal(net.created.length, 1);
  assert.equal(calls.filter((c) => c.method === 'begin_files').length, 1);
  assert.equal(calls.filter((c) => c.method === 'put_chunk').length, 90 - stored);
  assert.equal(r.chunksSkipped, stored);
  assert.ok(r.resumed);
  assert.ok(v.ready);
  for (const f of files) assert.deepEqual(Buffer.from(v.fileBytes(f.path)), Buffer.from(f.data as Uint8Array));
  const last = progress[progress.length - 1]!;
  assert.equal(last.phase, 'done');
  assert.equal(last.bytesUploaded, r.totalBytes);
  assert.equal(last.chunksUploaded, 90);
  // Resuming a Ready video that holds these very files sends nothing; different files are refused.
  const again = await uploadFiles(net, files, { title: 'r' }, { chunkSize: 1000, resume: videoId, retry: FAST_RETRY });
  assert.equal(again.bytesSent, 0);
  const changed = files.map((f, i) => (i === 3 ? { ...f, data: randomBytes(2500, 99) } : f));
  await assert.rejects(uploadFiles(net, changed, { title: 'r' }, { chunkSize: 1000, resume: videoId, retry: FAST_RETRY }), IntegrityError);
});

test('uploadFiles: transient failures and lost replies (begin_files, put_chunk, finish_upload) are retried', async () => {
  const net = new FakeNetwork();
  const files = namedFiles(12, 2500);
  const r = await uploadFiles(net, files, { title: 't' }, {
    chunkSize: 1000,
    retry: FAST_RETRY,
    onCreated: (id) => {
      const v = net.video(id);
      v.failNext('begin_files', new NetworkError('socket hang up'));
      v.lostReplies.set('begin_files', 1); // declared, reply lost: the identical retry is accepted
      v.failNext('put_chunk', fromCandidError({ Busy: { reason: 'busy' } }), new NetworkError('HTTP 503', { status: 503 }));
      v.lostReplies.set('put_chunk', 2);
      v.lostReplies.set('finish_upload', 1); // Ready, reply lost: the retry finds it finished
    },
  });
  const v = net.video(r.videoId);
  assert.ok(v.ready);
  // The network error is retried; the lost reply (answered Busy) makes the batch be halved, and
  // the halves' identical re-declarations are accepted.
  assert.ok(v.calls.filter((c) => c.method === 'begin_files').length >= 3);
  assert.equal(v.named.size, 12);
  assert.equal(v.calls.filter((c) => c.method === 'finish_upload').length, 2);
  for (const f of files) assert.deepEqual(Buffer.from(v.fileBytes(f.path)), Buffer.from(f.data as Uint8Array));
});

test('uploadFiles: a begin_files answered Busy is halved and declared again, each part sent before the next', async () => {
  const net = new FakeNetwork();
  const files = namedFiles(10, 3000);
  const r = await uploadFiles(net, files, { title: 'h' }, {
    chunkSize: 1000,
    retry: FAST_RETRY,
    onCreated: (id) => (net.video(id).maxDeclareBytes = 7000),
  });
  const v = net.video(r.videoId);
  assert.ok(v.ready);
  const tries = v.calls.filter((c) => c.method === 'begin_files').length;
  assert.ok(tries > v.declared.length, `${tries} begin_files calls, ${v.declared.length} accepted: some were Busy`);
  assert.ok(v.declared.every((d) => d.bytes <= 7000 || d.files === 1), JSON.stringify(v.declared));
  assert.equal(v.declared.reduce((n, d) => n + d.files, 0), 10);
  assert.deepEqual([...v.named.keys()], files.map((f) => f.path), 'still in declaration order');
  for (const f of files) assert.deepEqual(Buffer.from(v.fileBytes(f.path)), Buffer.from(f.data as Uint8Array));
});

test('uploadFiles refuses bad input before creating anything', async () => {
  const net = new FakeNetwork();
  const one = { data: new Uint8Array([1]), mimeType: 'video/mp4' };
  await assert.rejects(uploadFiles(net, [], { title: 'x' }), UsageError);
  await assert.rejects(uploadFiles(net, [{ ...one, path: '/video' }], { title: 'x' }), UsageError);
  await assert.rejects(uploadFiles(net, [{ ...one, path: '/a' }, { ...one, path: '/a' }], { title: 'x' }), /twice/);
  await assert.rejects(uploadFiles(net, [{ ...one, path: '/a', data: new Uint8Array() }], { title: 'x' }), /empty/);
  assert.equal(net.created.length, 0);
});

test('downloadFile reads a file back chunk by chunk and checks the listed digest', async () => {
  const net = new FakeNetwork();
  const files = namedFiles(3, 2500);
  const r = await uploadFiles(net, files, { title: 'd' }, { chunkSize: 1000, retry: FAST_RETRY });
  const v = net.video(r.videoId);
  v.filePage = 1;
  assert.deepEqual(Buffer.from(await downloadFile(r.videoId, v, files[2]!.path, { retry: FAST_RETRY })), Buffer.from(files[2]!.data as Uint8Array));
  v.corruptChunk = 1;
  await assert.rejects(downloadFile(r.videoId, v, files[1]!.path, { retry: FAST_RETRY }), IntegrityError);
  await assert.rejects(downloadFile(r.videoId, v, '/nope', { retry: FAST_RETRY }), UsageError);
});

test('CanvidClient.uploadFiles / listFiles / downloadFile / getMetadata through the candid actor', async () => {
  const net = new FakeNetwork();
  const id = await net.createVideo({ title: 'client', description: '', tags: [], declaredSize: 0 });
  const v = net.video(id);
  const agent = { rootKey: FAKE_ROOT_KEY } as unknown as Agent;
  const client = await CanvidClient.create({ agent, spawnId: 'aaaaa-aa', retry: FAST_RETRY, responseVerifier: fakeResponseVerifier });
  (client as unknown as { videos: Map<string, unknown> }).videos.set(id, fakeVideoActor(v));
  const files = namedFiles(4, 1200);
  files[1]!.rendition = { name: '360p', width: 640, height: 360, bandwidth: 800_000 };
  const r = await client.uploadFiles(files, { title: 'client' }, { resume: id, chunkSize: 1000 });
  assert.equal(r.videoId, id);
  assert.ok(v.ready);
  const listed = await client.listFiles(id);
  assert.deepEqual(listed.map((f) => f.path), files.map((f) => f.path));
  assert.equal(listed[1]!.rendition!.bandwidth, 800_000);
  const page = await client.listFilesPage(id, { limit: 3 });
  assert.equal(page.files.length, 3);
  assert.equal(page.total, 4);
  assert.equal(page.status, 'Ready');
  assert.deepEqual(Buffer.from(await client.downloadFile(id, files[3]!.path)), Buffer.from(files[3]!.data as Uint8Array));
  const details = await client.getMetadata(id);
  assert.equal(details.files, 4);
  assert.deepEqual(details.renditions, [{ path: files[1]!.path, name: '360p', width: 640, height: 360, bandwidth: 800_000 }]);
});
