/**
 * `inspect`: what an image is, from any source — a registry reference, `oci:dir[:tag]` or
 * `docker-archive:file` — as data: manifest digest, platform, config and layers with sizes.
 */
import { openArchiveImage } from '../image/archive-source.js';
import type { Digest } from '../image/digest.js';
import { openLayoutImage, parseLayoutRef } from '../image/layout-source.js';
import { formatPlatform } from '../image/platform.js';
import type { Image, Platform, RuntimeConfig } from '../image/types.js';
import { RegistryClient } from '../registry/client.js';
import { parseRef } from '../registry/reference.js';
import { resolvePlatformImage } from '../registry/remote-image.js';

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

async function open(source: string, platform: Platform, insecure: string[]): Promise<Image> {
  if (source.startsWith('oci:')) {
    const ref = parseLayoutRef(source);
    return openLayoutImage(ref.path, { ...(ref.tag ? { tag: ref.tag } : {}), platform });
  }
  if (source.startsWith('docker-archive:')) return openArchiveImage(source.slice('docker-archive:'.length), { platform });
  const ref = parseRef(source);
  return resolvePlatformImage(RegistryClient.for(ref, { insecure }), ref, platform);
}

export async function describeImage(source: string, platform: Platform, insecure: string[] = []): Promise<ImageDescription> {
  const image = await open(source, platform, insecure);
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
    size: manifest.config.size + layers.reduce((n, l) => n + l.size, 0),
    annotations: manifest.annotations ?? {},
  };
}
