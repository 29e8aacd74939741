/**
 * Whether a file's change time says it may have changed since a moment we saw it. Every change
 * to a file (its bytes, its mode, a link to it) sets ctime from the kernel's clock, and no
 * system call can set it back, unlike mtime: a ctime from before `seenAtMs` (less a timestamp
 * tick) proves nothing touched the file since then.
 */

// Linux stamps files from a coarse clock (a few ms); file systems with whole-second stamps
// (recognisable by zero nanoseconds) need a wider margin.
const FINE_SLACK_MS = 50;
const COARSE_SLACK_MS = 2000;

/**
 * Whether a state seen at `seenAtMs` (a file hashed or read, a directory about to be listed) may
 * have changed again since, within the same timestamp tick.
 */
export function changedTooRecently(ctimeMs: number, seenAtMs: number): boolean {
  const slack = ctimeMs % 1000 === 0 ? COARSE_SLACK_MS : FINE_SLACK_MS;
  return ctimeMs >= seenAtMs - slack;
}
