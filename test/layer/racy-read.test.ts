/**
 * The "racily clean" guard: a file modified a moment ago may be mid-write, or be rewritten to the
 * same size within one timestamp tick (invisible to fstat), so it is not read until it is older.
 */
import { openSync, closeSync, linkSync, statSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileChangedError, FIRST_READ, isRacy, openRegular, readSmallSync, readStable, Scratch, streamStable } from '../../src/layer/stable-read.js';
import { sha256 } from '../../src/image/digest.js';
import { heldStill, testDir } from './fixtures.js';

describe('racily clean files', () => {
  it('counts a file modified within the last moment as racy, and an older one not', () => {
    const now = Date.now();
    const st = (ms: number) => ({ mtimeMs: ms, ctimeMs: ms });
    expect(isRacy(st(now - 10), now)).toBe(true);
    expect(isRacy(st(now - 5000), now)).toBe(false);
    // Stamped in the future (clock skew): never racy, or it would be waited for forever.
    expect(isRacy(st(now + 3_600_000), now)).toBe(false);
  });

  it('does not read a file written a moment ago until it has held still for a while', async () => {
    const d = testDir();
    const path = join(d.path, 'fresh.txt');
    writeFileSync(path, 'first');
    expect(readSmallSync(path, 1 << 20)).toBeUndefined();
    const r = await readStable(path);
    expect(r.kind === 'bytes' && r.bytes.toString()).toBe('first');
    expect(isRacy(r.kind === 'bytes' ? r.stat : (undefined as never))).toBe(false);
  });

  it('trusts the fast read by the change time, which a writer cannot put back as it can the mtime', async () => {
    const d = testDir();
    const path = join(d.path, 'rewritten.txt');
    writeFileSync(path, 'before');
    await heldStill(path);
    expect(readSmallSync(path, 1 << 20)?.bytes.toString()).toBe('before');
    // Rewritten to the same size and its mtime put back: only the ctime shows it, and the fast
    // path leaves the file to the async read, which compares an fstat before with one after.
    const { mtime } = statSync(path);
    writeFileSync(path, 'after!');
    utimesSync(path, mtime, mtime);
    expect(readSmallSync(path, 1 << 20)).toBeUndefined();
    const r = await readStable(path);
    expect(r.kind === 'bytes' && r.bytes.toString()).toBe('after!');
  });

  it('reads files either side of the first read\'s size whole, and leaves one over the limit to streaming', async () => {
    const d = testDir();
    const sizes = [0, FIRST_READ - 1, FIRST_READ, FIRST_READ + 1, 3 * FIRST_READ];
    for (const size of sizes) writeFileSync(join(d.path, `f${size}`), Buffer.alloc(size, size % 251));
    await heldStill(...sizes.map((size) => join(d.path, `f${size}`)));
    for (const size of sizes) {
      const r = readSmallSync(join(d.path, `f${size}`), 3 * FIRST_READ);
      expect(r?.bytes.equals(Buffer.alloc(size, size % 251))).toBe(true);
      expect(r?.stat.size).toBe(size);
    }
    expect(readSmallSync(join(d.path, `f${3 * FIRST_READ}`), 3 * FIRST_READ - 1)).toBeUndefined();
    expect(readSmallSync(join(d.path, `f${FIRST_READ}`), FIRST_READ - 1)).toBeUndefined();
  });

  it('reads a file larger than its first read whole and in order, the first read kept or read again', async () => {
    const d = testDir();
    const size = 3 * FIRST_READ + 17;
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 7 + (i >> 9)) & 0xff;
    const old = join(d.path, 'old.bin');
    const touched = join(d.path, 'touched.bin');
    writeFileSync(old, bytes);
    writeFileSync(touched, bytes);
    await heldStill(old, touched);
    // mtime put back: not racy, but its ctime says it changed a moment ago, so its first read is not kept.
    const { mtime } = statSync(touched);
    utimesSync(touched, mtime, mtime);
    for (const path of [old, touched]) {
      expect(readSmallSync(path, 1 << 20)?.bytes.equals(bytes)).toBe(true);
      // Through a scratch buffer that has to grow for the rest (the first read copied over), and
      // through one with room already (the first read in place).
      const small = new Scratch();
      expect(readSmallSync(path, 1 << 20, small.alloc)?.bytes.equals(bytes)).toBe(true);
      const roomy = new Scratch();
      roomy.alloc(size + 1);
      expect(readSmallSync(path, 1 << 20, roomy.alloc)?.bytes.equals(bytes)).toBe(true);
    }
  });

  it('reads a file stamped a little in the future once that moment has passed, rather than call it changing', async () => {
    const d = testDir();
    const path = join(d.path, 'ahead.txt');
    writeFileSync(path, 'soon');
    const ahead = new Date(Date.now() + 700);
    utimesSync(path, ahead, ahead);
    const r = await readStable(path);
    expect(r.kind === 'bytes' && r.bytes.toString()).toBe('soon');
  });

  it('refuses a streamed file rewritten in place to the same size while it was read', async () => {
    const d = testDir();
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
  });

  // A store optimiser (nix-store --optimise, a backup tool's hard-link snapshots) may link a file
  // and unlink it again while it is streamed: the link count is back where it was, only the
  // change time moved, and the bytes are the file's. Those bytes are kept, checked against a
  // read that saw nothing move at all.
  it('keeps a streamed file hard-linked and unlinked again while it was read', async () => {
    const d = testDir();
    const path = join(d.path, 'big.bin');
    const body = Buffer.alloc(9 * (1 << 20), 'a');
    writeFileSync(path, body);
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    const file = await openRegular(path);
    let first = true;
    const digest = await streamStable(file, async () => {
      if (!first) return;
      first = false;
      // Past the kernel's timestamp tick, so the change time really moves.
      await sleep(20);
      linkSync(path, `${path}.link`);
      unlinkSync(`${path}.link`);
    });
    const now = statSync(path);
    expect(now.ctimeMs).not.toBe(file.stat.ctimeMs);
    expect(now.nlink).toBe(file.stat.nlink);
    expect(digest).toBe(sha256(body));
  });

  it('refuses a streamed file rewritten while it was read and its mtime put back, though only the change time shows it', async () => {
    const d = testDir();
    const path = join(d.path, 'big.bin');
    const size = 3 * (1 << 20);
    writeFileSync(path, Buffer.alloc(size, 'a'));
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    const file = await openRegular(path);
    let first = true;
    const stream = streamStable(file, async () => {
      if (!first) return;
      first = false;
      await sleep(20);
      const fd = openSync(path, 'r+');
      writeSync(fd, Buffer.alloc(size, 'b'), 0, size, 0);
      closeSync(fd);
      utimesSync(path, old, old);
    });
    await expect(stream).rejects.toBeInstanceOf(FileChangedError);
    expect(statSync(path).mtimeMs).toBe(file.stat.mtimeMs);
  });
});
