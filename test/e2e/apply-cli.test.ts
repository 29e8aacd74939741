/**
 * What a user and a CI script see of `imgbuild apply` (DESIGN promise 6): exit code 0 for a
 * build, 2 for an invalid spec or usage (with `file:line:col` and no stack trace), 1 for a
 * build failure such as a file the build cannot read (named, no stack trace); and with
 * `--json`, stdout carries JSON lines only, success or failure.
 */
import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { BuildPlan } from '../../src/plan/types.js';
import { CLI, eventsOf, parseEvents, runCli, spawnCli, TempDirs, writeSpec, writeTree } from '../helpers/imgbuild.js';

const temps = new TempDirs();
afterAll(() => temps.cleanup());

/** With --json, stdout is JSON lines only, success or failure; an error event, if any, agrees on the exit code. */
function expectJsonOnly(stdout: string, exitCode: number): void {
  for (const e of parseEvents(stdout) as { type: string; exitCode?: number }[]) if (e.type === 'error') expect(e.exitCode).toBe(exitCode);
}

/** A node stack frame line, as printed for an unexpected error. */
const STACK_FRAME = /^\s+at .+[:(]/m;
const NOBODY = 65534;

describe('imgbuild apply on the command line', () => {
  let dir = '';
  let goodSpec = '';
  beforeAll(async () => {
    dir = await temps.make();
    await writeTree(join(dir, 'ctx'), { 'a.txt': 'a\n', 'sub/b.txt': 'b\n' });
    goodSpec = await writeSpec(dir, {
      name: 'e2e/cli',
      context: 'ctx',
      layers: [{ name: 'files', copy: [{ from: 'a.txt', to: '/srv/' }, { from: 'sub/', to: '/srv/sub/' }] }],
      output: [{ oci: './out/layout' }],
    });
  });

  it('exits 0 and, with --json, prints only JSON events on stdout, ending with done', async () => {
    const r = await runCli(['apply', goodSpec, '--json', '--cache-dir', join(dir, 'cache')]);
    expect(r.exitCode, r.stderr).toBe(0);
    const events = parseEvents(r.stdout);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['plan', 'layer-done', 'image', 'output-done', 'done']));
    expect(events.at(-1)!.type).toBe('done');
    expect(eventsOf(events, 'output-done')[0]!.digest).toBe(eventsOf(events, 'done')[0]!.digest);
  });

  it('leaves out of a context it copies the files its own output goes to (a build logging into it, a plan written into it)', async () => {
    await writeTree(join(dir, 'logged'), { 'a.txt': 'a\n' });
    const spec = await writeSpec(dir, { name: 'e2e/logged', context: 'logged', layers: [{ name: 'all', copy: [{ from: '.', to: '/srv/' }] }], output: [{ oci: './out/logged' }] }, 'logged.yaml');
    /** Runs the CLI with stdout and stderr redirected to `file`, as `> file 2>&1` does, and returns what it wrote. */
    const into = async (file: string, args: string[]) => {
      const out = await open(file, 'w');
      const exitCode = await new Promise<number | null>((done) => spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', out.fd, out.fd] }).on('close', done));
      await out.close();
      const text = await readFile(file, 'utf8');
      expect(exitCode, text).toBe(0);
      return text;
    };
    const built = parseEvents(await into(join(dir, 'logged', 'build.log'), ['apply', spec, '--json', '--cache-dir', join(dir, 'cache')]));
    expect(eventsOf(built, 'plan')[0]).toMatchObject({ files: 1 });
    const plan = JSON.parse(await into(join(dir, 'logged', 'plan.json'), ['plan', spec, '--json', '--cache-dir', join(dir, 'cache')])) as BuildPlan;
    // The build's log is a file like any other now: only this run's own output is left out.
    expect(plan.layers[0]!.entries.map((e) => e.path)).toEqual(['srv', 'srv/a.txt', 'srv/build.log']);
  });

  it('inspects with the cache it is given, not one under the home directory', async () => {
    expect((await runCli(['apply', goodSpec, '--cache-dir', join(dir, 'cache')])).exitCode).toBe(0);
    const home = await temps.make();
    const r = await runCli(['inspect', `oci:${join(dir, 'out/layout')}`, '--cache-dir', join(dir, 'inspect-cache')], { env: { HOME: home, XDG_CACHE_HOME: undefined } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await readdir(home)).toEqual([]);
    expect(await readdir(join(dir, 'inspect-cache'))).not.toEqual([]);
  });

  it('exits 0 without --json and prints a summary naming the digest', async () => {
    const r = await runCli(['apply', goodSpec, '--cache-dir', join(dir, 'cache')]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/digest\s+sha256:[0-9a-f]{64}/);
  });

  it('exits 2 for an invalid spec, pointing at file:line:col with a did-you-mean, no stack trace', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'apiVersion: imgbuild/v1\nname: e2e/bad\ncontext: ctx\nlayers:\n  - name: files\n    copy:\n      - { from: a.txt, to: /a.txt, mdoe: "0644" }\n');
    for (const json of [false, true]) {
      const r = await runCli(['apply', bad, '--cache-dir', join(dir, 'cache'), ...(json ? ['--json'] : [])]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(`${bad}:7:36: error: unknown key "mdoe"`);
      expect(r.stderr).toContain('did you mean "mode"');
      expect(r.stderr).not.toMatch(STACK_FRAME);
      if (json) expectJsonOnly(r.stdout, 2);
    }
  });

  it('exits 2 for bad usage (a missing spec file, --jobs 0), no stack trace', async () => {
    const missing = await runCli(['apply', join(dir, 'nope.yaml'), '--cache-dir', join(dir, 'cache'), '--json']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('nope.yaml does not exist');
    expectJsonOnly(missing.stdout, 2);
    const jobs = await runCli(['apply', goodSpec, '--cache-dir', join(dir, 'cache'), '--jobs', '0']);
    expect(jobs.exitCode).toBe(2);
    expect(jobs.stderr).toContain('--jobs 0 is not a positive whole number');
    for (const r of [missing, jobs]) expect(r.stderr).not.toMatch(STACK_FRAME);
  });

  it('exits 2 for a SOURCE_DATE_EPOCH out of range, in plan and apply alike, before building and with no stack trace', async () => {
    const env = { SOURCE_DATE_EPOCH: '99999999999' };
    for (const cmd of ['plan', 'apply']) {
      const r = await runCli([cmd, goodSpec, '--cache-dir', join(dir, 'cache-epoch'), '--json'], { env });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toContain('SOURCE_DATE_EPOCH=99999999999 is out of range');
      expect(r.stderr).not.toMatch(STACK_FRAME);
      expectJsonOnly(r.stdout, 2);
      expect(parseEvents(r.stdout).map((e) => e.type)).not.toContain('layer-start');
    }
  });

  it('reports a failed output after every other output has finished: the error event is the last line', async () => {
    const work = await temps.make();
    await writeTree(join(work, 'ctx'), { 'a.txt': 'a\n' });
    await writeFile(join(work, 'afile'), 'in the way');
    const spec = await writeSpec(work, {
      name: 'e2e/outputs',
      context: 'ctx',
      layers: [{ name: 'files', copy: [{ from: 'a.txt', to: '/srv/' }] }],
      output: [{ oci: './afile' }, { 'docker-archive': './x.tar' }],
    });
    const r = await runCli(['apply', spec, '--json', '--cache-dir', join(work, 'cache')]);
    expect(r.exitCode).toBe(1);
    const events = parseEvents(r.stdout) as { type: string }[];
    expect(events.at(-1)).toMatchObject({ type: 'error', exitCode: 1 });
    expect(events.filter((e) => e.type === 'error')).toHaveLength(1);
  });

  it.each(['SIGINT', 'SIGTERM'] as const)('lets %s end a build as an interrupt: said, its temp files removed, ended by the signal', async (sig) => {
    const work = await temps.make();
    await writeTree(join(work, 'ctx'), { 'big.bin': randomBytes(48 << 20) });
    const spec = await writeSpec(work, { name: 'e2e/sigint', context: 'ctx', layers: [{ name: 'big', copy: [{ from: 'big.bin', to: '/big.bin' }] }], output: [{ oci: './out/layout' }] });
    const child = spawnCli(['apply', spec, '--json', '--cache-dir', join(work, 'cache')]);
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('close', (code, signal) => r({ code, signal })));
    let sent = false;
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString();
      // Once the layer's blob is being written: a temp file of it is in the cache.
      if (!sent && stdout.includes('"layer-progress"')) {
        sent = true;
        child.kill(sig);
      }
    });
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const { code, signal } = await ended;
    expect(sent).toBe(true);
    expect({ code, signal }).toEqual({ code: null, signal: sig });
    expect(parseEvents(stdout).at(-1)).toEqual({ type: 'error', exitCode: sig === 'SIGINT' ? 130 : 143, message: `interrupted (${sig}): every output is as it was or complete` });
    expect(stderr).toContain(`interrupted (${sig})`);
    expect(await readdir(join(work, 'cache', 'tmp'))).toEqual([]);
  });

  it('ends a --json run refused for its usage (an unknown flag) with the error event too', async () => {
    const r = await runCli(['apply', '--json', '--bogus', join(dir, 'image.yaml')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("unknown option '--bogus'");
    expect(parseEvents(r.stdout)).toEqual([{ type: 'error', exitCode: 2, message: "error: unknown option '--bogus'" }]);
  });

  it('ends a --watch --json whose first build fails with the error event, as a one-shot build does', async () => {
    const r = await runCli(['apply', join(dir, 'nope.yaml'), '--watch', '--json', '--cache-dir', join(dir, 'cache')]);
    expect(r.exitCode).toBe(2);
    expect(parseEvents(r.stdout)).toEqual([expect.objectContaining({ type: 'error', exitCode: 2, message: expect.stringContaining('nope.yaml does not exist') })]);
  });

  it('exits 1 for a file the build cannot read, naming it, and --json stdout stays JSON-only', async () => {
    // Run as nobody: root reads any file. Everything the build needs is made reachable to it.
    const work = await temps.make();
    await chmod(work, 0o755);
    await writeTree(join(work, 'ctx'), { 'pub/ok.txt': 'fine\n', 'pub/secret.txt': 'no\n' });
    await chmod(join(work, 'ctx', 'pub', 'secret.txt'), 0o000);
    await mkdir(join(work, 'cache'));
    await mkdir(join(work, 'out'));
    for (const d of ['cache', 'out']) await chown(join(work, d), NOBODY, NOBODY);
    const spec = await writeSpec(work, {
      name: 'e2e/unreadable',
      context: 'ctx',
      layers: [{ name: 'files', copy: [{ from: 'pub/', to: '/srv/' }] }],
      output: [{ oci: './out/layout' }],
    });
    for (const json of [false, true]) {
      const r = await runCli(['apply', spec, '--cache-dir', join(work, 'cache'), ...(json ? ['--json'] : [])], { uid: NOBODY, gid: NOBODY });
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toContain(join(work, 'ctx', 'pub', 'secret.txt'));
      expect(r.stderr).toMatch(/permission denied/);
      expect(r.stderr).not.toMatch(STACK_FRAME);
      expect(r.stderr).not.toMatch(/internal error/);
      if (json) expectJsonOnly(r.stdout, 1);
    }
  });
});
