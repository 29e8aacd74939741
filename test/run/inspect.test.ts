/**
 * `inspect` shows a single-platform image whatever it is for, and chooses from a multi-platform
 * one: the platform asked for, or linux/amd64.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assembleIndex } from '../../src/image/assemble.js';
import { writeDockerArchive } from '../../src/output/docker-archive.js';
import { writeOciLayout } from '../../src/output/oci-layout.js';
import { describeImage } from '../../src/run/inspect.js';
import { randomImage } from '../helpers/random-image.js';

const work = mkdtempSync(join(tmpdir(), 'imgbuild-inspect-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' };
const amd64 = { os: 'linux', architecture: 'amd64' };

describe('inspect', () => {
  it('shows a single-platform image whatever it is for, unless another platform is asked for', async () => {
    const arm = await randomImage({ seed: 'arm', layers: 1, platform: arm64 });
    await writeOciLayout(join(work, 'arm'), { image: arm }, ['1']);
    const d = await describeImage(`oci:${join(work, 'arm')}:1`, undefined, [], join(work, 'cache'));
    expect({ digest: d.digest, platform: d.platform }).toEqual({ digest: await arm.digest(), platform: 'linux/arm64/v8' });
    await expect(describeImage(`oci:${join(work, 'arm')}:1`, amd64, [], join(work, 'cache'))).rejects.toMatchObject({ kind: 'usage' });
  });

  it('refuses what is no image reference without calling it a base or offering "scratch", which it cannot show', async () => {
    for (const source of ['UPPER/case', 'oci:']) {
      const e = await describeImage(source, undefined, [], join(work, 'cache')).then(() => undefined, (err: unknown) => err as { kind: string; message: string; hint: string });
      expect(e).toMatchObject({ kind: 'usage', message: `cannot inspect ${JSON.stringify(source)}: it is not an image reference imgbuild understands` });
      expect(e!.hint).toContain('oci:./dir[:tag]');
      expect(e!.hint).not.toContain('scratch');
    }
  });

  it('opens the image of a docker archive named by its tag after the file', async () => {
    const image = await randomImage({ seed: 'tagged', layers: 1 });
    const file = join(work, 'tagged.tar');
    await writeDockerArchive(file, image, ['app:1']);
    expect((await describeImage(`docker-archive:${file}:app:1`, undefined, [], join(work, 'cache'))).digest).toBe(await image.digest());
    await expect(describeImage(`docker-archive:${file}:other:1`, undefined, [], join(work, 'cache'))).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('app:1') });
  });

  it('reads a docker archive whose file name holds a ":" (the part after it reads as an image name)', async () => {
    const image = await randomImage({ seed: 'colon', layers: 1 });
    const file = join(work, 'snap-10:30.tar');
    await writeDockerArchive(file, image, ['app:1']);
    expect((await describeImage(`docker-archive:${file}`, undefined, [], join(work, 'cache'))).digest).toBe(await image.digest());
    await writeDockerArchive(join(work, 'snap-10'), image, ['app:1']);
    // A file before the ":" exists: the rest is the reference, as skopeo reads it.
    await expect(describeImage(`docker-archive:${join(work, 'snap-10')}:30.tar`, undefined, [], join(work, 'cache'))).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('app:1') });
  });

  it('chooses linux/amd64 from a multi-platform image, or the platform asked for', async () => {
    const amd = await randomImage({ seed: 'amd', layers: 1, platform: amd64 });
    const arm = await randomImage({ seed: 'arm2', layers: 1, platform: arm64 });
    const index = assembleIndex([{ image: amd, platform: amd64 }, { image: arm, platform: arm64 }], {});
    await writeOciLayout(join(work, 'multi'), { index }, ['m']);
    const ref = `oci:${join(work, 'multi')}:m`;
    expect((await describeImage(ref, undefined, [], join(work, 'cache'))).platform).toBe('linux/amd64');
    expect((await describeImage(ref, arm64, [], join(work, 'cache'))).platform).toBe('linux/arm64/v8');
  });
});
