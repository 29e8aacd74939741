/**
 * The "racily clean" guard: a rewrite to the same size within one timestamp tick leaves size,
 * mtime and ctime as they were, so only a second read can tell. Here the file is overwritten in
 * place from inside the stream, microseconds after it was written: whether or not the kernel
 * gave it a new timestamp, the stream must end in FileChangedError, never in torn bytes.
 */
import { openSync, closeSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileChangedError, isRacy, openRegular, streamStable } from '../../src/layer/stable-read.js';
import { tempDir } from './fixtures.js';

describe('racily clean files', () => {
  it('counts a file modified within the last moment as racy, and an older one not', () => {
    const now = Date.now();
    const st = (ms: number) => ({ mtimeNs: BigInt(ms) * 1_000_000n, ctimeNs: BigInt(ms) * 1_000_000n }) as never;
    expect(isRacy(st(now - 10), now)).toBe(true);
    expect(isRacy(st(now - 5000), now)).toBe(false);
  });

  it('refuses a streamed file rewritten in place to the same size while it was read', async () => {
    const d = tempDir();
    try {
      const path = join(d.path, 'big.bin');
      const size = 3 * (1 << 20);
      writeFileSync(path, Buffer.alloc(size, 'a'));
      const file = await openRegular(path);
      let first = true;
      const stream = streamStable(file, () => {
        if (!first) return;
        first = false;
        const fd = openSync(path, 'r+');
        writeSync(fd, Buffer.alloc(size, 'b'), 0, size, 0);
        closeSync(fd);
      });
      await expect(stream).rejects.toBeInstanceOf(FileChangedError);
    } finally {
      d.cleanup();
    }
  });
});
