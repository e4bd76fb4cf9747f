// `CanvidClient`: the SDK's entry point, wiring the pure logic (upload, download, list) to the
// canisters through `@icp-sdk/core` actors.
import { Actor, type ActorSubclass, type Agent, HttpAgent, type Identity } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import { type IndexStats, idlFactory as indexIdl, type _SERVICE as IndexService, type VideoEntry } from './bindings/index.did.js';
import {
  type QuotaStatus,
  idlFactory as spawnIdl,
  type _SERVICE as SpawnService,
  type SpawnStats,
  type SpawnedVideo,
} from './bindings/spawn.did.js';
import {
  type CanisterInfo as VideoCanisterInfo,
  type ChangeOwnerResult,
  type OwnershipOffer,
  type MetadataPatch,
  type VideoMetadata,
  idlFactory as videoIdl,
  type _SERVICE as VideoService,
} from './bindings/video.did.js';
import { CanvidAccess } from './access.js';
import { IndexAdmin, SpawnAdmin } from './admin.js';
import { CanvidCollection } from './collection.js';
import { fromHex, toHex } from './bytes.js';
import { type CertifiedCanisterInfo, type ResponseVerifier, metadataRequest, readCanisterInfo, verifyMetadataAnswer } from './certified.js';
import type { UploadInput } from './chunking.js';
import { type ChunkDigestPage, type DownloadOptions, type VideoReadApi, downloadAll, downloadStream, toDigestPage } from './download.js';
import { AbortError, type CallSite, NotAuthorizedError, TransferVerificationError, UsageError, guard, unwrap } from './errors.js';
import { type ListOptions, type Page, type VideoListing, paginate, principalText, toListing } from './list.js';
import { type RetryPolicy, retryPolicy, sleep, withRetry } from './retry.js';
import {
  type CreateVideoRequest,
  type UploadOptions,
  type UploadResult,
  type UploadTransport,
  type VideoInfo,
  type VideoUploadApi,
  uploadVideo,
} from './upload.js';
import { type VideoUrlOptions, videoUrl } from './url.js';
import {
  type FileDetails,
  type NamedFile,
  type RenditionInfo,
  type UploadFilesOptions,
  type UploadFilesResult,
  type VideoFileReadApi,
  type VideoFilesApi,
  MAX_FILE_PAGE,
  allFiles,
  downloadFile,
  toFileDetails,
  toRenditionInfo,
  uploadFiles,
} from './files.js';
import { type HlsUrlOptions, hlsUrl } from './hls.js';
import {
  type EncryptionInfo,
  type VideoKeyMaterial,
  decryptStream,
  fromCandidEncryption,
  readDecryptedRange,
} from './encryption.js';
import { type FetchVideoKeyOptions, fetchVideoKey } from './video-key.js';

/** Mainnet API boundary node. */
export const IC_HOST = 'https://icp-api.io';

export interface ClientOptions {
  /** An agent you built (its identity signs every call). Either this or `host`. */
  agent?: Agent;
  /** Replica / boundary node URL when the SDK builds the agent. Default `https://icp-api.io`. */
  host?: string;
  /** Identity for the agent the SDK builds; default anonymous (can read and list, not upload). */
  identity?: Identity;
  /**
   * The network is a local replica (`canvid serve`, dfx, PocketIC): fetch its root key from
   * `/api/v2/status` (never do this on mainnet: a man in the middle could hand you its own key).
   * Prefer `rootKey` when you have the key (canvid serve writes it to serve.json).
   */
  local?: boolean;
  /** The replica's root key (DER bytes or hex), for local networks. */
  rootKey?: Uint8Array | string;
  /** The spawn canister (creates video canisters). */
  spawnId: string | Principal;
  /** The index canister (listing by creator/owner); optional. */
  indexId?: string | Principal;
  /** Default retry policy for every call. */
  retry?: Partial<RetryPolicy>;
  /** `fetch` for the agent (tests, proxies). */
  fetch?: typeof fetch;
  /** Passed to `HttpAgent` (default true): verify the node signatures of query answers. */
  verifyQuerySignatures?: boolean;
  /**
   * HTTP response verification for the certified `/metadata.json` downloads take the file digest
   * from. Default: `@dfinity/response-verification`, loaded on first use. Pass it yourself when
   * your bundler cannot load that package's wasm by itself (call its initialiser first).
   */
  responseVerifier?: ResponseVerifier;
}

/** Metadata of a video, with principals as text, sizes as numbers and times as `Date`. */
export interface VideoDetails {
  videoId: string;
  status: 'Empty' | 'Uploading' | 'Ready';
  title: string;
  description: string;
  tags: string[];
  mimeType: string;
  size: number;
  durationMs?: number;
  chunkSize: number;
  chunkCount: number;
  uploadedChunks: number;
  uploadedBytes: number;
  /** File digest (SHA-256 over the chunk digests), hex; set when Ready. */
  digest?: string;
  owner: string;
  creator: string;
  /** Marketplace / operator approved to transfer the video. */
  operator?: string;
  transferSeq: bigint;
  createdAt: Date;
  updatedAt: Date;
  readyAt?: Date;
  /**
   * Who controls the canister: `owner` (the owner is a controller), `afterUpload` (a spawned
   * video whose upload is not finished: the video and `fundedBy` control it; the owner becomes
   * a controller at `finishUpload`) or `handingOver` (finished, the hand-over is being retried:
   * `claimControl` retries it at once).
   */
  control: 'owner' | 'afterUpload' | 'handingOver';
  /** The spawn canister that funded the video, while it has not handed control over. */
  fundedBy?: string;
  /** Named files besides the main file (`listFiles`); 0 for a video without any. */
  files: number;
  /** The adaptive-streaming ladder (files declared with a rendition), highest bandwidth first. */
  renditions: Array<RenditionInfo & { path: string }>;
  /**
   * The main file is end-to-end encrypted (docs/encryption.md): `size`, `chunkSize` and `digest`
   * are the stored ciphertext's, `mimeType` and `durationMs` the plaintext's. Read it with
   * `downloadDecrypted` / `readDecrypted`, play it with `playEncrypted`.
   */
  encryption?: EncryptionInfo;
  /** The raw candid record. */
  raw: VideoMetadata;
}

