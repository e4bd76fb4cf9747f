// Typed errors. Every failure the SDK reports is a `CanvidError`; the subclass says what went
// wrong and carries the canister's own reason:
//
// - `CanisterError` subclasses: the canister answered `Err(Error)` (the candid `Error` variant
//   shared by the video, spawn and index canisters), one class per variant.
// - `NotAuthorizedError` also covers the IC's `inspect_message` refusal (reject IC0406), which
//   the canvid canisters use to turn away unauthorised ingress before it costs them cycles.
// - `RejectedError`: the IC rejected the call for another reason (trap, unknown method, a
//   stopped or missing canister...); `transient` when the reject code says "try again".
// - `NetworkError`: the request did not get an answer (fetch failed, HTTP 5xx/429, timeout).
// - `IntegrityError`: bytes did not hash to the digest they must have.
// - `CertificationError`: an answer that must be certified by the IC did not verify.
// - `TransferVerificationError`: after a transfer, the certified controllers or module hash of
//   the video canister are not what they must be.
// - `AbortError`: the caller's `AbortSignal` fired.
import type { Principal } from '@icp-sdk/core/principal';
import { AgentError, ErrorKindEnum } from '@icp-sdk/core/agent';
import type { Error as CandidError } from './bindings/video.did.js';

export type { CandidError };

/** Where a call went: filled in for errors that come from a canister call. */
export interface CallSite {
  canisterId?: string;
  method?: string;
}

/** Root of every error the SDK throws. */
export class CanvidError extends Error {
  override name = 'CanvidError';
  /** Canister the failing call went to, when there was one. */
  canisterId?: string;
  /** Method of the failing call, when there was one. */
  method?: string;
  /**
   * The video canister of an `upload` that failed after the canister was created: pass it to
   * `upload(..., { resume: videoId })` to continue where it stopped.
   */
  videoId?: string;
  /** Whether retrying the same request later may succeed. */
  readonly transient: boolean;

  constructor(message: string, options: { cause?: unknown; transient?: boolean; site?: CallSite } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.transient = options.transient ?? false;
    this.canisterId = options.site?.canisterId;
    this.method = options.site?.method;
  }
}

/** The canister answered `Err(e)`: `kind` is the variant name, `reason` its human-readable text. */
export class CanisterError extends CanvidError {
  override name = 'CanisterError';
  /** Name of the candid `Error` variant, e.g. `"NotAuthorized"`. */
  readonly kind: CandidErrorKind;
  /** The variant's fields exactly as the canister sent them. */
  readonly details: unknown;
  /** The canister's reason (its `reason` / `what` field, or a description of the fields). */
  readonly reason: string;

  constructor(kind: CandidErrorKind, details: unknown, reason: string, options: { site?: CallSite; transient?: boolean } = {}) {
    super(`${kind}: ${reason}${siteSuffix(options.site)}`, options);
    this.kind = kind;
    this.details = details;
    this.reason = reason;
  }
}

/** Names of the candid `Error` variants. */
export type CandidErrorKind = CandidError extends infer E ? (E extends Record<infer K, unknown> ? K & string : never) : never;

function siteSuffix(site?: CallSite): string {
  if (!site?.method) return '';
  return ` (${site.method}${site.canisterId ? ` on ${site.canisterId}` : ''})`;
}

/** `AlreadyFinished`: the upload is finished; the content is immutable. */
export class AlreadyFinishedError extends CanisterError {
  override name = 'AlreadyFinishedError';
}
/** `CallFailed`: a call the canister made to another canister failed. */
export class CallFailedError extends CanisterError {
  override name = 'CallFailedError';
  declare readonly details: { method: string; target: Principal; reason: string };
}
/** `WrongDigest`: a chunk (`index` set) or the file (`index` null) does not hash to the declared digest. */
export class WrongDigestError extends CanisterError {
  override name = 'WrongDigestError';
  declare readonly details: { actual: Uint8Array; expected: Uint8Array; index: [] | [number] };
}
/** `Busy`: another operation on the same object is in progress; retried automatically. */
export class BusyError extends CanisterError {
  override name = 'BusyError';
}
/** `TooLarge`: the request exceeds `limit` bytes. */
export class TooLargeError extends CanisterError {
  override name = 'TooLargeError';
  declare readonly details: { size: bigint; limit: bigint };
}
/** `NotReady`: nothing declared yet, or the video is not finished (not public yet). */
export class NotReadyError extends CanisterError {
  override name = 'NotReadyError';
}
/** `NotFound`: the video, chunk or canister asked for does not exist. */
export class NotFoundError extends CanisterError {
  override name = 'NotFoundError';
}
/** `InsufficientCycles`: the quota or pool cannot pay; nothing was created. */
export class InsufficientCyclesError extends CanisterError {
  override name = 'InsufficientCyclesError';
  declare readonly details: { available: bigint; required: bigint };
}
/**
 * The caller may not do this: the canister's `NotAuthorized { caller, reason }`, or the IC's
 * `inspect_message` refusal (reject error code IC0406; then `details` is `null` and `reason`
 * is the reject message).
 */
