/** The size a build reports is that of the blobs its image references, each once. */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apply } from '../../src/run/apply.js';
import type { ApplyEvent } from '../../src/run/events.js';
import { describeImage } from '../../src/run/inspect.js';

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

  it('reports a single-platform image\'s size as inspect does', async () => {
    writeFileSync(join(dir, 'one.yaml'), 'apiVersion: imgbuild/v1\nname: t/one\ncontext: .\nlayers:\n  - name: app\n    copy: [{ from: app/, to: /app/ }]\noutput:\n  - oci: ./one\n');
    const result = await apply(join(dir, 'one.yaml'), { cacheDir: join(dir, 'cache'), env: {} });
    expect((await describeImage(`oci:${join(dir, 'one')}`, undefined, [], join(dir, 'cache'))).size).toBe(result.size);
  });

  it('tells each platform\'s own manifest in its image event, beside the index the outputs get', async () => {
    const events: ApplyEvent[] = [];
    const result = await apply(join(dir, 'image.yaml'), { cacheDir: join(dir, 'cache'), env: {}, report: (e) => events.push(e) });
    const images = events.filter((e): e is Extract<ApplyEvent, { type: 'image' }> => e.type === 'image');
    expect(images.map((e) => e.platform)).toEqual(['linux/amd64', 'linux/arm64', 'linux/arm/v7']);
    for (const e of images) {
      expect(e.digest).toBe(result.digest);
      const [os, architecture, variant] = e.platform.split('/');
      const shown = await describeImage(`oci:${join(dir, 'out')}`, { os: os!, architecture: architecture!, ...(variant ? { variant } : {}) }, [], join(dir, 'cache'));
      expect(e.manifest).toBe(shown.digest);
    }
    expect(new Set(images.map((e) => e.manifest)).size).toBe(3);
  });
});
