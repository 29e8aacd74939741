/**
 * Push and pull against a real CNCF Distribution registry: round trip with verified digests,
 * idempotent second push, shared base layers, cross-repository mounts, chunked uploads, index
 * platform selection, and pulled blobs cached by digest.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, sha256, type Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { RegistryClient } from '../../src/registry/client.js';
import { parseRef } from '../../src/registry/reference.js';
import { pushImage, type PushEvent } from '../../src/registry/push.js';
import { resolvePlatformImage, type BlobCache, type BlobWriter } from '../../src/registry/remote-image.js';
import { missingTools } from '../helpers/tools.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { memImage, memIndex, memLayer, readAllStream } from './fixtures.js';

const anon = { credentials: async () => undefined, retryDelayMs: 10 };

/** A Map-backed blob cache shaped like the content store, verifying on commit. */
function memCache() {
  const blobs = new Map<Digest, Buffer>();
  const cache: BlobCache & { blobs: Map<Digest, Buffer> } = {
    blobs,
    has: (d) => blobs.has(d),
    blobPath: (d) => `/mem/${d}`,
    readStream: async (d) => (await import('node:stream')).Readable.from([blobs.get(d)!]),
    createWriter: () => {
      const chunks: Buffer[] = [];
      const w = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }) as BlobWriter;
      w.commit = async (expected) => {
        const buf = Buffer.concat(chunks);
        const digest = sha256(buf);
        if (expected && expected !== digest) throw new Error('digest mismatch');
        blobs.set(digest, buf);
        return { digest, size: buf.length };
      };
      w.abort = () => {};
      return w;
    },
  };
  return cache;
}

