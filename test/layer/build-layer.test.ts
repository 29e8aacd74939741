import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chownSync, linkSync, mkdirSync, readFileSync, rmSync, unlinkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { ContentStore } from '../../src/store/content-store.js';
import { BlobWriter } from '../../src/store/blob-writer.js';
import { buildLayer } from '../../src/layer/build-layer.js';
import { FileChangedError, SMALL_FILE_MAX } from '../../src/layer/stable-read.js';
import { compilePlan } from '../../src/plan/compile.js';
import { FROM_FILE, type LayerPlan } from '../../src/plan/types.js';
import { loadSpec } from '../../src/spec/load.js';
import { UncachedDigester } from '../../src/store/file-digests.js';
import { ImgbuildError } from '../../src/errors.js';
import { GZIP6, planFor, readTar, tempDir, writeTree, type Spec } from './fixtures.js';

const TREE: Record<string, Spec> = {
  'app/bin/run': { type: 'file', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
  'app/lib/a.js': { type: 'file', content: 'export const a = 1;\n' },
  'app/lib/same1.txt': { type: 'file', content: 'duplicate content\n' },
  'app/data/same2.txt': { type: 'file', content: 'duplicate content\n' },
  'app/empty': { type: 'file', content: '' },
  'app/locked': { type: 'file', content: 'secret', mode: 0o000 },
  'app/link': { type: 'symlink', target: 'lib/a.js' },
  'app/var': { type: 'dir', mode: 0o1777 },
  'etc/motd': { type: 'inline', content: 'héllo ☃\n' },
  'etc/old.conf': { type: 'whiteout' },
};

let dirs: { cleanup: () => void }[] = [];
let store: ContentStore;
beforeEach(async () => {
  const s = tempDir('imgbuild-store-');
  dirs.push(s);
  store = await ContentStore.open(s.path);
});
afterEach(() => {
  for (const d of dirs) d.cleanup();
  dirs = [];
});

function source(tree = TREE): string {
  const d = tempDir();
  dirs.push(d);
  writeTree(d.path, tree);
  return d.path;
}

const build = (root: string, tree = TREE, epoch = 1_700_000_000) =>
  buildLayer(planFor(root, tree, { epoch }), { store, epoch, compression: GZIP6 });

describe('buildLayer reproducibility', () => {
  it('gives a byte-identical blob whatever the umask, mtimes, owners, creation order and hard links', async () => {
    const a = source();
    const oldUmask = process.umask(0o077);
    let b: string;
    try {
      const reversed = Object.fromEntries(Object.entries(TREE).reverse().filter(([p]) => p !== 'app/data/same2.txt'));
      b = source(reversed);
    } finally {
      process.umask(oldUmask);
    }
    mkdirSync(join(b, 'app/data'));
    linkSync(join(b, 'app/lib/same1.txt'), join(b, 'app/data/same2.txt'));
    for (const [i, p] of ['app/bin/run', 'app/lib/a.js', 'app/empty', 'etc'].entries()) {
      utimesSync(join(b, p), new Date(1e12 + i * 1e9), new Date(1e11 * (i + 1)));
      chownSync(join(b, p), 1234, 4321);
    }
    chmodSync(join(b, 'app/lib/a.js'), 0o600);

    const ra = await build(a);
    const rb = await build(b);
    expect(rb).toEqual(ra);
    expect(ra.cacheKey).toBe(planFor(a, TREE, { epoch: 1_700_000_000 }).cacheKey);
    expect(ra.mediaType).toBe(MediaType.ociLayerGzip);
    expect(await store.verify(ra.digest)).toBe(true);
  });

  it('writes the headers the plan says, readable back by tar-stream', async () => {
    const r = await build(source());
    const blob = readFileSync(store.blobPath(r.digest));
    expect(r.size).toBe(blob.length);
    expect([...blob.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    const entries = await readTar(blob);
    expect(entries.map((e) => e.name)).toEqual([
      'app/', 'app/bin/', 'app/bin/run', 'app/data/', 'app/data/same2.txt', 'app/empty', 'app/lib/', 'app/lib/a.js',
      'app/lib/same1.txt', 'app/link', 'app/locked', 'app/var/', 'etc/', 'etc/.wh.old.conf', 'etc/motd',
    ]);
    const by = Object.fromEntries(entries.map((e) => [e.name, e]));
    for (const e of entries) {
      expect(e).toMatchObject({ uid: 0, gid: 0, uname: '', gname: '', mtime: 1_700_000_000 });
      expect(e.body.length).toBe(e.size);
    }
    expect(by['app/bin/run']).toMatchObject({ type: 'file', mode: 0o755 });
    expect(by['app/locked']).toMatchObject({ type: 'file', mode: 0o000 });
    expect(by['app/var/']).toMatchObject({ type: 'directory', mode: 0o1777 });
    expect(by['app/link']).toMatchObject({ type: 'symlink', linkname: 'lib/a.js', size: 0 });
    expect(by['etc/.wh.old.conf']).toMatchObject({ type: 'file', size: 0 });
    expect(by['etc/motd']!.body.toString('utf8')).toBe('héllo ☃\n');
    expect(by['app/data/same2.txt']!.body.toString()).toBe('duplicate content\n');
  });

  it('is accepted by GNU tar, which lists the same entries', async () => {
    const r = await build(source());
    const listing = execFileSync('tar', ['-tzvf', store.blobPath(r.digest)], { encoding: 'utf8' });
    expect(listing).toMatch(/^-rwxr-xr-x 0\/0 +\d+ 2023-11-1\d \d\d:\d\d app\/bin\/run$/m);
    expect(listing).toMatch(/^lrwxrwxrwx 0\/0 +0 .* app\/link -> lib\/a\.js$/m);
    expect(listing).toMatch(/^drwxrwxrwt 0\/0 .* app\/var\/$/m);
    expect(listing).not.toMatch(/^h/m); // never a hard link
  });

  it('handles long and non-ASCII names through PAX, deterministically', async () => {
    const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(120)}.txt`;
    const tree: Record<string, Spec> = {
      [long]: { type: 'file', content: 'long' },
      'ünïcödé/名前.txt': { type: 'file', content: 'utf8' },
      [`l/${'s'.repeat(150)}`]: { type: 'symlink', target: `../${'t'.repeat(150)}` },
    };
    const r1 = await build(source(tree), tree);
    const r2 = await build(source(tree), tree);
    expect(r2.digest).toBe(r1.digest);
    const entries = await readTar(readFileSync(store.blobPath(r1.digest)));
    expect(entries.map((e) => e.name)).toContain(long);
    expect(entries.map((e) => e.name)).toContain('ünïcödé/名前.txt');
    expect(entries.find((e) => e.type === 'symlink')!.linkname).toBe(`../${'t'.repeat(150)}`);
    const gnu = execFileSync('tar', ['-tzf', store.blobPath(r1.digest)], { encoding: 'utf8' });
    expect(gnu.split('\n')).toContain(long);
  });

  it('puts ids too large for ustar into PAX records', async () => {
    const root = source({ f: { type: 'file', content: 'x' } });
    const plan = planFor(root, { f: { type: 'file', content: 'x' } });
    const entries = plan.entries.map((e) => ({ ...e, uid: 3_000_000, gid: 3_000_001 }));
    const r = await buildLayer({ ...plan, entries }, { store, epoch: 0, compression: GZIP6 });
    const [e] = await readTar(readFileSync(store.blobPath(r.digest)));
    expect(e!.pax).toMatchObject({ uid: '3000000', gid: '3000001' });
    const gnu = execFileSync('tar', ['-tzvf', store.blobPath(r.digest), '--numeric-owner'], { encoding: 'utf8' });
    expect(gnu).toMatch(/ 3000000\/3000001 /);
  });

  it("with compression 'none' the blob is the tar itself", async () => {
    const root = source();
    const plan = planFor(root, TREE, { compression: { algorithm: 'none', level: 0 } });
    const r = await buildLayer(plan, { store, epoch: 0, compression: { algorithm: 'none', level: 0 } });
    expect(r.digest).toBe(r.diffId);
    expect(r.size).toBe(r.uncompressedSize);
    expect(r.mediaType).toBe(MediaType.ociLayer);
    expect(r.cacheKey).toBe(plan.cacheKey);
  });
});

describe('buildLayer on a changing file system', () => {
  it('writes the real content of a file edited after planning, and a cache key for it', async () => {
    const root = source();
    const plan = planFor(root, TREE);
    writeFileSync(join(root, 'app/lib/a.js'), 'export const a = 2; // edited\n');
    const r = await buildLayer(plan, { store, epoch: 0, compression: GZIP6 });
    const entries = await readTar(readFileSync(store.blobPath(r.digest)));
    expect(entries.find((e) => e.name === 'app/lib/a.js')!.body.toString()).toBe('export const a = 2; // edited\n');
    expect(r.cacheKey).not.toBe(plan.cacheKey);
    const edited = { ...TREE, 'app/lib/a.js': { type: 'file', content: 'export const a = 2; // edited\n' } as Spec };
    expect(r.cacheKey).toBe(planFor(root, edited).cacheKey);
  });

  it('fails naming a file that vanished, leaving no blob or temp behind', async () => {
    const root = source();
    const plan = planFor(root, TREE);
    unlinkSync(join(root, 'app/lib/a.js'));
    const err = await buildLayer(plan, { store, epoch: 0, compression: GZIP6 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileChangedError);
    expect((err as Error).message).toContain(join(root, 'app/lib/a.js'));
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(join(store.root, 'blobs', 'sha256'))).toEqual([]);
    expect(readdirSync(store.tmpDir)).toEqual([]);
  });

  it('starts over with a fresh plan when a path vanished or changed type', async () => {
    const root = source();
    const plan = planFor(root, TREE);
    rmSync(join(root, 'app/lib/a.js'));
    writeFileSync(join(root, 'app/lib/a.js.new'), 'x');
    unlinkSync(join(root, 'app/empty'));
    mkdirSync(join(root, 'app/empty'));
    const { 'app/lib/a.js': _gone, 'app/empty': _retyped, ...rest } = TREE;
    const fresh = { ...rest, 'app/empty': { type: 'dir' } as Spec };
    let replans = 0;
    const r = await buildLayer(plan, {
      store, epoch: 0, compression: GZIP6,
      replan: async () => (replans++, planFor(root, fresh)),
    });
    expect(replans).toBe(1);
    expect(r.cacheKey).toBe(planFor(root, fresh).cacheKey);
  });

  it('streams a file larger than the in-memory limit', async () => {
    const big = Buffer.alloc(9 << 20);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    const tree: Record<string, Spec> = { 'big.bin': { type: 'file', content: big }, 'small': { type: 'file', content: 's' } };
    const r = await build(source(tree), tree, 0);
    const entries = await readTar(readFileSync(store.blobPath(r.digest)));
    expect(sha256(entries[0]!.body)).toBe(sha256(big));
    expect(r.cacheKey).toBe(planFor('/x', tree).cacheKey);
  });

  it('rejects a plan path that would escape the image root', async () => {
    const root = source({ f: { type: 'file', content: 'x' } });
    const plan = planFor(root, { f: { type: 'file', content: 'x' } });
    const entries = plan.entries.map((e) => ({ ...e, path: '../etc/passwd' }));
    await expect(buildLayer({ ...plan, entries }, { store, epoch: 0, compression: GZIP6 })).rejects.toBeInstanceOf(ImgbuildError);
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(buildLayer(planFor(source(), TREE), { store, epoch: 0, compression: GZIP6, signal: ac.signal })).rejects.toThrow();
  });
});

describe('buildLayer and the stat cache', () => {
  it('asks the stat cache for each file it reads whole, and hashes a file whose cached digest is not the planned one', async () => {
    const root = source();
    const plan = planFor(root, TREE, { epoch: 1 });
    const asked: string[] = [];
    // A cache that claims a wrong digest for every file: it must never end up in the result.
    const known = (path: string, st: { size: number }) => {
      asked.push(`${path.slice(root.length)}:${st.size}`);
      return sha256('not the content');
    };
    const built = await buildLayer(plan, { store, epoch: 1, compression: GZIP6, known });
    expect(asked).toContain('/app/lib/a.js:20');
    expect(built.cacheKey).toBe(plan.cacheKey);
  });

  it('builds the same blob and key when the cache vouches for the planned digests', async () => {
    const root = source();
    const plan = planFor(root, TREE, { epoch: 1 });
    const planned = new Map(plan.entries.flatMap((e) => (e.type === 'file' && e.source.kind === 'path' ? [[e.source.path, e.source.digest] as const] : [])));
    const vouched = await buildLayer(plan, { store, epoch: 1, compression: GZIP6, known: (path) => planned.get(path) });
    const hashed = await buildLayer(plan, { store, epoch: 1, compression: GZIP6 });
    expect(vouched).toEqual(hashed);
  });
});

describe('a first build: sizes and exec-bit modes left to the layer writer', () => {
  it('builds the blob and key of a plan that lstat-ed every file, and fills in the entries it was given', async () => {
    const dir = source({
      'ctx/app/bin/run': { type: 'file', content: '#!/bin/sh\necho hi\n' },
      'ctx/app/bin/tool': { type: 'file', content: 'tool' },
      'ctx/app/lib/a.js': { type: 'file', content: 'export const a = 1;\n' },
      'ctx/app/lib/big.bin': { type: 'file', content: 'x'.repeat(SMALL_FILE_MAX + 1) },
      'ctx/app/empty': { type: 'file', content: '' },
    });
    chmodSync(join(dir, 'ctx/app/bin/run'), 0o755);
    chmodSync(join(dir, 'ctx/app/bin/tool'), 0o700);
    // One plain directory copy (listed as walked) and a merged layer with a glob and a copy that sets its files' mode.
    writeFileSync(
      join(dir, 'image.yaml'),
      [
        'apiVersion: imgbuild/v1',
        'name: t/first',
        'context: ctx',
        'layers:',
        '  - name: app',
        '    copy: [{ from: app/, to: /app/ }]',
        '  - name: mixed',
        '    copy:',
        '      - { from: "app/bin/*", to: /x/ }',
        '      - { from: app/lib/, to: /y/, mode: "0600" }',
        '',
      ].join('\n'),
    );
    const spec = await loadSpec(join(dir, 'image.yaml'), { env: {} });
    const later = await compilePlan(spec, new UncachedDigester(), { hashLater: true });
    const statted = await compilePlan(spec, new UncachedDigester());
    const files = (l: LayerPlan) => l.entries.filter((e) => e.type === 'file');
    expect(later.layers.map((l) => l.bytes)).toEqual([undefined, undefined]);
    expect(files(later.layers[0]!).every((e) => e.size === FROM_FILE && e.mode === FROM_FILE)).toBe(true);
    expect(files(later.layers[1]!).map((e) => [e.path, e.mode === FROM_FILE])).toEqual([
      ['x/run', true],
      ['x/tool', true],
      ['y/a.js', false],
      ['y/big.bin', false],
    ]);
    for (const [i, layer] of later.layers.entries()) {
      const built = await buildLayer(layer, { store, epoch: spec.epoch, compression: spec.compression });
      expect(built).toEqual(await buildLayer(statted.layers[i]!, { store, epoch: spec.epoch, compression: spec.compression }));
      expect(built.cacheKey).toBe(statted.layers[i]!.cacheKey);
      expect(layer.entries).toEqual(statted.layers[i]!.entries);
    }
    expect(files(statted.layers[0]!).map((e) => [e.path, e.mode.toString(8), e.size])).toEqual([
      ['app/bin/run', '755', 18],
      ['app/bin/tool', '755', 4],
      ['app/empty', '644', 0],
      ['app/lib/a.js', '644', 20],
      ['app/lib/big.bin', '644', SMALL_FILE_MAX + 1],
    ]);
  });
});

describe('buildLayer on a cache it cannot write', () => {
  it('says what to do about a full disk, beside the path it could not write', async () => {
    const full = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    class FullDisk extends BlobWriter {
      override _write(_chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
        cb(full());
      }
      override _writev(_chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
        cb(full());
      }
    }
    store.createWriter = () => new FullDisk(join(store.tmpDir, 'full.tmp'), (d) => store.blobPath(d));
    await expect(build(source())).rejects.toMatchObject({
      kind: 'build',
      message: 'writing layer "test" failed: ENOSPC: no space left on device, write',
      hint: 'the disk is full: free space, or pass --cache-dir DIR on another disk',
    });
  });
});
