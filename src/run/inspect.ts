/**
 * `inspect`: what an image is, from any source — a registry reference, `oci:dir[:tag]` or
 * `docker-archive:file` — as data: manifest digest, platform, config and layers with sizes.
 */
import { usageError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import { formatPlatform } from '../image/platform.js';
import type { Image, Platform, RuntimeConfig } from '../image/types.js';
import { parseBaseRef } from '../spec/refs.js';
import { resolveCacheDir } from '../store/cache-dir.js';
import { ContentStore } from '../store/content-store.js';
import { openBase } from './base.js';

export interface ImageDescription {
  source: string;
  digest: Digest;
  mediaType: string;
  platform: string;
  created?: string;
  config: RuntimeConfig;
  layers: { digest: Digest; size: number; mediaType: string; createdBy?: string }[];
  size: number;
  annotations: Record<string, string>;
}

/** Chosen from a multi-platform image when no platform is asked for. */
const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

/**
 * Opened the way a build opens its base: the same reference forms, the same verification. With no
 * `platform`, a single-platform image is shown whatever it is for, and a multi-platform one's
 * DEFAULT_PLATFORM image.
 */
async function open(source: string, platform: Platform | undefined, insecure: string[], cacheDir: string): Promise<Image> {
  const ref = parseBaseRef(source);
  // Not the spec's words for a bad `from:`, whose hint offers "scratch": that is no image to show.
  if (!ref.ok) throw usageError(`cannot inspect ${JSON.stringify(source)}: it is not an image reference imgbuild understands`, 'use a registry reference like "docker.io/library/alpine:3.20" (or @sha256:...), "oci:./dir[:tag]" or "docker-archive:./image.tar[:repo:tag]"');
  const opts = { store: await ContentStore.open(cacheDir), baseDir: process.cwd(), insecure, ...(platform ? {} : { exact: false }) };
  const image = await openBase(ref.value, platform ?? DEFAULT_PLATFORM, opts);
  if (!image) throw usageError('scratch is the empty base: there is no image to inspect');
  return image;
}

export async function describeImage(source: string, platform: Platform | undefined, insecure: string[] = [], cacheDir = resolveCacheDir()): Promise<ImageDescription> {
  const image = await open(source, platform, insecure, cacheDir);
  const [manifest, config] = await Promise.all([image.manifest(), image.configFile()]);
  const history = (config.history ?? []).filter((h) => !h.empty_layer);
  const layers = manifest.layers.map((l, i) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, ...(history[i]?.created_by ? { createdBy: history[i]!.created_by! } : {}) }));
  return {
    source,
    digest: await image.digest(),
    mediaType: manifest.mediaType,
    platform: formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) }),
    ...(config.created ? { created: config.created } : {}),
    config: config.config ?? {},
    layers,
    // As `apply` counts an image: every blob it references, its manifest too.
    size: (await image.rawManifest()).byteLength + manifest.config.size + layers.reduce((n, l) => n + l.size, 0),
    annotations: manifest.annotations ?? {},
  };
}
