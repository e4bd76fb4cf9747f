// The decrypting service worker of encrypted videos (docs/encryption.md, "Playback in the
// browser"). The page (`playEncrypted`) gets the video key and registers a *session* with this
// worker: the non-extractable AES `CryptoKey` (structured clone), the encryption record, the MIME
// type and the canister's HTTP URL of the ciphertext (with a playback token for a gated video).
// The `<video>` element then loads a virtual URL of the page's origin,
//
//   <scope>canvid-decrypt/<canister id>/video?session=<id>
//
// and this worker answers it as a plain file of the *plaintext*: `Range: bytes=a-b` (also `a-`,
// `-n`) gets a 206 with `Content-Range` / `Content-Length` in plaintext coordinates (an
// open-ended `a-` at most `maxAnswerBytes`, to a chunk boundary: the element asks again), no
// range a 200; `Accept-Ranges: bytes` always. The body is produced chunk by chunk as the browser reads
// it: each covering stored chunk is fetched from the canister's URL with its exact range
// (`bytes=i*(C+28)-…`, one certified chunk per answer, docs/http.md), decrypted and authenticated
// with AES-GCM (its index, the chunk count and the sizes are in its AAD), and sliced. A chunk that
// does not decrypt errors the body: the element reports a network/decode error, never plays
// altered bytes.
//
// The plaintext exists only in this worker and the page's media pipeline; the key never leaves
// the browser. A worker stopped while idle loses its sessions: it then asks the page that made
// the request (`canvid-decrypt-need`) and waits for it to register the session again.
//
// Build: `node scripts/build-sw.mjs` bundles this (with the scheme's code) into the standalone
// script `dist/canvid-decrypt-sw.js`, which the app serves from its own origin.
import { CHUNK_OVERHEAD, DecryptionError, type EncryptionInfo, coveringChunks, decryptChunk, encChunkCount, plainLen, storedChunkRange } from './encryption.js';

/** Path segment of the virtual URLs, under the worker's scope. */
export const DECRYPT_PATH = 'canvid-decrypt/';

/** What the page registers (`postMessage`, with a `MessagePort` for the answer). */
export interface DecryptSession {
  type: 'canvid-decrypt-session';
  session: string;
  canisterId: string;
  /** The canister's principal bytes (the AAD binds them). */
  canister: Uint8Array;
  encryption: EncryptionInfo;
  mimeType: string;
  /** The canister's HTTP URL of the stored (encrypted) file, with `?token=` when gated. */
  sourceUrl: string;
  /** AES-256-GCM, non-extractable, `decrypt`. */
  key: CryptoKey;
  /**
   * Most plaintext bytes one answer to an open-ended `Range` (`bytes=a-`) carries, rounded up
   * to whole chunks; the element asks again for the rest (a shorter 206 is what the canister's
   * own HTTP answers too). Default `MAX_ANSWER_BYTES` (8 MiB).
   */
  maxAnswerBytes?: number;
}

/**
 * Default cap of one answer to an open-ended range: a seek far into a long video does not leave
 * an answer decrypting toward the end of the file behind it, and the element's own requests
 * show where it reads.
 */
export const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

/** The worker's answer on the session's port. */
export type DecryptSessionAck = { type: 'canvid-decrypt-ack'; session: string };
/** The worker to its clients: register `session` again (the worker was restarted). */
export type DecryptNeed = { type: 'canvid-decrypt-need'; session: string };

/** The minimal service-worker scope this module needs (typed here: the DOM and WebWorker libs do not mix). */
export interface WorkerScope {
  location: { origin: string };
  registration: { scope: string };
  clients: {
    get(id: string): Promise<{ postMessage(m: unknown): void } | undefined>;
    matchAll(o?: { type?: string; includeUncontrolled?: boolean }): Promise<Array<{ id: string; postMessage(m: unknown): void }>>;
    claim(): Promise<void>;
  };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'install' | 'activate', f: (e: { waitUntil(p: Promise<unknown>): void }) => void): void;
  addEventListener(type: 'message', f: (e: { data: unknown; ports: readonly MessagePort[] }) => void): void;
  addEventListener(type: 'fetch', f: (e: { request: Request; clientId: string; resultingClientId?: string; respondWith(r: Promise<Response>): void }) => void): void;
}

/** A parsed `Range` header against a file of `size` bytes. */
export type RangeAnswer = { kind: 'full' } | { kind: 'partial'; start: number; end: number; openEnded?: boolean } | { kind: 'unsatisfiable' };

