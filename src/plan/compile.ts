/**
 * The compile step: NormalizedSpec -> BuildPlan. Resolves each layer's copies against the
 * context, merges them with inline files, dirs, symlinks and whiteouts into the exact sorted
 * list of tar entries, digests every file's content (through a FileDigester, so a stat cache
 * can skip unchanged files) and derives each layer's cache key. Reports every problem at once.
 * A layer that is one plain directory copy (a node_modules, say) skips the merge: its walk gives
 * the entries in their final order (`listOrdered`). A plan for a build holds a layer whose last
 * walk still holds unlisted, found before anything is resolved (unchanged-layer.ts).
 */
import { realpath, stat } from 'node:fs/promises';
import { SpecError, type Diagnostic } from '../errors.js';
import { sha256 } from '../image/digest.js';
import type { FileDigester } from '../store/file-digests.js';
import type { WalkRecords } from '../store/walk-records.js';
import type { NormalizedLayer, NormalizedSpec } from '../spec/normalized.js';
import { FileChangedError } from '../layer/stable-read.js';
import { layerCacheKey } from './cache-key.js';
import { Strength, type Candidate } from './candidates.js';
import { mapLimit } from '../util/map-limit.js';
import { hostExclusions, type HostFilter } from './host-exclusions.js';
import { mergeCandidates } from './merge.js';
import { copiedOntoLink, fileOnto, fileOntoDir, followLinks, isDir, keepLowerDestination, linkAt, lowerDirsAndLinks, settleParents, type Lower, type ThroughLink } from './parents.js';
import { imageJoiner, listCopyInOrder, orderedCopy, resolveCopy, type OrderedCopy } from './resolve-copy.js';
import { FROM_FILE, imageRel, isPacked, UNHASHED, type BuildPlan, type FileEntry, type ImagePath, type LayerPlan, type PackedLayer, type PlanEntry, type PlannedLayer } from './types.js';
import { entriesOf, FilePacker } from './packed-layer.js';
import { WalkReuse, WalkStamps } from './unchanged-layer.js';

export type { FileDigester };


function declaredCandidates(layer: NormalizedLayer): Candidate[] {
  const own = (o: { uid: number; gid: number }) => ({ uid: o.uid, gid: o.gid });
  return [
    ...layer.files.map((f): Candidate => ({ kind: 'inline', path: imageRel(f.path), mode: f.mode, ...own(f.owner), content: f.content, origin: f.at, strength: Strength.Explicit })),
    ...layer.dirs.map((d): Candidate => ({ kind: 'dir', path: imageRel(d.path), mode: d.mode, ...own(d.owner), origin: d.at, strength: Strength.Explicit })),
    ...layer.symlinks.map((s): Candidate => ({ kind: 'symlink', path: imageRel(s.path), mode: 0o777, ...own(s.owner), target: s.target, origin: s.at, strength: Strength.Explicit })),
    ...layer.removes.map((r): Candidate => ({ kind: 'whiteout', path: imageRel(r.path), mode: 0, uid: 0, gid: 0, origin: r.at, strength: Strength.Explicit })),
  ];
}

/** A candidate as a plan entry; a file whose digest is not known yet is left for `completeLayer`. */
function toPlanEntry(c: Candidate, digester: FileDigester): PlanEntry {
  const { path, mode, uid, gid } = c;
  switch (c.kind) {
    case 'file':
      return { path, mode, uid, gid, type: 'file', size: c.st.size, source: { kind: 'path', path: c.abs, digest: digester.known?.(c.abs, c.st) ?? UNHASHED } };
    case 'inline':
      return { path, mode, uid, gid, type: 'file', size: Buffer.byteLength(c.content), source: { kind: 'inline', content: c.content, digest: sha256(c.content) } };
    case 'symlink':
      return { path, mode, uid, gid, type: 'symlink', target: c.target };
    default:
      return { path, mode, uid, gid, type: c.kind };
  }
}

