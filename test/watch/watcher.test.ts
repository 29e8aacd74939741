/**
 * The watcher's `ready` means what watch mode's start-up check relies on: every directory below
 * the watched paths is watched, even when one of those paths does not exist yet; and what is
 * created later, straight inside a watched path or deeper, is watched too.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InputWatcher } from '../../src/watch/watcher.js';

let dir: string;
let watcher: InputWatcher | undefined;
afterEach(async () => {
  await watcher?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A tree of 20 x 10 directories with a file in each, the spec beside it, and its missing lock. */
function makeTree() {
  dir = mkdtempSync(join(tmpdir(), 'imgbuild-watcher-'));
  const tree = join(dir, 'tree');
  const dirs = [tree];
  for (let d = 0; d < 20; d++) {
    dirs.push(join(tree, `d${d}`));
    for (let e = 0; e < 10; e++) {
      const sub = join(tree, `d${d}`, `e${e}`);
      mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, 'f.js'), `${d}.${e}`);
      dirs.push(sub);
    }
  }
  const spec = join(dir, 'image.yaml');
  writeFileSync(spec, 'x');
  return { tree, dirs, spec, lock: join(dir, 'image.lock') };
}

/** Opens as watch mode does (directories, and the files named); `events` collects what each channel reports. */
async function open(paths: string[], spec: string) {
  const events: { kind: string; path: string }[] = [];
  let wake: () => void = () => undefined;
  const seen = (kind: string, path: string) => {
    events.push({ kind, path });
    wake();
  };
  watcher = await InputWatcher.open(paths, { ignoreInitial: true, ignored: (p: string, stats?: { isFile(): boolean }) => stats !== undefined && stats.isFile() && p !== spec }, {
    all: (_e, p) => seen('all', p),
    raw: (_e, name, details) => seen('raw', join((details as { watchedPath: string }).watchedPath, name ?? '')),
    replaced: (p) => seen('replaced', p),
  });
  /**
   * Resolves once an event about `path` has come (`poke` is repeated until then); fails after 10 s.
   * With `orAbove`, a directory above it reported replaced counts too: a change made while the
   * watcher reopened the instances holding it is reported with their roots, and watch mode plans
   * everything below a replaced path again.
   */
  const about = async (path: string, poke: () => void = () => undefined, orAbove = false) => {
    const deadline = Date.now() + 10_000;
    const covers = (e: { kind: string; path: string }) => e.path === path || (orAbove && e.kind === 'replaced' && path.startsWith(`${e.path}/`));
    while (!events.some(covers)) {
      if (Date.now() > deadline) throw new Error(`no event about ${path} within 10 s`);
      poke();
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
  };
  return { events, about };
}

describe('InputWatcher', () => {
  it('is ready only once every directory below the paths is watched, with a missing path among them', async () => {
    const { tree, dirs, spec, lock } = makeTree();
    const w = await open([spec, lock, tree], spec);
    expect(dirs.filter((d) => !watcher!.watchedDirectories().includes(d))).toEqual([]);
    // The missing path is watched for its creation from the start.
    writeFileSync(lock, 'lock');
    await w.about(lock);
    expect(w.events.find((e) => e.path === lock)?.kind).toBe('replaced');
  });

  it('is ready only once a directory with no subdirectories is watched too, with a missing path given first', async () => {
    const { spec, lock } = makeTree();
    const flat = join(dir, 'flat');
    mkdirSync(flat);
    for (let i = 0; i < 50; i++) writeFileSync(join(flat, `f${i}.js`), `${i}`);
    await open([lock, spec, flat], spec);
    expect(watcher!.watchedDirectories()).toContain(flat);
  });

  it('watches everything below nested paths (a copy of a tree beside one of its directories)', async () => {
    const { tree, dirs, spec } = makeTree();
    await open([spec, tree, join(tree, 'd3')], spec);
    expect(dirs.filter((d) => !watcher!.watchedDirectories().includes(d))).toEqual([]);
  });

  it('watches a given directory again once it is removed and made anew, and a given symlink once pointed elsewhere', async () => {
    const { tree, spec } = makeTree();
    const other = join(dir, 'other');
    mkdirSync(other);
    const link = join(dir, 'current');
    symlinkSync(tree, link);
    const w = await open([spec, tree, link], spec);
    rmSync(tree, { recursive: true });
    mkdirSync(join(tree, 'd0'), { recursive: true });
    await w.about(tree);
    // Written until a write is reported: the new directory's watch is set up after the event.
    for (const file of [join(tree, 'after.js'), join(tree, 'd0', 'deeper.js')]) {
      let n = 0;
      await w.about(file, () => writeFileSync(file, String(n++)));
    }
    symlinkSync(other, `${link}.new`);
    renameSync(`${link}.new`, link);
    await w.about(link);
    expect(w.events.find((e) => e.path === link)?.kind).toBe('replaced');
    const file = join(link, 'in-other.js');
    let n = 0;
    await w.about(file, () => writeFileSync(file, String(n++)));
  });

  it.each([false, true])('watches a given directory again once a parent of it is removed and made anew (the folder given too: %s)', async (withFolder) => {
    const { spec } = makeTree();
    const dist = join(dir, 'build', 'dist');
    mkdirSync(dist, { recursive: true });
    // A copy of "." beside one of build/dist: the folder holding them all is itself given.
    const w = await open(withFolder ? [spec, dir, dist] : [spec, dist], spec);
    for (let round = 0; round < 2; round++) {
      rmSync(join(dir, 'build'), { recursive: true });
      mkdirSync(dist, { recursive: true });
      await w.about(dist);
      w.events.length = 0;
      const file = join(dist, `after-${round}.js`);
      let n = 0;
      await w.about(file, () => writeFileSync(file, String(n++)));
      w.events.length = 0;
    }
  });

  it('watches a directory below a given path again once it is removed and made anew at once (rm -rf dist && mkdir dist)', async () => {
    const { tree, spec } = makeTree();
    const w = await open([spec, tree], spec);
    for (const [replaced, file] of [[join(tree, 'd3'), join(tree, 'd3', 'new.js')], [join(tree, 'd4', 'e1'), join(tree, 'd4', 'e1', 'f', 'deeper.js')]] as const) {
      w.events.length = 0;
      rmSync(replaced, { recursive: true });
      mkdirSync(join(file, '..'), { recursive: true });
      await w.about(replaced, undefined, true);
      let n = 0;
      await w.about(file, () => writeFileSync(file, String(n++)));
    }
  });

  it('watches a tree removed and made again many times in a row, to its deepest directory', async () => {
    const { tree, spec } = makeTree();
    const w = await open([spec, tree], spec);
    const a = join(tree, 'a');
    // Each time a little after the last, as a build tool's clean and write come.
    for (let i = 0; i < 6; i++) {
      rmSync(a, { recursive: true, force: true });
      mkdirSync(join(a, 'b', 'c'), { recursive: true });
      writeFileSync(join(a, 'b', 'c', 'g.js'), String(i));
      await new Promise((r) => setTimeout(r, 60));
    }
    for (const d of [a, join(a, 'b'), join(a, 'b', 'c')]) {
      const file = join(d, 'probe.js');
      let n = 0;
      await w.about(file, () => writeFileSync(file, String(n++)));
    }
  });

  it('watches directories created later, straight inside a watched path and deeper', async () => {
    const { tree, spec } = makeTree();
    const w = await open([spec, tree], spec);
    for (const created of [join(tree, 'new-top'), join(tree, 'd3', 'new-deep')]) {
      mkdirSync(created);
      await w.about(created);
      // Its own watch is set up after the event that announced it (watch mode's rebuild for the
      // new directory reads what it holds by then): write into it until a write is reported.
      const file = join(created, 'later.js');
      let n = 0;
      await w.about(file, () => writeFileSync(file, String(n++)));
      expect(watcher!.watchedDirectories()).toContain(created);
    }
  });
});
