// `CanvidClient`'s own wiring of the video canister's read calls and `reset_upload` — argument
// encoding, `Result` unwrapping, typed errors, retries — against the in-memory fake, plugged in
// where the client keeps its actors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Agent, type KnownPath, StateValues } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import type { UploadSpec } from '../../src/bindings/video.did.js';
import { CanvidClient } from '../../src/client.js';
import {
  AlreadyFinishedError,
  CertificationError,
  IntegrityError,
  NetworkError,
  NotAuthorizedError,
  NotReadyError,
  TransferVerificationError,
  UsageError,
} from '../../src/errors.js';
import { uploadVideo } from '../../src/upload.js';
import {
  FAKE_ROOT_KEY,
  FAST_RETRY,
  FakeNetwork,
  type FakeVideo,
  fakeResponseVerifier,
  fakeVideoActor,
  nodeFileDigest,
  nodeSha256,
  randomBytes,
} from '../support/fake.js';

/** The certified state a fake agent's `read_state` answers: controllers and module hash per canister. */
interface FakeState {
  controllers: Map<string, string[]>;
  moduleHash: Map<string, Uint8Array>;
  reads: number;
}

function fakeAgent(state?: FakeState, rootKey: Uint8Array | null = FAKE_ROOT_KEY): Agent {
  return {
    rootKey,
    readState: async (target: { canisterId: Principal }, options: { paths: KnownPath<unknown>[] }) => {
      state!.reads++;
      const id = target.canisterId.toText();
      const values = new Map<symbol, unknown>();
      for (const p of options.paths) {
        const leaf = new TextDecoder().decode(p.path[2]);
        if (leaf === 'controllers') values.set(p.key, state!.controllers.get(id)?.map((c) => Principal.fromText(c)) ?? null);
        if (leaf === 'module_hash') values.set(p.key, state!.moduleHash.get(id) ?? null);
      }
      return { certificate: new Uint8Array(), values: new StateValues(values) };
    },
  } as unknown as Agent;
}

async function clientFor(v: FakeVideo, agent: Agent = fakeAgent()): Promise<CanvidClient> {
  // No network: the video's actor is the fake; the agent only has a root key (and read_state).
  const client = await CanvidClient.create({ agent, spawnId: 'aaaaa-aa', retry: FAST_RETRY, responseVerifier: fakeResponseVerifier });
  (client as unknown as { videos: Map<string, unknown> }).videos.set(v.id, fakeVideoActor(v));
  return client;
}

async function uploaded(size: number) {
  const net = new FakeNetwork();
  const data = randomBytes(size, 5);
  const r = await uploadVideo(net, data, { title: 'c' }, { chunkSize: 1000, retry: FAST_RETRY });
  return { data, r, v: net.video(r.videoId) };
}

/** A video with an upload declared and chunks 0 and 2 of 4 stored. */
async function uploading() {
  const net = new FakeNetwork();
  const id = await net.createVideo({ title: 'u', description: '', tags: [], declaredSize: 3500 });
  const v = net.video(id);
  const data = randomBytes(3500, 6);
  await v.beginUpload({ mime_type: 'video/mp4', chunk_digests: [], total_size: 3500n, chunk_size: 1000, duration_ms: [], file_digest: [], path: [], rendition: [], encryption: [] });
  await v.putChunk(0, data.subarray(0, 1000));
  await v.putChunk(2, data.subarray(2000, 3000));
  return { v, data };
}

test('client.chunkDigests: every page, in order; chunkDigestsPage: one page', async () => {
  const { r, v } = await uploaded(10_500); // 11 chunks
  v.digestPage = 4;
  const client = await clientFor(v);
  v.calls = [];
  assert.deepEqual(await client.chunkDigests(r.videoId), r.chunkDigests);
  assert.deepEqual(v.calls.map((c) => c.index), [0, 4, 8]);
  const page = await client.chunkDigestsPage(r.videoId, { start: 4, limit: 2 });
  assert.deepEqual(page, { start: 4, chunkCount: 11, digests: r.chunkDigests.slice(4, 6), next: 6 });
});

