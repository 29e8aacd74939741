/**
 * The file watcher under watch mode: chokidar over the paths to watch, opened so that it is
 * ready only once every directory below them is watched, and so that opening it on a large tree
 * does not set the process's peak memory.
 *
 * - Ready means ready. Watch mode checks all its inputs once when the watcher is ready, to catch
 *   edits made before; if `ready` came early, an edit to a directory not yet watched and already
 *   checked would be lost. chokidar 4 counts a path that does not exist twice towards its
 *   `ready` event (once when the stat fails, once more when it goes on to watch the parent), so
 *   with a missing path among those given (a spec's lock file, usually) `ready` fired after a
 *   millisecond, with one directory of 1,052 watched. chokidar therefore gets only paths that
 *   exist; a missing one is watched by name through a plain watch of its directory.
 * - In groups. chokidar walks everything it is given at once, with an lstat of every entry, so
 *   on a 32,000-file tree it alone peaked at 160 MB. The paths themselves are watched with depth
 *   0 (a new entry straight inside one shows there), and the directories below them in up to
 *   GROUPS chokidar instances opened one after another, each ready before the next: 98 MB, in
 *   the same time. A directory created later straight inside a watched one is added to the
 *   last group; one created deeper is picked up by the group watching its parent.
 * - By name, too. chokidar lets go of a path it was given once that path is removed, and follows
 *   a symlink to its target: a directory removed and made again (a clean build of `dist/`), a
 *   file written anew, a symlink pointed elsewhere would go unseen from then on. So each given
 *   path is also watched through a plain watch of its parent directory; when the entry of that
 *   name is another file than before, the path is watched again from scratch (and a directory
 *   reported again, for what it gained meanwhile). The parents in between, up to the folder that
 *   holds all the given paths, are watched by name the same way: `build/` removed and made
 *   again takes the plain watch of its old self with it, and `build/dist/` would go unseen.
 * - Replaced directories below, too. chokidar takes a directory removed and made again at once
 *   (`rm -rf dist && mkdir dist` in a copy of `.`) for the same one, and keeps its watch of the
 *   removed one, which reports nothing ever again; and its watches are shared by path between
 *   its instances, so a new watch of the path joins the dead one while any instance holds it.
 *   So a once-watched directory whose name had events is, once the tree is quiet, let go by
 *   every instance holding a watch in its tree, then watched again, and reported with all they
 *   watch (see `#reconcile`).
 */
