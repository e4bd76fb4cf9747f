// HLS playback helpers: playlist URLs, the token on every hls.js request, native fallback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attachHls, hlsUrl, withToken, type HlsClass } from '../../src/hls.js';

const ID = 'bkyz2-fmaaa-aaaaa-qaaaq-cai';

test('hlsUrl: the master playlist by default, another path, the token in the query', () => {
  assert.equal(hlsUrl(ID, 'icp0.io'), `https://${ID}.icp0.io/hls/master.m3u8`);
  assert.equal(hlsUrl(ID, 'http://127.0.0.1:4943', { path: '/hls/360p/index.m3u8' }), `http://${ID}.localhost:4943/hls/360p/index.m3u8`);
  assert.equal(hlsUrl(ID, 'icp0.io', { token: 'a b/+' }), `https://${ID}.icp0.io/hls/master.m3u8?token=a+b%2F%2B`);
  assert.equal(hlsUrl(ID, 'icp0.io', { raw: true }), `https://${ID}.raw.icp0.io/hls/master.m3u8`);
});

test('withToken keeps other parameters and an existing token', () => {
  assert.equal(withToken('https://x.icp0.io/hls/a.m4s?x=1', 't'), 'https://x.icp0.io/hls/a.m4s?x=1&token=t');
  assert.equal(withToken('https://x.icp0.io/a?token=old', 'new'), 'https://x.icp0.io/a?token=old');
  assert.equal(withToken('https://x.icp0.io/a', undefined), 'https://x.icp0.io/a');
});

/** A stand-in for hls.js recording what attachHls does with it. */
function fakeHls(supported: boolean) {
  const made: Array<{ config: Record<string, unknown>; source?: string; media?: unknown; destroyed: boolean }> = [];
  class Hls {
    static isSupported() {
      return supported;
    }
    static Events = {};
    rec: (typeof made)[number];
    levels = [];
    currentLevel = -1;
    nextLevel = -1;
    loadLevel = -1;
    autoLevelEnabled = true;
    subtitleTracks = [];
    subtitleTrack = -1;
    subtitleDisplay = false;
    constructor(config: Record<string, unknown>) {
      this.rec = { config, destroyed: false };
      made.push(this.rec);
    }
    loadSource(url: string) {
      this.rec.source = url;
    }
    attachMedia(m: unknown) {
      this.rec.media = m;
    }
    on() {}
    destroy() {
      this.rec.destroyed = true;
    }
  }
  return { Hls: Hls as unknown as HlsClass, made };
}

function fakeVideo(native: boolean) {
  return {
    src: '',
    canPlayType: (t: string) => (native && t === 'application/vnd.apple.mpegurl' ? 'maybe' : ''),
    removeAttribute(this: { src: string }) {
      this.src = '';
    },
    load() {},
  } as unknown as HTMLVideoElement & { src: string };
}

test('attachHls: hls.js with the token on every playlist, segment and subtitle request (xhr and fetch loaders)', async () => {
  const { Hls, made } = fakeHls(true);
  const video = fakeVideo(true);
  const seen: string[] = [];
  const p = attachHls(video, hlsUrl(ID, 'icp0.io'), { Hls, token: 'tok', hlsConfig: { xhrSetup: (_x: unknown, u: string) => void seen.push(u), maxBufferLength: 10 } });
  assert.equal(p.mode, 'hls.js');
  const rec = made[0]!;
  assert.equal(rec.source, `https://${ID}.icp0.io/hls/master.m3u8?token=tok`);
  assert.equal(rec.media, video);
  assert.equal(rec.config['maxBufferLength'], 10);
  // A segment named relatively in a playlist: hls.js resolved it without the query string.
  const opened: string[] = [];
  const xhr = { open: (_m: string, u: string) => opened.push(u) } as unknown as XMLHttpRequest;
  await (rec.config['xhrSetup'] as (x: XMLHttpRequest, u: string, c: unknown) => unknown)(xhr, `https://${ID}.icp0.io/hls/360p/seg-00001.m4s`, {});
  assert.deepEqual(opened, [`https://${ID}.icp0.io/hls/360p/seg-00001.m4s?token=tok`]);
  assert.deepEqual(seen, [`https://${ID}.icp0.io/hls/360p/seg-00001.m4s`], 'the app’s own xhrSetup still runs');
  const req = await (rec.config['fetchSetup'] as (c: { url: string }, i: RequestInit) => Request)({ url: `https://${ID}.icp0.io/subs/en.vtt` }, { method: 'GET' });
  assert.equal(req.url, `https://${ID}.icp0.io/subs/en.vtt?token=tok`);
  p.destroy();
  assert.ok(rec.destroyed);
});

test('attachHls: no token, no request rewriting; native HLS without MSE; an error where neither plays', () => {
  const { Hls, made } = fakeHls(true);
  attachHls(fakeVideo(false), hlsUrl(ID, 'icp0.io'), { Hls });
  assert.equal(made[0]!.config['xhrSetup'], undefined);
  const noMse = fakeHls(false);
  const video = fakeVideo(true);
  const p = attachHls(video, hlsUrl(ID, 'icp0.io'), { Hls: noMse.Hls, token: 't' });
  assert.equal(p.mode, 'native');
  assert.equal(video.src, `https://${ID}.icp0.io/hls/master.m3u8?token=t`);
  assert.equal(noMse.made.length, 0);
  assert.equal(attachHls(fakeVideo(true), 'https://x/a.m3u8', { Hls, preferNative: true }).mode, 'native');
  assert.throws(() => attachHls(fakeVideo(false), 'https://x/a.m3u8', { Hls: noMse.Hls }), /neither/);
});
