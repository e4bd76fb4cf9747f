// The decrypting service worker's answers (src/decrypt-sw.ts), without a browser: Range parsing,
// 200/206/416/HEAD with plaintext coordinates, bodies that are exactly the plaintext bytes, only
// the covering stored chunks fetched (each with its exact range), and a tampered chunk failing
// the body instead of delivering bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Principal } from '@icp-sdk/core/principal';
import { type DecryptSession, type WorkerScope, answer, installDecryptWorker, parseRange } from '../../src/decrypt-sw.js';
import { SCHEME_AES256GCM_V1, type EncryptionInfo, deriveVideoKey, encryptChunk, plainLen } from '../../src/encryption.js';
import { randomBytes } from '../support/fake.js';

const CANISTER = 'rrkah-fqaaa-aaaaa-aaaaq-cai';

test('parseRange: single ranges, suffixes, open ends, malformed and unsatisfiable', () => {
  assert.deepEqual(parseRange(null, 100), { kind: 'full' });
  assert.deepEqual(parseRange('bytes=0-', 100), { kind: 'partial', start: 0, end: 99, openEnded: true });
  assert.deepEqual(parseRange('bytes=10-19', 100), { kind: 'partial', start: 10, end: 19 });
  assert.deepEqual(parseRange('bytes=90-500', 100), { kind: 'partial', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-30', 100), { kind: 'partial', start: 70, end: 99 });
  assert.deepEqual(parseRange('bytes=-300', 100), { kind: 'partial', start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=5-9,20-29', 100), { kind: 'partial', start: 5, end: 9 });
  assert.deepEqual(parseRange('bytes=100-', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=40-', 100), { kind: 'partial', start: 40, end: 99, openEnded: true });
  assert.deepEqual(parseRange('bytes=-0', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('items=0-5', 100), { kind: 'full' });
  assert.deepEqual(parseRange('bytes=9-5', 100), { kind: 'full' });
  assert.deepEqual(parseRange('bytes=x', 100), { kind: 'full' });
});

async function setup() {
  const e: EncryptionInfo = { scheme: SCHEME_AES256GCM_V1, keyName: 'key_1', keyEpoch: 0, plainSize: 2500, plainChunkSize: 1000 };
  const full = await deriveVideoKey(randomBytes(48, 3), CANISTER, 'key_1', 0);
  const plain = randomBytes(2500, 4);
  const stored: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) stored.push(await encryptChunk(full, e, i, plain.subarray(i * 1000, i * 1000 + plainLen(e, i))));
  const file = Buffer.concat(stored);
  const ranges: string[] = [];
  // The canister's HTTP interface for exact chunk ranges (docs/http.md): 206 with those bytes.
  const fetchFn = (async (_url: string, init: RequestInit) => {
    const r = (init.headers as Record<string, string>).Range!;
    ranges.push(r);
    const [a, b] = /bytes=(\d+)-(\d+)/.exec(r)!.slice(1).map(Number) as [number, number];
    return new Response(file.subarray(a, b + 1), { status: 206 });
  }) as unknown as typeof fetch;
  const ro = await deriveVideoKey(randomBytes(48, 3), CANISTER, 'key_1', 0, false);
  const s: DecryptSession = {
    type: 'canvid-decrypt-session',
    session: 's1',
    canisterId: CANISTER,
    canister: Principal.fromText(CANISTER).toUint8Array(),
    encryption: e,
    mimeType: 'video/mp4',
    sourceUrl: 'http://x.localhost/video?token=t',
    key: ro.aes,
  };
  return { s, plain, file, ranges, fetchFn };
}

const req = (range?: string, method = 'GET') => new Request('http://app.localhost/canvid-decrypt/x/video?session=s1', { method, headers: range ? { Range: range } : {} });

test('an open-ended range gets at most maxAnswerBytes, to the end of a chunk; closed ranges and no range are whole', async () => {
  const { s, plain, ranges, fetchFn } = await setup();
  const capped = { ...s, maxAnswerBytes: 1200 };
  // 1200 bytes from 300 end inside chunk 1: the answer runs to that chunk's end (1999).
  let r = answer(capped, req('bytes=300-'), fetchFn);
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), 'bytes 300-1999/2500');
  assert.equal(r.headers.get('content-length'), '1700');
  assert.deepEqual(new Uint8Array(await r.arrayBuffer()), plain.subarray(300, 2000));
  assert.deepEqual(ranges, ['bytes=0-1027', 'bytes=1028-2055']);
  // The element's next request continues on the grid; the last answer ends at the file's end.
  r = answer(capped, req('bytes=2000-'), fetchFn);
  assert.equal(r.headers.get('content-range'), 'bytes 2000-2499/2500');
  assert.deepEqual(new Uint8Array(await r.arrayBuffer()), plain.subarray(2000));
  // A closed range is answered as asked, and no range is the whole file (a 200 cannot be cut).
  r = answer(capped, req('bytes=0-2499'), fetchFn);
  assert.equal(r.headers.get('content-length'), '2500');
  r = answer(capped, req(), fetchFn);
  assert.equal(r.status, 200);
  assert.equal((await r.arrayBuffer()).byteLength, 2500);
});

test('answers ranges in plaintext coordinates from only the covering chunks', async () => {
  const { s, plain, ranges, fetchFn } = await setup();
  let r = answer(s, req('bytes=1500-2100'), fetchFn);
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), 'bytes 1500-2100/2500');
  assert.equal(r.headers.get('content-length'), '601');
  assert.equal(r.headers.get('accept-ranges'), 'bytes');
  assert.equal(r.headers.get('content-type'), 'video/mp4');
  assert.deepEqual(new Uint8Array(await r.arrayBuffer()), plain.subarray(1500, 2101));
  assert.deepEqual(ranges, ['bytes=1028-2055', 'bytes=2056-2583']);

  ranges.length = 0;
  r = answer(s, req('bytes=0-'), fetchFn);
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), 'bytes 0-2499/2500');
  assert.deepEqual(new Uint8Array(await r.arrayBuffer()), plain);
  assert.equal(ranges.length, 3);

  r = answer(s, req(), fetchFn);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-length'), '2500');
  assert.equal(r.headers.get('content-range'), null);
  assert.deepEqual(new Uint8Array(await r.arrayBuffer()), plain);

  r = answer(s, req('bytes=-10'), fetchFn);
  assert.deepEqual(new Uint8Array(await r.arrayBuffer()), plain.subarray(2490));

  r = answer(s, req('bytes=2500-'), fetchFn);
  assert.equal(r.status, 416);
  assert.equal(r.headers.get('content-range'), 'bytes */2500');

  ranges.length = 0;
  r = answer(s, req('bytes=10-20', 'HEAD'), fetchFn);
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-length'), '11');
  assert.equal(r.body, null);
  assert.equal(ranges.length, 0);
});