export class NotAuthorizedError extends CanisterError {
  override name = 'NotAuthorizedError';
  /** The caller the canister refused, when it said so. */
  get caller(): Principal | undefined {
    return (this.details as { caller?: Principal } | null)?.caller;
  }
}
/** `InvalidArgument`: a field out of range or inconsistent with another. */
export class InvalidArgumentError extends CanisterError {
  override name = 'InvalidArgumentError';
}
/** `WrongChunkSize`: a chunk's length does not match the declared sizes. */
export class WrongChunkSizeError extends CanisterError {
  override name = 'WrongChunkSizeError';
}
/** `ChunkOutOfRange`: a chunk index outside `0..chunk_count`. */
export class ChunkOutOfRangeError extends CanisterError {
  override name = 'ChunkOutOfRangeError';
}
/** `Incomplete`: `finish_upload` while chunks are missing. */
export class IncompleteError extends CanisterError {
  override name = 'IncompleteError';
  declare readonly details: { missing_count: number; missing: Uint32Array | number[] };
}
/** `Conflict`: a state conflict (e.g. a different upload spec after chunks were stored). */
export class ConflictError extends CanisterError {
  override name = 'ConflictError';
}

/** The IC rejected the call (trap, missing method, stopped canister, ...), not the canister's `Err`. */
export class RejectedError extends CanvidError {
  override name = 'RejectedError';
  /** IC reject code: 1 SYS_FATAL, 2 SYS_TRANSIENT, 3 DESTINATION_INVALID, 4 CANISTER_REJECT, 5 CANISTER_ERROR. */
  readonly rejectCode: number;
  readonly rejectMessage: string;
  /** The IC's error code, e.g. `IC0503` (trap), when the replica sent one. */
  readonly errorCode?: string;
  constructor(rejectCode: number, rejectMessage: string, errorCode: string | undefined, options: { cause?: unknown; site?: CallSite } = {}) {
    super(`rejected (code ${rejectCode}${errorCode ? `, ${errorCode}` : ''}): ${rejectMessage}${siteSuffix(options.site)}`, {
      ...options,
      transient: rejectCode === 2,
    });
    this.rejectCode = rejectCode;
    this.rejectMessage = rejectMessage;
    this.errorCode = errorCode;
  }
}

/** The request got no usable answer: network failure, HTTP 5xx / 429 / 408, timeout. Transient. */
export class NetworkError extends CanvidError {
  override name = 'NetworkError';
  /** HTTP status when the boundary node / replica answered with an error status. */
  readonly status?: number;
  constructor(message: string, options: { cause?: unknown; status?: number; site?: CallSite; transient?: boolean } = {}) {
    super(message, { ...options, transient: options.transient ?? true });
    this.status = options.status;
  }
}

/** Bytes that do not hash to the digest they must have (download, or an upload receipt). */
export class IntegrityError extends CanvidError {
  override name = 'IntegrityError';
  /** Chunk index, or `undefined` for the whole-file digest. */
  readonly index?: number;
  readonly expected: Uint8Array;
  readonly actual: Uint8Array;
  constructor(message: string, expected: Uint8Array, actual: Uint8Array, index?: number) {
    super(message);
    this.expected = expected;
    this.actual = actual;
    this.index = index;
  }
}

/**
 * An answer that must carry the IC's certificate did not verify against the root key: the
 * video's certified `/metadata.json` (HTTP certification v2) a download takes the file digest
 * from, or a `read_state` certificate. Also thrown when there is nothing to verify with (the
 * agent has no root key) or the certified document is not what it must be. Never transient.
 */
export class CertificationError extends CanvidError {
  override name = 'CertificationError';
}

/**
 * After `change_owner` succeeded, the video canister's controllers or module hash read from the
 * IC's certified state (`read_state`) are not what they must be. **The transfer did happen**: the
 * new owner owns the video in the canister, but does not have the control over it they were
 * promised. Fields are principals as text and hashes as lower-case hex.
 */
