/**
 * `@canvid/sdk`: store, stream, list and transfer videos on the Internet Computer with canvid.
 *
 * ```ts
 * import { CanvidClient } from '@canvid/sdk';
 * const canvid = await CanvidClient.create({ identity, spawnId, indexId });
 * const { videoId } = await canvid.upload(file, { title: 'Holiday' }, { onProgress: console.log });
 * video.src = canvid.videoUrl(videoId, 'icp0.io');
 * ```
 * @packageDocumentation
 */
export { CanvidClient, IC_HOST, toDetails } from './client.js';
export type { CallOptions, ClientOptions, OwnershipOfferInfo, TransferOptions, TransferResult, VideoDetails } from './client.js';
export { IndexAdmin, SpawnAdmin } from './admin.js';
export { CanvidAccess, LedgerError, PurchaseError, ReceiptVerificationError, receiptMemo, toReceipt } from './access.js';
export type {
  AccessDetails,
  AccessGrant,
  AccessOptions,
  AccessPolicy,
  AccessPolicyInput,
  BuyOptions,
  MyAccess,
  Offer,
  OfferInput,
  PlaybackUrl,
  PlaybackUrlOptions,
  PurchaseErrorKind,
  Receipt,
  VerifiedReceipt,
  WatchClock,
  WatchController,
  WatchOptions,
} from './access.js';
export { ledgerIdl } from './ledger.js';
export type { IcrcAccount, IcrcValue, LedgerService } from './ledger.js';
export {
  COLLECTION_ERROR_CODES,
  CanvidCollection,
  CollectionError,
  blockAccountText,
  decodeBlock,
  fromIcrcError,
  ownershipProblems,
  plainValue,
  toAccount,
  toTokenId,
  tokenIdOf,
  videoOfToken,
} from './collection.js';
export type {
  AccountInfo,
  AccountLike,
  Approval,
  ApproveOptions,
  BlocksPage,
  CollectionBlock,
  CollectionCallOptions,
  CollectionErrorCode,
  CollectionLimits,
  CollectionMetadata,
  CollectionOptions,
  IcrcErrorKind,
  OwnershipReport,
  PlainValue,
  TokenMetadata,
  TokenPageOptions,
  TokenRef,
} from './collection.js';
export type { AdminCallOptions } from './admin.js';
export type { CanisterInfo as VideoCanisterInfo } from './bindings/video.did.js';
export type { CyclesConfig, QuotaStatus, SpawnStats, SpawnedVideo, UpgradeOutcome, WasmInfo } from './bindings/spawn.did.js';
export type { IndexStats } from './bindings/index.did.js';
export { METADATA_PATH, MAX_CERT_AGE_NS, loadResponseVerifier, metadataRequest, readCanisterInfo, verifyMetadataAnswer } from './certified.js';
export type { CertifiedCanisterInfo, CertifiedMetadata, ResponseVerifier } from './certified.js';
export { uploadVideo, allMissing, encryptedSource, MAX_DECLARED_DIGESTS } from './upload.js';
export {
  CHUNK_OVERHEAD,
  DEFAULT_KEY_NAME,
  DecryptionError,
  KEY_NAMES,
  KeyVerificationError,
  NONCE_LABEL,
  NONCE_LEN,
  SCHEME_AES256GCM_V1,
  TAG_LEN,
  VETKD_CONTEXT,
  aesKeyInfo,
  canisterBytes,
  checkEncryption,
  chunkAad,
  coveringChunks,
  decryptChunk,
  decryptStream,
  deriveVideoKey,
  encChunkCount,
  encryptChunk,
  fromCandidEncryption,
  plainLen,
  readDecryptedRange,
  storedChunkRange,
  storedChunkSize,
  storedSize,
  toCandidEncryption,
  vetkdInput,
} from './encryption.js';
export type { EncryptionInfo, VideoKeyMaterial } from './encryption.js';
export { fetchVideoKey } from './video-key.js';
export { playEncrypted } from './play.js';
export type { EncryptedPlayback, PlayEncryptedOptions } from './play.js';
export { DECRYPT_PATH, answer as decryptedAnswer, installDecryptWorker, parseRange, plaintextBody } from './decrypt-sw.js';
export type { DecryptNeed, DecryptSession, DecryptSessionAck, RangeAnswer, WorkerScope } from './decrypt-sw.js';
export type { FetchVideoKeyOptions, VideoKeyCall } from './video-key.js';
export type {
  CreateVideoRequest,
  UploadOptions,
  UploadResult,
  UploadTransport,
  VideoInfo,
  VideoUploadApi,
} from './upload.js';
export { downloadAll, downloadStream, readyGrid, toDigestPage } from './download.js';
export type { ChunkDigestPage, DownloadOptions, VideoReadApi } from './download.js';
export { paginate, toListing } from './list.js';
export type { ListOptions, Page, VideoListing } from './list.js';
export { videoUrl } from './url.js';
export {
  MAX_FILES,
  MAX_BATCH_BYTES,
  MAX_FILES_PER_CALL,
  MAX_FILE_PAGE,
  MAX_PATH_BYTES,
  RESERVED_PATHS,
  allFiles,
  checkFilePath,
  declareBatches,
  downloadFile,
  filesFromInput,
  mimeTypeForPath,
  namedFilesFrom,
  orderForUpload,
  parseHlsAttributes,
  parseMasterPlaylist,
  resolvePath,
  toFileDetails,
  uploadFiles,
} from './files.js';
export type {
  DirectoryFile,
  FileDetails,
  FilesTransport,
  FolderEntry,
  MasterVariant,
  NamedFile,
  RenditionInfo,
  UploadFilesOptions,
  UploadFilesResult,
  VideoFileReadApi,
  VideoFilesApi,
} from './files.js';
export { attachHls, hasMediaSource, hlsUrl, withToken } from './hls.js';
export type { AttachHlsOptions, HlsClass, HlsInstance, HlsPlayback, HlsUrlOptions } from './hls.js';
export type { VideoUrlOptions } from './url.js';
export { ProgressTracker } from './progress.js';
export type { UploadPhase, UploadProgress } from './progress.js';
export { DEFAULT_RETRY, backoffDelay, retryPolicy, sleep, withRetry, abortable } from './retry.js';
export type { RetryContext, RetryPolicy } from './retry.js';
export { runPool } from './concurrency.js';
export {
  DEFAULT_CHUNK_SIZE,
  MAX_CHUNK_SIZE,
  chunkCount,
  chunkRange,
  rechunk,
  toSource,
} from './chunking.js';
export type { ByteSource, RandomAccessSource, SequentialSource, UploadInput } from './chunking.js';
export { fileDigest, sha256, toHex, fromHex, equalBytes } from './bytes.js';
export {
  AbortError,
  AlreadyFinishedError,
  BusyError,
  CallFailedError,
  CanisterError,
  CanvidError,
  CertificationError,
  ChunkOutOfRangeError,
  ConflictError,
  IncompleteError,
  InsufficientCyclesError,
  IntegrityError,
  InvalidArgumentError,
  NetworkError,
  NotAuthorizedError,
  NotFoundError,
  NotReadyError,
  RejectedError,
  TransferVerificationError,
  TooLargeError,
  UnexpectedError,
  UsageError,
  WrongChunkSizeError,
  WrongDigestError,
  describeCandidError,
  fromAgentError,
  fromCandidError,
  isTransient,
  unwrap,
} from './errors.js';
export type { CallSite, CandidError, CandidErrorKind } from './errors.js';
export type { VideoMetadata, UploadSpec, ChunkReceipt, MissingChunks, ChunkDigests, FileInfo, FilePage, Rendition, FileRendition } from './bindings/video.did.js';
export type { VideoEntry } from './bindings/index.did.js';
