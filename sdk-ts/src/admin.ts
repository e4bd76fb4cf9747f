// Operator helpers: the spawn canister's and the index canister's admin endpoints, typed.
//
// Kept apart from `CanvidClient` (which a dApp uses for uploads, playback, listing and sales)
// because only a deployment's admins can call these; every method is one call, answers with the
// candid record as the bindings type it (no renaming: admins read these next to the `.did`),
// and turns the canister's `Err` into the typed `CanvidError` classes like every SDK call.
// Retries: queries and idempotent setters go through the client's retry policy; `topUp` and
// `upgradeVideos` are sent once (a retry after a lost answer would pay or upgrade twice).

import type { ActorSubclass } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import type { _SERVICE as IndexService } from './bindings/index.did.js';
import type {
  CyclesConfig,
  QuotaArgs,
  _SERVICE as SpawnService,
  SpawnedVideo,
  UpgradeOutcome,
  WasmInfo,
} from './bindings/spawn.did.js';
import { type CallSite, UsageError, guard, unwrap } from './errors.js';
import { principalText } from './list.js';
import { type RetryPolicy, withRetry } from './retry.js';

/** Options of one admin call. */
export interface AdminCallOptions {
  signal?: AbortSignal;
}

type P = Principal | string;

function pr(p: P): Principal {
  return Principal.fromText(principalText(p));
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>));
}

/** A caller for one canister: guarded (typed errors), with or without the retry policy. */
function caller(canisterId: Principal, policy: RetryPolicy) {
  const site = (method: string): CallSite => ({ canisterId: canisterId.toText(), method });
  const once = <T>(method: string, f: () => Promise<T>): Promise<T> => guard(site(method), f);
  return {
    once,
    retried: <T>(method: string, f: () => Promise<T>, signal?: AbortSignal) => withRetry(() => once(method, f), { policy, signal }),
    site,
  };
}

/** The spawn canister's admin endpoints (see docs/spawn-and-index.md, "Spawn canister"). */
export class SpawnAdmin {
  private readonly c: ReturnType<typeof caller>;

  /** @internal Use `CanvidClient.spawnAdmin()`. */
  constructor(
    private readonly spawn: ActorSubclass<SpawnService>,
    readonly spawnId: Principal,
    policy: RetryPolicy,
  ) {
    this.c = caller(spawnId, policy);
  }

  /** Every created video canister with its owner, payer and status, a page at a time (admins). */
  async *listVideos(opts: AdminCallOptions & { pageSize?: number } = {}): AsyncGenerator<SpawnedVideo, void, undefined> {
    let cursor: [] | [Principal] = [];
    for (;;) {
      const page = unwrap(
        await this.c.retried('list_videos', () => this.spawn.list_videos({ cursor, limit: opts.pageSize === undefined ? [] : [opts.pageSize] }), opts.signal),
        this.c.site('list_videos'),
      );
      yield* page.videos;
      if (!page.next_cursor.length) return;
      cursor = page.next_cursor;
    }
  }

  /** Sets `principal`'s pool quota (cumulative videos and cycles it may take from the pool). */
  async setQuota(principal: P, quota: { maxVideos: bigint | number; maxCycles: bigint }, opts: AdminCallOptions = {}): Promise<void> {
    const q: QuotaArgs = { max_videos: BigInt(quota.maxVideos), max_cycles: quota.maxCycles };
    unwrap(await this.c.retried('set_quota', () => this.spawn.set_quota(pr(principal), q), opts.signal), this.c.site('set_quota'));
  }

  /**
   * Sets (or with `null` clears) the quota every caller without its own gets. Never on mainnet:
   * fresh principals are free to make (docs/spawn-and-index.md).
   */
  async setDefaultQuota(quota: { maxVideos: bigint | number; maxCycles: bigint } | null, opts: AdminCallOptions = {}): Promise<void> {
    const arg: [] | [QuotaArgs] = quota === null ? [] : [{ max_videos: BigInt(quota.maxVideos), max_cycles: quota.maxCycles }];
    unwrap(await this.c.retried('set_default_quota', () => this.spawn.set_default_quota(arg), opts.signal), this.c.site('set_default_quota'));
  }

  /** The cycles formula (`base`, `per_byte`) and the reserve the pool keeps; refused below the IC's minimums. */
  async setCyclesConfig(config: CyclesConfig, opts: AdminCallOptions = {}): Promise<void> {
    unwrap(await this.c.retried('set_cycles_config', () => this.spawn.set_cycles_config(config), opts.signal), this.c.site('set_cycles_config'));
  }

  /** Replaces the admin list. */
  async setAdmins(admins: readonly P[], opts: AdminCallOptions = {}): Promise<void> {
    unwrap(await this.c.retried('set_admins', () => this.spawn.set_admins(admins.map(pr)), opts.signal), this.c.site('set_admins'));
  }