/**
 * `Range` (RFC 9110) for one range: `bytes=a-b`, `bytes=a-`, `bytes=-n`. A malformed header or
 * another unit is ignored (`full`), a multi-range answered with its first range.
 */
export function parseRange(header: string | null, size: number): RangeAnswer {
  if (!header) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*(,.*)?$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return m[2] === '' ? { kind: 'partial', start, end, openEnded: true } : { kind: 'partial', start, end };
}

/** Stored chunks fetched ahead of the one the body is delivering. */
const LOOKAHEAD = 2;

/**
 * The plaintext bytes `[start, end]` (inclusive) as a stream: the covering chunks are fetched
 * (`fetchChunk(i)`, the stored chunk i), decrypted and sliced, `LOOKAHEAD` ahead of the reader.
 */
export function plaintextBody(
  s: Pick<DecryptSession, 'key' | 'canister' | 'canisterId' | 'encryption'>,
  start: number,
  end: number,
  fetchChunk: (i: number, signal: AbortSignal) => Promise<Uint8Array>,
): ReadableStream<Uint8Array> {
  const e = s.encryption;
  const [first, last] = coveringChunks(e, start, end + 1);
  const abort = new AbortController();
  const pending = new Map<number, Promise<Uint8Array>>();
  let next = first;
  let ahead = first;
  const plainOf = (i: number) => {
    // The AAD is built from the principal's bytes the page gave.
    const p = fetchChunk(i, abort.signal).then((c) => decryptChunk(s.key, s.canister, e, i, c));
    p.catch(() => undefined);
    return p;
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        while (ahead <= last && ahead < next + 1 + LOOKAHEAD) {
          pending.set(ahead, plainOf(ahead));
          ahead++;
        }
        const i = next;
        const plain = await pending.get(i)!;
        pending.delete(i);
        const base = i * e.plainChunkSize;
        const from = Math.max(start, base) - base;
        const to = Math.min(end + 1, base + plainLen(e, i)) - base;
        controller.enqueue(plain.subarray(from, to));
        next++;
        if (next > last) controller.close();
      },
      cancel() {
        abort.abort();
        pending.clear();
      },
    },
    { highWaterMark: 0 },
  );
}