/** A file the stat cache did not know: its entry, and where to read it. */
interface ToHash {
  entry: FileEntry;
  file: Extract<Candidate, { kind: 'file' }>;
}

/** A file read from the context, with the stat its walk saw, for the walk's record. */
function noteFile(stamps: WalkStamps | undefined, c: Candidate, entry: PlanEntry): void {
  if (stamps && c.kind === 'file' && entry.type === 'file') stamps.file(entry, c.abs, c.st, entry.source.digest !== UNHASHED);
}

/** Append the plan entry of a candidate, noting a file whose digest is still to be read. */
function addEntry(c: Candidate, digester: FileDigester, entries: PlanEntry[], toHash: ToHash[]): PlanEntry {
  const entry = toPlanEntry(c, digester);
  entries.push(entry);
  if (c.kind === 'file' && entry.type === 'file' && entry.source.digest === UNHASHED) toHash.push({ entry, file: c });
  return entry;
}

/**
 * The layer from its final entries: the files the stat cache did not know hashed (bounded
 * parallelism), the files counted, and the cache key. With `hashLater` those files keep an
 * empty digest, for the layer writer to fill, and the layer has no key.
 */
async function completeLayer(spec: NormalizedSpec, name: string, entries: PlanEntry[], destinations: ImagePath[], toHash: readonly ToHash[], digester: FileDigester, hashLater: boolean): Promise<LayerPlan> {
  const unhashed = hashLater && toHash.length > 0;
  if (!unhashed) {
    await mapLimit(toHash, 32, async ({ entry, file }) => {
      entry.source.digest = await digester.digest(file.abs, file.st);
    });
  }
  let files = 0;
  let bytes: number | undefined = 0;
  for (const e of entries) {
    if (e.type !== 'file') continue;
    files++;
    bytes = bytes === undefined || e.size === FROM_FILE ? undefined : bytes + e.size;
  }
  const layer: LayerPlan = { name, entries, destinations, files, ...(bytes === undefined ? {} : { bytes }) };
  if (!unhashed) layer.cacheKey = layerCacheKey(entries, spec.compression, spec.epoch);
  return layer;
}

interface Resolved {
  /** Merged candidates (with implied parents), or the problems that stop this layer. */
  candidates?: Candidate[];
  /** A layer of one plain directory copy: listed in order as it is walked (`listOrdered`), nothing to merge. */
  ordered?: OrderedCopy;
  problems: Diagnostic[];
  /** What the layer's walks saw (a merged layer's as it was resolved; an ordered one's as it is listed), when they are to be recorded. */
  stamps?: WalkStamps;
}

/** The layer's one copy, when the layer is nothing but one plain directory copy (see `orderedCopy`). */
async function orderedLayer(spec: NormalizedSpec, layer: NormalizedLayer, contextReal: string, skip: HostFilter): Promise<OrderedCopy | undefined> {
  const declared = layer.files.length + layer.dirs.length + layer.symlinks.length + layer.removes.length;
  if (layer.copies.length !== 1 || declared > 0) return undefined;
  return orderedCopy(layer.copies[0]!, spec.contextDir, contextReal, skip);
}

/** With `hashLater`, files are not lstat'ed either: their sizes and default modes are left to the layer writer (FROM_FILE). */
async function resolveLayer(spec: NormalizedSpec, layer: NormalizedLayer, contextReal: string, skip: HostFilter, hashLater: boolean, stamps?: WalkStamps): Promise<Resolved> {
  const ordered = await orderedLayer(spec, layer, contextReal, skip);
  if (ordered) return { ordered, problems: [], ...(stamps ? { stamps } : {}) };
  const resolved = await Promise.all(layer.copies.map((c) => resolveCopy(c, spec.contextDir, contextReal, skip, { ...(stamps ? { witness: stamps } : {}), statFiles: !hashLater })));
  const problems = resolved.flatMap((r) => r.problems);
  const merged = mergeCandidates([...resolved.flatMap((r) => r.candidates), ...declaredCandidates(layer)]);
  problems.push(...merged.problems);
  return problems.length > 0 ? { problems } : { candidates: merged.entries, problems, ...(stamps ? { stamps } : {}) };
}

