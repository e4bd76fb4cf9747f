// In-memory stand-ins for the spawn and video canisters, following the rules of
// docs/video-canister.md (begin/put/missing/finish/reset, digests, pagination, who may read before
// Ready), with fault injection: scripted failures per method, latency, corrupt chunks and digest
// lists, and a record of every call and of the concurrency seen.
import { createHash } from 'node:crypto';
import { Principal } from '@icp-sdk/core/principal';
import type {
  FileInfo,
  FilePage,
  ChunkDigests,
  ChunkReceipt,
  HttpRequest,
  HttpResponse,
  MissingChunks,
  UploadSpec,
  VideoMetadata,
  _SERVICE as VideoService,
} from '../../src/bindings/video.did.js';
import type { ResponseVerifier } from '../../src/certified.js';
import { CanisterError, fromCandidError, type CandidError } from '../../src/errors.js';
import type { CreateVideoRequest, UploadTransport, VideoUploadApi } from '../../src/upload.js';
import type { VideoReadApi } from '../../src/download.js';
import type { VideoFileReadApi, VideoFilesApi } from '../../src/files.js';

/** A named file in the fake: its declaration and the chunks stored. */
export interface FakeFile {
  spec: UploadSpec;
  chunks: Map<number, Uint8Array>;
  digest?: Uint8Array;
}

export const OWNER = Principal.fromText('2vxsx-fae');
/** Who calls when `FakeVideo.caller` is `'stranger'`. */
export const STRANGER = Principal.fromText('aaaaa-aa');

/** Node's own SHA-256 (independent of the SDK's WebCrypto path). */
export function nodeSha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

export function nodeFileDigest(bytes: Uint8Array, chunkSize: number): Uint8Array {
  const h = createHash('sha256');
  for (let s = 0; s < bytes.length; s += chunkSize) h.update(nodeSha256(bytes.subarray(s, s + chunkSize)));
  return new Uint8Array(h.digest());
}

