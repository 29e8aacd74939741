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
import { posix } from 'node:path';
import { isUnchanged, type PlanEntry, type PlannedLayer } from './types.js';

type DirMeta = Pick<PlanEntry, 'mode' | 'uid' | 'gid'>;
/** A lower layer left a symlink there (to `target`, when that layer was listed). */
interface Link {
  link: true;
  target: string | undefined;
}
type Lower = DirMeta | Link;
const isLink = (l: Lower | undefined): l is Link => l !== undefined && 'link' in l;

/** An implied parent where a lower layer left a symlink. */
export interface ThroughLink {
  path: string;
  target: string | undefined;
}

/**
 * Directories and symlinks as the lower layers leave them: a later layer overrides an earlier
 * one, and a whiteout deletes a path and all below it (first: a layer's own entries stand over it).
 */
export function lowerDirsAndLinks(lower: readonly PlannedLayer[]): Map<string, Lower> {
  const dirs = new Map<string, Lower>();
  for (const layer of lower) {
    const removed = isUnchanged(layer) ? layer.removed : layer.entries.filter((e) => e.type === 'whiteout').map((e) => e.path);
    for (const path of removed) for (const dir of dirs.keys()) if (dir === path || dir.startsWith(`${path}/`)) dirs.delete(dir);
    for (const e of isUnchanged(layer) ? layer.dirs : layer.entries) {
      if (e.type === 'dir') dirs.set(e.path, { mode: e.mode, uid: e.uid, gid: e.gid });
      else if (e.type === 'symlink') dirs.set(e.path, { link: true, target: e.target });
    }
    if (isUnchanged(layer)) for (const path of layer.links) dirs.set(path, { link: true, target: undefined });
  }
  return dirs;
}

/**
 * An implied parent takes a lower layer's directory's metadata. One where a lower layer left a
 * symlink (/bin -> usr/bin) is added to `throughLinks`, for the caller to refuse the layer.
 */
export function settleParents(entries: PlanEntry[], implied: ReadonlySet<string>, lower: ReadonlyMap<string, Lower>, onScratch: boolean, throughLinks: ThroughLink[]): PlanEntry[] {
  const out: PlanEntry[] = [];
  for (const e of entries) {
    const below = implied.has(e.path) ? lower.get(e.path) : undefined;
    if (!implied.has(e.path)) out.push(e);
    else if (isLink(below)) throughLinks.push({ path: e.path, target: below.target });
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
