/**
 * The OCI image layout sink. Blobs go in first, in parallel (bounded), each to a temp name and
 * renamed into place, skipping those already there; then each config, then each manifest (and
 * the index for several platforms); and last index.json, merged with what is there (an entry
 * with the same tag is replaced, others kept) and replaced atomically under a lock, unless it
 * already says exactly that (a rebuild that changed nothing writes nothing). So any number
 * of processes may write one layout at once, a reader never sees a half-written index.json, and
 * a run killed at any moment leaves a layout whose index only names blobs that are whole. The
 * blobs of images a tag moved away from are let go of one write later (layout-gc.ts).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { buildError, usageError } from '../errors.js';
import { canonicalJson } from '../image/canonical-json.js';
import { REF_NAME } from '../image/layout-source.js';
import { MediaType } from '../image/media-types.js';
import { parseIndex } from '../image/parse.js';
import { localBlob } from '../image/store-layer.js';
import type { Descriptor, Image, ImageIndex, ImageIndexSource } from '../image/types.js';
import type { Digest } from '../image/digest.js';
import { blobFile, layoutPaths, prepareLayoutDirs, writeBytesBlob, writeStreamBlob, type LayoutPaths } from './blob-writer.js';
import { collectReplaced } from './layout-gc.js';
import { withLayoutLock } from './layout-lock.js';
import { writeFileAtomic } from '../store/atomic.js';
import { mapLimit } from '../util/map-limit.js';
import { layoutTag, outputError, type WriteResult, type WriteTarget } from './target.js';

const LAYOUT_FILE = { imageLayoutVersion: '1.0.0' };
const PARALLEL_BLOBS = 4;

export async function writeOciLayout(dir: string, target: WriteTarget, tags: string[]): Promise<WriteResult> {
  const names = [...new Set(tags.map(layoutTag))];
  const p = layoutPaths(dir);
  try {
    await prepareLayoutDirs(p);
    await ensureLayoutFile(p);
    const named: Digest[] = [];
    const writeBlobs = () => ('image' in target ? writeImage(p, target.image, named) : writeIndexBlobs(p, target.index, named));
    const top = await writeBlobs();
    // An index that already names this image under these tags (a rebuild that changed nothing)
    // is left alone, lock and all: replacing it with the same bytes costs a lock file and an fsync.
    if ((await mergedIndex(p, top, names)).changed) {
      await withLayoutLock(join(p.root, '.imgbuild', 'index.lock'), p.tmp, async () => {
        // A writer that held the lock meanwhile may have let go of a blob this image shares with
        // one it replaced (layout-gc.ts): put back what is missing before naming it.
        if (await someMissing(p, named)) await writeBlobs();
        await updateIndex(p, top, names);
      });
    }
    return top;
  } catch (e) {
    throw outputError(e, `oci:${dir}`);
  }
}

async function ensureLayoutFile(p: LayoutPaths): Promise<void> {
  const path = join(p.root, 'oci-layout');
  const existing = await readFile(path, 'utf8').catch(() => undefined);
  if (existing !== undefined) {
    let version: unknown;
    try {
      version = (JSON.parse(existing) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      version = undefined;
    }
    if (typeof version !== 'string') throw usageError(`${p.root} has an oci-layout file that is not an OCI image layout's`);
    return;
  }
  await replaceFile(p, path, canonicalJson(LAYOUT_FILE));
}

/** Layers in parallel, then config, then manifest: a manifest never names a missing blob. Each blob's digest goes into `named`. */
export async function writeImage(p: LayoutPaths, image: Image, named: Digest[] = []): Promise<WriteResult> {
  const layers = await image.layers();
  await mapLimit(layers, PARALLEL_BLOBS, async (layer) => {
    const [digest, size, local] = await Promise.all([layer.digest(), layer.size(), localBlob(layer)]);
    await writeStreamBlob(p, { digest, size, ...(local ? { local } : {}), open: () => layer.compressed(), label: 'layer' });
    named.push(digest);
  });
  const config = await image.configDigest();
  await writeBytesBlob(p, config, await image.rawConfig());
  const raw = await image.rawManifest();
  const digest = await image.digest();
  await writeBytesBlob(p, digest, raw);
  named.push(config, digest);
  return { digest, mediaType: await image.mediaType(), size: raw.byteLength };
}

