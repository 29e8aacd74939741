/** Bases: a pinned registry base found whole in the store is checked for its platform, as one pulled is. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openBase } from '../../src/run/base.js';
import { ContentStore } from '../../src/store/content-store.js';
import { randomImage } from '../helpers/random-image.js';

const dir = mkdtempSync(join(tmpdir(), 'imgbuild-base-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('openBase, pinned, from the store alone', () => {
  it('opens the pinned image for its own platform, and refuses it for another (a lock whose digests were swapped)', async () => {
    const store = await ContentStore.open(join(dir, 'cache'));
    const image = await randomImage({ seed: 'pinned', layers: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    for (const l of image.newLayers) await store.putBytes(l.blob);
    await store.putBytes(await image.rawConfig());
    const digest = await store.putBytes(await image.rawManifest());
    // No registry listens here: only the store can answer.
    const base = { kind: 'registry', ref: '127.0.0.1:9/nowhere/base:1' } as const;
    const opts = { store, baseDir: dir, pinned: digest };
    expect(await (await openBase(base, { os: 'linux', architecture: 'arm64' }, opts))!.digest()).toBe(digest);
    await expect(openBase(base, { os: 'linux', architecture: 'amd64' }, opts)).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('is linux/arm64/v8, not linux/amd64') });
  });
});
