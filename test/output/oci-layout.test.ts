import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleImage, assembleIndex, storeLayer } from '../../src/image/assemble.js';
import { buildConfigFile } from '../../src/image/config.js';
import { digestHex, type Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { ImageIndex } from '../../src/image/types.js';
import { writeOciLayout } from '../../src/output/oci-layout.js';
import { randomImage, runTool, validateLayout } from '../helpers/random-image.js';
import { missingTools } from '../helpers/tools.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imgbuild-layout-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const readIndex = async (dir: string) => JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
const refNames = (index: ImageIndex) => index.manifests.map((d) => d.annotations?.['org.opencontainers.image.ref.name']);

/** An image of one layer whose blob sits in a directory standing in for the content store. */
async function storedLayerImage(name: string, damage = false, writtenHere = false) {
  const storeDir = join(work, `store-${name}`);
  await mkdir(storeDir, { recursive: true });
  const source = (await randomImage({ seed: `store-${name}`, layers: 1 })).newLayers[0]!;
  const [digest, diffId] = [await source.digest(), await source.diffId()];
  const bytes = Buffer.from(source.blob);
  if (damage) bytes[bytes.length >> 1]! ^= 1;
  await writeFile(join(storeDir, digestHex(digest)), bytes);
  const store = {
    blobPath: (d: Digest) => join(storeDir, digestHex(d)),
    readStream: (d: Digest) => createReadStream(join(storeDir, digestHex(d))),
    has: async () => true,
    vouchedFor: async () => writtenHere,
  };
  const layer = storeLayer(store, { digest, diffId, size: source.blob.length, mediaType: MediaType.ociLayerGzip });
  const config = buildConfigFile({ platform: { os: 'linux', architecture: 'amd64' }, runtime: {}, diffIds: [diffId], history: ['l'], created: '1970-01-01T00:00:00Z' });
  return { image: assembleImage({ layers: [layer], config, annotations: {} }), digest, storePath: store.blobPath(digest) };
}

describe.skipIf(missingTools('skopeo', 'umoci', 'oci-image-tool').length > 0)('OCI layout read by real tools', () => {
  it('is accepted by oci-image-tool, umoci and skopeo', async () => {
    const dir = join(work, 'tools');
    const image = await randomImage({ seed: 'tools', layers: 3, filesPerLayer: 4, runtime: { Env: ['A=1'], Cmd: ['/app'] } });
    const result = await writeOciLayout(dir, { image }, ['registry.example/app:1.0']);
    expect(result.digest).toBe(await image.digest());
    const files = await validateLayout(dir, '1.0');
    expect(files.filter((f) => /\/f0003$/.test(f))).toHaveLength(3);
    const inspect = JSON.parse(await runTool('skopeo', ['inspect', `oci:${dir}:1.0`])) as { Digest: string; Layers: string[]; Env: string[] };
    expect(inspect.Digest).toBe(await image.digest());
    expect(inspect.Layers).toEqual(await Promise.all((await image.layers()).map((l) => l.digest())));
    expect(inspect.Env).toEqual(['A=1']);
  });

  it('writes a multi-platform index that skopeo resolves per platform', async () => {
    const dir = join(work, 'multi');
    const amd = await randomImage({ seed: 'amd', layers: 1, platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await randomImage({ seed: 'arm', layers: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const index = assembleIndex(
      [
        { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
        { image: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
      {},
    );
    await writeOciLayout(dir, { index }, ['multi']);
    const raw = JSON.parse(await runTool('skopeo', ['inspect', '--raw', `oci:${dir}:multi`])) as ImageIndex;
    expect(raw.mediaType).toBe(MediaType.ociIndex);
    expect(raw.manifests.map((m) => m.platform?.architecture)).toEqual(['amd64', 'arm64']);
    const armInspect = JSON.parse(
      await runTool('skopeo', ['--override-arch', 'arm64', '--override-variant', 'v8', 'inspect', `oci:${dir}:multi`]),
    ) as { Digest: string; Architecture: string; Layers: string[] };
    expect(armInspect.Digest).toBe(await index.digest());
    expect(armInspect.Architecture).toBe('arm64');
    expect(armInspect.Layers).toEqual([await arm.newLayers[0]!.digest()]);
    await runTool('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=multi', dir]);
  });
});

describe('index.json merging', () => {
  it('keeps other tags, replaces the same tag, and adds each untagged digest once', async () => {
    const dir = join(work, 'merge');
    const a = await randomImage({ seed: 'a', layers: 1 });
    const b = await randomImage({ seed: 'b', layers: 1 });
    await writeOciLayout(dir, { image: a }, ['app:one', 'two']);
    await writeOciLayout(dir, { image: b }, ['two', 'three']);
    await writeOciLayout(dir, { image: b }, []);
    await writeOciLayout(dir, { image: b }, []);
    const index = await readIndex(dir);
    expect(refNames(index)).toEqual(['one', 'two', 'three', undefined]);
    expect(index.manifests.map((d) => d.digest)).toEqual([await a.digest(), await b.digest(), await b.digest(), await b.digest()]);
  });

  it('keeps entries it did not write, including foreign annotations', async () => {
    const dir = join(work, 'foreign');
    const a = await randomImage({ seed: 'f', layers: 1 });
    await writeOciLayout(dir, { image: a }, ['x']);
    const index = await readIndex(dir);
    const foreign = { ...index.manifests[0]!, annotations: { 'org.opencontainers.image.ref.name': 'other', 'com.example': 'kept' } };
    await writeFile(join(dir, 'index.json'), JSON.stringify({ ...index, manifests: [foreign] }));
    await writeOciLayout(dir, { image: a }, ['y']);
    const after = await readIndex(dir);
    expect(after.manifests[0]).toEqual(foreign);
    expect(refNames(after)).toEqual(['other', 'y']);
  });

  it('leaves index.json alone when it already says what the write would (a rebuild that changed nothing)', async () => {
    const dir = join(work, 'unchanged');
    const a = await randomImage({ seed: 'u', layers: 1 });
    await writeOciLayout(dir, { image: a }, ['one', 'two']);
    const before = await stat(join(dir, 'index.json'));
    await writeOciLayout(dir, { image: a }, ['two', 'one']);
    await writeOciLayout(dir, { image: a }, ['one']);
    const after = await stat(join(dir, 'index.json'));
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    // Anything the merge changes is still written: another tag, or the same bytes spelled differently.
    await writeOciLayout(dir, { image: a }, ['three']);
    expect(refNames(await readIndex(dir))).toEqual(['one', 'two', 'three']);
    await writeFile(join(dir, 'index.json'), JSON.stringify(await readIndex(dir), null, 2));
    await writeOciLayout(dir, { image: a }, ['one']);
    expect(await readFile(join(dir, 'index.json'), 'utf8')).toBe(JSON.stringify(await readIndex(dir)));
  });

  it('lets go of the blobs of an image a tag moved away from one write later, keeping what the index still reaches', async () => {
    const base = await randomImage({ seed: 'gc-base', layers: 1 });
    const [a, b, c] = await Promise.all([randomImage({ seed: 'gc-a', layers: 1, base }), randomImage({ seed: 'gc-b', layers: 1, base }), randomImage({ seed: 'gc-c', layers: 1, base })]);
    const own = async (img: typeof a) => [await img.digest(), await img.configDigest(), await img.newLayers[0]!.digest()].map(digestHex);
    const shared = digestHex(await (await base.layers())[0]!.digest());
    const there = async (dir: string, hexes: string[]) => {
      const blobs = new Set(await readdir(join(dir, 'blobs', 'sha256')));
      return hexes.map((h) => blobs.has(h));
    };
    const dir = join(work, 'collect');
    await writeOciLayout(dir, { image: a }, ['latest']);
    await writeOciLayout(dir, { image: b }, ['latest']);
    // One write late: a reader that read the index before the tag moved still finds all of a.
    expect(await there(dir, await own(a))).toEqual([true, true, true]);
    await writeOciLayout(dir, { image: c }, ['latest']);
    expect(await there(dir, await own(a))).toEqual([false, false, false]);
    expect(await there(dir, [...(await own(b)), ...(await own(c)), shared])).toEqual(Array(7).fill(true));

    // An image another tag still names keeps every blob.
    const pinned = join(work, 'collect-pinned');
    await writeOciLayout(pinned, { image: a }, ['latest', 'pinned']);
    await writeOciLayout(pinned, { image: b }, ['latest']);
    await writeOciLayout(pinned, { image: c }, ['latest']);
    expect(await there(pinned, await own(a))).toEqual([true, true, true]);
    expect(await there(pinned, await own(b))).toEqual([true, true, true]);
  });

  it('keeps whole the image a write moves a tag away from, even where it shares blobs with the image it lets go of', async () => {
    // a and b share a base layer that c does not have: the third write lets go of a, and moves
    // latest away from b, whose reader (it read the index just before) must still find it whole.
    const [ab, other] = await Promise.all([randomImage({ seed: 'keep-ab', layers: 1 }), randomImage({ seed: 'keep-other', layers: 1 })]);
    const a = await randomImage({ seed: 'keep-a', layers: 1, base: ab });
    const b = await randomImage({ seed: 'keep-b', layers: 1, base: ab });
    const c = await randomImage({ seed: 'keep-c', layers: 1, base: other });
    const dir = join(work, 'collect-keep-replaced');
    for (const image of [a, b, c]) await writeOciLayout(dir, { image }, ['latest']);
    const blobs = new Set(await readdir(join(dir, 'blobs', 'sha256')));
    const ofB = [await b.digest(), await b.configDigest(), ...(await Promise.all((await b.layers()).map((l) => l.digest())))].map(digestHex);
    expect(ofB.filter((h) => !blobs.has(h))).toEqual([]);
    // One write later b goes too, shared layer and all.
    await writeOciLayout(dir, { image: await randomImage({ seed: 'keep-d', layers: 1 }) }, ['latest']);
    const after = new Set(await readdir(join(dir, 'blobs', 'sha256')));
    expect(ofB.filter((h) => after.has(h))).toEqual([]);
  });

  it('puts back a blob it names that another writer let go of while it waited for the lock', async () => {
    const dir = join(work, 'collect-race');
    const base = await randomImage({ seed: 'race-base', layers: 1 });
    const [a, b] = await Promise.all([randomImage({ seed: 'race-a', layers: 1, base }), randomImage({ seed: 'race-b', layers: 1, base })]);
    await writeOciLayout(dir, { image: a }, ['latest']);
    const shared = join(dir, 'blobs', 'sha256', digestHex(await (await base.layers())[0]!.digest()));
    // The lock held as by a live writer: b's write puts its blobs in, then waits for it.
    const lock = join(dir, '.imgbuild', 'index.lock');
    await writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), token: 'held' }));
    const writing = writeOciLayout(dir, { image: b }, ['b']);
    const manifest = join(dir, 'blobs', 'sha256', digestHex(await b.digest()));
    while (!(await stat(manifest).then(() => true, () => false))) await new Promise((r) => setTimeout(r, 5));
    // What the holder's collection would do to a blob no tag reached yet.
    await rm(shared);
    await rm(lock);
    await writing;
    expect((await stat(shared)).isFile()).toBe(true);
  });

  it('refuses a directory whose oci-layout file is not a layout file', async () => {
    const dir = join(work, 'notlayout');
    await writeOciLayout(dir, { image: await randomImage({ seed: 'n', layers: 1 }) }, ['t']);
    await writeFile(join(dir, 'oci-layout'), 'hello');
    await expect(writeOciLayout(dir, { image: await randomImage({ seed: 'n', layers: 1 }) }, ['t'])).rejects.toMatchObject({ kind: 'usage' });
  });
});

describe('blobs', () => {
  it('links a blob the store wrote and hashed in this process without reading it again', async () => {
    const dir = join(work, 'link-written-here');
    // Damaged on purpose: only a sink that skips the read links it (the store's own check is tested in content-store.test.ts).
    const { image, digest, storePath } = await storedLayerImage('written-here', true, true);
    await writeOciLayout(dir, { image }, ['t']);
    expect((await stat(join(dir, 'blobs', 'sha256', digestHex(digest)))).ino).toBe((await stat(storePath)).ino);
  });

  it('rewrites a truncated blob and leaves no temp files', async () => {
    const dir = join(work, 'repair');
    const image = await randomImage({ seed: 'r', layers: 2 });
    await writeOciLayout(dir, { image }, ['t']);
    const layer = (await image.layers())[0]!;
    const path = join(dir, 'blobs', 'sha256', digestHex(await layer.digest()));
    await writeFile(path, 'short');
    await writeOciLayout(dir, { image }, ['t']);
    expect((await stat(path)).size).toBe(await layer.size());
    expect(await readdir(join(dir, '.imgbuild', 'tmp'))).toEqual([]);
  });

  it('refuses a layer whose bytes do not match its digest, and names no such blob', async () => {
    const dir = join(work, 'bad-layer');
    const good = await randomImage({ seed: 'bad', layers: 1 });
    const layer = good.newLayers[0]!;
    const lying = { ...layer, compressed: async () => (await randomImage({ seed: 'other', layers: 1 })).newLayers[0]!.compressed() };
    const image = { ...good, layers: async () => [lying] };
    await expect(writeOciLayout(dir, { image }, ['t'])).rejects.toMatchObject({ kind: 'build' });
    await expect(stat(join(dir, 'blobs', 'sha256', digestHex(await layer.digest())))).rejects.toThrow();
    await expect(stat(join(dir, 'index.json'))).rejects.toThrow();
  });

  it('hard-links a blob from the content store instead of copying it', async () => {
    const dir = join(work, 'link');
    const { image, digest, storePath } = await storedLayerImage('link');
    await writeOciLayout(dir, { image }, ['t']);
    const [a, b] = await Promise.all([stat(storePath), stat(join(dir, 'blobs', 'sha256', digestHex(digest)))]);
    expect(b.ino).toBe(a.ino);
  });

  it('reads a layout blob linked from the store when the store cannot vouch for it, and does not leave it damaged', async () => {
    const dir = join(work, 'link-later-damaged');
    const { image, digest, storePath } = await storedLayerImage('later');
    await writeOciLayout(dir, { image }, ['t']);
    // Damaged in place after it was linked: the layout's copy is the same file.
    const bytes = await readFile(storePath);
    bytes[bytes.length >> 1]! ^= 1;
    await writeFile(storePath, bytes);
    await expect(writeOciLayout(dir, { image }, ['t'])).rejects.toMatchObject({ kind: 'build' });
    await expect(stat(join(dir, 'blobs', 'sha256', digestHex(digest)))).rejects.toThrow();
  });

  it('writes again a layer blob damaged through its link to the store, once the store holds a new file', async () => {
    const dir = join(work, 'link-damaged-then-replaced');
    const { image, digest, storePath } = await storedLayerImage('replaced');
    await writeOciLayout(dir, { image }, ['t']);
    const good = await readFile(storePath);
    const bad = Buffer.from(good);
    bad[bad.length >> 1]! ^= 1;
    // Damaged in place (same size, shared by the layout's link), then the store's file let go
    // and written anew, as `rm -rf` of the cache and a rebuild do.
    await writeFile(storePath, bad);
    await rm(storePath);
    await writeFile(storePath, good);
    await writeOciLayout(dir, { image }, ['t']);
    expect(await readFile(join(dir, 'blobs', 'sha256', digestHex(digest)))).toEqual(good);
  });

  it('writes again a config or manifest damaged in the layout, size kept', async () => {
    const dir = join(work, 'small-damaged');
    const image = await randomImage({ seed: 'small-damaged', layers: 1 });
    await writeOciLayout(dir, { image }, ['t']);
    const config = join(dir, 'blobs', 'sha256', digestHex(await image.configDigest()));
    const bytes = await readFile(config);
    await writeFile(config, Buffer.from(bytes).fill(0x20, 0, 1));
    await writeOciLayout(dir, { image }, ['t']);
    expect(await readFile(config)).toEqual(bytes);
  });

  it('never links a store blob whose bytes were damaged: the checked copy refuses it', async () => {
    const dir = join(work, 'link-damaged');
    const { image, digest } = await storedLayerImage('damaged', true);
    await expect(writeOciLayout(dir, { image }, ['t'])).rejects.toMatchObject({ kind: 'build' });
    await expect(stat(join(dir, 'blobs', 'sha256', digestHex(digest)))).rejects.toThrow();
  });
});

describe.skipIf(missingTools('umoci', 'oci-image-tool').length > 0)('validateLayout', () => {
  it('fails on a layout with a damaged blob (so tests that use it can fail)', async () => {
    const dir = join(work, 'damaged');
    const image = await randomImage({ seed: 'dmg', layers: 1 });
    await writeOciLayout(dir, { image }, ['t']);
    await validateLayout(dir, 't');
    await writeFile(join(dir, 'blobs', 'sha256', digestHex(await image.newLayers[0]!.digest())), 'not the layer');
    await expect(validateLayout(dir, 't')).rejects.toThrow();
  });
});
