/**
 * Showing a plan to people: a terminal summary, a Markdown table for pull requests, and the
 * plan itself as JSON for machines (stable: the same inputs print the same bytes).
 */
import { relative } from 'node:path';
import type { BaseRef, BuildPlan, FileEntry, LayerPlan, LayerSummary, OutputTarget } from './types.js';

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) [v, u] = [v / 1000, u + 1];
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export const shortDigest = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);

export function describeBase(b: BaseRef): string {
  switch (b.kind) {
    case 'scratch':
      return 'scratch';
    case 'registry':
      return b.ref;
    case 'oci':
      return `oci:${b.path}${b.tag ? `:${b.tag}` : ''}`;
    case 'docker-archive':
      return `docker-archive:${b.path}${b.tag ? `:${b.tag}` : ''}`;
  }
}

export function describeOutput(o: OutputTarget, cwd = process.cwd()): string {
  return o.kind === 'registry' ? `registry ${o.ref}` : `${o.kind} ${relative(cwd, o.path) || '.'}`;
}

export function largestFiles(layer: LayerPlan, n: number): FileEntry[] {
  return layer.entries.filter((e): e is FileEntry => e.type === 'file').sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : 1)).slice(0, n);
}

const platformName = (p: BuildPlan['platforms'][number]) => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

/** The image config as [what, value] pairs: env by name only (values may be secrets). */
function configFields(plan: BuildPlan): [string, string][] {
  const c = plan.config;
  const out: [string, string][] = [];
  if (c.Entrypoint) out.push(['entrypoint', JSON.stringify(c.Entrypoint)]);
  if (c.Cmd) out.push(['cmd', JSON.stringify(c.Cmd)]);
  if (c.User) out.push(['user', c.User]);
  if (c.WorkingDir) out.push(['workdir', c.WorkingDir]);
  if (c.ExposedPorts) out.push(['ports', Object.keys(c.ExposedPorts).join(', ')]);
  if (c.Volumes) out.push(['volumes', Object.keys(c.Volumes).join(', ')]);
  if (c.Env) out.push(['env', c.Env.map((e) => e.split('=')[0]).join(', ')]);
  if (c.Labels) out.push(['labels', Object.keys(c.Labels).join(', ')]);
  if (c.StopSignal) out.push(['stop signal', c.StopSignal]);
  return out;
}

/** "1 file", "2 files". */
export const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

/** The paths a layer deletes from the layers below (its `remove:`). */
const removedBy = (layer: LayerPlan) => layer.entries.filter((e) => e.type === 'whiteout').map((e) => `/${e.path}`);

export function renderPlanText(plan: BuildPlan): string {
  const width = Math.max(...plan.layers.map((l) => l.name.length), 5);
  const lines = [
    `plan for ${plan.name} (${relative(process.cwd(), plan.specFile)})`,
    `  base        ${describeBase(plan.base)}`,
    `  platforms   ${plan.platforms.map(platformName).join(', ')}`,
    `  tags        ${plan.tags.join(', ')}`,
    `  layers      ${plan.compression.algorithm}${plan.compression.algorithm === 'none' ? '' : ` level ${plan.compression.level}`}, mtime ${new Date(plan.epoch * 1000).toISOString()}`,
  ];
  plan.layers.forEach((l, i) => {
    lines.push(`    ${String(i + 1).padStart(2)}  ${l.name.padEnd(width)}  ${String(l.files).padStart(6)} ${l.files === 1 ? 'file ' : 'files'}  ${bytesText(l.bytes).padStart(9)}  key ${l.cacheKey ? shortDigest(l.cacheKey) : 'after build'}`);
    for (const f of largestFiles(l, 3)) lines.push(`        ${' '.repeat(width)}  ${formatBytes(f.size).padStart(9)}  /${f.path}`);
    for (const path of removedBy(l)) lines.push(`        ${' '.repeat(width)}  ${'removes'.padStart(9)}  ${path}`);
  });
  lines.push(`  total       ${plural(plan.layers.reduce((n, l) => n + l.files, 0), 'file')}, ${bytesText(totalBytes(plan.layers))} before compression`);
  for (const [what, value] of configFields(plan)) lines.push(`  config      ${what} ${value}`);
  for (const o of plan.outputs) lines.push(`  output      ${describeOutput(o)}`);
  return lines.join('\n');
}

/** A layer's bytes, or "after build" while the layer writer has yet to read its files' sizes (see FROM_FILE). */
const bytesText = (bytes: number | undefined) => (bytes === undefined ? 'after build' : formatBytes(bytes));

/** The layers' bytes together; undefined if any layer's are not known yet. */
export function totalBytes(layers: readonly LayerSummary[]): number | undefined {
  let total = 0;
  for (const l of layers) {
    if (l.bytes === undefined) return undefined;
    total += l.bytes;
  }
  return total;
}

/**
 * A code span holding `s` as it is, whatever it holds: fenced with more backticks than any run
 * of them in it, and (in a table cell) with its pipes escaped, which GitHub reads inside code too.
 */
export function code(s: string, inTable = false): string {
  const longest = Math.max(0, ...(s.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const body = inTable ? s.replace(/\|/g, '\\|') : s;
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${body}${pad}${fence}`;
}

/** At most `n` of `items`, and how many more there are. */
const some = (items: string[], n: number) => (items.length > n ? [...items.slice(0, n), `and ${items.length - n} more`] : items);

export function renderPlanMarkdown(plan: BuildPlan): string {
  const rows = plan.layers.map((l, i) => {
    const big = largestFiles(l, 1)[0];
    return `| ${i + 1} | ${code(l.name, true)} | ${l.files} | ${bytesText(l.bytes)} | ${l.cacheKey ? code(shortDigest(l.cacheKey), true) : 'after build'} | ${big ? `${code(`/${big.path}`, true)} (${formatBytes(big.size)})` : ''} |`;
  });
  const total = `| | **total** | ${plan.layers.reduce((n, l) => n + l.files, 0)} | ${bytesText(totalBytes(plan.layers))} | | |`;
  const removals = plan.layers.flatMap((l) => {
    const paths = removedBy(l);
    return paths.length ? [`- layer ${code(l.name)} removes ${some(paths.map((p) => code(p)), 5).join(', ')}`] : [];
  });
  return [
    `### Image plan: ${code(plan.name)}`,
    '',
    `Base ${code(describeBase(plan.base))} · platforms ${plan.platforms.map((p) => code(platformName(p))).join(', ')} · tags ${plan.tags.map((t) => code(t)).join(', ')}`,
    '',
    '| # | layer | files | size | cache key | largest file |',
    '|---|---|---:|---:|---|---|',
    ...rows,
    total,
    '',
    ...removals,
    ...configFields(plan).map(([what, value]) => `- ${what} ${code(value)}`),
    ...plan.outputs.map((o) => `- output ${code(describeOutput(o))}`),
  ].join('\n');
}

export function renderPlanJson(plan: BuildPlan): string {
  return JSON.stringify(plan, null, 2);
}
