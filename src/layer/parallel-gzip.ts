/**
 * A parallel gzip compressor for one stream, in the manner of pigz: the input is cut into
 * fixed-size blocks by offset (never by timing), each block is deflated on the libuv thread
 * pool with the 32 KiB of input before it as its dictionary and ended with a sync flush (the
 * last with Z_FINISH), so the blocks concatenate into one valid deflate stream. The CRC32 is
 * computed over the input as it arrives; header and trailer are written around the blocks.
 * Output bytes depend only on the input, the level and the block size: never on the number of
 * cores, the concurrency or how the input was chunked. At most `concurrency` blocks are in
 * flight, so memory is bounded whatever the stream's length.
 */
import zlib from 'node:zlib';
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Changing it changes the compressed bytes (and so digests). pigz's default is 128 KiB; at that
 * size the per-block cost (a zlib stream set up, a dictionary loaded, a thread-pool trip)
 * was a fifth of the compression time here, and 1 MiB blocks compress as well or better.
 */
export const GZIP_BLOCK_SIZE = 1 << 20;
const DICT_SIZE = 32 << 10;
const OS_UNIX = 3;

export interface ParallelGzipOptions {
  level: number;
  /** Blocks deflated at once (default: twice the cores, at least 4). Never changes the bytes. */
  concurrency?: number;
  /** Tests only: a different block size gives different (still valid) bytes. */
  blockSize?: number;
  /**
   * Given back each input chunk that made up one whole block, once nothing reads it any more
   * (its block is compressed and the next block has copied its dictionary), so the writer can
   * fill it again instead of allocating. Chunks cut or joined into blocks are never given back.
   */
  release?: (chunk: Buffer) => void;
}

/** The gzip member header: no name, no timestamp, fixed OS. */
export function gzipHeader(level: number): Buffer {
  // XFL as zlib writes it: 2 = slowest, 4 = fastest, else 0.
  const xfl = level === 9 ? 2 : level >= 0 && level < 2 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, OS_UNIX]);
}

/** Input for one block; `whole` when it is exactly one chunk as written (never cut or joined). */
interface Taken {
  input: Buffer;
  whole: boolean;
}

interface Block {
  out?: Buffer[];
  done: boolean;
  /** The input, while it is to be released: a whole chunk, and `release` given. */
  input?: Buffer;
  /** The next block has started (and so copied its dictionary from this one), or this is the last. */
  followed: boolean;
}

export class ParallelGzip extends Transform {
  readonly #level: number;
  readonly #blockSize: number;
  readonly #maxInFlight: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** The last DICT_SIZE bytes of input already cut into blocks. */
  #dict: Buffer | undefined;
  /** Blocks started and not yet pushed, oldest first. */
  #blocks: Block[] = [];
  /** The block started last: its input is the next block's dictionary. */
  #previous: Block | undefined;
  /** The first pending chunk is the rest of one whose start went into a block. */
  #headCut = false;
  readonly #release: ((chunk: Buffer) => void) | undefined;
  #waiting: (() => void) | undefined;
  /** The reader called _read and has not had a block started for it since. */
  #readerAsked = false;
  #crc = 0;
  #isize = 0;

  constructor(opts: ParallelGzipOptions) {
    super({ readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 });
    this.#level = opts.level;
    this.#blockSize = Math.max(DICT_SIZE, opts.blockSize ?? GZIP_BLOCK_SIZE);
    this.#maxInFlight = Math.max(1, opts.concurrency ?? Math.max(4, 2 * availableParallelism()));
    this.#release = opts.release;
    this.push(gzipHeader(opts.level));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#crc = zlib.crc32(chunk, this.#crc);
    this.#isize = (this.#isize + chunk.length) % 2 ** 32;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.#startBlocks(cb);
  }

