/**
 * Proves the e2e helpers drive the real tools, with no imgbuild code involved: umoci itself builds
 * a one-layer image holding a static busybox whose entrypoint prints "hello"; then skopeo inspects
 * it, oci-image-tool validates it, umoci unpacks it and runc runs it, and containerd imports it
 * from a docker archive (and pulls it from a loopback registry) and runs it. When these pass, a
 * failing imgbuild e2e test is imgbuild's fault, not the harness's.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, type Containerd } from '../helpers/containerd.js';
import {
  listRootfs,
  ociValidate,
  runcRun,
  runToolOk,
  skopeoCopy,
  skopeoInspect,
  umociUnpack,
} from '../helpers/oci-tools.js';
import { missingTools, whichTool } from '../helpers/tools.js';

const TAG = 'hello';
const ENTRYPOINT = ['/bin/busybox', 'echo', 'hello'];

/** True when the ELF file has no PT_INTERP program header, i.e. needs no dynamic loader. */
async function isStaticElf(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(64);
    await fh.read(head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false; // ELF64 only
    const phoff = Number(head.readBigUInt64LE(0x20));
    const phentsize = head.readUInt16LE(0x36);
    const phnum = head.readUInt16LE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    await fh.read(ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return false;
    return true;
  } finally {
    await fh.close();
  }
}

/** Builds `<work>/layout:hello` with umoci alone: one layer holding /bin/busybox. */
async function buildBusyboxImage(work: string): Promise<string> {
  const busybox = whichTool('busybox')!;
  if (!(await isStaticElf(busybox))) {
    throw new Error(`${busybox} is dynamically linked: install busybox-static, not busybox`);
  }
  const layout = join(work, 'layout');
  const image = `${layout}:${TAG}`;
  await runToolOk('umoci', ['init', '--layout', layout]);
  await runToolOk('umoci', ['new', '--image', image]);
  const src = join(work, 'busybox');
  await copyFile(busybox, src);
  await runToolOk('umoci', ['insert', '--image', image, src, '/bin/busybox']);
  const entry = ENTRYPOINT.flatMap((a) => ['--config.entrypoint', a]);
  await runToolOk('umoci', ['config', '--image', image, ...entry]);
  return layout;
}

describe.skipIf(missingTools('umoci', 'skopeo', 'oci-image-tool', 'runc', 'busybox').length > 0)(
  'e2e harness: real tools on an image umoci built',
  () => {
    let work = '';
    let layout = '';

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'imgbuild-harness-'));
      layout = await buildBusyboxImage(work);
    });
    afterAll(async () => {
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('skopeo inspects the layout: one layer, the entrypoint umoci set', async () => {
      const info = await skopeoInspect(`oci:${layout}:${TAG}`);
      expect(info.Os).toBe('linux');
      expect(info.Layers).toHaveLength(1);
      const config = await skopeoInspect(`oci:${layout}:${TAG}`, { config: true });
      expect(config.config.Entrypoint).toEqual(ENTRYPOINT);
    });

    it('oci-image-tool validates the layout', async () => {
      await expect(ociValidate(layout, TAG)).resolves.toBeUndefined();
      await expect(ociValidate(layout, 'no-such-tag')).rejects.toThrow(/oci-image-tool/);
    });

    it('umoci unpacks it to exactly /bin and /bin/busybox, and runc runs it', async () => {
      const bundle = join(work, 'bundle');
      const rootfs = await umociUnpack(layout, TAG, bundle);
      const size = (await stat(whichTool('busybox')!)).size;
      expect(await listRootfs(rootfs)).toEqual([
        { path: '/bin', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
        { path: '/bin/busybox', type: 'file', mode: 0o755, uid: 0, gid: 0, size },
      ]);
      const res = await runcRun(bundle);
      expect(res).toMatchObject({ stdout: 'hello\n', exitCode: 0 });
    });

    describe.skipIf(missingTools('containerd', 'ctr').length > 0)('containerd', () => {
      let ctd: Containerd | undefined;
      beforeAll(async () => {
        ctd = await startContainerd();
      });
      afterAll(async () => {
        await ctd?.stop();
      });

      it('imports a docker archive skopeo wrote and runs the entrypoint', async () => {
        const archive = join(work, 'hello.tar');
        await skopeoCopy(`oci:${layout}:${TAG}`, `docker-archive:${archive}:hello:latest`);
        expect(await ctd!.importArchive(archive)).toEqual(['docker.io/library/hello:latest']);
        const res = await ctd!.run('docker.io/library/hello:latest', 'harness-import');
        expect(res, ctd!.log()).toMatchObject({ stdout: 'hello\n', exitCode: 0 });
      });

      describe.skipIf(missingTools('docker-registry').length > 0)('with a loopback registry', () => {
        let registry: { port: number; stop(): Promise<void> } | undefined;
        beforeAll(async () => {
          registry = await startPlainRegistry(join(work, 'registry'));
        });
        afterAll(async () => {
          await registry?.stop();
        });

        it('pulls over plain HTTP and runs the entrypoint', async () => {
          const ref = `127.0.0.1:${registry!.port}/harness/hello:v1`;
          await skopeoCopy(`oci:${layout}:${TAG}`, `docker://${ref}`);
          await ctd!.pull(ref, { plainHttp: true });
          const res = await ctd!.run(ref, 'harness-pull');
          expect(res, ctd!.log()).toMatchObject({ stdout: 'hello\n', exitCode: 0 });
        });
      });
    });
  },
);

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (!addr || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/**
 * The smallest Distribution registry, without auth, just enough to prove `pull`. The registry
 * tests own the full-featured helper; this one stays here so the harness depends on nothing else.
 */
async function startPlainRegistry(dir: string): Promise<{ port: number; stop(): Promise<void> }> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const cfg = join(dir, 'config.yml');
  await writeFile(
    cfg,
    `version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: ${dir}/data}}\n` +
      `http: {addr: 127.0.0.1:${port}}\n`,
  );
  const child = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  // A deadline for a hung start, not a timing assertion.
  for (const deadline = Date.now() + 30_000; ; await sleep(100)) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited:\n${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false);
    if (ok) return { port, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer on ${port}:\n${stderr}`);
    }
  }
}
