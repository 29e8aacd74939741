/**
 * Walking a directory of the build context: every entry below it with its lstat, pruned by
 * exclude globs, never following a symlink. The order of readdir never matters: `walkTree`'s
 * entries are sorted by the plan later, and `walkSorted` sorts each directory's names itself, so
 * the result is the same on every file system.
 *
 * The walk uses synchronous calls on purpose: a no-op build stats every file of the context
 * (tens of thousands for a node_modules), and one promise and thread-pool round trip per file
 * costs more than the system call itself. Nothing else runs while a plan is being made. For the
 * same reason stats are plain numbers (no BigInts) and each entry keeps only the fields the plan
 * and the stat cache use, in one object, so the `fs.Stats` itself is garbage at once.
 *
 * Only regular files are lstat'ed: readdir already says what each name is, and a directory's or
 * symlink's stat decides nothing in the plan (a copied directory takes the spec's `dirMode`, a
 * symlink its target). On a node_modules that is a sixth fewer lstats, and an `fs.Stats` with
 * its four Dates less per directory. A first build's walk lstats no file at all (`statFiles`).
 */
import { lstatSync, readdirSync, type Dirent, type Stats } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { join } from 'node:path';
import type { FileStat } from '../store/file-digests.js';
import { sortBytewise } from './path-order.js';
import { FROM_FILE } from './types.js';

export const enum EntryType {
  File = 0,
  Dir = 1,
  Symlink = 2,
  /** Socket, pipe or device. */
  Special = 3,
  /** A name that is not UTF-8: readdir's string for it names no file (see `undecodable`). */
  Undecodable = 4,
}

export interface WalkedEntry extends FileStat {
  /** Path relative to the walk's root, "/"-separated. */
  rel: string;
  abs: string;
  type: EntryType;
  /** Any executable bit set (decides a copied file's default mode); undefined for a file not lstat'ed. */
  exec: boolean | undefined;
  /** An Undecodable entry's absolute path with the bytes of its name escaped, for messages. */
  shown?: string;
  /** An Undecodable entry is a directory: what it holds cannot be listed, so a glob cannot tell whether it holds matches. */
  undecodableDir?: boolean;
}

/**
 * An entry the walk did not lstat. Its stat fields are zeros: a directory's or a symlink's are
 * never read (see the top of this file); a regular file's size is FROM_FILE, and its exec bit
 * unknown, for the layer writer to read (WalkOptions.statFiles).
 */
function unstatted(rel: string, abs: string, type: EntryType): WalkedEntry {
  const file = type === EntryType.File;
  return { rel, abs, type, exec: file ? undefined : false, size: file ? FROM_FILE : 0, mtimeMs: 0, ctimeMs: 0, ino: 0, dev: 0 };
}

/** How a walk reads what it lists. */
export interface WalkOptions {
  /** Called with each directory's path just before it is read (the walk records of unchanged-layer.ts stamp it then). */
  beforeListing?: (dirAbs: string) => void;
  /**
   * False: regular files are not lstat'ed either, and readdir alone lists the tree (see
   * `unstatted`). For a first build, whose layer writer fstats each file as it reads it: on an
   * 18,000-file node_modules the plan took 75 ms less. Default true.
   */
  statFiles?: boolean;
}

/**
 * Decides whether a path is left out (with everything below it): `rel` relative to the walk's
 * root, `abs` the same path as `path.join(root, rel)` gives it (normalised).
 */
export type PathFilter = (rel: string, abs: string) => boolean;

const GONE = new Set(['ENOENT', 'ENOTDIR']);
const LSTAT_OPTIONS = { bigint: false, throwIfNoEntry: false } as const;

function typeOf(st: Stats): EntryType {
  return st.isFile() ? EntryType.File : st.isDirectory() ? EntryType.Dir : st.isSymbolicLink() ? EntryType.Symlink : EntryType.Special;
}

/** One walked entry from its lstat (also used for a copy's own source path). */
export function walkedEntry(rel: string, abs: string, st: Stats): WalkedEntry {
  return { rel, abs, type: typeOf(st), exec: (st.mode & 0o111) !== 0, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, dev: st.dev };
}

/**
 * The lstat of `abs`, or undefined when it vanished between readdir and lstat (a live file
 * system): it is simply not there now. So when a directory above it became a file (ENOTDIR),
 * which `throwIfNoEntry` does not cover.
 */
