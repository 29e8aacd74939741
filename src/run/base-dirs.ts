/**
 * Writing a directory the base image already has. A tar entry for a directory sets that
 * directory's mode and owner in the image, so a layer that writes one of the base's directories
 * again decides them anew. Where the directory is a directory copy's own destination
 * (`{ from: seed/, to: /tmp/ }`), it keeps the base's, as `COPY` leaves an existing destination as
 * it is: the base's 1777 /tmp stays 1777, an /etc stays root's when the copy is owned by the app's
 * user. Elsewhere (a directory inside a copied tree, a destination the platforms' bases disagree
 * on) the layer's own stands, and the build warns, naming each directory it changes.
 *
 * A layer of ours below that wrote or removed a path settled it already: the plan gives a
 * destination a lower layer made (and a parent a layer above only implies) the metadata that
 * layer's plan gave it (plan/parents.ts). Where that layer kept the base's instead, the layers
 * above keep it too: a file copied to /tmp/y over a layer that kept the base's 1777 /tmp would
 * otherwise write /tmp as that layer's plan has it, 0755.
 */
import type { DirMeta } from '../image/layer-check.js';
import { atOrBelow, hiddenBy } from '../plan/parents.js';
import { heldEntries } from '../plan/packed-layer.js';
import { imageRel, isUnchanged, type DirEntry, type ImagePath, type PlannedLayer } from '../plan/types.js';
import type { NormalizedSpec } from '../spec/normalized.js';

/** Per layer, the destinations that take the base's mode and owner in place of the copy's. */
export type KeptDirs = ReadonlyMap<ImagePath, DirMeta>[];

const sameMeta = (a: DirMeta, b: DirMeta) => a.mode === b.mode && a.uid === b.uid && a.gid === b.gid;

/** A layer's directory entries: listed, held by a packed layer, or from the walk record of one found unchanged. */
const dirEntriesOf = (layer: PlannedLayer): readonly DirEntry[] => (isUnchanged(layer) ? layer.dirs : heldEntries(layer).filter((e): e is DirEntry => e.type === 'dir'));

/** Where a path stands under a layer, from the layers of ours below it. */
interface Below {
  /** No layer of ours below wrote it, removed it or put a symlink at or above it. */
  theBase(path: string): boolean;
  /** The directory a layer of ours below left there, as written (what it kept of the base's, where it kept it). */
  ours(path: string): DirMeta | undefined;
}

/**
 * Calls `visit` for each layer, bottom first, with its directory entries and where each path
 * stands under it (`Below`). `kept[i]` is read once `visit` returns for layer `i`, so a visit may
 * fill it. With `base`, a directory a layer wrote as that base has it is still the base's.
 */
function eachOverBase(spec: NormalizedSpec, layers: readonly PlannedLayer[], kept: KeptDirs, visit: (layer: PlannedLayer, i: number, written: readonly DirEntry[], below: Below) => void, base?: ReadonlyMap<string, DirMeta>): void {
  const ours = new Map<string, DirMeta>();
  // A set, looked up along a path's parents: a node_modules layer has thousands of directories, and the layers below it hundreds of symlinks.
  const gone = new Set<string>();
  const below: Below = { theBase: (p) => !ours.has(p) && !atOrBelow(p, gone), ours: (p) => ours.get(p) };
  layers.forEach((layer, i) => {
    const written = dirEntriesOf(layer);
    visit(layer, i, written, below);
    const hidden = new Set(hiddenBy(layer, spec.layers[i]!));
    if (hidden.size > 0) {
      for (const p of ours.keys()) if (atOrBelow(p, hidden)) ours.delete(p);
      for (const p of hidden) gone.add(p);
    }
    for (const e of written) {
      const now = kept[i]?.get(e.path) ?? e;
      const was = base?.get(e.path);
      if (was && sameMeta(was, now)) ours.delete(e.path);
      else ours.set(e.path, now);
    }
  });
}

/**
 * The destinations each layer writes with the base's mode and owner: those the base has as a
 * directory, on every platform alike, which the copy would otherwise change. (Bases that differ
 * between platforms would make the one layer two; the layer keeps the copy's there, and is warned of.)
 */
export function keptDestinations(spec: NormalizedSpec, layers: readonly PlannedLayer[], bases: readonly ReadonlyMap<string, DirMeta>[]): KeptDirs {
  const kept: Map<ImagePath, DirMeta>[] = layers.map(() => new Map());
  if (bases.length === 0) return kept;
  // Below a destination a layer of ours wrote is what that layer wrote, or kept of the base's: not
  // its plan's entry, which is what the plan gave the same path in the layers above.
  eachOverBase(spec, layers, kept, (layer, i, written, below) => {
    const destinations = new Set(layer.destinations);
    for (const e of written) {
      if (!destinations.has(e.path)) continue;
      const under = below.theBase(e.path) ? alike(bases, e.path) : below.ours(e.path);
      if (under && !sameMeta(under, e)) kept[i]!.set(e.path, { mode: under.mode, uid: under.uid, gid: under.gid });
    }
  });
  return kept;
}

/** The base's directory at `path`, when every platform's base has it, alike. */
function alike(bases: readonly ReadonlyMap<string, DirMeta>[], path: string): DirMeta | undefined {
  const [first, ...rest] = bases.map((dirs) => dirs.get(path));
  return first && rest.every((d) => d && sameMeta(d, first)) ? first : undefined;
}

/** How many of a layer's changed directories a warning names. */
const NAMED = 3;
const described = (d: DirMeta) => `${d.mode.toString(8).padStart(4, '0')} ${d.uid}:${d.gid}`;

/**
 * A warning for every layer that writes a directory of the base again with another mode or owner
 * (`kept`, the destinations that keep the base's, change nothing). The build goes on, as the
 * change may be the point; a directory listed under the layer's `dirs:` is changed on purpose and
 * not named. A directory a layer below wrote as the base has it (a destination that kept it) is
 * still the base's: a copied tree that changes it above is named.
 */
export function baseDirsChanged(spec: NormalizedSpec, layers: readonly PlannedLayer[], dirs: ReadonlyMap<string, DirMeta>, kept: KeptDirs, baseLabel: string): string[] {
  if (dirs.size === 0) return [];
  const warnings: string[] = [];
  eachOverBase(spec, layers, kept, (layer, i, written, below) => {
    const explicit = new Set(spec.layers[i]!.dirs.map((d) => imageRel(d.path)));
    const changed: string[] = [];
    for (const e of written) {
      const was = dirs.get(e.path);
      if (!was || explicit.has(e.path) || !below.theBase(e.path)) continue;
      const now = kept[i]?.get(e.path) ?? e;
      if (!sameMeta(was, now)) changed.push(`/${e.path} (${described(was)} -> ${described(now)})`);
    }
    if (changed.length === 0) return;
    const more = changed.length > NAMED ? ` and ${changed.length - NAMED} more` : '';
    warnings.push(
      `layer "${layer.name}" changes the mode or owner of ${changed.slice(0, NAMED).join(', ')}${more}, ${changed.length === 1 ? 'a directory' : 'directories'} of the base image ${baseLabel}: ` +
        "a directory a copy brings takes the copy's dirMode and owner, except a copy's own destination, which keeps the base's where every platform's base has it alike. To keep the base's, copy what the directory holds to it (from: rootfs/etc/, to: /etc/); to change it on purpose, list it under the layer's dirs:",
    );
  }, dirs);
  return warnings;
}
