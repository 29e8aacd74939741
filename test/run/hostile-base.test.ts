/**
 * A base image whose layer would write outside the image root is refused by `apply`, naming the
 * layer and the entry; the same base made clean builds.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { assembleImage } from '../../src/image/assemble.js';
import { buildConfigFile } from '../../src/image/config.js';
import { writeOciLayout } from '../../src/output/oci-layout.js';
import { apply } from '../../src/run/apply.js';
import { memoryLayer } from '../helpers/random-image.js';
import { packTar } from '../helpers/tar.js';

async function baseLayout(dir: string, names: string[]): Promise<void> {
  const raw = await packTar(names.map((name) => ({ name, body: 'x' })));
  const layer = memoryLayer(raw, gzipSync(raw));
  const config = buildConfigFile({ platform: { os: 'linux', architecture: 'amd64' }, runtime: {}, diffIds: [await layer.diffId()], history: ['base'], created: '1970-01-01T00:00:00Z' });
  await writeOciLayout(join(dir, 'base'), { image: assembleImage({ layers: [layer], config, annotations: {} }) }, ['1']);
  writeFileSync(join(dir, 'image.yaml'), 'apiVersion: imgbuild/v1\nname: t/app\nfrom: oci:./base:1\nlayers:\n  - name: app\n    files: [{ path: /app/a, content: a }]\noutput:\n  - oci: ./out\n');
}

describe('hostile base images', () => {
  it('refuses a base layer with an entry that climbs out of the root', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgbuild-hostile-'));
    await baseLayout(dir, ['etc/ok', '../../etc/evil']);
    await expect(apply(join(dir, 'image.yaml'), { cacheDir: join(dir, 'cache'), env: {} })).rejects.toMatchObject({
      kind: 'build',
      message: expect.stringMatching(/^base layer sha256:[0-9a-f]{64} of oci:\.\/base:1 holds a hostile entry "\.\.\/\.\.\/etc\/evil"/),
    });
  });

  it('builds on the same base when it is clean', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgbuild-hostile-'));
    await baseLayout(dir, ['etc/ok']);
    const r = await apply(join(dir, 'image.yaml'), { cacheDir: join(dir, 'cache'), env: {} });
    expect(r.digest).toMatch(/^sha256:/);
  });
});
