// Download by canister queries (`get_chunk`), chunk by chunk, with a bounded prefetch window and
// verification:
// - every chunk must have the length the grid says (no silent truncation);
// - every chunk is hashed on arrival and compared, *before it is delivered*, with its expected
//   SHA-256: the caller's (`expectedChunkDigests`, e.g. `UploadResult.chunkDigests`) when given,
//   else the digest the canister stored when `put_chunk` verified it (`chunk_digests` query).
//   Those digests are fetched a page at a time as the download advances (a page covers up to
//   10,000 chunks: the first before anything is delivered, the next ones alongside the chunk
//   prefetch), never all up front, so a huge video costs neither a long wait nor the whole list in
//   memory;
// - the digest list itself must be consistent with the published file digest (see `fileDigest`):
//   the caller's list is checked before the first chunk is fetched, the canister's as soon as its
//   last page has arrived — for a video whose digests fit in one page (10,000 chunks, 20 GB with
//   the default chunk size) that is before anything is delivered. A missing (`null`) or
//   wrong-length digest of a Ready video, or a page that does not line up, is an `IntegrityError`;
// - the verified chunk digests are combined into the file digest and compared with the canister's
//   `metadata().digest` before the stream closes: a mismatch errors the stream instead of ending
//   it normally, so a consumer that reads to the end never accepts a corrupt file silently;
// - `metadata()` and `chunk_digests` are plain queries that one replica answers, so a malicious
//   replica could serve a fake file with consistent digests. When the transport offers it
//   (`VideoReadApi.certifiedMetadata`, as `CanvidClient` does) the file digest and the grid are
//   first checked against the canister's certified `/metadata.json` (HTTP certification v2,
//   verified against the IC root key), so every check above ends at a certified digest.
import type { ChunkDigests, VideoMetadata } from './bindings/video.did.js';
import { concatBytes, equalBytes, fileDigest, sha256, toHex } from './bytes.js';
import type { CertifiedMetadata } from './certified.js';
import { chunkCount, chunkRange } from './chunking.js';
import { AbortError, IntegrityError, NotReadyError, UsageError } from './errors.js';
import { type RetryPolicy, abortable, retryPolicy, withRetry } from './retry.js';

/** The calls a download makes on a video canister (errors already mapped to `CanvidError`). */
export interface VideoReadApi {
  metadata(): Promise<VideoMetadata>;
  getChunk(index: number): Promise<Uint8Array>;
  /** The `chunk_digests` query: stored SHA-256 of chunks `start..`, at most `limit` (canister default: 10,000). */
  chunkDigests(start: number, limit?: number): Promise<ChunkDigests>;
  /**
   * The video's certified `/metadata.json`, verified (throws `CertificationError` otherwise).
   * When present, a download checks `metadata()`'s digest and grid against it before anything
   * else.
   */
  certifiedMetadata?(): Promise<CertifiedMetadata>;
}

export interface DownloadOptions {
  signal?: AbortSignal;
  /** Chunks fetched ahead of the consumer. Default 4. */
  prefetch?: number;
  retry?: Partial<RetryPolicy>;
  /**
   * SHA-256 of each chunk (e.g. `UploadResult.chunkDigests`, saved at upload). When given they
   * win: each chunk is checked against them before it is delivered, the list against the
   * published file digest before the first chunk is fetched, and the canister's `chunk_digests`
   * is not asked. Default: the canister's `chunk_digests`, fetched page by page.
   */
  expectedChunkDigests?: readonly Uint8Array[];
  /** Skip every digest check (the chunk lengths are still checked). Not recommended. Default false. */
  skipVerification?: boolean;
  /**
   * Check the file digest against the canister's certified `/metadata.json` (when the transport
   * offers it; `CanvidClient` does). Default true. `false` trusts the `metadata()` query's
   * digest, which one replica answers: only for a replica you trust (e.g. your own).
   */
  certifiedDigest?: boolean;
  /** Called after each delivered chunk. */
  onProgress?: (p: { bytesReceived: number; totalBytes: number; chunksReceived: number; chunkCount: number }) => void;
}

