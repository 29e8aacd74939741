import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, lstatSync, mkdtempSync, rmSync, writeFileSync, readFileSync, linkSync, unlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../../src/image/digest.js';
import { FileDigestCache, hashFileStable, UncachedDigester } from '../../src/store/file-digests.js';

let root: string;
let ctx: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'imgbuild-stat-'));
  ctx = mkdtempSync(join(tmpdir(), 'imgbuild-ctx-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(ctx, { recursive: true, force: true });
});

const st = (p: string) => lstatSync(p);

function makeFiles(n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const p = join(ctx, `f${i}`);
    writeFileSync(p, `content ${i}\n`.repeat(100));
    return p;
  });
}

// A record is only trusted when the file had not changed for a margin (50 ms) before it was
// hashed. The cache's clock is set a second ahead so freshly written files count as settled.
const later = () => Date.now() + 1000;

describe('FileDigestCache', () => {
  it('a second build with unchanged files reads no file contents, across save/open', async () => {
    const files = makeFiles(20);
    const first = await FileDigestCache.open(root, ctx, later);
    for (const p of files) expect(await first.digest(p, st(p))).toBe(sha256(readFileSync(p)));
    expect(first.filesHashed).toBe(20);
    expect(first.bytesHashed).toBe(files.reduce((n, p) => n + readFileSync(p).length, 0));
    await first.save();

    const second = await FileDigestCache.open(root, ctx, later);
    for (const p of files) expect(await second.digest(p, st(p))).toBe(sha256(readFileSync(p)));
    expect(second.filesHashed).toBe(0);
    expect(second.bytesHashed).toBe(0);
  });

  it('notices a one-byte change even when size and mtime are put back', async () => {
    const [p] = makeFiles(1) as [string];
    const before = st(p);
    const cache = await FileDigestCache.open(root, ctx, later);
    await cache.digest(p, before);
    const bytes = readFileSync(p);
    bytes[5] = bytes[5]! ^ 1;
    writeFileSync(p, bytes);
    utimesSync(p, new Date(before.atimeMs), new Date(before.mtimeMs));
    expect(await cache.digest(p, st(p))).toBe(sha256(bytes));
    expect(cache.filesHashed).toBe(2);
  });

  it('re-hashes a file written within the racy margin of its hashing', async () => {
    const [p] = makeFiles(1) as [string];
    let clock = st(p).ctimeMs + 10; // hashed 10 ms after the last write
    const cache = await FileDigestCache.open(root, ctx, () => clock);
    await cache.digest(p, st(p));
    await cache.digest(p, st(p)); // not trusted: a same-tick write could have followed
    expect(cache.filesHashed).toBe(2);
    clock += 1000;
    await cache.digest(p, st(p)); // re-hashed a second later: trusted from now on
    await cache.digest(p, st(p));
    expect(cache.filesHashed).toBe(3);
  });

  it('a hard link added by a store optimiser costs one re-hash, and the digest is unchanged', async () => {
    const [p] = makeFiles(1) as [string];
    const cache = await FileDigestCache.open(root, ctx, later);
    const d = await cache.digest(p, st(p));
    linkSync(p, `${p}.link`);
    unlinkSync(`${p}.link`);
    expect(await cache.digest(p, st(p))).toBe(d);
  });

  it('ignores a corrupt cache file', async () => {
    const [p] = makeFiles(1) as [string];
    const cache = await FileDigestCache.open(root, ctx, later);
    await cache.digest(p, st(p));
    await cache.save();
    const { readdirSync } = await import('node:fs');
    const [file] = readdirSync(join(root, 'stat'));
    writeFileSync(join(root, 'stat', file!), '{not json');
    const again = await FileDigestCache.open(root, ctx, later);
    expect(await again.digest(p, st(p))).toBe(sha256(readFileSync(p)));
    expect(again.filesHashed).toBe(1);
  });
});

describe('plain-number stats', () => {
  it('the fstat a file was hashed under equals what a later lstat gives', async () => {
    const files = makeFiles(5);
    utimesSync(files[0]!, 1_700_000_000.123456, 1_700_000_000.987654);
    utimesSync(files[1]!, 0.5, 0.000001);
    utimesSync(files[2]!, -1.25, -1.25);
    for (const p of files) {
      const { size, mtimeMs, ctimeMs, ino, dev } = (await hashFileStable(p)).stat;
      const plain = lstatSync(p);
      expect({ size, mtimeMs, ctimeMs, ino, dev }).toEqual({ size: plain.size, mtimeMs: plain.mtimeMs, ctimeMs: plain.ctimeMs, ino: plain.ino, dev: plain.dev });
    }
  });
});

