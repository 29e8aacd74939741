/**
 * Merging a layer's candidates into its final entry list: one entry per path (two entries
 * writing one path is an error naming both places; directories merge, the most explicit
 * winning), every parent directory present, and the whole sorted bytewise by path, which is
 * the order the tar is written in.
 */
import type { Diagnostic } from '../errors.js';
import { Strength, type Candidate } from './candidates.js';
import { sortBytewise } from './path-order.js';

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
    // A copy's own destination leaves the directory as it is; a directory a copied tree brings
    // says what it is to be, whichever copy comes first (COPY of both gives the tree's).
    if (c.strength > prev.strength || (c.strength === prev.strength && prev.destination && !c.destination)) byPath.set(c.path, c);
    return;
  }
  problems.push(conflict(c, prev, prev.kind === 'whiteout' ? 'removes it' : 'writes it'));
}

function addParents(byPath: Map<string, Candidate>, problems: Diagnostic[]): void {
  // The last parent found to be a directory: its siblings (met one after another) skip the lookup.
  let settled = '';
  for (const c of [...byPath.values()]) {
    // A whiteout deletes from the layers below: it needs no parent of its own, and one made for
    // it would add the directory (/var/log for a remove of a log that never was) or bring back
    // one a lower layer removed. (A runtime may still make that directory to apply the whiteout:
    // containerd's unpacker, like Docker's, creates a missing one empty; umoci does nothing.)
    if (c.kind === 'whiteout') continue;
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
        const what = existing.kind === 'whiteout' ? 'removes it' : `makes /${parent} a ${existing.kind === 'symlink' ? 'symlink' : 'file'}`;
        problems.push({ position: c.origin, message: `/${c.path} needs /${parent} to be a directory`, hint: `line ${existing.origin.line} ${what}`, pointer: '' });
      } else if (cut === first) {
        settled = parent;
      }
      break;
    }
  }
}

export function mergeCandidates(candidates: readonly Candidate[]): Merged {
  const byPath = new Map<string, Candidate>();
  const problems: Diagnostic[] = [];
  for (const c of candidates) if (c.path !== '') add(byPath, c, problems);
  addParents(byPath, problems);
  const entries = sortBytewise([...byPath.values()], (c) => c.path);
  return { entries, problems };
}
