/**
 * Expanding one `copy:` entry against the context into candidate entries: a file, a symlink
 * (stored as a link, never followed), a directory's contents, or the matches of a glob (kept
 * relative to the glob's fixed prefix). Sources must stay inside the context even through
 * symlinked parent directories; anything else becomes a diagnostic at the entry.
 */
import { readlinkSync, realpathSync, type Stats } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, posix, sep } from 'node:path';
import picomatch from 'picomatch';
import type { Diagnostic } from '../errors.js';
import { FileChangedError } from '../layer/stable-read.js';
import { isWhiteoutName } from '../image/whiteout.js';
import type { CopySource } from '../spec/normalized.js';
import { didYouMean } from '../spec/did-you-mean.js';
import { Strength, type Candidate } from './candidates.js';
import type { HostFilter } from './host-exclusions.js';
import { defaultFileMode, FROM_FILE, imageRel } from './types.js';
import { EntryType, walkSorted, walkTree, walkedEntry, type PathFilter, type WalkedEntry, type WalkOptions } from './walk.js';

export interface CopyResult {
  candidates: Candidate[];
  problems: Diagnostic[];
}

/** Told what a copy reads besides the files it yields (unchanged-layer.ts's WalkStamps). */
export interface CopyWitness {
  /** Each directory just before it is read. */
  before(dirAbs: string): void;
  /** A path whose later state a record could not vouch for (a symlink copied on its own). */
  unstampable(): void;
}

export interface CopyOptions {
  witness?: CopyWitness;
  /** As WalkOptions.statFiles: false leaves the size and exec bit of files walked to the layer writer. */
  statFiles?: boolean;
}

const problem = (c: CopySource, message: string, hint?: string): Diagnostic =>
  hint ? { position: c.at, message, hint, pointer: '' } : { position: c.at, message, pointer: '' };

const joinImage = (dir: string, rel: string) => imageRel(posix.join(dir, rel));

/** Is what `abs` names (not following its last component, which is stored as it is) inside the context? */
async function insideContext(contextReal: string, abs: string): Promise<boolean> {
  return resolvedInside(contextReal, await realpath(abs === contextReal ? abs : dirname(abs)).catch(() => undefined));
}

/** `insideContext` without a thread-pool trip: for a plan that checks a record (a no-op), whose first async call costs milliseconds. */
function insideContextSync(contextReal: string, abs: string): boolean {
  let real: string | undefined;
  try {
    real = realpathSync.native(abs === contextReal ? abs : dirname(abs));
  } catch {
    real = undefined;
  }
  return resolvedInside(contextReal, real);
}

function resolvedInside(contextReal: string, real: string | undefined): boolean {
  // A missing parent is reported as a missing source.
  return real === undefined || real === contextReal || real.startsWith(contextReal + sep);
}

function toCandidate(c: CopySource, e: WalkedEntry, path: string): Candidate | Diagnostic {
  // Its parents are entries of their own, or the copy's `to`, which the spec checks.
  if (isWhiteoutName(path.slice(path.lastIndexOf('/') + 1))) {
    return problem(c, `${e.abs}: a name starting with ".wh." would delete a path of the layers below, not add this ${e.type === EntryType.Dir ? 'directory' : 'file'}`, 'rename it, or leave it out with exclude: ["**/.wh.*"]');
  }
  const { uid, gid } = c.owner;
  switch (e.type) {
    case EntryType.File:
      return { kind: 'file', path, mode: c.fileMode ?? (e.exec === undefined ? FROM_FILE : defaultFileMode(e.exec)), uid, gid, origin: c.at, strength: Strength.Tree, abs: e.abs, st: e };
    case EntryType.Dir:
      // The walk's root is a directory copy's destination (a glob's fixed prefix is never walked as an entry).
      return { kind: 'dir', path, mode: c.dirMode, uid, gid, origin: c.at, strength: Strength.Tree, ...(e.rel === '' ? { destination: true as const } : {}) };
    case EntryType.Symlink:
      return { kind: 'symlink', path, mode: 0o777, uid, gid, origin: c.at, strength: Strength.Tree, target: linkTarget(e.abs) };
    case EntryType.Undecodable:
      return problem(c, `${e.shown ?? e.abs} has a name that is not UTF-8`, 'image layers name files in UTF-8: rename it (e.g. with convmv), or exclude it');
    default:
      return problem(c, `${e.abs} is a special file (socket, pipe or device)`, 'imgbuild copies files, directories and symlinks; exclude it');
  }
}

