/**
 * `imgbuild apply` end to end, judged only by independent tools: the bundled example's OCI
 * layout is read by skopeo, accepted by oci-image-tool and unpacked by umoci into exactly the
 * files `imgbuild plan --json` promised (paths, types, modes, owners, sizes, link targets), and
 * its docker archive is read by skopeo and imported by containerd. Two runnable variants prove
 * the image really runs: static busybox plus a shell script (runc and containerd), and the
 * host's node with the libraries ldd lists, serving the example app once (runc). One more, on a
 * base image of its own, shows a copy into the base's /tmp leaving it 1777 in a container.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import { applyOk, copyExample, eventsOf, expectedRootfs, planJson, TempDirs, writeSpec, writeTree } from '../helpers/imgbuild.js';
import { listRootfs, ociValidate, runcRun, skopeoInspect, umociUnpack } from '../helpers/oci-tools.js';
import { missingTools, whichTool } from '../helpers/tools.js';

const temps = new TempDirs();
afterAll(() => temps.cleanup());

describe.skipIf(missingTools('skopeo', 'umoci', 'oci-image-tool', 'runc', 'containerd', 'ctr', 'busybox').length > 0)('imgbuild apply, judged by real tools', () => {
  let ctd: Containerd | undefined;
  beforeAll(async () => {
    ctd = await startContainerd();
  });
  afterAll(async () => {
    await ctd?.stop();
  });

  describe('the bundled example', () => {
    let dir = '';
    let digest = '';
    beforeAll(async () => {
      dir = await temps.make();
      const spec = await copyExample(dir);
      ({ digest } = await applyOk(spec, join(dir, 'cache')));
    });

    it('writes an OCI layout skopeo reads and oci-image-tool accepts, with the spec\'s config', async () => {
      const layout = join(dir, 'out', 'hello');
      const raw = await skopeoInspect(`oci:${layout}:latest`, { raw: true });
      expect(raw.layers).toHaveLength(2);
      const info = await skopeoInspect(`oci:${layout}:latest`);
      expect(info.Digest).toBe(digest);
      expect(info).toMatchObject({ Os: 'linux', Architecture: 'amd64' });
      const config = await skopeoInspect(`oci:${layout}:dev`, { config: true });
      expect(config.config).toMatchObject({ Entrypoint: ['node', '/app/src/server.js'], WorkingDir: '/app', User: '1000:1000' });
      expect(config.config.Env).toEqual(expect.arrayContaining(['NODE_ENV=production', 'PORT=8080']));
      await ociValidate(layout, 'latest');
      await ociValidate(layout, 'dev');
    });

    it('unpacks with umoci into exactly the planned files, modes and owners', async () => {
      const plan = await planJson(join(dir, 'image.example.yaml'), join(dir, 'cache'));
      const rootfs = await umociUnpack(join(dir, 'out', 'hello'), 'latest', join(dir, 'bundle'));
      const expected = expectedRootfs(plan);
      expect(expected.length).toBeGreaterThan(10);
      expect(await listRootfs(rootfs)).toEqual(expected);
      // The files carry the context's bytes, not just the right sizes.
      expect(await readFile(join(rootfs, 'app/src/server.js'))).toEqual(await readFile(join(dir, 'example/src/server.js')));
      expect(expected.find((e) => e.path.endsWith('.md'))).toBeUndefined();
    });

    it('writes a docker archive skopeo reads and containerd imports', async () => {
      const archive = join(dir, 'out', 'hello.tar');
      const info = await skopeoInspect(`docker-archive:${archive}`);
      expect(info.Layers).toHaveLength(2);
      const names = await ctd!.importArchive(archive);
      expect(names).toEqual(expect.arrayContaining(['docker.io/example/hello:latest']));
    });
  });

  describe('a runnable busybox variant', () => {
    let dir = '';
    beforeAll(async () => {
      dir = await temps.make();
      const ctx = join(dir, 'ctx');
      await writeTree(ctx, {
        'run.sh': 'echo "message: $(cat /app/message.txt)"\n',
        'message.txt': 'built by imgbuild',
      });
      await mkdir(join(ctx, 'bin'));
      await copyFile(whichTool('busybox')!, join(ctx, 'bin', 'busybox'));
      const spec = await writeSpec(dir, {
        name: 'e2e/busybox',
        tags: ['v1'],
        context: 'ctx',
        layers: [
          { name: 'busybox', copy: [{ from: 'bin/busybox', to: '/bin/busybox' }] },
          { name: 'app', copy: [{ from: 'run.sh', to: '/app/run.sh' }, { from: 'message.txt', to: '/app/message.txt' }] },
        ],
        config: { entrypoint: ['/bin/busybox', 'sh', '/app/run.sh'] },
        output: [{ oci: './out/layout' }, { 'docker-archive': './out/image.tar' }],
      });
      await applyOk(spec, join(dir, 'cache'));
    });

    it('runs under runc after umoci unpack and prints the file', async () => {
      const bundle = join(dir, 'bundle');
      const rootfs = await umociUnpack(join(dir, 'out', 'layout'), 'v1', bundle);
      const bb = (await listRootfs(rootfs)).find((e) => e.path === '/bin/busybox');
      expect(bb).toMatchObject({ type: 'file', mode: 0o755, uid: 0, gid: 0 });
      expect(await runcRun(bundle)).toMatchObject({ stdout: 'message: built by imgbuild\n', exitCode: 0 });
    });

    it('runs under containerd after ctr images import and prints the file', async () => {
      expect(await ctd!.importArchive(join(dir, 'out', 'image.tar'))).toEqual(['docker.io/e2e/busybox:v1']);
      const res = await ctd!.run('docker.io/e2e/busybox:v1', 'e2e-busybox');
      expect(res, ctd!.log()).toMatchObject({ stdout: 'message: built by imgbuild\n', exitCode: 0 });
    });
  });

  describe('a copy into a directory of its base image', () => {
    it('keeps the base\'s 1777 /tmp, as a container under containerd sees it', async () => {
      const dir = await temps.make();
      await mkdir(join(dir, 'base', 'bin'), { recursive: true });
      await copyFile(whichTool('busybox')!, join(dir, 'base', 'bin', 'busybox'));
      await writeTree(join(dir, 'app'), { 'seed/x': 'x' });
      const base = await writeSpec(dir, {
        name: 'e2e/base',
        tags: ['1'],
        context: 'base',
        layers: [{ name: 'base', dirs: [{ path: '/tmp', mode: '1777' }], copy: [{ from: 'bin/busybox', to: '/bin/busybox' }] }],
        output: [{ oci: './out/base' }],
      }, 'base.yaml');
      await applyOk(base, join(dir, 'cache'));
      const app = await writeSpec(dir, {
        name: 'e2e/tmp',
        tags: ['v1'],
        from: 'oci:./out/base:1',
        context: 'app',
        layers: [{ name: 'seed', copy: [{ from: 'seed/', to: '/tmp/' }] }],
        config: { entrypoint: ['/bin/busybox', 'stat', '-c', '%a %u', '/tmp'] },
        output: [{ 'docker-archive': './out/tmp.tar' }],
      });
      const { events } = await applyOk(app, join(dir, 'cache'));
      expect(await ctd!.importArchive(join(dir, 'out', 'tmp.tar'))).toEqual(['docker.io/e2e/tmp:v1']);
      const res = await ctd!.run('docker.io/e2e/tmp:v1', 'e2e-tmp');
      expect(res, ctd!.log()).toMatchObject({ stdout: '1777 0\n', exitCode: 0 });
      expect(eventsOf(events, 'warning')).toEqual([]);
    });
  });

  describe('a runnable node variant (the host\'s node and the libraries ldd lists)', () => {
    it('serves the example app once and prints "hello from production"', async () => {
      const dir = await temps.make();
      const ctx = join(dir, 'ctx');
      await copyExample(dir);
      const libs = hostNodeLibs();
      for (const lib of ['/usr/bin/node', ...libs]) {
        await mkdir(join(ctx, 'sys', dirname(lib)), { recursive: true });
        await copyFile(lib, join(ctx, 'sys', lib));
      }
      const spec = await writeSpec(dir, {
        name: 'e2e/node',
        context: '.',
        // Level 1: the layer holds a ~100 MB binary; this test is about running, not size.
        compression: { algorithm: 'gzip', level: 1 },
        layers: [
          { name: 'runtime', copy: [{ from: 'ctx/sys/', to: '/' }] },
          { name: 'app', copy: [{ from: 'example/package.json', to: '/app/package.json' }, { from: 'example/src/', to: '/app/src/' }] },
        ],
        config: { entrypoint: ['/usr/bin/node', '/app/src/server.js', '--once'], env: { NODE_ENV: 'production' }, workdir: '/app' },
        output: [{ oci: './out/layout' }],
      });
      const { events } = await applyOk(spec, join(dir, 'cache'));
      expect(eventsOf(events, 'layer-done').map((e) => e.layer).sort()).toEqual(['app', 'runtime']);
      const bundle = join(dir, 'bundle');
      await umociUnpack(join(dir, 'out', 'layout'), 'latest', bundle);
      const res = await runcRun(bundle);
      expect(res.stderr).toBe('');
      expect(res).toMatchObject({ exitCode: 0 });
      expect(res.stdout).toContain('hello from production');
    });
  });
});

/** Absolute paths of the shared libraries (and the loader) `ldd /usr/bin/node` names. */
function hostNodeLibs(): string[] {
  const out = execFileSync('ldd', ['/usr/bin/node'], { encoding: 'utf8' });
  return [...out.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
}
