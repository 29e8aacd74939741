/**
 * Putting one blob into an OCI layout's blobs/sha256/ so that, whatever happens, the name always
 * holds the whole, right bytes: the blob is written (or hard-linked from the content store) to a
 * private temp name, checked, and renamed into place. A blob already there is kept when it is
 * known good, so concurrent writers and reruns do no work twice and never see a partial blob:
 * a small one (config, manifest) is hashed, a layer is known by its stamp (below) or hashed.
 *
 * A layer blob's stamp, `.imgbuild/verified/<hex>`, is the stat it had when its bytes were last
 * known right (written here, or hashed): inode, size, mtime and change time. A write to the file,
 * even one that keeps its size and puts its mtime back, sets its change time, so a blob whose
 * stat is not its stamp is read again. That matters because the layout's blobs are hard links
 * to the content store's files: damage to the store's copy is damage to this one, and stays here
 * after the store has let its copy go (`rm -rf` of the cache) or replaced it.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, type Stats } from 'node:fs';
import { link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestHex, digestOfFile, type Digest } from '../image/digest.js';
import type { LocalFile } from '../image/store-layer.js';
import { liveTemp, settledTemp, sweepStaleTemps, TEMP_OWNER, writeStamp } from '../store/atomic.js';
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

export const tempName = (p: LayoutPaths, hint: string) => liveTemp(join(p.tmp, `${hint}.${TEMP_OWNER}${randomBytes(6).toString('hex')}`));

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
  } finally {
    settledTemp(tmp);
  }
}

export async function writeBytesBlob(p: LayoutPaths, digest: Digest, bytes: Uint8Array): Promise<void> {
  const dest = blobFile(p, digest);
  // Small: checked by its bytes each time. A bad one is replaced by the rename below.
  if ((await present(dest, bytes.byteLength)) && (await hashesTo(dest, digest))) return;
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
  if ((await present(dest, blob.size)) && (await stillGood(p, dest, blob))) return;
  const tmp = tempName(p, digestHex(blob.digest));
  if (blob.local && (await tryLink(blob.local, blob.digest, blob.size, tmp))) {
    await commit(tmp, dest, async () => undefined);
  } else {
    await commit(tmp, dest, async () => {
      const verify = verifyingStream(blob.digest, blob.size, `${blob.label} ${digestInMessage(blob.digest)}`);
      await pipeline(await blob.open(), verify, createWriteStream(tmp, { flags: 'wx' }));
    });
  }
  // Another writer may have put its own (also checked) file in place meanwhile: stamped is what is there.
  const now = await stat(dest).catch(() => undefined);
  if (now) await stampLayer(p, blob.digest, now);
}

const hashesTo = (path: string, digest: Digest) => digestOfFile(path).then((d) => d === digest, () => false);

/** Whether the store's file hashes to `digest`: checked by the store itself when it offers it. */
const localIntact = (local: LocalFile, digest: Digest) => (local.verify ? local.verify() : hashesTo(local.path, digest));

/**
 * Whether a layer blob the layout holds is still right: its stamp says so (see the top of this
 * file), or it is the store's own file and this process wrote it, or its bytes hash to its name.
 * A bad one is removed, to be written again (from a good source, or failing with the store's
 * "corrupt" error) rather than left in an output reported as written.
 */
async function stillGood(p: LayoutPaths, dest: string, blob: StreamBlob): Promise<boolean> {
  const before = await stat(dest).catch(() => undefined);
  if (!before) return false;
  if ((await readFile(stampFile(p, blob.digest), 'utf8').catch(() => undefined)) === identityText(before)) return true;
  const local = blob.local;
  const ours = local?.checked === true && (await stat(local.path).then((st) => st.ino === before.ino && st.dev === before.dev, () => false));
  if (ours || (await hashesTo(dest, blob.digest))) {
    // Stamped only if it held still while it was read: a stamp vouches for the bytes read.
    const after = await stat(dest).catch(() => undefined);
    if (after && identityText(after) === identityText(before)) await stampLayer(p, blob.digest, after);
    return true;
  }
  await unlink(dest).catch(() => undefined);
  return false;
}

/** A layer blob's stamp (see the header); layout-gc.ts removes it with the blob. */
export const stampFile = (p: LayoutPaths, d: Digest) => join(p.root, '.imgbuild', 'verified', digestHex(d));
/** With the change time, unlike the store's stamp: a write that puts the mtime back still sets it. */
const identityText = (st: Stats) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
const stampLayer = (p: LayoutPaths, d: Digest, st: Stats) => writeStamp(p.tmp, stampFile(p, d), identityText(st));

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
