import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, rmdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpecError, type Diagnostic } from '../../src/errors.js';
import { FileChangedError } from '../../src/layer/stable-read.js';
import { compileOneLayer, compilePlan } from '../../src/plan/compile.js';
import { throughLink } from '../../src/plan/parents.js';
import { resolveCopy } from '../../src/plan/resolve-copy.js';
import type { BuildPlan, PlanEntry } from '../../src/plan/types.js';
import { loadSpec } from '../../src/spec/load.js';
import { UncachedDigester } from '../../src/store/file-digests.js';

/** A context with files, an executable, an empty dir, symlinks (in and out), and excluded docs. */
function makeContext(): string {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-plan-'));
  const w = (rel: string, body: string) => {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), body);
  };
  w('app/src/b.js', 'b');
  w('app/src/a.js', 'a');
  w('app/src/A-upper.js', 'A');
  w('app/src/lib/z.js', 'zz');
  w('app/README.md', 'docs');
  w('app/src/lib/NOTES.md', 'notes');
  w('app/bin/run', '#!/bin/sh\n');
  chmodSync(join(dir, 'app/bin/run'), 0o755);
  mkdirSync(join(dir, 'app/empty'));
  symlinkSync('src/a.js', join(dir, 'app/link-in'));
  symlinkSync('/etc/passwd', join(dir, 'app/link-out'));
  return dir;
}

