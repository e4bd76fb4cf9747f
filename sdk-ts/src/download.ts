// Download by canister queries (`get_chunk`), chunk by chunk, with a bounded prefetch window and
// verification:
// - every chunk must have the length the grid says (no silent truncation);
// - every chunk is hashed on arrival and compared with the expected chunk digest when the caller
//   has the digests (`UploadResult.chunkDigests`, or saved elsewhere) — a bad chunk then errors
//   the stream before it is delivered;
// - the chunk digests are combined into the file digest and compared with the canister's
//   `metadata().digest` before the stream closes: a mismatch errors the stream instead of ending
//   it normally, so a consumer that reads to the end never accepts a corrupt file silently.
import type { VideoMetadata } from './bindings/video.did.js';
import { concatBytes, equalBytes, fileDigest, sha256, toHex } from './bytes.js';
import { chunkCount, chunkRange } from './chunking.js';
import { AbortError, IntegrityError, NotReadyError, UsageError } from './errors.js';
import { type RetryPolicy, abortable, retryPolicy, withRetry } from './retry.js';

/** The calls a download makes on a video canister (errors already mapped to `CanvidError`). */
export interface VideoReadApi {
  metadata(): Promise<VideoMetadata>;
  getChunk(index: number): Promise<Uint8Array>;
}

export interface DownloadOptions {
  signal?: AbortSignal;
  /** Chunks fetched ahead of the consumer. Default 4. */
  prefetch?: number;
  retry?: Partial<RetryPolicy>;
  /** SHA-256 of each chunk (e.g. `UploadResult.chunkDigests`): verified before a chunk is delivered. */
  expectedChunkDigests?: readonly Uint8Array[];
  /** Skip the digest checks (not recommended). Default false. */
  skipVerification?: boolean;
  /** Called after each delivered chunk. */
  onProgress?: (p: { bytesReceived: number; totalBytes: number; chunksReceived: number; chunkCount: number }) => void;
}

function statusOf(m: VideoMetadata): string {
  return Object.keys(m.status)[0]!;
}

/** Checks that a video is Ready and returns its grid. */
export function readyGrid(videoId: string, m: VideoMetadata): { size: number; chunkSize: number; count: number; digest: Uint8Array } {
  if (statusOf(m) !== 'Ready' || m.digest.length === 0) {
    throw new NotReadyError('NotReady', { reason: `status ${statusOf(m)}` }, `video ${videoId} is not Ready (status ${statusOf(m)})`);
  }
  const size = Number(m.size);
  const count = chunkCount(size, m.chunk_size);
  if (count !== m.chunk_count) throw new IntegrityError(`video ${videoId}: chunk_count ${m.chunk_count} != ceil(${size}/${m.chunk_size})`, new Uint8Array(), new Uint8Array());
  return { size, chunkSize: m.chunk_size, count, digest: m.digest[0]! };
}

/**
 * The video's bytes as a `ReadableStream` of its chunks (one `Uint8Array` per upload chunk, in
 * order). Errors with `IntegrityError` on a bad chunk or file digest, `AbortError` on abort.
 */
export function downloadStream(videoId: string, api: VideoReadApi, options: DownloadOptions = {}): ReadableStream<Uint8Array> {
  const policy = retryPolicy(options.retry);
  const prefetch = options.prefetch ?? 4;
  if (!Number.isInteger(prefetch) || prefetch < 1) throw new UsageError(`prefetch must be an integer >= 1, got ${prefetch}`);
  const { signal } = options;
  const call = <T>(f: () => Promise<T>) => withRetry(f, { policy, signal });

  let grid: ReturnType<typeof readyGrid> | undefined;
  let nextToFetch = 0;
  let nextToDeliver = 0;
  let received = 0;
  const inFlight = new Map<number, Promise<Uint8Array>>();
  const digests: Uint8Array[] = [];

  const fetchChunk = (i: number): Promise<Uint8Array> => {
    const p = call(() => api.getChunk(i));
    p.catch(() => undefined); // handled when delivered
    return p;
  };
  const fill = () => {
    while (grid && nextToFetch < grid.count && inFlight.size < prefetch) {
      inFlight.set(nextToFetch, fetchChunk(nextToFetch));
      nextToFetch++;
    }
  };

  return new ReadableStream<Uint8Array>(
    {
      async start() {
        grid = readyGrid(videoId, await call(() => api.metadata()));
        if (options.expectedChunkDigests && options.expectedChunkDigests.length !== grid.count) {
          throw new UsageError(`expectedChunkDigests has ${options.expectedChunkDigests.length} entries, the video ${grid.count} chunks`);
        }
      },
      async pull(controller) {
        if (signal?.aborted) throw new AbortError(signal.reason);
        const g = grid!;
        if (nextToDeliver >= g.count) {
          if (!options.skipVerification) {
            const actual = await fileDigest(digests);
            if (!equalBytes(actual, g.digest)) {
              throw new IntegrityError(`video ${videoId}: file digest ${toHex(actual)} != published ${toHex(g.digest)}`, g.digest, actual);
            }
          }
          controller.close();
          return;
        }
        fill();
        const i = nextToDeliver;
        const data = await abortable(inFlight.get(i)!, signal);
        inFlight.delete(i);
        const [s, e] = chunkRange(g.size, g.chunkSize, i);
        if (data.length !== e - s) {
          throw new IntegrityError(`video ${videoId}: chunk ${i} is ${data.length} bytes, expected ${e - s}`, new Uint8Array(), new Uint8Array(), i);
        }
        if (!options.skipVerification) {
          const d = await sha256(data);
          const want = options.expectedChunkDigests?.[i];
          if (want && !equalBytes(d, want)) {
            throw new IntegrityError(`video ${videoId}: chunk ${i} hashes to ${toHex(d)}, expected ${toHex(want)}`, want, d, i);
          }
          digests.push(d);
        }
        nextToDeliver++;
        received += data.length;
        fill();
        controller.enqueue(data);
        options.onProgress?.({ bytesReceived: received, totalBytes: g.size, chunksReceived: nextToDeliver, chunkCount: g.count });
      },
      cancel() {
        inFlight.clear();
        nextToFetch = Number.MAX_SAFE_INTEGER;
      },
    },
    { highWaterMark: 0 },
  );
}

/** The whole video in memory, verified like `downloadStream`. */
export async function downloadAll(videoId: string, api: VideoReadApi, options: DownloadOptions = {}): Promise<Uint8Array> {
  const reader = downloadStream(videoId, api, options).getReader();
  const parts: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  return concatBytes(parts);
}
