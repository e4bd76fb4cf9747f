// The checked-in candid bindings (src/bindings/*.did.ts) must be exactly what @icp-sdk/bindgen
// generates from candid/*.did now.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IDL } from '@icp-sdk/core/candid';
import { idlFactory as videoIdl } from '../../src/bindings/video.did.js';
import { idlFactory as spawnIdl } from '../../src/bindings/spawn.did.js';
import { idlFactory as indexIdl } from '../../src/bindings/index.did.js';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

test('checked-in bindings match candid/*.did', () => {
  const out = execFileSync(process.execPath, [resolve(pkg, 'scripts/bindgen.mjs'), '--check'], { encoding: 'utf8' });
  assert.match(out, /bindings match candid\/video.did, candid\/spawn.did, candid\/index.did/);
});

test('the services have the methods the SDK calls', () => {
  const names = (f: IDL.InterfaceFactory) => f({ IDL })._fields.map(([n]) => n);
  for (const m of ['begin_upload', 'put_chunk', 'missing_chunks', 'finish_upload', 'metadata', 'get_chunk', 'change_owner', 'approve', 'update_metadata']) {
    assert.ok(names(videoIdl).includes(m), m);
  }
  assert.ok(names(spawnIdl).includes('create_video'));
  for (const m of ['videos_by_creator', 'videos_by_owner']) assert.ok(names(indexIdl).includes(m), m);
});
