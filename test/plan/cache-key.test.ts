import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { layerCacheKey } from '../../src/plan/cache-key.js';
import type { Compression, PlanEntry } from '../../src/plan/types.js';

/** The key as first defined: one JSON document of every entry, hashed whole. Keys must never drift from it, or every cache goes cold. */
function keyAsDocument(entries: PlanEntry[], compression: Compression, epoch: number): string {
  const entryKey = (e: PlanEntry) =>
    e.type === 'file' ? [e.type, e.path, e.mode, e.uid, e.gid, e.size, e.source.digest] : e.type === 'symlink' ? [e.type, e.path, e.mode, e.uid, e.gid, e.target] : [e.type, e.path, e.mode, e.uid, e.gid];
  return sha256(JSON.stringify({ v: 1, compression: [compression.algorithm, compression.level], epoch, entries: entries.map(entryKey) }));
}

const digest = sha256('content');

/** Entries whose JSON needs escapes, and enough of them that the text is hashed in several pieces. */
function entries(n: number): PlanEntry[] {
  const out: PlanEntry[] = [{ path: 'app', mode: 0o755, uid: 0, gid: 0, type: 'dir' }];
  for (let i = 0; i < n; i++) {
    const path = `app/${i % 7 === 0 ? 'quote"back\\slash\u0001é\u{1D4B3}' : 'f'}${i}`;
    out.push({ path, mode: 0o644, uid: 1000, gid: 1000, type: 'file', size: i, source: { kind: 'path', path: `/ctx/${path}`, digest } });
    if (i % 11 === 0) out.push({ path: `${path}.ln`, mode: 0o777, uid: 0, gid: 0, type: 'symlink', target: `../t"${i}` });
  }
  out.push({ path: 'app/.wh.gone', mode: 0, uid: 0, gid: 0, type: 'whiteout' });
  return out;
}

describe('layerCacheKey', () => {
  it('is the digest of the whole key document, for any number of entries', () => {
    for (const n of [0, 1, 5, 3000]) {
      for (const [compression, epoch] of [[{ algorithm: 'gzip', level: 6 }, 0], [{ algorithm: 'zstd', level: 3 }, 1700000000]] as const) {
        const e = entries(n);
        expect(layerCacheKey(e, compression as Compression, epoch)).toBe(keyAsDocument(e, compression as Compression, epoch));
      }
    }
  });

  it('changes with any entry field', () => {
    const base = entries(50);
    const key = layerCacheKey(base, { algorithm: 'gzip', level: 6 }, 0);
    const changed = structuredClone(base);
    (changed[20] as { mode: number }).mode = 0o600;
    expect(layerCacheKey(changed, { algorithm: 'gzip', level: 6 }, 0)).not.toBe(key);
    expect(layerCacheKey(base.slice(0, -1), { algorithm: 'gzip', level: 6 }, 0)).not.toBe(key);
  });
});
