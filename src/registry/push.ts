/**
 * Pushing an image (or an index of images) to a registry, in the order the distribution spec
 * needs: every layer blob (skipped when the registry has it, mounted from a sibling repository
 * when it may live there, else uploaded; in parallel, bounded, each digest once), then each
 * config, then each manifest by digest, then the index, then each tag. Progress events name
 * blobs and tags only; no credential ever reaches them.
 */
import { Readable } from 'node:stream';
import { usageError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import type { Image, ImageIndexSource } from '../image/types.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { formatRef, isValidTag, type ParsedRef } from './reference.js';

export type PushEvent =
  | { kind: 'blob'; digest: Digest; size: number; status: 'skipped' | 'mounted' | 'uploading' | 'uploaded'; from?: string }
  | { kind: 'blob-progress'; digest: Digest; size: number; bytes: number }
  | { kind: 'manifest'; digest: Digest; mediaType: string }
  | { kind: 'tag'; ref: string; digest: Digest };

export interface PushOptions extends ClientOptions {
  /** Blobs uploaded at once (default 4). */
  concurrency?: number;
  /** Repositories on the same registry that may already hold some blobs. */
  mountFrom?: string[];
  onProgress?: (ev: PushEvent) => void;
  /** A client to use instead of one made from the target and these options. */
  client?: RegistryClient;
}

export interface PushResult {
  digest: Digest;
  mediaType: string;
  /** The full references pushed, one per tag. */
  refs: string[];
}

interface BlobJob {
  digest: Digest;
  size: number;
  open: () => Promise<Readable>;
}

/**
 * Push `source` to `target`'s repository under target's tag and each of `tags`; with neither, by
 * digest only (a spec's `tags: []`: the spec's default of latest is applied where it is read).
 */
export async function pushImage(target: ParsedRef, source: Image | { index: ImageIndexSource }, tags: string[], opts: PushOptions = {}): Promise<PushResult> {
  const allTags = pushTags(target, tags);
  const client = opts.client ?? RegistryClient.for(target, opts);
  const pusher = new BlobPusher(client, opts);
  let top: { bytes: Uint8Array; mediaType: string; digest: Digest };
  if ('index' in source) {
    const idx = source.index;
    const images = await Promise.all((await idx.index()).manifests.map((d) => idx.image(d.digest)));
    for (const img of images) await pusher.pushBlobs(img);
    for (const img of images) await pushManifest(client, img, opts);
    top = { bytes: await idx.rawIndex(), mediaType: (await idx.index()).mediaType, digest: await idx.digest() };
    await client.putManifest(top.digest, top.bytes, top.mediaType);
    opts.onProgress?.({ kind: 'manifest', digest: top.digest, mediaType: top.mediaType });
  } else {
    await pusher.pushBlobs(source);
    top = await pushManifest(client, source, opts);
  }
  const refs: string[] = [];
  for (const tag of allTags) {
    await client.putManifest(tag, top.bytes, top.mediaType);
    const ref = formatRef({ registry: target.registry, repository: target.repository, tag });
    refs.push(ref);
    opts.onProgress?.({ kind: 'tag', ref, digest: top.digest });
  }
  return { digest: top.digest, mediaType: top.mediaType, refs };
}

function pushTags(target: ParsedRef, tags: string[]): string[] {
  const all = [...new Set([...(target.tag ? [target.tag] : []), ...tags])];
  for (const t of all) if (!isValidTag(t)) throw usageError(`invalid tag ${JSON.stringify(t)}`, 'a tag is 1-128 of [A-Za-z0-9_.-], not starting with . or -');
  return all;
}

async function pushManifest(client: RegistryClient, img: Image, opts: PushOptions) {
  const m = { bytes: await img.rawManifest(), mediaType: await img.mediaType(), digest: await img.digest() };
  await client.putManifest(m.digest, m.bytes, m.mediaType);
  opts.onProgress?.({ kind: 'manifest', digest: m.digest, mediaType: m.mediaType });
  return m;
}

/** Sends blobs, each digest at most once per push, at most `concurrency` at a time. */
class BlobPusher {
  private readonly done = new Map<Digest, Promise<void>>();
  private readonly limit: <T>(f: () => Promise<T>) => Promise<T>;

  constructor(private readonly client: RegistryClient, private readonly opts: PushOptions) {
    this.limit = limiter(Math.max(1, opts.concurrency ?? 4));
  }

  /** Layers in parallel, then the config: a manifest is only put once all its blobs exist. */
  async pushBlobs(img: Image): Promise<void> {
    const layers = await img.layers();
    const jobs = await Promise.all(layers.map(async (l): Promise<BlobJob> => ({ digest: await l.digest(), size: await l.size(), open: () => l.compressed() })));
    await Promise.all(jobs.map((j) => this.once(j)));
    const raw = await img.rawConfig();
    await this.once({ digest: await img.configDigest(), size: raw.byteLength, open: async () => Readable.from([Buffer.from(raw)]) });
  }

  private once(job: BlobJob): Promise<void> {
    let p = this.done.get(job.digest);
    if (!p) {
      p = this.limit(() => this.push(job));
      this.done.set(job.digest, p);
    }
    return p;
  }

  private async push(job: BlobJob): Promise<void> {
    const { digest, size } = job;
    const emit = this.opts.onProgress;
    if (await this.client.headBlob(digest)) return void emit?.({ kind: 'blob', digest, size, status: 'skipped' });
    let session: URL | undefined;
    for (const from of this.opts.mountFrom ?? []) {
      if (from === this.client.repository) continue;
      const mount = await this.client.mountBlob(digest, from);
      if (mount.mounted) return void emit?.({ kind: 'blob', digest, size, status: 'mounted', from });
      // The registry opened an upload session instead: the upload goes there, and no other mount is tried.
      if ((session = mount.session)) break;
    }
    emit?.({ kind: 'blob', digest, size, status: 'uploading' });
    let bytes = 0;
    await this.client.uploadBlob(digest, size, job.open, (n) => emit?.({ kind: 'blob-progress', digest, size, bytes: (bytes += n) }), session);
    emit?.({ kind: 'blob', digest, size, status: 'uploaded' });
  }
}

/** A tiny promise-concurrency limiter: run at most `n` tasks at once, in arrival order. */
function limiter(n: number) {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(f: () => Promise<T>): Promise<T> => {
    // A finishing task hands its slot straight to the next waiter, so `active` never exceeds n.
    if (active >= n) await new Promise<void>((r) => queue.push(r));
    else active++;
    try {
      return await f();
    } finally {
      const next = queue.shift();
      if (next) next();
      else active--;
    }
  };
}