async function plan(dir: string, layers: string, extra = ''): Promise<BuildPlan> {
  writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/app\nlayers:\n${layers}\n${extra}`);
  return compilePlan(await loadSpec(join(dir, 'image.yaml'), { env: {} }), new UncachedDigester());
}

const show = (e: PlanEntry) => `${e.type} ${e.path} ${e.mode.toString(8)} ${e.uid}:${e.gid}${e.type === 'symlink' ? ` -> ${e.target}` : ''}${e.type === 'file' ? ` ${e.size}` : ''}`;

describe('compile', () => {
  it('resolves a directory copy into sorted entries with parents, modes, symlinks and empty dirs', async () => {
    const dir = makeContext();
    const p = await plan(dir, `  - name: app\n    owner: "1000:1000"\n    copy:\n      - { from: app/, to: /srv/app/, exclude: ["**/*.md"] }`);
    expect(p.layers[0]!.entries.map(show)).toEqual([
      'dir srv 755 0:0',
      'dir srv/app 755 1000:1000',
      'dir srv/app/bin 755 1000:1000',
      'file srv/app/bin/run 755 1000:1000 10',
      'dir srv/app/empty 755 1000:1000',
      'symlink srv/app/link-in 777 1000:1000 -> src/a.js',
      'symlink srv/app/link-out 777 1000:1000 -> /etc/passwd',
      'dir srv/app/src 755 1000:1000',
      'file srv/app/src/A-upper.js 644 1000:1000 1',
      'file srv/app/src/a.js 644 1000:1000 1',
      'file srv/app/src/b.js 644 1000:1000 1',
      'dir srv/app/src/lib 755 1000:1000',
      'file srv/app/src/lib/z.js 644 1000:1000 2',
    ]);
    expect(p.layers[0]).toMatchObject({ files: 5, bytes: 15 });
  });

  it('copies a single file into a directory or onto a path', async () => {
    const dir = makeContext();
    const p = await plan(dir, `  - name: l\n    copy:\n      - { from: app/src/a.js, to: /x/ }\n      - { from: app/src/b.js, to: /y/b.txt, mode: "0400" }`);
    expect(p.layers[0]!.entries.map(show)).toEqual(['dir x 755 0:0', 'file x/a.js 644 0:0 1', 'dir y 755 0:0', 'file y/b.txt 400 0:0 1']);
  });

  it('keeps glob matches relative to the glob base', async () => {
    const dir = makeContext();
    const p = await plan(dir, `  - name: l\n    copy:\n      - { from: "app/src/**/*.js", to: /js/ }`);
    expect(p.layers[0]!.entries.filter((e) => e.type === 'file').map((e) => e.path)).toEqual(['js/A-upper.js', 'js/a.js', 'js/b.js', 'js/lib/z.js']);
  });

  it("gives the directories between a glob's base and its matches the copy's owner and dirMode, as a directory copy does", async () => {
    const dir = makeContext();
    mkdirSync(join(dir, 'app/src/lib/deep/er'), { recursive: true });
    writeFileSync(join(dir, 'app/src/lib/deep/er/y.js'), 'y');
    const p = await plan(dir, `  - name: l\n    copy:\n      - { from: "app/src/**/*.js", to: /js/, owner: "1000:1000", dirMode: "0750" }`);
    expect(p.layers[0]!.entries.map(show)).toEqual([
      'dir js 755 0:0',
      'file js/A-upper.js 644 1000:1000 1',
      'file js/a.js 644 1000:1000 1',
      'file js/b.js 644 1000:1000 1',
      'dir js/lib 750 1000:1000',
      'dir js/lib/deep 750 1000:1000',
      'dir js/lib/deep/er 750 1000:1000',
      'file js/lib/deep/er/y.js 644 1000:1000 1',
      'file js/lib/z.js 644 1000:1000 2',
    ]);
  });

  it('adds inline files, dirs, symlinks and whiteouts; a whiteout brings no parent directories of its own', async () => {
    const dir = makeContext();
    const p = await plan(dir, `  - name: l\n    files: [{ path: /etc/c.conf, content: "héllo", mode: "0600" }]\n    dirs: [{ path: /tmp, mode: "1777" }]\n    symlinks: [{ path: /bin/sh, target: busybox }]\n    remove: [/usr/share/doc]`);
    expect(p.layers[0]!.entries.map(show)).toEqual([
      'dir bin 755 0:0',
      'symlink bin/sh 777 0:0 -> busybox',
      'dir etc 755 0:0',
      'file etc/c.conf 600 0:0 6',
      'dir tmp 1777 0:0',
      'whiteout usr/share/doc 0 0:0',
    ]);
  });

  it('lets an explicit dir override the mode of a copied one', async () => {
    const dir = makeContext();
    const p = await plan(dir, `  - name: l\n    copy: [{ from: app/src/, to: /s/ }]\n    dirs: [{ path: /s/lib, mode: "0700" }]`);
    expect(p.layers[0]!.entries.find((e) => e.path === 's/lib')!.mode).toBe(0o700);
  });

  it('reports missing sources with a did-you-mean, and paths written twice, all at once', async () => {
    const dir = makeContext();
    const err = await plan(dir, `  - name: l\n    copy:\n      - { from: app/srcc/, to: /a/ }\n      - { from: app/src/, to: /g/ }\n    files: [{ path: /g/a.js, content: x }]`).catch((e) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).diagnostics.map((d) => `${d.position.line} ${d.message} (${d.hint})`)).toEqual([
      '6 source "app/srcc" does not exist in the context (did you mean "app/src"?)',
      '8 /g/a.js is written twice in this layer (line 7 writes it; each path may come from one entry of a layer)',
    ]);
  });

  it('refuses a source reached through a symlink that leaves the context', async () => {
    const dir = makeContext();
    const outside = mkdtempSync(join(tmpdir(), 'imgbuild-outside-'));
    writeFileSync(join(outside, 'secret'), 's');
    symlinkSync(outside, join(dir, 'escape'));
    const err = await plan(dir, `  - name: l\n    copy: [{ from: escape/secret, to: /s }]`).catch((e) => e);
    expect((err as SpecError).diagnostics[0]!.message).toMatch(/leads outside the context through a symlink/);
  });

  it('refuses a file or directory whose name would read as a whiteout, unless excluded', async () => {
    const dir = makeContext();
    writeFileSync(join(dir, 'app/src/.wh.settings.json'), '{}');
    mkdirSync(join(dir, 'app/src/.wh..wh..opq'));
    const err = await plan(dir, `  - name: l\n    copy: [{ from: app/src/, to: /s/ }]`).catch((e) => e);
    expect((err as SpecError).diagnostics.map((d) => d.message.replace(dir, '<ctx>'))).toEqual([
      '<ctx>/app/src/.wh..wh..opq: a name starting with ".wh." would delete a path of the layers below, not add this directory',
      '<ctx>/app/src/.wh.settings.json: a name starting with ".wh." would delete a path of the layers below, not add this file',
    ]);
    const p = await plan(dir, `  - name: l\n    copy: [{ from: app/src/, to: /s/, exclude: ["**/.wh.*"] }]`);
    expect(p.layers[0]!.entries.some((e) => e.path.includes('.wh.'))).toBe(false);
  });

  it('refuses a name that is not UTF-8, showing its bytes, rather than dropping it; a real U+FFFD is a name like any other', async () => {
    const dir = makeContext();
    const latin1 = (rel: string) => Buffer.concat([Buffer.from(join(dir, 'app/src/')), Buffer.from(rel, 'latin1')]);
    writeFileSync(latin1('r\xe9sum\xe9.txt'), 'cv');
    mkdirSync(latin1('caf\xe9'));
    writeFileSync(Buffer.concat([latin1('caf\xe9'), Buffer.from('/menu.txt')]), 'menu');
    writeFileSync(join(dir, 'app/src/x\uFFFDy.txt'), 'real');
    for (const from of ['app/src/', 'app/src/**/*.txt']) {
      const err = await plan(dir, `  - name: l\n    copy: [{ from: "${from}", to: /s/ }]`).catch((e) => e);
      expect((err as SpecError).diagnostics.map((d) => d.message.replace(dir, '<ctx>')).sort(), from).toEqual([
        '<ctx>/app/src/caf\\xe9 has a name that is not UTF-8',
        '<ctx>/app/src/r\\xe9sum\\xe9.txt has a name that is not UTF-8',
      ]);
    }
    const p = await plan(dir, `  - name: l\n    copy: [{ from: app/src/, to: /s/, exclude: ["caf*", "r*"] }]`);
    expect(p.layers[0]!.entries.map((e) => e.path)).toContain('s/x\uFFFDy.txt');
    // A glob that does not match such a file leaves it out, as any other; a directory so named it cannot look into.
    const err = await plan(dir, `  - name: l\n    copy: [{ from: "app/src/**/*.js", to: /s/ }]`).catch((e) => e);
    expect((err as SpecError).diagnostics.map((d) => d.message.replace(dir, '<ctx>'))).toEqual(['<ctx>/app/src/caf\\xe9 has a name that is not UTF-8']);
    rmSync(Buffer.concat([latin1('caf\xe9'), Buffer.from('/menu.txt')]));
    rmdirSync(latin1('caf\xe9'));
    expect((await plan(dir, `  - name: l\n    copy: [{ from: "app/src/**/*.js", to: /s/ }]`)).layers[0]!.entries.map((e) => e.path)).toContain('s/a.js');
  });

  it('reads an exclude pattern ending in "/" as the directory it names, with all below it', async () => {
    const dir = makeContext();
    const p = await plan(dir, `  - name: l\n    copy: [{ from: app/, to: /s/, exclude: ["src/lib/", "bin"] }]`);
    const paths = p.layers[0]!.entries.map((e) => e.path);
    expect(paths.filter((x) => x.startsWith('s/src/lib') || x.startsWith('s/bin'))).toEqual([]);
    expect(paths).toContain('s/src/a.js');
  });

  it('refuses an exclude pattern with "!", which would leave out nearly everything', async () => {
    const dir = makeContext();
    const err = await plan(dir, `  - name: l\n    copy: [{ from: app/, to: /s/, exclude: ["**/*.md", "!README.md"] }]`).catch((e) => e);
    expect((err as SpecError).diagnostics.map((d) => d.message)).toEqual(['exclude pattern "!README.md" starts with "!"']);
  });

  it('refuses an exclude pattern starting with "/", which matched nothing and left out nothing', async () => {
    const dir = makeContext();
    const err = await plan(dir, `  - name: l\n    copy: [{ from: app/, to: /s/, exclude: ["/src/lib", "bin"] }]`).catch((e) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).diagnostics.map((d) => `${d.message} (${d.hint})`)).toEqual([
      'exclude pattern "/src/lib" starts with "/" (exclude patterns are relative to the copy\'s `from`: write "src/lib")',
    ]);
  });

  it('refuses special files, naming them', async () => {
    const dir = makeContext();
    execFileSync('mkfifo', [join(dir, 'app/src/pipe')]);
    const err = await plan(dir, `  - name: l\n    copy: [{ from: app/src/, to: /s/ }]`).catch((e) => e);
    expect((err as SpecError).diagnostics[0]!.message).toMatch(/app\/src\/pipe is a special file/);
  });
});

describe('a layer of one directory copy', () => {
  // Listed in order as it is walked, without the merge: it must give exactly what the merge gives.
  const tricky = ['d/a', 'd-x', 'd.js', 'd0', 'D', 'é/f', '\uE000', '\u{1D4B3}/g', 'docs/x.md', 'bin/tool'];

  it('is listed exactly as the merge lists the same copy: entries, counts and cache key', async () => {
    const dir = makeContext();
    for (const n of tricky) {
      mkdirSync(join(dir, 'app', n, '..'), { recursive: true });
      writeFileSync(join(dir, 'app', n), n);
    }
    chmodSync(join(dir, 'app/bin/tool'), 0o755);
    mkdirSync(join(dir, 'nothing'));
    const full = (e: PlanEntry) => `${show(e)}${e.type === 'file' ? ` ${e.source.kind === 'path' ? e.source.path : ''} ${e.source.digest}` : ''}`;
    for (const to of ['/srv/app/', '/', '/srv/app']) {
      const copy = `{ from: app/, to: "${to}", exclude: ["docs"] }`;
      const alone = await plan(dir, `  - name: l\n    owner: "10:20"\n    copy:\n      - ${copy}`);
      // A second copy that adds nothing (an empty directory onto the same destination) makes the layer go through the merge.
      const merged = await plan(dir, `  - name: l\n    owner: "10:20"\n    copy:\n      - ${copy}\n      - { from: nothing/, to: "${to}" }`);
      expect(alone.layers[0]!.entries.map(full), to).toEqual(merged.layers[0]!.entries.map(full));
      expect(alone.layers[0]!.entries.map((e) => e.path), to).toContain(`${to.replace(/^\/|\/$/g, '')}${to === '/' ? '' : '/'}\u{1D4B3}/g`);
      expect(alone.layers[0], to).toMatchObject({ files: merged.layers[0]!.files, bytes: merged.layers[0]!.bytes, cacheKey: merged.layers[0]!.cacheKey });
    }
  });

  it('takes its destination\'s parents from a lower layer', async () => {
    const dir = makeContext();
    const p = await plan(dir, `  - name: base\n    dirs: [{ path: /srv, owner: "1000:1000", mode: "0750" }]\n  - name: app\n    copy: [{ from: app/bin/, to: /srv/app/ }]`);
    expect(p.layers[1]!.entries.map(show)).toEqual(['dir srv 750 1000:1000', 'dir srv/app 755 0:0', 'file srv/app/run 755 0:0 10']);
  });

  it('keeps its destination as a lower layer made it, as COPY leaves an existing destination; a new one takes the copy\'s owner and dirMode', async () => {
    const dir = makeContext();
    const lower = `  - name: base\n    dirs: [{ path: /tmp, mode: "1777" }, { path: /srv, owner: "5:5", mode: "0750" }]\n`;
    // One copy is listed as it is walked; with a second entry the layer is merged: the same entries either way.
    for (const extra of ['', '      - { from: app/README.md, to: /doc/ }\n']) {
      const p = await plan(dir, `${lower}  - name: app\n    owner: "1000:1000"\n    copy:\n      - { from: app/bin/, to: /tmp/, dirMode: "0700" }\n${extra}`);
      expect(p.layers[1]!.entries.filter((e) => e.type === 'dir').map(show), extra).toEqual([...(extra ? ['dir doc 755 0:0'] : []), 'dir tmp 1777 0:0']);
      const into = await plan(dir, `${lower}  - name: app\n    copy:\n      - { from: app/src/, to: /srv/src/, owner: "1000:1000", dirMode: "0700" }\n      - { from: app/bin/, to: /srv/, owner: "1000:1000" }\n${extra}`);
      expect(into.layers[1]!.entries.filter((e) => e.type === 'dir').map(show), extra).toEqual([...(extra ? ['dir doc 755 0:0'] : []), 'dir srv 750 5:5', 'dir srv/src 700 1000:1000', 'dir srv/src/lib 700 1000:1000']);
    }
    // A layer's own dirs: entry says what the destination is to be.
    const own = await plan(dir, `${lower}  - name: app\n    dirs: [{ path: /tmp, mode: "0700" }]\n    copy: [{ from: app/bin/, to: /tmp/ }]\n`);
    expect(own.layers[1]!.entries.filter((e) => e.type === 'dir').map(show)).toEqual(['dir tmp 700 0:0']);
    // Removed below, it is made anew.
    const gone = await plan(dir, `${lower}  - name: gone\n    remove: [/tmp]\n  - name: app\n    copy: [{ from: app/bin/, to: /tmp/, dirMode: "0700" }]\n`);
    expect(gone.layers[2]!.entries.filter((e) => e.type === 'dir').map(show)).toEqual(['dir tmp 700 0:0']);
  });

  it('takes nothing for its destination, or an implied parent, from a directory a lower symlink hid', async () => {
    const dir = makeContext();
    // /srv/data (0700 5:5) is gone once /srv is a link, and gone still when a layer makes /srv a directory again.
    const lower = `  - name: base\n    dirs: [{ path: /srv/data, owner: "5:5", mode: "0700" }]\n  - name: link\n    symlinks: [{ path: /srv, target: /opt }]\n  - name: again\n    dirs: [{ path: /srv }]\n`;
    for (const extra of ['', '      - { from: app/README.md, to: /doc/ }\n']) {
      const p = await plan(dir, `${lower}  - name: app\n    copy:\n      - { from: app/bin/, to: /srv/data/, dirMode: "0750" }\n${extra}`);
      expect(p.layers[3]!.entries.filter((e) => e.type === 'dir').map(show), extra).toEqual([...(extra ? ['dir doc 755 0:0'] : []), 'dir srv 755 0:0', 'dir srv/data 750 0:0']);
    }
    const implied = await plan(dir, `${lower}  - name: app\n    files: [{ path: /srv/data/x, content: x }]\n`);
    expect(implied.layers[3]!.entries.filter((e) => e.type === 'dir').map(show)).toEqual(['dir srv 755 0:0', 'dir srv/data 755 0:0']);
    // On a base, where /srv was never an entry of ours (the base's stands), the link hides /srv/data all the same.
    const copied = `  - name: base\n    copy: [{ from: app/bin/, to: /srv/data/, dirMode: "0700" }]\n  - name: link\n    symlinks: [{ path: /srv, target: /opt }]\n  - name: again\n    dirs: [{ path: /srv }]\n`;
    const onBase = await plan(dir, `${copied}  - name: app\n    copy: [{ from: app/bin/, to: /srv/data/, dirMode: "0750" }]\n`, 'from: docker.io/library/alpine:3.20\n');
    expect(onBase.layers[3]!.entries.filter((e) => e.type === 'dir').map(show)).toEqual(['dir srv 755 0:0', 'dir srv/data 750 0:0']);
  });

  it('reports a special file in it together with the problems of other layers', async () => {
    const dir = makeContext();
    execFileSync('mkfifo', [join(dir, 'app/src/pipe')]);
    const err = await plan(dir, `  - name: one\n    copy: [{ from: app/src/, to: /s/ }]\n  - name: two\n    copy: [{ from: app/nope/, to: /n/ }]`).catch((e) => e);
    expect((err as SpecError).diagnostics.map((d) => `${d.position.line} ${d.message.replace(dir, '<ctx>')}`)).toEqual([
      '5 <ctx>/app/src/pipe is a special file (socket, pipe or device)',
      '7 source "app/nope" does not exist in the context',
    ]);
  });
});

describe('the context', () => {
  it.each([
    ['missing', () => undefined, 'does not exist'],
    ['a file', (dir: string) => writeFileSync(join(dir, 'ctx'), 'x'), 'is not a directory'],
  ])('is refused at the line of `context:` when it is %s', async (_kind, make, what) => {
    const dir = makeContext();
    make(dir);
    const err = await plan(dir, `  - name: app\n    copy: [{ from: app/, to: /app/ }]`, 'context: ./ctx\n').catch((e) => e);
    expect((err as SpecError).diagnostics.map((d) => `${d.position.line}:${d.position.col} ${d.message.replace(dir, '<dir>')}`)).toEqual([`6:10 context directory <dir>/ctx ${what}`]);
  });
});

describe('whole context and a live file system', () => {
  it('copies the whole context with from: "."', async () => {
    const dir = makeContext();
    for (const from of ['.', './', 'app/..']) {
      const p = await plan(dir, `  - name: all\n    copy: [{ from: "${from}", to: /srv/, exclude: ["image.yaml", "app/src", "app/bin", "app/link-*"] }]`);
      expect(p.layers[0]!.entries.map((e) => e.path), from).toEqual(['srv', 'srv/app', 'srv/app/README.md', 'srv/app/empty']);
    }
  });

  it('lists a layer again when a file vanishes between listing and hashing', async () => {
    const dir = makeContext();
    writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/app\nlayers:\n  - name: l\n    copy: [{ from: app/src/, to: /s/ }]\n`);
    const spec = await loadSpec(join(dir, 'image.yaml'), { env: {} });
    const real = new UncachedDigester();
    let vanished = false;
    const flaky = {
      digest: async (abs: string, st: import('../../src/store/file-digests.js').FileStat) => {
        if (!vanished && abs.endsWith('b.js')) {
          vanished = true;
          rmSync(abs);
          throw new FileChangedError(abs, 'vanished');
        }
        return real.digest(abs);
      },
    };
    const p = await compilePlan(spec, flaky);
    expect(p.layers[0]!.entries.filter((e) => e.type === 'file').map((e) => e.path)).toEqual(['s/A-upper.js', 's/a.js', 's/lib/NOTES.md', 's/lib/z.js']);
  });

  it('lists a layer again when a symlink is replaced by a file between listing its directory and reading the link', async () => {
    const dir = makeContext();
    writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/app\nlayers:\n  - name: l\n    copy: [{ from: app/, to: /s/, exclude: ["**/*.md"] }]\n`);
    const spec = await loadSpec(join(dir, 'image.yaml'), { env: {} });
    const real = new UncachedDigester();
    let replaced = false;
    // app/ is listed, then bin/ below it (its run looked up here), then the rest of app/: link-in among it.
    const swapping = {
      known: (abs: string) => {
        if (!replaced && abs.endsWith('bin/run')) {
          replaced = true;
          rmSync(join(dir, 'app/link-in'));
          writeFileSync(join(dir, 'app/link-in'), 'now a file');
        }
        return undefined;
      },
      digest: (abs: string) => real.digest(abs),
    };
    const p = await compilePlan(spec, swapping);
    expect(replaced).toBe(true);
    expect(p.layers[0]!.entries.find((e) => e.path === 's/link-in')).toMatchObject({ type: 'file', size: 10 });
  });

  it('reports a symlink gone between listing and reading the link as a change to list again, not an error of the system', async () => {
    const dir = makeContext();
    const spec = await loadSpec((writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/app\nlayers:\n  - name: l\n    copy: [{ from: app/, to: /s/ }]\n`), join(dir, 'image.yaml')), { env: {} });
    for (const [what, swap] of [
      ['replaced by a file', (p: string) => (rmSync(p), writeFileSync(p, 'x'))],
      ['removed', (p: string) => rmSync(p)],
    ] as const) {
      symlinkSync('src/a.js', join(dir, 'app/late-link'));
      const listed: string[] = [];
      // Every directory is listed before any entry is made: the link goes while lib/ is listed.
      const witness = {
        before: (d: string) => {
          listed.push(d);
          if (d.endsWith('/lib')) swap(join(dir, 'app/late-link'));
        },
        unstampable: () => undefined,
      };
      const err = await resolveCopy(spec.layers[0]!.copies[0]!, dir, realpathSync(dir), () => false, { witness }).catch((e: unknown) => e);
      expect(err, what).toBeInstanceOf(FileChangedError);
      expect((err as FileChangedError).path, what).toBe(join(dir, 'app/late-link'));
      rmSync(join(dir, 'app/late-link'), { force: true });
    }
  });
});

