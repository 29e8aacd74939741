/**
 * Watch mode for real: a watcher on a copy of the bundled example, files changed on disk, and
 * the OCI layout checked after each rebuild (umoci unpacks it and shows the new content).
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { umociUnpack } from '../helpers/oci-tools.js';
import { randomImage } from '../helpers/random-image.js';
import { writeOciLayout } from '../../src/output/oci-layout.js';
import { writeDockerArchive } from '../../src/output/docker-archive.js';
import { missingTools } from '../helpers/tools.js';
import { planSpec } from '../../src/plan/plan-spec.js';
import { watchApply, type WatchHandle } from '../../src/watch/watch.js';
import type { WatchLine } from '../../src/watch/report.js';
import type { ApplyEvent } from '../../src/run/events.js';
import type { Image } from '../../src/image/types.js';

const repo = new URL('../..', import.meta.url).pathname;

function exampleCopy(): { dir: string; spec: string } {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-watch-'));
  cpSync(join(repo, 'example'), join(dir, 'example'), { recursive: true });
  const text = readFileSync(join(repo, 'image.example.yaml'), 'utf8').replace(/output:[\s\S]*$/, 'output:\n  - oci: ./out/hello\n');
  writeFileSync(join(dir, 'image.yaml'), text);
  return { dir, spec: join(dir, 'image.yaml') };
}

/** Starts watching; `next()` resolves with the following rebuild line. */
async function startWatch(spec: string, cacheDir: string) {
  const lines: WatchLine[] = [];
  const waiters: ((l: WatchLine) => void)[] = [];
  const replaced: number[] = [];
  const handle = await watchApply(spec, {
    cacheDir,
    env: {},
    onRebuild: (l) => {
      lines.push(l);
      waiters.shift()?.(l);
    },
    onPlanReplaced: (entries) => replaced.push(entries),
  });
  const next = () => new Promise<WatchLine>((resolve) => waiters.push(resolve));
  return { handle, lines, next, replaced };
}

const layerDigests = async (layout: string, digest: string) => {
  const manifest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', digest.slice(7)), 'utf8'));
  return manifest.layers.map((l: { digest: string }) => l.digest) as string[];
};

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An app spec on the OCI layout ./base (a random image), with the image that will replace it ready
 * in ./next: `bases`, the two images.
 */
