/**
 * Streams that check content against its address as it flows: a Transform that hashes and
 * counts the bytes passing through and fails at the end if they do not match the expected digest
 * (and size, when known). Used on every blob that comes from or goes to a registry, so a
 * corrupted or truncated blob is caught by the byte that proves it, not trusted.
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { digestOf, type Digest } from '../image/digest.js';

export interface VerifyOptions {
  expected: Digest;
  size?: number;
  /**
   * Builds the error for a mismatch, so callers can word it for their situation. `actual` is
   * undefined when the stream ran past the expected size (its digest is then moot).
   */
  onMismatch: (actual: Digest | undefined, actualSize: number) => Error;
  /** Called with each chunk's length (for progress). */
  onBytes?: (n: number) => void;
}

export class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private seen = 0;

  constructor(private readonly opts: VerifyOptions) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.seen += chunk.length;
    if (this.opts.size !== undefined && this.seen > this.opts.size) {
      cb(this.opts.onMismatch(undefined, this.seen));
      return;
    }
    this.opts.onBytes?.(chunk.length);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const actual = digestOf(this.hash);
    const sizeOk = this.opts.size === undefined || this.opts.size === this.seen;
    cb(actual === this.opts.expected && sizeOk ? null : this.opts.onMismatch(actual, this.seen));
  }

  get bytesSeen(): number {
    return this.seen;
  }
}
