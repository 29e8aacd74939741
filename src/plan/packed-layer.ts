/**
 * Packed layers: a first build's layer of one plain directory copy (a node_modules) held without
 * an object per file. A first build leaves every file's size, mode bits and digest to the layer
 * writer, so what sets one file's entry apart from its neighbours' is its name alone: the files of
 * a directory are held as one run, their names joined in one string, and every other entry
 * (directories, symlinks, the destination's parents) as itself, in the layer's order.
 *
 * Why: a listed file entry (its object, its source, its image and host paths, and the digest the
 * writer fills in) held about 450 bytes from the plan until the build's end, about 14 MB of a
 * 32,000-file tree's cold build, and was the main reason its memory grew with the tree. A run
 * holds about 15 bytes a file; `entriesOf` makes the entries as the writer reaches them, and they
 * die young. That tree's cold build peaked at 93 to 103 MB packed against 104 to 113 MB listed
 * (4 alternating runs), with the same blob.
 */
import { FROM_FILE, UNHASHED, type FileRun, type LayerPlan, type PackedLayer, type PlanEntry, type PlannedLayer } from './types.js';

/** A layer's entries in order; a packed layer's files made one at a time, as they are reached. */
export function* entriesOf(layer: LayerPlan | PackedLayer): Generator<PlanEntry> {
  if (!('packed' in layer)) return yield* layer.entries;
  for (const item of layer.packed) {
    if (item.type !== 'files') {
      yield item;
      continue;
    }
    const { dir, abs, mode, uid, gid } = item;
    // The same fields in the same order as a listed file's entry (compile.ts): one object shape for the writer.
    for (const name of item.names.split('/')) yield { path: dir + name, mode, uid, gid, type: 'file', size: FROM_FILE, source: { kind: 'path', path: abs + name, digest: UNHASHED } };
  }
}

/** A packed layer's held entries, made once: the layers above and the base checks each ask for them. */
const heldOfPacked = new WeakMap<PackedLayer, readonly PlanEntry[]>();

/**
 * The entries a layer holds as objects: all of a listed layer's; a packed layer's other than its
 * files (directories, symlinks), which is all the layers above and the base checks read of it.
 */
export function heldEntries(layer: Exclude<PlannedLayer, { unchanged: true }>): readonly PlanEntry[] {
  if (!('packed' in layer)) return layer.entries;
  let held = heldOfPacked.get(layer);
  if (!held) heldOfPacked.set(layer, (held = layer.packed.filter((item): item is PlanEntry => item.type !== 'files')));
  return held;
}

/** Builds a packed layer's items as a walk lists them: `file` for each file left to the writer, `entry` for anything else. */
export class FilePacker {
  readonly #items: (PlanEntry | FileRun)[] = [];
  /** Regular files, packed or not. */
  files = 0;
  /** Files in runs. */
  packedFiles = 0;
  #run: FileRun | undefined;
  #names: string[] = [];

  entry(e: PlanEntry): void {
    if (e.type === 'file') this.files++;
    this.#close();
    this.#items.push(e);
  }

  /**
   * A file whose entry would be `{ path, mode, uid, gid, type: 'file', size: FROM_FILE, source: { kind: 'path', path: abs, digest: UNHASHED } }`,
   * packed; false (and nothing held) when its name on the host is not its name in the image.
   */
  file(path: string, abs: string, mode: number, uid: number, gid: number): boolean {
    const cut = path.lastIndexOf('/') + 1;
    const absCut = abs.lastIndexOf('/') + 1;
    const name = path.slice(cut);
    if (abs.length - absCut !== name.length || !abs.endsWith(name)) return false;
    const run = this.#run;
    if (!(run && run.mode === mode && run.uid === uid && run.gid === gid && cut === run.dir.length && absCut === run.abs.length && path.startsWith(run.dir) && abs.startsWith(run.abs))) {
      this.#close();
      this.#run = { type: 'files', dir: path.slice(0, cut), abs: abs.slice(0, absCut), names: '', mode, uid, gid };
    }
    this.#names.push(name);
    this.files++;
    this.packedFiles++;
    return true;
  }

  /** The items, every run closed. */
  done(): (PlanEntry | FileRun)[] {
    this.#close();
    return this.#items;
  }

  #close(): void {
    if (!this.#run) return;
    // join copies: the names sliced from each path, which would keep those paths alive, go.
    this.#run.names = this.#names.join('/');
    this.#items.push(this.#run);
    this.#run = undefined;
    this.#names = [];
  }
}
