/**
 * Reproducibility as a test: the bundled example, built through the API from a fresh copy with
 * fresh mtimes and an empty cache, has exactly this manifest digest. A change to the tar writer,
 * the compressor, the config or the manifest that moves it is a change every user's digests
 * would see: update the value only on purpose, and say so in the commit.
 */
import { cpSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { apply } from '../../src/run/apply.js';

const EXAMPLE_DIGEST = 'sha256:53f5031cf0cafabe5a0d8cbcee8889a405ab8c982436a0b8cde3c438a01c802e';
const repo = new URL('../..', import.meta.url).pathname;

function freshExample(): string {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-golden-'));
  cpSync(join(repo, 'example'), join(dir, 'example'), { recursive: true });
  utimesSync(join(dir, 'example/src/server.js'), new Date(), new Date(2003, 3, 3));
  const spec = readFileSync(join(repo, 'image.example.yaml'), 'utf8').replace(/output:[\s\S]*$/, 'output:\n  - oci: ./out/hello\n');
  writeFileSync(join(dir, 'image.yaml'), spec);
  return dir;
}

describe('golden digest', () => {
  it('builds the bundled example to the same manifest digest, anywhere, any time', async () => {
    const dir = freshExample();
    const result = await apply(join(dir, 'image.yaml'), { cacheDir: join(dir, 'cache'), env: {} });
    expect(result.digest).toBe(EXAMPLE_DIGEST);
  });
});
