/**
 * `--locked` holds a scratch spec to its lock too: nothing to pin, but the lock must say scratch.
 * A pinned registry base the registry no longer has is said to be the lock's pin. A local base
 * that changed since it was locked is refused, with or without --locked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Digest } from '../../src/image/digest.js';
import { lockBases, resolveBases } from '../../src/lock/bases.js';
import { lockPathFor, writeLock } from '../../src/lock/lockfile.js';
import { writeOciLayout } from '../../src/output/oci-layout.js';
import { pushImage } from '../../src/registry/push.js';
import { parseRef } from '../../src/registry/reference.js';
import { ContentStore } from '../../src/store/content-store.js';
import { pruneCache } from '../../src/store/prune.js';
import { startRegistry } from '../helpers/registry.js';
import { missingTools } from '../helpers/tools.js';
import { memImage, memLayer } from '../registry/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'imgbuild-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resolveBases on scratch', () => {
  it('with --locked, refuses a missing lock and one that pins another base, and takes its own', async () => {
    const req = { specFile: join(dir, 'image.yaml'), base: { kind: 'scratch' } as const, platforms: [{ os: 'linux', architecture: 'amd64' }], store: await ContentStore.open(join(dir, 'cache')) };
    expect(await resolveBases(req, false)).toEqual([undefined]);
    await expect(resolveBases(req, true)).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('there is no lock file') });
    await writeLock(req.specFile, { version: 1, base: { ref: '127.0.0.1:5000/base:1', digests: {} } });
    await expect(resolveBases(req, true)).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('is stale') });
    await writeLock(req.specFile, await lockBases(req));
    expect(await resolveBases(req, true)).toEqual([undefined]);
  });

  it('without --locked, says that a stale lock pins nothing (and a fresh or missing one says nothing)', async () => {
    const specFile = join(dir, 'warned.yaml');
    const warnings: string[] = [];
    const req = { specFile, base: { kind: 'scratch' } as const, platforms: [{ os: 'linux', architecture: 'amd64' }], store: await ContentStore.open(join(dir, 'cache')), warn: (m: string) => warnings.push(m) };
    await resolveBases(req, false);
    await writeLock(specFile, await lockBases(req));
    await resolveBases(req, false);
    expect(warnings).toEqual([]);
    await writeLock(specFile, { version: 1, base: { ref: '127.0.0.1:5000/base:1', digests: {} } });
    expect(await resolveBases(req, false)).toEqual([undefined]);
    expect(warnings).toEqual([
      `${join(dir, 'warned.lock')} is stale (it pins 127.0.0.1:5000/base:1, but the spec's base is scratch), so it pins nothing; run \`imgbuild lock ${specFile}\` and commit ${join(dir, 'warned.lock')}`,
    ]);
  });
});

describe('resolveBases on a local base', () => {
  it('refuses a layout whose tag moved since the lock, without --locked too (the plan says the lock pins it)', async () => {
    const layout = join(dir, 'layout');
    await writeOciLayout(layout, { image: await memImage([await memLayer('v1')]) }, ['1']);
    const specFile = join(dir, 'local.yaml');
    const base = { kind: 'oci', path: './layout', tag: '1' } as const;
    const req = { specFile, base, platforms: [{ os: 'linux', architecture: 'amd64' }], store: await ContentStore.open(join(dir, 'cache-local')) };
    const lock = await lockBases(req);
    await writeLock(specFile, lock);
    const pinned = lock.base.digests['linux/amd64']!;
    expect(await Promise.all((await resolveBases(req, false)).map((i) => i!.digest()))).toEqual([pinned]);
    const moved = await memImage([await memLayer('v2')]);
    await writeOciLayout(layout, { image: moved }, ['1']);
    const refusal = { kind: 'usage', message: `the base oci:./layout:1 for linux/amd64 is ${await moved.digest()}, but the lock pins ${pinned}`, hint: `run \`imgbuild lock ${specFile}\` if the change is intended` };
    await expect(resolveBases(req, false)).rejects.toMatchObject(refusal);
    await expect(resolveBases(req, true)).rejects.toMatchObject({ ...refusal, message: `--locked: ${refusal.message}` });
  });
});

describe('resolveBases with a lock that pins a platform the spec does not build', () => {
  it('refuses it under --locked, as stale, and without builds on the base as it is, saying the lock is stale', async () => {
    const layout = join(dir, 'layout-extra');
    await writeOciLayout(layout, { image: await memImage([await memLayer('x1')]) }, ['1']);
    const specFile = join(dir, 'extra.yaml');
    const warnings: string[] = [];
    const req = { specFile, base: { kind: 'oci', path: './layout-extra', tag: '1' } as const, platforms: [{ os: 'linux', architecture: 'amd64' }], store: await ContentStore.open(join(dir, 'cache-extra')), warn: (m: string) => warnings.push(m) };
    const lock = await lockBases(req);
    await writeLock(specFile, { ...lock, base: { ...lock.base, digests: { ...lock.base.digests, 'linux/s390x': `sha256:${'c'.repeat(64)}` as Digest } } });
    await expect(resolveBases(req, true)).rejects.toMatchObject({ kind: 'usage', message: `--locked: ${lockPathFor(specFile)} is stale: it pins linux/s390x, which the spec does not build` });
    expect(await Promise.all((await resolveBases(req, false)).map((i) => i!.digest()))).toEqual([lock.base.digests['linux/amd64']]);
    expect(warnings).toEqual([expect.stringContaining('is stale (it pins linux/s390x, which the spec does not build), so it pins nothing')]);
  });
});

describe.skipIf(missingTools('docker-registry').length > 0)('resolveBases on a registry base', () => {
  it('fetches again a layer of a pinned base opened from the cache that `cache prune` took since (a watch session reuses the base)', async () => {
    const reg = await startRegistry();
    try {
      const pushed = await memImage([await memLayer('pruned-base')]);
      await pushImage(parseRef(`${reg.host}/base:1`), pushed, [], {});
      const specFile = join(dir, 'pruned.yaml');
      const base = { kind: 'registry', ref: `${reg.host}/base:1` } as const;
      const cache = join(dir, 'cache-pruned');
      const req = { specFile, base, platforms: [{ os: 'linux', architecture: 'amd64' }], store: await ContentStore.open(cache) };
      await writeLock(specFile, await lockBases(req));
      await resolveBases(req, true);
      // Every blob in the cache now: opened from it alone.
      const [image] = await resolveBases(req, true);
      await pruneCache(cache, { olderThanMs: 0 });
      const layer = (await image!.layers())[0]!;
      const bytes = Buffer.concat(await (await layer.compressed()).toArray());
      expect(bytes.byteLength).toBe(await layer.size());
      expect(await req.store.has(await layer.digest())).toBe(true);
    } finally {
      await reg.stop();
    }
  });

  it('says a pinned digest the registry no longer has is the lock\'s pin, and how to pin anew', async () => {
    const reg = await startRegistry();
    try {
      await pushImage(parseRef(`${reg.host}/base:1`), await memImage([await memLayer('base')]), [], {});
      const specFile = join(dir, 'pinned.yaml');
      const base = { kind: 'registry', ref: `${reg.host}/base:1` } as const;
      const req = { specFile, base, platforms: [{ os: 'linux', architecture: 'amd64' }], store: await ContentStore.open(join(dir, 'cache-pinned')) };
      const gone = `sha256:${'b'.repeat(64)}` as Digest;
      await writeLock(specFile, { version: 1, base: { ref: base.ref, digests: { 'linux/amd64': gone } } });
      await expect(resolveBases(req, true)).rejects.toMatchObject({
        kind: 'registry',
        message: expect.stringContaining(`the base ${base.ref} for linux/amd64 is pinned to ${gone} in ${lockPathFor(specFile)}, and the registry no longer has it`),
        hint: `run \`imgbuild lock ${specFile}\` to pin what ${base.ref} names now, and commit ${lockPathFor(specFile)}`,
      });
    } finally {
      await reg.stop();
    }
  });
});
