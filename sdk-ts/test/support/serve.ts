// Starts `canvid serve` (the embedded replica's IC HTTP interface + gateway on one loopback port)
// for the end-to-end tests, and reads what it publishes once up (docs/serve.md):
//
//   canvid serve --port 0 --state DIR
//     stdout: a line `listening on http://127.0.0.1:<port>`
//     DIR/canister_ids.json = {"index": {"embedded": "<id>"}, "spawn": {"embedded": "<id>"}}
//     DIR/serve.json        = {"url": "http://127.0.0.1:<port>", "pid": N, "root_key": "<hex DER>"}
//
// The binary is $CANVID_BIN when set (scripts/sdk-test.sh builds it), else
// `cargo run --release -q -p canvid-cli -- serve ...` from the repository root. A server that
// does not come up fails the test run: these tests never skip.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

export interface Served {
  url: string;
  port: number;
  rootKey: string;
  spawnId: string;
  indexId: string;
  /** The ICRC ledger `--icrc-ledger` installed (canister_ids.json "icrc_ledger"). */
  ledgerId?: string;
  stateDir: string;
  child: ChildProcess;
  /** Everything the server printed (stdout + stderr), for failure messages. */
  output: string[];
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = Number(process.env.CANVID_SERVE_TIMEOUT_MS ?? 20 * 60 * 1000);

/**
 * `admins`: principals `canvid serve --admin` makes admins of the spawn and index canisters.
 * `env`: more environment, e.g. `CANVID_GATEWAY_LOG=1` (one `[gateway] ...` stderr line per
 * request the gateway answers, kept in `output`; see `gatewayLines`).
 * `icrcLedger`: `--icrc-ledger` (DFINITY's ledger module or its folder); `fund`:
 * `--fund PRINCIPAL=AMOUNT` entries.
 */
export async function startServe(
  opts: { admins?: string[]; icrcLedger?: string; fund?: string[]; env?: Record<string, string> } = {},
): Promise<Served> {
  const stateDir = mkdtempSync(join(tmpdir(), 'canvid-sdk-e2e-'));
  const args = [
    'serve', '--port', '0', '--state', stateDir,
    ...(opts.admins ?? []).flatMap((a) => ['--admin', a]),
    ...(opts.icrcLedger ? ['--icrc-ledger', opts.icrcLedger] : []),
    ...(opts.fund ?? []).flatMap((f) => ['--fund', f]),
  ];
  const [cmd, cmdArgs] = process.env.CANVID_BIN
    ? [process.env.CANVID_BIN, args]
    : ['cargo', ['run', '--release', '-q', '-p', 'canvid-cli', '--', ...args]];
  const child = spawn(cmd, cmdArgs, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env ?? {}) } });
  const output: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => output.push(`[stderr] ${l}`));
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`canvid serve did not print "listening on" within ${START_TIMEOUT_MS} ms:\n${output.join('\n')}`)), START_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      rej(new Error(`cannot start ${cmd}: ${e.message}`));
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      rej(new Error(`canvid serve exited (${code ?? sig}) before listening:\n${output.join('\n')}`));
    });
    lines.on('line', (l) => {
      output.push(l);
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(l);
      if (m) {
        clearTimeout(timer);
        res(m[1]!);
      }
    });
  });
  child.removeAllListeners('exit');
  const serveJson = join(stateDir, 'serve.json');
  const idsJson = join(stateDir, 'canister_ids.json');
  for (let i = 0; i < 100 && !(existsSync(serveJson) && existsSync(idsJson)); i++) await new Promise((r) => setTimeout(r, 50));
  const serve = JSON.parse(readFileSync(serveJson, 'utf8')) as { url: string; pid: number; root_key: string };
  const ids = JSON.parse(readFileSync(idsJson, 'utf8')) as {
    spawn: { embedded: string };
    index: { embedded: string };
    icrc_ledger?: { embedded: string };
  };
  if (serve.url !== url) throw new Error(`serve.json url ${serve.url} != printed ${url}`);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(stateDir, { recursive: true, force: true });
  };
  return {
    url,
    port: Number(new URL(url).port),
    rootKey: serve.root_key,
    spawnId: ids.spawn.embedded,
    indexId: ids.index.embedded,
    ledgerId: ids.icrc_ledger?.embedded,
    stateDir,
    child,
    output,
    stop,
  };
}

/** GET through the gateway on the same port, with `Host: <id>.localhost` (no DNS needed). */
export function gatewayGet(
  port: number,
  canisterId: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((res, rej) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'GET', headers: { host: `${canisterId}.localhost:${port}`, ...headers } },
      (r) => {
        const parts: Buffer[] = [];
        r.on('data', (d: Buffer) => parts.push(d));
        r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(parts) }));
        r.on('error', rej);
      },
    );
    req.on('error', rej);
    req.end();
  });
}

/**
 * DFINITY's ICRC ledger test fixture (`$ICRC_LEDGER_DIR`, else `../shared/fixtures/icrc-ledger`
 * next to the repository), or undefined when it is absent (tests then skip, saying so).
 */
export function icrcLedgerDir(): string | undefined {
  const dir = process.env.ICRC_LEDGER_DIR ?? resolve(REPO, '../shared/fixtures/icrc-ledger');
  return existsSync(join(dir, 'ic-icrc1-ledger.wasm.gz')) ? dir : undefined;
}

/** One request as `CANVID_GATEWAY_LOG` prints it (local/gateway/src/gateway.rs). */
export interface GatewayLine {
  method: string;
  url: string;
  range?: string;
  status: number;
  bytes: number;
  /** Answered by `http_request_update` (the query answer asked for an upgrade). */
  upgraded: boolean;
  /** The gateway verified the answer's certification. */
  verified: boolean;
}

/** The gateway lines of `output` from index `from` on. */
export function gatewayLines(output: readonly string[], from = 0): GatewayLine[] {
  const out: GatewayLine[] = [];
  for (const l of output.slice(from)) {
    const m = /\[gateway\] (\S+) (\S+) range=(None|Some\("([^"]*)"\)) -> (\d+) \((\d+) bytes\)( \[update\])?( \[verified\])?$/.exec(l);
    if (!m) continue;
    out.push({
      method: m[1]!,
      url: m[2]!,
      ...(m[4] !== undefined ? { range: m[4] } : {}),
      status: Number(m[5]),
      bytes: Number(m[6]),
      upgraded: m[7] !== undefined,
      verified: m[8] !== undefined,
    });
  }
  return out;
}
