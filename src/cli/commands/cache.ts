/** `imgbuild cache info` and `imgbuild cache prune`: how much the cache holds, and letting go of what is not used. */
import type { Command } from 'commander';
import { usageError } from '../../errors.js';
import { formatBytes, plural } from '../../plan/render.js';
import type { BlobTotals } from '../../store/prune.js';
import { reportingJson } from '../exit-codes.js';
import { cacheDirOf } from '../options.js';

const CACHE_DIR_HELP = 'cache directory (default: $IMGBUILD_CACHE_DIR, else $XDG_CACHE_HOME/imgbuild, else ~/.cache/imgbuild)';
const DEFAULT_AGE = '7d';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "30m", "12h", "7d", "2w", or "0" (everything). */
export function parseDuration(s: string): number {
  if (s.trim() === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/.exec(s.trim());
  if (!m) throw usageError(`--older-than ${s} is not a duration`, 'e.g. 12h, 7d or 2w (s, m, h, d, w); 0 for every blob');
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/** "500MB", "10GB", "2GiB", "1.5G", or a number of bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(s.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw usageError(`--max-size ${s} is not a size`, 'e.g. 500MB, 10GB or 2GiB');
  return Math.floor(Number(m[1]) * unit);
}

const blobText = (t: BlobTotals) => `${plural(t.count, 'blob')} (${formatBytes(t.bytes)}${t.linkedBytes > 0 ? `, ${formatBytes(t.linkedBytes)} of it also linked from output layouts` : ''})`;

export function registerCache(program: Command): void {
  const cache = program.command('cache').description('show what the cache holds, and prune what builds no longer use');
  cache
    .command('info')
    .description('the cache directory, its blobs (layers and base images) and what has not been used for a while')
    .option('--older-than <age>', `count the blobs not used for this long (default ${DEFAULT_AGE})`)
    .option('--cache-dir <dir>', CACHE_DIR_HELP)
    .option('--json', 'print JSON')
    .action(async (flags: { olderThan?: string; cacheDir?: string; json?: boolean }) => {
      await reportingJson(flags.json, async () => {
        const age = parseDuration(flags.olderThan ?? DEFAULT_AGE);
        const { cacheUsage } = await import('../../store/prune.js');
        const u = await cacheUsage(cacheDirOf(flags), Date.now() - age);
        const lines = [
          `cache    ${u.root}`,
          `  blobs    ${blobText(u.blobs)}`,
          `  unused   ${blobText(u.unused)} not used for ${flags.olderThan ?? DEFAULT_AGE}: \`imgbuild cache prune\` removes them`,
          `  records  ${formatBytes(u.recordBytes)} (layer index, walk and spec records, stat cache)`,
        ];
        process.stdout.write(`${flags.json ? JSON.stringify({ type: 'cache', ...u }) : lines.join('\n')}\n`);
      });
    });
  cache
    .command('prune')
    .description('remove the blobs no build has used for a while (and then the least recently used, down to --max-size): they are built or fetched again when needed')
    .option('--older-than <age>', `remove the blobs not used for this long: 12h, 7d, 2w; 0 removes every one (default ${DEFAULT_AGE})`)
    .option('--max-size <size>', 'then remove the least recently used until the blobs left take at most this much: 500MB, 10GB')
    .option('--dry-run', 'say what would be removed, and remove nothing')
    .option('--cache-dir <dir>', CACHE_DIR_HELP)
    .option('--json', 'print JSON')
    .action(async (flags: { olderThan?: string; maxSize?: string; dryRun?: boolean; cacheDir?: string; json?: boolean }) => {
      await reportingJson(flags.json, async () => {
        const olderThanMs = parseDuration(flags.olderThan ?? DEFAULT_AGE);
        const keepBytes = flags.maxSize === undefined ? undefined : parseSize(flags.maxSize);
        const { pruneCache } = await import('../../store/prune.js');
        const root = cacheDirOf(flags);
        const r = await pruneCache(root, { olderThanMs, ...(keepBytes === undefined ? {} : { keepBytes }), ...(flags.dryRun ? { dryRun: true } : {}) });
        const freed = r.removed.bytes - r.removed.linkedBytes;
        const verb = flags.dryRun ? 'would remove' : 'removed';
        const lines = [
          `${verb} ${blobText(r.removed)} and ${plural(r.records, 'layer record')} from ${root}: ${formatBytes(freed)} ${flags.dryRun ? 'would be freed' : 'freed'}`,
          `kept ${blobText(r.kept)}`,
        ];
        if (r.removed.linkedBytes > 0) lines.push(`(${formatBytes(r.removed.linkedBytes)} stay on disk while output layouts link them)`);
        process.stdout.write(`${flags.json ? JSON.stringify({ type: 'pruned', root, dryRun: flags.dryRun ?? false, ...r, freedBytes: freed }) : lines.join('\n')}\n`);
      });
    });
}
