/**
 * A first build's stat records, kept on disk as they are made rather than in memory. A first
 * build of a context hashes every file as the layer writer reads it (plan/compile.ts, hashLater)
 * and needs none of those records again until the next build, so each batch of them goes to the
 * cache's tmp/ at once, one temp file per column of the stat cache's file (stat-records.ts), and
 * the save copies the three into that file behind its header.
 *
 * Why: held in memory, the records of a 32,000-file tree (their paths, a map from path to record,
 * the columns) took 7 to 8 MB of its cold build's 86 MB peak, growing with the file count as
 * nothing else of a first build still does (plan/packed-layer.ts).
 *
 * A path recorded twice (a layer that started over after a file changed) is in the file twice;
 * whoever loads it keeps the later record (file-digests.ts).
 */
import type { FileHandle } from 'node:fs/promises';
import { open, unlink } from 'node:fs/promises';
import type { Digest } from '../image/digest.js';
import { settledTemp, tempPath } from './atomic.js';
import type { FileStat } from './file-digests.js';
import { StatRecords } from './stat-records.js';
import { nulJoinedLength, nulJoinedPieces } from './columns.js';

const BATCH = 1024;
const READ_PIECE = 256 << 10;

/** One temp file holding one column, appended to. */
interface Part {
  path: string;
  file: FileHandle;
  bytes: number;
}

export class StatJournal {
  #batch = StatRecords.empty();
  #count = 0;
  #pathBytes = 0;
  #parts: Promise<Part[]> | undefined;
  /** The appends so far, one after another; rejected once one failed (the save then fails). */
  #writing: Promise<void> = Promise.resolve();

  constructor(private readonly tmpDir: string) {}

  add(path: string, st: FileStat, digest: Digest, hashedAtMs: number): void {
    this.#batch.set(this.#batch.count, path, st, digest, hashedAtMs);
    if (this.#batch.count >= BATCH) this.#flush();
  }

  /**
   * The stat cache's file for `context`, as pieces: its header, then each column read back from
   * its temp file. The temp files are removed once read, or once this fails.
   */
  async *pieces(context: string): AsyncGenerator<Buffer> {
    this.#flush();
    try {
      await this.#writing;
      const parts = this.#parts ? await this.#parts : [];
      yield StatRecords.header(context, this.#count, this.#pathBytes);
      for (const part of parts) yield* readBack(part);
    } finally {
      await this.#discard();
    }
  }

  #flush(): void {
    const batch = this.#batch;
    if (batch.count === 0) return;
    this.#batch = StatRecords.empty();
    const { nums, digests, paths } = batch.columns();
    const first = this.#count === 0;
    this.#pathBytes += nulJoinedLength([paths]) + (first ? 0 : 1);
    this.#count += batch.count;
    const pathPieces = [...nulJoinedPieces([paths])];
    // Between one batch's paths and the next's, the NUL that joins them.
    if (!first) pathPieces.unshift(Buffer.from('\0'));
    const parts = (this.#parts ??= this.#openParts());
    // Chained: each batch goes after the one before it, in every column.
    this.#writing = this.#writing.then(async () => {
      const [numsPart, digestsPart, pathsPart] = await parts;
      await append(numsPart!, [nums]);
      await append(digestsPart!, [digests]);
      await append(pathsPart!, pathPieces);
    });
    this.#writing.catch(() => undefined); // seen by `pieces`
  }

  /** The numbers', the digests' and the paths' temp files. */
  async #openParts(): Promise<Part[]> {
    const parts: Part[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const path = tempPath(this.tmpDir, '.stat-part');
        try {
          parts.push({ path, file: await open(path, 'wx+', 0o600), bytes: 0 });
        } catch (e) {
          settledTemp(path);
          throw e;
        }
      }
      return parts;
    } catch (e) {
      await removeParts(parts);
      throw e;
    }
  }

  async #discard(): Promise<void> {
    const parts = await this.#parts?.catch(() => [] as Part[]);
    this.#parts = undefined;
    await removeParts(parts ?? []);
  }
}

async function removeParts(parts: readonly Part[]): Promise<void> {
  for (const part of parts) {
    await part.file.close().catch(() => undefined);
    await unlink(part.path).catch(() => undefined);
    settledTemp(part.path);
  }
}

async function append(part: Part, pieces: readonly Buffer[]): Promise<void> {
  for (const piece of pieces) {
    await part.file.write(piece, 0, piece.length, part.bytes);
    part.bytes += piece.length;
  }
}

async function* readBack(part: Part): AsyncGenerator<Buffer> {
  for (let at = 0; at < part.bytes; ) {
    const piece = Buffer.allocUnsafe(Math.min(READ_PIECE, part.bytes - at));
    const { bytesRead } = await part.file.read(piece, 0, piece.length, at);
    if (bytesRead !== piece.length) throw new Error(`stat cache: a temp file ended early (${part.path})`);
    at += bytesRead;
    yield piece;
  }
}
