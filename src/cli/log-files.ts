/**
 * The regular files this process's stdout and stderr are redirected to (`apply > build.log`,
 * `plan --format markdown > plan.md`, `apply --watch 2> watch.log`), by their real paths: a
 * build leaves them out of its inputs (plan/host-exclusions.ts, `neverInputs`). A log in a copied
 * context was read while it was written: a build failed with "changed while being read", and a
 * watcher rebuilt on every line it wrote itself. Linux names an open file in /proc; elsewhere, or
 * for a terminal or a pipe, there are none.
 */
import { fstatSync, readlinkSync } from 'node:fs';

/** `fds`: stdout and stderr, unless a test names others. */
export function logFiles(fds: readonly number[] = [1, 2]): string[] {
  const found = new Set<string>();
  for (const fd of fds) {
    try {
      const st = fstatSync(fd);
      // One deleted while open is at no path (/proc names it "build.log (deleted)"): a file there now is another.
      if (!st.isFile() || st.nlink === 0) continue;
      const path = readlinkSync(`/proc/self/fd/${fd}`);
      if (path.startsWith('/')) found.add(path);
    } catch {
      // No such descriptor, or no /proc: nothing to leave out.
    }
  }
  return [...found];
}