  override _flush(cb: TransformCallback): void {
    this.#start(this.#take(this.#pendingBytes), true);
    this.#whenBelow(1, false, () => {
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.#crc >>> 0, 0);
      trailer.writeUInt32LE(this.#isize, 4);
      cb(null, trailer);
    });
  }

  /** Cut and start every full block, waiting for room in flight before each. */
  #startBlocks(cb: TransformCallback): void {
    // A full block waits for one more byte: the last block is then never empty, and a stream of
    // exactly one block is the same bytes one zlib call would give.
    if (this.#pendingBytes <= this.#blockSize) return cb();
    this.#whenBelow(this.#maxInFlight, true, () => {
      this.#start(this.#take(this.#blockSize), false);
      this.#startBlocks(cb);
    });
  }

  /**
   * Deflate one block on the libuv thread pool. (Worker threads running deflateRawSync were
   * tried: the same bytes, but more CPU in all and twice the peak RSS.)
   */
  #start({ input, whole }: Taken, last: boolean): void {
    const block: Block = { done: false, followed: last };
    if (this.#release && whole) block.input = input;
    this.#blocks.push(block);
    // Output room for a typical block in one go: each refill is another thread-pool trip.
    const opts: zlib.ZlibOptions = { level: this.#level, chunkSize: Math.max(64 << 10, input.length >>> 2) };
    if (this.#dict) opts.dictionary = this.#dict;
    if (!last) opts.finishFlush = zlib.constants.Z_SYNC_FLUSH;
    // A stream per block rather than zlib.deflateRaw, which joins its output pieces into one
    // more buffer: the pieces themselves go on. That copy was garbage waiting for the GC (the
    // corpus's cold build peaked at 127 MB with it, 115 MB without).
    const out: Buffer[] = [];
    const deflate = zlib.createDeflateRaw(opts);
    deflate.on('data', (piece: Buffer) => out.push(piece));
    deflate.once('error', (err) => {
      if (!this.destroyed) this.destroy(err);
    });
    deflate.once('end', () => {
      if (this.destroyed) return;
      block.out = out;
      block.done = true;
      this.#releaseIfUnused(block);
      this.#pushDone();
    });
    deflate.end(input);
    // zlib copied the dictionary when the stream was made: the previous input is not read again.
    this.#dict = input.subarray(input.length - DICT_SIZE);
    if (this.#previous) {
      this.#previous.followed = true;
      this.#releaseIfUnused(this.#previous);
    }
    this.#previous = block;
  }

  #releaseIfUnused(block: Block): void {
    if (!block.input || !block.done || !block.followed) return;
    const input = block.input;
    block.input = undefined;
    this.#release!(input);
  }

  /** Push finished blocks in order, then let a waiting writer go on. */
  #pushDone(): void {
    while (this.#blocks[0]?.done) for (const piece of this.#blocks.shift()!.out!) this.push(piece);
    this.#wake();
  }

  override _read(size: number): void {
    this.#readerAsked = true;
    this.#wake();
    super._read(size);
  }

  #wake(): void {
    const wake = this.#waiting;
    this.#waiting = undefined;
    wake?.();
  }

  /**
   * Run `go` once fewer than `limit` blocks are in flight (and, for new input, once the reader
   * has taken what was pushed: Transform alone would not wait, as blocks finish after the write
   * that started them has returned). A call of _read always gets a block started: Readable calls
   * _read before it takes the buffered data, and calls it again only after a push, so a _read
   * that started nothing would leave the stream waiting for ever.
   */
  #whenBelow(limit: number, readerBound: boolean, go: () => void): void {
    const full = readerBound && !this.#readerAsked && this.readableLength >= this.readableHighWaterMark;
    if (this.#blocks.length < limit && !full) {
      if (readerBound) this.#readerAsked = false;
      return go();
    }
    this.#waiting = () => this.#whenBelow(limit, readerBound, go);
  }

  /** Exactly `n` bytes from the front of the pending input. */
  #take(n: number): Taken {
    const first = this.#pending[0];
    let out: Buffer;
    const whole = first !== undefined && first.length === n && !this.#headCut;
    if (first && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#shift();
      else this.#cutHead(first.subarray(n));
    } else {
      out = Buffer.allocUnsafe(n);
      for (let got = 0; got < n; ) {
        const b = this.#pending[0]!;
        const use = Math.min(b.length, n - got);
        b.copy(out, got, 0, use);
        got += use;
        if (use === b.length) this.#shift();
        else this.#cutHead(b.subarray(use));
      }
    }
    this.#pendingBytes -= n;
    return { input: out, whole };
  }

  #shift(): void {
    this.#pending.shift();
    this.#headCut = false;
  }

  /** The rest of the first pending chunk, after a block took its start. */
  #cutHead(rest: Buffer): void {
    this.#pending[0] = rest;
    this.#headCut = true;
  }
}
