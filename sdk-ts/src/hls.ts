// HLS playback of a video's named files (`/hls/master.m3u8` and what it lists) in a `<video>`:
// hls.js where Media Source Extensions exist, the browser's own HLS elsewhere (Safari on iOS).
//
// The SDK does not bundle hls.js: pass its default export (`import Hls from 'hls.js'`), so apps
// that never play HLS do not ship it and apps choose their hls.js version.
import { videoUrl, type VideoUrlOptions } from './url.js';

export interface HlsUrlOptions extends Omit<VideoUrlOptions, 'path'> {
  /** The playlist to open. Default `/hls/master.m3u8`. */
  path?: string;
  /** Playback token of a private or paid video (`?token=`). */
  token?: string;
}

/** `url` with `token=<token>` in its query (unchanged when it already carries a token). */
export function withToken(url: string, token: string | undefined): string {
  if (!token) return url;
  const u = new URL(url, typeof location !== 'undefined' ? location.href : 'http://localhost/');
  if (u.searchParams.has('token')) return url;
  u.searchParams.set('token', token);
  return u.toString();
}

/**
 * The URL of a video's HLS playlist on a gateway (`https://<id>.icp0.io/hls/master.m3u8`, or
 * `http://<id>.localhost:<port>/...` locally), with `?token=` for a gated video.
 */
export function hlsUrl(videoId: string, gateway: string, options: HlsUrlOptions = {}): string {
  const { token, path, ...rest } = options;
  return withToken(videoUrl(videoId, gateway, { ...rest, path: path ?? '/hls/master.m3u8' }), token);
}

/** What `attachHls` needs of an hls.js instance (hls.js 1.x). */
export interface HlsInstance {
  loadSource(url: string): void;
  attachMedia(media: HTMLMediaElement): void;
  destroy(): void;
  on(event: string, listener: (...args: any[]) => void): void;
  levels: Array<{ height: number; width: number; bitrate: number; name?: string; url?: string[] | string }>;
  currentLevel: number;
  nextLevel: number;
  loadLevel: number;
  autoLevelEnabled: boolean;
  subtitleTracks: Array<{ name: string; lang?: string; id: number }>;
  subtitleTrack: number;
  subtitleDisplay: boolean;
}

/** The hls.js class (its default export). */
export interface HlsClass {
  new (config?: Record<string, unknown>): HlsInstance;
  isSupported(): boolean;
  readonly Events: Record<string, string>;
}

export interface AttachHlsOptions {
  /** hls.js (`import Hls from 'hls.js'`). Without it, only native HLS is tried. */
  Hls?: HlsClass;
  /** Playback token added to every request hls.js makes (playlists, segments, subtitles). */
  token?: string;
  /** More hls.js configuration (merged; `xhrSetup`/`fetchSetup` are chained after the token's). */
  hlsConfig?: Record<string, unknown>;
  /** Use the browser's own HLS even where hls.js could play. Default false. */
  preferNative?: boolean;
}

export interface HlsPlayback {
  /** `hls.js` or `native` (the `<video>` plays the playlist itself). */
  mode: 'hls.js' | 'native';
  /** The hls.js instance (mode `hls.js`): levels, `currentLevel`, subtitle tracks. */
  hls?: HlsInstance;
  /** Detaches hls.js (or clears `src`). */
  destroy(): void;
}

/** Whether this browser has Media Source Extensions (hls.js can play). */
export function hasMediaSource(): boolean {
  const g = globalThis as { MediaSource?: { isTypeSupported?: unknown }; ManagedMediaSource?: unknown };
  return (typeof g.MediaSource?.isTypeSupported === 'function') || g.ManagedMediaSource !== undefined;
}

/**
 * Plays the HLS playlist at `url` (see `hlsUrl`) in `video`: with hls.js where Media Source
 * Extensions exist, else natively where `canPlayType('application/vnd.apple.mpegurl')` says so.
 * With `token`, hls.js adds it to every request it makes: playlists name segments by relative
 * URLs, which drop the playlist's own query string. The browser's own HLS cannot be told to, so a
 * gated video plays natively only when the token is not needed past the first playlist (free
 * paths) — prefer hls.js (Safari on macOS and iOS 17.1+ have MSE/ManagedMediaSource).
 * Throws when neither way can play HLS here.
 */
export function attachHls(video: HTMLVideoElement, url: string, options: AttachHlsOptions = {}): HlsPlayback {
  const { Hls, token } = options;
  const native = video.canPlayType('application/vnd.apple.mpegurl') !== '';
  if (Hls && Hls.isSupported() && !(options.preferNative && native)) {
    const extra = options.hlsConfig ?? {};
    const userXhr = extra['xhrSetup'] as ((xhr: XMLHttpRequest, url: string, ctx: unknown) => unknown) | undefined;
    const userFetch = extra['fetchSetup'] as ((ctx: { url: string }, init: RequestInit) => Request | Promise<Request>) | undefined;
    const config: Record<string, unknown> = { ...extra };
    if (token) {
      config['xhrSetup'] = (xhr: XMLHttpRequest, u: string, ctx: unknown) => {
        xhr.open('GET', withToken(u, token), true);
        return userXhr?.(xhr, u, ctx);
      };
      config['fetchSetup'] = (ctx: { url: string }, init: RequestInit) =>
        userFetch ? userFetch({ ...ctx, url: withToken(ctx.url, token) }, init) : new Request(withToken(ctx.url, token), init);
    }
    const hls = new Hls(config);
    hls.attachMedia(video);
    hls.loadSource(withToken(url, token));
    return { mode: 'hls.js', hls, destroy: () => hls.destroy() };
  }
  if (native) {
    video.src = withToken(url, token);
    return {
      mode: 'native',
      destroy: () => {
        video.removeAttribute('src');
        video.load();
      },
    };
  }
  throw new Error('this browser plays HLS neither with Media Source Extensions (pass hls.js as `Hls`) nor natively');
}
