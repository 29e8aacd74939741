/**
 * Writing below a symlink of the base image. An entry `bin/tool` on a base whose `/bin` is a link
 * to `usr/bin` (every merged-/usr distribution) has no one meaning: an unpacker that resolves
 * parents inside the root (umoci, containerd's native snapshotter) writes `usr/bin/tool`, while
 * containerd's overlayfs snapshotter, the default under Docker and Kubernetes, makes `/bin` a
 * directory holding only `tool`, hiding the link and `/bin/sh` with it. So a build refuses a
 * layer that writes below a base's symlink that no layer of ours has replaced or removed, and
 * names the path to write instead. (Our own layers' symlinks are the plan's business: parents.ts.)
 */
import { posix } from 'node:path';
import { SpecError, type Diagnostic } from '../errors.js';
import type { NormalizedLayer, NormalizedSpec } from '../spec/normalized.js';
import { throughLink } from '../plan/parents.js';
import { isUnchanged, type PlannedLayer } from '../plan/types.js';

const rel = (imagePath: string) => imagePath.replace(/^\/+/, '');

/** The image paths a layer may write, to look for a link above: its entries, or (unchanged, so unlisted) what its spec names. */
function probes(layer: PlannedLayer, spec: NormalizedLayer): string[] {
  if (!isUnchanged(layer)) return layer.entries.map((e) => e.path);
  // A copy writes at or below its destination; "x" stands for what lies below.
  return [
    ...spec.copies.map((c) => posix.join(rel(c.to), c.toDir ? 'x' : '')),
    ...spec.files.map((f) => rel(f.path)),
    ...spec.dirs.map((d) => rel(d.path)),
    ...spec.symlinks.map((s) => rel(s.path)),
    ...spec.removes.map((r) => rel(r.path)),
  ];
}

/** The directories and links a layer sets itself (which stand over a base's link), and the paths it removes. */
function replaced(layer: PlannedLayer): { set: string[]; removed: string[] } {
  if (isUnchanged(layer)) return { set: [...layer.dirs.map((d) => d.path), ...layer.links], removed: layer.removed };
  const set: string[] = [];
  const removed: string[] = [];
  for (const e of layer.entries) {
    if (e.type === 'dir' || e.type === 'symlink') set.push(e.path);
    else if (e.type === 'whiteout') removed.push(e.path);
  }
  return { set, removed };
}

/** A problem for every layer that writes below a symlink `links` holds (path -> target, the base's), none when there is none. */
export function belowBaseLinks(spec: NormalizedSpec, layers: readonly PlannedLayer[], links: ReadonlyMap<string, string>, baseLabel: string): Diagnostic[] {
  if (links.size === 0) return [];
  const standing = new Set<string>();
  const removed: string[] = [];
  const problems: Diagnostic[] = [];
  layers.forEach((layer, i) => {
    const own = replaced(layer);
    for (const p of own.set) standing.add(p);
    removed.push(...own.removed);
    const cleared = (p: string) => standing.has(p) || removed.some((r) => p === r || p.startsWith(`${r}/`));
    const seen = new Set<string>();
    for (const path of probes(layer, spec.layers[i]!)) {
      // Each parent directory once: a node_modules layer has thousands of files in a few hundred.
      const parent = posix.dirname(path);
      if (parent === '.' || seen.has(parent)) continue;
      seen.add(parent);
      for (let cut = parent.indexOf('/'); ; cut = parent.indexOf('/', cut + 1)) {
        const p = cut === -1 ? parent : parent.slice(0, cut);
        const target = links.get(p);
        if (target !== undefined && !cleared(p)) {
          const instead = throughLink(p, target, path.slice(p.length + 1));
          problems.push({
            position: spec.layers[i]!.at,
            message: `layer "${layer.name}" writes /${path} below /${p}, which is a symlink to ${target} in the base image ${baseLabel}`,
            hint: `write to ${instead} instead: below a base's symlink, runtimes differ (containerd's overlayfs snapshotter, Docker's and Kubernetes' default, replaces the link with a directory)`,
            pointer: `/layers/${i}`,
          });
          return;
        }
        if (cut === -1) break;
      }
    }
  });
  return problems;
}

/** Throws the problems of `belowBaseLinks` as one spec error. */
export function refuseBelowBaseLinks(spec: NormalizedSpec, layers: readonly PlannedLayer[], links: ReadonlyMap<string, string>, baseLabel: string): void {
  const problems = belowBaseLinks(spec, layers, links, baseLabel);
  if (problems.length > 0) throw new SpecError(problems);
}
