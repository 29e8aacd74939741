/**
 * A layer that writes a directory its base image has: a directory copy's own destination keeps
 * the base's mode and owner, as `COPY` leaves an existing destination as it is (a base's 1777
 * /tmp stays 1777); any other directory the layer writes again takes the layer's, with a warning.
 */
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLayerEntries } from '../../src/image/layer-check.js';
import { digestHex } from '../../src/image/digest.js';
import type { ApplyResult } from '../../src/run/apply.js';
import { keptDestinations } from '../../src/run/base-dirs.js';
import type { ApplyEvent } from '../../src/run/events.js';
import type { PlannedLayer } from '../../src/plan/types.js';
import type { NormalizedSpec } from '../../src/spec/normalized.js';
import { onBase } from '../helpers/base-image.js';

/** A base with a 1777 /tmp, a root /etc and a /srv of uid 5. */
const BASE = `  - name: dirs\n    dirs: [{ path: /tmp, mode: "1777" }, { path: /etc }, { path: /srv, owner: "5:5" }]\n`;

const warnings = (events: ApplyEvent[]) => events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message);

/** The directories (path -> "mode uid:gid") of layer `i` of an image written to `dir`/out. */
async function layerDirs(dir: string, r: ApplyResult, i: number): Promise<Record<string, string>> {
  const { digest, mediaType } = r.layers[i]!.record;
  const found = await checkLayerEntries(createReadStream(join(dir, 'out', 'blobs', 'sha256', digestHex(digest))), mediaType, 'built layer');
  return Object.fromEntries(found.dirs.map((d) => [d.path, `${d.mode.toString(8).padStart(4, '0')} ${d.uid}:${d.gid}`]));
}

interface Build {
  result: ApplyResult;
  events: ApplyEvent[];
}

/** `layers` on BASE, with ./seed, ./conf and ./tree/tmp holding a file each. */
async function onDirsBase(layers: string) {
  const base = await onBase(BASE, layers);
  for (const sub of ['seed', 'conf', 'tree/tmp']) {
    mkdirSync(join(base.dir, sub), { recursive: true });
    writeFileSync(join(base.dir, sub, 'x'), 'x');
  }
  const build = async (): Promise<Build> => {
    const events: ApplyEvent[] = [];
    return { result: await base.build((e) => events.push(e)), events };
  };
  return { ...base, build };
}

/** Three builds: the first lists and builds, the second records the layer's walk, the third finds the layer unchanged. */
async function threeBuilds(build: () => Promise<Build>): Promise<Build[]> {
  const builds = [await build(), await build(), await build()];
  expect(builds[2]!.events.find((e) => e.type === 'plan'), 'the third build finds the layer unchanged').toMatchObject({ layersUnchanged: 1 });
  return builds;
}

describe('a directory copy onto a directory of the base', () => {
  it("keeps the base's mode and owner, with no warning, and is cached when listed or found unchanged", async () => {
    const { dir, build } = await onDirsBase(`  - name: seed\n    copy: [{ from: seed/, to: /tmp/ }, { from: conf/, to: /etc/, owner: "1000:1000" }, { from: seed/, to: /srv/ }]\n`);
    const builds = await threeBuilds(build);
    expect(await layerDirs(dir, builds[0]!.result, 0)).toEqual({ tmp: '1777 0:0', etc: '0755 0:0', srv: '0755 5:5' });
    expect(builds.map((b) => warnings(b.events))).toEqual([[], [], []]);
    expect(builds.map((b) => b.result.layers[0]!.cached)).toEqual([false, true, true]);
    expect(new Set(builds.map((b) => b.result.digest)).size).toBe(1);
  });

  it("follows the base: a base whose /tmp changes makes another layer, though the layer's walk is unchanged", async () => {
    const { dir, build, rebuildBase } = await onDirsBase(`  - name: seed\n    copy: [{ from: seed/, to: /tmp/ }]\n`);
    await threeBuilds(build);
    await rebuildBase(BASE.replace('mode: "1777"', 'mode: "0700"'));
    const after = await build();
    expect(after.events.find((e) => e.type === 'plan')).toMatchObject({ layersUnchanged: 1 });
    expect(after.result.layers[0]!.cached).toBe(false);
    expect(await layerDirs(dir, after.result, 0)).toEqual({ tmp: '0700 0:0' });
  });

  it("takes the copy's where the base has no such directory, a layer of its own made it, or the layer lists it under dirs:", async () => {
    const fresh = await onDirsBase(`  - name: seed\n    copy: [{ from: seed/, to: /app/, owner: "1000:1000", dirMode: "0750" }]\n`);
    expect(await layerDirs(fresh.dir, (await fresh.build()).result, 0)).toEqual({ app: '0750 1000:1000' });
    const own = await onDirsBase(`  - name: mine\n    dirs: [{ path: /tmp, mode: "0700" }]\n  - name: seed\n    copy: [{ from: seed/, to: /tmp/ }]\n`);
    expect(await layerDirs(own.dir, (await own.build()).result, 1)).toEqual({ tmp: '0700 0:0' });
    const listed = await onDirsBase(`  - name: seed\n    dirs: [{ path: /tmp, mode: "0700" }]\n    copy: [{ from: seed/, to: /tmp/ }]\n`);
    const b = await listed.build();
    expect(await layerDirs(listed.dir, b.result, 0)).toEqual({ tmp: '0700 0:0' });
    expect(warnings(b.events)).toEqual([]);
  });
});

