/**
 * A `Layer` whose blob lives in imgbuild's content store, and the optional fast path that lets a
 * sink hard-link such a blob instead of copying it. The store itself belongs to src/store; this
 * module needs only the three methods below, so any object with them will do.
 */
import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';
import type { Layer } from './types.js';

/** The part of the content store a layer needs (src/store/content-store.ts has this shape). */
export interface BlobStoreReader {
  blobPath(d: Digest): string | Promise<string>;
  readStream(d: Digest): Readable | Promise<Readable>;
  has(d: Digest): boolean | Promise<boolean>;
}

/** What the store knows about one layer blob. */
export interface StoredLayerRecord {
  digest: Digest;
  diffId: Digest;
  size: number;
  mediaType: string;
}

/**
 * Optional: a layer whose verified blob is a file on this machine. Sinks discover it with
 * `localBlobPath` and may link the file rather than stream it; nothing requires it.
 */
export interface LocalBlob {
  localPath(): Promise<string>;
}

export async function localBlobPath(layer: Layer): Promise<string | undefined> {
  const local = layer as Partial<LocalBlob>;
  return typeof local.localPath === 'function' ? local.localPath() : undefined;
}

export function storeLayer(store: BlobStoreReader, record: StoredLayerRecord): Layer & LocalBlob {
  const r = { ...record };
  return {
    digest: async () => r.digest,
    diffId: async () => r.diffId,
    size: async () => r.size,
    mediaType: async () => r.mediaType,
    compressed: async () => store.readStream(r.digest),
    localPath: async () => store.blobPath(r.digest),
  };
}
