/**
 * Unchanged layers: a plan for a build does not list a layer again (walk its copies, make its
 * entries, hash its key) when nothing it read changed since the walk that listed it last.
 *
 * What that walk saw is recorded (store/walk-records.ts): each directory's stat taken just before
 * it was read, and each file's stat. A directory's mtime and ctime move whenever an entry in it
 * is added, removed or renamed (a file replaced by a link or a directory included), and a file's
 * ctime whenever its content, mode or link count changes. So when every directory and every file
 * of the walk has exactly the stat it had then, a walk now would list the same entries, and the
 * layer's cache key is the recorded one. Checking that costs one lstat per path and no directory
 * read, no entry and no key to compute: most of a no-op build's plan.
 *
 * A walk is recorded only when the stat cache trusts each file's digest for the stat the walk saw
 * (a file hashed within a clock tick of a change could change again unseen: git's "racily clean"
 * case), so the same stat later means the same content without loading the stat cache at all. A
 * directory changed within a tick of its stamp could also change again unseen, so neither is
 * such a walk recorded, nor one whose layer has no key yet (a first build hashes as it writes).
 * Everything else that decides the entries (the layer's spec: copies, excludes, inline files,
 * dirs, symlinks and removes; the outputs and cache left out; base, compression, epoch; and the
 * keys of the layers below, whose directories settle this one's implied parents) is digested
 * into the record's inputs: any change there means the layer is listed again. A symlink copied
 * on its own is the one source a record cannot stamp (no directory of the walk holds it): a
 * layer with one is always listed. Nor do stamps see the directories above a copy's root: one
 * moved out of the context and replaced by a symlink to it keeps every stat the walk saw, so each
 * copy's root is resolved again, as a listing would, and a layer with one gone outside is listed
 * (and refused).
 */
import { realpath } from 'node:fs/promises';
import { sha256, type Digest } from '../image/digest.js';
import type { NormalizedSpec } from '../spec/normalized.js';
import type { FileDigester, FileStat } from '../store/file-digests.js';
import { changedTooRecently } from '../util/change-time.js';
import { NumberColumn } from '../store/columns.js';
import { fileStatAt, stampDir, statFile, WalkRecords, type WalkSnapshot } from '../store/walk-records.js';
import { packageVersion } from '../package-files.js';
import { KEY_VERSION } from './cache-key.js';
import { copyInsideContext } from './resolve-copy.js';
import { impliedDirs } from './parents.js';
import { lstatOrUndefined } from './walk.js';
import { imageRel, type DirEntry, type FileEntry, type LayerPlan, type PlannedLayer, type UnchangedLayer } from './types.js';

/**
 * A recorded key stands for the entries this code would list. Any change to how entries are made
 * must change this; every release changes the package version, which the inputs hold too, so a
 * record never outlives the imgbuild that wrote it.
 */
const INPUTS_VERSION = 4;

/** What one walk saw, taken as it goes: each directory's stamp and each file's stat, as columns. */
export class WalkStamps {
  readonly dirPaths: string[] = [];
  readonly dirStamps = new NumberColumn();
  readonly filePaths: string[] = [];
  readonly fileStats = new NumberColumn();
  /** Files whose digest the stat cache did not know for the walk's stat (hashed after the walk): their index and entry. */
  readonly hashedLater: { index: number; entry: FileEntry }[] = [];
  /** A directory changed too recently to vouch for its listing, one that vanished, or a path no stamp covers: the walk is not recorded. */
  unrecordable = false;

  /** For the walk's `beforeListing`. */
  readonly before = (dirAbs: string): void => {
    const seenAt = Date.now();
    const st = lstatOrUndefined(dirAbs);
    if (!st?.isDirectory() || changedTooRecently(st.ctimeMs, seenAt)) this.unrecordable = true;
    else {
      this.dirPaths.push(dirAbs);
      stampDir(this.dirStamps, st);
    }
  };

  readonly unstampable = (): void => {
    this.unrecordable = true;
  };

  /** A file entry of the walk, read from `path`, with the stat the walk saw; `known` when the stat cache gave its digest for that stat. */
  file(entry: FileEntry, path: string, st: FileStat, known: boolean): void {
    if (!known) this.hashedLater.push({ index: this.filePaths.length, entry });
    this.filePaths.push(path);
    statFile(this.fileStats, st);
  }

  fileStat(i: number): FileStat {
    return fileStatAt(this.fileStats.values(), i);
  }
}

/** Which record file a layer's walk goes to: one per layer of a spec, replaced by its next walk. */
function walkIdentity(contextReal: string, specFile: string, layerName: string): string {
  return JSON.stringify([contextReal, specFile, layerName]);
}

/**
 * Forget the recorded walks of every layer of `spec`, so the next plan lists them all: for a build
 * refused by what only the base tells (a file copied onto a base directory, which a record keeps
 * nothing to check by), whose layers' walks the plan had recorded already. Found unchanged next
 * time, a refused layer would build.
 */
