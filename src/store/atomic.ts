/**
 * The two file-system moves the store is built on: a unique temp name inside the store's own
 * tmp/ directory (same file system as the destination, so rename is atomic) and an atomic
 * replace (write temp, fsync, rename). A process killed at any instant leaves either the old
 * file or the new one, plus at worst a stray temp file that `sweepStaleTemps` removes later.
 */
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { processAlive } from '../util/process-alive.js';

/** Temp files older than this are from dead processes (no single write takes an hour). */
export const STALE_TEMP_MS = 60 * 60 * 1000;

/**
 * Who writes a temp file, in its name (`<pid>@<host>~`): a sweep removes one whose process on
 * this machine is gone at once, not an hour later (a build killed while writing a 100 MB layer
 * left 48 MB behind each time). A cache shared between machines keeps the age rule for theirs.
 */
export const TEMP_OWNER = `${process.pid}@${hostname()}~`;
const OWNED = /(?:^|\.)(\d+)@([^~/]+)~/;

function ownerGone(name: string): boolean {
  const m = OWNED.exec(name);
  return m !== null && m[2] === hostname() && !processAlive(Number(m[1]));
}

/** Temp files this process may be writing: what an interrupted command removes (removeLiveTempsSync). */
const live = new Set<string>();

/** Note `path` as a temp file being written, until `settledTemp`; returns it. */
export function liveTemp(path: string): string {
  live.add(path);
  return path;
}

/** `path` was renamed into place or removed: no longer this process's to clean up. */
export function settledTemp(path: string): void {
  live.delete(path);
}

/**
 * Remove every temp file still being written, at once: for a process about to exit on Ctrl-C or
 * SIGTERM, whose writes will never finish (a layer blob can be hundreds of megabytes, left in the
 * cache or beside a docker archive until the next build swept it). Returns how many went.
 */
export function removeLiveTempsSync(): number {
  let removed = 0;
  for (const path of live) {
    try {
      unlinkSync(path);
      removed++;
    } catch {
      // Renamed or removed meanwhile.
    }
  }
  live.clear();
  return removed;
}

export function tempPath(tmpDir: string, suffix = '.tmp'): string {
  return liveTemp(join(tmpDir, `${TEMP_OWNER}${randomBytes(8).toString('hex')}${suffix}`));
}

/** Replace `dest` with `data` (or its pieces, one after another) so that readers see the old bytes or the new, never a mix. */
export async function writeFileAtomic(tmpDir: string, dest: string, data: string | Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
  const tmp = tempPath(tmpDir);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    // A file handle's writeFile writes from where the last one ended.
    for await (const piece of typeof data === 'string' || data instanceof Uint8Array ? [data] : data) await fh.writeFile(piece);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlinkQuiet(tmp);
    settledTemp(tmp);
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, dest);
  } catch (e) {
    await unlinkQuiet(tmp);
    throw e;
  } finally {
    settledTemp(tmp);
  }
}

/**
 * Write a stamp (a record that a file was found good as it then was) into its folder, made if
 * need be. Only an optimisation: a stamp not written costs one more read of what it vouches for.
 */
export async function writeStamp(tmpDir: string, file: string, text: string): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeFileAtomic(tmpDir, file, text);
  } catch {
    // ignored
  }
}

export async function unlinkQuiet(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/**
 * Remove temp files left by killed processes: those whose owner (see TEMP_OWNER) is gone, and
 * any over an hour old. Races with other sweepers are harmless. Age is measured by ctime, not
 * mtime: a blob hard-linked from the store keeps the store's old mtime, but linking sets its
 * ctime to now, so a live writer's temp file is never taken for a stale one.
 */
export async function sweepStaleTemps(tmpDir: string, now = Date.now()): Promise<number> {
  let swept = 0;
  for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
    const p = join(tmpDir, name);
    try {
      const st = await stat(p);
      if (st.isFile() && (ownerGone(name) || now - st.ctimeMs > STALE_TEMP_MS)) {
        await unlink(p);
        swept++;
      }
    } catch {
      // Another process swept or committed it first.
    }
  }
  return swept;
}
