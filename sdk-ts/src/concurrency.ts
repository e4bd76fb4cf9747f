// A bounded worker pool over a lazily pulled (possibly async) sequence: at most `concurrency`
// tasks run at once and the next item is pulled only when a worker is free, so a stream source
// holds at most `concurrency` (+1 being read) chunks in memory.
import { AbortError } from './errors.js';

/**
 * Runs `worker` on every item with at most `concurrency` in flight. The first failure stops
 * pulling new items; the pool then waits for the tasks already running and throws that first
 * failure. Aborting rejects at once with `AbortError`: tasks already started finish in the
 * background (their results are ignored), and the error's `settled` promise resolves when they
 * all have and the source is released.
 */
export async function runPool<T>(
  items: Iterable<T> | AsyncIterable<T>,
  concurrency: number,
  worker: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be an integer >= 1, got ${concurrency}`);
  if (signal?.aborted) throw new AbortError(signal.reason, Promise.resolve());
  const it: Iterator<T> | AsyncIterator<T> =
    Symbol.asyncIterator in Object(items)
      ? (items as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (items as Iterable<T>)[Symbol.iterator]();
  let failed = false;
  let firstError: unknown;
  let pulling: Promise<IteratorResult<T>> | null = null;

  // Pulls are serialised: an async generator must not be re-entered.
  const next = async (): Promise<IteratorResult<T>> => {
    while (pulling) await pulling.catch(() => undefined);
    const p = Promise.resolve(it.next());
    pulling = p;
    try {
      return await p;
    } finally {
      pulling = null;
    }
  };

  const run = async (): Promise<void> => {
    while (!failed) {
      let r: IteratorResult<T>;
      try {
        r = await next();
      } catch (err) {
        if (!failed) {
          failed = true;
          firstError = err;
        }
        return;
      }
      if (r.done || failed) return;
      try {
        await worker(r.value);
      } catch (err) {
        if (!failed) {
          failed = true;
          firstError = err;
        }
        return;
      }
    }
  };

  const all = Promise.all(Array.from({ length: concurrency }, run));
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<void>((resolve) => {
    if (!signal) return;
    onAbort = () => {
      failed = true;
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  // Until every task has finished, or at once on abort. `all` never rejects (`run` catches).
  await Promise.race([all, aborted]);
  if (onAbort) signal!.removeEventListener('abort', onAbort);
  let released: Promise<unknown> = Promise.resolve();
  if (failed) {
    // Release the source (closes a Node stream / web stream reader).
    released = Promise.resolve(it.return?.()).catch(() => undefined);
  }
  if (signal?.aborted) {
    // `run` never rejects: `all` resolves once every started task has finished.
    throw new AbortError(
      signal.reason,
      Promise.all([all, released]).then(() => undefined),
    );
  }
  if (failed) throw firstError;
}
