/**
 * Reading a stream in exact slices: `take(n)` gives a Readable of the next n bytes of the source
 * and leaves the rest unread, so a large blob can be sent as PATCH chunks of known length
 * without ever holding more than the stream's own buffer in memory.
 */
import { Readable } from 'node:stream';
import { buildError } from '../errors.js';

export class ByteReader {
  private error: Error | undefined;
  private ended = false;

  constructor(private readonly src: Readable) {
    src.on('error', (e) => (this.error = e));
    src.on('end', () => (this.ended = true));
    src.pause();
  }

  /** The next chunk of at most `max` bytes, or null at the end of the source. */
  async read(max: number): Promise<Buffer | null> {
    for (;;) {
      if (this.error) throw this.error;
      const c = this.src.read() as Buffer | null;
      if (c !== null) {
        if (c.length <= max) return c;
        this.src.unshift(c.subarray(max));
        return c.subarray(0, max);
      }
      if (this.ended || this.src.readableEnded || this.src.destroyed) return null;
      await this.wait();
    }
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.src.off('readable', done).off('end', done).off('error', done).off('close', done);
        resolve();
      };
      this.src.on('readable', done).on('end', done).on('error', done).on('close', done);
    });
  }

  /** A stream of exactly the next `n` bytes; it fails if the source ends sooner. */
  take(n: number): Readable {
    const self = this;
    async function* slice() {
      for (let left = n; left > 0; ) {
        const c = await self.read(left);
        if (c === null) throw buildError(`a blob ended ${left} bytes short of its declared size`);
        left -= c.length;
        yield c;
      }
    }
    return Readable.from(slice(), { objectMode: false });
  }

  /** Fail unless the source has nothing left (and let it finish, so its checks run). */
  async expectEnd(): Promise<void> {
    const c = await this.read(1);
    if (c !== null) throw buildError('a blob is longer than its declared size');
  }
}