describe.skipIf(missingTools('docker-registry').length > 0)('push and pull (real registry)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('pushes an image and pulls it back byte for byte, digests verified', async () => {
    const img = await memImage([await memLayer('a'), await memLayer('b', 40_000)]);
    const target = parseRef(`${reg.host}/round/trip:v1`);
    const events: PushEvent[] = [];
    const res = await pushImage(target, img, ['extra'], { ...anon, onProgress: (e) => events.push(e) });
    expect(res.digest).toBe(await img.digest());
    expect(res.refs).toEqual([`${reg.host}/round/trip:v1`, `${reg.host}/round/trip:extra`]);
    expect(events.filter((e) => e.kind === 'blob' && e.status === 'uploaded')).toHaveLength(3);

    const client = RegistryClient.for(target, anon);
    const pulled = await resolvePlatformImage(client, 'extra', { os: 'linux', architecture: 'amd64' });
    expect(Buffer.from(await pulled.rawManifest())).toEqual(Buffer.from(await img.rawManifest()));
    expect(Buffer.from(await pulled.rawConfig())).toEqual(img.config);
    const layers = await pulled.layers();
    for (const [i, l] of layers.entries()) {
      expect(await readAllStream(await l.compressed())).toEqual(img.memLayers[i]!.bytes);
      expect(await l.diffId()).toBe(await img.memLayers[i]!.diffId());
    }
    const head = await client.headManifest('v1');
    expect(head?.digest).toBe(res.digest);
    expect(head?.mediaType).toBe(MediaType.ociManifest);
  });

  it('a second push of the same image uploads no blob', async () => {
    const img = await memImage([await memLayer('again1'), await memLayer('again2')]);
    const target = parseRef(`${reg.host}/idem/app:1`);
    await pushImage(target, img, [], anon);
    const before = await reg.uploadRequests();
    const events: PushEvent[] = [];
    await pushImage(target, img, ['2'], { ...anon, onProgress: (e) => events.push(e) });
    expect(await reg.uploadRequests()).toBe(before);
    const statuses = events.filter((e) => e.kind === 'blob').map((e) => (e as { status: string }).status);
    expect(statuses).toEqual(['skipped', 'skipped', 'skipped']);
  });

  it('an image on a shared base uploads only its new blobs', async () => {
    const base = [await memLayer('base1', 30_000), await memLayer('base2')];
    await pushImage(parseRef(`${reg.host}/shared/app`), await memImage(base), ['one'], anon);
    const before = await reg.uploadRequests();
    const app = await memImage([...base, await memLayer('app-only')]);
    await pushImage(parseRef(`${reg.host}/shared/app:two`), app, [], anon);
    // the new layer and the new config; the base layers are skipped
    expect((await reg.uploadRequests()) - before).toBe(2);
  });

  it('mounts blobs from another repository instead of uploading them', async () => {
    const layers = [await memLayer('mount1'), await memLayer('mount2')];
    await pushImage(parseRef(`${reg.host}/mount/src:1`), await memImage(layers), [], anon);
    const before = await reg.uploadRequests();
    const events: PushEvent[] = [];
    const img = await memImage(layers, { os: 'linux', architecture: 'arm64' });
    await pushImage(parseRef(`${reg.host}/mount/dst:1`), img, [], { ...anon, mountFrom: ['mount/src'], onProgress: (e) => events.push(e) });
    const mounted = events.filter((e) => e.kind === 'blob' && e.status === 'mounted');
    expect(mounted).toHaveLength(2);
    expect((await reg.uploadRequests()) - before).toBe(1); // only the (different) config
    const dst = RegistryClient.for(parseRef(`${reg.host}/mount/dst`), anon);
    expect(await dst.headBlob(await layers[0]!.digest())).toBe(true);
  });

  it('uploads through the session a mount the registry could not make opened, and leaves no other session behind', async () => {
    const layer = await memLayer('no-mount');
    const before = (await reg.requests()).length;
    const events: PushEvent[] = [];
    // The source repository lacks the blob: the registry answers the mount with 202 and a session.
    await pushImage(parseRef(`${reg.host}/mount/fresh:1`), await memImage([layer]), [], { ...anon, mountFrom: ['mount/empty'], onProgress: (e) => events.push(e) });
    expect(events.filter((e) => e.kind === 'blob' && e.status === 'uploaded')).toHaveLength(2);
    const sessions = (await reg.requests()).slice(before).filter((r) => r.path.startsWith('/v2/mount/fresh/blobs/uploads/'));
    // One POST (the mount) and one PUT per blob: no second POST, no DELETE of a session.
    expect(sessions.map((r) => r.method).sort()).toEqual(['POST', 'POST', 'PUT', 'PUT']);
    expect(await RegistryClient.for(parseRef(`${reg.host}/mount/fresh`), anon).headBlob(await layer.digest())).toBe(true);
  });

  it('uploads large blobs in PATCH chunks and they round-trip', async () => {
    const big = await memLayer('big', 300_000);
    const img = await memImage([big]);
    const target = parseRef(`${reg.host}/chunked/app:1`);
    const opts = { ...anon, monolithicLimit: 64 * 1024, chunkSize: 100 * 1024 };
    const progress: number[] = [];
    const d = await big.digest();
    await pushImage(target, img, [], { ...opts, onProgress: (e) => e.kind === 'blob-progress' && e.digest === d && progress.push(e.bytes) });
    const patches = (await reg.requests()).filter((r) => r.method === 'PATCH' && r.path.startsWith('/v2/chunked/app/'));
    expect(patches.length).toBe(Math.ceil(big.bytes.length / (100 * 1024)));
    expect(progress.length).toBeGreaterThan(3);
    expect(progress.at(-1)).toBe(big.bytes.length);
    const client = RegistryClient.for(target, anon);
    const got = await readAllStream(await client.getBlob(await big.digest()));
    expect(digestOf(createHash('sha256').update(got))).toBe(await big.digest());
  });

  it('pushes an index and picks each platform from it', async () => {
    const amd = await memImage([await memLayer('amd')], { os: 'linux', architecture: 'amd64' });
    const arm = await memImage([await memLayer('arm')], { os: 'linux', architecture: 'arm64', variant: 'v8' });
    const index = await memIndex([
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ]);
    const target = parseRef(`${reg.host}/multi/app:1`);
    const res = await pushImage(target, { index }, [], anon);
    expect(res.mediaType).toBe(MediaType.ociIndex);
    const client = RegistryClient.for(target, anon);
    const got = await resolvePlatformImage(client, target, { os: 'linux', architecture: 'aarch64' });
    expect(await got.digest()).toBe(await arm.digest());
    expect(await (await resolvePlatformImage(client, target, { os: 'linux', architecture: 'amd64' })).digest()).toBe(await amd.digest());
    const err = await resolvePlatformImage(client, target, { os: 'linux', architecture: 's390x' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'usage', message: expect.stringContaining('linux/s390x'), hint: expect.stringContaining('linux/arm64/v8') });
  });

  it('caches pulled blobs by digest so a second read does not touch the network', async () => {
    const img = await memImage([await memLayer('cached', 10_000)]);
    const target = parseRef(`${reg.host}/cache/app:1`);
    await pushImage(target, img, [], anon);
    const cache = memCache();
    const client = RegistryClient.for(target, anon);
    const pulled = await resolvePlatformImage(client, target, { os: 'linux', architecture: 'amd64' }, { cache });
    const [layer] = await pulled.layers();
    const d = await layer!.digest();
    expect(await readAllStream(await layer!.compressed())).toEqual(img.memLayers[0]!.bytes);
    expect(cache.blobs.get(d)).toEqual(img.memLayers[0]!.bytes);
    const gets = async () => (await reg.requests()).filter((r) => r.method === 'GET' && r.path.endsWith(d)).length;
    const before = await gets();
    await readAllStream(await layer!.compressed());
    expect(await gets()).toBe(before);
  });

  it.skipIf(missingTools('skopeo').length > 0)('interoperates with skopeo both ways (OCI and Docker v2 manifests)', async () => {
    const img = await memImage([await memLayer('skopeo1'), await memLayer('skopeo2')]);
    await pushImage(parseRef(`${reg.host}/interop/oci:1`), img, [], anon);
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/interop/oci:1`], { encoding: 'utf8' }));
    expect(inspect.Digest).toBe(await img.digest());
    expect(inspect.Layers).toEqual(await Promise.all(img.memLayers.map((l) => l.digest())));
    // skopeo rewrites the image as a Docker v2 manifest; we must read that back too
    execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', '--format', 'v2s2',
      `docker://${reg.host}/interop/oci:1`, `docker://${reg.host}/interop/docker:1`]);
    const client = RegistryClient.for(parseRef(`${reg.host}/interop/docker`), anon);
    const pulled = await resolvePlatformImage(client, '1', { os: 'linux', architecture: 'amd64' });
    expect(await pulled.mediaType()).toBe(MediaType.dockerManifest);
    const layers = await pulled.layers();
    expect(await readAllStream(await layers[1]!.compressed())).toEqual(img.memLayers[1]!.bytes);
  });
});
