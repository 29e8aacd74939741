import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, lstatSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../../src/image/digest.js';
import { FileDigestCache, type FileStat } from '../../src/store/file-digests.js';

let root: string;
let ctx: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'imgbuild-journal-'));
  ctx = mkdtempSync(join(tmpdir(), 'imgbuild-ctx-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(ctx, { recursive: true, force: true });
});

// Hashed a second after the files were written: outside the racy margin, so a later plan trusts the record.
const hashedAt = () => Date.now() + 1000;
const stat = (p: string): FileStat => lstatSync(p);

/** What the layer writer tells the cache of each file it read (a first build's `remember`). */
function rememberAll(cache: FileDigestCache, files: readonly string[], digestOf = (p: string) => sha256(p)): void {
  for (const p of files) cache.remember(p, { digest: digestOf(p), size: 1, stat: stat(p) }, hashedAt());
}

function makeFiles(n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const p = join(ctx, `dïr-${i % 7}-f${i}`);
    writeFileSync(p, 'x');
    return p;
  });
}

const temps = () => readdirSync(join(root, 'tmp'));

describe("a first build's stat records (stat-journal.ts)", () => {
  it('go to disk as they come, and a later build knows every one of them', async () => {
    // More than one batch of records, so several appends go to each column's temp file.
    const files = makeFiles(2500);
    const first = await FileDigestCache.open(root, ctx);
    expect(first.isNew).toBe(true);
    rememberAll(first, files);
    expect(temps().length).toBeGreaterThan(0);
    // Not held: until the save, this cache does not give them.
    expect(first.known(files[0]!, stat(files[0]!))).toBeUndefined();
    await first.save();
    expect(temps()).toEqual([]);
    // Once saved, the same cache (a watcher's) reads them back.
    expect(first.known(files[9]!, stat(files[9]!))).toBe(sha256(files[9]!));

    const next = await FileDigestCache.open(root, ctx);
    expect(next.isNew).toBe(false);
    for (const p of files) expect(next.known(p, stat(p))).toBe(sha256(p));
  });

  it('keep the later record of a path recorded twice, and the records made beside them', async () => {
    const files = makeFiles(1100);
    const first = await FileDigestCache.open(root, ctx, hashedAt);
    rememberAll(first, files);
    // A layer that started over reads its first files again; a replan hashes one through `digest`.
    rememberAll(first, files.slice(0, 3), (p) => sha256(`again ${p}`));
    const other = join(ctx, 'other');
    writeFileSync(other, 'other');
    await first.digest(other, stat(other));
    await first.save();

    const next = await FileDigestCache.open(root, ctx);
    expect(next.known(files[0]!, stat(files[0]!))).toBe(sha256(`again ${files[0]!}`));
    expect(next.known(files[3]!, stat(files[3]!))).toBe(sha256(files[3]!));
    expect(next.known(other, stat(other))).toBe(sha256('other'));
  });

  it('that cannot be written make the save fail, leave no temp file, and still say the context was built', async () => {
    const files = makeFiles(1500);
    const first = await FileDigestCache.open(root, ctx);
    rmSync(join(root, 'tmp'), { recursive: true });
    rememberAll(first, files);
    await expect(first.save()).rejects.toThrow();
    expect(existsSync(join(root, 'tmp'))).toBe(false);
    const next = await FileDigestCache.open(root, ctx);
    expect(next.isNew).toBe(false);
    expect(next.known(files[0]!, stat(files[0]!))).toBeUndefined();
  });
});
