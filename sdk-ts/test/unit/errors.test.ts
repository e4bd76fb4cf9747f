import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AgentError,
  CertifiedRejectErrorCode,
  ErrorKindEnum,
  HttpErrorCode,
  HttpFetchErrorCode,
  ProtocolError,
  RejectError,
  TransportError,
  UncertifiedRejectUpdateErrorCode,
} from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import * as E from '../../src/errors.js';
import type { CandidError } from '../../src/errors.js';

const caller = Principal.fromText('2vxsx-fae');

test('every candid Error variant maps to its class with the canister reason', () => {
  const cases: Array<[CandidError, new (...a: never[]) => E.CanisterError, RegExp]> = [
    [{ AlreadyFinished: null }, E.AlreadyFinishedError, /finished/],
    [{ CallFailed: { method: 'update_settings', target: Principal.managementCanister(), reason: 'out of cycles' } }, E.CallFailedError, /update_settings on aaaaa-aa failed: out of cycles/],
    [{ WrongDigest: { actual: new Uint8Array([1]), expected: new Uint8Array([2]), index: [4] } }, E.WrongDigestError, /chunk 4 digest 01 != expected 02/],
    [{ Busy: { reason: 'transfer in flight' } }, E.BusyError, /transfer in flight/],
    [{ TooLarge: { size: 5n, limit: 4n } }, E.TooLargeError, /5 bytes exceeds the limit of 4/],
    [{ NotReady: { reason: 'not finished' } }, E.NotReadyError, /not finished/],
    [{ NotFound: { what: 'chunk 3' } }, E.NotFoundError, /chunk 3 not found/],
    [{ InsufficientCycles: { available: 1n, required: 2n } }, E.InsufficientCyclesError, /2 cycles required, 1 available/],
    [{ NotAuthorized: { caller, reason: 'only the owner' } }, E.NotAuthorizedError, /2vxsx-fae: only the owner/],
    [{ InvalidArgument: { reason: 'bad tag' } }, E.InvalidArgumentError, /bad tag/],
    [{ WrongChunkSize: { actual: 3n, expected: 4n, index: 1 } }, E.WrongChunkSizeError, /chunk 1 is 3 bytes, expected 4/],
    [{ ChunkOutOfRange: { chunk_count: 2, index: 9 } }, E.ChunkOutOfRangeError, /chunk 9 outside 0..2/],
    [{ Incomplete: { missing_count: 7, missing: new Uint32Array([1]) } }, E.IncompleteError, /7 chunks missing/],
    [{ Conflict: { reason: 'already registered' } }, E.ConflictError, /already registered/],
  ];
  for (const [variant, Cls, reason] of cases) {
    const e = E.fromCandidError(variant, { canisterId: 'aaaaa-aa', method: 'm' });
    assert.ok(e instanceof Cls, `${Object.keys(variant)[0]} -> ${e.name}`);
    assert.ok(e instanceof E.CanisterError && e instanceof E.CanvidError && e instanceof Error);
    assert.equal(e.kind, Object.keys(variant)[0]);
    assert.match(e.reason, reason);
    assert.equal(e.method, 'm');
    assert.equal(e.transient, e.kind === 'Busy');
  }
  const na = E.fromCandidError({ NotAuthorized: { caller, reason: 'x' } }) as E.NotAuthorizedError;
  assert.equal(na.caller?.toText(), '2vxsx-fae');
  assert.equal(E.unwrap({ Ok: 5 }), 5);
  assert.throws(() => E.unwrap({ Err: { NotFound: { what: 'video' } } }), E.NotFoundError);
});

test('inspect_message refusals (IC0406) become NotAuthorizedError', () => {
  const reject = RejectError.fromCode(new UncertifiedRejectUpdateErrorCode(new Uint8Array(32) as never, 4, 'Caller is not allowed: canister_inspect_message rejected the message', 'IC0406'));
  const e = E.fromAgentError(reject, { method: 'put_chunk' });
  assert.ok(e instanceof E.NotAuthorizedError, e.name);
  assert.match((e as E.NotAuthorizedError).reason, /inspect_message/);
  assert.equal(e.transient, false);
  // A replica that only names the code in an HTTP error body.
  const http = ProtocolError.fromCode(new HttpErrorCode(400, 'Bad Request', [], 'Error code IC0406: Requested canister rejected the message'));
  assert.ok(E.fromAgentError(http) instanceof E.NotAuthorizedError);
});

test('other rejects become RejectedError; SYS_TRANSIENT is transient', () => {
  const trap = RejectError.fromCode(new CertifiedRejectErrorCode(new Uint8Array(32) as never, 5, 'Canister trapped: oops', 'IC0503'));
  const e = E.fromAgentError(trap) as E.RejectedError;
  assert.ok(e instanceof E.RejectedError);
  assert.equal(e.rejectCode, 5);
  assert.equal(e.errorCode, 'IC0503');
  assert.equal(e.transient, false);
  const busy = RejectError.fromCode(new CertifiedRejectErrorCode(new Uint8Array(32) as never, 2, 'queue full', 'IC0515'));
  assert.equal(E.fromAgentError(busy).transient, true);
});

test('transport and HTTP failures are NetworkErrors; 5xx/429 transient, 4xx not', () => {
  const fetchFail = TransportError.fromCode(new HttpFetchErrorCode(new TypeError('fetch failed')));
  const n = E.fromAgentError(fetchFail);
  assert.ok(n instanceof E.NetworkError && n.transient);
  for (const [status, transient] of [[503, true], [429, true], [500, true], [400, false], [403, false]] as const) {
    const h = E.fromAgentError(ProtocolError.fromCode(new HttpErrorCode(status, 's', [], 'body')));
    assert.ok(h instanceof E.NetworkError);
    assert.equal((h as E.NetworkError).status, status);
    assert.equal(h.transient, transient, String(status));
  }
  assert.ok(E.fromAgentError(new TypeError('fetch failed')) instanceof E.NetworkError);
  const abort = E.fromAgentError(new DOMException('stop', 'AbortError'));
  assert.ok(abort instanceof E.AbortError);
  const unknown = E.fromAgentError(new AgentError(new HttpFetchErrorCode('x'), ErrorKindEnum.Unknown));
  assert.ok(unknown instanceof E.NetworkError);
  assert.ok(E.fromAgentError(42) instanceof E.UnexpectedError);
  const already = new E.UsageError('x');
  assert.equal(E.fromAgentError(already), already);
  assert.equal(E.isTransient(new E.AbortError()), false);
});
