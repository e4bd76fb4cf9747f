// What the SDK reads from the IC's certified state rather than from one replica's answer:
//
// - a video's certified `/metadata.json` (the `http_request` query, HTTP response verification
//   v2 against the IC root key, as the HTTP gateway does), which carries the file digest a
//   download checks the chunk digests against (security review L6: `metadata()` and
//   `chunk_digests` are plain queries, so one malicious replica could serve a consistent fake
//   file);
// - a canister's controllers and module hash (`read_state` paths `/canister/<id>/controllers`
//   and `/canister/<id>/module_hash`), which a transfer checks (security review H3).
import {
  AgentError,
  type Agent,
  CertificateTimeErrorCode,
  CertificateVerificationErrorCode,
  MissingRootKeyErrorCode,
  StatePaths,
} from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import type { HttpRequest, HttpResponse } from './bindings/video.did.js';
import { fromHex, toHex } from './bytes.js';
import { CertificationError, fromAgentError } from './errors.js';

/** The path of the video canister's metadata document. */
export const METADATA_PATH = '/metadata.json';

/** A certificate may be at most this old (ns): the HTTP gateways' default, 5 minutes. */
export const MAX_CERT_AGE_NS = 5n * 60n * 1_000_000_000n;

/**
 * HTTP response verification as `@dfinity/response-verification`'s `verifyRequestResponsePair`:
 * `(request, response, canisterId, nowNs, maxCertAgeNs, rootKeyDer, minVersion)`, returning the
 * verified response or throwing. Pass your own through `ClientOptions.responseVerifier` (e.g. a
 * browser bundle that initialises the package's wasm itself).
 */
export type ResponseVerifier = (
  request: HttpRequest,
  response: HttpResponse,
  canisterId: Uint8Array,
  nowNs: bigint,
  maxCertAgeNs: bigint,
  rootKey: Uint8Array,
  minVersion: number,
) => { response?: { statusCode?: number; headers: [string, string][]; body: Uint8Array }; verificationVersion: number };

let loaded: Promise<ResponseVerifier> | undefined;

/**
 * Loads `@dfinity/response-verification` (a wasm module) on first use. In Node the package is a
 * CommonJS module that instantiates its wasm when imported; its browser build exports an
 * initialiser as `default`, which is called (it fetches the wasm next to the module).
 */
export function loadResponseVerifier(): Promise<ResponseVerifier> {
  loaded ??= import('@dfinity/response-verification').then(async (m) => {
    const init: unknown = (m as { default?: unknown }).default;
    if (typeof init === 'function') await (init as () => Promise<unknown>)();
    return m.verifyRequestResponsePair as unknown as ResponseVerifier;
  });
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}

/** The `http_request` argument for the certified metadata document. */
export function metadataRequest(): HttpRequest {
  return { url: METADATA_PATH, method: 'GET', headers: [], body: new Uint8Array(), certificate_version: [2] };
}

/** The fields of the certified `/metadata.json` a download relies on. */
export interface CertifiedMetadata {
  /** `"ready"`, `"uploading"` or `"empty"`. */
  status: string;
  /** File digest (32 bytes); absent until Ready. */
  digest?: Uint8Array;
  size: number;
  chunkSize: number;
  chunkCount: number;
  /** The app-level owner (principal text), when the document names one. */
  owner?: string;
  /** `"owner"`, `"after_upload"` or `"handing_over"`, when the document says. */
  control?: string;
}

function message(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'object' && e !== null && 'message' in e) return String((e as { message: unknown }).message);
  return String(e);
}

/**
 * Verifies an `http_request` answer for `/metadata.json` (HTTP certification v2, the certificate
 * against `rootKey`, at most `MAX_CERT_AGE_NS` old) and returns the document's fields, read from
 * the verified response. Throws `CertificationError` when it does not verify or is malformed.
 */
