// A PocketIC server (`$POCKET_IC_BIN`, pocket-ic-server 10.0.0) for the browser tests, driven
// through its REST API the way the `pocket-ic` 10.0.0 Rust client drives it:
//
//   POST /instances                         an NNS + one application subnet, auto progress (live
//                                           mode: real time, rounds run by themselves) and an
//                                           HTTP gateway on a free port: the IC HTTP interface
//                                           (`/api/...`) and `http://<canister>.localhost:<port>/`
//   POST /instances/<n>/read/get_cycles     a canister's cycle balance, read from the state
//                                           without a message (costs the canister nothing)
//   DELETE /instances/<n>                   at the end (and the server is killed)
//
// Canisters are created and installed through the IC HTTP interface with `@icp-sdk/core`
// (management canister: `provisional_create_canister_with_cycles`, `install_code`,
// `canister_status`), as an application would. PocketIC 10's live mode answers
// `/api/v3/canister/<id>/query` and `/read_state` with 404 (../shared/pocket-ic/README.md) and
// has no `/api/v4/canister/<id>/call` (its gateway answers 400, "canister id not resolved"),
// while `@icp-sdk/core` 6 uses only those; `picFetch` sends them to `/api/v2/.../query`,
// `/api/v2/.../read_state` and `/api/v3/.../call` (synchronous call), whose requests and answers
// are the same CBOR (the agent verifies certificates with either delegation format).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Actor, HttpAgent, type ActorSubclass } from '@icp-sdk/core/agent';
import { IDL } from '@icp-sdk/core/candid';
import type { Identity } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import { init as videoInit, type VideoInit } from '../../src/bindings/video.did.js';

export const POCKET_IC_VERSION = 'pocket-ic-server 10.0.0';

/** Why the PocketIC variant cannot run here (it is then skipped with this reason), or undefined. */
export function pocketIcUnavailable(): string | undefined {
  const bin = process.env.POCKET_IC_BIN;
  if (!bin) return 'POCKET_IC_BIN is not set (scripts/test.sh sets it when ../shared/pocket-ic exists; see docs/testing.md)';
  return undefined;
}

/** `fetch` for agents talking to PocketIC's live mode: v3 query/read_state go to v2, v4 call to v3. */
export const picFetch: typeof fetch = (input, init) => {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  const to = url
    .replace(/\/api\/v3\/canister\/([^/]+)\/(query|read_state)$/, '/api/v2/canister/$1/$2')
    .replace(/\/api\/v4\/canister\/([^/]+)\/call$/, '/api/v3/canister/$1/call');
  return fetch(to === url ? input : to, init);
};

const b64 = (p: Principal) => Buffer.from(p.toUint8Array()).toString('base64');

interface ManagementService {
  provisional_create_canister_with_cycles(arg: { amount: [] | [bigint] }): Promise<{ canister_id: Principal }>;
  install_code(arg: { mode: { install: null }; canister_id: Principal; wasm_module: Uint8Array; arg: Uint8Array; sender_canister_version: [] }): Promise<void>;
  canister_status(arg: { canister_id: Principal }): Promise<{ cycles: bigint; memory_size: bigint; idle_cycles_burned_per_day: bigint }>;
}

// The management canister's methods the tests use; fields they do not use are left out
// (optional ones of the arguments, any of the results: candid subtyping).
const managementIdl: IDL.InterfaceFactory = ({ IDL }) =>
  IDL.Service({
    provisional_create_canister_with_cycles: IDL.Func(
      [IDL.Record({ amount: IDL.Opt(IDL.Nat) })],
      [IDL.Record({ canister_id: IDL.Principal })],
      [],
    ),
    install_code: IDL.Func(
      [
        IDL.Record({
          mode: IDL.Variant({ install: IDL.Null }),
          canister_id: IDL.Principal,
          wasm_module: IDL.Vec(IDL.Nat8),
          arg: IDL.Vec(IDL.Nat8),
          sender_canister_version: IDL.Opt(IDL.Nat64),
        }),
      ],
      [],
      [],
    ),
    canister_status: IDL.Func(
      [IDL.Record({ canister_id: IDL.Principal })],
      [IDL.Record({ cycles: IDL.Nat, memory_size: IDL.Nat, idle_cycles_burned_per_day: IDL.Nat })],
      [],
    ),
  });

export interface PocketIc {
  /** The instance's HTTP gateway and IC HTTP interface, `http://localhost:<port>`. */
  url: string;
  port: number;
  /** The instance's root key (DER), from `/api/v2/status`. */
  rootKey: Uint8Array;
  /** A canister id on the application subnet (effective id of `provisional_create_canister_with_cycles`). */
  effectiveCanisterId: Principal;
  /** Everything the server printed, for failure messages. */
  output: string[];
  /** An agent for `identity` on this instance (root key set, `picFetch`). */
  agent(identity: Identity): Promise<HttpAgent>;
  /**
   * A canister created by `identity` (its controller) with `cycles`, holding the video module
   * `wasm` (gzip) installed with `init`.
   */
  installVideo(identity: Identity, wasm: Uint8Array, init: VideoInit, cycles: bigint): Promise<Principal>;
  /** `canister_status` (an update call by a controller: it is not free, call it outside measurements). */
  status(identity: Identity, canister: Principal): Promise<{ cycles: bigint; memory_size: bigint; idle_cycles_burned_per_day: bigint }>;
  /** The cycle balance, read from the instance's state (no message, no cost). */
  cycles(canister: Principal): Promise<bigint>;
  stop(): Promise<void>;
}

