/**
 * DESIGN promise 3 under real concurrency: a separate process rewrites, truncates, grows,
 * hard-links and deletes source files while layers are built from them. Every outcome must be
 * either a valid layer whose file bodies are each a consistent version of that file, or an
 * ImgbuildError naming the file. Bounded to a few seconds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContentStore } from '../../src/store/content-store.js';
import { buildLayer, type BuiltLayer } from '../../src/layer/build-layer.js';
import { isImgbuildError } from '../../src/errors.js';
import { GZIP6, planFor, readTar, tempDir, type Spec } from './fixtures.js';
import { block } from './fixtures/blocks.mjs';

const MUTATOR = join(import.meta.dirname, 'fixtures', 'mutator.mjs');
const cleanups: (() => void | Promise<void>)[] = [];
// Newest first: the mutator is stopped before its directory is removed.
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** True when `body` is a run of complete blocks of `name`, i.e. some version the mutator left. */
function isConsistentVersion(name: string, body: string): boolean {
  const lines = body.split('\n');
  if (lines.pop() !== '') return body === '';
  for (let i = 0; i < lines.length; ) {
    const m = /^B (\S+) (\d+) (\d+)$/.exec(lines[i]!);
    if (!m || m[1] !== name) return false;
    const [g, n] = [Number(m[2]), Number(m[3])];
    for (let k = 0; k < n; k++) {
      if (lines[i + 1 + k] !== `${name} ${g} ${'x'.repeat((g * 37 + k) % 120)}`) return false;
    }
    i += 1 + n;
  }
  return true;
}

function setup(): { dir: string; names: string[]; store: Promise<ContentStore> } {
  const src = tempDir('imgbuild-live-');
  const st = tempDir('imgbuild-live-store-');
  cleanups.push(src.cleanup, st.cleanup);
  const names = Array.from({ length: 24 }, (_, i) => `f${String(i).padStart(2, '0')}`).concat('large.bin');
  for (const [i, n] of names.entries()) writeFileSync(join(src.path, n), block(n, 0, n === 'large.bin' ? 40_000 : 20 + i));
  return { dir: src.path, names, store: ContentStore.open(st.path) };
}

/** Plan what is there now (the way a real replan would), skipping files deleted at this instant. */
function planNow(dir: string, names: string[]) {
  const tree: Record<string, Spec> = {};
  for (const n of names) {
    try {
      tree[n] = { type: 'file', content: readFileSync(join(dir, n)) };
    } catch {
      // deleted right now
    }
  }
  return planFor(dir, tree);
}

function startMutator(dir: string, mode: 'all' | 'links', ms: number) {
  const proc = spawn(process.execPath, [MUTATOR, dir, mode, String(ms), '42'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((res) => proc.stdout.once('data', () => res()));
  const exited = new Promise<void>((res) => proc.on('close', () => res()));
  cleanups.push(() => {
    proc.kill('SIGKILL');
    return exited;
  });
  return { ready, exited, running: () => proc.exitCode === null && proc.signalCode === null };
}

async function checkLayer(store: ContentStore, r: BuiltLayer): Promise<void> {
  expect(await store.verify(r.digest)).toBe(true);
  const entries = await readTar(readFileSync(store.blobPath(r.digest)));
  for (const e of entries) {
    expect(e.body.length).toBe(e.size);
    expect(isConsistentVersion(e.name, e.body.toString()), `${e.name} is torn`).toBe(true);
  }
}

describe('buildLayer while another process mutates the files', () => {
  it('yields only valid layers of consistent versions, or errors naming the file', async () => {
    const { dir, names, store: storeP } = setup();
    const store = await storeP;
    const m = startMutator(dir, 'all', 2500);
    await m.ready;
    let ok = 0;
    let failed = 0;
    // At least four builds, however slowly they go while files keep changing.
    for (let i = 0; m.running() || ok + failed < 4; i++) {
      const replan = i % 2 === 0 ? async () => planNow(dir, names) : undefined;
      try {
        await checkLayer(store, await buildLayer(planNow(dir, names), { store, epoch: 0, compression: GZIP6, replan }));
        ok++;
      } catch (e) {
        if (!isImgbuildError(e)) throw e;
        expect(e.message).toContain(dir);
        failed++;
      }
    }
    await m.exited;
    // Once the file system is quiet again the same code builds a valid layer.
    const quiet = names.filter((n) => existsSync(join(dir, n)));
    await checkLayer(store, await buildLayer(planNow(dir, quiet), { store, epoch: 0, compression: GZIP6 }));
  });

  it('hard links added and removed by a store optimiser never disturb the build', async () => {
    const { dir, names, store: storeP } = setup();
    const store = await storeP;
    const expected = await buildLayer(planNow(dir, names), { store, epoch: 0, compression: GZIP6 });
    const m = startMutator(dir, 'links', 1500);
    await m.ready;
    let builds = 0;
    while (m.running()) {
      const r = await buildLayer(planNow(dir, names), { store, epoch: 0, compression: GZIP6 });
      expect(r).toEqual(expected);
      builds++;
    }
    expect(builds).toBeGreaterThan(1);
  });
});
