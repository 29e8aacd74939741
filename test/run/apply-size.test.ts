/** The size a build reports is that of the blobs its image references, each once. */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apply } from '../../src/run/apply.js';

const dir = mkdtempSync(join(tmpdir(), 'imgbuild-size-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('apply', () => {
  it('counts a layer the platforms share once in the size it reports: the bytes of the layout it writes', async () => {
    mkdirSync(join(dir, 'app'));
    writeFileSync(join(dir, 'app/a.txt'), 'a'.repeat(10_000));
    writeFileSync(join(dir, 'image.yaml'), 'apiVersion: imgbuild/v1\nname: t/size\ncontext: .\nplatforms: [linux/amd64, linux/arm64, linux/arm/v7]\nlayers:\n  - name: app\n    copy: [{ from: app/, to: /app/ }]\noutput:\n  - oci: ./out\n');
    const result = await apply(join(dir, 'image.yaml'), { cacheDir: join(dir, 'cache'), env: {} });
    const blobs = join(dir, 'out/blobs/sha256');
    const written = readdirSync(blobs).reduce((n, f) => n + statSync(join(blobs, f)).size, 0);
    expect(result.size).toBe(written);
  });
});
