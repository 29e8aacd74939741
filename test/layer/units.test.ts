import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync, linkSync, statSync, lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import zlib from 'node:zlib';
import { createCompressor, gzipHeader, layerMediaType } from '../../src/layer/compress.js';
import { checkEpoch, tarHeader, tarName } from '../../src/layer/tar-header.js';
import { encodeTarHeader } from '../../src/layer/tar-format.js';
import { FileChangedError, readSmallSync, readStable, sameContentStat, Scratch } from '../../src/layer/stable-read.js';
import { ImgbuildError } from '../../src/errors.js';
import { MediaType } from '../../src/image/media-types.js';
import type { PlanEntry } from '../../src/plan/types.js';
import { sha256 } from '../../src/image/digest.js';
import { heldStill, testDir } from './fixtures.js';

const base = { mode: 0o644, uid: 0, gid: 0 };

describe('tar headers', () => {
  it('names entries relative to the root, dirs with "/", whiteouts as .wh. files', () => {
    expect(tarName({ ...base, type: 'dir', path: 'usr/lib' })).toBe('usr/lib/');
    expect(tarName({ ...base, type: 'whiteout', path: 'etc/old.conf' })).toBe('etc/.wh.old.conf');
    expect(tarName({ ...base, type: 'whiteout', path: 'top' })).toBe('.wh.top');
    const h = tarHeader({ ...base, type: 'whiteout', path: 'a/b' }, 5);
    expect(h).toMatchObject({ name: 'a/.wh.b', type: 'file', size: 0, mtime: 5 });
  });

  it('keeps a planned mode of 0', () => {
    const e: PlanEntry = { ...base, mode: 0, type: 'file', path: 'f', size: 1, source: { kind: 'inline', content: 'x', digest: sha256('x') } };
    expect(encodeTarHeader(tarHeader(e, 0, 1)).subarray(100, 107).toString('latin1')).toBe('000000 ');
  });

  it('rejects paths that could escape or confuse the image root, or read as whiteouts', () => {
    for (const path of ['', '/', '.', '..', '/etc/passwd', '../x', 'a/../../x', 'a//b', 'a/./b', 'a/.', 'a/..', 'a/', 'nul\0byte', '.wh.x', 'a/.wh.b', 'a/.wh..wh..opq', '.wh.d/f']) {
      expect(() => tarName({ ...base, type: 'dir', path }), path).toThrow(ImgbuildError);
    }
    expect(() => tarName({ ...base, type: 'whiteout', path: 'a/.wh.b' })).toThrow(ImgbuildError);
    for (const path of ['a', '.hidden', 'a/.b', '..x', 'x..', 'a/...', 'a/b..c', 'é/ü', '.wh', 'a/.whx', 'a/x.wh.y']) {
      expect(tarName({ ...base, type: 'file', path } as PlanEntry), path).toBe(path);
    }
  });

  it('rejects an epoch tar cannot hold', () => {
    expect(() => checkEpoch(2 ** 31)).toThrow(ImgbuildError);
    expect(() => checkEpoch(-1)).toThrow(ImgbuildError);
    expect(() => checkEpoch(1.5)).toThrow(ImgbuildError);
    expect(() => checkEpoch(0)).not.toThrow();
  });
});

describe('compression', () => {
  const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7 + (i >> 9)) & 0xff));
  const chunked = (size: number) => Readable.from(Array.from({ length: Math.ceil(data.length / size) }, (_, i) => data.subarray(i * size, (i + 1) * size)));

  it.each([1, 6, 9])('gzip level %i: one block is zlib\'s own bytes with MTIME 0 and OS 3; more read back whole', async (level) => {
    const small = data.subarray(0, 100_000);
    const expected = zlib.gzipSync(small, { level });
    expected[9] = 3;
    const one = await buffer(Readable.from([small]).pipe(createCompressor({ algorithm: 'gzip', level })));
    expect(one.equals(expected)).toBe(true);
    const big = await buffer(chunked(77_777).pipe(createCompressor({ algorithm: 'gzip', level })));
    expect(zlib.gunzipSync(big).equals(data)).toBe(true);
    expect((await buffer(chunked(1000).pipe(createCompressor({ algorithm: 'gzip', level })))).equals(big)).toBe(true);
    expect([...gzipHeader(level).subarray(4, 10)]).toEqual([0, 0, 0, 0, level === 9 ? 2 : level === 1 ? 4 : 0, 3]);
  });

  it("'none' passes bytes through; media types follow the algorithm", async () => {
    expect(await buffer(chunked(5000).pipe(createCompressor({ algorithm: 'none', level: 0 })))).toEqual(data);
    expect(layerMediaType({ algorithm: 'gzip', level: 6 })).toBe(MediaType.ociLayerGzip);
    expect(layerMediaType({ algorithm: 'zstd', level: 3 })).toBe(MediaType.ociLayerZstd);
    expect(layerMediaType({ algorithm: 'none', level: 0 })).toBe(MediaType.ociLayer);
  });

  it('rejects an out-of-range level', () => {
    expect(() => createCompressor({ algorithm: 'gzip', level: 12 })).toThrow(/level 12/);
  });

  const hasZstd = typeof (zlib as unknown as Record<string, unknown>).createZstdCompress === 'function';
  it.skipIf(hasZstd)('zstd on a Node without it is a clear "unsupported" error', () => {
    const err = (() => {
      try {
        createCompressor({ algorithm: 'zstd', level: 3 });
      } catch (e) {
        return e as ImgbuildError;
      }
    })();
    expect(err).toBeInstanceOf(ImgbuildError);
    expect(err!.kind).toBe('unsupported');
    expect(err!.message).toMatch(/Node\.js 22\.15/);
    expect(err!.hint).toMatch(/gzip/);
  });
});

