/**
 * Layer compression behind one function, `createCompressor`, and the media type that goes
 * with it. gzip is our own 10-byte header (MTIME 0, XFL as zlib sets it, OS byte fixed to 3 so
 * the host never changes the bytes) around raw deflate blocks compressed in parallel, pigz
 * style (parallel-gzip.ts), and a CRC32/ISIZE trailer. 'none' passes through; 'zstd' needs a
 * Node with zlib zstd support.
 */
import zlib from 'node:zlib';
import { PassThrough, type Transform } from 'node:stream';
import type { Compression, CompressionAlgorithm } from '../plan/types.js';
import { MediaType } from '../image/media-types.js';
import { ImgbuildError } from '../errors.js';
import { ParallelGzip } from './parallel-gzip.js';

export { gzipHeader } from './parallel-gzip.js';

export function layerMediaType(c: Compression): string {
  if (c.algorithm === 'gzip') return MediaType.ociLayerGzip;
  if (c.algorithm === 'zstd') return MediaType.ociLayerZstd;
  return MediaType.ociLayer;
}

export interface CompressorOptions {
  /** Given back input chunks the compressor no longer reads (gzip only; see ParallelGzip). */
  release?: (chunk: Buffer) => void;
}

const FACTORIES: Record<CompressionAlgorithm, (level: number, opts: CompressorOptions) => Transform> = {
  gzip: (level, opts) => {
    checkLevel('gzip', level, -1, 9);
    return new ParallelGzip({ level, ...(opts.release ? { release: opts.release } : {}) });
  },
  zstd: createZstd,
  none: () => new PassThrough({ highWaterMark: 1 << 20 }),
};

export function createCompressor(c: Compression, opts: CompressorOptions = {}): Transform {
  return FACTORIES[c.algorithm](c.level, opts);
}

function checkLevel(algorithm: string, level: number, min: number, max: number): void {
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new ImgbuildError('usage', `${algorithm} level ${level} is out of range`, `use an integer from ${min} to ${max}`);
  }
}

type ZstdZlib = {
  createZstdCompress?: (opts: { params: Record<number, number> }) => Transform;
  constants: { ZSTD_c_compressionLevel?: number };
};

function createZstd(level: number): Transform {
  const z = zlib as unknown as ZstdZlib;
  const levelParam = z.constants.ZSTD_c_compressionLevel;
  if (typeof z.createZstdCompress !== 'function' || levelParam === undefined) {
    throw new ImgbuildError(
      'unsupported',
      `zstd layer compression needs Node.js 22.15 or newer (this is ${process.version})`,
      'upgrade Node.js, or set compression to gzip',
    );
  }
  checkLevel('zstd', level, 1, 22);
  return z.createZstdCompress({ params: { [levelParam]: level } });
}
