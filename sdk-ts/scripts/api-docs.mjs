#!/usr/bin/env node
// Generates the API reference docs/sdk-api.md from the SDK's types and doc comments with TypeDoc
// (typedoc-plugin-markdown, settings in typedoc.json), or checks that the checked-in file is
// current.
//
//   node scripts/api-docs.mjs           # rewrite ../docs/sdk-api.md
//   node scripts/api-docs.mjs --check   # exit 1 if it is out of date
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const target = resolve(pkg, '../docs/sdk-api.md');
const tmp = mkdtempSync(join(tmpdir(), 'canvid-typedoc-'));
let fresh;
try {
  execFileSync(process.execPath, [join(pkg, 'node_modules/typedoc/bin/typedoc'), '--out', tmp, '--logLevel', 'Warn'], {
    cwd: pkg,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const body = readFileSync(join(tmp, 'README.md'), 'utf8');
  fresh =
    '<!-- Generated from sdk-ts/src by `npm run docs` (TypeDoc + typedoc-plugin-markdown). Do not edit. -->\n\n' +
    '# @canvid/sdk API reference\n\nGuide and examples: [sdk.md](sdk.md).\n\n' +
    body.replace(/^# @canvid\/sdk\n/, '');
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (process.argv.includes('--check')) {
  if (!existsSync(target) || readFileSync(target, 'utf8') !== fresh) {
    console.error(`${target} is out of date: run \`npm run docs\` in sdk-ts/`);
    process.exit(1);
  }
  console.log(`${target} is current`);
} else {
  writeFileSync(target, fresh);
  console.log(`wrote ${target}`);
}
