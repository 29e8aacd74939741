/**
 * The layer cache key: a digest of everything that decides a layer's blob bytes (each entry's
 * metadata and content digest, the compression and the mtime), and nothing else. Equal keys
 * mean equal blobs, so a layer whose key is in the cache is never rebuilt. The layer writer
 * recomputes it from what it actually read, so a file edited between plan and build is
 * recorded under the key of its real content.
 */
import { createHash } from 'node:crypto';
import { digestOf, type Digest } from '../image/digest.js';
import type { Compression, PlanEntry } from './types.js';

/** Changing how keys are made changes this: keys recorded before (unchanged-layer.ts) are then void. */
export const KEY_VERSION = 1;

function entryKey(e: PlanEntry): unknown[] {
  switch (e.type) {
    case 'file':
      return [e.type, e.path, e.mode, e.uid, e.gid, e.size, e.source.digest];
    case 'symlink':
      return [e.type, e.path, e.mode, e.uid, e.gid, e.target];
    default:
      return [e.type, e.path, e.mode, e.uid, e.gid];
  }
}

/**
 * The sha256 of `JSON.stringify({ v, compression, epoch, entries })`, hashed a piece at a time:
 * made whole, a node_modules layer's document was megabytes of text and an array per entry, all
 * alive at once at the end of the plan, when memory peaks (9 MB of a no-op build's 88).
 */
export function layerCacheKey(entries: readonly PlanEntry[], compression: Compression, epoch: number): Digest {
  const key = new LayerKeyHash(compression, epoch);
  for (const e of entries) key.add(e);
  return key.digest();
}

/**
 * `layerCacheKey` made an entry at a time, in the entries' order: the layer writer adds each
 * entry as it writes it, so the key of a node_modules layer (30 to 40 ms) is not left to be made
 * after its last block.
 */
export class LayerKeyHash {
  readonly #hash = createHash('sha256');
  #text: string;
  #entries = 0;

  constructor(compression: Compression, epoch: number) {
    // The document with no entries, cut before its closing "]}": the same head, whatever its fields.
    this.#text = JSON.stringify({ v: KEY_VERSION, compression: [compression.algorithm, compression.level], epoch, entries: [] }).slice(0, -2);
  }

  add(e: PlanEntry): void {
    this.#text += (this.#entries++ === 0 ? '' : ',') + JSON.stringify(entryKey(e));
    if (this.#text.length >= PIECE) {
      this.#hash.update(this.#text);
      this.#text = '';
    }
  }

  /** The key; the hash is used up. */
  digest(): Digest {
    this.#hash.update(`${this.#text}]}`);
    return digestOf(this.#hash);
  }
}

const PIECE = 64 * 1024;