/** The canister's URL answered another status than 206 (e.g. 401/403: the playback token expired or was revoked). */
export class SourceStatusError extends Error {
  override name = 'SourceStatusError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Fetches stored chunk `i` from the canister's URL with its exact range and checks its length. */
export async function fetchStoredChunk(sourceUrl: string, e: EncryptionInfo, i: number, signal?: AbortSignal, fetchFn: typeof fetch = fetch): Promise<Uint8Array> {
  const [s, end] = storedChunkRange(e, i);
  const r = await fetchFn(sourceUrl, { headers: { Range: `bytes=${s}-${end - 1}` }, signal, credentials: 'omit' });
  if (r.status !== 206 && !(r.status === 200 && encChunkCount(e) === 1)) {
    throw new SourceStatusError(r.status, `the canister answered ${r.status} for stored chunk ${i} (bytes ${s}-${end - 1})`);
  }
  const b = new Uint8Array(await r.arrayBuffer());
  if (b.length !== end - s) throw new DecryptionError(`stored chunk ${i} came back with ${b.length} bytes, not ${end - s}`, i);
  return b;
}

/**
 * The answer to one request for a session's virtual URL. `renew`: asked once when the canister's
 * URL answers 401/403 (the playback token expired): the page's session registered again, with a
 * fresh token; the chunk is then fetched from its URL.
 */
export function answer(s: DecryptSession, request: Request, fetchFn: typeof fetch = fetch, renew?: () => Promise<DecryptSession | undefined>): Response {
  const size = s.encryption.plainSize;
  const base: Record<string, string> = {
    'Content-Type': s.mimeType,
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-store',
  };
  if (request.method !== 'GET' && request.method !== 'HEAD') return new Response(null, { status: 405, headers: { Allow: 'GET, HEAD' } });
  const r = parseRange(request.headers.get('Range'), size);
  if (r.kind === 'unsatisfiable') return new Response(null, { status: 416, headers: { ...base, 'Content-Range': `bytes */${size}` } });
  let [start, end] = r.kind === 'partial' ? [r.start, r.end] : [0, size - 1];
  if (r.kind === 'partial' && r.openEnded) {
    // Rounded up to the end of a chunk, so that the next answer starts on the chunk grid.
    const chunk = s.encryption.plainChunkSize;
    const cap = Math.max(1, s.maxAnswerBytes ?? MAX_ANSWER_BYTES);
    end = Math.min(end, Math.ceil((start + cap) / chunk) * chunk - 1);
  }
  const headers: Record<string, string> = { ...base, 'Content-Length': String(end - start + 1) };
  if (r.kind === 'partial') headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  const status = r.kind === 'partial' ? 206 : 200;
  if (request.method === 'HEAD') return new Response(null, { status, headers });
  let current = s;
  let renewed: Promise<DecryptSession | undefined> | undefined;
  const fetchChunk = async (i: number, signal: AbortSignal): Promise<Uint8Array> => {
    try {
      return await fetchStoredChunk(current.sourceUrl, s.encryption, i, signal, fetchFn);
    } catch (err) {
      if (!(err instanceof SourceStatusError) || (err.status !== 401 && err.status !== 403) || !renew) throw err;
      // One renewal per answer, shared by the chunks in flight; a second refusal is final.
      renewed ??= renew();
      const n = await renewed;
      if (!n) throw err;
      current = n;
      return fetchStoredChunk(current.sourceUrl, s.encryption, i, signal, fetchFn);
    }
  };
  const body = plaintextBody(s, start, end, fetchChunk);
  return new Response(body, { status, headers });
}

/** Checks a registration message's shape. */
function isSession(d: unknown): d is DecryptSession {
  const s = d as DecryptSession;
  return (
    typeof s === 'object' && s !== null && s.type === 'canvid-decrypt-session' && typeof s.session === 'string' &&
    typeof s.canisterId === 'string' && typeof s.sourceUrl === 'string' && typeof s.mimeType === 'string' &&
    s.key instanceof CryptoKey && s.canister instanceof Uint8Array && typeof s.encryption?.plainSize === 'number' &&
    s.encryption.plainChunkSize > 0 && CHUNK_OVERHEAD === 28 &&
    (s.maxAnswerBytes === undefined || (typeof s.maxAnswerBytes === 'number' && s.maxAnswerBytes > 0))
  );
}

/** How long a request for an unknown session waits for its page to register it again. */
const NEED_TIMEOUT_MS = 10_000;

/** Installs the worker's handlers on `scope` (the service worker's global `self`). */
export function installDecryptWorker(scope: WorkerScope): void {
  const sessions = new Map<string, DecryptSession>();
  const waiting = new Map<string, Array<(s: DecryptSession) => void>>();

  scope.addEventListener('install', (e) => e.waitUntil(scope.skipWaiting()));
  // Take over the pages already open, so the page that registered us can play without a reload.
  scope.addEventListener('activate', (e) => e.waitUntil(scope.clients.claim()));

  scope.addEventListener('message', (e) => {
    const d = e.data;
    if (!isSession(d)) return;
    sessions.set(d.session, d);
    for (const w of waiting.get(d.session) ?? []) w(d);
    waiting.delete(d.session);
    const ack: DecryptSessionAck = { type: 'canvid-decrypt-ack', session: d.session };
    e.ports[0]?.postMessage(ack);
  });

  const prefix = new URL(DECRYPT_PATH, scope.registration.scope).pathname;

  /** A session this worker lost (restarted): ask the page(s) to register it again. */
  const recover = async (session: string, clientId: string): Promise<DecryptSession | undefined> => {
    const got = new Promise<DecryptSession | undefined>((res) => {
      const timer = setTimeout(() => res(undefined), NEED_TIMEOUT_MS);
      const list = waiting.get(session) ?? [];
      list.push((s) => {
        clearTimeout(timer);
        res(s);
      });
      waiting.set(session, list);
    });
    const need: DecryptNeed = { type: 'canvid-decrypt-need', session };
    const c = clientId ? await scope.clients.get(clientId) : undefined;
    if (c) c.postMessage(need);
    else for (const x of await scope.clients.matchAll({ type: 'window' })) x.postMessage(need);
    return got;
  };

  scope.addEventListener('fetch', (event) => {
    const url = new URL(event.request.url);
    if (url.origin !== scope.location.origin || !url.pathname.startsWith(prefix)) return;
    event.respondWith(
      (async () => {
        const id = url.searchParams.get('session') ?? '';
        const s = sessions.get(id) ?? (await recover(id, event.clientId));
        const canister = url.pathname.slice(prefix.length).split('/')[0];
        if (!s || s.canisterId !== canister) {
          return new Response(`no decryption session ${id} for ${canister}`, { status: 404, headers: { 'Content-Type': 'text/plain' } });
        }
        return answer(s, event.request, fetch, async () => {
          sessions.delete(id);
          return recover(id, event.clientId);
        });
      })(),
    );
  });
}
