/**
 * Small in-memory images for registry tests: gzip tar layers built with tar-stream, wrapped in
 * the `Image` and `ImageIndexSource` interfaces, with deterministic content from a seed.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { sha256, type Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Image, ImageConfigFile, ImageIndex, ImageIndexSource, ImageManifest, Layer, Platform } from '../../src/image/types.js';

export interface MemLayer extends Layer {
  bytes: Buffer;
  opens: number;
}

/** Pseudo-random bytes from a seed (not compressible, so sizes are predictable). */
export function seededBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export async function tarGz(files: Record<string, Buffer | string>): Promise<{ gz: Buffer; diffId: Digest }> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) {
    pack.entry({ name, mtime: new Date(0), mode: 0o644 }, typeof content === 'string' ? Buffer.from(content) : content);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const raw = Buffer.concat(chunks);
  return { gz: gzipSync(raw), diffId: sha256(raw) };
}

export async function memLayer(seed: string, size = 2048): Promise<MemLayer> {
  const { gz, diffId } = await tarGz({ [`${seed}.bin`]: seededBytes(seed, size) });
  const layer: MemLayer = {
    bytes: gz,
    opens: 0,
    digest: async () => sha256(gz),
    diffId: async () => diffId,
    size: async () => gz.length,
    mediaType: async () => MediaType.ociLayerGzip,
    compressed: async () => {
      layer.opens++;
      // Several chunks, so uploads are really streamed.
      const parts: Buffer[] = [];
      for (let o = 0; o < gz.length; o += 16 * 1024) parts.push(gz.subarray(o, o + 16 * 1024));
      return Readable.from(parts);
    },
  };
  return layer;
}

export interface MemImage extends Image {
  memLayers: MemLayer[];
  config: Buffer;
}

export async function memImage(layers: MemLayer[], platform: Platform = { os: 'linux', architecture: 'amd64' }): Promise<MemImage> {
  const cfg: ImageConfigFile = {
    created: '1970-01-01T00:00:00Z',
    ...platform,
    config: { Cmd: ['/bin/true'] },
    rootfs: { type: 'layers', diff_ids: await Promise.all(layers.map((l) => l.diffId())) },
  };
  const config = Buffer.from(JSON.stringify(cfg));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256(config), size: config.length },
    layers: await Promise.all(layers.map(async (l) => ({ mediaType: MediaType.ociLayerGzip, digest: await l.digest(), size: await l.size() }))),
  };
  const raw = Buffer.from(JSON.stringify(manifest));
  return {
    memLayers: layers,
    config,
    manifest: async () => manifest,
    rawManifest: async () => raw,
    digest: async () => sha256(raw),
    mediaType: async () => MediaType.ociManifest,
    configFile: async () => cfg,
    rawConfig: async () => config,
    configDigest: async () => sha256(config),
    layers: async () => layers,
    layerByDigest: async (d) => {
      for (const l of layers) if ((await l.digest()) === d) return l;
      throw new Error(`no layer ${d}`);
    },
  };
}

export async function memIndex(images: { image: Image; platform: Platform }[]): Promise<ImageIndexSource> {
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: await Promise.all(images.map(async ({ image, platform }) => ({
      mediaType: await image.mediaType(), digest: await image.digest(), size: (await image.rawManifest()).length, platform,
    }))),
  };
  const raw = Buffer.from(JSON.stringify(index));
  return {
    index: async () => index,
    rawIndex: async () => raw,
    digest: async () => sha256(raw),
    image: async (d) => {
      for (const { image } of images) if ((await image.digest()) === d) return image;
      throw new Error(`no image ${d}`);
    },
  };
}

export async function readAllStream(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
