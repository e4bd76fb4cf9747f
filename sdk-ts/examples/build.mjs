#!/usr/bin/env node
// Bundles the example page(s) with esbuild into examples/dist/<name>/ (index.html + app.js, and
// the decrypting service worker canvid-decrypt-sw.js for `?encrypted=<id>`).
// The bundle imports `@canvid/sdk` by its package name (resolved to this package's dist/ build,
// as an app depending on @canvid/sdk would), so run `npm run build` first.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDecryptWorker } from '../scripts/build-sw.mjs';

const here = dirname(fileURLToPath(import.meta.url));
for (const name of ['upload-and-play']) {
  const out = join(here, 'dist', name);
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(here, name, 'app.ts')],
    outfile: join(out, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome120', 'firefox120', 'safari17'],
    sourcemap: true,
    minify: true,
    logLevel: 'warning',
  });
  copyFileSync(join(here, name, 'index.html'), join(out, 'index.html'));
  // The decrypting service worker of encrypted videos, served next to the page (its scope).
  await buildDecryptWorker(join(out, 'canvid-decrypt-sw.js'));
  console.log(`bundled ${join(out, 'app.js')}`);
}
