// The index canister as canvid's ICRC-7 collection (docs/nft.md): token ids ⇄ video canisters,
// the ICRC-7 / ICRC-37 / ICRC-3 / ICRC-10 methods with plain TypeScript values, typed errors
// for the standards' error variants, and `verifyOwnership`, which checks a token's holder
// against the IC's certified state of the video canister.
import { Actor, type ActorSubclass, type Agent } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import {
  type Account as CandidAccount,
  type ApprovalInfo as CandidApprovalInfo,
  type ApproveCollectionError,
  type ApproveTokenError,
  type DataCertificate,
  type RevokeCollectionApprovalError,
  type RevokeTokenApprovalError,
  type TransferError,
  type TransferFromError,
  type Value,
  idlFactory as indexIdl,
  type _SERVICE as IndexService,
} from './bindings/index.did.js';
import { idlFactory as videoIdl, type _SERVICE as VideoService } from './bindings/video.did.js';
import { toHex } from './bytes.js';
import { type CertifiedMetadata, type ResponseVerifier, metadataRequest, readCanisterInfo, verifyMetadataAnswer } from './certified.js';
import { CanvidError, type CallSite, UsageError, UnexpectedError, guard, unwrap } from './errors.js';
import { type RetryPolicy, retryPolicy, withRetry } from './retry.js';

// --- Token ids ---------------------------------------------------------------------------------

const MAX_U64 = (1n << 64n) - 1n;

/**
 * The token id of a video canister: the canister's number on the IC, i.e. the first 8 bytes of
 * its 10-byte id (`<u64 big-endian> 0x01 0x01`) read big-endian (docs/nft.md "Token ids").
 * `rrkah-fqaaa-aaaaa-aaaaq-cai` is token `1`. Throws `UsageError` for a principal that is not a
 * canister id.
 */
