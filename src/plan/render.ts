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

const octal = (mode: number) => mode.toString(8).padStart(4, '0');

/**
 * What a reviewer must not miss in a layer, and a changed mode or owner would otherwise show only
 * as a new cache key: setuid, setgid and world-writable entries (with their modes), symlinks
 * (where they point), and owners other than root (with how many entries each has).
 */
export interface Notable {
  modes: { path: string; mode: string; why: string }[];
  links: { path: string; target: string }[];
  owners: { owner: string; entries: number }[];
}

export function notable(layer: LayerPlan): Notable {
  const out: Notable = { modes: [], links: [], owners: [] };
  const owners = new Map<string, number>();
  for (const e of layer.entries) {
    if (e.type === 'whiteout') continue;
    const why = [e.mode & 0o4000 ? 'setuid' : '', e.mode & 0o2000 ? 'setgid' : '', e.type !== 'symlink' && e.mode & 0o002 ? 'world-writable' : ''].filter(Boolean).join(', ');
    if (why) out.modes.push({ path: `/${e.path}`, mode: octal(e.mode), why });
    if (e.type === 'symlink') out.links.push({ path: `/${e.path}`, target: e.target });
    const owner = `${e.uid}:${e.gid}`;
    if (owner !== '0:0') owners.set(owner, (owners.get(owner) ?? 0) + 1);
  }
  out.owners = [...owners].map(([owner, entries]) => ({ owner, entries }));
  return out;
}

/** The lock file beside the spec, as a reviewer needs it: what it pins, or why it no longer fits. */
export interface BaseLock {
  file: string;
  /** Pinned manifest digest by platform ("linux/amd64"). */
  digests: Readonly<Record<string, string>>;
  /** Why it does not fit the spec (the base or a platform changed); undefined when it fits. */
  stale?: string;
}

/** What the lock says of the base, in words; undefined for scratch without a lock. */
function lockText(plan: BuildPlan, lock: BaseLock | undefined, show: (s: string) => string): string | undefined {
  const file = lock && show(relative(process.cwd(), lock.file) || lock.file);
  if (!lock) return plan.base.kind === 'scratch' ? undefined : 'not pinned: no lock file (`imgbuild lock` writes one)';
  if (lock.stale) return `${file} is stale: ${lock.stale}`;
  const pins = Object.entries(lock.digests).map(([p, d]) => `${p} ${show(d)}`);
  return pins.length ? `pinned by ${file}: ${pins.join(', ')}` : undefined;
}

