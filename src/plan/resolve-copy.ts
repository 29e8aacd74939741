/**
 * Expanding one `copy:` entry against the context into candidate entries: a file, a symlink
 * (stored as a link, never followed), a directory's contents, or the matches of a glob (kept
 * relative to the glob's fixed prefix). Sources must stay inside the context even through
 * symlinked parent directories; anything else becomes a diagnostic at the entry.
 */
import { readlinkSync } from 'node:fs';
import { lstat, readdir, realpath } from 'node:fs/promises';
import { basename, dirname, join, posix, sep } from 'node:path';
import picomatch from 'picomatch';
import type { Diagnostic } from '../errors.js';
import type { CopySource } from '../spec/normalized.js';
import { didYouMean } from '../spec/did-you-mean.js';
import { Strength, type Candidate } from './candidates.js';
import type { HostFilter } from './host-exclusions.js';
import { walkTree, type WalkedEntry } from './walk.js';

export interface CopyResult {
  candidates: Candidate[];
  problems: Diagnostic[];
}

const problem = (c: CopySource, message: string, hint?: string): Diagnostic =>
  hint ? { position: c.at, message, hint, pointer: '' } : { position: c.at, message, pointer: '' };

const imageRel = (imagePath: string) => imagePath.replace(/^\/+/, '');
const joinImage = (dir: string, rel: string) => imageRel(posix.join(dir, rel));

/** Is what `abs` names (not following its last component, which is stored as it is) inside the context? */
async function insideContext(contextReal: string, abs: string): Promise<boolean> {
  try {
    const real = await realpath(abs === contextReal ? abs : dirname(abs));
    return real === contextReal || real.startsWith(contextReal + sep);
  } catch {
    return true; // a missing parent is reported as a missing source
  }
}

function toCandidate(c: CopySource, e: WalkedEntry, path: string): Candidate | Diagnostic {
  const base = { path, uid: c.owner.uid, gid: c.owner.gid, origin: c.at, strength: Strength.Tree };
  if (e.st.isFile()) {
    const mode = c.fileMode ?? ((e.st.mode & 0o111n) !== 0n ? 0o755 : 0o644);
    return { ...base, kind: 'file', mode, abs: e.abs, st: e.st };
  }
  if (e.st.isDirectory()) return { ...base, kind: 'dir', mode: c.dirMode };
  if (e.st.isSymbolicLink()) return { ...base, kind: 'symlink', mode: 0o777, target: readlinkSync(e.abs) };
  return problem(c, `${e.abs} is a special file (socket, pipe or device)`, 'imgbuild copies files, directories and symlinks; exclude it');
}

function collect(c: CopySource, walked: WalkedEntry[], destOf: (rel: string) => string): CopyResult {
  const out: CopyResult = { candidates: [], problems: [] };
  for (const e of walked) {
    const r = toCandidate(c, e, destOf(e.rel));
    if ('kind' in r) out.candidates.push(r);
    else out.problems.push(r);
  }
  return out;
}

async function missing(c: CopySource, contextDir: string): Promise<Diagnostic> {
  const parent = join(contextDir, dirname(c.from));
  const siblings = await readdir(parent).catch(() => [] as string[]);
  const guess = didYouMean(basename(c.from), siblings);
  const hint = guess ? `did you mean "${posix.join(posix.dirname(c.from), guess).replace(/^\.\//, '')}"?` : `paths are relative to the context, ${contextDir}`;
  return problem(c, `source "${c.from}" does not exist in the context`, hint);
}

/** The copy's own excludes (relative to `root`) and the host paths that are never inputs. */
function excluder(c: CopySource, root: string, skip: HostFilter): (rel: string) => boolean {
  const own = c.exclude.length === 0 ? () => false : picomatch([...c.exclude], { dot: true });
  return (rel) => own(rel) || skip(join(root, rel));
}

async function copyGlob(c: CopySource, contextDir: string, contextReal: string, skip: HostFilter): Promise<CopyResult> {
  const { base, glob } = picomatch.scan(c.from);
  const root = join(contextDir, base);
  if (!(await insideContext(contextReal, join(root, 'x')))) return { candidates: [], problems: [problem(c, `source "${c.from}" leads outside the context through a symlink`)] };
  const matches = picomatch(glob, { dot: true });
  const walked = withoutEmptiedDirs(await walkTree(root, excluder(c, root, skip)), skip);
  const chosen = new Set(walked.filter((e) => matches(e.rel)).map((e) => e.rel));
  const under = (rel: string) => rel.split('/').some((_, i, parts) => chosen.has(parts.slice(0, i + 1).join('/')));
  const kept = walked.filter((e) => under(e.rel));
  if (kept.length === 0) return { candidates: [], problems: [problem(c, `glob "${c.from}" matches nothing in the context`, 'check the pattern, or remove the entry')] };
  return collect(c, kept, (rel) => joinImage(c.to, rel));
}

/**
 * Drop directories left empty only because they held our own outputs (the `out/` of `./out/app`),
 * so a build's result never depends on whether an earlier build already made them.
 */
function withoutEmptiedDirs(walked: WalkedEntry[], skip: HostFilter): WalkedEntry[] {
  if (!skip.holdsExcluded) return walked;
  const parents = new Set(walked.map((e) => e.rel.slice(0, Math.max(0, e.rel.lastIndexOf('/')))));
  return walked.filter((e) => !(e.st.isDirectory() && !parents.has(e.rel) && skip.holdsExcluded!(e.abs)));
}

export async function resolveCopy(c: CopySource, contextDir: string, contextReal: string, skip: HostFilter = () => false): Promise<CopyResult> {
  if (picomatch.scan(c.from).isGlob) return copyGlob(c, contextDir, contextReal, skip);
  const abs = c.from === '' ? contextDir : join(contextDir, c.from);
  if (c.from !== '' && !(await insideContext(contextReal, abs))) {
    return { candidates: [], problems: [problem(c, `source "${c.from}" leads outside the context through a symlink`, 'symlinks are stored as links, never followed out of the context')] };
  }
  const st = await lstat(abs, { bigint: true }).catch(() => undefined);
  if (!st) return { candidates: [], problems: [await missing(c, contextDir)] };
  if (st.isDirectory()) {
    const walked = withoutEmptiedDirs(await walkTree(abs, excluder(c, abs, skip)), skip);
    const self: WalkedEntry = { rel: '', abs, st };
    return collect(c, c.to === '/' ? walked : [self, ...walked], (rel) => joinImage(c.to, rel));
  }
  const dest = c.toDir ? joinImage(c.to, basename(abs)) : imageRel(c.to);
  return collect(c, [{ rel: basename(abs), abs, st }], () => dest);
}
