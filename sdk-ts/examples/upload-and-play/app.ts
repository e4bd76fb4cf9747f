// Example dApp page for @canvid/sdk: pick a file, upload it (progress, cancel, resume after a
// cancel), list your videos, play one from the HTTP gateway.
//
// Configuration comes from the query string:
//   spawn=<id>  index=<id>     the canvid canisters
//   host=<url>                 IC API host (default: this page's origin, e.g. a dev proxy)
//   gateway=<url or domain>    HTTP gateway for <video> (default icp0.io)
//   local=1                    fetch the root key from the host (local replica only!)
//   chunkSize=<bytes>          upload chunk size (default 2,000,000)
import { CanvidClient, type UploadProgress, AbortError, CanvidError, toHex } from '@canvid/sdk';
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

/** What the page did, for people and for the browser test. */
interface PageState {
  phase: string;
  videoId?: string;
  fileDigest?: string;
  progress: UploadProgress[];
  error?: { name: string; message: string };
  listed: string[];
}
const state: PageState = { phase: 'idle', progress: [], listed: [] };
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

const identity = sessionIdentity();
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
      play(v.videoId);
    };
    li.append(a);
    mine.append(li);
  }
}

function play(videoId: string) {
  player.src = canvid.videoUrl(videoId, gateway);
  player.load();
}

let controller: AbortController | undefined;
let interrupted: string | undefined; // a cancelled upload to resume

fileInput.onchange = () => {
  uploadButton.disabled = !fileInput.files?.length;
  interrupted = undefined;
  show(fileInput.files?.length ? `${fileInput.files[0]!.name}: ${mb(fileInput.files[0]!.size)} MB` : 'Choose a file.');
};

cancelButton.onclick = () => controller?.abort(new Error('cancelled by the user'));

uploadButton.onclick = async () => {
  const file = fileInput.files?.[0];
  if (!file) return;
  controller = new AbortController();
  uploadButton.disabled = true;
  cancelButton.disabled = false;
  state.phase = 'uploading';
  state.error = undefined;
  try {
    const result = await canvid.upload(file, { title: titleInput.value || file.name, mimeType: file.type || undefined }, {
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
    play(result.videoId);
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

state.phase = 'ready';
await refreshList().catch((e: Error) => show(`listing failed: ${e.message}`, true));