/** A merged layer: its entries, with settled parents, as a complete layer plan. With `stamps`, its files are noted for recording. */
async function finishLayer(spec: NormalizedSpec, name: string, candidates: Candidate[], lower: readonly PlannedLayer[], digester: FileDigester, hashLater: boolean, refusals: Diagnostic[], stamps?: WalkStamps): Promise<LayerPlan> {
  const implied = new Set<string>();
  const all: PlanEntry[] = [];
  const toHash: ToHash[] = [];
  const below = lowerDirsAndLinks(lower);
  const destinations: ImagePath[] = [];
  for (const c of candidates) {
    if (c.strength === Strength.Implied) implied.add(c.path);
    else if (c.kind === 'dir' && c.destination) destinations.push(c.path);
    noteFile(stamps, c, addEntry(keepLowerDestination(c, below), digester, all, toHash));
  }
  const throughLinks: ThroughLink[] = [];
  const explicitDirs = new Set(spec.layers.find((l) => l.name === name)!.dirs.map((d) => imageRel(d.path)));
  const entries = settleParents(all, implied, below, spec.base.kind === 'scratch', throughLinks, explicitDirs);
  destinations.push(...inheritedParents(entries, implied, below));
  refuseThroughLinks(spec, name, throughLinks, below, refusals);
  refuseFileOntoDir(spec, name, entries, below, refusals);
  return completeLayer(spec, name, entries, destinations, toHash, digester, hashLater);
}

/**
 * The implied parents that took a lower layer's directory's mode and owner (settleParents): like
 * a copy's destination, each is written as what is below it, which on a base may be what that
 * layer kept of the base's (run/base-dirs.ts), so they go with the layer's destinations.
 */
function inheritedParents(entries: readonly PlanEntry[], implied: ReadonlySet<string>, below: ReadonlyMap<string, Lower>): ImagePath[] {
  return entries.filter((e) => e.type === 'dir' && implied.has(e.path) && isDir(below.get(e.path))).map((e) => e.path);
}

/**
 * A layer that writes below a symlink of a lower layer of ours (settleParents) is refused at the
 * layer: its problems go to `refusals`, and the plan goes on to the layers above, so that every
 * such layer is reported at once.
 */
function refuseThroughLinks(spec: NormalizedSpec, name: string, throughLinks: readonly ThroughLink[], lower: ReadonlyMap<string, Lower>, refusals: Diagnostic[]): void {
  const i = spec.layers.findIndex((l) => l.name === name);
  for (const { path, target, onto } of throughLinks) {
    refusals.push({
      position: spec.layers[i]!.at,
      message: `layer "${name}" ${onto ? 'copies a directory onto' : 'writes below'} /${path}, which a lower layer made a symlink${target === undefined ? '' : ` to ${target}`}`,
      hint: `write below ${target === undefined ? "the link's target" : followLinks(path, (p) => linkAt(lower, p)?.target)} instead: below a lower layer's symlink, runtimes differ (containerd's overlayfs snapshotter, Docker's and Kubernetes' default, replaces the link with a directory)`,
      pointer: `/layers/${i}`,
    });
  }
}

/**
 * A layer that copies a file onto a directory of a lower layer of ours is refused at the layer,
 * as one writing below a lower symlink is: the file would replace the directory and all it holds
 * (`copy: { from: app.conf, to: /app }`, its "/" forgotten, took /app away). The base's
 * directories are checked once the base is read (run/base-links.ts).
 */
function refuseFileOntoDir(spec: NormalizedSpec, name: string, entries: Iterable<PlanEntry>, lower: ReadonlyMap<string, Lower>, refusals: Diagnostic[]): void {
  // Nothing lies below the bottom layer: a packed layer's entries need not be made to find out.
  if (lower.size === 0) return;
  const onto = fileOnto(entries, (path) => isDir(lower.get(path)));
  if (onto) refusals.push(fileOntoDir(spec, spec.layers.findIndex((l) => l.name === name), onto.path, onto.abs, 'a directory of a layer below'));
}

