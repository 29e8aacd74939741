/**
 * Walking a directory of the build context: every entry below it with its lstat, pruned by
 * exclude globs, never following a symlink. The order of readdir never matters (the plan sorts
 * entries bytewise later), so the result is the same on every file system.
 *
 * The walk uses synchronous calls on purpose: a no-op build stats every file of the context
 * (tens of thousands for a node_modules), and one promise and thread-pool round trip per file
 * costs more than the system call itself. Nothing else runs while a plan is being made.
 */
import { lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';

export interface WalkedEntry {
  /** Path relative to the walk's root, "/"-separated. */
  rel: string;
  abs: string;
  st: BigIntStats;
}

export type PathFilter = (rel: string) => boolean;

const GONE = new Set(['ENOENT', 'ENOTDIR']);

function lstatOrUndefined(abs: string): BigIntStats | undefined {
  // Vanished between readdir and lstat (a live file system): it is simply not there now.
  return lstatSync(abs, { bigint: true, throwIfNoEntry: false });
}

function readdirOrEmpty(abs: string): string[] {
  try {
    return readdirSync(abs);
  } catch (e) {
    if (GONE.has((e as NodeJS.ErrnoException).code ?? '')) return [];
    throw e;
  }
}

/** All entries below `root` (not `root` itself); `excluded` prunes a path and all below it. */
export async function walkTree(root: string, excluded: PathFilter): Promise<WalkedEntry[]> {
  const out: WalkedEntry[] = [];
  const pending: string[] = [''];
  while (pending.length > 0) {
    const dirRel = pending.pop()!;
    const dirAbs = dirRel ? join(root, dirRel) : root;
    for (const name of readdirOrEmpty(dirAbs)) {
      const rel = dirRel ? `${dirRel}/${name}` : name;
      if (excluded(rel)) continue;
      const abs = `${dirAbs}/${name}`;
      const st = lstatOrUndefined(abs);
      if (!st) continue;
      out.push({ rel, abs, st });
      if (st.isDirectory()) pending.push(rel);
    }
  }
  return out;
}
