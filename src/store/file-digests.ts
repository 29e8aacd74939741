/**
 * Content digests of source files, with a stat fast path so a no-op build reads no file
 * contents: a persisted map absolute path -> (size, mtime, ctime, inode, device) -> digest, one
 * file per context directory under `<root>/stat/`. A record is trusted only when every
 * stat field matches and the file was not modified within a clock tick of being hashed (the
 * "racily clean" case git guards against: a second write in the same timestamp tick would
 * leave size and times unchanged); such records are re-hashed once.
 *
 * Stats are plain numbers (`fs.Stats`, not BigIntStats): a no-op plan compares tens of thousands
 * of them, and BigInt stats cost ~15 heap BigInts per file. `mtimeMs`/`ctimeMs` are doubles with
 * sub-microsecond resolution (~0.25 us at today's dates), far finer than the racy margin, so a
 * write after hashing, which moves ctime past the hashing time, is always seen. The file's own
 * fstat while it was hashed (from stable-read) is the same kind of number, so the record
 * compares equal to a later `lstat` of the same state.
 *
 * On disk (format 3, stat-records.ts) the records are columns of raw numbers, digests and
 * paths, so loading and saving 20,000 of them costs a few milliseconds.
 */
import { lstatSync, readFileSync } from 'node:fs';
import { access, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { digestHex, sha256, type Digest } from '../image/digest.js';
import { digestSmallSync, readStable, streamStable, keptChanging, FileChangedError } from '../layer/stable-read.js';
import { writeFileAtomic } from './atomic.js';
import { ensureCacheDir } from './cache-dir.js';
import { StatJournal } from './stat-journal.js';
import { StatRecords } from './stat-records.js';
import { changedTooRecently } from '../util/change-time.js';

/** The stat fields the stat cache keys on: what a plain (non-BigInt) `lstat` gives. */
export interface FileStat {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  dev: number;
}

/** What the plan compiler needs: the content digest of a regular file it has just lstat'ed. */
export interface FileDigester {
  digest(absPath: string, st: FileStat): Promise<Digest>;
  /** The digest without reading, when it is known for exactly this stat (the fast path of a no-op plan). */
  known?(absPath: string, st: FileStat): Digest | undefined;
  /** Keep a digest the layer writer computed, read from `absPath` starting at `hashedAtMs`. */
  remember?(absPath: string, h: HashedFile, hashedAtMs: number): void;
}

export interface HashedFile {
  digest: Digest;
  size: number;
  /** The file's fstat while it was read: the state the digest belongs to. */
  stat: FileStat;
}

const LARGE_ATTEMPTS = 5;

/** Hash a file's content, re-reading while it changes under us (never a torn digest). */
export async function hashFileStable(absPath: string): Promise<HashedFile> {
  const quick = digestSmallSync(absPath);
  if (quick) return quick;
  for (let attempt = 1; ; attempt++) {
    const r = await readStable(absPath);
    if (r.kind === 'bytes') return { digest: sha256(r.bytes), size: r.bytes.length, stat: r.stat };
    try {
      return { digest: await streamStable(r.file, () => undefined), size: r.file.stat.size, stat: r.file.stat };
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

export class FileDigestCache implements FileDigester {
  filesHashed = 0;
  bytesHashed = 0;
  #dirty = false;
  /** Records looked up or written since the cache was opened, by index (see `forgetUnseen`). */
  #seen = new Uint8Array(0);

  /** The records and their index, read when first needed: a plan whose layers are all unchanged never needs them. */
  #loaded: { records: StatRecords; at: Map<string, number> } | undefined;
  /** A first build's records, kept on disk as they come (stat-journal.ts), until the save. */
  #journal: StatJournal | undefined;

  private constructor(
    private readonly file: string,
    private readonly tmpDir: string,
    private readonly contextDir: string,
    private readonly nowMs: () => number,
    /** No stat cache file for this context existed, in any format (see `isNew`), until a save. */
    private neverSaved: boolean,
  ) {}

  /** `nowMs` (wall clock in ms) is replaceable so tests can place hashing inside or outside the racy margin. */
  static async open(root: string, contextDir: string, nowMs: () => number = Date.now): Promise<FileDigestCache> {
    const ctx = resolve(contextDir);
    const dir = join(root, 'stat');
    const tmpDir = join(root, 'tmp');
    await ensureCacheDir(root, dir, tmpDir);
    const file = join(dir, `${digestHex(sha256(ctx))}.stat`);
    // A file of no use still says the context was built here (a format-2 file, a damaged one).
    const neverSaved = !(await exists(file)) && !(await exists(legacyFile(file)));
    return new FileDigestCache(file, tmpDir, ctx, nowMs, neverSaved);
  }

  /** Synchronous, like the plan's walk: the records are needed in the middle of it. */
  get #state(): { records: StatRecords; at: Map<string, number> } {
    if (!this.#loaded) {
      const saved = this.neverSaved ? undefined : readIfThere(this.file);
      let records = (saved && StatRecords.decode(saved, this.contextDir)) ?? StatRecords.empty();
      let at = indexByPath(records);
      if (at.size < records.count) {
        // A path recorded twice (a first build's layer that started over: stat-journal.ts): the later record stands.
        const loaded = records;
        records = loaded.retain((i) => at.get(loaded.path(i)) === i);
        at = indexByPath(records);
        this.#dirty = true;
      }
      this.#loaded = { records, at };
    }
    return this.#loaded;
  }

  /**
   * No build with this cache has read this context: nothing saved for it, in any format. Then no
   * cached layer can be expected to match, and hashing can be left to the layer writer.
   */
  get isNew(): boolean {
    return this.neverSaved && (this.#loaded?.at.size ?? 0) === 0;
  }

  known(absPath: string, st: FileStat): Digest | undefined {
    const { records: r, at } = this.#state;
    const i = at.get(absPath);
    if (i === undefined) return undefined;
    this.#see(i);
    if (!r.matches(i, st) || changedTooRecently(r.ctimeMs(i), r.hashedAtMs(i))) return undefined;
    return r.digest(i);
  }

  async digest(absPath: string, st: FileStat): Promise<Digest> {
    const known = this.known(absPath, st);
    if (known) return known;
    const hashedAtMs = this.nowMs();
    const h = await hashFileStable(absPath);
    this.#count(h);
    this.#put(absPath, h, hashedAtMs);
    return h.digest;
  }

  /**
   * Record a digest computed elsewhere (the layer writer hashes what it reads when the plan left
   * hashing to it). `hashedAtMs` is the wall clock before the read began. On a context never
   * saved, such digests go to disk as they come (stat-journal.ts), and `known` does not give them
   * until the save: a first build's plan left every file to the writer, which reads each once.
   */
  remember(absPath: string, h: HashedFile, hashedAtMs: number): void {
    this.#count(h);
    if (this.#journal || (this.neverSaved && this.#state.records.count === 0)) {
      (this.#journal ??= new StatJournal(this.tmpDir)).add(absPath, h.stat, h.digest, hashedAtMs);
      this.#dirty = true;
    } else {
      this.#put(absPath, h, hashedAtMs);
    }
  }

  #count(h: HashedFile): void {
    this.filesHashed++;
    this.bytesHashed += h.size;
  }

  #put(absPath: string, h: HashedFile, hashedAtMs: number): void {
    const { records, at } = this.#state;
    let i = at.get(absPath);
    if (i === undefined) {
      i = records.count;
      at.set(absPath, i);
    }
    records.set(i, absPath, h.stat, h.digest, hashedAtMs);
    this.#see(i);
    this.#dirty = true;
  }

  #see(i: number): void {
    if (i >= this.#seen.length) {
      const grown = new Uint8Array(Math.max(64, 2 * i));
      grown.set(this.#seen);
      this.#seen = grown;
    }
    this.#seen[i] = 1;
  }

  /**
   * Forget the records that this build did not look up although its walks list their paths
   * (`covered`): after a whole plan, those are files that were deleted. Without this the file
   * only grows as a tree churns (a node_modules across branches and upgrades), and every build
   * loads it all. A record the walks do not cover (excluded, outside the copies, picked out by a
   * glob) is kept: another spec may copy it. So is one whose file is still there (reached through
   * a symlinked directory the walk stored as a link, say): only a file that is gone is forgotten.
   * Costs a pass over the records and an lstat per record about to go; nothing is written when
   * nothing is forgotten.
   */
  forgetUnseen(covered: (path: string) => boolean): void {
    const { records } = this.#state;
    const gone = new Uint8Array(records.count);
    let forgotten = 0;
    for (let i = 0; i < records.count; i++) {
      if (this.#seen[i] === 1 || !covered(records.path(i)) || !isGone(records.path(i))) continue;
      gone[i] = 1;
      forgotten++;
    }
    if (forgotten === 0) return;
    const seen: number[] = [];
    const kept = records.retain((i) => {
      if (gone[i] === 1) return false;
      seen.push(this.#seen[i] ?? 0);
      return true;
    });
    this.#seen = Uint8Array.from(seen);
    this.#loaded = { records: kept, at: indexByPath(kept) };
    this.#dirty = true;
  }

  /** Persist the map (atomic replace; with concurrent builds the last save wins, intact). */
  async save(): Promise<void> {
    if (!this.#dirty) return;
    const journal = this.#journal;
    this.#journal = undefined;
    // Records made beside the journal (a layer listed again) go after it: on loading, the later record of a path stands.
    const made = journal ? this.#state.records : undefined;
    for (let i = 0; made && i < made.count; i++) journal!.add(made.path(i), made.stat(i), made.digest(i), made.hashedAtMs(i));
    try {
      await writeFileAtomic(this.tmpDir, this.file, journal ? journal.pieces(this.contextDir) : this.#state.records.encode(this.contextDir));
      if (journal) {
        // Read again when next needed (a watcher's rebuild): the records are in the file now.
        this.neverSaved = false;
        this.#loaded = undefined;
        this.#seen = new Uint8Array(0);
      }
    } catch (e) {
      // Still say the context was built here, with an empty file (a full disk has room for one:
      // it takes no block), if none is there. With no file the next plan leaves hashing to the
      // layer writer (see `isNew`), finds no layer in the cache and writes every one again: on
      // the disk that just filled up, it failed, where a plan that hashes finds them all.
      await writeFile(this.file, '', { flag: 'a' }).catch(() => undefined);
      throw e;
    }
    this.#dirty = false;
    await unlink(legacyFile(this.file)).catch(() => undefined);
  }
}

/** Path -> index of its record. */
function indexByPath(records: StatRecords): Map<string, number> {
  const at = new Map<string, number>();
  for (let i = 0; i < records.count; i++) at.set(records.path(i), i);
  return at;
}

/** No file at `path` any more (not even a dangling symlink). */
function isGone(path: string): boolean {
  try {
    lstatSync(path);
    return false;
  } catch (e) {
    return ['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '');
  }
}

/** Where format 2 kept the same records, as JSON. */
const legacyFile = (file: string) => file.replace(/\.stat$/, '.json');

const exists = (path: string) => access(path).then(() => true, () => false);

function readIfThere(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}
