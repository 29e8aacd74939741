/**
 * A symlink replaced between the listing of its directory and the reading of its target (`ln
 * -sfn` on a live tree) makes its layer be listed again, whichever listing meets it: a watch's
 * re-plan of one layer, or the second listing of a plan. `readlinkSync` is wrapped so that the
 * race happens on cue: the link is removed, read (ENOENT, as the race gives), and made again.
 */
import * as fs from 'node:fs';
import { mkdirSync, mkdtempSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { compileOneLayer, compilePlan } from '../../src/plan/compile.js';
import { loadSpec } from '../../src/spec/load.js';
import { UncachedDigester } from '../../src/store/file-digests.js';

const race = vi.hoisted(() => ({ path: '', times: 0 }));

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const readlinkSync = ((path: fs.PathLike, ...rest: unknown[]) => {
    if (String(path) !== race.path || race.times === 0) return (real.readlinkSync as (...a: unknown[]) => unknown)(path, ...rest);
    race.times--;
    const target = real.readlinkSync(path, 'utf8');
    real.unlinkSync(path);
    try {
      return real.readlinkSync(path);
    } finally {
      real.symlinkSync(target, path);
    }
  }) as typeof real.readlinkSync;
  return { ...real, readlinkSync, default: { ...real, readlinkSync } };
});

/** A context whose one layer merges a copy holding a symlink with an inline file (no ordered listing). */
async function linkContext() {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-relist-link-'));
  mkdirSync(join(dir, 'app'));
  writeFileSync(join(dir, 'app/a.js'), 'a');
  symlinkSync('a.js', join(dir, 'app/link'));
  writeFileSync(join(dir, 'image.yaml'), 'apiVersion: imgbuild/v1\nname: t/app\nlayers:\n  - name: l\n    copy: [{ from: app/, to: /s/ }]\n    files: [{ path: /etc/x, content: x }]\n');
  return { dir, spec: await loadSpec(join(dir, 'image.yaml'), { env: {} }) };
}

describe('a symlink replaced between listing and reading it', () => {
  it('lists the layer again when a watch re-plans that layer alone', async () => {
    const { dir, spec } = await linkContext();
    race.path = join(dir, 'app/link');
    race.times = 1;
    const layer = await compileOneLayer(spec, 0, [], new UncachedDigester());
    expect(race.times).toBe(0);
    expect(layer.entries.find((e) => e.path === 's/link')).toMatchObject({ type: 'symlink', target: 'a.js' });
    unlinkSync(join(dir, 'app/link'));
  });

  it("lists the layer again when the plan's second listing of it meets the race too", async () => {
    const { dir, spec } = await linkContext();
    race.path = join(dir, 'app/link');
    race.times = 2;
    const plan = await compilePlan(spec, new UncachedDigester());
    expect(race.times).toBe(0);
    expect(plan.layers[0]!.entries.find((e) => e.path === 's/link')).toMatchObject({ type: 'symlink', target: 'a.js' });
  });
});
