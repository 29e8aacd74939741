/**
 * The stat cache's records, column by column: the paths, six numbers per file in one
 * Float64Array (size, mtimeMs, ctimeMs, ino, dev, hashedAtMs) and each content digest as 32 raw
 * bytes in one buffer. On disk (format 3) the same columns follow a small header:
 *
 *   "imgbstat" | u32 version | u32 count | u32 context bytes | u32 path bytes
 *   | context (UTF-8) | zero padding to 8 | numbers (count x 6 float64, little-endian)
 *   | digests (count x 32 bytes) | paths (UTF-8, joined by NUL)
 *
 * Loading 20,000 records is one read, one copy of the numbers and one split of the paths: no
 * JSON to parse (format 2 spent 50 ms of a 0.5 s no-op build loading its 4 MB) and no per-record
 * check, since raw digest bytes are always a well-formed digest and a number that is not a real
 * stat (NaN, zeros from a torn write) simply never matches one. Anything else that does not add
 * up (magic, version, context, lengths, path count) makes the whole file an empty cache.
 */
import type { Digest } from '../image/digest.js';
import { align8, fromLittleEndian, nulJoinedLength, nulJoinedPieces, toLittleEndian } from './columns.js';
import type { FileStat } from './file-digests.js';

const MAGIC = Buffer.from('imgbstat', 'latin1');
export const STAT_FORMAT = 3;
const HEADER = MAGIC.length + 4 * 4;
const NUMS = 6;
const SIZE = 0, MTIME = 1, CTIME = 2, INO = 3, DEV = 4, HASHED_AT = 5;
const DIGEST_BYTES = 32;
const DIGEST_PREFIX = 'sha256:';

export class StatRecords {
  #paths: string[];
  #nums: Float64Array;
  #digests: Buffer;

  private constructor(paths: string[], nums: Float64Array, digests: Buffer) {
    this.#paths = paths;
    this.#nums = nums;
    this.#digests = digests;
  }

  static empty(): StatRecords {
    return new StatRecords([], new Float64Array(64 * NUMS), Buffer.alloc(64 * DIGEST_BYTES));
  }

  get count(): number {
    return this.#paths.length;
  }

  path(i: number): string {
    return this.#paths[i]!;
  }

  /** Whether record `i` was made for exactly this stat. */
  matches(i: number, st: FileStat): boolean {
    const n = this.#nums;
    const o = i * NUMS;
    return n[o + SIZE] === st.size && n[o + MTIME] === st.mtimeMs && n[o + CTIME] === st.ctimeMs && n[o + INO] === st.ino && n[o + DEV] === st.dev;
  }

  /** The stat record `i` was made for. */
  stat(i: number): FileStat {
    const n = this.#nums;
    const o = i * NUMS;
    return { size: n[o + SIZE]!, mtimeMs: n[o + MTIME]!, ctimeMs: n[o + CTIME]!, ino: n[o + INO]!, dev: n[o + DEV]! };
  }

  ctimeMs(i: number): number {
    return this.#nums[i * NUMS + CTIME]!;
  }

  hashedAtMs(i: number): number {
    return this.#nums[i * NUMS + HASHED_AT]!;
  }

  digest(i: number): Digest {
    return `${DIGEST_PREFIX}${this.#digests.toString('hex', i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES)}` as Digest;
  }

  /** Set record `i` (`count` appends one). */
  set(i: number, path: string, st: FileStat, digest: Digest, hashedAtMs: number): void {
    if (i === this.count) this.#grow(i + 1);
    this.#paths[i] = path;
    const n = this.#nums;
    const o = i * NUMS;
    n[o + SIZE] = st.size;
    n[o + MTIME] = st.mtimeMs;
    n[o + CTIME] = st.ctimeMs;
    n[o + INO] = st.ino;
    n[o + DEV] = st.dev;
    n[o + HASHED_AT] = hashedAtMs;
    this.#digests.write(digest.slice(DIGEST_PREFIX.length), i * DIGEST_BYTES, DIGEST_BYTES, 'hex');
  }

