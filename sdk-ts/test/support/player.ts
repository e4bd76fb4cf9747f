// Drives the example page's HLS player (examples/upload-and-play, `?hls=<id>`) in a playwright
// page: the rendition switch, seek and subtitles the HLS browser test checks.
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';

/** Waits until `cond` (evaluated in the page with `v` = the player, `s` = canvidState.hls, `hls`) holds. */
export async function until(page: Page, what: string, cond: string, timeout = 60_000): Promise<void> {
  await page
    .waitForFunction(
      (c) => {
        const w = window as any;
        const v = document.getElementById('player') as HTMLVideoElement;
        return new Function('v', 's', 'hls', `return ${c}`)(v, w.canvidState?.hls, w.canvidPlayer?.()?.hls);
      },
      cond,
      { timeout, polling: 100 },
    )
    .catch(async (e: Error) => {
      const st = await page.evaluate(() => {
        const v = document.getElementById('player') as HTMLVideoElement;
        return { hls: (window as any).canvidState?.hls, t: v.currentTime, rs: v.readyState, h: v.videoHeight, err: v.error?.message };
      });
      throw new Error(`${what}: ${e.message}\n${JSON.stringify(st)}`);
    });
}

/**
 * Plays `url`'s master playlist on the example page already open at `page` (`?hls=`): forces 360p,
 * then 1080p, seeks, shows subtitles. Returns what it saw.
 */
export async function playLadder(
  page: Page,
  shot: (name: string) => Promise<void>,
  opts: { firstStepTimeout?: number } = {},
): Promise<{ cue: string; heights: number[] }> {
  await until(page, 'manifest parsed', 's && s.levels.length >= 2 && hls');
  const levels: Array<{ height: number }> = await page.evaluate(() => (window as any).canvidState.hls.levels);
  const lo = levels.findIndex((l) => l.height === 360);
  const hi = levels.findIndex((l) => l.height === 1080);
  assert.ok(lo >= 0 && hi >= 0, `levels ${JSON.stringify(levels)}`);
  const heights: number[] = [];

  // Start on the low rendition, play. On a page opened with `autoStartLoad=0` nothing is loading
  // yet: the first level is chosen before the first request (`startLevel`, `startLoad`). Else
  // `loadLevel` (manual level from the next fragment). Never an immediate switch this early:
  // aborting the first level's in-flight init segment and fragment left hls.js waiting for the
  // new level's first fragment in about one run in five (PocketIC's gateway especially).
  await page.evaluate((lo) => {
    const hls = (window as any).canvidPlayer().hls;
    if (hls.config.autoStartLoad === false) {
      hls.startLevel = lo;
      hls.loadLevel = lo; // manual: no ABR switch before the check below
      hls.startLoad(-1);
    } else {
      hls.loadLevel = lo;
    }
    void (document.getElementById('player') as HTMLVideoElement).play();
  }, lo);
  await until(page, 'playing 360p', `v.currentTime > 0.5 && v.videoHeight === 360 && s.currentLevel === ${lo}`, opts.firstStepTimeout);
  heights.push(360);
  await shot('hls-360p');

  // Switch to 1080p (immediate switch: the buffer is flushed and 1080p segments fetched).
  await page.selectOption('#quality', String(hi));
  await page.evaluate((hi) => {
    (window as any).canvidPlayer().hls.currentLevel = hi;
  }, hi);
  await until(page, 'playing 1080p', `v.videoHeight === 1080 && s.currentLevel === ${hi} && !v.paused && v.readyState >= 3`);
  heights.push(1080);
  assert.match(await page.textContent('#level') ?? '', /1080p/);
  await shot('hls-1080p');

  // Seek near the end.
  await page.evaluate(() => {
    (document.getElementById('player') as HTMLVideoElement).currentTime = 4.5;
  });
  await until(page, 'seeked', 'v.currentTime >= 4.4 && !v.seeking && v.readyState >= 3');

  // Subtitles from the menu: hls.js loads /hls/subs/en.m3u8 and /subs/en.vtt; a cue is active.
  await page.selectOption('#subs', '0');
  await page.evaluate(() => {
    const v = document.getElementById('player') as HTMLVideoElement;
    if (v.ended || v.currentTime > 5.5) v.currentTime = 4.5;
  });
  await until(
    page,
    'subtitle cue active',
    "Array.from(v.textTracks).some((t) => t.mode === 'showing' && t.activeCues && t.activeCues.length > 0)",
  );
  const cue: string = await page.evaluate(() => {
    const v = document.getElementById('player') as HTMLVideoElement;
    const t = Array.from(v.textTracks).find((t) => t.mode === 'showing' && t.activeCues && t.activeCues.length > 0)!;
    return (t.activeCues![0] as VTTCue).text;
  });
  await shot('hls-subtitles');
  await page.evaluate(() => (document.getElementById('player') as HTMLVideoElement).pause());
  return { cue, heights };
}

