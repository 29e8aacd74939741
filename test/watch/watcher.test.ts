/**
 * The watcher's `ready` means what watch mode's start-up check relies on: every directory below
 * the watched paths is watched, even when one of those paths does not exist yet.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openWatcher } from '../../src/watch/watcher.js';

let dir: string;
let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  rmSync(dir, { recursive: true, force: true });
});

describe('openWatcher', () => {
  it('is ready only once every directory below the paths is watched, with a missing path among them', async () => {
    dir = mkdtempSync(join(tmpdir(), 'imgbuild-watcher-'));
    const tree = join(dir, 'tree');
    const dirs = [tree];
    for (let d = 0; d < 20; d++) {
      for (let e = 0; e < 10; e++) {
        const sub = join(tree, `d${d}`, `e${e}`);
        mkdirSync(sub, { recursive: true });
        writeFileSync(join(sub, 'f.js'), `${d}.${e}`);
        dirs.push(sub);
      }
      dirs.push(join(tree, `d${d}`));
    }
    const spec = join(dir, 'image.yaml');
    writeFileSync(spec, 'x');
    const lock = join(dir, 'image.lock');
    // As watch mode watches: directories, and the files named.
    const events: string[] = [];
    let created: () => void = () => undefined;
    const opened = openWatcher([spec, lock, tree], { ignoreInitial: true, ignored: (p, stats) => stats !== undefined && stats.isFile() && p !== spec }, (p) => {
      events.push(p);
      created();
    });
    close = opened.close;
    await opened.ready;
    const watched = Object.keys(opened.watcher.getWatched());
    expect(dirs.filter((d) => !watched.includes(d))).toEqual([]);

    // The missing path is watched for its creation from the start.
    const seen = new Promise<void>((resolve) => (created = resolve));
    writeFileSync(lock, 'lock');
    await seen;
    expect(events[0]).toBe(lock);
  });
});
