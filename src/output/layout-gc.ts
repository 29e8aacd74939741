/**
 * Letting go of the blobs of images a layout no longer names. A write that moves a tag to a new
 * image leaves the old image's blobs behind; a `--watch` session writing `oci:out` on every save
 * would grow it by a layer per rebuild, for ever. So, under the layout lock, a write removes the
 * blobs of the images that the write *before* it replaced, where nothing the index names now
 * reaches them, nor the images this write replaced: one write late, so that a reader that read
 * the index just before a tag moved (`skopeo copy oci:out:latest ...` during a rebuild) still
 * finds every blob of the image it is copying, a layer it shares with an older image too. Only
 * blobs of images a tag moved away from are ever candidates: whatever another tool put in the
 * layout, named or not, is left alone.
 *
 * A writer that holds the lock may remove a blob that another writer, still waiting for the lock,
 * is about to name (both images share a layer): every writer checks under the lock that each blob
 * it names is there, and writes again any that is not, before it names them (oci-layout.ts).
 */
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest, type Digest } from '../image/digest.js';
import { isIndexMediaType, isManifestMediaType } from '../image/media-types.js';
import { parseIndex, parseManifest } from '../image/parse.js';
import type { Descriptor } from '../image/types.js';
import { writeFileAtomic } from '../store/atomic.js';
import { blobFile, stampFile, type LayoutPaths } from './blob-writer.js';

/** The images a write replaced, kept for the next write to collect: `.imgbuild/replaced.json`. */
const pendingFile = (p: LayoutPaths) => join(p.root, '.imgbuild', 'replaced.json');

/** The blobs `descriptors` reach in the layout: themselves, and below an index or manifest what it names (a blob that cannot be read names nothing). */
async function reachable(p: LayoutPaths, descriptors: readonly Pick<Descriptor, 'digest' | 'mediaType'>[]): Promise<Set<Digest>> {
  const seen = new Set<Digest>();
  const visit = async (d: Pick<Descriptor, 'digest' | 'mediaType'>): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    const raw = isIndexMediaType(d.mediaType) || isManifestMediaType(d.mediaType) ? await readFile(blobFile(p, d.digest)).catch(() => undefined) : undefined;
    if (!raw) return;
    try {
      if (isIndexMediaType(d.mediaType)) {
        for (const m of parseIndex(raw, d.digest).manifests) await visit(m);
      } else {
        const m = parseManifest(raw, d.digest);
        seen.add(m.config.digest);
        for (const l of m.layers) seen.add(l.digest);
      }
    } catch {
      // Not an index or manifest after all: it names nothing.
    }
  };
  for (const d of descriptors) await visit(d);
  return seen;
}

async function readPending(p: LayoutPaths): Promise<Pick<Descriptor, 'digest' | 'mediaType'>[]> {
  try {
    const v = JSON.parse(await readFile(pendingFile(p), 'utf8')) as unknown;
    if (!Array.isArray(v)) return [];
    return v.filter((d): d is Pick<Descriptor, 'digest' | 'mediaType'> => typeof d?.digest === 'string' && isDigest(d.digest) && typeof d?.mediaType === 'string');
  } catch {
    return [];
  }
}

/**
 * Under the layout lock, once index.json names `named`: removes the blobs of the images the
 * previous write replaced that nothing named reaches, nor the images this write replaced (a
 * reader that read the index just before this write must find those whole: they may share a
 * layer with an image let go of now), and keeps `replaced` (this write's) for the next. Returns
 * how many blobs were removed.
 */
export async function collectReplaced(p: LayoutPaths, named: readonly Descriptor[], replaced: readonly Descriptor[]): Promise<number> {
  const pending = await readPending(p);
  const keep = await reachable(p, named);
  const keptOneWriteMore = await reachable(p, replaced);
  let removed = 0;
  for (const d of await reachable(p, pending)) {
    if (keep.has(d) || keptOneWriteMore.has(d)) continue;
    if (await unlink(blobFile(p, d)).then(() => true, () => false)) removed++;
    await unlink(stampFile(p, d)).catch(() => undefined);
  }
  const next = replaced.filter((d) => !keep.has(d.digest)).map(({ digest, mediaType }) => ({ digest, mediaType }));
  if (next.length > 0 || pending.length > 0) await writeFileAtomic(p.tmp, pendingFile(p), JSON.stringify(next));
  return removed;
}
