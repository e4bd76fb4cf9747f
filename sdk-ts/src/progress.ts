// Upload progress: bytes confirmed by the canister, total, and a transfer rate over a sliding
// window (so a long upload shows its current speed, not its lifetime average).

export type UploadPhase = 'preparing' | 'hashing' | 'creating' | 'uploading' | 'finishing' | 'done';

export interface UploadProgress {
  phase: UploadPhase;
  /** The video canister, once created (or the one being resumed). */
  videoId?: string;
  /** File size. */
  totalBytes: number;
  /** Bytes the canister holds: chunks stored before a resume plus those sent since. */
  bytesUploaded: number;
  /** Bytes this call sent and the canister confirmed (excludes chunks it already had). */
  bytesSent: number;
  /** Bytes hashed so far (the hashing pass before sending, for File/Blob/Uint8Array). */
  bytesHashed: number;
  chunksUploaded: number;
  chunkCount: number;
  /** Send rate over the last `windowMs` (bytes per second; 0 before two samples). */
  bytesPerSecond: number;
  /** Since the call started. */
  elapsedMs: number;
  /** Estimated time left at the current rate, when a rate is known. */
  etaMs?: number;
}

/** Tracks an upload's progress. The clock is injectable for tests. */
export class ProgressTracker {
  private readonly samples: Array<{ t: number; sent: number }> = [];
  private readonly started: number;
  phase: UploadPhase = 'preparing';
  videoId?: string;
  totalBytes = 0;
  bytesUploaded = 0;
  bytesSent = 0;
  bytesHashed = 0;
  chunksUploaded = 0;
  chunkCount = 0;

  constructor(
    private readonly onProgress?: (p: UploadProgress) => void,
    private readonly now: () => number = () => Date.now(),
    private readonly windowMs = 5000,
  ) {
    this.started = now();
  }

  /** Sets the totals (call again after a resume discovered what is already stored). */
  start(totalBytes: number, chunkCount: number, alreadyBytes = 0, alreadyChunks = 0): void {
    this.totalBytes = totalBytes;
    this.chunkCount = chunkCount;
    this.bytesUploaded = alreadyBytes;
    this.chunksUploaded = alreadyChunks;
    this.samples.length = 0;
    this.samples.push({ t: this.now(), sent: this.bytesSent });
  }

  setPhase(phase: UploadPhase): void {
    this.phase = phase;
    this.emit();
  }

  hashed(bytes: number): void {
    this.bytesHashed += bytes;
    this.emit();
  }

  /** One chunk of `bytes` confirmed by the canister. */
  chunkDone(bytes: number): void {
    this.bytesSent += bytes;
    this.bytesUploaded += bytes;
    this.chunksUploaded += 1;
    const t = this.now();
    this.samples.push({ t, sent: this.bytesSent });
    // Keep one sample at or before the window's start so the rate spans the whole window.
    while (this.samples.length > 2 && this.samples[1]!.t <= t - this.windowMs) this.samples.shift();
    this.emit();
  }

  /** Bytes per second over the window ending now. */
  rate(): number {
    if (this.samples.length < 2) return 0;
    const first = this.samples[0]!;
    const last = this.samples[this.samples.length - 1]!;
    const dt = last.t - first.t;
    if (dt <= 0) return 0;
    return ((last.sent - first.sent) * 1000) / dt;
  }

  snapshot(): UploadProgress {
    const rate = this.rate();
    const left = this.totalBytes - this.bytesUploaded;
    return {
      phase: this.phase,
      videoId: this.videoId,
      totalBytes: this.totalBytes,
      bytesUploaded: this.bytesUploaded,
      bytesSent: this.bytesSent,
      bytesHashed: this.bytesHashed,
      chunksUploaded: this.chunksUploaded,
      chunkCount: this.chunkCount,
      bytesPerSecond: rate,
      elapsedMs: this.now() - this.started,
      etaMs: rate > 0 ? (left * 1000) / rate : undefined,
    };
  }

  private emit(): void {
    if (!this.onProgress) return;
    try {
      this.onProgress(this.snapshot());
    } catch {
      // A throwing progress callback must not break the upload.
    }
  }
}
