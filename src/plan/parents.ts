/**
 * Parent directories a layer needs but no entry of it defines. A tar entry for a directory
 * replaces that directory's owner and mode in the image, so an implied parent must not undo what
 * a lower layer set (a /tmp made 1777, an /app owned by the app user, a /bin -> usr/bin link): it
 * takes the metadata of the same directory in the plan's lower layers, unless one of them removed
 * it since. Where one left a symlink, the layer is refused: below a lower layer's symlink runtimes
 * differ (containerd's overlayfs snapshotter replaces the link with a directory; others write
 * through it), and a base's symlinks are refused the same way once the base is read
 * (run/base-links.ts). With a base image, whose directories the plan cannot see, an implied
 * parent that no lower layer of ours defines is left out, so the base's own directory stands.
 * Only on scratch does it become a plain 0755 root-owned directory.
 */
import { posix, sep } from 'node:path';
import type { Diagnostic } from '../errors.js';
import type { NormalizedLayer, NormalizedSpec } from '../spec/normalized.js';
import type { Candidate } from './candidates.js';
import { copyRoot } from './resolve-copy.js';
import { heldEntries } from './packed-layer.js';
import { imageRel, isUnchanged, type PlanEntry, type PlannedLayer } from './types.js';

type DirMeta = Pick<PlanEntry, 'mode' | 'uid' | 'gid'>;
/** A lower layer left a symlink there (to `target`, when that layer was listed). */
export interface Link {
  link: true;
  target: string | undefined;
}
export type Lower = DirMeta | Link;
const isLink = (l: Lower | undefined): l is Link => l !== undefined && 'link' in l;
/** A lower layer left a directory there. */
export const isDir = (l: Lower | undefined): l is DirMeta => l !== undefined && !('link' in l);

/** One empty set for every call that names no paths: an ordered listing asks once per entry (a default `new Set()` was 3 MB of a corpus plan's garbage). */
const NO_PATHS: ReadonlySet<string> = new Set();

/** The symlink a lower layer left at `path`, if it did. */
export function linkAt(lower: ReadonlyMap<string, Lower>, path: string): Link | undefined {
  const at = lower.get(path);
  return isLink(at) ? at : undefined;
}

/**
 * A copied directory entry (not one of `explicitDirs`, the spec's own `dirs:`, which replace a
 * link on purpose) landing on a lower layer's symlink, as a refusal. The caller leaves the entry
 * out: kept, it would stand over the link for the layers above, whose writes below it would go
 * unreported.
 */
export function copiedOntoLink(lower: ReadonlyMap<string, Lower>, e: Pick<PlanEntry, 'path' | 'type'>, explicitDirs: ReadonlySet<string> = NO_PATHS): ThroughLink | undefined {
  const link = e.type === 'dir' && !explicitDirs.has(e.path) ? linkAt(lower, e.path) : undefined;
  return link && { path: e.path, target: link.target, onto: true };
}

/** An implied parent where a lower layer left a symlink, or (`onto`) a copied directory landing on one. */
export interface ThroughLink {
  path: string;
  target: string | undefined;
  onto?: boolean;
}

/**
 * The paths below any of `links` (symlink paths), as a test: each path's parents are looked up
 * only while they lead toward a link, so the many directories beside a node_modules/.bin cost a
 * lookup or three each.
 */
function belowLinks(links: ReadonlySet<string>): (path: string) => boolean {
  const toward = new Set<string>();
  for (const link of links) for (let cut = link.indexOf('/'); cut > 0; cut = link.indexOf('/', cut + 1)) toward.add(link.slice(0, cut));
  return (path) => {
    for (let cut = path.indexOf('/'); cut > 0; cut = path.indexOf('/', cut + 1)) {
      const parent = path.slice(0, cut);
      if (links.has(parent)) return true;
      if (!toward.has(parent)) return false;
    }
    return false;
  };
}

/** Whether `path` or a directory it lies in is one of `paths` (a lookup per parent, not a scan of `paths`). */
export function atOrBelow(path: string, paths: ReadonlySet<string>): boolean {
  for (let at = path; ; at = at.slice(0, at.lastIndexOf('/'))) {
    if (paths.has(at)) return true;
    if (!at.includes('/')) return false;
  }
}

/** The symlinks a layer writes: its entries', or an unchanged layer's from its walk record. */
export const symlinksOf = (layer: PlannedLayer): string[] => (isUnchanged(layer) ? layer.links : heldEntries(layer).filter((e) => e.type === 'symlink').map((e) => e.path));

/** The paths a layer removes (`remove:`) or puts a symlink at: what lay at or below them is gone for the layers above. */
export const hiddenBy = (layer: PlannedLayer, own: NormalizedLayer): string[] => [...own.removes.map((r) => imageRel(r.path)), ...symlinksOf(layer)];

/**
 * Directories and symlinks as the lower layers leave them: a later layer overrides an earlier
 * one, and a whiteout deletes a path and all below it (first: a layer's own entries stand over it).
 * A symlink hides what was below its path as a whiteout would: a directory there is gone, even
 * once a layer above makes the path a directory again, and gives an implied parent or a copy's
 * destination nothing.
 */
