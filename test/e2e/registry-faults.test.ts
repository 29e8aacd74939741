/**
 * imgbuild against a registry with htpasswd auth, and what goes wrong on the way, through the
 * CLI only: credentials from the environment and from `imgbuild login --password-stdin`; a wrong
 * password, a missing repository, a registry that is down, 5xx answers and a connection cut
 * mid-upload (through a fault-injecting proxy); a base blob corrupted in the cache and in
 * transit. Each ends in success after retries or in one clear error (exit 1, no stack trace),
 * never in an image holding corrupt bytes, and no output of any run ever shows the password.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runcRun, skopeoCopy, skopeoInspect, umociUnpack } from '../helpers/oci-tools.js';
import { freePort, startFlakyProxy, startRegistry, type FaultRule, type FlakyProxy, type TestRegistry } from '../helpers/registry.js';
import { missingTools } from '../helpers/tools.js';
import { startCutProxy, type CutProxy } from './fixtures-registry/cut-proxy.js';
import { Cli, corruptLayoutBlobs, doneDigest, flipByte, ok, parseEvents, writeAppSpec, writeBaseSpec, type CliResult, type CliRunOptions } from './fixtures-registry/cli.js';

const USER = 'builder';
const PASSWORD = 'pw-Zq8#not-for-logs';
const CREDS = `${USER}:${PASSWORD}`;
// Environment credentials name the registries they are for: the registry and every proxy in front of it.
const knownHosts: string[] = [];
const envCreds = (password = PASSWORD) => ({ IMGBUILD_REGISTRY_USER: USER, IMGBUILD_REGISTRY_PASSWORD: password, IMGBUILD_REGISTRY_HOST: knownHosts.join(',') });
const TOOLS = ['docker-registry', 'htpasswd', 'skopeo', 'umoci', 'runc', 'busybox'] as const;

/** One clear error: exit 1, an `error:` line naming the problem, no stack trace. */
function expectClearFailure(r: CliResult, message: string | RegExp): void {
  expect(r.exitCode, r.stderr).toBe(1);
  expect(r.stderr).toMatch(/^error: /m);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
}