describe('a layer over one that kept a directory of the base', () => {
  it('keeps what that layer kept, at its own destination and where it only implies the directory, listed or found unchanged', async () => {
    const { dir, build } = await onDirsBase(
      `  - name: seed\n    copy: [{ from: seed/, to: /tmp/ }, { from: conf/, to: /etc/, owner: "1000:1000" }]\n` +
        `  - name: more\n    copy: [{ from: seed/x, to: /tmp/y }, { from: conf/, to: /etc/, owner: "1000:1000" }]\n`,
    );
    const builds = [await build(), await build(), await build()];
    expect(builds[2]!.events.find((e) => e.type === 'plan'), 'the third build finds both layers unchanged').toMatchObject({ layersUnchanged: 2 });
    expect(await layerDirs(dir, builds[0]!.result, 0)).toEqual({ tmp: '1777 0:0', etc: '0755 0:0' });
    expect(await layerDirs(dir, builds[0]!.result, 1)).toEqual({ tmp: '1777 0:0', etc: '0755 0:0' });
    expect(builds.map((b) => warnings(b.events))).toEqual([[], [], []]);
    expect(builds.map((b) => b.result.layers.map((l) => l.cached))).toEqual([[false, false], [true, true], [true, true]]);
    expect(new Set(builds.map((b) => b.result.digest)).size).toBe(1);
  });

  it('keeps nothing of it once a layer between removed the directory', async () => {
    const { dir, build } = await onDirsBase(`  - name: seed\n    copy: [{ from: seed/, to: /tmp/ }]\n  - name: gone\n    remove: [/tmp]\n  - name: more\n    copy: [{ from: conf/, to: /tmp/ }]\n`);
    expect(await layerDirs(dir, (await build()).result, 2)).toEqual({ tmp: '0755 0:0' });
  });
});

describe('a directory inside a copied tree, on a directory of the base', () => {
  it("takes the copy's mode and owner, and is warned of, listed or found unchanged", async () => {
    const { dir, build } = await onDirsBase(`  - name: tree\n    copy: [{ from: tree/, to: / }]\n`);
    const builds = await threeBuilds(build);
    expect(await layerDirs(dir, builds[0]!.result, 0)).toEqual({ tmp: '0755 0:0' });
    const expected = [
      'layer "tree" changes the mode or owner of /tmp (1777 0:0 -> 0755 0:0), a directory of the base image oci:./base:1: a directory a copy brings takes the copy\'s dirMode and owner, except a copy\'s own destination, which keeps the base\'s where every platform\'s base has it alike. To keep the base\'s, copy what the directory holds to it (from: rootfs/etc/, to: /etc/); to change it on purpose, list it under the layer\'s dirs:',
    ];
    expect(builds.map((b) => warnings(b.events))).toEqual([expected, expected, expected]);
  });

  it("takes the copy's where another copy of the layer has it as its destination, whichever comes first", async () => {
    for (const copies of ['{ from: tree/, to: / }, { from: other/, to: /tmp/ }', '{ from: other/, to: /tmp/ }, { from: tree/, to: / }']) {
      const { dir, build } = await onDirsBase(`  - name: tree\n    copy: [${copies}]\n`);
      mkdirSync(join(dir, 'other'));
      writeFileSync(join(dir, 'other', 'z'), 'z');
      const b = await build();
      expect(await layerDirs(dir, b.result, 0), copies).toEqual({ tmp: '0755 0:0' });
      expect(warnings(b.events), copies).toHaveLength(1);
    }
  });

  it("is warned of over a layer of its own that kept the base's", async () => {
    const { dir, build } = await onDirsBase(`  - name: seed\n    copy: [{ from: seed/, to: /tmp/ }]\n  - name: tree\n    copy: [{ from: tree/, to: / }]\n`);
    const b = await build();
    expect(await layerDirs(dir, b.result, 1)).toEqual({ tmp: '0755 0:0' });
    expect(warnings(b.events)).toHaveLength(1);
    expect(warnings(b.events)[0]).toContain('layer "tree" changes the mode or owner of /tmp (1777 0:0 -> 0755 0:0)');
  });

  it('is not warned of where the layer lists it under dirs:, or a layer of its own wrote it below', async () => {
    for (const layers of [
      `  - name: tree\n    dirs: [{ path: /tmp, mode: "0755" }]\n    copy: [{ from: tree/, to: / }]\n`,
      `  - name: mine\n    dirs: [{ path: /tmp, mode: "0700" }]\n  - name: tree\n    copy: [{ from: tree/, to: / }]\n`,
    ]) {
      const { build } = await onDirsBase(layers);
      expect(warnings((await build()).events), layers).toEqual([]);
    }
  });
});

describe('keptDestinations', () => {
  const spec = { layers: [{ name: 'seed', removes: [], dirs: [] }] } as unknown as NormalizedSpec;
  const layer = { name: 'seed', files: 1, destinations: ['tmp'], entries: [{ type: 'dir', path: 'tmp', mode: 0o755, uid: 0, gid: 0 }] } as unknown as PlannedLayer;
  const dirs = (mode: number) => new Map([['tmp', { mode, uid: 0, gid: 0 }]]);

  it("keeps a destination every platform's base has alike, and none where the bases disagree", () => {
    expect(keptDestinations(spec, [layer], [dirs(0o1777), dirs(0o1777)])).toEqual([new Map([['tmp', { mode: 0o1777, uid: 0, gid: 0 }]])]);
    expect(keptDestinations(spec, [layer], [dirs(0o1777), dirs(0o700)])).toEqual([new Map()]);
    expect(keptDestinations(spec, [layer], [dirs(0o1777), new Map()])).toEqual([new Map()]);
    // Already what the base has: nothing to keep, so the layer's key is the plan's.
    expect(keptDestinations(spec, [layer], [dirs(0o755)])).toEqual([new Map()]);
  });
});
