/**
 * Every temporary file of a test run under one directory, removed when the run ends: many tests
 * make a temp folder per case and leave it (a run left hundreds in /tmp). The test processes are
 * forked after this sets TMPDIR, so `os.tmpdir()` in them, and in every process they spawn (the
 * CLI, registries, containerd), names it. Kept short: containerd's socket paths are capped.
 * IMGBUILD_KEEP_TEST_TMP=1 keeps it, for the logs of a failed run (a registry's, containerd's).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'imgbuild-run-'));
  // Open to all, as /tmp is: a test runs the CLI as nobody, in a folder it opens to nobody.
  chmodSync(root, 0o755);
  const before = process.env.TMPDIR;
  process.env.TMPDIR = root;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    if (process.env.IMGBUILD_KEEP_TEST_TMP) process.stderr.write(`test temp files kept in ${root}\n`);
    else rmSync(root, { recursive: true, force: true });
  };
}