import { lstatSync, readdirSync, statSync, watch as watchDir, type FSWatcher as DirWatcher, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { watch, type ChokidarOptions, type FSWatcher } from 'chokidar';

export interface WatchEvents {
  /** chokidar's events for the paths it reports (added, changed, removed). */
  all(event: string, path: string): void;
  /** chokidar's raw events: what a directory's own watch reports about the files in it. */
  raw(event: string, name: string | null, details: unknown): void;
  /**
   * A given path itself was created, removed or replaced (seen through its parent directory); or,
   * with `recheck`, a directory watched anew, reported for what it may have gained while it was
   * not watched (nothing, often).
   */
  replaced(path: string, recheck?: boolean): void;
}

const GROUPS = 16;
/** How long a replaced path's events are let settle before it is watched again. */
const REWATCH_MS = 100;
/** How long new directories' events are let settle before the watched ones are checked against the tree. */
const RECONCILE_MS = 500;

export class InputWatcher {
  readonly #options: ChokidarOptions;
  readonly #events: WatchEvents;
  /** The given paths, depth 0. */
  #top: FSWatcher | undefined;
  /** Everything below the given directories, in groups; the last one takes later additions. */
  readonly #groups: FSWatcher[] = [];
  /** The directories each group was given (it watches everything below them too). */
  readonly #roots = new Map<FSWatcher, Set<string>>();
  /** Every directory watched below the given paths, since removed too: one made again under such a name is looked at again. */
  readonly #knownDirs = new Set<string>();
  /** Watched directories with events about their own names since the last reconcile (see `#reconcile`). */
  readonly #churned = new Set<string>();
  /** Refreshes run one after another: each closes and opens chokidar instances (see `#refresh`). */
  #refreshing: Promise<void> = Promise.resolve();
  #reconcileTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** A plain watch per directory holding a given path or a parent of one, by directory. */
  readonly #dirWatches = new Map<string, DirWatcher>();
  /** The file each given path named when last watched (undefined: none; see identityOf), to tell a replaced one. */
  readonly #identities = new Map<string, string | undefined>();
  /** The parents of given paths watched by name, below the folder holding them all. */
  readonly #parents = new Set<string>();
  readonly #rewatchTimers = new Map<string, NodeJS.Timeout>();

  private constructor(options: ChokidarOptions, events: WatchEvents) {
    this.#options = options;
    this.#events = events;
  }

  /** Resolves once every directory below the paths that exist is watched. */
  static async open(paths: readonly string[], options: ChokidarOptions, events: WatchEvents): Promise<InputWatcher> {
    const w = new InputWatcher(options, events);
    const holder = commonFolder(paths);
    for (const path of paths) {
      w.#identities.set(path, identityOf(path));
      for (let p = dirname(path); p !== holder && inside(p, holder); p = dirname(p)) w.#parents.add(p);
    }
    for (const dir of new Set([...w.#identities.keys(), ...w.#parents].map((p) => dirname(p)))) w.#watchDir(dir);
    const present = w.#present();
    await w.#openTop(present);
    const below = outermost(present.flatMap((path) => subdirectories(path)));
    const size = Math.ceil(below.length / GROUPS);
    for (let i = 0; i < below.length; i += size) await w.#openGroup(below.slice(i, i + size));
    for (const dir of w.watchedDirectories()) if (!w.#identities.has(dir)) w.#knownDirs.add(dir);
    return w;
  }

  /** The given paths that exist (as last looked at). */
  #present(): string[] {
    return [...this.#identities].filter(([, id]) => id !== undefined).map(([p]) => p);
  }

  /** Watch `given` at depth 0; a directory made straight inside one joins the groups. */
  async #openTop(given: string[]): Promise<void> {
    this.#top = await this.#start(given, { ...this.#options, depth: 0 });
    this.#top.on('addDir', (dir: string) => this.add([dir]));
  }

  /** A group watching `roots` and everything below them, once it is ready. */
  async #openGroup(roots: string[]): Promise<void> {
    const group = await this.#start(roots, this.#options);
    this.#groups.push(group);
    this.#roots.set(group, new Set(roots));
  }

  /** Watch more directories, with everything below them (ones created inside a watched path). */
  add(paths: readonly string[]): void {
    const last = this.#groups.at(-1) ?? this.#group();
    last.add([...paths]);
    for (const path of paths) this.#roots.get(last)!.add(path);
  }

  /** Every directory chokidar says it watches (reconcile compares the tree with it; tests read it). */
  watchedDirectories(): string[] {
    const all = [this.#top, ...this.#groups].flatMap((w) => (w ? Object.keys(w.getWatched()) : []));
    return [...new Set(all)];
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#rewatchTimers.values()) clearTimeout(t);
    clearTimeout(this.#reconcileTimer);
    for (const d of this.#dirWatches.values()) d.close();
    await this.#refreshing;
    await Promise.all([this.#top, ...this.#groups].map((w) => w?.close()));
  }

  /** An instance watching `paths`, once it is ready (one given nothing is ready at once: chokidar never says so then). */
  #start(paths: string[], options: ChokidarOptions): Promise<FSWatcher> {
    const w = this.#listen(watch(paths, options));
    if (paths.length === 0) return Promise.resolve(w);
    return new Promise((resolve) => w.once('ready', () => resolve(w)));
  }

  #group(): FSWatcher {
    const w = this.#listen(watch([], this.#options));
    this.#groups.push(w);
    this.#roots.set(w, new Set());
    return w;
  }

  #listen(w: FSWatcher): FSWatcher {
    w.on('all', (event, path) => {
      if (event === 'addDir') {
        this.#knownDirs.add(path);
        this.#reconcileSoon();
      } else if (event === 'unlinkDir') {
        // Kept in #knownDirs: a directory made again under a name once watched is looked at again.
        this.#dirEvent(path);
      }
      this.#events.all(event, path);
    });
    w.on('raw', (event, name, details) => {
      const dir = (details as { watchedPath?: string } | undefined)?.watchedPath;
      if (event === 'rename' && typeof name === 'string' && dir) this.#dirEvent(join(dir, name));
      this.#events.raw(event, name as string | null, details);
    });
    return w;
  }

  /**
   * An event about the name of a directory watched below the given paths (removed, made again,
   * renamed): it is looked at again once the tree's events are quiet (see `#reconcile`). A given
   * path is `#seen`'s.
   */
  #dirEvent(path: string): void {
    if (this.#identities.has(path) || !this.#knownDirs.has(path)) return;
    this.#churned.add(path);
    this.#reconcileSoon();
  }

  /**
   * Watch `dir` and everything below it again, from scratch, then call `then`. chokidar cannot
   * be told to: `unwatch` of a directory closes its own watch but keeps those below it, which
   * `add` then takes as known; and it shares one fs.watch per path between its instances, so a
   * new watch joins a dead one while any instance holds it. So every instance holding a watch in
   * the tree is closed, all of them first, and opened again on what it was given.
   */
  #refresh(dir: string, then: () => void = () => undefined): void {
    this.#refreshing = this.#refreshing
      .then(() => this.#reopenHolders(dir))
      .then(() => {
        if (!this.#closed) then();
      })
      // Best effort: a refresh that failed leaves the next one, and close(), to go on.
      .catch(() => undefined);
  }

  async #reopenHolders(dir: string): Promise<void> {
    if (this.#closed) return;
    const inTree = (p: string) => inside(p, dir);
    // An instance watching the parent holds a watch of the entry itself too (the top, at depth 0).
    const holds = (w: FSWatcher) => Object.keys(w.getWatched()).some((p) => inTree(p) || p === dirname(dir));
    const topHolds = this.#top !== undefined && holds(this.#top);
    const groups = this.#groups.filter(holds);
    // Out of the watcher before they are closed: a directory added meanwhile (add()) goes to a
    // group that stays open, not to one closed here and never closed again once restarted.
    const rootsOf = new Map(groups.map((g) => [g, [...(this.#roots.get(g) ?? [])]]));
    for (const g of groups) {
      this.#groups.splice(this.#groups.indexOf(g), 1);
      this.#roots.delete(g);
    }
    const top = topHolds ? this.#top : undefined;
    if (top) this.#top = undefined;
    await Promise.all([top, ...groups].map((w) => w?.close()));
    // What they watched is reported once they watch again: a change there while they were
    // closed, or scanning, raised no event.
    const reported: string[] = [];
    if (top && !this.#closed) {
      const given = this.#present();
      await this.#openTop(given);
      reported.push(...given.filter((p) => lstatQuiet(p)?.isDirectory()));
    }
    for (const g of groups) {
      if (this.#closed) break;
      // A directory gone with the old tree is no longer one of the group's.
      const roots = rootsOf.get(g)!.filter((r) => lstatQuiet(r) !== undefined);
      await this.#openGroup(roots);
      reported.push(...roots);
    }
    for (const p of directoriesIn(dir)) if (!this.#identities.has(p)) this.#knownDirs.add(p);
    for (const p of reported) this.#events.replaced(p, true);
  }

  /**
   * Once the tree's events have been quiet for RECONCILE_MS, what chokidar may have got wrong is
   * put right, and reported (for what it gained meanwhile):
   * - a watched directory whose name had events and that is a directory now is watched again
   *   from scratch (`#refresh`): removed and made again, even 50 times in a row, chokidar may
   *   keep a dead watch of it, or of the directories below it;
   * - every directory below the given ones is looked for among those watched: of a burst of
   *   thousands of new ones (an npm install) chokidar leaves a few unwatched (15 to 29 of 3,000
   *   here). One not watched is added.
   */
  #reconcileSoon(): void {
    clearTimeout(this.#reconcileTimer);
    this.#reconcileTimer = setTimeout(() => {
      this.#refreshing = this.#refreshing.then(() => this.#reconcile()).catch(() => undefined);
    }, RECONCILE_MS).unref();
  }

  async #reconcile(): Promise<void> {
    if (this.#closed) return;
    const churned = [...this.#churned];
    this.#churned.clear();
    // Reported with what their reopened instances watch; one no instance held is found missing below.
    for (const dir of outermost(churned.filter((d) => lstatQuiet(d)?.isDirectory()))) await this.#reopenHolders(dir);
    const watched = new Set(this.watchedDirectories());
    const ignored = typeof this.#options.ignored === 'function' ? this.#options.ignored : () => false;
    const missing: string[] = [];
    for (const root of this.#present()) {
      for (const dir of directoriesIn(root, (d) => ignored(d, DIRECTORY as never))) if (!watched.has(dir) && !missing.some((m) => inside(dir, m))) missing.push(dir);
    }
    if (missing.length === 0) return;
    this.add(missing);
    for (const dir of missing) {
      this.#knownDirs.add(dir);
      this.#events.replaced(dir, true);
    }
  }

  /** Watch (again) the entries of `dir` that are given paths or their parents. */
  #watchDir(dir: string): void {
    this.#dirWatches.get(dir)?.close();
    this.#dirWatches.delete(dir);
    try {
      this.#dirWatches.set(dir, watchDir(dir, (_event, name) => {
        if (typeof name !== 'string') return;
        const path = join(dir, name);
        if (this.#identities.has(path)) this.#seen(path);
        if (this.#parents.has(path)) this.#parentSeen(path);
      }));
    } catch {
      // Gone too: watched again when the parent above it is seen made anew.
    }
  }

  /**
   * A parent of given paths was created, removed or replaced: once its events are quiet, the
   * directories from it down are watched again, and each given path below it is looked at as if
   * its own entry had changed (it may have come, gone or been replaced with its parent).
   */
  #parentSeen(parent: string): void {
    const key = `parent:${parent}`;
    clearTimeout(this.#rewatchTimers.get(key));
    const timer = setTimeout(() => {
      this.#rewatchTimers.delete(key);
      for (const dir of this.#parents) if (inside(dir, parent)) this.#watchDir(dir);
      for (const path of this.#identities.keys()) if (inside(dirname(path), parent)) this.#seen(path);
    }, REWATCH_MS);
    this.#rewatchTimers.set(key, timer.unref());
  }

  /**
   * An event about a given path's own entry. If it is another file now, it is watched again once
   * its events have been quiet for REWATCH_MS: chokidar handles the removal of the old one
   * after the event, and would close a watch made before then. Reported again after that, so a
   * rebuild reads what was written in between.
   */
  #seen(path: string): void {
    this.#events.replaced(path);
    clearTimeout(this.#rewatchTimers.get(path));
    const timer = setTimeout(() => {
      this.#rewatchTimers.delete(path);
      const now = identityOf(path);
      if (now === this.#identities.get(path)) return;
      this.#identities.set(path, now);
      if (now !== undefined) this.#rewatch(path);
    }, REWATCH_MS);
    this.#rewatchTimers.set(path, timer.unref());
  }

  /**
   * A given path that is another file now: its tree watched again (see `#refresh`), and its
   * directories below it given to the groups that no group watches already (it may lie in the
   * tree of another given path: a copy of `.` beside one of `dist/`).
   */
  #rewatch(path: string): void {
    this.#refresh(path, () => {
      const watched = (d: string) => [...this.#roots.values()].some((roots) => [...roots].some((r) => inside(d, r)));
      const fresh = subdirectories(path).filter((d) => !watched(d));
      if (fresh.length > 0) this.add(fresh);
      // A directory may have filled before its new watch: reported again (the coalescer takes a
      // path reported twice once). A file (an editor's atomic save of the spec) is not: the build
      // its first report started reads it whole, and a second would build the same save twice.
      if (isDirectory(path)) this.#events.replaced(path, true);
    });
  }
}

/**
 * Each directory once, and none inside another of them: a group watches what is below its
 * directories, so nested roots (a copy of `.` beside one of its `node_modules/`) would otherwise
 * watch a whole subtree twice.
 */
function outermost(dirs: readonly string[]): string[] {
  const all = new Set(dirs);
  const inside = (d: string) => {
    for (let p = dirname(d); p !== dirname(p); p = dirname(p)) if (all.has(p)) return true;
    return false;
  };
  return [...all].filter((d) => !inside(d));
}

/** The deepest folder holding every path, or being one of them (the spec's folder, usually). */
function commonFolder(paths: readonly string[]): string {
  let common = dirname(paths[0] ?? '/');
  for (const p of paths) while (!inside(p, common)) common = dirname(common);
  return common;
}

const inside = (path: string, folder: string) => path === folder || path.startsWith(folder.endsWith('/') ? folder : `${folder}/`);

/**
 * Which file a path names: its inode, and its birth time, since a directory removed and made
 * again at once often gets the same inode back (its change time where there is no birth time).
 */
function identityOf(path: string): string | undefined {
  const st = lstatQuiet(path);
  return st && `${st.ino}:${st.birthtimeMs || st.ctimeMs}`;
}

/** `dir` and every directory below it, but those `skip` leaves out (and all below them); symlinks are not followed. */
function directoriesIn(dir: string, skip: (dir: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const visit = (d: string) => {
    out.push(d);
    for (const sub of subdirectories(d)) if (!skip(sub)) visit(sub);
  };
  if (lstatQuiet(dir)?.isDirectory()) visit(dir);
  return out;
}

/** Whether `path` is a directory, or a symlink to one. */
function isDirectory(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;
  }
}

/** lstat, or undefined for a path that is not there in any way (gone, or below what is now a file: ENOTDIR). */
function lstatQuiet(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/** What the watch's `ignored` is told of a directory the reconciling walk meets (it asks only that). */
const DIRECTORY = { isDirectory: () => true, isFile: () => false, isSymbolicLink: () => false };

/** The directories straight inside `path` (none if it is a file); symlinks are stored as links, so never followed. */
function subdirectories(path: string): string[] {
  try {
    if (!statSync(path).isDirectory()) return [];
    return readdirSync(path, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(path, d.name));
  } catch {
    return [];
  }
}
