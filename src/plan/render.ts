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

function configLines(plan: BuildPlan): string[] {
  const c = plan.config;
  const out: string[] = [];
  if (c.Entrypoint) out.push(`entrypoint ${JSON.stringify(c.Entrypoint)}`);
  if (c.Cmd) out.push(`cmd ${JSON.stringify(c.Cmd)}`);
  if (c.User) out.push(`user ${c.User}`);
  if (c.WorkingDir) out.push(`workdir ${c.WorkingDir}`);
  if (c.ExposedPorts) out.push(`ports ${Object.keys(c.ExposedPorts).join(', ')}`);
  if (c.Env) out.push(`env ${c.Env.map((e) => e.split('=')[0]).join(', ')}`);
  return out;
}

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
    lines.push(`    ${String(i + 1).padStart(2)}  ${l.name.padEnd(width)}  ${String(l.files).padStart(6)} files  ${bytesText(l.bytes).padStart(9)}  key ${l.cacheKey ? shortDigest(l.cacheKey) : 'after build'}`);
    for (const f of largestFiles(l, 3)) lines.push(`        ${' '.repeat(width)}  ${formatBytes(f.size).padStart(9)}  /${f.path}`);
  });
  lines.push(`  total       ${plan.layers.reduce((n, l) => n + l.files, 0)} files, ${bytesText(totalBytes(plan.layers))} before compression`);
  for (const c of configLines(plan)) lines.push(`  config      ${c}`);
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

export function renderPlanMarkdown(plan: BuildPlan): string {
  const rows = plan.layers.map((l, i) => {
    const big = largestFiles(l, 1)[0];
    return `| ${i + 1} | \`${l.name}\` | ${l.files} | ${bytesText(l.bytes)} | ${l.cacheKey ? `\`${shortDigest(l.cacheKey)}\`` : 'after build'} | ${big ? `\`/${big.path}\` (${formatBytes(big.size)})` : ''} |`;
  });
  return [
    `### Image plan: \`${plan.name}\``,
    '',
    `Base \`${describeBase(plan.base)}\` · platforms ${plan.platforms.map((p) => `\`${platformName(p)}\``).join(', ')} · tags ${plan.tags.map((t) => `\`${t}\``).join(', ')}`,
    '',
    '| # | layer | files | size | cache key | largest file |',
    '|---|---|---:|---:|---|---|',
    ...rows,
    '',
    ...configLines(plan).map((c) => `- ${c}`),
  ].join('\n');
}

export function renderPlanJson(plan: BuildPlan): string {
  return JSON.stringify(plan, null, 2);
}