export class TransferVerificationError extends CanvidError {
  override name = 'TransferVerificationError';
  /** What differs. */
  readonly problem: 'controllers' | 'module_hash';
  /** The controllers in the certified state. */
  readonly certifiedControllers: string[];
  /** The controllers `change_owner` returned. */
  readonly returnedControllers: string[];
  /** `{newOwner, video} ∪ keepControllers`, when `keepControllers` was given. */
  readonly expectedControllers?: string[];
  /** The certified module hash (`undefined`: the canister has no module). */
  readonly certifiedModuleHash?: string;
  /** `expectedModuleHash` as given. */
  readonly expectedModuleHash?: string;
  constructor(
    message: string,
    fields: {
      videoId: string;
      problem: 'controllers' | 'module_hash';
      certifiedControllers: string[];
      returnedControllers: string[];
      expectedControllers?: string[];
      certifiedModuleHash?: string;
      expectedModuleHash?: string;
    },
  ) {
    super(message, { site: { canisterId: fields.videoId, method: 'read_state' } });
    this.videoId = fields.videoId;
    this.problem = fields.problem;
    this.certifiedControllers = fields.certifiedControllers;
    this.returnedControllers = fields.returnedControllers;
    this.expectedControllers = fields.expectedControllers;
    this.certifiedModuleHash = fields.certifiedModuleHash;
    this.expectedModuleHash = fields.expectedModuleHash;
  }
}

/** A stored chunk that does not decrypt (wrong key, or bytes changed, swapped, truncated). */
export class DecryptionError extends CanvidError {
  override name = 'DecryptionError';
  /** The chunk's index. */
  readonly index: number;
  constructor(message: string, index: number, options: { cause?: unknown; videoId?: string } = {}) {
    super(message, { cause: options.cause });
    this.index = index;
    if (options.videoId) this.videoId = options.videoId;
  }
}

/**
 * `video_key`'s answer (end-to-end encrypted videos, docs/encryption.md) does not verify: the vetKey does not decrypt to a valid signature of the
 * input under the public key, or the context, input, key name or epoch is not the one asked for.
 */
export class KeyVerificationError extends CanvidError {
  override name = 'KeyVerificationError';
}

/** The operation was cancelled through its `AbortSignal`. `cause` is the signal's reason. */
export class AbortError extends CanvidError {
  override name = 'AbortError';
  /**
   * Resolves when every task the aborted operation had already started has finished (never
   * rejects). Aborting rejects at once, while tasks already started (an upload's chunk sends)
   * run on in the background; await this before looking at what reached the canister, e.g.
   * before resuming. Set by `runPool` and so by uploads; `undefined` where the SDK tracks no
   * running work.
   */
  settled?: Promise<void>;
  constructor(reason?: unknown, settled?: Promise<void>) {
    super(reason instanceof Error ? `aborted: ${reason.message}` : 'aborted', { cause: reason });
    if (settled) this.settled = settled;
  }
}

/** Invalid use of the SDK itself (bad option, unsupported input). Never transient. */
export class UsageError extends CanvidError {
  override name = 'UsageError';
}

/** The agent threw something the SDK does not recognise; `cause` is the original error. */
export class UnexpectedError extends CanvidError {
  override name = 'UnexpectedError';
}

const CANISTER_ERROR_CLASSES: Record<CandidErrorKind, typeof CanisterError> = {
  AlreadyFinished: AlreadyFinishedError,
  CallFailed: CallFailedError,
  WrongDigest: WrongDigestError,
  Busy: BusyError,
  TooLarge: TooLargeError,
  NotReady: NotReadyError,
  NotFound: NotFoundError,
  InsufficientCycles: InsufficientCyclesError,
  NotAuthorized: NotAuthorizedError,
  InvalidArgument: InvalidArgumentError,
  WrongChunkSize: WrongChunkSizeError,
  ChunkOutOfRange: ChunkOutOfRangeError,
  Incomplete: IncompleteError,
  Conflict: ConflictError,
};

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** A one-line description of a candid error variant's fields. */
export function describeCandidError(e: CandidError): string {
  if ('AlreadyFinished' in e) return 'the upload is finished and the video immutable';
  if ('CallFailed' in e) return `${e.CallFailed.method} on ${e.CallFailed.target.toText()} failed: ${e.CallFailed.reason}`;
  if ('WrongDigest' in e) {
    const d = e.WrongDigest;
    const what = d.index.length ? `chunk ${d.index[0]}` : 'file';
    return `${what} digest ${hex(d.actual)} != expected ${hex(d.expected)}`;
  }
  if ('Busy' in e) return e.Busy.reason;
  if ('TooLarge' in e) return `${e.TooLarge.size} bytes exceeds the limit of ${e.TooLarge.limit}`;
  if ('NotReady' in e) return e.NotReady.reason;
  if ('NotFound' in e) return `${e.NotFound.what} not found`;
  if ('InsufficientCycles' in e) {
    return `${e.InsufficientCycles.required} cycles required, ${e.InsufficientCycles.available} available`;
  }
  if ('NotAuthorized' in e) return `${e.NotAuthorized.caller.toText()}: ${e.NotAuthorized.reason}`;
  if ('InvalidArgument' in e) return e.InvalidArgument.reason;
  if ('WrongChunkSize' in e) {
    const d = e.WrongChunkSize;
    return `chunk ${d.index} is ${d.actual} bytes, expected ${d.expected}`;
  }
  if ('ChunkOutOfRange' in e) return `chunk ${e.ChunkOutOfRange.index} outside 0..${e.ChunkOutOfRange.chunk_count}`;
  if ('Incomplete' in e) return `${e.Incomplete.missing_count} chunks missing`;
  if ('Conflict' in e) return e.Conflict.reason;
  return JSON.stringify(e);
}

