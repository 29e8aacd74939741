/**
 * The layer cache key: a digest of everything that decides a layer's blob bytes (each entry's
 * metadata and content digest, the compression and the mtime), and nothing else. Equal keys
 * mean equal blobs, so a layer whose key is in the cache is never rebuilt. The layer writer
 * recomputes it from what it actually read, so a file edited between plan and build is
 * recorded under the key of its real content.
 */
import { createHash } from 'node:crypto';
import { digestOf, sha256, type Digest } from '../image/digest.js';
import type { DirMeta } from '../image/layer-check.js';
import type { Compression, ImagePath, PlanEntry } from './types.js';

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

/**
 * The key of a layer written with `kept` in place of its directories' own mode and owner (copy
 * destinations that keep the base's: run/base-dirs.ts): the plan's key, which a plan makes without
 * the base, and what was kept. A layer found unchanged has its plan's key only, so the kept
 * metadata is added to it rather than to its entries.
 */
export function keyWithKeptDirs(key: Digest, kept: ReadonlyMap<ImagePath, DirMeta> | undefined): Digest {
  if (!kept || kept.size === 0) return key;
  const dirs = [...kept].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, d]) => [path, d.mode, d.uid, d.gid]);
  return sha256(JSON.stringify({ key, kept: dirs }));
}
