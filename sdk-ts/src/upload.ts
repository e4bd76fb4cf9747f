// Upload logic, written against small interfaces (`UploadTransport`) so that it is unit-tested
// with in-memory fakes; `CanvidClient.upload` plugs in the real canister actors.
//
// Protocol (candid/video.did, docs/video-canister.md):
//   spawn.create_video -> video canister id
//   video.begin_upload(spec)            identical spec again = resume (stored chunks kept)
//   video.put_chunk({index, data}) *    any order, in parallel, idempotent
//   video.missing_chunks({start,limit}) paginated; used to resume
//   video.finish_upload()               verifies every chunk, computes the file digest, Ready
import type { ChunkReceipt, MissingChunks, UploadSpec, VideoMetadata } from './bindings/video.did.js';
import { equalBytes, fileDigest, sha256, toHex } from './bytes.js';
import { type ByteSource, DEFAULT_CHUNK_SIZE, chunkCount, chunkRange, rechunk, toSource, type UploadInput } from './chunking.js';
import { runPool } from './concurrency.js';
import {
  AlreadyFinishedError,
  CanvidError,
  IncompleteError,
  IntegrityError,
  UnexpectedError,
  UsageError,
} from './errors.js';
import {
  CHUNK_OVERHEAD,
  DEFAULT_KEY_NAME,
  type EncryptionInfo,
  SCHEME_AES256GCM_V1,
  type VideoKeyMaterial,
  checkEncryption,
  encryptChunk,
  encChunkCount,
  fromCandidEncryption,
  plainLen,
  storedChunkSize,
  storedSize,
  toCandidEncryption,
} from './encryption.js';
import { ProgressTracker, type UploadProgress } from './progress.js';
import type { FetchVideoKeyOptions } from './video-key.js';
import { type RetryPolicy, retryPolicy, throwIfAborted, withRetry } from './retry.js';

/** The calls an upload makes on one video canister (errors already mapped to `CanvidError`). */
export interface VideoUploadApi {
  metadata(): Promise<VideoMetadata>;
  beginUpload(spec: UploadSpec): Promise<VideoMetadata>;
  putChunk(index: number, data: Uint8Array): Promise<ChunkReceipt>;
  missingChunks(start: number | undefined, limit: number | undefined): Promise<MissingChunks>;
  finishUpload(): Promise<VideoMetadata>;
}

/** What an upload needs: video creation through spawn, and access to a video canister. */
export interface UploadTransport {
  createVideo(args: CreateVideoRequest): Promise<string>;
  video(videoId: string): VideoUploadApi;
  /** The video's key with its nonce key (`fetchVideoKey`, `forEncryption`): needed by `encrypt`. */
  videoKey?(videoId: string, options: FetchVideoKeyOptions): Promise<VideoKeyMaterial>;
}

export interface CreateVideoRequest {
  title: string;
  description: string;
  tags: string[];
  /** Defaults to the caller. */
  owner?: string;
  declaredSize: number;
}

/** Metadata given when a video is created. */
export interface VideoInfo {
  title: string;
  description?: string;
  tags?: string[];
  /** MIME type served as the HTTP Content-Type; default `File.type`, else `video/mp4`. */
  mimeType?: string;
  durationMs?: number;
  /** App-level owner (principal text); default the caller. */
  owner?: string;
}

