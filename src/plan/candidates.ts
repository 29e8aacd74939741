/**
 * What a layer's spec entries turn into before they are merged: candidate tar entries, each
 * remembering the spec entry it came from (for conflict messages) and how strongly it was
 * asked for (an explicit `dirs:` entry beats a directory met in a copied tree, which beats a
 * parent directory implied by a path below it).
 */
import type { SourcePosition } from '../errors.js';
import type { FileStat } from '../store/file-digests.js';

export const enum Strength {
  Implied = 0,
  Tree = 1,
  Explicit = 2,
}

interface CandidateBase {
  /** Image path without the leading "/". */
  path: string;
  mode: number;
  uid: number;
  gid: number;
  origin: SourcePosition;
  strength: Strength;
}

export type Candidate =
  | (CandidateBase & { kind: 'file'; abs: string; st: FileStat })
  | (CandidateBase & { kind: 'inline'; content: string })
  /** `destination`: a directory copy's own `to`, which keeps what a lower layer of ours made of it (parents.ts). */
  | (CandidateBase & { kind: 'dir'; destination?: true })
  | (CandidateBase & { kind: 'symlink'; target: string })
  | (CandidateBase & { kind: 'whiteout' });