/**
 * Where a listed symlink points. One removed or replaced since its directory was listed (a live
 * file system) is gone: the plan lists its layer again (compile.ts's planLayer), as it does for a
 * file that vanished before it was hashed.
 */
function linkTarget(abs: string): string {
  try {
    return readlinkSync(abs);
  } catch (e) {
    // EINVAL: the name is no longer a symlink.
    if (['ENOENT', 'ENOTDIR', 'EINVAL'].includes((e as NodeJS.ErrnoException).code ?? '')) throw new FileChangedError(abs, 'vanished');
    throw e;
  }
}

function collect(c: CopySource, walked: readonly WalkedEntry[], destOf: (rel: string) => string): CopyResult {
  const out: CopyResult = { candidates: [], problems: [] };
  for (const e of walked) {
    const r = toCandidate(c, e, destOf(e.rel));
    if ('kind' in r) out.candidates.push(r);
    else out.problems.push(r);
  }
  return out;
}

/**
 * `rel => joinImage(to, rel)`, without normalising every path: a walked `rel` is clean (names
 * from readdir, never "", "." or ".."), so joining it only appends to the normalised `to`.
 */
export function imageJoiner(to: string): (rel: string) => string {
  const prefix = joinImage(to, 'x').slice(0, -1);
  return (rel) => (rel === '' ? joinImage(to, rel) : prefix + rel);
}

async function missing(c: CopySource, contextDir: string): Promise<Diagnostic> {
  const parent = join(contextDir, dirname(c.from));
  const siblings = await readdir(parent).catch(() => [] as string[]);
  const guess = didYouMean(basename(c.from), siblings);
  const hint = guess ? `did you mean "${posix.join(posix.dirname(c.from), guess).replace(/^\.\//, '')}"?` : `paths are relative to the context, ${contextDir}`;
  return problem(c, `source "${c.from}" does not exist in the context`, hint);
}

/**
 * A copy that reads one of the build's outputs or its cache directory, which are never inputs:
 * it would copy nothing from a layout or the cache (silently an empty directory, and the layout
 * written among the sources), and a docker archive it named would hold the previous build's.
 */
const ownOutput = (c: CopySource): Diagnostic =>
  problem(c, `source "${c.from}" is, or lies in, one of this build's outputs or its cache directory, which are never copied into the image`,
    'write the output or the cache outside what the copies read, or copy another path');

/** The copy's own excludes (relative to `root`) and the host paths that are never inputs. */
function excluder(c: CopySource, skip: HostFilter): PathFilter {
  if (c.exclude.length === 0) return (_rel, abs) => skip(abs);
  const own = picomatch([...c.exclude], { dot: true });
  return (rel, abs) => own(rel) || skip(abs);
}

/**
 * Whether the copy still reads inside the context: its root (a glob's fixed prefix), or the
 * directory its single path is in, resolves there, as a listing checks. A walk record cannot tell:
 * a parent moved out and replaced by a symlink to it keeps every stat the record holds.
 */
export function copyInsideContext(c: CopySource, contextDir: string, contextReal: string): boolean {
  const root = copyRoot(c, contextDir);
  if (picomatch.scan(c.from).isGlob) return insideContextSync(contextReal, join(root, 'x'));
  return c.from === '' || insideContextSync(contextReal, root);
}

