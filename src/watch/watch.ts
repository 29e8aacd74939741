/**
 * `apply --watch`: build once, then keep the outputs current while files change. Each batch of
 * changes maps to the layers that read those paths; only they are re-planned and rebuilt, every
 * other layer comes from the cache without its files being read. A change to the spec or its
 * lock file re-runs validation: an invalid spec is reported and the last good image is kept.
 * Builds never overlap: changes that arrive during a build are queued and built next, so the
 * outputs always end with the newest state.
 */
import { lstatSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { sha256, type Digest } from '../image/digest.js';
import { SpecError, type Diagnostic } from '../errors.js';
import { lockPathFor } from '../lock/lockfile.js';
import { compileOneLayer } from '../plan/compile.js';
import type { LayerPlan } from '../plan/types.js';
import { listedPlan, planSpec, realContext, type PlannedSpec } from '../plan/plan-spec.js';
import { neverInputs } from '../plan/host-exclusions.js';
import { localBaseFile } from '../run/base-files.js';
import { apply, builtImage, type ApplyOptions, type ApplyResult, type BuiltImage } from '../run/apply.js';
import type { ApplyEvent } from '../run/events.js';
import { readSpecFile } from '../spec/spec-inputs.js';
import { Coalescer } from './coalesce.js';
import { ignoredByAll, layerInputs, layersAffectedBy, type LayerInput } from './inputs.js';
import { rebuildLine, type WatchLine } from './report.js';
import { InputWatcher } from './watcher.js';

export interface WatchOptions extends ApplyOptions {
  /** Called for every rebuild (or failed one) with a line for people and its data. */
  onRebuild: (line: WatchLine) => void;
  quietMs?: number;
  maxWaitMs?: number;
  /** Resolves when the watcher is ready (tests wait for it before changing files). */
  onReady?: () => void;
  /**
   * Told, before a rebuild builds, how many entries the layer plans it replaced held: the moment
   * their memory can be given back (the CLI collects garbage after a large plan).
   */
  onPlanReplaced?: (entries: number) => void;
}

/** What a watch keeps of the image it last wrote: never its plan, which `planned` supersedes. */
interface LastImage {
  /** The spec it was built from: its bases are those of that spec only. */
  spec: PlannedSpec['spec'];
  digest: Digest;
  /** Each layer's blob digest by name: a rebuild names the layers whose blob is another. */
  layers: ReadonlyMap<string, Digest>;
  bases: ApplyResult['bases'];
}

interface State {
  file: string;
  opts: WatchOptions;
  /** The plan of the files as they were last seen, built or not. */
  planned: PlannedSpec;
  last: LastImage;
  inputs: LayerInput[];
  /** What is handed to the watcher: the spec, its lock and every input root. */
  targets: Set<string>;
  watcher: InputWatcher;
  /** Opens a watcher of the current targets, reporting to this watch's coalescer. */
  openWatcher: () => Promise<InputWatcher>;
  coalescer: Coalescer;
  running?: Promise<void>;
  pending: Set<string>;
  /**
   * Paths of a batch whose re-plan failed (a glob that matched nothing for a moment): the plan
   * still lists their layers as they were, so the next batch plans them too.
   */
  owed: Set<string>;
  stopped: boolean;
  /**
   * Paths of the one check made when watching starts, or when the watcher watches a directory
   * anew; a rebuild of only these that changes nothing is not reported.
   */
  catchUp?: Set<string>;
  /** The spec bytes (digest) that `inputs` and the watcher follow: the last planned, or an edited one that failed to plan. */
  inputsOf: string;
  /** What the last failed rebuild said (see failureKey); cleared by a success. */
  lastFailure?: string;
}

/**
 * Host paths never read besides the outputs: the cache and our own logs in the context, as a
 * plan leaves out (a planned spec carries them as `ignore`; this is for a spec followed before it
 * plans).
 */
const notInputs = (s: State, spec: PlannedSpec['spec']) => neverInputs(s.opts.cacheDir, s.opts.logFiles ?? [], realContext(spec.contextDir));

function specPaths(s: State): Set<string> {
  return new Set([s.planned.spec.specFile, lockPathFor(s.planned.spec.specFile)]);
}

/** A local base's file (an OCI layout's index.json, a docker archive): rebuilt, it gives a new image on the same layers. */
function basePaths(s: State): string[] {
  const file = localBaseFile(s.planned.plan.base, s.planned.spec.specFile);
  return file === undefined ? [] : [file];
}
const baseChangedIn = (s: State, changed: ReadonlySet<string>) => basePaths(s).some((p) => changed.has(p));

async function replan(s: State, changed: Set<string>): Promise<{ planned: PlannedSpec; layers: number[] }> {
  const specChanged = [...specPaths(s)].some((p) => changed.has(p));
  if (specChanged) {
    const planned = await planSpec(s.file, { vars: s.opts.vars ?? {}, env: s.opts.env ?? process.env, cacheDir: s.opts.cacheDir, ...(s.opts.logFiles ? { logFiles: s.opts.logFiles } : {}) });
    return { planned, layers: planned.plan.layers.map((_, i) => i) };
  }
  const affected = new Set<number>();
  for (const p of changed) for (const i of layersAffectedBy(p, s.inputs)) affected.add(i);
  // The layers do not depend on the base: a base alone rebuilt needs no plan, only a new image.
  if (affected.size === 0 && baseChangedIn(s, changed)) return { planned: s.planned, layers: s.planned.plan.layers.map((_, i) => i) };
  const { spec, plan, digests } = s.planned;
  // The stat cache stays open from plan to plan and counts from when it was opened: a rebuild's
  // plan and done events say what this rebuild hashed (they said 41 for one file changed in 40).
  digests.filesHashed = digests.bytesHashed = 0;
  // Layers above a re-planned one are re-planned too: their implied parent directories inherit
  // from below. Their files are not read again (the stat cache knows them).
  const lowest = Math.min(...affected);
  const layers: LayerPlan[] = [];
  const refusals: Diagnostic[] = [];
  for (const [i, l] of plan.layers.entries()) layers.push(i < lowest ? l : await compileOneLayer(spec, i, layers, digests, s.planned.ignore, refusals));
  // Every layer refused at once, as a plan reports them.
  if (refusals.length > 0) throw new SpecError(refusals);
  const planned = { ...s.planned, plan: { ...plan, layers }, filesHashed: digests.filesHashed, bytesHashed: digests.bytesHashed };
  return { planned, layers: [...affected].sort((a, b) => a - b) };
}

async function rebuild(s: State, batch: Set<string>): Promise<void> {
  const started = Date.now();
  const files = [...batch].map((p) => relative(s.planned.spec.specDir, p) || '.');
  const onlyCatchUp = s.catchUp !== undefined && [...batch].every((p) => s.catchUp!.has(p));
  const changed = new Set([...s.owed, ...batch]);
  s.owed.clear();
  s.catchUp = undefined;
  // The start-up check's events are held until it is known to have changed something: one that
  // finds nothing is not a build anyone asked for, and a tool reading --json must not see one.
  const held: ApplyEvent[] = [];
  const report = onlyCatchUp && s.opts.report ? (e: ApplyEvent) => void held.push(e) : s.opts.report;
  const release = () => {
    for (const e of held.splice(0)) s.opts.report?.(e);
  };
  const baseChanged = baseChangedIn(s, changed);
  try {
    const { planned, layers } = await replan(s, changed).catch(async (e: unknown) => {
      for (const p of changed) s.owed.add(p);
      await followUnplannedSpec(s);
      throw e;
    });
    if (layers.length === 0) return;
    const specChanged = planned.spec !== s.planned.spec;
    // The new plan is what the files are now, whether or not its build succeeds, and the old one
    // is let go before the build: two plans of a large tree at once set watch mode's peak heap.
    // After a failed build, the next one builds whatever of this plan the cache does not hold.
    const replaced = entriesReplaced(s.planned, planned);
    s.planned = planned;
    if (specChanged) {
      resetInputs(s);
      await rewatch(s);
    }
    s.opts.onPlanReplaced?.(replaced);
    // The last image's bases only for the spec they were resolved for, and while they are what is
    // on disk: after a failed build of an edited spec, the plan is the new spec's while the last
    // image is still the old one's; a local base rebuilt is opened again.
    const sameSpec = planned.spec === s.last.spec;
    const result = await apply(s.file, { ...s.opts, ...(report ? { report } : {}), renderer: 'silent', planned, ...(sameSpec && !baseChanged ? { bases: s.last.bases } : {}) });
    const previous = s.last;
    s.last = lastImage(result);
    s.lastFailure = undefined;
    if (onlyCatchUp && result.digest === previous.digest) return;
    release();
    s.opts.onRebuild(rebuildLine({ files, result, previous, ms: Date.now() - started }));
  } catch (e) {
    // A rebuilt base whose build failed (a layout's index.json copied in before its blobs) is
    // still to be opened: the next build, of a file edited, reused the last image's base.
    if (baseChanged) for (const p of basePaths(s)) s.owed.add(p);
    // A check that fails as the rebuild before it did (the catch-up of followUnplannedSpec's
    // watcher, while the source is still missing) tells nothing new: said once.
    const failure = failureKey(e);
    const repeated = onlyCatchUp && failure === s.lastFailure;
    s.lastFailure = failure;
    if (repeated) return;
    release();
    s.opts.onRebuild({ kind: 'error', text: '', files, error: e });
  }
}

const failureKey = (e: unknown) => (e instanceof SpecError ? JSON.stringify(e.diagnostics) : String(e));

/**
 * An edited spec whose plan failed is still followed for what it reads, when it loads: a layer
 * added before its source exists fails to plan, and the source made then is in no directory the
 * last good spec's watcher watches, so nothing would plan it again (the image stayed stale until
 * some other input changed). Its inputs are watched as a planned spec's are (see rewatch); the
 * spec's paths stay owed, so the next batch plans the whole spec again.
 */
async function followUnplannedSpec(s: State): Promise<void> {
  if (![...specPaths(s)].some((p) => s.owed.has(p))) return;
  const { loadSpec } = await import('../spec/load.js');
  const spec = await loadSpec(s.file, { vars: s.opts.vars ?? {}, env: s.opts.env ?? process.env }).catch(() => undefined);
  if (spec === undefined || spec.specDigest === s.inputsOf) return;
  setInputs(s, spec);
  await rewatch(s);
}

/** Entries of the old plan's layers that the new plan does not keep. */
function entriesReplaced(old: PlannedSpec, next: PlannedSpec): number {
  const kept = new Set(next.plan.layers);
  return old.plan.layers.reduce((n, l) => (kept.has(l) ? n : n + l.entries.length), 0);
}

/** Start a build of what changed, unless one is running: then the changes wait for it. */
function schedule(s: State, batch: Set<string>, coalescer: Coalescer): void {
  if (s.stopped) return;
  if (s.running) {
    for (const p of batch) s.pending.add(p);
    return;
  }
  s.running = rebuild(s, batch).finally(() => {
    s.running = undefined;
    // What arrived meanwhile goes back through the coalescer: a burst still in progress
    // (an npm install, a checkout) is built once it settles, not in many small steps.
    const waiting = s.pending;
    s.pending = new Set();
    for (const p of waiting) coalescer.add(p);
  });
}

function watchTargets(s: State): string[] {
  return [...new Set([...specPaths(s), ...basePaths(s), ...s.inputs.map((i) => i.root)])];
}

const isTarget = (s: State, path: string) => s.targets.has(path);

/**
 * The path a raw event is about: the named entry of a watched directory, or the watched path
 * itself (a watched file reports its own name; some platforms give no name at all).
 */
function changedPath(s: State, watched: string | undefined, name: string | null): string | undefined {
  if (watched === undefined) return undefined;
  if (!name || (isTarget(s, watched) && basename(watched) === name)) return watched;
  const path = join(watched, name);
  // A watched directory removed or renamed reports itself by its own name: `dir/bin` gone says
  // "bin", not a `dir/bin/bin` that never was (a child of that name that is gone too is covered:
  // the same layers read its directory).
  if (basename(watched) === name && lstatSync(path, { throwIfNoEntry: false }) === undefined) return watched;
  return path;
}

function resetInputs(s: State): void {
  setInputs(s, s.planned.spec);
}

function setInputs(s: State, spec: PlannedSpec['spec']): void {
  s.inputs = layerInputs(spec, notInputs(s, spec));
  s.inputsOf = spec.specDigest;
  s.targets = new Set(watchTargets(s));
}

/**
 * A spec that changed what is read gets a watcher of its own. chokidar cannot be told to watch
 * again what it was told to unwatch (nor what lies below it), nor walks again a directory it
 * skipped as excluded: a root put back, a directory no longer excluded or a root added later
 * (and then made anew) went unseen. The new watcher is open before the old one closes, and every
 * input is checked once, as at start-up, for what changed in between.
 */
async function rewatch(s: State): Promise<void> {
  const old = s.watcher;
  s.watcher = await s.openWatcher();
  await old.close();
  s.catchUp = new Set(s.inputs.map((i) => i.root));
  for (const root of s.catchUp) s.coalescer.add(root);
}

/**
 * The spec, if its bytes are not those the first build used; the lock and a local base's file, if
 * written since then (a base rebuilt after the first build opened it was never opened again).
 */
async function specPathsChangedSince(s: State, first: ApplyResult): Promise<string[]> {
  const { specFile, specDigest } = s.planned.spec;
  const changed: string[] = [];
  // Read as it was loaded, which is what specDigest hashes: a byte order mark dropped.
  const text = await readSpecFile(specFile).catch(() => undefined);
  if (text === undefined || sha256(text) !== specDigest) changed.push(specFile);
  for (const file of [lockPathFor(specFile), ...basePaths(s)]) {
    const time = await stat(file).then((st) => st.mtimeMs, () => undefined);
    if (time !== undefined && time > Date.now() - first.ms - 1000) changed.push(file);
  }
  return changed;
}

const lastImage = (r: ApplyResult): LastImage => ({ spec: r.planned.spec, digest: r.digest, layers: new Map(r.layers.map((l) => [l.name, l.record.digest])), bases: r.bases });

export interface WatchHandle {
  /** The image of the first build. */
  first: BuiltImage;
  /** Stop watching; resolves after the build in progress (if any) has finished. */
  stop(): Promise<void>;
  /** A rebuild is running now (a stop waits for it). */
  building(): boolean;
}

export async function watchApply(file: string, opts: WatchOptions): Promise<WatchHandle> {
  // Listed in full: a watch re-plans layers on top of the entries of the layers below.
  const first = await apply(file, { ...opts, keepEntries: true });
  const planned = listedPlan(first.planned);
  const s = { file, opts, planned, last: lastImage(first), pending: new Set<string>(), owed: new Set<string>(), stopped: false } as State;
  resetInputs(s);
  const coalescer: Coalescer = new Coalescer({ quietMs: opts.quietMs ?? 60, maxWaitMs: opts.maxWaitMs ?? 2000 }, (batch) => schedule(s, batch, coalescer));
  s.coalescer = coalescer;
  s.openWatcher = () => InputWatcher.open(
    watchTargets(s),
    {
      ignoreInitial: true,
      atomic: true,
      // Directories only, plus the files named as targets (the spec, its lock, a copied file):
      // chokidar opens an fs.watch per file it watches (224 MB of RSS for an 18,000-file
      // node_modules), while a directory's own watch already reports every change to the files
      // in it, as the raw events below.
      ignored: (path, stats) => stats !== undefined && !isTarget(s, path) && (!stats.isDirectory() || ignoredByAll(path, true, s.inputs)),
    },
    {
      all: (_event, path) => coalescer.add(path),
      raw: (_event, name, details) => {
        const changed = changedPath(s, (details as { watchedPath?: string } | undefined)?.watchedPath, name);
        if (changed !== undefined && !ignoredByAll(changed, false, s.inputs)) coalescer.add(changed);
      },
      replaced: (path, recheck) => {
        // A directory watched anew is a check, as at start-up: after `rm -rf lib && mkdir lib`,
        // the reconcile's reports of the instances it reopened (".", "out") were a line of their
        // own, "no layer changed (same image)", naming paths nobody touched. A path replaced for
        // real is reported whatever the rebuild finds.
        if (recheck) (s.catchUp ??= new Set()).add(path);
        else s.catchUp?.delete(path);
        if (isTarget(s, path) || !ignoredByAll(path, true, s.inputs)) coalescer.add(path);
      },
    },
  );
  s.watcher = await s.openWatcher();
  // Edits made during the first build, or in the instant the watcher was starting, raised no
  // event anyone saw: check every input once (the stat cache makes that cheap) so none is lost.
  s.catchUp = new Set([...s.inputs.map((i) => i.root), ...(await specPathsChangedSince(s, first))]);
  for (const root of s.catchUp) coalescer.add(root);
  opts.onReady?.();
  return {
    first: builtImage(first),
    stop: async () => {
      s.stopped = true;
      coalescer.cancel();
      await s.watcher.close();
      await s.running;
    },
    building: () => s.running !== undefined,
  };
}
