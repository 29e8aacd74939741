import { closeSync, mkdtempSync, openSync, realpathSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { logFiles } from '../../src/cli/log-files.js';

let dir: string;
beforeEach(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'imgbuild-logs-')));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe.runIf(process.platform === 'linux')('the files our output goes to', () => {
  it('are named by their paths, once when stdout and stderr share one', () => {
    const fd = openSync(join(dir, 'build.log'), 'w');
    try {
      expect(logFiles([fd, fd])).toEqual([join(dir, 'build.log')]);
    } finally {
      closeSync(fd);
    }
  });

  it('leave out one deleted while open: nothing at its path is being written (/proc names it "build.log (deleted)")', () => {
    const fd = openSync(join(dir, 'build.log'), 'w');
    try {
      unlinkSync(join(dir, 'build.log'));
      expect(logFiles([fd])).toEqual([]);
    } finally {
      closeSync(fd);
    }
  });
});
