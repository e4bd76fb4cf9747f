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

test('abort rejects at once with AbortError and closes the source', async () => {
  const ac = new AbortController();
  let closed = false;
  async function* src() {
    try {
      for (let i = 0; ; i++) yield i;
    } finally {
      closed = true;
    }
  }
  setTimeout(() => ac.abort(), 15);
  await assert.rejects(runPool(src(), 2, () => tick(5), ac.signal), AbortError);
  await tick(20);
  assert.ok(closed);
  await assert.rejects(runPool([1], 0, async () => {}), RangeError);
});
