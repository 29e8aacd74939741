/** `--locked` holds a scratch spec to its lock too: nothing to pin, but the lock must say scratch. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockBases, resolveBases } from '../../src/lock/bases.js';
import { lockPathFor, writeLock } from '../../src/lock/lockfile.js';
import { ContentStore } from '../../src/store/content-store.js';

const dir = mkdtempSync(join(tmpdir(), 'imgbuild-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resolveBases on scratch', () => {
  it('with --locked, refuses a missing lock and one that pins another base, and takes its own', async () => {
    const req = { specFile: join(dir, 'image.yaml'), base: { kind: 'scratch' } as const, platforms: [{ os: 'linux', architecture: 'amd64' }], store: await ContentStore.open(join(dir, 'cache')) };
    expect(await resolveBases(req, false)).toEqual([undefined]);
    await expect(resolveBases(req, true)).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('there is no lock file') });
    await writeLock(lockPathFor(req.specFile), { version: 1, base: { ref: '127.0.0.1:5000/base:1', digests: {} } });
    await expect(resolveBases(req, true)).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('is stale') });
    await writeLock(lockPathFor(req.specFile), await lockBases(req));
    expect(await resolveBases(req, true)).toEqual([undefined]);
  });
});