describe('host paths that are never inputs', () => {
  it('leaves out the spec\'s own outputs and the cache, even when copying the whole context', async () => {
    const dir = makeContext();
    for (const p of ['out/app/blobs/x', 'cache/blobs/y', 'app.tar', '.app.tar.1.2.tmp']) {
      mkdirSync(join(dir, p, '..'), { recursive: true });
      writeFileSync(join(dir, p), 'x');
    }
    writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/app\nlayers:\n  - name: all\n    copy: [{ from: ".", to: /c/, exclude: ["app", "image.yaml"] }]\noutput:\n  - oci: ./out/app\n  - docker-archive: ./app.tar\n`);
    const p = await compilePlan(await loadSpec(join(dir, 'image.yaml'), { env: {} }), new UncachedDigester(), { ignore: [join(dir, 'cache')] });
    expect(p.layers[0]!.entries.map((e) => e.path)).toEqual(['c']);
  });
});

describe('host paths named through a symlink, or holding the context', () => {
  const spec = `apiVersion: imgbuild/v1\nname: t/app\nlayers:\n  - name: all\n    copy: [{ from: ".", to: /c/, exclude: ["app", "image.yaml"] }]\noutput:\n  - oci: ./out/app\n`;

  it('leaves out a cache in the context named through a symlinked path (a $PWD that is a link)', async () => {
    const dir = makeContext();
    writeFileSync(join(dir, 'image.yaml'), spec);
    mkdirSync(join(dir, '.cache/blobs'), { recursive: true });
    writeFileSync(join(dir, '.cache/blobs/x'), 'x');
    const link = `${dir}-link`;
    symlinkSync(dir, link);
    const p = await compilePlan(await loadSpec(join(dir, 'image.yaml'), { env: {} }), new UncachedDigester(), { ignore: [join(link, '.cache')] });
    expect(p.layers[0]!.entries.map((e) => e.path)).toEqual(['c']);
    // And the other way round: the spec loaded through the link, the cache named by its real path.
    const viaLink = await compilePlan(await loadSpec(join(link, 'image.yaml'), { env: {} }), new UncachedDigester(), { ignore: [join(dir, '.cache')] });
    expect(viaLink.layers[0]!.entries.map((e) => e.path)).toEqual(['c']);
    rmSync(link);
  });

  it.each([
    ['the cache directory is the context', (dir: string) => ({ ignore: [dir] }), ''],
    ['the cache directory is above the context', (dir: string) => ({ ignore: [join(dir, '..')] }), ''],
    ['an OCI output is the context', () => ({}), 'output:\n  - oci: .\n'],
  ])('refuses a build when %s, which would leave every copied directory empty', async (_what, opts, output) => {
    const dir = makeContext();
    writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/app\nlayers:\n  - name: app\n    copy: [{ from: app/, to: /app/ }]\n${output}`);
    const err = await compilePlan(await loadSpec(join(dir, 'image.yaml'), { env: {} }), new UncachedDigester(), opts(dir)).catch((e) => e);
    expect(err).toMatchObject({ kind: 'usage', message: expect.stringMatching(/holds the context .*: everything in the context would be left out of the image/) });
  });
});

