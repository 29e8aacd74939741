/**
 * `apply()`: the whole build as a task graph run by listr2 — plan, base images, layers in
 * parallel (bounded), image assembly, outputs. The same function serves the CLI (with a TTY,
 * plain-line or NDJSON renderer) and tests (silent). Each phase is timed and reported as events.
 */
import { availableParallelism } from 'node:os';
import { Listr, ListrLogger, ProcessOutput, type ListrTask } from 'listr2';
import { SpecError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import type { Image } from '../image/types.js';
import type { BaseShape } from '../image/layer-check.js';
import { formatPlatform } from '../image/platform.js';
import { describeBase, formatBytes, plural, shortDigest, totalBytes } from '../plan/render.js';
import type { PlannedSpec } from '../plan/plan-spec.js';
import { planSpec } from '../plan/plan-spec.js';
import { forgetWalks } from '../plan/unchanged-layer.js';
import type { Vars } from '../spec/interpolate.js';
import { ContentStore } from '../store/content-store.js';
import type { FileDigestCache } from '../store/file-digests.js';
import { LayerIndex } from '../store/layer-index.js';
import type { KeptDirs } from './base-dirs.js';
import type { ApplyEvent, Reporter } from './events.js';
import { assembleTarget, type AssembledTarget } from './images.js';
import { materializeLayer, type LayerOutcome } from './layers.js';
import { sinkForOutput } from './outputs.js';
import { isUnchanged, type BaseRef, type OutputTarget, type PlannedLayer } from '../plan/types.js';
import { parseRef, repositoryOf } from '../registry/reference.js';

export type RendererKind = 'default' | 'simple' | 'silent';

export interface ApplyOptions {
  vars?: Vars;
  env?: Vars;
  cacheDir: string;
  /** Layers built at once (default: the number of cores). */
  jobs?: number;
  renderer?: RendererKind;
  report?: Reporter;
  /** Also push to the registry repository the spec's `name` names, with every tag. */
  push?: boolean;
  insecureRegistries?: string[];
  /** Fail unless image.lock exists and pins the spec's base (for CI). */
  locked?: boolean;
  /** A plan made already (watch mode re-plans only the layers whose files changed). */
  planned?: PlannedSpec<PlannedLayer>;
  /**
   * List every layer's entries and keep them: watch mode re-plans layers on top of the entries of
   * the layers below. Otherwise (a one-shot build) a layer unchanged since its last walk is not
   * listed (plan/unchanged-layer.ts), and a first build's plain directory copy is held packed
   * (plan/packed-layer.ts).
   */
  keepEntries?: boolean;
  /** The files this process's output goes to (`> build.log`): never inputs when they are in the context (plan/host-exclusions.ts). */
  logFiles?: readonly string[];
  /** Base images opened by an earlier build of the same spec (watch mode), to skip resolving them again. */
  bases?: (Image | undefined)[];
  signal?: AbortSignal;
}

export interface ApplyResult {
  planned: PlannedSpec<PlannedLayer>;
  digest: Digest;
  size: number;
  layers: LayerOutcome[];
  outputs: string[];
  bases: (Image | undefined)[];
  ms: number;
}

/** A build's result without its plan, which for a large tree is most of the memory a result holds. */
export type BuiltImage = Omit<ApplyResult, 'planned'> & { name: string; tags: readonly string[] };

export function builtImage({ planned, ...rest }: ApplyResult): BuiltImage {
  return { ...rest, name: planned.plan.name, tags: planned.plan.tags };
}

interface Ctx {
  /**
   * The fanned-out tasks (layers, outputs) still running: the first to fail ends the run at once,
   * but the others are awaited before the failure is reported, so no event follows it.
   */
  running: Set<Promise<unknown>>;
  /** Aborted when the run fails (or the caller's signal is): layers still being built stop. */
  stop: AbortController;
  planned: PlannedSpec<PlannedLayer>;
  store: ContentStore;
  index: LayerIndex;
  digester: FileDigestCache;
  bases: (Image | undefined)[];
  /** Per layer, the directory copy destinations that keep the base's mode and owner (none on scratch). */
  keptDirs?: KeptDirs;
  layers: LayerOutcome[];
  assembled: AssembledTarget;
  outputs: string[];
  /** The stat cache's save, started once every layer is written (`saveStatCache`). */
  saving?: Promise<void>;
}

/** `work`, counted in `ctx.running` until it settles. */
function tracked<T>(ctx: Ctx, work: Promise<T>): Promise<T> {
  ctx.running.add(work);
  void work.then(() => ctx.running.delete(work), () => ctx.running.delete(work));
  return work;
}

function layerTasks(ctx: Ctx, report: Reporter, signal?: AbortSignal): ListrTask<Ctx>[] {
  return ctx.planned.plan.layers.map((layer, i) => ({
    title: `${layer.name} (${plural(layer.files, 'file')}${layer.bytes === undefined ? '' : `, ${formatBytes(layer.bytes)}`})`,
    task: (_, task) => tracked(ctx, (async () => {
      const lctx = { spec: ctx.planned.spec, plan: ctx.planned.plan, store: ctx.store, index: ctx.index, digester: ctx.digester, ignore: ctx.planned.ignore, keptDirs: ctx.keptDirs?.[i], report, ...(signal ? { signal } : {}) };
      const out = await materializeLayer(lctx, i, (files, bytes) => {
        task.output = `${files}/${layer.files} files, ${formatBytes(bytes)}${layer.bytes === undefined ? '' : ` of ${formatBytes(layer.bytes)}`}`;
      });
      ctx.layers[i] = out;
      task.title = `${layer.name}: ${out.cached ? 'cached' : 'built'} ${shortDigest(out.record.digest)} (${formatBytes(out.record.size)})`;
    })()),
  }));
}

/** Where a registry base lives, so a push to the same registry mounts its blobs instead of uploading them. */
function baseRepositories(base: BaseRef): (registry: string) => string[] {
  if (base.kind !== 'registry') return () => [];
  const ref = parseRef(base.ref);
  return (registry) => (registry === ref.registry ? [ref.repository] : []);
}

/**
 * `--push`'s target, the repository the spec's name names, unless an output already pushes there
 * (a second push of the same image to it would upload every blob again, alongside the first).
 */
function pushTargets(name: string, outputs: readonly OutputTarget[], push: boolean | undefined): OutputTarget[] {
  if (!push) return [];
  const pushed = repositoryOf(name);
  return outputs.some((o) => o.kind === 'registry' && repositoryOf(o.ref) === pushed) ? [] : [{ kind: 'registry', ref: name }];
}

function outputTasks(ctx: Ctx, opts: ApplyOptions, report: Reporter): ListrTask<Ctx>[] {
  const plan = ctx.planned.plan;
  return [...plan.outputs, ...pushTargets(plan.name, plan.outputs, opts.push)].map((target) => {
    let status: (text: string) => void = () => undefined;
    const sink = sinkForOutput(target, { name: plan.name, report, mountFrom: baseRepositories(plan.base), onStatus: (t) => status(t), ...(opts.insecureRegistries ? { insecure: opts.insecureRegistries } : {}) });
    return {
      title: sink.describe(),
      task: (_, task) => tracked(ctx, (async () => {
        status = (t) => (task.output = t);
        const started = Date.now();
        const r = await sink.write(ctx.assembled.target, plan.tags);
        ctx.outputs.push(sink.describe());
        report({ type: 'output-done', output: sink.describe(), digest: r.digest, ms: Date.now() - started });
        task.title = `${sink.describe()} ${shortDigest(r.digest)}`;
      })()),
    };
  });
}

async function openStore(cacheDir: string): Promise<{ store: ContentStore; index: LayerIndex }> {
  const store = await ContentStore.open(cacheDir);
  return { store, index: await LayerIndex.open(store) };
}

async function planTask(ctx: Ctx, file: string, opts: ApplyOptions, report: Reporter): Promise<void> {
  const started = Date.now();
  // Opened while the plan is made: making the cache's folders (an empty cache has none) is a
  // string of thread-pool trips that the plan's synchronous walk would otherwise wait for after.
  const opening = openStore(opts.cacheDir);
  opening.catch(() => undefined); // awaited below, once the plan's own errors have had their say
  ctx.planned = opts.planned ?? (await planSpec(file, { vars: opts.vars ?? {}, env: opts.env ?? process.env, cacheDir: opts.cacheDir, forBuild: true, reuseWalks: !opts.keepEntries, packFiles: !opts.keepEntries, ...(opts.logFiles ? { logFiles: opts.logFiles } : {}) }));
  ({ store: ctx.store, index: ctx.index } = await opening);
  ctx.digester = ctx.planned.digests;
  const { plan, filesHashed, bytesHashed } = ctx.planned;
  const files = plan.layers.reduce((n, l) => n + l.files, 0);
  const bytes = totalBytes(plan.layers);
  const layersUnchanged = plan.layers.filter(isUnchanged).length;
  report({ type: 'plan', layers: plan.layers.length, layersUnchanged, files, ...(bytes === undefined ? {} : { bytes }), filesHashed, bytesHashed, ms: Date.now() - started });
}

async function baseTask(ctx: Ctx, opts: ApplyOptions, report: Reporter): Promise<void> {
  const { plan } = ctx.planned;
  const warn = (message: string) => report({ type: 'warning', message });
  const req = { specFile: plan.specFile, base: plan.base, platforms: plan.platforms, store: ctx.store, warn, ...(opts.insecureRegistries ? { insecure: opts.insecureRegistries } : {}) };
  // Loaded only when there is a base (or a lock) to resolve: it brings the registry client.
  const { resolveBases } = await import('../lock/bases.js');
  ctx.bases = opts.bases ?? (await resolveBases(req, opts.locked ?? false));
  for (const b of ctx.bases) {
    if (!b) continue;
    const [digest, layers] = await Promise.all([b.digest(), b.layers()]);
    report({ type: 'base', ref: describeBase(plan.base), digest, layers: layers.length });
    // A registry base's blobs live in the store: in use while builds use them (`cache prune`).
    await ctx.store.markUsed([digest, await b.configDigest(), ...(await Promise.all(layers.map((l) => l.digest())))]);
  }
  // Resolving checked each base layer and marked it with its links: this reads the marks.
  const [{ checkBaseLayers }, { refuseBelowBaseLinks }, { keptDestinations, baseDirsChanged }] = await Promise.all([import('./base.js'), import('./base-links.js'), import('./base-dirs.js')]);
  const label = describeBase(plan.base);
  const shapes: BaseShape[] = [];
  try {
    for (const b of ctx.bases) {
      if (!b) continue;
      const shape = await checkBaseLayers(b, ctx.store, label);
      refuseBelowBaseLinks(ctx.planned.spec, plan.layers, shape, label);
      shapes.push(shape);
    }
  } catch (e) {
    // The plan recorded its walks before the base was read: a refused layer found unchanged next
    // time would not be looked at again (a record keeps no file paths to check against the base).
    if (e instanceof SpecError) await forgetWalks(opts.cacheDir, ctx.planned.spec);
    throw e;
  }
  ctx.keptDirs = keptDestinations(ctx.planned.spec, plan.layers, shapes.map((s) => s.dirs));
  // Once each, though every platform's base may say it.
  const warned = new Set<string>();
  for (const shape of shapes) {
    for (const message of baseDirsChanged(ctx.planned.spec, plan.layers, shape.dirs, ctx.keptDirs, label)) {
      if (warned.has(message)) continue;
      warned.add(message);
      warn(message);
    }
  }
}

/**
 * Only an optimisation: the image is written, and a stat cache not saved costs the next build a
 * read of every file, which it should hear about, not a failed build. Never rejects.
 */
function saveStatCache(ctx: Ctx, report: Reporter): Promise<void> {
  return ctx.digester.save().catch((e: unknown) => report({ type: 'warning', message: `the stat cache could not be saved (${(e as Error).message}); the next build reads every file again` }));
}

async function imageTask(ctx: Ctx, report: Reporter): Promise<void> {
  const { plan } = ctx.planned;
  ctx.assembled = await assembleTarget(plan, ctx.bases ?? [], ctx.layers, ctx.store);
  plan.platforms.forEach((p, i) => report({ type: 'image', digest: ctx.assembled!.digest, manifest: ctx.assembled!.manifests[i]!, platform: formatPlatform(p) }));
}

function planTitle({ plan, filesHashed }: PlannedSpec<PlannedLayer>): string {
  const hashLater = plan.layers.some((l) => l.cacheKey === undefined);
  const unchanged = plan.layers.filter(isUnchanged).length;
  const layers = unchanged > 0 ? `${plural(plan.layers.length, 'layer')} (${unchanged} unchanged since their last walk)` : plural(plan.layers.length, 'layer');
  return `plan: ${layers}, ${hashLater ? 'files hashed as they are written (first build of this context)' : `${plural(filesHashed, 'file')} read`}`;
}

/** The phases, in order; layers and outputs fan out into parallel subtasks. */
function phases(ctx: Ctx, file: string, opts: ApplyOptions, report: Reporter): ListrTask<Ctx>[] {
  const jobs = Math.max(1, opts.jobs ?? availableParallelism());
  const fanOut = { concurrent: jobs, exitOnError: true };
  return [
    {
      title: `plan ${file}`,
      task: async (_, task) => {
        await planTask(ctx, file, opts, report);
        task.title = planTitle(ctx.planned);
      },
    },
    {
      title: 'base image',
      skip: () => ctx.planned.plan.base.kind === 'scratch' && !opts.locked && 'from scratch',
      task: async (_, task) => {
        await baseTask(ctx, opts, report);
        task.title = `base ${describeBase(ctx.planned.plan.base)}`;
      },
    },
    { title: 'layers', task: (_, task) => task.newListr(layerTasks(ctx, report, ctx.stop.signal), fanOut) },
    {
      title: 'image',
      task: async (_, task) => {
        // Every file has been read: the stat cache is saved while the image and its outputs are written.
        ctx.saving = saveStatCache(ctx, report);
        await imageTask(ctx, report);
        task.title = `image ${ctx.assembled.digest}`;
      },
    },
    { title: 'outputs', task: (_, task) => task.newListr(outputTasks(ctx, opts, report), { ...fanOut, concurrent: true }) },
  ];
}

/** Progress goes to stderr, as the summary does: stdout is for results (`--json`), never for a display. */
const progressLogger = () => new ListrLogger({ useIcons: true, toStderr: [], processOutput: new ProcessOutput(process.stderr, process.stderr) });

export async function apply(file: string, opts: ApplyOptions): Promise<ApplyResult> {
  const started = Date.now();
  const report: Reporter = opts.report ?? (() => undefined);
  const stop = new AbortController();
  // Let go of when this run ends: a watcher passes its one signal to every rebuild.
  const passOn = () => stop.abort(opts.signal!.reason);
  opts.signal?.addEventListener('abort', passOn, { once: true });
  if (opts.signal?.aborted) stop.abort(opts.signal.reason);
  const ctx = { layers: [], outputs: [], running: new Set(), stop } as unknown as Ctx;
  const renderer = (opts.renderer ?? 'silent') as 'default';
  try {
    // No signal handlers of listr2's own: it ends the process with exit code 127 on Ctrl-C, before
    // a watcher's handler can let the build in progress finish; the process's owner decides.
    await new Listr<Ctx>(phases(ctx, file, opts, report), { renderer, fallbackRenderer: 'simple', rendererOptions: { collapseSubtasks: false, logger: progressLogger() }, fallbackRendererOptions: { logger: progressLogger() }, exitOnError: true, registerSignalListeners: false }).run(ctx);
  } catch (e) {
    stop.abort();
    await Promise.allSettled([...ctx.running]);
    // What was hashed stays true of those files whatever else failed: the next build need not read them again.
    await (ctx.saving ?? ctx.digester?.save())?.catch(() => undefined);
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', passOn);
  }
  await (ctx.saving ?? saveStatCache(ctx, report));
  const built = ctx.layers.filter((l) => !l.cached).length;
  const { filesHashed, bytesHashed } = ctx.digester;
  const done: ApplyEvent = { type: 'done', digest: ctx.assembled.digest, size: ctx.assembled.size, layersBuilt: built, layersCached: ctx.layers.length - built, filesHashed, bytesHashed, ms: Date.now() - started };
  report(done);
  return { planned: ctx.planned, digest: ctx.assembled.digest, size: ctx.assembled.size, layers: ctx.layers, outputs: ctx.outputs, bases: ctx.bases ?? [], ms: done.ms };
}
