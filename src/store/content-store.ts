/**
 * The content-addressed blob store shared by every imgbuild process on a machine:
 * `<root>/blobs/sha256/<hex>`, written only through temp file + rename (see BlobWriter), so
 * any number of processes may read and write it at once and a SIGKILL at any moment leaves
 * it valid. Reads verify: a blob whose bytes do not hash to its name is reported as an error
 * and removed, never handed on as if it were good.
 */
import { createReadStream, type Stats } from 'node:fs';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { digestHex, digestOf, digestOfFile, sha256, type Digest } from '../image/digest.js';
import { ImgbuildError } from '../errors.js';
import { sweepStaleTemps, tempPath, unlinkQuiet, writeStamp } from './atomic.js';
import { ensureCacheDir } from './cache-dir.js';
import { BlobWriter } from './blob-writer.js';

export { BlobWriter, type CommittedBlob } from './blob-writer.js';

/** Where a blob's last use is marked (store/prune.ts), and where its verified stamp is kept: `<dir>/<hex>` under the store's root. */
export const USED_DIR = 'used';
export const VERIFIED_DIR = 'verified';
/** Where a base layer found clean is marked, `<prefix><rules>/<hex>` (run/base.ts checkBaseLayers); pruning a blob takes its marks under every rules version. */
export const CHECKED_DIR_PREFIX = 'checked-';

/** Where a store keeps its blobs, `<hex>` each (store/prune.ts reads it without opening the store, which would make it). */
export const blobsDirOf = (root: string): string => join(root, 'blobs', 'sha256');

/** What a blob file's stat must still say for it to be the file this process wrote (see `writtenHere`). */
type FileIdentity = Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs'>;

const sameFile = (a: FileIdentity, b: FileIdentity) => a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
const identityText = ({ dev, ino, size, mtimeMs }: FileIdentity) => `${dev}:${ino}:${size}:${mtimeMs}`;

export class ContentStore {
  /** Blobs this process published, each with its file's stat as it was written. */
  readonly #published = new Map<Digest, FileIdentity>();

  private constructor(readonly root: string) {}

  /** Create the layout if needed and sweep temp files left by killed processes. */
  static async open(root: string): Promise<ContentStore> {
    const store = new ContentStore(root);
    await ensureCacheDir(root, blobsDirOf(root), store.tmpDir);
    await sweepStaleTemps(store.tmpDir);
    return store;
  }

  /** Where temp files go: same file system as blobs/, so rename is atomic. */
  get tmpDir(): string {
    return join(this.root, 'tmp');
  }

  blobPath(d: Digest): string {
    return join(blobsDirOf(this.root), digestHex(d));
  }

  async has(d: Digest): Promise<boolean> {
    try {
      return (await stat(this.blobPath(d))).isFile();
    } catch {
      return false;
    }
  }

  /**
   * `stamp`: record the blob as verified (see `vouchedFor`), for a blob an output may link; small
   * documents are copied, never linked. A blob written again that was there already keeps its old
   * file, and mtime: it is marked used (`markUsed`), or `cache prune` would take it as unused.
   */
  createWriter(stamp = true): BlobWriter {
    return new BlobWriter(
      tempPath(this.tmpDir),
      (d) => this.blobPath(d),
      (d, { dev, ino, size, mtimeMs }) => {
        this.#published.set(d, { dev, ino, size, mtimeMs });
        return stamp ? this.#stamp(d, { dev, ino, size, mtimeMs }) : undefined;
      },
      (d) => this.markUsed([d]),
    );
  }