function controlOf(m: VideoMetadata): Pick<VideoDetails, 'control' | 'fundedBy'> {
  const c = m.control[0];
  if (!c || 'Owner' in c) return { control: 'owner' };
  if ('AfterUpload' in c) return { control: 'afterUpload', fundedBy: c.AfterUpload.funded_by.toText() };
  return { control: 'handingOver', fundedBy: c.HandingOver.funded_by.toText() };
}

function nsToDate(ns: bigint): Date {
  return new Date(Number(ns / 1_000_000n));
}

function hexOf(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function toDetails(videoId: string, m: VideoMetadata): VideoDetails {
  return {
    videoId,
    status: Object.keys(m.status)[0] as VideoDetails['status'],
    title: m.title,
    description: m.description,
    tags: m.tags,
    mimeType: m.mime_type,
    size: Number(m.size),
    durationMs: m.duration_ms.length ? Number(m.duration_ms[0]) : undefined,
    chunkSize: m.chunk_size,
    chunkCount: m.chunk_count,
    uploadedChunks: m.uploaded_chunks,
    uploadedBytes: Number(m.uploaded_bytes),
    digest: m.digest.length ? hexOf(m.digest[0]!) : undefined,
    owner: m.owner.toText(),
    creator: m.creator.toText(),
    operator: m.operator.length ? m.operator[0]!.toText() : undefined,
    transferSeq: m.transfer_seq,
    createdAt: nsToDate(m.created_at),
    updatedAt: nsToDate(m.updated_at),
    readyAt: m.ready_at.length ? nsToDate(m.ready_at[0]!) : undefined,
    ...controlOf(m),
    files: m.files?.[0] ?? 0,
    renditions: (m.renditions?.[0] ?? []).map((r) => ({ path: r.path, ...toRenditionInfo(r.rendition) })),
    ...(m.encryption?.length ? { encryption: fromCandidEncryption(m.encryption[0]!) } : {}),
    raw: m,
  };
}

export interface TransferResult {
  /** Transfers so far, this one included. */
  transferSeq: bigint;
  /**
   * Controllers of the video canister after the transfer, as the IC's certified state has them
   * (`read_state`), checked to be exactly those `change_owner` returned and, with
   * `keepControllers`, exactly `{newOwner, video} ∪ keepControllers`.
   */
  controllers: string[];
  /** SHA-256 of the video canister's module (hex) from the certified state; checked against `expectedModuleHash` when given. */
  moduleHash?: string;
  /** The index acknowledged the new owner in this call (else a timer in the canister retries). */
  indexNotified: boolean;
  /**
   * Whether the new owner controls the canister now. False when the video's upload is not
   * finished: a spawned video is controlled by itself and the spawn canister until then
   * (security review M3), the transfer moved the app-level ownership only, and the owner becomes
   * a controller when the upload is finished (the index learns of the transfer then too).
   */
  ownerControls: boolean;
}

/** Options of `transferOwnership`. */
export interface TransferOptions {
  signal?: AbortSignal;
  /**
   * The controllers to keep besides the new owner and the video itself (at most 8), e.g.
   * `[spawnId]` to keep platform upgrades, or `[]` for none: the canister sets exactly
   * `{newOwner, video} ∪ keepControllers` and the SDK checks the certified result is that set.
   * Omitted: the canister's default (the canister that installed the video, if it still is a
   * controller — read from state the seller's code could have changed, see docs/sdk.md
   * "Selling a video safely").
   */
  keepControllers?: readonly (Principal | string)[];
  /**
   * The module hash the video canister must run (hex or 32 bytes), e.g. the official one the
   * spawn canister's `video_wasm_info` publishes; checked against the certified state after the
   * transfer.
   */
  expectedModuleHash?: Uint8Array | string;
}

/** A pending two-step ownership offer ({@link CanvidClient.offerOwnership}). */
export interface OwnershipOfferInfo {
  newOwner: string;
  /** Controllers to keep when it is accepted; undefined: the canister's default. */
  keepControllers?: string[];
  offeredBy: string;
  offeredAt: Date;
  /** Accepted only before this time (7 days after the offer). */
  expiresAt: Date;
}

function toOfferInfo(o: OwnershipOffer): OwnershipOfferInfo {
  return {
    newOwner: o.new_owner.toText(),
    keepControllers: o.keep_controllers.length ? o.keep_controllers[0]!.map((p) => p.toText()) : undefined,
    offeredBy: o.offered_by.toText(),
    offeredAt: new Date(Number(o.offered_at / 1_000_000n)),
    expiresAt: new Date(Number(o.expires_at / 1_000_000n)),
  };
}

/** `expectedModuleHash` as lower-case hex, checked to be 32 bytes. */
function moduleHashOption(hash: Uint8Array | string | undefined): string | undefined {
  if (hash === undefined) return undefined;
  const hex = (typeof hash === 'string' ? hash.trim() : toHex(hash)).toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new UsageError(`expectedModuleHash must be 32 bytes (64 hex digits), got ${hex.length / 2} bytes`);
  return hex;
}

/** How often the certified controllers are read before a mismatch is reported (a replica may lag a round). */
const CERTIFIED_READS = 3;
const CERTIFIED_READ_DELAY_MS = 1000;

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === a.length && sb.size === b.length && sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

/** Options for one call: cancellation and retries. */
export interface CallOptions {
  signal?: AbortSignal;
  retry?: Partial<RetryPolicy>;
}


/** Client for the canvid canisters. Create it with `CanvidClient.create`. */
export class CanvidClient {
  /** The agent every call goes through. */
  readonly agent: Agent;
  readonly spawnId: Principal;
  readonly indexId?: Principal;
  private readonly retry: RetryPolicy;
  private readonly spawn: ActorSubclass<SpawnService>;
  private readonly index?: ActorSubclass<IndexService>;
  private readonly videos = new Map<string, ActorSubclass<VideoService>>();
  private readonly responseVerifier?: ResponseVerifier;

  private constructor(agent: Agent, options: ClientOptions) {
    this.agent = agent;
    this.spawnId = Principal.from(options.spawnId);
    this.indexId = options.indexId !== undefined ? Principal.from(options.indexId) : undefined;
    this.retry = retryPolicy(options.retry);
    this.responseVerifier = options.responseVerifier;
    this.spawn = Actor.createActor<SpawnService>(spawnIdl, { agent, canisterId: this.spawnId });
    if (this.indexId) this.index = Actor.createActor<IndexService>(indexIdl, { agent, canisterId: this.indexId });
  }

  /**
   * Creates a client. Pass `agent`, or `host` + `identity`. The root key is fetched only when
   * `local: true` (and not when `rootKey` is given).
   */
  static async create(options: ClientOptions): Promise<CanvidClient> {
    if (options.agent && (options.host || options.identity)) {
      throw new UsageError('pass either `agent` or `host`/`identity`, not both');
    }
    const rootKey = typeof options.rootKey === 'string' ? fromHex(options.rootKey) : options.rootKey;
    let agent: Agent;
    if (options.agent) {
      agent = options.agent;
      if (rootKey && agent instanceof HttpAgent) agent.rootKey = rootKey;
      else if (options.local && !rootKey) await guard({ method: 'fetchRootKey' }, () => agent.fetchRootKey());
    } else {
      agent = await guard({ method: 'HttpAgent.create' }, () =>
        HttpAgent.create({
          host: options.host ?? IC_HOST,
          identity: options.identity,
          fetch: options.fetch,
          rootKey,
          shouldFetchRootKey: options.local === true && !rootKey,
          verifyQuerySignatures: options.verifyQuerySignatures,
        }),
      );
    }
    return new CanvidClient(agent, options);
  }

  /** The principal the agent signs as. */
  async principal(): Promise<Principal> {
    return this.agent.getPrincipal();
  }

  private video(videoId: string): ActorSubclass<VideoService> {
    let a = this.videos.get(videoId);
    if (!a) {
      a = Actor.createActor<VideoService>(videoIdl, { agent: this.agent, canisterId: Principal.fromText(videoId) });
      this.videos.set(videoId, a);
    }
    return a;
  }

  private call<T>(videoId: string, method: string, f: () => Promise<T>, opts: CallOptions = {}): Promise<T> {
    const policy = opts.retry ? retryPolicy({ ...this.retry, ...opts.retry }) : this.retry;
    return withRetry(() => guard({ canisterId: videoId, method }, f), { policy, signal: opts.signal });
  }

  /** The upload calls on one video canister. */
  videoUploadApi(videoId: string): VideoUploadApi {
    const v = this.video(videoId);
    const site = (method: string): CallSite => ({ canisterId: videoId, method });
    return {
      metadata: () => guard(site('metadata'), () => v.metadata()),
      beginUpload: async (spec) => unwrap(await guard(site('begin_upload'), () => v.begin_upload(spec)), site('begin_upload')),
      putChunk: async (index, data) => unwrap(await guard(site('put_chunk'), () => v.put_chunk({ index, data, path: [] })), site('put_chunk')),
      missingChunks: async (start, limit) =>
        unwrap(
          await guard(site('missing_chunks'), () =>
            v.missing_chunks({ start: start === undefined ? [] : [start], limit: limit === undefined ? [] : [limit], path: [] }),
          ),
          site('missing_chunks'),
        ),
      finishUpload: async () => unwrap(await guard(site('finish_upload'), () => v.finish_upload()), site('finish_upload')),
    };
  }

  /** The named-file upload calls on one video canister. */
  videoFilesApi(videoId: string): VideoFilesApi {
    const v = this.video(videoId);
    const site = (method: string): CallSite => ({ canisterId: videoId, method });
    return {
      metadata: () => guard(site('metadata'), () => v.metadata()),
      beginFiles: async (specs) => unwrap(await guard(site('begin_files'), () => v.begin_files(specs)), site('begin_files')),
      putFileChunk: async (path, index, data) =>
        unwrap(await guard(site('put_chunk'), () => v.put_chunk({ index, data, path: [path] })), site('put_chunk')),
      missingFileChunks: async (path, start, limit) =>
        unwrap(
          await guard(site('missing_chunks'), () =>
            v.missing_chunks({ start: start === undefined ? [] : [start], limit: limit === undefined ? [] : [limit], path: [path] }),
          ),
          site('missing_chunks'),
        ),
      files: async (after, limit) =>
        unwrap(
          await guard(site('files'), () => v.files({ after: after === undefined ? [] : [after], limit: limit === undefined ? [] : [limit] })),
          site('files'),
        ),
      finishUpload: async () => unwrap(await guard(site('finish_upload'), () => v.finish_upload()), site('finish_upload')),
    };
  }

  /** The named-file read calls on one video canister. */
  videoFileReadApi(videoId: string): VideoFileReadApi {
    const v = this.video(videoId);
    const site = (method: string): CallSite => ({ canisterId: videoId, method });
    return {
      files: async (after, limit) =>
        unwrap(
          await guard(site('files'), () => v.files({ after: after === undefined ? [] : [after], limit: limit === undefined ? [] : [limit] })),
          site('files'),
        ),
      getFileChunk: async (path, index) => unwrap(await guard(site('get_file_chunk'), () => v.get_file_chunk({ path, index })), site('get_file_chunk')),
    };
  }

  /** The read calls on one video canister. */
  videoReadApi(videoId: string): VideoReadApi {
    const v = this.video(videoId);
    const site = (method: string): CallSite => ({ canisterId: videoId, method });
    return {
      metadata: () => guard(site('metadata'), () => v.metadata()),
      getChunk: async (index) => unwrap(await guard(site('get_chunk'), () => v.get_chunk(index)), site('get_chunk')),
      chunkDigests: async (start, limit) =>
        unwrap(
          await guard(site('chunk_digests'), () => v.chunk_digests({ start, limit: limit === undefined ? [] : [limit], path: [] })),
          site('chunk_digests'),
        ),
      certifiedMetadata: async () => {
        const request = metadataRequest();
        const response = await guard(site('http_request'), () => v.http_request(request));
        return verifyMetadataAnswer(videoId, request, response, { rootKey: this.agent.rootKey, verifier: this.responseVerifier });
      },
    };
  }

  /**
   * The canister's controllers and module hash from the IC's certified state (`read_state`;
   * the agent verifies the certificate against its root key). `CertificationError` when it does
   * not verify.
   */
  certifiedCanisterInfo(canisterId: string | Principal): Promise<CertifiedCanisterInfo> {
    const id = principalText(canisterId);
    return guard({ canisterId: id, method: 'read_state' }, () => readCanisterInfo(this.agent, id));
  }

  /** Creates a video canister through the spawn canister; returns its id. */
  async createVideo(req: CreateVideoRequest, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const site = { canisterId: this.spawnId.toText(), method: 'create_video' };
    if (opts.signal?.aborted) throw new AbortError(opts.signal.reason);
    const r = await guard(site, () =>
      this.spawn.create_video({
        title: req.title,
        description: req.description,
        tags: req.tags,
        owner: req.owner ? [Principal.fromText(req.owner)] : [],
        declared_size: BigInt(req.declaredSize),
      }),
    );
    return unwrap(r, site).canister_id.toText();
  }

  /**
   * SHA-256 (hex) of the video wasm the spawn canister installs (its `video_wasm_info`), i.e. the
   * official module hash to pass as `transferOwnership`'s `expectedModuleHash`; `undefined` when
   * the spawn holds no video wasm. A query that one replica answers: a marketplace canister
   * reads it by an inter-canister call instead.
   */
  async officialVideoModuleHash(opts: CallOptions = {}): Promise<string | undefined> {
    const site = { canisterId: this.spawnId.toText(), method: 'video_wasm_info' };
    const policy = opts.retry ? retryPolicy({ ...this.retry, ...opts.retry }) : this.retry;
    const info = await withRetry(() => guard(site, () => this.spawn.video_wasm_info()), { policy, signal: opts.signal });
    return info.length ? toHex(info[0]!.sha256) : undefined;
  }

  /**
   * Uploads a video: creates its canister through spawn (or continues `options.resume`), hashes
   * the chunks with WebCrypto SHA-256, sends the missing ones with bounded concurrency and
   * retries, finishes and verifies the file digest. On failure the thrown error carries
   * `videoId` (when the canister exists) to resume with. With `encrypt` (end-to-end encryption,
   * see `UploadOptions.encrypt`) a video still public once finished is made private, as
   * `canvid upload --encrypt` does (a public video's key goes only to the owner and uploaders),
   * unless `keepPublic`; then allowlist viewers or sell passes.
   */
  async upload(input: UploadInput, info: VideoInfo, options: UploadOptions & { keepPublic?: boolean } = {}): Promise<UploadResult> {
    const transport: UploadTransport = {
      createVideo: (req) => this.createVideo(req, { signal: options.signal }),
      video: (id) => this.videoUploadApi(id),
      videoKey: (id, opts) => this.videoKey(id, opts),
    };
    const r = await uploadVideo(transport, input, info, { ...options, retry: { ...this.retry, ...(options.retry ?? {}) } });
    if (r.encryption && !options.keepPublic) {
      // As `canvid upload --encrypt` does: a public video's key goes only to its owner and
      // uploaders, so an encrypted video left public could be watched by nobody else.
      const access = this.access();
      if ((await access.accessInfo(r.videoId)).policy.mode === 'public') {
        try {
          await access.setAccess(r.videoId, { mode: 'private' });
        } catch (err) {
          if (!(err instanceof NotAuthorizedError)) throw err; // not the owner: the owner decides
        }
      }
    }
    return r;
  }

  /**
   * Uploads a set of named files (an HLS ladder from `canvid hls prepare`, subtitles,
   * thumbnails; see `filesFromDirectory` / `filesFromInput`) as one video, or into
   * `options.resume`: declares them in batches of at most 500 with their chunk digests
   * (`begin_files`), sends the missing chunks in declaration order with bounded concurrency and
   * retries, finishes, and checks every stored file's digest. On failure the thrown error carries
   * `videoId`; call again with the same files and `{ resume: videoId }` to send only what is missing.
   */
  uploadFiles(files: readonly NamedFile[], info: VideoInfo, options: UploadFilesOptions = {}): Promise<UploadFilesResult> {
    return uploadFiles(
      { createVideo: (req) => this.createVideo(req, { signal: options.signal }), videoFiles: (id) => this.videoFilesApi(id) },
      files,
      info,
      { ...options, retry: { ...this.retry, ...(options.retry ?? {}) } },
    );
  }

  /** One page of a video's named files in path order, after `after`, at most `limit` (max 500). */
  async listFilesPage(
    videoId: string,
    options: CallOptions & { after?: string; limit?: number } = {},
  ): Promise<{ files: FileDetails[]; total: number; next?: string; status: 'Empty' | 'Uploading' | 'Ready' }> {
    const api = this.videoFileReadApi(videoId);
    const page = await this.call(videoId, 'files', () => api.files(options.after, options.limit ?? MAX_FILE_PAGE), options);
    return {
      files: page.files.map(toFileDetails),
      total: page.total,
      ...(page.next.length ? { next: page.next[0]! } : {}),
      status: Object.keys(page.status)[0] as 'Empty' | 'Uploading' | 'Ready',
    };
  }

  /** Every named file of a video (page after page), in path order. */
  async listFiles(videoId: string, opts: CallOptions = {}): Promise<FileDetails[]> {
    const api = this.videoFileReadApi(videoId);
    const policy = opts.retry ? retryPolicy({ ...this.retry, ...opts.retry }) : this.retry;
    const files = await allFiles(api, (f) => withRetry(() => f(), { policy, signal: opts.signal }));
    return files.map(toFileDetails);
  }

  /** A named file's bytes, checked against the file digest the canister lists (see `downloadFile`). */
  downloadFile(videoId: string, path: string, opts: CallOptions = {}): Promise<Uint8Array> {
    return downloadFile(videoId, this.videoFileReadApi(videoId), path, { signal: opts.signal, retry: { ...this.retry, ...(opts.retry ?? {}) } });
  }

  /** URL of a video's HLS playlist on a gateway (see `hlsUrl`). */
  hlsUrl(videoId: string, gateway: string, options?: HlsUrlOptions): string {
    return hlsUrl(videoId, gateway, options);
  }

  /** The video's metadata. */
  async getMetadata(videoId: string, opts: CallOptions = {}): Promise<VideoDetails> {
    const v = this.video(videoId);
    return toDetails(videoId, await this.call(videoId, 'metadata', () => v.metadata(), opts));
  }

  /**
   * Abandons the declared upload of a video that is not Ready yet: its declaration and every
   * stored chunk are dropped (status back to `Empty`), so a different file can be uploaded into
   * the same canister (`upload(..., { resume: videoId })`). Owner only (`NotAuthorizedError`);
   * `AlreadyFinishedError` once the video is Ready; a no-op on an `Empty` video (so a retry
   * after a lost reply is harmless).
   */
  async resetUpload(videoId: string, opts: CallOptions = {}): Promise<VideoDetails> {
    const v = this.video(videoId);
    const site = { canisterId: videoId, method: 'reset_upload' };
    // Unwrapped inside the retry: a `Busy` answer is retried like a network error.
    return toDetails(videoId, await this.call(videoId, 'reset_upload', async () => unwrap(await v.reset_upload(), site), opts));
  }

  /**
   * One page of the chunk SHA-256 digests the canister stored, as `put_chunk` verified them:
   * chunks `start..` (default 0), at most `limit` (the canister caps pages at 10,000). Public once
   * the video is Ready; before, only the owner and uploaders may ask (`NotReadyError` for others),
   * and chunks not uploaded yet are `null`. The page's shape is checked (`IntegrityError`).
   */
  async chunkDigestsPage(videoId: string, options: CallOptions & { start?: number; limit?: number } = {}): Promise<ChunkDigestPage> {
    const start = options.start ?? 0;
    const api = this.videoReadApi(videoId);
    return toDigestPage(videoId, start, await this.call(videoId, 'chunk_digests', () => api.chunkDigests(start, options.limit), options));
  }

  /**
   * Every chunk digest of the video (`chunkDigestsPage` page after page), in chunk order; `null`
   * for a chunk not uploaded yet. Downloads check chunks against these by themselves; this is for
   * callers who keep or compare digests (combine them with `fileDigest`).
   */
  async chunkDigests(videoId: string, opts: CallOptions = {}): Promise<Array<Uint8Array | null>> {
    const out: Array<Uint8Array | null> = [];
    let start: number | undefined = 0;
    while (start !== undefined) {
      const page: ChunkDigestPage = await this.chunkDigestsPage(videoId, { ...opts, start });
      out.push(...page.digests);
      start = page.next;
    }
    return out;
  }

  /**
   * The whole video in memory. Each chunk is checked against the canister's `chunk_digests`
   * (or `options.expectedChunkDigests`) and those against the file digest (see `DownloadOptions`).
   */
  download(videoId: string, options: DownloadOptions = {}): Promise<Uint8Array> {
    return downloadAll(videoId, this.videoReadApi(videoId), { ...options, retry: { ...this.retry, ...(options.retry ?? {}) } });
  }

  /**
   * The video as a `ReadableStream` of its chunks, each verified before it is delivered (see
   * `DownloadOptions`); the stream errors instead of closing if the file digest does not match.
   */
  downloadStream(videoId: string, options: DownloadOptions = {}): ReadableStream<Uint8Array> {
    return downloadStream(videoId, this.videoReadApi(videoId), { ...options, retry: { ...this.retry, ...(options.retry ?? {}) } });
  }

  /**
   * The key of an encrypted video (`video_key`, checked and derived by `fetchVideoKey`): the owner
   * and uploaders always get it, allowlisted viewers and pass holders once the video is Ready.
   * Refusals are the canister's typed errors (`NotAuthorizedError`, `BusyError` for a viewer
   * over the rate limit, ...), never retried; a key that does not verify is a
   * `KeyVerificationError`. Each delivery costs the video canister a vetKD fee: keep the key
   * for the session rather than asking again.
   */
  videoKey(videoId: string, opts: FetchVideoKeyOptions & CallOptions = {}): Promise<VideoKeyMaterial> {
    const v = this.video(videoId);
    return fetchVideoKey((args) => this.call(videoId, 'video_key', () => v.video_key(args), opts), videoId, opts);
  }

  private async encryptionOf(videoId: string, opts: CallOptions): Promise<EncryptionInfo> {
    const d = await this.getMetadata(videoId, opts);
    if (!d.encryption) throw new UsageError(`video ${videoId} is not encrypted`);
    return d.encryption;
  }

  /**
   * The plaintext of an encrypted video as a stream (one `Uint8Array` per chunk): the stored
   * chunks are downloaded and verified as `downloadStream` does, then each is decrypted and
   * authenticated before it is delivered (`DecryptionError` otherwise). `key`: default
   * `videoKey(videoId)`.
   */
  async downloadDecryptedStream(videoId: string, options: DownloadOptions & { key?: VideoKeyMaterial | CryptoKey } = {}): Promise<ReadableStream<Uint8Array>> {
    const enc = await this.encryptionOf(videoId, options);
    const key = options.key ?? (await this.videoKey(videoId, options));
    return decryptStream(this.downloadStream(videoId, options), key, videoId, enc);
  }

  /** The whole plaintext of an encrypted video in memory (see `downloadDecryptedStream`). */
  async downloadDecrypted(videoId: string, options: DownloadOptions & { key?: VideoKeyMaterial | CryptoKey } = {}): Promise<Uint8Array> {
    const reader = (await this.downloadDecryptedStream(videoId, options)).getReader();
    const parts: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  /**
   * Plaintext bytes `[start, end)` of an encrypted video: only the stored chunks covering the
   * range are fetched (`get_chunk`) and decrypted. Every chunk is authenticated by AES-GCM with
   * its index, the chunk count and the sizes in its associated data, so a chunk from elsewhere
   * or a lying `metadata` fails (`DecryptionError`).
   */
  async readDecrypted(videoId: string, start: number, end: number, options: CallOptions & { key?: VideoKeyMaterial | CryptoKey; concurrency?: number } = {}): Promise<Uint8Array> {
    const enc = await this.encryptionOf(videoId, options);
    const key = options.key ?? (await this.videoKey(videoId, options));
    const api = this.videoReadApi(videoId);
    return readDecryptedRange((i) => this.call(videoId, 'get_chunk', () => api.getChunk(i), options), key, videoId, enc, start, end, options.concurrency);
  }

  /** URL of the video on an HTTP gateway, for `<video src>` (see `videoUrl`). */
  videoUrl(videoId: string, gateway: string, options?: VideoUrlOptions): string {
    return videoUrl(videoId, gateway, options);
  }

  private requireIndex(): ActorSubclass<IndexService> {
    if (!this.index) throw new UsageError('this client has no index canister (pass `indexId` to CanvidClient.create)');
    return this.index;
  }

  /** One page of the videos created by / owned by `principal`. */
  async listPage(by: 'creator' | 'owner', principal: Principal | string, options: ListOptions = {}): Promise<Page<VideoListing>> {
    const index = this.requireIndex();
    const args = {
      principal: Principal.from(principalText(principal)),
      cursor: options.cursor ? [Principal.fromText(options.cursor)] as [Principal] : [] as [],
      limit: options.pageSize !== undefined ? [options.pageSize] as [number] : [] as [],
    };
    const method = by === 'creator' ? 'videos_by_creator' : 'videos_by_owner';
    const page = await withRetry(
      () => guard({ canisterId: this.indexId!.toText(), method }, () => (by === 'creator' ? index.videos_by_creator(args) : index.videos_by_owner(args))),
      { policy: this.retry, signal: options.signal },
    );
    return {
      items: page.videos.map(toListing),
      nextCursor: page.next_cursor.length ? page.next_cursor[0]!.toText() : undefined,
    };
  }

  /** Every video created by `creator` (ascending by video id), fetched page by page. */
  listByCreator(creator: Principal | string, options: ListOptions = {}): AsyncGenerator<VideoListing, void, undefined> {
    return paginate((cursor) => this.listPage('creator', creator, { ...options, cursor }), options);
  }

  /** Every video currently owned by `owner` (ascending by video id), fetched page by page. */
  listByOwner(owner: Principal | string, options: ListOptions = {}): AsyncGenerator<VideoListing, void, undefined> {
    return paginate((cursor) => this.listPage('owner', owner, { ...options, cursor }), options);
  }

  /**
   * Hands the video to `newOwner` (owner or approved operator only): app-level owner,
   * controllers and the index all change. Not retried automatically: `Busy` means a transfer is
   * already in flight.
   *
   * Then reads the canister's controllers and module hash from the IC's certified state and
   * throws `TransferVerificationError` (the transfer has happened all the same) when the
   * controllers are not exactly those `change_owner` returned, or — with `keepControllers` — not
   * exactly `{newOwner, video} ∪ keepControllers`, or when `expectedModuleHash` is given and
   * differs. See docs/sdk.md, "Selling a video safely".
   */
  async transferOwnership(videoId: string, newOwner: Principal | string, opts: TransferOptions = {}): Promise<TransferResult> {
    const v = this.video(videoId);
    const site = { canisterId: videoId, method: 'change_owner' };
    if (opts.signal?.aborted) throw new AbortError(opts.signal.reason);
    const owner = Principal.from(principalText(newOwner));
    const keep = opts.keepControllers?.map((p) => Principal.from(principalText(p)));
    const wantHash = moduleHashOption(opts.expectedModuleHash);
    const r: ChangeOwnerResult = unwrap(
      await guard(site, () => v.change_owner({ new_owner: owner, keep_controllers: keep ? [keep] : [] })),
      site,
    );
    return this.verifyTransfer(videoId, r, owner, keep, wantHash, opts.signal);
  }

  /**
   * The first step of a two-step transfer (owner or approved operator): offers the video to
   * `newOwner`, who completes it with {@link acceptOwnership} within 7 days. Nothing changes
   * until then, so a mistyped principal orphans nothing; a new offer replaces an older one.
   * `keepControllers` is applied when the offer is accepted, as in {@link transferOwnership}.
   */
  async offerOwnership(
    videoId: string,
    newOwner: Principal | string,
    opts: { keepControllers?: readonly (Principal | string)[]; signal?: AbortSignal } = {},
  ): Promise<OwnershipOfferInfo> {
    const v = this.video(videoId);
    const site = { canisterId: videoId, method: 'offer_ownership' };
    if (opts.signal?.aborted) throw new AbortError(opts.signal.reason);
    const keep = opts.keepControllers?.map((p) => Principal.from(principalText(p)));
    const offer = unwrap(
      await guard(site, () =>
        v.offer_ownership({ new_owner: Principal.from(principalText(newOwner)), keep_controllers: keep ? [keep] : [] }),
      ),
      site,
    );
    return toOfferInfo(offer);
  }

  /** Withdraws the video's pending ownership offer (owner or operator); a no-op without one. */
  async cancelOwnershipOffer(videoId: string, opts: CallOptions = {}): Promise<void> {
    const v = this.video(videoId);
    const site = { canisterId: videoId, method: 'cancel_offer' };
    unwrap(await this.call(videoId, 'cancel_offer', () => v.cancel_offer(), opts), site);
  }

  /**
   * The second step, by the principal the offer names (this client's identity): takes the video
   * and its canister, and checks the result from the IC's certified state like
   * {@link transferOwnership} does (controllers exactly as returned and, when the offer named
   * controllers to keep, exactly `{caller, video} ∪ keep`; the module hash when
   * `expectedModuleHash` is given).
   */
  async acceptOwnership(videoId: string, opts: Omit<TransferOptions, 'keepControllers'> = {}): Promise<TransferResult> {
    const v = this.video(videoId);
    if (opts.signal?.aborted) throw new AbortError(opts.signal.reason);
    const wantHash = moduleHashOption(opts.expectedModuleHash);
    const offer = (await guard({ canisterId: videoId, method: 'metadata' }, () => v.metadata())).pending_offer[0];
    const site = { canisterId: videoId, method: 'accept_ownership' };
    const r: ChangeOwnerResult = unwrap(await guard(site, () => v.accept_ownership()), site);
    const keep = offer?.keep_controllers[0];
    return this.verifyTransfer(videoId, r, await this.principal(), keep, wantHash, opts.signal);
  }

  /** Checks a transfer's outcome against the IC's certified state (see {@link TransferOptions}). */
  private async verifyTransfer(
    videoId: string,
    r: ChangeOwnerResult,
    owner: Principal,
    keep: Principal[] | undefined,
    wantHash: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<TransferResult> {
    const returned = r.controllers.map((p) => p.toText());
    const expected = keep ? [...new Set([owner.toText(), videoId, ...keep.map((p) => p.toText())])] : undefined;
    let info = await this.certifiedCanisterInfo(videoId);
    // A replica a round behind may still certify the old controllers: read again before failing.
    for (let n = 1; n < CERTIFIED_READS && !sameSet(info.controllers, returned); n++) {
      await sleep(CERTIFIED_READ_DELAY_MS, signal);
      info = await this.certifiedCanisterInfo(videoId);
    }
    const fields = {
      videoId,
      certifiedControllers: info.controllers,
      returnedControllers: returned,
      expectedControllers: expected,
      certifiedModuleHash: info.moduleHash,
      expectedModuleHash: wantHash,
    };
    if (!sameSet(info.controllers, returned)) {
      throw new TransferVerificationError(
        `video ${videoId} was transferred, but its certified controllers [${info.controllers.join(', ')}] are not the ones change_owner returned [${returned.join(', ')}]`,
        { ...fields, problem: 'controllers' },
      );
    }
    if (expected && !sameSet(info.controllers, expected)) {
      throw new TransferVerificationError(
        `video ${videoId} was transferred, but its certified controllers [${info.controllers.join(', ')}] are not exactly the new owner, the video and keepControllers [${expected.join(', ')}]`,
        { ...fields, problem: 'controllers' },
      );
    }
    if (wantHash !== undefined && info.moduleHash !== wantHash) {
      throw new TransferVerificationError(
        `video ${videoId} was transferred, but its certified module hash ${info.moduleHash ?? '(no module)'} is not the expected ${wantHash}`,
        { ...fields, problem: 'module_hash' },
      );
    }
    return {
      transferSeq: r.transfer_seq,
      controllers: info.controllers,
      moduleHash: info.moduleHash,
      indexNotified: r.index_notified,
      // Absent in answers of video modules before the hand-over existed: the owner controls.
      ownerControls: r.owner_controls.length === 0 || r.owner_controls[0] === true,
    };
  }

  /**
   * Approves `operator` (e.g. a marketplace canister) to call `transferOwnership` on the owner's
   * behalf, or clears the approval with `null`. Owner only; a transfer clears it.
   */
  async approveOperator(videoId: string, operator: Principal | string | null, opts: CallOptions = {}): Promise<void> {
    const v = this.video(videoId);
    const arg: [] | [Principal] = operator === null ? [] : [Principal.from(principalText(operator))];
    const site = { canisterId: videoId, method: 'approve' };
    unwrap(await this.call(videoId, 'approve', () => v.approve(arg), opts), site);
  }

  /**
   * Retries handing control of a finished video to its owner (owner only), when `control` is
   * `handingOver` (a call of the hand-over failed; the canister also retries by itself with
   * back-off). Returns the metadata afterwards.
   */
  async claimControl(videoId: string, opts: CallOptions = {}): Promise<VideoDetails> {
    const v = this.video(videoId);
    const site = { canisterId: videoId, method: 'claim_control' };
    return toDetails(videoId, unwrap(await this.call(videoId, 'claim_control', () => v.claim_control(), opts), site));
  }

  // --- Video canister: poster, uploaders, byte ranges, canister facts ---------------------------

  /**
   * Sets the poster image served at `/poster` (owner only; `image/*` MIME type, ≤ 2,000,000
   * bytes); empty `data` removes it.
   */
  async setPoster(videoId: string, poster: { mimeType: string; data: Uint8Array }, opts: CallOptions = {}): Promise<void> {
    const v = this.video(videoId);
    const site = { canisterId: videoId, method: 'set_poster' };
    unwrap(await this.call(videoId, 'set_poster', () => v.set_poster({ mime_type: poster.mimeType, data: poster.data }), opts), site);
  }

  /** The principals the owner authorised to upload (besides the owner). */
  async uploaders(videoId: string, opts: CallOptions = {}): Promise<string[]> {
    const v = this.video(videoId);
    return (await this.call(videoId, 'uploaders', () => v.uploaders(), opts)).map((p) => p.toText());
  }

  /** Authorises `uploader` to upload into the video (owner only; a transfer clears the list). */
  async addUploader(videoId: string, uploader: Principal | string, opts: CallOptions = {}): Promise<void> {
    const v = this.video(videoId);
    const site = { canisterId: videoId, method: 'add_uploader' };
    unwrap(await this.call(videoId, 'add_uploader', () => v.add_uploader(Principal.from(principalText(uploader))), opts), site);
  }

  /** Revokes an uploader (owner only); a no-op for a principal that is not one. */
  async removeUploader(videoId: string, uploader: Principal | string, opts: CallOptions = {}): Promise<void> {
    const v = this.video(videoId);
    const site = { canisterId: videoId, method: 'remove_uploader' };
    unwrap(await this.call(videoId, 'remove_uploader', () => v.remove_uploader(Principal.from(principalText(uploader))), opts), site);
  }

  /**
   * File bytes `[offset, offset + length)` (`length` ≤ 2,000,000; inside the file). A query one
   * replica answers: `download` verifies bytes against the certified digests, this does not.
   */
  async readRange(videoId: string, offset: bigint | number, length: bigint | number, opts: CallOptions = {}): Promise<Uint8Array> {
    const v = this.video(videoId);
    const site = { canisterId: videoId, method: 'read_range' };
    return unwrap(await this.call(videoId, 'read_range', () => v.read_range({ offset: BigInt(offset), length: BigInt(length), path: [] }), opts), site);
  }

  /**
   * The canister's own report: cycle balance, stable and heap bytes, chunks stored, layout
   * version, pending index notification, transfer in flight, pending offer (the candid record).
   */
  async canisterInfo(videoId: string, opts: CallOptions = {}): Promise<VideoCanisterInfo> {
    const v = this.video(videoId);
    return this.call(videoId, 'canister_info', () => v.canister_info(), opts);
  }

  // --- Spawn and index: queries anyone may make ----------------------------------------------

  /** Cycles a `createVideo` with this declared size costs now (creation fee + formula). */
  async estimateCycles(declaredSize: bigint | number, opts: CallOptions = {}): Promise<bigint> {
    const site = { canisterId: this.spawnId.toText(), method: 'estimate_cycles' };
    return unwrap(await this.spawnCall('estimate_cycles', () => this.spawn.estimate_cycles(BigInt(declaredSize)), opts), site);
  }

  /** A principal's pool quota, use, credit and parked spares (default: the agent's principal). */
  async quotaOf(principal?: Principal | string, opts: CallOptions = {}): Promise<QuotaStatus> {
    const p = principal === undefined ? await this.principal() : Principal.from(principalText(principal));
    return this.spawnCall('quota_of', () => this.spawn.quota_of(p), opts);
  }

  /** The spawn canister's record of a video it created (status, payer, cycles given and returned). */
  async spawnRecord(videoId: string, opts: CallOptions = {}): Promise<SpawnedVideo | undefined> {
    const r = await this.spawnCall('get_video', () => this.spawn.get_video(Principal.fromText(videoId)), opts);
    return r[0];
  }

  /** The spawn canister's configuration, balance, counts and in-flight creations. */
  async spawnStats(opts: CallOptions = {}): Promise<SpawnStats> {
    return this.spawnCall('stats', () => this.spawn.stats(), opts);
  }

  /** The index entry of a video (creator, owner, last transfer), if indexed. */
  async indexEntry(videoId: string, opts: CallOptions = {}): Promise<VideoEntry | undefined> {
    const index = this.requireIndex();
    const r = await this.indexCall('get_video', () => index.get_video(Principal.fromText(videoId)), opts);
    return r[0];
  }

  /** How many videos the index lists for a creator or an owner. */
  async countBy(by: 'creator' | 'owner', principal: Principal | string, opts: CallOptions = {}): Promise<bigint> {
    const index = this.requireIndex();
    const p = Principal.from(principalText(principal));
    return by === 'creator'
      ? this.indexCall('count_by_creator', () => index.count_by_creator(p), opts)
      : this.indexCall('count_by_owner', () => index.count_by_owner(p), opts);
  }

  /** The index's counts, admins and registrars. */
  async indexStats(opts: CallOptions = {}): Promise<IndexStats> {
    const index = this.requireIndex();
    return this.indexCall('stats', () => index.stats(), opts);
  }

  /** The spawn canister's admin endpoints (quotas, cycles formula, wasm, upgrades, top-ups). */
  spawnAdmin(): SpawnAdmin {
    return new SpawnAdmin(this.spawn, this.spawnId, this.retry);
  }

  /**
   * The index canister as canvid's ICRC-7 collection (tokens, ICRC-37 approvals, the ICRC-3 log,
   * `verifyOwnership`); needs `indexId`. The spawn canister is the platform controller
   * `verifyOwnership` allows besides the holder and the video.
   */
  collection(): CanvidCollection {
    this.requireIndex();
    return new CanvidCollection({
      agent: this.agent,
      indexId: this.indexId!,
      platformControllers: [this.spawnId],
      retry: this.retry,
      responseVerifier: this.responseVerifier,
    });
  }

  /**
   * Access control and payments of videos, as this client's identity (docs/access.md): set a
   * policy, manage the allowlist, buy passes, verify receipts, playback URLs, pay-as-you-watch.
   * `gateway`: default gateway of `playbackUrl` (default `icp0.io`).
   */
  access(options: { gateway?: string } = {}): CanvidAccess {
    return new CanvidAccess({ agent: this.agent, retry: this.retry, gateway: options.gateway });
  }

  /** The index canister's admin endpoints (admins, registrars); needs `indexId`. */
  indexAdmin(): IndexAdmin {
    return new IndexAdmin(this.requireIndex(), this.indexId!, this.retry);
  }

  private spawnCall<T>(method: string, f: () => Promise<T>, opts: CallOptions): Promise<T> {
    return this.call(this.spawnId.toText(), method, f, opts);
  }

  private indexCall<T>(method: string, f: () => Promise<T>, opts: CallOptions): Promise<T> {
    return this.call(this.indexId!.toText(), method, f, opts);
  }

  /** Changes title / description / tags (owner only; allowed after Ready). */
  async updateMetadata(videoId: string, patch: { title?: string; description?: string; tags?: string[] }, opts: CallOptions = {}): Promise<VideoDetails> {
    const v = this.video(videoId);
    const arg: MetadataPatch = {
      title: patch.title !== undefined ? [patch.title] : [],
      description: patch.description !== undefined ? [patch.description] : [],
      tags: patch.tags !== undefined ? [patch.tags] : [],
    };
    const site = { canisterId: videoId, method: 'update_metadata' };
    return toDetails(videoId, unwrap(await this.call(videoId, 'update_metadata', () => v.update_metadata(arg), opts), site));
  }
}

/** Options for `DownloadOptions` re-exported for convenience. */
export type { DownloadOptions };
