import { buffer } from 'node:stream/consumers';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleIndex } from '../../src/image/assemble.js';
import { digestHex, sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { openLayoutImage, parseLayoutRef } from '../../src/image/layout-source.js';
import { selectPlatform } from '../../src/image/platform.js';
import type { Image, ImageIndex } from '../../src/image/types.js';
import { writeOciLayout } from '../../src/output/oci-layout.js';
import { randomImage, runTool, validateLayout } from '../helpers/random-image.js';
import { missingTools } from '../helpers/tools.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imgbuild-lsrc-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const drain = (s: Readable) => buffer(s);

async function layerBytes(image: Image): Promise<Buffer[]> {
  return Promise.all((await image.layers()).map(async (l) => drain(await l.compressed())));
}

describe('parseLayoutRef', () => {
  it('splits a tag after the last slash only', () => {
    expect(parseLayoutRef('oci:./dir')).toEqual({ path: './dir' });
    expect(parseLayoutRef('oci:./dir:1.0')).toEqual({ path: './dir', tag: '1.0' });
    expect(parseLayoutRef('oci:/a:b/c')).toEqual({ path: '/a:b/c' });
    expect(() => parseLayoutRef('oci:dir:')).toThrow(/empty/);
  });
});

describe('openLayoutImage', () => {
  it('reads back exactly what the sink wrote', async () => {
    const dir = join(work, 'roundtrip');
    const image = await randomImage({ seed: 'rt', layers: 3, runtime: { Env: ['K=V'] } });
    await writeOciLayout(dir, { image }, ['v1']);
    const read = await openLayoutImage(dir, { tag: 'v1' });
    expect(await read.digest()).toBe(await image.digest());
    expect(await read.configFile()).toEqual(await image.configFile());
    expect(await layerBytes(read)).toEqual(image.newLayers.map((l) => l.blob));
    const diffIds = await Promise.all((await read.layers()).map((l) => l.diffId()));
    expect(diffIds).toEqual((await image.configFile()).rootfs.diff_ids);
  });

  it('takes the only image without a tag, and asks for one when there are several', async () => {
    const dir = join(work, 'choose');
    const a = await randomImage({ seed: 'c1', layers: 1 });
    // One image under two tags is still the only image.
    await writeOciLayout(dir, { image: a }, ['one', 'uno']);
    expect(await (await openLayoutImage(dir)).digest()).toBe(await a.digest());
    await writeOciLayout(dir, { image: await randomImage({ seed: 'c2', layers: 1 }) }, ['two']);
    await expect(openLayoutImage(dir)).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('one, uno, two') });
    await expect(openLayoutImage(dir, { tag: 'three' })).rejects.toMatchObject({ kind: 'usage', message: expect.stringMatching(/no image tagged three; it has one, uno, two/) });
    await expect(openLayoutImage(join(work, 'nowhere'))).rejects.toMatchObject({ kind: 'usage' });
  });

  it('takes the arm/v7 entry of an index whose config names no variant (optional there), and plain arm as v7', async () => {
    const dir = join(work, 'armv7');
    const arm = await randomImage({ seed: 'v7', layers: 1, platform: { os: 'linux', architecture: 'arm' } });
    const amd = await randomImage({ seed: 'v7amd', layers: 1 });
    const index = assembleIndex([{ image: amd, platform: { os: 'linux', architecture: 'amd64' } }, { image: arm, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }], {});
    await writeOciLayout(dir, { index }, ['m']);
    expect(await (await openLayoutImage(dir, { tag: 'm', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } })).digest()).toBe(await arm.digest());
    const plain = join(work, 'armplain');
    await writeOciLayout(plain, { image: arm }, ['p']);
    expect(await (await openLayoutImage(plain, { tag: 'p', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } })).digest()).toBe(await arm.digest());
  });

  it('follows index entries that are themselves indexes and name no platform, each in turn, as engines do', async () => {
    const dir = join(work, 'nested');
    const amd = await randomImage({ seed: 'n1', layers: 1 });
    const arm = await randomImage({ seed: 'n2', layers: 1, platform: { os: 'linux', architecture: 'arm64' } });
    const amdIndex = assembleIndex([{ image: amd, platform: { os: 'linux', architecture: 'amd64' } }], {});
    const armIndex = assembleIndex([{ image: arm, platform: { os: 'linux', architecture: 'arm64' } }], {});
    await writeOciLayout(dir, { index: amdIndex }, ['amd']);
    await writeOciLayout(dir, { index: armIndex }, ['arm']);
    // An outer index whose entries are the two indexes, with no platform (none is required there).
    const entry = async (i: typeof amdIndex) => ({ mediaType: MediaType.ociIndex, digest: await i.digest(), size: (await i.rawIndex()).byteLength });
    const outer = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [await entry(amdIndex), await entry(armIndex)] }));
    await writeFile(join(dir, 'blobs', 'sha256', digestHex(sha256(outer))), outer);
    const top = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
    top.manifests.push({ mediaType: MediaType.ociIndex, digest: sha256(outer), size: outer.byteLength, annotations: { 'org.opencontainers.image.ref.name': 'outer' } });
    await writeFile(join(dir, 'index.json'), JSON.stringify(top));
    expect(await (await openLayoutImage(dir, { tag: 'outer', platform: { os: 'linux', architecture: 'amd64' } })).digest()).toBe(await amd.digest());
    expect(await (await openLayoutImage(dir, { tag: 'outer', platform: { os: 'linux', architecture: 'arm64' } })).digest()).toBe(await arm.digest());
    await expect(openLayoutImage(dir, { tag: 'outer', platform: { os: 'linux', architecture: 's390x' } })).rejects.toMatchObject({
      kind: 'usage',
      message: expect.stringContaining('has no image for platform linux/s390x'),
      hint: 'it offers: linux/amd64, linux/arm64',
    });
  });

  it('takes arm/v7 for plain linux/arm from an index that lists arm/v6 first, as engines do', async () => {
    const dir = join(work, 'armv6v7');
    const v6 = await randomImage({ seed: 'v6', layers: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } });
    const v7 = await randomImage({ seed: 'v7b', layers: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } });
    const index = assembleIndex([{ image: v6, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } }, { image: v7, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }], {});
    await writeOciLayout(dir, { index }, ['m']);
    expect(await (await openLayoutImage(dir, { tag: 'm', platform: { os: 'linux', architecture: 'arm' } })).digest()).toBe(await v7.digest());
    expect(await (await openLayoutImage(dir, { tag: 'm', platform: { os: 'linux', architecture: 'arm', variant: 'v6' } })).digest()).toBe(await v6.digest());
    expect(selectPlatform((await index.index()).manifests, { os: 'linux', architecture: 'arm' }, 'the index').digest).toBe(await v7.digest());
  });

  it('picks the platform from an index, and says which platforms there are otherwise', async () => {
    const dir = join(work, 'index');
    const amd = await randomImage({ seed: 'x1', layers: 1 });
    const arm = await randomImage({ seed: 'x2', layers: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const index = assembleIndex(
      [
        { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
        { image: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
      {},
    );
    await writeOciLayout(dir, { index }, ['multi']);
    const got = await openLayoutImage(dir, { tag: 'multi', platform: { os: 'linux', architecture: 'arm64' } });
    expect(await got.digest()).toBe(await arm.digest());
    await expect(openLayoutImage(dir, { tag: 'multi' })).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('linux/amd64, linux/arm64/v8') });
    await expect(openLayoutImage(dir, { tag: 'multi', platform: { os: 'linux', architecture: 's390x' } })).rejects.toMatchObject({ message: expect.stringContaining('no image for platform linux/s390x'), hint: 'it offers: linux/amd64, linux/arm64/v8' });
  });

  it('refuses a corrupted layer when it is read, so nothing built from it is written', async () => {
    const dir = join(work, 'corrupt-layer');
    const image = await randomImage({ seed: 'cl', layers: 2 });
    await writeOciLayout(dir, { image }, ['t']);
    const path = join(dir, 'blobs', 'sha256', digestHex(await image.newLayers[1]!.digest()));
    const bytes = await readFile(path);
    bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0xff, bytes.length >> 1);
    await writeFile(path, bytes);
    const read = await openLayoutImage(dir, { tag: 't' });
    await expect(drain(await (await read.layers())[1]!.compressed())).rejects.toMatchObject({ kind: 'build', message: expect.stringContaining('corrupt') });
    const out = join(work, 'copy-of-corrupt');
    await expect(writeOciLayout(out, { image: read }, ['t'])).rejects.toMatchObject({ kind: 'build' });
    await expect(readFile(join(out, 'index.json'))).rejects.toThrow();
  });

  it('refuses a corrupted config or manifest when opening', async () => {
    const dir = join(work, 'corrupt-config');
    const image = await randomImage({ seed: 'cc', layers: 1 });
    await writeOciLayout(dir, { image }, ['t']);
    const path = join(dir, 'blobs', 'sha256', digestHex(await image.configDigest()));
    await writeFile(path, (await readFile(path, 'utf8')).replace('amd64', 'arm64'));
    await expect(openLayoutImage(dir, { tag: 't' })).rejects.toMatchObject({ kind: 'build', message: expect.stringContaining('corrupt') });
  });

  it('refuses digests that are not sha256 hex, rather than using them as paths', async () => {
    const dir = join(work, 'hostile');
    await writeOciLayout(dir, { image: await randomImage({ seed: 'h', layers: 1 }) }, ['t']);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
    (index.manifests[0] as { digest: string }).digest = 'sha256:../../../../etc/passwd';
    await writeFile(join(dir, 'index.json'), JSON.stringify(index));
    await expect(openLayoutImage(dir, { tag: 't' })).rejects.toMatchObject({ kind: 'build', message: expect.stringContaining('invalid digest') });
  });
});

