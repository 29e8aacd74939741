import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLock, writeLock, type LockFile } from '../../src/lock/lockfile.js';
import { sha256 } from '../../src/image/digest.js';

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

describe('writeLock', () => {
  it('writes the lock beside the spec, its header naming the spec as spelled (.yml too), and reads back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgbuild-lock-'));
    const lock: LockFile = { version: 1, base: { ref: 'r/x:1', digests: { 'linux/amd64': sha256('base') } } };
    await writeLock(join(dir, 'app.yml'), lock);
    const text = readFileSync(join(dir, 'app.lock'), 'utf8');
    expect(text.split('\n')[0]).toBe('# Written by `imgbuild lock`: the exact base image of app.yml, per platform.');
    expect(await readLock(join(dir, 'app.lock'))).toEqual(lock);
  });
});
