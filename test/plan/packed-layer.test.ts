import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpecError } from '../../src/errors.js';
import { buildLayer } from '../../src/layer/build-layer.js';
import { compilePlan } from '../../src/plan/compile.js';
import { entriesOf, FilePacker, heldEntries } from '../../src/plan/packed-layer.js';
import { FROM_FILE, isPacked, UNHASHED, type LayerPlan, type PackedLayer } from '../../src/plan/types.js';
import { loadSpec } from '../../src/spec/load.js';
import { ContentStore } from '../../src/store/content-store.js';
import { UncachedDigester } from '../../src/store/file-digests.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imgbuild-packed-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(rel: string, content = rel): void {
  mkdirSync(join(dir, 'ctx', rel, '..'), { recursive: true });
  writeFileSync(join(dir, 'ctx', rel), content);
}

async function specOf(...layers: string[]) {
  writeFileSync(join(dir, 'image.yaml'), ['apiVersion: imgbuild/v1', 'name: t/packed', 'context: ctx', 'layers:', ...layers, ''].join('\n'));
  return loadSpec(join(dir, 'image.yaml'), { env: {} });
}

describe('packed layers', () => {
  it("hold a first build's plain directory copy without an entry per file, and give the same entries and blob as a listed one", async () => {
    for (const f of ['z.js', 'a.js', 'lib/b.js', 'lib/c.js', 'lib/deep/d.js', 'lib.js', 'lib-x/e.js', 'empty']) write(`deps/${f}`, f === 'empty' ? '' : `// ${f}\n`);
    symlinkSync('lib/b.js', join(dir, 'ctx/deps/link.js'));
    write('conf/app.conf');
    const spec = await specOf(
      '  - name: deps',
      '    copy: [{ from: deps/, to: /srv/app/node_modules/, owner: "1000:1000" }]',
      '  - name: conf',
      '    copy: [{ from: conf/, to: /srv/app/node_modules/lib/ }]',
    );
    const packed = await compilePlan(spec, new UncachedDigester(), { hashLater: true, pack: true });
    const listed = await compilePlan(spec, new UncachedDigester(), { hashLater: true });
    const [deps, conf] = packed.layers as unknown as [PackedLayer, PackedLayer];
    expect(isPacked(deps) && isPacked(conf)).toBe(true);
    expect(listed.layers.some(isPacked)).toBe(false);
    // Runs of a directory's files: far fewer items than entries.
    expect(deps.packed.filter((i) => i.type === 'files').length).toBeLessThan(deps.files);
    expect(heldEntries(deps).some((e) => e.type === 'file')).toBe(false);
    const store = await ContentStore.open(join(dir, 'cache'));
    for (const [i, layer] of packed.layers.entries()) {
      const full = listed.layers[i] as LayerPlan;
      expect([...entriesOf(layer as PackedLayer)]).toEqual(full.entries);
      expect({ files: layer.files, destinations: (layer as PackedLayer).destinations, bytes: layer.bytes, cacheKey: layer.cacheKey }).toEqual({ files: full.files, destinations: full.destinations, bytes: undefined, cacheKey: undefined });
      const opts = { store, epoch: spec.epoch, compression: spec.compression };
      expect(await buildLayer(layer as PackedLayer, opts)).toEqual(await buildLayer(full, opts));
    }
    // The implied parent over the packed layer's directory took its owner, as over a listed one.
    expect(heldEntries(conf).find((e) => e.path === 'srv/app/node_modules/lib')).toMatchObject({ type: 'dir', uid: 1000, gid: 1000 });
  });

  it('are made only where the layer writer reads every file: not when the plan hashes, nor for a merged layer', async () => {
    write('deps/a.js');
    write('more/b.js');
    const spec = await specOf('  - name: one', '    copy: [{ from: deps/, to: /a/ }]', '  - name: two', '    copy: [{ from: deps/, to: /b/ }, { from: more/, to: /b/ }]');
    const hashed = await compilePlan(spec, new UncachedDigester(), { pack: true });
    expect(hashed.layers.some(isPacked)).toBe(false);
    const later = await compilePlan(spec, new UncachedDigester(), { hashLater: true, pack: true });
    expect(later.layers.map((l) => isPacked(l))).toEqual([true, false]);
  });

  it('refuse a file copied onto a lower layer\'s directory, as a listed layer does', async () => {
    write('dirs/etc/app/x.conf');
    write('files/etc/app');
    const spec = await specOf('  - name: dirs', '    copy: [{ from: dirs/, to: / }]', '  - name: files', '    copy: [{ from: files/, to: / }]');
    const refusal = (opts: { pack?: boolean }) => compilePlan(spec, new UncachedDigester(), { hashLater: true, ...opts }).then(() => undefined, (e: unknown) => e);
    const packed = await refusal({ pack: true });
    expect(packed).toBeInstanceOf(SpecError);
    const [problem] = (packed as SpecError).diagnostics;
    expect(problem?.message).toContain('copies a file onto /etc/app');
    expect((packed as SpecError).diagnostics).toEqual(((await refusal({})) as SpecError).diagnostics);
  });
});

describe('FilePacker', () => {
  it('runs the files of one directory with one mode and owner; anything else starts a new run', () => {
    const p = new FilePacker();
    expect(p.file('a/x', '/c/a/x', FROM_FILE, 0, 0)).toBe(true);
    expect(p.file('a/y', '/c/a/y', FROM_FILE, 0, 0)).toBe(true);
    expect(p.file('a/z', '/c/a/z', 0o600, 0, 0)).toBe(true); // another mode
    expect(p.file('a/b/w', '/c/a/b/w', 0o600, 0, 0)).toBe(true); // another directory
    expect(p.file('a/b/v', '/c/a/b/v', 0o600, 1, 0)).toBe(true); // another owner
    p.entry({ type: 'dir', path: 'a/c', mode: 0o755, uid: 0, gid: 0 });
    expect(p.file('a/c/u', '/c/a/c/u', 0o600, 1, 0)).toBe(true);
    // Named otherwise on the host: not packed, nothing held.
    expect(p.file('a/c/t', '/c/a/c/other', 0o600, 1, 0)).toBe(false);
    const items = p.done();
    expect(items.map((i) => (i.type === 'files' ? `${i.dir}[${i.names}]` : i.path))).toEqual(['a/[x/y]', 'a/[z]', 'a/b/[w]', 'a/b/[v]', 'a/c', 'a/c/[u]']);
    expect({ files: p.files, packed: p.packedFiles }).toEqual({ files: 6, packed: 6 });
    const layer: PackedLayer = { name: 'l', files: 6, packed: items, destinations: [] };
    expect([...entriesOf(layer)].filter((e) => e.type === 'file').map((e) => [e.path, e.mode, e.uid, e.type === 'file' && e.source])).toEqual([
      ['a/x', FROM_FILE, 0, { kind: 'path', path: '/c/a/x', digest: UNHASHED }],
      ['a/y', FROM_FILE, 0, { kind: 'path', path: '/c/a/y', digest: UNHASHED }],
      ['a/z', 0o600, 0, { kind: 'path', path: '/c/a/z', digest: UNHASHED }],
      ['a/b/w', 0o600, 0, { kind: 'path', path: '/c/a/b/w', digest: UNHASHED }],
      ['a/b/v', 0o600, 1, { kind: 'path', path: '/c/a/b/v', digest: UNHASHED }],
      ['a/c/u', 0o600, 1, { kind: 'path', path: '/c/a/c/u', digest: UNHASHED }],
    ]);
  });
});
