/** Flags several commands share, parsed once: `--var K=V`, `--cache-dir`, `--insecure-registry`. */
import { Option, type Command } from 'commander';
import { usageError } from '../errors.js';
import { resolveCacheDir } from '../store/cache-dir.js';
import { VARIABLE_NAME } from '../spec/variable-name.js';

export function collectVar(kv: string, acc: Record<string, string> = {}): Record<string, string> {
  const eq = kv.indexOf('=');
  if (eq <= 0) throw usageError(`--var ${kv} is not KEY=VALUE`, 'e.g. --var GIT_SHA=$(git rev-parse --short HEAD)');
  const key = kv.slice(0, eq);
  // A key no `${...}` can name would be set for nothing, silently.
  if (!VARIABLE_NAME.test(key)) throw usageError(`--var ${kv}: ${JSON.stringify(key)} is not a variable name`, 'names are letters, digits and "_", not starting with a digit, as ${NAME} in the spec');
  return { ...acc, [key]: kv.slice(eq + 1) };
}

/** `--var`, for every command that reads a spec. */
export function withVarOption(cmd: Command): Command {
  return cmd.addOption(new Option('--var <KEY=VALUE>', 'set a ${KEY} used in the spec (repeatable; wins over the environment)').argParser(collectVar));
}

/** `--var` and `--cache-dir`, for the commands that read a spec and use the cache. */
export function withSpecOptions(cmd: Command): Command {
  return withVarOption(cmd).option('--cache-dir <dir>', 'cache directory (default: $IMGBUILD_CACHE_DIR, else $XDG_CACHE_HOME/imgbuild, else ~/.cache/imgbuild)');
}

/** Options without a default value, so that `--help` shows none: a flag not given is undefined. */
export interface SpecFlags {
  var?: Record<string, string>;
  cacheDir?: string;
}

export const cacheDirOf = (flags: SpecFlags) => resolveCacheDir(flags.cacheDir);

/** `--insecure-registry HOST`, repeatable: plain HTTP to that registry (loopback hosts always may). */
export function withRegistryOptions(cmd: Command): Command {
  return cmd.option('--insecure-registry <host>', 'allow plain HTTP to this registry (repeatable; localhost, 127.0.0.1 and [::1] always are)', (v: string, acc: string[] = []) => [...acc, v]);
}
