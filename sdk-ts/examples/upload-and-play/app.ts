// Example dApp page for @canvid/sdk: pick a file, upload it (progress, cancel, resume after a
// cancel), list your videos, play one from the HTTP gateway.
//
// Configuration comes from the query string:
//   spawn=<id>  index=<id>     the canvid canisters
//   host=<url>                 IC API host (default: this page's origin, e.g. a dev proxy)
//   gateway=<url or domain>    HTTP gateway for <video> (default icp0.io)
//   local=1                    fetch the root key from the host (local replica only!)
//   chunkSize=<bytes>          upload chunk size (default 2,000,000)
//   video=<id>                 a paid video to show offers for ("Paid and private videos")
//   hls=<id>                   play this video's HLS master playlist on load (token=<t> for a gated one)
//   encrypted=<id>             play this end-to-end encrypted video on load: the page's identity
//                              asks for its key, the service worker ./canvid-decrypt-sw.js decrypts
//   maxAnswer=<bytes>          the worker's cap on one answer to an open-ended range (default 8 MiB)
//   seed=<64 hex digits>       TEST ONLY: derive the page's identity from this seed (e.g. an
//                              identity `canvid serve --fund` gave test-ledger tokens to) instead
//                              of a fresh key kept in sessionStorage. Never put a real key in a URL.
import {
  CanvidClient,
  type HlsPlayback,
  type UploadProgress,
  AbortError,
  CanvidError,
  type EncryptedPlayback,
  attachHls,
  playEncrypted,
  filesFromInput,
  fromHex,
  hlsUrl,
  toHex,
} from '@canvid/sdk';
import Hls from 'hls.js';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';

const params = new URLSearchParams(location.search);
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const fileInput = $<HTMLInputElement>('file');
const titleInput = $<HTMLInputElement>('title');
const uploadButton = $<HTMLButtonElement>('upload');
const cancelButton = $<HTMLButtonElement>('cancel');
const bar = $<HTMLProgressElement>('bar');
const status = $<HTMLDivElement>('status');
const mine = $<HTMLUListElement>('mine');
const player = $<HTMLVideoElement>('player');
const folderInput = $<HTMLInputElement>('folder');
const qualitySelect = $<HTMLSelectElement>('quality');
const subsSelect = $<HTMLSelectElement>('subs');
const levelLabel = $<HTMLSpanElement>('level');
const encryptBox = $<HTMLInputElement>('encrypt');

/** What the page did, for people and for the browser test. */
interface PageState {
  phase: string;
  videoId?: string;
  fileDigest?: string;
  progress: UploadProgress[];
  error?: { name: string; message: string };
  listed: string[];
  principal?: string;
  /** Named files uploaded from a folder. */
  files?: { count: number; renditions: string[] };
  /** HLS playback: what hls.js offers and plays. */
  hls?: {
    mode: 'hls.js' | 'native';
    url: string;
    levels: Array<{ height: number; bitrate: number }>;
    /** Index into `levels` of the level playing (`LEVEL_SWITCHED`), -1 before the first. */
    currentLevel: number;
    /** Every level that played a fragment, in order. */
    levelsPlayed: number[];
    subtitleTracks: Array<{ name: string; lang?: string }>;
    subtitleTrack: number;
    error?: string;
  };
  /** Encrypted playback (`?encrypted=<id>`). */
  encrypted?: {
    phase: 'key' | 'playing' | 'error';
    videoId: string;
    src?: string;
    /** ms from the start of `playEncrypted` to the key, and to the first decoded frame. */
    keyMs?: number;
    firstFrameMs?: number;
    error?: { name: string; message: string };
  };
  /** The paid-video panel. */
  access: {
    phase: string;
    mode?: string;
    offers?: Array<{ id: string; price: string; durationSeconds?: number }>;
    grant?: string;
    receipt?: { id: string; amount: string; blockIndex: string; validUntil?: string };
    verified?: boolean;
    src?: string;
    error?: { name: string; message: string };
  };
}
const state: PageState = { phase: 'idle', progress: [], listed: [], access: { phase: 'idle' } };
(window as unknown as { canvidState: PageState }).canvidState = state;

function show(text: string, isError = false) {
  status.textContent = text;
  status.className = isError ? 'error' : '';
}

// A key pair kept for this browser session, so a reload can resume an interrupted upload.
function sessionIdentity(): Ed25519KeyIdentity {
  const saved = sessionStorage.getItem('canvid-demo-identity');
  if (saved) return Ed25519KeyIdentity.fromJSON(saved);
  const id = Ed25519KeyIdentity.generate();
  sessionStorage.setItem('canvid-demo-identity', JSON.stringify(id.toJSON()));
  return id;
}