/** A page of the chunk digests a video canister stored (`chunk_digests`), checked for shape. */
export interface ChunkDigestPage {
  /** Index of the chunk `digests[0]` belongs to. */
  start: number;
  /** Chunks in the video. */
  chunkCount: number;
  /** SHA-256 (32 bytes) of chunks `start`, `start + 1`, ...; `null` for a chunk not uploaded yet. */
  digests: (Uint8Array | null)[];
  /** `start` of the next page; `undefined` when this page reaches the last chunk. */
  next?: number;
}

const NONE = new Uint8Array();

/**
 * Checks a `chunk_digests` answer against the request (`start`) and against itself — the page
 * starts where asked, is not empty unless `start` is the chunk count, stays inside the video,
 * `next` continues right after it, every digest present is 32 bytes — and converts it. Throws
 * `IntegrityError` otherwise (`index` set for a bad digest).
 */
export function toDigestPage(videoId: string, start: number, raw: ChunkDigests): ChunkDigestPage {
  const bad = (what: string, index?: number) =>
    new IntegrityError(`video ${videoId}: chunk_digests from ${start}: ${what}`, NONE, NONE, index);
  const count = raw.chunk_count;
  const end = raw.start + raw.digests.length;
  if (raw.start !== start) throw bad(`the page starts at ${raw.start}`);
  if (end > count) throw bad(`the page ends at ${end}, beyond the ${count} chunks`);
  if (raw.digests.length === 0 && start < count) throw bad('empty page');
  const next = raw.next.length ? raw.next[0]! : undefined;
  if (end < count ? next !== end : next !== undefined) throw bad(`next is ${next ?? 'absent'} after a page ending at ${end} of ${count}`);
  const digests = raw.digests.map((d, k) => {
    if (d.length === 0) return null;
    if (d[0]!.length !== 32) throw bad(`the digest of chunk ${start + k} is ${d[0]!.length} bytes, not 32`, start + k);
    return d[0]!;
  });
  return { start, chunkCount: count, digests, next };
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
 * order). Each chunk is verified before it is delivered (see `DownloadOptions.expectedChunkDigests`).
 * Errors with `IntegrityError` on a bad chunk, digest list or file digest, `AbortError` on abort.
 */