async function appOnRebuiltBase(seed: string): Promise<{ dir: string; bases: Image[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-watch-base-'));
  const bases = [await randomImage({ seed: `${seed}1`, layers: 1 }), await randomImage({ seed: `${seed}2`, layers: 1 })];
  await writeOciLayout(join(dir, 'base'), { image: bases[0]! }, ['latest']);
  await writeOciLayout(join(dir, 'next'), { image: bases[1]! }, ['latest']);
  mkdirSync(join(dir, 'app'));
  writeFileSync(join(dir, 'app/f'), 'app1');
  writeFileSync(join(dir, 'image.yaml'), 'apiVersion: imgbuild/v1\nname: t/app\nfrom: oci:./base\nlayers:\n  - name: app\n    copy: [{ from: app/, to: /app/ }]\noutput:\n  - oci: ./out/img\n');
  return { dir, bases };
}

/** The base an image of a rebuild line was made on (its manifest's annotation), in `dir`'s ./out/img. */
const baseDigestOf = (dir: string, line: WatchLine): string =>
  JSON.parse(readFileSync(join(dir, 'out/img/blobs/sha256', (line as { digest: string }).digest.slice(7)), 'utf8')).annotations['org.opencontainers.image.base.digest'];

/** Edits the app's file in `dir` and expects the rebuild it starts to make an image on `base`. */
async function expectRebuiltOn(w: { next(): Promise<WatchLine> }, dir: string, base: Image): Promise<void> {
  const rebuilt = w.next();
  writeFileSync(join(dir, 'app/f'), 'app2');
  const line = await rebuilt;
  expect(line.kind).toBe('rebuilt');
  expect(baseDigestOf(dir, line)).toBe(await base.digest());
}

/** A context holding `files` (path: text) and an image.yaml of `layers` writing ./out/img. */
function contextWith(files: Record<string, string>, layers: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-watch-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/watch\n${layers}output:\n  - oci: ./out/img\n`);
  return dir;
}

describe.skipIf(missingTools('umoci').length > 0)('apply --watch', () => {
  let handle: WatchHandle | undefined;
  afterEach(async () => handle?.stop());

  /** Watch `spec` (stopped after the test), with the cache beside it. */
  const watching = async (spec: string) => {
    const w = await startWatch(spec, join(dirname(spec), '.cache'));
    handle = w.handle;
    return w;
  };

  it('rebuilds only the layer whose file changed, and the output shows the new content', async () => {
    const { dir, spec } = exampleCopy();
    const w = await watching(spec);
    const before = await layerDigests(join(dir, 'out/hello'), w.handle.first.digest);
    const rebuilt = w.next();
    writeFileSync(join(dir, 'example/src/greeting.js'), 'export const greeting = () => "changed";\n');
    const line = await rebuilt;
    expect(line.kind).toBe('rebuilt');
    if (line.kind !== 'rebuilt') return;
    expect(line.rebuilt).toEqual(['app']);
    const after = await layerDigests(join(dir, 'out/hello'), line.digest);
    expect(after[0]).toBe(before[0]);
    expect(after[1]).not.toBe(before[1]);
    const rootfs = await umociUnpack(join(dir, 'out/hello'), 'latest', join(dir, 'bundle'));
    expect(readFileSync(join(rootfs, 'app/src/greeting.js'), 'utf8')).toContain('changed');
    // The rebuild replaced the app layer's plan, and said how large it was before building.
    const { plan } = await planSpec(join(dir, 'image.yaml'), { cacheDir: join(dir, '.cache'), env: {} });
    expect(w.replaced.at(-1)).toBe(plan.layers[1]!.entries.length);
  });

  it('sees files added, removed and changed anywhere below a watched directory, new directories too', async () => {
    const { dir, spec } = exampleCopy();
    const w = await watching(spec);
    const step = async (change: () => void) => {
      const rebuilt = w.next();
      change();
      const line = await rebuilt;
      expect(line.kind).toBe('rebuilt');
      await settle(150); // let the watch of a new directory be set up before the next step
    };
    await step(() => writeFileSync(join(dir, 'example/public/extra.css'), 'p { margin: 0 }\n'));
    await step(() => rmSync(join(dir, 'example/public/style.css')));
    await step(() => {
      mkdirSync(join(dir, 'example/src/util/deep'), { recursive: true });
      writeFileSync(join(dir, 'example/src/util/deep/pad.js'), 'export const pad = 1;\n');
    });
    await step(() => writeFileSync(join(dir, 'example/src/util/deep/pad.js'), 'export const pad = 2;\n'));
    // A new directory's own events (chokidar adding it) may bring one more rebuild: let it land.
    for (let n = -1; n !== w.lines.length; ) {
      n = w.lines.length;
      await settle(400);
    }
    const rootfs = await umociUnpack(join(dir, 'out/hello'), 'latest', join(dir, 'bundle'));
    expect(readFileSync(join(rootfs, 'app/public/extra.css'), 'utf8')).toContain('margin');
    expect(existsSync(join(rootfs, 'app/public/style.css'))).toBe(false);
    expect(readFileSync(join(rootfs, 'app/src/util/deep/pad.js'), 'utf8')).toContain('pad = 2');
  });

  it('turns 2,000 files written at once into one or two rebuilds', async () => {
    const { dir, spec } = exampleCopy();
    const w = await watching(spec);
    for (let i = 0; i < 2000; i++) writeFileSync(join(dir, `example/public/page${i}.html`), `<p>${i}</p>`);
    await w.next();
    await settle(2500);
    expect(w.lines.length).toBeGreaterThanOrEqual(1);
    expect(w.lines.length).toBeLessThanOrEqual(2);
    const last = w.lines.at(-1)!;
    expect(last.kind).toBe('rebuilt');
    const rootfs = await umociUnpack(join(dir, 'out/hello'), 'latest', join(dir, 'bundle'));
    expect(readFileSync(join(rootfs, 'app/public/page1999.html'), 'utf8')).toBe('<p>1999</p>');
  });

  it('reports a broken spec with its position, keeps the last image, and rebuilds once fixed', async () => {
    const { dir, spec } = exampleCopy();
    const w = await watching(spec);
    const good = readFileSync(spec, 'utf8');
    const failed = w.next();
    writeFileSync(spec, good.replace('entrypoint:', 'entrypiont:'));
    const err = await failed;
    expect(err.kind).toBe('error');
    expect(String((err as { error: { diagnostics: { message: string }[] } }).error.diagnostics[0]!.message)).toMatch(/unknown key "entrypiont"/);
    const index = JSON.parse(readFileSync(join(dir, 'out/hello/index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(w.handle.first.digest);
    const fixed = w.next();
    writeFileSync(spec, good.replace('NODE_ENV: production', 'NODE_ENV: staging'));
    const line = await fixed;
    expect(line.kind).toBe('rebuilt');
    expect((line as { digest: string }).digest).not.toBe(w.handle.first.digest);
  });

  it('never rebuilds because of its own outputs inside the context', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgbuild-watch-self-'));
    writeFileSync(join(dir, 'a.txt'), 'a');
    writeFileSync(join(dir, 'image.yaml'), 'apiVersion: imgbuild/v1\nname: t/self\nlayers:\n  - name: all\n    copy: [{ from: ".", to: /app/ }]\noutput:\n  - oci: ./out/self\n  - docker-archive: ./self.tar\n');
    const w = await watching(join(dir, 'image.yaml'));
    const rebuilt = w.next();
    writeFileSync(join(dir, 'a.txt'), 'b');
    expect((await rebuilt).kind).toBe('rebuilt');
    await settle(1500);
    expect(w.lines).toHaveLength(1);
  });

  it('says nothing more once it has watched again a directory removed and made again, when that finds nothing new', async () => {
    const dir = contextWith({ 'lib/a.txt': 'a', 'src/s.txt': 's' }, 'layers:\n  - name: all\n    copy: [{ from: ".", to: /app/ }]\n');
    const w = await watching(join(dir, 'image.yaml'));
    const rebuilt = w.next();
    rmSync(join(dir, 'lib'), { recursive: true });
    mkdirSync(join(dir, 'lib'));
    writeFileSync(join(dir, 'lib/b.txt'), 'b');
    expect(await rebuilt).toMatchObject({ kind: 'rebuilt', rebuilt: ['all'] });
    // The watcher reopens what watched lib/ once the tree has been quiet for 500 ms, and reports
    // what it watches again: a check that found the same image (and named "out", the output).
    await settle(1500);
    expect(w.lines).toHaveLength(1);
  });

  it('takes a spec saved with a byte order mark as the one it built: its start-up check re-plans no spec and opens no second watcher', async () => {
    const dir = contextWith({ 'src/a.txt': 'a' }, 'layers:\n  - name: src\n    copy: [{ from: src/, to: /app/ }]\n');
    const spec = join(dir, 'image.yaml');
    writeFileSync(spec, `\uFEFF${readFileSync(spec, 'utf8')}`);
    const w = await watching(spec);
    await settle(1500);
    // One check of the inputs; a spec taken as changed was planned whole, watched anew, and checked again.
    expect(w.replaced).toHaveLength(1);
    expect(w.lines).toEqual([]);
  });

  it('reports no build after it is watching until something changes: its start-up check that finds nothing is silent', async () => {
    const { dir, spec } = exampleCopy();
    const events: string[] = [];
    const lines: WatchLine[] = [];
    handle = await watchApply(spec, { cacheDir: join(dir, '.cache'), env: {}, report: (e) => events.push(e.type), onRebuild: (l) => lines.push(l) });
    const atReady = events.length;
    expect(events.at(-1)).toBe('done');
    await settle(1500);
    expect(events.slice(atReady)).toEqual([]);
    expect(lines).toEqual([]);
  });

  it('says whether a rebuild is running, which a stop waits for', async () => {
    const dir = contextWith({ 'app/f': 'one' }, 'layers:\n  - name: app\n    copy: [{ from: app/, to: /app/ }]\n');
    const busy: boolean[] = [];
    const h = await watchApply(join(dir, 'image.yaml'), { cacheDir: join(dir, '.cache'), env: {}, onRebuild: () => undefined, onPlanReplaced: () => busy.push(h.building()) });
    handle = h;
    expect(h.building()).toBe(false);
    writeFileSync(join(dir, 'app/f'), 'two');
    for (let i = 0; i < 100 && busy.length === 0; i++) await settle(50);
    expect(busy).toEqual([true]);
    await settle(200);
    expect(h.building()).toBe(false);
  });

  it('says in its plan and done events what the rebuild hashed, not all hashed since it started', async () => {
    const dir = contextWith({ 'a/1.txt': '1', 'a/2.txt': '2', 'a/3.txt': '3' }, 'layers:\n  - name: a\n    copy: [{ from: a/, to: /a/ }]\n');
    // Files changed in the instant before they are hashed are hashed again by the next plan (a
    // later write in the same clock tick would not show in their stats): these were not.
    await settle(200);
    const events: ApplyEvent[] = [];
    const lines: WatchLine[] = [];
    handle = await watchApply(join(dir, 'image.yaml'), { cacheDir: join(dir, '.cache'), env: {}, report: (e) => events.push(e), onRebuild: (l) => lines.push(l) });
    const atReady = events.length;
    writeFileSync(join(dir, 'a/2.txt'), 'two');
    for (let i = 0; i < 100 && lines.length === 0; i++) await settle(100);
    expect(lines[0]).toMatchObject({ kind: 'rebuilt' });
    const rebuild = events.slice(atReady);
    expect(rebuild.find((e) => e.type === 'plan')).toMatchObject({ filesHashed: 1, bytesHashed: 3 });
    // The layer writer reads every file of the layer again, and hashes none it has a digest of.
    expect(rebuild.find((e) => e.type === 'done')).toMatchObject({ filesHashed: 1, bytesHashed: 3 });
  });

  it('names a layer that changed back to content the cache holds, though nothing was built', async () => {
    const { dir, spec } = exampleCopy();
    const w = await watching(spec);
    const file = join(dir, 'example/src/greeting.js');
    const original = readFileSync(file, 'utf8');
    let next = w.next();
    writeFileSync(file, 'export const greeting = () => "other";\n');
    expect(await next).toMatchObject({ kind: 'rebuilt', rebuilt: ['app'] });
    await settle(300);
    next = w.next();
    writeFileSync(file, original);
    const back = await next;
    expect(back).toMatchObject({ kind: 'rebuilt', rebuilt: ['app'], digest: w.handle.first.digest });
    expect((back as { text: string }).text).not.toContain('no layer changed');
  });

  it('names a layer taken out of the spec as removed, not "no layer changed"', async () => {
    const layers = 'layers:\n  - name: low\n    copy: [{ from: low/, to: /low/ }]\n  - name: high\n    copy: [{ from: high/, to: /high/ }]\n';
    const dir = contextWith({ 'low/a.txt': 'a', 'high/b.txt': 'b' }, layers);
    const spec = join(dir, 'image.yaml');
    const w = await watching(spec);
    const next = w.next();
    writeFileSync(spec, readFileSync(spec, 'utf8').replace(/  - name: high\n.*\n/, ''));
    const line = await next;
    expect(line).toMatchObject({ kind: 'rebuilt', rebuilt: [], removed: ['high'] });
    expect((line as { text: string }).text).toContain('-> removed high ->');
  });

  it('watches what an edited spec reads from then on: a directory no longer excluded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgbuild-watch-respec-'));
    mkdirSync(join(dir, 'src/gen'), { recursive: true });
    writeFileSync(join(dir, 'src/a.js'), 'a');
    writeFileSync(join(dir, 'src/gen/x.js'), 'x1');
    const spec = (exclude: string) => writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/respec\nlayers:\n  - name: src\n    copy: [{ from: src/, to: /src/, exclude: [${exclude}] }]\noutput:\n  - oci: ./out/img\n`);
    spec('"gen"');
    const w = await watching(join(dir, 'image.yaml'));
    let next = w.next();
    spec('');
    expect(await next).toMatchObject({ kind: 'rebuilt' });
    // Let the new watcher's start-up check land before editing.
    for (let n = -1; n !== w.lines.length; ) {
      n = w.lines.length;
      await settle(400);
    }
    next = w.next();
    writeFileSync(join(dir, 'src/gen/x.js'), 'x2');
    expect(await next).toMatchObject({ kind: 'rebuilt', rebuilt: ['src'] });
    const rootfs = await umociUnpack(join(dir, 'out/img'), 'latest', join(dir, 'bundle'));
    expect(readFileSync(join(rootfs, 'src/gen/x.js'), 'utf8')).toBe('x2');
  });

  it('resolves the base again after a failed build of an edited spec, rather than keep the old spec\'s base', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgbuild-watch-base-'));
    const bases = [await randomImage({ seed: 'wb1', layers: 1 }), await randomImage({ seed: 'wb2', layers: 1 })];
    await writeOciLayout(join(dir, 'base1'), { image: bases[0]! }, ['latest']);
    mkdirSync(join(dir, 'app'));
    writeFileSync(join(dir, 'app/f'), 'app1');
    const spec = (base: string) => writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/base\nfrom: oci:./${base}\nlayers:\n  - name: app\n    copy: [{ from: app/, to: /app/ }]\noutput:\n  - oci: ./out/img\n`);
    spec('base1');
    const w = await watching(join(dir, 'image.yaml'));
    const failed = w.next();
    spec('base2'); // not there yet
    expect((await failed).kind).toBe('error');
    await settle(300);
    await writeOciLayout(join(dir, 'base2'), { image: bases[1]! }, ['latest']);
    await expectRebuiltOn(w, dir, bases[1]!);
  });

  it('makes a new image on the same layers when its local base is rebuilt: an OCI layout, or a docker archive', async () => {
    const bases = [await randomImage({ seed: 'wr1', layers: 1 }), await randomImage({ seed: 'wr2', layers: 1 })];
    for (const kind of ['oci', 'docker-archive'] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'imgbuild-watch-base-'));
      const write = kind === 'oci' ? (i: number) => writeOciLayout(join(dir, 'base'), { image: bases[i]! }, ['latest']) : (i: number) => writeDockerArchive(join(dir, 'base.tar'), bases[i]!, ['t/base:latest']);
      await write(0);
      mkdirSync(join(dir, 'app'));
      writeFileSync(join(dir, 'app/f'), 'app');
      writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/app\nfrom: ${kind === 'oci' ? 'oci:./base' : 'docker-archive:./base.tar'}\nlayers:\n  - name: app\n    copy: [{ from: app/, to: /app/ }]\noutput:\n  - oci: ./out/img\n`);
      const w = await watching(join(dir, 'image.yaml'));
      await settle(200);
      const rebuilt = w.next();
      await write(1);
      const line = await rebuilt;
      expect(line, kind).toMatchObject({ kind: 'rebuilt', rebuilt: [] });
      expect(baseDigestOf(dir, line), kind).toBe(await bases[1]!.digest());
      await handle?.stop();
      handle = undefined;
    }
  });

  it('opens a rebuilt local base again after a build of it failed, rather than keep the last image\'s base', async () => {
    const { dir, bases } = await appOnRebuiltBase('wf');
    const w = await watching(join(dir, 'image.yaml'));
    await settle(200);
    // The new layout copied in index.json first: its build fails on a missing blob.
    const failed = w.next();
    cpSync(join(dir, 'next/index.json'), join(dir, 'base/index.json'));
    expect((await failed).kind).toBe('error');
    cpSync(join(dir, 'next/blobs'), join(dir, 'base/blobs'), { recursive: true });
    await settle(300);
    await expectRebuiltOn(w, dir, bases[1]!);
  });

  it('makes a new image when its local base was rebuilt during the first build, after that build opened it', async () => {
    const { dir, bases } = await appOnRebuiltBase('wd');
    const lines: WatchLine[] = [];
    let rebuiltBase = false;
    // Once the first build has opened the base, before anything watches it.
    const report = (e: ApplyEvent) => {
      if (e.type !== 'base' || rebuiltBase) return;
      rebuiltBase = true;
      cpSync(join(dir, 'next/blobs'), join(dir, 'base/blobs'), { recursive: true });
      cpSync(join(dir, 'next/index.json'), join(dir, 'base/index.json'));
    };
    handle = await watchApply(join(dir, 'image.yaml'), { cacheDir: join(dir, '.cache'), env: {}, report, onRebuild: (l) => lines.push(l) });
    for (let i = 0; i < 60 && lines.length === 0; i++) await settle(50);
    expect(rebuiltBase).toBe(true);
    expect(lines).toHaveLength(1);
    expect(baseDigestOf(dir, lines[0]!)).toBe(await bases[1]!.digest());
  });

  it('builds the files of a failed rebuild with the next one, even when that one changes only a layer above', async () => {
    const dir = contextWith({ 'low/a.txt': 'a1', 'high/b.txt': 'b1' }, 'layers:\n  - name: low\n    copy: [{ from: low/, to: /low/ }]\n  - name: high\n    copy: [{ from: high/, to: /high/ }]\n');
    const w = await watching(join(dir, 'image.yaml'));
    // The layout's index cannot be written while a directory stands in its place.
    const index = join(dir, 'out/img/index.json');
    rmSync(index);
    mkdirSync(index);
    const failed = w.next();
    writeFileSync(join(dir, 'low/a.txt'), 'a2');
    expect((await failed).kind).toBe('error');
    // A late second event for the same write fails the same way: let any such land first.
    await settle(800);
    rmSync(index, { recursive: true });
    const rebuilt = w.next();
    writeFileSync(join(dir, 'high/b.txt'), 'b2');
    const line = await rebuilt;
    expect(line.kind).toBe('rebuilt');
    // Both differ from the last image written: low was built by the failed attempt (cached now).
    expect((line as { rebuilt: string[] }).rebuilt).toEqual(['low', 'high']);
    const rootfs = await umociUnpack(join(dir, 'out/img'), 'latest', join(dir, 'bundle'));
    expect(readFileSync(join(rootfs, 'high/b.txt'), 'utf8')).toBe('b2');
    expect(readFileSync(join(rootfs, 'low/a.txt'), 'utf8')).toBe('a2');
  });

  it('builds a layer added to the spec before its source exists once the source is made', async () => {
    const layer = (name: string) => `  - name: ${name}\n    copy: [{ from: ${name}/, to: /${name}/ }]\n`;
    const dir = contextWith({ 'app/a.txt': 'a1' }, `layers:\n${layer('app')}`);
    const spec = join(dir, 'image.yaml');
    const w = await watching(spec);
    const failed = w.next();
    writeFileSync(spec, readFileSync(spec, 'utf8').replace('output:', `${layer('more')}output:`));
    expect(await failed).toMatchObject({ kind: 'error' });
    // The watcher of what the edited spec reads is opened after the error: write until a write is
    // seen, rather than race the moment it is ready (what a one-shot build says is not in question).
    mkdirSync(join(dir, 'more'));
    const rebuilt = w.next();
    for (let i = 0; w.lines.at(-1)?.kind !== 'rebuilt' && i < 50; i++) {
      writeFileSync(join(dir, 'more/m.txt'), 'm1');
      await Promise.race([rebuilt, settle(200)]);
    }
    expect(w.lines.at(-1)).toMatchObject({ kind: 'rebuilt', rebuilt: ['more'] });
    const rootfs = await umociUnpack(join(dir, 'out/img'), 'latest', join(dir, 'bundle'));
    expect(readFileSync(join(rootfs, 'more/m.txt'), 'utf8')).toBe('m1');
    // The check the new watcher makes when it opens, which failed as the edit did, was not said again.
    expect(w.lines.filter((l) => l.kind === 'error')).toHaveLength(1);
  });

  it('plans again, with the next batch, the files of a batch whose plan failed', async () => {
    const dir = contextWith({ 'src/a.js': 'a1', 'dist/old.js': 'o1' }, 'layers:\n  - name: dist\n    copy: [{ from: dist/, to: /d/ }]\n  - name: js\n    copy: [{ from: "src/**/*.js", to: /js/ }]\n');
    const w = await watching(join(dir, 'image.yaml'));
    // One batch: the glob matches nothing for a moment (its plan fails), and dist, the layer
    // below (which a re-plan of js alone would not list again), gains a file.
    const failed = w.next();
    rmSync(join(dir, 'src/a.js'));
    writeFileSync(join(dir, 'dist/new.js'), 'n1');
    expect((await failed).kind).toBe('error');
    await settle(800);
    const rebuilt = w.next();
    writeFileSync(join(dir, 'src/a.js'), 'a2');
    expect((await rebuilt).kind).toBe('rebuilt');
    const rootfs = await umociUnpack(join(dir, 'out/img'), 'latest', join(dir, 'bundle'));
    expect(readFileSync(join(rootfs, 'js/a.js'), 'utf8')).toBe('a2');
    expect(readFileSync(join(rootfs, 'd/new.js'), 'utf8')).toBe('n1');
  });
});