/** Turns the candid `Error` variant into its error class. */
export function fromCandidError(e: CandidError, site?: CallSite): CanisterError {
  const kind = Object.keys(e)[0] as CandidErrorKind;
  const Cls = CANISTER_ERROR_CLASSES[kind] ?? CanisterError;
  const details = (e as Record<string, unknown>)[kind];
  return new Cls(kind, details, describeCandidError(e), { site, transient: kind === 'Busy' });
}

/** Awaits `f()`, turning agent errors into typed `CanvidError`s. */
export async function guard<T>(site: CallSite, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw fromAgentError(err, site);
  }
}

/** Unwraps a candid `Result`: the `Ok` value, or throws the typed error for `Err`. */
export function unwrap<T>(r: { Ok: T } | { Err: CandidError }, site?: CallSite): T {
  if ('Err' in r) throw fromCandidError(r.Err, site);
  return r.Ok;
}

const TRANSIENT_HTTP = new Set([408, 425, 429, 500, 502, 503, 504]);

interface RejectLike {
  rejectCode: number;
  rejectMessage: string;
  rejectErrorCode?: string;
}

function isRejectCode(c: unknown): c is RejectLike {
  return typeof c === 'object' && c !== null && 'rejectCode' in c && 'rejectMessage' in c;
}

/**
 * Maps anything an agent call threw to a `CanvidError` (already-typed errors pass through).
 * Rejects with error code IC0406 (`inspect_message` refused the message) become
 * `NotAuthorizedError`.
 */
export function fromAgentError(err: unknown, site?: CallSite): CanvidError {
  if (err instanceof CanvidError) return err;
  if (err instanceof AgentError) {
    const code: unknown = err.cause?.code;
    if (isRejectCode(code)) {
      const errorCode = code.rejectErrorCode;
      if (errorCode === 'IC0406' || /\bIC0406\b/.test(code.rejectMessage)) {
        const e = new NotAuthorizedError('NotAuthorized', null, code.rejectMessage, { site });
        (e as { cause?: unknown }).cause = err;
        return e;
      }
      return new RejectedError(Number(code.rejectCode), code.rejectMessage, errorCode, { cause: err, site });
    }
    const codeName = (code as { name?: string } | undefined)?.name ?? '';
    if (codeName === 'HttpErrorCode') {
      const h = code as { status: number; statusText: string; bodyText?: string };
      // Some replicas answer an inspect_message refusal of a v2 call with an HTTP error whose
      // body names IC0406.
      if (h.bodyText && /\bIC0406\b/.test(h.bodyText)) {
        const e = new NotAuthorizedError('NotAuthorized', null, h.bodyText.trim(), { site });
        (e as { cause?: unknown }).cause = err;
        return e;
      }
      return new NetworkError(`HTTP ${h.status} ${h.statusText}: ${(h.bodyText ?? '').trim().slice(0, 300)}`, {
        cause: err,
        status: h.status,
        site,
        transient: TRANSIENT_HTTP.has(h.status),
      });
    }
    if (err.kind === ErrorKindEnum.Transport || codeName === 'HttpFetchErrorCode' || codeName === 'TimeoutWaitingForResponseErrorCode') {
      return new NetworkError(`network: ${err.message}`, { cause: err, site });
    }
    return new UnexpectedError(`${err.name}: ${err.message}`, { cause: err, site });
  }
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return new AbortError(err);
  }
  if (err instanceof TypeError && /fetch|network|socket|ECONN/i.test(err.message)) {
    return new NetworkError(`network: ${err.message}`, { cause: err, site });
  }
  return new UnexpectedError(err instanceof Error ? err.message : String(err), { cause: err, site });
}

/** Whether `err` is worth retrying: transient `CanvidError`s (Busy, network, SYS_TRANSIENT). */
export function isTransient(err: unknown): boolean {
  return err instanceof CanvidError && err.transient && !(err instanceof AbortError);
}
