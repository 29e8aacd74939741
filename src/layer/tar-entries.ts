/**
 * Writes a layer plan's entries, in order, into a tar-stream pack, reading each source file
 * stably as it goes, and reports what actually went in: the plan's entries with each file's
 * size and digest replaced by those of the bytes really written. Every header carries the
 * exact length of the body that follows it; a file that cannot be read as one consistent
 * version raises FileChangedError (or a build error) instead of being dropped. Small files take
 * a synchronous read and no promise; larger ones are read asynchronously or streamed.
 */
import type { Pack } from 'tar-stream';
import { createHash } from 'node:crypto';
import { digestOf, sha256, type Digest } from '../image/digest.js';
import type { FileEntry, PlanEntry } from '../plan/types.js';
import { closeFile, readSmallSync, readStable, streamStable, SYNC_READ_MAX, type OpenFile } from './stable-read.js';
import { fileStatOf, type FileStat } from '../store/file-digests.js';
import { tarHeader } from './tar-header.js';
import { drained, PackWriter } from './pack-writer.js';

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
}

/**
 * Progress is throttled: a callback per file (each an event, a JSON line with --json) cost
 * more than reading the files when layers hold many small ones.
 */
export const PROGRESS_MS = 100;


const SLAB_SIZE = 4 << 20;

/**
 * Carves small-file buffers out of large slabs: one allocation per few hundred files instead
 * of one each (allocation and GC were a large share of the per-file cost). A slab lives until
 * the last file cut from it has gone through the pack, which the pack's queue bound limits.
 */
class Slabs {
  #slab = Buffer.allocUnsafe(0);
  #used = 0;

  readonly alloc = (n: number): Buffer => {
    if (n > SLAB_SIZE / 8) return Buffer.allocUnsafe(n);
    if (this.#used + n > this.#slab.length) {
      this.#slab = Buffer.allocUnsafe(SLAB_SIZE);
      this.#used = 0;
    }
    const b = this.#slab.subarray(this.#used, this.#used + n);
    this.#used += n;
    return b;
  };
}

/** Emit every entry; resolves with the entries as written (real sizes and digests). */
export async function emitEntries(pack: Pack, entries: readonly PlanEntry[], opts: EmitOptions): Promise<PlanEntry[]> {
  const w = new PackWriter(pack);
  const slabs = new Slabs();
  const written: PlanEntry[] = [];
  let files = 0;
  let bytes = 0;
  let reported = performance.now();
  for (const e of entries) {
    opts.signal?.throwIfAborted();
    if (e.type !== 'file') {
      w.add(tarHeader(e, opts.epoch));
      written.push(e);
      continue;
    }
    const real = emitSmallFile(w, e, opts, slabs) ?? (await emitFile(w, e, opts.epoch));
    written.push(real);
    files++;
    bytes += real.size;
    if (opts.onProgress && performance.now() - reported >= PROGRESS_MS) {
      reported = performance.now();
      opts.onProgress({ files, bytes });
    }
    await w.room();
  }
  await w.idle();
  if (files > 0) opts.onProgress?.({ files, bytes });
  return written;
}

/** The no-promise path; undefined when the file needs the async one. */
function emitSmallFile(w: PackWriter, e: FileEntry, opts: EmitOptions, slabs: Slabs): FileEntry | undefined {
  let body: Buffer;
  let digest: Digest | undefined;
  if (e.source.kind === 'inline') {
    body = Buffer.from(e.source.content, 'utf8');
  } else {
    if (e.size > SYNC_READ_MAX) return undefined;
    const r = readSmallSync(e.source.path, SYNC_READ_MAX, slabs.alloc);
    if (!r) return undefined;
    body = r.bytes;
    const known = opts.known?.(e.source.path, fileStatOf(r.stat));
    if (known === e.source.digest && r.bytes.length === e.size) digest = known;
  }
  w.add(tarHeader(e, opts.epoch, body.length), body);
  return withContent(e, body.length, digest ?? sha256(body));
}

async function emitFile(w: PackWriter, e: FileEntry, epoch: number): Promise<FileEntry> {
  const r = await readStable((e.source as { path: string }).path);
  if (r.kind === 'bytes') {
    w.add(tarHeader(e, epoch, r.bytes.length), r.bytes);
    return withContent(e, r.bytes.length, sha256(r.bytes));
  }
  try {
    await w.idle();
  } catch (err) {
    await closeFile(r.file); // streamFile owns the file only once it starts
    throw err;
  }
  const digest = await streamFile(w, e, r.file, epoch);
  return withContent(e, Number(r.file.stat.size), digest);
}

function withContent(e: FileEntry, size: number, digest: Digest): FileEntry {
  if (e.size === size && e.source.digest === digest) return e;
  return { ...e, size, source: { ...e.source, digest } };
}

/** A large file: header first (size from the open fstat), then the body with backpressure. */
async function streamFile(w: PackWriter, e: FileEntry, file: OpenFile, epoch: number): Promise<Digest> {
  const hash = createHash('sha256');
  let entry;
  try {
    entry = w.open(tarHeader(e, epoch, Number(file.stat.size)));
  } catch (err) {
    await closeFile(file);
    throw err;
  }
  const { sink, done } = entry;
  await streamStable(file, (chunk) => {
    hash.update(chunk);
    if (!sink.write(chunk)) return drained(sink);
  });
  sink.end(undefined);
  await done;
  return digestOf(hash);
}
