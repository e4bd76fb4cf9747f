// The benchmark's page script (bundled by bench/latency.mjs with esbuild): plays a URL in a fresh
// <video> — the single file directly, HLS through the SDK's attachHls + hls.js — and measures
// time to first frame and seek-to-play with requestVideoFrameCallback.
import Hls from 'hls.js';
import { attachHls } from '../dist/src/hls.js';

/** Resolves at the first presented frame whose media time is >= `from` (rVFC). */
function frameAt(v, from) {
  return new Promise((res) => {
    const tick = (_now, meta) => (meta.mediaTime >= from - 0.05 ? res(meta.mediaTime) : v.requestVideoFrameCallback(tick));
    v.requestVideoFrameCallback(tick);
  });
}

function timeout(ms, what) {
  return new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), ms));
}

window.bench = {
  /** kind: 'file' | 'hls'. Returns milliseconds. */
  async run(kind, url, seekTo) {
    const v = document.createElement('video');
    v.muted = true;
    v.playsInline = true;
    v.width = 640;
    document.body.append(v);
    const t0 = performance.now();
    const playback = kind === 'hls' ? attachHls(v, url, { Hls }) : ((v.src = url), undefined);
    v.play().catch(() => {});
    await Promise.race([frameAt(v, 0), timeout(60_000, 'first frame')]);
    const ttff = performance.now() - t0;
    const height = v.videoHeight; // the rendition hls.js started with
    // Play a little, then seek ahead: time until a frame at the new position is shown, playing.
    await Promise.race([new Promise((r) => { const c = () => (v.currentTime > 0.5 ? r() : setTimeout(c, 20)); c(); }), timeout(60_000, 'play')]);
    const t1 = performance.now();
    v.currentTime = seekTo;
    await Promise.race([frameAt(v, seekTo), timeout(60_000, 'seek')]);
    const seek = performance.now() - t1;
    playback?.destroy();
    v.removeAttribute('src');
    v.load();
    v.remove();
    return { ttff, seek, height };
  },
};
