// The benchmark inputs, built once under the cache dir and reused: a real npm dependency tree
// (installed from the registry with pinned versions) plus a small app, and generated trees of
// deterministic, gzip-compressible content at a given scale (1x = 2,000 files, about 20 MB).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

// Pinned, so every run measures the same bytes. About 18,000 files and 180 MB.
const PACKAGES = [
  'typescript@5.9.3', '@babel/core@7.26.0', 'eslint@9.17.0', 'webpack@5.97.1', 'lodash@4.17.21',
  'rxjs@7.8.1', 'aws-sdk@2.1692.0', 'date-fns@2.30.0',
];

const APP_FILES = 5;

function countFiles(dir) {
  const out = execFileSync('bash', ['-c', `find '${dir}' -type f | wc -l; du -s --apparent-size --block-size=1 '${dir}' | cut -f1`]).toString().trim().split('\n');
  return { files: Number(out[0]), bytes: Number(out[1]) };
}

const mb = (n) => `${(n / 1e6).toFixed(0)} MB`;

export function ensureCorpus(root) {
  const dir = join(root, 'corpus');
  const stamp = join(dir, '.packages');
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== PACKAGES.join('\n')) {
    process.stderr.write(`  installing the corpus into ${dir} (npm, once)\n`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'bench-corpus', version: '1.0.0', private: true }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', ...PACKAGES], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    writeFileSync(stamp, PACKAGES.join('\n'));
  }
  mkdirSync(join(dir, 'app/src'), { recursive: true });
  for (let i = 1; i <= APP_FILES; i++) writeFileSync(join(dir, `app/src/m${i}.js`), `export const v${i} = ${i};\n`);
  writeFileSync(join(dir, 'app/package.json'), readFileSync(join(dir, 'package.json')));
  const spec = join(dir, 'image.yaml');
  writeFileSync(spec, `apiVersion: imgbuild/v1
name: bench/corpus
from: scratch
platforms: [linux/amd64]
context: .
defaults: { owner: "0:0" }
layers:
  - name: dependencies
    copy:
      - { from: node_modules/, to: /app/node_modules/ }
  - name: app
    copy:
      - { from: app/, to: /app/ }
output:
  - oci: ./out
`);
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY node_modules /app/node_modules\nCOPY app /app\n');
  writeFileSync(join(dir, '.dockerignore'), 'out\n');
  const c = countFiles(join(dir, 'node_modules'));
  return { dir, spec, appFile: join(dir, 'app/src/m1.js'), summary: `node_modules: ${c.files} files, ${mb(c.bytes)}` };
}

/** Touch one app file with new content (a different value each repetition). */
export function changeAppFile(file, i) {
  writeFileSync(file, `export const v1 = ${Date.now()}_${i};\n`);
}

/** Deterministic pseudo-text: words drawn from a seeded stream, so gzip finds real redundancy. */
function content(seed, size) {
  const words = ['const', 'function', 'return', 'export', 'import', 'module', 'value', 'length', 'this', 'undefined', '=>', '{', '}', '(', ')', ';', '\n'];
  let h = createHash('sha256').update(seed).digest();
  const parts = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    if (i % 32 === 0 && i > 0) h = createHash('sha256').update(h).digest();
    const b = h[i % 32];
    const w = b < 200 ? words[b % words.length] : `id${b}_${i % 97}`;
    parts.push(w, ' ');
    n += w.length + 1;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

/** Mixed sizes: most files small, a few large (as in node_modules); 10 MB per 1,000 files. */
function sizeOf(i) {
  const r = i % 100;
  if (r < 60) return 500 + ((i * 37) % 3000);
  if (r < 90) return 4000 + ((i * 101) % 12000);
  if (r < 99) return 15000 + ((i * 7919) % 30000);
  return 150000 + ((i * 104729) % 150000);
}

export function ensureGenerated(root, scale) {
  const dir = join(root, `gen-${scale}x`);
  const files = 2000 * scale;
  if (!existsSync(join(dir, '.done'))) {
    process.stderr.write(`  generating ${files} files in ${dir}\n`);
    rmSync(dir, { recursive: true, force: true });
    const tmp = `${dir}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    const made = new Set();
    for (let i = 0; i < files; i++) {
      const sub = join(tmp, 'tree', `d${i % 50}`, `e${(i >> 6) % 20}`);
      if (!made.has(sub)) mkdirSync(sub, { recursive: true });
      made.add(sub);
      writeFileSync(join(sub, `f${i}.js`), content(`${i}`, sizeOf(i)));
    }
    writeFileSync(join(tmp, 'image.yaml'), `apiVersion: imgbuild/v1
name: bench/gen
from: scratch
platforms: [linux/amd64]
context: .
defaults: { owner: "0:0" }
layers:
  - name: tree
    copy:
      - { from: tree/, to: /tree/ }
output:
  - oci: ./out
`);
    writeFileSync(join(tmp, '.done'), '');
    renameSync(tmp, dir);
  }
  const c = countFiles(join(dir, 'tree'));
  return { dir, spec: join(dir, 'image.yaml'), summary: `${c.files} files, ${mb(c.bytes)}` };
}
