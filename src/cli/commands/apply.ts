/** `imgbuild apply <spec>`: build the image and write it to every output. */
import type { Command } from 'commander';
import { usageError } from '../../errors.js';
import type { BuiltImage, RendererKind } from '../../run/apply.js';
import type { Reporter } from '../../run/events.js';
import { describeError, errorEvent, reportingJson } from '../exit-codes.js';
import type { WatchLine } from '../../watch/report.js';
import { exitOnInterrupt, interruptible } from '../interrupt.js';
import { logFiles } from '../log-files.js';
import { cacheDirOf, withRegistryOptions, withSpecOptions, type SpecFlags } from '../options.js';
import { ArrayBufferGuard, collectGarbage } from '../collect-garbage.js';
import { letYoungGenerationGrow } from '../young-generation.js';

export interface ApplyFlags extends SpecFlags {
  jobs?: string;
  json?: boolean;
  push?: boolean;
  locked?: boolean;
  watch?: boolean;
  insecureRegistry?: string[];
}

function parseJobs(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(s)) throw usageError(`--jobs ${s} is not a positive whole number`);
  return Number(s);
}

export function rendererFor(flags: { json?: boolean }): RendererKind {
  if (flags.json) return 'silent';
  return process.stderr.isTTY && !process.env.CI ? 'default' : 'simple';
}

export function summary(r: BuiltImage, formatBytes: (n: number) => string): string {
  const built = r.layers.filter((l) => !l.cached).length;
  return [
    `built ${r.name}${r.tags.length ? `:${r.tags.join(',')}` : ' (no tags: by digest only)'} in ${(r.ms / 1000).toFixed(2)}s`,
    `  digest  ${r.digest}`,
    `  size    ${formatBytes(r.size)}`,
    `  layers  ${built} built, ${r.layers.length - built} cached`,
    ...r.outputs.map((o) => `  wrote   ${o}`),
  ].join('\n');
}

/**
 * The build's options; `observe` sees every event of every build (a watcher's, below).
 */
function applyOptions(flags: ApplyFlags, ndjson: () => Reporter, observe?: Reporter) {
  const json = flags.json ? ndjson() : undefined;
  const report: Reporter = (event) => {
    observe?.(event);
    json?.(event);
    if (!json && event.type === 'warning') process.stderr.write(`warning: ${event.message}\n`);
  };
  return {
    vars: flags.var,
    env: process.env,
    cacheDir: cacheDirOf(flags),
    logFiles: logFiles(),
    ...(parseJobs(flags.jobs) ? { jobs: parseJobs(flags.jobs)! } : {}),
    renderer: rendererFor(flags),
    report,
    push: flags.push ?? false,
    insecureRegistries: flags.insecureRegistry,
    locked: flags.locked ?? false,
  };
}

/**
 * A rebuild as a --json line; a failed one also carries what the error event of a one-shot build
 * carries (`exitCode`, and `diagnostics` for a spec error), its `error` the same text as `message`.
 */
function rebuildEvent(line: WatchLine): Record<string, unknown> {
  if (line.kind !== 'error') return { type: 'rebuild', ...line };
  const { message, ...rest } = errorEvent(line.error);
  return { ...rest, type: 'rebuild', kind: 'error', text: line.text, files: line.files, error: message };
}

// The engine is loaded only when a build runs, so `--help` and `validate` start quickly (and the
// watcher only for --watch).
const engine = async () => {
  const [run, events, render] = await Promise.all([import('../../run/apply.js'), import('../../run/events.js'), import('../../plan/render.js')]);
  return { apply: run.apply, builtImage: run.builtImage, ndjson: () => events.ndjsonReporter(), formatBytes: render.formatBytes };
};

/**
 * A replaced plan this large is collected before the rebuild builds (collect-garbage.ts); a
 * smaller one is not worth the pause (a plan of a few hundred files costs well under a megabyte).
 */
const LARGE_PLAN_ENTRIES = 5000;

