/**
 * The `imgbuild` command line: binds flags to the exported API and nothing more. Every failure
 * funnels through exit-codes.ts, so exit codes and messages are decided in one place.
 */
import { Command, CommanderError } from 'commander';
import { ExitCode, describeError, errorEvent, exitCodeOf, reportedAsJson } from './exit-codes.js';
import { registerApply } from './commands/apply.js';
import { registerCache } from './commands/cache.js';
import { registerInit } from './commands/init.js';
import { registerInspect } from './commands/inspect.js';
import { registerLock } from './commands/lock.js';
import { registerLogin } from './commands/login.js';
import { registerPlan } from './commands/plan.js';
import { registerSchema } from './commands/schema.js';
import { registerValidate } from './commands/validate.js';
import { packageVersion } from '../package-files.js';

function buildProgram(): Command {
  const program = new Command('imgbuild')
    .description('Build reproducible OCI container images from a declarative YAML spec: no daemon, no root, nothing run inside the image.')
    .version(packageVersion())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerValidate(program);
  registerPlan(program);
  registerApply(program);
  registerInit(program);
  registerLock(program);
  registerInspect(program);
  registerCache(program);
  registerLogin(program);
  registerSchema(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return ExitCode.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return ExitCode.ok;
      // Commander said it on stderr; a script reading --json gets its error event too.
      if (argv.includes('--json')) process.stdout.write(`${JSON.stringify({ type: 'error', exitCode: ExitCode.invalid, message: e.message })}\n`);
      return ExitCode.invalid;
    }
    // Refused before a command's action reported it (a bad --var as it is parsed, flags that
    // conflict): a script reading --json would find nothing on stdout.
    if (argv.includes('--json') && !reportedAsJson(e)) process.stdout.write(`${JSON.stringify(errorEvent(e))}\n`);
    process.stderr.write(`${describeError(e)}\n`);
    return exitCodeOf(e);
  }
}

