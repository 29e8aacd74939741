/**
 * The `plan` entry point of the API: load a spec file and compile its build plan, with the
 * stat cache from the shared cache directory so unchanged files are not read again.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { sha256 } from '../image/digest.js';
import type { Vars } from '../spec/interpolate.js';
import type { NormalizedSpec } from '../spec/normalized.js';
import { readSpecFile, specInputs, type LoadOptions, type SpecInputs } from '../spec/spec-inputs.js';
import { ensureCacheDir } from '../store/cache-dir.js';
import { FileDigestCache } from '../store/file-digests.js';
import { SpecRecords } from '../store/spec-records.js';
import { WalkRecords } from '../store/walk-records.js';
import { compilePlan } from './compile.js';
import { hostExclusions, neverInputs } from './host-exclusions.js';
import { walkCovers } from './resolve-copy.js';
import { isPacked, isUnchanged, type BuildPlan, type LayerPlan, type LayerSummary, type PlannedLayer } from './types.js';

export interface PlanOptions {
  vars?: Vars;
  env?: Vars;
  /** The shared cache root (see resolveCacheDir). */
  cacheDir: string;
  /**
   * The plan is for a build: on a context this cache has never read, files are hashed by the
   * layer writer as it reads them instead of first by the planner (a cold build reads each file
   * once). A later build hashes first, so a layer already in the cache is found, not rebuilt.
   * The stat cache is left to the build to save, once, with what the writer hashed too.
   */
  forBuild?: boolean;
  /**
   * Hold layers that are unchanged since their last walk unlisted, and record the walks made
   * (plan/unchanged-layer.ts): for a build that needs only their keys.
   */
  reuseWalks?: boolean;
  /**
   * With `forBuild`, a first build's layer of one plain directory copy is held packed
   * (plan/packed-layer.ts): for a one-shot build, whose layer writer alone reads its files' entries.
   */
  packFiles?: boolean;
  /** The files this process's output goes to (see `neverInputs`): never inputs when they are in the context. */
  logFiles?: readonly string[];
}

export interface PlannedSpec<L extends LayerSummary = LayerPlan> {
  spec: NormalizedSpec;
  plan: BuildPlan<L>;
  /** Files whose content had to be read to digest them (0 when the stat cache knew them all). */
  filesHashed: number;
  bytesHashed: number;
  /** The stat cache used, still open: a replan during the build reuses it. */
  digests: FileDigestCache;
  /** The host paths the plan left out besides the outputs (`neverInputs`): a replan during the build leaves out the same. */
  ignore: readonly string[];
}

export async function planSpec(file: string, opts: PlanOptions & { reuseWalks?: false; packFiles?: false }): Promise<PlannedSpec>;
export async function planSpec(file: string, opts: PlanOptions): Promise<PlannedSpec<PlannedLayer>>;
export async function planSpec(file: string, opts: PlanOptions): Promise<PlannedSpec<PlannedLayer>> {
  await ensureCacheDir(opts.cacheDir);
  const spec = await loadRecorded(file, { vars: opts.vars ?? {}, env: opts.env ?? process.env }, opts.cacheDir);
  const digests = await FileDigestCache.open(opts.cacheDir, spec.contextDir);
  // Walk records only save time: a build goes on without them if they cannot be kept.
  const walks = opts.reuseWalks ? await WalkRecords.open(opts.cacheDir).catch(() => undefined) : undefined;
  const contextReal = realContext(spec.contextDir);
  const ignore = neverInputs(opts.cacheDir, opts.logFiles ?? [], contextReal);
  const plan = await compilePlan(spec, digests, { ignore, hashLater: (opts.forBuild ?? false) && digests.isNew, pack: opts.packFiles ?? false, ...(walks ? { walks } : {}) });
  // Every file the listed layers' walks list was just looked up: a record of one that was not is
  // gone. (An unchanged layer lost no file since the walk that listed it, and forgot those gone then.)
  const skip = hostExclusions(spec.outputs, ignore, { dir: spec.contextDir, real: contextReal ?? realpathSync.native(spec.contextDir) });
  const covers = spec.layers.flatMap((l, i) => (isUnchanged(plan.layers[i]!) ? [] : l.copies.map((c) => walkCovers(c, spec.contextDir, skip))));
  if (covers.length > 0) digests.forgetUnseen((path) => covers.some((covered) => covered(path)));
  // Only an optimisation, as the spec and walk records are: a plan is not refused for it.
  if (!opts.forBuild) await digests.save().catch(() => undefined);
  return { spec, plan, digests, filesHashed: digests.filesHashed, bytesHashed: digests.bytesHashed, ignore };
}

/** The context's real path; undefined when it is missing, which the plan refuses at `context:`. */
export function realContext(contextDir: string): string | undefined {
  try {
    return realpathSync.native(contextDir);
  } catch {
    return undefined;
  }
}

/**
 * The spec, as recorded when it was last loaded from these bytes, if the variables it looked up
 * then (and SOURCE_DATE_EPOCH) have the same values now (store/spec-records.ts); otherwise
 * loaded, and recorded with what it looked up.
 */
async function loadRecorded(file: string, opts: LoadOptions, cacheDir: string): Promise<NormalizedSpec> {
  const text = await readSpecFile(file);
  const key = { specFile: resolve(file), specDigest: sha256(text), shownAs: file };
  const records = new SpecRecords(cacheDir);
  const recorded = await records.load(key);
  if (recorded && sameInputs(recorded.inputs, specInputs(Object.keys(recorded.inputs.vars), opts))) return recorded.spec;
  // Imported only now: the YAML parser and the schema validator are half of what a build loads.
  const { loadSpecText } = await import('../spec/load.js');
  const looked = new Set<string>();
  const spec = loadSpecText(file, text, opts, looked);
  await records.save(key, spec, specInputs(looked, opts)).catch(() => undefined);
  return spec;
}

const sameInputs = (a: SpecInputs, b: SpecInputs) => JSON.stringify(a) === JSON.stringify(b);

/** The same plan typed as fully listed: for one made without `reuseWalks` and `packFiles`, which lists every layer. */
export function listedPlan(planned: PlannedSpec<PlannedLayer>): PlannedSpec {
  const layers = planned.plan.layers.map((l) => {
    if (isUnchanged(l) || isPacked(l)) throw new Error(`internal: layer "${l.name}" of a plan made to be listed is unlisted`);
    return l;
  });
  return { ...planned, plan: { ...planned.plan, layers } };
}
