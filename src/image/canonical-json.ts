/**
 * Deterministic JSON bytes for the documents whose digests name an image: manifests, configs and
 * indexes. Keys keep the order in which the code writes them (so a manifest reads as the spec
 * shows it), `undefined` members vanish, and there is never any whitespace, so the same value
 * always gives the same bytes and therefore the same digest, whatever built it.
 */
import { sha256, type Digest } from './digest.js';

/** The canonical bytes of `value`: compact UTF-8 JSON, insertion key order, no undefineds. */
export function canonicalJson(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value, dropUndefined), 'utf8');
}

/** Bytes and digest together, as every descriptor needs both. */
export function canonicalBlob(value: unknown): { bytes: Uint8Array; digest: Digest; size: number } {
  const bytes = canonicalJson(value);
  return { bytes, digest: sha256(bytes), size: bytes.byteLength };
}

// JSON.stringify already drops undefined object members; refusing functions, symbols and
// non-finite numbers keeps a programming slip from silently turning into `null` in a digest.
function dropUndefined(_key: string, v: unknown): unknown {
  if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') {
    throw new TypeError(`canonical JSON cannot hold a ${typeof v}`);
  }
  if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError(`canonical JSON cannot hold ${v}`);
  return v;
}
