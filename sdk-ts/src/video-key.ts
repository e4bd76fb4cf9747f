// Key delivery of encrypted videos: `video_key` with a fresh vetKD transport key, the answer
// checked and decrypted with @dfinity/vetkeys (its crypto only: TransportSecretKey,
// EncryptedVetKey, DerivedPublicKey, VetKey), the AES key derived (encryption.ts).
import { DerivedPublicKey, EncryptedVetKey, TransportSecretKey } from '@dfinity/vetkeys';
import type { Error as CandidError, VideoKey as CandidVideoKey, VideoKeyArgs } from './bindings/video.did.js';
import { equalBytes, toHex } from './bytes.js';
import { KeyVerificationError, VETKD_CONTEXT, type VideoKeyMaterial, deriveVideoKey, vetkdInput } from './encryption.js';
import { type CallSite, fromCandidError } from './errors.js';

// --------------------------------------------------------------------------------

/** The `video_key` call (errors of the IC already mapped to `CanvidError`). */
export type VideoKeyCall = (args: VideoKeyArgs) => Promise<{ Ok: CandidVideoKey } | { Err: CandidError }>;

export interface FetchVideoKeyOptions {
  /** vetKD key name; default the upload's (`video_key` decides). */
  keyName?: string;
  /** Key epoch; default the upload's (`video_key` decides). */
  keyEpoch?: number;
  /** Also derive the nonce key (needed to encrypt; uploads). Default false: decrypt only. */
  forEncryption?: boolean;
}

/**
 * Gets and checks a video key: a fresh transport key (`TransportSecretKey.random()`), the
 * `video_key` call, then the answer's context, input, key name and epoch against what was asked
 * and `decryptAndVerify` of the vetKey against the returned public key and the input
 * (`KeyVerificationError` otherwise); the AES key is derived from the vetKey. The canister's
 * refusal is its typed error: `NotAuthorizedError` (not the owner, an uploader or an admitted
 * viewer, or a public video), `BusyError` (the viewers' rate limit), `NotReadyError`, ...
 */
export async function fetchVideoKey(call: VideoKeyCall, canisterId: string, options: FetchVideoKeyOptions = {}): Promise<VideoKeyMaterial> {
  const site: CallSite = { canisterId, method: 'video_key' };
  const tsk = TransportSecretKey.random();
  const r = await call({
    transport_public_key: tsk.publicKeyBytes(),
    key_name: options.keyName !== undefined ? [options.keyName] : [],
    key_epoch: options.keyEpoch !== undefined ? [options.keyEpoch] : [],
  });
  if ('Err' in r) throw fromCandidError(r.Err, site);
  const k = r.Ok;
  const bad = (what: string) => new KeyVerificationError(`video_key of ${canisterId}: ${what}`, { site });
  if (!equalBytes(k.context, VETKD_CONTEXT)) throw bad(`context ${toHex(k.context)}, not canvid's ${toHex(VETKD_CONTEXT)}`);
  if (options.keyEpoch !== undefined && k.key_epoch !== options.keyEpoch) throw bad(`epoch ${k.key_epoch}, asked for ${options.keyEpoch}`);
  if (options.keyName !== undefined && k.key_name !== options.keyName) throw bad(`key ${k.key_name}, asked for ${options.keyName}`);
  const input = vetkdInput(k.key_epoch);
  if (!equalBytes(k.input, input)) throw bad(`input ${toHex(k.input)}, not the one of epoch ${k.key_epoch} (${toHex(input)})`);
  let vetKeyBytes: Uint8Array;
  try {
    const dpk = DerivedPublicKey.deserialize(k.public_key);
    vetKeyBytes = EncryptedVetKey.deserialize(k.encrypted_key).decryptAndVerify(tsk, dpk, input).signatureBytes();
  } catch (err) {
    throw new KeyVerificationError(`video_key of ${canisterId}: the key does not decrypt and verify: ${err instanceof Error ? err.message : String(err)}`, { cause: err, site });
  }
  return deriveVideoKey(vetKeyBytes, canisterId, k.key_name, k.key_epoch, options.forEncryption ?? false);
}
