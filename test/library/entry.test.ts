// The package's main entry (package.json "main" and "types"), as a script that imports imgbuild gets it.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TempDirs } from '../helpers/imgbuild.js';

const repo = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { main: string; types: string };
const temp = new TempDirs();
afterAll(() => temp.cleanup());

describe('the library entry', () => {
  it('exists where package.json says, with its type declarations', () => {
    expect(existsSync(join(repo, pkg.main))).toBe(true);
    expect(existsSync(join(repo, pkg.types))).toBe(true);
  });

  it('can be required from CommonJS (Node 20.19 requires an ES module that has no top-level await)', () => {
    const script = `const lib = require(${JSON.stringify(join(repo, pkg.main))}); process.stdout.write(typeof lib.apply + ' ' + typeof lib.planSpec);`;
    expect(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).toBe('function function');
  });

  it('plans and builds a spec, reporting its events', async () => {
    const lib = (await import(join(repo, pkg.main))) as typeof import('../../src/index.js');
    const dir = await temp.make();
    await mkdir(join(dir, 'app'));
    await writeFile(join(dir, 'app', 'hello.txt'), 'hello\n');
    const spec = join(dir, 'image.yaml');
    await writeFile(spec, 'apiVersion: imgbuild/v1\nname: lib/test\nlayers:\n  - name: app\n    copy: [{ from: app/, to: /app/ }]\noutput:\n  - oci: ./out\n');
    const cacheDir = join(dir, 'cache');

    const planned = await lib.planSpec(spec, { cacheDir });
    expect(planned.plan.layers.map((l) => [l.name, l.files, l.bytes])).toEqual([['app', 1, 6]]);
    expect(lib.renderPlanText(planned.plan)).toContain('/app/hello.txt');

    const events: string[] = [];
    const result = await lib.apply(spec, { cacheDir, report: (e) => events.push(e.type) });
    expect(result.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(events).toEqual(expect.arrayContaining(['plan', 'layer-done', 'image', 'output-done', 'done']));
    expect(existsSync(join(dir, 'out', 'index.json'))).toBe(true);

    await writeFile(spec, 'apiVersion: imgbuild/v1\nname: lib/test\nlayers: 3\n');
    await expect(lib.apply(spec, { cacheDir })).rejects.toBeInstanceOf(lib.SpecError);
  });
});

describe('loadSpec', () => {
  it('reads ${...} from the environment by default, as apply and planSpec do', async () => {
    const lib = (await import(join(repo, pkg.main))) as typeof import('../../src/index.js');
    const dir = await temp.make();
    const spec = join(dir, 'image.yaml');
    await writeFile(spec, 'apiVersion: imgbuild/v1\nname: lib/test\ntags: ["${IMGBUILD_TEST_TAG}"]\nfrom: alpine:3\nlayers: []\n');
    process.env.IMGBUILD_TEST_TAG = 'from-env';
    try {
      expect((await lib.loadSpec(spec)).tags).toEqual(['from-env']);
      expect((await lib.loadSpec(spec, { env: { IMGBUILD_TEST_TAG: 'given' } })).tags).toEqual(['given']);
    } finally {
      delete process.env.IMGBUILD_TEST_TAG;
    }
  });
});
