/**
 * Writes a layer plan's entries, in order, as tar into TarChunks, reading each source file
 * stably as it goes, and reports what actually went in: the plan's entries with each file's
 * size and digest replaced by those of the bytes really written. Every header carries the
 * exact length of the body that follows it; a file that cannot be read as one consistent
 * version raises FileChangedError (or a build error) instead of being dropped.
 *
 * Files up to SMALL_FILE_MAX are read whole, synchronously, into one reused buffer (for
 * page-cached files a thread-pool trip per syscall costs several times the read), checked
 * and only then written; a file too fresh to trust or changing under the read takes the async
 * path, which waits and retries. Larger files are streamed, so a change is only seen at the
 * end and the layer starts over (build-layer.ts).
 */
import { sha256, type Digest } from '../image/digest.js';
import { defaultFileMode, FROM_FILE, UNHASHED, type FileEntry, type PlanEntry } from '../plan/types.js';
import type { FileStat, HashedFile } from '../store/file-digests.js';
import { readSmallSync, readStable, Scratch, SMALL_FILE_MAX, streamStable, type OpenFile } from './stable-read.js';
import type { TarChunks } from './tar-chunks.js';
import { encodeTarHeader } from './tar-format.js';
import { tarHeader } from './tar-header.js';

export interface EmitOptions {
  epoch: number;
  signal?: AbortSignal;
  /** Called at most every PROGRESS_MS while files are written, and once with the final counts. */
  onProgress?: (p: { files: number; bytes: number }) => void;
  /**
   * The stat cache's digest for a file in exactly this state, if it has one. Trusted as the
   * planner trusts it: a file read whole and unchanged (fstat before and after) whose stat the
   * cache knows is not hashed a second time.
   */
  known?: (path: string, st: FileStat) => Digest | undefined;
  /** Told each file this writer hashed (the stat cache keeps it), with the clock before its read. */
  remember?: (path: string, hashed: HashedFile, hashedAtMs: number) => void;
}

/**
 * Progress is throttled: a callback per file (each an event, a JSON line with --json) cost
 * more than reading the files when layers hold many small ones.
 */
export const PROGRESS_MS = 100;

/** Emit every entry and end the archive, telling `written` each entry as it went in (real size and digest). */
export async function emitEntries(tar: TarChunks, entries: Iterable<PlanEntry>, opts: EmitOptions, written: (e: PlanEntry) => void): Promise<void> {
  const scratch = new Scratch();
  let files = 0;
  let bytes = 0;
  let reported = performance.now();
  for (const e of entries) {
    opts.signal?.throwIfAborted();
    if (e.type !== 'file') {
      tar.write(encodeTarHeader(tarHeader(e, opts.epoch)));
      written(e);
      continue;
    }
    const real = e.source.kind === 'inline' ? emitInline(tar, e, opts.epoch) : (emitWholeSync(tar, e, opts, scratch) ?? (await emitFile(tar, e, opts)));
    written(real);
    files++;
    bytes += real.size;
    if (opts.onProgress && performance.now() - reported >= PROGRESS_MS) {
      reported = performance.now();
      opts.onProgress({ files, bytes });
    }
    if (tar.full) await tar.room();
  }
  await tar.end();
  if (files > 0) opts.onProgress?.({ files, bytes });
}

/** Inline content: the plan's digest is already that of these bytes. */
function emitInline(tar: TarChunks, e: FileEntry, epoch: number): FileEntry {
  const body = Buffer.from((e.source as { content: string }).content, 'utf8');
  writeFile(tar, e, epoch, body);
  return withContent(e, body.length, e.source.digest);
}

function writeFile(tar: TarChunks, e: FileEntry, epoch: number, body: Buffer): void {
  tar.write(encodeTarHeader(tarHeader(e, epoch, body.length)));
  tar.write(body);
  tar.pad(body.length);
}

