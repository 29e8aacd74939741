/**
 * Writing below a symlink of the base image. An entry `bin/tool` on a base whose `/bin` is a link
 * to `usr/bin` (every merged-/usr distribution) has no one meaning: an unpacker that resolves
 * parents inside the root (umoci, containerd's native snapshotter) writes `usr/bin/tool`, while
 * containerd's overlayfs snapshotter, the default under Docker and Kubernetes, makes `/bin` a
 * directory holding only `tool`, hiding the link and `/bin/sh` with it. A copied directory that
 * lands on the link (`copy: tools/ to /bin/`) replaces it in every runtime, with the same result.
 * So a build refuses a layer that writes below a base's symlink, or copies a directory onto one,
 * unless a layer of ours replaced the link on purpose first (a `dirs:` or `symlinks:` entry at
 * its path) or removed it, and names the path to write instead. (Our own layers' symlinks are
 * the plan's business: parents.ts.)
 */
import { posix } from 'node:path';
import { SpecError, type Diagnostic } from '../errors.js';
import type { NormalizedLayer, NormalizedSpec } from '../spec/normalized.js';
import { atOrBelow, fileOnto, fileOntoDir, followLinks, hiddenBy, symlinksOf } from '../plan/parents.js';
import { imageRel, isUnchanged, type PlannedLayer } from '../plan/types.js';
import { entriesOf } from '../plan/packed-layer.js';
import type { BaseShape, DirMeta } from '../image/layer-check.js';

/** A directory a layer writes in: copied itself (it would land on a link at its path), or only holding what is written; `sample`, a path written there, for the hint. */
interface WrittenDir {
  copied: boolean;
  sample: string;
}

/**
 * The directories a layer writes in: every entry's parent and, for a copied directory, the
 * directory itself. A layer found unchanged, and so not listed, gives them from its walk record
 * (its directory entries and the directories its entries imply).
 */
function writtenDirs(layer: PlannedLayer, explicit: ReadonlySet<string>): Map<string, WrittenDir> {
  const dirs = new Map<string, WrittenDir>();
  const holds = (path: string) => {
    const parent = posix.dirname(path);
    if (parent !== '.' && !dirs.has(parent)) dirs.set(parent, { copied: false, sample: path });
  };
  const entries = isUnchanged(layer) ? [...layer.dirs, ...layer.links.map((path) => ({ path, type: 'symlink' as const }))] : entriesOf(layer);
  for (const e of entries) {
    holds(e.path);
    if (e.type === 'dir' && !explicit.has(e.path)) dirs.set(e.path, { copied: true, sample: e.path });
  }
  // A listed layer's entries gave every parent; an unchanged one's record keeps those no entry is.
  if (isUnchanged(layer)) for (const dir of layer.implied) if (!dirs.has(dir)) dirs.set(dir, { copied: false, sample: dir });
  return dirs;
}

/** What a layer puts at paths on purpose, which stands over a base's link: its `dirs:` and its symlinks (copied ones too). */
function placed(layer: PlannedLayer, spec: NormalizedLayer): string[] {
  return [...spec.dirs.map((d) => imageRel(d.path)), ...symlinksOf(layer)];
}

/** A problem for every layer that writes below, or copies a directory onto, a symlink `links` holds (path -> target, the base's). */
export function belowBaseLinks(spec: NormalizedSpec, layers: readonly PlannedLayer[], links: ReadonlyMap<string, string>, baseLabel: string): Diagnostic[] {
  if (links.size === 0) return [];
  const standing = new Set<string>();
  const removed = new Set<string>();
  const problems: Diagnostic[] = [];
  layers.forEach((layer, i) => {
    const own = spec.layers[i]!;
    for (const p of placed(layer, own)) standing.add(p);
    for (const r of own.removes) removed.add(imageRel(r.path));
    const cleared = (p: string) => standing.has(p) || atOrBelow(p, removed);
    // Where a path lands through the links still standing (not those our layers replaced or removed).
    const landing = (path: string) => followLinks(path, (p) => (cleared(p) ? undefined : links.get(p)));
    // An entry written below the link keeps its own name: one that lands on a link of the base
    // replaces the link, it does not write through it (/bin/cat is /usr/bin/cat, not the
    // /usr/bin/busybox that cat points to). A directory copied onto the link lands at its target.
    const entryLanding = (path: string) => {
      const parent = posix.dirname(path);
      return parent === '.' ? landing(path) : `${landing(parent)}/${posix.basename(path)}`;
    };
    const refuse = (link: string, message: string, sample: string) => {
      problems.push({
        position: own.at,
        message: `layer "${layer.name}" ${message} /${link}, which is a symlink to ${links.get(link)} in the base image ${baseLabel}`,
        hint: `write to ${sample === link ? landing(sample) : entryLanding(sample)} instead: a base's symlink is replaced by a directory (containerd's overlayfs snapshotter, Docker's and Kubernetes' default, does so for anything written below it)`,
        pointer: `/layers/${i}`,
      });
    };
    for (const [dir, { copied, sample }] of writtenDirs(layer, new Set(own.dirs.map((d) => imageRel(d.path))))) {
      // The directory itself, when it is copied onto a link; then every directory above it.
      if (copied && links.has(dir) && !cleared(dir)) return refuse(dir, 'copies a directory onto', sample);
      for (let cut = dir.indexOf('/'); ; cut = dir.indexOf('/', cut + 1)) {
        const p = cut === -1 ? dir : dir.slice(0, cut);
        if (links.has(p) && !cleared(p)) return refuse(p, 'writes below', sample);
        if (cut === -1) break;
      }
    }
  });
  return problems;
}

/**
 * A problem for every layer that copies a file onto a directory of the base: the file replaces
 * the directory and all it holds, in every runtime (`copy: { from: nginx.conf, to: /etc }` made
 * an image with no /etc). Unless a layer of ours below took the directory away first (removed it,
 * or put a symlink there), which is how a directory is replaced on purpose. A layer found
 * unchanged has no entries to look at (its walk record keeps its directories and links, not its
 * files): it was looked at when it was listed, and a base that gained a directory under one of its
 * files since is not seen until the layer is listed again.
 */
export function filesOntoBaseDirs(spec: NormalizedSpec, layers: readonly PlannedLayer[], dirs: ReadonlyMap<string, DirMeta>, baseLabel: string): Diagnostic[] {
  if (dirs.size === 0) return [];
  const gone = new Set<string>();
  const problems: Diagnostic[] = [];
  layers.forEach((layer, i) => {
    const own = spec.layers[i]!;
    const cleared = (p: string) => atOrBelow(p, gone);
    const onto = isUnchanged(layer) ? undefined : fileOnto(entriesOf(layer), (path) => dirs.has(path) && !cleared(path));
    if (onto) problems.push(fileOntoDir(spec, i, onto.path, onto.abs, `a directory in the base image ${baseLabel}`));
    for (const p of hiddenBy(layer, own)) gone.add(p);
  });
  return problems;
}

/** Throws the problems of `belowBaseLinks` and `filesOntoBaseDirs` as one spec error. */
export function refuseBelowBaseLinks(spec: NormalizedSpec, layers: readonly PlannedLayer[], base: BaseShape, baseLabel: string): void {
  const problems = [...belowBaseLinks(spec, layers, base.links, baseLabel), ...filesOntoBaseDirs(spec, layers, base.dirs, baseLabel)];
  if (problems.length > 0) throw new SpecError(problems);
}