describe('stable reads', () => {
  const stat = (o: Partial<Record<keyof Stats, number>>) =>
    ({ size: 10, mtimeMs: 1.5, ctimeMs: 1.5, ino: 5, dev: 1, nlink: 1, ...o }) as unknown as Stats;

  it('reads whole files through one reused buffer, which keeps no read larger than KEPT_MAX', () => {
    const scratch = new Scratch();
    const small = scratch.alloc(1000);
    expect(scratch.alloc(2000).buffer).toBe(small.buffer);
    const large = scratch.alloc(Scratch.KEPT_MAX + 1);
    expect(large.length).toBe(Scratch.KEPT_MAX + 1);
    // The large read had a buffer of its own: the next small one reuses the first buffer again.
    expect(scratch.alloc(100).buffer).toBe(small.buffer);
  });

  it('a link-count change alone is not a content change; size, mtime, ctime are', () => {
    const a = stat({});
    expect(sameContentStat(a, stat({ nlink: 2, ctimeMs: 9 }))).toBe(true);
    expect(sameContentStat(a, stat({ ctimeMs: 1.500001 }))).toBe(false);
    expect(sameContentStat(a, stat({ size: 11 }))).toBe(false);
    expect(sameContentStat(a, stat({ mtimeMs: 1.500001 }))).toBe(false);
    expect(sameContentStat(a, stat({ ino: 6 }))).toBe(false);
  });

  it('reports a vanished path, a symlink, a directory and a FIFO as such, without hanging', async () => {
    const d = testDir();
    writeFileSync(join(d.path, 'real'), 'x');
    symlinkSync('real', join(d.path, 'link'));
    mkdirSync(join(d.path, 'dir'));
    execFileSync('mkfifo', [join(d.path, 'fifo')]);
    const reason = async (p: string) => ((await readStable(join(d.path, p)).catch((e) => e)) as FileChangedError).reason;
    expect(await reason('gone')).toBe('vanished');
    expect(await reason('link')).toBe('type');
    expect(await reason('dir')).toBe('type');
    expect(await reason('fifo')).toBe('type');
    // The fast path reads before its fstat: a directory fails the read, a FIFO reads nothing.
    for (const p of ['link', 'dir', 'fifo']) {
      expect(() => readSmallSync(join(d.path, p), 100)).toThrow(expect.objectContaining({ reason: 'type' }));
    }
    const r = await readStable(join(d.path, 'real'));
    expect(r.kind === 'bytes' && r.bytes.toString()).toBe('x');
  });

  it('reads a hard-linked file normally', async () => {
    const d = testDir();
    writeFileSync(join(d.path, 'a'), 'same');
    linkSync(join(d.path, 'a'), join(d.path, 'b'));
    // The link moved the change time too: the fast path reads the file once it has held still.
    await heldStill(join(d.path, 'b'));
    expect(readSmallSync(join(d.path, 'b'), 100)!.bytes.toString()).toBe('same');
    expect(statSync(join(d.path, 'b')).nlink).toBe(2);
    expect(lstatSync(join(d.path, 'b')).isFile()).toBe(true);
  });

  // /proc files claim size 0 but have content: to the reader, a file that never holds still.
  it('gives up on a file that never holds still, naming it', async () => {
    await expect(readStable('/proc/self/status')).rejects.toThrow(/\/proc\/self\/status kept changing while being read/);
  });
});
