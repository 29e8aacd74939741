// The package as `npm pack` and `npm publish` make it: what an installed imgbuild has.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertCliBuilt, REPO_ROOT } from '../helpers/imgbuild.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { main: string; types: string; bin: Record<string, string>; scripts: Record<string, string> };
let packed: string[] = [];

describe('the packed package', () => {
  beforeAll(() => {
    assertCliBuilt();
    // --ignore-scripts: the files of the build already made, not another build.
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    packed = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  });

  it('is built as it is packed: dist/ is not in git, so a clean checkout has none to pack', () => {
    expect(readFileSync(join(REPO_ROOT, '.gitignore'), 'utf8').split('\n')).toContain('dist/');
    expect(pkg.scripts.prepack).toBe('npm run build');
  });

  it('holds what an installed imgbuild reads, and no tests or sources', () => {
    const needed = [pkg.main, pkg.types, ...Object.values(pkg.bin), 'dist/bin/schema-validator.cjs', 'dist/spec/schema-validator.cjs', 'schemas/image.schema.json', 'templates/node.yaml', 'templates/static.yaml', 'templates/binary.yaml', 'package.json'];
    expect(packed).toEqual(expect.arrayContaining(needed.map((p) => normalize(p))));
    expect(packed.filter((p) => /^(test|bench|src|scripts)\//.test(p))).toEqual([]);
  });

  it('has source maps that name only files it holds, or hold the sources themselves', () => {
    const maps = packed.filter((p) => p.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(0);
    const missing = maps.flatMap((map) => {
      const { sources, sourcesContent } = JSON.parse(readFileSync(join(REPO_ROOT, map), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      return sources.filter((s, i) => typeof sourcesContent?.[i] !== 'string' && !packed.includes(join(dirname(map), s))).map((s) => `${map}: ${s}`);
    });
    expect(missing).toEqual([]);
  });
});
