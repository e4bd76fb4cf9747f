// End-to-end: paid videos with the SDK against `canvid serve --icrc-ledger` (DFINITY's real
// ICRC-1/2/3 ledger in the embedded replica, next to the real video canister wasm). Skips,
// printing SKIPPED, when the ledger fixture (../shared/fixtures/icrc-ledger or $ICRC_LEDGER_DIR)
// is absent; otherwise fails (never skips) when the server cannot be started.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import {
  CanvidClient,
  NotAuthorizedError,
  PurchaseError,
  ReceiptVerificationError,
  type CanvidAccess,
  type WatchClock,
} from '../../src/index.js';
import { gatewayGet, icrcLedgerDir, startServe, type Served } from '../support/serve.js';

const LEDGER_DIR = icrcLedgerDir();
const skip = LEDGER_DIR ? false : 'SKIPPED: DFINITY\'s ICRC ledger fixture is absent (../shared/fixtures/icrc-ledger; set ICRC_LEDGER_DIR)';
if (!LEDGER_DIR) console.error(`access.e2e: ${skip}`);

const FEE = 10_000n; // canvid serve's test ledger fee
const START = 100_000_000n;
const DAY_PRICE = 1_000_000n;
const MINUTE_PRICE = 20_000n;
const CHUNK = 4096;

const alice = Ed25519KeyIdentity.generate(); // creator
const bob = Ed25519KeyIdentity.generate(); // buys a day pass; later the new owner
const carol = Ed25519KeyIdentity.generate(); // no pass
const dave = Ed25519KeyIdentity.generate(); // pay-as-you-watch
const erin = Ed25519KeyIdentity.generate(); // buys after the owner changed
const id = (i: Ed25519KeyIdentity) => i.getPrincipal().toText();

let served: Served;
let work: string;
let video: Uint8Array;
let videoId: string;
let ledger: string;

async function access(identity: Ed25519KeyIdentity): Promise<CanvidAccess> {
  return (await client(identity)).access({ gateway: served.url });
}
async function client(identity?: Ed25519KeyIdentity): Promise<CanvidClient> {
  return CanvidClient.create({ host: served.url, identity, rootKey: served.rootKey, spawnId: served.spawnId, indexId: served.indexId });
}

/** GETs the whole file through the gateway with Range requests (each answer is one chunk). */
async function fetchAll(path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const r = await gatewayGet(served.port, videoId, path, { range: `bytes=${at}-` });
    assert.equal(r.status, 206, `Range bytes=${at}-: ${r.status} ${r.body.toString().slice(0, 200)}`);
    parts.push(r.body);
    at += r.body.length;
    const total = Number(/\/(\d+)$/.exec(String(r.headers['content-range']))![1]);
    if (at >= total) return Buffer.concat(parts);
  }
}

before(async () => {
  if (!LEDGER_DIR) return;
  work = mkdtempSync(join(tmpdir(), 'canvid-sdk-access-'));
  const file = join(work, 'paid.mp4');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=duration=4:size=320x240:rate=25',
    '-pix_fmt', 'yuv420p', '-c:v', 'libx264', file]);
  video = new Uint8Array(readFileSync(file));
  served = await startServe({ icrcLedger: LEDGER_DIR, fund: [bob, carol, dave, erin].map((i) => `${id(i)}=${START}`) });
  assert.ok(served.ledgerId, `serve named no ledger:\n${served.output.join('\n')}`);
  assert.ok(served.output.some((l) => l.includes(`icrc ledger ${served.ledgerId}`)), 'serve prints the ledger id');
  ledger = served.ledgerId!;
  const up = await (await client(alice)).upload(new Blob([video as Uint8Array<ArrayBuffer>], { type: 'video/mp4' }), { title: 'paid' }, { chunkSize: CHUNK });
  videoId = up.videoId;
});

