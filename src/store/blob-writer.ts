/**
 * A sink for one blob of unknown digest: bytes go to a unique temp file in the store's tmp/
 * directory and through sha256 as they arrive; `commit` checks the digest, and only then
 * renames the (fsynced) file to its content address. Until commit nothing is visible under
 * blobs/, so a crash or `abort` at any point leaves the store valid.
 */
import { createHash } from 'node:crypto';
import { close, fdatasync, fstat, fsync, open, rename, write, writev, type Stats } from 'node:fs';
import { lstat, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { digestOf, type Digest } from '../image/digest.js';
import { ImgbuildError } from '../errors.js';
import { settledTemp, unlinkQuiet } from './atomic.js';

type Callback = (err?: Error | null) => void;

/**
 * Bytes written between two early flushes. A blob is fsynced before it is published, and for a
 * layer that fsync was the last thing its build waited for: 10 ms for the corpus's 28 MB layer,
 * all of it written back at the end. Flushed as it is written (a thread-pool job the writes do
 * not wait for), the blob leaves at most this much to its final fsync.
 */
const FLUSH_EVERY = 8 << 20;

export interface CommittedBlob {
  digest: Digest;
  size: number;
}

export class BlobWriter extends Writable {
  #fd = -1;
  #hash = createHash('sha256');
  #size = 0;
  /** Bytes written since the last early flush started (see FLUSH_EVERY). */
  #unflushed = 0;
  /** While an early flush runs: what waits for it to end before the file is closed. */
  #afterFlush: (() => void)[] | undefined;
  #state: 'open' | 'committed' | 'aborted' = 'open';
  /** The temp file's fstat once its bytes are durable: what the published blob still has if untouched. */
  #written: Stats | undefined;

  /** `published` is told each blob this writer put in place itself; `found`, one it found already there. */
  constructor(
    readonly tempPath: string,
    private readonly pathFor: (d: Digest) => string,
    private readonly published?: (d: Digest, st: Stats) => void | Promise<void>,
    private readonly found?: (d: Digest) => void | Promise<void>,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  /** Bytes received so far. */
  get bytesWritten(): number {
    return this.#size;
  }

  override _construct(cb: Callback): void {
    open(this.tempPath, 'wx', 0o644, (err, fd) => {
      if (!err) this.#fd = fd;
      cb(err);
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: Callback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    writeAll(this.#fd, chunk, (err) => this.#wrote(chunk.length, err, cb));
  }

  override _writev(chunks: { chunk: Buffer }[], cb: Callback): void {
    const bufs = chunks.map((c) => c.chunk);
    let total = 0;
    for (const b of bufs) {
      this.#hash.update(b);
      total += b.length;
    }
    this.#size += total;
    const done: Callback = (err) => this.#wrote(total, err, cb);
    writev(this.#fd, bufs, (err, n) => {
      if (err || n === total) return done(err);
      writeAll(this.#fd, Buffer.concat(bufs).subarray(n), done);
    });
  }

  /** After a write of `n` bytes: start an early flush when FLUSH_EVERY bytes have gone out since the last. */
  #wrote(n: number, err: Error | null | undefined, cb: Callback): void {
    this.#unflushed += n;
    if (!err && this.#unflushed >= FLUSH_EVERY && !this.#afterFlush && this.#fd >= 0) {
      this.#unflushed = 0;
      this.#afterFlush = [];
      // Only a head start for the fsync in _final, which is what vouches for the bytes: an error here is that one's to report.
      fdatasync(this.#fd, () => {
        const waiting = this.#afterFlush ?? [];
        this.#afterFlush = undefined;
        for (const go of waiting) go();
      });
    }
    cb(err);
  }

  /** Run `go` once no early flush is running: the file is never closed under one, whose fd could name another file by then. */
  #whenFlushed(go: () => void): void {
    if (this.#afterFlush) this.#afterFlush.push(go);
    else go();
  }

  // Durable before visible: the rename in commit must never publish bytes still in flight.
  override _final(cb: Callback): void {
    const fd = this.#fd;
    this.#fd = -1;
    this.#whenFlushed(() =>
      fsync(fd, (err) =>
        fstat(fd, (err2, st) => {
          this.#written = st;
          close(fd, (err3) => cb(err ?? err2 ?? err3));
        }),
      ),
    );
  }

  override _destroy(err: Error | null, cb: Callback): void {
    if (this.#fd < 0) return cb(err);
    const fd = this.#fd;
    this.#fd = -1;
    this.#whenFlushed(() => close(fd, () => cb(err)));
  }

  /** Finish the blob and publish it under its digest; `expected`, if given, must match. */
  async commit(expected?: Digest): Promise<CommittedBlob> {
    if (this.#state !== 'open') throw new Error(`blob writer already ${this.#state}`);
    this.#state = 'committed';
    try {
      if (!this.writableEnded) this.end();
      await finished(this);
    } catch (e) {
      await this.#discard();
      throw e;
    }
    const digest = digestOf(this.#hash);
    if (expected !== undefined && expected !== digest) {
      await unlinkQuiet(this.tempPath);
      settledTemp(this.tempPath);
      throw new ImgbuildError('build', `content does not match its digest: expected ${expected}, got ${digest}`);
    }
    if (await this.#publish(this.pathFor(digest))) await this.published?.(digest, this.#written!);
    else await this.found?.(digest);
    return { digest, size: this.#size };
  }

  /** Throw the bytes away. Safe to call at any time, also after a failed pipeline. */
  async abort(): Promise<void> {
    if (this.#state === 'committed') return;
    this.#state = 'aborted';
    await this.#discard();
  }

  async #discard(): Promise<void> {
    if (!this.closed) {
      this.destroy();
      // The temp file may still be being opened; unlink only once it is closed.
      await once(this, 'close').catch(() => undefined);
    }
    await unlinkQuiet(this.tempPath);
    settledTemp(this.tempPath);
  }

  /** True if this writer's file is now the blob; false if the blob was there already. */
  async #publish(dest: string): Promise<boolean> {
    const there = await lstat(dest).catch(() => undefined);
    if (there?.isFile()) {
      await unlinkQuiet(this.tempPath);
      settledTemp(this.tempPath);
      return false;
    }
    // Anything else under a blob's name (a directory) is no blob, and the store's `has` says so:
    // kept, every build that built the blob again failed as it linked or read the directory.
    if (there) await rm(dest, { recursive: true, force: true });
    await new Promise<void>((res, rej) => rename(this.tempPath, dest, (err) => (err ? rej(err) : res())));
    settledTemp(this.tempPath);
    return true;
  }
}

function writeAll(fd: number, buf: Buffer, cb: Callback): void {
  write(fd, buf, 0, buf.length, null, (err, n) => {
    if (err || n === buf.length) return cb(err);
    writeAll(fd, buf.subarray(n), cb);
  });
}