const seed = params.get('seed');
const identity = seed ? Ed25519KeyIdentity.generate(fromHex(seed)) : sessionIdentity();
const gateway = params.get('gateway') ?? 'icp0.io';
const canvid = await CanvidClient.create({
  host: params.get('host') ?? location.origin,
  identity,
  local: params.get('local') === '1',
  spawnId: params.get('spawn') ?? '',
  indexId: params.get('index') ?? undefined,
});
const me = identity.getPrincipal().toText();

function mb(n: number) {
  return (n / 1e6).toFixed(2);
}

async function refreshList() {
  mine.textContent = '';
  state.listed = [];
  for await (const v of canvid.listByOwner(me, { pageSize: 20 })) {
    state.listed.push(v.videoId);
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = canvid.videoUrl(v.videoId, gateway);
    a.textContent = v.videoId;
    a.onclick = (ev) => {
      ev.preventDefault();
      void play(v.videoId);
    };
    li.append(a);
    mine.append(li);
  }
}

let playback: HlsPlayback | undefined;

function stopHls() {
  playback?.destroy();
  playback = undefined;
  state.hls = undefined;
  qualitySelect.disabled = subsSelect.disabled = true;
  levelLabel.textContent = '';
}

/** Plays a video: encrypted through the service worker, its HLS master playlist when it has renditions, else the main file. */
async function play(videoId: string) {
  const meta = await canvid.getMetadata(videoId).catch(() => undefined);
  if (meta?.encryption) {
    await playEncryptedVideo(videoId);
    return;
  }
  if (meta && meta.renditions.length > 0) {
    playHls(hlsUrl(videoId, gateway));
    return;
  }
  stopHls();
  player.src = canvid.videoUrl(videoId, gateway);
  player.load();
}

/** HLS playback with hls.js (native HLS where MSE is missing), with the quality and subtitle menus. */
function playHls(url: string, token?: string) {
  stopHls();
  // `?autoStartLoad=0`: hls.js loads the master playlist only, and the caller picks the first
  // level before any segment is requested (the browser tests do: no load is aborted).
  const hlsConfig = params.get('autoStartLoad') === '0' ? { autoStartLoad: false } : {};
  playback = attachHls(player, url, { Hls, token, hlsConfig });
  const st: NonNullable<PageState['hls']> = { mode: playback.mode, url, levels: [], currentLevel: -1, levelsPlayed: [], subtitleTracks: [], subtitleTrack: -1 };
  state.hls = st;
  const hls = playback.hls;
  if (!hls) return;
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    st.levels = hls.levels.map((l) => ({ height: l.height, bitrate: l.bitrate }));
    qualitySelect.textContent = '';
    qualitySelect.append(new Option('Auto', '-1'));
    hls.levels.forEach((l, i) => qualitySelect.append(new Option(`${l.height}p (${Math.round(l.bitrate / 1000)} kb/s)`, String(i))));
    qualitySelect.disabled = false;
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_e: unknown, data: { level: number }) => {
    st.currentLevel = data.level;
    const l = hls.levels[data.level];
    levelLabel.textContent = l ? `playing ${l.height}p${hls.autoLevelEnabled ? ' (auto)' : ''}` : '';
  });
  hls.on(Hls.Events.FRAG_LOADED, (_e: unknown, data: { frag: { level: number; type: string } }) => {
    if (data.frag.type === 'main' && st.levelsPlayed[st.levelsPlayed.length - 1] !== data.frag.level) st.levelsPlayed.push(data.frag.level);
  });
  hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => {
    st.subtitleTracks = hls.subtitleTracks.map((t) => ({ name: t.name, lang: t.lang }));
    subsSelect.textContent = '';
    subsSelect.append(new Option('Off', '-1'));
    hls.subtitleTracks.forEach((t, i) => subsSelect.append(new Option(t.name || t.lang || `track ${i}`, String(i))));
    subsSelect.disabled = hls.subtitleTracks.length === 0;
  });
  hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, (_e: unknown, data: { id: number }) => {
    st.subtitleTrack = data.id;
  });
  hls.on(Hls.Events.ERROR, (_e: unknown, data: { fatal: boolean; details: string }) => {
    if (data.fatal) st.error = data.details;
  });
}

// Quality: a level index forces it (from the next fragment on); -1 is Auto (ABR).
qualitySelect.onchange = () => {
  const hls = playback?.hls;
  if (hls) hls.nextLevel = Number(qualitySelect.value);
};
subsSelect.onchange = () => {
  const hls = playback?.hls;
  if (!hls) return;
  hls.subtitleTrack = Number(subsSelect.value);
  hls.subtitleDisplay = hls.subtitleTrack >= 0;
};
(window as unknown as { canvidPlayer: () => HlsPlayback | undefined }).canvidPlayer = () => playback;

let controller: AbortController | undefined;
let interrupted: string | undefined; // a cancelled upload to resume

