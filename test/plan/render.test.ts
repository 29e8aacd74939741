/** How a plan reads in a pull request: the Markdown must hold any name as it is, and show what a reviewer needs. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compilePlan } from '../../src/plan/compile.js';
import { code, renderPlanJson, renderPlanMarkdown, renderPlanText } from '../../src/plan/render.js';
import { loadSpec } from '../../src/spec/load.js';
import { UncachedDigester } from '../../src/store/file-digests.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function planOf(spec: string) {
  const root = mkdtempSync(join(tmpdir(), 'imgbuild-render-'));
  dir = root;
  mkdirSync(join(root, 'ctx'));
  writeFileSync(join(root, 'ctx', 'a|b `c`.txt'), 'x'.repeat(100));
  writeFileSync(join(root, 'ctx', 'small.txt'), 's');
  writeFileSync(join(root, 'image.yaml'), spec);
  return compilePlan(await loadSpec(join(root, 'image.yaml'), { env: {} }), new UncachedDigester());
}

const SPEC = `apiVersion: imgbuild/v1
name: t/md
layers:
  - name: weird
    copy: [{ from: ctx/, to: /srv/ }]
  - name: rm
    remove: [/srv/small.txt]
config:
  entrypoint: ["/bin/sh", "-c", "run **/*.js <b>x</b> _y_"]
  env: { TOKEN: secret-value }
  labels: { team: web }
  volumes: [/data]
output:
  - registry: ghcr.io/acme/app
`;

describe('plan rendering', () => {
  it('writes code spans that hold any text: backticks fenced longer, pipes escaped in tables', () => {
    expect(code('plain')).toBe('`plain`');
    expect(code('a `b`')).toBe('`` a `b` ``');
    expect(code('a|b', true)).toBe('`a\\|b`');
    expect(code('``x', false)).toBe('``` ``x ```');
  });

  it('keeps every table row whole and every config value literal, and shows removals, totals and outputs', async () => {
    const md = renderPlanMarkdown(await planOf(SPEC));
    const rows = md.split('\n').filter((l) => l.startsWith('|'));
    // An unescaped "|" in a cell would add a column.
    for (const row of rows) expect(row.replace(/\\\|/g, '').split('|').length, row).toBe(8);
    expect(md).toContain('``/srv/a\\|b `c`.txt`` (100 B)');
    expect(md).toContain('| | **total** | 2 | 101 B | | |');
    expect(md).toContain('- layer `rm` removes `/srv/small.txt`');
    expect(md).toContain('- entrypoint `["/bin/sh","-c","run **/*.js <b>x</b> _y_"]`');
    expect(md).toContain('- volumes `/data`');
    expect(md).toContain('- labels `team`');
    expect(md).toContain('- output `registry ghcr.io/acme/app`');
    // Env by name only: its values may be secrets.
    expect(md).toContain('- env `TOKEN`');
    expect(md).not.toContain('secret-value');
  });

  it('keeps a name holding a line break on one line, quoted with its escapes, in the table and in the terminal', async () => {
    const plan = await planOf(`apiVersion: imgbuild/v1
name: t/md
layers:
  - name: nl
    files: [{ path: "/srv/two\\nlines", content: "xx" }]
    symlinks: [{ path: /srv/l, target: "a\\nb" }]
