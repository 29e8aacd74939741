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
  for (const c of [...byPath.values()]) {
    const parts = c.path.split('/');
    for (let i = parts.length - 1; i > 0; i--) {
      const parent = parts.slice(0, i).join('/');
      const existing = byPath.get(parent);
      if (!existing) byPath.set(parent, implied(parent, c));
      else if (existing.kind !== 'dir') {
        problems.push({ position: c.origin, message: `/${c.path} needs /${parent} to be a directory`, hint: `line ${existing.origin.line} makes /${parent} a ${existing.kind}`, pointer: '' });
        break;
      } else if (existing.strength > Strength.Implied) break; // its own parents are already there
    }
  }
}

export function bytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function mergeCandidates(candidates: readonly Candidate[]): Merged {
  const byPath = new Map<string, Candidate>();
  const problems: Diagnostic[] = [];
  for (const c of candidates) if (c.path !== '') add(byPath, c, problems);
  addParents(byPath, problems);
  const entries = [...byPath.values()].sort((a, b) => bytewise(a.path, b.path));
  return { entries, problems };
}
