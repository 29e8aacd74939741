/** The stat cache's on-disk columns: a round trip keeps every value exact, and nothing else decodes. */
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { StatRecords } from '../../src/store/stat-records.js';

const stat = (i: number) => ({ size: i * 1000 + 1, mtimeMs: 1_700_000_000_123.4567 + i, ctimeMs: 1_700_000_000_987.0001 + i, ino: 2 ** 40 + i, dev: 64769 });

describe('stat records', () => {
  it('round-trip exactly, past the initial capacity, with non-ASCII paths', () => {
    const r = StatRecords.empty();
    const n = 200;
    for (let i = 0; i < n; i++) r.set(i, `/ctx/dir-${i}/fïle-${i}.js`, stat(i), sha256(`content ${i}`), 1_700_000_001_000 + i);
    r.set(7, '/ctx/dir-7/fïle-7.js', stat(70), sha256('changed'), 5);
    const back = StatRecords.decode(Buffer.concat([...r.encode('/ctx')]), '/ctx')!;
    expect(back.count).toBe(n);
    for (let i = 0; i < n; i++) {
      const want = i === 7 ? stat(70) : stat(i);
      expect(back.path(i)).toBe(`/ctx/dir-${i}/fïle-${i}.js`);
      expect(back.matches(i, want)).toBe(true);
      expect(back.matches(i, { ...want, mtimeMs: want.mtimeMs + 0.001 })).toBe(false);
      expect(back.digest(i)).toBe(i === 7 ? sha256('changed') : sha256(`content ${i}`));
      expect(back.hashedAtMs(i)).toBe(i === 7 ? 5 : 1_700_000_001_000 + i);
      expect(back.ctimeMs(i)).toBe(want.ctimeMs);
    }
  });

  it('round-trip when the paths are written in several pieces', () => {
    const r = StatRecords.empty();
    const n = 2 * 4096 + 5;
    for (let i = 0; i < n; i++) r.set(i, `/ctx/p${i}`, stat(i), sha256(`c${i}`), i);
    const pieces = [...r.encode('/ctx')];
    expect(pieces.length).toBeGreaterThan(4);
    const back = StatRecords.decode(Buffer.concat(pieces), '/ctx')!;
    expect(back.count).toBe(n);
    for (const i of [0, 4095, 4096, 4097, 8191, 8192, n - 1]) {
      expect(back.path(i)).toBe(`/ctx/p${i}`);
      expect(back.digest(i)).toBe(sha256(`c${i}`));
      expect(back.matches(i, stat(i))).toBe(true);
    }
  });

  it('writes the records as they were when its first piece was made, whatever is set while the rest are', () => {
    const r = StatRecords.empty();
    const n = 4096 + 10;
    for (let i = 0; i < n; i++) r.set(i, `/ctx/p${i}`, stat(i), sha256(`c${i}`), i);
    const pieces = r.encode('/ctx');
    const first = pieces.next().value as Buffer;
    // A record changed and many added (the columns grow) while the file is being written.
    r.set(3, '/ctx/p3', stat(300), sha256('changed'), 3);
    for (let i = n; i < 3 * n; i++) r.set(i, `/ctx/p${i}`, stat(i), sha256(`c${i}`), i);
    const back = StatRecords.decode(Buffer.concat([first, ...pieces]), '/ctx')!;
    expect(back.count).toBe(n);
    expect(back.digest(3)).toBe(sha256('c3'));
    expect(back.matches(3, stat(3))).toBe(true);
    expect(back.path(n - 1)).toBe(`/ctx/p${n - 1}`);
  });

  it('decode only a file made for the same context', () => {
    const r = StatRecords.empty();
    r.set(0, '/a/f', stat(0), sha256('x'), 1);
    expect(StatRecords.decode(Buffer.concat([...r.encode('/a')]), '/b')).toBeUndefined();
    expect(StatRecords.decode(Buffer.concat([...StatRecords.empty().encode('/a')]), '/a')!.count).toBe(0);
    expect(StatRecords.decode(Buffer.alloc(0), '/a')).toBeUndefined();
  });
});