/** The parent directories of an image path, outermost first ("a/b/c" -> "a", "a/b"). */
function parentsOf(path: string): string[] {
  const out: string[] = [];
  for (let cut = path.indexOf('/'); cut > 0; cut = path.indexOf('/', cut + 1)) out.push(path.slice(0, cut));
  return out;
}

/**
 * A layer of one plain directory copy, listed in its final order as the tree is walked, a
 * directory at a time: one copy has no conflicts, and its walk has every parent below its
 * destination, so there is nothing to merge, and no list of every walked file, candidate and
 * map entry is held at once (a no-op build of a node_modules layer spent a tenth of its time on
 * those). The entries are what `finishLayer` gives for the same copy; a test holds the two equal.
 * With `stamps`, what the walk saw is noted for recording (unchanged-layer.ts). With `pack`, the
 * files left wholly to the layer writer are held packed (packed-layer.ts).
 */
async function listOrdered(spec: NormalizedSpec, name: string, ordered: OrderedCopy, lower: readonly PlannedLayer[], digester: FileDigester, skip: HostFilter, hashLater: boolean, pack: boolean, refusals: Diagnostic[], stamps?: WalkStamps): Promise<LayerPlan | PackedLayer> {
  // The destination's parents, settled against the lower layers like any implied parent.
  const parents = parentsOf(imageJoiner(ordered.copy.to)('')).map((path): PlanEntry => ({ path, mode: 0o755, uid: 0, gid: 0, type: 'dir' }));
  const throughLinks: ThroughLink[] = [];
  const below = lowerDirsAndLinks(lower);
  const implied = new Set(parents.map((p) => p.path));
  const entries = settleParents(parents, implied, below, spec.base.kind === 'scratch', throughLinks);
  const problems: Diagnostic[] = [];
  const toHash: ToHash[] = [];
  const destinations: ImagePath[] = inheritedParents(entries, implied, below);
  // A walk to be recorded needs every file's entry (unchanged-layer.ts); a first build records none.
  const packer = pack && hashLater && !stamps ? new FilePacker() : undefined;
  if (packer) for (const e of entries) packer.entry(e);
  for (const batch of listCopyInOrder(ordered, skip, { ...(stamps ? { beforeListing: stamps.before } : {}), statFiles: !hashLater })) {
    for (const c of batch) {
      if (!('kind' in c)) {
        problems.push(c);
        continue;
      }
      const onto = copiedOntoLink(below, { path: c.path, type: c.kind === 'dir' ? 'dir' : 'file' });
      if (onto) {
        throughLinks.push(onto);
        continue;
      }
      if (c.kind === 'dir' && c.destination) destinations.push(c.path);
      if (packer && c.kind === 'file' && c.st.size === FROM_FILE && digester.known?.(c.abs, c.st) === undefined && packer.file(c.path, c.abs, c.mode, c.uid, c.gid)) continue;
      const entry = addEntry(keepLowerDestination(c, below), digester, entries, toHash);
      packer?.entry(entry);
      noteFile(stamps, c, entry);
    }
  }
  if (problems.length > 0) throw new SpecError(problems);
  refuseThroughLinks(spec, name, throughLinks, below, refusals);
  if (packer?.packedFiles) {
    const layer: PackedLayer = { name, packed: packer.done(), destinations, files: packer.files };
    refuseFileOntoDir(spec, name, entriesOf(layer), below, refusals);
    return layer;
  }
  // With no file packed (none left to the writer), `entries` holds every entry: listed, with its key.
  refuseFileOntoDir(spec, name, entries, below, refusals);
  return completeLayer(spec, name, entries, destinations, toHash, digester, hashLater);
}

function orderedProblems(ordered: OrderedCopy, skip: HostFilter): Diagnostic[] {
  const problems: Diagnostic[] = [];
  for (const batch of listCopyInOrder(ordered, skip)) for (const c of batch) if (!('kind' in c)) problems.push(c);
  return problems;
}