describe.skipIf(missingTools('skopeo', 'umoci', 'oci-image-tool').length > 0)('layout made by skopeo as a base', () => {
  it('reads a skopeo-written layout and builds on it an image that umoci unpacks', async () => {
    const first = join(work, 'ours');
    const theirs = join(work, 'theirs');
    const base = await randomImage({ seed: 'skbase', layers: 2, runtime: { Env: ['PATH=/bin'], Cmd: ['sh'] } });
    await writeOciLayout(first, { image: base }, ['base']);
    await runTool('skopeo', ['copy', `oci:${first}:base`, `oci:${theirs}:base`]);
    const read = await openLayoutImage(theirs, { tag: 'base', platform: { os: 'linux', architecture: 'amd64' } });
    const image = await randomImage({ base: read, seed: 'sktop', layers: 1, runtime: { Env: ['APP=1'] } });
    expect((await image.configFile()).config.Env).toEqual(['PATH=/bin', 'APP=1']);
    const out = join(work, 'built');
    await writeOciLayout(out, { image }, ['app']);
    const files = await validateLayout(out, 'app');
    expect(files.filter((f) => f.endsWith('f0002'))).toHaveLength(3);
  });
});

describe('a path that holds no layout', () => {
  it('is said not to exist when it does not, and not to be a layout when it is a folder without one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imgbuild-nolayout-'));
    await expect(openLayoutImage(join(dir, 'nothere'))).rejects.toMatchObject({ kind: 'usage', message: `oci:${join(dir, 'nothere')}: ${join(dir, 'nothere')} does not exist` });
    await expect(openLayoutImage(dir)).rejects.toMatchObject({ kind: 'usage', message: expect.stringMatching(/is not an OCI image layout \(no valid oci-layout file\)$/) });
    await rm(dir, { recursive: true, force: true });
  });
});