fileInput.onchange = () => {
  folderInput.value = '';
  uploadButton.disabled = !fileInput.files?.length;
  interrupted = undefined;
  show(fileInput.files?.length ? `${fileInput.files[0]!.name}: ${mb(fileInput.files[0]!.size)} MB` : 'Choose a file.');
};

folderInput.onchange = () => {
  fileInput.value = '';
  const n = folderInput.files?.length ?? 0;
  uploadButton.disabled = n === 0;
  interrupted = undefined;
  show(n ? `${n} files: ${mb(Array.from(folderInput.files!).reduce((t, f) => t + f.size, 0))} MB` : 'Choose a file.');
};

/** Uploads the chosen folder as named files, then plays its master playlist. */
async function uploadFolder(list: FileList) {
  const files = await filesFromInput(list);
  const renditions = files.filter((f) => f.rendition).map((f) => f.rendition!.name);
  const result = await canvid.uploadFiles(files, { title: titleInput.value || 'HLS video' }, {
    signal: controller!.signal,
    resume: interrupted,
    onCreated: (id) => (state.videoId = id),
    onProgress: (p) => {
      state.progress.push(p);
      bar.value = p.totalBytes ? (p.phase === 'hashing' ? p.bytesHashed : p.bytesUploaded) / p.totalBytes : 0;
      show(`${p.phase}: ${p.chunksUploaded} / ${p.chunkCount} chunks, ${mb(p.bytesUploaded)} / ${mb(p.totalBytes)} MB`);
    },
  });
  interrupted = undefined;
  state.videoId = result.videoId;
  state.files = { count: result.files.length, renditions };
  show(`Uploaded ${result.files.length} files: ${result.videoId}\nrenditions: ${renditions.join(', ') || 'none'}`);
  await refreshList();
  // The layout of `canvid hls prepare` has /hls/master.m3u8; other packagers name theirs differently.
  const master = files.find((f) => f.path === '/hls/master.m3u8') ?? files.find((f) => f.path.endsWith('master.m3u8'));
  if (master) playHls(hlsUrl(result.videoId, gateway, { path: master.path }));
  state.phase = 'done';
}

cancelButton.onclick = () => controller?.abort(new Error('cancelled by the user'));

uploadButton.onclick = async () => {
  const file = fileInput.files?.[0];
  const folder = folderInput.files?.length ? folderInput.files : undefined;
  if (!file && !folder) return;
  controller = new AbortController();
  uploadButton.disabled = true;
  cancelButton.disabled = false;
  state.phase = 'uploading';
  state.error = undefined;
  try {
    if (folder) {
      await uploadFolder(folder);
      return;
    }
    if (!file) return;
    const encrypt = encryptBox.checked;
    const result = await canvid.upload(file, { title: titleInput.value || file.name, mimeType: file.type || undefined }, {
      // Encrypted in this page with the owner's key from the video canister (`video_key`).
      encrypt,
      signal: controller.signal,
      resume: interrupted,
      chunkSize: params.has('chunkSize') ? Number(params.get('chunkSize')) : undefined,
      onCreated: (id) => (state.videoId = id),
      onProgress: (p) => {
        state.progress.push(p);
        bar.value = p.totalBytes ? (p.phase === 'hashing' ? p.bytesHashed : p.bytesUploaded) / p.totalBytes : 0;
        const rate = p.bytesPerSecond ? `, ${mb(p.bytesPerSecond)} MB/s` : '';
        show(`${p.phase}: ${mb(p.phase === 'hashing' ? p.bytesHashed : p.bytesUploaded)} / ${mb(p.totalBytes)} MB${rate}`);
      },
    });
    interrupted = undefined;
    state.videoId = result.videoId;
    state.fileDigest = toHex(result.fileDigest);
    show(`Uploaded: ${result.videoId}\nfile digest ${state.fileDigest}`);
    await refreshList();
    if (encrypt) await playEncryptedVideo(result.videoId);
    else await play(result.videoId);
    state.phase = 'done';
  } catch (err) {
    const e = err as Error;
    state.error = { name: e.name, message: e.message };
    if (err instanceof CanvidError && err.videoId) interrupted = err.videoId;
    if (err instanceof AbortError) {
      state.phase = 'aborted';
      show(`Cancelled. Press Upload again to resume into ${interrupted}.`);
    } else {
      state.phase = 'error';
      show(`${e.name}: ${e.message}`, true);
    }
  } finally {
    uploadButton.disabled = false;
    cancelButton.disabled = true;
  }
};

// --- Paid and private videos (docs/access.md) ---------------------------------------------------
const access = canvid.access({ gateway });
const paidInput = $<HTMLInputElement>('paid-video');
const offerSelect = $<HTMLSelectElement>('offer');
const accessStatus = $<HTMLDivElement>('access-status');
paidInput.value = params.get('video') ?? '';
state.principal = me;