const PLAN_ATTEMPTS = 3;

/** Stamps for a layer's walks, when they are to be recorded: a layer left for the writer to hash has no key to record them with. */
const stampsFor = (reuse: WalkReuse | undefined, hashLater: boolean) => (reuse && !hashLater ? new WalkStamps() : undefined);

/**
 * Resolve and finish one layer. A file that vanishes or changes type between the listing and its
 * hashing (a live file system) makes the layer be listed again: it was never there for the whole
 * build, so it is simply not part of it.
 */
async function planLayer(spec: NormalizedSpec, index: number, contextReal: string, lower: readonly PlannedLayer[], digester: FileDigester, skip: HostFilter, hashLater: boolean, pack: boolean, refusals: Diagnostic[], first?: Resolved, reuse?: WalkReuse): Promise<LayerPlan | PackedLayer> {
  const layer = spec.layers[index]!;
  for (let attempt = 1; ; attempt++) {
    const own: Diagnostic[] = [];
    try {
      // Resolved inside the try: a symlink gone between listing and reading it throws here (linkTarget).
      const r = attempt === 1 && first ? first : await resolveLayer(spec, layer, contextReal, skip, hashLater, stampsFor(reuse, hashLater));
      let listed: LayerPlan | PackedLayer;
      if (r.ordered) listed = await listOrdered(spec, layer.name, r.ordered, lower, digester, skip, hashLater, pack, own, r.stamps);
      else if (r.candidates) listed = await finishLayer(spec, layer.name, r.candidates, lower, digester, hashLater, own, r.stamps);
      else throw new SpecError(r.problems);
      refusals.push(...own);
      // A refused layer's walk is not recorded: it would be found unchanged, and its refusal lost.
      if (reuse && r.stamps && own.length === 0 && !isPacked(listed)) await reuse.record(index, lower, listed, r.stamps, digester);
      return listed;
    } catch (e) {
      if (!(e instanceof FileChangedError) || e.reason === 'changed' || attempt >= PLAN_ATTEMPTS) throw e;
    }
  }
}

/** The context's real path; one that is missing or not a directory is reported at `context:`. */
async function contextRealPath(spec: NormalizedSpec): Promise<string> {
  const refuse = (what: string) => new SpecError([{ position: spec.contextAt, message: `context directory ${spec.contextDir} ${what}`, hint: 'set `context:` to a folder next to the spec', pointer: '/context' }]);
  let real: string;
  try {
    real = await realpath(spec.contextDir);
  } catch {
    throw refuse('does not exist');
  }
  if (!(await stat(real)).isDirectory()) throw refuse('is not a directory');
  return real;
}

/**
 * Compile one layer again (after its files changed), on top of the given lower layers: the same
 * rules as a full compile. Layers above it may need compiling again too (their implied parents
 * inherit from it).
 */
export async function compileOneLayer(spec: NormalizedSpec, index: number, lower: readonly PlannedLayer[], digester: FileDigester, ignore: readonly string[] = [], refusals?: Diagnostic[]): Promise<LayerPlan> {
  const contextReal = await contextRealPath(spec);
  // With `refusals`, a layer refused for writing below a lower layer's symlink adds its problems
  // there, for the caller to report with those of the layers above; without, it is thrown.
  const own: Diagnostic[] = [];
  const layer = await planLayer(spec, index, contextReal, lower, digester, hostExclusions(spec.outputs, ignore, { dir: spec.contextDir, real: contextReal }), false, false, own);
  // Hashed by the plan, so never packed.
  if (isPacked(layer)) throw new Error(`internal: layer "${layer.name}" was packed`);
  if (!refusals && own.length > 0) throw new SpecError(own);
  refusals?.push(...own);
  return layer;
}

