/**
 * The file watcher under watch mode: chokidar over the paths to watch, with a `ready` that
 * means every directory below them is watched. Watch mode checks all its inputs once when the
 * watcher is ready, to catch edits made before; if `ready` came early, an edit to a directory not
 * yet watched and already checked would be lost.
 *
 * chokidar 4 counts a path that does not exist twice towards its `ready` event (once when the
 * stat fails, once more when it goes on to watch the parent for it), so with a missing path
 * among those given (a spec's lock file, usually) `ready` fired after a millisecond, with one
 * directory of 1,052 watched. So chokidar gets the paths that exist, and a missing one is
 * watched through a plain watch of its directory, by name, set up before this returns.
 */
import { existsSync, watch as watchDir, type FSWatcher as DirWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { watch, type ChokidarOptions, type FSWatcher } from 'chokidar';

export interface OpenedWatcher {
  /** Attach listeners at once: events flow before `ready`. */
  watcher: FSWatcher;
  /** Resolves when every directory below the paths that exist is watched. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/** `onMissing(path)` is called when a path that did not exist at the start is created, changed or removed. */
export function openWatcher(paths: readonly string[], options: ChokidarOptions, onMissing: (path: string) => void): OpenedWatcher {
  const present = paths.filter((p) => existsSync(p));
  const missing = paths.filter((p) => !present.includes(p));
  const watcher = watch(present, options);
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  const dirWatches = missing.flatMap((path): DirWatcher[] => {
    const name = basename(path);
    try {
      return [watchDir(dirname(path), (_event, changed) => changed === name && onMissing(path))];
    } catch {
      return []; // its directory is gone too: nothing there to build from
    }
  });
  return {
    watcher,
    ready,
    close: async () => {
      for (const w of dirWatches) w.close();
      await watcher.close();
    },
  };
}
