/**
 * Pruning the cache: blobs go by their last use (written, or used by a build since), the least
 * recently used first when a size is to be kept, with their marks and layer records; a blob an
 * output layout links is counted apart, as removing it here frees nothing.
 */
import { existsSync, linkSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDuration, parseSize } from '../../src/cli/commands/cache.js';
import { digestHex, type Digest } from '../../src/image/digest.js';
import { apply } from '../../src/run/apply.js';
import { cacheUsage, pruneCache } from '../../src/store/prune.js';
import { ContentStore } from '../../src/store/content-store.js';
import { LayerIndex } from '../../src/store/layer-index.js';
import { runCli, TempDirs, writeSpec, writeTree } from '../helpers/imgbuild.js';

const temps = new TempDirs();
afterAll(() => temps.cleanup());

const DAY = 86_400_000;
const NOW = Date.now();

/** A store holding blobs of `sizes` bytes, each written `agesDays[i]` days ago, with a layer record for each. */
async function storeWith(agesDays: number[]): Promise<{ root: string; digests: Digest[]; store: ContentStore }> {
  const root = await temps.make('imgbuild-prune-');
  const store = await ContentStore.open(root);
  const index = await LayerIndex.open(store);
  const digests: Digest[] = [];
  for (const [i, age] of agesDays.entries()) {
    const d = await store.putBytes(Buffer.alloc(1000 * (i + 1), i + 1));
    const when = new Date(NOW - age * DAY);
    utimesSync(store.blobPath(d), when, when);
    await index.put(d, { digest: d, diffId: d, size: 1000 * (i + 1), mediaType: 'x', uncompressedSize: 1 });
    digests.push(d);
  }
  return { root, digests, store };
}

const blobsIn = (root: string) => readdirSync(join(root, 'blobs', 'sha256')).sort();
const hexes = (ds: Digest[]) => ds.map(digestHex).sort();

describe('cache prune', () => {
  it('removes the blobs unused for longer than asked, with their layer records', async () => {
    const { root, digests } = await storeWith([30, 10, 1]);
    const r = await pruneCache(root, { olderThanMs: 7 * DAY, now: NOW });
    expect(r.removed).toEqual({ count: 2, bytes: 3000, linkedBytes: 0 });
    expect(r.kept).toEqual({ count: 1, bytes: 3000, linkedBytes: 0 });
    expect(r.records).toBe(2);
    expect(blobsIn(root)).toEqual(hexes([digests[2]!]));
    expect(readdirSync(join(root, 'layers'))).toEqual([`${digestHex(digests[2]!)}.json`]);
  });

  it('keeps a blob a build used since it was written (its mark), and says what a dry run would remove without removing it', async () => {
    const { root, digests, store } = await storeWith([30, 30]);
    await store.markUsed([digests[1]!]);
    const dry = await pruneCache(root, { olderThanMs: 7 * DAY, now: NOW, dryRun: true });
    expect(dry).toMatchObject({ removed: { count: 1, bytes: 1000 }, records: 1 });
    expect(blobsIn(root)).toEqual(hexes(digests));
    await pruneCache(root, { olderThanMs: 7 * DAY, now: NOW });
    expect(blobsIn(root)).toEqual(hexes([digests[1]!]));
  });

  it('then removes the least recently used until what is left fits --max-size', async () => {
    const { root, digests } = await storeWith([3, 1, 2, 0]); // 1000, 2000, 3000, 4000 bytes
    const r = await pruneCache(root, { olderThanMs: 7 * DAY, keepBytes: 6500, now: NOW });
    // Oldest first: the 1000 (3 days), then the 3000 (2 days) leave 6000.
    expect(r.removed).toMatchObject({ count: 2, bytes: 4000 });
    expect(blobsIn(root)).toEqual(hexes([digests[1]!, digests[3]!]));
  });

  it('counts toward --max-size only the bytes the cache alone holds, and leaves a blob an output layout links to the age rule', async () => {
    const { root, digests, store } = await storeWith([3, 1, 2, 0]); // 1000, 2000, 3000, 4000 bytes
    const out = await temps.make('imgbuild-prune-out-');
    linkSync(store.blobPath(digests[0]!), join(out, 'blob'));
    // The cache's own 9000 bytes: the 3000 (2 days) goes, the linked 1000 (3 days) stays.
    const r = await pruneCache(root, { olderThanMs: 7 * DAY, keepBytes: 6500, now: NOW });
    expect(r.removed).toEqual({ count: 1, bytes: 3000, linkedBytes: 0 });
    expect(blobsIn(root)).toEqual(hexes([digests[0]!, digests[1]!, digests[3]!]));
  });

  it('counts a blob an output layout links as not freed', async () => {
    const { root, digests, store } = await storeWith([30]);
    const out = await temps.make('imgbuild-prune-out-');
    linkSync(store.blobPath(digests[0]!), join(out, 'blob'));
    expect((await cacheUsage(root, NOW - 7 * DAY)).unused).toEqual({ count: 1, bytes: 1000, linkedBytes: 1000 });
    expect((await pruneCache(root, { olderThanMs: 7 * DAY, now: NOW })).removed).toEqual({ count: 1, bytes: 1000, linkedBytes: 1000 });
    expect(existsSync(join(out, 'blob'))).toBe(true);
  });

  it('removes a layer record a build would take for a miss (it fails its check), and leaves what is not a record', async () => {
    const { root, digests } = await storeWith([1, 1]);
    const damaged = join(root, 'layers', `${digestHex(digests[0]!)}.json`);
    writeFileSync(damaged, readFileSync(damaged, 'utf8').replace('"size":1000', '"size":1001'));
    writeFileSync(join(root, 'layers', 'notes.txt'), 'kept');
    const r = await pruneCache(root, { olderThanMs: 7 * DAY, now: NOW });
    expect(r).toMatchObject({ removed: { count: 0 }, records: 1 });
    expect(readdirSync(join(root, 'layers')).sort()).toEqual([`${digestHex(digests[1]!)}.json`, 'notes.txt']);
  });

  it('reads ages and sizes as people write them', () => {
    expect([parseDuration('0'), parseDuration('90s'), parseDuration('12h'), parseDuration('7d'), parseDuration('2w')]).toEqual([0, 90_000, 12 * 3_600_000, 7 * DAY, 14 * DAY]);
    expect([parseSize('500MB'), parseSize('1.5G'), parseSize('2GiB'), parseSize('1024')]).toEqual([500e6, 1.5e9, 2 * 2 ** 30, 1024]);
    expect(() => parseDuration('7')).toThrow(/not a duration/);
    expect(() => parseSize('10 apples')).toThrow(/not a size/);
  });
});

