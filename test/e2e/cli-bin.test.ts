/**
 * The shipped executable (dist/bin/imgbuild.cjs, which loads dist/bin/main.js, a bundle of the
 * CLI and its packages) in a package folder of its own: dist/bin/, schemas/, templates/ and package.json, no node_modules.
 * It must find the files shipped beside it from wherever it is run.
 */
import { spawn } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertCliBuilt, collect, REPO_ROOT, TempDirs } from '../helpers/imgbuild.js';

const temps = new TempDirs();
afterAll(() => temps.cleanup());

let installed = '';
let work = '';

/** Runs the installed copy's bin from `work`, a folder outside the package. */
const run = (args: string[]) => collect(spawn(process.execPath, [join(installed, 'dist/bin/imgbuild.cjs'), ...args], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] }));

describe('the imgbuild executable, installed', () => {
  beforeAll(async () => {
    assertCliBuilt();
    installed = join(await temps.make(), 'imgbuild');
    for (const part of ['dist/bin', 'schemas', 'templates', 'package.json']) await cp(join(REPO_ROOT, part), join(installed, part), { recursive: true });
    work = await temps.make();
  });

  // The layers' gzip blocks are deflated on libuv's thread pool, which Node makes 4 threads wide
  // unless UV_THREADPOOL_SIZE says otherwise, before any code of ours could set it in an ES module.
  it('sizes the thread pool that compresses layers to the cores and one more, unless the environment sizes it', async () => {
    // The probe starts the pool itself once the executable's first step has run (whether
    // `--version` uses the pool depends on the Node version: Node 22 and 24 load ES modules
    // without it), and counts the process's threads as it exits.
    const probe = join(work, 'probe.cjs');
    await writeFile(
      probe,
      [
        "const fs = require('node:fs');",
        'setImmediate(() => fs.stat(__filename, () => {}));',
        "process.on('exit', () => process.stderr.write(`pool=${process.env.UV_THREADPOOL_SIZE} threads=${fs.readdirSync('/proc/self/task').length}\\n`));",
        '',
      ].join('\n'),
    );
    const withPool = async (size: string | undefined) => {
      const env = { ...process.env };
      if (size === undefined) delete env.UV_THREADPOOL_SIZE;
      else env.UV_THREADPOOL_SIZE = size;
      const r = await collect(spawn(process.execPath, ['--require', probe, join(installed, 'dist/bin/imgbuild.cjs'), '--version'], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] }));
      expect(r.exitCode, r.stderr).toBe(0);
      const [, pool, threads] = /pool=(\S+) threads=(\d+)/.exec(r.stderr) ?? [];
      return { pool, threads: Number(threads) };
    };
    const sized = await withPool(undefined);
    const one = await withPool('1');
    expect(sized.pool).toBe(String(availableParallelism() + 1));
    expect(one.pool).toBe('1');
    // An empty value, which libuv would read as 1 thread, is taken as unset.
    expect(await withPool('')).toEqual(sized);
    // The pool really has those threads: all else about the two processes is the same.
    expect(sized.threads - one.threads).toBe(availableParallelism());
  });

  it('reports the version of its package.json', async () => {
    const { version } = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await run(['--version']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  });

  it('prints the JSON Schema shipped with it', async () => {
    const r = await run(['schema']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(await readFile(join(REPO_ROOT, 'schemas/image.schema.json'), 'utf8')));
  });

  it('writes a starter spec from its templates, which then validates, and names a bad spec\'s line', async () => {
    const init = await run(['init', 'image.yaml', '--template', 'static', '--name', 'e2e/bin']);
    expect(init.exitCode, init.stderr).toBe(0);
    expect(await readFile(join(work, 'image.yaml'), 'utf8')).toBe((await readFile(join(REPO_ROOT, 'templates/static.yaml'), 'utf8')).replace('${NAME}', 'e2e/bin'));
    const ok = await run(['validate', 'image.yaml']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    await writeFile(join(work, 'bad.yaml'), 'apiVersion: imgbuild/v1\nname: e2e/bin\nlayers: [{ name: a, dirs: [{ path: /a }] }]\nlayerz: 1\n');
    const bad = await run(['validate', 'bad.yaml']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/bad\.yaml:4:1/);
    // For CI: one JSON object either way, the failure as apply --json's error event; plan --json too.
    expect(JSON.parse((await run(['validate', 'image.yaml', '--json'])).stdout)).toEqual({ type: 'valid', file: 'image.yaml', layers: expect.any(Number) });
    for (const args of [['validate', 'bad.yaml', '--json'], ['plan', 'bad.yaml', '--json']]) {
      const r = await run(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(JSON.parse(r.stdout)).toMatchObject({ type: 'error', exitCode: 2, diagnostics: [expect.objectContaining({ position: { file: 'bad.yaml', line: 4, col: 1 } })] });
    }
  });

  it('refuses to write a starter whose --name validate would refuse', async () => {
    const r = await run(['init', 'named/image.yaml', '--name', 'Acme/App']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--name "Acme/App" is not a repository name');
    await expect(readFile(join(work, 'named/image.yaml'))).rejects.toThrow();
  });

  it('writes a starter spec into a folder not made yet, and says plainly what is wrong with conflicting or misplaced arguments', async () => {
    const init = await run(['init', 'newapp/image.yaml', '--template', 'static']);
    expect(init.exitCode, init.stderr).toBe(0);
    expect(await readFile(join(work, 'newapp/image.yaml'), 'utf8')).toContain('name: newapp');
    const formats = await run(['plan', 'newapp/image.yaml', '--json', '--format', 'markdown']);
    expect(formats.exitCode).toBe(2);
    expect(formats.stderr).toContain('--json and --format markdown ask for two formats');
    // A script that passed --json reads the refusal as the error event, whatever refused it.
    expect(JSON.parse(formats.stdout)).toMatchObject({ type: 'error', exitCode: 2, message: expect.stringContaining('ask for two formats') });
    for (const args of [['validate', 'newapp/image.yaml', '--json', '--var', 'bad'], ['plan', 'newapp/image.yaml', '--json', '--var', '1x=3']]) {
      const r = await run(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(JSON.parse(r.stdout), args.join(' ')).toMatchObject({ type: 'error', exitCode: 2, message: expect.stringContaining('--var') });
    }
    const dirArchive = await run(['inspect', 'docker-archive:newapp']);
    expect(dirArchive.exitCode).toBe(2);
    expect(dirArchive.stderr).toContain('is a directory, not an archive file');
  });

  it('inspects an image built for another platform without being told which', async () => {
    await writeFile(join(work, 'arm.yaml'), 'apiVersion: imgbuild/v1\nname: e2e/arm\nplatforms: [linux/arm64]\nlayers:\n  - name: one\n    files: [{ path: /etc/one, content: "1" }]\noutput: [{ oci: ./out-arm }]\n');
    const built = await run(['apply', 'arm.yaml', '--cache-dir', join(work, '.cache')]);
    expect(built.exitCode, built.stderr).toBe(0);
    const shown = await run(['inspect', 'oci:./out-arm', '--json']);
    expect(shown.exitCode, shown.stderr).toBe(0);
    expect((JSON.parse(shown.stdout) as { platform: string }).platform).toBe('linux/arm64');
  });
});
