#!/usr/bin/env node
// Generates the candid bindings in src/bindings/ from ../candid/{video,spawn,index}.did with
// @icp-sdk/bindgen (offline: it ships its generator as wasm), or checks that the checked-in
// files are exactly what the generator produces now.
//
//   node scripts/bindgen.mjs           # (re)write src/bindings/*.did.ts
//   node scripts/bindgen.mjs --check   # exit 1 if a checked-in binding differs from the .did
//
// The unit test `bindings.test` runs the --check mode, so a .did change without regenerated
// bindings fails the SDK's tests.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..');
const candidDir = resolve(pkg, '../candid');
const outDir = join(pkg, 'src/bindings');
export const CANISTERS = ['video', 'spawn', 'index'];
const bin = join(pkg, 'node_modules/@icp-sdk/bindgen/dist/esm/cli/icp-bindgen.js');

function generate(name, dir) {
  execFileSync(process.execPath, [bin, '--did-file', join(candidDir, `${name}.did`), '--out-dir', dir,
    '--actor-disabled', '--declarations-typescript', '--declarations-flat', '--force'],
  { stdio: ['ignore', 'ignore', 'inherit'] });
  return readFileSync(join(dir, `${name}.did.ts`), 'utf8');
}

const check = process.argv.includes('--check');
const tmp = mkdtempSync(join(tmpdir(), 'canvid-bindgen-'));
let stale = [];
try {
  for (const name of CANISTERS) {
    const fresh = generate(name, tmp);
    const target = join(outDir, `${name}.did.ts`);
    if (check) {
      const current = existsSync(target) ? readFileSync(target, 'utf8') : null;
      if (current !== fresh) stale.push(target);
    } else {
      writeFileSync(target, fresh);
      console.log(`wrote ${target}`);
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (stale.length > 0) {
  console.error(`stale candid bindings (run \`npm run bindgen\` in sdk-ts/):\n  ${stale.join('\n  ')}`);
  process.exit(1);
}
if (check) console.log(`bindings match ${CANISTERS.map((n) => `candid/${n}.did`).join(', ')}`);