export function lstatOrUndefined(abs: string): Stats | undefined {
  try {
    return lstatSync(abs, LSTAT_OPTIONS);
  } catch (e) {
    if (GONE.has((e as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw e;
  }
}

/**
 * A name read as text holds U+FFFD where its bytes were not UTF-8, and then names no file: an
 * lstat of it finds nothing, and the entry would be dropped as if it had vanished. Layers name
 * files in UTF-8 (PAX), so such a name is listed as Undecodable, for the plan to refuse, shown
 * with its bytes escaped (`caf\xe9`). A real U+FFFD in a UTF-8 name is an ordinary name.
 */
function undecodable(dirAbs: string, name: string): string | undefined {
  if (!name.includes('\uFFFD')) return undefined;
  let raw: Buffer[];
  try {
    raw = readdirSync(dirAbs, { encoding: 'buffer' });
  } catch {
    return undefined;
  }
  const bad = raw.find((b) => !isUtf8(b) && b.toString('utf8') === name);
  return bad && [...bad].map((byte) => (byte >= 0x20 && byte < 0x7f && byte !== 0x5c ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`)).join('');
}

function readdirOrEmpty(abs: string): Dirent[] {
  try {
    return readdirSync(abs, { withFileTypes: true });
  } catch (e) {
    if (GONE.has((e as NodeJS.ErrnoException).code ?? '')) return [];
    throw e;
  }
}

/** `join(root, rel)` for a clean, non-empty `rel` is `base + rel` with this base. */
function joinBase(root: string): string {
  const n = join(root);
  const trimmed = n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
  return trimmed === '/' ? '/' : trimmed === '.' ? '' : `${trimmed}/`;
}

/** One entry of a directory, with its name and normalised absolute path (what a directory is listed by). */
interface Listed {
  e: WalkedEntry;
  name: string;
  norm: string;
}

/**
 * The entries of one directory of a walk: `dirRel` relative to the walk's root ("" for the
 * root itself), `dirAbs` its normalised absolute path.
 */
function listDir(root: string, rootBase: string, dirRel: string, dirAbs: string, excluded: PathFilter, statFiles: boolean): Listed[] {
  const out: Listed[] = [];
  // Entries straight under the root keep the root as it was given (`<root>/<name>`), as always.
  const absBase = dirRel ? `${dirAbs}/` : `${root}/`;
  const normBase = dirRel ? `${dirAbs}/` : rootBase;
  for (const d of readdirOrEmpty(dirAbs)) {
    const name = d.name;
    const rel = dirRel ? `${dirRel}/${name}` : name;
    const norm = normBase + name;
    if (excluded(rel, norm)) continue;
    const abs = dirRel ? norm : absBase + name;
    let e: WalkedEntry;
    const shown = undecodable(dirAbs, name);
    if (shown !== undefined) e = { ...unstatted(rel, abs, EntryType.Undecodable), shown: `${absBase}${shown}`, undecodableDir: d.isDirectory() };
    else if (d.isDirectory()) e = unstatted(rel, abs, EntryType.Dir);
    else if (d.isSymbolicLink()) e = unstatted(rel, abs, EntryType.Symlink);
    else if (!statFiles && d.isFile()) e = unstatted(rel, abs, EntryType.File);
    else {
      // A file, or something special; the lstat decides (and a file replaced meanwhile is what it is now).
      const st = lstatOrUndefined(abs);
      if (!st) continue;
      e = walkedEntry(rel, abs, st);
    }
    out.push({ e, name, norm });
  }
  return out;
}

/** All entries below `root` (not `root` itself), in no particular order; `excluded` prunes a path and all below it. */
export async function walkTree(root: string, excluded: PathFilter, { beforeListing, statFiles = true }: WalkOptions = {}): Promise<WalkedEntry[]> {
  const out: WalkedEntry[] = [];
  const rootBase = joinBase(root);
  // Directories still to list: relative path and normalised absolute path, in pairs.
  const pending: string[] = ['', root];
  while (pending.length > 0) {
    const dirAbs = pending.pop()!;
    const dirRel = pending.pop()!;
    beforeListing?.(dirAbs);
    for (const { e, norm } of listDir(root, rootBase, dirRel, dirAbs, excluded, statFiles)) {
      out.push(e);
      if (e.type === EntryType.Dir) pending.push(e.rel, norm);
    }
  }
  return out;
}

/** A directory's entry (sorted by its name) or what lies below it (sorted by its name and a "/"). */
interface Step {
  key: string;
  listed: Listed;
  below: boolean;
}

/**
 * The same entries as `walkTree`, but in bytewise (UTF-8) order of `rel`, a directory's batch at
 * a time, so a layer's entries can be used while the rest of the tree is still being listed.
 *
 * Everything below a directory `d` sorts as one run at the position of `d/`: a sibling `d.js`
 * or `d-x` (both below "/" in byte order) comes after `d` itself but before `d/a`. So each
 * directory is listed, its entries keyed by name and its subdirectories' contents by name + "/",
 * and the keys sorted; a content key is a descent into that directory.
 */
export function* walkSorted(root: string, excluded: PathFilter, { beforeListing, statFiles = true }: WalkOptions = {}): Generator<WalkedEntry[]> {
  const rootBase = joinBase(root);
  function* below(dirRel: string, dirAbs: string): Generator<WalkedEntry[]> {
    beforeListing?.(dirAbs);
    const steps: Step[] = [];
    for (const listed of listDir(root, rootBase, dirRel, dirAbs, excluded, statFiles)) {
      steps.push({ key: listed.name, listed, below: false });
      if (listed.e.type === EntryType.Dir) steps.push({ key: `${listed.name}/`, listed, below: true });
    }
    sortBytewise(steps, (s) => s.key);
    let batch: WalkedEntry[] = [];
    for (const s of steps) {
      if (!s.below) {
        batch.push(s.listed.e);
        continue;
      }
      if (batch.length > 0) yield batch;
      batch = [];
      yield* below(s.listed.e.rel, s.listed.norm);
    }
    if (batch.length > 0) yield batch;
  }
  yield* below('', root);
}
