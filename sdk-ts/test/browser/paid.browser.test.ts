// Browser test of paid videos: the example page (examples/upload-and-play) in headless Chromium
// against `canvid serve --icrc-ledger` (DFINITY's ICRC ledger in the embedded replica). The
// creator uploads a real ffmpeg clip and sells it with the SDK in Node; in the page, a test
// identity `--fund` gave tokens to buys a pass (approve + buy_access, receipt verified against
// the ledger) and plays the video through its playback URL: it plays and seeks. A second
// identity without a pass gets the preview only: the media request beyond it is answered 401,
// and a bad token 403. Skips, printing SKIPPED, without the ledger fixture. Screenshots go to
// test-output/sdk-browser/. Needs what example.browser.test.ts needs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CanvidClient } from '../../src/index.js';
import { REPO, gatewayGet, icrcLedgerDir, startServe, type Served } from '../support/serve.js';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const EXAMPLE = resolve(REPO, 'sdk-ts/examples/dist/upload-and-play');
const OUT = resolve(REPO, 'test-output/sdk-browser');
const CHUNK = 4096;
const FEE = 10_000n;
const START = 50_000_000n;
const PRICE = 1_500_000n;

const LEDGER_DIR = icrcLedgerDir();
const skip = LEDGER_DIR ? false : 'SKIPPED: DFINITY\'s ICRC ledger fixture is absent (../shared/fixtures/icrc-ledger; set ICRC_LEDGER_DIR)';
if (!LEDGER_DIR) console.error(`paid.browser: ${skip}`);

const creator = Ed25519KeyIdentity.generate();
const buyerSeed = randomBytes(32);
const buyer = Ed25519KeyIdentity.generate(new Uint8Array(buyerSeed));
const strangerSeed = randomBytes(32);

let served: Served;
let pageServer: Server;
let work: string;
let context: BrowserContext;
let videoId: string;
let clip: Buffer;

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json' };

function startPageServer(): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const file = join(EXAMPLE, url.pathname === '/' ? 'index.html' : url.pathname.slice(1));
    if (!file.startsWith(EXAMPLE) || !existsSync(file)) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

before(async () => {
  if (!LEDGER_DIR) return;
  assert.ok(existsSync(join(EXAMPLE, 'app.js')), 'bundle the example first: node examples/build.mjs');
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
  mkdirSync(OUT, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'canvid-sdk-paid-'));
  const file = join(work, 'clip.mp4');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=duration=4:size=320x240:rate=25',
    '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-movflags', '+faststart', file]);
  clip = readFileSync(file);
  served = await startServe({ icrcLedger: LEDGER_DIR, fund: [`${buyer.getPrincipal().toText()}=${START}`] });
  // The creator uploads and sells the clip (Node, the SDK): a preview of one chunk, a day pass.
  const canvid = await CanvidClient.create({ host: served.url, identity: creator, rootKey: served.rootKey, spawnId: served.spawnId, indexId: served.indexId });
  videoId = (await canvid.upload(new Blob([new Uint8Array(clip)]), { title: 'paid clip', mimeType: 'video/mp4' }, { chunkSize: CHUNK })).videoId;
  await canvid.access().setAccess(videoId, { mode: 'paid', ledger: served.ledgerId!, previewBytes: CHUNK, offers: [{ id: 'day', price: PRICE, durationSeconds: 86_400 }] });
  pageServer = await startPageServer();
  const profile = mkdtempSync(join(tmpdir(), 'canvid-sdk-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 900, height: 1100 },
  });
});

