// The few ICRC-1/2/3 ledger methods the SDK calls (icrc1_fee, icrc1_balance_of, icrc2_approve,
// icrc2_allowance, icrc3_get_blocks), typed from the standards' candid (ICRC-1, ICRC-2, ICRC-3):
// any ICRC-2 ledger (ICP, ckBTC, ckUSDC, SNS, DFINITY's ic-icrc1-ledger) answers them.
import type { ActorMethod } from '@icp-sdk/core/agent';
import { IDL } from '@icp-sdk/core/candid';
import type { Principal } from '@icp-sdk/core/principal';

export interface IcrcAccount {
  owner: Principal;
  subaccount: [] | [Uint8Array];
}

export interface IcrcApproveArgs {
  from_subaccount: [] | [Uint8Array];
  spender: IcrcAccount;
  amount: bigint;
  expected_allowance: [] | [bigint];
  expires_at: [] | [bigint];
  fee: [] | [bigint];
  memo: [] | [Uint8Array];
  created_at_time: [] | [bigint];
}

export type IcrcApproveError =
  | { BadFee: { expected_fee: bigint } }
  | { InsufficientFunds: { balance: bigint } }
  | { AllowanceChanged: { current_allowance: bigint } }
  | { Expired: { ledger_time: bigint } }
  | { TooOld: null }
  | { CreatedInFuture: { ledger_time: bigint } }
  | { Duplicate: { duplicate_of: bigint } }
  | { TemporarilyUnavailable: null }
  | { GenericError: { error_code: bigint; message: string } };

/** An ICRC-3 value. */
export type IcrcValue =
  | { Blob: Uint8Array }
  | { Text: string }
  | { Nat: bigint }
  | { Int: bigint }
  | { Array: IcrcValue[] }
  | { Map: Array<[string, IcrcValue]> };

export interface IcrcGetBlocksArgs {
  start: bigint;
  length: bigint;
}

export interface IcrcGetBlocksResult {
  log_length: bigint;
  blocks: Array<{ id: bigint; block: IcrcValue }>;
  archived_blocks: Array<{ args: IcrcGetBlocksArgs[]; callback: [Principal, string] }>;
}

export interface LedgerService {
  icrc1_fee: ActorMethod<[], bigint>;
  icrc1_balance_of: ActorMethod<[IcrcAccount], bigint>;
  icrc2_approve: ActorMethod<[IcrcApproveArgs], { Ok: bigint } | { Err: IcrcApproveError }>;
  icrc2_allowance: ActorMethod<[{ account: IcrcAccount; spender: IcrcAccount }], { allowance: bigint; expires_at: [] | [bigint] }>;
  icrc3_get_blocks: ActorMethod<[IcrcGetBlocksArgs[]], IcrcGetBlocksResult>;
}

function types() {
  const Value = IDL.Rec();
  Value.fill(
    IDL.Variant({
      Blob: IDL.Vec(IDL.Nat8),
      Text: IDL.Text,
      Nat: IDL.Nat,
      Int: IDL.Int,
      Array: IDL.Vec(Value),
      Map: IDL.Vec(IDL.Tuple(IDL.Text, Value)),
    }),
  );
  const GetBlocksArgs = IDL.Record({ start: IDL.Nat, length: IDL.Nat });
  const GetBlocksResult = IDL.Rec();
  GetBlocksResult.fill(
    IDL.Record({
      log_length: IDL.Nat,
      blocks: IDL.Vec(IDL.Record({ id: IDL.Nat, block: Value })),
      archived_blocks: IDL.Vec(
        IDL.Record({
          args: IDL.Vec(GetBlocksArgs),
          callback: IDL.Func([IDL.Vec(GetBlocksArgs)], [GetBlocksResult], ['query']),
        }),
      ),
    }),
  );
  return { Value, GetBlocksArgs, GetBlocksResult };
}

/** IDL of the ICRC ledger methods above. */
export const ledgerIdl: IDL.InterfaceFactory = ({ IDL: _ }) => {
  const { GetBlocksArgs, GetBlocksResult } = types();
  const Account = IDL.Record({ owner: IDL.Principal, subaccount: IDL.Opt(IDL.Vec(IDL.Nat8)) });
  const ApproveArgs = IDL.Record({
    from_subaccount: IDL.Opt(IDL.Vec(IDL.Nat8)),
    spender: Account,
    amount: IDL.Nat,
    expected_allowance: IDL.Opt(IDL.Nat),
    expires_at: IDL.Opt(IDL.Nat64),
    fee: IDL.Opt(IDL.Nat),
    memo: IDL.Opt(IDL.Vec(IDL.Nat8)),
    created_at_time: IDL.Opt(IDL.Nat64),
  });
  const ApproveError = IDL.Variant({
    BadFee: IDL.Record({ expected_fee: IDL.Nat }),
    InsufficientFunds: IDL.Record({ balance: IDL.Nat }),
    AllowanceChanged: IDL.Record({ current_allowance: IDL.Nat }),
    Expired: IDL.Record({ ledger_time: IDL.Nat64 }),
    TooOld: IDL.Null,
    CreatedInFuture: IDL.Record({ ledger_time: IDL.Nat64 }),
    Duplicate: IDL.Record({ duplicate_of: IDL.Nat }),
    TemporarilyUnavailable: IDL.Null,
    GenericError: IDL.Record({ error_code: IDL.Nat, message: IDL.Text }),
  });
  return IDL.Service({
    icrc1_fee: IDL.Func([], [IDL.Nat], ['query']),
    icrc1_balance_of: IDL.Func([Account], [IDL.Nat], ['query']),
    icrc2_approve: IDL.Func([ApproveArgs], [IDL.Variant({ Ok: IDL.Nat, Err: ApproveError })], []),
    icrc2_allowance: IDL.Func(
      [IDL.Record({ account: Account, spender: Account })],
      [IDL.Record({ allowance: IDL.Nat, expires_at: IDL.Opt(IDL.Nat64) })],
      ['query'],
    ),
    icrc3_get_blocks: IDL.Func([IDL.Vec(GetBlocksArgs)], [GetBlocksResult], ['query']),
  });
};

/** IDL of an ICRC-3 archive's callback `method` (e.g. `icrc3_get_blocks` on the archive). */
export function archiveIdl(method: string): IDL.InterfaceFactory {
  return () => {
    const { GetBlocksArgs, GetBlocksResult } = types();
    return IDL.Service({ [method]: IDL.Func([IDL.Vec(GetBlocksArgs)], [GetBlocksResult], ['query']) });
  };
}
