/**
 * Putting one blob into an OCI layout's blobs/sha256/ so that, whatever happens, the name always
 * holds the whole, right bytes: the blob is written (or hard-linked from the content store) to a
 * private temp name, checked, and renamed into place. A blob already there with the right size
 * is kept, so concurrent writers and reruns do no work twice and never see a partial blob.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestHex, digestOfFile, type Digest } from '../image/digest.js';
import type { LocalFile } from '../image/store-layer.js';
import { sweepStaleTemps } from '../store/atomic.js';
import { digestInMessage, verifyingStream } from '../image/verify.js';

export interface LayoutPaths {
  root: string;
  blobs: string;
  /** imgbuild's scratch space inside the layout, on the same file system as blobs/. */
  tmp: string;
}

export function layoutPaths(root: string): LayoutPaths {
  return { root, blobs: join(root, 'blobs', 'sha256'), tmp: join(root, '.imgbuild', 'tmp') };
}

export async function prepareLayoutDirs(p: LayoutPaths): Promise<void> {
  await mkdir(p.blobs, { recursive: true });
  await mkdir(p.tmp, { recursive: true });
  await sweepStaleTemps(p.tmp);
}

export const tempName = (p: LayoutPaths, hint: string) =>
  join(p.tmp, `${hint}.${process.pid}.${randomBytes(6).toString('hex')}`);

export const blobFile = (p: LayoutPaths, d: Digest) => join(p.blobs, digestHex(d));

/** Does the layout already hold this blob? Size is the cheap check that catches truncation. */
async function present(path: string, size: number): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  return st !== undefined && st.isFile() && st.size === size;
}

/** Write `tmp` into place as `dest`, or drop it on failure. */
async function commit(tmp: string, dest: string, write: () => Promise<void>): Promise<void> {
  try {
    await write();
    await rename(tmp, dest);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

export async function writeBytesBlob(p: LayoutPaths, digest: Digest, bytes: Uint8Array): Promise<void> {
  const dest = blobFile(p, digest);
  if (await present(dest, bytes.byteLength)) return;
  const tmp = tempName(p, digestHex(digest));
  await commit(tmp, dest, () => writeFile(tmp, bytes, { flag: 'wx' }));
}

export interface StreamBlob {
  digest: Digest;
  size: number;
  open(): Promise<Readable>;
  /** The blob's file on this machine (the content store), if there is one, to link instead of copying. */
  local?: LocalFile;
  label: string;
}

export async function writeStreamBlob(p: LayoutPaths, blob: StreamBlob): Promise<void> {
  const dest = blobFile(p, blob.digest);
  if ((await present(dest, blob.size)) && (await stillGood(dest, blob))) return;
  const tmp = tempName(p, digestHex(blob.digest));
  if (blob.local && (await tryLink(blob.local, blob.digest, blob.size, tmp))) {
    return commit(tmp, dest, async () => undefined);
  }
  await commit(tmp, dest, async () => {
    const verify = verifyingStream(blob.digest, blob.size, `${blob.label} ${digestInMessage(blob.digest)}`);
    await pipeline(await blob.open(), verify, createWriteStream(tmp, { flags: 'wx' }));
  });
}

const hashesTo = (path: string, digest: Digest) => digestOfFile(path).then((d) => d === digest, () => false);

/** Whether the store's file hashes to `digest`: checked by the store itself when it offers it. */
const localIntact = (local: LocalFile, digest: Digest) => (local.verify ? local.verify() : hashesTo(local.path, digest));

/**
 * A blob the layout holds already is taken as it is, unless it is the store's own file, linked
 * from there, and the store cannot vouch for that file: then damage to the store's copy is damage
 * to this one, and it is read. A bad one is removed, to be written again (from a good source, or
 * failing with the store's "corrupt" error) rather than left in an output reported as written.
 */
async function stillGood(dest: string, blob: StreamBlob): Promise<boolean> {
  const local = blob.local;
  if (!local || local.checked) return true;
  const [a, b] = await Promise.all([stat(dest).catch(() => undefined), stat(local.path).catch(() => undefined)]);
  if (!a || !b || a.ino !== b.ino || a.dev !== b.dev) return true;
  if (await localIntact(local, blob.digest)) return true;
  await unlink(dest).catch(() => undefined);
  return false;
}

// A hard link shares the store's file, so the store's copy is checked once before it is linked
// (a blob damaged in the cache must not become an output), unless this process wrote it and
// hashed it as it did (a layer just built: the corpus's 28 MB took 30 to 60 ms to read again).
// A different file system (EXDEV), a refusing one (EPERM) or a damaged store blob falls back to
// a copy checked while it streams.
async function tryLink(local: LocalFile, digest: Digest, size: number, tmp: string): Promise<boolean> {
  if (!(await present(local.path, size))) return false;
  if (!local.checked && !(await localIntact(local, digest))) return false;
  try {
    await link(local.path, tmp);
    return true;
  } catch {
    return false;
  }
}
