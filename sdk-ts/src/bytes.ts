// Byte helpers and SHA-256 through WebCrypto (`crypto.subtle`, present in Node >= 20 and every
// current browser; in a browser it needs a secure context: https or localhost).

/** Lower-case hex of `b`. */
export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** Bytes of a hex string (even length, 0-9a-fA-F). */
export function fromHex(hex: string): Uint8Array {
  const h = hex.trim();
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) throw new TypeError(`not a hex string: ${hex.slice(0, 40)}`);
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) {
    throw new Error('WebCrypto (crypto.subtle) is not available: use Node >= 20, or a browser page served over https or localhost');
  }
  return s;
}

/** SHA-256 of `data` (WebCrypto). */
export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  // A view into a larger buffer (e.g. a Node Buffer from a pool) must be hashed as the view.
  return new Uint8Array(await subtle().digest('SHA-256', data as Uint8Array<ArrayBuffer>));
}

/**
 * The canvid file digest: SHA-256 over the concatenation of the 32-byte SHA-256 digests of the
 * chunks in index order (`VideoMetadata.digest`, `canvid_types::protocol::file_digest`). It
 * depends on the chunk size the file was cut with.
 */
export async function fileDigest(chunkDigests: readonly Uint8Array[]): Promise<Uint8Array> {
  for (const [i, d] of chunkDigests.entries()) {
    if (d.length !== 32) throw new TypeError(`chunk digest ${i} is ${d.length} bytes, not 32`);
  }
  return sha256(concatBytes(chunkDigests));
}
