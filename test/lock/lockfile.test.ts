import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLock } from '../../src/lock/lockfile.js';

describe('readLock', () => {
  it.each([
    ['no digests', 'version: 1\nbase:\n  ref: r/x:1\n  digests:\n'],
    ['a list of digests', 'version: 1\nbase:\n  ref: r/x:1\n  digests: [sha256:00]\n'],
    ['no base', 'version: 1\n'],
  ])('refuses a lock file with %s as a usage error, not an internal one', async (_what, text) => {
    const file = join(mkdtempSync(join(tmpdir(), 'imgbuild-lock-')), 'image.lock');
    writeFileSync(file, text);
    await expect(readLock(file)).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('is not a valid lock file') });
  });
});
