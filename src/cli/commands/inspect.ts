/** `imgbuild inspect <image>`: digest, platform, config and layers of an image anywhere. */
import type { Command } from 'commander';
import type { ImageDescription } from '../../run/inspect.js';
import { formatBytes, shortDigest } from '../../plan/render.js';
import { must, parsePlatform } from '../../spec/parse-values.js';
import { existsSync, statSync } from 'node:fs';
import { ImgbuildError, isImgbuildError, usageError } from '../../errors.js';
import { cacheDirOf, withRegistryOptions } from '../options.js';
import { interruptible } from '../interrupt.js';

function render(d: ImageDescription): string {
  const c = d.config;
  const lines = [
    `${d.source}`,
    `  digest     ${d.digest}`,
    `  platform   ${d.platform}${d.created ? `, created ${d.created}` : ''}`,
    `  size       ${formatBytes(d.size)} (manifest, config and ${d.layers.length === 1 ? '1 layer' : `${d.layers.length} layers`}, compressed)`,
  ];
  if (c.Entrypoint) lines.push(`  entrypoint ${JSON.stringify(c.Entrypoint)}`);
  if (c.Cmd) lines.push(`  cmd        ${JSON.stringify(c.Cmd)}`);
  if (c.User) lines.push(`  user       ${c.User}`);
  if (c.WorkingDir) lines.push(`  workdir    ${c.WorkingDir}`);
  for (const e of c.Env ?? []) lines.push(`  env        ${e}`);
  if (c.ExposedPorts) lines.push(`  ports      ${Object.keys(c.ExposedPorts).join(', ')}`);
  if (c.Volumes) lines.push(`  volumes    ${Object.keys(c.Volumes).join(', ')}`);
  for (const [k, v] of Object.entries(c.Labels ?? {})) lines.push(`  label      ${k}=${v}`);
  if (c.StopSignal) lines.push(`  stopsignal ${c.StopSignal}`);
  for (const l of d.layers) lines.push(`  layer      ${shortDigest(l.digest)}  ${formatBytes(l.size).padStart(9)}  ${l.createdBy ?? ''}`);
  return lines.join('\n');
}

export function registerInspect(program: Command): void {
  withRegistryOptions(program.command('inspect'))
    .argument('<image>', 'a registry reference, oci:DIR[:TAG] or docker-archive:FILE[:REPO:TAG]')
    .description('show an image: manifest digest, platform, config and layers')
    .option('--platform <os/arch>', 'which platform of a multi-platform image (default linux/amd64); a single-platform image is shown whatever it is for, unless this is given')
    .option('--json', 'print JSON')
    .option('--cache-dir <dir>', 'where a registry image\'s manifest and config are kept (default: $IMGBUILD_CACHE_DIR, else $XDG_CACHE_HOME/imgbuild, else ~/.cache/imgbuild)')
    .action(async (source: string, flags: { platform?: string; json?: boolean; insecureRegistry?: string[]; cacheDir?: string }) => {
      const p = flags.platform === undefined ? undefined : parsePlatform(flags.platform);
      if (p && !p.ok) throw usageError(`--platform: ${p.message}`, p.hint);
      const { describeImage } = await import('../../run/inspect.js');
      // Not an event stream even with --json: an interruption is said on stderr only.
      const d = await interruptible(false, () => describeImage(source, p && must(p), flags.insecureRegistry, cacheDirOf(flags))).catch((e: unknown) => {
        // `inspect out/hello` reads as a registry reference (docker.io/library/out/hello).
        if (!isImgbuildError(e) || /^(oci|docker-archive):/.test(source) || !existsSync(source)) throw e;
        throw new ImgbuildError(e.kind, e.message, `${source} is a ${statSync(source).isDirectory() ? 'directory here: for an OCI layout, write oci:' : 'file here: for a docker archive, write docker-archive:'}${source}`);
      });
      process.stdout.write(`${flags.json ? JSON.stringify(d, null, 2) : render(d)}\n`);
    });
}
