/**
 * A layer that writes below a symlink of its base image (`/bin -> usr/bin`, as on every
 * merged-/usr distribution) is refused with the path to write instead: containerd's overlayfs
 * snapshotter would replace the link with a directory holding only the new file.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SpecError } from '../../src/errors.js';
import { apply } from '../../src/run/apply.js';
import { onBase } from '../helpers/base-image.js';
import type { ApplyEvent } from '../../src/run/events.js';

const BASE_LAYERS = `  - name: usr
    dirs: [{ path: /usr/bin }, { path: /usr/lib }]
    files: [{ path: /usr/bin/sh, content: sh, mode: "0755" }]
    symlinks: [{ path: /bin, target: usr/bin }, { path: /lib, target: /usr/lib }]
`;

/** A merged-/usr base in ./base:1 (plus `more` layers), and a spec on it with `layers`. */
const onLinkedBase = (layers: string, more = '') => onBase(`${BASE_LAYERS}${more}`, layers);

const problems = (e: unknown) => (e as SpecError).diagnostics.map((d) => `${d.position.line} ${d.message} | ${d.hint}`);

describe('a layer on a base with symlinked directories', () => {
  it('is refused where it writes below one, with the path to write instead', async () => {
    const { build } = await onLinkedBase(`  - name: tools\n    files: [{ path: /bin/tool, content: t }]\n  - name: libs\n    files: [{ path: /lib/x/libx.so, content: l }]\n`);
    const err = await build().catch((e) => e);
    expect(err).toMatchObject({ kind: 'spec' });
    expect(problems(err)).toEqual([
      expect.stringMatching(/^5 layer "tools" writes below \/bin, which is a symlink to usr\/bin in the base image oci:\.\/base:1 \| write to \/usr\/bin\/tool instead/),
      expect.stringMatching(/^7 layer "libs" writes below \/lib, which is a symlink to \/usr\/lib in the base image oci:\.\/base:1 \| write to \/usr\/lib\/x\/libx\.so instead/),
    ]);
  });

  it('is refused where it copies a directory onto one, which every runtime would replace', async () => {
    const { dir, build } = await onLinkedBase(`  - name: tools\n    copy: [{ from: tools/, to: /bin/ }]\n`);
    mkdirSync(join(dir, 'tools'));
    writeFileSync(join(dir, 'tools', 'tool'), 't');
    expect(problems(await build().catch((e) => e))).toEqual([expect.stringMatching(/^5 layer "tools" copies a directory onto \/bin, which is a symlink to usr\/bin in the base image oci:\.\/base:1 \| write to \/usr\/bin instead/)]);
  });

  it('names the path through a chain of links, and not through a link a layer of its own replaced', async () => {
    const sbin = `  - name: sbin\n    symlinks: [{ path: /sbin, target: bin }]\n`;
    const chain = await onLinkedBase(`  - name: tools\n    files: [{ path: /sbin/tool, content: t }]\n`, sbin);
    expect(problems(await chain.build().catch((e) => e))).toEqual([expect.stringMatching(/writes below \/sbin, which is a symlink to bin .* \| write to \/usr\/bin\/tool instead/)]);
    const own = await onLinkedBase(`  - name: own\n    dirs: [{ path: /bin }]\n  - name: tools\n    files: [{ path: /sbin/tool, content: t }]\n`, sbin);
    expect(problems(await own.build().catch((e) => e))).toEqual([expect.stringMatching(/writes below \/sbin, .* \| write to \/bin\/tool instead/)]);
  });

  it('names the link itself, not what it points to, where the entry replaces a link below the base\'s symlinked directory', async () => {
    // /usr/bin/cat -> sh: writing /usr/bin/sh, what cat points to, would overwrite the shell.
    const { build } = await onLinkedBase(`  - name: tools\n    files: [{ path: /bin/cat, content: c }]\n  - name: gone\n    remove: [/bin/cat]\n`, `  - name: cat\n    symlinks: [{ path: /usr/bin/cat, target: sh }]\n`);
    expect(problems(await build().catch((e) => e))).toEqual([
      expect.stringMatching(/^5 layer "tools" writes below \/bin, .* \| write to \/usr\/bin\/cat instead/),
      expect.stringMatching(/^7 layer "gone" writes below \/bin, .* \| write to \/usr\/bin\/cat instead/),
    ]);
  });

  it('builds where it writes to the link\'s target, or where a layer of its own replaced or removed the link', async () => {
    for (const layers of [
      `  - name: tools\n    dirs: [{ path: /bin }]\n    files: [{ path: /bin/tool, content: t }]\n`,
      `  - name: tools\n    files: [{ path: /usr/bin/tool, content: t }]\n`,
      `  - name: own\n    dirs: [{ path: /bin }]\n  - name: tools\n    files: [{ path: /bin/tool, content: t }]\n`,
      `  - name: gone\n    remove: [/bin]\n  - name: tools\n    files: [{ path: /bin/tool, content: t }]\n`,
    ]) {
      const { build } = await onLinkedBase(layers);
      await expect(build(), layers).resolves.toMatchObject({ digest: expect.stringMatching(/^sha256:/) });
    }
  });

  it('is refused where it copies a file onto a directory of the base, and builds into it, or once a layer below removed it', async () => {
    const onto = await onLinkedBase(`  - name: conf\n    copy: [{ from: tool, to: /usr/bin }]\n`);
    writeFileSync(join(onto.dir, 'tool'), 't');
    expect(problems(await onto.build().catch((e) => e))).toEqual([
      '6 layer "conf" copies a file onto /usr/bin, which is a directory in the base image oci:./base:1: the file would replace the directory and all it holds | to copy it into the directory, end the copy\'s `to` with "/" (/usr/bin/); to replace the directory, remove it in a layer below this one',
    ]);
    for (const layers of [`  - name: conf\n    copy: [{ from: tool, to: /usr/bin/ }]\n`, `  - name: gone\n    remove: [/usr/bin]\n  - name: conf\n    copy: [{ from: tool, to: /usr/bin }]\n`]) {
      const { dir, build } = await onLinkedBase(layers);
      writeFileSync(join(dir, 'tool'), 't');
      await expect(build(), layers).resolves.toMatchObject({ digest: expect.stringMatching(/^sha256:/) });
    }
  });

  it('is refused again on the next build, though the plan recorded the layer\'s walk before the base refused it', async () => {
    const { dir, build } = await onLinkedBase(`  - name: conf\n    copy: [{ from: tool, to: /usr/lib/tool }]\n`);
    writeFileSync(join(dir, 'tool'), 't');
    await build();
    await build(); // the stat cache knows the file: this plan records the layer's walk
    writeFileSync(join(dir, 'image.yaml'), readFileSync(join(dir, 'image.yaml'), 'utf8').replace('to: /usr/lib/tool', 'to: /usr/lib'));
    for (let i = 0; i < 3; i++) expect(problems(await build().catch((e) => e)), `build ${i}`).toEqual([expect.stringMatching(/^6 layer "conf" copies a file onto \/usr\/lib, which is a directory in the base image/)]);
  });

  it('builds where a later base layer removed the link', async () => {
    const { build } = await onLinkedBase(`  - name: tools\n    files: [{ path: /bin/tool, content: t }]\n`, `  - name: unlinked\n    remove: [/bin]\n`);
    await expect(build()).resolves.toMatchObject({ digest: expect.stringMatching(/^sha256:/) });
  });

  it('is refused when the base gains the link under a layer found unchanged since its last build', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgbuild-base-links-'));
    const base = (layers: string) => writeFileSync(join(dir, 'base.yaml'), `apiVersion: imgbuild/v1\nname: t/base\ntags: ["1"]\nlayers:\n${layers}output:\n  - oci: ./base\n`);
    base(`  - name: usr\n    dirs: [{ path: /usr/bin }, { path: /bin }]\n`);
    await apply(join(dir, 'base.yaml'), { cacheDir: join(dir, 'cache'), env: {} });
    writeFileSync(join(dir, 'tool'), 't');
    writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/app\nfrom: oci:./base:1\nlayers:\n  - name: tools\n    copy: [{ from: tool, to: /bin/tool }]\noutput:\n  - oci: ./out\n`);
    const events: ApplyEvent[] = [];
    const build = () => apply(join(dir, 'image.yaml'), { cacheDir: join(dir, 'cache'), env: {}, report: (e) => events.push(e) });
    await build();
    await build(); // records the layer's walk
    base(BASE_LAYERS);
    await apply(join(dir, 'base.yaml'), { cacheDir: join(dir, 'cache'), env: {} });
    events.length = 0;
    const err = await build().catch((e) => e);
    expect(events.find((e) => e.type === 'plan')).toMatchObject({ layersUnchanged: 1 });
    expect(problems(err)).toEqual([expect.stringMatching(/^5 layer "tools" writes below \/bin, which is a symlink to usr\/bin/)]);
  });
});