  /**
   * Whether the blob's file is known good without reading it: written here (`writtenHere`), or
   * still the file it was when it was last written or hashed, by this process or another (its
   * stamp under `verified/`: same inode, size and mtime). A blob written over in place, which an
   * OCI layout hard-linked from the store would share, has another mtime and is read again.
   */
  async vouchedFor(d: Digest): Promise<boolean> {
    if (await this.writtenHere(d)) return true;
    const [stamp, now] = await Promise.all([readFile(this.#stampPath(d), 'utf8').catch(() => undefined), stat(this.blobPath(d)).catch(() => undefined)]);
    return stamp !== undefined && now !== undefined && stamp === identityText(now);
  }

  #stampPath(d: Digest): string {
    return join(this.root, VERIFIED_DIR, digestHex(d));
  }

  /**
   * Marks the blobs among `digests` that the store holds as used now, for `cache prune` to keep
   * (a mark's mtime: touching the blob itself would change the stat its stamp and an output's
   * hard link vouch for). Only an optimisation: a mark that cannot be written costs nothing here.
   */
  async markUsed(digests: readonly Digest[]): Promise<void> {
    const dir = join(this.root, USED_DIR);
    const now = new Date();
    await Promise.all(
      digests.map(async (d) => {
        const mark = join(dir, digestHex(d));
        try {
          await utimes(mark, now, now);
        } catch {
          if (!(await this.has(d))) return;
          await mkdir(dir, { recursive: true }).catch(() => undefined);
          await writeFile(mark, '').catch(() => undefined);
        }
      }),
    );
  }

  #stamp(d: Digest, id: FileIdentity): Promise<void> {
    return writeStamp(this.tmpDir, this.#stampPath(d), identityText(id));
  }

  /**
   * Whether the blob's file is still the one this process wrote, hashing the bytes as it wrote
   * them: same inode, size and mtime. Such a file needs no reading again before it is linked
   * out; any other (found in the cache, or replaced since) is checked by whoever links it.
   */
  async writtenHere(d: Digest): Promise<boolean> {
    const ours = this.#published.get(d);
    if (!ours) return false;
    const now = await stat(this.blobPath(d)).catch(() => undefined);
    return now !== undefined && sameFile(ours, now);
  }

  async putBytes(bytes: Uint8Array, expected?: Digest): Promise<Digest> {
    const digest = sha256(bytes);
    if (expected !== undefined && expected !== digest) {
      throw new ImgbuildError('build', `content does not match its digest: expected ${expected}, got ${digest}`);
    }
    if (await this.has(digest)) return digest;
    const w = this.createWriter(false);
    w.end(bytes);
    return (await w.commit(digest)).digest;
  }

  /** The blob's bytes, streamed; the stream fails at its end if they do not match `d`. */
  readStream(d: Digest): Readable {
    const hash = createHash('sha256');
    const check = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
      flush: (cb) => {
        const actual = digestOf(hash);
        if (actual === d) return cb();
        void this.#evict(d).then(() => cb(this.#corrupt(d, actual)));
      },
    });
    const src = createReadStream(this.blobPath(d), { highWaterMark: 1 << 20 });
    src.on('error', (e) => check.destroy(this.#readError(d, e)));
    // A reader that stops early must not leave the file open.
    check.on('close', () => src.destroy());
    return src.pipe(check);
  }

  /** A whole blob in memory: for small JSON documents (configs, manifests) only. */
  async readBytes(d: Digest): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.blobPath(d));
    } catch (e) {
      throw this.#readError(d, e);
    }
    const actual = sha256(bytes);
    if (actual !== d) {
      await this.#evict(d);
      throw this.#corrupt(d, actual);
    }
    return bytes;
  }

  /**
   * Rehash the blob: true when present and intact. An intact file that held still while it was
   * read (the same stat before and after) is stamped so (see `vouchedFor`); one written to meanwhile
   * is not, or the stamp would vouch for bytes no one read.
   */
  async verify(d: Digest): Promise<boolean> {
    const path = this.blobPath(d);
    const before = await stat(path).catch(() => undefined);
    if (!before || !(await digestOfFile(path).then((actual) => actual === d, () => false))) return false;
    const after = await stat(path).catch(() => undefined);
    if (after && sameFile(before, after)) await this.#stamp(d, after);
    return true;
  }

  #readError(d: Digest, e: unknown): Error {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      return new ImgbuildError('build', `blob ${d} is not in the cache at ${this.root}`);
    }
    return e as Error;
  }

  // Removing a bad blob is always safe: absent only means "build or fetch it again".
  async #evict(d: Digest): Promise<void> {
    await unlinkQuiet(this.blobPath(d)).catch(() => undefined);
  }

  #corrupt(d: Digest, actual: Digest): ImgbuildError {
    return new ImgbuildError(
      'build',
      `cached blob ${d} is corrupt (its content hashes to ${actual}); it has been removed`,
      'run the build again to recreate it',
    );
  }
}