export async function verifyMetadataAnswer(
  videoId: string,
  request: HttpRequest,
  response: HttpResponse,
  options: { rootKey: Uint8Array | null | undefined; verifier?: ResponseVerifier; nowNs?: bigint },
): Promise<CertifiedMetadata> {
  const fail = (what: string, cause?: unknown) =>
    new CertificationError(`video ${videoId}: the certified ${METADATA_PATH} ${what}`, { cause, site: { canisterId: videoId, method: 'http_request' } });
  if (!options.rootKey) throw fail('cannot be verified: the agent has no root key');
  const verify = options.verifier ?? (await loadResponseVerifier());
  const now = options.nowNs ?? BigInt(Date.now()) * 1_000_000n;
  let info: ReturnType<ResponseVerifier>;
  try {
    info = verify(request, response, Principal.fromText(videoId).toUint8Array(), now, MAX_CERT_AGE_NS, options.rootKey, 2);
  } catch (e) {
    throw fail(`did not verify: ${message(e)}`, e);
  }
  if (info.verificationVersion < 2 || !info.response) throw fail(`verified as version ${info.verificationVersion} without a response`);
  const status = info.response.statusCode ?? response.status_code;
  if (status !== 200) throw fail(`answered HTTP ${status}`);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder().decode(info.response.body)) as Record<string, unknown>;
  } catch (e) {
    throw fail('is not JSON', e);
  }
  const num = (k: string): number => {
    const v = doc[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw fail(`has no valid "${k}"`);
    return v;
  };
  let digest: Uint8Array | undefined;
  if (doc.digest !== null && doc.digest !== undefined) {
    if (typeof doc.digest !== 'string' || !/^[0-9a-f]{64}$/.test(doc.digest)) throw fail('has a malformed "digest"');
    digest = fromHex(doc.digest);
  }
  if (typeof doc.status !== 'string') throw fail('has no "status"');
  const text = (k: string): string | undefined => (typeof doc[k] === 'string' ? (doc[k] as string) : undefined);
  return {
    status: doc.status,
    digest,
    size: num('size'),
    chunkSize: num('chunk_size'),
    chunkCount: num('chunk_count'),
    owner: text('owner'),
    control: text('control'),
  };
}

/** A canister's controllers and module hash as the IC's certified state has them. */
export interface CertifiedCanisterInfo {
  /** Principals as text, in the certificate's order. */
  controllers: string[];
  /** SHA-256 of the installed wasm module, hex; `undefined` when no module is installed. */
  moduleHash?: string;
}

/**
 * Reads `/canister/<id>/controllers` and `/canister/<id>/module_hash` in one `read_state`
 * request; the agent verifies the certificate against its root key (and that the canister is in
 * the certifying subnet's ranges). Certificate failures become `CertificationError`, others
 * the usual `CanvidError`s.
 */
export async function readCanisterInfo(agent: Agent, canisterId: string): Promise<CertifiedCanisterInfo> {
  const id = Principal.fromText(canisterId);
  const controllersPath = StatePaths.canisterControllers(id);
  const moduleHashPath = StatePaths.canisterModuleHash(id);
  const site = { canisterId, method: 'read_state' };
  let values;
  try {
    ({ values } = await agent.readState({ canisterId: id }, { paths: [controllersPath, moduleHashPath] }));
  } catch (err) {
    if (
      err instanceof AgentError &&
      (err.hasCode(CertificateVerificationErrorCode) || err.hasCode(CertificateTimeErrorCode) || err.hasCode(MissingRootKeyErrorCode))
    ) {
      throw new CertificationError(`the certified state of ${canisterId} did not verify: ${err.message}`, { cause: err, site });
    }
    throw fromAgentError(err, site);
  }
  const controllers = values.get(controllersPath);
  if (!controllers) throw new CertificationError(`the certified state has no controllers for ${canisterId}`, { site });
  const hash = values.get(moduleHashPath);
  return { controllers: controllers.map((p) => Principal.from(p).toText()), moduleHash: hash ? toHex(hash) : undefined };
}
