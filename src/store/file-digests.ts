/**
 * Content digests of source files, with a stat fast path so a no-op build reads no file
 * contents: a persisted map absolute path -> {size, mtimeNs, ctimeNs, ino, dev, digest}, one
 * JSON file per context directory under `<root>/stat/`. A record is trusted only when every
 * stat field matches and the file was not modified within a clock tick of being hashed (the
 * "racily clean" case git guards against: a second write in the same timestamp tick would
 * leave size and times unchanged); such records are re-hashed once.
 */
import type { BigIntStats } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { digestHex, digestOf, isDigest, sha256, type Digest } from '../image/digest.js';
import { digestSmallSync, readStable, streamStable, keptChanging, FileChangedError } from '../layer/stable-read.js';
import { writeFileAtomic } from './atomic.js';

/** What the plan compiler needs: the content digest of a regular file it has just lstat'ed. */
export interface FileDigester {
  digest(absPath: string, st: BigIntStats): Promise<Digest>;
  /** The digest without reading, when it is known for exactly this stat (the fast path of a no-op plan). */
  known?(absPath: string, st: BigIntStats): Digest | undefined;
}

export interface HashedFile {
  digest: Digest;
  size: number;
  /** The file's fstat while it was read: the state the digest belongs to. */
  stat: BigIntStats;
}

const LARGE_ATTEMPTS = 5;

/** Hash a file's content, re-reading while it changes under us (never a torn digest). */
export async function hashFileStable(absPath: string): Promise<HashedFile> {
  const quick = digestSmallSync(absPath);
  if (quick) return quick;
  for (let attempt = 1; ; attempt++) {
    const r = await readStable(absPath);
    if (r.kind === 'bytes') return { digest: sha256(r.bytes), size: r.bytes.length, stat: r.stat };
    const hash = createHash('sha256');
    try {
      await streamStable(r.file, (chunk) => void hash.update(chunk));
      return { digest: digestOf(hash), size: Number(r.file.stat.size), stat: r.file.stat };
    } catch (e) {
      if (!(e instanceof FileChangedError && e.reason === 'changed')) throw e;
      if (attempt === LARGE_ATTEMPTS) throw keptChanging(absPath);
    }
  }
}

/** Always reads: for one-off commands and tests. */
export class UncachedDigester implements FileDigester {
  filesHashed = 0;
  bytesHashed = 0;
  async digest(absPath: string): Promise<Digest> {
    const h = await hashFileStable(absPath);
    this.filesHashed++;
    this.bytesHashed += h.size;
    return h.digest;
  }
}

interface StatRecord {
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  dev: string;
  digest: Digest;
  /** Wall clock (ns) just before the file was opened for hashing. */
  hashedAtNs: string;
}

const FORMAT_VERSION = 1;
// Linux stamps files from a coarse clock (a few ms); file systems with whole-second stamps
// (recognisable by zero nanoseconds) need a wider margin.
const FINE_SLACK_NS = 50_000_000n;
const COARSE_SLACK_NS = 2_000_000_000n;

export class FileDigestCache implements FileDigester {
  filesHashed = 0;
  bytesHashed = 0;
  #dirty = false;

  private constructor(
    private readonly file: string,
    private readonly tmpDir: string,
    private readonly contextDir: string,
    private readonly records: Map<string, StatRecord>,
    private readonly nowNs: () => bigint,
  ) {}

  /** `nowNs` (wall clock in ns) is replaceable so tests can place hashing inside or outside the racy margin. */
  static async open(root: string, contextDir: string, nowNs = wallClockNs): Promise<FileDigestCache> {
    const ctx = resolve(contextDir);
    const dir = join(root, 'stat');
    const tmpDir = join(root, 'tmp');
    await mkdir(dir, { recursive: true });
    await mkdir(tmpDir, { recursive: true });
    const file = join(dir, `${digestHex(sha256(ctx))}.json`);
    return new FileDigestCache(file, tmpDir, ctx, await loadRecords(file, ctx), nowNs);
  }

  known(absPath: string, st: BigIntStats): Digest | undefined {
    const rec = this.records.get(absPath);
    return rec && matches(rec, st) && !isRacy(rec) ? rec.digest : undefined;
  }

  async digest(absPath: string, st: BigIntStats): Promise<Digest> {
    const known = this.known(absPath, st);
    if (known) return known;
    const hashedAtNs = this.nowNs();
    const h = await hashFileStable(absPath);
    this.filesHashed++;
    this.bytesHashed += h.size;
    this.records.set(absPath, toRecord(h, hashedAtNs));
    this.#dirty = true;
    return h.digest;
  }

  /** Persist the map (atomic replace; with concurrent builds the last save wins, intact). */
  async save(): Promise<void> {
    if (!this.#dirty) return;
    const doc = { v: FORMAT_VERSION, context: this.contextDir, files: Object.fromEntries(this.records) };
    await writeFileAtomic(this.tmpDir, this.file, JSON.stringify(doc));
    this.#dirty = false;
  }
}

const wallClockNs = () => BigInt(Date.now()) * 1_000_000n;

function matches(r: StatRecord, st: BigIntStats): boolean {
  return (
    r.size === String(st.size) && r.mtimeNs === String(st.mtimeNs) && r.ctimeNs === String(st.ctimeNs) &&
    r.ino === String(st.ino) && r.dev === String(st.dev)
  );
}

// ctime, not mtime: every write sets ctime from the kernel clock, while mtime can be set to anything.
function isRacy(r: StatRecord): boolean {
  const ctime = BigInt(r.ctimeNs);
  const slack = ctime % 1_000_000_000n === 0n ? COARSE_SLACK_NS : FINE_SLACK_NS;
  return ctime >= BigInt(r.hashedAtNs) - slack;
}

function toRecord(h: HashedFile, hashedAtNs: bigint): StatRecord {
  const st = h.stat;
  return {
    size: String(st.size), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs),
    ino: String(st.ino), dev: String(st.dev), digest: h.digest, hashedAtNs: String(hashedAtNs),
  };
}

/** Anything unreadable or from another format is an empty cache, never an error. */
async function loadRecords(file: string, ctx: string): Promise<Map<string, StatRecord>> {
  try {
    const doc = JSON.parse(await readFile(file, 'utf8')) as { v?: unknown; context?: unknown; files?: unknown };
    if (doc.v !== FORMAT_VERSION || doc.context !== ctx || typeof doc.files !== 'object' || !doc.files) {
      return new Map();
    }
    return new Map(Object.entries(doc.files as Record<string, StatRecord>).filter(([, r]) => isRecord(r)));
  } catch {
    return new Map();
  }
}

const DECIMAL = /^\d+$/;
function isRecord(r: StatRecord): boolean {
  if (typeof r !== 'object' || r === null || typeof r.digest !== 'string' || !isDigest(r.digest)) return false;
  return [r.size, r.mtimeNs, r.ctimeNs, r.ino, r.dev, r.hashedAtNs].every((v) => typeof v === 'string' && DECIMAL.test(v));
}