test('client: digests while uploading (owner: nulls for missing chunks; others: NotReady)', async () => {
  const { v, data } = await uploading();
  const client = await clientFor(v);
  assert.deepEqual(await client.chunkDigests(v.id), [nodeSha256(data.subarray(0, 1000)), null, nodeSha256(data.subarray(2000, 3000)), null]);
  v.caller = 'stranger';
  await assert.rejects(client.chunkDigests(v.id), (e: unknown) => e instanceof NotReadyError && e.method === 'chunk_digests' && e.canisterId === v.id);
});

test('client.download checks each chunk against chunk_digests (wired through the actor)', async () => {
  const { data, r, v } = await uploaded(5000);
  const client = await clientFor(v);
  v.failNext('chunk_digests', new NetworkError('reset'));
  assert.equal(Buffer.compare(Buffer.from(await client.download(r.videoId)), Buffer.from(data)), 0);
  v.corruptChunk = 1;
  await assert.rejects(client.download(r.videoId), (e: unknown) => e instanceof IntegrityError && e.index === 1);
});

test('client.resetUpload abandons the upload: declaration and chunks are gone, another file fits', async () => {
  const { v } = await uploading();
  const client = await clientFor(v);
  const otherSpec: UploadSpec = { mime_type: 'video/webm', chunk_digests: [], total_size: 1234n, chunk_size: 500, duration_ms: [], file_digest: [], path: [], rendition: [], encryption: [] };
  // While chunks are stored, a different file is refused...
  await assert.rejects(v.beginUpload(otherSpec), /Conflict/);
  const after = await client.resetUpload(v.id);
  assert.equal(after.status, 'Empty');
  assert.equal(after.uploadedChunks, 0);
  assert.equal(after.size, 0);
  assert.equal(v.chunks.size, 0);
  // ...and accepted after the reset.
  assert.equal(Object.keys((await v.beginUpload(otherSpec)).status)[0], 'Uploading');
  assert.equal(v.count(), 3);
  // Idempotent and retried: a lost reply (Busy) is retried; the reset of an Empty video succeeds.
  await client.resetUpload(v.id);
  v.lostReplies.set('reset_upload', 1);
  assert.equal((await client.resetUpload(v.id)).status, 'Empty');
  assert.equal(v.calls.filter((c) => c.method === 'reset_upload').length, 4);
});

test('client.resetUpload refusals are typed: a stranger (NotAuthorized), a Ready video (AlreadyFinished)', async () => {
  const { v } = await uploading();
  const client = await clientFor(v);
  v.caller = 'stranger';
  await assert.rejects(client.resetUpload(v.id), (e: unknown) => e instanceof NotAuthorizedError && e.method === 'reset_upload' && e.canisterId === v.id);
  assert.equal(v.chunks.size, 2, 'nothing was dropped');
  const done = await uploaded(2000);
  const c2 = await clientFor(done.v);
  await assert.rejects(c2.resetUpload(done.v.id), AlreadyFinishedError);
  assert.equal(done.v.ready, true);
});

test('client.download takes the file digest from the certified /metadata.json: a consistent fake file is refused', async () => {
  const { data, r, v } = await uploaded(5000);
  const client = await clientFor(v);
  // A lying replica: chunk 1 altered, its chunk_digests entry and the metadata digest made to match.
  v.forgedChunk = 1;
  const forged = data.slice();
  forged[1000] = forged[1000]! ^ 0xff;
  v.lyingDigest = nodeFileDigest(forged, 1000);
  // Trusting the metadata query, the fake file passes every check...
  assert.deepEqual(await client.download(r.videoId, { certifiedDigest: false }), forged);
  // ...the certified digest catches it before any chunk is fetched.
  v.calls = [];
  await assert.rejects(client.download(r.videoId), (e: unknown) => e instanceof IntegrityError && /certified \/metadata.json/.test(e.message));
  assert.equal(v.calls.filter((c) => c.method === 'get_chunk').length, 0);
  // An honest replica: the certified digest agrees and the download is byte-exact.
  v.forgedChunk = undefined;
  v.lyingDigest = undefined;
  assert.deepEqual(await client.download(r.videoId), data);
  assert.equal(v.calls.filter((c) => c.method === 'http_request').length, 2);
});

