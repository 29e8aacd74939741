/**
 * Getting every planned layer into the content store: from the layer cache when its key is
 * known (no file is read), else built by the layer writer. A layer whose files changed between
 * planning and building is recorded under the key of what was really written, never under the
 * planned key, so the cache can never hand out stale content. A layer whose copy destinations keep
 * the base's directories is found, and recorded, under a key that says so (keyWithKeptDirs).
 */
import type { BuiltLayer } from '../layer/build-layer.js';
import type { FileDigester } from '../plan/compile.js';
import type { DirMeta } from '../image/layer-check.js';
import { keyWithKeptDirs } from '../plan/cache-key.js';
import { compileOneLayer } from '../plan/compile.js';
import { isUnchanged, type BuildPlan, type ImagePath, type PlannedLayer } from '../plan/types.js';
import type { NormalizedSpec } from '../spec/normalized.js';
import type { ContentStore } from '../store/content-store.js';
import type { LayerIndex, LayerRecord } from '../store/layer-index.js';
import type { Reporter } from './events.js';

export interface LayerOutcome {
  name: string;
  cached: boolean;
  record: LayerRecord;
}

export interface LayerContext {
  spec: NormalizedSpec;
  plan: BuildPlan<PlannedLayer>;
  store: ContentStore;
  index: LayerIndex;
  digester: FileDigester;
  /** What the plan left out besides the outputs (the cache, our own logs): a replan of a layer leaves out the same. */
  ignore: readonly string[];
  /** The layer's directory copy destinations that keep the base's mode and owner (run/base-dirs.ts). */
  keptDirs?: ReadonlyMap<ImagePath, DirMeta> | undefined;
  report: Reporter;
  signal?: AbortSignal;
}

export async function materializeLayer(ctx: LayerContext, i: number, onProgress?: (files: number, bytes: number) => void): Promise<LayerOutcome> {
  const planned = ctx.plan.layers[i]!;
  const started = Date.now();
  const hit = planned.cacheKey ? await ctx.index.get(keyWithKeptDirs(planned.cacheKey, ctx.keptDirs)) : undefined;
  if (hit) {
    // For `cache prune`: a layer found in the cache is in use, however long ago it was built.
    await ctx.store.markUsed([hit.digest]);
    ctx.report({ type: 'layer-done', layer: planned.name, cached: true, digest: hit.digest, diffId: hit.diffId, size: hit.size, ms: Date.now() - started });
    return { name: planned.name, cached: true, record: hit };
  }
  const replan = () => compileOneLayer(ctx.spec, i, ctx.plan.layers.slice(0, i), ctx.digester, ctx.ignore);
  // Unchanged, but its blob has left the cache: its entries are needed after all.
  const layer = isUnchanged(planned) ? await replan() : planned;
  ctx.report({ type: 'layer-start', layer: layer.name, files: layer.files, ...(layer.bytes === undefined ? {} : { bytes: layer.bytes }) });
  // Loaded when a layer is first built: a build that finds every layer in the cache (a no-op)
  // never loads the layer writer and zlib.
  const { buildLayer } = await import('../layer/build-layer.js');
  const built: BuiltLayer = await buildLayer(layer, {
    store: ctx.store,
    epoch: ctx.plan.epoch,
    compression: ctx.plan.compression,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    onProgress: ({ files, bytes }) => {
      onProgress?.(files, bytes);
      ctx.report({ type: 'layer-progress', layer: layer.name, files, bytes });
    },
    known: (path, st) => ctx.digester.known?.(path, st),
    remember: (path, hashed, hashedAtMs) => ctx.digester.remember?.(path, hashed, hashedAtMs),
    replan,
    ...(ctx.keptDirs ? { keptDirs: ctx.keptDirs } : {}),
  });
  const { cacheKey, ...record } = built;
  await ctx.index.put(keyWithKeptDirs(cacheKey, ctx.keptDirs), record);
  ctx.report({ type: 'layer-done', layer: layer.name, cached: false, digest: record.digest, diffId: record.diffId, size: record.size, ms: Date.now() - started });
  return { name: layer.name, cached: false, record };
}
