// CanvidAccess against in-memory stand-ins of the video canister and an ICRC-2 ledger: what
// buyAccess approves and sends (exactly price + fee, the same created_at_time on every Pending
// retry), how errors are typed, what verifyReceipt checks, and watch()'s schedule on a fake
// clock. The real canisters: test/e2e/access.e2e.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Agent } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import {
  CanvidAccess,
  LedgerError,
  NotAuthorizedError,
  PurchaseError,
  ReceiptVerificationError,
  receiptMemo,
  type WatchClock,
} from '../../src/index.js';
import type { Receipt as CandidReceipt, _SERVICE as VideoService } from '../../src/bindings/video.did.js';
import type { IcrcApproveArgs, IcrcValue, LedgerService } from '../../src/ledger.js';

const VIDEO = 'rrkah-fqaaa-aaaaa-aaaaq-cai';
const LEDGER = 'ryjl3-tyaaa-aaaaa-aaaba-cai';
const OWNER = Principal.fromText('aaaaa-aa');
const ME = Principal.fromText('2vxsx-fae');
const FEE = 10n;
const S = 1_000_000_000n;

/** A fake clock on the IC time base: `advance` fires the timers it passes. */
function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  const timers = new Map<number, { at: number; f: () => void }>();
  let n = 0;
  const clock: WatchClock = {
    now: () => now,
    setTimeout: (f, ms) => (timers.set(++n, { at: now + ms, f }), n),
    clearTimeout: (h) => void timers.delete(h as number),
  };
  return {
    clock,
    timers,
    get now() {
      return now;
    },
    advance(ms: number) {
      now += ms;
      for (const [k, t] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at <= now) {
          timers.delete(k);
          t.f();
        }
      }
    },
  };
}

/** The video canister and ledger, in memory. */
function world(opts: { nowMs: () => number; pending?: number; grant?: 'owner' | 'forever'; refuse?: boolean }) {
  const approvals: IcrcApproveArgs[] = [];
  const buys: Array<{ created_at_time: [] | [bigint]; price: bigint }> = [];
  let allowance = 0n;
  let balance = 1_000_000n;
  let expiresAt: bigint | undefined;
  let pending = opts.pending ?? 0;
  const receipts: CandidReceipt[] = [];
  const offers = [
    { id: 'minute', price: 100n, duration_seconds: [60n] as [bigint] },
    { id: 'day', price: 5_000n, duration_seconds: [86_400n] as [bigint] },
  ];
  const video = {
    access_policy: async () => ({
      policy: { mode: { Paid: { ledger: Principal.fromText(LEDGER), offers } }, preview_bytes: [4096n] as [bigint], free_paths: [] as [] },
      preview_end: 4096n,
      viewer_count: 0,
      receipt_count: BigInt(receipts.length),
      platform_fee: [],
      payouts_pending: 0,
    }),
    my_access: async () => {
      if (opts.grant === 'owner') return { grant: [{ Owner: null }], preview_end: 4096n, pending_purchases: [] };
      if (opts.grant === 'forever') return { grant: [{ Pass: { receipt: 0n, expires_at: [] } }], preview_end: 4096n, pending_purchases: [] };
      const nowNs = BigInt(opts.nowMs()) * 1_000_000n;
      const live = expiresAt !== undefined && expiresAt > nowNs;
      return {
        grant: live ? [{ Pass: { receipt: BigInt(receipts.length - 1), expires_at: [expiresAt] } }] : [],
        preview_end: 4096n,
        pending_purchases: [],
      };
    },
    buy_access: async (a: { offer: string; ledger: Principal; price: bigint; created_at_time: [] | [bigint] }) => {
      buys.push({ created_at_time: a.created_at_time, price: a.price });
      if (opts.refuse) return { Err: { Refused: { NotAuthorized: { caller: ME, reason: 'banned' } } } };
      const offer = offers.find((o) => o.id === a.offer)!;
      if (a.price !== offer.price) return { Err: { PriceChanged: { ledger: a.ledger, offer } } };
      if (pending > 0) {
        pending--;
        return { Err: { Pending: { purchase: 7n, reason: 'ledger did not answer' } } };
      }
      if (allowance < a.price + FEE) return { Err: { InsufficientAllowance: { allowance } } };
      allowance -= a.price + FEE;
      balance -= a.price + FEE;
      const nowNs = BigInt(opts.nowMs()) * 1_000_000n;
      const from = expiresAt !== undefined && expiresAt > nowNs ? expiresAt : nowNs;
      expiresAt = from + offer.duration_seconds[0] * S;
      const id = BigInt(receipts.length);
      const r: CandidReceipt = {
        id,
        video: Principal.fromText(VIDEO),
        buyer: ME,
        offer: a.offer,
        ledger: a.ledger,
        block_index: 40n + id,
        amount: a.price,
        paid_to: { owner: OWNER, subaccount: [] },
        platform_share: [],
        memo: receiptMemo(VIDEO, id),
        created_at_time: a.created_at_time[0]!,
        paid_at: nowNs,
        valid_from: from,
        valid_until: [expiresAt],
      };
      receipts.push(r);
      return { Ok: r };
    },
  } as unknown as VideoService;
  const blob = (p: Principal): IcrcValue => ({ Array: [{ Blob: p.toUint8Array() }] });
  const ledger = {
    icrc1_fee: async () => FEE,
    icrc1_balance_of: async () => balance,
    icrc2_allowance: async () => ({ allowance, expires_at: [] as [] }),
    icrc2_approve: async (a: IcrcApproveArgs) => {
      approvals.push(a);
      if (balance < FEE) return { Err: { InsufficientFunds: { balance } } };
      balance -= FEE;
      allowance = a.amount;
      return { Ok: BigInt(approvals.length) };
    },
    icrc3_get_blocks: async ([{ start }]: Array<{ start: bigint }>) => {
      const r = receipts.find((x) => x.block_index === start);
      const blocks = r
        ? [{
            id: start,
            block: {
              Map: [
                ['btype', { Text: '2xfer' }],
                ['tx', {
                  Map: [
                    ['from', blob(r.buyer)],
                    ['to', blob(r.paid_to.owner)],
                    ['spender', blob(r.video)],
                    ['amt', { Nat: r.amount }],
                    ['memo', { Blob: r.memo as Uint8Array }],
                    ['ts', { Nat: r.created_at_time }],
                  ],
                }],
              ],
            } as IcrcValue,
          }]
        : [];
      return { log_length: 100n, blocks, archived_blocks: [] };
    },
  } as unknown as LedgerService;
  const agent = { getPrincipal: async () => ME } as unknown as Agent;
  const access = new CanvidAccess({ agent, retry: { retries: 0 }, sleep: async () => {}, actors: { video: () => video, ledger: () => ledger } });
  return { access, approvals, buys, receipts, get balance() { return balance; }, get allowance() { return allowance; }, setAllowance: (a: bigint) => (allowance = a), setBalance: (b: bigint) => (balance = b) };
}

