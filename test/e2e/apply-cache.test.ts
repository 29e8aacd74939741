/**
 * The layer cache through the CLI's `--json` events: the first `apply` of a context reads each
 * file once (the layer writer hashes it; the planner reads nothing), a second with nothing
 * changed reads no file contents (the `plan` event's filesHashed is 0) and builds no layer (every
 * `layer-done` is cached), and a third finds every layer unchanged without listing it; files with
 * new timestamps but the same bytes (a fresh checkout) are hashed by the planner and every layer
 * still comes from the cache; changing one byte of one file rebuilds exactly the layer holding
 * it, while the other layers keep their digests.
 */
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyOk, eventsOf, parseEvents, runCli, TempDirs, writeSpec, writeTree } from '../helpers/imgbuild.js';
import { skopeoInspect } from '../helpers/oci-tools.js';

const temps = new TempDirs();
afterAll(() => temps.cleanup());

const layerDigests = (events: Parameters<typeof eventsOf>[0]) =>
  Object.fromEntries(eventsOf(events, 'layer-done').map((e) => [e.layer, { digest: e.digest, cached: e.cached }]));

describe('layer cache', () => {
  it('a no-change rebuild reads nothing and builds nothing; one changed byte rebuilds one layer', async () => {
    const dir = await temps.make();
    const files: Record<string, string> = {};
    for (const group of ['deps', 'lib', 'app']) for (let i = 0; i < 20; i++) files[`${group}/f${i}.txt`] = `${group} ${i}\n`.repeat(50 + i);
    await writeTree(join(dir, 'ctx'), files);
    const sizeOfFiles = Object.values(files).reduce((n, text) => n + Buffer.byteLength(text), 0);
    const spec = await writeSpec(dir, {
      name: 'e2e/cache',
      context: 'ctx',
      layers: ['deps', 'lib', 'app'].map((g) => ({ name: g, copy: [{ from: `${g}/`, to: `/${g}/` }] })),
      output: [{ oci: './out/layout' }],
    });
    const cache = join(dir, 'cache');

    const first = await applyOk(spec, cache);
    expect(eventsOf(first.events, 'plan')[0]).toMatchObject({ layers: 3, files: 60, filesHashed: 0 });
    // A first build lists the context with readdir alone: its files' sizes are read as they are written.
    expect(eventsOf(first.events, 'plan')[0]).not.toHaveProperty('bytes');
    expect(eventsOf(first.events, 'layer-start').map((e) => e.bytes)).toEqual([undefined, undefined, undefined]);
    expect(eventsOf(first.events, 'done')[0]).toMatchObject({ filesHashed: 60, layersBuilt: 3 });
    expect(eventsOf(first.events, 'layer-done').every((e) => !e.cached)).toBe(true);

    const second = await applyOk(spec, cache);
    expect(eventsOf(second.events, 'plan')[0]).toMatchObject({ files: 60, bytes: sizeOfFiles, filesHashed: 0, bytesHashed: 0 });
    const secondLayers = eventsOf(second.events, 'layer-done');
    expect(secondLayers).toHaveLength(3);
    expect(secondLayers.every((e) => e.cached)).toBe(true);
    expect(eventsOf(second.events, 'layer-start')).toHaveLength(0);
    expect(second.digest).toBe(first.digest);
    const allCached = Object.fromEntries(Object.entries(layerDigests(first.events)).map(([k, v]) => [k, { ...v, cached: true }]));
    expect(layerDigests(second.events)).toEqual(allCached);
    // The second build listed every layer and recorded its walks; the next finds them unchanged.
    expect(eventsOf(second.events, 'plan')[0]).toMatchObject({ layersUnchanged: 0 });
    const noop = await applyOk(spec, cache);
    expect(eventsOf(noop.events, 'plan')[0]).toMatchObject({ layers: 3, layersUnchanged: 3, files: 60, filesHashed: 0 });
    expect(layerDigests(noop.events)).toEqual(allCached);
    expect(noop.digest).toBe(first.digest);

    const later = new Date(Date.now() + 60_000);
    for (const f of Object.keys(files)) await utimes(join(dir, 'ctx', f), later, later);
    const touched = await applyOk(spec, cache);
    expect(eventsOf(touched.events, 'plan')[0]).toMatchObject({ files: 60, filesHashed: 60 });
    expect(layerDigests(touched.events)).toEqual(allCached);
    expect(touched.digest).toBe(first.digest);

    // One byte of lib/f7.txt: same size, so only its content can tell.
    const target = join(dir, 'ctx', 'lib', 'f7.txt');
    const body = await readFile(target);
    body[3] = body[3]! ^ 0x20;
    await writeFile(target, body);
    const third = await applyOk(spec, cache);
    const before = layerDigests(first.events);
    const after = layerDigests(third.events);
    expect(after.deps).toEqual({ digest: before.deps!.digest, cached: true });
    expect(after.app).toEqual({ digest: before.app!.digest, cached: true });
    expect(after.lib!.cached).toBe(false);
    expect(after.lib!.digest).not.toBe(before.lib!.digest);
    expect(eventsOf(third.events, 'plan')[0]!.filesHashed).toBe(1);
    expect(third.digest).not.toBe(first.digest);
    // The layout's tag now names the new image.
    expect((await skopeoInspect(`oci:${join(dir, 'out', 'layout')}:latest`)).Digest).toBe(third.digest);
  });

  it('a build that fails after its plan still keeps the digests the plan read', async () => {
    const dir = await temps.make();
    await writeTree(join(dir, 'ctx'), { 'a.txt': 'one\n', 'b.txt': 'two\n' });
    const spec = await writeSpec(dir, { name: 'e2e/failed', context: 'ctx', layers: [{ name: 'all', copy: [{ from: 'a.txt', to: '/a.txt' }, { from: 'b.txt', to: '/b.txt' }] }], output: [{ oci: './out/layout' }] });
    const cache = join(dir, 'cache');
    await applyOk(spec, cache);
    await writeFile(join(dir, 'ctx', 'a.txt'), 'changed\n');
    // The layout's index cannot be written while a directory stands in its place.
    const index = join(dir, 'out', 'layout', 'index.json');
    await rm(index);
    await mkdir(index);
    const failed = await runCli(['apply', spec, '--json', '--cache-dir', cache]);
    expect(failed.exitCode).not.toBe(0);
    expect(eventsOf(parseEvents(failed.stdout), 'plan')[0]).toMatchObject({ filesHashed: 1 });
    await rm(index, { recursive: true });
    const next = await applyOk(spec, cache);
    expect(eventsOf(next.events, 'plan')[0]).toMatchObject({ filesHashed: 0 });
    expect(eventsOf(next.events, 'layer-done')[0]).toMatchObject({ cached: true });
  });
});
