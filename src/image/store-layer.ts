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
  /** Whether `blobPath(d)` is still the file this process wrote and hashed as it wrote it (ContentStore has it). */
  writtenHere?(d: Digest): Promise<boolean>;
}

/** What the store knows about one layer blob. */
export interface StoredLayerRecord {
  digest: Digest;
  diffId: Digest;
  size: number;
  mediaType: string;
}

/** A blob's file on this machine. */
export interface LocalFile {
  path: string;
  /**
   * This process wrote the file and hashed it as it did (a layer it just built), and it is still
   * that file: a sink may link it without reading it again. Otherwise the sink checks it first.
   */
  checked: boolean;
}

/**
 * Optional: a layer whose blob is a file on this machine. Sinks discover it with `localBlob`
 * and may link the file rather than stream it; nothing requires it.
 */
export interface LocalBlob {
  localFile(): Promise<LocalFile>;
}

export async function localBlob(layer: Layer): Promise<LocalFile | undefined> {
  const local = layer as Partial<LocalBlob>;
  return typeof local.localFile === 'function' ? local.localFile() : undefined;
}

export function storeLayer(store: BlobStoreReader, record: StoredLayerRecord): Layer & LocalBlob {
  const r = { ...record };
  return {
    digest: async () => r.digest,
    diffId: async () => r.diffId,
    size: async () => r.size,
    mediaType: async () => r.mediaType,
    compressed: async () => store.readStream(r.digest),
    localFile: async () => ({ path: await store.blobPath(r.digest), checked: (await store.writtenHere?.(r.digest)) ?? false }),
  };
}
