import { buffer } from 'node:stream/consumers';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchiveImage } from '../../src/image/archive-source.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Image } from '../../src/image/types.js';
import { writeDockerArchive } from '../../src/output/docker-archive.js';
import { writeOciLayout } from '../../src/output/oci-layout.js';
import { randomImage, runTool, validateLayout } from '../helpers/random-image.js';
import { missingTools } from '../helpers/tools.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imgbuild-asrc-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const drain = (s: Readable) => buffer(s);
const layerBytes = async (image: Image) => Promise.all((await image.layers()).map(async (l) => drain(await l.compressed())));
const hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * An archive as classic `docker save` wrote it: <id>/layer.tar (uncompressed), <hex>.json config,
 * and a third layer that is a symlink to the first. Returns the diff_ids the config lists.
 */
async function classicArchive(file: string, tars: Buffer[], damage = false): Promise<string[]> {
  const [l0, l1] = tars as [Buffer, Buffer];
  const diffIds = [l0, l1, l0].map((t) => `sha256:${hex(t)}`);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const pack = tar.pack();
  const out = drain(pack as unknown as Readable);
  const mtime = new Date(0);
  pack.entry({ name: 'aaaa/layer.tar', mtime }, l0);
  pack.entry({ name: 'bbbb/layer.tar', mtime }, damage ? Buffer.from(l1).fill(7, 600, 601) : l1);
  pack.entry({ name: 'cccc/layer.tar', type: 'symlink', linkname: '../aaaa/layer.tar', mtime });
  pack.entry({ name: `${hex(config)}.json`, mtime }, config);
  const manifest = [{ Config: `${hex(config)}.json`, RepoTags: ['old:1'], Layers: ['aaaa/layer.tar', 'bbbb/layer.tar', 'cccc/layer.tar'] }];
  pack.entry({ name: 'manifest.json', mtime }, JSON.stringify(manifest));
  pack.finalize();
  await writeFile(file, await out);
  return diffIds;
}