  /** Sets (or with `null` clears) the index canister new videos are registered with. */
  async setIndex(index: P | null, opts: AdminCallOptions = {}): Promise<void> {
    const arg: [] | [Principal] = index === null ? [] : [pr(index)];
    unwrap(await this.c.retried('set_index', () => this.spawn.set_index(arg), opts.signal), this.c.site('set_index'));
  }

  /** Replaces the app canisters allowed to name a video's creator. */
  async setAppCanisters(canisters: readonly P[], opts: AdminCallOptions = {}): Promise<void> {
    unwrap(
      await this.c.retried('set_app_canisters', () => this.spawn.set_app_canisters(canisters.map(pr)), opts.signal),
      this.c.site('set_app_canisters'),
    );
  }

  /**
   * Sets (or with `null` clears) the platform's share of every pass sold by the videos the
   * spawn canister installs from now on (docs/access.md "Platform fee"): `basisPoints` 1..10,000
   * of each price, paid to `account`. Videos installed earlier keep their fee.
   */
  async setPlatformFee(
    fee: { account: P | { owner: P; subaccount?: Uint8Array }; basisPoints: number } | null,
    opts: AdminCallOptions = {},
  ): Promise<void> {
    let arg: Parameters<typeof this.spawn.set_platform_fee>[0] = [];
    if (fee !== null) {
      const a = typeof fee.account === 'object' && 'owner' in fee.account ? fee.account : { owner: fee.account };
      arg = [
        {
          account: { owner: pr(a.owner), subaccount: a.subaccount === undefined ? [] : [a.subaccount] },
          basis_points: fee.basisPoints,
        },
      ];
    }
    unwrap(
      await this.c.retried('set_platform_fee', () => this.spawn.set_platform_fee(arg), opts.signal),
      this.c.site('set_platform_fee'),
    );
  }

  /**
   * Sets the video module the spawn installs (raw `\0asm` or gzip, ≤ 2,000,000 bytes); the
   * SHA-256 the canister checks is computed here.
   */
  async setVideoWasm(wasm: Uint8Array, opts: AdminCallOptions = {}): Promise<WasmInfo> {
    if (wasm.length === 0) throw new UsageError('the video wasm is empty');
    const digest = await sha256(wasm);
    return unwrap(
      await this.c.retried('set_video_wasm', () => this.spawn.set_video_wasm({ wasm, sha256: digest }), opts.signal),
      this.c.site('set_video_wasm'),
    );
  }

  /** Deposits `amount` cycles from the pool into `canister` (never below the reserve). Sent once. */
  async topUp(canister: P, amount: bigint, opts: AdminCallOptions = {}): Promise<void> {
    if (opts.signal?.aborted) throw opts.signal.reason;
    unwrap(await this.c.once('top_up', () => this.spawn.top_up({ video: pr(canister), amount })), this.c.site('top_up'));
  }

  /** Stops, upgrades and starts the given videos (all when omitted) with the current wasm. Sent once. */
  async upgradeVideos(videos?: readonly P[], opts: AdminCallOptions = {}): Promise<UpgradeOutcome[]> {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const arg = { videos: videos === undefined ? ([] as []) : ([videos.map(pr)] as [Principal[]]), arg: [] as [] };
    return unwrap(await this.c.once('upgrade_videos', () => this.spawn.upgrade_videos(arg)), this.c.site('upgrade_videos'));
  }

  /** Drives the creation outbox now (≤ 50 entries), parked entries included. */
  async retryPending(opts: AdminCallOptions = {}): Promise<SpawnedVideo[]> {
    return unwrap(await this.c.retried('retry_pending', () => this.spawn.retry_pending(), opts.signal), this.c.site('retry_pending'));
  }
}

/** The index canister's admin endpoints. */
export class IndexAdmin {
  private readonly c: ReturnType<typeof caller>;

  /** @internal Use `CanvidClient.indexAdmin()`. */
  constructor(
    private readonly index: ActorSubclass<IndexService>,
    readonly indexId: Principal,
    policy: RetryPolicy,
  ) {
    this.c = caller(indexId, policy);
  }

  /** Replaces the admin list. */
  async setAdmins(admins: readonly P[], opts: AdminCallOptions = {}): Promise<void> {
    unwrap(await this.c.retried('set_admins', () => this.index.set_admins(admins.map(pr)), opts.signal), this.c.site('set_admins'));
  }

  /** Replaces the canisters (spawn canisters) allowed to register videos. */
  async setRegistrars(registrars: readonly P[], opts: AdminCallOptions = {}): Promise<void> {
    unwrap(
      await this.c.retried('set_registrars', () => this.index.set_registrars(registrars.map(pr)), opts.signal),
      this.c.site('set_registrars'),
    );
  }
}