export function downloadStream(videoId: string, api: VideoReadApi, options: DownloadOptions = {}): ReadableStream<Uint8Array> {
  const policy = retryPolicy(options.retry);
  const prefetch = options.prefetch ?? 4;
  if (!Number.isInteger(prefetch) || prefetch < 1) throw new UsageError(`prefetch must be an integer >= 1, got ${prefetch}`);
  const { signal } = options;
  const call = <T>(f: () => Promise<T>) => withRetry(f, { policy, signal });
  const verify = !options.skipVerification;
  const expected = options.expectedChunkDigests;
  const useCanister = verify && !expected;

  let grid: ReturnType<typeof readyGrid> | undefined;
  let nextToFetch = 0;
  let nextToDeliver = 0;
  let received = 0;
  const inFlight = new Map<number, Promise<Uint8Array>>();
  // Digests of the chunks delivered so far (each verified), for the file digest at the end.
  const digests: Uint8Array[] = [];

  // The canister's digests of the chunks not delivered yet: [nextToDeliver, digestEnd) are in
  // `stored`; delivered ones are dropped (their digest is then in `digests`, equal to it).
  const stored = new Map<number, Uint8Array>();
  let digestEnd = 0;
  let pageInFlight: Promise<void> | undefined;

  // Fetches the page starting at `digestEnd` (one at a time). A failed page stays in
  // `pageInFlight` so that whoever waits for it next gets the error.
  const loadPage = (): Promise<void> => {
    if (pageInFlight) return pageInFlight;
    const g = grid!;
    const start = digestEnd;
    const p = (async () => {
      const page = toDigestPage(videoId, start, await call(() => api.chunkDigests(start)));
      if (page.chunkCount !== g.count) {
        throw new IntegrityError(`video ${videoId}: chunk_digests reports ${page.chunkCount} chunks, metadata ${g.count}`, NONE, NONE);
      }
      page.digests.forEach((d, k) => {
        if (d === null) {
          throw new IntegrityError(`video ${videoId} is Ready but chunk_digests has no digest for chunk ${start + k}`, NONE, NONE, start + k);
        }
      });
      page.digests.forEach((d, k) => stored.set(start + k, d!));
      const end = start + page.digests.length;
      if (end === g.count) {
        // The whole list is known: delivered chunks (verified against it) + the rest.
        const all = digests.slice(0, nextToDeliver);
        for (let i = nextToDeliver; i < g.count; i++) all.push(stored.get(i)!);
        const combined = await fileDigest(all);
        if (!equalBytes(combined, g.digest)) {
          throw new IntegrityError(
            `video ${videoId}: the canister's chunk digests combine to ${toHex(combined)}, not its published file digest ${toHex(g.digest)}`,
            g.digest,
            combined,
          );
        }
      }
      digestEnd = end;
      pageInFlight = undefined;
    })();
    p.catch(() => undefined); // handled by whoever waits for it
    pageInFlight = p;
    return p;
  };
  /** The canister's digest of chunk `i`, fetching pages up to it. */
  const storedDigest = async (i: number): Promise<Uint8Array> => {
    while (digestEnd <= i) await abortable(loadPage(), signal);
    return stored.get(i)!;
  };

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
    // The next digest page as soon as the chunk window reaches past the known digests.
    if (useCanister && grid && nextToFetch > digestEnd && digestEnd < grid.count) loadPage();
  };

  return new ReadableStream<Uint8Array>(
    {
      async start() {
        const g = (grid = readyGrid(videoId, await call(() => api.metadata())));
        if (verify && options.certifiedDigest !== false && api.certifiedMetadata) {
          const c = await call(() => api.certifiedMetadata!());
          if (!c.digest || !equalBytes(c.digest, g.digest)) {
            throw new IntegrityError(
              `video ${videoId}: metadata() says the file digest is ${toHex(g.digest)}, the certified /metadata.json ${c.digest ? toHex(c.digest) : `has none (status ${c.status})`}`,
              c.digest ?? NONE,
              g.digest,
            );
          }
          if (c.size !== g.size || c.chunkSize !== g.chunkSize || c.chunkCount !== g.count) {
            throw new IntegrityError(
              `video ${videoId}: metadata() gives ${g.size} bytes in ${g.count} chunks of ${g.chunkSize}, the certified /metadata.json ${c.size} in ${c.chunkCount} of ${c.chunkSize}`,
              NONE,
              NONE,
            );
          }
        }
        if (expected && expected.length !== g.count) {
          throw new UsageError(`expectedChunkDigests has ${expected.length} entries, the video ${g.count} chunks`);
        }
        if (verify && expected) {
          const combined = await fileDigest(expected);
          if (!equalBytes(combined, g.digest)) {
            throw new IntegrityError(
              `video ${videoId}: expectedChunkDigests combine to ${toHex(combined)}, not the published file digest ${toHex(g.digest)}`,
              g.digest,
              combined,
            );
          }
        }
        // The first page before anything is delivered (and with it, for a video of at most one
        // page, the check of the whole list against the file digest).
        if (useCanister) await storedDigest(0);
      },
      async pull(controller) {
        if (signal?.aborted) throw new AbortError(signal.reason);
        const g = grid!;
        if (nextToDeliver >= g.count) {
          if (verify) {
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
        if (verify) {
          const [d, want] = await Promise.all([sha256(data), expected ? expected[i]! : storedDigest(i)]);
          if (!equalBytes(d, want)) {
            const source = expected ? 'expectedChunkDigests' : "the canister's chunk_digests";
            throw new IntegrityError(`video ${videoId}: chunk ${i} hashes to ${toHex(d)}, ${source} says ${toHex(want)}`, want, d, i);
          }
          digests.push(d);
          stored.delete(i);
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
