/**
 * Keeping the cache to what is used. Every layer ever built stays in the content store until it
 * is pruned: a `--watch` session that rebuilds a 300 MB layer on each save leaves a new blob each
 * time. A blob's last use is the later of its file's mtime (when it was written) and the mtime of
 * its mark under `used/`, which a build touches for each cached layer and stored base blob it
 * uses (ContentStore.markUsed). Pruning removes the blobs unused for longer than asked, then, with
 * a size to keep, the least recently used until the rest fits; and with each blob, its marks and
 * the layer records that pointed to it. Everything removed is something a build fetches or makes
 * again: nothing but time is lost.
 *
 * A blob an OCI layout output hard-linked keeps its bytes on disk there after the cache lets it
 * go: those bytes are counted apart, since pruning does not free them.
 */
import type { Stats } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { usageError } from '../errors.js';
import { digestHex, isDigest } from '../image/digest.js';
import { blobsDirOf, CHECKED_DIR_PREFIX, USED_DIR, VERIFIED_DIR } from './content-store.js';
import { layersDirOf, readRecordFile } from './layer-index.js';

/** A blob of the content store, as pruning sees it. */
interface StoredBlob {
  hex: string;
  bytes: number;
  lastUsedMs: number;
  /** Hard-linked from elsewhere (an OCI layout output): removing it here frees nothing. */
  linked: boolean;
}

export interface BlobTotals {
  count: number;
  bytes: number;
  /** Of `bytes`, those also linked from an output layout, which stay on disk while it holds them. */
  linkedBytes: number;
}

export interface CacheUsage {
  root: string;
  blobs: BlobTotals;
  /** The blobs not used since `unusedSince` (a time in ms). */
  unused: BlobTotals;
  /** Everything else: layer, walk and spec records, the stat cache, marks. */
  recordBytes: number;
}

export interface PruneOptions {
  /** Remove blobs not used for this long (ms); 0 removes every blob. */
  olderThanMs: number;
  /** Then remove the least recently used until the blobs left take at most this many bytes. */
  keepBytes?: number;
  /** Say what would go, and remove nothing. */
  dryRun?: boolean;
  now?: number;
}

export interface PruneReport {
  removed: BlobTotals;
  kept: BlobTotals;
  /** Layer records removed with their blobs (or found pointing at a blob already gone). */
  records: number;
}

const totals = (blobs: readonly StoredBlob[]): BlobTotals => ({
  count: blobs.length,
  bytes: blobs.reduce((n, b) => n + b.bytes, 0),
  linkedBytes: blobs.reduce((n, b) => n + (b.linked ? b.bytes : 0), 0),
});

/** Names in `dir`, or none when it does not exist. */
async function namesIn(dir: string): Promise<string[]> {
  return readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw e;
  });
}

/** A blob's file (if it is there) and its last use: the later of the file's mtime and its mark's. */
async function lastUse(root: string, hex: string): Promise<{ file: Stats | undefined; lastUsedMs: number }> {
  const [file, mark] = await Promise.all([stat(join(blobsDirOf(root), hex)).catch(() => undefined), stat(join(root, USED_DIR, hex)).catch(() => undefined)]);
  return { file, lastUsedMs: Math.max(file?.mtimeMs ?? 0, mark?.mtimeMs ?? 0) };
}

/** Every blob of the store with its size and last use (none when there is no cache yet; a file in its place is refused). */
async function storedBlobs(root: string): Promise<StoredBlob[]> {
  const rootSt = await stat(root).catch(() => undefined);
  if (rootSt && !rootSt.isDirectory()) throw usageError(`cannot use ${root} as the cache directory: it is not a directory`, 'pass --cache-dir DIR, or set IMGBUILD_CACHE_DIR, to the cache folder');
  const out: StoredBlob[] = [];
  for (const hex of await namesIn(blobsDirOf(root))) {
    if (!isDigest(`sha256:${hex}`)) continue;
    const { file, lastUsedMs } = await lastUse(root, hex);
    if (!file?.isFile()) continue;
    out.push({ hex, bytes: file.size, lastUsedMs, linked: file.nlink > 1 });
  }
  return out.sort((a, b) => a.lastUsedMs - b.lastUsedMs || (a.hex < b.hex ? -1 : 1));
}

