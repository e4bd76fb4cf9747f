// The collection client's pure parts: token id ⇄ canister id (docs/nft.md "Token ids", the
// same pair as canvid_types::icrc), ICRC error variants and GenericError codes → messages,
// ICRC-3 values and blocks, and the ownership checks of verifyOwnership.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Principal } from '@icp-sdk/core/principal';
import {
  CollectionError,
  CanvidError,
  UsageError,
  blockAccountText,
  decodeBlock,
  fromIcrcError,
  ownershipProblems,
  plainValue,
  toAccount,
  toTokenId,
  tokenIdOf,
  videoOfToken,
} from '../../src/index.js';

test('token id = the first 8 bytes of the canister id, big-endian, and back', () => {
  assert.equal(tokenIdOf('rrkah-fqaaa-aaaaa-aaaaq-cai'), 1n);
  assert.equal(videoOfToken(1n), 'rrkah-fqaaa-aaaaa-aaaaq-cai');
  // The first canister ids of a local replica and of canvid serve.
  assert.equal(tokenIdOf(Principal.fromText('ryjl3-tyaaa-aaaaa-aaaba-cai')), 2n);
  for (const n of [0n, 1n, 0x12345678n, 0x0102030405060708n, (1n << 64n) - 1n]) {
    assert.equal(tokenIdOf(videoOfToken(n)), n, `token ${n}`);
  }
  const bytes = Principal.fromText(videoOfToken(0x0102030405060708n)).toUint8Array();
  assert.deepEqual([...bytes], [1, 2, 3, 4, 5, 6, 7, 8, 1, 1]);
  assert.throws(() => tokenIdOf('2vxsx-fae'), UsageError);
  assert.throws(() => tokenIdOf(Principal.fromUint8Array(new Uint8Array(29).fill(3))), /not a canister id/);
  assert.throws(() => videoOfToken(1n << 64n), UsageError);
  assert.throws(() => videoOfToken(-1n), UsageError);
  assert.throws(() => tokenIdOf('not a principal'), UsageError);
});

test('a token is named by its id, its decimal text or its canister', () => {
  assert.equal(toTokenId(5n), 5n);
  assert.equal(toTokenId(5), 5n);
  assert.equal(toTokenId('18446744073709551615'), (1n << 64n) - 1n);
  assert.equal(toTokenId('rrkah-fqaaa-aaaaa-aaaaq-cai'), 1n);
  assert.equal(toTokenId(Principal.fromText('rrkah-fqaaa-aaaaa-aaaaq-cai')), 1n);
  assert.throws(() => toTokenId(-1), UsageError);
  assert.throws(() => toTokenId(1.5), UsageError);
});

test('accounts: a principal is its default account; subaccounts have 32 bytes', () => {
  const p = Principal.fromText('2vxsx-fae');
  assert.deepEqual(toAccount('2vxsx-fae'), { owner: p, subaccount: [] });
  assert.deepEqual(toAccount(p), { owner: p, subaccount: [] });
  const sub = new Uint8Array(32).fill(1);
  assert.deepEqual(toAccount({ owner: '2vxsx-fae', subaccount: sub }), { owner: p, subaccount: [sub] });
  assert.throws(() => toAccount({ owner: p, subaccount: new Uint8Array(3) }), /32 bytes/);
});