after(async () => {
  await served?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('serve --icrc-ledger: DFINITY\'s ledger with ICRC-2, funded as asked', { skip, timeout: 600_000 }, async () => {
  const a = await access(bob);
  assert.equal(await a.balance(ledger), START);
  assert.equal(await a.ledger(ledger).icrc1_fee(), FEE);
  assert.equal(await a.balance(ledger, id(alice)), 0n);
});

test('creator sets a paid policy; a viewer buys a 24 h pass; balances add up; the receipt verifies; playbackUrl plays', { skip, timeout: 600_000 }, async () => {
  const owner = await access(alice);
  const info = await owner.setAccess(videoId, {
    mode: 'paid',
    ledger,
    previewBytes: CHUNK,
    offers: [
      { id: 'day', price: DAY_PRICE, durationSeconds: 86_400 },
      { id: 'minute', price: MINUTE_PRICE, durationSeconds: 60 },
    ],
  });
  assert.equal(info.policy.mode, 'paid');
  assert.equal(info.previewEnd, BigInt(CHUNK));
  assert.deepEqual((await owner.accessInfo(videoId)).policy, info.policy);
  // Only the owner sets the policy.
  await assert.rejects((await access(bob)).setAccess(videoId, { mode: 'public' }), NotAuthorizedError);

  const viewer = await access(bob);
  assert.equal((await viewer.myAccess(videoId)).grant, undefined);
  const receipt = await viewer.buyAccess(videoId, { offer: 'day' });
  assert.equal(receipt.buyer, id(bob));
  assert.equal(receipt.amount, DAY_PRICE);
  assert.equal(receipt.paidTo.owner, id(alice));
  assert.equal(receipt.validUntil! - receipt.validFrom, 86_400n * 1_000_000_000n);
  // The buyer paid the price plus the approval's and the transfer's fees; the owner got the price.
  assert.equal(await viewer.balance(ledger), START - DAY_PRICE - 2n * FEE);
  assert.equal(await viewer.balance(ledger, id(alice)), DAY_PRICE);
  // Nothing more is approved than was needed: the allowance is used up.
  const allowance = await viewer.ledger(ledger).icrc2_allowance({
    account: { owner: bob.getPrincipal(), subaccount: [] },
    spender: { owner: (await import('@icp-sdk/core/principal')).Principal.fromText(videoId), subaccount: [] },
  });
  assert.equal(allowance.allowance, 0n);

  const grant = (await viewer.myAccess(videoId)).grant;
  assert.deepEqual(grant, { kind: 'pass', receipt: receipt.id, expiresAt: receipt.validUntil });
  const mine = await viewer.receipts(videoId);
  assert.deepEqual(mine.map((r) => r.id), [receipt.id]);

  // The receipt matches the ledger's block; a doctored one does not.
  const block = await viewer.verifyReceipt(mine[0]!);
  assert.equal(block.from, id(bob));
  assert.equal(block.to, id(alice));
  assert.equal(block.spender, videoId);
  assert.equal(block.amount, DAY_PRICE);
  await assert.rejects(viewer.verifyReceipt({ ...receipt, amount: receipt.amount + 1n }), ReceiptVerificationError);
  await assert.rejects(viewer.verifyReceipt({ ...receipt, buyer: id(carol) }), ReceiptVerificationError);

  // A playback URL plays the whole file over Range requests.
  const play = await viewer.playbackUrl(videoId, { ttlSeconds: 600 });
  const url = new URL(play.url);
  assert.equal(url.hostname, `${videoId}.localhost`);
  assert.equal(url.pathname, '/video');
  const bytes = await fetchAll(url.pathname + url.search);
  assert.equal(Buffer.compare(bytes, Buffer.from(video)), 0);
  // Revoked, the token no longer plays.
  assert.ok((await viewer.revokePlaybackTokens(videoId)) >= 0);
  const after = await gatewayGet(served.port, videoId, url.pathname + url.search, { range: `bytes=${CHUNK}-` });
  assert.equal(after.status, 403);
});

test('a viewer without a pass gets the preview, then 401 (403 with a bogus token)', { skip, timeout: 600_000 }, async () => {
  const viewer = await access(carol);
  assert.equal((await viewer.myAccess(videoId)).grant, undefined);
  const preview = await gatewayGet(served.port, videoId, '/video', { range: `bytes=0-${CHUNK - 1}` });
  assert.equal(preview.status, 206);
  assert.equal(Buffer.compare(preview.body, Buffer.from(video.subarray(0, CHUNK))), 0);
  assert.equal((await gatewayGet(served.port, videoId, '/video', { range: `bytes=${CHUNK}-` })).status, 401);
  assert.equal((await gatewayGet(served.port, videoId, '/video?token=bogus', { range: `bytes=${CHUNK}-` })).status, 403);
  // No pass, no playback token; and an unknown offer is refused before anything is approved.
  await assert.rejects(viewer.playbackUrl(videoId), NotAuthorizedError);
  await assert.rejects(viewer.buyAccess(videoId, { offer: 'year' }), /no offer "year"/);
  // A stale price is refused by the canister; nothing is charged (the approval's fee is).
  await assert.rejects(viewer.buyAccess(videoId, { offer: 'day', ledger, price: DAY_PRICE - 1n }), (e: unknown) => e instanceof PurchaseError && e.kind === 'PriceChanged');
  assert.equal(await viewer.balance(ledger), START - FEE);
});

test('pay-as-you-watch: N intervals of an injected clock are N charges; stop() stops charging', { skip, timeout: 600_000 }, async () => {
  const viewer = await access(dave);
  // A fake clock on the IC's time base: the test moves it; timers fire when it passes them.
  let now = Date.now();
  const timers = new Map<number, { at: number; f: () => void }>();
  let next = 0;
  const clock: WatchClock = {
    now: () => now,
    setTimeout: (f, ms) => {
      timers.set(++next, { at: now + ms, f });
      return next;
    },
    clearTimeout: (h) => void timers.delete(h as number),
  };
  const advance = (ms: number) => {
    now += ms;
    for (const [k, t] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at <= now) {
        timers.delete(k);
        t.f();
      }
    }
  };
  const perCharge = MINUTE_PRICE + 2n * FEE; // price + approval fee + transfer fee
  const owner0 = await viewer.balance(ledger, id(alice));

  const watch = viewer.watch(videoId, { offer: 'minute', clock, leadSeconds: 10 });
  await watch.idle();
  assert.equal(watch.receipts.length, 1, `first charge: ${String(watch.error)}`);
  assert.equal(await viewer.balance(ledger), START - perCharge);
  assert.equal(timers.size, 1, 'the next purchase is scheduled');
  const N = 3;
  for (let i = 1; i <= N; i++) {
    advance(60_000);
    await watch.idle();
    assert.equal(watch.receipts.length, 1 + i, `interval ${i}: ${String(watch.error)}`);
    assert.equal(await viewer.balance(ledger), START - BigInt(1 + i) * perCharge);
  }
  // Each purchase extended the pass by 60 s from the end of the previous one.
  const r = watch.receipts;
  for (let i = 1; i < r.length; i++) assert.equal(r[i]!.validFrom, r[i - 1]!.validUntil);
  assert.equal(await viewer.balance(ledger, id(alice)), owner0 + BigInt(N + 1) * MINUTE_PRICE);

  await watch.stop();
  assert.equal(timers.size, 0);
  advance(10 * 60_000);
  await watch.idle();
  assert.equal(watch.receipts.length, N + 1);
  assert.equal(await viewer.balance(ledger), START - BigInt(N + 1) * perCharge);
  assert.equal(watch.error, undefined);
});

test('after an owner transfer, later revenue goes to the new owner', { skip, timeout: 600_000 }, async () => {
  const asAlice = await client(alice);
  await asAlice.transferOwnership(videoId, id(bob));
  const viewer = await access(erin);
  const alice0 = await viewer.balance(ledger, id(alice));
  const bob0 = await viewer.balance(ledger, id(bob));
  const receipt = await viewer.buyAccess(videoId, { offer: 'day' });
  assert.equal(receipt.paidTo.owner, id(bob));
  assert.equal(await viewer.balance(ledger, id(bob)), bob0 + DAY_PRICE);
  assert.equal(await viewer.balance(ledger, id(alice)), alice0);
  await viewer.verifyReceipt(receipt);
  // The new owner sees every receipt; the policy followed the video.
  const all = await (await access(bob)).receipts(videoId);
  assert.ok(all.length >= 6, `owner sees ${all.length} receipts`);
  assert.equal((await (await access(bob)).accessInfo(videoId)).policy.mode, 'paid');
});
