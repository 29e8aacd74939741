import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { imageJoiner, walkCovers } from '../../src/plan/resolve-copy.js';
import type { CopySource } from '../../src/spec/normalized.js';
import { EntryType, lstatOrUndefined, walkSorted, walkTree } from '../../src/plan/walk.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imgbuild-walk-'));
  mkdirSync(join(dir, 'a/b'), { recursive: true });
  writeFileSync(join(dir, 'a/b/f.txt'), 'hello');
  writeFileSync(join(dir, 'top'), 'x');
  symlinkSync('top', join(dir, 'a/ln'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('walkTree', () => {
  it('gives each entry its plain-number lstat fields, and the filter the joined path', async () => {
    for (const root of [dir, `${dir}/`, `${dir}//`]) {
      const seen: [string, string][] = [];
      const walked = await walkTree(root, (rel, abs) => {
        seen.push([rel, abs]);
        return rel === 'a/b';
      });
      for (const [rel, abs] of seen) expect(abs).toBe(join(root, rel));
      const byRel = new Map(walked.map((e) => [e.rel, e]));
      expect([...byRel.keys()].sort()).toEqual(['a', 'a/ln', 'top']);
      // Entries right under the root keep the root as given; deeper ones are joined.
      expect(byRel.get('top')!.abs).toBe(`${root}/top`);
      expect(byRel.get('a/ln')!.abs).toBe(`${join(root, 'a')}/ln`);
      expect(byRel.get('a')!.type).toBe(EntryType.Dir);
      expect(byRel.get('a/ln')!.type).toBe(EntryType.Symlink);
      const top = byRel.get('top')!;
      const st = lstatSync(join(dir, 'top'));
      expect(top).toMatchObject({ type: EntryType.File, exec: false, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, dev: st.dev });
    }
  });
});

describe('lstatOrUndefined', () => {
  // A directory replaced by a file between its listing and the lstat of a name in it: its names are gone.
  it('takes a path whose directory is now a file as gone, as it does a removed one', () => {
    expect(lstatOrUndefined(join(dir, 'a/b/f.txt'))!.isFile()).toBe(true);
    expect(lstatOrUndefined(join(dir, 'a/b/gone.txt'))).toBeUndefined();
    expect(lstatOrUndefined(join(dir, 'top/f.txt'))).toBeUndefined();
  });
});

describe('walkSorted', () => {
  // Names whose order trips a naive walk: siblings that sort between a directory and its contents
  // ("d-x", "d.js" before "d/a"), and names whose UTF-16 order is not their UTF-8 order.
  const names = ['d/a', 'd/b/c', 'd-x', 'd.js', 'd0', 'D', 'é/f', '\uE000', '\u{1D4B3}/g', 'z/skip/deep', 'z/keep'];

  it('lists what walkTree lists, bytewise by path, a directory at a time, with the same pruning', async () => {
    for (const n of names) {
      mkdirSync(join(dir, n, '..'), { recursive: true });
      writeFileSync(join(dir, n), n);
    }
    const excluded = (rel: string) => rel === 'z/skip';
    const byPath = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
    const expected = (await walkTree(dir, excluded)).map((e) => e.rel).sort(byPath);
    const batches = [...walkSorted(dir, excluded)];
    expect(batches.flat().map((e) => e.rel)).toEqual(expected);
    expect(expected).toContain('\u{1D4B3}/g');
    expect(expected).not.toContain('z/skip/deep');
    // Entries keep their lstat fields and absolute paths as walkTree gives them.
    const tree = new Map((await walkTree(dir, excluded)).map((e) => [e.rel, e]));
    for (const e of batches.flat()) expect(e).toEqual(tree.get(e.rel));
    // A batch never crosses into a directory's contents.
    for (const batch of batches) expect(new Set(batch.map((e) => e.rel.split('/').slice(0, -1).join('/'))).size).toBe(1);
  });

  it('lists nothing below a root that is gone', () => {
    expect([...walkSorted(join(dir, 'missing'), () => false)]).toEqual([]);
  });
});

describe('imageJoiner', () => {
  it('joins exactly as posix.join with the leading slashes dropped', () => {
    const tos = ['/', '/app', '/app/', '/app/./x/', '/app/../srv', '//double//', '/a/b/c/..', '', 'rel/dir', '/x y/ü'];
    const rels = ['', 'f', 'a/b/c', '...', '.hidden', 'x y/z', 'ü/ß', 'a\\b'];
    for (const to of tos) {
      const j = imageJoiner(to);
      for (const rel of rels) expect(j(rel), `${to} + ${rel}`).toBe(posix.join(to, rel).replace(/^\/+/, ''));
    }
  });
});

describe('walkCovers', () => {
  const copy = (from: string, exclude: string[] = []): CopySource => ({ from, to: '/app/', toDir: true, exclude, fileMode: undefined, dirMode: 0o755, owner: { uid: 0, gid: 0 }, at: { file: 'image.yaml', line: 1, col: 1 } });
  const noHost = () => false;

  it('covers what the walk of a copy lists: under its root, nothing above it excluded', async () => {
    const walked = await walkTree(join(dir, 'a'), () => false);
    const covers = walkCovers(copy('a'), dir, noHost);
    for (const e of walked) expect(covers(e.abs), e.rel).toBe(true);
    expect(covers(join(dir, 'a'))).toBe(true);
    expect(covers(join(dir, 'top'))).toBe(false);
    expect(covers(join(dir, 'ab/x'))).toBe(false);

    const some = walkCovers(copy('a', ['b', '*.md']), dir, noHost);
    expect(some(join(dir, 'a/b/f.txt'))).toBe(false);
    expect(some(join(dir, 'a/b'))).toBe(false);
    expect(some(join(dir, 'a/README.md'))).toBe(false);
    expect(some(join(dir, 'a/ln'))).toBe(true);
    expect(walkCovers(copy('a'), dir, (abs) => abs === join(dir, 'a/b'))(join(dir, 'a/b/f.txt'))).toBe(false);
  });

  it('covers a copied file itself, the whole context for "", and nothing for a glob', () => {
    expect(walkCovers(copy('top'), dir, noHost)(join(dir, 'top'))).toBe(true);
    expect(walkCovers(copy('top'), dir, noHost)(join(dir, 'top2'))).toBe(false);
    expect(walkCovers(copy(''), dir, noHost)(join(dir, 'a/b/f.txt'))).toBe(true);
    expect(walkCovers(copy('a/**/*.txt'), dir, noHost)(join(dir, 'a/b/f.txt'))).toBe(false);
  });
});