export interface UploadOptions {
  /** Progress callback, called after every confirmed chunk and on phase changes. */
  onProgress?: (p: UploadProgress) => void;
  /** Called once the video canister exists (before any chunk is sent): store the id to resume. */
  onCreated?: (videoId: string) => void;
  /** Cancels the upload; the video canister keeps what was stored, resume later. */
  signal?: AbortSignal;
  /** Chunks in flight at once. Default 4; at most `UPLOAD_WINDOW_CHUNKS` (64) are used. */
  concurrency?: number;
  /** Retry policy for transient failures (Busy, network, SYS_TRANSIENT). */
  retry?: Partial<RetryPolicy>;
  /** Chunk size in bytes, 1..=2,000,000. Default 2,000,000; on resume, the canister's. */
  chunkSize?: number;
  /** Total bytes of a stream input (required to stream without buffering it in memory). */
  size?: number;
  /** Continue an interrupted upload into this video canister instead of creating one. */
  resume?: string;
  /**
   * Declare every chunk's SHA-256 in `begin_upload` so the canister refuses corrupt chunks
   * itself. Default: on for File/Blob/Uint8Array (which are hashed before sending) up to 40,000
   * chunks (the digests must fit one 2 MiB message); streams are hashed while sending and each
   * `put_chunk` receipt is compared with the local digest instead.
   */
  declareDigests?: boolean;
  /**
   * End-to-end encrypt the video (scheme `canvid-aes256gcm-v1`, docs/encryption.md): the video
   * canister is created first, the owner's video key fetched from it (`video_key`), and every
   * chunk encrypted before it is hashed and sent. `chunkSize` is then the *stored* chunk size:
   * each holds `chunkSize - 28` plaintext bytes. Sizes, progress, digests and `chunkDigests`
   * are the stored (ciphertext) file's. `keyName` (default `key_1`; `dfx_test_key` on dfx and
   * PocketIC) and `keyEpoch` (default 0) choose the vetKD key. A resumed encrypted upload is
   * encrypted again with the canister's declaration (same bytes: the nonces are synthetic).
   */
  encrypt?: boolean | { keyName?: string; keyEpoch?: number };
  /** The video key to encrypt with (with its nonce key), instead of asking `video_key`. */
  videoKey?: VideoKeyMaterial;
}

export interface UploadResult {
  videoId: string;
  /** The video's metadata after `finish_upload` (status Ready). */
  metadata: VideoMetadata;
  /** The canvid file digest (SHA-256 over the chunk digests), equal to `metadata.digest`. */
  fileDigest: Uint8Array;
  /** SHA-256 of every chunk, in order: pass to `downloadStream` to verify each chunk on arrival. */
  chunkDigests: Uint8Array[];
  chunkSize: number;
  /** Bytes sent by this call. */
  bytesSent: number;
  /** Chunks the canister already had (resume). */
  chunksSkipped: number;
  /** This call continued an existing upload. */
  resumed: boolean;
  /** How the file is encrypted (`encrypt`); `size` of the source is `encryption.plainSize`. */
  encryption?: EncryptionInfo;
}

/** Largest number of chunk digests declared in one `begin_upload` (32 B each, ~1.3 MB). */
export const MAX_DECLARED_DIGESTS = 40_000;
/**
 * The video canister grows its stable memory at most 64 chunks past the bytes stored and answers
 * `Busy` for a chunk beyond (`canvid_types::video::UPLOAD_WINDOW_CHUNKS`, docs/video-canister.md
 * "Upload"): missing chunks are sent in ascending order with at most this many in flight,
 * so that refusal never happens (it would only be retried, like any `Busy`).
 */
export const UPLOAD_WINDOW_CHUNKS = 64;
/** Page size asked of `missing_chunks` (the canister's maximum). */
const MISSING_PAGE = 10_000;

function statusOf(m: VideoMetadata): 'Empty' | 'Uploading' | 'Ready' {
  return Object.keys(m.status)[0] as 'Empty' | 'Uploading' | 'Ready';
}

function inputMime(input: UploadInput): string | undefined {
  return typeof Blob !== 'undefined' && input instanceof Blob && input.type ? input.type : undefined;
}

