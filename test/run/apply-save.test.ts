/**
 * What a build hashed is saved for the next one, also when the build fails after its layers were
 * written: the stat cache's save runs beside the image and its outputs (run/apply.ts), and is
 * awaited on the way out of a failure as on success.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apply } from '../../src/run/apply.js';
import type { ApplyEvent } from '../../src/run/events.js';

const dir = mkdtempSync(join(tmpdir(), 'imgbuild-save-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('apply', () => {
  it('saves the stat cache of a build whose output could not be written', async () => {
    mkdirSync(join(dir, 'app'));
    for (let i = 0; i < 20; i++) writeFileSync(join(dir, `app/f${i}.txt`), `file ${i}\n`);
    writeFileSync(join(dir, 'image.yaml'), 'apiVersion: imgbuild/v1\nname: t/save\ncontext: .\nlayers:\n  - name: app\n    copy: [{ from: app/, to: /app/ }]\noutput:\n  - oci: ./out\n');
    // A file where the layout's directory should be: the output fails once the layer is written.
    writeFileSync(join(dir, 'out'), 'not a directory');
    const cacheDir = join(dir, 'cache');
    const failed: ApplyEvent[] = [];
    await expect(apply(join(dir, 'image.yaml'), { cacheDir, env: {}, report: (e) => failed.push(e) })).rejects.toThrow();
    expect(failed.some((e) => e.type === 'layer-done')).toBe(true);

    rmSync(join(dir, 'out'));
    const events: ApplyEvent[] = [];
    await apply(join(dir, 'image.yaml'), { cacheDir, env: {}, report: (e) => events.push(e) });
    // Every file known by its stat: none read again to plan, and the layer found in the cache.
    expect(events.find((e) => e.type === 'plan')).toMatchObject({ files: 20, filesHashed: 0 });
    expect(events.find((e) => e.type === 'done')).toMatchObject({ layersBuilt: 0, layersCached: 1 });
  });
});