describe('openArchiveImage', () => {
  it('reads back what the docker-archive sink wrote, with the same manifest digest: the archive\'s own manifest, annotations and all', async () => {
    const image = await randomImage({ seed: 'ar', layers: 3, runtime: { Cmd: ['/app'] }, annotations: { 'org.opencontainers.image.base.name': 'scratch' } });
    const file = join(work, 'rt.tar');
    await writeDockerArchive(file, image, ['app:1']);
    const read = await openArchiveImage(file, { platform: { os: 'linux', architecture: 'amd64' } });
    expect(await read.digest()).toBe(await image.digest());
    expect(await layerBytes(read)).toEqual(image.newLayers.map((l) => l.blob));
    await expect(openArchiveImage(file, { platform: { os: 'linux', architecture: 'arm64' } })).rejects.toMatchObject({ kind: 'usage' });
  });

  it('reads a gzip-compressed archive by streaming through it', async () => {
    const image = await randomImage({ seed: 'gz', layers: 2 });
    const file = join(work, 'plain.tar');
    await writeDockerArchive(file, image, ['app:1']);
    await writeFile(`${file}.gz`, gzipSync(await readFile(file)));
    const read = await openArchiveImage(`${file}.gz`);
    expect(await layerBytes(read)).toEqual(image.newLayers.map((l) => l.blob));
  });

  it('reads the classic format: uncompressed layer tars, <hex>.json config, symlinked layers', async () => {
    const image = await randomImage({ seed: 'classic', layers: 2 });
    const file = join(work, 'classic.tar');
    const diffIds = await classicArchive(file, image.newLayers.map((l) => l.tar));
    const read = await openArchiveImage(file, { tag: 'old:1' });
    const manifest = await read.manifest();
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([MediaType.ociLayer, MediaType.ociLayer, MediaType.ociLayer]);
    expect(manifest.layers.map((l) => l.digest)).toEqual(diffIds);
    const bytes = await layerBytes(read);
    expect(bytes[2]).toEqual(image.newLayers[0]!.tar);
    await expect(openArchiveImage(file, { tag: 'other:1' })).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('old:1') });
    // The tag named as skopeo takes it: with the registry and library/ spelled out.
    for (const tag of ['docker.io/library/old:1', 'docker.io/old:1']) expect(await (await openArchiveImage(file, { tag })).digest()).toBe(await read.digest());
  });

  it('takes a tag without its ":latest", as skopeo does', async () => {
    const image = await randomImage({ seed: 'latest', layers: 1 });
    const file = join(work, 'latest.tar');
    await writeDockerArchive(file, image, ['t/base:latest']);
    for (const tag of ['t/base', 'docker.io/t/base:latest', 't/base:latest']) expect(await (await openArchiveImage(file, { tag })).digest(), tag).toBe(await image.digest());
    await expect(openArchiveImage(file, { tag: 't/base:1' })).rejects.toMatchObject({ kind: 'usage' });
  });

  it('refuses a classic layer whose bytes disagree with the config diff_ids', async () => {
    const image = await randomImage({ seed: 'classic-bad', layers: 2 });
    const file = join(work, 'classic-bad.tar');
    await classicArchive(file, image.newLayers.map((l) => l.tar), true);
    await expect(openArchiveImage(file)).rejects.toMatchObject({ kind: 'build', message: expect.stringContaining('bbbb/layer.tar') });
  });

  it('refuses an archive whose layer blob was corrupted', async () => {
    const image = await randomImage({ seed: 'bad', layers: 2 });
    const file = join(work, 'bad.tar');
    await writeDockerArchive(file, image, ['app:1']);
    const bytes = await readFile(file);
    const at = bytes.indexOf(image.newLayers[1]!.blob);
    expect(at).toBeGreaterThan(0);
    bytes.writeUInt8(bytes.readUInt8(at + 100) ^ 0xff, at + 100);
    await writeFile(file, bytes);
    await expect(openArchiveImage(file)).rejects.toMatchObject({ kind: 'build', message: expect.stringContaining('corrupt') });
  });

  it('refuses a layer changed after the archive was opened, when it is read', async () => {
    const image = await randomImage({ seed: 'late', layers: 1 });
    const file = join(work, 'late.tar');
    await writeDockerArchive(file, image, ['app:1']);
    const read = await openArchiveImage(file);
    const bytes = await readFile(file);
    const at = bytes.indexOf(image.newLayers[0]!.blob) + 50;
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
    await writeFile(file, bytes);
    await expect(layerBytes(read)).rejects.toMatchObject({ kind: 'build', message: expect.stringContaining('corrupt') });
  });

  it('calls a missing archive a usage error naming it, as a missing layout is', async () => {
    const file = join(work, 'no-such.tar');
    await expect(openArchiveImage(file)).rejects.toMatchObject({ kind: 'usage', message: `docker-archive:${file}: ${file} does not exist` });
  });

  it('says what is wrong with a tar that is not a docker archive', async () => {
    const file = join(work, 'nothing.tar');
    const pack = tar.pack();
    const out = drain(pack as unknown as Readable);
    pack.entry({ name: 'hello.txt' }, 'hi');
    pack.finalize();
    await writeFile(file, await out);
    await expect(openArchiveImage(file)).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('no manifest.json') });
    await writeFile(file, 'not a tar at all, just some text that is long enough to fill a header block');
    await expect(openArchiveImage(file)).rejects.toMatchObject({ kind: expect.stringMatching(/build|usage/) });
  });
});

describe.skipIf(missingTools('skopeo', 'umoci', 'oci-image-tool').length > 0)('archive made by skopeo as a base', () => {
  it('reads a skopeo docker-archive and builds on it an image that umoci unpacks', async () => {
    const layout = join(work, 'sk-layout');
    const file = join(work, 'sk.tar');
    await writeOciLayout(layout, { image: await randomImage({ seed: 'skb', layers: 2 }) }, ['b']);
    await runTool('skopeo', ['copy', `oci:${layout}:b`, `docker-archive:${file}:base:1`]);
    const base = await openArchiveImage(file, { tag: 'base:1' });
    const image = await randomImage({ base, seed: 'skt', layers: 1 });
    const out = join(work, 'sk-out');
    await writeOciLayout(out, { image }, ['app']);
    expect((await validateLayout(out, 'app')).filter((f) => f.endsWith('f0002'))).toHaveLength(3);
  });
});
