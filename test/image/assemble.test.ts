import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { assembleImage, assembleIndex } from '../../src/image/assemble.js';
import { canonicalJson } from '../../src/image/canonical-json.js';
import { buildConfigFile } from '../../src/image/config.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Layer } from '../../src/image/types.js';
import { randomImage, randomLayer } from '../helpers/random-image.js';

describe('canonicalJson', () => {
  it('keeps key order as written, drops undefined members and has no whitespace', () => {
    expect(Buffer.from(canonicalJson({ b: 1, a: [1, { y: undefined, x: 'é' }] })).toString()).toBe('{"b":1,"a":[1,{"x":"é"}]}');
  });
  it('refuses values that would silently become null', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow();
    expect(() => canonicalJson({ f: () => 1 })).toThrow();
  });
});

describe('assembleImage', () => {
  it('gives the same manifest digest for the same inputs', async () => {
    const one = await randomImage({ seed: 'same', layers: 2, annotations: { 'org.opencontainers.image.title': 'x' } });
    const two = await randomImage({ seed: 'same', layers: 2, annotations: { 'org.opencontainers.image.title': 'x' } });
    expect(await one.digest()).toBe(await two.digest());
    expect(Buffer.from(await one.rawManifest())).toEqual(Buffer.from(await two.rawManifest()));
  });

  it('pins the digest of a fixed manifest, so a change to config or manifest bytes is deliberate', async () => {
    // Fixed layer facts (not gzip output, which may change with zlib) isolate our own bytes.
    const fixed = (n: string): Layer => ({
      digest: async () => sha256(`blob ${n}`),
      diffId: async () => sha256(`tar ${n}`),
      size: async () => 1000 + n.length,
      mediaType: async () => MediaType.ociLayerGzip,
      compressed: async () => Readable.from([]),
    });
    const config = buildConfigFile({
      platform: { os: 'linux', architecture: 'amd64' },
      runtime: { Env: ['A=1'], Entrypoint: ['/app'], WorkingDir: '/srv', Labels: { l: 'v' } },
      diffIds: [sha256('tar deps'), sha256('tar app')],
      history: ['imgbuild layer deps', 'imgbuild layer app'],
      created: '2024-01-01T00:00:00Z',
    });
    const image = assembleImage({ layers: [fixed('deps'), fixed('app')], config, annotations: { 'org.opencontainers.image.title': 'demo' } });
    expect(await image.configDigest()).toMatchInlineSnapshot(`"sha256:bbbf292ff78d455c09a2d9c33635971dd77bf460c83f5bd9a13afae9b5f0eafa"`);
    expect(await image.digest()).toMatchInlineSnapshot(`"sha256:300334e2ef399c4775ef9f7372257cd680099fd2de6e6a5fa8b2ec8eb31226e6"`);
  });

  it('puts base layers first, then new ones, with an OCI manifest and config descriptor', async () => {
    const base = await randomImage({ seed: 'base', layers: 2 });
    const image = await randomImage({ base, seed: 'top', layers: 1, annotations: { a: 'b' } });
    const manifest = await image.manifest();
    const expected = [...base.newLayers, ...image.newLayers];
    expect(manifest.layers.map((l) => l.digest)).toEqual(await Promise.all(expected.map((l) => l.digest())));
    expect(manifest.mediaType).toBe(MediaType.ociManifest);
    expect(manifest.config).toEqual({ mediaType: MediaType.ociConfig, digest: sha256(await image.rawConfig()), size: (await image.rawConfig()).byteLength });
    expect(manifest.annotations).toEqual({ a: 'b' });
    expect(await image.digest()).toBe(sha256(await image.rawManifest()));
    expect(Object.keys(manifest)).toEqual(['schemaVersion', 'mediaType', 'config', 'layers', 'annotations']);
    await expect(image.layerByDigest(await expected[0]!.digest())).resolves.toBe(expected[0]);
  });

  it('renames a docker-typed base layer to its OCI media type (same bytes)', async () => {
    const layer = await randomLayer({ seed: 'docker' });
    const dockerLayer: Layer = { ...layer, mediaType: async () => MediaType.dockerLayerGzip };
    const config = buildConfigFile({ platform: { os: 'linux', architecture: 'amd64' }, runtime: {}, diffIds: [await layer.diffId()], history: ['l'], created: '1970-01-01T00:00:00Z' });
    const image = assembleImage({ layers: [dockerLayer], config, annotations: {} });
    expect((await image.manifest()).layers[0]?.mediaType).toBe(MediaType.ociLayerGzip);
  });

  it('refuses a config whose diff_ids disagree with the layers', async () => {
    const layer = await randomLayer({ seed: 'l' });
    const config = buildConfigFile({ platform: { os: 'linux', architecture: 'amd64' }, runtime: {}, diffIds: [sha256('other')], history: ['l'], created: '1970-01-01T00:00:00Z' });
    await expect(assembleImage({ layers: [layer], config, annotations: {} }).manifest()).rejects.toMatchObject({ kind: 'build' });
  });

  it('reads no layer bytes to make a manifest, and computes it once', async () => {
    const layer = await randomLayer({ seed: 'lazy' });
    let opened = 0;
    let sized = 0;
    const counted: Layer = { ...layer, compressed: async () => (opened++, Readable.from([])), size: async () => (sized++, layer.blob.length) };
    const config = buildConfigFile({ platform: { os: 'linux', architecture: 'amd64' }, runtime: {}, diffIds: [await layer.diffId()], history: ['l'], created: '1970-01-01T00:00:00Z' });
    const image = assembleImage({ layers: [counted], config, annotations: {} });
    await Promise.all([image.manifest(), image.digest(), image.rawManifest(), image.digest()]);
    expect([opened, sized]).toEqual([0, 1]);
  });
});

describe('assembleIndex', () => {
  it('lists each platform image with its descriptor, platform members in a fixed order', async () => {
    const amd = await randomImage({ seed: 'i1', layers: 1 });
    const arm = await randomImage({ seed: 'i2', layers: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const index = assembleIndex(
      [
        { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
        { image: arm, platform: { variant: 'v8', os: 'linux', architecture: 'arm64' } },
      ],
      {},
    );
    const doc = await index.index();
    expect(doc.mediaType).toBe(MediaType.ociIndex);
    expect(doc.manifests[1]).toEqual({
      mediaType: MediaType.ociManifest,
      digest: await arm.digest(),
      size: (await arm.rawManifest()).byteLength,
      platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
    });
    expect(Object.keys(doc.manifests[1]!.platform!)).toEqual(['architecture', 'os', 'variant']);
    expect(await index.image(await arm.digest())).toBe(arm);
    expect(await index.digest()).toBe(sha256(await index.rawIndex()));
  });
});
