/**
 * Checking bytes against the digest that names them. Every blob read from outside imgbuild's own
 * memory (an OCI layout, a docker archive, a content store being copied) passes through one of
 * these, so a corrupted or substituted blob ends in an ImgbuildError and never in an image.
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { buildError, ImgbuildError } from '../errors.js';
import { digestOf, sha256, type Digest } from './digest.js';

/** Where a blob came from, for messages: "layer sha256:ab… in oci:./base". */
export type BlobLabel = string;

export function corruptBlob(label: BlobLabel, expected: Digest, actual: Digest): ImgbuildError {
  return buildError(
    `${label} is corrupt: its bytes hash to ${actual}, not ${expected}`,
    'the blob was changed or damaged after it was written; fetch or build the image again',
  );
}

function wrongSize(label: BlobLabel, expected: number, actual: number): ImgbuildError {
  return buildError(`${label} is corrupt: it holds ${actual} bytes where ${expected} were expected`);
}

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

/** A pass-through that fails, at the end or as soon as it is too long, unless the bytes match. */
export class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private seen = 0;

  constructor(private readonly opts: VerifyOptions) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.seen += chunk.length;
    if (this.opts.size !== undefined && this.seen > this.opts.size) return cb(this.opts.onMismatch(undefined, this.seen));
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

/** The usual verifier: errors say which blob, from where, and what was wrong with it. */
export function verifyingStream(expected: Digest, size: number | undefined, label: BlobLabel): Transform {
  return new VerifyingStream({
    expected,
    ...(size === undefined ? {} : { size }),
    onMismatch: (actual, seen) => (actual === undefined || (size !== undefined && seen !== size) ? wrongSize(label, size ?? seen, seen) : corruptBlob(label, expected, actual)),
  });
}

/** Check a blob held in memory (manifests, configs, indexes). */
export function verifyBytes(bytes: Uint8Array, expected: Digest, size: number | undefined, label: BlobLabel): void {
  if (size !== undefined && bytes.byteLength !== size) throw wrongSize(label, size, bytes.byteLength);
  const actual = sha256(bytes);
  if (actual !== expected) throw corruptBlob(label, expected, actual);
}

/** A digest shortened for error messages, algorithm kept ("sha256:0123456789ab"); plan/render.ts has the display form. */
export const digestInMessage = (d: Digest) => d.slice(0, 'sha256:'.length + 12);