/** Every missing chunk index, following `next` until the end. */
export async function allMissing(api: VideoUploadApi, call: <T>(f: () => Promise<T>) => Promise<T>): Promise<Set<number>> {
  const out = new Set<number>();
  let start: number | undefined;
  for (let pages = 0; ; pages++) {
    const page = await call(() => api.missingChunks(start, MISSING_PAGE));
    for (const i of page.missing) out.add(i);
    if (page.next.length === 0) break;
    const next = page.next[0]!;
    if (start !== undefined && next <= start) throw new UnexpectedError(`missing_chunks did not advance (next ${next} after ${start})`);
    start = next;
    if (pages > 1_000_000) throw new UnexpectedError('missing_chunks pagination does not end');
  }
  return out;
}

/**
 * Uploads `input` as a video: creates the canister through spawn (or resumes `options.resume`),
 * declares the file, sends the chunks that are missing with bounded concurrency and retries,
 * finishes, and checks the canister's file digest against the local one.
 */
export async function uploadVideo(
  transport: UploadTransport,
  input: UploadInput,
  info: VideoInfo,
  options: UploadOptions = {},
  clock?: () => number,
): Promise<UploadResult> {
  const tracker = new ProgressTracker(options.onProgress, clock);
  let videoId: string | undefined = options.resume;
  try {
    return await uploadInner(transport, input, info, options, tracker, (id) => {
      videoId = id;
    });
  } catch (err) {
    const e =
      err instanceof CanvidError
        ? err
        : new UnexpectedError(err instanceof Error ? err.message : String(err), { cause: err });
    if (videoId && e.videoId === undefined) e.videoId = videoId;
    throw e;
  }
}

