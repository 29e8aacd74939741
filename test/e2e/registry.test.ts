/**
 * imgbuild against a real registry (CNCF Distribution on 127.0.0.1), through the CLI only:
 * a base image built and pushed by imgbuild, an app built FROM it and pushed, then pulled back by
 * skopeo, unpacked by umoci and run by runc; what a second push uploads (counted in the
 * registry's own access log); `inspect` of a registry reference and of an OCI layout; and the
 * lock: `--locked` without a lock, `imgbuild lock`, a moved tag, a stale lock, and an offline
 * `--locked` build with the registry stopped. The tests run in order and share one registry.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRootfs, runcRun, skopeoCopy, skopeoInspect, umociUnpack } from '../helpers/oci-tools.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { missingTools } from '../helpers/tools.js';
import { Cli, doneDigest, ok, parseEvents, writeAppSpec, writeBaseSpec } from './fixtures-registry/cli.js';

const TOOLS = ['docker-registry', 'skopeo', 'umoci', 'runc', 'busybox'] as const;

// Longer than the client's idle timeout (a minute, src/registry/http.ts) and the one retry it
// makes after it: a request the registry leaves unanswered on a loaded machine is then recovered
// from as a user's build recovers, instead of failing the test at the very moment of the retry.
const TEST_TIMEOUT_MS = 150_000;

describe.skipIf(missingTools(...TOOLS).length > 0)('e2e: imgbuild with a real registry', { timeout: TEST_TIMEOUT_MS }, () => {
  let reg: TestRegistry;
  let cli: Cli;
  let work: string;
  let cache: string;
  const digests: Record<string, string> = {};
  const apply = (spec: string, ...extra: string[]) => cli.run(['apply', spec, '--json', '--cache-dir', cache, ...extra]);
  const dir = async (name: string) => {
    const d = join(work, name);
    await mkdir(d, { recursive: true });
    return d;
  };

  beforeAll(async () => {
    [reg, cli] = await Promise.all([startRegistry(), Cli.snapshot()]);
    work = await mkdtemp(join(tmpdir(), 'imgbuild-e2e-registry-'));
    cache = join(work, 'cache');
  });
  afterAll(async () => {
    await reg?.stop();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes a base it built, builds and pushes an app FROM it, and the pulled app runs with both', async () => {
    const h = reg.host;
    const base = await writeBaseSpec(await dir('base'), { name: `${h}/base`, tag: '1', flavour: 'one', outputs: [{ registry: `${h}/base` }] });
    digests.base1 = doneDigest(await apply(base));
    expect((await skopeoInspect(`docker://${h}/base:1`)).Digest).toBe(digests.base1);

    const app = await writeAppSpec(await dir('app'), { name: `${h}/app`, tag: '1', from: `${h}/base:1`, message: 'hello from the app layer', outputs: [{ registry: `${h}/app` }] });
    const r = ok(await apply(app), 'apply app');
    digests.app1 = doneDigest(r);
    const baseEv = parseEvents(r.stdout).find((e) => e.type === 'base');
    expect(baseEv).toMatchObject({ ref: `${h}/base:1`, digest: digests.base1, layers: 2 });
    // The base kept in the cache is marked in use, so `cache prune` keeps it while builds use it.
    expect(existsSync(join(cache, 'used', digests.base1!.replace('sha256:', '')))).toBe(true);

    const layout = join(work, 'pulled');
    await skopeoCopy(`docker://${h}/app:1`, `oci:${layout}:t`);
    expect((await skopeoInspect(`oci:${layout}:t`)).Digest).toBe(digests.app1);
    const rootfs = await umociUnpack(layout, 't', join(work, 'bundle'));
    const paths = (await listRootfs(rootfs)).map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['/bin/busybox', '/etc/os-release', '/app/run.sh', '/app/message.txt']));
    const run = await runcRun(join(work, 'bundle'));
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toBe('app on imgbuild one (one)\nhello from the app layer\n');
  });

  it('uploads no blob on a second push of the same image', async () => {
    const before = await reg.uploadRequests();
    const r = ok(await apply(join(work, 'app', 'image.yaml')), 'second apply');
    expect(doneDigest(r)).toBe(digests.app1);
    expect((await reg.uploadRequests()) - before).toBe(0);
    const actions = parseEvents(r.stdout).filter((e) => e.type === 'push-blob').map((e) => e.action);
    expect(actions).toEqual(['skipped', 'skipped', 'skipped', 'skipped']);
  });

  it('uploads only the new layer and the config of another app on the same base in the same repository', async () => {
    const h = reg.host;
    const app2 = await writeAppSpec(await dir('app2'), { name: `${h}/app`, tag: '2', from: `${h}/base:1`, message: 'a second app', outputs: [{ registry: `${h}/app` }] });
    const before = await reg.uploadRequests();
    const r = ok(await apply(app2), 'apply app2');
    // Small blobs go up in one monolithic PUT each: one for the app layer, one for the config.
    expect((await reg.uploadRequests()) - before).toBe(2);
    const pushed = parseEvents(r.stdout).filter((e) => e.type === 'push-blob');
    expect(pushed.filter((e) => e.action === 'uploaded')).toHaveLength(2);
    expect(pushed.filter((e) => e.action === 'skipped')).toHaveLength(2);
  });

  it('mounts the base layers from the base repository when pushing an app to a new repository', async () => {
    const h = reg.host;
    const app3 = await writeAppSpec(await dir('app3'), { name: `${h}/other`, tag: '1', from: `${h}/base:1`, message: 'elsewhere', outputs: [{ registry: `${h}/other` }] });
    const before = await reg.uploadRequests();
    ok(await apply(app3), 'apply app3');
    expect((await reg.uploadRequests()) - before).toBe(2);
  });

  it('inspects the pushed app in the registry and in an OCI layout, as text and as JSON', async () => {
    const h = reg.host;
    const text = ok(await cli.run(['inspect', `${h}/app:1`, '--insecure-registry', h]), 'inspect').stdout;
    expect(text).toContain(`digest     ${digests.app1}`);
    expect(text).toContain('platform   linux/amd64');
    expect(text).toContain('entrypoint ["/bin/busybox","sh","/app/run.sh"]');
    expect(text.match(/^ {2}layer /gm)).toHaveLength(3);

    const remote = JSON.parse(ok(await cli.run(['inspect', `${h}/app:1`, '--insecure-registry', h, '--json']), 'inspect --json').stdout);
    const local = JSON.parse(ok(await cli.run(['inspect', `oci:${join(work, 'pulled')}:t`, '--json']), 'inspect oci --json').stdout);
    const manifest = await skopeoInspect(`docker://${h}/app:1`, { raw: true });
    for (const d of [remote, local]) {
      expect(d).toMatchObject({ digest: digests.app1, platform: 'linux/amd64', config: { Entrypoint: ['/bin/busybox', 'sh', '/app/run.sh'] } });
      expect(d.layers.map((l: { digest: string }) => l.digest)).toEqual(manifest.layers.map((l: { digest: string }) => l.digest));
    }
  });

  it('pushes a spec with `tags: []` by digest only, as its plan says, and tags nothing (not latest)', async () => {
    const h = reg.host;
    const d = await dir('untagged');
    const spec = join(d, 'image.yaml');
    await writeFile(spec, `apiVersion: imgbuild/v1\nname: ${h}/untagged\ntags: []\nlayers:\n  - name: one\n    files: [{ path: /f, content: "x" }]\noutput: []\n`);
    expect(ok(await cli.run(['plan', spec, '--cache-dir', cache]), 'plan').stdout).toContain('(none: by digest only)');
    const digest = doneDigest(ok(await apply(spec, '--push'), 'apply --push'));
    expect((await skopeoInspect(`docker://${h}/untagged@${digest}`, { raw: true })).schemaVersion).toBe(2);
    const tags = (await reg.requests()).filter((r) => r.method === 'PUT' && r.path.startsWith('/v2/untagged/manifests/'));
    expect(tags.map((r) => decodeURIComponent(r.path))).toEqual([`/v2/untagged/manifests/${digest}`]);
  });

  it('pushes once with --push when an output already names the spec\'s repository', async () => {
    const h = reg.host;
    const d = await dir('pushed-once');
    const spec = join(d, 'image.yaml');
    await writeFile(spec, `apiVersion: imgbuild/v1\nname: ${h}/once\ntags: [t1]\nlayers:\n  - name: one\n    files: [{ path: /f, content: "once" }]\noutput:\n  - registry: ${h}/once\n`);
    const before = await reg.uploadRequests();
    const r = ok(await apply(spec, '--push'), 'apply --push');
    const events = parseEvents(r.stdout);
    expect(events.filter((e) => e.type === 'output-done').map((e) => e.output)).toEqual([`registry:${h}/once`]);
    expect(events.filter((e) => e.type === 'push-blob').map((e) => e.action)).toEqual(['uploaded', 'uploaded']);
    expect((await reg.uploadRequests()) - before).toBe(2);
    expect((await skopeoInspect(`docker://${h}/once:t1`)).Digest).toBe(doneDigest(r));
  });

  it('refuses --locked without a lock file (exit 2, one clear message)', async () => {
    const r = await apply(join(work, 'app', 'image.yaml'), '--locked');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`--locked: there is no lock file ${join(work, 'app', 'image.lock')}`);
    expect(r.stderr).toContain('imgbuild lock');
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it('locks the base, keeps building on the locked digest after the tag moves, and refuses a stale lock', async () => {
    const h = reg.host;
    const spec = join(work, 'app', 'image.yaml');
    const locked = ok(await cli.run(['lock', spec, '--cache-dir', cache]), 'lock');
    expect(locked.stdout).toContain(`linux/amd64  ${digests.base1}`);
    expect(await readFile(join(work, 'app', 'image.lock'), 'utf8')).toContain(`linux/amd64: ${digests.base1}`);

    // Move base:1 to another image.
    const base2 = await writeBaseSpec(await dir('base-v2'), { name: `${h}/base`, tag: '1', flavour: 'two', outputs: [{ registry: `${h}/base` }] });
    digests.base2 = doneDigest(await apply(base2));
    expect(digests.base2).not.toBe(digests.base1);

    // A fresh cache, so the locked base really comes from the registry, by digest.
    const r = ok(await cli.run(['apply', spec, '--json', '--locked', '--cache-dir', join(work, 'cache-fresh')]), 'apply --locked');
    expect(parseEvents(r.stdout).find((e) => e.type === 'base')?.digest).toBe(digests.base1);
    expect(doneDigest(r)).toBe(digests.app1);

    // Another base reference in the spec makes the lock stale.
    const text = await readFile(spec, 'utf8');
    await writeFile(spec, text.replace(`from: ${h}/base:1`, `from: ${h}/base:2`));
    const stale = await apply(spec, '--locked');
    await writeFile(spec, text);
    expect(stale.exitCode).toBe(2);
    expect(stale.stderr).toContain(`is stale: it pins ${h}/base:1, but the spec's base is ${h}/base:2`);
    expect(stale.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it('re-locks to the moved tag, then builds --locked offline with the registry stopped, to the same digest', async () => {
    const spec = join(work, 'app', 'image.yaml');
    const relock = ok(await cli.run(['lock', spec, '--cache-dir', cache]), 'lock again');
    expect(relock.stdout).toContain(`linux/amd64  ${digests.base2}  (was ${digests.base1})`);
    const online = ok(await apply(spec, '--locked'), 'apply --locked online');
    digests.app2 = doneDigest(online);
    expect(digests.app2).not.toBe(digests.app1);

    await reg.stop();
    // Same spec with an OCI layout as its only output: any request to the registry would fail.
    const text = await readFile(spec, 'utf8');
    await writeFile(spec, text.replace(/output:\n(.|\n)*$/, 'output:\n  - oci: ./offline\n'));
    const offline = await apply(spec, '--locked');
    expect(offline.exitCode, offline.stderr).toBe(0);
    expect(doneDigest(offline)).toBe(digests.app2);
    expect(parseEvents(offline.stdout).find((e) => e.type === 'base')?.digest).toBe(digests.base2);
    expect((await skopeoInspect(`oci:${join(work, 'app', 'offline')}:1`)).Digest).toBe(digests.app2);
  });
});