export function renderPlanText(plan: BuildPlan, lock?: BaseLock): string {
  const width = Math.max(...plan.layers.map((l) => l.name.length), 5);
  const pinned = lockText(plan, lock, (s) => s);
  const lines = [
    `plan for ${plan.name} (${relative(process.cwd(), plan.specFile)})`,
    `  base        ${oneLine(describeBase(plan.base))}${pinned ? `, ${pinned}` : ''}`,
    `  platforms   ${plan.platforms.map(platformName).join(', ')}`,
    `  tags        ${plan.tags.join(', ') || '(none: by digest only)'}`,
    `  layers      ${plan.compression.algorithm}${plan.compression.algorithm === 'none' ? '' : ` level ${plan.compression.level}`}, mtime ${new Date(plan.epoch * 1000).toISOString()}`,
  ];
  plan.layers.forEach((l, i) => {
    lines.push(`    ${String(i + 1).padStart(2)}  ${l.name.padEnd(width)}  ${String(l.files).padStart(6)} ${l.files === 1 ? 'file ' : 'files'}  ${bytesText(l.bytes).padStart(9)}  key ${l.cacheKey ? shortDigest(l.cacheKey) : 'after build'}`);
    for (const f of largestFiles(l, 3)) lines.push(`        ${' '.repeat(width)}  ${formatBytes(f.size).padStart(9)}  ${oneLine(`/${f.path}`)}`);
    for (const path of removedBy(l)) lines.push(`        ${' '.repeat(width)}  ${'removes'.padStart(9)}  ${oneLine(path)}`);
    const n = notable(l);
    const note = (what: string, text: string) => lines.push(`        ${' '.repeat(width)}  ${what.padStart(9)}  ${text}`);
    for (const text of some(n.modes.map((m) => `${oneLine(m.path)} ${m.mode} (${m.why})`), 10)) note('mode', text);
    for (const text of some(n.links.map((k) => `${oneLine(k.path)} -> ${oneLine(k.target)}`), 5)) note('symlink', text);
    for (const o of n.owners) note('owner', `${o.owner} (${o.entries} ${o.entries === 1 ? 'entry' : 'entries'})`);
  });
  lines.push(`  total       ${plural(plan.layers.reduce((n, l) => n + l.files, 0), 'file')}, ${bytesText(totalBytes(plan.layers))} before compression`);
  for (const [what, value] of configFields(plan)) lines.push(`  config      ${what} ${oneLine(value)}`);
  for (const o of plan.outputs) lines.push(`  output      ${oneLine(describeOutput(o))}`);
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
 * `s` on one line: a name holding a line break or another control character (a file in the
 * context may be called "a\nb") is shown quoted with its escapes, as JSON writes it; as it is,
 * it broke a Markdown table's row in two and passed for two entries in the terminal.
 */
export const oneLine = (s: string) => (/[\u0000-\u001f\u007f]/.test(s) ? JSON.stringify(s) : s);

/**
 * A code span holding `s` as it is, whatever it holds: fenced with more backticks than any run
 * of them in it, and (in a table cell) with its pipes escaped, which GitHub reads inside code too;
 * on one line (`oneLine`).
 */
export function code(text: string, inTable = false): string {
  const s = oneLine(text);
  const longest = Math.max(0, ...(s.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const body = inTable ? s.replace(/\|/g, '\\|') : s;
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${body}${pad}${fence}`;
}

/** At most `n` of `items`, and how many more there are. */
const some = (items: string[], n: number) => (items.length > n ? [...items.slice(0, n), `and ${items.length - n} more`] : items);

export function renderPlanMarkdown(plan: BuildPlan, lock?: BaseLock): string {
  const pinned = lockText(plan, lock, (s) => code(s));
  const rows = plan.layers.map((l, i) => {
    const big = largestFiles(l, 1)[0];
    return `| ${i + 1} | ${code(l.name, true)} | ${l.files} | ${bytesText(l.bytes)} | ${l.cacheKey ? code(shortDigest(l.cacheKey), true) : 'after build'} | ${big ? `${code(`/${big.path}`, true)} (${formatBytes(big.size)})` : ''} |`;
  });
  const total = `| | **total** | ${plan.layers.reduce((n, l) => n + l.files, 0)} | ${bytesText(totalBytes(plan.layers))} | | |`;
  const removals = plan.layers.flatMap((l) => {
    const paths = removedBy(l);
    return paths.length ? [`- layer ${code(l.name)} removes ${some(paths.map((p) => code(p)), 5).join(', ')}`] : [];
  });
  const notes = plan.layers.flatMap((l) => {
    const n = notable(l);
    return [
      // A tree unpacked with 0777 everywhere is one finding, not thousands of lines.
      ...some(n.modes.map((m) => `**${m.why}** ${code(m.path)} (${m.mode})`), 10).map((text) => `- layer ${code(l.name)}: ${text}`),
      ...(n.links.length ? [`- layer ${code(l.name)} links ${some(n.links.map((k) => `${code(k.path)} → ${code(k.target)}`), 5).join(', ')}`] : []),
      ...(n.owners.length ? [`- layer ${code(l.name)} owners ${n.owners.map((o) => `${code(o.owner)} (${o.entries})`).join(', ')}`] : []),
    ];
  });
  return [
    `### Image plan: ${code(plan.name)}`,
    '',
    `Base ${code(describeBase(plan.base))}${pinned ? `, ${lock?.stale ? `**${pinned}**` : pinned}` : ''} · platforms ${plan.platforms.map((p) => code(platformName(p))).join(', ')} · tags ${plan.tags.map((t) => code(t)).join(', ') || '(none: by digest only)'}`,
    '',
    '| # | layer | files | size | cache key | largest file |',
    '|---|---|---:|---:|---|---|',
    ...rows,
    total,
    '',
    ...removals,
    ...notes,
    ...configFields(plan).map(([what, value]) => `- ${what} ${code(value)}`),
    ...plan.outputs.map((o) => `- output ${code(describeOutput(o))}`),
  ].join('\n');
}

/** The plan as data, with `lock`: what the lock file pins (or that it is stale), null without one. */
export function renderPlanJson(plan: BuildPlan, lock?: BaseLock): string {
  return JSON.stringify({ ...plan, lock: lock ?? null }, null, 2);
}
