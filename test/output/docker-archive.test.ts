import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleIndex } from '../../src/image/assemble.js';
import { writeDockerArchive } from '../../src/output/docker-archive.js';
import { sinkFor } from '../../src/output/sink.js';
import { randomImage, runTool } from '../helpers/random-image.js';
import { missingTools } from '../helpers/tools.js';

let work: string;

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'imgbuild-archive-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function tarEntries(file: string): Promise<{ name: string; mtime: number; mode: number; body: Buffer }[]> {
  const extract = tar.extract();
  Readable.from([await readFile(file)]).pipe(extract);
  const out = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    out.push({ name: entry.header.name, mtime: entry.header.mtime.getTime(), mode: entry.header.mode, body: Buffer.concat(chunks) });
  }
  return out;
}

describe('docker archive layout', () => {
  it('holds manifest.json, repositories and an OCI layout, sorted, with fixed times, and is byte-for-byte reproducible', async () => {
    const image = await randomImage({ seed: 'arch', layers: 2 });
    const [a, b] = [join(work, 'a.tar'), join(work, 'b.tar')];
    await writeDockerArchive(a, image, ['app:1.0', 'ghcr.io/acme/app:2']);
    await writeDockerArchive(b, await randomImage({ seed: 'arch', layers: 2 }), ['app:1.0', 'ghcr.io/acme/app:2']);
    expect(await readFile(a)).toEqual(await readFile(b));
    const entries = await tarEntries(a);
    const names = entries.map((e) => e.name);
    expect(names).toEqual([...names].sort());
    expect(names.slice(-4)).toEqual(['index.json', 'manifest.json', 'oci-layout', 'repositories']);
    expect(new Set(entries.map((e) => e.mtime))).toEqual(new Set([0]));
    const manifest = JSON.parse(entries.find((e) => e.name === 'manifest.json')!.body.toString()) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    const digests = await Promise.all((await image.layers()).map((l) => l.digest()));
    expect(manifest).toEqual([
      { Config: `blobs/sha256/${(await image.configDigest()).slice(7)}`, RepoTags: ['app:1.0', 'ghcr.io/acme/app:2'], Layers: digests.map((d) => `blobs/sha256/${d.slice(7)}`) },
    ]);
    const index = JSON.parse(entries.find((e) => e.name === 'index.json')!.body.toString()) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    expect(index.manifests.map((m) => m.annotations['io.containerd.image.name'])).toEqual(['docker.io/library/app:1.0', 'ghcr.io/acme/app:2']);
    const digest = await image.digest();
    expect(index.manifests.map((m) => m.digest)).toEqual([digest, digest]);
    expect(await readdir(work)).not.toContain(expect.stringMatching(/\.tmp$/));
  });

  it('fails with a build error and leaves no file when a layer does not match its digest', async () => {
    const good = await randomImage({ seed: 'lie', layers: 1 });
    const other = await randomImage({ seed: 'lie-other', layers: 1 });
    const lying = { ...good.newLayers[0]!, compressed: () => other.newLayers[0]!.compressed() };
    const image = { ...good, layers: async () => [lying] };
    const file = join(work, 'out', 'lie.tar');
    await expect(writeDockerArchive(file, image, ['app:1'])).rejects.toMatchObject({ kind: 'build', message: expect.stringContaining('corrupt') });
    expect(await readdir(join(work, 'out'))).toEqual([]);
  });

  it('removes the temp files of killed writers of the same archive, and no other file', async () => {
    const dir = join(work, 'killed');
    const file = join(dir, 'k.tar');
    const gone = await deadPid();
    await mkdir(dir, { recursive: true });
    const kept = [`.k.tar.${process.pid}.aaaaaaaaaaaa.tmp`, `.other.tar.${gone}.bbbbbbbbbbbb.tmp`, 'notes.txt'];
    for (const name of [`.k.tar.${gone}.cccccccccccc.tmp`, ...kept]) await writeFile(join(dir, name), 'x');
    await writeDockerArchive(file, await randomImage({ seed: 'killed', layers: 1 }), ['app:1']);
    expect((await readdir(dir)).sort()).toEqual([...kept, 'k.tar'].sort());
  });

  it('refuses several platforms with a message that says why', async () => {
    const amd = await randomImage({ seed: 'p1', layers: 1 });
    const arm = await randomImage({ seed: 'p2', layers: 1, platform: { os: 'linux', architecture: 'arm64' } });
    const index = assembleIndex(
      [
        { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
        { image: arm, platform: { os: 'linux', architecture: 'arm64' } },
      ],
      {},
    );
    const sink = sinkFor({ kind: 'docker-archive', path: join(work, 'multi.tar') });
    await expect(sink.write({ index }, ['app:1'])).rejects.toMatchObject({ kind: 'unsupported', message: expect.stringContaining('linux/amd64, linux/arm64') });
    expect(existsSync(join(work, 'multi.tar'))).toBe(false);
  });

  it('completes bare tags with the image name and leaves registry outputs to the registry hook', async () => {
    const file = join(work, 'named.tar');
    await sinkFor({ kind: 'docker-archive', path: file }, { name: 'myapp' }).write({ image: await randomImage({ seed: 'n', layers: 1 }) }, ['1.0', 'myapp:latest']);
    const manifest = JSON.parse((await tarEntries(file)).find((e) => e.name === 'manifest.json')!.body.toString()) as { RepoTags: string[] }[];
    expect(manifest[0]?.RepoTags).toEqual(['myapp:1.0', 'myapp:latest']);
    expect(() => sinkFor({ kind: 'registry', ref: 'r/x:1' })).toThrow(/registry sink/);
    const pushed: string[] = [];
    const fake = sinkFor({ kind: 'registry', ref: 'r/x:1' }, { registry: (ref) => ({ describe: () => ref, write: async () => (pushed.push(ref), { digest: 'sha256:x' as never, mediaType: '', size: 0 }) }) });
    await fake.write({ image: await randomImage({ seed: 'n', layers: 1 }) }, []);
    expect(pushed).toEqual(['r/x:1']);
  });
});

describe.skipIf(missingTools('skopeo').length > 0)('docker archive read by skopeo', () => {
  it('is accepted by skopeo inspect docker-archive:FILE, with the same digests', async () => {
    const image = await randomImage({ seed: 'skopeo', layers: 3, runtime: { Entrypoint: ['/bin/app'], Env: ['X=1'] } });
    const file = join(work, 'skopeo.tar');
    await writeDockerArchive(file, image, ['app:1.0']);
    // Selecting by the RepoTag proves skopeo read manifest.json's tags too.
    const inspect = JSON.parse(await runTool('skopeo', ['inspect', `docker-archive:${file}:app:1.0`])) as { Layers: string[]; Env: string[]; RepoTags: string[] };
    // skopeo reads a docker archive's layers by their uncompressed digests (diff_ids).
    expect(inspect.Layers).toEqual(await Promise.all((await image.layers()).map((l) => l.diffId())));
    expect(inspect.Env).toEqual(['X=1']);
    const config = JSON.parse(await runTool('skopeo', ['inspect', '--config', '--raw', `docker-archive:${file}`])) as { rootfs: { diff_ids: string[] } };
    expect(config.rootfs.diff_ids).toEqual((await image.configFile()).rootfs.diff_ids);
    const dest = join(work, 'copied');
    await runTool('skopeo', ['copy', `docker-archive:${file}`, `oci:${dest}:copied`]);
  });
});

describe.skipIf(missingTools('containerd', 'ctr').length > 0)('docker archive imported by containerd', () => {
  let daemon: ChildProcess | undefined;
  let dir: string;
  const sock = () => join(dir, 'c.sock');
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imgbuild-ctrd-'));
    const config = [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${sock()}"`,
      '[ttrpc]',
      `  address = "${sock()}.ttrpc"`,
    ].join('\n');
    await writeFile(join(dir, 'config.toml'), config);
    daemon = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: 'ignore' });
    for (let i = 0; i < 200 && !existsSync(sock()); i++) await new Promise((r) => setTimeout(r, 50));
  });
  afterAll(async () => {
    daemon?.kill('SIGTERM');
    await new Promise((r) => (daemon ? daemon.on('close', r) : r(undefined)));
    await rm(dir, { recursive: true, force: true });
  });

  it('ctr images import accepts it under its tag and digest', async () => {
    const image = await randomImage({ seed: 'ctr', layers: 2 });
    const file = join(work, 'ctr.tar');
    await writeDockerArchive(file, image, ['imgbuild-test/app:1.0']);
    await runTool('ctr', ['-a', sock(), '-n', 'imgbuild', 'images', 'import', file]);
    const list = await runTool('ctr', ['-a', sock(), '-n', 'imgbuild', 'images', 'ls']);
    expect(list).toContain('docker.io/imgbuild-test/app:1.0');
    expect(list).toContain(await image.digest());
  });
});
