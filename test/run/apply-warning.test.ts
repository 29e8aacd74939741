/**
 * A build whose image is written does not fail because a cache record could not be saved: the
 * stat cache is an optimisation, and its loss is reported as a warning.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apply } from '../../src/run/apply.js';
import type { ApplyEvent } from '../../src/run/events.js';

const dir = mkdtempSync(join(tmpdir(), 'imgbuild-warning-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('apply', () => {
  it('writes its image and warns when the stat cache cannot be saved', async () => {
    mkdirSync(join(dir, 'app'));
    writeFileSync(join(dir, 'app/a.txt'), 'a');
    writeFileSync(join(dir, 'image.yaml'), 'apiVersion: imgbuild/v1\nname: t/warn\ncontext: .\nlayers:\n  - name: app\n    copy: [{ from: app/, to: /app/ }]\noutput:\n  - oci: ./out\n');
    const cacheDir = join(dir, 'cache');
    await apply(join(dir, 'image.yaml'), { cacheDir, env: {} });
    // The stat file's place taken by a directory: saving it over fails, as a read-only cache would.
    const statDir = join(cacheDir, 'stat');
    for (const f of readdirSync(statDir)) {
      rmSync(join(statDir, f));
      mkdirSync(join(statDir, f));
      writeFileSync(join(statDir, f, 'x'), '');
    }
    writeFileSync(join(dir, 'app/b.txt'), 'b');
    const events: ApplyEvent[] = [];
    const result = await apply(join(dir, 'image.yaml'), { cacheDir, env: {}, report: (e) => events.push(e) });
    expect(result.outputs).toHaveLength(1);
    expect(events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message)).toEqual([expect.stringMatching(/^the stat cache could not be saved/)]);
    expect(events.at(-1)?.type).toBe('done');
  });
});
