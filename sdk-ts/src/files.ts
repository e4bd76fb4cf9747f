// Named files: a video canister holds, besides its main file (`/` and `/video`), files at their
// own HTTP paths — an HLS ladder (`/hls/master.m3u8`, `/hls/720p/index.m3u8`, segments),
// WebVTT subtitles, thumbnails (docs/sdk.md "Named files and HLS", canisters/types/src/files.rs).
//
// Protocol:
//   video.begin_files(vec UploadSpec)          <= 500 files a call, each with `path` and its
//                                              chunk digests; identical again = resume
//   video.put_chunk({index, data, path}) *     roughly in declaration order, bounded parallelism
//   video.missing_chunks({.., path})           what a file still lacks (resume)
//   video.files({after, limit})                the files as stored (paginated, path order)
//   video.finish_upload()                      verifies every file; the video becomes Ready
import type { ChunkReceipt, FileInfo, FilePage, MissingChunks, UploadSpec, VideoMetadata } from './bindings/video.did.js';
import { equalBytes, fileDigest, sha256, toHex } from './bytes.js';
import { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, chunkCount, chunkRange, toSource, type RandomAccessSource } from './chunking.js';
import { runPool } from './concurrency.js';
import { AlreadyFinishedError, BusyError, CanvidError, IncompleteError, IntegrityError, UnexpectedError, UsageError, isTransient } from './errors.js';
import { ProgressTracker, type UploadProgress } from './progress.js';
import { type RetryPolicy, retryPolicy, throwIfAborted, withRetry } from './retry.js';
import { type CreateVideoRequest, MAX_DECLARED_DIGESTS, UPLOAD_WINDOW_CHUNKS, type VideoInfo } from './upload.js';

/** Most files one `begin_files` call declares (`canvid_types::files::MAX_FILES_PER_CALL`). */
export const MAX_FILES_PER_CALL = 500;
/** Most named files a video holds (`canvid_types::files::MAX_FILES`). */
export const MAX_FILES = 20_000;
/** Longest file path in bytes (`canvid_types::files::MAX_PATH_BYTES`). */
export const MAX_PATH_BYTES = 160;
/**
 * Most bytes one `begin_files` batch declares (64 chunks of 2,000,000 bytes, as the CLI): the
 * canister bounds the bytes declared but not yet written.
 */
export const MAX_BATCH_BYTES = 64 * 2_000_000;
/** Most files one `files` page lists. */
export const MAX_FILE_PAGE = 500;
/** Paths the canister answers itself. */
export const RESERVED_PATHS: readonly string[] = ['/', '/video', '/metadata.json', '/poster'];

/** One rung of an adaptive-streaming ladder (HLS `EXT-X-STREAM-INF`). */
export interface RenditionInfo {
  /** e.g. "720p". */
  name: string;
  width: number;
  height: number;
  /** Peak bits per second (HLS `BANDWIDTH`). */
  bandwidth: number;
  /** RFC 6381 codecs (HLS `CODECS`), e.g. `avc1.64001f,mp4a.40.2`. */
  codecs?: string;
}

/** A file to store at an HTTP path of the video canister. */
export interface NamedFile {
  /** `/hls/720p/seg-00000.m4s`: `/` then segments of `A-Z a-z 0-9 . _ ~ -`. */
  path: string;
  data: Uint8Array | Blob;
  /** Served as the HTTP Content-Type. */
  mimeType: string;
  /** The ladder rung this file opens (an HLS media playlist). */
  rendition?: RenditionInfo;
  durationMs?: number;
}

/** A named file as the canister stores it. */
export interface FileDetails {
  path: string;
  mimeType: string;
  size: number;
  chunkSize: number;
  chunkCount: number;
  uploadedChunks: number;
  uploadedBytes: number;
  /** File digest (SHA-256 over the chunk digests), hex; set once the video is Ready. */
  digest?: string;
  durationMs?: number;
  rendition?: RenditionInfo;
}

