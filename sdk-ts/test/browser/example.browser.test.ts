// Browser test: the example page (examples/upload-and-play, bundled with esbuild) in headless
// Debian Chromium (playwright-core). A file chosen in the page (`setInputFiles`) is uploaded with
// the SDK to `canvid serve`, listed, and played back from the gateway in a <video> element.
//
// The page is served from its own small local server (another origin than `canvid serve`, as a
// dApp's page is), so the SDK's calls to the IC HTTP interface are cross-origin and rely on its
// CORS answers (preflight + Access-Control-Allow-Origin, as the IC's boundary nodes give); the
// <video> loads `http://<id>.localhost:<port>/video` from the gateway directly. Needs: ffmpeg, /usr/bin/chromium (or $CHROMIUM), $CANVID_BIN or cargo, and
// `node examples/build.mjs` run before (scripts/sdk-test.sh does it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { nodeFileDigest } from '../support/fake.js';
import { REPO, startServe, type Served } from '../support/serve.js';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const EXAMPLE = resolve(REPO, 'sdk-ts/examples/dist/upload-and-play');
const OUT = resolve(REPO, 'test-output/sdk-browser');
const CHUNK = 4096; // the ~20 KB clip spans several chunks, so playback needs several Range answers

let served: Served;
let page_server: Server;
let work: string;
let context: BrowserContext;

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
  assert.ok(existsSync(join(EXAMPLE, 'app.js')), 'bundle the example first: node examples/build.mjs');
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
  mkdirSync(OUT, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'canvid-sdk-browser-'));
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=duration=4:size=320x240:rate=25',
    '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-movflags', '+faststart', join(work, 'clip.mp4')]);
  served = await startServe();
  page_server = await startPageServer();
  const profile = mkdtempSync(join(tmpdir(), 'canvid-sdk-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 900, height: 900 },
  });
});

after(async () => {
  await context?.close();
  page_server?.close();
  await served?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the example page uploads a chosen file and plays it from the gateway', { timeout: 600_000 }, async () => {
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleLines: string[] = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  const gateway = served.url; // http://127.0.0.1:<port> -> <id>.localhost:<port>
  // `host`: the SDK talks to canvid serve directly, cross-origin (CORS).
  const q = new URLSearchParams({ spawn: served.spawnId, index: served.indexId, local: '1', gateway, host: served.url, chunkSize: String(CHUNK) });
  const pageUrl = `http://127.0.0.1:${(page_server.address() as { port: number }).port}/?${q}`;
  await page.goto(pageUrl);
  await page.waitForFunction(() => (window as any).canvidState?.phase === 'ready', null, { timeout: 60_000 }).catch(async (e) => {
    throw new Error(`page did not get ready: ${e.message}\n${consoleLines.join('\n')}`);
  });

  const clip = join(work, 'clip.mp4');
  await page.setInputFiles('#file', clip);
  await page.fill('#title', 'browser upload');
  await page.click('#upload');
  await page.waitForFunction(() => ['done', 'error'].includes((window as any).canvidState.phase), null, { timeout: 300_000 });
  const state = await page.evaluate(() => (window as any).canvidState);
  await page.screenshot({ path: join(OUT, 'uploaded.png') });
  assert.equal(state.phase, 'done', `upload failed: ${JSON.stringify(state.error)}\n${consoleLines.join('\n')}`);

  // The browser computed the same canvid file digest as Node does for the file.
  const bytes = readFileSync(clip);
  assert.equal(state.fileDigest, Buffer.from(nodeFileDigest(bytes, CHUNK)).toString('hex'));
  assert.ok(state.progress.some((p: any) => p.phase === 'hashing'));
  const last = state.progress[state.progress.length - 1];
  assert.equal(last.bytesUploaded, bytes.length);
  assert.deepEqual(state.listed, [state.videoId]);

  // Playback from the gateway.
  const src = await page.evaluate(() => (document.getElementById('player') as HTMLVideoElement).currentSrc);
  assert.equal(src, `http://${state.videoId}.localhost:${served.port}/video`);
  const played = await page.evaluate(
    () =>
      new Promise<{ duration: number; time: number; w: number; h: number }>((res, rej) => {
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
              res({ duration: v.duration, time: v.currentTime, w: v.videoWidth, h: v.videoHeight });
            }
          });
        };
        if (v.readyState >= 2) go();
        else v.addEventListener('loadeddata', go, { once: true });
      }),
  );
  await page.screenshot({ path: join(OUT, 'playing.png') });
  assert.ok(Math.abs(played.duration - 4) < 0.2, `duration ${played.duration}`);
  assert.ok(played.time > 0.5);
  assert.deepEqual([played.w, played.h], [320, 240]);

  // Seek to near the end: needs a Range request beyond the first chunk.
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
});
