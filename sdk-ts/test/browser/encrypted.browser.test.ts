// Browser test: an end-to-end encrypted video (docs/encryption.md) played in headless Chromium
// through the example page (`?encrypted=<id>`) and the decrypting service worker, on
// `canvid serve` (the embedded replica's vetKD).
//
// In one browser:
//   * the owner's page (its identity from `seed=`) encrypts and uploads a real MP4 (ffmpeg) with
//     the example page's "encrypted" box (the upload makes the video private), then plays it;
//     from Node the owner reads it back decrypted and allowlists a viewer;
//   * the viewer's page gets the key, plays (time advances, frames decoded) and seeks to a later
//     time and plays from there;
//   * a stranger's page gets `NotAuthorizedError` and its <video> never gets media.
// The page caps the worker's answers to the element's open-ended ranges at 3 chunks
// (`maxAnswer`), so the element asks for later ranges itself (the test checks it does); the
// worker's answer to a closed range in the middle (206 in plaintext coordinates, only the
// covering chunks fetched) is also checked with a `fetch` from the viewer's page (and without a
// browser in test/unit/decrypt-sw.test.ts).
// The page reaches the canister's HTTP URL through a recording proxy (the `gateway` the page is
// given), so the test sees every byte the browser received from it: no answer may contain any
// 32-byte window of the source file. Printed, not asserted: the time to the first frame and the
// cycles a viewer's playback costs the video canister (the `video_key` vetKD fee).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CanvidClient } from '../../src/index.js';
import { REPO, startServe, type Served } from '../support/serve.js';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const EXAMPLE = resolve(REPO, 'sdk-ts/examples/dist/upload-and-play');
const OUT = resolve(REPO, 'test-output/sdk-browser');
const CHUNK = 8192; // stored chunk size: 8,164 plaintext bytes per chunk, several chunks in the clip
const WINDOW = 32;

const seeds = { owner: 11, viewer: 22, stranger: 33 } as const;
const seedHex = (n: number) => Buffer.alloc(32, n).toString('hex');
const identity = (n: number) => Ed25519KeyIdentity.generate(new Uint8Array(Buffer.alloc(32, n)));

let served: Served;
let pageServer: Server;
let proxy: Server;
let work: string;
let context: BrowserContext;
let source: Buffer;
let videoId: string;
/** Every answer the proxy passed from the canister's HTTP URL to the browser. */
const mediaRequests: string[] = [];
const answers: Array<{ url: string; status: number; range?: string; body: Buffer }> = [];

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json' };

function listen(server: Server): Promise<Server> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}
const portOf = (s: Server) => (s.address() as { port: number }).port;

function startPageServer(): Promise<Server> {
  return listen(
    createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const file = join(EXAMPLE, url.pathname === '/' ? 'index.html' : url.pathname.slice(1));
      if (!file.startsWith(EXAMPLE) || !existsSync(file)) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(readFileSync(file));
    }),
  );
}

/** `<id>.localhost:<proxy>` → `<id>.localhost:<serve>`, recording each answer's body. */
function startProxy(): Promise<Server> {
  return listen(
    createServer((req, res) => {
      const host = (req.headers.host ?? '').replace(/:\d+$/, `:${served.port}`);
      const up = request(
        { host: '127.0.0.1', port: served.port, path: req.url, method: req.method, headers: { ...req.headers, host } },
        (r) => {
          const parts: Buffer[] = [];
          r.on('data', (d: Buffer) => parts.push(d));
          r.on('end', () => {
            const body = Buffer.concat(parts);
            answers.push({ url: `${host}${req.url}`, status: r.statusCode ?? 0, range: req.headers.range, body });
            res.writeHead(r.statusCode ?? 502, r.headers);
            res.end(body);
          });
        },
      );
      up.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      req.pipe(up);
    }),
  );
}

