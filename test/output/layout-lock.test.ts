/** The layout lock stays young while its holder works: a long hold is never taken for a stopped process's. */
import { mkdtemp, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { withLayoutLock } from '../../src/output/layout-lock.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('the layout lock', () => {
  it('is touched while held, so its age never reaches the stale threshold, and is gone once released', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imgbuild-lock-'));
    dirs.push(dir);
    const lock = join(dir, 'index.lock');
    const ages = await withLayoutLock(lock, dir, async () => {
      // As if the holder had been at it for ten minutes.
      const longAgo = new Date(Date.now() - 10 * 60_000);
      await utimes(lock, longAgo, longAgo);
      const before = Date.now() - (await stat(lock)).mtimeMs;
      await sleep(150);
      return [before, Date.now() - (await stat(lock)).mtimeMs];
    }, 20);
    expect(ages[0]).toBeGreaterThan(9 * 60_000);
    expect(ages[1]).toBeLessThan(1000);
    await expect(stat(lock)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
