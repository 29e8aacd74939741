/**
 * Assembling an image value from parts, in the manner of a mutate step: base layers then new
 * layers, a config, annotations. Nothing is read until asked, and the manifest is computed once.
 * Also the multi-platform index over several such images. Sinks take these values as they take
 * images read from a layout, an archive or a registry.
 */
import { buildError } from '../errors.js';
import { canonicalBlob, canonicalJson } from './canonical-json.js';
import { sha256, type Digest } from './digest.js';
import { once } from './lazy.js';
import { MediaType } from './media-types.js';
import { canonicalPlatform } from './platform.js';
import type { Descriptor, Image, ImageConfigFile, ImageIndex, ImageIndexSource, ImageManifest, Layer, Platform } from './types.js';

export { storeLayer, type BlobStoreReader, type StoredLayerRecord } from './store-layer.js';

export interface AssembleInputs {
  base?: Image;
  /** The new layers, bottom first, on top of the base's. */
  layers: Layer[];
  /** Its rootfs.diff_ids must list the base's layers then the new ones (see buildConfigFile). */
  config: ImageConfigFile;
  annotations: Record<string, string>;
}

// A docker-typed base layer is the same bytes under an OCI name; an OCI manifest must not mix them.
const OCI_LAYER_TYPE: Record<string, string> = {
  [MediaType.dockerLayerGzip]: MediaType.ociLayerGzip,
  [MediaType.dockerForeignLayerGzip]: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
};

export function assembleImage(inputs: AssembleInputs): Image {
  const config = canonicalBlob(inputs.config);
  const allLayers = once(async () => [...((await inputs.base?.layers()) ?? []), ...inputs.layers]);
  const built = once(async () => {
    const layers = await allLayers();
    await checkDiffIds(layers, inputs.config);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.size },
      layers: await Promise.all(layers.map(layerDescriptor)),
      ...(Object.keys(inputs.annotations).length > 0 ? { annotations: { ...inputs.annotations } } : {}),
    };
    const raw = canonicalJson(manifest);
    return { manifest, raw, digest: sha256(raw) };
  });
  return {
    manifest: async () => (await built()).manifest,
    rawManifest: async () => (await built()).raw,
    digest: async () => (await built()).digest,
    mediaType: async () => MediaType.ociManifest,
    configFile: async () => inputs.config,
    rawConfig: async () => config.bytes,
    configDigest: async () => config.digest,
    layers: allLayers,
    layerByDigest: (d) => findLayer(allLayers, d),
  };
}

export async function layerDescriptor(layer: Layer): Promise<Descriptor> {
  const [mediaType, digest, size] = await Promise.all([layer.mediaType(), layer.digest(), layer.size()]);
  return { mediaType: OCI_LAYER_TYPE[mediaType] ?? mediaType, digest, size };
}

export async function findLayer(layers: () => Promise<Layer[]>, d: Digest): Promise<Layer> {
  for (const layer of await layers()) if ((await layer.digest()) === d) return layer;
  throw buildError(`the image has no layer ${d}`);
}

// The config's diff_ids are what a runtime checks each unpacked layer against; a base whose
// config disagrees with its own manifest would yield an image no runtime can start.
async function checkDiffIds(layers: Layer[], config: ImageConfigFile): Promise<void> {
  const have = await Promise.all(layers.map((l) => l.diffId()));
  const want = config.rootfs.diff_ids;
  if (have.length !== want.length || have.some((d, i) => d !== want[i])) {
    throw buildError(
      `the image config lists ${want.length} layer diff_ids but the image has ${have.length} layers, or they differ`,
      'the base image may be damaged: its config and its manifest disagree',
    );
  }
}

/** Several single-platform images under one OCI index. */
export function assembleIndex(
  images: { image: Image; platform: Platform }[],
  annotations: Record<string, string>,
): ImageIndexSource {
  const built = once(async () => {
    const manifests = await Promise.all(images.map(indexEntry));
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests,
      ...(Object.keys(annotations).length > 0 ? { annotations: { ...annotations } } : {}),
    };
    const raw = canonicalJson(index);
    return { index, raw, digest: sha256(raw) };
  });
  return {
    index: async () => (await built()).index,
    rawIndex: async () => (await built()).raw,
    digest: async () => (await built()).digest,
    image: async (d) => {
      for (const { image } of images) if ((await image.digest()) === d) return image;
      throw buildError(`the index has no image ${d}`);
    },
  };
}

async function indexEntry({ image, platform }: { image: Image; platform: Platform }): Promise<Descriptor> {
  const raw = await image.rawManifest();
  return { mediaType: await image.mediaType(), digest: await image.digest(), size: raw.byteLength, platform: canonicalPlatform(platform) };
}