export function tokenIdOf(canisterId: Principal | string): bigint {
  const p = typeof canisterId === 'string' ? parsePrincipal(canisterId) : canisterId;
  const b = p.toUint8Array();
  if (b.length !== 10 || b[8] !== 1 || b[9] !== 1) {
    throw new UsageError(`${p.toText()} is not a canister id (10 bytes ending in 01 01), so it is no token`);
  }
  let n = 0n;
  for (let i = 0; i < 8; i++) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

/** The video canister of a token id (the inverse of {@link tokenIdOf}), as text. */
export function videoOfToken(tokenId: bigint | number | string): string {
  const n = BigInt(tokenId);
  if (n < 0n || n > MAX_U64) throw new UsageError(`token id ${n} is outside 0..2^64-1: no canvid video has it`);
  const b = new Uint8Array(10);
  let v = n;
  for (let i = 7; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  b[8] = 1;
  b[9] = 1;
  return Principal.fromUint8Array(b).toText();
}

function parsePrincipal(text: string): Principal {
  try {
    return Principal.fromText(text);
  } catch (e) {
    throw new UsageError(`not a principal: ${text}`, { cause: e });
  }
}

/** A token: its id (`bigint`, `number`, decimal text) or its video canister (`Principal` or id text). */
export type TokenRef = bigint | number | string | Principal;

/** The token id a {@link TokenRef} names. */
export function toTokenId(ref: TokenRef): bigint {
  if (typeof ref === 'bigint') return ref;
  if (typeof ref === 'number') {
    if (!Number.isSafeInteger(ref) || ref < 0) throw new UsageError(`token id ${ref} is not a non-negative integer`);
    return BigInt(ref);
  }
  if (typeof ref === 'string') {
    if (/^[0-9]+$/.test(ref)) return BigInt(ref);
    return tokenIdOf(ref);
  }
  return tokenIdOf(ref);
}

// --- Accounts and values -----------------------------------------------------------------------

/** An ICRC-1 account: a principal (or its text) and an optional 32-byte subaccount. */
export type AccountLike = Principal | string | { owner: Principal | string; subaccount?: Uint8Array | null };

/** An ICRC-1 account with the principal as text; `subaccount` absent for the default one. */
export interface AccountInfo {
  owner: string;
  subaccount?: Uint8Array;
}

export function toAccount(a: AccountLike): CandidAccount {
  if (typeof a === 'string') return { owner: parsePrincipal(a), subaccount: [] };
  if (a instanceof Principal) return { owner: a, subaccount: [] };
  const owner = typeof a.owner === 'string' ? parsePrincipal(a.owner) : a.owner;
  if (a.subaccount && a.subaccount.length !== 32) throw new UsageError(`a subaccount has 32 bytes, not ${a.subaccount.length}`);
  return { owner, subaccount: a.subaccount ? [a.subaccount] : [] };
}

function fromAccount(a: CandidAccount): AccountInfo {
  const sub = a.subaccount[0];
  return sub && sub.some((b) => b !== 0) ? { owner: a.owner.toText(), subaccount: sub } : { owner: a.owner.toText() };
}

/** An ICRC-3 `Value` as plain JavaScript: `Nat`/`Int` → bigint, `Blob` → Uint8Array, `Map` → object. */
export type PlainValue = bigint | string | Uint8Array | PlainValue[] | { [key: string]: PlainValue };

export function plainValue(v: Value): PlainValue {
  if ('Nat' in v) return v.Nat;
  if ('Int' in v) return v.Int;
  if ('Text' in v) return v.Text;
  if ('Blob' in v) return v.Blob instanceof Uint8Array ? v.Blob : Uint8Array.from(v.Blob);
  if ('Array' in v) return v.Array.map(plainValue);
  return Object.fromEntries(v.Map.map(([k, x]) => [k, plainValue(x)]));
}

function plainMap(entries: Array<[string, Value]>): Record<string, PlainValue> {
  return Object.fromEntries(entries.map(([k, v]) => [k, plainValue(v)]));
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function toNs(t: bigint | Date): bigint {
  return t instanceof Date ? BigInt(t.getTime()) * 1_000_000n : t;
}

function opt<T>(v: T | undefined | null): [] | [T] {
  return v === undefined || v === null ? [] : [v];
}

// --- Errors ------------------------------------------------------------------------------------

/** The collection's `GenericError.error_code`s (docs/nft.md "Error codes"). */
export const COLLECTION_ERROR_CODES = {
  1: 'busy',
  2: 'notSoleControl',
  3: 'videoRefused',
  4: 'callFailed',
  5: 'memoTooLong',
  6: 'badRecipient',
  7: 'tooManyApprovals',
  8: 'fromSubaccount',
  9: 'expired',
  10: 'batchTooLarge',
  11: 'notAHolder',
  12: 'rateLimited',
} as const;

/** The name of a `GenericError` code, `'unknown'` for a code docs/nft.md does not list. */
export type CollectionErrorCode = (typeof COLLECTION_ERROR_CODES)[keyof typeof COLLECTION_ERROR_CODES] | 'unknown';

const CODE_TEXT: Record<CollectionErrorCode, string> = {
  busy: 'the token is being transferred or its video is busy; retry',
  notSoleControl: 'the holder does not control the video canister alone, or it runs a module the platform did not install',
  videoRefused: 'the video canister refused the transfer or did not move',
  callFailed: 'a call to the IC or the video failed; nothing changed, or the collection settles the outcome within minutes (check ownerOf)',
  memoTooLong: 'the memo is longer than 32 bytes',
  badRecipient: 'the recipient cannot hold a video (only a principal\'s default account can)',
  tooManyApprovals: 'too many approvals for this token or holder',
  fromSubaccount: 'approvals are made from the default account, which holds the videos',
  expired: 'expires_at is not in the future',
  batchTooLarge: 'too many requests in one call',
  notAHolder: 'only a holder of at least one token may approve the collection',
  rateLimited: 'the token was transferred through the collection 10 times this hour; retry later',
  unknown: 'error',
};

/** The variant names of the ICRC-7 / ICRC-37 error types. */
export type IcrcErrorKind =
  | 'NonExistingTokenId'
  | 'InvalidRecipient'
  | 'InvalidSpender'
  | 'Unauthorized'
  | 'ApprovalDoesNotExist'
  | 'TooOld'
  | 'CreatedInFuture'
  | 'Duplicate'
  | 'GenericError'
  | 'GenericBatchError';

type IcrcError = TransferError | TransferFromError | ApproveTokenError | ApproveCollectionError | RevokeTokenApprovalError | RevokeCollectionApprovalError;

/**
 * The collection answered an ICRC-7 / ICRC-37 error variant. `kind` is the variant; for
 * `GenericError` / `GenericBatchError`, `errorCode` and `code` (its name, docs/nft.md) say which.
 * `transient` for `busy` (retry later).
 */
export class CollectionError extends CanvidError {
  override name = 'CollectionError';
  readonly kind: IcrcErrorKind;
  /** `GenericError.error_code`, when the variant has one. */
  readonly errorCode?: bigint;
  /** The name of `errorCode`. */
  readonly code?: CollectionErrorCode;
  /** The collection's own message (`GenericError.message`), when it sent one. */
  readonly reason?: string;
  /** `Duplicate.duplicate_of`: the block of the earlier identical request. */
  readonly duplicateOf?: bigint;
  /** `CreatedInFuture.ledger_time`: the collection's time (ns). */
  readonly ledgerTime?: bigint;
  /** The token the request was about, when it was about one. */
  readonly tokenId?: bigint;

  constructor(
    kind: IcrcErrorKind,
    message: string,
    fields: { errorCode?: bigint; reason?: string; duplicateOf?: bigint; ledgerTime?: bigint; tokenId?: bigint; site?: CallSite } = {},
  ) {
    const code = fields.errorCode === undefined ? undefined : codeName(fields.errorCode);
    super(message, { site: fields.site, transient: code === 'busy' });
    this.kind = kind;
    this.errorCode = fields.errorCode;
    this.code = code;
    this.reason = fields.reason;
    this.duplicateOf = fields.duplicateOf;
    this.ledgerTime = fields.ledgerTime;
    this.tokenId = fields.tokenId;
  }
}

function codeName(code: bigint): CollectionErrorCode {
  return (COLLECTION_ERROR_CODES as Record<string, CollectionErrorCode>)[code.toString()] ?? 'unknown';
}

/** Turns an ICRC-7 / ICRC-37 error variant into a {@link CollectionError} with a clear message. */
export function fromIcrcError(e: IcrcError, context: { tokenId?: bigint; site?: CallSite } = {}): CollectionError {
  const kind = Object.keys(e)[0] as IcrcErrorKind;
  const d = (e as Record<string, unknown>)[kind] as Record<string, unknown> | null;
  const token = context.tokenId === undefined ? 'the token' : `token ${context.tokenId}`;
  const where = context.site?.method ? ` (${context.site.method}${context.site.canisterId ? ` on ${context.site.canisterId}` : ''})` : '';
  const make = (text: string, fields: Omit<ConstructorParameters<typeof CollectionError>[2] & object, 'site' | 'tokenId'> = {}) =>
    new CollectionError(kind, `${kind}: ${text}${where}`, { ...fields, tokenId: context.tokenId, site: context.site });
  switch (kind) {
    case 'NonExistingTokenId':
      return make(`${token} does not exist in this collection`);
    case 'InvalidRecipient':
      return make('the recipient already holds the token or cannot hold it');
    case 'InvalidSpender':
      return make('the spender is the holder itself or cannot be a spender');
    case 'Unauthorized':
      return make(`the caller may not do this with ${token} (not its holder, or not approved)`);
    case 'ApprovalDoesNotExist':
      return make('there is no such approval');
    case 'TooOld':
      return make('created_at_time is older than the transaction window (24 h + 2 min)');
    case 'CreatedInFuture': {
      const ledgerTime = d?.ledger_time as bigint;
      return make(`created_at_time is later than the collection's time ${ledgerTime} (+ 2 min drift)`, { ledgerTime });
    }
    case 'Duplicate': {
      const duplicateOf = d?.duplicate_of as bigint;
      return make(`the same request was already applied as block ${duplicateOf}`, { duplicateOf });
    }
    case 'GenericError':
    case 'GenericBatchError': {
      const errorCode = d?.error_code as bigint;
      const reason = String(d?.message ?? '');
      const name = codeName(errorCode);
      return make(`${CODE_TEXT[name]} (code ${errorCode}${name === 'unknown' ? '' : ` ${name}`}): ${reason}`, { errorCode, reason });
    }
    default:
      return new CollectionError(kind, `${JSON.stringify(e, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}${where}`, {
        site: context.site,
        tokenId: context.tokenId,
      });
  }
}

/** The one answer of a one-request batch: `Ok` → value, `Err` → `CollectionError`, none → `UnexpectedError`. */
function single<E extends IcrcError>(answers: Array<[] | [{ Ok: bigint } | { Err: E }]>, site: CallSite, tokenId?: bigint): bigint {
  const a = answers[0]?.[0];
  if (answers.length !== 1 || a === undefined) {
    throw new UnexpectedError(`${site.method} answered ${answers.length} answers (${answers.length === 1 ? 'none set' : 'expected 1'})`, { site });
  }
  if ('Err' in a) throw fromIcrcError(a.Err, { tokenId, site });
  return a.Ok;
}

// --- The collection client ---------------------------------------------------------------------

export interface CollectionOptions {
  /** The agent every call goes through (its identity signs). */
  agent: Agent;
  /** The index canister, which is the collection. */
  indexId: Principal | string;
  /**
   * The spawn canister(s) allowed among a video's controllers ({@link CanvidCollection.verifyOwnership}).
   * Default: the index's registrars (`stats().registrars`), which are the spawn canisters.
   */
  platformControllers?: Array<Principal | string>;
  retry?: Partial<RetryPolicy>;
  /** HTTP response verification for the video's certified `/metadata.json` (see `ClientOptions`). */
  responseVerifier?: ResponseVerifier;
}

/** Options of the collection's update calls. */
export interface CollectionCallOptions {
  /** At most 32 bytes, written into the block. */
  memo?: Uint8Array;
  /**
   * `created_at_time` (ns since the epoch, or a `Date`): turns on ICRC-7 deduplication (an
   * identical request within 24 h answers `Duplicate`). Approvals always carry one (now, by
   * default), as ICRC-37 requires.
   */
  createdAtTime?: bigint | Date;
}

/** Options of `approve` / `approveCollection`. */
export interface ApproveOptions extends CollectionCallOptions {
  /** When the approval ends (ns since the epoch, or a `Date`); default never. */
  expiresAt?: bigint | Date;
}

/** Paging of `tokens` / `tokensOf`: start after `prev`, at most `take` (default 100, at most 1000). */
export interface TokenPageOptions {
  prev?: TokenRef;
  take?: number | bigint;
}

/** `icrc7_collection_metadata` with plain values, and the limits it announces. */
export interface CollectionMetadata {
  symbol: string;
  name: string;
  description?: string;
  totalSupply: bigint;
  /** Every entry as the collection sent it (`icrc7:*`, `icrc37:*`). */
  entries: Record<string, PlainValue>;
}

/** A token's metadata with plain values (`icrc7:name`, `canvid:video_canister`, `icrc97:metadata`, ...). */
export interface TokenMetadata {
  tokenId: bigint;
  videoId: string;
  entries: Record<string, PlainValue>;
}

/** An approval (ICRC-37 `ApprovalInfo`) with plain values. */
export interface Approval {
  tokenId?: bigint;
  spender: AccountInfo;
  expiresAt?: bigint;
  createdAtTime: bigint;
  memo?: Uint8Array;
}

function fromApprovalInfo(a: CandidApprovalInfo, tokenId?: bigint): Approval {
  return {
    ...(tokenId === undefined ? {} : { tokenId }),
    spender: fromAccount(a.spender),
    expiresAt: a.expires_at[0],
    createdAtTime: a.created_at_time,
    memo: a.memo[0],
  };
}

/** One ICRC-3 block, decoded: `btype` (`7mint`, `7xfer`, `37approve`, ...), `ts`, `tx` fields. */
export interface CollectionBlock {
  id: bigint;
  btype: string;
  /** The block's time (ns since the epoch). */
  ts: bigint;
  /** Parent hash; absent for the first block. */
  phash?: Uint8Array;
  /** `tx` with plain values (`tid`, `from`, `to`, `spender`, `exp`, `memo`, `ts`). */
  tx: Record<string, PlainValue>;
  /** The token the block is about, when it is about one. */
  tokenId?: bigint;
  /** The block exactly as the collection sent it. */
  raw: Value;
}

export interface BlocksPage {
  /** Blocks in the log (all of them, not only this page). */
  logLength: bigint;
  blocks: CollectionBlock[];
}

/** Decodes one ICRC-3 block (`btype`, `ts`, `phash`, `tx`) into plain values. */
export function decodeBlock(id: bigint, raw: Value): CollectionBlock {
  const top = plainValue(raw);
  if (typeof top !== 'object' || top instanceof Uint8Array || Array.isArray(top)) {
    throw new UnexpectedError(`block ${id} is not a map`);
  }
  const tx = (top.tx ?? {}) as Record<string, PlainValue>;
  const btype = typeof top.btype === 'string' ? top.btype : '';
  const tid = tx.tid;
  return {
    id,
    btype,
    ts: typeof top.ts === 'bigint' ? top.ts : 0n,
    phash: top.phash instanceof Uint8Array ? top.phash : undefined,
    tx,
    tokenId: typeof tid === 'bigint' ? tid : undefined,
    raw,
  };
}

/** An ICRC-3 account value (`vec { blob owner; opt blob subaccount }`) as text. */
export function blockAccountText(v: PlainValue | undefined): string | undefined {
  if (!Array.isArray(v) || !(v[0] instanceof Uint8Array)) return undefined;
  const owner = Principal.fromUint8Array(v[0]).toText();
  const sub = v[1];
  return sub instanceof Uint8Array && sub.some((b) => b !== 0) ? `${owner}.${toHex(sub)}` : owner;
}

/** The collection's limits, each from its own ICRC-7 / ICRC-37 method. */
export interface CollectionLimits {
  maxQueryBatchSize?: bigint;
  maxUpdateBatchSize?: bigint;
  defaultTakeValue?: bigint;
  maxTakeValue?: bigint;
  maxMemoSize?: bigint;
  /** Seconds. */
  txWindow?: bigint;
  /** Seconds. */
  permittedDrift?: bigint;
  atomicBatchTransfers?: boolean;
  supplyCap?: bigint;
  maxApprovalsPerTokenOrCollection?: bigint;
  maxRevokeApprovals?: bigint;
}

/** What {@link CanvidCollection.verifyOwnership} found. `verified` when `problems` is empty. */
export interface OwnershipReport {
  tokenId: bigint;
  videoId: string;
  /** The ICRC-7 holder (`icrc7_owner_of`); `undefined` if the token does not exist. */
  holder?: string;
  /** The video canister's controllers from the IC's certified state (`read_state`). */
  controllers: string[];
  /** The installed module's SHA-256 (hex) from the certified state. */
  moduleHash?: string;
  /** The owner in the video's certified `/metadata.json`. */
  metadataOwner?: string;
  /** The video's certified control status (`owner`, `after_upload`, `handing_over`). */
  control?: string;
  /** The principals allowed besides the holder and the video (the platform's spawn canisters). */
  platform: string[];
  verified: boolean;
  /** Why the holder does not verifiably own the video; empty when `verified`. */
  problems: string[];
}

/**
 * The checks of {@link CanvidCollection.verifyOwnership} on what it read: the holder is a
 * controller, the controllers are within {holder, video, platform}, the certified metadata owner
 * is the holder and controls the canister, and (when given) the module hash is the expected one.
 * Returns the problems found (empty: verified).
 */
export function ownershipProblems(r: {
  tokenId: bigint;
  videoId: string;
  collection: string;
  holder?: string;
  controllers: string[];
  moduleHash?: string;
  metadataOwner?: string;
  control?: string;
  platform: string[];
  expectedModuleHash?: string | Uint8Array;
}): string[] {
  const problems: string[] = [];
  const { holder, videoId } = r;
  if (holder === undefined) {
    problems.push(`token ${r.tokenId} does not exist in the collection ${r.collection}`);
  } else {
    if (!r.controllers.includes(holder)) problems.push(`the holder ${holder} is not a controller of video ${videoId}`);
    const others = r.controllers.filter((c) => c !== holder && c !== videoId && !r.platform.includes(c));
    if (others.length > 0) problems.push(`video ${videoId} has controllers besides its holder, itself and the platform: ${others.join(', ')}`);
    if (r.metadataOwner !== holder) problems.push(`the video's certified metadata names ${r.metadataOwner ?? 'no owner'}, not the holder ${holder}`);
    if (r.control !== undefined && r.control !== 'owner') {
      problems.push(`the video's certified control status is "${r.control}": its owner does not control it yet`);
    }
  }
  if (r.expectedModuleHash !== undefined) {
    const want = typeof r.expectedModuleHash === 'string' ? r.expectedModuleHash.toLowerCase() : toHex(r.expectedModuleHash);
    if (r.moduleHash !== want) problems.push(`video ${videoId} runs module ${r.moduleHash ?? '(none)'}, not ${want}`);
  }
  return problems;
}

/**
 * Client for canvid's ICRC-7 collection (the index canister), see docs/nft.md. Get one from
 * `CanvidClient.collection()` or `new CanvidCollection({ agent, indexId })`.
 *
 * ```ts
 * const nft = canvid.collection();
 * for (const t of await nft.tokensOf(me)) console.log(t, videoOfToken(t));
 * await nft.approve(tokenIdOf(videoId), marketplace, { expiresAt: new Date(Date.now() + 86_400_000) });
 * const report = await nft.verifyOwnership(tokenIdOf(videoId)); // report.verified
 * ```
 */
export class CanvidCollection {
  readonly agent: Agent;
  readonly indexId: Principal;
  private readonly actor: ActorSubclass<IndexService>;
  private readonly retry: RetryPolicy;
  private readonly platform?: string[];
  private readonly responseVerifier?: ResponseVerifier;

  constructor(options: CollectionOptions) {
    this.agent = options.agent;
    this.indexId = typeof options.indexId === 'string' ? parsePrincipal(options.indexId) : options.indexId;
    this.actor = Actor.createActor<IndexService>(indexIdl, { agent: options.agent, canisterId: this.indexId });
    this.retry = retryPolicy(options.retry);
    this.platform = options.platformControllers?.map((p) => (typeof p === 'string' ? p : p.toText()));
    this.responseVerifier = options.responseVerifier;
  }

  private site(method: string): CallSite {
    return { canisterId: this.indexId.toText(), method };
  }

  /** A query, retried on transient errors. */
  private query<T>(method: string, f: (a: ActorSubclass<IndexService>) => Promise<T>): Promise<T> {
    return withRetry(() => guard(this.site(method), () => f(this.actor)), { policy: this.retry });
  }

  /** An update: not retried (a transfer's answer may be lost after it happened; see `ownerOf`). */
  private update<T>(method: string, f: (a: ActorSubclass<IndexService>) => Promise<T>): Promise<T> {
    return guard(this.site(method), () => f(this.actor));
  }

  // --- ICRC-7 queries ------------------------------------------------------------------------

  /** `icrc7_collection_metadata`: symbol, name, description, supply and every announced limit. */
  async collectionMetadata(): Promise<CollectionMetadata> {
    const entries = plainMap(await this.query('icrc7_collection_metadata', (a) => a.icrc7_collection_metadata()));
    return {
      symbol: String(entries['icrc7:symbol'] ?? ''),
      name: String(entries['icrc7:name'] ?? ''),
      description: typeof entries['icrc7:description'] === 'string' ? entries['icrc7:description'] : undefined,
      totalSupply: typeof entries['icrc7:total_supply'] === 'bigint' ? entries['icrc7:total_supply'] : 0n,
      entries,
    };
  }

  /** `icrc7_name`, `icrc7_symbol`, `icrc7_description`, `icrc7_logo`, `icrc7_total_supply`, each by its own query. */
  async info(): Promise<{ name: string; symbol: string; description?: string; logo?: string; totalSupply: bigint }> {
    const [name, symbol, description, logo, totalSupply] = await Promise.all([
      this.query('icrc7_name', (a) => a.icrc7_name()),
      this.query('icrc7_symbol', (a) => a.icrc7_symbol()),
      this.query('icrc7_description', (a) => a.icrc7_description()),
      this.query('icrc7_logo', (a) => a.icrc7_logo()),
      this.query('icrc7_total_supply', (a) => a.icrc7_total_supply()),
    ]);
    return { name, symbol, description: description[0], logo: logo[0], totalSupply };
  }

  /** The limits, each read with its own ICRC-7 / ICRC-37 method (`icrc7_max_query_batch_size`, ...). */
  async limits(): Promise<CollectionLimits> {
    const o = <T>(v: [] | [T]) => v[0];
    const [q, u, d, t, m, w, p, atomic, cap, ma, mr] = await Promise.all([
      this.query('icrc7_max_query_batch_size', (a) => a.icrc7_max_query_batch_size()),
      this.query('icrc7_max_update_batch_size', (a) => a.icrc7_max_update_batch_size()),
      this.query('icrc7_default_take_value', (a) => a.icrc7_default_take_value()),
      this.query('icrc7_max_take_value', (a) => a.icrc7_max_take_value()),
      this.query('icrc7_max_memo_size', (a) => a.icrc7_max_memo_size()),
      this.query('icrc7_tx_window', (a) => a.icrc7_tx_window()),
      this.query('icrc7_permitted_drift', (a) => a.icrc7_permitted_drift()),
      this.query('icrc7_atomic_batch_transfers', (a) => a.icrc7_atomic_batch_transfers()),
      this.query('icrc7_supply_cap', (a) => a.icrc7_supply_cap()),
      this.query('icrc37_max_approvals_per_token_or_collection', (a) => a.icrc37_max_approvals_per_token_or_collection()),
      this.query('icrc37_max_revoke_approvals', (a) => a.icrc37_max_revoke_approvals()),
    ]);
    return {
      maxQueryBatchSize: o(q),
      maxUpdateBatchSize: o(u),
      defaultTakeValue: o(d),
      maxTakeValue: o(t),
      maxMemoSize: o(m),
      txWindow: o(w),
      permittedDrift: o(p),
      atomicBatchTransfers: o(atomic),
      supplyCap: o(cap),
      maxApprovalsPerTokenOrCollection: o(ma),
      maxRevokeApprovals: o(mr),
    };
  }

  /** `icrc10_supported_standards`. */
  async supportedStandards(): Promise<Array<{ name: string; url: string }>> {
    return this.query('icrc10_supported_standards', (a) => a.icrc10_supported_standards());
  }

  /** The holder of a token (its default account), `undefined` if there is no such token. */
  async ownerOf(token: TokenRef): Promise<string | undefined> {
    return (await this.ownersOf([token]))[0];
  }

  /** `icrc7_owner_of` for several tokens (at most `icrc7:max_query_batch_size`, 100). */
  async ownersOf(tokens: TokenRef[]): Promise<Array<string | undefined>> {
    const ids = tokens.map(toTokenId);
    const r = await this.query('icrc7_owner_of', (a) => a.icrc7_owner_of(ids));
    return r.map((x) => (x[0] ? x[0].owner.toText() : undefined));
  }

  /** `icrc7_balance_of`: how many tokens the account holds. */
  async balanceOf(account: AccountLike): Promise<bigint> {
    const r = await this.query('icrc7_balance_of', (a) => a.icrc7_balance_of([toAccount(account)]));
    return r[0] ?? 0n;
  }

  /** `icrc7_tokens`: token ids in order, after `prev`, at most `take`. */
  async tokens(options: TokenPageOptions = {}): Promise<bigint[]> {
    const prev = opt(options.prev === undefined ? undefined : toTokenId(options.prev));
    const take = opt(options.take === undefined ? undefined : BigInt(options.take));
    return this.query('icrc7_tokens', (a) => a.icrc7_tokens(prev, take));
  }

  /** `icrc7_tokens_of`: the account's token ids in order, after `prev`, at most `take`. */
  async tokensOf(account: AccountLike, options: TokenPageOptions = {}): Promise<bigint[]> {
    const prev = opt(options.prev === undefined ? undefined : toTokenId(options.prev));
    const take = opt(options.take === undefined ? undefined : BigInt(options.take));
    return this.query('icrc7_tokens_of', (a) => a.icrc7_tokens_of(toAccount(account), prev, take));
  }

  /** Every token (or every token of `owner`), page after page of `pageSize`. */
  async *allTokens(options: { owner?: AccountLike; pageSize?: number } = {}): AsyncGenerator<bigint, void, undefined> {
    const take = options.pageSize ?? 100;
    let prev: bigint | undefined;
    for (;;) {
      const page = options.owner === undefined ? await this.tokens({ prev, take }) : await this.tokensOf(options.owner, { prev, take });
      for (const t of page) yield t;
      const last = page[page.length - 1];
      if (page.length < take || last === undefined) return;
      if (prev !== undefined && last <= prev) throw new UnexpectedError(`icrc7_tokens does not advance after ${prev}`);
      prev = last;
    }
  }

  /** `icrc7_token_metadata` of one token, `undefined` if there is no such token. */
  async tokenMetadata(token: TokenRef): Promise<TokenMetadata | undefined> {
    const tokenId = toTokenId(token);
    const r = await this.query('icrc7_token_metadata', (a) => a.icrc7_token_metadata([tokenId]));
    const m = r[0]?.[0];
    return m ? { tokenId, videoId: videoOfToken(tokenId), entries: plainMap(m) } : undefined;
  }

  /**
   * `refresh_token_metadata`: has the collection re-read each video's own metadata (title,
   * description, MIME type, size, duration, digest) into its token metadata, e.g. after an upload
   * or `update_metadata`. The token's holder (or an admin) may ask; a changed copy is a
   * `7update_token` block. Throws the first refusal as a {@link CanisterError}.
   */
  async refreshTokenMetadata(tokens: TokenRef[]): Promise<void> {
    const ids = tokens.map(toTokenId);
    const site = this.site('refresh_token_metadata');
    const r = await this.update('refresh_token_metadata', (a) => a.refresh_token_metadata(ids));
    if (r.length !== ids.length) {
      throw new UnexpectedError(`refresh_token_metadata answered ${r.length} answers, expected ${ids.length}`, { site });
    }
    for (const one of r) unwrap(one, site);
  }

  // --- ICRC-7 / ICRC-37 updates ---------------------------------------------------------------

  /**
   * `icrc7_transfer` by the holder: moves the video canister itself to `to` (its default account),
   * see docs/nft.md "What a transfer guarantees". Returns the block index. Errors are
   * {@link CollectionError}s; not retried (on a lost answer, check {@link ownerOf}).
   */
  async transfer(token: TokenRef, to: AccountLike, options: CollectionCallOptions & { fromSubaccount?: Uint8Array } = {}): Promise<bigint> {
    const tokenId = toTokenId(token);
    const r = await this.update('icrc7_transfer', (a) =>
      a.icrc7_transfer([
        {
          token_id: tokenId,
          to: toAccount(to),
          from_subaccount: opt(options.fromSubaccount),
          memo: opt(options.memo),
          created_at_time: opt(options.createdAtTime === undefined ? undefined : toNs(options.createdAtTime)),
        },
      ]),
    );
    return single(r, this.site('icrc7_transfer'), tokenId);
  }

  /** `icrc37_transfer_from` by an approved spender (a marketplace): moves the token from `from` to `to`. */
  async transferFrom(
    token: TokenRef,
    from: AccountLike,
    to: AccountLike,
    options: CollectionCallOptions & { spenderSubaccount?: Uint8Array } = {},
  ): Promise<bigint> {
    const tokenId = toTokenId(token);
    const r = await this.update('icrc37_transfer_from', (a) =>
      a.icrc37_transfer_from([
        {
          token_id: tokenId,
          from: toAccount(from),
          to: toAccount(to),
          spender_subaccount: opt(options.spenderSubaccount),
          memo: opt(options.memo),
          created_at_time: opt(options.createdAtTime === undefined ? undefined : toNs(options.createdAtTime)),
        },
      ]),
    );
    return single(r, this.site('icrc37_transfer_from'), tokenId);
  }

  private approvalInfo(spender: AccountLike, options: ApproveOptions): CandidApprovalInfo {
    return {
      spender: toAccount(spender),
      from_subaccount: [],
      expires_at: opt(options.expiresAt === undefined ? undefined : toNs(options.expiresAt)),
      memo: opt(options.memo),
      created_at_time: options.createdAtTime === undefined ? nowNs() : toNs(options.createdAtTime),
    };
  }

  /** `icrc37_approve_tokens`: the holder lets `spender` transfer this token. Returns the block index. */
  async approve(token: TokenRef, spender: AccountLike, options: ApproveOptions = {}): Promise<bigint> {
    const tokenId = toTokenId(token);
    const info = this.approvalInfo(spender, options);
    const r = await this.update('icrc37_approve_tokens', (a) => a.icrc37_approve_tokens([{ token_id: tokenId, approval_info: info }]));
    return single(r, this.site('icrc37_approve_tokens'), tokenId);
  }

  /** `icrc37_approve_collection`: the caller lets `spender` transfer all its tokens, present and future. */
  async approveCollection(spender: AccountLike, options: ApproveOptions = {}): Promise<void> {
    const info = this.approvalInfo(spender, options);
    const site = this.site('icrc37_approve_collection');
    const r = await this.update('icrc37_approve_collection', (a) => a.icrc37_approve_collection([{ approval_info: info }]));
    if (r.length !== 1) throw new UnexpectedError(`icrc37_approve_collection answered ${r.length} answers, expected 1`, { site });
    const err = r[0]![0];
    if (err) throw fromIcrcError(err, { site });
  }

  /**
   * `icrc37_revoke_token_approvals`: revokes `spender`'s approval of the token, or every approval
   * of it (`spender` omitted). The spender may revoke its own. Returns the block index.
   */
  async revoke(token: TokenRef, spender?: AccountLike, options: CollectionCallOptions = {}): Promise<bigint> {
    const tokenId = toTokenId(token);
    const r = await this.update('icrc37_revoke_token_approvals', (a) =>
      a.icrc37_revoke_token_approvals([
        {
          token_id: tokenId,
          spender: opt(spender === undefined ? undefined : toAccount(spender)),
          from_subaccount: [],
          memo: opt(options.memo),
          created_at_time: opt(options.createdAtTime === undefined ? undefined : toNs(options.createdAtTime)),
        },
      ]),
    );
    return single(r, this.site('icrc37_revoke_token_approvals'), tokenId);
  }

  /** `icrc37_revoke_collection_approvals`: revokes the caller's collection approval of `spender` (or all). */
  async revokeCollection(spender?: AccountLike, options: CollectionCallOptions = {}): Promise<bigint> {
    const r = await this.update('icrc37_revoke_collection_approvals', (a) =>
      a.icrc37_revoke_collection_approvals([
        {
          spender: opt(spender === undefined ? undefined : toAccount(spender)),
          from_subaccount: [],
          memo: opt(options.memo),
          created_at_time: opt(options.createdAtTime === undefined ? undefined : toNs(options.createdAtTime)),
        },
      ]),
    );
    return single(r, this.site('icrc37_revoke_collection_approvals'));
  }

  /** `icrc37_is_approved`: may `spender` transfer the token now (token or collection approval)? */
  async isApproved(token: TokenRef, spender: AccountLike): Promise<boolean> {
    const tokenId = toTokenId(token);
    const r = await this.query('icrc37_is_approved', (a) =>
      a.icrc37_is_approved([{ token_id: tokenId, spender: toAccount(spender), from_subaccount: [] }]),
    );
    return r[0] === true;
  }

  /** `icrc37_get_token_approvals`: the token's active approvals, in spender order, after `prev`'s spender. */
  async tokenApprovals(token: TokenRef, options: { prev?: Approval; take?: number | bigint } = {}): Promise<Approval[]> {
    const tokenId = toTokenId(token);
    const prev = options.prev
      ? [{ token_id: tokenId, approval_info: this.approvalInfo(options.prev.spender, { createdAtTime: options.prev.createdAtTime }) }]
      : [];
    const take = opt(options.take === undefined ? undefined : BigInt(options.take));
    const r = await this.query('icrc37_get_token_approvals', (a) => a.icrc37_get_token_approvals(tokenId, prev as [] | [(typeof prev)[0]], take));
    return r.map((x) => fromApprovalInfo(x.approval_info, x.token_id));
  }

  /** `icrc37_get_collection_approvals`: `owner`'s active collection approvals, after `prev`'s spender. */
  async collectionApprovals(owner: AccountLike, options: { prev?: Approval; take?: number | bigint } = {}): Promise<Approval[]> {
    const prev: [] | [CandidApprovalInfo] = options.prev ? [this.approvalInfo(options.prev.spender, { createdAtTime: options.prev.createdAtTime })] : [];
    const take = opt(options.take === undefined ? undefined : BigInt(options.take));
    const r = await this.query('icrc37_get_collection_approvals', (a) => a.icrc37_get_collection_approvals(toAccount(owner), prev, take));
    return r.map((x) => fromApprovalInfo(x));
  }

  // --- ICRC-3 ---------------------------------------------------------------------------------

  /** `icrc3_get_blocks` for one range (at most 500 blocks per call), decoded. */
  async blocks(options: { start?: bigint | number; length?: bigint | number } = {}): Promise<BlocksPage> {
    const start = BigInt(options.start ?? 0);
    const length = BigInt(options.length ?? 100);
    const r = await this.query('icrc3_get_blocks', (a) => a.icrc3_get_blocks([{ start, length }]));
    return { logLength: r.log_length, blocks: r.blocks.map((b) => decodeBlock(b.id, b.block)) };
  }

  /** `icrc3_get_archives` (the log never archives: empty). */
  async archives(): Promise<Array<{ canisterId: string; start: bigint; end: bigint }>> {
    const r = await this.query('icrc3_get_archives', (a) => a.icrc3_get_archives({ from: [] }));
    return r.map((x) => ({ canisterId: x.canister_id.toText(), start: x.start, end: x.end }));
  }

  /** `icrc3_get_tip_certificate`: the IC's certificate of the log's tip (last block index and hash). */
  async tipCertificate(): Promise<DataCertificate | undefined> {
    return (await this.query('icrc3_get_tip_certificate', (a) => a.icrc3_get_tip_certificate()))[0];
  }

  /** `icrc3_supported_block_types`. */
  async supportedBlockTypes(): Promise<Array<{ blockType: string; url: string }>> {
    const r = await this.query('icrc3_supported_block_types', (a) => a.icrc3_supported_block_types());
    return r.map((x) => ({ blockType: x.block_type, url: x.url }));
  }

  // --- Ownership, checked against the IC -------------------------------------------------------

  private async platformControllers(): Promise<string[]> {
    if (this.platform) return this.platform;
    const stats = await this.query('stats', (a) => a.stats());
    return stats.registrars.map((p) => p.toText());
  }

  /**
   * Does the ICRC-7 holder of `token` verifiably own its video canister? Reads the video's
   * controllers and module hash from the IC's certified state (`read_state`
   * `/canister/<id>/controllers`, verified against the agent's root key) and the owner from the
   * video's certified `/metadata.json`, and checks: the holder is a controller, the controllers
   * are within {holder, the video, the platform's spawn canisters}, and the certified metadata
   * owner is the holder (and the holder controls the canister: `control` is `owner`).
   * `expectedModuleHash` (hex or bytes, e.g. the spawn's `video_wasm_info`) is checked too.
   * Certification failures throw `CertificationError`; ownership problems are in the report.
   */
  async verifyOwnership(token: TokenRef, options: { expectedModuleHash?: string | Uint8Array } = {}): Promise<OwnershipReport> {
    const tokenId = toTokenId(token);
    const videoId = videoOfToken(tokenId);
    const [holder, platform, info, meta] = await Promise.all([
      this.ownerOf(tokenId),
      this.platformControllers(),
      guard({ canisterId: videoId, method: 'read_state' }, () => readCanisterInfo(this.agent, videoId)),
      this.certifiedMetadata(videoId),
    ]);
    const problems = ownershipProblems({
      tokenId,
      videoId,
      collection: this.indexId.toText(),
      holder,
      controllers: info.controllers,
      moduleHash: info.moduleHash,
      metadataOwner: meta.owner,
      control: meta.control,
      platform,
      expectedModuleHash: options.expectedModuleHash,
    });
    return {
      tokenId,
      videoId,
      holder,
      controllers: info.controllers,
      moduleHash: info.moduleHash,
      metadataOwner: meta.owner,
      control: meta.control,
      platform,
      verified: problems.length === 0,
      problems,
    };
  }

  private async certifiedMetadata(videoId: string): Promise<CertifiedMetadata> {
    const video = Actor.createActor<VideoService>(videoIdl, { agent: this.agent, canisterId: Principal.fromText(videoId) });
    const request = metadataRequest();
    const response = await withRetry(() => guard({ canisterId: videoId, method: 'http_request' }, () => video.http_request(request)), {
      policy: this.retry,
    });
    return verifyMetadataAnswer(videoId, request, response, { rootKey: this.agent.rootKey, verifier: this.responseVerifier });
  }
}