describe.skipIf(missingTools(...TOOLS).length > 0)('e2e: registry auth, faults and corruption', () => {
  let reg: TestRegistry;
  let cli: Cli;
  let work: string;
  const proxies: (FlakyProxy | CutProxy)[] = [];
  const outputs: string[] = [];
  let baseDigest = '';
  let baseLayer = '';

  /** Every run is recorded, so the last test can check no output ever held the password. */
  const run = async (args: string[], opts: CliRunOptions = {}) => {
    const r = await cli.run(args, opts);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const apply = (spec: string, cache: string, env: Record<string, string> = envCreds()) =>
    run(['apply', spec, '--json', '--cache-dir', cache], { env });
  const proxy = async (...rules: FaultRule[]) => {
    const p = await startFlakyProxy(reg.host, rules);
    proxies.push(p);
    knownHosts.push(p.host);
    return p;
  };
  const dir = async (name: string) => {
    const d = join(work, name);
    await mkdir(d, { recursive: true });
    return d;
  };

  beforeAll(async () => {
    [reg, cli] = await Promise.all([startRegistry({ auth: { user: USER, password: PASSWORD } }), Cli.snapshot()]);
    knownHosts.push(reg.host);
    work = await mkdtemp(join(tmpdir(), 'imgbuild-e2e-regfaults-'));
  });
  afterAll(async () => {
    for (const p of proxies) await p.stop();
    await reg?.stop();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes with credentials from the environment, and pulls FROM the base with a login saved by `imgbuild login`', async () => {
    const h = reg.host;
    const base = await writeBaseSpec(await dir('base'), { name: `${h}/base`, tag: '1', flavour: 'locked-down', outputs: [{ registry: `${h}/base` }] });
    baseDigest = doneDigest(await apply(base, join(work, 'cache-base')));
    const manifest = await skopeoInspect(`docker://${h}/base:1`, { raw: true, creds: CREDS });
    baseLayer = manifest.layers[0].digest; // the busybox layer, about 1 MB

    const docker = await dir('docker-config');
    // Checked with the registry first, as docker login does: a wrong password is not saved.
    const refused = await run(['login', h, '-u', USER, '--password-stdin'], { env: { DOCKER_CONFIG: docker }, input: 'wrong-Pw-77\n' });
    expectClearFailure(refused, 'refused these credentials');
    await expect(stat(join(docker, 'config.json'))).rejects.toThrow();
    const login = await run(['login', h, '-u', USER, '--password-stdin'], { env: { DOCKER_CONFIG: docker }, input: `${PASSWORD}\n` });
    expect(ok(login, 'login').stdout).toContain(`saved credentials for ${h}`);
    expect((await stat(join(docker, 'config.json'))).mode & 0o777).toBe(0o600);

    const app = await writeAppSpec(await dir('app'), { name: `${h}/app`, tag: '1', from: `${h}/base:1`, message: 'behind a password', outputs: [{ registry: `${h}/app` }] });
    const r = await apply(app, join(work, 'cache-app'), { DOCKER_CONFIG: docker });
    const appDigest = doneDigest(r);
    expect(parseEvents(r.stdout).find((e) => e.type === 'base')?.digest).toBe(baseDigest);

    const layout = join(work, 'pulled');
    await skopeoCopy(`docker://${h}/app:1`, `oci:${layout}:t`, { srcCreds: CREDS });
    expect((await skopeoInspect(`oci:${layout}:t`)).Digest).toBe(appDigest);
    await umociUnpack(layout, 't', join(work, 'bundle'));
    const out = await runcRun(join(work, 'bundle'));
    expect(out.stdout).toBe('app on imgbuild locked-down (locked-down)\nbehind a password\n');
  });

  it('fails with one clear error on a wrong password, a missing repository and a registry that is down', async () => {
    const h = reg.host;
    const spec = join(work, 'app', 'image.yaml');
    const wrong = await apply(spec, join(work, 'cache-wrong'), envCreds('wrong-Pw-99'));
    expectClearFailure(wrong, `authentication failed for ${h}`);
    expect(wrong.stderr + wrong.stdout).not.toContain('wrong-Pw-99');

    const missing = await run(['inspect', `${h}/no-such-repo:1`], { env: envCreds() });
    expectClearFailure(missing, `repository no-such-repo not found on ${h}`);

    const down = `127.0.0.1:${await freePort()}`;
    const r = await run(['inspect', `${down}/base:1`, '--json'], { env: envCreds() });
    expectClearFailure(r, `registry ${down} is not reachable (connection refused)`);
  });

  it('retries 500s on upload and manifest, and restarts an upload whose connection is cut, to a correct image', async () => {
    const p = await proxy(
      { method: 'POST', path: /\/blobs\/uploads\/$/, times: 1, fault: { status: 500 } },
      { method: 'PUT', path: /\/blobs\/uploads\//, times: 1, fault: { cutAfterBytes: 256 * 1024 } },
      { method: 'PUT', path: /\/manifests\//, times: 2, fault: { status: 500 } },
    );
    const spec = await writeAppSpec(await dir('flaky'), { name: `${p.host}/flaky`, tag: '1', from: `${reg.host}/base:1`, message: 'through the proxy', outputs: [{ registry: `${p.host}/flaky` }] });
    const before = await reg.uploadRequests();
    const digest = doneDigest(await apply(spec, join(work, 'cache-flaky')));
    expect([...p.injected].sort()).toEqual([
      'POST /v2/flaky/blobs/uploads/ -> 500',
      expect.stringMatching(/^PUT \/v2\/flaky\/blobs\/uploads\/.* -> cut after 262144$/),
      expect.stringMatching(/^PUT \/v2\/flaky\/manifests\/.* -> 500$/),
      expect.stringMatching(/^PUT \/v2\/flaky\/manifests\/.* -> 500$/),
    ]);
    // Four blobs each reached the registry once; the cut upload never did.
    expect((await reg.uploadRequests()) - before).toBe(4);
    // skopeo copy checks every blob against its digest.
    await skopeoCopy(`docker://${reg.host}/flaky:1`, `oci:${join(work, 'flaky-pulled')}:t`, { srcCreds: CREDS });
    expect((await skopeoInspect(`oci:${join(work, 'flaky-pulled')}:t`)).Digest).toBe(digest);
  });

  it('gives one clear error when the registry keeps failing', async () => {
    const p = await proxy({ method: 'GET', path: /\/manifests\//, times: 100, fault: { status: 500 } });
    const r = await run(['inspect', `${p.host}/base:1`], { env: envCreds() });
    expectClearFailure(r, `registry ${p.host} answered HTTP 500 (Internal Server Error)`);
    expect(r.stderr).toContain('after several attempts');
    expect(p.injected.length).toBeGreaterThan(1);
  });

  it('refuses a base layer corrupted in the cache, naming it, then fetches it again', async () => {
    const cache = join(work, 'cache-corrupt-cache');
    const blob = join(cache, 'blobs', 'sha256', baseLayer.slice('sha256:'.length));
    // A first build into an OCI layout downloads the base layer into the cache (a push to the
    // same registry would mount it instead, and never download it).
    const warm = await writeAppSpec(await dir('cache-warm'), { name: 'local/app', tag: '1', from: `${reg.host}/base:1`, message: 'm', outputs: [{ oci: './out' }] });
    doneDigest(await apply(warm, cache));
    await flipByte(blob);
    const spec = await writeAppSpec(await dir('cache-corrupt'), { name: 'local/app', tag: '1', from: `${reg.host}/base:1`, message: 'm', outputs: [{ oci: './out' }] });
    const layout = join(work, 'cache-corrupt', 'out');

    const bad = await apply(spec, cache);
    expectClearFailure(bad, baseLayer);
    expect(await corruptLayoutBlobs(layout)).toEqual([]);
    expect(existsSync(join(layout, 'blobs', 'sha256', baseLayer.slice(7)))).toBe(false);

    const good = await apply(spec, cache);
    doneDigest(good);
    expect(await corruptLayoutBlobs(layout)).toEqual([]);
    expect(existsSync(join(layout, 'blobs', 'sha256', baseLayer.slice(7)))).toBe(true);
  });

  it('fetches a base layer again when its download is cut mid-body, to an intact image', async () => {
    const p = await startCutProxy(reg.host, { path: new RegExp(`/blobs/${baseLayer}$`), afterBytes: 100_000, times: 1 });
    proxies.push(p);
    knownHosts.push(p.host);
    const spec = await writeAppSpec(await dir('cut-download'), { name: 'local/app', tag: '1', from: `${p.host}/base:1`, message: 'm', outputs: [{ oci: './out' }] });
    const r = await apply(spec, join(work, 'cache-cut'));
    expect(p.cut).toEqual([`GET /v2/base/blobs/${baseLayer}`]);
    expect(parseEvents(ok(r, 'apply through a cut download').stdout).find((e) => e.type === 'base')?.digest).toBe(baseDigest);
    const layout = join(work, 'cut-download', 'out');
    expect(existsSync(join(layout, 'blobs', 'sha256', baseLayer.slice(7)))).toBe(true);
    expect(await corruptLayoutBlobs(layout)).toEqual([]);
  });

  it('refuses a base layer corrupted in transit, naming it, and never writes an image with it', async () => {
    const p = await proxy({ method: 'GET', path: new RegExp(`/blobs/${baseLayer}$`), times: 1, fault: { corruptResponse: true } });
    const spec = await writeAppSpec(await dir('transit'), { name: 'local/app', tag: '1', from: `${p.host}/base:1`, message: 'm', outputs: [{ oci: './out' }] });
    const layout = join(work, 'transit', 'out');
    const cache = join(work, 'cache-transit');

    const bad = await apply(spec, cache);
    expect(p.injected).toEqual([`GET /v2/base/blobs/${baseLayer} -> corrupt`]);
    expectClearFailure(bad, new RegExp(`blob ${baseLayer} .*corrupt`));
    expect(existsSync(join(cache, 'blobs', 'sha256', baseLayer.slice(7)))).toBe(false);
    expect(await corruptLayoutBlobs(layout)).toEqual([]);

    doneDigest(await apply(spec, cache));
    expect(await corruptLayoutBlobs(layout)).toEqual([]);
    expect(existsSync(join(layout, 'blobs', 'sha256', baseLayer.slice(7)))).toBe(true);
  });

  it('never showed the password in any output, --json events included', async () => {
    expect(outputs.length).toBeGreaterThan(20);
    const all = outputs.join('\n');
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain(Buffer.from(CREDS).toString('base64'));
    expect(await readFile(join(work, 'docker-config', 'config.json'), 'utf8')).not.toContain(PASSWORD);
  });
});