describe('the stat cache file', () => {
  const statFile = async () => {
    const { readdirSync } = await import('node:fs');
    return join(root, 'stat', readdirSync(join(root, 'stat'))[0]!);
  };

  it('reads back every record it saved: a second open hashes nothing', async () => {
    const files = makeFiles(3);
    const first = await FileDigestCache.open(root, ctx, later);
    expect(first.isNew).toBe(true);
    for (const p of files) await first.digest(p, st(p));
    await first.save();
    expect(readFileSync(await statFile()).subarray(0, 8).toString('latin1')).toBe('imgbstat');
    const again = await FileDigestCache.open(root, ctx, later);
    for (const p of files) expect(await again.digest(p, st(p))).toBe(sha256(readFileSync(p)));
    expect(again.filesHashed).toBe(0);
  });

  it.each([
    ['cut short', (b: Buffer) => b.subarray(0, b.length - 1)],
    ['grown', (b: Buffer) => Buffer.concat([b, Buffer.from([0])])],
    ['of another version', (b: Buffer) => (b.writeUInt32LE(99, 8), b)],
    ['not ours', () => Buffer.from('{"v":2}')],
  ])('treats a cache file %s as empty, never as an error', async (_what, damage) => {
    const files = makeFiles(3);
    const first = await FileDigestCache.open(root, ctx, later);
    for (const p of files) await first.digest(p, st(p));
    await first.save();
    const file = await statFile();
    writeFileSync(file, damage(readFileSync(file)));
    const again = await FileDigestCache.open(root, ctx, later);
    expect(again.isNew).toBe(false);
    for (const p of files) expect(await again.digest(p, st(p))).toBe(sha256(readFileSync(p)));
    expect(again.filesHashed).toBe(3);
  });

  it('a save that fails (a full disk) still leaves the context known, so the next plan hashes and finds its layers', async () => {
    const [p] = makeFiles(1);
    const first = await FileDigestCache.open(root, ctx, later);
    expect(first.isNew).toBe(true);
    await first.digest(p!, st(p!));
    // Where the temp file goes cannot be written, as on a full disk.
    rmSync(join(root, 'tmp'), { recursive: true });
    writeFileSync(join(root, 'tmp'), '');
    await expect(first.save()).rejects.toThrow();
    rmSync(join(root, 'tmp'));
    expect((await FileDigestCache.open(root, ctx, later)).isNew).toBe(false);
  });

  it('leaves the previous format (JSON) unread, and removes it on save', async () => {
    const [p] = makeFiles(1) as [string];
    const first = await FileDigestCache.open(root, ctx, later);
    await first.digest(p, st(p));
    await first.save();
    const legacy = (await statFile()).replace(/\.stat$/, '.json');
    rmSync(await statFile());
    writeFileSync(legacy, JSON.stringify({ v: 2, context: ctx, files: [p, 1, 2, 3, 4, 5, sha256('stale'), 6] }));
    const again = await FileDigestCache.open(root, ctx, later);
    expect(again.isNew).toBe(false);
    expect(await again.digest(p, st(p))).toBe(sha256(readFileSync(p)));
    await again.save();
    expect(existsSync(legacy)).toBe(false);
  });
});

describe('forgetting deleted files', () => {
  /** The paths the saved stat file holds. */
  const savedPaths = async () => {
    const { readdirSync } = await import('node:fs');
    const { StatRecords } = await import('../../src/store/stat-records.js');
    const buf = readFileSync(join(root, 'stat', readdirSync(join(root, 'stat'))[0]!));
    const records = StatRecords.decode(buf, ctx)!;
    return Array.from({ length: records.count }, (_, i) => records.path(i)).sort();
  };

  const under = (dir: string) => (p: string) => p.startsWith(`${dir}/`);

  it('drops the covered records that were not looked up, keeps the rest, and survives a save', async () => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(ctx, 'app'));
    mkdirSync(join(ctx, 'other'));
    const paths = ['app/a', 'app/b', 'app/c', 'app/d', 'other/x'].map((rel) => join(ctx, rel));
    for (const p of paths) writeFileSync(p, p);
    const first = await FileDigestCache.open(root, ctx, later);
    for (const p of paths) await first.digest(p, st(p));
    await first.save();

    // The next build finds app/b deleted: it looks up app/a and app/c only.
    const [a, b, c, d, x] = paths as [string, string, string, string, string];
    unlinkSync(b);
    const second = await FileDigestCache.open(root, ctx, later);
    for (const p of [a, c]) await second.digest(p, st(p));
    second.forgetUnseen(under(join(ctx, 'app')));
    await second.save();
    expect(second.filesHashed).toBe(0);
    // other/x is not covered (another spec may copy it), and app/d is still there: both kept.
    expect(await savedPaths()).toEqual([a, c, d, x].sort());

    const third = await FileDigestCache.open(root, ctx, later);
    for (const p of [a, c, d, x]) await third.digest(p, st(p));
    expect(third.filesHashed).toBe(0);
    third.forgetUnseen(() => true);
    await third.save();
    expect(await savedPaths()).toEqual([a, c, d, x].sort());
  });

  it('a record written after the drop lands at the right index', async () => {
    const paths = makeFiles(5);
    const first = await FileDigestCache.open(root, ctx, later);
    for (const p of paths) await first.digest(p, st(p));
    await first.save();
    for (const p of paths.slice(0, 2)) unlinkSync(p);
    const second = await FileDigestCache.open(root, ctx, later);
    for (const p of paths.slice(2)) await second.digest(p, st(p));
    second.forgetUnseen(under(ctx));
    const added = join(ctx, 'added');
    writeFileSync(added, 'new');
    await second.digest(added, st(added));
    await second.save();
    expect(await savedPaths()).toEqual([...paths.slice(2), added].sort());
    const third = await FileDigestCache.open(root, ctx, later);
    for (const p of [...paths.slice(2), added]) expect(await third.digest(p, st(p))).toBe(sha256(readFileSync(p)));
    expect(third.filesHashed).toBe(0);
  });
});

describe('hashFileStable and UncachedDigester', () => {
  it('hash small and large (streamed) files', async () => {
    const small = join(ctx, 'small');
    const large = join(ctx, 'large');
    writeFileSync(small, 'abc');
    const big = Buffer.alloc(9 << 20, 7);
    writeFileSync(large, big);
    expect(await hashFileStable(small)).toMatchObject({ digest: sha256('abc'), size: 3 });
    expect(await hashFileStable(large)).toMatchObject({ digest: sha256(big), size: big.length });
    const u = new UncachedDigester();
    await u.digest(small);
    await u.digest(small);
    expect(u.filesHashed).toBe(2);
  });
});
