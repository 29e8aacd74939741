/**
 * Builds one layer blob from its plan, streaming: tar chunks (hashed and counted: the diffId)
 * -> compressor -> BlobWriter (sha256 of the blob, temp file, rename).
 * Memory stays flat whatever the layer size. If a source file vanishes, changes type, or a
 * large file changes while streamed, the half-written blob is thrown away and the layer starts
 * over (after asking for a fresh plan when `replan` is given), at most three times. The result
 * carries the cache key of what was really written, which differs from the plan's when a file
 * was edited between planning and building.
 */
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../image/digest.js';
import { LayerKeyHash } from '../plan/cache-key.js';
import type { DirMeta } from '../image/layer-check.js';
import type { Compression, ImagePath, LayerPlan, PackedLayer, PlanEntry } from '../plan/types.js';
import { entriesOf } from '../plan/packed-layer.js';
import { ImgbuildError, isImgbuildError } from '../errors.js';
import type { ContentStore } from '../store/content-store.js';
import type { LayerRecord } from '../store/layer-index.js';
import { createCompressor, layerMediaType } from './compress.js';
import { FileChangedError } from './stable-read.js';
import { ChunkPool, TarChunks } from './tar-chunks.js';
import { emitEntries, type EmitOptions } from './tar-entries.js';
import { checkEpoch } from './tar-header.js';

export interface BuildLayerOptions {
  store: ContentStore;
  /** mtime of every entry, seconds since the epoch. */
  epoch: number;
  compression: Compression;
  signal?: AbortSignal;
  onProgress?: (p: { files: number; bytes: number }) => void;
  /** A fresh plan for this layer, used when the file system changed under the build. */
  replan?: () => Promise<LayerPlan>;
  /** Digests the stat cache knows, so unchanged files are not hashed twice (see EmitOptions). */
  known?: EmitOptions['known'];
  remember?: EmitOptions['remember'];
  /** Directories written with this mode and owner in place of the plan's (copy destinations that keep the base's); the key stays the plan's entries'. */
  keptDirs?: ReadonlyMap<ImagePath, DirMeta>;
}

export type BuiltLayer = LayerRecord & {
  /** layerCacheKey of the plan's entries as actually read (before `keptDirs`). */
  cacheKey: Digest;
};

export const MAX_LAYER_ATTEMPTS = 3;

export async function buildLayer(layer: LayerPlan | PackedLayer, opts: BuildLayerOptions): Promise<BuiltLayer> {
  checkEpoch(opts.epoch);
  let plan: LayerPlan | PackedLayer = layer;
  for (let attempt = 1; ; attempt++) {
    try {
      return await buildOnce(plan, opts);
    } catch (e) {
      if (!(e instanceof FileChangedError)) throw e;
      if (attempt >= MAX_LAYER_ATTEMPTS) throw gaveUp(e, layer.name);
      if (opts.replan) plan = await opts.replan();
      // Without a new plan a missing or retyped path cannot be built; a changed one is re-read.
      else if (e.reason !== 'changed') throw e;
    }
  }
}

function gaveUp(e: FileChangedError, layerName: string): ImgbuildError {
  if (e.reason !== 'changed') return e;
  return new ImgbuildError(
    'build',
    `${e.path} kept changing while layer "${layerName}" was being built (${MAX_LAYER_ATTEMPTS} attempts)`,
    e.hint,
  );
}

async function buildOnce(plan: LayerPlan | PackedLayer, opts: BuildLayerOptions): Promise<BuiltLayer> {
  const pool = new ChunkPool();
  const compressor = createCompressor(opts.compression, { release: pool.give });
  const writer = opts.store.createWriter();
  const flow = pipeline(compressor, writer, { ...(opts.signal ? { signal: opts.signal } : {}) });
  flow.catch(() => undefined); // awaited below; a failure while files are still being written shows there too
  const tar = new TarChunks(compressor, pool);
  // The key of what is really read, made as each entry goes in: a kept directory adds its plan's entry.
  const key = new LayerKeyHash(opts.compression, opts.epoch);
  const planned = new Map<PlanEntry, PlanEntry>();
  const entries = opts.keptDirs?.size ? withKeptDirs(entriesOf(plan), opts.keptDirs, planned) : entriesOf(plan);
  try {
    await emitEntries(tar, entries, opts, (e) => key.add(planned.get(e) ?? e));
    await flow;
  } catch (e) {
    compressor.destroy(e as Error);
    const flowError = await flow.then(() => undefined, (fe: unknown) => fe);
    await writer.abort();
    throw explain(e, flowError, plan.name);
  }
  const blob = await writer.commit();
  return {
    digest: blob.digest,
    size: blob.size,
    diffId: tar.digest(),
    uncompressedSize: tar.size,
    mediaType: layerMediaType(opts.compression),
    cacheKey: key.digest(),
  };
}

/** Each entry, a directory `kept` names with its mode and owner instead; each such copy maps back to its entry in `planned`. */
function* withKeptDirs(entries: Iterable<PlanEntry>, kept: ReadonlyMap<ImagePath, DirMeta>, planned: Map<PlanEntry, PlanEntry>): Generator<PlanEntry> {
  for (const e of entries) {
    const meta = e.type === 'dir' ? kept.get(e.path) : undefined;
    if (!meta) {
      yield e;
      continue;
    }
    const written: PlanEntry = { ...e, mode: meta.mode, uid: meta.uid, gid: meta.gid };
    planned.set(written, e);
    yield written;
  }
}

/** The error worth showing: ours first (they name the file), then the stream's own cause. */
function explain(e: unknown, flowError: unknown, layerName: string): unknown {
  if (isImgbuildError(e)) return e;
  if (isImgbuildError(flowError)) return flowError;
  const cause = (flowError ?? e) as NodeJS.ErrnoException;
  if (cause?.name === 'AbortError') return cause;
  return new ImgbuildError('build', `writing layer "${layerName}" failed: ${cause?.message ?? String(cause)}`, WRITE_HINTS[cause?.code ?? '']);
}

/** What to do about the usual reasons a layer cannot be written (the message names the path: in the cache, usually). */
const WRITE_HINTS: Record<string, string> = {
  EACCES: 'imgbuild may not write there: make the cache directory writable, or pass --cache-dir DIR',
  EROFS: 'the file system is read-only: pass --cache-dir DIR on a writable one',
  ENOSPC: 'the disk is full: free space, or pass --cache-dir DIR on another disk',
  EDQUOT: 'the disk quota is used up: free space, or pass --cache-dir DIR on another disk',
};
