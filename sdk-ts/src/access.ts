// Who may watch a video and how a viewer pays for it (docs/access.md): the owner's policy
// (public / private allowlist / paid passes over an ICRC-2 ledger), buying a pass (approve the
// video canister on the ledger for exactly price + fee, then `buy_access`), receipts checked
// against the ledger's ICRC-3 log, playback URLs for `<video src>`, and pay-as-you-watch.
import { Actor, type ActorSubclass, type Agent } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import {
  type AccessInfo as CandidAccessInfo,
  type AccessPolicy as CandidAccessPolicy,
  type BuyError,
  type Offer as CandidOffer,
  type Receipt as CandidReceipt,
  idlFactory as videoIdl,
  type _SERVICE as VideoService,
} from './bindings/video.did.js';
import { equalBytes, toHex } from './bytes.js';
import { type CallSite, CanvidError, UsageError, fromCandidError, guard, unwrap } from './errors.js';
import { type IcrcApproveError, type IcrcGetBlocksResult, type IcrcValue, type LedgerService, archiveIdl, ledgerIdl } from './ledger.js';
import { type RetryPolicy, retryPolicy, withRetry } from './retry.js';
import { type VideoUrlOptions, videoUrl } from './url.js';

// --- Types ---------------------------------------------------------------------------------------

/** A pass for sale. */
export interface Offer {
  /** 1 to 32 characters of `a-z 0-9 - _`. */
  id: string;
  /** Price in the ledger's smallest unit (the buyer also pays the ledger's fees). */
  price: bigint;
  /** How long a pass lasts (60 s to 10 years); `undefined`: forever. */
  durationSeconds?: number;
}

/** An offer as `setAccess` takes it (numbers or bigints). */
export interface OfferInput {
  id: string;
  price: bigint | number;
  durationSeconds?: number | bigint;
}

/** Who may watch (docs/access.md). The metadata, the poster and `previewBytes` stay public. */
export type AccessPolicy =
  | { mode: 'public'; previewBytes?: bigint; freePaths?: string[] }
  | { mode: 'private'; previewBytes?: bigint; freePaths?: string[] }
  | { mode: 'paid'; ledger: string; offers: Offer[]; previewBytes?: bigint; freePaths?: string[] };

/** `setAccess` argument. */
export type AccessPolicyInput =
  | { mode: 'public'; previewBytes?: bigint | number; freePaths?: string[] }
  | { mode: 'private'; previewBytes?: bigint | number; freePaths?: string[] }
  | { mode: 'paid'; ledger: Principal | string; offers: OfferInput[]; previewBytes?: bigint | number; freePaths?: string[] };

/** `accessInfo` answer. */
export interface AccessDetails {
  policy: AccessPolicy;
  /** Bytes `[0, previewEnd)` anyone may watch (`previewBytes` rounded up to the chunk grid). */
  previewEnd: bigint;
  viewerCount: number;
  /** Passes sold so far. */
  receiptCount: bigint;
  /** The platform's share of each sale, if the spawn canister that installed the video set one (docs/access.md "Platform fee"). */
  platformFee?: { account: { owner: string; subaccount?: Uint8Array }; basisPoints: number };
  /** Owner and platform shares not paid out yet (videos with a platform fee). */
  payoutsPending: number;
  raw: CandidAccessInfo;
}

/** Why the caller may watch (`myAccess`). */
export type AccessGrant =
  | { kind: 'public' }
  | { kind: 'owner' }
  | { kind: 'uploader' }
  | { kind: 'viewer' }
  /** `expiresAt`: nanoseconds since the epoch, `undefined`: forever; `receipt`: the latest purchase that extended it. */
  | { kind: 'pass'; expiresAt?: bigint; receipt: bigint };

export interface MyAccess {
  /** `undefined`: the preview only. */
  grant?: AccessGrant;
  previewEnd: bigint;
  /** Purchases whose payment outcome is not known yet. */
  pendingPurchases: bigint[];
}

/** A purchase, as the video canister recorded it (times in nanoseconds since the epoch). */
export interface Receipt {
  id: bigint;
  videoId: string;
  buyer: string;
  offer: string;
  ledger: string;
  /** The ledger block of the payment. */
  blockIndex: bigint;
  /** What the buyer paid (plus the ledger's fees). */
  amount: bigint;
  /** The owner's account, or the video canister's own when it has a platform fee (it then pays the shares out). */
  paidTo: { owner: string; subaccount?: Uint8Array };
  /** The platform's share of `amount`, for a video with a platform fee. */
  platformShare?: bigint;
  /** The transfer's memo: `"cvid"`, the receipt id (u64 big-endian), the video's principal bytes. */
  memo: Uint8Array;
  createdAtTime: bigint;
  paidAt: bigint;
  validFrom: bigint;
  /** `undefined`: forever. */
  validUntil?: bigint;
  raw: CandidReceipt;
}

