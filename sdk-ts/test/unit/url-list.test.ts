import { test } from 'node:test';
import assert from 'node:assert/strict';
import { videoUrl } from '../../src/url.js';
import { paginate } from '../../src/list.js';
import { AbortError, UnexpectedError } from '../../src/errors.js';

const ID = 'rrkah-fqaaa-aaaaa-aaaaq-cai';

test('videoUrl: mainnet certified and raw domains', () => {
  assert.equal(videoUrl(ID, 'icp0.io'), `https://${ID}.icp0.io/video`);
  assert.equal(videoUrl(ID, 'icp0.io', { raw: true }), `https://${ID}.raw.icp0.io/video`);
  assert.equal(videoUrl(ID, 'https://icp.net/'), `https://${ID}.icp.net/video`);
  assert.equal(videoUrl(ID, 'raw.icp0.io'), `https://${ID}.raw.icp0.io/video`);
  assert.equal(videoUrl(ID, 'icp0.io', { path: 'poster' }), `https://${ID}.icp0.io/poster`);
});

test('videoUrl: local gateways use <id>.localhost:<port>', () => {
  assert.equal(videoUrl(ID, 'http://127.0.0.1:4943'), `http://${ID}.localhost:4943/video`);
  assert.equal(videoUrl(ID, 'http://localhost:8080/'), `http://${ID}.localhost:8080/video`);
  assert.equal(videoUrl(ID, 'http://127.0.0.1:4943', { raw: true }), `http://${ID}.raw.localhost:4943/video`);
  assert.equal(videoUrl(ID, 'http://localhost:4943', { path: '/metadata.json' }), `http://${ID}.localhost:4943/metadata.json`);
  assert.throws(() => videoUrl('not an id', 'icp0.io'), TypeError);
});

test('paginate walks the cursor lazily and stops at the end', async () => {
  const pages: Record<string, { items: number[]; nextCursor?: string }> = {
    start: { items: [1, 2], nextCursor: 'a' },
    a: { items: [3, 4], nextCursor: 'b' },
    b: { items: [5] },
  };
  const asked: Array<string | undefined> = [];
  const fetchPage = async (c: string | undefined) => {
    asked.push(c);
    return pages[c ?? 'start']!;
  };
  const out = [];
  for await (const x of paginate(fetchPage)) out.push(x);
  assert.deepEqual(out, [1, 2, 3, 4, 5]);
  assert.deepEqual(asked, [undefined, 'a', 'b']);

  // Lazy: breaking after the first item fetches one page only.
  asked.length = 0;
  for await (const _ of paginate(fetchPage)) break;
  assert.deepEqual(asked, [undefined]);

  // Starting from a cursor.
  const rest = [];
  for await (const x of paginate(fetchPage, { cursor: 'b' })) rest.push(x);
  assert.deepEqual(rest, [5]);
});

test('paginate refuses a looping cursor and honours abort', async () => {
  const loop = async () => ({ items: [1], nextCursor: 'same' });
  await assert.rejects((async () => {
    for await (const _ of paginate(loop)) { /* drain */ }
  })(), UnexpectedError);
  await assert.rejects((async () => {
    for await (const _ of paginate(loop, { signal: AbortSignal.abort() })) { /* drain */ }
  })(), AbortError);
});
