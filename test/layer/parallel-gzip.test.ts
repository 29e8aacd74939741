import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import zlib from 'node:zlib';
import { GZIP_BLOCK_SIZE, ParallelGzip, type ParallelGzipOptions } from '../../src/layer/parallel-gzip.js';
import { missingTools } from '../helpers/tools.js';
import { buildLayer } from '../../src/layer/build-layer.js';
import { ContentStore } from '../../src/store/content-store.js';
import { GZIP6, planFor, tempDir, writeTree, type Spec } from './fixtures.js';

/** Deterministic data that compresses like real files: text-like runs mixed with noise. */
function sample(size: number, seed = 'x'): Buffer {
  const out = Buffer.alloc(size);
  let h = createHash('sha256').update(seed).digest();
  for (let i = 0; i < size; i += 32) {
    h = createHash('sha256').update(h).digest();
    const noisy = h[0]! < 40;
    for (let j = 0; j < 32 && i + j < size; j++) out[i + j] = noisy ? h[j]! : 97 + (h[j]! % 8);
  }
  return out;
}

/** Split `data` into chunks of the given sizes, cycling. */
function chunks(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Buffers compared by digest: vitest's deep equality walks large buffers byte by byte, slowly. */
const id = (b: Buffer) => `${b.length}:${createHash('sha256').update(b).digest('hex')}`;

const gz = (parts: Buffer[], opts: ParallelGzipOptions = { level: 6 }) => buffer(Readable.from(parts).pipe(new ParallelGzip(opts)));

const data = sample(5 * GZIP_BLOCK_SIZE + 12_345);

describe('ParallelGzip', () => {
  it('round-trips through Node and gunzip, with MTIME 0 and OS 3', async () => {
    const out = await gz(chunks(data, [65_536]));
    expect(id(zlib.gunzipSync(out))).toBe(id(data));
    expect(id(execFileSync('gzip', ['-dc'], { input: out, maxBuffer: 64 << 20 }))).toBe(id(data));
    expect([...out.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    expect(out.readUInt32LE(out.length - 4)).toBe(data.length);
    expect(out.readUInt32LE(out.length - 8)).toBe(zlib.crc32(data));
  });

  it.skipIf(missingTools('pigz').length > 0)('round-trips through pigz', async () => {
    const out = await gz(chunks(data, [65_536]));
    expect(id(execFileSync('pigz', ['-dc'], { input: out, maxBuffer: 64 << 20 }))).toBe(id(data));
  });

  it('gives identical bytes whatever the concurrency and input chunking', async () => {
    const reference = await gz([data], { level: 6, concurrency: 1 });
    for (const concurrency of [2, 3, 8, 32]) {
      expect(id(await gz(chunks(data, [1000, 77_777, 3]), { level: 6, concurrency }))).toBe(id(reference));
    }
    expect(id(await gz(chunks(data, [GZIP_BLOCK_SIZE])))).toBe(id(reference));
    expect(id(await gz(chunks(data, [GZIP_BLOCK_SIZE - 1, GZIP_BLOCK_SIZE + 1, 512])))).toBe(id(reference));
    expect(id(await gz(chunks(data, [1 << 20]), { level: 6, concurrency: 4 }))).toBe(id(reference));
  });

  it('writes one block as zlib would, and a valid stream at exact block multiples and when empty', async () => {
    const one = data.subarray(0, GZIP_BLOCK_SIZE);
    const expected = zlib.gzipSync(one, { level: 6 });
    expected[9] = 3;
    expect(id(await gz([one]))).toBe(id(expected));
    for (const input of [Buffer.alloc(0), data.subarray(0, 2 * GZIP_BLOCK_SIZE), data.subarray(0, GZIP_BLOCK_SIZE + 1)]) {
      expect(id(zlib.gunzipSync(await gz(chunks(input, [4096]))))).toBe(id(input));
    }
  });

  it('is as small as one-stream gzip to within 1%', async () => {
    const out = await gz([data]);
    const single = zlib.gzipSync(data, { level: 6 });
    expect(Math.abs(out.length - single.length) / single.length).toBeLessThan(0.01);
  });

  it.each([1, 9])('level %i round-trips', async (level) => {
    expect(id(zlib.gunzipSync(await gz(chunks(data, [50_000]), { level })))).toBe(id(data));
  });

  it('gives back whole input chunks only once nothing reads them (a scribbled-over chunk changes no byte)', async () => {
    const reference = await gz([data], { level: 6, concurrency: 1 });
    for (const concurrency of [1, 2, 4]) {
      const released: Buffer[] = [];
      const scribble = (chunk: Buffer) => {
        released.push(chunk);
        chunk.fill(0xaa); // what a writer refilling it would do
      };
      // Whole blocks (copies, as the layer writer's own buffers), then a cut one and a joined one.
      const parts = chunks(data, [GZIP_BLOCK_SIZE]).map((c) => Buffer.from(c));
      const whole = parts.slice(0, 3);
      const rest = Buffer.concat(parts.slice(3));
      const mixed = [...whole, ...chunks(rest, [GZIP_BLOCK_SIZE + 1000, 5000])];
      const out = await gz(mixed, { level: 6, concurrency, release: scribble });
      expect(id(out)).toBe(id(reference));
      expect(released).toHaveLength(3);
    }
  });

  it('keeps a bounded number of blocks in flight against a slow reader', async () => {
    const blockSize = 128 << 10;
    const big = sample(40 * blockSize, 'slow');
    const gzip = new ParallelGzip({ level: 1, concurrency: 2, blockSize });
    const fed = Readable.from(chunks(big, [blockSize])).pipe(gzip);
    const got: Buffer[] = [];
    for await (const c of fed) {
      got.push(c as Buffer);
      expect(gzip.readableLength).toBeLessThan(4 << 20);
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(id(zlib.gunzipSync(Buffer.concat(got)))).toBe(id(big));
  });
});

describe('a layer of many blocks', () => {
  it('is read by GNU tar -tzvf and extracts to the same bytes', async () => {
    const src = tempDir();
    const st = tempDir('imgbuild-store-');
    try {
      const tree: Record<string, Spec> = {};
      for (let i = 0; i < 40; i++) tree[`lib/m${String(i).padStart(2, '0')}.js`] = { type: 'file', content: sample(20_000 + i * 997, `f${i}`) };
      tree['lib/big.bin'] = { type: 'file', content: sample(5 * GZIP_BLOCK_SIZE + 7, 'big') };
      writeTree(src.path, tree);
      const store = await ContentStore.open(st.path);
      const r = await buildLayer(planFor(src.path, tree), { store, epoch: 0, compression: GZIP6 });
      expect(r.size).toBeGreaterThan(5 * GZIP_BLOCK_SIZE / 8);
      expect(r.uncompressedSize).toBeGreaterThan(6 * GZIP_BLOCK_SIZE);
      const listing = execFileSync('tar', ['-tzvf', store.blobPath(r.digest)], { encoding: 'utf8' });
      expect(listing.trim().split('\n')).toHaveLength(42); // lib/ and 41 files
      expect(listing).toMatch(new RegExp(`^-rw-r--r-- 0/0 +${5 * GZIP_BLOCK_SIZE + 7} 1970-01-01 00:00 lib/big\\.bin$`, 'm'));
      const out = tempDir('imgbuild-x-');
      try {
        execFileSync('tar', ['-xzf', store.blobPath(r.digest), '-C', out.path]);
        const got = execFileSync('sha256sum', ['lib/big.bin', 'lib/m39.js'], { cwd: out.path, encoding: 'utf8' });
        const want = execFileSync('sha256sum', ['lib/big.bin', 'lib/m39.js'], { cwd: src.path, encoding: 'utf8' });
        expect(got).toBe(want);
      } finally {
        out.cleanup();
      }
    } finally {
      src.cleanup();
      st.cleanup();
    }
  });
});
