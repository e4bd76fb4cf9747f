// The upload grid and the byte sources an upload reads from.
//
// Chunk i covers file bytes [i * chunkSize, min((i + 1) * chunkSize, size)): every chunk but the
// last is exactly chunkSize long and chunkCount = ceil(size / chunkSize) (candid/video.did,
// `UploadSpec`). The video canister refuses any other cut (`WrongChunkSize`).
import { UsageError } from './errors.js';

/** Largest chunk the video canister accepts (and the size that keeps HTTP serving certified). */
export const MAX_CHUNK_SIZE = 2_000_000;
/** Default upload chunk size: the largest, so HTTP answers are one chunk each (docs/http.md). */
export const DEFAULT_CHUNK_SIZE = MAX_CHUNK_SIZE;

export function chunkCount(size: number, chunkSize: number): number {
  checkGrid(size, chunkSize);
  return Math.ceil(size / chunkSize);
}

/** `[start, end)` of chunk `index`. */
export function chunkRange(size: number, chunkSize: number, index: number): [number, number] {
  const n = chunkCount(size, chunkSize);
  if (!Number.isInteger(index) || index < 0 || index >= n) throw new RangeError(`chunk ${index} outside 0..${n}`);
  const start = index * chunkSize;
  return [start, Math.min(start + chunkSize, size)];
}

export function checkGrid(size: number, chunkSize: number): void {
  if (!Number.isSafeInteger(size) || size < 1) throw new UsageError(`file size must be a positive integer, got ${size}`);
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new UsageError(`chunk size must be an integer in 1..=${MAX_CHUNK_SIZE}, got ${chunkSize}`);
  }
}

/** A source that can read any byte range (File, Blob, Uint8Array): read twice (hash, then send). */
export interface RandomAccessSource {
  readonly kind: 'random';
  readonly size: number;
  read(start: number, end: number): Promise<Uint8Array>;
}

/** A source read once, front to back (Node stream, web ReadableStream, async iterable). */
export interface SequentialSource {
  readonly kind: 'sequential';
  readonly size: number;
  /** The bytes in arbitrary pieces; may be iterated only once. */
  readonly pieces: AsyncIterable<Uint8Array>;
}

export type ByteSource = RandomAccessSource | SequentialSource;

/** What `upload` accepts. Node `Readable` streams are `AsyncIterable<Buffer>`. */
export type UploadInput =
  | Blob
  | Uint8Array
  | ArrayBuffer
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>;

function isBlob(x: unknown): x is Blob {
  return typeof Blob !== 'undefined' && x instanceof Blob;
}

function isWebStream(x: unknown): x is ReadableStream<Uint8Array> {
  return typeof ReadableStream !== 'undefined' && x instanceof ReadableStream;
}

function isAsyncIterable(x: unknown): x is AsyncIterable<Uint8Array> {
  return typeof x === 'object' && x !== null && typeof (x as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

export function blobSource(blob: Blob): RandomAccessSource {
  return {
    kind: 'random',
    size: blob.size,
    async read(start, end) {
      return new Uint8Array(await blob.slice(start, end).arrayBuffer());
    },
  };
}

export function bytesSource(bytes: Uint8Array): RandomAccessSource {
  return {
    kind: 'random',
    size: bytes.length,
    async read(start, end) {
      return bytes.subarray(start, end);
    },
  };
}

async function* webStreamPieces(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

function asPiece(p: unknown): Uint8Array {
  if (p instanceof Uint8Array) return p;
  if (p instanceof ArrayBuffer) return new Uint8Array(p);
  if (typeof p === 'string') throw new UsageError('the stream yields strings: open it without an encoding (bytes only)');
  throw new UsageError(`the stream yields ${Object.prototype.toString.call(p)}, not bytes`);
}

/**
 * Normalises an upload input. Streams need their total size up front (the canister is told the
 * size before the first chunk): pass `size`, or the stream is read into memory first.
 */
export async function toSource(input: UploadInput, size?: number): Promise<ByteSource> {
  if (input instanceof Uint8Array) return bytesSource(input);
  if (input instanceof ArrayBuffer) return bytesSource(new Uint8Array(input));
  if (isBlob(input)) return blobSource(input);
  let pieces: AsyncIterable<Uint8Array>;
  if (isWebStream(input)) pieces = webStreamPieces(input);
  else if (isAsyncIterable(input)) pieces = input;
  else throw new UsageError('upload input must be a File, Blob, Uint8Array, ArrayBuffer, ReadableStream or async iterable of bytes');
  if (size === undefined) {
    // No size: buffer the stream (bounded by the caller's memory; pass `size` for large files).
    const parts: Uint8Array[] = [];
    let n = 0;
    for await (const p of pieces) {
      const b = asPiece(p);
      parts.push(b);
      n += b.length;
    }
    const all = new Uint8Array(n);
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    return bytesSource(all);
  }
  if (!Number.isSafeInteger(size) || size < 1) throw new UsageError(`size must be a positive integer, got ${size}`);
  return { kind: 'sequential', size, pieces };
}

/**
 * Re-cuts a stream of arbitrary pieces into the upload grid: yields exactly
 * `ceil(size / chunkSize)` chunks. Fails (never truncates, never pads) when the stream holds more
 * or fewer than `size` bytes.
 */
export async function* rechunk(pieces: AsyncIterable<Uint8Array>, size: number, chunkSize: number): AsyncGenerator<Uint8Array> {
  checkGrid(size, chunkSize);
  let buf = new Uint8Array(Math.min(chunkSize, size));
  let fill = 0;
  let emitted = 0;
  for await (const raw of pieces) {
    let p = asPiece(raw);
    while (p.length > 0) {
      const want = Math.min(chunkSize, size - emitted) - fill;
      if (want <= 0) throw new UsageError(`the stream holds more than the declared ${size} bytes`);
      const take = Math.min(want, p.length);
      buf.set(p.subarray(0, take), fill);
      fill += take;
      p = p.subarray(take);
      if (fill === Math.min(chunkSize, size - emitted)) {
        const chunk = buf;
        emitted += fill;
        fill = 0;
        buf = new Uint8Array(Math.min(chunkSize, Math.max(size - emitted, 0)));
        yield chunk;
      }
    }
  }
  if (emitted !== size || fill !== 0) {
    throw new UsageError(`the stream ended after ${emitted + fill} bytes, ${size} were declared`);
  }
}
