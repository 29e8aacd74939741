import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { ContentStore } from '../../src/store/content-store.js';
import { LayerIndex, type LayerRecord } from '../../src/store/layer-index.js';
import { resolveCacheDir } from '../../src/store/cache-dir.js';
import { FileDigestCache } from '../../src/store/file-digests.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'imgbuild-index-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

async function setup() {
  const store = await ContentStore.open(root);
  const index = await LayerIndex.open(store);
  const digest = await store.putBytes(Buffer.from('layer blob'));
  const rec: LayerRecord = { digest, diffId: sha256('tar'), size: 10, mediaType: MediaType.ociLayerGzip, uncompressedSize: 1024 };
  return { store, index, rec, key: sha256('cache key') };
}

describe('LayerIndex', () => {
  it('round-trips a record and leaves no temp files', async () => {
    const { index, rec, key } = await setup();
    expect(await index.get(key)).toBeUndefined();
    await index.put(key, rec);
    expect(await index.get(key)).toEqual(rec);
    expect(readdirSync(join(root, 'layers'))).toEqual([`${key.slice(7)}.json`]);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('treats a record whose blob is gone as a miss', async () => {
    const { store, index, rec, key } = await setup();
    await index.put(key, rec);
    unlinkSync(store.blobPath(rec.digest));
    expect(await index.get(key)).toBeUndefined();
  });

  it('treats unreadable or malformed records as a miss', async () => {
    const { index, rec, key } = await setup();
    await index.put(key, rec);
    writeFileSync(index.recordPath(key), '{"digest": "sha256:12"');
    expect(await index.get(key)).toBeUndefined();
    writeFileSync(index.recordPath(key), JSON.stringify({ ...rec, size: -1 }));
    expect(await index.get(key)).toBeUndefined();
  });

  it('treats a record with a field changed that still parses as a miss (it would go into the image as read)', async () => {
    const { index, rec, key } = await setup();
    await index.put(key, rec);
    const text = readFileSync(index.recordPath(key), 'utf8');
    // A bit flipped in one hex digit of the diffId ("3" <-> "2"), in the size, or the record under another key's name.
    const flippedDiffId = text.replace(`"diffId":"${rec.diffId}"`, `"diffId":"${rec.diffId.replace(/[0-9a-f]$/, (c) => (parseInt(c, 16) ^ 1).toString(16))}"`);
    for (const bad of [flippedDiffId, text.replace('"size":10', '"size":11')]) {
      expect(bad).not.toBe(text);
      writeFileSync(index.recordPath(key), bad);
      expect(await index.get(key)).toBeUndefined();
    }
    const other = sha256('another key');
    writeFileSync(index.recordPath(other), text);
    expect(await index.get(other)).toBeUndefined();
    writeFileSync(index.recordPath(key), text);
    expect(await index.get(key)).toEqual(rec);
  });
});

describe('resolveCacheDir', () => {
  it('prefers the flag, then IMGBUILD_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
    const env = { IMGBUILD_CACHE_DIR: '/env/cache', XDG_CACHE_HOME: '/xdg', HOME: '/home/u' };
    expect(resolveCacheDir('/flag', env)).toBe('/flag');
    expect(resolveCacheDir(undefined, env)).toBe('/env/cache');
    expect(resolveCacheDir(undefined, { XDG_CACHE_HOME: '/xdg' })).toBe('/xdg/imgbuild');
    expect(resolveCacheDir(undefined, { XDG_CACHE_HOME: 'relative' })).toMatch(/\/\.cache\/imgbuild$/);
    expect(resolveCacheDir(undefined, {})).toMatch(/\/\.cache\/imgbuild$/);
  });

  it('names a cache directory that cannot be made, and how to choose another', async () => {
    writeFileSync(join(root, 'file'), 'x');
    await expect(ContentStore.open(join(root, 'file', 'cache'))).rejects.toMatchObject({
      kind: 'usage',
      message: `cannot use ${join(root, 'file', 'cache')} as the cache directory: ENOTDIR`,
      hint: expect.stringContaining('IMGBUILD_CACHE_DIR'),
    });
  });

  it('names a folder of the cache that is a file (EEXIST from deep inside it said neither), and says the cache may go', async () => {
    for (const part of ['tmp', 'blobs', 'layers', 'stat']) {
      const cache = join(root, `broken-${part}`);
      mkdirSync(cache, { recursive: true });
      writeFileSync(join(cache, part), 'x');
      const opened = ContentStore.open(cache).then((store) => LayerIndex.open(store)).then(() => FileDigestCache.open(cache, root));
      await expect(opened, part).rejects.toMatchObject({
        kind: 'usage',
        message: expect.stringMatching(new RegExp(`^cannot use ${cache} as the cache directory: ${part}(/sha256)? in it is not a directory$`)),
        hint: `remove ${cache} (a cache only makes builds faster), or pass --cache-dir DIR`,
      });
    }
  });
});