test('a tampered stored chunk fails the body, and a short answer is refused', async () => {
  const { s, file, fetchFn } = await setup();
  file[1028 + 50]! ^= 1; // chunk 1's ciphertext
  const ok = answer(s, req('bytes=0-999'), fetchFn);
  assert.equal((await ok.arrayBuffer()).byteLength, 1000);
  await assert.rejects(answer(s, req('bytes=0-1999'), fetchFn).arrayBuffer(), /decrypt/);
  const short = (async () => new Response(new Uint8Array(10), { status: 206 })) as unknown as typeof fetch;
  await assert.rejects(answer(s, req('bytes=0-10'), short).arrayBuffer(), /10 bytes/);
  const denied = (async () => new Response('no', { status: 403 })) as unknown as typeof fetch;
  await assert.rejects(answer(s, req('bytes=0-10'), denied).arrayBuffer(), /403/);
});

/** A stand-in for the service worker's global scope: records handlers, clients and messages. */
function fakeScope() {
  const handlers: Record<string, (e: any) => void> = {};
  const toClient: unknown[] = [];
  const client = { id: 'page-1', postMessage: (m: unknown) => toClient.push(m) };
  const scope: WorkerScope = {
    location: { origin: 'http://app.localhost' },
    registration: { scope: 'http://app.localhost/' },
    clients: {
      get: async (id) => (id === client.id ? client : undefined),
      matchAll: async () => [client],
      claim: async () => undefined,
    },
    skipWaiting: async () => undefined,
    addEventListener: ((type: string, f: (e: any) => void) => {
      handlers[type] = f;
    }) as WorkerScope['addEventListener'],
  };
  const fetchEvent = (url: string, range?: string) => {
    let answer: Promise<Response> | undefined;
    handlers.fetch!({ request: new Request(url, { headers: range ? { Range: range } : {} }), clientId: client.id, respondWith: (r: Promise<Response>) => (answer = r) });
    return answer;
  };
  const post = (data: unknown) => {
    const acks: unknown[] = [];
    handlers.message!({ data, ports: [{ postMessage: (m: unknown) => acks.push(m) }] });
    return acks;
  };
  return { scope, handlers, toClient, fetchEvent, post };
}

