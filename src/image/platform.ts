/**
 * Platforms: writing them in one member order (so index bytes are stable), naming them for
 * messages ("linux/arm64/v8"), and choosing the right manifest from an index the way container
 * engines do (arm64 means arm64/v8 unless told otherwise; a request without a variant takes any).
 */
import { usageError } from '../errors.js';
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
const DEFAULT_VARIANT: Record<string, string> = { arm64: 'v8' };

const archOf = (p: Platform) => ARCH_ALIASES[p.architecture] ?? p.architecture;

function variantOf(p: Platform): string | undefined {
  return p.variant || DEFAULT_VARIANT[archOf(p)];
}

/** Does `candidate` (from an index or a config) satisfy `wanted` (from the spec)? */
export function platformMatches(wanted: Platform, candidate: Platform | undefined): boolean {
  if (!candidate || wanted.os !== candidate.os || archOf(wanted) !== archOf(candidate)) return false;
  if (!wanted.variant) return true;
  return variantOf(wanted) === variantOf(candidate);
}

/** The entry of an index for `platform`, or a usage error listing what the index offers. */
export function selectPlatform(manifests: readonly Descriptor[], platform: Platform, what: string): Descriptor {
  const found = manifests.find((m) => platformMatches(platform, m.platform));
  if (found) return found;
  const offered = [...new Set(manifests.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : [])))];
  throw usageError(`${what} has no image for platform ${formatPlatform(platform)}`, offered.length ? `it offers: ${offered.join(', ')}` : 'it lists no platforms');
}