/** The no-promise path; undefined when the file needs the async one. */
function emitWholeSync(tar: TarChunks, e: FileEntry, opts: EmitOptions, scratch: Scratch): FileEntry | undefined {
  if (e.size > SMALL_FILE_MAX) return undefined;
  const path = (e.source as { path: string }).path;
  const startedAt = Date.now();
  const r = readSmallSync(path, SMALL_FILE_MAX, scratch.alloc);
  if (!r) return undefined;
  const body = r.bytes;
  settleMode(e, r.stat);
  writeFile(tar, e, opts.epoch, body);
  // A digest the plan has is kept when the stat cache vouches for the state just read.
  if (e.source.digest !== UNHASHED && body.length === e.size && opts.known?.(path, r.stat) === e.source.digest) return e;
  const digest = sha256(body);
  opts.remember?.(path, { digest, size: body.length, stat: r.stat }, startedAt);
  return withContent(e, body.length, digest);
}

async function emitFile(tar: TarChunks, e: FileEntry, opts: EmitOptions): Promise<FileEntry> {
  const path = (e.source as { path: string }).path;
  const startedAt = Date.now();
  const r = await readStable(path);
  settleMode(e, r.kind === 'bytes' ? r.stat : r.file.stat);
  let hashed: HashedFile;
  if (r.kind === 'bytes') {
    writeFile(tar, e, opts.epoch, r.bytes);
    hashed = { digest: sha256(r.bytes), size: r.bytes.length, stat: r.stat };
  } else {
    hashed = { digest: await streamFile(tar, e, r.file, opts.epoch), size: bodySize(r.file), stat: r.file.stat };
  }
  opts.remember?.(path, hashed, startedAt);
  return withContent(e, hashed.size, hashed.digest);
}

/**
 * A mode the plan left to the file's exec bit (FROM_FILE), from the stat of the bytes being
 * written, filled in where it stands as `withContent` fills the rest. A layer that starts over
 * in `apply` does so with a fresh plan; one given no `replan` keeps the mode its file had when
 * first read.
 */
function settleMode(e: FileEntry, st: { mode: number }): void {
  if (e.mode === FROM_FILE) e.mode = defaultFileMode((st.mode & 0o111) !== 0);
}

function withContent(e: FileEntry, size: number, digest: Digest): FileEntry {
  if (e.size === size && e.source.digest === digest) return e;
  if ((e.size === size || e.size === FROM_FILE) && (e.source.digest === digest || e.source.digest === UNHASHED)) {
    // What the plan left to the writer (CompileOptions.hashLater) is filled in where it stands:
    // a copy of every entry of a cold build was a large share of its peak memory.
    e.size = size;
    e.source.digest = digest;
    return e;
  }
  return { ...e, size, source: { ...e.source, digest } };
}

/** A large file: header first (size from the open fstat), then the body with backpressure. */
async function streamFile(tar: TarChunks, e: FileEntry, file: OpenFile, epoch: number): Promise<Digest> {
  const size = bodySize(file);
  tar.write(encodeTarHeader(tarHeader(e, epoch, size)));
  const digest = await streamStable(file, async (chunk) => {
    tar.write(chunk);
    if (tar.full) await tar.room();
  });
  tar.pad(size);
  return digest;
}

const INT32_MAX = 2 ** 31 - 1;

/**
 * A streamed file's size, from its fstat, held as the other files' sizes are. A `fs.Stats` field
 * is a double, while a body read whole has a small-integer length, which V8 keeps in an entry's
 * `size` untagged (a Smi). The first double written there changed the shape of every file entry
 * and tar header, and V8 threw away each optimised function that had seen them (the header, the
 * layer key, the stat cache's record, the writer's loop) and compiled them again: a cold build of
 * the bench's node_modules met that at its first file over 8 MiB. An int32 stays a Smi.
 */
function bodySize(file: OpenFile): number {
  const size = file.stat.size;
  return size <= INT32_MAX ? size | 0 : size;
}