async function copyGlob(c: CopySource, contextDir: string, contextReal: string, skip: HostFilter, opts: CopyOptions): Promise<CopyResult> {
  const { glob } = picomatch.scan(c.from);
  const root = copyRoot(c, contextDir);
  if (!(await insideContext(contextReal, join(root, 'x')))) return { candidates: [], problems: [problem(c, `source "${c.from}" leads outside the context through a symlink`)] };
  if (skip(root)) return { candidates: [], problems: [ownOutput(c)] };
  const matches = picomatch(glob, { dot: true });
  const walked = withoutEmptiedDirs(await walkTree(root, excluder(c, skip), walkOptions(opts)), skip);
  const chosen = new Set(walked.filter((e) => matches(e.rel)).map((e) => e.rel));
  const under = (rel: string) => rel.split('/').some((_, i, parts) => chosen.has(parts.slice(0, i + 1).join('/')));
  // A name that is not UTF-8 is matched as read (U+FFFD for its bad bytes, which a wildcard
  // matches): refused if it matches, left out like any other name if it does not. A directory
  // so named is refused wherever the glob looks, as what it holds cannot be listed to match.
  const matched = walked.filter((e) => under(e.rel) || e.undecodableDir === true);
  if (matched.length === 0) return { candidates: [], problems: [problem(c, `glob "${c.from}" matches nothing in the context`, 'check the pattern, or remove the entry')] };
  // The directories between the glob's base and its matches come too, as a directory copy's do,
  // with the copy's owner and dirMode: left as implied parents, they were root's and 0755 whatever
  // the copy said (an app owning its files could not write beside them).
  const holders = new Set<string>();
  for (const e of matched) for (let cut = e.rel.lastIndexOf('/'); cut > 0; cut = e.rel.lastIndexOf('/', cut - 1)) holders.add(e.rel.slice(0, cut));
  const kept = new Set(matched);
  return collect(c, walked.filter((e) => kept.has(e) || holders.has(e.rel)), imageJoiner(c.to));
}

/**
 * Drop directories left empty only because they held our own outputs (the `out/` of `./out/app`),
 * so a build's result never depends on whether an earlier build already made them.
 */
function withoutEmptiedDirs(walked: WalkedEntry[], skip: HostFilter): WalkedEntry[] {
  if (!skip.holdsExcluded) return walked;
  const holders = new Set<string>();
  for (const e of walked) if (e.type === EntryType.Dir && skip.holdsExcluded(e.abs)) holders.add(e.rel);
  if (holders.size === 0) return walked;
  const parentOf = (rel: string) => rel.slice(0, Math.max(0, rel.lastIndexOf('/')));
  const kept = new Set(walked.filter((e) => !holders.has(e.rel)).map((e) => e.rel));
  // Deepest first, so a holder emptied by dropping its child holder is dropped too (build/out/app).
  const byDepth = [...holders].sort((a, b) => b.split('/').length - a.split('/').length);
  const children = new Map<string, number>();
  for (const rel of kept) children.set(parentOf(rel), (children.get(parentOf(rel)) ?? 0) + 1);
  for (const rel of byDepth) {
    if ((children.get(rel) ?? 0) === 0) continue;
    kept.add(rel);
    children.set(parentOf(rel), (children.get(parentOf(rel)) ?? 0) + 1);
  }
  return walked.filter((e) => kept.has(e.rel));
}

/** Where a copy's files are found: the directory its walk starts at (a glob's fixed prefix), or the file itself. */
export function copyRoot(c: CopySource, contextDir: string): string {
  const { base, isGlob } = picomatch.scan(c.from);
  if (isGlob) return join(contextDir, base);
  return c.from === '' ? contextDir : join(contextDir, c.from);
}

/**
 * Whether this copy's walk lists `abs` when it exists: under the copy's root, and neither it nor
 * a directory above it excluded (the walk prunes an excluded directory whole). A glob picks among
 * what it walks, so a file it did not pick says nothing: it covers nothing here.
 */
export function walkCovers(c: CopySource, contextDir: string, skip: HostFilter): (abs: string) => boolean {
  if (picomatch.scan(c.from).isGlob) return () => false;
  const root = copyRoot(c, contextDir);
  const prefix = root.endsWith(sep) ? root : root + sep;
  const excluded = excluder(c, skip);
  return (abs) => {
    if (abs === root) return true;
    if (!abs.startsWith(prefix)) return false;
    const rel = abs.slice(prefix.length);
    for (let cut = rel.indexOf('/'); ; cut = rel.indexOf('/', cut + 1)) {
      const part = cut === -1 ? rel : rel.slice(0, cut);
      if (excluded(part, prefix + part)) return false;
      if (cut === -1) return true;
    }
  };
}