/** Starts `$POCKET_IC_BIN` (checked to be pocket-ic-server 10.0.0) and one live instance. */
export async function startPocketIc(): Promise<PocketIc> {
  const bin = process.env.POCKET_IC_BIN!;
  if (!existsSync(bin)) throw new Error(`POCKET_IC_BIN=${bin} is not an existing file`);
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  if (version !== POCKET_IC_VERSION) throw new Error(`POCKET_IC_BIN=${bin} is \`${version}\`; this test needs \`${POCKET_IC_VERSION}\``);

  const dir = mkdtempSync(join(tmpdir(), 'canvid-pocket-ic-'));
  const portFile = join(dir, 'port');
  const output: string[] = [];
  const child: ChildProcess = spawn(bin, ['--port-file', portFile, '--ttl', '600'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  let server = '';
  for (let i = 0; i < 600 && !server; i++) {
    if (child.exitCode !== null) throw new Error(`pocket-ic exited (${child.exitCode}):\n${output.join('')}`);
    const port = existsSync(portFile) ? readFileSync(portFile, 'utf8').trim() : '';
    if (/^\d+$/.test(port)) server = `http://127.0.0.1:${port}`;
    else await new Promise((r) => setTimeout(r, 100));
  }
  if (!server) throw new Error(`pocket-ic did not write its port within 60 s:\n${output.join('')}`);

  const rest = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${server}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`PocketIC ${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };

  // An instance operation as the `pocket-ic` client does it: 409 = the instance is busy with
  // another operation (auto progress ticks it), ask again; 202 = started, poll
  // `/read_graph/<state_label>/<op_id>` until it is no longer 404. The answer's JSON text.
  const instanceCall = async (path: string, body: unknown): Promise<string> => {
    const sleep = () => new Promise((r) => setTimeout(r, 10));
    for (let attempt = 0; attempt < 30_000; attempt++) {
      let res = await fetch(`${server}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (res.status === 409) {
        await sleep();
        continue;
      }
      if (res.status === 202) {
        const { state_label, op_id } = (await res.json()) as { state_label: string; op_id: string };
        do {
          await sleep();
          res = await fetch(`${server}/read_graph/${encodeURIComponent(state_label)}/${encodeURIComponent(op_id)}`);
        } while (res.status === 404);
      }
      const text = await res.text();
      if (res.status !== 200) throw new Error(`PocketIC ${path}: ${res.status} ${text}`);
      return text;
    }
    throw new Error(`PocketIC ${path}: the instance stayed busy`);
  };

  const subnet = { state_config: 'New', instruction_config: 'Production' };
  // An NNS subnet makes certificates what mainnet's are: signed by the root key, delegated to
  // the application subnet that holds the canister (as tests/src/pocket_backend.rs does).
  const created = await rest<{
    Created?: { instance_id: number; topology: { default_effective_canister_id: { canister_id: string } }; http_gateway_info: { port: number } | null };
    Error?: { message: string };
  }>('POST', '/instances', {
    subnet_config_set: { nns: subnet, sns: null, ii: null, fiduciary: null, bitcoin: null, system: [], application: [subnet], verified_application: [] },
    http_gateway_config: { ip_addr: null, port: null, domains: null, https_config: null },
    state_dir: null,
    icp_config: null,
    log_level: null,
    bitcoind_addr: null,
    icp_features: null,
    incomplete_state: null,
    initial_time: { AutoProgress: { artificial_delay_ms: null } },
  });
  if (!created.Created) throw new Error(`PocketIC refused the instance: ${created.Error?.message ?? JSON.stringify(created)}`);
  const { instance_id: instance, topology, http_gateway_info: gw } = created.Created;
  if (!gw) throw new Error('PocketIC created the instance without the HTTP gateway it was asked for');
  const url = `http://localhost:${gw.port}`;
  const effectiveCanisterId = Principal.fromUint8Array(Buffer.from(topology.default_effective_canister_id.canister_id, 'base64'));

  const probe = await HttpAgent.create({ host: url, fetch: picFetch, shouldFetchRootKey: true });
  const rootKey = probe.rootKey!;
  const agent = (identity: Identity) => HttpAgent.create({ host: url, identity, fetch: picFetch, rootKey });
  const management = async (identity: Identity, effective: Principal): Promise<ActorSubclass<ManagementService>> =>
    Actor.createActor<ManagementService>(managementIdl, { agent: await agent(identity), canisterId: Principal.managementCanister(), effectiveCanisterId: effective });

  return {
    url,
    port: gw.port,
    rootKey,
    effectiveCanisterId,
    output,
    agent,
    async installVideo(identity, wasm, init, cycles) {
      const { canister_id } = await (await management(identity, effectiveCanisterId)).provisional_create_canister_with_cycles({ amount: [cycles] });
      const arg = new Uint8Array(IDL.encode(videoInit({ IDL }), [init]));
      await (await management(identity, canister_id)).install_code({ mode: { install: null }, canister_id, wasm_module: wasm, arg, sender_canister_version: [] });
      return canister_id;
    },
    async status(identity, canister) {
      return (await management(identity, canister)).canister_status({ canister_id: canister });
    },
    async cycles(canister) {
      const text = await instanceCall(`/instances/${instance}/read/get_cycles`, { canister_id: b64(canister) });
      // JSON numbers: a u128 balance beyond 2^53 would lose digits, so read the number's text.
      const m = /^\{"cycles":(\d+)\}$/.exec(text.trim());
      if (!m) throw new Error(`PocketIC get_cycles ${canister.toText()}: ${text}`);
      return BigInt(m[1]!);
    },
    async stop() {
      await rest('DELETE', `/instances/${instance}`).catch(() => undefined);
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
