/**
 * Opening the base image of a build, one per platform, from wherever `from:` says: nothing for
 * scratch, an OCI layout, a docker archive, or a registry. A registry base pinned by digest
 * (from image.lock) whose manifest, config and layers are all in the content store is opened
 * from the store alone, without a single request (a layer the store lets go of later, to `cache
 * prune`, is fetched again); otherwise it is fetched, verified by digest, and its manifest and
 * config kept in the store for next time.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { openArchiveImage } from '../image/archive-source.js';
import { blobImage } from '../image/blob-image.js';
import { digestHex, type Digest } from '../image/digest.js';
import { checkLayerEntries, shapeAfter, type BaseShape, type LayerLinks } from '../image/layer-check.js';
import { openLayoutImage } from '../image/layout-source.js';
import { parseConfig, parseManifest } from '../image/parse.js';
import type { Descriptor, Image, Platform } from '../image/types.js';
import { configMatches, formatPlatform } from '../image/platform.js';
import { usageError } from '../errors.js';
import type { BaseRef } from '../plan/types.js';
import { archiveFile } from './base-files.js';
import { RegistryClient } from '../registry/client.js';
import { parseRef, withReference } from '../registry/reference.js';
import { BlobFetcher, resolvePlatformImage } from '../registry/remote-image.js';
import { writeFileAtomic } from '../store/atomic.js';
import { CHECKED_DIR_PREFIX, type ContentStore } from '../store/content-store.js';

export interface BaseOptions {
  store: ContentStore;
  /** Local bases (oci:, docker-archive:) are relative to this folder: the spec's. */
  baseDir: string;
  /** Manifest digest to use for this platform instead of resolving the tag (from image.lock). */
  pinned?: Digest;
  insecure?: string[];
  /**
   * False: the platform only chooses from a multi-platform image, and a single-platform one is
   * taken whatever it is for (inspect without --platform). Default true, as a build needs.
   */
  exact?: boolean;
}

/**
 * The pinned image from the content store, if every blob it needs is there. A layer read later
 * goes through `openLayer` (default: the store alone), which may fetch one the store let go of
 * meanwhile (`cache prune` during a build, or a watch session that keeps the image).
 */
export async function storedImage(store: ContentStore, digest: Digest, label: string, openLayer: (d: Descriptor) => Promise<Readable> = async (d) => store.readStream(d.digest)): Promise<Image | undefined> {
  if (!(await store.has(digest))) return undefined;
  // readBytes verifies the digest (and evicts a damaged blob): no second hash here.
  const rawManifest = await store.readBytes(digest);
  const manifest = parseManifest(rawManifest, `${label} manifest`);
  const blobs = [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
  for (const b of blobs) if (!(await store.has(b))) return undefined;
  const rawConfig = await store.readBytes(manifest.config.digest);
  return blobImage({
    rawManifest,
    manifest,
    rawConfig,
    config: parseConfig(rawConfig, `${label} config`),
    label,
    // The store verifies every read: a blob corrupted in the cache is refused (and evicted), never used.
    openLayer,
  });
}

async function registryBase(ref: string, platform: Platform, opts: BaseOptions): Promise<Image> {
  let parsed = parseRef(ref);
  if (opts.pinned) parsed = withReference(parsed, opts.pinned);
  const client = () => RegistryClient.for(parsed, opts.insecure ? { insecure: opts.insecure } : {});
  if (opts.pinned) {
    // No request while the store holds each layer; one it let go of since is fetched again.
    let fetcher: BlobFetcher | undefined;
    const offline = await storedImage(opts.store, opts.pinned, ref, (d) => (fetcher ??= new BlobFetcher(client(), opts.store)).open(d));
    if (offline) {
      // As the registry path checks it: a lock whose digests were swapped between platforms
      // must fail the same whether or not the cache holds them.
      const cfg = await offline.configFile();
      if (opts.exact !== false && !configMatches(platform, cfg)) throw usageError(`${ref}@${opts.pinned} is ${formatPlatform(cfg)}, not ${formatPlatform(platform)}`, 'the lock pins another platform\'s image here: run `imgbuild lock` again');
      return offline;
    }
  }
  const image = await resolvePlatformImage(client(), parsed, platform, { cache: opts.store, ...(opts.exact === false ? { exact: false } : {}) });
  const digest = await image.digest();
  await opts.store.putBytes(await image.rawManifest(), digest);
  const manifest = await image.manifest();
  await opts.store.putBytes(await image.rawConfig(), manifest.config.digest);
  return image;
}

export async function openBase(base: BaseRef, platform: Platform, opts: BaseOptions): Promise<Image | undefined> {
  switch (base.kind) {
    case 'scratch':
      return undefined;
    case 'oci':
      return openLayoutImage(resolve(opts.baseDir, base.path), { ...(base.tag ? { tag: base.tag } : {}), ...(opts.exact === false ? { preferred: platform } : { platform }) });
    case 'docker-archive': {
      const { file, tag } = archiveFile(base, opts.baseDir);
      return openArchiveImage(file, { ...(tag ? { tag } : {}), ...(opts.exact === false ? {} : { platform }) });
    }
    case 'registry':
      return registryBase(base.ref, platform, opts);
  }
}

/**
 * Which rules a clean mark stands for: a mark made under weaker ones (before symlinks spelled
 * "a/./l" or "a//l", and whiteouts of "..", were refused; before a layer's tar was checked
 * against its diff_id; before a mark held the layer's links; before a hard link to a symlink
 * counted as one; before it held its directories' modes and owners) is no mark, and the layer is
 * read again.
 */
const CHECK_RULES = 6;

/** A mark's links, or undefined when there is no mark (or one this code cannot read). */
async function readMark(mark: string): Promise<LayerLinks | undefined> {
  try {
    const m = JSON.parse(await readFile(mark, 'utf8')) as LayerLinks;
    const dirsRead = Array.isArray(m.dirs) && m.dirs.every((d) => typeof d?.path === 'string' && Number.isInteger(d.mode) && Number.isInteger(d.uid) && Number.isInteger(d.gid));
    return Array.isArray(m.links) && dirsRead && Array.isArray(m.removed) && Array.isArray(m.emptied) ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Read each base layer once and refuse one with hostile entries; a layer found clean is marked in
 * the store (`checked-<rules>/<hex>`, holding what it does to symlinks and directories), so later
 * builds on the same base read nothing. Returns the symlinks the whole base leaves (path ->
 * target), which the layers on top must not write below, and its directories, which they must not
 * copy a file onto (base-links.ts).
 */
export async function checkBaseLayers(image: Image, store: ContentStore, label: string): Promise<BaseShape> {
  const dir = join(store.root, `${CHECKED_DIR_PREFIX}${CHECK_RULES}`);
  await mkdir(dir, { recursive: true });
  const layers: LayerLinks[] = [];
  for (const layer of await image.layers()) {
    const digest = await layer.digest();
    const mark = join(dir, digestHex(digest));
    const marked = await readMark(mark);
    if (marked) {
      layers.push(marked);
      continue;
    }
    const found = await checkLayerEntries(await layer.compressed(), await layer.mediaType(), `base layer ${digest} of ${label}`, await layer.diffId());
    await writeFileAtomic(store.tmpDir, mark, JSON.stringify(found));
    layers.push(found);
  }
  return shapeAfter(layers);
}