describe('a copy that reads an output or the cache', () => {
  it.each([
    ['an OCI layout written into the copied directory', 'app/', 'output:\n  - oci: ./app\n', {}],
    ['an OCI layout below the copied directory', 'app/src/lib/', 'output:\n  - oci: ./app/src\n', {}],
    ['the docker archive it copies', 'app.tar', 'output:\n  - docker-archive: ./app.tar\n', {}],
    ['an OCI layout not written yet (a first build)', 'out/', 'output:\n  - oci: ./out\n', {}],
    ['a docker archive not written yet (a first build)', 'out.tar', 'output:\n  - docker-archive: ./out.tar\n', {}],
    ['the cache directory', 'app/', '', { ignore: ['app'] }],
  ])('is refused at the copy for %s (it copied nothing, or the last build\'s archive)', async (_what, from, output, opts) => {
    const dir = makeContext();
    writeFileSync(join(dir, 'app.tar'), 'last build');
    writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/app\nlayers:\n  - name: app\n    copy: [{ from: ${from}, to: /x/ }]\n${output}`);
    const ignore = (opts as { ignore?: string[] }).ignore?.map((p) => join(dir, p));
    const err = await compilePlan(await loadSpec(join(dir, 'image.yaml'), { env: {} }), new UncachedDigester(), ignore ? { ignore } : {}).catch((e) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).diagnostics.map((d) => `${d.position.line} ${d.message}`)).toEqual([`5 source "${from.replace(/\/$/, '')}" is, or lies in, one of this build's outputs or its cache directory, which are never copied into the image`]);
  });
});

