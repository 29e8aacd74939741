/**
 * The uncompressed tar of a layer, assembled into fixed-size chunks for the compressor. Headers
 * and file bodies are copied straight into the current chunk: no stream, callback or buffer per
 * entry, which were most of the per-file cost of a layer of many small files. Each full chunk is
 * hashed and counted (the layer's diffId and uncompressed size) and written to `out`; the
 * compressor's backpressure reaches the producer through `room()`.
 *
 * Chunks are GZIP_BLOCK_SIZE long, so the parallel gzip takes each as one block without copying
 * (the chunking never changes the compressed bytes, only the work).
 */
import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { digestOf, type Digest } from '../image/digest.js';
import { GZIP_BLOCK_SIZE } from './parallel-gzip.js';
import { END_OF_ARCHIVE, paddingFor } from './tar-format.js';

/**
 * Chunk buffers given back by the compressor once it is done with them (ParallelGzip's
 * `release`), so a layer of any size cycles through a handful of buffers instead of leaving one
 * per megabyte for the GC: that garbage set the peak RSS of large layers.
 */
export class ChunkPool {
  readonly #free: Buffer[] = [];

  constructor(readonly chunkSize = GZIP_BLOCK_SIZE, private readonly max = 16) {}

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafe(this.chunkSize);
  }

  /** Only whole buffers of ours come back in; anything else is left to the GC. */
  readonly give = (chunk: Buffer): void => {
    if (chunk.byteOffset !== 0 || chunk.buffer.byteLength !== this.chunkSize || this.#free.length >= this.max) return;
    this.#free.push(Buffer.from(chunk.buffer, 0, this.chunkSize));
  };
}

export class TarChunks {
  readonly #out: Writable;
  readonly #pool: ChunkPool;
  readonly #chunkSize: number;
  readonly #hash = createHash('sha256');
  #chunk: Buffer;
  #used = 0;
  #full = false;
  /** Bytes of tar written so far. */
  size = 0;

  constructor(out: Writable, pool = new ChunkPool()) {
    this.#out = out;
    this.#pool = pool;
    this.#chunkSize = pool.chunkSize;
    this.#chunk = pool.take();
  }

  write(bytes: Buffer): void {
    for (let at = 0; at < bytes.length; ) {
      const n = Math.min(bytes.length - at, this.#chunkSize - this.#used);
      bytes.copy(this.#chunk, this.#used, at, at + n);
      this.#used += n;
      at += n;
      if (this.#used === this.#chunkSize) this.#flush();
    }
  }

  /** Zero bytes up to the next 512-byte boundary after a body of `bodySize` bytes. */
  pad(bodySize: number): void {
    for (let n = paddingFor(bodySize); n > 0; ) {
      const m = Math.min(n, this.#chunkSize - this.#used);
      this.#chunk.fill(0, this.#used, this.#used + m);
      this.#used += m;
      n -= m;
      if (this.#used === this.#chunkSize) this.#flush();
    }
  }

  /** The compressor asked to wait: the producer should `await room()` before writing on. */
  get full(): boolean {
    return this.#full;
  }

  /** Resolves once the compressor can take more; rejects if it has gone away (the build failed). */
  async room(): Promise<void> {
    if (!this.#full) return;
    await drainOf(this.#out);
    this.#full = false;
  }

  /** The end-of-archive blocks, the last partial chunk, and the end of `out`. */
  async end(): Promise<void> {
    this.write(END_OF_ARCHIVE);
    if (this.#used > 0) this.#flush();
    await this.room();
    this.#out.end();
  }

  /** sha256 of the whole tar; valid after `end()`. */
  digest(): Digest {
    return digestOf(this.#hash);
  }

  #flush(): void {
    const chunk = this.#used === this.#chunkSize ? this.#chunk : this.#chunk.subarray(0, this.#used);
    this.#hash.update(chunk);
    this.size += chunk.length;
    if (!this.#out.write(chunk)) this.#full = true;
    // The compressor keeps the chunk until it is compressed (and may give it back to the pool).
    this.#chunk = this.#pool.take();
    this.#used = 0;
  }
}

function drainOf(out: Writable): Promise<void> {
  if (out.destroyed || out.writableEnded) return Promise.reject(new Error('the layer stream closed while files were being written'));
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      out.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      out.off('drain', onDrain);
      reject(new Error('the layer stream closed while files were being written'));
    };
    out.once('drain', onDrain);
    out.once('close', onClose);
  });
}
