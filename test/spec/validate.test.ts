import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpecError } from '../../src/errors.js';
import { loadSpec } from '../../src/spec/load.js';
import { generateSchemaJson as schemaJson } from '../../src/spec/schema.js';
import { brief, load, loadError, minimal, problems } from './helpers.js';

describe('schema', () => {
  it('accepts the bundled example', () => {
    const text = readFileSync(new URL('../../image.example.yaml', import.meta.url), 'utf8');
    expect(problems(text)).toEqual([]);
  });

  it('accepts a minimal spec and fills in defaults', async () => {
    const spec = await load(minimal());
    expect(spec.tags).toEqual(['latest']);
    expect(spec.platforms).toEqual([{ os: 'linux', architecture: 'amd64' }]);
    expect(spec.compression).toEqual({ algorithm: 'gzip', level: 6 });
    expect(spec.base).toEqual({ kind: 'scratch' });
    expect(spec.outputs).toHaveLength(1);
    expect(spec.outputs[0]).toMatchObject({ kind: 'oci' });
    expect((spec.outputs[0] as { path: string }).path).toMatch(/\/out\/app$/);
  });

  it('lists a tag once however often the spec names it, as every output writes it once', async () => {
    // `[latest, "${TAG:-latest}"]` is a fair spec; its plan said "latest, latest" for one tag.
    const spec = await load(minimal('tags: [a, latest, a, "${TAG:-latest}"]\n'));
    expect(spec.tags).toEqual(['a', 'latest']);
  });

  it('matches the committed schemas/image.schema.json (run `npm run schema` after changing it)', () => {
    const committed = JSON.parse(readFileSync(new URL('../../schemas/image.schema.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(schemaJson());
  });

  it('describes every property, so editors can show help', () => {
    const undocumented: string[] = [];
    const visit = (node: unknown, path: string) => {
      if (!node || typeof node !== 'object') return;
      const n = node as { properties?: Record<string, { description?: string }>; items?: unknown; additionalProperties?: unknown };
      for (const [k, v] of Object.entries(n.properties ?? {})) {
        if (!v.description && !(v as { items?: unknown }).items) undocumented.push(`${path}.${k}`);
        visit(v, `${path}.${k}`);
      }
      visit(n.items, `${path}[]`);
    };
    visit(schemaJson(), '');
    expect(undocumented).toEqual([]);
  });

  it('reports an unknown key at the key, with a did-you-mean', () => {
    expect(brief(minimal('config:\n  entrypiont: [node]\n'))).toEqual([
      '8:3 unknown key "entrypiont" in config (did you mean "entrypoint"?)',
    ]);
  });

  it('reports a wrong type at the value', () => {
    expect(brief(minimal('config:\n  workdir: 42\n'))[0]).toMatch(/^8:12 config.workdir must be a string, not the number 42 \(quote it: "42"\)$/);
  });

  it('does not offer to quote an alias as if it were the text', () => {
    expect(brief(minimal('x-port: &port 8080\nconfig:\n  env: { PORT: *port }\n')).filter((l) => l.includes('config.env.PORT'))).toEqual(['9:16 config.env.PORT must be a string, not number 8080']);
  });

  it('says a rule given by a pattern in words, not as the pattern', () => {
    expect(brief(minimal('config:\n  stopSignal: TERM\n'))).toEqual(['8:15 config.stopSignal "TERM" is not valid (Signal that stops the container: its name with SIG ("SIGTERM") or its number.)']);
  });

  it('says what YAML read a number or boolean written for a string as, and how to keep it text', () => {
    expect(brief(minimal('config:\n  env: { PORT: 8080, DEBUG: true }\n  user: 0644\n'))).toEqual([
      '8:16 config.env.PORT must be a string, not the number 8080 (quote it: "8080")',
      '8:29 config.env.DEBUG must be a string, not the boolean true (quote it: "true")',
      '9:9 config.user must be a string, not the number 0644, which YAML reads as 644 (quote it: "0644")',
    ]);
  });

  it('reports a missing required key at its parent', () => {
    expect(brief('apiVersion: imgbuild/v1\nlayers: []\n')).toEqual(['1:1 missing required key "name" in the spec']);
  });

  it('reports a files or symlinks entry missing a required key, and checks the entries after it', () => {
    const spec = minimal('    dirs:\n      - { path: /var/x, mode: "0999" }\n').replace('      - { path: /etc/app.conf, content: "x=1\\n" }\n', '      - path: /etc/a.conf\n    symlinks:\n      - path: /bin/sh\n');
    expect(brief(spec).map((s) => s.replace(/ \(.*/, ''))).toEqual([
      '6:9 missing required key "content" in layers.0.files.0',
      '8:9 missing required key "target" in layers.0.symlinks.0',
      '10:31 mode "0999" is not an octal permission',
    ]);
  });

  it('refuses an environment variable name that is empty or holds "=", at the name', () => {
    expect(brief(minimal('config:\n  env: { OK: x, "A=B": y, "": z }\n')).map((s) => s.replace(/ \(.*/, ''))).toEqual([
      '8:17 "A=B" is not a valid key in config.env',
      '8:27 "" is not a valid key in config.env',
    ]);
  });

  it('names a key holding "/" or "~" as written, not as a JSON pointer escapes it', () => {
    expect(brief(minimal('config:\n  labels: { "com.example/team": 1, "a~b": 2 }\n')).map((s) => s.replace(/ \(.*/, ''))).toEqual([
      '8:33 config.labels.com.example/team must be a string, not the number 1',
      '8:43 config.labels.a~b must be a string, not the number 2',
    ]);
  });

  it('refuses an image path with a name that would read as a whiteout', () => {
    expect(brief(minimal('    dirs: [{ path: /etc/.wh..wh..opq }]\n    symlinks: [{ path: /.wh.d/x, target: /y }]\n')).map((s) => s.replace(/ \(.*/, ''))).toEqual([
      '7:20 "/etc/.wh..wh..opq" has a name starting with ".wh."',
      '8:24 "/.wh.d/x" has a name starting with ".wh."',
    ]);
  });

  it('refuses a path below a file or a symlink the same layer writes, without reading the context', () => {
    const spec = [
      'apiVersion: imgbuild/v1',
      'name: example/app',
      'layers:',
      '  - name: other',
      '    files: [{ path: /lnk/in-another-layer, content: "" }]',
      '  - name: etc',
      '    files:',
      '      - { path: /etc/app.conf, content: "x" }',
      '      - { path: /lnk/f, content: "" }',
      '      - { path: /opt/ok, content: "" }',
      '    dirs: [{ path: /etc/app.conf/d }, { path: /opt }]',
      '    symlinks: [{ path: /lnk, target: /opt }]',
      '',
    ].join('\n');
    expect(brief(spec)).toEqual([
      '9:17 /lnk/f needs /lnk to be a directory (line 12 makes /lnk a symlink)',
      '11:20 /etc/app.conf/d needs /etc/app.conf to be a directory (line 8 makes /etc/app.conf a file)',
    ]);
  });

  it('refuses a symlink target that no link can hold: empty, or with a NUL byte', () => {
    expect(brief(minimal('    symlinks: [{ path: /a, target: "" }, { path: /b, target: "x\\0y" }, { path: /c, target: ../c2 }]\n'))).toEqual([
      '7:36 symlink target is empty (write the path the link points to, absolute or relative to the link)',
      '7:62 symlink target contains a NUL byte',
    ]);
  });

  it('refuses an image path with a name longer than a file system holds', () => {
    const long = 'é'.repeat(128); // 256 bytes in UTF-8
    expect(brief(minimal(`    dirs: [{ path: /srv/${long}/x }, { path: /srv/${'a'.repeat(255)} }]\n`)).map((s) => s.replace(/"\/srv\/.*" has/, '"…" has').replace(/ \(.*/, ''))).toEqual(['7:20 "…" has a name longer than 255 bytes']);
  });

  it('refuses a platform listed twice, however it is spelled, and a docker archive of several platforms', () => {
    expect(brief(minimal('platforms: [linux/amd64, linux/arm64, linux/arm64/v8]\noutput:\n  - docker-archive: ./x.tar\n')).map((s) => s.replace(/ \(.*/, ''))).toEqual([
      '7:39 platform "linux/arm64/v8" is listed already, as "linux/arm64"',
      '9:5 a docker archive holds one platform, and this spec builds 3',
    ]);
    expect(brief(minimal('platforms: [linux/amd64, linux/arm/v7]\noutput:\n  - oci: ./out\n'))).toEqual([]);
  });

  it('refuses two outputs at one path, which the build wrote one of before failing on the other', () => {
    expect(brief(minimal('output:\n  - oci: ./out/x\n  - docker-archive: out/x/\n  - docker-archive: ./out/x.tar\n')).map((s) => s.replace(/ \(.*/, ''))).toEqual([
      '9:5 output "out/x/" is written to the path of output 1, "./out/x"',
    ]);
    expect(brief(minimal('output:\n  - oci: ./out/x\n  - docker-archive: ./out/x.tar\n  - registry: ghcr.io/acme/x\n'))).toEqual([]);
  });

  it('refuses two registry outputs to one repository, however it is spelled, which pushed every blob twice side by side', () => {
    expect(brief(minimal('output:\n  - registry: acme/x\n  - registry: docker.io/acme/x\n  - registry: ghcr.io/acme/x\n')).map((s) => s.replace(/ \(.*/, ''))).toEqual([
      '9:5 registry output "docker.io/acme/x" pushes to the repository of output 1, "acme/x"',
    ]);
  });

  it('refuses an empty list of platforms, which built an index of no image', () => {
    expect(brief(minimal('platforms: []\n'))).toEqual(['7:12 platforms is empty: there is no image to build (list at least one, e.g. [linux/amd64], or leave platforms out for linux/amd64)']);
  });

  it('folds a failed union into one message', () => {
    expect(brief(minimal('config:\n  ports: [[1]]\n'))).toEqual(['8:11 config.ports.0 must be a whole number or a string, not a list (A port the container listens on.)']);
  });

  it('reports one problem per mistake: a misspelt key, not also the key it misses or the emptiness it leaves', () => {
    const layer = (body: string) => `apiVersion: imgbuild/v1\nname: t/a\nlayers:\n  - name: app\n${body}`;
    expect(brief(layer('    cpy:\n      - { from: src/, to: /app/ }\n'))).toEqual(['5:5 unknown key "cpy" in layers.0 (did you mean "copy"?)']);
    expect(brief(layer('    copy:\n      - { form: src/, to: /app/ }\n'))).toEqual(['6:11 unknown key "form" in layers.0.copy.0 (did you mean "from"?)']);
    // Not a misspelling of it: both are said.
    expect(brief(layer('    copy:\n      - { to: /app/, zzz: 1 }\n')).map((s) => s.replace(/ \(.*/, ''))).toEqual(['6:9 missing required key "from" in layers.0.copy.0', '6:22 unknown key "zzz" in layers.0.copy.0']);
  });

  it('says which rule of a union a value of the right kind breaks, and what a second document is', () => {
    expect(brief(minimal('config:\n  ports: [0, "x"]\n')).map((s) => s.replace(/ \(.*/, ''))).toEqual(['8:11 config.ports.0 must be >= 1', '8:14 port "x" is not valid']);
    expect(brief(minimal('---\n'))).toEqual(['7:1 a spec is one YAML document, and "---" here starts another (remove this line, and move what follows it to a spec of its own)']);
  });

  it('says a context above the spec\'s folder is that, not a source outside the context', () => {
    expect(brief(minimal('context: ../\n')).map((s) => s.replace(/ \(.*/, ''))).toEqual(['7:10 context "../" is above the spec\'s folder']);
  });

  it('takes a bare name close to "scratch" for its typo, and the image named in full for the image', () => {
    expect(brief(minimal('from: scrach\n'))).toEqual(['7:7 base "scrach" reads as the registry image docker.io/library/scrach (did you mean "scratch"? To mean that image, write docker.io/library/scrach)']);
    expect(brief(minimal('from: docker.io/library/scrach\n'))).toEqual([]);
    for (const image of ['alpine', 'scratchpad', 'busybox']) expect(brief(minimal(`from: ${image}\n`)), image).toEqual([]);
  });

  it('names the allowed values of an enum', () => {
    expect(brief(minimal('compression: { algorithm: brotli }\n'))[0]).toMatch(/compression.algorithm must be one of "gzip", "zstd", "none"/);
  });

  it('reports YAML syntax errors with their position', () => {
    const [d] = problems('apiVersion: imgbuild/v1\nname: [unclosed\n');
    expect(d?.position.line).toBeGreaterThanOrEqual(2);
    expect(d?.hint).toBe('fix the YAML syntax here');
  });

  it('refuses aliases that expand the spec without bound, as a spec error', () => {
    const laughs = minimal('annotations: { a: &a x }\nlabels:\n  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n  d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n');
    expect(brief(laughs)).toEqual(['1:1 aliases expand this spec too far (refer to anchors (*name) less often, or write the values out)']);
  });

  it('names an alias whose anchor is not defined before it, where it is written', () => {
    const hint = '(an alias refers back to an anchor written above it: write &base on the value first, or fix the name)';
    expect(brief(minimal('annotations: { a: *base }\n'))).toEqual([`7:19 alias *base refers to no anchor ${hint}`]);
    // In a merge key it is the same mistake, not a value of the wrong kind.
    expect(brief(minimal('x-c: { <<: *base }\n'))).toEqual([`7:12 alias *base refers to no anchor ${hint}`]);
    // Written after its alias, an anchor is not yet defined.
    expect(brief(minimal('annotations: { a: *base }\nlabels: &base { b: c }\n'))).toEqual([`7:19 alias *base refers to no anchor ${hint}`]);
  });

  it('counts no column for a byte order mark, as editors do', async () => {
    const err = await loadError(`\uFEFF${minimal().replace('imgbuild/v1', 'imgbuild/v2')}`);
    expect(err.diagnostics.map((d) => `${d.position.line}:${d.position.col} ${d.message}`)).toEqual(['1:13 apiVersion must be "imgbuild/v1"']);
    expect(err.source?.text.startsWith('apiVersion')).toBe(true);
  });

  it('refuses a spec that is not UTF-8 at its first bad byte, not building another character', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgbuild-spec-'));
    const file = join(dir, 'image.yaml');
    // A U+FFFD written as UTF-8 is text; the Latin-1 "é" (0xe9) after it is not.
    writeFileSync(file, Buffer.concat([Buffer.from(`\uFEFF${minimal()}    symlinks: [{ path: /a, target: "\uFFFD caf`), Buffer.from([0xe9]), Buffer.from('" }]\n')]));
    const err = await loadSpec(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).diagnostics.map((d) => `${d.position.line}:${d.position.col} ${d.message}`)).toEqual(['7:42 the bytes here are not UTF-8 text']);
  });

  it('reads merge keys, pointing at a merged value where its anchor writes it', async () => {
    const merged = minimal('    copy:\n      - &app { from: src/, to: /app/, owner: "1000" }\n      - { <<: *app, from: lib/ }\n');
    expect(problems(merged)).toEqual([]);
    expect((await load(merged)).layers[0]!.copies.map((c) => `${c.from} ${c.to} ${c.owner.uid}`)).toEqual(['src /app 1000', 'lib /app 1000']);
    expect(brief(merged.replace('"1000"', '"root"')).map((s) => s.replace(/ \(.*/, ''))).toEqual(['8:46 owner "root" is not "uid:gid"']);
    expect(brief(minimal('    copy:\n      - { <<: [5], from: src/, to: /app/ }\n'))).toEqual(['8:15 a merge key ("<<") takes a map, or a list of maps (refer to an anchored map, e.g. `<<: *common`, or write the keys out)']);
  });

  it('ignores top-level keys starting with "x-", a place for anchors as in Compose files, and only those', async () => {
    const spec = 'apiVersion: imgbuild/v1\nname: example/app\nx-owned: &owned { owner: "1000:1000", mode: "0600" }\nlayers:\n  - name: a\n    files:\n      - { path: /a, content: "a", <<: *owned }\n';
    expect(problems(spec)).toEqual([]);
    expect((await load(spec)).layers[0]!.files.map((f) => `${f.path} ${f.mode.toString(8)} ${f.owner.uid}`)).toEqual(['/a 600 1000']);
    expect(brief(`${spec}x: 1\n`).map((s) => s.replace(/ \(.*/, ''))).toEqual(['8:1 unknown key "x" in the spec']);
    expect(brief(spec.replace('  - name: a\n', '  - name: a\n    x-note: 1\n')).map((s) => s.replace(/ \(.*/, ''))).toEqual(['6:5 unknown key "x-note" in layers.0']);
  });

  it('refuses duplicate keys, naming the key and where it is given first', () => {
    expect(brief(minimal('name: again\n'))).toEqual(['7:1 key "name" is given twice in this map (line 2 gives it already; keep one)']);
    expect(brief(minimal('config:\n  env:\n    A: "1"\n    "A": "2"\n'))).toEqual(['10:5 key "A" is given twice in this map (line 9 gives it already; keep one)']);
  });
});

describe('all mistakes at once', () => {
  const bad = `apiVersion: imgbuild/v1
name: example/bad
tags: ["\${NOPE}"]
layers:
  - name: app
    copy:
      - { from: src/, to: /app/../etc/ }
      - { from: ../secrets, to: /secrets }
    files:
      - { path: /etc/x, content: hi, mode: "0999" }
config:
  entrypiont: [node]
  workdir: 42
`;

  it('gives one error per mistake, each at its line and column', () => {
    expect(brief(bad).map((s) => s.split(' ').slice(0, 2).join(' '))).toEqual([
      '3:9 variable',
      '7:27 "/app/../etc/"',
      '8:17 source',
      '10:44 mode',
      '12:3 unknown',
      '13:12 config.workdir',
    ]);
  });

  it('says what would be right in every message', () => {
    for (const d of problems(bad)) expect(d.hint, d.message).toBeTruthy();
  });
});