/** The calls a files upload makes on one video canister (errors already mapped to `CanvidError`). */
export interface VideoFilesApi {
  metadata(): Promise<VideoMetadata>;
  beginFiles(specs: UploadSpec[]): Promise<number>;
  putFileChunk(path: string, index: number, data: Uint8Array): Promise<ChunkReceipt>;
  missingFileChunks(path: string, start: number | undefined, limit: number | undefined): Promise<MissingChunks>;
  files(after: string | undefined, limit: number | undefined): Promise<FilePage>;
  finishUpload(): Promise<VideoMetadata>;
}

export interface FilesTransport {
  createVideo(args: CreateVideoRequest): Promise<string>;
  videoFiles(videoId: string): VideoFilesApi;
}

export interface UploadFilesOptions {
  /** Called after every confirmed chunk and on phase changes; totals cover all files. */
  onProgress?: (p: UploadProgress) => void;
  /** Called once the video canister exists (store the id to resume). */
  onCreated?: (videoId: string) => void;
  /** Cancels the upload; what was stored stays, resume later with the same files. */
  signal?: AbortSignal;
  /** Chunks in flight at once, across files. Default 4; at most 64. */
  concurrency?: number;
  retry?: Partial<RetryPolicy>;
  /** Chunk size of every file, 1..=2,000,000. Default 2,000,000 (a segment is one chunk). */
  chunkSize?: number;
  /**
   * Most files one `begin_files` call declares, 1..=500 (default 500). A smaller batch is sent
   * sooner after its declaration and bounds what a lost batch costs on resume.
   */
  batchFiles?: number;
  /**
   * Upload into this video canister instead of creating one: an `Empty` video (e.g. created with
   * `createVideo`), or one whose files upload was interrupted (resume: the same files are declared
   * again, identically, and only the chunks the canister lacks are sent).
   */
  resume?: string;
}

export interface UploadFilesResult {
  videoId: string;
  /** Metadata after `finish_upload` (status Ready, `files`, `renditions`). */
  metadata: VideoMetadata;
  /** The files as the canister lists them, in path order, each checked against the local digest. */
  files: FileDetails[];
  totalBytes: number;
  /** Bytes sent by this call. */
  bytesSent: number;
  /** Chunks the canister already had (resume). */
  chunksSkipped: number;
  resumed: boolean;
}

/** The canister's path rule (`canvid_types::files::validate_path`); a `UsageError` explains a refusal. */
export function checkFilePath(path: string): void {
  const refuse = (why: string): never => {
    throw new UsageError(`file path ${JSON.stringify(path)}: ${why}; expected /segment[/segment...] with segments of A-Z a-z 0-9 . _ ~ -, at most ${MAX_PATH_BYTES} bytes`);
  };
  if (new TextEncoder().encode(path).length > MAX_PATH_BYTES) refuse('too long');
  if (!path.startsWith('/')) refuse('does not start with /');
  if (RESERVED_PATHS.includes(path)) refuse("reserved for the canister's own answers");
  for (const seg of path.slice(1).split('/')) {
    if (seg === '' || seg === '.' || seg === '..') refuse('empty, . or .. segment');
    if (!/^[A-Za-z0-9._~-]+$/.test(seg)) refuse('character outside A-Z a-z 0-9 . _ ~ -');
  }
}

const MIME_BY_EXTENSION: Record<string, string> = {
  m3u8: 'application/vnd.apple.mpegurl',
  m4s: 'video/mp4',
  mp4: 'video/mp4',
  m4v: 'video/mp4',
  m4a: 'audio/mp4',
  ts: 'video/mp2t',
  aac: 'audio/aac',
  vtt: 'text/vtt',
  webm: 'video/webm',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
  mpd: 'application/dash+xml',
  txt: 'text/plain',
};

