/**
 * image.lock: the exact base image of a spec, one manifest digest per platform, written by
 * `imgbuild lock` next to the spec and committed, so a build months later uses the same bytes
 * and a PR that moves a base shows the digest change in its diff. A lock is stale when it names
 * another base reference or lacks a platform the spec builds.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { usageError } from '../errors.js';
import { isDigest, type Digest } from '../image/digest.js';
import { formatPlatform } from '../image/platform.js';
import type { Platform } from '../image/types.js';
import { describeBase } from '../plan/render.js';
import type { BaseRef } from '../plan/types.js';
import { writeFileAtomic } from '../store/atomic.js';

export interface LockFile {
  version: 1;
  base: { ref: string; digests: Record<string, Digest> };
}

export function lockPathFor(specFile: string): string {
  return join(dirname(specFile), `${basename(specFile).replace(/\.ya?ml$/, '')}.lock`);
}

function parseLock(text: string, file: string): LockFile {
  const bad = (why: string) => usageError(`${file} is not a valid lock file: ${why}`, 'delete it and run `imgbuild lock` again');
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw bad((e as Error).message.split('\n')[0]!);
  }
  const d = doc as Partial<LockFile> | null;
  if (!d || d.version !== 1) throw bad('unknown version');
  if (!d.base || typeof d.base.ref !== 'string' || typeof d.base.digests !== 'object' || d.base.digests === null || Array.isArray(d.base.digests)) throw bad('no base');
  for (const [p, dg] of Object.entries(d.base.digests)) if (typeof dg !== 'string' || !isDigest(dg)) throw bad(`digest of ${p} is not a sha256 digest`);
  return d as LockFile;
}

export async function readLock(file: string): Promise<LockFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return parseLock(text, file);
}

/** Write the lock of `specFile` beside it (lockPathFor); its header names the spec as it is spelled (.yaml or .yml). */
export async function writeLock(specFile: string, lock: LockFile): Promise<void> {
  const file = lockPathFor(specFile);
  const header = `# Written by \`imgbuild lock\`: the exact base image of ${basename(specFile)}, per platform.\n# Commit it; \`imgbuild apply --locked\` fails when it is missing or stale.\n`;
  await writeFileAtomic(dirname(file), file, header + stringify(lock));
}

/** Why the lock does not fit the spec (undefined: it fits). */
export function staleness(lock: LockFile, base: BaseRef, platforms: readonly Platform[]): string | undefined {
  const ref = describeBase(base);
  if (lock.base.ref !== ref) return `it pins ${lock.base.ref}, but the spec's base is ${ref}`;
  // Scratch has no image to pin: its lock says only that the base is scratch.
  if (base.kind === 'scratch') return undefined;
  const built = platforms.map(formatPlatform);
  const missing = built.filter((p) => !lock.base.digests[p]);
  if (missing.length > 0) return `it has no digest for ${missing.join(', ')}`;
  // A lock is what \`imgbuild lock\` writes for the spec now: pins for a platform the spec no
  // longer builds say that the change that dropped it forgot the lock.
  const unbuilt = Object.keys(lock.base.digests).filter((p) => !built.includes(p));
  if (unbuilt.length > 0) return `it pins ${unbuilt.join(', ')}, which the spec does not build`;
  return undefined;
}

export function pinnedDigest(lock: LockFile | undefined, platform: Platform): Digest | undefined {
  return lock?.base.digests[formatPlatform(platform)];
}
