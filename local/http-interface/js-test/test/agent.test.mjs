// The unmodified @icp-sdk/core agent against the embedded replica's HTTP interface: root key
// fetched from /api/v2/status, default verification (query signatures, certificates), with
// Ed25519, secp256k1, ECDSA P-256 and delegation identities.
//
// Needs the example server binary: AGENT_TEST_SERVER=<path to agent_test_server> (see
// scripts/agent-js-test.sh, which builds it).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { HttpAgent, Actor, CanisterStatus, AnonymousIdentity } from '@icp-sdk/core/agent';
import { IDL } from '@icp-sdk/core/candid';
import { Principal } from '@icp-sdk/core/principal';
import {
  Ed25519KeyIdentity,
  ECDSAKeyIdentity,
  DelegationChain,
  DelegationIdentity,
} from '@icp-sdk/core/identity';
import { Secp256k1KeyIdentity } from '@icp-sdk/core/identity/secp256k1';

const idlFactory = ({ IDL }) =>
  IDL.Service({
    whoami: IDL.Func([], [IDL.Principal], ['query']),
    whoami_update: IDL.Func([], [IDL.Principal], []),
    set_heap: IDL.Func([IDL.Nat64], [], []),
    get_heap: IDL.Func([], [IDL.Nat64], ['query']),
  });

let server;
let info;

before(async () => {
  const bin = process.env.AGENT_TEST_SERVER;
  assert.ok(bin, 'set AGENT_TEST_SERVER to the agent_test_server example binary');
  server = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: server.stdout });
  info = await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.once('exit', code => reject(new Error(`agent_test_server exited with ${code}`)));
    lines.once('line', line => resolve(JSON.parse(line)));
  });
});

after(() => {
  server?.stdin.end();
});

async function agentFor(identity) {
  return HttpAgent.create({ host: info.url, identity, shouldFetchRootKey: true });
}

async function exercise(identity, value) {
  const agent = await agentFor(identity);
  // The agent fetched the replica's root key.
  assert.equal(Buffer.from(agent.rootKey).toString('hex'), info.root_key);
  const canisterId = Principal.fromText(info.canister);
  const actor = Actor.createActor(idlFactory, { agent, canisterId });
  const me = identity.getPrincipal().toText();
  // Update: synchronous call (/api/v4), certificate verified.
  assert.equal((await actor.whoami_update()).toText(), me);
  // Query: node signature verified against the subnet's node keys read from the state tree.
  assert.equal((await actor.whoami()).toText(), me);
  await actor.set_heap(BigInt(value));
  assert.equal(await actor.get_heap(), BigInt(value));
  // read_state through CanisterStatus: module hash and controllers, certified by the root key.
  const status = await CanisterStatus.request({
    canisterId,
    agent,
    paths: ['module_hash', 'controllers', 'time'],
  });
  assert.equal(status.get('module_hash'), info.module_hash);
  assert.deepEqual(
    status.get('controllers').map(p => p.toText()),
    [Principal.anonymous().toText()],
  );
  assert.ok(status.get('time') instanceof Date);
  return agent;
}

test('Ed25519 identity', async () => {
  await exercise(Ed25519KeyIdentity.generate(), 1);
});

test('secp256k1 identity', async () => {
  await exercise(Secp256k1KeyIdentity.generate(), 2);
});

test('ECDSA P-256 identity', async () => {
  await exercise(await ECDSAKeyIdentity.generate(), 3);
});

test('anonymous identity', async () => {
  await exercise(new AnonymousIdentity(), 4);
});

test('delegation identity (Ed25519 chain)', async () => {
  const root = Ed25519KeyIdentity.generate();
  const session = Ed25519KeyIdentity.generate();
  const chain = await DelegationChain.create(
    root,
    session.getPublicKey(),
    new Date(Date.now() + 15 * 60 * 1000),
  );
  const identity = DelegationIdentity.fromDelegation(session, chain);
  // The canister sees the root key's principal.
  assert.equal(identity.getPrincipal().toText(), root.getPrincipal().toText());
  await exercise(identity, 5);
});

test('delegation restricted to other canisters is refused', async () => {
  const root = Ed25519KeyIdentity.generate();
  const session = Ed25519KeyIdentity.generate();
  const chain = await DelegationChain.create(
    root,
    session.getPublicKey(),
    new Date(Date.now() + 15 * 60 * 1000),
    { targets: [Principal.fromText('ryjl3-tyaaa-aaaaa-aaaba-cai')] },
  );
  const agent = await agentFor(DelegationIdentity.fromDelegation(session, chain));
  const actor = Actor.createActor(idlFactory, {
    agent,
    canisterId: Principal.fromText(info.canister),
  });
  await assert.rejects(actor.whoami_update(), /400/);
});

test('readState of the time path', async () => {
  const agent = await agentFor(Ed25519KeyIdentity.generate());
  const { verifiedCertificate } = await agent.readState(
    { canisterId: Principal.fromText(info.canister) },
    { paths: [[new TextEncoder().encode('time')]] },
  );
  assert.ok(verifiedCertificate.lookup_path(['time']));
});
