/**
 * Paths that are never inputs, even inside the context: the build's own outputs (an OCI layout
 * directory, a docker archive and its temp files) and the cache directory. Without this, the
 * default `./out/` inside the default context `.` would be copied into the next image, and watch
 * mode would rebuild forever on its own writes.
 */
import { basename, dirname, sep } from 'node:path';
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

export function hostExclusions(outputs: readonly OutputTarget[], alsoDirs: readonly string[] = []): HostFilter {
  const tests: HostFilter[] = alsoDirs.map(under);
  for (const o of outputs) {
    if (o.kind === 'oci') tests.push(under(o.path));
    if (o.kind === 'docker-archive') {
      // The archive, and the temp files it is written through (".<name>.<pid>.<rand>.tmp").
      const dir = dirname(o.path);
      const name = basename(o.path);
      tests.push((abs) => abs === o.path || (dirname(abs) === dir && basename(abs).startsWith(`.${name}.`)));
    }
  }
  const roots = [...alsoDirs, ...outputs.flatMap((o) => (o.kind === 'registry' ? [] : [o.path]))];
  const skip: HostFilter = (abs) => tests.some((t) => t(abs));
  skip.holdsExcluded = (abs) => roots.some((r) => r.startsWith(abs + sep));
  return skip;
}