describe('outputs nested in the context', () => {
  it('leave no trace, however deep, so a rebuild plans what the first build planned', async () => {
    const dir = makeContext();
    const spec = `apiVersion: imgbuild/v1\nname: t/app\nlayers:\n  - name: all\n    copy: [{ from: ".", to: /c/, exclude: ["app", "image.yaml"] }]\noutput:\n  - oci: ./build/out/app\n`;
    writeFileSync(join(dir, 'image.yaml'), spec);
    const first = await compilePlan(await loadSpec(join(dir, 'image.yaml'), { env: {} }), new UncachedDigester());
    mkdirSync(join(dir, 'build/out/app/blobs'), { recursive: true });
    writeFileSync(join(dir, 'build/out/app/index.json'), '{}');
    const again = await compilePlan(await loadSpec(join(dir, 'image.yaml'), { env: {} }), new UncachedDigester());
    expect(again.layers[0]!.entries.map((e) => e.path)).toEqual(first.layers[0]!.entries.map((e) => e.path));
    expect(again.layers[0]!.cacheKey).toBe(first.layers[0]!.cacheKey);
  });
});

describe('implied parent directories', () => {
  it('inherit owner and mode from a lower layer, so they never undo it', async () => {
    const dir = makeContext();
    const p = await plan(dir, `  - name: base\n    dirs: [{ path: /tmp, mode: "1777" }, { path: /app, owner: "1000:1000" }]\n  - name: app\n    files: [{ path: /tmp/x, content: x }, { path: /app/y, content: y }]`);
    expect(p.layers[1]!.entries.map(show)).toEqual(['dir app 755 1000:1000', 'file app/y 644 0:0 1', 'dir tmp 1777 0:0', 'file tmp/x 644 0:0 1']);
  });

  it('are refused where a lower layer left a symlink, below which runtimes differ', async () => {
    const dir = makeContext();
    const base = `  - name: base\n    dirs: [{ path: /usr/bin }]\n    symlinks: [{ path: /bin, target: usr/bin }]\n`;
    for (const top of [`  - name: top\n    files: [{ path: /bin/hello, content: hi }]`, `  - name: top\n    copy: [{ from: app/bin/, to: /bin/app/ }]`]) {
      const err = await plan(dir, base + top).catch((e) => e);
      expect((err as SpecError).diagnostics.map((d) => `${d.position.line} ${d.message} | ${d.hint?.split(':')[0]}`), top).toEqual(['7 layer "top" writes below /bin, which a lower layer made a symlink to usr/bin | write below /usr/bin instead']);
    }
  });

  it('a copied file landing on a lower layer\'s directory is refused, in a merged layer and an ordered one; a removed directory is no longer one', async () => {
    const dir = makeContext();
    mkdirSync(join(dir, 'conf', 'app'), { recursive: true });
    writeFileSync(join(dir, 'conf', 'app', 'lib'), 'not a directory');
    const lower = `  - name: base\n    copy: [{ from: app/src/, to: /app/ }]\n`;
    for (const top of [`  - name: top\n    copy: [{ from: app/README.md, to: /app }]`, `  - name: top\n    copy: [{ from: conf/, to: / }]`]) {
      const err = await plan(dir, lower + top).catch((e) => e);
      expect((err as SpecError).diagnostics.map((d) => `${d.position.line} ${d.message}`), top).toEqual([
        `7 layer "top" copies a file onto /${top.includes('conf/') ? 'app/lib' : 'app'}, which is a directory of a layer below: the file would replace the directory and all it holds`,
      ]);
      // At the copy that brings the file, not at the layer's name.
      expect((err as SpecError).diagnostics.map((d) => d.pointer), top).toEqual(['/layers/1/copy/0']);
    }
    await expect(plan(dir, `${lower}  - name: top\n    copy: [{ from: app/README.md, to: /app/ }]`)).resolves.toBeDefined();
    await expect(plan(dir, `${lower}  - name: gone\n    remove: [/app]\n  - name: top\n    copy: [{ from: app/README.md, to: /app }]`)).resolves.toBeDefined();
  });

  it('are refused in every layer at once', async () => {
    const dir = makeContext();
    const err = await plan(dir, `  - name: base\n    dirs: [{ path: /usr/bin }]\n    symlinks: [{ path: /bin, target: usr/bin }]\n  - name: one\n    files: [{ path: /bin/a, content: a }]\n  - name: two\n    copy: [{ from: app/bin/, to: /bin/sub/ }]`).catch((e) => e);
    expect((err as SpecError).diagnostics.map((d) => `${d.position.line} ${d.message}`)).toEqual(['7 layer "one" writes below /bin, which a lower layer made a symlink to usr/bin', '9 layer "two" writes below /bin, which a lower layer made a symlink to usr/bin']);
  });

  it('are refused in every layer at once, a directory copied onto the link not standing over it for the layers above', async () => {
    const dir = makeContext();
    mkdirSync(join(dir, 'root', 'bin'), { recursive: true });
    writeFileSync(join(dir, 'root', 'bin', 'x'), 'x');
    const err = await plan(dir, `  - name: base\n    dirs: [{ path: /usr/bin }]\n    symlinks: [{ path: /bin, target: usr/bin }]\n  - name: one\n    copy: [{ from: root/, to: / }]\n  - name: two\n    files: [{ path: /bin/two, content: t }]`).catch((e) => e);
    expect((err as SpecError).diagnostics.map((d) => `${d.position.line} ${d.message}`)).toEqual(['7 layer "one" copies a directory onto /bin, which a lower layer made a symlink to usr/bin', '9 layer "two" writes below /bin, which a lower layer made a symlink to usr/bin']);
  });

  it('are collected layer by layer when a caller re-plans one layer at a time (watch mode)', async () => {
    const dir = makeContext();
    writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/app\nlayers:\n  - name: base\n    dirs: [{ path: /usr/bin }]\n  - name: one\n    files: [{ path: /bin/one, content: a }]\n  - name: two\n    files: [{ path: /bin/two, content: b }]\n`);
    const spec = await loadSpec(join(dir, 'image.yaml'), { env: {} });
    const first = await compilePlan(spec, new UncachedDigester());
    // The base now holds the link, as after a file change in its context.
    const base = { ...first.layers[0]!, entries: [...first.layers[0]!.entries, { path: 'bin', mode: 0o777, uid: 0, gid: 0, type: 'symlink' as const, target: 'usr/bin' }] };
    const refusals: Diagnostic[] = [];
    const layers = [base];
    for (const i of [1, 2]) layers.push(await compileOneLayer(spec, i, layers, new UncachedDigester(), [], refusals));
    expect(refusals.map((d) => d.message)).toEqual(['layer "one" writes below /bin, which a lower layer made a symlink to usr/bin', 'layer "two" writes below /bin, which a lower layer made a symlink to usr/bin']);
    await expect(compileOneLayer(spec, 1, [base], new UncachedDigester())).rejects.toBeInstanceOf(SpecError);
  });

  it('name the path through a chain of a lower layer\'s links', async () => {
    const dir = makeContext();
    const err = await plan(dir, `  - name: base\n    dirs: [{ path: /usr/bin }]\n    symlinks: [{ path: /bin, target: usr/bin }, { path: /sbin, target: bin }]\n  - name: top\n    files: [{ path: /sbin/x, content: x }]`).catch((e) => e);
    expect((err as SpecError).diagnostics.map((d) => d.hint?.split(':')[0])).toEqual(['write below /usr/bin instead']);
  });

  it('refuse a copied directory landing on a lower layer\'s symlink, which it would replace; a dirs: entry there may', async () => {
    const dir = makeContext();
    const base = `  - name: base\n    dirs: [{ path: /srv/app }]\n    symlinks: [{ path: /app, target: /srv/app }]\n`;
    // One plain copy (listed as it is walked), and a copy merged with other entries.
    for (const top of [`  - name: top\n    copy: [{ from: app/bin/, to: /app/ }]`, `  - name: top\n    copy: [{ from: app/bin/, to: /app/ }]\n    files: [{ path: /etc/x, content: x }]`]) {
      const err = await plan(dir, base + top).catch((e) => e);
      expect((err as SpecError).diagnostics.map((d) => `${d.position.line} ${d.message}`), top).toEqual(['7 layer "top" copies a directory onto /app, which a lower layer made a symlink to /srv/app']);
    }
    const replaced = await plan(dir, `${base}  - name: top\n    dirs: [{ path: /app }]\n    copy: [{ from: app/bin/, to: /app/ }]`);
    expect(replaced.layers[1]!.entries.map(show)).toContain('dir app 755 0:0');
  });

  it('name the path through a link, inside the image root', () => {
    expect(throughLink('bin', 'usr/bin', 'tool')).toBe('/usr/bin/tool');
    expect(throughLink('lib', '/usr/lib', '')).toBe('/usr/lib');
    expect(throughLink('a/b', '../c', 'x')).toBe('/c/x');
    expect(throughLink('a', '../../..', 'x')).toBe('/x');
    expect(throughLink('a', '/', '')).toBe('/');
  });

  it('take nothing from a directory a lower layer removed, nor from anything below it', async () => {
    const dir = makeContext();
    const p = await plan(
      dir,
      `  - name: base\n    dirs: [{ path: /opt/w/in, mode: "0700", owner: "5:5" }, { path: /opt/k, mode: "0711" }]\n` +
        `  - name: rm\n    remove: [/opt/w]\n` +
        `  - name: app\n    files: [{ path: /opt/w/in/x, content: x }, { path: /opt/k/y, content: y }]`,
    );
    expect(p.layers[2]!.entries.map(show)).toEqual(['dir opt 755 0:0', 'dir opt/k 711 0:0', 'file opt/k/y 644 0:0 1', 'dir opt/w 755 0:0', 'dir opt/w/in 755 0:0', 'file opt/w/in/x 644 0:0 1']);
  });

  it('are left out on top of a base image, whose own directories stand', async () => {
    const dir = makeContext();
    const p = await plan(dir, `  - name: app\n    dirs: [{ path: /srv/data, mode: "0700" }]\n    files: [{ path: /usr/local/bin/x, content: x }]`, 'from: oci:./base\n');
    expect(p.layers[0]!.entries.map(show)).toEqual(['dir srv/data 700 0:0', 'file usr/local/bin/x 644 0:0 1']);
  });
});

describe('cache keys', () => {
  const layers = `  - name: one\n    copy: [{ from: app/src/, to: /s/ }]\n  - name: two\n    copy: [{ from: app/bin/, to: /b/ }]`;

  it('are stable across runs and ignore mtimes', async () => {
    const dir = makeContext();
    const first = await plan(dir, layers);
    utimesSync(join(dir, 'app/src/a.js'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    const second = await plan(dir, layers);
    expect(JSON.stringify(second)).toBe(JSON.stringify(first));
  });

  it('change for exactly the layer whose file changed by one byte', async () => {
    const dir = makeContext();
    const before = await plan(dir, layers);
    writeFileSync(join(dir, 'app/src/lib/z.js'), 'zy');
    const after = await plan(dir, layers);
    expect(after.layers[0]!.cacheKey).not.toBe(before.layers[0]!.cacheKey);
    expect(after.layers[1]!.cacheKey).toBe(before.layers[1]!.cacheKey);
  });

  it('change with mode, owner, compression and build time', async () => {
    const dir = makeContext();
    const base = (await plan(dir, layers)).layers[0]!.cacheKey;
    const keyWith = async (l: string, extra = '') => (await plan(dir, l, extra)).layers[0]!.cacheKey;
    expect(await keyWith(layers.replace('to: /s/ }', 'to: /s/, mode: "0600" }'))).not.toBe(base);
    expect(await keyWith(layers.replace('to: /s/ }', 'to: /s/, owner: "1" }'))).not.toBe(base);
    expect(await keyWith(layers, 'compression: { level: 9 }')).not.toBe(base);
  });
});
