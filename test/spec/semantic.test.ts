import { describe, expect, it } from 'vitest';
import { ImgbuildError } from '../../src/errors.js';
import { expand } from '../../src/spec/interpolate.js';
import * as v from '../../src/spec/parse-values.js';
import { brief, load, loadError, minimal, oneLayer } from './helpers.js';

describe('interpolation', () => {
  it('expands variables, defaults and $$', () => {
    expect(expand('a-${X}-${Y:-dflt}-$$HOME-$', { X: '1' })).toEqual({ value: 'a-1-dflt-$HOME-$', problems: [] });
  });

  it('takes a default for a variable set but empty, as the shell does; a bare reference to it is empty', () => {
    expect(expand('${SHA:-dev}|${SHA}|${UNSET:-u}', { SHA: '' })).toEqual({ value: 'dev||u', problems: [] });
  });

  it('finds no variable in what every object inherits (constructor, toString, __proto__)', async () => {
    expect(expand('${constructor:-c}|${toString:-t}|${__proto__:-p}|${hasOwnProperty:-h}', {})).toEqual({ value: 'c|t|p|h', problems: [] });
    const spec = await load(minimal().replace('name: example/app', 'name: example/app\ntags: ["${valueOf:-v1}"]'), { env: {} });
    expect(spec.tags).toEqual(['v1']);
  });

  it('prefers --var over the environment', async () => {
    const spec = await load(minimal().replace('name: example/app', 'name: example/app\ntags: ["${T}"]'), { vars: { T: 'fromvar' }, env: { T: 'fromenv' } });
    expect(spec.tags).toEqual(['fromvar']);
  });

  it('names an undefined variable at its position', () => {
    expect(brief(minimal('annotations: { a: "x ${MISSING} y" }\n'))).toEqual([
      '7:22 variable MISSING is not defined (pass --var MISSING=..., set it in the environment, or write ${MISSING:-default})',
    ]);
  });

  it('names an undefined variable at its place in block scalars, after escapes, and at each of its uses', () => {
    const extra = [
      'annotations:',
      '  block: |  # uses ${BLOCK}',
      '    first',
      '    v=${BLOCK}',
      '  tab: "a\\tb\\t${TAB}"',
      '  folded: >-',
      '    one',
      '    two ${FOLDED}',
      '  twice: "${TWICE} and ${TWICE}"',
      '  escaped: "\\x24{ESC}"',
      '',
    ].join('\n');
    expect(brief(minimal(extra)).map((s) => s.replace(/ is not defined.*/, ''))).toEqual([
      '10:7 variable BLOCK',
      '11:15 variable TAB',
      '14:9 variable FOLDED',
      '15:11 variable TWICE',
      '15:24 variable TWICE',
      '16:12 variable ESC',
    ]);
  });

  it('refuses malformed references', () => {
    expect(brief(minimal('annotations: { a: "${1X}", b: "${open" }\n')).map((s) => s.replace(/ \(.*/, ''))).toEqual([
      '7:20 "${1X}" is not a valid variable reference',
      '7:32 unterminated "${"',
    ]);
  });

  it('refuses a glob ending in "/", which would copy the files beside the directories too', () => {
    const spec = oneLayer('    copy: [{ from: "src/*/", to: /x/ }, { from: src/, to: /y/ }, { from: "lib/**", to: /z/ }]\n');
    expect(brief(spec)).toEqual(['5:20 glob "src/*/" ends with "/", but a glob here matches files as well as directories (drop the "/" and exclude what is not wanted, or copy each directory with an entry of its own)']);
    expect(brief(spec.replace('"src/*/"', '"src/*/."'))).toEqual(['5:20 glob "src/*/." ends with "/", but a glob here matches files as well as directories (drop the "/" and exclude what is not wanted, or copy each directory with an entry of its own)']);
  });

  it('refuses a reference in a default, which would stay in the value as text', () => {
    expect(brief(minimal('annotations: { a: "x${A:-${B}}" }\n'))).toEqual(['7:21 the default of A holds another reference; a default is plain text (write the default out, or set A)']);
    expect(brief(minimal('annotations: { a: "${A:-plain}" }\n'))).toEqual([]);
    // "$$" is a "$" in a default too, but a "${" is refused however it is escaped: the reference
    // ends at the first "}", so `${A:-$${B}}` with A set would be "1}".
    for (const vars of [{}, { A: '1' }]) expect(expand('x${A:-$${B}}', vars).problems.map((p) => p.message)).toEqual(['the default of A holds another reference; a default is plain text']);
    expect(expand('${A:-$$5}', {})).toEqual({ value: '$5', problems: [] });
  });

  it('never interpolates keys', () => {
    expect(brief(minimal('annotations: { "${K}": v }\n'))).toEqual([]);
  });
});

describe('value formats', () => {
  it('parses stop signals: Linux names, real-time ones, numbers from 1 to 64', () => {
    for (const good of ['SIGTERM', 'SIGQUIT', 'SIGWINCH', 'SIGRTMIN', 'SIGRTMIN+3', 'SIGRTMIN+15', 'SIGRTMAX-2', 'SIGRTMAX-14', '9', '64']) expect(v.parseStopSignal(good), good).toEqual({ ok: true, value: good });
    for (const badSignal of ['SIGFOO', '0', '99', 'SIGRTMIN-1', 'SIGRTMAX+1', 'SIGRTMIN+0', 'SIGRTMIN+03', 'SIGRTMIN+16', 'SIGRTMAX-15', 'SIGRTMAX-30', 'SIGTEMR']) expect(v.parseStopSignal(badSignal).ok, badSignal).toBe(false);
    expect(v.parseStopSignal('SIGTEMR')).toMatchObject({ hint: 'did you mean "SIGTERM"?' });
    expect(brief(minimal('config: { stopSignal: SIGFOO }\n')).map((s) => s.replace(/ \(.*/, ''))).toEqual(['7:23 stopSignal "SIGFOO" is not a signal']);
  });

  it('parses modes', () => {
    expect(v.parseMode('0644')).toEqual({ ok: true, value: 0o644 });
    expect(v.parseMode('1777')).toEqual({ ok: true, value: 0o1777 });
    for (const bad of ['0999', '644a', '12', '07777x', '']) expect(v.parseMode(bad).ok, bad).toBe(false);
  });

  it('parses owners, a lone uid meaning uid:uid', () => {
    expect(v.parseOwner('1000')).toEqual({ ok: true, value: { uid: 1000, gid: 1000 } });
    expect(v.parseOwner('0:5')).toEqual({ ok: true, value: { uid: 0, gid: 5 } });
    for (const bad of ['root', '1:2:3', '-1', '4294967295', '0:4294967295']) expect(v.parseOwner(bad).ok, bad).toBe(false);
    // Ids past the tar header's octal field go in a PAX record: OpenShift's, for one.
    expect(v.parseOwner('1000680000')).toEqual({ ok: true, value: { uid: 1000680000, gid: 1000680000 } });
    expect(v.parseOwner('4294967294:0')).toEqual({ ok: true, value: { uid: 4294967294, gid: 0 } });
  });

  it('parses ports to the OCI form', () => {
    expect(v.parsePort(8080)).toEqual({ ok: true, value: '8080/tcp' });
    expect(v.parsePort('53/udp')).toEqual({ ok: true, value: '53/udp' });
    for (const bad of [0, 70000, '80/icmp', 'http']) expect(v.parsePort(bad).ok, String(bad)).toBe(false);
  });

  it('parses platforms with a did-you-mean', () => {
    expect(v.parsePlatform('linux/arm64/v8')).toEqual({ ok: true, value: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    expect(v.parsePlatform('linux/amd46')).toMatchObject({ ok: false, hint: 'did you mean "amd64"?' });
  });

  it('refuses a variant an engine would match no machine on, where the architecture has a known set', () => {
    for (const ok of ['linux/arm/v6', 'linux/arm/v7', 'linux/arm64/v8', 'linux/amd64/v3']) expect(v.parsePlatform(ok).ok, ok).toBe(true);
    expect(v.parsePlatform('linux/arm/v9')).toEqual({ ok: false, message: 'unknown variant "v9" of arm in platform "linux/arm/v9"', hint: 'known: v5, v6, v7, v8' });
    expect(v.parsePlatform('linux/amd64/v5')).toMatchObject({ ok: false, hint: 'known: v1, v2, v3, v4' });
  });

  it('normalises image paths and refuses escapes', () => {
    expect(v.parseImagePath('/app//x/./y/')).toEqual({ ok: true, value: '/app/x/y' });
    expect(v.parseImagePath('/')).toEqual({ ok: true, value: '/' });
    expect(v.parseImagePath('app/x')).toMatchObject({ ok: false, hint: 'write it from the image root, e.g. "/app/x"' });
    expect(v.parseImagePath('/a/../../etc').ok).toBe(false);
  });

  it('keeps context paths inside the context', () => {
    expect(v.parseContextPath('./src/')).toEqual({ ok: true, value: 'src' });
    expect(v.parseContextPath('a/../b')).toEqual({ ok: true, value: 'b' });
    expect(v.parseContextPath('.')).toEqual({ ok: true, value: '' });
    for (const bad of ['../x', 'a/../../x', '/etc/passwd']) expect(v.parseContextPath(bad).ok, bad).toBe(false);
  });
});

describe('semantic checks', () => {
  it('refuses duplicate layer names and duplicate dests in one layer', () => {
    const spec = `apiVersion: imgbuild/v1
name: example/app
layers:
  - name: a
    files:
      - { path: /x, content: "1" }
      - { path: /x, content: "2" }
  - name: a
    dirs: [{ path: /d }]
`;
    expect(brief(spec).map((s) => s.replace(/ \(.*/, ''))).toEqual(['7:17 /x is written twice in layer "a"', '8:11 layer name "a" is used twice']);
  });

  it('refuses a path one layer removes and writes, or writes below, as the plan does, without reading the context', () => {
    const spec = oneLayer(`    files: [{ path: /etc/a, content: "1" }]
    dirs: [{ path: /var/cache }]
    copy: [{ from: conf/, to: /etc/nginx/conf.d/ }, { from: app, to: /srv/app }]
    remove: [/etc/a, /var/cache, /etc/nginx, /srv/app/old, /usr/share/doc]
`);
    expect(brief(spec).map((s) => s.replace(/ \(.*/, ''))).toEqual([
      '8:14 /etc/a is removed and written in layer "a"',
      '8:22 /var/cache is removed and written in layer "a"',
      '8:34 /etc/nginx is removed in layer "a", which writes /etc/nginx/conf.d below it',
    ]);
    expect(brief(spec)[2]).toMatch(/\(line 7 writes \/etc\/nginx\/conf\.d; remove \/etc\/nginx in a layer below this one/);
  });

  it('refuses a copy whose `to` a file or symlink entry of its layer writes, or makes no directory', () => {
    const spec = oneLayer(`    files: [{ path: /app/x, content: "1" }, { path: /opt, content: "2" }]
    symlinks: [{ path: /srv, target: /app }]
    dirs: [{ path: /data }]
    copy: [{ from: x, to: /app/x }, { from: y, to: /opt/y/ }, { from: z, to: /srv/z }, { from: d, to: /data }]
`);
    expect(brief(spec)).toEqual([
      '8:27 /app/x is written twice in layer "a" (line 5 writes it already; keep one)',
      '8:52 /opt/y needs /opt to be a directory (line 5 makes /opt a file)',
      '8:78 /srv/z needs /srv to be a directory (line 6 makes /srv a symlink)',
    ]);
  });

  it('refuses a file or symlink path ending with "/", which a directory path may', () => {
    const spec = oneLayer(`    files: [{ path: /etc/app/, content: "1" }]
    symlinks: [{ path: /usr/local/bin/, target: /x }]
    dirs: [{ path: /srv/ }]
`);
    expect(brief(spec)).toEqual([
      '5:21 /etc/app/ ends with "/", but a file is not a directory (write its own name: /etc/app/<name>, or /etc/app without the "/")',
      '6:24 /usr/local/bin/ ends with "/", but a symlink is not a directory (write its own name: /usr/local/bin/<name>, or /usr/local/bin without the "/")',
    ]);
  });

  it('lets a dirs entry set the mode of a directory a copy fills, and refuses entries at the root', () => {
    const spec = oneLayer(`    copy: [{ from: app, to: /app }]
    dirs: [{ path: /app, mode: "0700" }, { path: / }]
    files: [{ path: /, content: x }]
    remove: ["/"]
`);
    expect(brief(spec).map((s) => s.replace(/ \(.*/, ''))).toEqual([
      '6:50 dir entries cannot name the image root "/"',
      '7:21 file entries cannot name the image root "/"',
      '8:14 remove entries cannot name the image root "/"',
    ]);
  });

  it('refuses an empty layer, a bad base reference and a bad output', () => {
    const spec = `apiVersion: imgbuild/v1
name: example/app
from: "Not A Ref"
layers:
  - name: empty
output:
  - registry: "UPPER/case"
`;
    expect(brief(spec).map((s) => s.replace(/ \(.*/, ''))).toEqual([
      '3:7 base image "Not A Ref" is not a reference imgbuild understands',
      '5:5 layer "empty" is empty',
      '7:5 registry output "UPPER/case" is not a repository reference',
    ]);
  });

  it('refuses what would go into the image as nothing: a level with no compression, a nameless annotation or label, no layer on scratch', () => {
    const spec = `apiVersion: imgbuild/v1
name: example/app
compression: { algorithm: none, level: 3 }
annotations: { "": x }
config:
  labels: { "": y }
layers: []
`;
    expect(brief(spec)).toEqual([
      '3:40 level 3 means nothing with algorithm "none": layers are stored uncompressed (remove level, or choose algorithm gzip or zstd)',
      '4:20 an annotation with an empty name (give it a name, or remove it)',
      '6:17 a label with an empty name (give it a name, or remove it)',
      "7:9 an image from scratch with no layers holds no file at all (add a layer, or name a base image in from: (an image that only changes a base's config needs no layer))",
    ]);
    // On a base, no layer is an image that changes the base's config only.
    expect(brief(spec.replace('name: example/app', 'name: example/app\nfrom: debian:12').replace(/^(compression|annotations|config|  labels).*\n/gm, ''))).toEqual([]);
  });

  it('refuses a YAML tag it does not know where it is written, rather than read the value under it as text', () => {
    expect(brief(oneLayer('    files: [{ path: /a, content: !include secret.txt }]\n'))).toEqual([
      expect.stringMatching(/^\d+:\d+ unknown YAML tag !include: a spec has no tags of its own, so the value would be read as plain text \(remove the tag/),
    ]);
    expect(brief(oneLayer('    files: [{ path: /a, content: !!str 12 }]\n'))).toEqual([]);
  });

  it('refuses a registry output with a tag or a digest, which the push ignored (the spec\'s tags were pushed instead)', () => {
    const spec = (ref: string) => minimal(`output:\n  - registry: "${ref}"\n`);
    expect(brief(spec('ghcr.io/acme/app:v2'))).toEqual([
      '8:5 registry output "ghcr.io/acme/app:v2" names a tag (write the repository alone, e.g. "ghcr.io/acme/app"; tags come from `tags:`)',
    ]);
    expect(brief(spec(`ghcr.io/acme/app@sha256:${'a'.repeat(64)}`)).map((s) => s.replace(/ \(.*/, ''))).toEqual([`8:5 registry output "ghcr.io/acme/app@sha256:${'a'.repeat(64)}" is not a repository reference`]);
    expect(brief(spec('localhost:5000'))).toEqual(['8:5 registry output "localhost:5000" names a registry but no repository (e.g. "localhost:5000/hello")']);
    expect(brief(spec('registry.example:5000'))).toEqual(['8:5 registry output "registry.example:5000" names a registry but no repository (e.g. "registry.example:5000/hello")']);
    // No "." and not localhost: a repository with a tag, as Docker reads it.
    expect(brief(spec('app:5000'))).toEqual(['8:5 registry output "app:5000" names a tag (write the repository alone, e.g. "app"; tags come from `tags:`)']);
    for (const ok of ['ghcr.io/acme/app', '127.0.0.1:5000/a/b', 'localhost:5000/app', '[::1]:5000/app']) expect(brief(spec(ok))).toEqual([]);
  });

  it('parses base references of every kind', async () => {
    const at = (from: string) => load(minimal(`from: "${from}"\n`)).then((s) => s.base);
    expect(await at('docker.io/library/alpine:3.20')).toEqual({ kind: 'registry', ref: 'docker.io/library/alpine:3.20' });
    expect(await at('oci:./base:v1')).toMatchObject({ kind: 'oci', tag: 'v1' });
    expect(await at('docker-archive:./base.tar')).toMatchObject({ kind: 'docker-archive' });
    expect(await at('docker-archive:./base.tar')).not.toHaveProperty('tag');
    // As skopeo writes it: the image of an archive that holds several, by its RepoTag.
    expect(await at('docker-archive:./two.tar:other/img:2')).toMatchObject({ kind: 'docker-archive', path: expect.stringMatching(/\/two\.tar$/), tag: 'other/img:2' });
  });

  it('inherits owner and modes global -> layer -> entry', async () => {
    const spec = await load(`apiVersion: imgbuild/v1
name: example/app
defaults: { owner: "1:1", fileMode: "0600", dirMode: "0700" }
layers:
  - name: l
    owner: "2:2"
    files:
      - { path: /a, content: a }
      - { path: /b, content: b, owner: "3:3", mode: "0640" }
    dirs: [{ path: /d }]
`);
    const [l] = spec.layers;
    expect(l!.files.map((f) => [f.owner.uid, f.mode])).toEqual([[2, 0o600], [3, 0o640]]);
    expect(l!.dirs[0]).toMatchObject({ mode: 0o700, owner: { uid: 2, gid: 2 } });
  });

  it('translates config to the OCI vocabulary', async () => {
    const spec = await load(minimal('config:\n  env: { A: "1", B: "2" }\n  ports: [8080, "53/udp"]\n  volumes: [/data/]\n  user: "1000:1000"\n'));
    expect(spec.config).toEqual({ User: '1000:1000', ExposedPorts: { '8080/tcp': {}, '53/udp': {} }, Env: ['A=1', 'B=2'], Volumes: { '/data': {} } });
  });

  it('takes SOURCE_DATE_EPOCH as the build time, refusing junk', async () => {
    expect((await load(minimal(), { env: { SOURCE_DATE_EPOCH: '1700000000' } })).epoch).toBe(1700000000);
    await expect(load(minimal(), { env: { SOURCE_DATE_EPOCH: 'yesterday' } })).rejects.toThrow(/SOURCE_DATE_EPOCH=yesterday/);
  });

  it('refuses a SOURCE_DATE_EPOCH beyond what tar headers hold (2^31 - 1) as it loads, as a usage error', async () => {
    expect((await load(minimal(), { env: { SOURCE_DATE_EPOCH: '2147483647' } })).epoch).toBe(2147483647);
    for (const raw of ['2147483648', '99999999999999999']) {
      const e = await load(minimal(), { env: { SOURCE_DATE_EPOCH: raw } }).then(() => undefined, (err: unknown) => err);
      expect(e).toBeInstanceOf(ImgbuildError);
      expect(e).toMatchObject({ kind: 'usage', message: `SOURCE_DATE_EPOCH=${raw} is out of range` });
    }
  });

  it('throws a SpecError carrying every diagnostic', async () => {
    const e = await loadError(minimal('config:\n  user: "a b"\n  workdir: rel\n'));
    expect(e.diagnostics.map((d) => d.position.line)).toEqual([8, 9]);
  });
});