/** Bytes of every file below `dir`. */
async function bytesBelow(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, e.name);
    if (e.isDirectory()) n += await bytesBelow(path);
    else if (e.isFile()) n += (await stat(path).catch(() => undefined))?.size ?? 0;
  }
  return n;
}

export async function cacheUsage(root: string, unusedSince: number): Promise<CacheUsage> {
  const blobs = await storedBlobs(root);
  const all = totals(blobs);
  return { root, blobs: all, unused: totals(blobs.filter((b) => b.lastUsedMs < unusedSince)), recordBytes: (await bytesBelow(root)) - all.bytes };
}

/**
 * Which blobs go: the unused for too long, then the least recently used beyond `keepBytes`. The
 * size counts the cache's own bytes only: a blob an output layout links takes no more disk for
 * being in the cache too, and removing it would free nothing (a build that needs it again would
 * then store its bytes twice).
 */
function chooseRemoved(blobs: readonly StoredBlob[], opts: PruneOptions, now: number): Set<StoredBlob> {
  const removed = new Set(opts.olderThanMs === 0 ? blobs : blobs.filter((b) => b.lastUsedMs < now - opts.olderThanMs));
  if (opts.keepBytes !== undefined) {
    const own = blobs.filter((b) => !b.linked);
    let left = own.reduce((n, b) => n + (removed.has(b) ? 0 : b.bytes), 0);
    // Oldest first: `blobs` is sorted by last use.
    for (const b of own) {
      if (left <= opts.keepBytes) break;
      if (removed.has(b)) continue;
      removed.add(b);
      left -= b.bytes;
    }
  }
  return removed;
}

/** Whether a build used the blob since the scan (the window is the scan's length; asking again closes most of it). */
async function usedSinceScan(root: string, b: StoredBlob): Promise<boolean> {
  return (await lastUse(root, b.hex)).lastUsedMs > b.lastUsedMs;
}

export async function pruneCache(root: string, opts: PruneOptions): Promise<PruneReport> {
  const now = opts.now ?? Date.now();
  const blobs = await storedBlobs(root);
  const removed = chooseRemoved(blobs, opts, now);
  if (opts.dryRun) {
    const records = (await orphanedRecords(root, new Set([...removed].map((b) => b.hex)))).length;
    return { removed: totals([...removed]), kept: totals(blobs.filter((b) => !removed.has(b))), records };
  }
  const checkedDirs = (await namesIn(root)).filter((name) => name.startsWith(CHECKED_DIR_PREFIX));
  for (const b of [...removed]) {
    if (await usedSinceScan(root, b)) {
      removed.delete(b);
      continue;
    }
    // The blob first: a mark without its blob is nothing, a blob without its marks is re-checked.
    await unlink(join(blobsDirOf(root), b.hex)).catch(() => undefined);
    await Promise.all([USED_DIR, VERIFIED_DIR, ...checkedDirs].map((dir) => unlink(join(root, dir, b.hex)).catch(() => undefined)));
  }
  const orphans = await orphanedRecords(root, new Set());
  await Promise.all(orphans.map((path) => unlink(path).catch(() => undefined)));
  return { removed: totals([...removed]), kept: totals(blobs.filter((b) => !removed.has(b))), records: orphans.length };
}

/** The layer records whose blob is gone from the store, or is among `goingHex`. */
async function orphanedRecords(root: string, goingHex: ReadonlySet<string>): Promise<string[]> {
  const dir = layersDirOf(root);
  const out: string[] = [];
  for (const name of await namesIn(dir)) {
    if (!name.endsWith('.json')) continue;
    const rec = await readRecordFile(dir, name);
    // A record that cannot be read, or fails its check, is a miss for every build: it goes too.
    const hex = rec && digestHex(rec.digest);
    if (!hex || goingHex.has(hex) || !(await stat(join(blobsDirOf(root), hex)).then(() => true, () => false))) out.push(join(dir, name));
  }
  return out;
}
