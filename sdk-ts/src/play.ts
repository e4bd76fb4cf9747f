// Playing an end-to-end encrypted video in a browser page: the page gets the video key
// (`video_key`, checked with vetKeys), registers a decryption session with the app's service
// worker (`canvid-decrypt-sw.js`, src/decrypt-sw.ts) and points the `<video>` element at the
// worker's virtual URL. The key goes to the worker as a non-extractable `CryptoKey`; neither it
// nor any plaintext goes to the network.
import { Actor, type ActorSubclass, type Agent } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import { CanvidAccess } from './access.js';
import { idlFactory as videoIdl, type _SERVICE as VideoService, type VideoMetadata } from './bindings/video.did.js';
import { DECRYPT_PATH, type DecryptNeed, type DecryptSession } from './decrypt-sw.js';
import { type EncryptionInfo, type VideoKeyMaterial, fromCandidEncryption } from './encryption.js';
import { CanvidError, NotReadyError, UsageError, guard } from './errors.js';
import { fetchVideoKey } from './video-key.js';

export interface PlayEncryptedOptions {
  /** The agent whose identity asks for the key and the playback token (`CanvidClient.agent`). */
  agent: Agent;
  /** The HTTP gateway serving the canister (`icp0.io`, `http://127.0.0.1:4943`, ...). */
  gateway: string;
  /** URL of the worker script at the page's origin. Default `/canvid-decrypt-sw.js`. */
  serviceWorkerUrl?: string;
  /** The worker's scope (default: the script's directory). The page must be inside it. */
  scope?: string;
  /**
   * A key fetched before (`CanvidClient.videoKey`). Default: the key this page already got for
   * this video and identity (kept in memory for the page's life), else asked with `video_key`.
   */
  key?: VideoKeyMaterial;
  /** Ask `video_key` even when this page already holds the key. Default false. */
  freshKey?: boolean;
  /** Life of the playback token of a gated video (see `CanvidAccess.playbackUrl`). */
  ttlSeconds?: number;
  /** Use the unverified `raw` gateway domain for the ciphertext. Default false. */
  raw?: boolean;
  /** How long to wait for the worker to control the page. Default 10 s. */
  timeoutMs?: number;
  /**
   * Most plaintext bytes the worker puts in one answer to the element's open-ended range
   * (rounded up to whole chunks). Default 8 MiB (`MAX_ANSWER_BYTES`).
   */
  maxAnswerBytes?: number;
}

export interface EncryptedPlayback {
  videoId: string;
  /** The virtual URL the element plays (served by the worker). */
  src: string;
  /** The canister's URL of the ciphertext the worker reads (with `?token=` when gated). */
  sourceUrl: string;
  encryption: EncryptionInfo;
  mimeType: string;
  key: VideoKeyMaterial;
  /** Milliseconds the key took (`video_key` + verification). */
  keyMs: number;
  /** Stops answering the worker's requests to register the session again. */
  stop(): void;
}

/**
 * Keys this page got, per identity and video: playing a video again costs the canister no second
 * vetKD fee. Memory only (non-extractable `CryptoKey`s); gone with the page.
 */
const keyCache = new Map<string, Promise<VideoKeyMaterial>>();

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Clears the element so that it has no media (after a refusal). */
function clear(video: HTMLVideoElement) {
  video.removeAttribute('src');
  video.load();
}

/** The service worker controlling this page, registering `url` first when needed. */
async function controllingWorker(url: string, scope: string | undefined, timeoutMs: number): Promise<ServiceWorker> {
  const sw = navigator.serviceWorker;
  const reg = await sw.register(url, scope ? { scope } : undefined);
  await sw.ready;
  if (sw.controller && new URL(sw.controller.scriptURL).href === new URL(url, location.href).href) return sw.controller;
  // A fresh worker claims the open pages when it activates (`clients.claim()`).
  const c = await new Promise<ServiceWorker | null>((res) => {
    const t = setTimeout(() => res(sw.controller), timeoutMs);
    sw.addEventListener(
      'controllerchange',
      () => {
        clearTimeout(t);
        res(sw.controller);
      },
      { once: true },
    );
    if (sw.controller) {
      clearTimeout(t);
      res(sw.controller);
    }
  });
  if (!c) {
    throw new UsageError(
      `the decrypting service worker ${url} (scope ${reg.scope}) does not control this page: serve it from the page's origin, with the page inside its scope`,
    );
  }
  return c;
}

/** Posts the session to the worker and waits for its acknowledgement. */
function register(worker: ServiceWorker, s: DecryptSession, timeoutMs: number): Promise<void> {
  return new Promise((res, rej) => {
    const ch = new MessageChannel();
    const t = setTimeout(() => rej(new UsageError('the decrypting service worker did not answer')), timeoutMs);
    ch.port1.onmessage = () => {
      clearTimeout(t);
      ch.port1.close();
      res();
    };
    worker.postMessage(s, [ch.port2]);
  });
}