test('the worker: claims pages, ignores other URLs, asks the page again for a session it lost', async () => {
  const { s, plain } = await setup();
  const f = fakeScope();
  installDecryptWorker(f.scope);
  const waited: Promise<unknown>[] = [];
  f.handlers.activate!({ waitUntil: (p: Promise<unknown>) => waited.push(p) });
  assert.equal(waited.length, 1);
  // Not ours: the browser handles it (no respondWith).
  assert.equal(f.fetchEvent('http://app.localhost/app.js'), undefined);
  assert.equal(f.fetchEvent('http://other.localhost/canvid-decrypt/x/video?session=s1'), undefined);
  // A message that is not a session is ignored; a session is acknowledged.
  assert.deepEqual(f.post({ type: 'canvid-decrypt-session', session: 'x' }), []);
  // A request for a session the worker does not know (restarted): it asks the page, which posts
  // the session again; then the request is answered. The source is served by a stub `fetch`.
  const realFetch = globalThis.fetch;
  const { fetchFn } = await setup();
  globalThis.fetch = fetchFn;
  try {
    const pending = f.fetchEvent(`http://app.localhost/canvid-decrypt/${CANISTER}/video?session=s1`, 'bytes=100-199')!;
    assert.ok(pending);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(f.toClient, [{ type: 'canvid-decrypt-need', session: 's1' }]);
    assert.deepEqual(f.post(s), [{ type: 'canvid-decrypt-ack', session: 's1' }]);
    const r = await pending;
    assert.equal(r.status, 206);
    assert.equal(r.headers.get('content-range'), 'bytes 100-199/2500');
    // The session's key is not the video's key for another canister's URL.
    const wrong = await f.fetchEvent('http://app.localhost/canvid-decrypt/ryjl3-tyaaa-aaaaa-aaaba-cai/video?session=s1', 'bytes=0-9')!;
    assert.equal(wrong.status, 404);
    assert.deepEqual(new Uint8Array(await r.arrayBuffer()), plain.subarray(100, 200));
  } finally {
    globalThis.fetch = realFetch;
  }
});

test('a 401/403 from the canister (expired token) renews the session once, then fetches with the new URL', async () => {
  const { s, plain, file } = await setup();
  const urls: string[] = [];
  const fetchFn = (async (url: string, init: RequestInit) => {
    urls.push(url);
    if (!url.endsWith('token=fresh')) return new Response('expired', { status: 401 });
    const [a, b] = /bytes=(\d+)-(\d+)/.exec((init.headers as Record<string, string>).Range!)!.slice(1).map(Number) as [number, number];
    return new Response(file.subarray(a, b + 1), { status: 206 });
  }) as unknown as typeof fetch;
  let renewals = 0;
  const renew = async () => {
    renewals++;
    return { ...s, sourceUrl: 'http://x.localhost/video?token=fresh' };
  };
  const r = answer(s, req('bytes=0-2499'), fetchFn, renew);
  assert.deepEqual(new Uint8Array(await r.arrayBuffer()), plain);
  assert.equal(renewals, 1);
  assert.ok(urls.slice(-2).every((u) => u.endsWith('token=fresh')));
  // A renewal that does not help (token revoked): the body fails, one renewal only.
  renewals = 0;
  const revoked = async () => {
    renewals++;
    return s;
  };
  await assert.rejects(answer(s, req('bytes=0-2499'), fetchFn, revoked).arrayBuffer(), /401/);
  assert.equal(renewals, 1);
});
