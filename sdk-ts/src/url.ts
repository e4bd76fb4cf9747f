// URLs of a video for `<video src>`, `<img src>` (poster) and `fetch` (metadata.json).
//
// IC mainnet: `https://<id>.icp0.io/video` is served by the HTTP gateway with response
// verification (the video canister certifies every answer, docs/http.md); the `raw` domain
// `https://<id>.raw.icp0.io/video` skips verification. Local (`canvid serve`, dfx, PocketIC):
// `http://<id>.localhost:<port>/video` — browsers resolve `*.localhost` to the loopback address.

export interface VideoUrlOptions {
  /** Use the unverified `raw` domain. Default false. */
  raw?: boolean;
  /** Path on the canister: `/video` (default), `/poster`, `/metadata.json`. */
  path?: string;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1', '0.0.0.0']);

/**
 * The HTTP URL of a video canister's content on a gateway.
 *
 * `gateway` is a domain (`icp0.io`, `icp.net`, `ic0.app`; https is implied) or a URL
 * (`https://icp0.io`, `http://127.0.0.1:4943`, `http://localhost:8080`). A loopback gateway gives
 * `http://<id>.localhost:<port>/...` (or `<id>.raw.localhost` with `raw`).
 */
export function videoUrl(videoId: string, gateway: string, options: VideoUrlOptions = {}): string {
  if (!/^[a-z0-9]{5}(-[a-z0-9]{5})*(-[a-z0-9]{1,5})?$/.test(videoId)) {
    throw new TypeError(`not a canister id: ${videoId}`);
  }
  let path = options.path ?? '/video';
  if (!path.startsWith('/')) path = `/${path}`;
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(gateway) ? gateway : `https://${gateway}`);
  const host = url.hostname.toLowerCase();
  const label = options.raw ? `${videoId}.raw` : videoId;
  if (LOOPBACK.has(host) || host.endsWith('.localhost')) {
    const base = host.endsWith('.localhost') ? host : 'localhost';
    const port = url.port ? `:${url.port}` : '';
    return `${url.protocol}//${label}.${base}${port}${path}`;
  }
  // A gateway given as `raw.icp0.io` already is the raw domain.
  const domain = host.startsWith('raw.') ? host.slice(4) : host;
  const rawLabel = options.raw || host.startsWith('raw.') ? `${videoId}.raw` : videoId;
  const port = url.port ? `:${url.port}` : '';
  return `${url.protocol}//${rawLabel}.${domain}${port}${path}`;
}