after(async () => {
  await context?.close();
  pageServer?.close();
  await served?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function openPage(seed: Buffer): Promise<{ page: Page; log: string[]; media: Array<{ url: string; status: number; range?: string }> }> {
  const page = await context.newPage();
  const log: string[] = [];
  const media: Array<{ url: string; status: number; range?: string }> = [];
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => {
    if (r.url().includes(`${videoId}.localhost`)) log.push(`request failed: ${r.url()} ${r.headers()['range']} ${r.failure()?.errorText}`);
  });
  page.on('request', (r) => {
    if (r.url().includes(`${videoId}.localhost`)) log.push(`request: ${r.url()} ${r.headers()['range']}`);
  });
  // What the network saw, from Chromium's DevTools protocol: a 401 with a text body for a media
  // request is blocked by Opaque Response Blocking (ERR_BLOCKED_BY_ORB) before Playwright's
  // `response` event, but the network layer reports its status.
  const cdp = await context.newCDPSession(page);
  const ranges = new Map<string, string | undefined>();
  const urls = new Map<string, string>();
  cdp.on('Network.requestWillBeSent', (e: any) => {
    urls.set(e.requestId, e.request.url);
    ranges.set(e.requestId, e.request.headers['Range'] ?? e.request.headers['range']);
  });
  // The raw answer as the network layer got it (also for answers ORB then blocks).
  cdp.on('Network.responseReceivedExtraInfo', (e: any) => {
    const url = urls.get(e.requestId) ?? '';
    if (url.includes(`${videoId}.localhost`)) media.push({ url, status: e.statusCode, range: ranges.get(e.requestId) });
  });
  cdp.on('Network.loadingFailed', (e: any) => {
    const url = urls.get(e.requestId) ?? '';
    if (url.includes(`${videoId}.localhost`)) log.push(`loading failed: ${ranges.get(e.requestId)} ${e.errorText} ${e.blockedReason ?? ''}`);
  });
  await cdp.send('Network.enable');
  const q = new URLSearchParams({ spawn: served.spawnId, index: served.indexId, local: '1', gateway: served.url, host: served.url, video: videoId, seed: seed.toString('hex') });
  await page.goto(`http://127.0.0.1:${(pageServer.address() as { port: number }).port}/?${q}`);
  await page.waitForFunction(() => (window as any).canvidState?.phase === 'ready', null, { timeout: 60_000 }).catch((e) => {
    throw new Error(`page did not get ready: ${e.message}\n${log.join('\n')}`);
  });
  return { page, log, media };
}

test('a funded identity buys a pass in the page, then the <video> plays and seeks through the playback URL', { skip, timeout: 600_000 }, async () => {
  const { page, log, media } = await openPage(buyerSeed);
  assert.equal(await page.evaluate(() => (window as any).canvidState.principal), buyer.getPrincipal().toText());
  await page.click('#load-offers');
  await page.waitForFunction(() => (window as any).canvidState.access.offers?.length > 0 || (window as any).canvidState.access.phase === 'error', null, { timeout: 60_000 });
  assert.deepEqual(await page.evaluate(() => (window as any).canvidState.access.offers), [{ id: 'day', price: String(PRICE), durationSeconds: 86_400 }]);
  await page.click('#buy');
  await page.waitForFunction(() => ['playing', 'error'].includes((window as any).canvidState.access.phase), null, { timeout: 120_000 });
  const access = await page.evaluate(() => (window as any).canvidState.access);
  assert.equal(access.phase, 'playing', `buy failed: ${JSON.stringify(access.error)}\n${log.join('\n')}`);
  assert.equal(access.receipt.amount, String(PRICE));
  assert.equal(access.verified, true);
  assert.match(access.src, new RegExp(`^http://${videoId}\\.localhost:${served.port}/video\\?token=`));

  // The ledger: price + approval fee + transfer fee left the buyer (checked from Node).
  const asBuyer = await CanvidClient.create({ host: served.url, identity: buyer, rootKey: served.rootKey, spawnId: served.spawnId });
  assert.equal(await asBuyer.access().balance(served.ledgerId!), START - PRICE - 2n * FEE);

  const played = await page.evaluate(
    () =>
      new Promise<{ duration: number; time: number; src: string }>((res, rej) => {
        const v = document.getElementById('player') as HTMLVideoElement;
        const t = setTimeout(() => rej(new Error(`no playback (readyState ${v.readyState}, error ${v.error?.message})`)), 60_000);
        v.addEventListener('error', () => rej(new Error(`media error ${v.error?.code}: ${v.error?.message}`)));
        const go = () => {
          v.play().catch(rej);
          v.addEventListener('timeupdate', function tick() {
            if (v.currentTime > 0.5) {
              v.removeEventListener('timeupdate', tick);
              clearTimeout(t);
              v.pause();
              res({ duration: v.duration, time: v.currentTime, src: v.currentSrc });
            }
          });
        };
        if (v.readyState >= 2) go();
        else v.addEventListener('loadeddata', go, { once: true });
      }),
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${JSON.stringify(media)}\n${log.join('\n')}`);
  });
  await page.screenshot({ path: join(OUT, 'paid-playing.png') });
  assert.ok(Math.abs(played.duration - 4) < 0.2, `duration ${played.duration}`);
  assert.equal(played.src, access.src);

  // Seek near the end: Range requests far beyond the preview, allowed by the token.
  const seeked = await page.evaluate(
    () =>
      new Promise<number>((res, rej) => {
        const v = document.getElementById('player') as HTMLVideoElement;
        const t = setTimeout(() => rej(new Error('seek timed out')), 30_000);
        v.addEventListener('seeked', () => {
          clearTimeout(t);
          res(v.currentTime);
        }, { once: true });
        v.currentTime = 3.5;
      }),
  );
  assert.ok(seeked > 3, `seeked to ${seeked}`);
  const advanced = await page.evaluate(
    () =>
      new Promise<number>((res, rej) => {
        const v = document.getElementById('player') as HTMLVideoElement;
        const start = v.currentTime;
        const t = setTimeout(() => rej(new Error(`no progress after the seek (at ${v.currentTime})`)), 30_000);
        v.addEventListener('timeupdate', function tick() {
          if (v.currentTime > start + 0.1 || v.ended) {
            v.removeEventListener('timeupdate', tick);
            clearTimeout(t);
            res(v.currentTime);
          }
        });
        v.play().catch(rej);
      }),
  );
  assert.ok(advanced > seeked, `currentTime ${advanced} after seeking to ${seeked}`);
  await page.screenshot({ path: join(OUT, 'paid-seeked.png') });
  assert.ok(media.every((m) => m.status === 200 || m.status === 206), `media answers: ${JSON.stringify(media)}`);
  assert.ok(media.some((m) => m.status === 206 && m.range && Number(/bytes=(\d+)/.exec(m.range)?.[1]) >= CHUNK), 'bytes beyond the preview were served');
  await page.close();
});

test('an identity without a pass gets the preview, then 401 for the media beyond it (403 with a bad token)', { skip, timeout: 600_000 }, async () => {
  const { page, log, media } = await openPage(strangerSeed);
  await page.click('#try');
  // The <video> gets the preview chunk, then the gateway refuses the rest: the element errors
  // out or stalls; the responses it got say why.
  const deadline = Date.now() + 60_000;
  while (!media.some((m) => m.status === 401) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const why = await page.evaluate(() => {
    const v = document.getElementById('player') as HTMLVideoElement;
    return `readyState ${v.readyState}, error ${v.error?.code}: ${v.error?.message}`;
  });
  log.push(`video: ${why}`);
  await page.screenshot({ path: join(OUT, 'no-pass.png') });
  assert.ok(media.some((m) => m.status === 401), `no 401 among ${JSON.stringify(media)}\n${log.join('\n')}`);
  assert.ok(media.every((m) => m.status !== 206 || Number(/bytes=(\d+)/.exec(m.range ?? 'bytes=0')?.[1] ?? 0) < CHUNK));
  const mediaError = await page.evaluate(() => (document.getElementById('player') as HTMLVideoElement).error?.code ?? null);
  assert.notEqual(mediaError, null, 'the element cannot play past the preview');
  // Chromium itself never hands the refusal to the page: it blocks the text answer (ORB).
  assert.ok(log.some((l) => /loading failed: bytes=\d+- .*BLOCKED_BY_ORB|request failed: .*BLOCKED_BY_ORB/.test(l)) || mediaError !== null);

  // A made-up token: the media request past the preview is answered 403.
  await page.evaluate((src) => {
    const v = document.getElementById('player') as HTMLVideoElement;
    v.src = `${src}?token=not-a-token`;
    v.load();
  }, await page.evaluate(() => (window as any).canvidState.access.src as string));
  const deadline403 = Date.now() + 60_000;
  while (!media.some((m) => m.status === 403) && Date.now() < deadline403) await new Promise((r) => setTimeout(r, 200));
  assert.ok(media.some((m) => m.status === 403 && m.url.includes('token=not-a-token')), `no 403 among ${JSON.stringify(media)}\n${log.join('\n')}`);

  // Buying without funds fails in the ledger (nothing is charged); asking for a playback URL
  // without a pass is refused.
  await page.click('#buy');
  await page.waitForFunction(() => ['playing', 'error'].includes((window as any).canvidState.access.phase), null, { timeout: 60_000 });
  const access = await page.evaluate(() => (window as any).canvidState.access);
  assert.equal(access.phase, 'error');
  assert.match(`${access.error.name} ${access.error.message}`, /InsufficientFunds/);
  // The preview chunk is public; past it, 401 without a token and 403 with one that is not valid.
  assert.equal((await gatewayGet(served.port, videoId, '/video', { range: `bytes=0-${CHUNK - 1}` })).status, 206);
  assert.equal((await gatewayGet(served.port, videoId, '/video', { range: `bytes=${CHUNK}-` })).status, 401);
  assert.equal((await gatewayGet(served.port, videoId, '/video?token=not-a-token', { range: `bytes=${CHUNK}-` })).status, 403);
  await page.close();
});
