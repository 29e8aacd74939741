/**
 * Paths that are never inputs, even inside the context: the build's own outputs (an OCI layout
 * directory, a docker archive and its temp files), the cache directory, and the files the
 * process's output is redirected to. Without this, the default `./out/` inside the default
 * context `.` would be copied into the next image, and watch mode would rebuild forever on its
 * own writes.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';
import { usageError } from '../errors.js';
import type { OutputTarget } from './types.js';

export interface HostFilter {
  (abs: string): boolean;
  /** Is `abs` a directory that holds an excluded path (an `out/` above an OCI layout)? */
  holdsExcluded?: (abs: string) => boolean;
}

const under = (root: string) => {
  const prefix = root + sep;
  return (abs: string) => abs === root || abs.startsWith(prefix);
};

/** `path` with symlinks resolved as far as it exists (the rest of it may not yet). */
function realAsFarAsItExists(path: string): string {
  let tail = '';
  for (let at = path; ; at = dirname(at)) {
    try {
      return join(realpathSync.native(at), tail);
    } catch {
      if (dirname(at) === at) return path;
      tail = join(basename(at), tail);
    }
  }
}

/**
 * The same path as the walk spells it, when it is in the context: the walk joins names to the
 * context as the spec gives it, while a cache or output path may name the same directory
 * through a symlink (`$PWD/.cache` in a shell whose `$PWD` is a symlinked path), and strings are
 * what is compared. Refused when it holds the whole context, which would leave every copied
 * directory empty.
 */
function spellings(path: string, what: string, context: { dir: string; real: string } | undefined): string[] {
  if (!context) return [path];
  const real = realAsFarAsItExists(path);
  if (real === context.real || context.real.startsWith(real + sep)) {
    throw usageError(`${what} ${path} holds the context ${context.dir}: everything in the context would be left out of the image`, 'put it outside the context, or in a folder of its own inside it');
  }
  if (!real.startsWith(context.real + sep)) return [path];
  const inContext = context.dir + real.slice(context.real.length);
  return inContext === path ? [path] : [path, inContext];
}

/**
 * With `context` (the context directory as the spec gives it, and its real path), an excluded
 * path that names a place in it through a symlink is excluded as the walk spells it too.
 */
export function hostExclusions(outputs: readonly OutputTarget[], alsoDirs: readonly string[] = [], context?: { dir: string; real: string }): HostFilter {
  const dirs = alsoDirs.flatMap((d) => spellings(d, 'the cache directory', context));
  const tests: HostFilter[] = dirs.map(under);
  const roots = [...dirs];
  for (const o of outputs) {
    if (o.kind === 'registry') continue;
    const paths = spellings(o.path, 'the output', context);
    roots.push(...paths);
    for (const path of paths) {
      if (o.kind === 'oci') tests.push(under(path));
      else {
        // The archive, and the temp files it is written through (".<name>.<pid>.<rand>.tmp").
        const dir = dirname(path);
        const name = basename(path);
        tests.push((abs) => abs === path || (dirname(abs) === dir && basename(abs).startsWith(`.${name}.`)));
      }
    }
  }
  const skip: HostFilter = (abs) => tests.some((t) => t(abs));
  skip.holdsExcluded = (abs) => roots.some((r) => r.startsWith(abs + sep));
  return skip;
}

/**
 * What a plan leaves out besides the spec's outputs: the cache directory, and those of `logFiles`
 * (the files this process's stdout and stderr are redirected to, `> build.log`) that lie in the
 * context. A log in the context would be read while it is written (a build that copies the
 * context fails with "changed while being read", and a watcher rebuilds on each line it writes
 * itself); one elsewhere is left out of the list, which walk records hold, so that a build
 * logging to /tmp finds the same layers unchanged as one logging to a terminal.
 */
export function neverInputs(cacheDir: string, logFiles: readonly string[], contextReal: string | undefined): string[] {
  const inside = contextReal === undefined ? [] : logFiles.filter((f) => realAsFarAsItExists(f).startsWith(contextReal + sep));
  return [cacheDir, ...inside];
}