export interface BuyOptions {
  /** The offer's id. */
  offer: string;
  /** The ledger and price you agreed to; default: what `access_policy` shows now. */
  ledger?: Principal | string;
  price?: bigint | number;
  /**
   * Makes the purchase idempotent (nanoseconds since the epoch, at most 1 hour old). Default:
   * now (unique per call in this process). Pass the same value to retry a purchase whose
   * outcome you did not learn.
   */
  createdAtTime?: bigint;
  /** How often `Pending` is retried with the same `createdAtTime` (default 5). */
  pendingRetries?: number;
  /** Wait between `Pending` retries, ms (default 1000). */
  pendingDelayMs?: number;
  signal?: AbortSignal;
}

export interface PlaybackUrlOptions extends Omit<VideoUrlOptions, 'path'> {
  /** Life of the token (default 1 hour, at most 24 hours; never beyond the caller's pass). */
  ttlSeconds?: number;
  /**
   * Gateway domain or URL (`icp0.io`, `http://127.0.0.1:4944` for `canvid serve`). Default
   * `icp0.io`.
   */
  gateway?: string;
}

export interface PlaybackUrl {
  /** `<gateway URL of the video>/video?token=...` (a public video: `/video`, no token): put it in `<video src>`. */
  url: string;
  /** `undefined` for a public video. */
  token?: string;
  /** Nanoseconds since the epoch; `undefined` for a public video (the URL does not expire). */
  expiresAt?: bigint;
}