  /** The records whose index `keep` accepts, in their order, renumbered from 0. */
  retain(keep: (i: number) => boolean): StatRecords {
    const paths: string[] = [];
    const nums = new Float64Array(Math.max(64, this.count) * NUMS);
    const digests = Buffer.alloc(Math.max(64, this.count) * DIGEST_BYTES);
    for (let i = 0; i < this.count; i++) {
      if (!keep(i)) continue;
      const j = paths.length;
      paths.push(this.#paths[i]!);
      nums.set(this.#nums.subarray(i * NUMS, (i + 1) * NUMS), j * NUMS);
      this.#digests.copy(digests, j * DIGEST_BYTES, i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES);
    }
    return new StatRecords(paths, nums, digests);
  }

  #grow(count: number): void {
    if (count * NUMS > this.#nums.length) {
      const nums = new Float64Array(Math.max(count, 2 * this.count) * NUMS);
      nums.set(this.#nums);
      this.#nums = nums;
    }
    if (count * DIGEST_BYTES > this.#digests.length) {
      const digests = Buffer.alloc(Math.max(count, 2 * this.count) * DIGEST_BYTES);
      this.#digests.copy(digests);
      this.#digests = digests;
    }
  }

  /**
   * The file's bytes as pieces written one after another: the header, the numbers and digests,
   * and the paths a few thousand at a time, each made as the write before it is done. Never one
   * buffer of the whole file, nor all the paths' pieces at once: for 32,000 files the paths alone
   * are 2 MB of text, and the save comes at the end of a build, when its memory peaks.
   */
  *encode(context: string): Generator<Buffer> {
    const { nums, digests, paths } = this.columns();
    yield StatRecords.header(context, this.count, nulJoinedLength([paths]));
    yield nums;
    yield digests;
    yield* nulJoinedPieces([paths]);
  }

  /**
   * The records' three columns as the file holds them: the numbers (little-endian) and the
   * digests as copies, taken now, so that a record set while they are written does not tear; the
   * paths as a list of their own (the first `count` never change: a record's path is its key).
   */
  columns(): { nums: Buffer; digests: Buffer; paths: string[] } {
    const count = this.count;
    return {
      nums: Buffer.from(toLittleEndian(this.#nums.subarray(0, count * NUMS))),
      digests: Buffer.from(this.#digests.subarray(0, count * DIGEST_BYTES)),
      paths: this.#paths.slice(0, count),
    };
  }

  /** The head of a file of `count` records for `context`, whose paths take `pathBytes` (the columns follow it). */
  static header(context: string, count: number, pathBytes: number): Buffer {
    const ctx = Buffer.from(context, 'utf8');
    const head = Buffer.alloc(align8(HEADER + ctx.length));
    MAGIC.copy(head, 0);
    let at = MAGIC.length;
    for (const v of [STAT_FORMAT, count, ctx.length, pathBytes]) at = head.writeUInt32LE(v, at);
    ctx.copy(head, HEADER);
    return head;
  }

  /** The records in `buf`, or undefined when it is not a format-3 file for `context`. */
  static decode(buf: Buffer, context: string): StatRecords | undefined {
    if (buf.length < HEADER || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
    const [version, count, ctxLen, pathLen] = [0, 1, 2, 3].map((k) => buf.readUInt32LE(MAGIC.length + 4 * k)) as [number, number, number, number];
    if (version !== STAT_FORMAT) return undefined;
    const numsAt = align8(HEADER + ctxLen);
    const numBytes = count * NUMS * 8;
    const digestsAt = numsAt + numBytes;
    const pathsAt = digestsAt + count * DIGEST_BYTES;
    if (buf.length !== pathsAt + pathLen) return undefined;
    if (buf.toString('utf8', HEADER, HEADER + ctxLen) !== context) return undefined;
    const paths = count === 0 ? [] : buf.toString('utf8', pathsAt, pathsAt + pathLen).split('\0');
    if (paths.length !== count) return undefined;
    // A copy: readFile's buffer need not be 8-byte aligned for a Float64Array view.
    const nums = fromLittleEndian(buf.subarray(numsAt, digestsAt));
    return new StatRecords(paths, nums, Buffer.from(buf.subarray(digestsAt, pathsAt)));
  }
}
