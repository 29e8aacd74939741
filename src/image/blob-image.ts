/**
 * An `Image` over documents already read and verified (manifest and config bytes) plus a way to
 * open each layer blob. Both local sources (OCI layout, docker archive) reduce to this, in the
 * way go-containerregistry's partial adapters derive a whole image from a few accessors.
 */
import type { Readable } from 'node:stream';
import { buildError } from '../errors.js';
import { findLayer } from './assemble.js';
import { sha256, type Digest } from './digest.js';
import type { Descriptor, Image, ImageConfigFile, ImageManifest, Layer } from './types.js';

export interface BlobImageParts {
  rawManifest: Uint8Array;
  manifest: ImageManifest;
  rawConfig: Uint8Array;
  config: ImageConfigFile;
  /** Opens a layer blob; the stream must fail unless the bytes match the descriptor. */
  openLayer(desc: Descriptor): Promise<Readable>;
  /** For messages: "oci:./base:1.0". */
  label: string;
}

export function blobImage(parts: BlobImageParts): Image {
  const { manifest, config, label } = parts;
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw buildError(`${label}: its manifest has ${manifest.layers.length} layers but its config lists ${diffIds.length} diff_ids`);
  }
  const layers = manifest.layers.map((desc, i) => descriptorLayer(desc, diffIds[i] as Digest, parts.openLayer));
  const digest = sha256(parts.rawManifest);
  return {
    manifest: async () => manifest,
    rawManifest: async () => parts.rawManifest,
    digest: async () => digest,
    mediaType: async () => manifest.mediaType,
    configFile: async () => config,
    rawConfig: async () => parts.rawConfig,
    configDigest: async () => manifest.config.digest,
    layers: async () => layers,
    layerByDigest: (d) => findLayer(async () => layers, d),
  };
}

function descriptorLayer(desc: Descriptor, diffId: Digest, open: (d: Descriptor) => Promise<Readable>): Layer {
  return {
    digest: async () => desc.digest,
    diffId: async () => diffId,
    size: async () => desc.size,
    mediaType: async () => desc.mediaType,
    compressed: () => open(desc),
  };
}