export interface CompileOptions {
  /** Host directories that are never inputs (the cache); the spec's own outputs never are either. */
  ignore?: readonly string[];
  /**
   * Leave files the stat cache does not know unhashed, for the layer writer to hash as it reads
   * them: one read of each file instead of two. Such layers have no cache key, so they are
   * built, not looked up; right for a context no build with this cache has read before. Their
   * walks do not lstat files either: sizes and exec bits are the writer's to read (FROM_FILE).
   */
  hashLater?: boolean;
  /**
   * Find layers unchanged since their recorded walk, and record the walks made (a plan for a
   * build; unchanged-layer.ts): such layers are held unlisted.
   */
  walks?: WalkRecords;
  /**
   * With `hashLater`, hold a layer of one plain directory copy packed (packed-layer.ts): a plan
   * for a one-shot build, whose layer writer is all that reads the files' entries.
   */
  pack?: boolean;
}

/** Layers unchanged since their walks, from the bottom up while each one's lower layers are: they need no resolving at all. */
async function unchangedBottom(spec: NormalizedSpec, reuse: WalkReuse | undefined): Promise<PlannedLayer[]> {
  const layers: PlannedLayer[] = [];
  for (let i = 0; reuse && i < spec.layers.length; i++) {
    const unchanged = await reuse.unchanged(i, layers);
    if (!unchanged) break;
    layers.push(unchanged);
  }
  return layers;
}

/** Nothing, for a path that vanished or changed type as it was listed (planLayer lists the layer again); any other error stands. */
function relistLater(e: unknown): undefined {
  if (e instanceof FileChangedError && e.reason !== 'changed') return undefined;
  throw e;
}

/** The whole plan. */
export async function compilePlan(spec: NormalizedSpec, digester: FileDigester, opts?: CompileOptions & { walks?: undefined; pack?: false }): Promise<BuildPlan>;
export async function compilePlan(spec: NormalizedSpec, digester: FileDigester, opts: CompileOptions): Promise<BuildPlan<PlannedLayer>>;
export async function compilePlan(spec: NormalizedSpec, digester: FileDigester, opts: CompileOptions = {}): Promise<BuildPlan<PlannedLayer>> {
  const contextReal = await contextRealPath(spec);
  const skip = hostExclusions(spec.outputs, opts.ignore ?? [], { dir: spec.contextDir, real: contextReal });
  const hashLater = opts.hashLater ?? false;
  const reuse = opts.walks && new WalkReuse(opts.walks, spec, contextReal, opts.ignore ?? []);
  const layers = await unchangedBottom(spec, reuse);
  const rest = spec.layers.slice(layers.length);
  // A layer whose symlink went between listing and reading it is resolved again when it is planned (planLayer).
  const results = await Promise.all(rest.map((l) => resolveLayer(spec, l, contextReal, skip, hashLater, stampsFor(reuse, hashLater)).catch(relistLater)));
  const problems = results.flatMap((r) => r?.problems ?? []);
  // A layer listed in order is walked only when it is planned: walk it now for its problems too, so they all show at once.
  if (problems.length > 0) for (const r of results) if (r?.ordered) problems.push(...orderedProblems(r.ordered, skip));
  if (problems.length > 0) throw new SpecError(problems.sort((a, b) => a.position.line - b.position.line || a.position.col - b.position.col));
  const firstListed = layers.length;
  const refusals: Diagnostic[] = [];
  for (const r of results) {
    const i = layers.length;
    // Above a layer that had to be listed, one may still be unchanged (that layer's key came out the same).
    const unchanged = reuse && i > firstListed ? await reuse.unchanged(i, layers) : undefined;
    layers.push(unchanged ?? (await planLayer(spec, i, contextReal, layers, digester, skip, hashLater, opts.pack ?? false, refusals, r, reuse)));
  }
  if (refusals.length > 0) throw new SpecError(refusals);
  return {
    specFile: spec.specFile,
    specDigest: spec.specDigest,
    name: spec.name,
    tags: [...spec.tags],
    base: spec.base,
    platforms: [...spec.platforms],
    epoch: spec.epoch,
    compression: spec.compression,
    layers,
    config: spec.config,
    annotations: { ...spec.annotations },
    outputs: [...spec.outputs],
  };
}
