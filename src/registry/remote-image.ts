/**
 * Images in a registry seen through the `Image` and `ImageIndexSource` interfaces, so a base
 * image pulled from a registry looks to a sink like any other image. Documents are fetched once
 * and checked; blobs stream from the registry and are verified by digest, and when a blob cache
 * (the content store) is given they are written into it first, verified on commit, and read back
 * from it, so each blob crosses the network once (again from the start if the connection is cut
 * mid-body).
 */
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable, Writable } from 'node:stream';
import { ImgbuildError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import { isIndexMediaType } from '../image/media-types.js';
import type { Descriptor, Image, ImageConfigFile, ImageIndex, ImageIndexSource, ImageManifest, Layer, Platform } from '../image/types.js';
import type { ManifestResult, RegistryClient } from './client.js';
import { parseConfig } from '../image/parse.js';
import { configMatches, followIndex, formatPlatform, type IndexStep } from '../image/platform.js';
import { parseIndex, parseManifest } from './documents.js';
import { InterruptedTransfer } from './errors.js';
import { readAll } from './http.js';
import { refReference, type ParsedRef } from './reference.js';
import { retryDelay } from './retry.js';

/** A writer into a content-addressed store: write, end, then commit under the verified digest. */
export interface BlobWriter extends Writable {
  commit(expected?: Digest): Promise<{ digest: Digest; size: number }>;
  abort(): unknown;
}

/** The part of the content store (src/store) a registry source needs, by structure. */
export interface BlobCache {
  has(d: Digest): boolean | Promise<boolean>;
  blobPath(d: Digest): string;
  readStream(d: Digest): Readable | Promise<Readable>;
  createWriter(): BlobWriter | Promise<BlobWriter>;
}

export interface RemoteOptions {
  cache?: BlobCache;
  /**
   * False: `platform` only chooses from a multi-platform index, and a single image is taken
   * whatever its platform (inspect without --platform). Default true, as for a build.
   */
  exact?: boolean;
}

const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** Fetch a blob through the cache when there is one; always verified by digest. */
export class BlobFetcher {
  private readonly inflight = new Map<Digest, Promise<void>>();

  constructor(private readonly client: RegistryClient, private readonly cache?: BlobCache) {}

  async open(d: Descriptor): Promise<Readable> {
    if (!this.cache) return this.client.getBlob(d.digest, d.size);
    if (!(await this.cache.has(d.digest))) await this.fill(d);
    return this.cache.readStream(d.digest);
  }

  private fill(d: Descriptor): Promise<void> {
    let p = this.inflight.get(d.digest);
    if (!p) {
      p = this.download(d).finally(() => this.inflight.delete(d.digest));
      this.inflight.set(d.digest, p);
    }
    return p;
  }

  /** A download cut off mid-body starts again from the first byte, a bounded number of times. */
  private async download(d: Descriptor): Promise<void> {
    const policy = this.client.retry;
    for (let n = 0; ; n++) {
      try {
        return await this.downloadOnce(d);
      } catch (e) {
        if (!(e instanceof InterruptedTransfer) || n >= policy.retries) throw e;
        await sleep(retryDelay(policy, n + 1));
      }
    }
  }

  private async downloadOnce(d: Descriptor): Promise<void> {
    const writer = await this.cache!.createWriter();
    try {
      await pipeline(await this.client.getBlob(d.digest, d.size), writer);
      await writer.commit(d.digest);
    } catch (e) {
      await Promise.resolve(writer.abort()).catch(() => {});
      throw e;
    }
  }
}

class RemoteLayer implements Layer {
  constructor(private readonly desc: Descriptor, private readonly diff: Digest, private readonly blobs: BlobFetcher) {}
  digest = async () => this.desc.digest;
  diffId = async () => this.diff;
  size = async () => this.desc.size;
  mediaType = async () => this.desc.mediaType;
  compressed = () => this.blobs.open(this.desc);
}

export class RemoteImage implements Image {
  private readonly parsed: ImageManifest;
  private config: Promise<{ raw: Uint8Array; file: ImageConfigFile }> | undefined;
  private readonly blobs: BlobFetcher;

  constructor(readonly client: RegistryClient, private readonly m: ManifestResult, opts: RemoteOptions = {}) {
    this.parsed = parseManifest(m.bytes, m.mediaType, `manifest ${m.digest} of ${client.registry}/${client.repository}`);
    this.blobs = new BlobFetcher(client, opts.cache);
  }

  manifest = async () => this.parsed;
  rawManifest = async () => this.m.bytes;
  digest = async () => this.m.digest;
  mediaType = async () => this.m.mediaType;
  configDigest = async () => this.parsed.config.digest;
  configFile = async () => (await this.loadConfig()).file;
  rawConfig = async () => (await this.loadConfig()).raw;

  async layers(): Promise<Layer[]> {
    const diffIds = (await this.configFile()).rootfs.diff_ids;
    if (diffIds.length !== this.parsed.layers.length) {
      throw new ImgbuildError('registry', `image ${this.m.digest} in ${this.client.registry}/${this.client.repository} is malformed: ` +
        `${this.parsed.layers.length} layers but ${diffIds.length} diff_ids`);
    }
    return this.parsed.layers.map((d, i) => new RemoteLayer(d, diffIds[i]!, this.blobs));
  }

  async layerByDigest(d: Digest): Promise<Layer> {
    const found = (await this.layers()).find((_, i) => this.parsed.layers[i]!.digest === d);
    if (!found) throw new ImgbuildError('build', `image ${this.m.digest} has no layer ${d}`);
    return found;
  }

  private loadConfig() {
    this.config ??= (async () => {
      const raw = new Uint8Array(await readAll(await this.blobs.open(this.parsed.config), MAX_CONFIG_BYTES));
      // The same strict checks as every other source's configs (diff_ids, os, architecture).
      const file = parseConfig(raw, `config ${this.parsed.config.digest} of ${this.client.registry}/${this.client.repository}`);
      return { raw, file };
    })();
    return this.config;
  }
}

export class RemoteIndex implements ImageIndexSource {
  private readonly parsed: ImageIndex;

  constructor(readonly client: RegistryClient, private readonly m: ManifestResult, private readonly opts: RemoteOptions = {}) {
    this.parsed = parseIndex(m.bytes, m.mediaType, `index ${m.digest} of ${client.registry}/${client.repository}`);
  }

  index = async () => this.parsed;
  rawIndex = async () => this.m.bytes;
  digest = async () => this.m.digest;

  async image(d: Digest): Promise<Image> {
    return new RemoteImage(this.client, await this.client.getManifest(d), this.opts);
  }
}

/** The image for `platform` that `ref` names, following an index (OCI or Docker list) if needed. */
export async function resolvePlatformImage(client: RegistryClient, ref: ParsedRef | string, platform: Platform, opts: RemoteOptions = {}): Promise<RemoteImage> {
  const reference = typeof ref === 'string' ? ref : refReference(ref);
  const what = `${client.registry}/${client.repository}:${reference}`;
  const top = await client.getManifest(reference);
  // Nested indexes are legal (an index of indexes): followIndex goes a few levels, no more.
  const step = (m: ManifestResult): IndexStep<ManifestResult> => (isIndexMediaType(m.mediaType) ? { doc: m, entries: parseIndex(m.bytes, m.mediaType, what).manifests } : { doc: m });
  const first = step(top);
  const m = first.entries ? await followIndex(first.entries, platform, async (d) => step(await client.getManifest(d.digest)), what) : top;
  const image = new RemoteImage(client, m, opts);
  const cfg = await image.configFile();
  if (opts.exact !== false && !configMatches(platform, cfg)) {
    throw new ImgbuildError('usage', `${what} is ${formatPlatform(cfg)}, not ${formatPlatform(platform)}`,
      'choose an image built for that platform, or change the platform');
  }
  return image;
}
