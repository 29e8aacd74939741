import { describe, expect, it } from 'vitest';
import { Strength, type Candidate } from '../../src/plan/candidates.js';
import { mergeCandidates } from '../../src/plan/merge.js';

const at = { file: 'image.yaml', line: 1, col: 1 };
const file = (path: string): Candidate => ({ kind: 'inline', path, content: '', mode: 0o644, uid: 0, gid: 0, origin: at, strength: Strength.Explicit });

describe('merge order', () => {
  it('sorts bytewise as UTF-8, even where UTF-16 order differs', () => {
    // U+FF21 is EF BC A1 in UTF-8 and sorts before U+1F600 (F0 ...); in UTF-16, FF21 > D83D.
    const paths = mergeCandidates([file('d/\u{1F600}'), file('d/\uFF21'), file('d/b'), file('d-x'), file('d/a')]).entries.map((e) => e.path);
    expect(paths).toEqual(['d', 'd-x', 'd/a', 'd/b', 'd/\uFF21', 'd/\u{1F600}']);
  });

  it('sorts plain paths with parents first', () => {
    const paths = mergeCandidates([file('a/b/c'), file('a-b'), file('a/b-c')]).entries.map((e) => e.path);
    expect(paths).toEqual(['a', 'a-b', 'a/b', 'a/b-c', 'a/b/c']);
  });
});

describe('implied parents', () => {
  const link = (path: string): Candidate => ({ kind: 'symlink', path, target: 'x', mode: 0o777, uid: 0, gid: 0, origin: at, strength: Strength.Explicit });

  it('adds each missing parent once for a run of siblings, and keeps explicit ones', () => {
    const dir: Candidate = { kind: 'dir', path: 'a/b', mode: 0o700, uid: 1, gid: 1, origin: at, strength: Strength.Explicit };
    const { entries, problems } = mergeCandidates([file('a/b/x'), file('a/b/y'), dir, file('a/b/z'), file('a/c/x'), file('a/c/y'), file('q')]);
    expect(problems).toEqual([]);
    expect(entries.map((e) => `${e.path}:${e.strength}`)).toEqual(['a:0', 'a/b:2', 'a/b/x:2', 'a/b/y:2', 'a/b/z:2', 'a/c:0', 'a/c/x:2', 'a/c/y:2', 'q:2']);
  });

  it('reports every child of a parent that is not a directory', () => {
    const { problems } = mergeCandidates([link('l'), file('l/x'), file('l/y'), file('l/z')]);
    expect(problems.map((p) => p.message)).toEqual(['/l/x needs /l to be a directory', '/l/y needs /l to be a directory', '/l/z needs /l to be a directory']);
    expect(problems[0]!.hint).toBe(`line ${at.line} makes /l a symlink`);
  });

  it('names a file written inline a file in its hint', () => {
    const inline: Candidate = { kind: 'inline', path: 'f', content: '', mode: 0o644, uid: 0, gid: 0, origin: at, strength: Strength.Explicit };
    expect(mergeCandidates([inline, file('f/x')]).problems.map((p) => p.hint)).toEqual([`line ${at.line} makes /f a file`]);
  });
});
