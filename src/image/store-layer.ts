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
  /** Whether `blobPath(d)` is known good without reading it (ContentStore.vouchedFor). */
  vouchedFor?(d: Digest): Promise<boolean>;
  /** Rehash `blobPath(d)`: true when intact (ContentStore.verify, which remembers it). */
  verify?(d: Digest): Promise<boolean>;
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
   * The file is known good without reading it (a layer this process just built, or a blob
   * unchanged since it was last hashed): a sink may link it as it is. Otherwise the sink checks
   * it first, through `verify` when the store offers one (it remembers a good result).
   */
  checked: boolean;
  verify?: () => Promise<boolean>;
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
    localFile: async () => ({
      path: await store.blobPath(r.digest),
      checked: (await store.vouchedFor?.(r.digest)) ?? false,
      ...(store.verify ? { verify: () => store.verify!(r.digest) } : {}),
    }),
  };
}
