/**
 * From built layers to the image value the sinks write: one image per platform (base layers,
 * then ours, the config inherited from the base and overridden by the spec), and an index over
 * them when there are several. Annotations record the creation time (the build epoch, never the
 * clock) and the base image, as the OCI annotation rules name them.
 */
import { assembleImage, assembleIndex, storeLayer } from '../image/assemble.js';
import { buildConfigFile } from '../image/config.js';
import type { Digest } from '../image/digest.js';
import type { Image, Platform } from '../image/types.js';
import { describeBase } from '../plan/render.js';
import type { BuildPlan, LayerSummary } from '../plan/types.js';
import type { WriteTarget } from '../output/sink.js';
import type { ContentStore } from '../store/content-store.js';
import type { LayerOutcome } from './layers.js';

export interface AssembledTarget {
  target: WriteTarget;
  /** What the outputs get: the image's manifest, or the index of several platforms. */
  digest: Digest;
  /** Each platform's own manifest, in the plan's order of platforms. */
  manifests: Digest[];
  /** Bytes of every blob and manifest the image references. */
  size: number;
}

export const isoTime = (epoch: number) => new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');

// Labels that, when the spec sets them, are also worth stating on the manifest, where registries show them.
const MIRRORED_LABELS = ['org.opencontainers.image.source', 'org.opencontainers.image.revision', 'org.opencontainers.image.version'];

async function annotationsFor(plan: BuildPlan<LayerSummary>, base: Image | undefined): Promise<Record<string, string>> {
  const out: Record<string, string> = { 'org.opencontainers.image.created': isoTime(plan.epoch) };
  for (const key of MIRRORED_LABELS) {
    const value = plan.config.Labels?.[key];
    if (value !== undefined) out[key] = value;
  }
  if (base) {
    out['org.opencontainers.image.base.name'] = describeBase(plan.base);
    out['org.opencontainers.image.base.digest'] = await base.digest();
  }
  return { ...out, ...plan.annotations };
}

async function platformImage(plan: BuildPlan<LayerSummary>, platform: Platform, base: Image | undefined, layers: LayerOutcome[], store: ContentStore): Promise<Image> {
  const config = buildConfigFile({
    ...(base ? { base: await base.configFile() } : {}),
    platform,
    runtime: plan.config,
    diffIds: layers.map((l) => l.record.diffId),
    history: layers.map((l) => `imgbuild layer ${l.name}`),
    created: isoTime(plan.epoch),
  });
  return assembleImage({
    ...(base ? { base } : {}),
    layers: layers.map((l) => storeLayer(store, l.record)),
    config,
    annotations: await annotationsFor(plan, base),
  });
}

/** Bytes of every blob the images reference, each blob once: platforms share their layers. */
async function blobsSize(images: readonly Image[]): Promise<number> {
  const sizes = new Map<string, number>();
  for (const image of images) {
    const m = await image.manifest();
    for (const d of [m.config, ...m.layers]) sizes.set(d.digest, d.size);
    sizes.set(await image.digest(), (await image.rawManifest()).length);
  }
  return [...sizes.values()].reduce((a, b) => a + b, 0);
}

export async function assembleTarget(plan: BuildPlan<LayerSummary>, bases: (Image | undefined)[], layers: LayerOutcome[], store: ContentStore): Promise<AssembledTarget> {
  const images = await Promise.all(plan.platforms.map((p, i) => platformImage(plan, p, bases[i], layers, store)));
  const total = await blobsSize(images);
  const manifests = await Promise.all(images.map((image) => image.digest()));
  if (images.length === 1) return { target: { image: images[0]! }, digest: manifests[0]!, manifests, size: total };
  const index = assembleIndex(images.map((image, i) => ({ image, platform: plan.platforms[i]! })), { 'org.opencontainers.image.created': isoTime(plan.epoch) });
  return { target: { index }, digest: await index.digest(), manifests, size: total + (await index.rawIndex()).length };
}
