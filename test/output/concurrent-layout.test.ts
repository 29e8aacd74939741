/**
 * Many processes, one layout: eight writers at once, readers polling index.json meanwhile, and
 * writers killed with SIGKILL at arbitrary moments. The children run the compiled sink (built
 * here with a tsconfig of this folder's own) as real separate processes.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageIndex } from '../../src/image/types.js';
import { writeOciLayout } from '../../src/output/oci-layout.js';
import { randomImage, validateLayout } from '../helpers/random-image.js';
import { missingTools } from '../helpers/tools.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const buildDir = join(root, 'node_modules/.cache/imgbuild-output-test');
const child = join(here, 'fixtures/layout-writer.mjs');
const REF = 'org.opencontainers.image.ref.name';

let work: string;
beforeAll(async () => {
  await promisify(execFile)('npx', ['tsc', '-p', join(here, 'tsconfig.child.json')], { cwd: root });
  work = await mkdtemp(join(tmpdir(), 'imgbuild-concurrent-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Writer {
  proc: ChildProcess;
  lines: string[];
  done: Promise<number>;
}

function startWriter(layout: string, mode: 'once' | 'loop', seed: string, args: string[] = []): Writer {
  const proc = spawn(process.execPath, [child, buildDir, layout, mode, seed, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  proc.stdout?.setEncoding('utf8').on('data', (s: string) => lines.push(...s.split('\n').filter(Boolean)));
  proc.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<number>((res) =>
    proc.on('close', (code, signal) => {
      if (code !== 0 && signal !== 'SIGKILL') process.stderr.write(`writer ${seed} failed: ${stderr}\n`);
      res(code ?? -1);
    }),
  );
  return { proc, lines, done };
}

const waitForLines = async (w: Writer, n: number) => {
  while (w.lines.length < n) await new Promise((r) => setTimeout(r, 5));
};

const readIndex = async (dir: string) => JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
const tagged = (index: ImageIndex, tag: string) => index.manifests.filter((d) => d.annotations?.[REF] === tag);

describe.skipIf(missingTools('umoci', 'oci-image-tool').length > 0)('concurrent writers to one OCI layout', () => {
  it('eight processes at once all succeed, every tag lands, and readers only ever see whole index files', async () => {
    const layout = join(work, 'eight');
    const ROUNDS = 5;
    const writers = Array.from({ length: 8 }, (_, i) => startWriter(layout, 'once', `w${i}`, [String(ROUNDS), `t${i}`, 'app:shared']));
    // Everyone builds first, then all start writing at the same moment, to make them collide.
    await Promise.all(writers.map((w) => waitForLines(w, 1)));
    for (const w of writers) w.proc.stdin?.end('go\n');
    let reads = 0;
    let running = true;
    const codesP = Promise.all(writers.map((w) => w.done)).finally(() => (running = false));
    while (running) {
      const text = await readFile(join(layout, 'index.json'), 'utf8').catch(() => undefined);
      if (text !== undefined) {
        expect(() => JSON.parse(text)).not.toThrow();
        reads++;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(await codesP).toEqual(Array(8).fill(0));
    expect(reads).toBeGreaterThan(0);
    const digests = writers.map((w) => (JSON.parse(w.lines[1] ?? '{}') as { digest: string }).digest);
    const index = await readIndex(layout);
    for (let i = 0; i < 8; i++) {
      expect(tagged(index, `t${i}`).map((d) => d.digest)).toEqual([digests[i]]);
      for (let r = 0; r < ROUNDS; r++) expect(tagged(index, `w${i}-r${r}`).map((d) => d.digest)).toEqual([digests[i]]);
    }
    expect(tagged(index, 'shared')).toHaveLength(1);
    expect(digests).toContain(tagged(index, 'shared')[0]?.digest);
    expect(index.manifests).toHaveLength(8 + 8 * ROUNDS + 1);
    for (const tag of ['t0', 't7', 'shared']) await validateLayout(layout, tag);
    expect(await readdir(join(layout, '.imgbuild', 'tmp'))).toEqual([]);
    expect((await readdir(join(layout, '.imgbuild'))).sort()).toEqual(['tmp', 'verified']);
  });

  it('a writer killed at any moment leaves a valid layout that the next run completes', async () => {
    const layout = join(work, 'killed');
    for (const after of [1, 2, 4]) {
      const w = startWriter(layout, 'loop', `k${after}`);
      await waitForLines(w, after);
      w.proc.kill('SIGKILL');
      await w.done;
      const index = await readIndex(layout);
      for (const d of index.manifests) await validateLayout(layout, d.annotations?.[REF] as string);
    }
    const image = await randomImage({ seed: 'after-kill', layers: 2 });
    await writeOciLayout(layout, { image }, ['after']);
    const files = await validateLayout(layout, 'after');
    expect(files.length).toBeGreaterThan(0);
    expect(tagged(await readIndex(layout), 'after').map((d) => d.digest)).toEqual([await image.digest()]);
  });

  it('breaks a lock left by a dead process or one that is long stale', async () => {
    const layout = join(work, 'stale');
    const image = await randomImage({ seed: 'stale', layers: 1 });
    await writeOciLayout(layout, { image }, ['first']);
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.on('close', r));
    const lock = join(layout, '.imgbuild', 'index.lock');
    await writeFile(lock, JSON.stringify({ pid: dead.pid, host: hostname(), token: 'dead' }));
    await writeOciLayout(layout, { image }, ['second']);
    await mkdir(dirname(lock), { recursive: true });
    await writeFile(lock, JSON.stringify({ pid: 1, host: 'another-host', token: 'old' }));
    const longAgo = new Date(Date.now() - 10 * 60_000);
    await utimes(lock, longAgo, longAgo);
    await writeOciLayout(layout, { image }, ['third']);
    expect((await readIndex(layout)).manifests.map((d) => d.annotations?.[REF])).toEqual(['first', 'second', 'third']);
  });
});
