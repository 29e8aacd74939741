/**
 * A lock file that serialises the read-merge-replace of an OCI layout's index.json between
 * processes, so that eight builds adding eight tags at once leave all eight. The lock appears
 * whole (written aside, then hard-linked into place, which fails if it exists). A lock left by
 * a killed process is recognised (its pid is gone, or it is far older than any holder keeps it)
 * and broken under a second, short-lived lock, so two processes never break it at once.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { link, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { buildError } from '../errors.js';
import { processAlive } from '../util/process-alive.js';

interface LockOwner {
  pid: number;
  host: string;
  token: string;
}

/** A holder keeps the lock's mtime younger than this (withLayoutLock); one this old belongs to a process that was stopped. */
const STALE_AFTER_MS = 30_000;
const GIVE_UP_AFTER_MS = 120_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `fn` holding the lock. A holder keeps it young while `fn` runs (`heartbeatMs`): most hold
 * it for milliseconds, but one that puts back a blob another writer let go of (oci-layout.ts) may
 * copy a layer under it, and a lock judged stale while held would let a second writer in.
 */
export async function withLayoutLock<T>(lockPath: string, tmpDir: string, fn: () => Promise<T>, heartbeatMs = STALE_AFTER_MS / 3): Promise<T> {
  const token = await acquire(lockPath, tmpDir);
  const beat = setInterval(() => {
    const now = new Date();
    void utimes(lockPath, now, now).catch(() => undefined);
  }, heartbeatMs);
  beat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(beat);
    await release(lockPath, token);
  }
}

async function acquire(lockPath: string, tmpDir: string): Promise<string> {
  const owner: LockOwner = { pid: process.pid, host: hostname(), token: randomBytes(12).toString('hex') };
  const aside = `${tmpDir}/lock.${owner.token}`;
  await writeFile(aside, JSON.stringify(owner));
  const start = Date.now();
  try {
    for (let attempt = 0; ; attempt++) {
      // The lock's age is its file's mtime: make it "now" at the moment it is taken, not when
      // this process started waiting, or others could judge a fresh lock stale.
      const now = new Date();
      await utimes(aside, now, now);
      if (await tryLink(aside, lockPath)) return owner.token;
      await breakIfStale(lockPath);
      if (Date.now() - start > GIVE_UP_AFTER_MS) {
        throw buildError(`could not lock ${lockPath}: another imgbuild process holds it`, `if none is running, delete ${lockPath}`);
      }
      await sleep(Math.min(200, 5 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random()));
    }
  } finally {
    await unlink(aside).catch(() => undefined);
  }
}

async function tryLink(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

async function readOwner(lockPath: string): Promise<{ owner?: LockOwner; ageMs: number } | undefined> {
  try {
    const [text, st] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath)]);
    let owner: LockOwner | undefined;
    try {
      owner = JSON.parse(text) as LockOwner;
    } catch {
      owner = undefined;
    }
    return { owner, ageMs: Date.now() - st.mtimeMs };
  } catch {
    return undefined; // released meanwhile
  }
}

function isStale(info: { owner?: LockOwner; ageMs: number }): boolean {
  if (info.ageMs > STALE_AFTER_MS) return true;
  const o = info.owner;
  return o !== undefined && o.host === hostname() && !processAlive(o.pid);
}

// Only the holder of `<lock>.break` may delete someone else's lock, and it deletes it only if it
// is still the very lock judged stale; a breaker killed in this short window leaves a break lock
// that ages out.
async function breakIfStale(lockPath: string): Promise<void> {
  const seen = await readOwner(lockPath);
  if (!seen || !isStale(seen)) return;
  const breakPath = `${lockPath}.break`;
  try {
    await writeFile(breakPath, String(process.pid), { flag: 'wx' });
  } catch {
    const held = await stat(breakPath).catch(() => undefined);
    if (held && Date.now() - held.mtimeMs > STALE_AFTER_MS) await unlink(breakPath).catch(() => undefined);
    return;
  }
  try {
    const again = await readOwner(lockPath);
    if (again && isStale(again) && again.owner?.token === seen.owner?.token) await unlink(lockPath).catch(() => undefined);
  } finally {
    await unlink(breakPath).catch(() => undefined);
  }
}

async function release(lockPath: string, token: string): Promise<void> {
  const info = await readOwner(lockPath);
  if (info?.owner?.token === token) await unlink(lockPath).catch(() => undefined);
}