describe('imgbuild cache', () => {
  it('keeps what a build used today, prunes it all with --older-than 0, and the next build makes it again', async () => {
    const dir = await temps.make();
    const cache = join(dir, 'cache');
    await writeTree(dir, { 'app/a.txt': 'a' });
    const spec = await writeSpec(dir, { name: 't/app', layers: [{ name: 'app', copy: [{ from: 'app/', to: '/app/' }] }], output: [{ oci: './out' }] });
    const build = () => apply(spec, { cacheDir: cache, env: {} });
    const first = await build();
    // Written long ago, but found in the cache by a build today: in use.
    const blob = join(cache, 'blobs', 'sha256', digestHex(first.layers[0]!.record.digest));
    const old = new Date(NOW - 30 * DAY);
    utimesSync(blob, old, old);
    expect((await build()).layers[0]!.cached).toBe(true);
    const kept = await runCli(['cache', 'prune', '--cache-dir', cache, '--json']);
    expect(JSON.parse(kept.stdout)).toMatchObject({ type: 'pruned', removed: { count: 0 } });
    const info = await runCli(['cache', 'info', '--cache-dir', cache]);
    expect(info.stdout).toMatch(/blobs +1 blob \(\d+ B, \d+ B of it also linked from output layouts\)/);
    const all = await runCli(['cache', 'prune', '--older-than', '0', '--cache-dir', cache]);
    expect(all.exitCode).toBe(0);
    expect(all.stdout).toMatch(/^removed 1 blob \(.*\) and 1 layer record from .*: 0 B freed\n/);
    expect(blobsIn(cache)).toEqual([]);
    const again = await build();
    expect(again.layers[0]!.cached).toBe(false);
    expect(again.digest).toBe(first.digest);
  });

  it('keeps a blob a build made again and found already in the store (its record missed), as used', async () => {
    const dir = await temps.make();
    const cache = join(dir, 'cache');
    await writeTree(dir, { 'app/a.txt': 'a' });
    const spec = await writeSpec(dir, { name: 't/app', layers: [{ name: 'app', copy: [{ from: 'app/', to: '/app/' }] }], output: [{ oci: './out' }] });
    const first = await apply(spec, { cacheDir: cache, env: {} });
    const hex = digestHex(first.layers[0]!.record.digest);
    const old = new Date(NOW - 30 * DAY);
    utimesSync(join(cache, 'blobs', 'sha256', hex), old, old);
    // A record that reads as a miss (an older imgbuild's, say): the layer is built, to the same blob.
    for (const name of readdirSync(join(cache, 'layers'))) rmSync(join(cache, 'layers', name));
    const again = await apply(spec, { cacheDir: cache, env: {} });
    expect(again.layers[0]!.cached).toBe(false);
    expect((await pruneCache(cache, { olderThanMs: 7 * DAY })).removed.count).toBe(0);
    expect(blobsIn(cache)).toEqual([hex]);
  });

  it('says a cache directory that does not exist holds nothing, and refuses one that is a file, as a usage error', async () => {
    const dir = await temps.make();
    const none = await runCli(['cache', 'prune', '--cache-dir', join(dir, 'none'), '--json']);
    expect(none.exitCode).toBe(0);
    expect(JSON.parse(none.stdout)).toMatchObject({ removed: { count: 0 }, kept: { count: 0 } });
    expect(existsSync(join(dir, 'none'))).toBe(false);
    await writeTree(dir, { file: 'x' });
    for (const sub of ['info', 'prune']) {
      const r = await runCli(['cache', sub, '--cache-dir', join(dir, 'file')]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/cannot use .*file as the cache directory: it is not a directory/);
    }
  });

  it('refuses an age or size it cannot read, as a usage error', async () => {
    const r = await runCli(['cache', 'prune', '--older-than', '7days', '--cache-dir', await temps.make()]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--older-than 7days is not a duration/);
  });
});
