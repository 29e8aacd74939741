/**
 * Unchanged layers: a plan for a build holds a layer unlisted, with the key a listing would give,
 * exactly when nothing its walk saw has changed; after any change to its tree, its spec or the
 * layers below, the layer is listed again and equals a plan made without walk records.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpecError } from '../../src/errors.js';
import { planSpec } from '../../src/plan/plan-spec.js';
import { isUnchanged, type BuildPlan, type PlannedLayer } from '../../src/plan/types.js';
import { entriesOf } from '../../src/plan/packed-layer.js';
import { WalkStamps } from '../../src/plan/unchanged-layer.js';
import { apply } from '../../src/run/apply.js';
import { NumberColumn } from '../../src/store/columns.js';
import { stampDir, statFile, WalkRecord, type WalkSnapshot } from '../../src/store/walk-records.js';
import { sha256 } from '../../src/image/digest.js';

/** Past the margin within which a changed directory or hashed file is not trusted (50 ms). */
const settle = () => new Promise((r) => setTimeout(r, 120));

let dir: string;
let cacheDir: string;
const w = (rel: string, body: string) => {
  mkdirSync(join(dir, rel, '..'), { recursive: true });
  writeFileSync(join(dir, rel), body);
};

function writeSpec(depsExclude = '["**/*.md"]', inline = 'x'): void {
  // deps owns /opt/lib (1000:1000); app lands below it, so its implied parents come from deps.
  // mixed is merged: an inline file, a single file, a glob and the whole context (which holds the output).
  writeFileSync(
    join(dir, 'image.yaml'),
    `apiVersion: imgbuild/v1\nname: t/reuse\ncontext: .\nlayers:\n` +
      `  - name: deps\n    owner: "1000:1000"\n    copy:\n      - { from: lib/, to: /opt/lib/, exclude: ${depsExclude} }\n` +
      `  - name: app\n    copy:\n      - { from: app/, to: /opt/lib/app/ }\n` +
      `  - name: mixed\n    files:\n      - { path: /etc/mixed.conf, content: "${inline}" }\n    copy:\n` +
      `      - { from: app/main.js, to: /srv/main.js }\n      - { from: "lib/**/*.txt", to: /srv/txt/ }\n      - { from: ., to: /srv/all/, exclude: ["*.yaml"] }\n` +
      `output:\n  - oci: ./out\n`,
  );
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imgbuild-unchanged-'));
  cacheDir = join(dir, 'cache');
  w('lib/a.txt', 'aaaa');
  w('lib/b.js', 'b');
  chmodSync(join(dir, 'lib/b.js'), 0o755);
  w('lib/README.md', 'docs');
  w('lib/sub/c.txt', 'cc');
  w('lib/sub/d/e.txt', 'eee');
  symlinkSync('a.txt', join(dir, 'lib/link'));
  w('app/main.js', 'main');
  writeSpec();
  await settle();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const file = () => join(dir, 'image.yaml');
const reusing = () => planSpec(file(), { cacheDir, env: {}, reuseWalks: true });
const listing = () => planSpec(file(), { cacheDir, env: {} });
/**
 * Plans until the walks are recorded and in use. The first plan makes the cache inside the
 * context, which the merged layer walks: its directory is too freshly changed to stamp until the
 * racy margin has passed. The second plan records, the third finds every layer unchanged.
 */
const recordWalks = async () => {
  await reusing();
  await settle();
  await reusing();
  expect(kinds((await reusing()).plan)).toEqual(ALL_UNCHANGED);
};
const L = 'listed';
const U = 'unchanged';
const ALL_UNCHANGED = [U, U, U];
const kinds = (plan: BuildPlan<PlannedLayer>) => plan.layers.map((l) => (isUnchanged(l) ? 'unchanged' : 'listed'));

/** After `change`, the layers listed and unchanged are `expected`, and the plan is a listing's; then the walks are recorded again. */
async function listsAfter(change: () => void, expected: string[]): Promise<void> {
  change();
  const after = await reusing();
  expect(kinds(after.plan)).toEqual(expected);
  await expectSameAsListing(after.plan);
  await settle();
  await reusing();
}

/** The plan a listing of every layer gives now, in the shape a reusing plan holds it. */
async function expectSameAsListing(plan: BuildPlan<PlannedLayer>): Promise<void> {
  const listed = (await listing()).plan;
  expect(plan.layers.map((l) => l.cacheKey)).toEqual(listed.layers.map((l) => l.cacheKey));
  plan.layers.forEach((layer, i) => {
    const full = listed.layers[i]!;
    expect({ files: layer.files, bytes: layer.bytes }).toEqual({ files: full.files, bytes: full.bytes });
    if (isUnchanged(layer)) expect(layer.dirs).toEqual(full.entries.filter((e) => e.type === 'dir'));
    else expect([...entriesOf(layer)]).toEqual(full.entries);
  });
}

describe('unchanged layers', () => {
  it('holds a layer whose walk still holds unlisted, with the key a listing gives', async () => {
    expect(kinds((await reusing()).plan)).toEqual(['listed', 'listed', 'listed']);
    await settle(); // past the margin of cache/, just made in the context the merged layer walks
    await reusing();
    const again = await reusing();
    expect(kinds(again.plan)).toEqual(ALL_UNCHANGED);
    expect(again.filesHashed).toBe(0);
    await expectSameAsListing(again.plan);
  });

  // app's implied parents come from deps: it is listed again when deps' key moves. mixed reads the
  // whole context, lib/ and app/ included.
  const changes: [string, () => void, string[]][] = [
    ['a file added deep down', () => w('lib/sub/d/new.txt', 'new'), [L, L, L]],
    ['a file removed', () => unlinkSync(join(dir, 'lib/sub/c.txt')), [L, L, L]],
    ['a file renamed', () => renameSync(join(dir, 'lib/a.txt'), join(dir, 'lib/a2.txt')), [L, L, L]],
    ['a file rewritten in place to the same size', () => writeFileSync(join(dir, 'lib/a.txt'), 'zzzz'), [L, L, L]],
    ['a file made executable', () => chmodSync(join(dir, 'lib/a.txt'), 0o755), [L, L, L]],
    ['a symlink pointed elsewhere', () => (unlinkSync(join(dir, 'lib/link')), symlinkSync('sub/c.txt', join(dir, 'lib/link'))), [L, L, L]],
    ['a directory replaced by a file', () => (rmSync(join(dir, 'lib/sub/d'), { recursive: true }), writeFileSync(join(dir, 'lib/sub/d'), 'now a file')), [L, L, L]],
    ['a file excluded from deps added (its entries the same: app keeps its key)', () => w('lib/sub/NOTES.md', 'notes'), [L, U, L]],
    ['a file only the merged layer reads added', () => w('extra/top.txt', 'top'), [U, U, L]],
    ["the merged layer's single file rewritten", () => writeFileSync(join(dir, 'app/main.js'), 'MAIN'), [U, L, L]],
  ];
  it.each(changes)('lists a layer again after %s, and finds it unchanged once recorded again', async (_, change, expected) => {
    await recordWalks();
    await listsAfter(change, expected);
    const later = await reusing();
    expect(kinds(later.plan)).toEqual(ALL_UNCHANGED);
    await expectSameAsListing(later.plan);
  });

  it('lists a layer whose file another plan re-hashed after a chmod (the stat cache vouches, the walk does not)', async () => {
    await recordWalks();
    chmodSync(join(dir, 'lib/a.txt'), 0o755);
    await settle();
    await listing(); // records the new stat with the same digest
    const after = await reusing();
    expect(kinds(after.plan)[0]).toBe('listed');
    const a = (after.plan.layers[0] as { entries: { path: string; mode: number }[] }).entries.find((e) => e.path === 'opt/lib/a.txt');
    expect(a?.mode).toBe(0o755);
    await expectSameAsListing(after.plan);
  });

  it('lists a layer again when its spec changes, and the layer above when a lower one does', async () => {
    await recordWalks();
    await listsAfter(() => writeSpec('["**/*.md", "sub/d"]'), [L, L, L]);
    await listsAfter(() => w('app/more.js', 'more'), [U, L, L]);
    await listsAfter(() => writeSpec('["**/*.md", "sub/d"]', 'y'), [U, U, L]); // the merged layer's inline file
  });

  it('lists a layer above an unchanged one that removes a directory as a listing would: its parents take nothing from the removed one', async () => {
    writeFileSync(
      file(),
      `apiVersion: imgbuild/v1\nname: t/rm\ncontext: .\nlayers:\n` +
        `  - name: base\n    dirs: [{ path: /opt/lib, mode: "0700", owner: "5:5" }]\n    copy:\n      - { from: lib/, to: /opt/lib/, exclude: ["**/*.md"] }\n` +
        `  - name: rm\n    remove: [/opt/lib]\n    copy:\n      - { from: app/main.js, to: /srv/main.js }\n` +
        `  - name: app\n    copy:\n      - { from: app/, to: /opt/lib/app/ }\n` +
        `output:\n  - oci: ./out\n`,
    );
    await recordWalks();
    await listsAfter(() => w('app/more.js', 'more'), [U, U, L]);
    const top = (await listing()).plan.layers[2]!;
    expect(top.entries.find((e) => e.path === 'opt/lib')).toMatchObject({ mode: 0o755, uid: 0, gid: 0 });
  });

  it('refuses a layer writing below the symlink of an unchanged layer under it, as a listing would', async () => {
    const spec = (to: string) =>
      `apiVersion: imgbuild/v1\nname: t/link\ncontext: .\nlayers:\n` +
      `  - name: base\n    symlinks: [{ path: /opt/current, target: lib }]\n    copy:\n      - { from: lib/, to: /opt/lib/, exclude: ["**/*.md"] }\n` +
      `  - name: app\n    copy:\n      - { from: app/, to: ${to} }\n` +
      `output:\n  - oci: ./out\n`;
    writeFileSync(file(), spec('/opt/app/'));
    await reusing();
    await settle();
    await reusing();
    expect(kinds((await reusing()).plan)).toEqual([U, U]);
    writeFileSync(file(), spec('/opt/current/app/'));
    // The unchanged layer's record keeps its links' targets: the hint names the same path as a listing's.
    const refused = { message: expect.stringContaining('1 problem'), diagnostics: [expect.objectContaining({ message: 'layer "app" writes below /opt/current, which a lower layer made a symlink to lib', hint: expect.stringMatching(/^write below \/opt\/lib instead/) })] };
    await expect(reusing()).rejects.toMatchObject(refused);
    await expect(listing()).rejects.toMatchObject(refused);
  });

  /** A spec copying ctx/a/b/, planned until its layer is found unchanged; returns the plan, as layer kinds. */
  async function deepCopyFoundUnchanged(): Promise<() => Promise<string[]>> {
    writeFileSync(join(dir, 'deep.yaml'), `apiVersion: imgbuild/v1\nname: t/deep\ncontext: ctx\nlayers:\n  - name: l\n    copy:\n      - { from: a/b/, to: /x/ }\noutput:\n  - oci: ../out-deep\n`);
    w('ctx/a/b/f.txt', 'public');
    await settle();
    const plan = async () => kinds((await planSpec(join(dir, 'deep.yaml'), { cacheDir, env: {}, reuseWalks: true })).plan);
    await plan();
    await settle();
    await plan();
    expect(await plan()).toEqual(['unchanged']);
    return plan;
  }

  it('refuses a copy whose root now leads out of the context, though every stamp of its walk holds', async () => {
    const plan = await deepCopyFoundUnchanged();
    // The parent moved out of the context (inodes and times kept) and a symlink left to it.
    const outside = mkdtempSync(join(tmpdir(), 'imgbuild-outside-'));
    renameSync(join(dir, 'ctx/a'), join(outside, 'a'));
    symlinkSync(join(outside, 'a'), join(dir, 'ctx/a'));
    const err = (await plan().catch((e: unknown) => e)) as SpecError;
    expect(err).toBeInstanceOf(SpecError);
    expect(err.diagnostics.map((d) => d.message)).toEqual(['source "a/b" leads outside the context through a symlink']);
    rmSync(outside, { recursive: true, force: true });
  });

  it('refuses a copy whose root\'s parent directory became a file as a listing does, though its walk was recorded', async () => {
    const plan = await deepCopyFoundUnchanged();
    rmSync(join(dir, 'ctx/a'), { recursive: true });
    writeFileSync(join(dir, 'ctx/a'), 'now a file');
    const err = (await plan().catch((e: unknown) => e)) as SpecError;
    expect(err).toBeInstanceOf(SpecError);
    expect(err.diagnostics.map((d) => d.message)).toEqual(['source "a/b" does not exist in the context']);
  });

  it('always lists a layer that copies a symlink on its own, which no stamp covers', async () => {
    writeFileSync(join(dir, 'link.yaml'), `apiVersion: imgbuild/v1\nname: t/link\ncontext: .\nlayers:\n  - name: l\n    copy:\n      - { from: lib/link, to: /link }\noutput:\n  - oci: ./out-link\n`);
    const plan = async () => kinds((await planSpec(join(dir, 'link.yaml'), { cacheDir, env: {}, reuseWalks: true })).plan);
    expect(await plan()).toEqual(['listed']);
    await settle();
    expect(await plan()).toEqual(['listed']);
    expect(await plan()).toEqual(['listed']);
  });

  it('does not record a walk while a file is too freshly changed for the stat cache to trust its digest', async () => {
    await recordWalks();
    writeFileSync(join(dir, 'lib/a.txt'), 'zzzz'); // same size, same directory: only the file's stat moves
    expect(kinds((await reusing()).plan)[0]).toBe('listed');
    expect(kinds((await reusing()).plan)[0]).toBe('listed');
    await settle();
    await reusing();
    expect(kinds((await reusing()).plan)[0]).toBe('unchanged');
  });

  it('builds on, listing every layer, when walk records cannot be kept', async () => {
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(join(cacheDir, 'walks'), 'not a directory');
    const build = () => apply(file(), { cacheDir, env: {} });
    const first = await build();
    const second = await build();
    expect(kinds(second.planned.plan)).toEqual(['listed', 'listed', 'listed']);
    expect(second.layers.map((l) => l.cached)).toEqual([true, true, true]);
    expect(second.digest).toBe(first.digest);
  });

  it('does not stamp a directory changed within the margin, nor one gone', async () => {
    const stamps = new WalkStamps();
    stamps.before(join(dir, 'lib'));
    expect(stamps.unrecordable).toBe(false);
    expect(stamps.dirPaths).toEqual([join(dir, 'lib')]);
    w('lib/fresh.txt', 'x');
    stamps.before(join(dir, 'lib'));
    expect(stamps.unrecordable).toBe(true);
    const gone = new WalkStamps();
    gone.before(join(dir, 'nowhere'));
    expect(gone.unrecordable).toBe(true);
    // Its parent replaced by a file since it was listed.
    const underFile = new WalkStamps();
    underFile.before(join(dir, 'lib/a.txt/sub'));
    expect(underFile.unrecordable).toBe(true);
  });

  it('a build whose unchanged layer lost its blob lists and builds it again, to the same image', async () => {
    const build = () => apply(file(), { cacheDir, env: {} });
    const first = await build();
    await settle(); // past the margin of out/ and cache/, made in the context the merged layer walks
    await build(); // records the walks (the first build hashed as it wrote: no keys to record at plan time)
    const blobs = join(cacheDir, 'blobs', 'sha256');
    for (const layer of first.layers) rmSync(join(blobs, layer.record.digest.slice('sha256:'.length)));
    const third = await build();
    expect(kinds(third.planned.plan)).toEqual(ALL_UNCHANGED);
    expect(third.layers.map((l) => l.cached)).toEqual([false, false, false]);
    expect(third.digest).toBe(first.digest);
    expect(readdirSync(blobs)).toEqual(expect.arrayContaining(first.layers.map((l) => l.record.digest.slice('sha256:'.length))));
  });

  it('a build logging into its context lists an unchanged layer that lost its blob without its log, as its plan did', async () => {
    const log = join(dir, 'build.log');
    w('build.log', 'a line of the log\n');
    const build = () => apply(file(), { cacheDir, env: {}, logFiles: [log] });
    const first = await build();
    await settle();
    await build(); // records the walks
    const blobs = join(cacheDir, 'blobs', 'sha256');
    for (const layer of first.layers) rmSync(join(blobs, layer.record.digest.slice('sha256:'.length)));
    writeFileSync(log, 'a line of the log\nand another\n');
    const third = await build();
    expect(kinds(third.planned.plan)).toEqual(ALL_UNCHANGED);
    expect(third.digest).toBe(first.digest);
  });
});

describe('walk records', () => {
  const dirStamp = { mtimeMs: 1.5, ctimeMs: 2.25, ino: 3, dev: 4 };
  const files = [
    { path: '/ctx/lib/a', stat: { size: 3, mtimeMs: 5.5, ctimeMs: 6.5, ino: 7, dev: 4 } },
    { path: '/ctx/lib/é', stat: { size: 4, mtimeMs: 8.5, ctimeMs: 9.5, ino: 10, dev: 4 } },
  ];
  const dirStamps = new NumberColumn();
  stampDir(dirStamps, dirStamp);
  const fileStats = new NumberColumn();
  for (const f of files) statFile(fileStats, f.stat);
  const snapshot: WalkSnapshot = {
    inputs: sha256('inputs'),
    cacheKey: sha256('key'),
    files: 2,
    bytes: 7,
    dirPaths: ['/ctx/lib'],
    dirStamps: dirStamps.values(),
    filePaths: files.map((f) => f.path),
    fileStats: fileStats.values(),
    dirEntries: [{ path: 'opt/lib', mode: 0o750, uid: 1000, gid: 1001, type: 'dir' }],
    linkPaths: ['bin', 'opt/lib/current'],
    impliedDirs: ['usr/local/bin'],
    linkTargets: ['usr/bin', '../lib'],
    destinations: ['opt/lib'],
  };

  it('round-trips, and reads anything cut short as no record', () => {
    const buf = Buffer.concat(WalkRecord.encode(snapshot));
    const r = WalkRecord.decode(buf)!;
    expect({ inputs: r.inputs, cacheKey: r.cacheKey, files: r.files, bytes: r.bytes }).toEqual({ inputs: snapshot.inputs, cacheKey: snapshot.cacheKey, files: 2, bytes: 7 });
    expect(r.dirPath(0)).toBe('/ctx/lib');
    expect(r.dirMatches(0, dirStamp)).toBe(true);
    expect(r.dirMatches(0, { ...dirStamp, ctimeMs: 2.5 })).toBe(false);
    files.forEach((f, i) => {
      expect(r.filePath(i)).toBe(f.path);
      expect(r.fileMatches(i, f.stat)).toBe(true);
      expect(r.fileMatches(i, { ...f.stat, size: f.stat.size + 1 })).toBe(false);
    });
    expect(r.dirEntries()).toEqual(snapshot.dirEntries);
    expect(r.linkPaths()).toEqual(snapshot.linkPaths);
    expect(r.impliedDirs).toEqual(['usr/local/bin']);
    expect(r.linkTargets).toEqual(['usr/bin', '../lib']);
    expect(r.destinations).toEqual(['opt/lib']);
    for (const cut of [0, 10, buf.length - 1]) expect(WalkRecord.decode(buf.subarray(0, cut))).toBeUndefined();
  });

  it('reads a record with any byte flipped as no record (a directory entry mode or link target would go into the image as read)', () => {
    const buf = Buffer.concat(WalkRecord.encode(snapshot));
    const read: number[] = [];
    for (let i = 0; i < buf.length; i++) {
      const bad = Buffer.from(buf);
      bad[i]! ^= 0x10;
      if (WalkRecord.decode(bad) !== undefined) read.push(i);
    }
    expect(read).toEqual([]);
  });
});
