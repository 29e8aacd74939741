import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { sha256 } from '../../src/image/digest.js';
import { describe, expect, it } from 'vitest';
import { checkLayerEntries, shapeAfter } from '../../src/image/layer-check.js';
import { MediaType } from '../../src/image/media-types.js';
import { packTar, type TarEntry } from '../helpers/tar.js';

type Entry = TarEntry;

const check = async (entries: Entry[]) => checkLayerEntries(Readable.from([gzipSync(await packTar(entries))]), MediaType.ociLayerGzip, 'base layer x');

describe('base layer check', () => {
  it('accepts an ordinary layer, absolute symlink targets included', async () => {
    await expect(check([{ name: './etc/', type: 'directory' }, { name: './etc/os-release', body: 'x' }, { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' }])).resolves.toMatchObject({ links: [["bin/sh", "/bin/busybox"]], dirs: [{ path: 'etc' }] });
    await expect(check([{ name: 'etc/.wh..wh..opq' }, { name: 'etc/.wh.old.conf' }, { name: 'a..b/c' }])).resolves.toMatchObject({ emptied: ["etc"], removed: ["etc/old.conf"] });
  });

  it.each([
    [[{ name: '../../etc/evil' }], /hostile entry "..\/..\/etc\/evil" \(a path climbing with ".."\)/],
    [[{ name: '/abs/evil' }], /"\/abs\/evil" \(an absolute path\)/],
    [[{ name: 'h', type: 'link', linkname: '../outside' }], /"h" \(a path climbing/],
    [[{ name: 'lnk', type: 'symlink', linkname: '/etc' }, { name: 'lnk/passwd' }], /"lnk\/passwd" \(written through the symlink lnk\)/],
    [[{ name: 'evil', type: 'symlink', linkname: '/' }, { name: 'pw', type: 'link', linkname: 'evil/etc/shadow' }], /"pw" \(written through the symlink evil\)/],
    // The same symlink spelled another way is the same path.
    [[{ name: 'a/./l', type: 'symlink', linkname: '/etc' }, { name: 'a/l/x' }], /"a\/l\/x" \(written through the symlink a\/l\)/],
    [[{ name: 'a//l', type: 'symlink', linkname: '/etc' }, { name: './a/l/x' }], /"\.\/a\/l\/x" \(written through the symlink a\/l\)/],
    // A whiteout deletes the rest of its name: the directory above, or the one it is in.
    [[{ name: '.wh...' }], /"\.wh\.\.\." \(a whiteout of "\.\."\)/],
    [[{ name: 'etc/.wh..' }], /"etc\/\.wh\.\." \(a whiteout of "\."\)/],
    // A directory entry's name ends in "/": the whiteout is the part before it.
    [[{ name: 'x/.wh.../', type: 'directory' }], /"x\/\.wh\.\.\.\/" \(a whiteout of "\.\."\)/],
    [[{ name: '.wh..//', type: 'directory' }], /"\.wh\.\.\/\/" \(a whiteout of "\."\)/],
  ] as [Entry[], RegExp][])('refuses %j', async (entries, message) => {
    await expect(check(entries)).rejects.toMatchObject({ kind: 'build', message: expect.stringMatching(message) });
  });

  it('checks the tar against the diff_id its image gives, and calls a damaged layer damaged', async () => {
    const tarBytes = await packTar([{ name: 'etc/os-release', body: 'x' }]);
    const run = (bytes: Buffer, diffId = sha256(tarBytes)) => checkLayerEntries(Readable.from([bytes]), MediaType.ociLayerGzip, 'base layer x', diffId);
    await expect(run(gzipSync(tarBytes))).resolves.toBeDefined();
    await expect(run(gzipSync(tarBytes), sha256('other'))).rejects.toMatchObject({ kind: 'build', message: expect.stringMatching(/^base layer x does not match its image's config: its tar hashes to sha256:\w+, the config's diff_id is sha256:/) });
    // A tar cut inside its body, and a gzip stream with garbage in it.
    await expect(run(gzipSync(tarBytes.subarray(0, 515)))).rejects.toMatchObject({ kind: 'build', message: expect.stringMatching(/^base layer x is damaged: /) });
    const bad = gzipSync(tarBytes);
    bad.fill(0xff, 10, 40);
    await expect(run(bad)).rejects.toMatchObject({ kind: 'build', message: expect.stringMatching(/^base layer x is damaged: /) });
  });
});

describe('shapeAfter', () => {
  type Layer = Parameters<typeof shapeAfter>[0][number];
  const layer = ({ dirs = [], ...l }: Partial<Omit<Layer, 'dirs'>> & { dirs?: string[] }): Layer => ({ links: [], removed: [], emptied: [], ...l, dirs: dirs.map((path) => ({ path, mode: 0o755, uid: 0, gid: 0 })) });
  it('keeps the links the layers leave: a later directory, whiteout or opaque directory takes one away', () => {
    const { links } = shapeAfter([
      layer({ links: [['bin', 'usr/bin'], ['lib', '/usr/lib'], ['opt/a/l', 'x'], ['sbin', 'usr/sbin'], ['etc/alt', '/x']] }),
      layer({ dirs: ['sbin'], removed: ['lib'], emptied: ['opt'], links: [['etc/alt', '/y']] }),
    ]);
    expect([...links]).toEqual([['bin', 'usr/bin'], ['etc/alt', '/y']]);
  });

  it('keeps the directories the layers leave: a whiteout, an opaque directory above or a link takes one away, with what is below it', () => {
    const { dirs } = shapeAfter([
      layer({ dirs: ['etc', 'etc/ssl', 'opt', 'opt/a', 'var', 'var/log', 'srv', 'srv/x'] }),
      layer({ removed: ['var'], emptied: ['opt'], links: [['srv', 'data']], dirs: ['usr'] }),
    ]);
    expect([...dirs.keys()].sort()).toEqual(['etc', 'etc/ssl', 'opt', 'usr']);
  });

  it('takes a hard link to a symlink for a symlink with the same target', async () => {
    expect(await check([{ name: 'lnk', type: 'symlink', linkname: 'usr/bin' }, { name: 'bin', type: 'link', linkname: 'lnk' }])).toMatchObject({ links: [['lnk', 'usr/bin'], ['bin', 'usr/bin']] });
  });

  it('reads what a layer does to links from its tar', async () => {
    expect(await check([{ name: 'bin', type: 'symlink', linkname: 'usr/bin' }, { name: 'usr/', type: 'directory' }, { name: 'x/.wh.lib' }, { name: 'opt/.wh..wh..opq' }])).toEqual({
      links: [['bin', 'usr/bin']],
      dirs: [{ path: 'usr', mode: 0o755, uid: 0, gid: 0 }],
      removed: ['x/lib'],
      emptied: ['opt'],
    });
  });
});

describe('a base layer\'s directories', () => {
  it('are read with their mode (sticky bit included) and owner, and the last layer to write one says what it is', async () => {
    const found = await check([{ name: 'tmp/', type: 'directory', mode: 0o1777 }, { name: 'home/app/', type: 'directory', mode: 0o700, uid: 1000, gid: 1001 }]);
    expect(found.dirs).toEqual([{ path: 'tmp', mode: 0o1777, uid: 0, gid: 0 }, { path: 'home/app', mode: 0o700, uid: 1000, gid: 1001 }]);
    const again = await check([{ name: 'tmp/', type: 'directory', mode: 0o755 }]);
    expect(shapeAfter([found, again]).dirs).toEqual(new Map([['tmp', { mode: 0o755, uid: 0, gid: 0 }], ['home/app', { mode: 0o700, uid: 1000, gid: 1001 }]]));
  });
});
