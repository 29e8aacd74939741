/**
 * Walking a directory of the build context: every entry below it with its lstat, pruned by
 * exclude globs, never following a symlink. The order of readdir never matters (the plan sorts
 * entries bytewise later), so the result is the same on every file system.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BigIntStats } from 'node:fs';

export interface WalkedEntry {
  /** Path relative to the walk's root, "/"-separated. */
  rel: string;
  abs: string;
  st: BigIntStats;
}

export type PathFilter = (rel: string) => boolean;

async function lstatOrUndefined(abs: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(abs, { bigint: true });
  } catch (e) {
    // Vanished between readdir and lstat (a live file system): it is simply not there now.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function readdirOrEmpty(abs: string): Promise<string[]> {
  try {
    return await readdir(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}

/** All entries below `root` (not `root` itself); `excluded` prunes a path and all below it. */
export async function walkTree(root: string, excluded: PathFilter): Promise<WalkedEntry[]> {
  const out: WalkedEntry[] = [];
  const pending: string[] = [''];
  while (pending.length > 0) {
    const dirRel = pending.pop()!;
    const names = await readdirOrEmpty(join(root, dirRel));
    const stats = await Promise.all(names.map((n) => lstatOrUndefined(join(root, dirRel, n))));
    names.forEach((name, i) => {
      const st = stats[i];
      const rel = dirRel ? `${dirRel}/${name}` : name;
      if (!st || excluded(rel)) return;
      out.push({ rel, abs: join(root, rel), st });
      if (st.isDirectory()) pending.push(rel);
    });
  }
  return out;
}