test('client.download: a certified /metadata.json altered in transit or without a root key is a CertificationError', async () => {
  const { r, v } = await uploaded(3000);
  v.tamperMetadataBody = (doc) => doc.replace(/"digest":"(.)/, (_m, c: string) => `"digest":"${c === '0' ? '1' : '0'}`);
  const client = await clientFor(v);
  await assert.rejects(client.download(r.videoId), (e: unknown) => e instanceof CertificationError && /did not verify/.test(e.message));
  v.tamperMetadataBody = undefined;
  const noKey = await clientFor(v, fakeAgent(undefined, null));
  await assert.rejects(noKey.download(r.videoId), (e: unknown) => e instanceof CertificationError && /no root key/.test(e.message));
  // A different root key does not verify either.
  const otherKey = await clientFor(v, fakeAgent(undefined, new Uint8Array([9])));
  await assert.rejects(otherKey.download(r.videoId), CertificationError);
});

// --- transferOwnership: change_owner, then the certified controllers and module hash.

const VIDEO = Principal.fromUint8Array(new Uint8Array([0, 0, 0, 0, 0, 0x10, 7, 1, 1, 1])).toText();
const SPAWN = Principal.fromUint8Array(new Uint8Array([0, 0, 0, 0, 0, 0x10, 1, 1, 1, 1])).toText();
const HELPER = Principal.fromUint8Array(new Uint8Array([0, 0, 0, 0, 0, 0x10, 66, 1, 1, 1])).toText();
const BUYER = Principal.fromUint8Array(new Uint8Array(29).fill(7)).toText();
const HASH = new Uint8Array(32).fill(0xab);

/**
 * A client whose video `VIDEO` answers `change_owner` by setting the certified controllers to
 * `{new owner, video} ∪ keep` (or `∪ default` when keep is absent), plus `extra` (a backdoor).
 */
async function transferClient(
  opts: { defaultKeep?: string[]; extra?: string[]; returnsExtra?: boolean; lagReads?: number; ownerControls?: [] | [boolean] } = {},
) {
  const state: FakeState = { controllers: new Map([[VIDEO, ['2vxsx-fae', VIDEO, SPAWN]]]), moduleHash: new Map([[VIDEO, HASH]]), reads: 0 };
  const calls: unknown[] = [];
  const client = await CanvidClient.create({ agent: fakeAgent(state), spawnId: SPAWN, retry: FAST_RETRY });
  const actor = {
    change_owner: async (args: { new_owner: Principal; keep_controllers: [] | [Principal[]] }) => {
      calls.push(args);
      const keep = args.keep_controllers.length ? args.keep_controllers[0]!.map((p) => p.toText()) : (opts.defaultKeep ?? [SPAWN]);
      const set = [...new Set([args.new_owner.toText(), VIDEO, ...keep])];
      const certified = [...set, ...(opts.extra ?? [])].sort();
      let lag = opts.lagReads ?? 0;
      const before = state.controllers.get(VIDEO)!;
      // The first `lagReads` reads still see the old controllers (a replica a round behind).
      state.controllers = new Proxy(new Map([[VIDEO, certified]]), {
        get(target, prop) {
          if (prop === 'get') return (k: string) => (lag-- > 0 ? before : target.get(k));
          return Reflect.get(target, prop);
        },
      });
      const returned = opts.returnsExtra ? certified : set;
      return {
        Ok: { controllers: returned.map((p) => Principal.fromText(p)), transfer_seq: 1n, index_notified: true, owner_controls: opts.ownerControls ?? [] },
      };
    },
  };
  (client as unknown as { videos: Map<string, unknown> }).videos.set(VIDEO, actor);
  return { client, state, calls };
}

test('transferOwnership: keepControllers is passed as keep_controllers; the certified controllers and module hash are returned', async () => {
  const { client, calls } = await transferClient();
  const r = await client.transferOwnership(VIDEO, BUYER, { keepControllers: [SPAWN], expectedModuleHash: Buffer.from(HASH).toString('hex').toUpperCase() });
  assert.deepEqual(new Set(r.controllers), new Set([BUYER, VIDEO, SPAWN]));
  assert.equal(r.moduleHash, Buffer.from(HASH).toString('hex'));
  assert.equal(r.transferSeq, 1n);
  const arg = calls[0] as { keep_controllers: [Principal[]] };
  assert.deepEqual(arg.keep_controllers[0]!.map((p) => p.toText()), [SPAWN]);
  // Omitted: candid none (the canister's default); [] : some(empty).
  const d = await transferClient();
  await d.client.transferOwnership(VIDEO, BUYER);
  assert.deepEqual((d.calls[0] as { keep_controllers: [] }).keep_controllers, []);
  const n = await transferClient();
  const r2 = await n.client.transferOwnership(VIDEO, BUYER, { keepControllers: [], expectedModuleHash: HASH });
  assert.deepEqual((n.calls[0] as { keep_controllers: [Principal[]] }).keep_controllers, [[]]);
  assert.deepEqual(new Set(r2.controllers), new Set([BUYER, VIDEO]));
});

test('transferOwnership: ownerControls says whether the new owner controls the canister yet', async () => {
  // Modules before the hand-over do not answer owner_controls: the owner controls.
  assert.equal((await (await transferClient()).client.transferOwnership(VIDEO, BUYER)).ownerControls, true);
  assert.equal((await (await transferClient({ ownerControls: [true] })).client.transferOwnership(VIDEO, BUYER)).ownerControls, true);
  // An unfinished spawned video: the app-level owner moved, control follows at finish_upload.
  assert.equal((await (await transferClient({ ownerControls: [false] })).client.transferOwnership(VIDEO, BUYER)).ownerControls, false);
});

test('transferOwnership: certified controllers beyond the returned ones (a backdoor) are a TransferVerificationError', async () => {
  const { client, state } = await transferClient({ extra: [HELPER] });
  await assert.rejects(
    client.transferOwnership(VIDEO, BUYER, { keepControllers: [SPAWN] }),
    (e: unknown) =>
      e instanceof TransferVerificationError &&
      e.problem === 'controllers' &&
      e.certifiedControllers.includes(HELPER) &&
      !e.returnedControllers.includes(HELPER) &&
      e.videoId === VIDEO,
  );
  assert.equal(state.reads, 3, 'read again before failing');
});

test('transferOwnership: a stored installer the buyer did not name is refused when keepControllers is given', async () => {
  // The canister returned and set a controller the buyer did not ask for.
  const { client } = await transferClient({ extra: [HELPER], returnsExtra: true });
  await assert.rejects(
    client.transferOwnership(VIDEO, BUYER, { keepControllers: [SPAWN] }),
    (e: unknown) => e instanceof TransferVerificationError && e.problem === 'controllers' && e.expectedControllers!.length === 3,
  );
  // Without keepControllers the canister's choice is only checked against the certified state.
  const d = await transferClient({ defaultKeep: [HELPER] });
  const r = await d.client.transferOwnership(VIDEO, BUYER);
  assert.ok(r.controllers.includes(HELPER));
});

test('transferOwnership: a different module hash is a TransferVerificationError; a bad expectedModuleHash a UsageError', async () => {
  const { client } = await transferClient();
  await assert.rejects(
    client.transferOwnership(VIDEO, BUYER, { expectedModuleHash: new Uint8Array(32).fill(1) }),
    (e: unknown) => e instanceof TransferVerificationError && e.problem === 'module_hash' && e.certifiedModuleHash === Buffer.from(HASH).toString('hex'),
  );
  const u = await transferClient();
  await assert.rejects(u.client.transferOwnership(VIDEO, BUYER, { expectedModuleHash: 'abcd' }), UsageError);
  assert.equal(u.calls.length, 0, 'refused before change_owner');
});

test('transferOwnership: a replica a round behind is read again', async () => {
  const { client, state } = await transferClient({ lagReads: 1 });
  const r = await client.transferOwnership(VIDEO, BUYER, { keepControllers: [SPAWN] });
  assert.deepEqual(new Set(r.controllers), new Set([BUYER, VIDEO, SPAWN]));
  assert.equal(state.reads, 2);
});
