/**
 * Reading a file on a live file system (DESIGN promise 3). A file is opened without following
 * symlinks, fstat'ed before and after the read, and the bytes count only if nothing changed in
 * between: same size, mtime and inode, and the same ctime unless the link count moved (a store
 * optimiser hard-linking the file changes ctime and nlink, not the content); a small file read
 * in one go needs only the fstat after, when its ctime is older than the open (readSmallSync).
 * Small files are read whole and retried a few times; large files are streamed, so a change is
 * only known at the end and the caller must start over, unless only the ctime moved (a link made
 * and removed again during the stream leaves the link count as it was): then a second read that
 * sees nothing move at all decides. A path that is gone or no longer a regular file is reported
 * as such, never silently skipped.
 */
import { createHash } from 'node:crypto';
import { close, closeSync, constants, fstat, fstatSync, open, openSync, read, readSync, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImgbuildError } from '../errors.js';
import { digestOf, sha256, type Digest } from '../image/digest.js';
import { changedTooRecently } from '../util/change-time.js';

/**
 * Files up to this size are read into memory whole, first synchronously (readSmallSync,
 * digestSmallSync: for page-cached files a thread-pool round trip per syscall costs several
 * times the read itself); larger ones are streamed.
 */
export const SMALL_FILE_MAX = 8 * 1024 * 1024;
const READ_ATTEMPTS = 5;
const STREAM_CHUNK = 1 << 20;
// O_NONBLOCK: a path swapped for a FIFO must not hang the open; it is a no-op on regular files.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Timestamps come from a coarse clock, and a writer updates mtime when a write starts, not when
 * it ends: a file modified this recently when we open it may be mid-write, or be rewritten to
 * the same size within the same tick, and the fstat check could not tell. Such a "racily clean"
 * file (git's term) is not read now: we wait until it is older and open it again.
 */
const RACY_MS = 50;
export function isRacy(st: Pick<Stats, 'mtimeMs'>, nowMs = Date.now()): boolean {
  return racyForMs(st, nowMs) > 0;
}

/** How much longer `st` stays racy. mtime only: a hard link added by a store optimiser moves ctime, and is not a change. */
function racyForMs(st: Pick<Stats, 'mtimeMs'>, nowMs = Date.now()): number {
  const age = nowMs - st.mtimeMs;
  // A file stamped well in the future (clock skew, an unpacked archive) is old, not being written:
  // waiting would never end.
  return age < -FUTURE_SLACK_MS ? 0 : Math.max(0, RACY_MS - age);
}
const FUTURE_SLACK_MS = 1000;

const openP = promisify(open);
const closeP = promisify(close);
const readP = promisify(read);
const fstatP = (fd: number) => new Promise<Stats>((res, rej) => fstat(fd, (e, st) => (e ? rej(e) : res(st))));

export type ChangeReason = 'vanished' | 'type' | 'changed';

/** A source file that vanished, changed type, or changed while being read. */
export class FileChangedError extends ImgbuildError {
  constructor(
    readonly path: string,
    readonly reason: ChangeReason,
  ) {
    super('build', changeMessage(path, reason), 'stop whatever is writing to it during the build, or exclude it');
    this.name = 'FileChangedError';
  }
}

function changeMessage(path: string, reason: ChangeReason): string {
  if (reason === 'vanished') return `${path} vanished while the layer was being built`;
  if (reason === 'type') return `${path} is no longer a regular file (it was replaced while the layer was being built)`;
  return `${path} changed while being read`;
}

/**
 * True when two fstats of one file show the same content (a link-count change alone is not a
 * change). Times are Node's double milliseconds (about 0.25 us resolution today): two states
 * closer than that are also within the racy margin, which is waited out before any read.
 */
export function sameContentStat(a: Stats, b: Stats): boolean {
  return sameSizeAndMtime(a, b) && (a.ctimeMs === b.ctimeMs || a.nlink !== b.nlink);
}

/** The same file with the same size and mtime: the ctime may still say its bytes changed (a rewrite whose mtime was put back). */
function sameSizeAndMtime(a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.dev === b.dev;
}

/** An open regular file and its stat at open time. The caller must close it. */
export interface OpenFile {
  path: string;
  fd: number;
  stat: Stats;
}

export async function openRegular(path: string): Promise<OpenFile> {
  let fd: number;
  try {
    fd = await openP(path, OPEN_FLAGS);
  } catch (e) {
    throw openError(path, e as NodeJS.ErrnoException);
  }
  const stat = await fstatP(fd).catch(async (e) => {
    await closeP(fd);
    throw e;
  });
  if (!stat.isFile()) {
    await closeP(fd);
    throw new FileChangedError(path, 'type');
  }
  return { path, fd, stat };
}

function openError(path: string, e: NodeJS.ErrnoException): Error {
  if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return new FileChangedError(path, 'vanished');
  if (e.code === 'ELOOP') return new FileChangedError(path, 'type');
  if (e.code === 'EACCES' || e.code === 'EPERM') {
    return new ImgbuildError('build', `cannot read ${path}: permission denied`);
  }
  return new ImgbuildError('build', `cannot open ${path}: ${e.code ?? e.message}`);
}

export const closeFile = (f: OpenFile) => closeP(f.fd).catch(() => undefined);

export type StableRead = { kind: 'bytes'; bytes: Buffer; stat: Stats } | { kind: 'open'; file: OpenFile };

/**
 * Read `path` stably. Up to SMALL_FILE_MAX: its bytes, retried while it keeps changing, then a
 * build error naming it. Larger: the open file, for `streamStable`.
 */
export async function readStable(path: string): Promise<StableRead> {
  for (let attempt = 1; ; attempt++) {
    const file = await openRegular(path);
    const wait = racyForMs(file.stat);
    if (wait > 0) {
      await closeFile(file);
      if (attempt === READ_ATTEMPTS) throw keptChanging(path);
      // The whole wait: a file stamped up to FUTURE_SLACK_MS ahead is not old before then, and
      // checks RACY_MS apart ran out of attempts first ("kept changing", though it never did).
      await sleep(wait + 1);
      continue;
    }
    if (file.stat.size > SMALL_FILE_MAX) return { kind: 'open', file };
    const bytes = await readWhole(file).finally(() => closeFile(file));
    if (bytes) return { kind: 'bytes', bytes, stat: file.stat };
    if (attempt === READ_ATTEMPTS) throw keptChanging(path);
    await sleep(10 * 2 ** attempt);
  }
}

/** What the fast path reads before it knows a file's size: most source files are smaller. */
export const FIRST_READ = 64 << 10;

/**
 * The fast path for small files: synchronous open, read, fstat and close, no promises.
 * Page-cached small files are read far faster this way than through the thread pool, the way
 * tar itself reads them. Returns undefined (and the caller takes the async path, which
 * retries with backoff or streams) when the file is larger than `maxSize` or may have changed
 * during the read; a vanished or retyped path throws FileChangedError as the async path does.
 *
 * A file that fits in FIRST_READ is read before it is fstat'ed, and one fstat after the read
 * vouches for the bytes when its ctime is older than the open: nothing has touched the file
 * since, so nothing touched it during the read (the stat cache trusts a digest the same way).
 * A file changed a moment before, even by a hard link only, takes the async path, which compares
 * an fstat before the read with one after. A larger file keeps its first read on the same ground
 * and reads only the rest after that fstat, so each byte is read once. One fstat less per file: a
 * cold build's fstats were a fifth of everything it allocated (an `fs.Stats` holds four Dates),
 * which the young generation's collections then had to sweep.
 */
export function readSmallSync(
  path: string,
  maxSize: number,
  alloc: (n: number) => Buffer = Buffer.allocUnsafe,
): { bytes: Buffer; stat: Stats } | undefined {
  const openedAt = Date.now();
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (e) {
    throw openError(path, e as NodeJS.ErrnoException);
  }
  try {
    const first = alloc(Math.min(FIRST_READ, maxSize + 1));
    // A short read of a regular file is its end; the fstat below says whether it is one.
    const whole = readAt(fd, path, first, 0);
    if (whole < first.length) {
      const stat = regularStat(fd, path);
      if (stat.size !== whole || changedTooRecently(stat.ctimeMs, openedAt)) return undefined;
      return { bytes: first.subarray(0, whole), stat };
    }
    const stat = regularStat(fd, path);
    // Too large, or too fresh to trust (the async path waits it out).
    if (stat.size > maxSize || isRacy(stat)) return undefined;
    const size = stat.size;
    const buf = alloc(size + 1);
    // The first read stands when nothing has touched the file since the open, as a small file's
    // does; the fstat after the rest vouches for that. A file changed a moment before is read again.
    let got = changedTooRecently(stat.ctimeMs, openedAt) ? 0 : whole;
    // Often already in place: the scratch buffer hands out its start again unless it had to grow.
    if (got > 0 && !(buf.buffer === first.buffer && buf.byteOffset === first.byteOffset)) first.copy(buf, 0, 0, got);
    for (;;) {
      const n = readAt(fd, path, buf, got);
      got += n;
      if (n === 0 || got >= size) break;
    }
    if (got !== size || !sameContentStat(stat, fstatSync(fd))) return undefined;
    return { bytes: buf.subarray(0, size), stat };
  } finally {
    closeSync(fd);
  }
}

/** The fstat of an open path that must still be a regular file. */
function regularStat(fd: number, path: string): Stats {
  const stat = fstatSync(fd);
  if (!stat.isFile()) throw new FileChangedError(path, 'type');
  return stat;
}

/**
 * One read into `buf` from `at` on, at that offset of the file. A path that is no longer a
 * regular file (a directory, a pipe) may fail it: that is said as the fstat says it.
 */
function readAt(fd: number, path: string, buf: Buffer, at: number): number {
  try {
    return readSync(fd, buf, at, buf.length - at, at);
  } catch (e) {
    regularStat(fd, path);
    throw e;
  }
}

/**
 * One buffer reused for read after read, grown when a read needs more: reading every file of a
 * layer into a buffer of its own leaves a buffer per file for the GC, which set the peak RSS. A
 * read's bytes are valid until the next `alloc`. It grows to KEPT_MAX at most: a larger read gets
 * a buffer of its own, so that one 7 MB file of a node_modules is not held for the rest of the
 * build (it was, and made a tenth of the corpus's cold build's peak).
 */
export class Scratch {
  static readonly KEPT_MAX = 1 << 20;
  #buf = Buffer.allocUnsafe(0);

  readonly alloc = (n: number): Buffer => {
    if (n > Scratch.KEPT_MAX) return Buffer.allocUnsafe(n);
    if (n > this.#buf.length) this.#buf = Buffer.allocUnsafe(Math.max(n, 64 << 10));
    return this.#buf.subarray(0, n);
  };
}

const digestScratch = new Scratch();

/**
 * The sha256 of a small file read stably in one synchronous step, through one reused buffer.
 * Undefined when the file is larger than SMALL_FILE_MAX, too fresh to trust, or changed during
 * the read: the caller then takes readStable.
 */
export function digestSmallSync(path: string): { digest: Digest; size: number; stat: Stats } | undefined {
  const r = readSmallSync(path, SMALL_FILE_MAX, digestScratch.alloc);
  return r && { digest: sha256(r.bytes), size: r.bytes.length, stat: r.stat };
}

export function keptChanging(path: string): ImgbuildError {
  return new ImgbuildError(
    'build',
    `${path} kept changing while being read (${READ_ATTEMPTS} attempts)`,
    'stop whatever is writing to it during the build, or exclude it from the layer',
  );
}

/** The file's bytes if they held still for the read, else undefined. */
async function readWhole(file: OpenFile): Promise<Buffer | undefined> {
  const size = file.stat.size;
  // One spare byte: a read that fills it proves the file grew since the fstat.
  const buf = Buffer.allocUnsafe(size + 1);
  let got = 0;
  for (;;) {
    const { bytesRead } = await readP(file.fd, buf, got, buf.length - got, got);
    got += bytesRead;
    // A short read at `size` is EOF on a regular file; growth after it shows in the fstat.
    if (bytesRead === 0 || got >= size) break;
  }
  const after = await fstatP(file.fd);
  if (got !== size || !sameContentStat(file.stat, after)) return undefined;
  return buf.subarray(0, size);
}

/**
 * Stream exactly `stat.size` bytes of an open file to `onChunk` (which may apply backpressure),
 * then check the file held still; resolves to the sha256 of the bytes streamed. Throws
 * FileChangedError('changed') if it did not; the bytes already delivered are then worthless and
 * the caller must start over. Always closes the file.
 *
 * When only the ctime moved (size, mtime and link count as they were), the stream may have met a
 * hard link made and removed again, which a store optimiser does, or a rewrite whose mtime was
 * put back: the file is read again, and the stream stands if a read that saw nothing move holds
 * the same bytes. Restarting instead failed every build of a large file that such a tool kept
 * linking.
 *
 * A chunk is valid until `onChunk` returns (or its promise settles): one buffer is read into
 * again and again. The reads are synchronous, like the small files': on the thread pool each
 * waited behind the gzip's blocks, and the layer's input stalled while a large file was read.
 */
export async function streamStable(file: OpenFile, onChunk: (chunk: Buffer) => void | Promise<void>): Promise<Digest> {
  try {
    const size = file.stat.size;
    const buf = Buffer.allocUnsafe(Math.min(STREAM_CHUNK, size));
    const hash = createHash('sha256');
    for (let pos = 0; pos < size; ) {
      const bytesRead = readSync(file.fd, buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) throw new FileChangedError(file.path, 'changed');
      pos += bytesRead;
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      await onChunk(chunk);
    }
    const digest = digestOf(hash);
    const after = await fstatP(file.fd);
    if (sameContentStat(file.stat, after)) return digest;
    if (sameSizeAndMtime(file.stat, after) && (await readsAgainAs(file, buf, digest))) return digest;
    throw new FileChangedError(file.path, 'changed');
  } finally {
    await closeFile(file);
  }
}

/**
 * Whether the open file, read again whole while nothing about it moves, holds the bytes whose
 * digest is `digest`. A read that sees the size or mtime move is a real change (false); one that
 * sees only the ctime move again is retried, a few times.
 */
async function readsAgainAs(file: OpenFile, buf: Buffer, digest: Digest): Promise<boolean> {
  const size = file.stat.size;
  for (let attempt = 1; attempt <= READ_ATTEMPTS; attempt++) {
    const before = await fstatP(file.fd);
    if (!sameSizeAndMtime(file.stat, before)) return false;
    const hash = createHash('sha256');
    for (let pos = 0; pos < size; ) {
      const bytesRead = readSync(file.fd, buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) return false;
      pos += bytesRead;
      hash.update(buf.subarray(0, bytesRead));
    }
    if (sameContentStat(before, await fstatP(file.fd))) return digestOf(hash) === digest;
    await sleep(10 * 2 ** attempt);
  }
  return false;
}
