/**
 * Bases and the lock together: `lockBases` resolves a spec's base for each platform and
 * records the digests (what `imgbuild lock` writes); `resolveBases` opens the bases for a build,
 * pinned by a fresh lock, refusing a lock that is missing or stale (with --locked) and a local
 * base whose bytes no longer match what was locked (with or without).
 */
import { dirname } from 'node:path';
import { ImgbuildError, usageError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import { formatPlatform } from '../image/platform.js';
import type { Image, Platform } from '../image/types.js';
import { describeBase } from '../plan/render.js';
import type { BaseRef } from '../plan/types.js';
import { NotFoundError } from '../registry/errors.js';
import { checkBaseLayers, openBase } from '../run/base.js';
import type { ContentStore } from '../store/content-store.js';
import { lockPathFor, pinnedDigest, readLock, staleness, type LockFile } from './lockfile.js';

export interface BaseRequest {
  specFile: string;
  base: BaseRef;
  platforms: readonly Platform[];
  store: ContentStore;
  insecure?: string[];
  /** Told what did not stop the build but makes it other than the lock says (a stale lock, without --locked). */
  warn?: (message: string) => void;
}

export async function lockBases(req: BaseRequest): Promise<LockFile> {
  const digests: Record<string, Digest> = {};
  for (const p of req.platforms) {
    const image = await openBase(req.base, p, { store: req.store, baseDir: dirname(req.specFile), ...(req.insecure ? { insecure: req.insecure } : {}) });
    if (image) digests[formatPlatform(p)] = await image.digest();
  }
  return { version: 1, base: { ref: describeBase(req.base), digests } };
}

async function usableLock(req: BaseRequest, locked: boolean): Promise<LockFile | undefined> {
  const file = lockPathFor(req.specFile);
  const lock = await readLock(file);
  const fix = `run \`imgbuild lock ${req.specFile}\` and commit ${file}`;
  if (!lock) {
    if (locked) throw usageError(`--locked: there is no lock file ${file}`, fix);
    return undefined;
  }
  const why = staleness(lock, req.base, req.platforms);
  if (why && locked) throw usageError(`--locked: ${file} is stale: ${why}`, fix);
  // Without --locked a stale lock pins nothing, so every platform's base is what its reference
  // names today: said, as only `plan` showed it.
  const now = req.base.kind === 'scratch' ? '' : `: the base is what ${describeBase(req.base)} names now`;
  if (why) req.warn?.(`${file} is stale (${why}), so it pins nothing${now}; ${fix}`);
  return why ? undefined : lock;
}

export async function resolveBases(req: BaseRequest, locked: boolean): Promise<(Image | undefined)[]> {
  // Even with nothing to open, --locked holds a scratch spec to its lock: a lock that pins
  // another base, or none, says the spec changed since it was locked.
  const lock = await usableLock(req, locked);
  if (req.base.kind === 'scratch') return req.platforms.map(() => undefined);
  return Promise.all(
    req.platforms.map(async (p) => {
      const pinned = pinnedDigest(lock, p);
      const image = await openBase(req.base, p, { store: req.store, baseDir: dirname(req.specFile), ...(pinned ? { pinned } : {}), ...(req.insecure ? { insecure: req.insecure } : {}) }).catch((e: unknown) => {
        // The digest came from the lock, not from the user: say so, and how to pin anew.
        if (!pinned || !(e instanceof NotFoundError) || e.missing !== 'manifest') throw e;
        const file = lockPathFor(req.specFile);
        throw new ImgbuildError('registry', `${e.message}: the base ${describeBase(req.base)} for ${formatPlatform(p)} is pinned to ${pinned} in ${file}, and the registry no longer has it`, `run \`imgbuild lock ${req.specFile}\` to pin what ${describeBase(req.base)} names now, and commit ${file}`);
      });
      // A registry base is fetched by its pin; a local one (oci:, docker-archive:) is read as it is
      // now, so one that changed since it was locked is refused with or without --locked: building
      // on it while the plan says the lock pins another digest would make an image the lock disowns.
      const actual = image && (await image.digest());
      if (pinned && actual !== pinned) {
        throw usageError(`${locked ? '--locked: ' : ''}the base ${describeBase(req.base)} for ${formatPlatform(p)} is ${actual}, but the lock pins ${pinned}`, `run \`imgbuild lock ${req.specFile}\` if the change is intended`);
      }
      if (image) await checkBaseLayers(image, req.store, describeBase(req.base));
      return image;
    }),
  );
}
