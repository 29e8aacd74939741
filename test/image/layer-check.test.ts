import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { checkLayerEntries } from '../../src/image/layer-check.js';
import { MediaType } from '../../src/image/media-types.js';

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; linkname?: string; body?: string };

async function layer(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((r) => pack.on('end', r));
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', ...(e.linkname ? { linkname: e.linkname } : {}) }, e.body ?? '');
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

const check = async (entries: Entry[]) => checkLayerEntries(Readable.from([await layer(entries)]), MediaType.ociLayerGzip, 'base layer x');

describe('base layer check', () => {
  it('accepts an ordinary layer, absolute symlink targets included', async () => {
    await expect(check([{ name: './etc/', type: 'directory' }, { name: './etc/os-release', body: 'x' }, { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' }])).resolves.toBeUndefined();
  });

  it.each([
    [[{ name: '../../etc/evil' }], /hostile entry "..\/..\/etc\/evil" \(a path climbing with ".."\)/],
    [[{ name: '/abs/evil' }], /"\/abs\/evil" \(an absolute path\)/],
    [[{ name: 'h', type: 'link', linkname: '../outside' }], /"h" \(a path climbing/],
    [[{ name: 'lnk', type: 'symlink', linkname: '/etc' }, { name: 'lnk/passwd' }], /"lnk\/passwd" \(written through the symlink lnk\)/],
  ] as [Entry[], RegExp][])('refuses %j', async (entries, message) => {
    await expect(check(entries)).rejects.toMatchObject({ kind: 'build', message: expect.stringMatching(message) });
  });
});