export function lowerDirsAndLinks(lower: readonly PlannedLayer[]): Map<string, Lower> {
  const dirs = new Map<string, Lower>();
  for (const layer of lower) {
    const removed = isUnchanged(layer) ? layer.removed : heldEntries(layer).filter((e) => e.type === 'whiteout').map((e) => e.path);
    for (const path of removed) for (const dir of dirs.keys()) if (dir === path || dir.startsWith(`${path}/`)) dirs.delete(dir);
    const links = new Set(symlinksOf(layer));
    if (links.size > 0) {
      const hidden = belowLinks(links);
      for (const path of dirs.keys()) if (hidden(path)) dirs.delete(path);
    }
    for (const e of isUnchanged(layer) ? layer.dirs : heldEntries(layer)) {
      if (e.type === 'dir') dirs.set(e.path, { mode: e.mode, uid: e.uid, gid: e.gid });
      else if (e.type === 'symlink') dirs.set(e.path, { link: true, target: e.target });
    }
    if (isUnchanged(layer)) layer.links.forEach((path, k) => dirs.set(path, { link: true, target: layer.linkTargets[k] }));
  }
  return dirs;
}

/**
 * An implied parent takes a lower layer's directory's metadata. One where a lower layer left a
 * symlink (/bin -> usr/bin), or a copied directory landing on such a link (one not in
 * `explicitDirs`, the spec's own `dirs:`, which replace it on purpose), is added to
 * `throughLinks`, for the caller to refuse the layer.
 */
export function settleParents(entries: PlanEntry[], implied: ReadonlySet<string>, lower: ReadonlyMap<string, Lower>, onScratch: boolean, throughLinks: ThroughLink[], explicitDirs: ReadonlySet<string> = NO_PATHS): PlanEntry[] {
  const out: PlanEntry[] = [];
  for (const e of entries) {
    if (!implied.has(e.path)) {
      const onto = copiedOntoLink(lower, e, explicitDirs);
      if (onto) throughLinks.push(onto);
      else out.push(e);
      continue;
    }
    const below = lower.get(e.path);
    if (isLink(below)) throughLinks.push({ path: e.path, target: below.target });
    else if (below) out.push({ ...e, mode: below.mode, uid: below.uid, gid: below.gid });
    else if (onScratch) out.push(e);
  }
  return out;
}

/** Where `below` (a path under the symlink `link`, to `target`) is once the link is followed inside the image root. */
export function throughLink(link: string, target: string, below: string): string {
  const resolved = posix.normalize(target.startsWith('/') ? target : posix.join(posix.dirname(link), target)).replace(/^(\.\.\/|\/)+/, '');
  const joined = posix.join(resolved === '..' || resolved === '.' ? '' : resolved, below);
  return joined === '.' ? '/' : `/${joined}`.replace(/\/$/, '');
}

/**
 * Where `path` lands inside the image root once every symlink along it is followed (a link to a
 * link too; 40 hops at most, as the kernel): `targetOf` gives a link's target, or undefined where
 * there is no link (or its target is not known).
 */
export function followLinks(path: string, targetOf: (linkPath: string) => string | undefined): string {
  let at = path.replace(/^\/+/, '');
  for (let hop = 0; hop < 40; hop++) {
    const parts = at.split('/');
    const k = parts.findIndex((_, i) => targetOf(parts.slice(0, i + 1).join('/')) !== undefined);
    if (k < 0) break;
    const link = parts.slice(0, k + 1).join('/');
    at = throughLink(link, targetOf(link)!, parts.slice(k + 1).join('/')).replace(/^\/+/, '');
  }
  return `/${at}`;
}

/**
 * A directory copy's destination that a lower layer of ours left as a directory keeps that
 * directory's owner and mode, as `COPY` leaves an existing destination as it is: a /tmp made 1777
 * below stays 1777 when a layer copies `seed/` into it, and an /app owned by the app's user stays
 * its. Every other candidate is returned as it is. (The base's directories are known only once
 * the base is read: a build warns where a copy changes one, run/base-links.ts.)
 */
export function keepLowerDestination(c: Candidate, lower: ReadonlyMap<string, Lower>): Candidate {
  if (c.kind !== 'dir' || !c.destination) return c;
  const below = lower.get(c.path);
  return isDir(below) ? { ...c, mode: below.mode, uid: below.uid, gid: below.gid } : c;
}

/** The directories entries lie in that are not entries themselves: the deepest of each chain (their own parents follow from them). */
export function impliedDirs(entries: readonly PlanEntry[]): string[] {
  const held = new Set(entries.map((e) => e.path));
  const out = new Set<string>();
  for (const e of entries) {
    const cut = e.path.lastIndexOf('/');
    if (cut > 0 && !held.has(e.path.slice(0, cut))) out.add(e.path.slice(0, cut));
  }
  return [...out].sort();
}

/** The first file copied from the host whose path `isDir` says is a directory below it (see `fileOntoDir`). */
export function fileOnto(entries: Iterable<PlanEntry>, isDir: (path: string) => boolean): { path: string; abs: string } | undefined {
  for (const e of entries) if (e.type === 'file' && e.source.kind === 'path' && isDir(e.path)) return { path: e.path, abs: e.source.path };
  return undefined;
}

/**
 * The problem of a layer that copies a file onto what is a directory below it (`where`: in the
 * base, or in a layer of ours), placed at the copy that brings the file (`abs`, where it was
 * read): the first of the layer's copies whose source holds it.
 */
export function fileOntoDir(spec: NormalizedSpec, index: number, path: string, abs: string, where: string): Diagnostic {
  const layer = spec.layers[index]!;
  const j = layer.copies.findIndex((c) => {
    const root = copyRoot(c, spec.contextDir);
    return abs === root || abs.startsWith(root.endsWith(sep) ? root : root + sep);
  });
  return {
    position: j < 0 ? layer.at : layer.copies[j]!.at,
    message: `layer "${layer.name}" copies a file onto /${path}, which is ${where}: the file would replace the directory and all it holds`,
    hint: `to copy it into the directory, end the copy's \`to\` with "/" (/${path}/); to replace the directory, remove it in a layer below this one`,
    pointer: j < 0 ? `/layers/${index}` : `/layers/${index}/copy/${j}`,
  };
}
