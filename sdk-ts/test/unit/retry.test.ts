import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, DEFAULT_RETRY, retryPolicy, withRetry, sleep, abortable } from '../../src/retry.js';
import { AbortError, BusyError, NetworkError, NotAuthorizedError, RejectedError, fromCandidError } from '../../src/errors.js';
import { Principal } from '@icp-sdk/core/principal';

test('backoff grows exponentially, is capped, and jitter only shortens it (by at most `jitter`)', () => {
  const p = retryPolicy({ baseDelayMs: 100, factor: 2, maxDelayMs: 1000, jitter: 0.5 });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(p, n, 0)), [100, 200, 400, 800, 1000, 1000]);
  assert.equal(backoffDelay(p, 3, 0.999999) > 200, true);
  assert.equal(backoffDelay(p, 3, 0.5), 300);
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(p, 4, Math.random());
    assert.ok(d > 400 && d <= 800, `delay ${d}`);
  }
  assert.equal(backoffDelay(retryPolicy({ jitter: 0 }), 2, 0.7), DEFAULT_RETRY.baseDelayMs * 2);
  assert.throws(() => retryPolicy({ jitter: 2 }), RangeError);
  assert.throws(() => retryPolicy({ retries: -1 }), RangeError);
  assert.throws(() => retryPolicy({ factor: 0.5 }), RangeError);
});

test('withRetry retries transient errors with the computed waits, then succeeds', async () => {
  const waits: number[] = [];
  let attempts = 0;
  const out = await withRetry(
    async () => {
      attempts++;
      if (attempts === 1) throw fromCandidError({ Busy: { reason: 'transfer in flight' } });
      if (attempts === 2) throw new NetworkError('fetch failed');
      if (attempts === 3) throw new RejectedError(2, 'queue full', 'IC0515');
      return 'ok';
    },
    { policy: retryPolicy({ baseDelayMs: 10, jitter: 0.5 }), sleep: async (ms) => void waits.push(ms), random: () => 0.5 },
  );
  assert.equal(out, 'ok');
  assert.equal(attempts, 4);
  assert.deepEqual(waits, [7.5, 15, 30]);
});

test('withRetry does not retry permanent errors', async () => {
  for (const err of [
    fromCandidError({ NotAuthorized: { caller: Principal.anonymous(), reason: 'not the owner' } }),
    new RejectedError(5, 'trapped', 'IC0503'),
    new NetworkError('HTTP 400', { status: 400, transient: false }),
    new Error('plain bug'),
  ]) {
    let attempts = 0;
    await assert.rejects(
      withRetry(async () => {
        attempts++;
        throw err;
      }, { policy: retryPolicy({}), sleep: async () => {} }),
      (e) => e === err,
    );
    assert.equal(attempts, 1, String(err));
  }
  assert.ok(fromCandidError({ NotAuthorized: { caller: Principal.anonymous(), reason: 'x' } }) instanceof NotAuthorizedError);
});

test('withRetry gives up after `retries` and throws the last error', async () => {
  let attempts = 0;
  await assert.rejects(
    withRetry(async () => {
      attempts++;
      throw new BusyError('Busy', { reason: 'busy' }, `busy ${attempts}`, { transient: true });
    }, { policy: retryPolicy({ retries: 3 }), sleep: async () => {} }),
    (e: unknown) => e instanceof BusyError && e.reason === 'busy 4',
  );
  assert.equal(attempts, 4);
});

test('aborting stops the wait between attempts', async () => {
  const ac = new AbortController();
  let attempts = 0;
  const started = Date.now();
  const p = withRetry(async () => {
    attempts++;
    throw new NetworkError('down');
  }, { policy: retryPolicy({ baseDelayMs: 60_000, jitter: 0 }), signal: ac.signal });
  setTimeout(() => ac.abort(new Error('user cancelled')), 20);
  await assert.rejects(p, (e: unknown) => e instanceof AbortError && /user cancelled/.test(e.message));
  assert.equal(attempts, 1);
  assert.ok(Date.now() - started < 5000);
  await assert.rejects(sleep(10, AbortSignal.abort()), AbortError);
  const later = new AbortController();
  setTimeout(() => later.abort(), 10);
  await assert.rejects(abortable(new Promise(() => {}), later.signal), AbortError);
  assert.equal(await abortable(Promise.resolve(3), new AbortController().signal), 3);
});
