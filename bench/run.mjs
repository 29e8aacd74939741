// `npm run bench`: imgbuild against the limit (tar | pigz, tar | gzip) and the peer (buildah),
// measured side by side in one run, each measurement repeated and the median taken. Writes
// bench/results/<date>.md and .json and prints the table. See docs/benchmarks.md.
//
// Environment: BENCH_REPEAT (default 3), BENCH_SCALES (default "1,4,16"), BENCH_CACHE (default
// ~/.cache/imgbuild-bench), BENCH_SKIP_BUILDAH=1, BENCH_SKIP_CORPUS=1.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { homedir, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measure, median, have, EXTRA_CA_CERTS } from './lib/measure.mjs';
import { ensureCorpus, ensureGenerated, changeAppFile } from './lib/corpus.mjs';
import { renderMarkdown } from './lib/report.mjs';
import { watchLatency } from './lib/watch.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(repo, 'dist/bin/imgbuild.cjs');
const layersOnlyScript = join(repo, 'bench/lib/layers-only.mjs');
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const SCALES = (process.env.BENCH_SCALES ?? '1,4,16').split(',').map(Number);
const root = process.env.BENCH_CACHE ?? join(homedir(), '.cache/imgbuild-bench');
const scratch = join(root, 'run');

const rows = [];
const notes = [];

/** A table row from measured runs: the median time and peak RSS, every run kept. */
function addRow(group, name, runs) {
  const cpu = runs.every((r) => r.cpuSeconds !== undefined) ? median(runs.map((r) => r.cpuSeconds)) : undefined;
  const row = { group, name, seconds: median(runs.map((r) => r.seconds)), rssMB: median(runs.map((r) => r.rssMB)), cpuSeconds: cpu, runs };
  rows.push(row);
  process.stderr.write(`  ${group} / ${name}: ${row.seconds.toFixed(2)} s, ${row.rssMB.toFixed(0)} MB\n`);
  return row;
}

/** Run `cmd` REPEAT times, after `before(i)` each time (in `env`: see measure.mjs). */
function bench(group, name, cmd, { before, env } = {}) {
  const runs = [];
  for (let i = 0; i < REPEAT; i++) {
    before?.(i);
    runs.push(measure(cmd, env ? { env } : {}));
  }
  return addRow(group, name, runs);
}

const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
const tarOf = (dir, what) => `tar -C ${q(dir)} --sort=name --mtime=@0 --owner=0 --group=0 -cf - ${what}`;
const apply = (spec, cache) => `node ${q(cli)} apply ${q(spec)} --json --cache-dir ${q(cache)} > /dev/null`;
const wc = (cmd) => Number(execFileSync('bash', ['-c', `${cmd} | wc -c`]).toString().trim());

const warmPageCache = (dir, what) => execFileSync('bash', ['-c', `${tarOf(dir, what)} | cat > /dev/null`]);

/**
 * The limit (tar | pigz -p2 -6) and imgbuild's cold build of the same tree, in turns: pigz,
 * imgbuild, pigz, imgbuild... A machine that slows down or speeds up during the bench (this one
 * does, by 20% and more) then moves both alike, and the headline is the median of the ratios of
 * each turn rather than a ratio of medians taken minutes apart.
 */
function coldTurns(group, dir, what, spec, cache, { layersOnly = false } = {}) {
  // Warm the page cache (this machine evicts it between phases), so every run reads from memory.
  warmPageCache(dir, what);
  const pigzCmd = have('pigz') ? `${tarOf(dir, what)} | pigz -p2 -6 > /dev/null` : undefined;
  const limitRuns = [];
  const coldRuns = [];
  const layerRuns = [];
  for (let i = 0; i < REPEAT; i++) {
    if (pigzCmd) limitRuns.push(measure(pigzCmd));
    // Nothing built before: no cache, and no output layout (one left by the last run holds every
    // blob, which a build then checks instead of writing).
    rmSync(cache, { recursive: true, force: true });
    rmSync(join(dirname(spec), 'out'), { recursive: true, force: true });
    coldRuns.push(measure(apply(spec, cache)));
    if (layersOnly) layerRuns.push(layersOnlyRun(spec, cache));
  }
  const pigz = pigzCmd ? addRow(group, 'limit: tar | pigz -p2 -6', limitRuns) : undefined;
  if (pigz) pigz.bytes = wc(`${tarOf(dir, what)} | pigz -p2 -6`);
  const cold = addRow(group, 'imgbuild: cold build', coldRuns);
  cold.bytes = layerBytes(cache);
  const inTurns = (runs) => (pigz && runs.length ? turnRatios(runs, limitRuns) : undefined);
  if (layerRuns.length) addRow(group, 'imgbuild: cold build, layers only (plan made before the clock starts)', layerRuns);
  return { pigz, cold, vsPigz: inTurns(coldRuns), layersOnlyVsPigz: inTurns(layerRuns) };
}