/** Scheduling for `watch`: real timers by default; tests inject a fake. `now()` is ms since the epoch. */
export interface WatchClock {
  now(): number;
  setTimeout(f: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface WatchOptions {
  /** The short offer to buy again and again (e.g. a 60-second one). */
  offer: string;
  /** Buy this many seconds before the current pass ends (default 10). */
  leadSeconds?: number;
  /** Stop charging after this many purchases (default: no limit). */
  maxCharges?: number;
  clock?: WatchClock;
  /** Called after each purchase. */
  onCharge?: (receipt: Receipt) => void;
  /** Called when a purchase fails; the controller stops. */
  onError?: (error: unknown) => void;
  /**
   * Approve this many purchases of `offer` at once (`budget × (price + fee)`, valid for as long
   * as they last plus an hour) instead of one approval per purchase: the allowance is then the
   * payment channel — the ledger never lets the video take more — and each extension costs one
   * transfer fee instead of two.
   */
  budget?: number;
  /** Start playing at once (default true, or false with `media`). */
  autoplay?: boolean;
  /**
   * The player whose playback is paid for (e.g. the `<video>` element): charging follows its
   * `playing` / `pause` / `ended` events, so pausing or closing the player stops the charges.
   */
  media?: MediaEvents;
}

/** The part of an `HTMLMediaElement` (any `EventTarget`) `watch` listens to. */
export interface MediaEvents {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

/** Pay-as-you-watch: while playing, keeps the caller's pass alive by buying `offer` before it ends. */
export interface WatchController {
  /** (Re)starts charging: buys now if the pass ends within `leadSeconds`, then before each end. */
  play(): void;
  /** Stops charging for now (the current pass runs out); `play()` resumes. */
  pause(): Promise<void>;
  /** Stops charging for good; resolves when no purchase is in flight. */
  stop(): Promise<void>;
  /** Resolves when no purchase is in flight (tests: after advancing a fake clock). */
  idle(): Promise<void>;
  readonly playing: boolean;
  /** Purchases made by this controller. */
  readonly receipts: readonly Receipt[];
  /** End of the current pass (ns since the epoch), as last seen. */
  readonly expiresAt?: bigint;
  /** The error that stopped it, if one did. */
  readonly error?: unknown;
}

/** Result of `verifyReceipt`: the ledger block the receipt names, decoded. */
export interface VerifiedReceipt {
  blockIndex: bigint;
  /** The block as plain values (`tx.from`, `tx.to`, `tx.spender` as principal text). */
  from: string;
  to: string;
  spender: string;
  amount: bigint;
  memo: Uint8Array;
  createdAtTime?: bigint;
  raw: IcrcValue;
}

// --- Errors ------------------------------------------------------------------------------------

/** Kinds of `BuyError` (the video canister's refusal of a purchase; `Refused` becomes a `CanisterError`). */
export type PurchaseErrorKind = Exclude<BuyError extends infer E ? (E extends Record<infer K, unknown> ? K & string : never) : never, 'Refused'>;

/**
 * `buy_access` failed with a ledger-side or price reason. Nothing was charged, except for
 * `Pending` (the outcome is unknown: retry `buyAccess` with the same `createdAtTime`).
 */
export class PurchaseError extends CanvidError {
  override name = 'PurchaseError';
  readonly kind: PurchaseErrorKind;
  /** The variant's fields as the canister sent them. */
  readonly details: unknown;
  /** `Pending`: the `createdAtTime` to retry with. */
  readonly createdAtTime?: bigint;
  constructor(kind: PurchaseErrorKind, details: unknown, site: CallSite, createdAtTime?: bigint) {
    super(`${kind}: ${describe(details)}${site.method ? ` (${site.method} on ${site.canisterId})` : ''}`, {
      site,
      transient: kind === 'TemporarilyUnavailable' || kind === 'Pending',
    });
    this.kind = kind;
    this.details = details;
    this.createdAtTime = createdAtTime;
  }
}

/** The ledger refused `icrc2_approve` (nothing was approved). `kind` is the ICRC-2 variant name. */
export class LedgerError extends CanvidError {
  override name = 'LedgerError';
  readonly kind: string;
  readonly details: unknown;
  constructor(kind: string, details: unknown, site: CallSite) {
    super(`${kind}: ${describe(details)} (${site.method} on ${site.canisterId})`, { site, transient: kind === 'TemporarilyUnavailable' });
    this.kind = kind;
    this.details = details;
  }
}

/** A receipt does not match the ledger block it names; `problems` lists every mismatch. */
export class ReceiptVerificationError extends CanvidError {
  override name = 'ReceiptVerificationError';
  readonly problems: string[];
  constructor(problems: string[], site: CallSite) {
    super(`receipt does not match the ledger: ${problems.join('; ')}`, { site });
    this.problems = problems;
  }
}

function describe(d: unknown): string {
  return JSON.stringify(d, (_k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Principal ? v.toText() : v));
}

// --- Conversions -------------------------------------------------------------------------------

function opt<T>(o: [] | [T]): T | undefined {
  return o.length ? o[0] : undefined;
}

function toOffer(o: CandidOffer): Offer {
  const d = opt(o.duration_seconds);
  return { id: o.id, price: o.price, durationSeconds: d === undefined ? undefined : Number(d) };
}

function toPolicy(p: CandidAccessPolicy): AccessPolicy {
  const previewBytes = opt(p.preview_bytes);
  const freePaths = opt(p.free_paths);
  const base = { ...(previewBytes === undefined ? {} : { previewBytes }), ...(freePaths === undefined ? {} : { freePaths }) };
  if ('Paid' in p.mode) return { mode: 'paid', ledger: p.mode.Paid.ledger.toText(), offers: p.mode.Paid.offers.map(toOffer), ...base };
  if ('Private' in p.mode) return { mode: 'private', ...base };
  return { mode: 'public', ...base };
}

function fromPolicy(p: AccessPolicyInput): CandidAccessPolicy {
  const preview_bytes: [] | [bigint] = p.previewBytes === undefined ? [] : [BigInt(p.previewBytes)];
  const free_paths: [] | [string[]] = p.freePaths === undefined ? [] : [p.freePaths];
  if (p.mode === 'public') return { mode: { Public: null }, preview_bytes, free_paths };
  if (p.mode === 'private') return { mode: { Private: null }, preview_bytes, free_paths };
  if (p.mode !== 'paid') throw new UsageError(`unknown access mode ${(p as { mode: unknown }).mode}`);
  return {
    mode: {
      Paid: {
        ledger: toPrincipal(p.ledger),
        offers: p.offers.map((o) => ({
          id: o.id,
          price: BigInt(o.price),
          duration_seconds: o.durationSeconds === undefined ? [] : [BigInt(o.durationSeconds)],
        })),
      },
    },
    preview_bytes,
    free_paths,
  };
}

function toDetails(a: CandidAccessInfo): AccessDetails {
  const fee = opt(a.platform_fee);
  const feeSub = fee ? opt(fee.account.subaccount) : undefined;
  return {
    policy: toPolicy(a.policy),
    previewEnd: a.preview_end,
    viewerCount: a.viewer_count,
    receiptCount: a.receipt_count,
    platformFee: fee
      ? {
          account: feeSub ? { owner: fee.account.owner.toText(), subaccount: feeSub instanceof Uint8Array ? feeSub : Uint8Array.from(feeSub as ArrayLike<number>) } : { owner: fee.account.owner.toText() },
          basisPoints: fee.basis_points,
        }
      : undefined,
    payoutsPending: a.payouts_pending,
    raw: a,
  };
}

/** A candid receipt as plain values. */
export function toReceipt(r: CandidReceipt): Receipt {
  const sub = opt(r.paid_to.subaccount);
  const until = opt(r.valid_until);
  return {
    id: r.id,
    videoId: r.video.toText(),
    buyer: r.buyer.toText(),
    offer: r.offer,
    ledger: r.ledger.toText(),
    blockIndex: r.block_index,
    amount: r.amount,
    platformShare: opt(r.platform_share),
    paidTo: sub ? { owner: r.paid_to.owner.toText(), subaccount: sub } : { owner: r.paid_to.owner.toText() },
    memo: r.memo instanceof Uint8Array ? r.memo : Uint8Array.from(r.memo as ArrayLike<number>),
    createdAtTime: r.created_at_time,
    paidAt: r.paid_at,
    validFrom: r.valid_from,
    validUntil: until,
    raw: r,
  };
}

function toPrincipal(p: Principal | string): Principal {
  if (typeof p !== 'string') return p;
  try {
    return Principal.fromText(p);
  } catch (e) {
    throw new UsageError(`not a principal: ${p}`, { cause: e });
  }
}

/** The memo of a purchase's ledger transfer: `"cvid"`, receipt id (u64 big-endian), video principal bytes. */
export function receiptMemo(videoId: Principal | string, receiptId: bigint): Uint8Array {
  const v = toPrincipal(videoId).toUint8Array();
  const memo = new Uint8Array(12 + v.length);
  memo.set([0x63, 0x76, 0x69, 0x64]);
  new DataView(memo.buffer).setBigUint64(4, receiptId);
  memo.set(v, 12);
  return memo;
}

let lastCreatedAt = 0n;
/** Now in nanoseconds, strictly increasing within this process (each purchase its own). */
function uniqueNowNs(): bigint {
  let t = BigInt(Date.now()) * 1_000_000n;
  if (t <= lastCreatedAt) t = lastCreatedAt + 1n;
  lastCreatedAt = t;
  return t;
}

/** How long the approval `buyAccess` makes stays valid on the ledger. */
const APPROVAL_TTL_NS = 10n * 60n * 1_000_000_000n;

// --- The API -------------------------------------------------------------------------------------

export interface AccessOptions {
  agent: Agent;
  retry?: Partial<RetryPolicy>;
  /** Default gateway of `playbackUrl` (default `icp0.io`). */
  gateway?: string;
  /** Waits between `Pending` retries (tests). */
  sleep?: (ms: number) => Promise<void>;
  /**
   * Stand-ins for the canister actors (tests): by default actors on `agent` with the video
   * canister's and the ICRC ledger's interfaces.
   */
  actors?: {
    video?: (videoId: string) => VideoService;
    ledger?: (ledgerId: string) => LedgerService;
  };
}

/**
 * Access control and payments of video canisters, as the agent's identity. Get one with
 * `CanvidClient.access()` or `new CanvidAccess({ agent })`.
 *
 * ```ts
 * const access = canvid.access();
 * await access.setAccess(videoId, { mode: 'paid', ledger, offers: [{ id: 'day', price: 100_000n, durationSeconds: 86_400 }], previewBytes: 1_000_000 });
 * // viewer:
 * const receipt = await viewer.access().buyAccess(videoId, { offer: 'day' });
 * video.src = (await viewer.access().playbackUrl(videoId, { gateway: 'icp0.io' })).url;
 * ```
 */
export class CanvidAccess {
  readonly agent: Agent;
  private readonly retry: RetryPolicy;
  private readonly gateway: string;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly videos = new Map<string, VideoService>();
  private readonly ledgers = new Map<string, LedgerService>();
  private readonly actors: NonNullable<AccessOptions['actors']>;

  constructor(options: AccessOptions) {
    this.agent = options.agent;
    this.retry = retryPolicy(options.retry);
    this.gateway = options.gateway ?? 'icp0.io';
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.actors = options.actors ?? {};
  }

  private video(videoId: string): VideoService {
    let a = this.videos.get(videoId);
    if (!a) {
      a = this.actors.video?.(videoId) ?? (Actor.createActor<VideoService>(videoIdl, { agent: this.agent, canisterId: toPrincipal(videoId) }) as ActorSubclass<VideoService>);
      this.videos.set(videoId, a);
    }
    return a;
  }

  /** An actor for the ICRC-1/2/3 methods of `ledger`. */
  ledger(ledger: Principal | string): LedgerService {
    const id = toPrincipal(ledger).toText();
    let a = this.ledgers.get(id);
    if (!a) {
      a = this.actors.ledger?.(id) ?? (Actor.createActor<LedgerService>(ledgerIdl, { agent: this.agent, canisterId: id }) as ActorSubclass<LedgerService>);
      this.ledgers.set(id, a);
    }
    return a;
  }

  private call<T>(canisterId: string, method: string, f: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withRetry(() => guard({ canisterId, method }, f), { policy: this.retry, signal });
  }

  /** Sets the video's policy (owner only); returns what it means now. */
  async setAccess(videoId: string, policy: AccessPolicyInput): Promise<AccessDetails> {
    const site = { canisterId: videoId, method: 'set_access_policy' };
    const r = await this.call(videoId, site.method, () => this.video(videoId).set_access_policy(fromPolicy(policy)));
    return toDetails(unwrap(r, site));
  }

  /** The video's policy, preview end, viewer and receipt counts (anyone may ask). */
  async accessInfo(videoId: string): Promise<AccessDetails> {
    return toDetails(await this.call(videoId, 'access_policy', () => this.video(videoId).access_policy()));
  }

  /** Adds principals to the allowlist (owner only, at most 500 per call); returns the allowlist's size. */
  async addViewers(videoId: string, viewers: ReadonlyArray<Principal | string>): Promise<number> {
    const site = { canisterId: videoId, method: 'add_viewers' };
    return unwrap(await this.call(videoId, site.method, () => this.video(videoId).add_viewers(viewers.map(toPrincipal))), site);
  }

  /** Removes principals from the allowlist (owner only); returns the allowlist's size. */
  async removeViewers(videoId: string, viewers: ReadonlyArray<Principal | string>): Promise<number> {
    const site = { canisterId: videoId, method: 'remove_viewers' };
    return unwrap(await this.call(videoId, site.method, () => this.video(videoId).remove_viewers(viewers.map(toPrincipal))), site);
  }

  /** The whole allowlist (owner only), page by page in principal order. */
  async viewers(videoId: string, options: { pageSize?: number } = {}): Promise<string[]> {
    const site = { canisterId: videoId, method: 'viewers' };
    const out: string[] = [];
    let start: Principal | undefined;
    for (;;) {
      const page = unwrap(
        await this.call(videoId, site.method, () =>
          this.video(videoId).viewers({ start_after: start ? [start] : [], limit: options.pageSize ? [options.pageSize] : [] }),
        ),
        site,
      );
      out.push(...page.viewers.map((p) => p.toText()));
      const next = opt(page.next);
      if (!next || (start && next.toText() === start.toText())) return out;
      start = next;
    }
  }

  /** Why the caller may watch, if they may. */
  async myAccess(videoId: string): Promise<MyAccess> {
    const m = await this.call(videoId, 'my_access', () => this.video(videoId).my_access());
    const g = opt(m.grant);
    let grant: AccessGrant | undefined;
    if (g) {
      if ('Pass' in g) {
        const e = opt(g.Pass.expires_at);
        grant = e === undefined ? { kind: 'pass', receipt: g.Pass.receipt } : { kind: 'pass', receipt: g.Pass.receipt, expiresAt: e };
      } else grant = { kind: Object.keys(g)[0]!.toLowerCase() } as AccessGrant;
    }
    return { grant, previewEnd: m.preview_end, pendingPurchases: [...m.pending_purchases] };
  }

  /**
   * Buys a pass: reads the offer (unless `ledger` and `price` are given), approves the video
   * canister on the ledger for exactly `price + fee` (skipped when a current approval already
   * covers it; the approval expires after 10 minutes), then `buy_access`. A `Pending` answer is
   * retried with the same `createdAtTime` (`pendingRetries` times); still pending: throws
   * `PurchaseError` kind `Pending` with the `createdAtTime` to retry with later. Given a
   * `createdAtTime` (such a retry), `buy_access` is asked first and the approval made only if the
   * canister answers `InsufficientAllowance`: a purchase already paid approves nothing more. The
   * buyer pays `price` to the owner, plus the ledger's fee for the transfer and one for the
   * approval.
   */
  async buyAccess(videoId: string, options: BuyOptions): Promise<Receipt> {
    let ledgerId: Principal;
    let price: bigint;
    if (options.ledger !== undefined && options.price !== undefined) {
      ledgerId = toPrincipal(options.ledger);
      price = BigInt(options.price);
    } else {
      const info = await this.accessInfo(videoId);
      if (info.policy.mode !== 'paid') throw new UsageError(`video ${videoId} is not for sale (mode ${info.policy.mode})`);
      const offer = info.policy.offers.find((o) => o.id === options.offer);
      if (!offer) throw new UsageError(`video ${videoId} has no offer ${JSON.stringify(options.offer)} (offers: ${info.policy.offers.map((o) => o.id).join(', ')})`);
      ledgerId = toPrincipal(options.ledger ?? info.policy.ledger);
      price = options.price !== undefined ? BigInt(options.price) : offer.price;
    }
    const createdAtTime = options.createdAtTime ?? uniqueNowNs();
    // A retry of an earlier purchase (its createdAtTime given) may be paid already: ask first,
    // and approve only if the canister says the allowance is missing.
    let approved = false;
    if (options.createdAtTime === undefined) {
      await this.approveFor(videoId, ledgerId, price, options.signal);
      approved = true;
    }

    const site = { canisterId: videoId, method: 'buy_access' };
    const retries = options.pendingRetries ?? 5;
    for (let attempt = 0; ; attempt++) {
      const r = await this.call(
        videoId,
        site.method,
        () => this.video(videoId).buy_access({ offer: options.offer, ledger: ledgerId, price, created_at_time: [createdAtTime] }),
        options.signal,
      );
      if ('Ok' in r) return toReceipt(r.Ok);
      const e = r.Err;
      if ('Refused' in e) throw fromCandidError(e.Refused, site);
      const kind = Object.keys(e)[0] as PurchaseErrorKind;
      if (kind === 'InsufficientAllowance' && !approved) {
        await this.approveFor(videoId, ledgerId, price, options.signal);
        approved = true;
        attempt--;
        continue;
      }
      if (kind === 'Pending' && attempt < retries) {
        await this.sleep(options.pendingDelayMs ?? 1000);
        continue;
      }
      throw new PurchaseError(kind, (e as Record<string, unknown>)[kind], site, createdAtTime);
    }
  }

  /**
   * Makes sure the video canister may pull `times × (price + fee)` from the caller on `ledger`,
   * with an approval that lasts `ttlNs`.
   */
  private async approveFor(
    videoId: string,
    ledgerId: Principal,
    price: bigint,
    signal?: AbortSignal,
    times = 1n,
    ttlNs = APPROVAL_TTL_NS,
  ): Promise<void> {
    const ledger = this.ledger(ledgerId);
    const lid = ledgerId.toText();
    const me = await this.agent.getPrincipal();
    const spender = { owner: toPrincipal(videoId), subaccount: [] as [] };
    const account = { owner: me, subaccount: [] as [] };
    const fee = await this.call(lid, 'icrc1_fee', () => ledger.icrc1_fee(), signal);
    const needed = (price + fee) * times;
    const now = uniqueNowNs();
    const current = await this.call(lid, 'icrc2_allowance', () => ledger.icrc2_allowance({ account, spender }), signal);
    const exp = opt(current.expires_at);
    // A current approval that covers the purchase (and does not expire within a minute) is used as is.
    if (current.allowance >= needed && (exp === undefined || exp > now + 60_000_000_000n)) return;
    const site = { canisterId: lid, method: 'icrc2_approve' };
    const r = await this.call(
      lid,
      site.method,
      () =>
        ledger.icrc2_approve({
          from_subaccount: [],
          spender,
          amount: needed,
          expected_allowance: [],
          expires_at: [now + ttlNs],
          fee: [fee],
          memo: [],
          created_at_time: [now],
        }),
      signal,
    );
    if ('Err' in r) {
      const kind = Object.keys(r.Err)[0] as keyof IcrcApproveError & string;
      if (kind === 'Duplicate') return; // a retried approve that went through
      throw new LedgerError(kind, (r.Err as Record<string, unknown>)[kind], site);
    }
  }

  /**
   * Receipts: the caller's own, or (owner) everyone's or `buyer`'s. Follows the pages from
   * `startAfter` until the end or `limit` receipts.
   */
  async receipts(videoId: string, options: { buyer?: Principal | string; startAfter?: bigint; limit?: number } = {}): Promise<Receipt[]> {
    const site = { canisterId: videoId, method: 'receipts' };
    const out: Receipt[] = [];
    let start = options.startAfter;
    const max = options.limit ?? Infinity;
    while (out.length < max) {
      const page = unwrap(
        await this.call(videoId, site.method, () =>
          this.video(videoId).receipts({
            buyer: options.buyer === undefined ? [] : [toPrincipal(options.buyer)],
            start_after: start === undefined ? [] : [start],
            limit: Number.isFinite(max) ? [Math.min(100, max - out.length)] : [],
          }),
        ),
        site,
      );
      out.push(...page.receipts.map(toReceipt));
      const next = opt(page.next);
      if (next === undefined || next === start) break;
      start = next;
    }
    return out;
  }

  /**
   * Checks a receipt against its ledger: block `blockIndex` (ICRC-3 `icrc3_get_blocks`,
   * following archives) must be a transfer of `amount` from `buyer` to `paidTo` with the video
   * canister as spender and the receipt's `memo` (and `createdAtTime` when the block has it).
   * Throws `ReceiptVerificationError` listing every mismatch.
   */
  async verifyReceipt(receipt: Receipt): Promise<VerifiedReceipt> {
    const site = { canisterId: receipt.ledger, method: 'icrc3_get_blocks' };
    const raw = await this.ledgerBlock(receipt.ledger, receipt.blockIndex);
    if (!raw) throw new ReceiptVerificationError([`block ${receipt.blockIndex} is not in the ledger's log`], site);
    const block = mapOf(raw) ?? {};
    const tx = mapOf(block.tx) ?? {};
    const problems: string[] = [];
    const btype = textOf(block.btype);
    const op = textOf(tx.op);
    if (!(btype === '2xfer' || (btype === undefined && op === 'xfer') || btype === '1xfer')) problems.push(`block is a ${btype ?? op}, not a transfer`);
    const from = accountText(tx.from);
    const to = accountText(tx.to);
    const spender = accountText(tx.spender);
    const amount = natOf(tx.amt);
    const memo = blobOf(tx.memo) ?? new Uint8Array();
    const ts = natOf(tx.ts);
    if (from !== receipt.buyer) problems.push(`from ${from} != buyer ${receipt.buyer}`);
    const paidTo = receipt.paidTo.subaccount && receipt.paidTo.subaccount.some((b) => b !== 0) ? `${receipt.paidTo.owner}.${toHex(receipt.paidTo.subaccount)}` : receipt.paidTo.owner;
    if (to !== paidTo) problems.push(`to ${to} != paid_to ${paidTo}`);
    if (spender !== receipt.videoId) problems.push(`spender ${spender} != video ${receipt.videoId}`);
    if (amount !== receipt.amount) problems.push(`amount ${amount} != ${receipt.amount}`);
    if (!equalBytes(memo, receipt.memo)) problems.push(`memo ${toHex(memo)} != ${toHex(receipt.memo)}`);
    if (!equalBytes(receipt.memo, receiptMemo(receipt.videoId, receipt.id))) problems.push('the receipt memo does not name this receipt and video');
    if (ts !== undefined && ts !== receipt.createdAtTime) problems.push(`created_at_time ${ts} != ${receipt.createdAtTime}`);
    if (problems.length) throw new ReceiptVerificationError(problems, site);
    return { blockIndex: receipt.blockIndex, from: from!, to: to!, spender: spender!, amount: amount!, memo, createdAtTime: ts, raw };
  }

  /** Block `index` of an ICRC-3 ledger (following its archives), or undefined. */
  async ledgerBlock(ledger: Principal | string, index: bigint): Promise<IcrcValue | undefined> {
    const lid = toPrincipal(ledger).toText();
    const args = [{ start: index, length: 1n }];
    const r: IcrcGetBlocksResult = await this.call(lid, 'icrc3_get_blocks', () => this.ledger(lid).icrc3_get_blocks(args));
    const here = r.blocks.find((b) => b.id === index);
    if (here) return here.block;
    for (const a of r.archived_blocks) {
      const [canister, method] = a.callback;
      const archive = Actor.createActor<Record<string, (x: unknown) => Promise<IcrcGetBlocksResult>>>(archiveIdl(method), { agent: this.agent, canisterId: canister });
      const ar = await this.call(canister.toText(), method, () => archive[method]!(a.args));
      const b = ar.blocks.find((x) => x.id === index);
      if (b) return b.block;
    }
    return undefined;
  }

  /** The caller's balance on `ledger` (default account). */
  async balance(ledger: Principal | string, owner?: Principal | string): Promise<bigint> {
    const who = owner === undefined ? await this.agent.getPrincipal() : toPrincipal(owner);
    const lid = toPrincipal(ledger).toText();
    return this.call(lid, 'icrc1_balance_of', () => this.ledger(lid).icrc1_balance_of({ owner: who, subaccount: [] }));
  }

  /**
   * A URL that plays the video for whoever holds it: a playback token (`playback_token`, for a
   * viewer who may watch) on the video's gateway URL (`/video?token=...`). Public videos need
   * none, but get one all the same.
   */
  async playbackUrl(videoId: string, options: PlaybackUrlOptions = {}): Promise<PlaybackUrl> {
    const { gateway: gw, ttlSeconds: _t, ...plainOptions } = options;
    // A public video plays without a token (and refuses token requests as ingress).
    if ((await this.accessInfo(videoId)).policy.mode === 'public') {
      return { url: videoUrl(videoId, gw ?? this.gateway, { ...plainOptions, path: '/video' }), token: undefined, expiresAt: undefined };
    }
    const site = { canisterId: videoId, method: 'playback_token' };
    const t = unwrap(
      await this.call(videoId, site.method, () => this.video(videoId).playback_token({ ttl_seconds: options.ttlSeconds === undefined ? [] : [options.ttlSeconds] })),
      site,
    );
    const { gateway, ttlSeconds: _ttl, ...urlOptions } = options;
    const url = videoUrl(videoId, gateway ?? this.gateway, { ...urlOptions, path: `/video?token=${encodeURIComponent(t.token)}` });
    return { url, token: t.token, expiresAt: t.expires_at };
  }

  /**
   * The shares of sales the video canister still has to pay out (videos with a platform fee,
   * docs/access.md "Platform fee"): oldest first, at most 100, with why the last attempt failed.
   */
  async pendingPayouts(videoId: string): Promise<{ purchase: bigint; leg: 'owner' | 'platform'; to: string; amount: bigint; sends: number; lastError?: string }[]> {
    const site = { canisterId: videoId, method: 'pending_payouts' };
    const list = await this.call(videoId, site.method, () => this.video(videoId).pending_payouts());
    return list.map((p) => ({
      purchase: p.purchase,
      leg: p.leg === 0 ? 'owner' : 'platform',
      to: p.to.owner.toText(),
      amount: p.amount,
      sends: p.sends,
      lastError: opt(p.last_error),
    }));
  }

  /** Revokes playback tokens: the caller's own, or (owner) `viewer`'s. Returns how many were revoked. */
  async revokePlaybackTokens(videoId: string, viewer?: Principal | string): Promise<number> {
    const site = { canisterId: videoId, method: 'revoke_playback_tokens' };
    return unwrap(
      await this.call(videoId, site.method, () => this.video(videoId).revoke_playback_tokens(viewer === undefined ? [] : [toPrincipal(viewer)])),
      site,
    );
  }

  /**
   * Pay-as-you-watch: returns a controller that, while playing, buys `offer` (a short pass, e.g.
   * 60 seconds) whenever the caller's pass ends within `leadSeconds`, and sleeps until then
   * otherwise. A pass without expiry, or access by other means (owner, allowlist), is never
   * charged for. `stop()` stops charging. The schedule runs on `clock` (real timers by
   * default), whose `now()` must be on the IC's time base (ms since the epoch).
   */
  watch(videoId: string, options: WatchOptions): WatchController {
    const clock: WatchClock = options.clock ?? {
      now: () => Date.now(),
      setTimeout: (f, ms) => setTimeout(f, ms),
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    const leadNs = BigInt(Math.round((options.leadSeconds ?? 10) * 1000)) * 1_000_000n;
    const receipts: Receipt[] = [];
    let playing = false;
    let stopped = false;
    let timer: unknown;
    let inFlight: Promise<void> = Promise.resolve();
    let expiresAt: bigint | undefined;
    let error: unknown;
    let budgeted = false;

    const schedule = (atNs: bigint) => {
      if (timer !== undefined) clock.clearTimeout(timer);
      const ms = Math.max(0, Number((atNs - BigInt(clock.now()) * 1_000_000n) / 1_000_000n));
      timer = clock.setTimeout(() => {
        timer = undefined;
        run();
      }, ms);
    };
    const tick = async () => {
      if (!playing || stopped) return;
      const mine = await this.myAccess(videoId);
      const g = mine.grant;
      if (g && g.kind !== 'pass') return; // watches for free
      if (g && g.kind === 'pass' && g.expiresAt === undefined) return; // a pass forever
      const nowNs = BigInt(clock.now()) * 1_000_000n;
      const end = g?.kind === 'pass' ? g.expiresAt : undefined;
      if (end !== undefined) expiresAt = end;
      if (end === undefined || end - nowNs <= leadNs) {
        if (options.maxCharges !== undefined && receipts.length >= options.maxCharges) return;
        if (!playing || stopped) return;
        if (options.budget !== undefined && !budgeted) {
          budgeted = true;
          const info = await this.accessInfo(videoId);
          if (info.policy.mode === 'paid') {
            const o = info.policy.offers.find((x) => x.id === options.offer);
            if (o) {
              const times = BigInt(Math.max(1, Math.floor(options.budget)));
              const ttl = (BigInt(o.durationSeconds ?? 0) * times + 3600n) * 1_000_000_000n;
              await this.approveFor(videoId, toPrincipal(info.policy.ledger), BigInt(o.price), undefined, times, ttl);
            }
          }
        }
        const receipt = await this.buyAccess(videoId, { offer: options.offer });
        receipts.push(receipt);
        expiresAt = receipt.validUntil;
        options.onCharge?.(receipt);
        if (expiresAt === undefined) return;
      }
      if (playing && !stopped && expiresAt !== undefined) schedule(expiresAt - leadNs);
    };
    const run = () => {
      inFlight = inFlight.then(tick).catch((e: unknown) => {
        error = e;
        playing = false;
        options.onError?.(e);
      });
    };
    const controller: WatchController = {
      play() {
        if (stopped || playing) return;
        playing = true;
        run();
      },
      async pause() {
        playing = false;
        if (timer !== undefined) clock.clearTimeout(timer);
        timer = undefined;
        await inFlight;
      },
      async stop() {
        stopped = true;
        unbind();
        await controller.pause();
      },
      idle: () => inFlight,
      get playing() {
        return playing;
      },
      receipts,
      get expiresAt() {
        return expiresAt;
      },
      get error() {
        return error;
      },
    };
    // Follow the player: it plays → charge; it pauses or ends → stop charging until it plays again.
    const onPlaying = () => controller.play();
    const onPause = () => void controller.pause();
    const media = options.media;
    media?.addEventListener('playing', onPlaying);
    media?.addEventListener('pause', onPause);
    media?.addEventListener('ended', onPause);
    const unbind = () => {
      media?.removeEventListener('playing', onPlaying);
      media?.removeEventListener('pause', onPause);
      media?.removeEventListener('ended', onPause);
    };
    if (options.autoplay ?? media === undefined) controller.play();
    return controller;
  }
}

// --- ICRC-3 block values -----------------------------------------------------------------------

function mapOf(v: IcrcValue | undefined): Record<string, IcrcValue> | undefined {
  return v && 'Map' in v ? Object.fromEntries(v.Map) : undefined;
}
function textOf(v: IcrcValue | undefined): string | undefined {
  return v && 'Text' in v ? v.Text : undefined;
}
function natOf(v: IcrcValue | undefined): bigint | undefined {
  if (!v) return undefined;
  if ('Nat' in v) return v.Nat;
  if ('Int' in v) return v.Int;
  return undefined;
}
function blobOf(v: IcrcValue | undefined): Uint8Array | undefined {
  if (!v || !('Blob' in v)) return undefined;
  return v.Blob instanceof Uint8Array ? v.Blob : Uint8Array.from(v.Blob as ArrayLike<number>);
}
/** An ICRC-3 account (`[owner]` or `[owner, subaccount]`) as `owner` or `owner.<hex subaccount>`. */
function accountText(v: IcrcValue | undefined): string | undefined {
  if (!v || !('Array' in v) || v.Array.length === 0) return undefined;
  const owner = blobOf(v.Array[0]);
  if (!owner) return undefined;
  const text = Principal.fromUint8Array(owner).toText();
  const sub = blobOf(v.Array[1]);
  return sub && sub.some((b) => b !== 0) ? `${text}.${toHex(sub)}` : text;
}
