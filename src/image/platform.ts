/**
 * Platforms: writing them in one member order (so index bytes are stable), naming them for
 * messages ("linux/arm64/v8"), and choosing the right manifest from an index the way container
 * engines do (arm64 means arm64/v8 unless told otherwise; a request without a variant takes any).
 */
import type { Platform } from './types.js';

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

const DEFAULT_VARIANT: Record<string, string> = { arm64: 'v8' };

function variantOf(p: Platform): string | undefined {
  return p.variant || DEFAULT_VARIANT[p.architecture];
}

/** Does `candidate` (from an index or a config) satisfy `wanted` (from the spec)? */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  if (wanted.os !== candidate.os || wanted.architecture !== candidate.architecture) return false;
  if (!wanted.variant) return true;
  return variantOf(wanted) === variantOf(candidate);
}
