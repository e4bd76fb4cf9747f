// Retries with exponential backoff and jitter, for transient failures only.
//
// Delay before retry n (n = 1, 2, ...):
//   cap   = min(maxDelayMs, baseDelayMs * factor^(n-1))
//   delay = cap * (1 - jitter * random())        random() in [0, 1)
// With the defaults (250 ms, x2, 10 s cap, jitter 0.5) the waits are 125-250 ms, 250-500 ms,
// 0.5-1 s, ... so that many clients that failed together do not retry in lockstep, while each
// wait stays at least half its nominal value (full jitter would allow ~0 ms retries hammering an
// overloaded boundary node).
import { AbortError, isTransient } from './errors.js';

export interface RetryPolicy {
  /** Retries after the first attempt (0 = no retry). Default 5. */
  retries: number;
  /** Nominal delay before the first retry. Default 250 ms. */
  baseDelayMs: number;
  /** Growth per retry. Default 2. */
  factor: number;
  /** Upper bound of the nominal delay. Default 10,000 ms. */
  maxDelayMs: number;
  /** Fraction of the delay that is randomised, 0..1. Default 0.5. */
  jitter: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  retries: 5,
  baseDelayMs: 250,
  factor: 2,
  maxDelayMs: 10_000,
  jitter: 0.5,
};

/** Completes a partial policy with the defaults and checks the ranges. */
export function retryPolicy(p: Partial<RetryPolicy> | undefined): RetryPolicy {
  const r = { ...DEFAULT_RETRY, ...(p ?? {}) };
  if (!Number.isInteger(r.retries) || r.retries < 0) throw new RangeError(`retry.retries must be an integer >= 0, got ${r.retries}`);
  if (!(r.baseDelayMs >= 0) || !(r.maxDelayMs >= 0)) throw new RangeError('retry delays must be >= 0');
  if (!(r.factor >= 1)) throw new RangeError(`retry.factor must be >= 1, got ${r.factor}`);
  if (!(r.jitter >= 0 && r.jitter <= 1)) throw new RangeError(`retry.jitter must be in [0, 1], got ${r.jitter}`);
  return r;
}

/** The wait before retry number `retry` (1-based), given a random number in [0, 1). */
export function backoffDelay(policy: RetryPolicy, retry: number, random: number): number {
  const nominal = Math.min(policy.maxDelayMs, policy.baseDelayMs * Math.pow(policy.factor, retry - 1));
  return nominal * (1 - policy.jitter * random);
}

/** A promise that resolves after `ms`, or rejects with `AbortError` when `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError(signal.reason));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError(signal!.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Throws `AbortError` if the signal has fired. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortError(signal.reason);
}

export interface RetryContext {
  policy: RetryPolicy;
  signal?: AbortSignal;
  /** Which errors to retry; default `isTransient` (Busy, network errors, SYS_TRANSIENT rejects). */
  shouldRetry?: (err: unknown) => boolean;
  /** Called before each wait; for logging and tests. */
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
  /** Injected for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

/**
 * Runs `fn` until it succeeds, a non-transient error occurs, or the retries are used up (then
 * the last error is thrown). Aborting stops both the attempts and the waits.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, ctx: RetryContext): Promise<T> {
  const shouldRetry = ctx.shouldRetry ?? isTransient;
  const wait = ctx.sleep ?? sleep;
  const random = ctx.random ?? Math.random;
  for (let attempt = 0; ; attempt++) {
    throwIfAborted(ctx.signal);
    try {
      return await fn(attempt);
    } catch (err) {
      if (ctx.signal?.aborted) throw new AbortError(ctx.signal.reason);
      if (attempt >= ctx.policy.retries || !shouldRetry(err)) throw err;
      const delayMs = backoffDelay(ctx.policy, attempt + 1, random());
      ctx.onRetry?.({ attempt: attempt + 1, delayMs, error: err });
      await wait(delayMs, ctx.signal);
    }
  }
}

/** `p`, or an `AbortError` as soon as `signal` fires (the underlying work is not cancelled). */
export function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new AbortError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
