/**
 * Platforms: writing them in one member order (so index bytes are stable), naming them for
 * messages ("linux/arm64/v8"), and choosing the right manifest from an index the way container
 * engines do (arm64 means arm64/v8 unless told otherwise; a request without a variant takes any).
 */
import { ImgbuildError, usageError } from '../errors.js';
import { isIndexMediaType } from './media-types.js';
import type { Descriptor, Platform } from './types.js';

/** A platform with members in a fixed order and empty ones left out. */
export function canonicalPlatform(p: Platform): Platform {
  return {
    architecture: p.architecture,
    os: p.os,
    ...(p['os.version'] ? { 'os.version': p['os.version'] } : {}),
    ...(p.variant ? { variant: p.variant } : {}),
  };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

// Names some images use for the OCI architectures.
const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', armhf: 'arm', i386: '386' };
// As containerd reads them: arm64 without a variant is v8, arm without one is v7.
const DEFAULT_VARIANT: Record<string, string> = { arm64: 'v8', arm: 'v7' };

const archOf = (p: Platform) => ARCH_ALIASES[p.architecture] ?? p.architecture;

function variantOf(p: Platform): string | undefined {
  return p.variant || DEFAULT_VARIANT[archOf(p)];
}

/** One name for each platform an engine tells apart: "linux/arm64" and "linux/arm64/v8" are one. */
export function platformKey(p: Platform): string {
  const variant = variantOf(p);
  return formatPlatform({ os: p.os, architecture: archOf(p), ...(variant ? { variant } : {}) });
}

/** Does `candidate` (from an index or a config) satisfy `wanted` (from the spec)? */
export function platformMatches(wanted: Platform, candidate: Platform | undefined): boolean {
  if (!candidate || wanted.os !== candidate.os || archOf(wanted) !== archOf(candidate)) return false;
  if (!wanted.variant) return true;
  return variantOf(wanted) === variantOf(candidate);
}

/**
 * Is an image whose config says `config` one for `wanted`? As `platformMatches`, but a config
 * without a variant fits any: the variant is optional there (image-spec config.md), and the index
 * entry that chose the image (linux/arm/v7 over a config of plain arm) says which it is.
 */
export function configMatches(wanted: Platform, config: { os?: string; architecture?: string; variant?: string | undefined }): boolean {
  if (!config.os || !config.architecture) return true;
  const candidate: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
  return platformMatches(config.variant ? wanted : { os: wanted.os, architecture: wanted.architecture }, candidate);
}

/**
 * The entry that best fits `wanted`, as engines choose: one of the very variant asked for (or
 * its default: plain arm is arm/v7) over others that fit, whatever the index's order; an index
 * listing arm/v6 before arm/v7 gives v7 to a request for linux/arm.
 */
export function bestMatch<T extends { platform?: Platform | undefined }>(entries: readonly T[], wanted: Platform): T | undefined {
  const fitting = entries.filter((e) => platformMatches(wanted, e.platform));
  return fitting.find((e) => variantOf(e.platform!) === variantOf(wanted)) ?? fitting[0];
}

/** An index (and the indexes it holds) offers no image for the platform asked for. */
export class PlatformNotOffered extends ImgbuildError {
  constructor(what: string, platform: Platform, offered: readonly string[]) {
    super('usage', `${what} has no image for platform ${formatPlatform(platform)}`, offered.length ? `it offers: ${offered.join(', ')}` : 'it lists no platforms');
  }
}

/** The entry of an index for `platform`, or a usage error listing what the index offers. */
export function selectPlatform(manifests: readonly Descriptor[], platform: Platform, what: string): Descriptor {
  const found = bestMatch(manifests, platform);
  if (found) return found;
  throw new PlatformNotOffered(what, platform, [...new Set(manifests.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : [])))]);
}

/** What `followIndex` reads of an entry: the document, and its entries when it is an index. */
export interface IndexStep<T> {
  doc: T;
  entries?: readonly Descriptor[];
}

/**
 * Follow an index to the document for `wanted`: its best match, else, in order, each entry that
 * is itself an index naming no platform (an index of indexes), until one holds `wanted`, as
 * containerd does; a few levels deep at most. A usage error lists every platform seen when none
 * does.
 */
export async function followIndex<T>(entries: readonly Descriptor[], wanted: Platform, read: (d: Descriptor) => Promise<IndexStep<T>>, what: string, seen = new Set<string>(), depth = 0): Promise<T> {
  for (const e of entries) if (e.platform) seen.add(formatPlatform(e.platform));
  const best = bestMatch(entries, wanted);
  for (const d of best ? [best] : entries.filter((e) => !e.platform && isIndexMediaType(e.mediaType))) {
    const step = await read(d);
    if (!step.entries) return step.doc;
    if (depth >= 3) throw usageError(`${what} nests indexes too deeply`);
    try {
      return await followIndex(step.entries, wanted, read, what, seen, depth + 1);
    } catch (e) {
      if (!(e instanceof PlatformNotOffered) || best) throw e;
    }
  }
  throw new PlatformNotOffered(what, wanted, [...seen]);
}