export function randomBytes(n: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

type Method =
  | 'metadata'
  | 'begin_upload'
  | 'put_chunk'
  | 'missing_chunks'
  | 'finish_upload'
  | 'get_chunk'
  | 'chunk_digests'
  | 'reset_upload'
  | 'http_request'
  | 'create_video'
  | 'begin_files'
  | 'files'
  | 'get_file_chunk';

const eq = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

export class FakeVideo implements VideoUploadApi, VideoReadApi, VideoFilesApi, VideoFileReadApi {
  spec?: UploadSpec;
  /** Named files in declaration order. */
  named = new Map<string, FakeFile>();
  /**
   * The canister's per-file upload window: a chunk of a file declared more than `fileWindow`
   * files after the first incomplete one is refused with Busy (retry later). Unlimited by default.
   */
  fileWindow = Infinity;
  /** Page size limit of files (to exercise pagination). */
  filePage = 500;
  /** A `begin_files` declaring more new bytes than this (and more than one file) is `Busy`. */
  maxDeclareBytes = Infinity;
  /** Sizes (files, new bytes) of the `begin_files` calls that were accepted. */
  declared: Array<{ files: number; bytes: number }> = [];
  chunks = new Map<number, Uint8Array>();
  ready = false;
  digest?: Uint8Array;
  calls: Array<{ method: Method; index?: number }> = [];
  inFlight = 0;
  maxInFlight = 0;
  latencyMs = 0;
  /** Scripted failures: method -> queue of errors thrown by the next calls (before any effect). */
  failures = new Map<Method, unknown[]>();
  /** Failures thrown after the call took effect (a lost reply). */
  lostReplies = new Map<Method, number>();
  /** Called on every put_chunk before it takes effect (e.g. to abort). */
  onPut?: (index: number) => void;
  /** Corrupts what get_chunk returns for this index. */
  corruptChunk?: number;
  /** Page size limit of missing_chunks (to exercise pagination). */
  missingPage = 10_000;
  /** Page size limit of chunk_digests (the canister's MAX_DIGEST_PAGE; small to exercise paging). */
  digestPage = 10_000;
  /**
   * A forged chunk: get_chunk returns it altered and chunk_digests the digest of the altered
   * bytes, so each chunk matches its listed digest but the list no longer matches the file digest.
   */
  forgedChunk?: number;
  /** What chunk_digests answers for these chunks instead of the stored digest (`[]` = null). */
  digestOverride = new Map<number, [] | [Uint8Array]>();
  /**
   * Who calls: the owner (default), or a stranger, who may read content only once the video is
   * Ready (else NotReady, as the canister's ReadContent rule) and may not reset the upload.
   */
  caller: 'owner' | 'stranger' = 'owner';
  /** What the (uncertified) `metadata` query reports as the file digest instead of the real one: a lying replica. */
  lyingDigest?: Uint8Array;
  /** Rewrites the certified `/metadata.json` body after it was certified (tampering in transit). */
  tamperMetadataBody?: (body: string) => string;

  constructor(readonly id: string, readonly title = 't') {}

  failNext(method: Method, ...errors: unknown[]): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), ...errors]);
  }

  private async enter<T>(method: Method, index: number | undefined, f: () => T, onArrival?: () => void): Promise<T> {
    this.calls.push({ method, index });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      onArrival?.();
      await new Promise((r) => setTimeout(r, this.latencyMs));
      const q = this.failures.get(method);
      if (q && q.length) throw q.shift();
      const out = f();
      const lost = this.lostReplies.get(method) ?? 0;
      if (lost > 0) {
        this.lostReplies.set(method, lost - 1);
        throw fromCandidError({ Busy: { reason: 'reply lost (simulated)' } });
      }
      return out;
    } finally {
      this.inFlight--;
    }
  }

  private err(e: CandidError): never {
    throw fromCandidError(e);
  }

  count(): number {
    return this.spec ? Math.ceil(Number(this.spec.total_size) / this.spec.chunk_size) : 0;
  }

  meta(): VideoMetadata {
    let bytes = 0n;
    for (const c of this.chunks.values()) bytes += BigInt(c.length);
    return {
      status: this.ready ? { Ready: null } : this.spec || this.named.size ? { Uploading: null } : { Empty: null },
      title: this.title,
      updated_at: 0n,
      creator: OWNER,
      transfer_seq: 0n,
      owner: OWNER,
      operator: [],
      control: [{ Owner: null }],
      pending_offer: [],
      size: this.spec?.total_size ?? 0n,
      tags: [],
      mime_type: this.spec?.mime_type ?? '',
      description: '',
      created_at: 0n,
      ready_at: this.ready ? [1n] : [],
      chunk_count: this.count(),
      digest: this.lyingDigest ? [this.lyingDigest] : this.digest ? [this.digest] : [],
      index: [],
      chunk_size: this.spec?.chunk_size ?? 0,
      duration_ms: this.spec?.duration_ms ?? [],
      encryption: this.spec?.encryption ?? [],
      uploaded_bytes: bytes,
      uploaded_chunks: this.chunks.size,
      files: [this.named.size],
      renditions: [
        [...this.named.entries()]
          .filter(([, f]) => f.spec.rendition.length)
          .map(([path, f]) => ({ path, rendition: f.spec.rendition[0]! }))
          .sort((a, b) => (a.rendition.bandwidth > b.rendition.bandwidth ? -1 : 1)),
      ],
    };
  }

  metadata(): Promise<VideoMetadata> {
    return this.enter('metadata', undefined, () => this.meta());
  }

  beginUpload(spec: UploadSpec): Promise<VideoMetadata> {
    return this.enter('begin_upload', undefined, () => {
      if (this.ready) this.err({ AlreadyFinished: null });
      if (this.spec && this.chunks.size > 0 && JSON.stringify(this.spec, replacer) !== JSON.stringify(spec, replacer)) {
        this.err({ Conflict: { reason: 'a different upload is in progress' } });
      }
      this.spec = spec;
      return this.meta();
    });
  }

  putChunk(index: number, data: Uint8Array): Promise<ChunkReceipt> {
    return this.enter('put_chunk', index, () => {
      this.onPut?.(index);
      if (this.ready) this.err({ AlreadyFinished: null });
      const spec = this.spec ?? this.err({ NotReady: { reason: 'no upload declared' } });
      const n = this.count();
      if (index >= n) this.err({ ChunkOutOfRange: { index, chunk_count: n } });
      const expected = Math.min(spec.chunk_size, Number(spec.total_size) - index * spec.chunk_size);
      if (data.length !== expected) this.err({ WrongChunkSize: { index, actual: BigInt(data.length), expected: BigInt(expected) } });
      const d = nodeSha256(data);
      if (spec.chunk_digests.length && !eq(spec.chunk_digests[0]![index]!, d)) {
        this.err({ WrongDigest: { index: [index], actual: d, expected: spec.chunk_digests[0]![index]! } });
      }
      this.chunks.set(index, data.slice());
      return { len: data.length, sha256: d, chunk_count: n, index, uploaded_chunks: this.chunks.size };
    });
  }

  missingChunks(start: number | undefined, limit: number | undefined): Promise<MissingChunks> {
    return this.enter('missing_chunks', undefined, () => {
      const lim = Math.min(limit ?? this.missingPage, this.missingPage);
      const n = this.count();
      const all = [];
      for (let i = 0; i < n; i++) if (!this.chunks.has(i)) all.push(i);
      const from = all.filter((i) => i >= (start ?? 0));
      const page = from.slice(0, lim);
      const more = from.length > lim;
      return {
        missing_count: all.length,
        missing: Uint32Array.from(page),
        next: more ? [from[lim]!] : [],
      } as unknown as MissingChunks;
    });
  }

  finishUpload(): Promise<VideoMetadata> {
    return this.enter('finish_upload', undefined, () => {
      if (this.ready) this.err({ AlreadyFinished: null });
      if (!this.spec && this.named.size === 0) this.err({ NotReady: { reason: 'no upload declared' } });
      const fileMissing: number[] = [];
      for (const f of this.named.values()) {
        for (let i = 0; i < fileCount(f.spec); i++) if (!f.chunks.has(i)) fileMissing.push(i);
      }
      if (fileMissing.length) this.err({ Incomplete: { missing_count: fileMissing.length, missing: Uint32Array.from(fileMissing.slice(0, 100)) } });
      for (const f of this.named.values()) {
        const h = createHash('sha256');
        for (let i = 0; i < fileCount(f.spec); i++) h.update(nodeSha256(f.chunks.get(i)!));
        const d = new Uint8Array(h.digest());
        if (f.spec.file_digest.length && !eq(f.spec.file_digest[0]!, d)) this.err({ WrongDigest: { index: [], actual: d, expected: f.spec.file_digest[0]! } });
        f.digest = d;
      }
      if (!this.spec) {
        this.ready = true;
        return this.meta();
      }
      const spec = this.spec;
      const n = this.count();
      const missing = [];
      for (let i = 0; i < n; i++) if (!this.chunks.has(i)) missing.push(i);
      if (missing.length) this.err({ Incomplete: { missing_count: missing.length, missing: Uint32Array.from(missing.slice(0, 100)) } });
      const h = createHash('sha256');
      for (let i = 0; i < n; i++) h.update(nodeSha256(this.chunks.get(i)!));
      const digest = new Uint8Array(h.digest());
      if (spec.file_digest.length && !eq(spec.file_digest[0]!, digest)) {
        this.err({ WrongDigest: { index: [], actual: digest, expected: spec.file_digest[0]! } });
      }
      this.digest = digest;
      this.ready = true;
      return this.meta();
    });
  }

  private readContent(): void {
    if (!this.ready && this.caller !== 'owner') {
      this.err({ NotReady: { reason: 'the video is not published until its upload is finished' } });
    }
  }

  getChunk(index: number): Promise<Uint8Array> {
    return this.enter('get_chunk', index, () => {
      this.readContent();
      const c = this.chunks.get(index) ?? this.err({ NotFound: { what: `chunk ${index}` } });
      if (index === this.corruptChunk || index === this.forgedChunk) return altered(c);
      return c;
    });
  }

  chunkDigests(start: number, limit?: number): Promise<ChunkDigests> {
    return this.enter('chunk_digests', start, () => {
      this.readContent();
      if (!this.spec) this.err({ NotReady: { reason: 'no upload declared' } });
      const n = this.count();
      if (start > n) this.err({ ChunkOutOfRange: { index: start, chunk_count: n } });
      const lim = Math.min(Math.max(limit ?? this.digestPage, 1), this.digestPage);
      const end = Math.min(start + lim, n);
      const digests: Array<[] | [Uint8Array]> = [];
      for (let i = start; i < end; i++) {
        const c = this.chunks.get(i);
        const d: [] | [Uint8Array] = c ? [nodeSha256(i === this.forgedChunk ? altered(c) : c)] : [];
        digests.push(this.digestOverride.get(i) ?? d);
      }
      return { start, chunk_count: n, digests, next: end < n ? [end] : [] };
    });
  }

  resetUpload(): Promise<VideoMetadata> {
    return this.enter('reset_upload', undefined, () => {
      if (this.caller !== 'owner') this.err({ NotAuthorized: { caller: STRANGER, reason: 'only the owner may do this' } });
      if (this.ready) this.err({ AlreadyFinished: null });
      this.spec = undefined;
      this.chunks.clear();
      return this.meta();
    });
  }

  /**
   * `http_request`: only `/metadata.json`, from the true state (what the canister certified),
   * "certified" with a fake `ic-certificate` header that `fakeResponseVerifier` checks.
   */
  httpRequest(req: HttpRequest): Promise<HttpResponse> {
    return this.enter('http_request', undefined, () => {
      if (req.url !== '/metadata.json') return { status_code: 404, headers: [], body: new Uint8Array(), upgrade: [] };
      const doc = JSON.stringify({
        title: this.title,
        status: this.ready ? 'ready' : this.spec ? 'uploading' : 'empty',
        mime_type: this.spec?.mime_type ?? '',
        size: Number(this.spec?.total_size ?? 0n),
        chunk_size: this.spec?.chunk_size ?? 0,
        chunk_count: this.count(),
        digest: this.digest ? Buffer.from(this.digest).toString('hex') : null,
      });
      const cert = `fake ${Buffer.from(nodeSha256(new TextEncoder().encode(doc))).toString('hex')}`;
      const body = this.tamperMetadataBody ? this.tamperMetadataBody(doc) : doc;
      return { status_code: 200, headers: [['ic-certificate', cert]], body: new TextEncoder().encode(body), upgrade: [] };
    });
  }

  beginFiles(specs: UploadSpec[]): Promise<number> {
    return this.enter('begin_files', undefined, () => {
      if (this.ready) this.err({ AlreadyFinished: null });
      if (specs.length > 500) this.err({ InvalidArgument: { reason: `at most 500 files per call, not ${specs.length}` } });
      for (const spec of specs) {
        const path = spec.path[0] ?? this.err({ InvalidArgument: { reason: 'begin_files declares named files: path missing' } });
        const old = this.named.get(path);
        if (old && JSON.stringify(old.spec, replacer) !== JSON.stringify(spec, replacer)) {
          this.err({ Conflict: { reason: `${path} is declared differently` } });
        }
      }
      const fresh = specs.filter((spec) => !this.named.has(spec.path[0]!));
      const bytes = fresh.reduce((n, spec) => n + Number(spec.total_size), 0);
      if (specs.length > 1 && bytes > this.maxDeclareBytes) this.err({ Busy: { reason: `${bytes} bytes declared at once` } });
      for (const spec of fresh) this.named.set(spec.path[0]!, { spec, chunks: new Map() });
      this.declared.push({ files: specs.length, bytes });
      return specs.length;
    });
  }

  private file(path: string): FakeFile {
    return this.named.get(path) ?? this.err({ NotFound: { what: `file ${path}` } });
  }

  putFileChunk(path: string, index: number, data: Uint8Array): Promise<ChunkReceipt> {
    return this.enter('put_chunk', index, () => {
      this.onPut?.(index);
      if (this.ready) this.err({ AlreadyFinished: null });
      const f = this.file(path);
      const n = fileCount(f.spec);
      if (index >= n) this.err({ ChunkOutOfRange: { index, chunk_count: n } });
      const expected = Math.min(f.spec.chunk_size, Number(f.spec.total_size) - index * f.spec.chunk_size);
      if (data.length !== expected) this.err({ WrongChunkSize: { index, actual: BigInt(data.length), expected: BigInt(expected) } });
      const d = nodeSha256(data);
      if (f.spec.chunk_digests.length && !eq(f.spec.chunk_digests[0]![index]!, d)) {
        this.err({ WrongDigest: { index: [index], actual: d, expected: f.spec.chunk_digests[0]![index]! } });
      }
      f.chunks.set(index, data.slice());
      return { len: data.length, sha256: d, chunk_count: n, index, uploaded_chunks: f.chunks.size };
    }, () => {
      // The window is judged when the call arrives, against the chunks stored by then.
      const order = [...this.named.keys()];
      const firstIncomplete = order.findIndex((p) => this.named.get(p)!.chunks.size < fileCount(this.named.get(p)!.spec));
      if (firstIncomplete >= 0 && order.indexOf(path) > firstIncomplete + this.fileWindow) {
        this.err({ Busy: { reason: `${path} is past the upload window` } });
      }
    });
  }

  missingFileChunks(path: string, start: number | undefined, limit: number | undefined): Promise<MissingChunks> {
    return this.enter('missing_chunks', undefined, () => {
      const f = this.file(path);
      const lim = Math.min(limit ?? this.missingPage, this.missingPage);
      const all = [];
      for (let i = 0; i < fileCount(f.spec); i++) if (!f.chunks.has(i)) all.push(i);
      const from = all.filter((i) => i >= (start ?? 0));
      return { missing_count: all.length, missing: Uint32Array.from(from.slice(0, lim)), next: from.length > lim ? [from[lim]!] : [] } as unknown as MissingChunks;
    });
  }

  files(after: string | undefined, limit: number | undefined): Promise<FilePage> {
    return this.enter('files', undefined, () => {
      const lim = Math.min(limit ?? this.filePage, this.filePage);
      const paths = [...this.named.keys()].sort().filter((p) => after === undefined || p > after);
      const page = paths.slice(0, lim);
      const files: FileInfo[] = page.map((path) => {
        const f = this.named.get(path)!;
        let bytes = 0n;
        for (const c of f.chunks.values()) bytes += BigInt(c.length);
        return {
          path,
          mime_type: f.spec.mime_type,
          size: f.spec.total_size,
          chunk_size: f.spec.chunk_size,
          chunk_count: fileCount(f.spec),
          uploaded_chunks: f.chunks.size,
          uploaded_bytes: bytes,
          digest: f.digest ? [f.digest] : [],
          duration_ms: f.spec.duration_ms,
          rendition: f.spec.rendition,
        };
      });
      return {
        files,
        total: this.named.size,
        next: paths.length > lim ? [page[page.length - 1]!] : [],
        status: this.ready ? { Ready: null } : this.spec || this.named.size ? { Uploading: null } : { Empty: null },
      };
    });
  }

  getFileChunk(path: string, index: number): Promise<Uint8Array> {
    return this.enter('get_file_chunk', index, () => {
      this.readContent();
      const c = this.file(path).chunks.get(index) ?? this.err({ NotFound: { what: `chunk ${index} of ${path}` } });
      return index === this.corruptChunk ? altered(c) : c;
    });
  }

  /** A named file's stored bytes. */
  fileBytes(path: string): Uint8Array {
    const f = this.file(path);
    return Buffer.concat(Array.from({ length: fileCount(f.spec) }, (_, i) => f.chunks.get(i)!));
  }

  /** All stored bytes in order. */
  bytes(): Uint8Array {
    const parts = Array.from({ length: this.count() }, (_, i) => this.chunks.get(i)!);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

function fileCount(spec: UploadSpec): number {
  return Math.ceil(Number(spec.total_size) / spec.chunk_size);
}

/** `c` with its first byte flipped. */
function altered(c: Uint8Array): Uint8Array {
  const bad = c.slice();
  bad[0] = bad[0]! ^ 0xff;
  return bad;
}

function replacer(_k: string, v: unknown) {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return Array.from(v);
  return v;
}

export class FakeNetwork implements UploadTransport {
  videoFiles(id: string): FakeVideo {
    return this.video(id);
  }

  videos = new Map<string, FakeVideo>();
  created: CreateVideoRequest[] = [];
  createFailures: unknown[] = [];
  private next = 1;

  async createVideo(args: CreateVideoRequest): Promise<string> {
    const f = this.createFailures.shift();
    if (f) throw f;
    this.created.push(args);
    // Distinct, syntactically valid canister ids.
    const id = Principal.fromUint8Array(new Uint8Array([0, 0, 0, 0, 0, 0x10, this.next++, 1, 1, 1])).toText();
    this.videos.set(id, new FakeVideo(id, args.title));
    return id;
  }

  video(id: string): FakeVideo {
    const v = this.videos.get(id);
    if (!v) throw fromCandidError({ NotFound: { what: `canister ${id}` } });
    return v;
  }
}

/**
 * `v` as the candid-level actor `CanvidClient` talks to (the read calls and `reset_upload`), so
 * that the client's own wiring — argument encoding, `Result` unwrapping, typed errors, retries —
 * runs against the fake: the fake's thrown `CanisterError`s become `{ Err }` again.
 */
export type FakeActor = { [K in keyof VideoService]?: (...args: Parameters<VideoService[K]>) => ReturnType<VideoService[K]> };

export function fakeVideoActor(v: FakeVideo): FakeActor {
  const result = async <T>(f: () => Promise<T>): Promise<{ Ok: T } | { Err: CandidError }> => {
    try {
      return { Ok: await f() };
    } catch (e) {
      if (e instanceof CanisterError) return { Err: { [e.kind]: e.details } as CandidError };
      throw e;
    }
  };
  return {
    metadata: () => v.metadata(),
    get_chunk: (index) => result(() => v.getChunk(index)),
    chunk_digests: (args) => result(() => v.chunkDigests(args.start, args.limit[0])),
    reset_upload: () => result(() => v.resetUpload()),
    begin_files: (specs) => result(() => v.beginFiles(specs)),
    put_chunk: (a) => result(() => (a.path.length ? v.putFileChunk(a.path[0]!, a.index, a.data) : v.putChunk(a.index, a.data))),
    missing_chunks: (a) =>
      result(() => (a.path.length ? v.missingFileChunks(a.path[0]!, a.start[0], a.limit[0]) : v.missingChunks(a.start[0], a.limit[0]))),
    finish_upload: () => result(() => v.finishUpload()),
    files: (a) => result(() => v.files(a.after[0], a.limit[0])),
    get_file_chunk: (a) => result(() => v.getFileChunk(a.path, a.index)),
    http_request: (req) => v.httpRequest(req),
  };
}

/** The root key `fakeResponseVerifier` accepts. */
export const FAKE_ROOT_KEY = new Uint8Array([0x30, 1, 2, 3]);

/**
 * A stand-in for HTTP response verification: an answer verifies when its `ic-certificate` header
 * is `fake <SHA-256 of the body>` and the root key is `FAKE_ROOT_KEY` (the real verifier is
 * exercised end to end against canvid serve).
 */
export const fakeResponseVerifier: ResponseVerifier = (_request, response, _canisterId, _now, _age, rootKey) => {
  if (!eq(rootKey, FAKE_ROOT_KEY)) throw new Error('CertificateVerificationFailed: wrong root key');
  const header = response.headers.find(([k]) => k.toLowerCase() === 'ic-certificate')?.[1];
  if (!header) throw new Error('HeaderMissingCertification');
  const body = Uint8Array.from(response.body);
  if (header !== `fake ${Buffer.from(nodeSha256(body)).toString('hex')}`) throw new Error('InvalidResponseBody');
  return { response: { statusCode: response.status_code, headers: response.headers, body }, verificationVersion: 2 };
};

/** A fast retry policy for tests (no real waiting beyond a millisecond). */
export const FAST_RETRY = { retries: 5, baseDelayMs: 1, maxDelayMs: 2, factor: 2, jitter: 0.5 };
