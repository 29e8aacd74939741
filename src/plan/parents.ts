/**
 * Parent directories a layer needs but no entry of it defines. A tar entry for a directory
 * replaces that directory's owner and mode in the image, so an implied parent must not undo what
 * a lower layer set (a /tmp made 1777, an /app owned by the app user): it takes the metadata of
 * the same directory in the plan's lower layers, unless one of them removed it since. With a base image, whose directories the plan
 * cannot see, an implied parent that no lower layer of ours defines is left out, so the base's own
 * directory stands. Only on scratch does it become a plain 0755 root-owned directory.
 */
import { isUnchanged, type PlanEntry, type PlannedLayer } from './types.js';

type DirMeta = Pick<PlanEntry, 'mode' | 'uid' | 'gid'>;

/**
 * Directory metadata as the lower layers leave it: a later layer overrides an earlier one, and a
 * whiteout deletes a directory and all below it (first: a layer's own entries stand over it).
 */
export function lowerDirs(lower: readonly PlannedLayer[]): Map<string, DirMeta> {
  const dirs = new Map<string, DirMeta>();
  for (const layer of lower) {
    const removed = isUnchanged(layer) ? layer.removed : layer.entries.filter((e) => e.type === 'whiteout').map((e) => e.path);
    for (const path of removed) for (const dir of dirs.keys()) if (dir === path || dir.startsWith(`${path}/`)) dirs.delete(dir);
    for (const e of isUnchanged(layer) ? layer.dirs : layer.entries) if (e.type === 'dir') dirs.set(e.path, { mode: e.mode, uid: e.uid, gid: e.gid });
  }
  return dirs;
}

export function settleParents(entries: PlanEntry[], implied: ReadonlySet<string>, lower: ReadonlyMap<string, DirMeta>, onScratch: boolean): PlanEntry[] {
  const out: PlanEntry[] = [];
  for (const e of entries) {
    if (!implied.has(e.path)) out.push(e);
    else if (lower.has(e.path)) out.push({ ...e, ...lower.get(e.path)! });
    else if (onScratch) out.push(e);
  }
  return out;
}
