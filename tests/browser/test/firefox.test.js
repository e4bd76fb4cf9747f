// Plays and seeks a video served by a canvid video canister in real Firefox (Debian's
// firefox-esr, driven by puppeteer-core over WebDriver BiDi).
//
// Why a second browser: seeks of a <video> are answered with the whole grid chunk holding the
// byte asked for, which may start before it (docs/http.md, "Seeking"). Chromium and Firefox
// both place the bytes by Content-Range; this checks Firefox does. The video is longer and
// loaded with preload="none", so Firefox cannot have buffered it and its seeks ask for byte
// offsets off the chunk grid (the WebM cues point at arbitrary cluster offsets).
//
// Environment: FIREFOX (default /usr/bin/firefox-esr), SERVE_VIDEO_BIN as for play.test.js.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { FORMATS, assertCanPlay, clientRanges, gatewayCalls, generate, outDir, seek, servePage, startServer, waitFor } from '../lib/media.js';

const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';
const SECONDS = 30;
// 48 chunks for the ~12 MB file: the certification tree is complete when the upload finishes
// (one message), so every answer can be a certified query from the first request on.
const CHUNK_SIZE = 262144;

mkdirSync(outDir, { recursive: true });

for (const fmt of FORMATS) {
  test(`Firefox plays and seeks ${fmt.name} served by a video canister`, { timeout: 600000 }, async (t) => {
    assert.ok(existsSync(FIREFOX), `no Firefox at ${FIREFOX}`);
    const work = mkdtempSync(join(tmpdir(), 'canvid-firefox-'));
    const file = generate(fmt, work, SECONDS, ['-b:v', '3M']);
    const size = statSync(file).size;
    assert.ok(size > 20 * CHUNK_SIZE, `${fmt.name}: ${size} bytes is not many chunks`);

    const { info, child, log } = await startServer(file, CHUNK_SIZE);
    // The canisterId form on 127.0.0.1: the gateway redirects it (307) to the canister's own
    // origin, <id>.localhost (security review L2), which Firefox's media requests follow.
    const src = `http://127.0.0.1:${new URL(info.url).port}/video?canisterId=${info.canister}`;
    const pageServer = await servePage(src, 'none');
    const profile = mkdtempSync(join(tmpdir(), 'canvid-firefox-profile-'));
    const browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX,
      headless: true,
      userDataDir: profile,
      // Firefox resolves *.localhost to loopback itself; this only makes sure of it.
      extraPrefsFirefox: { 'network.dns.localDomains': new URL(info.url).hostname },
    });
    let entries;
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 640, height: 360 });
      await page.goto(`http://127.0.0.1:${pageServer.address().port}/`);
      const canPlay = await page.evaluate((c) => document.createElement('video').canPlayType(c), fmt.codecs);
      assertCanPlay('Firefox', FIREFOX, fmt, canPlay);
      await page.evaluate(() => document.getElementById('v').load());
      await waitFor(page, 'loadedmetadata', 'v.readyState >= 1');
      const duration = await page.evaluate(() => document.getElementById('v').duration);
      assert.ok(Math.abs(duration - SECONDS) < 0.25, `duration ${duration}, generated ${SECONDS} s`);
      for (const to of [SECONDS * 0.7, SECONDS * 0.25, SECONDS * 0.9, SECONDS * 0.5]) {
        const at = await seek(page, to);
        assert.ok(Math.abs(at - to) < 0.1, `seeked to ${at}, asked ${to}`);
      }
      const start = await page.evaluate(() => document.getElementById('v').currentTime);
      await page.evaluate(() => document.getElementById('v').play());
      await page.waitForFunction((s) => document.getElementById('v').currentTime > s + 1.0, { timeout: 60000 }, start);
      const playing = await page.evaluate(() => {
        const v = document.getElementById('v');
        return { paused: v.paused, err: v.error && v.error.message, w: v.videoWidth, h: v.videoHeight };
      });
      assert.deepEqual(playing, { paused: false, err: null, w: 640, h: 360 });
      await page.screenshot({ path: join(outDir, `firefox-${fmt.name}-playing.png`) });
    } finally {
      await browser.close();
      pageServer.close();
      child.stdin.end();
      entries = await log;
      rmSync(profile, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    }

    entries = gatewayCalls(entries, `firefox-${fmt.name}`);
    // Firefox first asked 127.0.0.1 and was sent to the canister's origin.
    assert.ok(entries.some((e) => e.status === 307), `no redirect: ${JSON.stringify(entries.slice(0, 3))}`);
    const ranges = clientRanges(entries);
    assert.ok(ranges.length >= 3, `few Range requests: ${JSON.stringify(entries)}`);
    for (const e of ranges) {
      assert.equal(e.status, 206, `Range ${e.range} answered ${e.status}`);
      assert.ok(!e.upgraded && e.verified, `Range ${e.range}: not a verified certified query`);
    }
    // The seeks asked from bytes off the grid, and those media answers (whole chunks, starting
    // before the byte) are what Firefox played from.
    const offGrid = ranges.filter((e) => e.offset % CHUNK_SIZE !== 0);
    assert.ok(offGrid.length > 0, `no request off the chunk grid: ${ranges.map((e) => e.range)}`);
    t.diagnostic(`${fmt.name}: ${size} bytes, ${ranges.length} Range requests, ${offGrid.length} off the grid (media answers), all verified queries`);
  });
}