`);
    const md = renderPlanMarkdown(plan);
    for (const row of md.split('\n').filter((l) => l.startsWith('|'))) expect(row.split('|').length, row).toBe(8);
    expect(md).toContain('| `"/srv/two\\nlines"` (2 B) |');
    expect(md).toContain('`/srv/l` → `"a\\nb"`');
    const text = renderPlanText(plan);
    expect(text).toMatch(/2 B {2}"\/srv\/two\\nlines"\n/);
    expect(text).toContain('/srv/l -> "a\\nb"');
  });

  it('puts the lock into the JSON plan too, or null without one', async () => {
    const plan = await planOf(SPEC);
    const digest = `sha256:${'b'.repeat(64)}`;
    expect(JSON.parse(renderPlanJson(plan)).lock).toBeNull();
    expect(JSON.parse(renderPlanJson(plan, { file: '/x/image.lock', digests: { 'linux/amd64': digest }, stale: 'it pins a/b:1' })).lock).toEqual({ file: '/x/image.lock', digests: { 'linux/amd64': digest }, stale: 'it pins a/b:1' });
    expect(JSON.parse(renderPlanJson(plan)).layers).toEqual(JSON.parse(JSON.stringify(plan.layers)));
  });

  it('says an image without tags is addressed by its digest alone', async () => {
    expect(renderPlanText(await planOf(SPEC.replace('name: t/md\n', 'name: t/md\ntags: []\n')))).toContain('tags        (none: by digest only)');
    expect(renderPlanText(await planOf(SPEC))).toContain('tags        latest');
    expect(renderPlanMarkdown(await planOf(SPEC.replace('name: t/md\n', 'name: t/md\ntags: []\n')))).toContain(' · tags (none: by digest only)\n');
    expect(renderPlanMarkdown(await planOf(SPEC))).toContain(' · tags `latest`\n');
  });

  it('shows removals and whole words in the terminal too', async () => {
    const text = renderPlanText(await planOf(SPEC.replace("    copy: [{ from: ctx/, to: /srv/ }]", '    files: [{ path: /srv/one, content: "1" }]')));
    expect(text).toMatch(/ 1 file +\d/);
    expect(text).toMatch(/removes +\/srv\/small\.txt/);
    expect(text).toContain('total       1 file, 1 B before compression');
  });

  it('shows what a reviewer must not miss: setuid, setgid and world-writable modes, symlinks and owners', async () => {
    const plan = await planOf(`apiVersion: imgbuild/v1
name: t/md
layers:
  - name: base
    dirs: [{ path: /tmp, mode: "1777" }, { path: /usr/bin }]
    symlinks: [{ path: /bin, target: usr/bin }]
  - name: app
    owner: "1000:1000"
    files: [{ path: /usr/bin/su, content: x, mode: "4755", owner: "0:0" }, { path: /srv/g, content: g, mode: "2750" }]
`);
    const md = renderPlanMarkdown(plan);
    expect(md).toContain('- layer `base`: **world-writable** `/tmp` (1777)');
    expect(md).toContain('- layer `base` links `/bin` → `usr/bin`');
    expect(md).toContain('- layer `app`: **setuid** `/usr/bin/su` (4755)');
    expect(md).toContain('- layer `app`: **setgid** `/srv/g` (2750)');
    expect(md).toContain('- layer `app` owners `1000:1000` (1)');
    const text = renderPlanText(plan);
    expect(text).toMatch(/mode {2}\/usr\/bin\/su 4755 \(setuid\)/);
    expect(text).toMatch(/symlink {2}\/bin -> usr\/bin/);
    expect(text).toMatch(/owner {2}1000:1000 \(1 entry\)/);
  });

  it('shows what the lock pins, that it is stale, or that there is none', async () => {
    const plan = await planOf(SPEC.replace('name: t/md', 'name: t/md\nfrom: oci:./base:1'));
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(renderPlanText(plan)).toContain('base        oci:./base:1, not pinned: no lock file');
    expect(renderPlanText(plan, { file: join(dir!, 'image.lock'), digests: { 'linux/amd64': digest } })).toMatch(new RegExp(`base {8}oci:\\./base:1, pinned by .*image\\.lock: linux/amd64 ${digest}`));
    expect(renderPlanMarkdown(plan, { file: join(dir!, 'image.lock'), digests: {}, stale: 'it pins oci:./old:1, but the spec\'s base is oci:./base:1' })).toMatch(/Base `oci:\.\/base:1`, \*\*`.*image\.lock` is stale: it pins oci:\.\/old:1, but the spec's base is oci:\.\/base:1\*\*/);
  });
});
