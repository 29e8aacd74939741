/**
 * Records of layer walks (see plan/unchanged-layer.ts): what one walk of a layer's directory
 * saw, so that the next plan can tell with one lstat per path, and without reading a directory,
 * that nothing changed. One file per layer of a spec under `<root>/walks/`, named by the layer's
 * identity (context, spec file, layer name) and replaced whole by the next walk of that layer.
 *
 * On disk the record is columns, like the stat cache's (stat-records.ts), and it is checked
 * column by column as loaded, with no object per file:
 *
 *   "imgbwalk" | u32 version | u32 meta bytes | u32 dirs | u32 files | u32 dir entries | u32 path bytes
 *   | meta (JSON: inputs, cacheKey, files, bytes) | zero padding to 8
 *   | float64 LE: dir stamps (4 each), file stats (5 each), dir entry metadata (3 each)
 *   | paths (UTF-8, joined by NUL): dirs, files, dir entries, links
 *   | sha256 of all the bytes before it (32 bytes)
 *
 * A record is only an optimisation: anything that does not add up reads as no record, and the
 * layer is walked again. The stats and their paths are checked against the file system when the
 * record is used, but the rest is taken as read: a byte flipped in a directory entry's mode (for
 * the implied parents of the layers above), a link target or the key went into the next image,
 * which the trailing digest stops.
 */
import { mkdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { digestHex, isDigest, sha256, type Digest } from '../image/digest.js';
import type { DirEntry } from '../plan/types.js';
import { writeFileAtomic } from './atomic.js';
import { align8, fromLittleEndian, nulJoined, toLittleEndian, type NumberColumn } from './columns.js';
import type { FileStat } from './file-digests.js';

const MAGIC = Buffer.from('imgbwalk', 'latin1');
/** 2: the layer's symlinks too (linkPaths); 3: the directories its entries imply (impliedDirs); 4: its symlinks' targets (linkTargets); 5: the trailing digest; 6: its directory copies' destinations; 7: and the parents it implies over a lower layer's directories. */
const FORMAT = 7;
const CHECK_BYTES = 32;
const HEADER = MAGIC.length + 7 * 4;
const ENTRY_NUMS = 3;

/** What a directory's lstat says of its listing: an entry added, removed or renamed moves its times. */
export type DirStamp = Omit<FileStat, 'size'>;

/** What one walk saw, to be saved: columns, as the walk collects them (no object per file). */
export interface WalkSnapshot {
  /** Digest of everything besides the file system that decides the layer (unchanged-layer.ts). */
  inputs: Digest;
  cacheKey: Digest;
  files: number;
  bytes: number;
  /** Each directory listed, stamped just before it was read (`stampDir`). */
  dirPaths: readonly string[];
  dirStamps: Float64Array;
  /** The layer's files in entry order: path and stat (`statFile`), a stat the stat cache trusted with the digest the key was made from. */
  filePaths: readonly string[];
  fileStats: Float64Array;
  /** The layer's directory entries, for the implied parents of the layers above it. */
  dirEntries: readonly DirEntry[];
  /** The layer's symlinks: an implied parent above never replaces one. */
  linkPaths: readonly string[];
  /** Directories its entries lie in that it holds no entry for (few: kept in the record's JSON part). */
  impliedDirs: readonly string[];
  /** Where each of `linkPaths` points, in the same order (the JSON part too). */
  linkTargets: readonly string[];
  /** LayerPlan.destinations: its directory copies' own destinations and the parents it implies over a lower layer's directories (the JSON part too). */
  destinations: readonly string[];
}

const DIR_FIELDS = ['mtimeMs', 'ctimeMs', 'ino', 'dev'] as const;
const FILE_FIELDS = ['size', 'mtimeMs', 'ctimeMs', 'ino', 'dev'] as const;

function append<K extends string>(col: NumberColumn, fields: readonly K[], values: Readonly<Record<K, number>>): void {
  const at = col.reserve(fields.length);
  const n = col.nums;
  fields.forEach((f, k) => (n[at + k] = values[f]));
}

/** Append a directory's stamp to a snapshot's `dirStamps` column. */
export function stampDir(col: NumberColumn, st: DirStamp): void {
  append(col, DIR_FIELDS, st);
}

/** Append a file's stat to a snapshot's `fileStats` column. */
export function statFile(col: NumberColumn, st: FileStat): void {
  append(col, FILE_FIELDS, st);
}

/** File `i`'s stat in a `fileStats` column. */
export function fileStatAt(nums: Float64Array, i: number): FileStat {
  const o = i * FILE_FIELDS.length;
  return { size: nums[o]!, mtimeMs: nums[o + 1]!, ctimeMs: nums[o + 2]!, ino: nums[o + 3]!, dev: nums[o + 4]! };
}

/** A saved walk, as loaded. */
export class WalkRecord {
  private constructor(
    readonly inputs: Digest,
    readonly cacheKey: Digest,
    readonly files: number,
    readonly bytes: number,
    readonly dirCount: number,
    readonly fileCount: number,
    private readonly entryCount: number,
    private readonly linkCount: number,
    private readonly paths: string[],
    private readonly nums: Float64Array,
    readonly impliedDirs: readonly string[],
    readonly linkTargets: readonly string[],
    readonly destinations: readonly string[],
  ) {}

  dirPath(i: number): string {
    return this.paths[i]!;
  }

  /** Whether directory `i` has exactly this stat now. */
  dirMatches(i: number, st: DirStamp): boolean {
    const n = this.nums;
    const o = i * DIR_FIELDS.length;
    return n[o] === st.mtimeMs && n[o + 1] === st.ctimeMs && n[o + 2] === st.ino && n[o + 3] === st.dev;
  }

  filePath(i: number): string {
    return this.paths[this.dirCount + i]!;
  }

  /** Whether file `i` has exactly the stat it had when walked. */
  fileMatches(i: number, st: FileStat): boolean {
    const n = this.nums;
    const o = this.dirCount * DIR_FIELDS.length + i * FILE_FIELDS.length;
    return n[o] === st.size && n[o + 1] === st.mtimeMs && n[o + 2] === st.ctimeMs && n[o + 3] === st.ino && n[o + 4] === st.dev;
  }

  dirEntries(): DirEntry[] {
    const out: DirEntry[] = [];
    const first = this.dirCount + this.fileCount;
    let o = this.dirCount * DIR_FIELDS.length + this.fileCount * FILE_FIELDS.length;
    for (let i = 0; i < this.entryCount; i++, o += ENTRY_NUMS) {
      out.push({ path: this.paths[first + i]!, mode: this.nums[o]!, uid: this.nums[o + 1]!, gid: this.nums[o + 2]!, type: 'dir' });
    }
    return out;
  }

  linkPaths(): string[] {
    const first = this.dirCount + this.fileCount + this.entryCount;
    return this.paths.slice(first, first + this.linkCount);
  }

  static encode(w: WalkSnapshot): Buffer[] {
    const meta = Buffer.from(JSON.stringify({ inputs: w.inputs, cacheKey: w.cacheKey, files: w.files, bytes: w.bytes, implied: w.impliedDirs, targets: w.linkTargets, destinations: w.destinations }), 'utf8');
    const entryNums = new Float64Array(w.dirEntries.length * ENTRY_NUMS);
    w.dirEntries.forEach((e, i) => entryNums.set([e.mode, e.uid, e.gid], i * ENTRY_NUMS));
    const paths = nulJoined([w.dirPaths, w.filePaths, w.dirEntries.map((e) => e.path), w.linkPaths]);
    const head = Buffer.alloc(align8(HEADER + meta.length));
    MAGIC.copy(head, 0);
    let at = MAGIC.length;
    const pathBytes = paths.reduce((n, b) => n + b.length, 0);
    for (const v of [FORMAT, meta.length, w.dirPaths.length, w.filePaths.length, w.dirEntries.length, w.linkPaths.length, pathBytes]) at = head.writeUInt32LE(v, at);
    meta.copy(head, HEADER);
    // Copies, not views: the columns may change once this returns, while the pieces are written.
    const nums = [w.dirStamps, w.fileStats, entryNums].map((col) => Buffer.from(toLittleEndian(col)));
    const pieces = [head, ...nums, ...paths];
    const check = createHash('sha256');
    for (const piece of pieces) check.update(piece);
    return [...pieces, check.digest()];
  }

  /** The record in `buf`, or undefined when it is not one this version wrote whole. */
  static decode(buf: Buffer): WalkRecord | undefined {
    if (buf.length < HEADER || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
    const [format, metaLen, dirCount, fileCount, entryCount, linkCount, pathLen] = [0, 1, 2, 3, 4, 5, 6].map((k) => buf.readUInt32LE(MAGIC.length + 4 * k)) as [number, number, number, number, number, number, number];
    if (format !== FORMAT) return undefined;
    const numsAt = align8(HEADER + metaLen);
    const pathsAt = numsAt + (dirCount * DIR_FIELDS.length + fileCount * FILE_FIELDS.length + entryCount * ENTRY_NUMS) * 8;
    if (buf.length !== pathsAt + pathLen + CHECK_BYTES) return undefined;
    const end = pathsAt + pathLen;
    if (!createHash('sha256').update(buf.subarray(0, end)).digest().equals(buf.subarray(end))) return undefined;
    let meta: Record<string, unknown>;
    try {
      meta = JSON.parse(buf.toString('utf8', HEADER, HEADER + metaLen)) as Record<string, unknown>;
    } catch {
      return undefined;
    }
    const { inputs, cacheKey, files, bytes, implied, targets, destinations } = meta;
    if (!isDigestValue(inputs) || !isDigestValue(cacheKey) || !isCount(files) || !isCount(bytes)) return undefined;
    if (!isStrings(implied) || !isStrings(targets) || !isStrings(destinations) || targets.length !== linkCount) return undefined;
    const count = dirCount + fileCount + entryCount + linkCount;
    const paths = count === 0 ? [] : buf.toString('utf8', pathsAt, pathsAt + pathLen).split('\0');
    if (paths.length !== count) return undefined;
    const nums = fromLittleEndian(buf.subarray(numsAt, pathsAt));
    return new WalkRecord(inputs, cacheKey, files, bytes, dirCount, fileCount, entryCount, linkCount, paths, nums, implied, targets, destinations);
  }
}

/** The walk records of one cache root. */
export class WalkRecords {
  private constructor(
    private readonly dir: string,
    private readonly tmpDir: string,
  ) {}

  static async open(root: string): Promise<WalkRecords> {
    const dir = join(root, 'walks');
    const tmpDir = join(root, 'tmp');
    await mkdir(dir, { recursive: true });
    await mkdir(tmpDir, { recursive: true });
    return new WalkRecords(dir, tmpDir);
  }

  #file(identity: string): string {
    return join(this.dir, `${digestHex(sha256(identity))}.walk`);
  }

  async load(identity: string): Promise<WalkRecord | undefined> {
    const buf = await readFile(this.#file(identity)).catch(() => undefined);
    return buf && WalkRecord.decode(buf);
  }

  async save(identity: string, walk: WalkSnapshot): Promise<void> {
    await writeFileAtomic(this.tmpDir, this.#file(identity), WalkRecord.encode(walk));
  }

  /** Drop the record: the layer is listed again next time. */
  async forget(identity: string): Promise<void> {
    await unlink(this.#file(identity)).catch(() => undefined);
  }
}

const isDigestValue = (v: unknown): v is Digest => typeof v === 'string' && isDigest(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
