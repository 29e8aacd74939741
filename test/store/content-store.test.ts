import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, utimesSync, existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { sha256 } from '../../src/image/digest.js';
import { sweepStaleTemps } from '../../src/store/atomic.js';
import { ContentStore } from '../../src/store/content-store.js';
import { ImgbuildError } from '../../src/errors.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'imgbuild-store-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const tmpFiles = () => readdirSync(join(root, 'tmp'));

describe('ContentStore', () => {
  it('stores bytes under their sha256 and reads them back', async () => {
    const store = await ContentStore.open(root);
    const d = await store.putBytes(Buffer.from('{"a":1}'));
    expect(d).toBe(sha256('{"a":1}'));
    expect(store.blobPath(d)).toBe(join(root, 'blobs', 'sha256', d.slice(7)));
    expect(await store.has(d)).toBe(true);
    expect((await store.readBytes(d)).toString()).toBe('{"a":1}');
    expect(await text(store.readStream(d))).toBe('{"a":1}');
    expect(await store.verify(d)).toBe(true);
    expect(tmpFiles()).toEqual([]);
  });

  it('refuses bytes that do not match the expected digest, leaving nothing behind', async () => {
    const store = await ContentStore.open(root);
    await expect(store.putBytes(Buffer.from('x'), sha256('y'))).rejects.toBeInstanceOf(ImgbuildError);
    const w = store.createWriter();
    w.end(Buffer.from('x'));
    await expect(w.commit(sha256('y'))).rejects.toThrow(/does not match/);
    expect(await store.has(sha256('x'))).toBe(false);
    expect(tmpFiles()).toEqual([]);
  });

  it('streams a blob through a writer and publishes it only on commit', async () => {
    const store = await ContentStore.open(root);
    const w = store.createWriter();
    const parts = Array.from({ length: 50 }, (_, i) => Buffer.alloc(10_000, i));
    for (const p of parts) w.write(p);
    const expected = sha256(Buffer.concat(parts));
    expect(await store.has(expected)).toBe(false);
    const r = await w.commit();
    expect(r).toEqual({ digest: expected, size: 500_000 });
    expect(await store.verify(expected)).toBe(true);
  });

  it('knows the blobs it wrote itself while their files are untouched, and no others', async () => {
    const store = await ContentStore.open(root);
    const mine = await store.putBytes(Buffer.from('mine'));
    expect(await store.writtenHere(mine)).toBe(true);

    // Written by another process (another store on the same root): this one has not hashed it.
    const theirs = await (await ContentStore.open(root)).putBytes(Buffer.from('theirs'));
    expect(await store.writtenHere(theirs)).toBe(false);
    // Found already there when this one wrote the same bytes: still not the file it wrote.
    expect(await store.putBytes(Buffer.from('theirs'))).toBe(theirs);
    expect(await store.writtenHere(theirs)).toBe(false);

    // Replaced since (another inode), or rewritten in place (another mtime): no longer vouched for.
    const path = store.blobPath(mine);
    rmSync(path);
    writeFileSync(path, 'mine');
    expect(await store.writtenHere(mine)).toBe(false);
    const again = await store.putBytes(Buffer.from('again'));
    writeFileSync(store.blobPath(again), 'agaiN');
    utimesSync(store.blobPath(again), new Date(), new Date(Date.now() + 5000));
    expect(await store.writtenHere(again)).toBe(false);
    rmSync(store.blobPath(again));
    expect(await store.writtenHere(again)).toBe(false);
  });

  it('vouches for a blob another process wrote or hashed while its file is unchanged, and for none written over since', async () => {
    const writer = await ContentStore.open(root);
    // Written as a layer is (putBytes, for small documents an output copies, stamps nothing).
    const w = writer.createWriter();
    w.end(Buffer.from('stamped'));
    const d = (await w.commit()).digest;
    const other = await ContentStore.open(root);
    expect(await other.vouchedFor(d)).toBe(true);
    expect(await other.writtenHere(d)).toBe(false);
    // Written over in place (another mtime), as a layout hard-linked from the store would share.
    writeFileSync(other.blobPath(d), 'stampeD');
    utimesSync(other.blobPath(d), new Date(), new Date(Date.now() + 5000));
    expect(await other.vouchedFor(d)).toBe(false);
    writeFileSync(other.blobPath(d), 'stamped');
    expect(await other.vouchedFor(d)).toBe(false);
    // Hashed and found good again: vouched for from then on.
    expect(await other.verify(d)).toBe(true);
    expect(await (await ContentStore.open(root)).vouchedFor(d)).toBe(true);
  });

  it('abort removes the temp file and publishes nothing', async () => {
    const store = await ContentStore.open(root);
    const w = store.createWriter();
    w.write(Buffer.from('partial'));
    await new Promise((r) => setTimeout(r, 10));
    expect(tmpFiles()).toHaveLength(1);
    await w.abort();
    expect(tmpFiles()).toEqual([]);
    expect(readdirSync(join(root, 'blobs', 'sha256'))).toEqual([]);
  });

  it('writes a blob of many megabytes whole, flushed to disk as it goes, through single and batched writes', async () => {
    const store = await ContentStore.open(root);
    const w = store.createWriter();
    // 20 MiB of distinct bytes, some written one chunk at a time and some corked into batches.
    const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(512 << 10, i));
    for (const [i, c] of chunks.entries()) {
      if (i % 4 === 0) w.cork();
      w.write(c);
      if (i % 4 === 3) process.nextTick(() => w.uncork());
    }
    const r = await w.commit();
    expect(r.size).toBe(20 << 20);
    expect(r.digest).toBe(sha256(Buffer.concat(chunks)));
    expect(await store.verify(r.digest)).toBe(true);
    expect(tmpFiles()).toEqual([]);
  });

  it('abort right after many megabytes, an early flush maybe still running, leaves nothing behind', async () => {
    const store = await ContentStore.open(root);
    const w = store.createWriter();
    for (let i = 0; i < 20; i++) w.write(Buffer.alloc(512 << 10, i));
    await new Promise((r) => w.once('drain', r));
    await w.abort();
    expect(tmpFiles()).toEqual([]);
    expect(readdirSync(join(root, 'blobs', 'sha256'))).toEqual([]);
  });

  it('committing a blob that already exists keeps the existing file and removes the temp', async () => {
    const store = await ContentStore.open(root);
    const d = await store.putBytes(Buffer.from('same'));
    const w = store.createWriter();
    w.end(Buffer.from('same'));
    expect((await w.commit(d)).digest).toBe(d);
    expect(tmpFiles()).toEqual([]);
  });

  it('a directory under a blob\'s name is no blob: committing the blob puts it in place of the directory', async () => {
    const store = await ContentStore.open(root);
    const bytes = Buffer.from('layer');
    const d = sha256(bytes);
    mkdirSync(join(store.blobPath(d), 'inside'), { recursive: true });
    expect(await store.has(d)).toBe(false);
    expect(await store.putBytes(bytes)).toBe(d);
    expect(await store.has(d)).toBe(true);
    expect(await text(store.readStream(d))).toBe('layer');
    expect(tmpFiles()).toEqual([]);
  });

  it('a corrupt blob is an error, is removed, and verify says so', async () => {
    const store = await ContentStore.open(root);
    const d = await store.putBytes(Buffer.from('good content'));
    writeFileSync(store.blobPath(d), 'evil content');
    expect(await store.verify(d)).toBe(false);
    await expect(store.readBytes(d)).rejects.toThrow(/corrupt/);
    expect(await store.has(d)).toBe(false);

    const d2 = await store.putBytes(Buffer.from('more good content'));
    writeFileSync(store.blobPath(d2), 'bad');
    await expect(text(store.readStream(d2))).rejects.toThrow(/corrupt/);
    expect(existsSync(store.blobPath(d2))).toBe(false);
  });

  it('reports a missing blob as an ImgbuildError', async () => {
    const store = await ContentStore.open(root);
    const d = sha256('nothing');
    await expect(store.readBytes(d)).rejects.toThrow(/not in the cache/);
    await expect(text(store.readStream(d))).rejects.toThrow(/not in the cache/);
    expect(await store.verify(d)).toBe(false);
  });

  it('sweeps temp files older than an hour, judged by ctime, and keeps fresh ones', async () => {
    await ContentStore.open(root);
    const tmp = join(root, 'tmp');
    writeFileSync(join(tmp, 'dead-process.tmp'), 'x');
    // An old mtime alone (a blob hard-linked from the store keeps the store's) is not age.
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(join(tmp, 'dead-process.tmp'), twoHoursAgo, twoHoursAgo);
    expect(await sweepStaleTemps(tmp)).toBe(0);
    expect(await sweepStaleTemps(tmp, Date.now() + 2 * 3600_000)).toBe(1);
    writeFileSync(join(tmp, 'live-process.tmp'), 'y');
    await ContentStore.open(root);
    expect(tmpFiles()).toEqual(['live-process.tmp']);
  });

  it('sweeps at once the temp files of a process of this machine that is gone, and keeps a live one\'s and another machine\'s', async () => {
    await ContentStore.open(root);
    const tmp = join(root, 'tmp');
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const names = [`${gone}@${hostname()}~0123456789abcdef.tmp`, `${process.pid}@${hostname()}~0123456789abcdef.tmp`, `${gone}@elsewhere.example~0123456789abcdef.tmp`, `sha256hex.${gone}@${hostname()}~0123456789ab`];
    for (const name of names) writeFileSync(join(tmp, name), 'x');
    expect(await sweepStaleTemps(tmp)).toBe(2);
    expect(tmpFiles().sort()).toEqual([names[1], names[2]].sort());
  });
});
