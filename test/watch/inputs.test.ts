import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { neverInputs } from '../../src/plan/host-exclusions.js';
import { describe, expect, it, vi } from 'vitest';
import { Coalescer } from '../../src/watch/coalesce.js';
import { ignoredByAll, layerInputs, layersAffectedBy } from '../../src/watch/inputs.js';
import { load } from '../spec/helpers.js';

const spec = `apiVersion: imgbuild/v1
name: t/app
layers:
  - name: deps
    copy: [{ from: node_modules/, to: /app/node_modules/, exclude: ["**/*.md"] }]
  - name: app
    copy:
      - { from: "src/**/*.js", to: /app/src/ }
      - { from: package.json, to: /app/package.json }
`;

// Under the run's own temp folder (test/helpers/temp-root.ts): two runs on one machine never share it.
const ctx = mkdtempSync(join(tmpdir(), 'imgbuild-watch-ctx-'));
// The files the cases name exist: a path under a glob's root that is a directory, or gone, counts.
for (const dir of ['src/lib', 'src/deep', 'src/renamed', 'node_modules/a']) mkdirSync(`${ctx}/${dir}`, { recursive: true });
for (const file of ['src/lib/x.js', 'src/lib/x.ts', 'src/deep/a.css', 'node_modules/a/README.md', 'package-lock.json']) writeFileSync(`${ctx}/${file}`, '');
rmSync(`${ctx}/src/gone`, { recursive: true, force: true });

describe('layer inputs', () => {
  it('maps a changed path to exactly the layers that read it', async () => {
    const s = await load(spec, {}, ctx);
    const inputs = layerInputs(s);
    const at = (p: string) => [...layersAffectedBy(`${ctx}/${p}`, inputs)];
    expect(at('node_modules/a/index.js')).toEqual([0]);
    expect(at('node_modules/a/README.md')).toEqual([]);
    expect(at('src/lib/x.js')).toEqual([1]);
    expect(at('src/lib/x.ts')).toEqual([]);
    expect(at('package.json')).toEqual([1]);
    expect(at('package-lock.json')).toEqual([]);
    expect(at('node_modules')).toEqual([0]);
  });

  it('maps the files our own output goes to, when they are in the context, to no layer; one outside it is not a plan input at all', async () => {
    const s = await load(spec, {}, ctx);
    writeFileSync(`${ctx}/node_modules/watch.log`, '');
    const inputs = layerInputs(s, neverInputs('/tmp/imgbuild-watch-cache', [`${ctx}/node_modules/watch.log`, '/tmp/elsewhere.log'], realpathSync(ctx)));
    expect([...layersAffectedBy(`${ctx}/node_modules/watch.log`, inputs)]).toEqual([]);
    expect([...layersAffectedBy(`${ctx}/node_modules/a/index.js`, inputs)]).toEqual([0]);
    expect(neverInputs('/tmp/imgbuild-watch-cache', ['/tmp/elsewhere.log'], realpathSync(ctx))).toEqual(['/tmp/imgbuild-watch-cache']);
  });

  it('counts a directory under a glob\'s root, or a path gone from there, whatever its name: it may hold or have held matches', async () => {
    const s = await load(spec, {}, ctx);
    const inputs = layerInputs(s);
    const at = (p: string) => [...layersAffectedBy(`${ctx}/${p}`, inputs)];
    expect(at('src/renamed')).toEqual([1]);
    expect(at('src/gone')).toEqual([1]);
    expect(at('src/lib/x.ts')).toEqual([]);
    expect(ignoredByAll(`${ctx}/src/renamed`, false, inputs)).toBe(false);
    expect(ignoredByAll(`${ctx}/src/gone`, false, inputs)).toBe(false);
  });

  it('tells the watcher to skip what no layer reads, keeping directories that may hold inputs', async () => {
    const s = await load(spec, {}, ctx);
    const inputs = layerInputs(s);
    expect(ignoredByAll(`${ctx}/node_modules/a/README.md`, false, inputs)).toBe(true);
    expect(ignoredByAll(`${ctx}/node_modules/a`, true, inputs)).toBe(false);
    expect(ignoredByAll(`${ctx}/src/deep`, true, inputs)).toBe(false);
    expect(ignoredByAll(`${ctx}/src/deep/a.css`, false, inputs)).toBe(true);
  });
});

describe('coalescer', () => {
  it('turns a burst into one batch once quiet, and caps the wait', () => {
    vi.useFakeTimers();
    const batches: string[][] = [];
    const c = new Coalescer({ quietMs: 50, maxWaitMs: 200 }, (b) => batches.push([...b]));
    for (let i = 0; i < 1000; i++) c.add(`f${i % 10}`);
    vi.advanceTimersByTime(49);
    expect(batches).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(batches).toEqual([['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9']]);
    for (let t = 0; t < 10; t++) {
      c.add(`g${t}`);
      vi.advanceTimersByTime(30);
    }
    expect(batches.length).toBe(2);
    expect(batches[1]!.length).toBe(7);
    vi.useRealTimers();
  });
});