/** The MIME type a named file is served with, by its extension (`application/octet-stream` when unknown). */
export function mimeTypeForPath(path: string): string {
  const m = /\.([A-Za-z0-9]+)$/.exec(path);
  return (m && MIME_BY_EXTENSION[m[1]!.toLowerCase()]) || 'application/octet-stream';
}

/** Attributes of an HLS tag line (`KEY=value,KEY="quoted, value"`). */
export function parseHlsAttributes(list: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;
  for (let m = re.exec(list); m; m = re.exec(list)) {
    const v = m[2]!;
    out[m[1]!] = v.startsWith('"') ? v.slice(1, -1) : v;
  }
  return out;
}

/** One variant of a master playlist: its media playlist's URI (as written) and its rendition. */
export interface MasterVariant {
  uri: string;
  rendition: RenditionInfo;
}

/**
 * The variants of an HLS master playlist (`EXT-X-STREAM-INF` lines and the URI after each) with
 * `RESOLUTION`, `BANDWIDTH` and `CODECS`. The rendition is named after the URI's directory
 * (`720p/index.m3u8` -> `720p`), else `<height>p`. Variants without a resolution (audio only)
 * are skipped.
 */
export function parseMasterPlaylist(text: string): MasterVariant[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const out: MasterVariant[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.startsWith('#EXT-X-STREAM-INF:')) continue;
    const attrs = parseHlsAttributes(line.slice('#EXT-X-STREAM-INF:'.length));
    let j = i + 1;
    while (j < lines.length && (lines[j] === '' || lines[j]!.startsWith('#'))) j++;
    const uri = lines[j];
    if (!uri) continue;
    const res = /^(\d+)x(\d+)$/.exec(attrs['RESOLUTION'] ?? '');
    const bandwidth = Number(attrs['BANDWIDTH'] ?? attrs['AVERAGE-BANDWIDTH']);
    if (!res || !(bandwidth > 0)) continue;
    const dir = uri.split('?')[0]!.split('/').slice(0, -1).pop();
    const height = Number(res[2]);
    out.push({
      uri,
      rendition: {
        name: dir && /^[\x20-\x7e]{1,64}$/.test(dir) ? dir : `${height}p`,
        width: Number(res[1]),
        height,
        bandwidth,
        ...(attrs['CODECS'] ? { codecs: attrs['CODECS'] } : {}),
      },
    });
  }
  return out;
}

/** `uri` (relative or absolute path) resolved against the file at `base`, as a path. */
export function resolvePath(base: string, uri: string): string {
  return new URL(uri, `http://x${base}`).pathname;
}

/** Raw entries of a folder: relative path (with `/`) and data. */
export interface FolderEntry {
  relativePath: string;
  data: Uint8Array | Blob;
}

/**
 * Named files from a folder's entries: path = `/` + relative path, MIME type by extension,
 * and renditions read from every master playlist (a `.m3u8` with `EXT-X-STREAM-INF`) attached to
 * the media playlists it lists. Hidden files (a segment starting with `.`) are left out.
 */
export async function namedFilesFrom(entries: readonly FolderEntry[]): Promise<NamedFile[]> {
  const files: NamedFile[] = entries
    .filter((e) => !e.relativePath.split('/').some((s) => s.startsWith('.')))
    .map((e) => {
      const path = `/${e.relativePath.split(/[\\/]+/).filter(Boolean).join('/')}`;
      return { path, data: e.data, mimeType: mimeTypeForPath(path) };
    })
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const byPath = new Map(files.map((f) => [f.path, f]));
  for (const f of files) {
    if (!f.path.endsWith('.m3u8')) continue;
    const text = await textOf(f.data);
    if (!text.includes('#EXT-X-STREAM-INF')) continue;
    for (const v of parseMasterPlaylist(text)) {
      const target = byPath.get(resolvePath(f.path, v.uri));
      if (target && !target.rendition) target.rendition = v.rendition;
    }
  }
  return orderForUpload(files);
}