export async function forgetWalks(cacheDir: string, spec: NormalizedSpec): Promise<void> {
  const records = await WalkRecords.open(cacheDir).catch(() => undefined);
  if (!records) return;
  const contextReal = await realpath(spec.contextDir).catch(() => spec.contextDir);
  await Promise.all(spec.layers.map((l) => records.forget(walkIdentity(contextReal, spec.specFile, l.name))));
}

/** Finding layers unchanged, and recording the walks that can tell it next time: a plan for a build only. */
export class WalkReuse {
  constructor(
    private readonly records: WalkRecords,
    private readonly spec: NormalizedSpec,
    private readonly contextReal: string,
    /** Host directories excluded besides the outputs (the cache). */
    private readonly ignore: readonly string[],
  ) {}

  /** Layer `index`, unlisted, when its recorded walk still holds; undefined when it must be listed. */
  async unchanged(index: number, lower: readonly PlannedLayer[]): Promise<UnchangedLayer | undefined> {
    const inputs = this.#inputs(index, lower);
    if (!inputs) return undefined;
    const rec = await this.records.load(this.#identity(index));
    if (!rec || rec.inputs !== inputs) return undefined;
    for (const c of this.spec.layers[index]!.copies) if (!copyInsideContext(c, this.spec.contextDir, this.contextReal)) return undefined;
    for (let i = 0; i < rec.dirCount; i++) {
      const st = lstatOrUndefined(rec.dirPath(i));
      if (!st?.isDirectory() || !rec.dirMatches(i, st)) return undefined;
    }
    for (let i = 0; i < rec.fileCount; i++) {
      const st = lstatOrUndefined(rec.filePath(i));
      if (!st?.isFile() || !rec.fileMatches(i, st)) return undefined;
    }
    const name = this.spec.layers[index]!.name;
    const removed = this.spec.layers[index]!.removes.map((r) => imageRel(r.path));
    return { name, files: rec.files, bytes: rec.bytes, cacheKey: rec.cacheKey, unchanged: true, dirs: rec.dirEntries(), links: rec.linkPaths(), linkTargets: [...rec.linkTargets], removed, implied: [...rec.impliedDirs], destinations: [...rec.destinations] };
  }

  /**
   * Record the walk that just listed layer `index`, if it can vouch for the layer next time: only
   * when the stat cache trusts each file's digest for the stat the walk saw (a file hashed within
   * a clock tick of its last change is not trusted), so that the same stat later means the same
   * content without asking the stat cache again. It gave most digests for those very stats; the
   * files hashed since are asked again.
   */
  async record(index: number, lower: readonly PlannedLayer[], layer: LayerPlan, walk: WalkStamps, digester: FileDigester): Promise<void> {
    const inputs = this.#inputs(index, lower);
    if (!inputs || !layer.cacheKey || layer.bytes === undefined || walk.unrecordable || !digester.known) return;
    for (const { index, entry } of walk.hashedLater) {
      if (digester.known(walk.filePaths[index]!, walk.fileStat(index)) !== entry.source.digest) return;
    }
    const links = layer.entries.filter((e) => e.type === 'symlink');
    const snapshot: WalkSnapshot = {
      inputs,
      cacheKey: layer.cacheKey,
      files: layer.files,
      bytes: layer.bytes,
      dirPaths: walk.dirPaths,
      dirStamps: walk.dirStamps.values(),
      filePaths: walk.filePaths,
      fileStats: walk.fileStats.values(),
      dirEntries: layer.entries.filter((e): e is DirEntry => e.type === 'dir'),
      linkPaths: links.map((e) => e.path),
      linkTargets: links.map((e) => e.target),
      impliedDirs: impliedDirs(layer.entries),
      destinations: layer.destinations,
    };
    // Only an optimisation: a record that cannot be written (a full disk) costs the next build a listing, never this one.
    await this.records.save(this.#identity(index), snapshot).catch(() => undefined);
  }

  /** Everything but the file system that decides the layer; undefined while a lower layer has no key. */
  #inputs(index: number, lower: readonly PlannedLayer[]): Digest | undefined {
    if (lower.some((l) => l.cacheKey === undefined)) return undefined;
    const { outputs, base, compression, epoch } = this.spec;
    const inputs = { v: INPUTS_VERSION, key: KEY_VERSION, imgbuild: packageVersion(), context: this.contextReal, layer: this.spec.layers[index], outputs, ignore: this.ignore, scratch: base.kind === 'scratch', compression, epoch, lower: lower.map((l) => l.cacheKey) };
    // The layer as the spec says it, without its source positions (`at`), which decide nothing.
    return sha256(JSON.stringify(inputs, (k, v: unknown) => (k === 'at' ? undefined : v)));
  }

  #identity(index: number): string {
    return walkIdentity(this.contextReal, this.spec.specFile, this.spec.layers[index]!.name);
  }
}