test('buyAccess approves exactly price + fee, then buys the offer at the price access_policy shows', async () => {
  const w = world({ nowMs: () => Date.now() });
  const r = await w.access.buyAccess(VIDEO, { offer: 'day' });
  assert.equal(w.approvals.length, 1);
  const a = w.approvals[0]!;
  assert.equal(a.amount, 5_000n + FEE);
  assert.equal(a.spender.owner.toText(), VIDEO);
  assert.deepEqual(a.expected_allowance, []);
  assert.equal(a.expires_at.length, 1, 'the approval expires');
  assert.deepEqual(a.fee, [FEE]);
  assert.equal(r.amount, 5_000n);
  assert.equal(r.paidTo.owner, OWNER.toText());
  assert.equal(w.allowance, 0n, 'nothing approved is left over');
  assert.equal(w.balance, 1_000_000n - 5_000n - 2n * FEE);
});

test('buyAccess skips the approval when the current allowance covers the purchase', async () => {
  const w = world({ nowMs: () => Date.now() });
  w.setAllowance(100n + FEE);
  await w.access.buyAccess(VIDEO, { offer: 'minute' });
  assert.equal(w.approvals.length, 0);
});

test('Pending is retried with the same created_at_time; still pending: PurchaseError with it', async () => {
  const w = world({ nowMs: () => Date.now(), pending: 2 });
  const r = await w.access.buyAccess(VIDEO, { offer: 'minute', pendingRetries: 3 });
  assert.equal(w.buys.length, 3);
  const times = new Set(w.buys.map((b) => b.created_at_time[0]));
  assert.equal(times.size, 1);
  assert.equal(r.createdAtTime, w.buys[0]!.created_at_time[0]);
  assert.equal(w.approvals.length, 1, 'approved once');

  const w2 = world({ nowMs: () => Date.now(), pending: 10 });
  const err = await w2.access.buyAccess(VIDEO, { offer: 'minute', pendingRetries: 2 }).catch((e: unknown) => e);
  assert.ok(err instanceof PurchaseError);
  assert.equal(err.kind, 'Pending');
  assert.ok(err.transient);
  assert.equal(w2.buys.length, 3);
  assert.ok(w2.buys.every((b) => b.created_at_time[0] === err.createdAtTime));
});

