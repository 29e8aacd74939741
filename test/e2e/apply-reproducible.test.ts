/**
 * DESIGN promise 1 through the CLI: the same spec and the same file contents give the same
 * manifest digest however the context tree came to be. Two copies of one tree are made in two
 * temp dirs that differ in everything but content (mtimes, umask-derived permission bits on
 * non-executable files, owners, creation order, hard-link layout) and built with different
 * cache dirs: one digest. `--jobs 1` and `--jobs 4` agree too; SOURCE_DATE_EPOCH, which the
 * design says sets every mtime and `created`, changes it.
 */
import { chmod, chown, link, mkdir, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyOk, TempDirs, writeSpec } from '../helpers/imgbuild.js';

const temps = new TempDirs();
afterAll(() => temps.cleanup());

/** The tree's contents: relative path -> [body, executable]. */
const FILES: [string, string, boolean][] = [
  ['bin/tool', '#!/bin/sh\necho tool\n', true],
  ['lib/a.js', 'export const a = 1;\n', false],
  ['lib/b.js', 'export const b = 2;\n', false],
  ['lib/dup-1.txt', 'same bytes in three files\n', false],
  ['lib/dup-2.txt', 'same bytes in three files\n', false],
  ['lib/deep/er/c.json', '{"c": 3}\n', false],
  ['share/big.bin', 'x'.repeat(300_000), false],
  ['share/empty', '', false],
  ['Z-upper', 'sorts before lower case\n', false],
  ['z-lower', 'bytewise order\n', false],
];

interface Variant {
  order: 'forward' | 'reverse';
  /** Permission bits a umask leaves on non-executable files and dirs. */
  fileMode: number;
  dirMode: number;
  owner: [number, number];
  mtime: number;
  /** Make lib/dup-2.txt a hard link of lib/dup-1.txt rather than a copy. */
  hardLinks: boolean;
}

async function makeContext(root: string, v: Variant): Promise<void> {
  const files = v.order === 'forward' ? FILES : [...FILES].reverse();
  for (const [rel, body, exec] of files) {
    const abs = join(root, rel);
    await mkdir(dirname(abs), { recursive: true, mode: v.dirMode });
    if (v.hardLinks && rel === 'lib/dup-2.txt') {
      await writeFile(join(root, 'lib/dup-1.txt'), FILES.find(([p]) => p === 'lib/dup-1.txt')![1]);
      await link(join(root, 'lib/dup-1.txt'), abs);
    } else if (!(v.hardLinks && rel === 'lib/dup-1.txt' && v.order === 'reverse')) {
      await writeFile(abs, body);
    }
    await chmod(abs, exec ? v.fileMode | 0o111 : v.fileMode);
  }
  for (const [rel] of files) {
    await chown(join(root, rel), ...v.owner);
    await utimes(join(root, rel), v.mtime, v.mtime);
  }
  for (const d of ['bin', 'lib', 'lib/deep', 'lib/deep/er', 'share']) {
    await chmod(join(root, d), v.dirMode);
    await chown(join(root, d), ...v.owner);
    await utimes(join(root, d), v.mtime, v.mtime);
  }
}

const SPEC = {
  name: 'e2e/repro',
  context: 'ctx',
  layers: [
    { name: 'bin', copy: [{ from: 'bin/', to: '/usr/local/bin/' }] },
    { name: 'lib', owner: '1000:1000', copy: [{ from: 'lib/', to: '/app/lib/' }] },
    { name: 'rest', copy: [{ from: 'share/', to: '/usr/share/repro/' }, { from: 'Z-upper', to: '/Z-upper' }, { from: 'z-lower', to: '/z-lower' }] },
  ],
  config: { entrypoint: ['/usr/local/bin/tool'] },
  output: [{ oci: './out/layout' }],
};

describe('reproducible builds through the CLI', () => {
  const dirs: string[] = [];
  beforeAll(async () => {
    const variants: Variant[] = [
      { order: 'forward', fileMode: 0o644, dirMode: 0o755, owner: [0, 0], mtime: 1_000_000_000, hardLinks: false },
      { order: 'reverse', fileMode: 0o600, dirMode: 0o700, owner: [1234, 5678], mtime: 1_700_000_123, hardLinks: true },
    ];
    for (const v of variants) {
      const dir = await temps.make();
      await makeContext(join(dir, 'ctx'), v);
      await writeSpec(dir, SPEC);
      dirs.push(dir);
    }
  });

  it('two differently made copies of one tree, with two cache dirs, give one digest', async () => {
    const [a, b] = dirs as [string, string];
    const ra = await applyOk(join(a, 'image.yaml'), join(a, 'cache'));
    const rb = await applyOk(join(b, 'image.yaml'), join(b, 'cache'));
    expect(ra.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(rb.digest).toBe(ra.digest);
    // Both built every layer from scratch: the equality is not a shared cache's doing.
    for (const r of [ra, rb]) expect(r.events.filter((e) => e.type === 'layer-done' && !e.cached)).toHaveLength(3);
  });

  it('--jobs 1 and --jobs 4 give the same digest, each from an empty cache', async () => {
    const dir = dirs[1]!;
    const one = await applyOk(join(dir, 'image.yaml'), join(dir, 'cache-j1'), ['--jobs', '1']);
    const four = await applyOk(join(dir, 'image.yaml'), join(dir, 'cache-j4'), ['--jobs', '4']);
    const reference = await applyOk(join(dirs[0]!, 'image.yaml'), join(dirs[0]!, 'cache'));
    expect(one.digest).toBe(reference.digest);
    expect(four.digest).toBe(reference.digest);
  });

  it('SOURCE_DATE_EPOCH changes the digest, and the same value gives the same digest', async () => {
    const [a, b] = dirs as [string, string];
    const plain = await applyOk(join(a, 'image.yaml'), join(a, 'cache'));
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    const dated = await applyOk(join(a, 'image.yaml'), join(a, 'cache'), [], { env });
    const datedB = await applyOk(join(b, 'image.yaml'), join(b, 'cache-epoch'), [], { env });
    expect(dated.digest).not.toBe(plain.digest);
    expect(datedB.digest).toBe(dated.digest);
  });
});