async function uploadInner(
  transport: UploadTransport,
  input: UploadInput,
  info: VideoInfo,
  options: UploadOptions,
  tracker: ProgressTracker,
  setVideoId: (id: string) => void,
): Promise<UploadResult> {
  const { signal } = options;
  const policy = retryPolicy(options.retry);
  const requested = options.concurrency ?? 4;
  if (!Number.isInteger(requested) || requested < 1) throw new UsageError(`concurrency must be an integer >= 1, got ${requested}`);
  const concurrency = Math.min(requested, UPLOAD_WINDOW_CHUNKS);
  const call = <T>(f: () => Promise<T>): Promise<T> => withRetry(() => f(), { policy, signal });
  throwIfAborted(signal);

  let source: ByteSource = await toSource(input, options.size);
  if (source.size < 1) throw new UsageError('cannot upload an empty file');
  const mimeType = info.mimeType ?? inputMime(input) ?? 'video/mp4';

  // Not retried: a lost reply would otherwise create (and pay for) a second canister.
  const createVideo = async (declaredSize: number): Promise<string> => {
    tracker.setPhase('creating');
    throwIfAborted(signal);
    const id = await transport.createVideo({
      title: info.title,
      description: info.description ?? '',
      tags: info.tags ?? [],
      owner: info.owner,
      declaredSize,
    });
    setVideoId(id);
    tracker.videoId = id;
    options.onCreated?.(id);
    return id;
  };

  // Resuming: the canister's declaration decides the chunk grid.
  let videoId = options.resume;
  let existing: VideoMetadata | undefined;
  let chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (videoId) {
    setVideoId(videoId);
    tracker.videoId = videoId;
    existing = await call(() => transport.video(videoId!).metadata());
  }

  // Encryption: the canister must exist (its id is in the key and every chunk's AAD) and its
  // key be known before the first chunk is hashed; the source is replaced by its ciphertext.
  let enc: EncryptionInfo | undefined;
  const declared = existing && statusOf(existing) !== 'Empty' ? existing : undefined;
  if (options.encrypt || options.videoKey) {
    const want = typeof options.encrypt === 'object' ? options.encrypt : {};
    if (declared) {
      if (!declared.encryption.length) throw new UsageError(`video ${videoId} holds an upload in the clear, not an encrypted one`);
      enc = fromCandidEncryption(declared.encryption[0]!);
      if (enc.plainSize !== source.size) throw new UsageError(`video ${videoId} holds an encrypted upload of ${enc.plainSize} bytes; this input is ${source.size} bytes`);
    } else {
      if (chunkSize <= CHUNK_OVERHEAD) throw new UsageError(`an encrypted upload's chunk size must exceed ${CHUNK_OVERHEAD} bytes (its overhead), got ${chunkSize}`);
      enc = {
        scheme: SCHEME_AES256GCM_V1,
        keyName: want.keyName ?? options.videoKey?.keyName ?? DEFAULT_KEY_NAME,
        keyEpoch: want.keyEpoch ?? options.videoKey?.keyEpoch ?? 0,
        plainSize: source.size,
        plainChunkSize: chunkSize - CHUNK_OVERHEAD,
      };
      checkEncryption(enc);
    }
    if (!videoId) videoId = await createVideo(storedSize(enc));
    let key = options.videoKey;
    if (!key) {
      if (!transport.videoKey) throw new UsageError('this transport cannot fetch video keys: pass `videoKey`');
      const id = videoId;
      const e = enc;
      key = await call(() => transport.videoKey!(id, { keyName: e.keyName, keyEpoch: e.keyEpoch, forEncryption: true }));
    }
    if (key.canisterId !== videoId || key.keyName !== enc.keyName || key.keyEpoch !== enc.keyEpoch || !key.nonceKey) {
      throw new UsageError(`the video key is ${key.keyName}/${key.keyEpoch} of ${key.canisterId}${key.nonceKey ? '' : ' (decrypt only)'}, the upload needs ${enc.keyName}/${enc.keyEpoch} of ${videoId} with its nonce key`);
    }
    source = encryptedSource(source, enc, key);
  } else if (declared?.encryption.length) {
    throw new UsageError(`video ${videoId} holds an encrypted upload: resume it with \`encrypt\``);
  }
  const size = source.size;
  const withEnc = (r: UploadResult): UploadResult => (enc ? { ...r, encryption: enc } : r);
  if (existing) {
    if (declared) {
      if (options.chunkSize !== undefined && options.chunkSize !== existing.chunk_size) {
        throw new UsageError(`video ${videoId} was declared with ${existing.chunk_size}-byte chunks, not ${options.chunkSize}`);
      }
      chunkSize = existing.chunk_size;
      if (Number(existing.size) !== size) {
        throw new UsageError(`video ${videoId} holds a ${existing.size}-byte upload; this input is ${size} bytes`);
      }
    }
  }
  const count = chunkCount(size, chunkSize);
  tracker.start(size, count);

  // Random-access sources are hashed first, so the digests can be declared up front.
  let digests: Uint8Array[] | undefined;
  if (source.kind === 'random') {
    tracker.setPhase('hashing');
    digests = [];
    for (let i = 0; i < count; i++) {
      throwIfAborted(signal);
      const [s, e] = chunkRange(size, chunkSize, i);
      digests.push(await sha256(await source.read(s, e)));
      tracker.hashed(e - s);
    }
  }
  const localFileDigest = digests ? await fileDigest(digests) : undefined;
  const declare = digests !== undefined && (options.declareDigests ?? count <= MAX_DECLARED_DIGESTS);
  if (declare && count > MAX_DECLARED_DIGESTS) {
    throw new UsageError(`declareDigests: ${count} chunk digests do not fit one message (max ${MAX_DECLARED_DIGESTS})`);
  }
  const spec: UploadSpec = {
    mime_type: mimeType,
    total_size: BigInt(size),
    chunk_size: chunkSize,
    chunk_digests: declare ? [digests!] : [],
    file_digest: declare && localFileDigest ? [localFileDigest] : [],
    duration_ms: info.durationMs !== undefined ? [BigInt(info.durationMs)] : [],
    path: [],
    rendition: [],
    encryption: enc ? [toCandidEncryption(enc)] : [],
  };

  if (!videoId) {
    videoId = await createVideo(size);
    existing = undefined;
  }
  const api = transport.video(videoId);

  // Declare (fresh or Empty canister), or find what a previous attempt stored.
  let status = existing ? statusOf(existing) : 'Empty';
  let missing: Set<number>;
  if (status === 'Ready') {
    return withEnc(await alreadyReady(existing!, videoId, source, chunkSize, digests, localFileDigest, tracker));
  }
  if (status === 'Empty') {
    await call(() => api.beginUpload(spec));
    missing = new Set(Array.from({ length: count }, (_, i) => i));
  } else {
    if (existing!.mime_type !== mimeType && info.mimeType !== undefined) {
      throw new UsageError(`video ${videoId} was declared as ${existing!.mime_type}, not ${mimeType}`);
    }
    missing = await allMissing(api, call);
  }
  let haveBytes = 0;
  for (let i = 0; i < count; i++) {
    if (!missing.has(i)) {
      const [s, e] = chunkRange(size, chunkSize, i);
      haveBytes += e - s;
    }
  }
  tracker.start(size, count, haveBytes, count - missing.size);
  const chunksSkipped = count - missing.size;
  tracker.setPhase('uploading');

  // Sends one chunk (with retries) and checks the canister's receipt against the local digest.
  const put = async (index: number, data: Uint8Array, digest: Uint8Array): Promise<void> => {
    const receipt = await call(() => api.putChunk(index, data));
    if (signal?.aborted) return;
    if (receipt.index !== index || receipt.len !== data.length || !equalBytes(receipt.sha256, digest)) {
      throw new IntegrityError(
        `chunk ${index}: the canister stored ${receipt.len} bytes with SHA-256 ${toHex(receipt.sha256)}, sent ${data.length} bytes with ${toHex(digest)}`,
        digest,
        receipt.sha256,
        index,
      );
    }
    tracker.chunkDone(data.length);
  };

  if (source.kind === 'random') {
    const src = source;
    const sendAll = (indices: Iterable<number>) =>
      runPool(
        indices,
        concurrency,
        async (i) => {
          const [s, e] = chunkRange(size, chunkSize, i);
          await put(i, await src.read(s, e), digests![i]!);
        },
        signal,
      );
    await sendAll([...missing].sort((a, b) => a - b));
    tracker.setPhase('finishing');
    const meta = await finish(api, call, async (still) => {
      // The canister lost or refused some chunks since we sent them: send those once more.
      tracker.setPhase('uploading');
      await sendAll(still);
      tracker.setPhase('finishing');
    });
    return withEnc(done(meta, videoId, localFileDigest!, digests!, chunkSize, tracker, chunksSkipped, options.resume !== undefined));
  }

  // Sequential source: hash every chunk as it streams by, send only the missing ones.
  const streamed: Uint8Array[] = new Array(count);
  async function* jobs(): AsyncGenerator<{ index: number; data: Uint8Array; digest: Uint8Array }> {
    let index = 0;
    for await (const data of rechunk((source as { pieces: AsyncIterable<Uint8Array> }).pieces, size, chunkSize)) {
      throwIfAborted(signal);
      const digest = await sha256(data);
      streamed[index] = digest;
      tracker.hashed(data.length);
      if (missing.has(index)) yield { index, data, digest };
      index++;
    }
  }
  await runPool(jobs(), concurrency, (j) => put(j.index, j.data, j.digest), signal);
  const digestsNow = streamed;
  const local = await fileDigest(digestsNow);
  tracker.setPhase('finishing');
  const meta = await finish(api, call, async (still) => {
    throw new IncompleteError('Incomplete', { missing_count: still.length, missing: still }, `${still.length} chunks still missing after sending the whole stream; resume with the same input`, {});
  });
  return withEnc(done(meta, videoId, local, digestsNow, chunkSize, tracker, chunksSkipped, options.resume !== undefined));
}