async function watchCommand(file: string, flags: ApplyFlags): Promise<void> {
  const [{ ndjson, formatBytes }, { watchApply }] = await Promise.all([engine(), import('../../watch/watch.js')]);
  // Once its first plan is made, a watcher lets the young generation held since start-up grow
  // (young-generation.ts; a one-shot build keeps it held), and while each build runs it watches
  // the array buffers the build leaves behind (collect-garbage.ts).
  const guard = new ArrayBufferGuard();
  const observe: Reporter = (event) => {
    if (event.type === 'plan') {
      letYoungGenerationGrow();
      guard.start();
    } else if (event.type === 'done') guard.stop();
  };
  // Until it watches, Ctrl-C ends it as it ends a one-shot build; from then on it lets a build finish.
  const duringFirstBuild = exitOnInterrupt(flags.json);
  let lastError: string | undefined;
  const handle = await watchApply(file, {
    ...applyOptions(flags, ndjson, observe),
    onPlanReplaced: (entries) => {
      if (entries >= LARGE_PLAN_ENTRIES) collectGarbage();
    },
    onRebuild: (line) => {
      guard.stop(); // a failed build ends without 'done'
      if (flags.json) return void process.stdout.write(`${JSON.stringify(rebuildEvent(line))}\n`);
      if (line.kind !== 'error') {
        lastError = undefined;
        return void process.stderr.write(`${line.text}\n`);
      }
      // An editor that saves by writing a copy and renaming it raises two batches of events: the
      // same error twice in a row is said once.
      const said = describeError(line.error);
      if (said !== lastError) process.stderr.write(`${said}\n(keeping the last good image; watching)\n`);
      lastError = said;
    },
  }).finally(duringFirstBuild);
  // Only now is every input watched: a tool driving --json waits for this event before editing.
  if (flags.json) process.stdout.write(`${JSON.stringify({ type: 'watching', digest: handle.first.digest })}\n`);
  else process.stderr.write(`${summary(handle.first, formatBytes)}\nwatching for changes (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, stop);
      // A second signal ends it at once, as a one-shot build's first does.
      exitOnInterrupt(flags.json);
      if (!flags.json) process.stderr.write(handle.building() ? 'stopping: the build in progress finishes first (Ctrl-C again to stop at once)\n' : 'stopping\n');
      void handle.stop().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export function registerApply(program: Command): void {
  withRegistryOptions(withSpecOptions(program.command('apply').argument('<spec>', 'the image spec (image.yaml)')))
    .description('build the image: layers in parallel, cached by content, written to every output')
    .option('-j, --jobs <n>', 'layers built at once (default: number of cores)')
    .option('--json', 'print progress and the result as JSON events, one per line')
    .option('--locked', 'fail unless the lock file exists and pins the base (for CI)')
    .option('--push', 'also push the image to its name (a registry repository) with every tag')
    .option('-w, --watch', 'keep watching the inputs and rebuild the layers whose files change')
    .action(async (file: string, flags: ApplyFlags) => {
      // Machines reading --json get a failure as an event too; people still get stderr.
      await reportingJson(flags.json, async () => {
        // A watch whose first build fails ends as a one-shot build does, with the same event.
        if (flags.watch) return await watchCommand(file, flags);
        await interruptible(flags.json, async () => {
          const { apply, builtImage, ndjson, formatBytes } = await engine();
          // Once a layer is being written, its gzip blocks' output is collected as it piles up (collect-garbage.ts).
          const guard = new ArrayBufferGuard(ArrayBufferGuard.ONE_SHOT_PILE_UP);
          const observe: Reporter = (event) => {
            if (event.type === 'layer-start') guard.start();
          };
          try {
            const result = await apply(file, applyOptions(flags, ndjson, observe));
            if (!flags.json) process.stderr.write(`${summary(builtImage(result), formatBytes)}\n`);
          } finally {
            guard.stop();
          }
        });
      });
    });
}