async function textOf(data: Uint8Array | Blob): Promise<string> {
  return data instanceof Uint8Array ? new TextDecoder().decode(data) : await data.text();
}

/**
 * Declaration (and so upload) order: playlists first (a player opens them first), then the other
 * files in path order, so segments go up rung by rung, in playback order.
 */
export function orderForUpload(files: NamedFile[]): NamedFile[] {
  const rank = (f: NamedFile) => (f.path.endsWith('.m3u8') ? 0 : 1);
  return [...files].sort((a, b) => rank(a) - rank(b) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The relative-path-bearing `File`s of `<input type=file webkitdirectory>`. */
export interface DirectoryFile extends Blob {
  readonly name: string;
  readonly webkitRelativePath: string;
}

/**
 * Named files from the files an `<input type="file" webkitdirectory>` yields: each path is its
 * `webkitRelativePath` minus the chosen folder's own name (`hls-out/hls/master.m3u8` ->
 * `/hls/master.m3u8`); MIME types by extension; renditions from the master playlist.
 */
export async function filesFromInput(list: ArrayLike<DirectoryFile> | Iterable<DirectoryFile>): Promise<NamedFile[]> {
  const entries: FolderEntry[] = [];
  for (const f of Array.from(list as ArrayLike<DirectoryFile>)) {
    const rel = f.webkitRelativePath || f.name;
    const parts = rel.split('/');
    entries.push({ relativePath: parts.length > 1 ? parts.slice(1).join('/') : rel, data: f });
  }
  return namedFilesFrom(entries);
}

export function toRenditionInfo(r: { name: string; width: number; height: number; bandwidth: bigint; codecs: [] | [string] }): RenditionInfo {
  return { name: r.name, width: r.width, height: r.height, bandwidth: Number(r.bandwidth), ...(r.codecs.length ? { codecs: r.codecs[0]! } : {}) };
}

export function toFileDetails(f: FileInfo): FileDetails {
  return {
    path: f.path,
    mimeType: f.mime_type,
    size: Number(f.size),
    chunkSize: f.chunk_size,
    chunkCount: f.chunk_count,
    uploadedChunks: f.uploaded_chunks,
    uploadedBytes: Number(f.uploaded_bytes),
    ...(f.digest.length ? { digest: toHex(f.digest[0]!) } : {}),
    ...(f.duration_ms.length ? { durationMs: Number(f.duration_ms[0]) } : {}),
    ...(f.rendition.length ? { rendition: toRenditionInfo(f.rendition[0]!) } : {}),
  };
}

/** Every stored file, page after page (`files`), in path order. */
export async function allFiles(api: Pick<VideoFilesApi, 'files'>, call: <T>(f: () => Promise<T>) => Promise<T>): Promise<FileInfo[]> {
  const out: FileInfo[] = [];
  let after: string | undefined;
  for (let pages = 0; ; pages++) {
    const page = await call(() => api.files(after, MAX_FILE_PAGE));
    out.push(...page.files);
    if (page.next.length === 0) return out;
    const next = page.next[0]!;
    if (after !== undefined && next <= after) throw new UnexpectedError(`files did not advance (next ${next} after ${after})`);
    after = next;
    if (pages > MAX_FILES) throw new UnexpectedError('files pagination does not end');
  }
}

async function allFileMissing(api: VideoFilesApi, path: string, call: <T>(f: () => Promise<T>) => Promise<T>): Promise<number[]> {
  const out: number[] = [];
  let start: number | undefined;
  for (let pages = 0; ; pages++) {
    const page = await call(() => api.missingFileChunks(path, start, 10_000));
    out.push(...page.missing);
    if (page.next.length === 0) return out;
    const next = page.next[0]!;
    if (start !== undefined && next <= start) throw new UnexpectedError(`missing_chunks(${path}) did not advance`);
    start = next;
    if (pages > 1_000_000) throw new UnexpectedError('missing_chunks pagination does not end');
  }
}

interface Prepared {
  file: NamedFile;
  source: RandomAccessSource;
  size: number;
  count: number;
  digests: Uint8Array[];
  digest: Uint8Array;
  spec: UploadSpec;
}

/**
 * Splits specs into `begin_files` calls, in order: at most 500 files, 40,000 chunk digests and
 * `MAX_BATCH_BYTES` declared bytes each (a larger file is a batch of its own).
 */
export function declareBatches(specs: UploadSpec[], maxFiles: number = MAX_FILES_PER_CALL): UploadSpec[][] {
  if (!Number.isInteger(maxFiles) || maxFiles < 1 || maxFiles > MAX_FILES_PER_CALL) {
    throw new RangeError(`batchFiles must be an integer in 1..=${MAX_FILES_PER_CALL}, not ${maxFiles}`);
  }
  const out: UploadSpec[][] = [];
  let cur: UploadSpec[] = [];
  let digests = 0;
  let bytes = 0;
  for (const s of specs) {
    const n = s.chunk_digests[0]?.length ?? 0;
    const size = Number(s.total_size);
    if (cur.length > 0 && (cur.length >= maxFiles || digests + n > MAX_DECLARED_DIGESTS || bytes + size > MAX_BATCH_BYTES)) {
      out.push(cur);
      cur = [];
      digests = 0;
      bytes = 0;
    }
    cur.push(s);
    digests += n;
    bytes += size;
  }
  if (cur.length) out.push(cur);
  return out;
}

function statusOf(m: { status: VideoMetadata['status'] }): 'Empty' | 'Uploading' | 'Ready' {
  return Object.keys(m.status)[0] as 'Empty' | 'Uploading' | 'Ready';
}

/**
 * Uploads a set of named files (an HLS ladder, subtitles, thumbnails) as one video: hashes every
 * file, creates the video canister through spawn (or continues `options.resume`), declares the
 * files in batches with their chunk digests, sends the chunks the canister lacks in declaration
 * order with bounded concurrency and retries (Busy included), finishes, and checks every stored
 * file's digest against the local one. On failure the error carries `videoId` to resume with.
 */
export async function uploadFiles(
  transport: FilesTransport,
  files: readonly NamedFile[],
  info: VideoInfo,
  options: UploadFilesOptions = {},
  clock?: () => number,
): Promise<UploadFilesResult> {
  const tracker = new ProgressTracker(options.onProgress, clock);
  let videoId: string | undefined = options.resume;
  try {
    return await uploadFilesInner(transport, files, info, options, tracker, (id) => {
      videoId = id;
    });
  } catch (err) {
    const e = err instanceof CanvidError ? err : new UnexpectedError(err instanceof Error ? err.message : String(err), { cause: err });
    if (videoId && e.videoId === undefined) e.videoId = videoId;
    throw e;
  }
}

async function uploadFilesInner(
  transport: FilesTransport,
  files: readonly NamedFile[],
  info: VideoInfo,
  options: UploadFilesOptions,
  tracker: ProgressTracker,
  setVideoId: (id: string) => void,
): Promise<UploadFilesResult> {
  const { signal } = options;
  const policy = retryPolicy(options.retry);
  const requested = options.concurrency ?? 4;
  if (!Number.isInteger(requested) || requested < 1) throw new UsageError(`concurrency must be an integer >= 1, got ${requested}`);
  const concurrency = Math.min(requested, UPLOAD_WINDOW_CHUNKS);
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) throw new UsageError(`chunkSize must be 1..=${MAX_CHUNK_SIZE}`);
  const call = <T>(f: () => Promise<T>): Promise<T> => withRetry(() => f(), { policy, signal });
  throwIfAborted(signal);

  if (files.length === 0) throw new UsageError('no files to upload');
  if (files.length > MAX_FILES) throw new UsageError(`${files.length} files: a video holds at most ${MAX_FILES}`);
  const seen = new Set<string>();
  for (const f of files) {
    checkFilePath(f.path);
    if (seen.has(f.path)) throw new UsageError(`file path ${f.path} given twice`);
    seen.add(f.path);
    if (!f.mimeType) throw new UsageError(`file ${f.path}: no MIME type`);
  }

  // Hash every file first: the digests are declared with the files.
  const prepared: Prepared[] = [];
  let totalBytes = 0;
  let totalChunks = 0;
  for (const f of files) {
    const source = (await toSource(f.data)) as RandomAccessSource;
    if (source.size < 1) throw new UsageError(`file ${f.path} is empty`);
    const count = chunkCount(source.size, chunkSize);
    if (count > MAX_DECLARED_DIGESTS) throw new UsageError(`file ${f.path}: ${count} chunks do not fit one declaration (max ${MAX_DECLARED_DIGESTS})`);
    prepared.push({ file: f, source, size: source.size, count, digests: [], digest: new Uint8Array(), spec: undefined as unknown as UploadSpec });
    totalBytes += source.size;
    totalChunks += count;
  }
  tracker.start(totalBytes, totalChunks);
  tracker.setPhase('hashing');
  for (const p of prepared) {
    for (let i = 0; i < p.count; i++) {
      throwIfAborted(signal);
      const [s, e] = chunkRange(p.size, chunkSize, i);
      p.digests.push(await sha256(await p.source.read(s, e)));
      tracker.hashed(e - s);
    }
    p.digest = await fileDigest(p.digests);
    const r = p.file.rendition;
    p.spec = {
      mime_type: p.file.mimeType,
      total_size: BigInt(p.size),
      chunk_size: chunkSize,
      chunk_digests: [p.digests],
      file_digest: [p.digest],
      duration_ms: p.file.durationMs !== undefined ? [BigInt(p.file.durationMs)] : [],
      path: [p.file.path],
      rendition: r
        ? [{ name: r.name, width: r.width, height: r.height, bandwidth: BigInt(r.bandwidth), codecs: r.codecs ? [r.codecs] : [] }]
        : [],
      encryption: [],
    };
  }

  let videoId = options.resume;
  let existing: VideoMetadata | undefined;
  if (videoId) {
    setVideoId(videoId);
    tracker.videoId = videoId;
    existing = await call(() => transport.videoFiles(videoId!).metadata());
  } else {
    tracker.setPhase('creating');
    throwIfAborted(signal);
    // Not retried: a lost reply would otherwise create (and pay for) a second canister.
    videoId = await transport.createVideo({
      title: info.title,
      description: info.description ?? '',
      tags: info.tags ?? [],
      owner: info.owner,
      declaredSize: totalBytes,
    });
    setVideoId(videoId);
    tracker.videoId = videoId;
    options.onCreated?.(videoId);
  }
  const api = transport.videoFiles(videoId);
  const resumed = existing !== undefined && statusOf(existing) !== 'Empty';

  if (existing && statusOf(existing) === 'Ready') {
    // Nothing to send if the video holds exactly these files.
    const listed = await verifyStored(api, call, videoId, prepared);
    tracker.start(totalBytes, totalChunks, totalBytes, totalChunks);
    tracker.setPhase('done');
    return { videoId, metadata: existing, files: listed, totalBytes, bytesSent: 0, chunksSkipped: totalChunks, resumed: true };
  }

  // What is missing: everything on a fresh upload; on resume, ask the canister (what an earlier
  // attempt declared is listed, complete or not).
  tracker.setPhase('preparing');
  const missing = new Map<string, number[]>();
  if (resumed) {
    const stored = new Map((await allFiles(api, call)).map((f) => [f.path, f]));
    for (const p of prepared) {
      const s = stored.get(p.file.path);
      if (!s || s.uploaded_chunks === 0) missing.set(p.file.path, range(p.count));
      else if (s.uploaded_chunks < s.chunk_count) missing.set(p.file.path, await allFileMissing(api, p.file.path, call));
      else missing.set(p.file.path, []);
    }
  } else {
    for (const p of prepared) missing.set(p.file.path, range(p.count));
  }
  let haveBytes = 0;
  let haveChunks = 0;
  for (const p of prepared) {
    const m = new Set(missing.get(p.file.path));
    for (let i = 0; i < p.count; i++) {
      if (m.has(i)) continue;
      const [s, e] = chunkRange(p.size, chunkSize, i);
      haveBytes += e - s;
      haveChunks++;
    }
  }
  tracker.start(totalBytes, totalChunks, haveBytes, haveChunks);
  const chunksSkipped = haveChunks;
  tracker.setPhase('uploading');

  const byPath = new Map(prepared.map((p) => [p.file.path, p]));
  const put = async (p: Prepared, index: number): Promise<void> => {
    const [s, e] = chunkRange(p.size, chunkSize, index);
    const data = await p.source.read(s, e);
    const receipt = await call(() => api.putFileChunk(p.file.path, index, data));
    if (signal?.aborted) return;
    const digest = p.digests[index]!;
    if (receipt.index !== index || receipt.len !== data.length || !equalBytes(receipt.sha256, digest)) {
      throw new IntegrityError(
        `${p.file.path} chunk ${index}: the canister stored ${receipt.len} bytes with SHA-256 ${toHex(receipt.sha256)}, sent ${data.length} bytes with ${toHex(digest)}`,
        digest,
        receipt.sha256,
        index,
      );
    }
    tracker.chunkDone(data.length);
  };
  // Declaration order, chunk order: the canister's per-file upload window moves along with it.
  const sendAll = (todo: Map<string, number[]>) => {
    function* jobs(): Generator<{ p: Prepared; index: number }> {
      for (const p of prepared) for (const index of [...(todo.get(p.file.path) ?? [])].sort((a, b) => a - b)) yield { p, index };
    }
    return runPool(jobs(), concurrency, (j) => put(j.p, j.index), signal);
  };
  // Declare a batch (again, identically, on resume: the canister keeps what it stored), send its
  // missing chunks, then the next batch: the canister refuses (`Busy`) a declaration while more
  // than 1 GiB of declared files is unwritten, so declaring everything first could stall.
  // A batch the canister answers `Busy` is halved and declared again (each half sent before the
  // next is declared); a single file still `Busy` is retried with back-off.
  const declareAndSend = async (group: Prepared[]): Promise<void> => {
    const specs = group.map((p) => p.spec);
    if (group.length > 1) {
      try {
        await withRetry(() => api.beginFiles(specs), { policy, signal, shouldRetry: (e) => !(e instanceof BusyError) && isTransient(e) });
      } catch (e) {
        if (!(e instanceof BusyError)) throw e;
        const half = Math.ceil(group.length / 2);
        await declareAndSend(group.slice(0, half));
        await declareAndSend(group.slice(half));
        return;
      }
    } else {
      await call(() => api.beginFiles(specs));
    }
    await sendAll(new Map(group.map((p) => [p.file.path, missing.get(p.file.path) ?? []])));
  };
  let at = 0;
  for (const batch of declareBatches(prepared.map((p) => p.spec), options.batchFiles)) {
    await declareAndSend(prepared.slice(at, at + batch.length));
    at += batch.length;
  }

  tracker.setPhase('finishing');
  let metadata: VideoMetadata | undefined;
  for (let round = 0; metadata === undefined; round++) {
    try {
      metadata = await call(() => api.finishUpload());
    } catch (err) {
      if (err instanceof AlreadyFinishedError) {
        const m = await call(() => api.metadata());
        if (statusOf(m) === 'Ready') {
          metadata = m;
          break;
        }
        throw err;
      }
      if (err instanceof IncompleteError && round === 0) {
        // The canister lacks chunks we sent (or files we did not know of): send ours once more.
        const still = new Map<string, number[]>();
        for (const f of await allFiles(api, call)) {
          if (f.uploaded_chunks < f.chunk_count && byPath.has(f.path)) still.set(f.path, await allFileMissing(api, f.path, call));
        }
        tracker.setPhase('uploading');
        await sendAll(still);
        tracker.setPhase('finishing');
        continue;
      }
      throw err;
    }
  }
  const listed = await verifyStored(api, call, videoId, prepared);
  tracker.setPhase('done');
  return { videoId, metadata, files: listed, totalBytes, bytesSent: tracker.bytesSent, chunksSkipped, resumed };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Lists the stored files and checks each local one is there with the same digest, size and type. */
async function verifyStored(
  api: VideoFilesApi,
  call: <T>(f: () => Promise<T>) => Promise<T>,
  videoId: string,
  prepared: Prepared[],
): Promise<FileDetails[]> {
  const stored = await allFiles(api, call);
  const byPath = new Map(stored.map((f) => [f.path, f]));
  for (const p of prepared) {
    const s = byPath.get(p.file.path);
    if (!s) throw new IntegrityError(`video ${videoId}: file ${p.file.path} is not stored`, p.digest, new Uint8Array());
    const remote = s.digest[0];
    if (!remote || !equalBytes(remote, p.digest) || Number(s.size) !== p.size) {
      throw new IntegrityError(
        `video ${videoId}: file ${p.file.path} is stored with digest ${remote ? toHex(remote) : '(none)'} (${s.size} bytes), not the local ${toHex(p.digest)} (${p.size} bytes)`,
        p.digest,
        remote ?? new Uint8Array(),
      );
    }
  }
  return stored.map(toFileDetails);
}

/** The read calls of named files on one video canister. */
export interface VideoFileReadApi {
  files(after: string | undefined, limit: number | undefined): Promise<FilePage>;
  getFileChunk(path: string, index: number): Promise<Uint8Array>;
}

/**
 * A named file's bytes (`get_file_chunk`, chunk by chunk), checked against the file digest the
 * canister lists for it: SHA-256 over the chunks' SHA-256 must equal it (`IntegrityError`
 * otherwise). `UsageError` when the video lists no such file or it has no digest yet (not Ready).
 */
export async function downloadFile(
  videoId: string,
  api: VideoFileReadApi,
  path: string,
  options: { signal?: AbortSignal; retry?: Partial<RetryPolicy> } = {},
): Promise<Uint8Array> {
  checkFilePath(path);
  const policy = retryPolicy(options.retry);
  const call = <T>(f: () => Promise<T>): Promise<T> => withRetry(() => f(), { policy, signal: options.signal });
  const info = (await allFiles(api, call)).find((f) => f.path === path);
  if (!info) throw new UsageError(`video ${videoId} holds no file ${path}`);
  const expected = info.digest[0];
  if (!expected) throw new UsageError(`video ${videoId}: file ${path} has no digest yet (the upload is not finished)`);
  const parts: Uint8Array[] = [];
  const digests: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < info.chunk_count; i++) {
    throwIfAborted(options.signal);
    const c = await call(() => api.getFileChunk(path, i));
    const [s, e] = chunkRange(Number(info.size), info.chunk_size, i);
    if (c.length !== e - s) throw new IntegrityError(`${path} chunk ${i}: ${c.length} bytes, expected ${e - s}`, new Uint8Array(), new Uint8Array(), i);
    digests.push(await sha256(c));
    parts.push(c);
    total += c.length;
  }
  const actual = await fileDigest(digests);
  if (!equalBytes(actual, expected)) {
    throw new IntegrityError(`video ${videoId}: file ${path} read back with digest ${toHex(actual)}, listed as ${toHex(expected)}`, expected, actual);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
