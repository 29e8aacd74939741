/**
 * Layer compression behind one function, `createCompressor`, and the media type that goes
 * with it. gzip is written as our own 10-byte header (MTIME 0, XFL as zlib sets it, OS byte
 * fixed to 3 so the host never changes the bytes) + raw deflate + CRC32/ISIZE trailer: the
 * same bytes `gzip -n` semantics give on Unix, and the frame a later parallel (pigz-style)
 * block compressor fills with independently deflated blocks and a combined CRC. 'none' passes
 * through; 'zstd' needs a Node with zlib zstd support.
 */
import zlib from 'node:zlib';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import type { Compression, CompressionAlgorithm } from '../plan/types.js';
import { MediaType } from '../image/media-types.js';
import { ImgbuildError } from '../errors.js';

const OS_UNIX = 3;
const DEFLATE_CHUNK = 64 << 10;

export function layerMediaType(c: Compression): string {
  if (c.algorithm === 'gzip') return MediaType.ociLayerGzip;
  if (c.algorithm === 'zstd') return MediaType.ociLayerZstd;
  return MediaType.ociLayer;
}

const FACTORIES: Record<CompressionAlgorithm, (level: number) => Transform> = {
  gzip: (level) => new GzipStream(level),
  zstd: createZstd,
  none: () => new PassThrough({ highWaterMark: 1 << 20 }),
};

export function createCompressor(c: Compression): Transform {
  return FACTORIES[c.algorithm](c.level);
}

/** The gzip member header: no name, no timestamp, fixed OS. */
export function gzipHeader(level: number): Buffer {
  // XFL as zlib writes it: 2 = slowest, 4 = fastest, else 0.
  const xfl = level === 9 ? 2 : level >= 0 && level < 2 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, OS_UNIX]);
}

function checkLevel(algorithm: string, level: number, min: number, max: number): void {
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new ImgbuildError('usage', `${algorithm} level ${level} is out of range`, `use an integer from ${min} to ${max}`);
  }
}

/** gzip = our header + zlib raw deflate + our trailer, with backpressure passed through. */
class GzipStream extends Transform {
  readonly #deflate: zlib.DeflateRaw;
  #crc = 0;
  #isize = 0;

  constructor(level: number) {
    checkLevel('gzip', level, -1, 9);
    super({ readableHighWaterMark: 1 << 20 });
    this.#deflate = zlib.createDeflateRaw({ level, chunkSize: DEFLATE_CHUNK });
    this.#deflate.on('data', (b: Buffer) => {
      if (!this.push(b)) this.#deflate.pause();
    });
    this.#deflate.on('error', (e) => this.destroy(e));
    this.push(gzipHeader(level));
  }

  override _read(size: number): void {
    if (this.#deflate.isPaused()) this.#deflate.resume();
    super._read(size);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#crc = zlib.crc32(chunk, this.#crc);
    this.#isize = (this.#isize + chunk.length) % 2 ** 32;
    if (this.#deflate.write(chunk)) cb();
    else this.#deflate.once('drain', cb);
  }

  override _flush(cb: TransformCallback): void {
    this.#deflate.once('end', () => {
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.#crc >>> 0, 0);
      trailer.writeUInt32LE(this.#isize, 4);
      cb(null, trailer);
    });
    this.#deflate.end();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.#deflate.destroy();
    cb(err);
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