/**
 * Plays the encrypted video `videoId` in `video`: reads its metadata, gets the key (`video_key`
 * as `options.agent`'s identity, verified with vetKeys), a playback URL of the ciphertext (with a
 * token when the video is gated: `CanvidAccess.playbackUrl`), makes sure the decrypting service
 * worker (`options.serviceWorkerUrl`) controls the page, hands it the session and sets
 * `video.src` to the worker's virtual URL. Seeking works: the worker answers the element's range
 * requests, decrypting only the covering chunks.
 *
 * When the key is refused the element is cleared (no media) and the canister's typed error is
 * thrown: `NotAuthorizedError` (not admitted by the access policy, or a public video's key asked
 * by someone other than the owner or an uploader), `BusyError` (the viewers' rate limit), ...;
 * `KeyVerificationError` for a key that does not verify; `UsageError` when the video is not
 * encrypted or the browser has no service workers.
 */
export async function playEncrypted(video: HTMLVideoElement, videoId: string, options: PlayEncryptedOptions): Promise<EncryptedPlayback> {
  try {
    return await playInner(video, videoId, options);
  } catch (err) {
    clear(video);
    throw err;
  }
}

async function playInner(video: HTMLVideoElement, videoId: string, options: PlayEncryptedOptions): Promise<EncryptedPlayback> {
  if (typeof navigator === 'undefined' || !navigator.serviceWorker) {
    throw new UsageError('encrypted playback needs service workers (a browser page served over https or from localhost)');
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  const canister = Principal.fromText(videoId);
  const actor = Actor.createActor<VideoService>(videoIdl, { agent: options.agent, canisterId: canister }) as ActorSubclass<VideoService>;
  const meta: VideoMetadata = await guard({ canisterId: videoId, method: 'metadata' }, () => actor.metadata());
  if (!meta.encryption.length) throw new UsageError(`video ${videoId} is not encrypted: play ${videoId}'s URL directly`);
  if (!('Ready' in meta.status)) throw new NotReadyError('NotReady', { reason: 'not Ready' }, `video ${videoId} is not Ready`);
  const encryption = fromCandidEncryption(meta.encryption[0]!);

  // The key first: a refusal leaves the element without media and registers nothing.
  const t0 = now();
  const cacheId = `${(await options.agent.getPrincipal()).toText()}/${videoId}/${encryption.keyName}/${encryption.keyEpoch}`;
  let pending = options.freshKey ? undefined : keyCache.get(cacheId);
  if (!options.key && !pending) {
    pending = fetchVideoKey((args) => guard({ canisterId: videoId, method: 'video_key' }, () => actor.video_key(args)), videoId, {
      keyName: encryption.keyName,
      keyEpoch: encryption.keyEpoch,
    });
    keyCache.set(cacheId, pending);
    pending.catch(() => keyCache.delete(cacheId)); // a refusal is asked again next time
  }
  const key = options.key ?? (await pending!);
  const keyMs = now() - t0;
  if (key.canisterId !== videoId || key.keyEpoch !== encryption.keyEpoch || key.keyName !== encryption.keyName) {
    throw new UsageError(`the key given is ${key.keyName}/${key.keyEpoch} of ${key.canisterId}, the video needs ${encryption.keyName}/${encryption.keyEpoch} of ${videoId}`);
  }

  const access = new CanvidAccess({ agent: options.agent, gateway: options.gateway });
  const playback = await access.playbackUrl(videoId, { gateway: options.gateway, ttlSeconds: options.ttlSeconds, raw: options.raw });
  let sourceUrl = playback.url;
  let expiresAt = playback.expiresAt;

  const swUrl = options.serviceWorkerUrl ?? '/canvid-decrypt-sw.js';
  const worker = await controllingWorker(swUrl, options.scope, timeoutMs);
  const session = randomId();
  const msg = (): DecryptSession => ({
    type: 'canvid-decrypt-session',
    session,
    canisterId: videoId,
    canister: canister.toUint8Array(),
    encryption,
    mimeType: meta.mime_type || 'video/mp4',
    sourceUrl,
    key: key.aes,
    maxAnswerBytes: options.maxAnswerBytes,
  });
  await register(worker, msg(), timeoutMs);

  // A worker restarted while idle asks again; a token about to expire is renewed then.
  const onNeed = async (e: MessageEvent) => {
    const d = e.data as DecryptNeed;
    if (d?.type !== 'canvid-decrypt-need' || d.session !== session) return;
    try {
      if (expiresAt !== undefined && expiresAt < BigInt(Date.now() + 60_000) * 1_000_000n) {
        const p = await access.playbackUrl(videoId, { gateway: options.gateway, ttlSeconds: options.ttlSeconds, raw: options.raw });
        sourceUrl = p.url;
        expiresAt = p.expiresAt;
      }
      const w = navigator.serviceWorker.controller;
      if (w) await register(w, msg(), timeoutMs);
    } catch (err) {
      if (!(err instanceof CanvidError)) throw err;
    }
  };
  navigator.serviceWorker.addEventListener('message', onNeed);

  const scope = (await navigator.serviceWorker.ready).scope;
  const src = new URL(`${DECRYPT_PATH}${videoId}/video?session=${session}`, scope).href;
  video.src = src;
  video.load();
  return {
    videoId,
    src,
    sourceUrl,
    encryption,
    mimeType: meta.mime_type,
    key,
    keyMs,
    stop: () => navigator.serviceWorker.removeEventListener('message', onNeed),
  };
}
