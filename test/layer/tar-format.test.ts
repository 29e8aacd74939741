/**
 * Our tar header encoder against tar-stream's pack, byte for byte: the layer writer's output
 * (and so every layer digest) must not depend on which of the two wrote it.
 */
import tar from 'tar-stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { encodeTarHeader, END_OF_ARCHIVE, paddingFor, type TarHeader } from '../../src/layer/tar-format.js';

const dir = (name: string): TarHeader => ({ name, mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0, type: 'directory' });
const file = (name: string, size: number, extra: Partial<TarHeader> = {}): TarHeader => ({ name, mode: 0o644, uid: 0, gid: 0, size, mtime: 1_700_000_000, type: 'file', ...extra });
const link = (name: string, linkname: string): TarHeader => ({ name, mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, type: 'symlink', linkname });

const deep = Array.from({ length: 12 }, (_, i) => `segment-number-${i}`).join('/');
const headers: TarHeader[] = [
  dir('usr/'),
  file('usr/bin/tool', 5, { mode: 0o4755, uid: 1000, gid: 1000 }),
  file('zero-mode', 0, { mode: 0 }),
  file(`${'n'.repeat(100)}`, 1),
  file(`a/${'p'.repeat(150)}/${'n'.repeat(99)}`, 2),
  file(`${deep}/${deep}/file.js`, 3),
  file('x'.repeat(101), 4),
  file('café/naïve.txt', 6),
  file('emoji-😀', 1),
  file('big-ids', 1, { uid: 0o7777777 + 5, gid: 2 ** 21, pax: { uid: String(0o7777777 + 5), gid: String(2 ** 21) } }),
  file('huge', 0o77777777777 + 1),
  link('lib/short', '../target'),
  link('lib/long', `../${'t'.repeat(120)}`),
  link('lib/unicode', 'zielé'),
  file('sticky-dir-file', 9, { mode: 0o1777, mtime: 2 ** 31 - 1 }),
  // Headers that differ from one another in one shared field only.
  file('owned-a', 1, { uid: 1 }),
  file('owned-b', 1, { uid: 2 }),
  file('owned-c', 1, { uid: 2, gid: 3 }),
  file('later', 1, { uid: 2, gid: 3, mtime: 5 }),
  dir('later-dir/'),
];

describe('tar header encoding', () => {
  it.each(headers.map((h) => [h.name.slice(0, 40), h] as const))('matches tar-stream for %s', async (_name, h) => {
    const body = Buffer.alloc(h.type === 'file' ? Math.min(h.size, 16) : 0, 0x61);
    const pack = tar.pack();
    const done = buffer(pack);
    const header = { ...h, mode: h.mode | (h.type === 'directory' ? 0o40000 : h.type === 'symlink' ? 0o120000 : 0o100000), size: body.length, mtime: new Date(h.mtime * 1000), uname: '', gname: '', devmajor: 0, devminor: 0 };
    pack.entry(header, body);
    pack.finalize();
    const theirs = await done;
    const ours = Buffer.concat([encodeTarHeader({ ...h, size: body.length }), body, Buffer.alloc(paddingFor(body.length)), END_OF_ARCHIVE]);
    expect(ours.toString('hex')).toBe(theirs.toString('hex'));
  });

  it('gives the same bytes whatever was encoded before it (more owner and mode combinations than are kept pre-encoded)', () => {
    const many = [...headers, ...Array.from({ length: 20 }, (_, i) => file(`f${i}`, i * 1000, { mode: 0o600 + (i % 4), uid: i }))];
    const forward = many.map((h) => Buffer.from(encodeTarHeader(h)).toString('hex'));
    const backward = [...many].reverse().map((h) => Buffer.from(encodeTarHeader(h)).toString('hex')).reverse();
    expect(backward).toEqual(forward);
  });

  it('writes sizes beyond 11 octal digits in base-256, as tar-stream does', () => {
    const h = encodeTarHeader(file('huge', 2 ** 40));
    expect(h[124]).toBe(0x80);
    expect(h.readUIntBE(130, 6)).toBe(2 ** 40);
    expect(h.subarray(125, 130).every((b) => b === 0)).toBe(true);
  });

  it('pads bodies to whole blocks', () => {
    expect([0, 1, 511, 512, 513].map(paddingFor)).toEqual([0, 511, 1, 0, 511]);
  });
});
