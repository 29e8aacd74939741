/**
 * Merging a layer's candidates into its final entry list: one entry per path (two entries
 * writing one path is an error naming both places; directories merge, the most explicit
 * winning), every parent directory present, and the whole sorted bytewise by path, which is
 * the order the tar is written in.
 */
import type { Diagnostic } from '../errors.js';
import { Strength, type Candidate } from './candidates.js';

export interface Merged {
  entries: Candidate[];
  problems: Diagnostic[];
}

const implied = (path: string, from: Candidate): Candidate => ({
  kind: 'dir',
  path,
  mode: 0o755,
  uid: 0,
  gid: 0,
  origin: from.origin,
  strength: Strength.Implied,
});

function conflict(c: Candidate, other: Candidate, what: string): Diagnostic {
  const hint = `line ${other.origin.line} ${what}; each path may come from one entry of a layer`;
  return { position: c.origin, message: `/${c.path} is written twice in this layer`, hint, pointer: '' };
}

function add(byPath: Map<string, Candidate>, c: Candidate, problems: Diagnostic[]): void {
  const prev = byPath.get(c.path);
  if (!prev) return void byPath.set(c.path, c);
  if (prev.kind === 'dir' && c.kind === 'dir') {
    if (c.strength > prev.strength) byPath.set(c.path, c);
    return;
  }
  problems.push(conflict(c, prev, prev.kind === 'whiteout' ? 'removes it' : 'writes it'));
}

function addParents(byPath: Map<string, Candidate>, problems: Diagnostic[]): void {
  // The last parent found to be a directory: its siblings (met one after another) skip the lookup.
  let settled = '';
  for (const c of [...byPath.values()]) {
    const first = c.path.lastIndexOf('/');
    if (first > 0 && first === settled.length && c.path.startsWith(settled)) continue;
    // Walk up until a parent exists: its own parents are (or will be) added when it is handled.
    for (let cut = first; cut > 0; cut = c.path.lastIndexOf('/', cut - 1)) {
      const parent = c.path.slice(0, cut);
      const existing = byPath.get(parent);
      if (!existing) {
        byPath.set(parent, implied(parent, c));
        if (cut === first) settled = parent;
        continue;
      }
      if (existing.kind !== 'dir') {
        problems.push({ position: c.origin, message: `/${c.path} needs /${parent} to be a directory`, hint: `line ${existing.origin.line} makes /${parent} a ${existing.kind}`, pointer: '' });
      } else if (cut === first) {
        settled = parent;
      }
      break;
    }
  }
}

export function bytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

// UTF-16 code-unit order equals UTF-8 byte order unless a surrogate meets a code unit above it.
const OUT_OF_ORDER = /[\uD800-\uFFFF]/;

/** Sort by path, bytewise as UTF-8, cheaply in the common case where code-unit order is the same. */
function sortByPath(entries: Candidate[]): Candidate[] {
  if (entries.some((e) => OUT_OF_ORDER.test(e.path))) return entries.sort((a, b) => bytewise(a.path, b.path));
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export function mergeCandidates(candidates: readonly Candidate[]): Merged {
  const byPath = new Map<string, Candidate>();
  const problems: Diagnostic[] = [];
  for (const c of candidates) if (c.path !== '') add(byPath, c, problems);
  addParents(byPath, problems);
  const entries = sortByPath([...byPath.values()]);
  return { entries, problems };
}