test('a retry with its createdAtTime asks buy_access first: approves only when the allowance is missing', async () => {
  const w = world({ nowMs: () => Date.now(), pending: 1 });
  const err = await w.access.buyAccess(VIDEO, { offer: 'minute', pendingRetries: 0 }).catch((e: unknown) => e);
  assert.ok(err instanceof PurchaseError && err.kind === 'Pending');
  assert.equal(w.approvals.length, 1);
  // The fake settles the retried purchase by pulling the allowance left by the first approval.
  const r = await w.access.buyAccess(VIDEO, { offer: 'minute', createdAtTime: err.createdAtTime });
  assert.equal(r.createdAtTime, err.createdAtTime);
  assert.equal(w.approvals.length, 1, 'no second approval');
  // A fresh purchase given its own createdAtTime: the canister says the allowance is missing.
  const w2 = world({ nowMs: () => Date.now() });
  await w2.access.buyAccess(VIDEO, { offer: 'minute', createdAtTime: 5n });
  assert.equal(w2.approvals.length, 1);
  assert.equal(w2.buys.length, 2);
});

test('two purchases in a row get distinct created_at_times (two purchases, not one)', async () => {
  const w = world({ nowMs: () => Date.now() });
  await w.access.buyAccess(VIDEO, { offer: 'minute' });
  await w.access.buyAccess(VIDEO, { offer: 'minute' });
  assert.notEqual(w.buys[0]!.created_at_time[0], w.buys[1]!.created_at_time[0]);
});

test('refusals are typed: Refused -> the CanisterError class, ledger refusals -> PurchaseError / LedgerError', async () => {
  await assert.rejects(world({ nowMs: () => Date.now(), refuse: true }).access.buyAccess(VIDEO, { offer: 'minute' }), NotAuthorizedError);
  const w = world({ nowMs: () => Date.now() });
  await assert.rejects(w.access.buyAccess(VIDEO, { offer: 'minute', ledger: LEDGER, price: 99n }), (e: unknown) => e instanceof PurchaseError && e.kind === 'PriceChanged');
  await assert.rejects(w.access.buyAccess(VIDEO, { offer: 'week' }), /no offer "week"/);
  const poor = world({ nowMs: () => Date.now() });
  poor.setBalance(0n);
  await assert.rejects(poor.access.buyAccess(VIDEO, { offer: 'minute' }), (e: unknown) => e instanceof LedgerError && e.kind === 'InsufficientFunds');
  assert.equal(poor.buys.length, 0, 'no purchase without an approval');
});

test('verifyReceipt checks the ledger block against every field of the receipt', async () => {
  const w = world({ nowMs: () => Date.now() });
  const r = await w.access.buyAccess(VIDEO, { offer: 'day' });
  const v = await w.access.verifyReceipt(r);
  assert.equal(v.from, ME.toText());
  assert.equal(v.to, OWNER.toText());
  assert.equal(v.spender, VIDEO);
  for (const bad of [
    { ...r, amount: r.amount + 1n },
    { ...r, buyer: OWNER.toText() },
    { ...r, paidTo: { owner: ME.toText() } },
    { ...r, createdAtTime: r.createdAtTime + 1n },
    { ...r, blockIndex: 999n },
    { ...r, id: r.id + 1n },
  ]) {
    await assert.rejects(w.access.verifyReceipt(bad), ReceiptVerificationError);
  }
});

test('receiptMemo: "cvid", the receipt id big-endian, the video principal', () => {
  const m = receiptMemo(VIDEO, 258n);
  assert.deepEqual([...m.subarray(0, 12)], [0x63, 0x76, 0x69, 0x64, 0, 0, 0, 0, 0, 0, 1, 2]);
  assert.deepEqual([...m.subarray(12)], [...Principal.fromText(VIDEO).toUint8Array()]);
});

test('watch: buys at once, then once per pass shortly before it ends; stop() ends the charges', async () => {
  const c = fakeClock();
  const w = world({ nowMs: () => c.now });
  const charged: bigint[] = [];
  const watch = w.access.watch(VIDEO, { offer: 'minute', clock: c.clock, leadSeconds: 10, onCharge: (r) => charged.push(r.id) });
  await watch.idle();
  assert.equal(watch.receipts.length, 1);
  assert.equal(c.timers.size, 1);
  // Not yet: 49 s into a 60 s pass with a 10 s lead.
  c.advance(49_000);
  await watch.idle();
  assert.equal(watch.receipts.length, 1);
  c.advance(1_000);
  await watch.idle();
  assert.equal(watch.receipts.length, 2);
  for (let i = 0; i < 5; i++) {
    c.advance(60_000);
    await watch.idle();
  }
  assert.equal(watch.receipts.length, 7);
  assert.deepEqual(charged, [0n, 1n, 2n, 3n, 4n, 5n, 6n]);
  // Each purchase extended the previous pass.
  for (let i = 1; i < watch.receipts.length; i++) assert.equal(watch.receipts[i]!.validFrom, watch.receipts[i - 1]!.validUntil);
  await watch.stop();
  assert.equal(c.timers.size, 0);
  c.advance(3_600_000);
  await watch.idle();
  assert.equal(watch.receipts.length, 7);
  assert.equal(w.buys.length, 7);
});