/** `finish_upload`, tolerating a retried call that finds the video already Ready. */
async function finish(
  api: VideoUploadApi,
  call: <T>(f: () => Promise<T>) => Promise<T>,
  resend: (missing: number[]) => Promise<void>,
): Promise<VideoMetadata> {
  for (let round = 0; ; round++) {
    try {
      return await call(() => api.finishUpload());
    } catch (err) {
      if (err instanceof AlreadyFinishedError) {
        // An earlier attempt's reply was lost: the video is Ready already.
        const m = await call(() => api.metadata());
        if (statusOf(m) === 'Ready') return m;
        throw err;
      }
      if (err instanceof IncompleteError && round === 0) {
        const still = [...(await allMissing(api, call))].sort((a, b) => a - b);
        await resend(still);
        continue;
      }
      throw err;
    }
  }
}

function done(
  meta: VideoMetadata,
  videoId: string,
  local: Uint8Array,
  digests: Uint8Array[],
  chunkSize: number,
  tracker: ProgressTracker,
  chunksSkipped: number,
  resumed: boolean,
): UploadResult {
  const remote = meta.digest[0];
  if (!remote || !equalBytes(remote, local)) {
    throw new IntegrityError(
      `video ${videoId}: the canister's file digest ${remote ? toHex(remote) : '(none)'} differs from the local ${toHex(local)}`,
      local,
      remote ?? new Uint8Array(),
    );
  }
  tracker.setPhase('done');
  return { videoId, metadata: meta, fileDigest: local, chunkDigests: digests, chunkSize, bytesSent: tracker.bytesSent, chunksSkipped, resumed };
}

