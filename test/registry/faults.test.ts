/**
 * What goes wrong, against a real registry: missing repositories and manifests, a registry that
 * is down, 5xx and 429 answers (retried), connections cut mid-upload (upload restarted cleanly),
 * and a blob corrupted in the registry's storage (caught by its digest).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImgbuildError } from '../../src/errors.js';
import { digestHex } from '../../src/image/digest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { parseRef } from '../../src/registry/reference.js';
import { pushImage } from '../../src/registry/push.js';
import { resolvePlatformImage } from '../../src/registry/remote-image.js';
import { ContentStore } from '../../src/store/content-store.js';
import { missingTools } from '../helpers/tools.js';
import { freePort, startFlakyProxy, startRegistry, type FlakyProxy, type TestRegistry } from '../helpers/registry.js';
import { memImage, memLayer, readAllStream } from './fixtures.js';

const anon = { credentials: async () => undefined, retryDelayMs: 5 };
const amd64 = { os: 'linux', architecture: 'amd64' };

async function failure(p: Promise<unknown>): Promise<ImgbuildError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(ImgbuildError);
  return e as ImgbuildError;
}

describe.skipIf(missingTools('docker-registry').length > 0)('registry faults (real registry)', () => {
  let reg: TestRegistry;
  const proxies: FlakyProxy[] = [];
  beforeAll(async () => {
    reg = await startRegistry();
    await pushImage(parseRef(`${reg.host}/known/app:1`), await memImage([await memLayer('known')]), [], anon);
  });
  afterAll(async () => {
    for (const p of proxies) await p.stop();
    await reg?.stop();
  });
  const proxy = async (...rules: Parameters<typeof startFlakyProxy>[1]) => {
    const p = await startFlakyProxy(reg.host, rules);
    proxies.push(p);
    return p;
  };

  it('names a missing repository and a missing manifest', async () => {
    const repoErr = await failure(RegistryClient.for(parseRef(`${reg.host}/no/such`), anon).getManifest('1'));
    expect(repoErr.kind).toBe('registry');
    expect(repoErr.message).toBe(`repository no/such not found on ${reg.host}`);
    const tagErr = await failure(RegistryClient.for(parseRef(`${reg.host}/known/app`), anon).getManifest('nope'));
    expect(tagErr.message).toBe(`manifest nope not found in ${reg.host}/known/app`);
    expect(await RegistryClient.for(parseRef(`${reg.host}/known/app`), anon).headManifest('nope')).toBeUndefined();
  });

  it('speaks HTTPS unless the host is loopback or listed as insecure', () => {
    expect(RegistryClient.for(parseRef('ghcr.io/a/b'), anon).baseUrl.protocol).toBe('https:');
    expect(RegistryClient.for(parseRef('reg.lan:5000/a'), { insecure: ['reg.lan:5000'] }).baseUrl.href).toBe('http://reg.lan:5000/');
    expect(RegistryClient.for(parseRef('localhost:5000/a'), anon).baseUrl.protocol).toBe('http:');
    // A host name is the same name in any case: `login VM:5000 --insecure-registry VM:5000` and the reverse.
    expect(RegistryClient.for({ registry: 'VM:5000', repository: '' }, { insecure: ['VM:5000'] }).baseUrl.protocol).toBe('http:');
    expect(RegistryClient.for({ registry: 'vm:5000', repository: '' }, { insecure: ['Vm:5000'] }).baseUrl.protocol).toBe('http:');
  });

  it('fails a push whose layer bytes do not match its digest, without retrying', async () => {
    const layer = await memLayer('liar', 3000);
    const other = await memLayer('other', 3000);
    layer.compressed = other.compressed; // same size, different bytes
    const err = await failure(pushImage(parseRef(`${reg.host}/liar/app:1`), await memImage([layer]), [], anon));
    expect(err.kind).toBe('build');
    expect(err.message).toMatch(new RegExp(`blob ${await layer.digest()} changed while it was being pushed`));
    expect(other.opens).toBe(1);
  });

  it('says a registry that is down is not reachable', async () => {
    const host = `127.0.0.1:${await freePort()}`;
    const err = await failure(RegistryClient.for(parseRef(`${host}/x/y`), anon).getManifest('1'));
    expect(err.message).toBe(`registry ${host} is not reachable (connection refused)`);
    expect(err.hint).toMatch(/running/);
  });

  it('retries 500 twice then succeeds, and honours 429 Retry-After', async () => {
    const p = await proxy(
      { method: 'GET', path: /\/manifests\//, times: 2, fault: { status: 500 } },
      { method: 'HEAD', path: /\/blobs\//, times: 1, fault: { status: 429, retryAfter: '0' } },
    );
    const client = RegistryClient.for(parseRef(`${p.host}/known/app`), anon);
    const m = await client.getManifest('1');
    expect(m.digest).toMatch(/^sha256:/);
    const layer = JSON.parse(Buffer.from(m.bytes).toString()).layers[0].digest;
    expect(await client.headBlob(layer)).toBe(true);
    expect(p.injected).toHaveLength(3);
  });

  it('gives up after its retries with the status in words', async () => {
    const p = await proxy({ method: 'GET', path: /\/manifests\//, times: 10, fault: { status: 503 } });
    const err = await failure(RegistryClient.for(parseRef(`${p.host}/known/app`), { ...anon, retries: 2 }).getManifest('1'));
    expect(err.message).toMatch(/answered HTTP 503 \(Service Unavailable\).* after several attempts/);
    expect(p.injected).toHaveLength(3);
  });

  it('restarts an upload cleanly after the connection is cut mid-body', async () => {
    const p = await proxy({ method: 'PUT', path: /\/blobs\/uploads\//, times: 1, fault: { cutAfterBytes: 8000 } });
    const img = await memImage([await memLayer('cut', 60_000)]);
    await pushImage(parseRef(`${p.host}/cut/mono:1`), img, [], anon);
    expect(p.injected).toEqual([expect.stringMatching(/^PUT .* -> cut after 8000$/)]);
    expect(img.memLayers[0]!.opens).toBe(2);
    const pulled = await resolvePlatformImage(RegistryClient.for(parseRef(`${reg.host}/cut/mono`), anon), '1', amd64);
    expect(await readAllStream(await (await pulled.layers())[0]!.compressed())).toEqual(img.memLayers[0]!.bytes);
  });

  it('restarts a chunked upload cut in its second chunk', async () => {
    const p = await proxy({ method: 'PATCH', path: /\/blobs\/uploads\//, skip: 1, times: 1, fault: { cutAfterBytes: 5000 } });
    const img = await memImage([await memLayer('cut-chunks', 150_000)]);
    await pushImage(parseRef(`${p.host}/cut/chunked:1`), img, [], { ...anon, monolithicLimit: 32 * 1024, chunkSize: 64 * 1024 });
    expect(p.injected).toEqual([expect.stringMatching(/^PATCH .* -> cut after 5000$/)]);
    expect(img.memLayers[0]!.opens).toBe(2);
    const client = RegistryClient.for(parseRef(`${reg.host}/cut/chunked`), anon);
    const got = await readAllStream(await client.getBlob(await img.memLayers[0]!.digest()));
    expect(got).toEqual(img.memLayers[0]!.bytes);
  });

  it('detects a blob corrupted in the registry by its digest', async () => {
    const layer = await memLayer('corrupt', 5000);
    await pushImage(parseRef(`${reg.host}/corrupt/app:1`), await memImage([layer]), [], anon);
    const d = await layer.digest();
    const file = path.join(reg.dir, 'storage/docker/registry/v2/blobs/sha256', digestHex(d).slice(0, 2), digestHex(d), 'data');
    const bytes = readFileSync(file);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(file, bytes);
    const client = RegistryClient.for(parseRef(`${reg.host}/corrupt/app`), anon);
    const err = await failure(client.getBlob(d).then(readAllStream));
    expect(err.kind).toBe('registry');
    expect(err.message).toContain(`blob ${d} from ${reg.host}/corrupt/app is corrupt`);
    expect(readdirSync(path.dirname(file))).toContain('data');
  });

  it('rejects a manifest or blob altered in transit', async () => {
    const good = await RegistryClient.for(parseRef(`${reg.host}/known/app`), anon).getManifest('1');
    const p = await proxy(
      { method: 'GET', path: /\/manifests\//, times: 1, fault: { corruptResponse: true } },
      { method: 'GET', path: /\/blobs\//, times: 1, fault: { corruptResponse: true } },
    );
    const client = RegistryClient.for(parseRef(`${p.host}/known/app`), anon);
    const err = await failure(client.getManifest(good.digest));
    expect(err.message).toContain(`manifest ${good.digest} from ${p.host}/known/app does not match its digest`);
    const config = JSON.parse(Buffer.from(good.bytes).toString()).config.digest;
    const blobErr = await failure(client.getBlob(config).then(readAllStream));
    expect(blobErr.message).toMatch(/is corrupt/);
    expect(p.injected).toHaveLength(2);
  });

  it('caches pulled blobs in the content store only when they verify', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'imgbuild-regcache-'));
    try {
      const store = await ContentStore.open(root);
      const p = await proxy({ method: 'GET', path: /\/blobs\/sha256:/, skip: 1, times: 1, fault: { corruptResponse: true } });
      const client = RegistryClient.for(parseRef(`${p.host}/known/app`), anon);
      const img = await resolvePlatformImage(client, '1', amd64, { cache: store }); // config passes (skip: 1)
      const [layer] = await img.layers();
      const d = await layer!.digest();
      const err = await failure(layer!.compressed());
      expect(err.message).toMatch(/is corrupt/);
      expect(await store.has(d)).toBe(false);
      const bytes = await readAllStream(await layer!.compressed()); // the fault is spent: fetched afresh
      expect(await store.has(d)).toBe(true);
      expect(readFileSync(store.blobPath(d))).toEqual(bytes);
      expect(await store.has(await img.configDigest())).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