test('every ICRC-7/37 error variant becomes a CollectionError with a clear message', () => {
  const site = { canisterId: 'rrkah-fqaaa-aaaaa-aaaaq-cai', method: 'icrc7_transfer' };
  const cases: Array<[object, RegExp, Partial<CollectionError>]> = [
    [{ NonExistingTokenId: null }, /token 7 does not exist/, { kind: 'NonExistingTokenId' }],
    [{ InvalidRecipient: null }, /recipient/, { kind: 'InvalidRecipient' }],
    [{ InvalidSpender: null }, /spender/, { kind: 'InvalidSpender' }],
    [{ Unauthorized: null }, /may not do this with token 7/, { kind: 'Unauthorized' }],
    [{ ApprovalDoesNotExist: null }, /no such approval/, { kind: 'ApprovalDoesNotExist' }],
    [{ TooOld: null }, /older than the transaction window/, { kind: 'TooOld' }],
    [{ CreatedInFuture: { ledger_time: 42n } }, /later than the collection's time 42/, { kind: 'CreatedInFuture', ledgerTime: 42n }],
    [{ Duplicate: { duplicate_of: 9n } }, /already applied as block 9/, { kind: 'Duplicate', duplicateOf: 9n }],
  ];
  for (const [variant, message, fields] of cases) {
    const e = fromIcrcError(variant as never, { tokenId: 7n, site });
    assert.ok(e instanceof CollectionError && e instanceof CanvidError, e.name);
    assert.match(e.message, message);
    assert.match(e.message, /\(icrc7_transfer on rrkah-fqaaa-aaaaa-aaaaq-cai\)$/);
    for (const [k, v] of Object.entries(fields)) assert.equal((e as unknown as Record<string, unknown>)[k], v, k);
    assert.equal(e.tokenId, 7n);
    assert.equal(e.transient, false);
  }
});

test('GenericError codes (docs/nft.md "Error codes") are named and explained', () => {
  const codes: Array<[bigint, string, RegExp]> = [
    [1n, 'busy', /retry/],
    [2n, 'notSoleControl', /does not control the video canister alone/],
    [3n, 'videoRefused', /refused/],
    [4n, 'callFailed', /call .* failed/],
    [5n, 'memoTooLong', /32 bytes/],
    [6n, 'badRecipient', /default account/],
    [7n, 'tooManyApprovals', /too many approvals/],
    [8n, 'fromSubaccount', /default account/],
    [9n, 'expired', /not in the future/],
    [10n, 'batchTooLarge', /too many requests/],
    [99n, 'unknown', /code 99/],
  ];
  for (const [code, name, text] of codes) {
    const e = fromIcrcError({ GenericError: { error_code: code, message: 'the canister says why' } });
    assert.equal(e.kind, 'GenericError');
    assert.equal(e.errorCode, code);
    assert.equal(e.code, name);
    assert.equal(e.reason, 'the canister says why');
    assert.match(e.message, text);
    assert.match(e.message, /the canister says why/);
    assert.equal(e.transient, name === 'busy', name);
  }
  const batch = fromIcrcError({ GenericBatchError: { error_code: 10n, message: '11 requests in one call; at most 10' } });
  assert.equal(batch.kind, 'GenericBatchError');
  assert.equal(batch.code, 'batchTooLarge');
});

test('ICRC-3 values and blocks decode to plain values', () => {
  const owner = Principal.fromText('2vxsx-fae');
  assert.deepEqual(plainValue({ Map: [['a', { Nat: 1n }], ['b', { Array: [{ Text: 'x' }, { Int: -2n }] }]] }), { a: 1n, b: ['x', -2n] });
  const block = decodeBlock(3n, {
    Map: [
      ['btype', { Text: '37xfer' }],
      ['phash', { Blob: new Uint8Array([1, 2]) }],
      ['ts', { Nat: 1000n }],
      [
        'tx',
        {
          Map: [
            ['tid', { Nat: 5n }],
            ['from', { Array: [{ Blob: owner.toUint8Array() }] }],
            ['to', { Array: [{ Blob: owner.toUint8Array() }, { Blob: new Uint8Array(32).fill(2) }] }],
          ],
        },
      ],
    ],
  });
  assert.equal(block.id, 3n);
  assert.equal(block.btype, '37xfer');
  assert.equal(block.ts, 1000n);
  assert.equal(block.tokenId, 5n);
  assert.deepEqual(block.phash, new Uint8Array([1, 2]));
  assert.equal(blockAccountText(block.tx.from), '2vxsx-fae');
  assert.equal(blockAccountText(block.tx.to), `2vxsx-fae.${'02'.repeat(32)}`);
  assert.equal(blockAccountText(undefined), undefined);
});

test('verifyOwnership: the holder controls the video alone and the certified metadata agrees', () => {
  const video = videoOfToken(5n);
  const [holder, seller, spawn] = ['2vxsx-fae', 'aaaaa-aa', 'ryjl3-tyaaa-aaaaa-aaaba-cai'];
  const base = {
    tokenId: 5n,
    videoId: video,
    collection: 'rrkah-fqaaa-aaaaa-aaaaq-cai',
    holder,
    controllers: [holder, video, spawn],
    moduleHash: 'ab'.repeat(32),
    metadataOwner: holder,
    control: 'owner',
    platform: [spawn],
  };
  assert.deepEqual(ownershipProblems(base), []);
  assert.deepEqual(ownershipProblems({ ...base, controllers: [video, holder] }), []);
  assert.match(ownershipProblems({ ...base, controllers: [video, spawn] }).join(), /not a controller/);
  assert.match(ownershipProblems({ ...base, controllers: [holder, video, seller] }).join(), /controllers besides its holder.*aaaaa-aa/);
  assert.match(ownershipProblems({ ...base, metadataOwner: seller }).join(), /certified metadata names aaaaa-aa, not the holder/);
  assert.match(ownershipProblems({ ...base, control: 'after_upload' }).join(), /does not control it yet/);
  assert.match(ownershipProblems({ ...base, holder: undefined }).join(), /does not exist/);
  assert.deepEqual(ownershipProblems({ ...base, expectedModuleHash: 'AB'.repeat(32) }), []);
  assert.match(ownershipProblems({ ...base, expectedModuleHash: new Uint8Array(32) }).join(), /runs module ab/);
});