function turnRatios(runs, limitRuns) {
  const turns = runs.map((r, i) => r.seconds / limitRuns[i].seconds);
  return { value: median(turns), turns };
}

/**
 * A cold build's layer work alone (bench/lib/layers-only.mjs): its own clock, the process's peak
 * RSS. In a cache of its own, so the cold build's cache stays as `apply` left it for the rebuilds.
 */
function layersOnlyRun(spec, cache) {
  const own = `${cache}-layers-only`;
  rmSync(own, { recursive: true, force: true });
  const r = measure(`node ${q(layersOnlyScript)} ${q(spec)} ${q(own)}`);
  rmSync(own, { recursive: true, force: true });
  // Its CPU would count the plan its clock leaves out: none is reported.
  return { ...r, seconds: JSON.parse(r.stdout).seconds, cpuSeconds: undefined };
}

/**
 * Rebuilds of a tree a developer is working on: its files are in the page cache (a no-op right
 * after buildah's run found them evicted and took 3.2 s). The first rebuild after a cold build
 * lists every layer and records its walks (a cold build has no layer keys to record them with);
 * later ones find unchanged layers from those records. The first row times that first rebuild
 * (the records removed before each run), the others what follows it.
 */
async function rebuildRows(group, dir, what, spec, cache, appFile) {
  warmPageCache(dir, what);
  const walks = join(cache, 'walks');
  bench(group, 'imgbuild: first rebuild after a cold build (lists, records walks)', apply(spec, cache), { before: () => rmSync(walks, { recursive: true, force: true }) });
  bench(group, 'imgbuild: no-op rebuild', apply(spec, cache));
  if (process.env[EXTRA_CA_CERTS]) bench(group, `imgbuild: no-op rebuild, ${EXTRA_CA_CERTS} kept`, apply(spec, cache), { env: process.env });
  bench(group, 'imgbuild: one file changed', apply(spec, cache), { before: (i) => changeAppFile(appFile, i) });
  await watchRow(group, spec, cache, appFile);
}

async function watchRow(group, spec, cache, appFile, { name = 'imgbuild: watch, one file changed -> new image', repeat = REPEAT } = {}) {
  try {
    const w = await watchLatency({ cli, spec, cache, repeat, change: (i) => changeAppFile(appFile, 100 + i) });
    const runs = w.seconds.map((seconds) => ({ seconds }));
    const row = { group, name, seconds: median(w.seconds), rssMB: w.rssMB, runs };
    rows.push(row);
    process.stderr.write(`  ${group} / ${name}: ${median(w.seconds).toFixed(2)} s, ${w.rssMB.toFixed(0)} MB\n`);
    return row;
  } catch (e) {
    rows.push({ group, name, todo: `TODO: not measured (${e.message})` });
    return undefined;
  }
}

/** Bytes of the largest blob in the cache: the dependencies layer. */
function layerBytes(cache) {
  const out = execFileSync('bash', ['-c', `ls -S -l ${q(join(cache, 'blobs/sha256'))} | awk 'NR==2{print $5}'`]).toString().trim();
  return Number(out);
}

function buildahRows(group, ctx) {
  if (process.env.BENCH_SKIP_BUILDAH) return void notes.push('buildah: skipped (BENCH_SKIP_BUILDAH set).');
  if (!have('buildah')) return void notes.push('buildah: skipped: not installed (apt-get install -y buildah).');
  const store = join(scratch, 'buildah');
  const b = `buildah --root ${q(join(store, 'root'))} --runroot ${q(join(store, 'runroot'))} --storage-driver vfs`;
  const probe = measure(`${b} info > /dev/null`);
  if (probe.code !== 0) return void notes.push(`buildah: skipped: \`buildah info\` fails here (${probe.stderr.trim().split('\n').pop()}).`);
  const reset = () => {
    execFileSync('bash', ['-c', `${b} rm -a >/dev/null 2>&1; ${b} rmi -a -f >/dev/null 2>&1; rm -rf ${q(store)} ${q(join(scratch, 'buildah-oci'))}`]);
  };
  const bud = `${b} bud --isolation chroot --layers -f ${q(join(ctx, 'Dockerfile'))} -t bench:latest ${q(ctx)} > /dev/null 2>&1`;
  const push = `${b} push bench:latest oci:${q(join(scratch, 'buildah-oci'))}:latest > /dev/null 2>&1`;
  const budRow = bench(group, 'peer: buildah bud (chroot, vfs)', bud, { before: reset });
  const pushRow = bench(group, 'peer: buildah push to oci:', push, { before: () => rmSync(join(scratch, 'buildah-oci'), { recursive: true, force: true }) });
  rows.push({ group, name: 'peer: buildah bud + push', seconds: budRow.seconds + pushRow.seconds, rssMB: Math.max(budRow.rssMB, pushRow.rssMB) });
  const noop = bench(group, 'peer: buildah bud, no-op (layer cache)', bud);
  void noop;
  reset();
}

