import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runPool } from '../../src/concurrency.js';
import { AbortError } from '../../src/errors.js';

const tick = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

test('runPool runs every item with at most `concurrency` in flight', async () => {
  let inFlight = 0;
  let max = 0;
  const done: number[] = [];
  await runPool(Array.from({ length: 20 }, (_, i) => i), 3, async (i) => {
    inFlight++;
    max = Math.max(max, inFlight);
    await tick(1 + (i % 3));
    done.push(i);
    inFlight--;
  });
  assert.equal(max, 3);
  assert.deepEqual(done.sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
});

test('runPool pulls an async source lazily (bounded read-ahead)', async () => {
  let pulled = 0;
  let finished = 0;
  let maxAhead = 0;
  async function* src() {
    for (let i = 0; i < 30; i++) {
      pulled++;
      maxAhead = Math.max(maxAhead, pulled - finished);
      yield i;
    }
  }
  await runPool(src(), 4, async () => {
    await tick(2);
    finished++;
  });
  assert.equal(finished, 30);
  assert.ok(maxAhead <= 5, `read ${maxAhead} items ahead of completion`);
});

test('the first failure stops the pool and is thrown after running tasks settle', async () => {
  const started: number[] = [];
  let settled = 0;
  await assert.rejects(
    runPool(Array.from({ length: 50 }, (_, i) => i), 4, async (i) => {
      started.push(i);
      await tick(2);
      settled++;
      if (i === 5) throw new Error('chunk 5 failed');
    }),
    /chunk 5 failed/,
  );
  assert.ok(started.length < 20, `started ${started.length}`);
  assert.equal(settled, started.length);
});

test('abort rejects at once with AbortError; its `settled` resolves once the started tasks finish and the source is closed', async () => {
  const ac = new AbortController();
  let closed = false;
  async function* src() {
    try {
      for (let i = 0; ; i++) yield i;
    } finally {
      closed = true;
    }
  }
  // Every task waits for `release`; the second one to start aborts the pool.
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let started = 0;
  let finished = 0;
  const err: unknown = await runPool(
    src(),
    2,
    async () => {
      if (++started === 2) ac.abort();
      await released;
      finished++;
    },
    ac.signal,
  ).then(
    () => assert.fail('runPool resolved after an abort'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof AbortError, `got ${String(err)}`);
  assert.equal(finished, 0, 'rejected while both tasks still run');
  assert.ok(err.settled, 'an aborted pool says when its tasks are done');
  let settled = false;
  void err.settled.then(() => (settled = true));
  await Promise.resolve();
  assert.equal(settled, false, 'not settled while tasks still run');
  release();
  await err.settled;
  assert.equal(finished, 2);
  assert.equal(started, 2, 'no task starts after the abort');
  assert.ok(closed, 'the source is closed');
  // Already aborted: nothing starts, nothing to wait for.
  const late = await runPool([1], 1, async () => assert.fail('started'), ac.signal).catch((e: unknown) => e);
  assert.ok(late instanceof AbortError && late.settled);
  await late.settled;
  await assert.rejects(runPool([1], 0, async () => {}), RangeError);
});