test('watch: pause stops charging, play resumes (buying at once when the pass ran out)', async () => {
  const c = fakeClock();
  const w = world({ nowMs: () => c.now });
  const watch = w.access.watch(VIDEO, { offer: 'minute', clock: c.clock });
  await watch.idle();
  await watch.pause();
  c.advance(5 * 60_000);
  await watch.idle();
  assert.equal(watch.receipts.length, 1);
  watch.play();
  await watch.idle();
  assert.equal(watch.receipts.length, 2);
  await watch.stop();
});

test('watch: never charges an owner or the holder of a pass forever; maxCharges caps; errors stop it', async () => {
  for (const grant of ['owner', 'forever'] as const) {
    const c = fakeClock();
    const w = world({ nowMs: () => c.now, grant });
    const watch = w.access.watch(VIDEO, { offer: 'minute', clock: c.clock });
    await watch.idle();
    c.advance(10 * 60_000);
    await watch.idle();
    assert.equal(w.buys.length, 0, grant);
    await watch.stop();
  }
  const c = fakeClock();
  const w = world({ nowMs: () => c.now });
  const capped = w.access.watch(VIDEO, { offer: 'minute', clock: c.clock, maxCharges: 2 });
  for (let i = 0; i < 5; i++) {
    await capped.idle();
    c.advance(60_000);
  }
  await capped.idle();
  assert.equal(capped.receipts.length, 2);

  const c2 = fakeClock();
  const poor = world({ nowMs: () => c2.now });
  poor.setBalance(0n);
  const errors: unknown[] = [];
  const failing = poor.access.watch(VIDEO, { offer: 'minute', clock: c2.clock, onError: (e) => errors.push(e) });
  await failing.idle();
  assert.equal(errors.length, 1);
  assert.ok(failing.error instanceof LedgerError);
  assert.equal(failing.playing, false);
  assert.equal(c2.timers.size, 0);
});

test('watch with media: charges while the player plays, not while it is paused or ended', async () => {
  const c = fakeClock();
  const w = world({ nowMs: () => c.now });
  const player = new EventTarget();
  const fire = (type: string) => player.dispatchEvent(new Event(type));
  const watch = w.access.watch(VIDEO, { offer: 'minute', clock: c.clock, leadSeconds: 10, media: player });
  await watch.idle();
  assert.equal(watch.receipts.length, 0, 'nothing before the player plays');
  fire('playing');
  await watch.idle();
  assert.equal(watch.receipts.length, 1);
  c.advance(50_000);
  await watch.idle();
  assert.equal(watch.receipts.length, 2);
  fire('pause');
  await watch.idle();
  c.advance(10 * 60_000);
  await watch.idle();
  assert.equal(watch.receipts.length, 2, 'paused: no charges');
  fire('playing');
  await watch.idle();
  assert.equal(watch.receipts.length, 3, 'playing again after the pass ran out: one purchase at once');
  fire('ended');
  await watch.idle();
  c.advance(10 * 60_000);
  await watch.idle();
  assert.equal(watch.receipts.length, 3, 'ended: no charges');
  await watch.stop();
  fire('playing');
  await watch.idle();
  assert.equal(watch.receipts.length, 3, 'stopped: the player no longer drives it');
  assert.equal(w.buys.length, 3);
});

test('watch with a budget: one approval for many extensions, each then one transfer within it', async () => {
  const c = fakeClock();
  const w = world({ nowMs: () => c.now });
  const watch = w.access.watch(VIDEO, { offer: 'minute', clock: c.clock, leadSeconds: 10, budget: 5 });
  await watch.idle();
  for (let i = 0; i < 4; i++) {
    c.advance(60_000);
    await watch.idle();
  }
  assert.equal(watch.receipts.length, 5);
  assert.equal(w.approvals.length, 1, 'one approval for the whole budget');
  assert.equal(w.approvals[0]!.amount, 5n * (100n + FEE));
  assert.equal(w.allowance, 0n, 'the budget is spent exactly');
  // Past the budget, the next extension approves again (one purchase's worth).
  c.advance(60_000);
  await watch.idle();
  assert.equal(watch.receipts.length, 6);
  assert.equal(w.approvals.length, 2);
  assert.equal(w.approvals[1]!.amount, 100n + FEE);
  await watch.stop();
});
