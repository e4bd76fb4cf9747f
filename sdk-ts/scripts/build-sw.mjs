#!/usr/bin/env node
// Bundles the decrypting service worker (src/decrypt-sw-entry.ts and what it imports) into one
// classic script, dist/canvid-decrypt-sw.js (or the path given), for apps to serve at their own
// origin (docs/sdk.md, "Encrypted videos"). A classic script (no `import`), so that it also
// registers where module service workers are not supported.
import { build } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Writes the worker script to `outfile`. */
export async function buildDecryptWorker(outfile = join(pkg, 'dist/canvid-decrypt-sw.js')) {
  await build({
    entryPoints: [join(pkg, 'src/decrypt-sw-entry.ts')],
    outfile,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome120', 'firefox120', 'safari17'],
    sourcemap: true,
    minify: true,
    logLevel: 'warning',
  });
  return outfile;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(`bundled ${await buildDecryptWorker(process.argv[2] ? resolve(process.argv[2]) : undefined)}`);
}
