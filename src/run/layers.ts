/**
 * Getting every planned layer into the content store: from the layer cache when its key is
 * known (no file is read), else built by the layer writer. A layer whose files changed between
 * planning and building is recorded under the key of what was really written, never under the
 * planned key, so the cache can never hand out stale content.
 */
import type { BuiltLayer } from '../layer/build-layer.js';
import { buildLayer } from '../layer/build-layer.js';
import type { FileDigester } from '../plan/compile.js';
import { compileOneLayer } from '../plan/compile.js';
import type { BuildPlan, LayerPlan } from '../plan/types.js';
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
  plan: BuildPlan;
  store: ContentStore;
  index: LayerIndex;
  digester: FileDigester;
  report: Reporter;
  signal?: AbortSignal;
}

export async function materializeLayer(ctx: LayerContext, i: number, onProgress?: (files: number, bytes: number) => void): Promise<LayerOutcome> {
  const layer: LayerPlan = ctx.plan.layers[i]!;
  const started = Date.now();
  const hit = layer.cacheKey ? await ctx.index.get(layer.cacheKey) : undefined;
  if (hit) {
    ctx.report({ type: 'layer-done', layer: layer.name, cached: true, digest: hit.digest, diffId: hit.diffId, size: hit.size, ms: Date.now() - started });
    return { name: layer.name, cached: true, record: hit };
  }
  ctx.report({ type: 'layer-start', layer: layer.name, files: layer.files, bytes: layer.bytes });
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
    replan: () => compileOneLayer(ctx.spec, i, ctx.plan.layers.slice(0, i), ctx.digester, [ctx.store.root]),
  });
  const { cacheKey, ...record } = built;
  await ctx.index.put(cacheKey, record);
  ctx.report({ type: 'layer-done', layer: layer.name, cached: false, digest: record.digest, diffId: record.diffId, size: record.size, ms: Date.now() - started });
  return { name: layer.name, cached: false, record };
}
