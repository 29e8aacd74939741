/**
 * imgbuild as a library (`package.json`'s main): what the commands do, callable from a script.
 * The CLI (src/cli/) is a thin layer over the same functions. Settings of the whole process (the
 * young generation held, collections forced in a watcher) are the CLI's, and none of these makes
 * them.
 */
export { apply, builtImage, type ApplyOptions, type ApplyResult, type BuiltImage, type RendererKind } from './run/apply.js';
export { ndjsonReporter, type ApplyEvent, type Reporter } from './run/events.js';
export { planSpec, type PlanOptions, type PlannedSpec } from './plan/plan-spec.js';
export { renderPlanJson, renderPlanMarkdown, renderPlanText } from './plan/render.js';
export type { BuildPlan, FileEntry, FileRun, LayerPlan, LayerSummary, PackedLayer, PlanEntry, PlannedLayer, UnchangedLayer } from './plan/types.js';
export { entriesOf } from './plan/packed-layer.js';
export { loadSpec } from './spec/load.js';
export type { NormalizedSpec } from './spec/normalized.js';
export { resolveCacheDir } from './store/cache-dir.js';
export { watchApply, type WatchHandle, type WatchOptions } from './watch/watch.js';
export { ImgbuildError, SpecError, isImgbuildError, type Diagnostic, type ErrorKind, type SourcePosition } from './errors.js';
