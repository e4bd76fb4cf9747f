// What the browser tests share: test videos made with ffmpeg, the `serve_video` example (embedded
// replica + canvid-gateway) and its request log, the page holding the <video>, and waiting on
// media events. `page` is a playwright or puppeteer page (both have `evaluate(fn, arg)`).

import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const outDir = join(repo, 'test-output', 'browser');

export const FORMATS = [
  {
    name: 'mp4-h264',
    ext: 'mp4',
    codecs: 'video/mp4; codecs="avc1.640028"',
    ffmpeg: ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-profile:v', 'high',
      '-g', '30', '-keyint_min', '30', '-sc_threshold', '0', '-b:v', '1M', '-movflags', '+faststart'],
  },
  {
    name: 'webm-vp9',
    ext: 'webm',
    codecs: 'video/webm; codecs="vp9"',
    ffmpeg: ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M',
      '-g', '30', '-keyint_min', '30'],
  },
];

/** A `seconds`-long testsrc2 video (a running clock, so frames differ) in `fmt`, in `dir`. */
/**
 * Fails the test when the browser cannot play `fmt` (an empty `canPlayType` answer). Never a
 * skip: a browser build or CI image without a codec would otherwise silently drop that format's
 * coverage.
 */
export function assertCanPlay(browser, executable, fmt, canPlay) {
  if (!canPlay) {
    throw new Error(
      `${browser} (${executable}) cannot play ${fmt.name} (${fmt.codecs}): canPlayType answered "". ` +
        `This test must cover every format; install a ${browser} build that plays it ` +
        `(Debian's package does; scripts/browser-test.sh installs it) or point ` +
        `${browser === 'Chromium' ? 'CHROMIUM' : 'FIREFOX'} at one.`,
    );
  }
}

export function generate(fmt, dir, seconds, extra = []) {
  const file = join(dir, `test.${fmt.ext}`);
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i',
    `testsrc2=size=640x360:rate=30:duration=${seconds}`, ...fmt.ffmpeg, ...extra, file], { stdio: 'inherit' });
  return file;
}

/** Starts serve_video; resolves with its first JSON line, the child, and a promise of the log. */
export async function startServer(file, chunkSize) {
  const [cmd, args] = process.env.SERVE_VIDEO_BIN
    ? [process.env.SERVE_VIDEO_BIN, []]
    : ['cargo', ['run', '-q', '-p', 'canvid-tests', '--example', 'serve_video', '--']];
  const child = spawn(cmd, [...args, file, '--chunk-size', String(chunkSize)], {
    cwd: repo,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const rest = [];
  let first;
  const firstLine = new Promise((res, rej) => {
    first = res;
    child.on('exit', (code) => rej(new Error(`serve_video exited early (${code})`)));
  });
  let gotFirst = false;
  const done = new Promise((res) => {
    lines.on('line', (l) => {
      if (!gotFirst) {
        gotFirst = true;
        first(JSON.parse(l));
      } else {
        rest.push(JSON.parse(l));
      }
    });
    lines.on('close', () => res(rest));
  });
  const info = await firstLine;
  return { info, child, log: done };
}

export function servePage(videoUrl, preload = 'metadata') {
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>canvid</title>
<style>body{margin:0;background:#222}video{width:640px;height:360px;display:block}</style></head>
<body><video id="v" src="${videoUrl}" muted playsinline preload="${preload}"></video></body></html>`;
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res(server)));
}

/** Resolves when `event` fires on the video (or `ready()` already holds), rejects on error. */
export function waitFor(page, event, ready) {
  return page.evaluate(
    ({ event, ready }) =>
      new Promise((res, rej) => {
        const v = document.getElementById('v');
        if (ready && new Function('v', `return ${ready}`)(v)) return res(true);
        const t = setTimeout(() => rej(new Error(`timeout waiting for ${event}`)), 60000);
        v.addEventListener(event, () => { clearTimeout(t); res(true); }, { once: true });
        v.addEventListener('error', () => { clearTimeout(t); rej(new Error(`media error ${v.error && v.error.code}: ${v.error && v.error.message}`)); }, { once: true });
      }),
    { event, ready },
  );
}

export async function seek(page, to) {
  const seeked = waitFor(page, 'seeked');
  await page.evaluate((to) => { document.getElementById('v').currentTime = to; }, to);
  await seeked;
  return page.evaluate(() => document.getElementById('v').currentTime);
}

/**
 * The canister calls of a finished `serve_video` log, written to `test-output/browser/<name>-gateway.jsonl`
 * for people; its last line must account for every call.
 */
export function gatewayCalls(log, name) {
  writeFileSync(join(outDir, `${name}-gateway.jsonl`), log.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const calls = log.slice(0, -1);
  assert.deepEqual(log.at(-1), { done: true, requests: calls.length });
  return calls;
}

/** The client requests of a gateway log (not the gateway's own continuations) with their offsets. */
export function clientRanges(entries) {
  return entries
    .filter((e) => !e.streamed && e.range)
    .map((e) => ({ ...e, offset: Number(/^bytes=(\d+)-/.exec(e.range)?.[1] ?? -1) }));
}
