/**
 * planSpec with the stat cache: files deleted from the context leave the cache with the next
 * plan, while the records of files another spec copies from the same context stay, even where
 * this spec's copy excludes them.
 */
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { planSpec } from '../../src/plan/plan-spec.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imgbuild-planspec-'));
  for (const sub of ['app', 'lib']) {
    mkdirSync(join(dir, sub));
    for (let i = 0; i < 5; i++) writeFileSync(join(dir, sub, `f${i}.txt`), `${sub} ${i}\n`);
  }
  // app.yaml copies the whole context but lib/; lib.yaml copies lib/ alone.
  const spec = (name: string, copy: string) => `apiVersion: imgbuild/v1\nname: t/${name}\ncontext: .\nlayers:\n  - name: ${name}\n    copy:\n      - ${copy}\noutput:\n  - oci: ./out-${name}\n`;
  writeFileSync(join(dir, 'app.yaml'), spec('app', '{ from: ., to: /srv/, exclude: [lib, "*.yaml"] }'));
  writeFileSync(join(dir, 'lib.yaml'), spec('lib', '{ from: lib/, to: /lib/ }'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('planSpec and deleted files', () => {
  it("forgets a deleted file's record, and keeps another spec's records", async () => {
    const cacheDir = join(dir, 'cache');
    // Older than the stat cache's racy margin (50 ms), so their records are trusted.
    await new Promise((r) => setTimeout(r, 150));
    await planSpec(join(dir, 'app.yaml'), { cacheDir });
    await planSpec(join(dir, 'lib.yaml'), { cacheDir });
    unlinkSync(join(dir, 'app', 'f1.txt'));
    writeFileSync(join(dir, 'app', 'f1.txt'), 'app 1\n'); // the same name, a new file: its old record must not vouch for it
    unlinkSync(join(dir, 'app', 'f2.txt'));
    const again = await planSpec(join(dir, 'app.yaml'), { cacheDir });
    expect(again.filesHashed).toBe(1);
    const lib = await planSpec(join(dir, 'lib.yaml'), { cacheDir });
    expect(lib.filesHashed).toBe(0);
    const { StatRecords } = await import('../../src/store/stat-records.js');
    const { readdirSync, readFileSync } = await import('node:fs');
    const file = join(cacheDir, 'stat', readdirSync(join(cacheDir, 'stat'))[0]!);
    const records = StatRecords.decode(readFileSync(file), dir)!;
    const paths = Array.from({ length: records.count }, (_, i) => records.path(i).slice(dir.length + 1)).sort();
    expect(paths).toEqual(['app/f0.txt', 'app/f1.txt', 'app/f3.txt', 'app/f4.txt', ...[0, 1, 2, 3, 4].map((i) => `lib/f${i}.txt`)]);
  });
});