async function writeIndexBlobs(p: LayoutPaths, index: ImageIndexSource, named: Digest[]): Promise<WriteResult> {
  const doc = await index.index();
  for (const desc of doc.manifests) await writeImage(p, await index.image(desc.digest), named);
  const raw = await index.rawIndex();
  const digest = await index.digest();
  await writeBytesBlob(p, digest, raw);
  named.push(digest);
  return { digest, mediaType: doc.mediaType, size: raw.byteLength };
}

async function someMissing(p: LayoutPaths, digests: readonly Digest[]): Promise<boolean> {
  const there = await Promise.all(digests.map((d) => stat(blobFile(p, d)).then((st) => st.isFile(), () => false)));
  return there.includes(false);
}

/**
 * Merge this write into index.json and replace it, if that changes it (under the layout lock);
 * then let go of the blobs of the images the previous write replaced (layout-gc.ts).
 */
async function updateIndex(p: LayoutPaths, top: WriteResult, names: (string | undefined)[]): Promise<void> {
  const { bytes, changed, index, replaced } = await mergedIndex(p, top, names);
  if (!changed) return;
  await replaceFile(p, join(p.root, 'index.json'), bytes);
  await collectReplaced(p, index.manifests, replaced);
}

interface MergedIndex {
  index: ImageIndex;
  bytes: Uint8Array;
  /** Whether that differs from index.json's bytes now. */
  changed: boolean;
  /** The entries this write moves a tag away from. */
  replaced: Descriptor[];
}

/** index.json as it is now with this write merged in. */
async function mergedIndex(p: LayoutPaths, top: WriteResult, names: (string | undefined)[]): Promise<MergedIndex> {
  const path = join(p.root, 'index.json');
  const raw = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw buildError(`cannot read ${path}: ${e.message}`);
  });
  const existing: ImageIndex = raw ? parseIndex(raw, path) : { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: mergeEntries(existing.manifests, top, names) };
  if (existing.annotations) index.annotations = existing.annotations;
  const bytes = canonicalJson(index);
  const ours = new Set(names);
  const replaced = existing.manifests.filter((d) => d.digest !== top.digest && d.annotations?.[REF_NAME] !== undefined && ours.has(d.annotations[REF_NAME]));
  return { index, bytes, changed: raw === undefined || !Buffer.from(bytes).equals(raw), replaced };
}

/**
 * Existing entries keep their places; one whose tag we write is replaced where it stands, new
 * tags follow in the order given. An untagged write adds its digest once.
 */
export function mergeEntries(existing: Descriptor[], top: WriteResult, names: (string | undefined)[]): Descriptor[] {
  const entry = (name?: string): Descriptor => ({
    mediaType: top.mediaType,
    digest: top.digest,
    size: top.size,
    ...(name !== undefined ? { annotations: { [REF_NAME]: name } } : {}),
  });
  const ours = new Set(names.filter((n): n is string => n !== undefined));
  const placed = new Set<string>();
  const out: Descriptor[] = [];
  for (const d of existing) {
    const name = d.annotations?.[REF_NAME];
    if (name === undefined || !ours.has(name)) out.push(d);
    else if (!placed.has(name)) {
      out.push(entry(name));
      placed.add(name);
    }
  }
  for (const name of ours) if (!placed.has(name)) out.push(entry(name));
  const untagged = names.includes(undefined) || names.length === 0;
  if (untagged && !out.some((d) => d.digest === top.digest && !d.annotations?.[REF_NAME])) out.push(entry());
  return out;
}

/** Readers see the old document or the new, never a mix; the new one is on disk before it is named. */
const replaceFile = (p: LayoutPaths, path: string, bytes: Uint8Array) => writeFileAtomic(p.tmp, path, bytes);