/** Resuming a video that is already Ready: nothing to send if it holds this very file. */
async function alreadyReady(
  meta: VideoMetadata,
  videoId: string,
  source: ByteSource,
  chunkSize: number,
  digests: Uint8Array[] | undefined,
  local: Uint8Array | undefined,
  tracker: ProgressTracker,
): Promise<UploadResult> {
  if (!digests) {
    digests = [];
    for await (const c of rechunk((source as { pieces: AsyncIterable<Uint8Array> }).pieces, source.size, chunkSize)) {
      digests.push(await sha256(c));
    }
    local = await fileDigest(digests);
  }
  const remote = meta.digest[0];
  if (!remote || !equalBytes(remote, local!)) {
    throw new AlreadyFinishedError('AlreadyFinished', null, `video ${videoId} is already Ready with different content (digest ${remote ? toHex(remote) : '?'})`);
  }
  const count = digests.length;
  tracker.start(source.size, count, source.size, count);
  return done(meta, videoId, local!, digests, chunkSize, tracker, count, true);
}


/**
 * The ciphertext of `plain` as a source on the stored grid (`storedChunkSize(enc)`): reads of a
 * stored chunk encrypt the plaintext chunk; a stream's chunks are encrypted as they pass.
 */
export function encryptedSource(plain: ByteSource, enc: EncryptionInfo, key: VideoKeyMaterial): ByteSource {
  const stored = storedChunkSize(enc);
  const size = storedSize(enc);
  if (plain.kind === 'random') {
    return {
      kind: 'random',
      size,
      async read(start, end) {
        const i = start / stored;
        if (!Number.isInteger(i) || i >= encChunkCount(enc) || end !== start + plainLen(enc, i) + CHUNK_OVERHEAD) {
          throw new UsageError(`encrypted sources are read a stored chunk at a time, not [${start}, ${end})`);
        }
        const p = i * enc.plainChunkSize;
        return encryptChunk(key, enc, i, await plain.read(p, p + plainLen(enc, i)));
      },
    };
  }
  const pieces = plain.pieces;
  return {
    kind: 'sequential',
    size,
    pieces: (async function* () {
      let i = 0;
      for await (const c of rechunk(pieces, enc.plainSize, enc.plainChunkSize)) yield await encryptChunk(key, enc, i++, c);
    })(),
  };
}