/** Whether `hay` contains any 32-byte window of the source file. */
function leaksSource(windows: Set<string>, hay: Buffer): boolean {
  for (let i = 0; i + WINDOW <= hay.length; i++) if (windows.has(hay.toString('latin1', i, i + WINDOW))) return true;
  return false;
}

before(async () => {
  assert.ok(existsSync(join(EXAMPLE, 'canvid-decrypt-sw.js')), 'bundle the example first: node examples/build.mjs');
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
  mkdirSync(OUT, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'canvid-sdk-encrypted-'));
  const clip = join(work, 'clip.mp4');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=duration=4:size=320x240:rate=25',
    '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-g', '25', '-movflags', '+faststart', clip]);
  source = readFileSync(clip);
  [served, pageServer] = await Promise.all([startServe(), startPageServer()]);
  proxy = await startProxy();
  context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'canvid-sdk-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 700, height: 700 },
  });
});

after(async () => {
  await context?.close();
  pageServer?.close();
  proxy?.close();
  await served?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function client(seed: number): Promise<CanvidClient> {
  return CanvidClient.create({ host: served.url, identity: identity(seed), rootKey: served.rootKey, spawnId: served.spawnId, indexId: served.indexId });
}

async function openPage(seed: number, upload?: string): Promise<{ page: Page; log: string[] }> {
  const page = await context.newPage();
  const log: string[] = [];
  page.on('request', (r) => {
    if (r.url().includes('/canvid-decrypt/')) mediaRequests.push(r.headers()['range'] ?? '(none)');
  });
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  // maxAnswer: the worker answers the element's open-ended ranges 3 chunks at a time, so the
  // element itself asks for later ranges (a clip this small would otherwise arrive in one answer).
  const q = new URLSearchParams({ spawn: served.spawnId, index: served.indexId, local: '1', host: served.url, gateway: `http://127.0.0.1:${portOf(proxy)}`, seed: seedHex(seed), chunkSize: String(CHUNK), maxAnswer: String(3 * (CHUNK - 28)) });
  if (!upload) q.set('encrypted', videoId);
  await page.goto(`http://127.0.0.1:${portOf(pageServer)}/?${q}`);
  if (upload) {
    // The page encrypts and uploads the file itself (its "encrypted" box), then plays it.
    await page.waitForFunction(() => (window as any).canvidState?.phase === 'ready', null, { timeout: 30_000 });
    await page.setInputFiles('#file', upload);
    await page.check('#encrypt');
    await page.click('#upload');
    await page.waitForFunction(() => ['done', 'error'].includes((window as any).canvidState.phase), null, { timeout: 60_000 });
    const st = await page.evaluate(() => (window as any).canvidState);
    assert.equal(st.phase, 'done', `upload failed: ${JSON.stringify(st.error)}\n${log.join('\n')}`);
    videoId = st.videoId;
  }
  await page
    .waitForFunction(() => ['playing', 'error'].includes((window as any).canvidState?.encrypted?.phase), null, { timeout: 30_000 })
    .catch((e: Error) => {
      throw new Error(`no encrypted playback state: ${e.message}\n${log.join('\n')}`);
    });
  return { page, log };
}

const state = (page: Page) => page.evaluate(() => (window as any).canvidState.encrypted);

/** Waits until `cond` (with `v` the player) holds; reports the element's state otherwise. */
async function until(page: Page, what: string, cond: string, log: string[], timeout = 20_000): Promise<void> {
  await page.waitForFunction((c) => new Function('v', `return ${c}`)(document.getElementById('player')), cond, { timeout, polling: 50 }).catch(async (e: Error) => {
    const st = await page.evaluate(() => {
      const v = document.getElementById('player') as HTMLVideoElement;
      return { t: v.currentTime, rs: v.readyState, ns: v.networkState, err: v.error?.message, src: v.currentSrc };
    });
    throw new Error(`${what}: ${e.message}\n${JSON.stringify(st)}\n${log.join('\n')}`);
  });
}

/** Plays from the start, then seeks to 3 s and plays from there; returns what the element saw. */
async function playAndSeek(page: Page, log: string[], name: string) {
  await page.evaluate(() => void (document.getElementById('player') as HTMLVideoElement).play());
  await until(page, `${name}: playing`, 'v.currentTime > 0.5 && v.getVideoPlaybackQuality().totalVideoFrames > 0', log);
  const played = await page.evaluate(() => {
    const v = document.getElementById('player') as HTMLVideoElement;
    return { w: v.videoWidth, h: v.videoHeight, duration: v.duration, frames: v.getVideoPlaybackQuality().totalVideoFrames };
  });
  await page.screenshot({ path: join(OUT, `encrypted-${name}.png`) });
  await page.evaluate(() => {
    (document.getElementById('player') as HTMLVideoElement).currentTime = 3;
  });
  await until(page, `${name}: seeked`, '!v.seeking && v.currentTime >= 3 && v.readyState >= 2', log);
  await until(page, `${name}: playing after the seek`, 'v.currentTime > 3.3', log);
  return played;
}

test('an encrypted private video uploaded from the page: the owner and the allowlisted viewer play and seek it, a stranger gets NotAuthorized, no plaintext crosses the network', { timeout: 120_000 }, async () => {
  // The owner's page encrypts and uploads the clip (WebCrypto in Chromium), then plays and seeks it.
  const o = await openPage(seeds.owner, join(work, 'clip.mp4'));
  const os = await state(o.page);
  assert.equal(os.phase, 'playing', JSON.stringify(os.error));
  await playAndSeek(o.page, o.log, 'owner');
  await o.page.close();

  const owner = await client(seeds.owner);
  const viewer = identity(seeds.viewer).getPrincipal().toText();
  const meta = await owner.getMetadata(videoId);
  assert.deepEqual(meta.encryption, { scheme: 'canvid-aes256gcm-v1', keyName: 'key_1', keyEpoch: 0, plainSize: source.length, plainChunkSize: CHUNK - 28 });
  assert.equal(meta.size, source.length + 28 * meta.chunkCount);
  assert.ok(meta.chunkCount >= 3, `${meta.chunkCount} chunks`);
  assert.equal(meta.mimeType, 'video/mp4');
  const access = owner.access({ gateway: served.url });
  assert.equal((await access.accessInfo(videoId)).policy.mode, 'private'); // the upload made it private
  await access.addViewers(videoId, [viewer]);
  // The owner reads the plaintext back (decrypting download, range read of a middle span).
  assert.deepEqual(Buffer.from(await owner.downloadDecrypted(videoId)), source);
  assert.deepEqual(Buffer.from(await owner.readDecrypted(videoId, 5_000, 20_000)), source.subarray(5_000, 20_000));

  // Viewer: key, first frame, play, seek.
  const cyclesBefore = (await owner.canisterInfo(videoId)).cycles;
  const v = await openPage(seeds.viewer);
  const vs = await state(v.page);
  assert.equal(vs.phase, 'playing', `viewer: ${JSON.stringify(vs.error)}\n${v.log.join('\n')}`);
  assert.match(vs.src, new RegExp(`^http://127\\.0\\.0\\.1:\\d+/canvid-decrypt/${videoId}/video\\?session=`));
  const viewerMediaFrom = mediaRequests.length;
  const played = await playAndSeek(v.page, v.log, 'viewer');
  // The element read the file through several of the worker's answers, in plaintext coordinates.
  const starts = mediaRequests.slice(viewerMediaFrom).map((r) => /^bytes=(\d+)-/.exec(r)?.[1]).filter((x) => x !== undefined).map(Number);
  assert.ok(starts.some((x) => x > 0), `the element asked only for ${JSON.stringify(mediaRequests.slice(viewerMediaFrom))}`);
  // The worker's answer to a range in the middle, as the page's fetch sees it (plaintext coordinates).
  const ranged = await v.page.evaluate(async (src) => {
    const r = await fetch(src, { headers: { Range: 'bytes=20000-25000' } });
    return { status: r.status, range: r.headers.get('content-range'), length: r.headers.get('content-length'), accept: r.headers.get('accept-ranges'), body: Array.from(new Uint8Array(await r.arrayBuffer())) };
  }, vs.src);
  assert.deepEqual({ ...ranged, body: undefined }, { status: 206, range: `bytes 20000-25000/${source.length}`, length: '5001', accept: 'bytes', body: undefined });
  assert.deepEqual(Buffer.from(ranged.body), source.subarray(20000, 25001));
  const first = (await state(v.page)).firstFrameMs;
  const cyclesOne = (await owner.canisterInfo(videoId)).cycles;
  // Playing it again in the same page reuses the page's key: no second vetKD fee.
  await v.page.evaluate((id) => (window as any).canvidPlayEncrypted(id), videoId);
  const again = await state(v.page);
  assert.equal(again.phase, 'playing', JSON.stringify(again.error));
  await v.page.evaluate(() => void (document.getElementById('player') as HTMLVideoElement).play());
  await until(v.page, 'viewer: playing again', 'v.currentTime > 0.3', v.log);
  const cyclesAfter = (await owner.canisterInfo(videoId)).cycles;
  assert.ok(cyclesBefore - cyclesAfter < 40_000_000_000n, `two playbacks in one page cost ${cyclesBefore - cyclesAfter} cycles: the key was asked twice`);
  assert.deepEqual([played.w, played.h], [320, 240]);
  assert.ok(Math.abs(played.duration - 4) < 0.2, `duration ${played.duration}`);
  await v.page.close();

  // Stranger: typed refusal, no media ever.
  const [answersBefore, mediaBefore] = [answers.length, mediaRequests.length];
  const s = await openPage(seeds.stranger);
  const ss = await state(s.page);
  assert.equal(ss.phase, 'error');
  assert.equal(ss.error.name, 'NotAuthorizedError', JSON.stringify(ss.error));
  await new Promise((r) => setTimeout(r, 1000));
  const el = await s.page.evaluate(() => {
    const x = document.getElementById('player') as HTMLVideoElement;
    return { rs: x.readyState, src: x.currentSrc, frames: x.getVideoPlaybackQuality().totalVideoFrames };
  });
  assert.deepEqual(el, { rs: 0, src: '', frames: 0 });
  // Nothing was asked of the worker nor of the canister's URL.
  assert.deepEqual([answers.length, mediaRequests.length], [answersBefore, mediaBefore]);
  await s.page.close();

  // Everything the browser received from the canister's URL: ciphertext only.
  const windows = new Set<string>();
  for (let i = 0; i + WINDOW <= source.length; i++) windows.add(source.toString('latin1', i, i + WINDOW));
  assert.ok(leaksSource(windows, source.subarray(1000, 1100)), 'the detector finds a window of the source');
  const video = answers.filter((a) => a.url.includes('/video'));
  const bytes = video.reduce((n, a) => n + a.body.length, 0);
  assert.ok(video.length >= 4 && bytes >= source.length, `${video.length} answers, ${bytes} bytes from the canister's URL`);
  assert.ok(video.every((a) => a.status === 206 || a.status === 200), JSON.stringify(video.map((a) => [a.status, a.range])));
  for (const a of answers) assert.ok(!leaksSource(windows, a.body), `${a.url} (${a.range}) carries plaintext`);

  console.log(
    `encrypted playback: first frame ${first?.toFixed(0)} ms after playEncrypted (key ${vs.keyMs?.toFixed(0)} ms); ` +
      `a viewer's playback cost the canister ${cyclesBefore - cyclesOne} cycles (video_key + playback_token), playing it again in the page ${cyclesOne - cyclesAfter}; ` +
      `${video.length} answers, ${bytes} bytes from the canister's URL for ${source.length} plaintext bytes; media requests ${mediaRequests.join(' ')}`,
  );
});
