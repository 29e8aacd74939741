/**
 * The layer cache: layer cache key -> what building that layer produced, one small JSON file
 * per key under `<root>/layers/<hex>.json`, replaced atomically. A record is only an
 * optimisation, so `get` treats anything doubtful (missing, unreadable, malformed, not matching
 * its own check, or its blob gone from the store) as a miss and the layer is simply rebuilt.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, isDigest, sha256, type Digest } from '../image/digest.js';
import { writeFileAtomic } from './atomic.js';
import { ensureCacheDir } from './cache-dir.js';
import type { ContentStore } from './content-store.js';

export interface LayerRecord {
  /** Digest of the compressed blob. */
  digest: Digest;
  /** Digest of the uncompressed tar. */
  diffId: Digest;
  /** Size of the compressed blob in bytes. */
  size: number;
  mediaType: string;
  uncompressedSize: number;
}

export class LayerIndex {
  private constructor(
    private readonly store: ContentStore,
    private readonly dir: string,
  ) {}

  static async open(store: ContentStore): Promise<LayerIndex> {
    const dir = layersDirOf(store.root);
    await ensureCacheDir(store.root, dir);
    return new LayerIndex(store, dir);
  }

  recordPath(cacheKey: Digest): string {
    return join(this.dir, `${digestHex(cacheKey)}.json`);
  }

  async get(cacheKey: Digest): Promise<LayerRecord | undefined> {
    const rec = await readRecord(this.recordPath(cacheKey), cacheKey);
    if (!rec || !(await this.store.has(rec.digest))) return undefined;
    return rec;
  }

  async put(cacheKey: Digest, rec: LayerRecord): Promise<void> {
    const { digest, diffId, size, mediaType, uncompressedSize } = rec;
    const fields = { digest, diffId, size, mediaType, uncompressedSize };
    const json = JSON.stringify({ ...fields, check: checkOf(cacheKey, fields) });
    await writeFileAtomic(this.store.tmpDir, this.recordPath(cacheKey), json);
  }
}

/** Where a store's layer records are, `<hex of the key>.json` each. */
export const layersDirOf = (root: string): string => join(root, 'layers');

/** The record in `path` for `cacheKey`, or undefined for anything doubtful (its blob aside: `get` checks that). */
async function readRecord(path: string, cacheKey: Digest): Promise<LayerRecord | undefined> {
  try {
    return parseRecord(cacheKey, JSON.parse(await readFile(path, 'utf8')));
  } catch {
    return undefined;
  }
}

/**
 * The record a file of the layers folder holds, by its name, or undefined when `get` would take
 * it for a miss whatever the store holds (store/prune.ts removes those).
 */
export async function readRecordFile(dir: string, name: string): Promise<LayerRecord | undefined> {
  const key = `sha256:${name.replace(/\.json$/, '')}`;
  return name.endsWith('.json') && isDigest(key) ? readRecord(join(dir, name), key) : undefined;
}

/**
 * The digest of a record's fields and its key. The blob is checked against `digest` whenever it
 * is used, but nothing else checks the rest: a byte flipped in a diffId's hex digit or in a size
 * still parses, and went into the image's config or manifest as read (a wrong image, exit 0, or
 * an output refused on every build). A record without it (an older one) is a miss, built once.
 */
function checkOf(cacheKey: Digest, r: LayerRecord): Digest {
  return sha256(JSON.stringify([cacheKey, r.digest, r.diffId, r.size, r.mediaType, r.uncompressedSize]));
}

function parseRecord(cacheKey: Digest, v: unknown): LayerRecord | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  const ok =
    typeof r.digest === 'string' && isDigest(r.digest) &&
    typeof r.diffId === 'string' && isDigest(r.diffId) &&
    isSize(r.size) && isSize(r.uncompressedSize) &&
    typeof r.mediaType === 'string';
  if (!ok) return undefined;
  const rec = { digest: r.digest, diffId: r.diffId, size: r.size, mediaType: r.mediaType, uncompressedSize: r.uncompressedSize } as LayerRecord;
  return r.check === checkOf(cacheKey, rec) ? rec : undefined;
}

const isSize = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