function accessFailed(err: unknown) {
  const e = err as Error;
  state.access.error = { name: e.name, message: e.message };
  state.access.phase = 'error';
  accessStatus.textContent = `${e.name}: ${e.message}`;
  accessStatus.className = 'error';
}

async function loadOffers(): Promise<void> {
  const videoId = paidInput.value.trim();
  const info = await access.accessInfo(videoId);
  const mine = await access.myAccess(videoId);
  state.access.mode = info.policy.mode;
  state.access.grant = mine.grant?.kind;
  offerSelect.textContent = '';
  state.access.offers = [];
  if (info.policy.mode === 'paid') {
    for (const o of info.policy.offers) {
      state.access.offers.push({ id: o.id, price: o.price.toString(), durationSeconds: o.durationSeconds });
      const opt = document.createElement('option');
      opt.value = o.id;
      opt.textContent = `${o.id}: ${o.price} (${o.durationSeconds === undefined ? 'forever' : `${o.durationSeconds} s`})`;
      offerSelect.append(opt);
    }
  }
  accessStatus.className = '';
  accessStatus.textContent = `${info.policy.mode} video, preview ${info.previewEnd} bytes; you (${me}): ${mine.grant?.kind ?? 'preview only'}`;
}

$<HTMLButtonElement>('load-offers').onclick = () => loadOffers().catch(accessFailed);

$<HTMLButtonElement>('buy').onclick = async () => {
  const videoId = paidInput.value.trim();
  state.access.phase = 'buying';
  state.access.error = undefined;
  try {
    if (!offerSelect.value) await loadOffers();
    const mine = await access.myAccess(videoId);
    if (!mine.grant) {
      accessStatus.textContent = `buying ${offerSelect.value}...`;
      const r = await access.buyAccess(videoId, { offer: offerSelect.value });
      state.access.receipt = { id: r.id.toString(), amount: r.amount.toString(), blockIndex: r.blockIndex.toString(), validUntil: r.validUntil?.toString() };
      // Anyone can check a receipt against the ledger's own log.
      await access.verifyReceipt(r);
      state.access.verified = true;
      accessStatus.textContent = `bought: receipt ${r.id}, ledger block ${r.blockIndex} (verified)`;
    }
    const { url } = await access.playbackUrl(videoId, { ttlSeconds: 3600 });
    state.access.src = url;
    player.src = url;
    player.load();
    state.access.phase = 'playing';
  } catch (err) {
    accessFailed(err);
  }
};

$<HTMLButtonElement>('try').onclick = () => {
  const videoId = paidInput.value.trim();
  state.access.src = canvid.videoUrl(videoId, gateway);
  player.src = state.access.src;
  player.load();
  state.access.phase = 'trying';
};

// --- End-to-end encrypted videos (docs/encryption.md) -------------------------------------------
let encryptedPlayback: EncryptedPlayback | undefined;

/** Plays an encrypted video through the decrypting service worker (served next to this page). */
async function playEncryptedVideo(videoId: string) {
  stopHls();
  encryptedPlayback?.stop();
  const st: NonNullable<PageState['encrypted']> = { phase: 'key', videoId };
  state.encrypted = st;
  const t0 = performance.now();
  // The first decoded frame (requestVideoFrameCallback where available, else loadeddata).
  const firstFrame = () => (st.firstFrameMs ??= performance.now() - t0);
  const v = player as HTMLVideoElement & { requestVideoFrameCallback?: (f: () => void) => number };
  if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(firstFrame);
  else player.addEventListener('loadeddata', firstFrame, { once: true });
  try {
    encryptedPlayback = await playEncrypted(player, videoId, {
      agent: canvid.agent,
      gateway,
      serviceWorkerUrl: './canvid-decrypt-sw.js',
      maxAnswerBytes: params.has('maxAnswer') ? Number(params.get('maxAnswer')) : undefined,
    });
    st.keyMs = encryptedPlayback.keyMs;
    st.src = encryptedPlayback.src;
    st.phase = 'playing';
    show(`Playing encrypted video ${videoId} (decrypted in this browser)`);
  } catch (err) {
    const e = err as Error;
    st.error = { name: e.name, message: e.message };
    st.phase = 'error';
    show(`${e.name}: ${e.message}`, true);
  }
}

(window as unknown as { canvidPlayEncrypted: typeof playEncryptedVideo }).canvidPlayEncrypted = playEncryptedVideo;
if (params.get('encrypted')) void playEncryptedVideo(params.get('encrypted')!);
if (params.get('hls')) playHls(hlsUrl(params.get('hls')!, gateway), params.get('token') ?? undefined);
state.phase = 'ready';
await refreshList().catch((e: Error) => show(`listing failed: ${e.message}`, true));