/** A directory copy whose entries can be listed in their final order, as they are walked (see `listCopyInOrder`). */
export interface OrderedCopy {
  copy: CopySource;
  root: string;
  rootStat: Stats;
}

/** Where a copy that is not a glob reads from: its root, if that is inside the context, and the root's lstat if it exists. */
interface Located {
  root: string;
  outside: boolean;
  st: Stats | undefined;
}

async function locate(c: CopySource, contextDir: string, contextReal: string): Promise<Located> {
  const root = copyRoot(c, contextDir);
  if (c.from !== '' && !(await insideContext(contextReal, root))) return { root, outside: true, st: undefined };
  // The context itself is followed: a spec in a symlinked folder copies that folder's contents, not the link.
  return { root, outside: false, st: await (c.from === '' ? stat : lstat)(root).catch(() => undefined) };
}

/**
 * The copy as an OrderedCopy when it is a plain directory copy: no glob, inside the context,
 * present, a directory, and holding none of our outputs (whose emptied parents only a whole walk
 * can tell). Anything else, problems included, is left to `resolveCopy`.
 */
export async function orderedCopy(c: CopySource, contextDir: string, contextReal: string, skip: HostFilter): Promise<OrderedCopy | undefined> {
  if (picomatch.scan(c.from).isGlob) return undefined;
  const { root, st } = await locate(c, contextDir, contextReal);
  return st?.isDirectory() && !skip(root) && !skip.holdsExcluded?.(root) ? { copy: c, root, rootStat: st } : undefined;
}

/**
 * The candidates of an OrderedCopy, a directory's batch at a time, in the order `mergeCandidates`
 * would sort them (bytewise by image path: they share the copy's destination as a prefix).
 * Diagnostics (special files) come in the batches too.
 */
export function* listCopyInOrder({ copy: c, root, rootStat }: OrderedCopy, skip: HostFilter, walk: WalkOptions = {}): Generator<(Candidate | Diagnostic)[]> {
  const destOf = imageJoiner(c.to);
  if (c.to !== '/') yield [toCandidate(c, walkedEntry('', root, rootStat), destOf(''))];
  for (const batch of walkSorted(root, excluder(c, skip), walk)) yield batch.map((e) => toCandidate(c, e, destOf(e.rel)));
}

const walkOptions = ({ witness, statFiles }: CopyOptions): WalkOptions => ({ ...(witness ? { beforeListing: (dirAbs: string) => witness.before(dirAbs) } : {}), ...(statFiles === undefined ? {} : { statFiles }) });

export async function resolveCopy(c: CopySource, contextDir: string, contextReal: string, skip: HostFilter = () => false, opts: CopyOptions = {}): Promise<CopyResult> {
  if (picomatch.scan(c.from).isGlob) return copyGlob(c, contextDir, contextReal, skip, opts);
  const { root: abs, outside, st } = await locate(c, contextDir, contextReal);
  if (outside) {
    return { candidates: [], problems: [problem(c, `source "${c.from}" leads outside the context through a symlink`, 'symlinks are stored as links, never followed out of the context')] };
  }
  // Before the missing check: a first build, whose output is not written yet, is refused as the next one is.
  if (skip(abs)) return { candidates: [], problems: [ownOutput(c)] };
  if (!st) return { candidates: [], problems: [await missing(c, contextDir)] };
  if (st.isDirectory()) {
    const walked = withoutEmptiedDirs(await walkTree(abs, excluder(c, skip), walkOptions(opts)), skip);
    return collect(c, c.to === '/' ? walked : [walkedEntry('', abs, st), ...walked], imageJoiner(c.to));
  }
  const dest = c.toDir ? joinImage(c.to, basename(abs)) : imageRel(c.to);
  if (st.isSymbolicLink()) opts.witness?.unstampable();
  return collect(c, [walkedEntry(basename(abs), abs, st)], () => dest);
}
