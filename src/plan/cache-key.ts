/**
 * The layer cache key: a digest of everything that decides a layer's blob bytes (each entry's
 * metadata and content digest, the compression and the mtime), and nothing else. Equal keys
 * mean equal blobs, so a layer whose key is in the cache is never rebuilt. The layer writer
 * recomputes it from what it actually read, so a file edited between plan and build is
 * recorded under the key of its real content.
 */
import { sha256, type Digest } from '../image/digest.js';
import type { Compression, PlanEntry } from './types.js';

const KEY_VERSION = 1;

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

export function layerCacheKey(entries: readonly PlanEntry[], compression: Compression, epoch: number): Digest {
  const doc = { v: KEY_VERSION, compression: [compression.algorithm, compression.level], epoch, entries: entries.map(entryKey) };
  return sha256(JSON.stringify(doc));
}
