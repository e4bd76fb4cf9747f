import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressTracker, type UploadProgress } from '../../src/progress.js';

test('progress counts bytes and chunks, including those stored before a resume', () => {
  let now = 0;
  const seen: UploadProgress[] = [];
  const t = new ProgressTracker((p) => seen.push(p), () => now);
  t.start(1000, 10, 300, 3);
  t.setPhase('uploading');
  now = 1000;
  t.chunkDone(100);
  const last = seen[seen.length - 1]!;
  assert.equal(last.bytesUploaded, 400);
  assert.equal(last.bytesSent, 100);
  assert.equal(last.chunksUploaded, 4);
  assert.equal(last.totalBytes, 1000);
  assert.equal(last.phase, 'uploading');
  assert.equal(last.elapsedMs, 1000);
});

test('rate is measured over a sliding window and gives an ETA', () => {
  let now = 0;
  const t = new ProgressTracker(undefined, () => now, 5000);
  t.start(10_000_000, 100);
  assert.equal(t.rate(), 0);
  // 1 MB/s for 10 s ...
  for (let s = 1; s <= 10; s++) {
    now = s * 1000;
    t.chunkDone(1_000_000 - 900_000); // 100 kB per second
  }
  assert.equal(Math.round(t.rate()), 100_000);
  // ... then 10x faster: the window forgets the slow part within 5 s.
  for (let s = 11; s <= 16; s++) {
    now = s * 1000;
    t.chunkDone(1_000_000);
  }
  assert.ok(t.rate() > 900_000 && t.rate() <= 1_000_000, `rate ${t.rate()}`);
  const p = t.snapshot();
  assert.equal(p.bytesUploaded, 7_000_000);
  assert.ok(p.etaMs !== undefined && Math.abs(p.etaMs - (3_000_000 / p.bytesPerSecond) * 1000) < 1);
});

test('a throwing progress callback does not break the tracker', () => {
  const t = new ProgressTracker(() => {
    throw new Error('ui bug');
  });
  t.start(10, 1);
  assert.doesNotThrow(() => t.chunkDone(10));
  assert.equal(t.snapshot().bytesUploaded, 10);
});
