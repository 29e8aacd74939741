/**
 * Test fixtures for the layer writer: write a small source tree to a temp directory and make
 * the layer plan the plan compiler would (bytewise-sorted tar names, parent directories,
 * content digests), without depending on the compiler itself.
 */
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync, utimesSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { sha256 } from '../../src/image/digest.js';
import { layerCacheKey } from '../../src/plan/cache-key.js';
import type { Compression, LayerPlan, PlanEntry } from '../../src/plan/types.js';
import { extract } from 'tar-stream';
import { onTestFinished } from 'vitest';
import { tarName } from '../../src/layer/tar-header.js';
import { gunzipSync } from 'node:zlib';

export type Spec =
  | { type: 'file'; content: string | Buffer; mode?: number }
  | { type: 'inline'; content: string; mode?: number }
  | { type: 'dir'; mode?: number }
  | { type: 'symlink'; target: string }
  | { type: 'whiteout' };

export function tempDir(prefix = 'imgbuild-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** A temp directory removed when the running test ends. */
export function testDir(): { path: string } {
  const d = tempDir();
  onTestFinished(d.cleanup);
  return d;
}

/**
 * Make `paths` files that have held still: an mtime a minute old, and a wait until the change
 * time that sets (and any before it) is past the racy margin of the stable read's fast path.
 */
export async function heldStill(...paths: string[]): Promise<void> {
  const old = new Date(Date.now() - 60_000);
  for (const path of paths) utimesSync(path, old, old);
  await sleep(100);
}

/** Write the files of `tree` under `root` (in the given order). */
export function writeTree(root: string, tree: Record<string, Spec>): void {
  for (const [p, s] of Object.entries(tree)) {
    const abs = join(root, p);
    mkdirSync(dirname(abs), { recursive: true });
    if (s.type === 'file') writeFileSync(abs, s.content);
    if (s.type === 'dir') mkdirSync(abs, { recursive: true });
    if (s.type === 'symlink') symlinkSync(s.target, abs);
  }
}

// The plan's order is the tar's: bytewise by tar name (so `.wh.x` sorts as written).
const bytewise = (a: PlanEntry, b: PlanEntry) => Buffer.compare(Buffer.from(tarName(a)), Buffer.from(tarName(b)));

export const GZIP6: Compression = { algorithm: 'gzip', level: 6 };

/** The plan for `tree` read from `root`, with parent directories added, sorted bytewise. */
export function planFor(root: string, tree: Record<string, Spec>, opts: { compression?: Compression; epoch?: number } = {}): LayerPlan {
  const entries = new Map<string, PlanEntry>();
  const addDirs = (p: string) => {
    for (let d = dirname(p); d !== '.'; d = dirname(d)) {
      if (!entries.has(d)) entries.set(d, { type: 'dir', path: d, mode: 0o755, uid: 0, gid: 0 });
    }
  };
  for (const [p, s] of Object.entries(tree)) {
    addDirs(p);
    entries.set(p, entryFor(root, p, s));
  }
  const sorted = [...entries.values()].sort(bytewise);
  const files = sorted.filter((e) => e.type === 'file');
  return {
    name: 'test',
    entries: sorted,
    destinations: [],
    files: files.length,
    bytes: files.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0),
    cacheKey: layerCacheKey(sorted, opts.compression ?? GZIP6, opts.epoch ?? 0),
  };
}

function entryFor(root: string, p: string, s: Spec): PlanEntry {
  const base = { path: p, uid: 0, gid: 0 };
  switch (s.type) {
    case 'file': {
      const buf = Buffer.from(s.content);
      return { ...base, type: 'file', mode: s.mode ?? 0o644, size: buf.length, source: { kind: 'path', path: join(root, p), digest: sha256(buf) } };
    }
    case 'inline': {
      const buf = Buffer.from(s.content, 'utf8');
      return { ...base, type: 'file', mode: s.mode ?? 0o644, size: buf.length, source: { kind: 'inline', content: s.content, digest: sha256(buf) } };
    }
    case 'dir':
      return { ...base, type: 'dir', mode: s.mode ?? 0o755 };
    case 'symlink':
      return { ...base, type: 'symlink', mode: 0o777, target: s.target };
    case 'whiteout':
      return { ...base, type: 'whiteout', mode: 0o644 };
  }
}

export interface ReadEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  uname: string;
  gname: string;
  linkname: string | null;
  pax: Record<string, string> | null;
  body: Buffer;
}

/** Every entry of a (gzipped or plain) tar, read back with tar-stream. */
export async function readTar(blob: Buffer): Promise<ReadEntry[]> {
  const plain = blob[0] === 0x1f && blob[1] === 0x8b ? gunzipSync(blob) : blob;
  const ex = extract();
  const out: ReadEntry[] = [];
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const h = entry.header;
      out.push({
        name: h.name, type: h.type, mode: h.mode, uid: h.uid, gid: h.gid, size: h.size,
        mtime: h.mtime.getTime() / 1000, uname: h.uname, gname: h.gname, linkname: h.linkname ?? null,
        pax: (h.pax as Record<string, string> | null) ?? null, body: Buffer.concat(chunks),
      });
    }
  })();
  ex.end(plain);
  await done;
  return out;
}