/**
 * Watch mode's memory on the largest tree: one file changed rebuilds its one big layer while the
 * watcher holds every directory and the plan (the peak RSS target holds for watch mode too).
 * The file is put back afterwards, so the generated tree stays what its generator made.
 */
async function bigWatchRow(group, g, cache) {
  const file = join(g.dir, 'tree/d0/e0/f0.js');
  const original = readFileSync(file);
  try {
    return await watchRow(group, g.spec, cache, file, { name: 'imgbuild: watch, one file changed -> new image (rebuilds the whole layer)', repeat: 1 });
  } finally {
    writeFileSync(file, original);
  }
}

function ratio(a, b) {
  return a && b ? a / b : undefined;
}

async function main() {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first (npm run bench does)`);
  mkdirSync(scratch, { recursive: true });
  const started = Date.now();
  const env = {
    date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model,
    load: loadavg().map((l) => l.toFixed(2)).join(' '), repeat: REPEAT,
    commit: execFileSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD']).toString().trim(),
    extraCaCerts: process.env[EXTRA_CA_CERTS] !== undefined,
  };
  const headline = {};
  if (!process.env.BENCH_SKIP_CORPUS) {
    process.stderr.write('corpus (npm node_modules):\n');
    const c = ensureCorpus(root);
    env.corpus = c.summary;
    const cache = join(scratch, 'corpus-cache');
    const { pigz, cold, vsPigz, layersOnlyVsPigz } = coldTurns('corpus', c.dir, 'node_modules', c.spec, cache, { layersOnly: true });
    await rebuildRows('corpus', c.dir, '.', c.spec, cache, c.appFile);
    bench('corpus', 'limit: tar | gzip -6', `${tarOf(c.dir, 'node_modules')} | gzip -6 > /dev/null`);
    buildahRows('corpus', c.dir);
    const peer = rows.find((r) => r.name === 'peer: buildah bud + push');
    headline.coldVsPigz = vsPigz;
    headline.coldCpuVsPigz = ratio(cold.cpuSeconds, pigz?.cpuSeconds);
    headline.layersOnlyVsPigz = layersOnlyVsPigz;
    headline.sizeVsPigz = ratio(cold.bytes, pigz?.bytes);
    headline.coldVsBuildah = ratio(cold.seconds, peer?.seconds);
  }
  for (const scale of SCALES) {
    process.stderr.write(`generated tree ${scale}x:\n`);
    const g = ensureGenerated(root, scale);
    const group = `generated ${scale}x (${g.summary})`;
    const cache = join(scratch, `gen${scale}-cache`);
    const { cold, vsPigz } = coldTurns(group, g.dir, 'tree', g.spec, cache);
    headline[`cold${scale}xVsPigz`] = vsPigz;
    headline[`rss${scale}xMB`] = cold.rssMB;
    if (scale === Math.max(...SCALES)) headline.rssWatchMB = (await bigWatchRow(group, g, cache))?.rssMB;
  }
  // The memory target's own figure: how much a cold build's peak grows from the smallest tree to the largest.
  if (SCALES.length > 1) headline.rssGrowth = ratio(headline[`rss${Math.max(...SCALES)}xMB`], headline[`rss${Math.min(...SCALES)}xMB`]);
  env.totalSeconds = Math.round((Date.now() - started) / 1000);
  const md = renderMarkdown({ env, rows, notes, headline });
  const outDir = join(repo, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const stamp = env.date.slice(0, 16).replace(':', '-');
  writeFileSync(join(outDir, `${stamp}.md`), md);
  writeFileSync(join(outDir, `${stamp}.json`), `${JSON.stringify({ env, headline, rows, notes }, null, 2)}\n`);
  process.stdout.write(md);
  process.stderr.write(`\nwrote bench/results/${stamp}.md and .json\n`);
}

await main();
