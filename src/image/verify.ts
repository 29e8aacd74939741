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

/** A pass-through that fails, at the end or as soon as it is too long, unless the bytes match. */
export function verifyingStream(expected: Digest, size: number | undefined, label: BlobLabel): Transform {
  const hash = createHash('sha256');
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      seen += chunk.length;
      if (size !== undefined && seen > size) return done(wrongSize(label, size, seen));
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      if (size !== undefined && seen !== size) return done(wrongSize(label, size, seen));
      const actual = digestOf(hash);
      done(actual === expected ? null : corruptBlob(label, expected, actual));
    },
  });
}

/** Check a blob held in memory (manifests, configs, indexes). */
export function verifyBytes(bytes: Uint8Array, expected: Digest, size: number | undefined, label: BlobLabel): void {
  if (size !== undefined && bytes.byteLength !== size) throw wrongSize(label, size, bytes.byteLength);
  const actual = sha256(bytes);
  if (actual !== expected) throw corruptBlob(label, expected, actual);
}

/** The short form of a digest for messages. */
export const shortDigest = (d: Digest) => d.slice(0, 'sha256:'.length + 12);
