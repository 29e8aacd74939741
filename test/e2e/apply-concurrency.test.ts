/**
 * DESIGN promise 4 and crash safety through the CLI. Eight `imgbuild apply` processes started at
 * once on one cache dir and one output dir (an OCI layout and a docker archive) all succeed with
 * one digest, and what they leave validates. `kill -9` at several moments of a build (by time
 * after the start or after the plan event, and as the outputs start) leaves the cache and the outputs
 * usable: any layout left behind still validates, and the next `apply` on the same dirs
 * succeeds with the digest of a clean build, whose blobs umoci verifies while unpacking.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyOk, collect, parseEvents, spawnCli, TempDirs, writeSpec, writeTree, type CliResult } from '../helpers/imgbuild.js';
import { listRootfs, ociValidate, skopeoInspect, umociUnpack } from '../helpers/oci-tools.js';
import { missingTools } from '../helpers/tools.js';

const temps = new TempDirs();
afterAll(() => temps.cleanup());

/** A context of `files` files of `size` random bytes in three groups, and its three-layer spec (outputs under ./${OUT:-out}/). */
async function makeProject(dir: string, files: number, size: number): Promise<string> {
  const tree: Record<string, Buffer> = {};
  for (let i = 0; i < files; i++) tree[`${['a', 'b', 'c'][i % 3]}/f${String(i).padStart(3, '0')}.bin`] = randomBytes(size);
  await writeTree(join(dir, 'ctx'), tree);
  return writeSpec(dir, {
    name: 'e2e/concurrent',
    context: 'ctx',
    layers: ['a', 'b', 'c'].map((g) => ({ name: g, copy: [{ from: `${g}/`, to: `/data/${g}/` }] })),
    output: [{ oci: './${OUT:-out}/layout' }, { 'docker-archive': './${OUT:-out}/image.tar' }],
  });
}

/**
 * When to kill: `ms` after spawning, or `ms` (default 0) after the first event of type `after`
 * (the CLI takes a few hundred ms to start and plan, so build-phase moments count from `plan`).
 */
type KillAt = { ms: number; after?: 'plan' | 'image' };

/** Starts `apply --json` and kills it with SIGKILL at `when`. */
async function applyKilled(spec: string, cache: string, out: string, when: KillAt): Promise<CliResult & { killedAt: string }> {
  const child = spawnCli(['apply', spec, '--json', '--cache-dir', cache, '--var', `OUT=${out}`]);
  const moment = when.after ? `${when.ms} ms after the ${when.after} event` : `${when.ms} ms after start`;
  let killedAt = `exited before ${moment}`;
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) {
      killedAt = moment;
      child.kill('SIGKILL');
    }
  };
  if (!when.after) setTimeout(kill, when.ms);
  else {
    let buf = '';
    const onData = (b: Buffer) => {
      buf += b.toString('utf8');
      if (!buf.split('\n').some((l) => l.includes(`"type":"${when.after}"`))) return;
      child.stdout!.off('data', onData);
      setTimeout(kill, when.ms);
    };
    child.stdout!.on('data', onData);
  }
  return { ...(await collect(child)), killedAt };
}

describe.skipIf(missingTools('skopeo', 'umoci', 'oci-image-tool').length > 0)('apply with concurrency and crashes', () => {
  it('eight applies at once on one cache and one output dir: all exit 0, one digest, valid outputs', async () => {
    const dir = await temps.make();
    const spec = await makeProject(dir, 30, 40_000);
    const cache = join(dir, 'cache');
    const runs = await Promise.all(Array.from({ length: 8 }, () => collect(spawnCli(['apply', spec, '--json', '--cache-dir', cache]))));
    const digests = runs.map((r) => {
      expect(r.exitCode, r.stderr).toBe(0);
      return parseEvents(r.stdout).find((e) => e.type === 'done')!.digest;
    });
    expect(new Set(digests).size).toBe(1);
    const layout = join(dir, 'out', 'layout');
    await ociValidate(layout, 'latest');
    expect((await skopeoInspect(`oci:${layout}:latest`)).Digest).toBe(digests[0]);
    expect((await skopeoInspect(`docker-archive:${join(dir, 'out', 'image.tar')}`)).Layers).toHaveLength(3);
    const rootfs = await umociUnpack(layout, 'latest', join(dir, 'bundle'));
    expect((await listRootfs(rootfs)).filter((e) => e.type === 'file')).toHaveLength(30);
  });

  describe('kill -9 in the middle of a build', () => {
    let dir = '';
    let spec = '';
    let clean = '';
    beforeAll(async () => {
      dir = await temps.make();
      // ~4 MB of incompressible bytes: long enough to be caught mid-layer.
      spec = await makeProject(dir, 60, 70_000);
      ({ digest: clean } = await applyOk(spec, join(dir, 'clean-cache'), ['--var', 'OUT=clean']));
      expect(clean).toMatch(/^sha256:/);
    });

    const rounds: { name: string; kills: KillAt[] }[] = [
      { name: 'at 400 ms (start-up, planning: files being hashed)', kills: [{ ms: 400 }] },
      { name: '50 ms into the layers, then 150 ms into them on the same cache', kills: [{ ms: 50, after: 'plan' }, { ms: 150, after: 'plan' }] },
      { name: '250 ms after planning (last layers or outputs)', kills: [{ ms: 250, after: 'plan' }] },
      { name: 'as the outputs start', kills: [{ ms: 0, after: 'image' }] },
    ];
    it.each(rounds)('$name: the next apply succeeds with the clean digest', async ({ kills }) => {
      // Each round starts from an empty cache and an empty output dir of its own.
      const cache = await temps.make('imgbuild-kill-cache-');
      const out = `out-${rounds.findIndex((r) => r.kills === kills)}`;
      const layout = join(dir, out, 'layout');
      for (const when of kills) {
        const killed = await applyKilled(spec, cache, out, when);
        expect(killed.exitCode === 137 || killed.exitCode === 0, `${killed.killedAt}: exit ${killed.exitCode}\n${killed.stderr}`).toBe(true);
        // Whatever a killed build left in the layout is a valid layout (the image or nothing tagged yet).
        if (existsSync(join(layout, 'index.json'))) await ociValidate(layout, 'latest');
      }
      const { digest } = await applyOk(spec, cache, ['--var', `OUT=${out}`]);
      expect(digest).toBe(clean);
      await ociValidate(layout, 'latest');
      expect((await skopeoInspect(`oci:${layout}:latest`)).Digest).toBe(clean);
      expect((await skopeoInspect(`docker-archive:${join(dir, out, 'image.tar')}`)).Layers).toHaveLength(3);
      const bundle = await temps.make('imgbuild-kill-bundle-');
      const rootfs = await umociUnpack(layout, 'latest', join(bundle, 'b'));
      expect((await listRootfs(rootfs)).filter((e) => e.type === 'file')).toHaveLength(60);
    });
  });
});
