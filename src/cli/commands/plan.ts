/** `imgbuild plan <spec>`: what a build would do, as text, Markdown for a PR, or JSON. */
import { Option, type Command } from 'commander';
import { usageError } from '../../errors.js';
import { reportingJson } from '../exit-codes.js';
import { logFiles } from '../log-files.js';
import { cacheDirOf, withSpecOptions, type SpecFlags } from '../options.js';

interface PlanFlags extends SpecFlags {
  json?: boolean;
  format: 'text' | 'markdown' | 'json';
}

export function registerPlan(program: Command): void {
  withSpecOptions(program.command('plan').argument('<spec>', 'the image spec (image.yaml)'))
    .description('show the build plan: layers, their files, sizes and cache keys, without building')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'markdown', 'json']).default('text'))
    .option('--json', 'same as --format json')
    .action(async (file: string, flags: PlanFlags) => {
      if (flags.json && flags.format !== 'text' && flags.format !== 'json') throw usageError(`--json and --format ${flags.format} ask for two formats`, 'give one of them');
      const format = flags.json ? 'json' : flags.format;
      await reportingJson(format === 'json', async () => {
        const [{ planSpec }, { renderPlanJson, renderPlanMarkdown, renderPlanText }, { lockPathFor, readLock, staleness }] = await Promise.all([
          import('../../plan/plan-spec.js'),
          import('../../plan/render.js'),
          import('../../lock/lockfile.js'),
        ]);
        const { plan } = await planSpec(file, { vars: flags.var, env: process.env, cacheDir: cacheDirOf(flags), logFiles: logFiles() });
        // What a reviewer must see of the lock: what it pins, or that it no longer fits the spec.
        const lockFile = lockPathFor(plan.specFile);
        const lock = await readLock(lockFile);
        const stale = lock && staleness(lock, plan.base, plan.platforms);
        const shown = lock && { file: lockFile, digests: lock.base.digests, ...(stale ? { stale } : {}) };
        const render = format === 'json' ? renderPlanJson : format === 'markdown' ? renderPlanMarkdown : renderPlanText;
        process.stdout.write(`${render(plan, shown)}\n`);
      });
    });
}
