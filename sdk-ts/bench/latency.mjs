#!/usr/bin/env node
// Latency benchmark (not a test: it asserts nothing about time): time to first frame and
// seek-to-play in headless Chromium, for the single-file path (`/video`, Range requests) and the
// HLS path (`/hls/master.m3u8` through hls.js), on `canvid serve` (embedded replica, the
// verifying gateway). The same 1080p test picture (ffmpeg testsrc2, 20 s, H.264, 2.5 Mbit/s) is uploaded as a
// main file (MP4, faststart) and as a 1080p+360p fMP4 ladder (2 s segments). Each run uses a
// fresh browser context (empty cache). Prints median and p90 per path and network profile.
//
//   cd sdk-ts && npm run build && node bench/latency.mjs [--runs 7] [--only file|hls] [--json out.json]
//
// Needs ffmpeg, Chromium (/usr/bin/chromium or $CHROMIUM), $CANVID_BIN or cargo.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { CanvidClient, hlsUrl, videoUrl } from '../dist/src/index.js';
import { filesFromDirectory } from '../dist/src/node.js';
import { makeHlsLadder } from '../dist/test/support/hls.js';
import { startServe } from '../dist/test/support/serve.js';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const RUNS = Number(arg('runs', '7'));
const JSON_OUT = arg('json', undefined);
const ONLY = arg('only', undefined);
const SECONDS = 20;
const SEEK_TO = 15.2;
// Network profiles applied with CDP: the loopback as is, and a link like a good home connection.
const PROFILES = [
  { name: 'loopback', conditions: undefined },
  { name: '20 Mbit/s, 40 ms RTT', conditions: { offline: false, latency: 40, downloadThroughput: (20e6 / 8), uploadThroughput: (5e6 / 8) } },
];

const work = mkdtempSync(join(tmpdir(), 'canvid-bench-'));
const served = await startServe();
try {
  // Media.
  const mp4 = join(work, 'clip.mp4');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=1920x1080:rate=30:duration=${SECONDS}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-profile:v', 'high', '-pix_fmt', 'yuv420p', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0',
    '-b:v', '2500k', '-maxrate', '2500k', '-bufsize', '5000k', '-movflags', '+faststart', mp4]);
  const ladder = join(work, 'ladder');
  makeHlsLadder(ladder, { seconds: SECONDS, segmentSeconds: 2 });

  // Upload both with the SDK.
  const canvid = await CanvidClient.create({ host: served.url, identity: Ed25519KeyIdentity.generate(), rootKey: served.rootKey, spawnId: served.spawnId, indexId: served.indexId });
  const single = ONLY === 'hls' ? undefined : await canvid.upload(new Uint8Array(readFileSync(mp4)), { title: 'bench single file', mimeType: 'video/mp4' });
  const hls = ONLY === 'file' ? undefined : await canvid.uploadFiles(await filesFromDirectory(ladder), { title: 'bench HLS' });

  // The page: bench/page.js bundled with hls.js and the SDK's attachHls.
  const bundle = await build({ entryPoints: [join(here, 'page.js')], bundle: true, format: 'esm', platform: 'browser', write: false, minify: true, logLevel: 'warning' });
  const js = bundle.outputFiles[0].text;
  const html = '<!doctype html><meta charset="utf-8"><title>canvid latency</title><body><script type="module" src="/page.js"></script></body>';
  const pageServer = createServer((req, res) => {
    if (req.url === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(js);
    } else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html);
    }
  });
  await new Promise((r) => pageServer.listen(0, '127.0.0.1', r));
  const pageUrl = `http://127.0.0.1:${pageServer.address().port}/`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--autoplay-policy=no-user-gesture-required', '--disable-background-networking'],
  });
  const targets = [
    ...(single ? [{ path: 'single file /video', kind: 'file', url: videoUrl(single.videoId, served.url) }] : []),
    ...(hls ? [{ path: 'HLS hls.js /hls/master.m3u8', kind: 'hls', url: hlsUrl(hls.videoId, served.url) }] : []),
  ];
  const results = [];
  const q = (xs, p) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  };
  for (const profile of PROFILES) {
    for (const t of targets) {
      const ttff = [];
      const seek = [];
      const heights = [];
      for (let i = 0; i < RUNS + 1; i++) {
        const ctx = await browser.newContext();
        const page = await ctx.newPage();
        if (profile.conditions) {
          const cdp = await ctx.newCDPSession(page);
          await cdp.send('Network.enable');
          await cdp.send('Network.emulateNetworkConditions', profile.conditions);
        }
        await page.goto(pageUrl);
        await page.waitForFunction(() => window.bench !== undefined);
        const r = await page.evaluate(({ kind, url, seekTo }) => window.bench.run(kind, url, seekTo), { kind: t.kind, url: t.url, seekTo: SEEK_TO });
        await ctx.close();
        if (i === 0) continue; // warm-up (canister and gateway first touches)
        ttff.push(r.ttff);
        seek.push(r.seek);
        heights.push(r.height);
      }
      const row = {
        profile: profile.name,
        path: t.path,
        runs: RUNS,
        ttff_median_ms: Math.round(q(ttff, 0.5)),
        ttff_p90_ms: Math.round(q(ttff, 0.9)),
        seek_median_ms: Math.round(q(seek, 0.5)),
        seek_p90_ms: Math.round(q(seek, 0.9)),
        first_height: [...new Set(heights)].sort((a, b) => b - a).map((h) => `${h}p`).join('/'),
      };
      results.push(row);
      console.log(JSON.stringify(row));
    }
  }
  await browser.close();
  pageServer.close();
  console.log('\n| network | path | runs | first frame median | p90 | seek-to-play median | p90 | first picture |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    console.log(`| ${r.profile} | ${r.path} | ${r.runs} | ${r.ttff_median_ms} ms | ${r.ttff_p90_ms} ms | ${r.seek_median_ms} ms | ${r.seek_p90_ms} ms | ${r.first_height} |`);
  }
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(results, null, 2) + '\n');
} finally {
  await served.stop();
  rmSync(work, { recursive: true, force: true });
}
