/**
 * Reading manifests and indexes that came from a registry, which is input like any other: the
 * JSON is checked for the shape we rely on (schema version, descriptors with sha256 digests and
 * sane sizes) before anything uses it, and platform selection from an index lives here too.
 */
import { ImgbuildError } from '../errors.js';
import { isDigest } from '../image/digest.js';
import { isIndexMediaType, isManifestMediaType } from '../image/media-types.js';
import type { Descriptor, ImageIndex, ImageManifest, Platform } from '../image/types.js';

function malformed(what: string, why: string): never {
  throw new ImgbuildError('registry', `${what} is malformed: ${why}`, 'the registry holds an image imgbuild cannot read');
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    malformed(what, 'it is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) malformed(what, 'it is not a JSON object');
  if ((v as { schemaVersion?: unknown }).schemaVersion !== 2) malformed(what, 'schemaVersion is not 2');
  return v as Record<string, unknown>;
}

function checkDescriptor(d: unknown, what: string): Descriptor {
  const x = d as Partial<Descriptor> | null;
  if (typeof x !== 'object' || x === null) malformed(what, 'a descriptor is not an object');
  if (typeof x.digest !== 'string' || !isDigest(x.digest)) malformed(what, `descriptor digest ${JSON.stringify(x.digest)} is not sha256:<64 hex>`);
  if (typeof x.size !== 'number' || !Number.isSafeInteger(x.size) || x.size < 0) malformed(what, `descriptor ${x.digest} has an invalid size`);
  if (typeof x.mediaType !== 'string') malformed(what, `descriptor ${x.digest} has no mediaType`);
  return x as Descriptor;
}

export function parseManifest(bytes: Uint8Array, mediaType: string, what: string): ImageManifest {
  if (!isManifestMediaType(mediaType)) malformed(what, `media type ${mediaType} is not an image manifest`);
  const v = parseJson(bytes, what);
  checkDescriptor(v.config, what);
  if (!Array.isArray(v.layers)) malformed(what, 'it has no layers list');
  v.layers.forEach((l) => checkDescriptor(l, what));
  return { ...(v as unknown as ImageManifest), mediaType };
}

export function parseIndex(bytes: Uint8Array, mediaType: string, what: string): ImageIndex {
  if (!isIndexMediaType(mediaType)) malformed(what, `media type ${mediaType} is not an image index`);
  const v = parseJson(bytes, what);
  if (!Array.isArray(v.manifests)) malformed(what, 'it has no manifests list');
  v.manifests.forEach((m) => checkDescriptor(m, what));
  return { ...(v as unknown as ImageIndex), mediaType };
}

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', armhf: 'arm', i386: '386' };

export function normalisePlatform(p: Platform): Platform {
  const architecture = ARCH_ALIASES[p.architecture] ?? p.architecture;
  let variant = p.variant;
  // arm64 images usually omit their only variant; arm without one means v7 in practice.
  if (architecture === 'arm64' && variant === undefined) variant = 'v8';
  const out: Platform = { os: p.os, architecture };
  if (variant !== undefined) out.variant = variant;
  return out;
}

export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  const h = normalisePlatform(have);
  const w = normalisePlatform(want);
  if (h.os !== w.os || h.architecture !== w.architecture) return false;
  return want.variant === undefined || h.variant === w.variant;
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** The manifest in `index` for `platform`, or a usage error listing what the index offers. */
export function selectPlatform(index: ImageIndex, platform: Platform, what: string): Descriptor {
  const images = index.manifests.filter((m) => isManifestMediaType(m.mediaType) || isIndexMediaType(m.mediaType));
  const found = images.find((m) => platformMatches(m.platform, platform));
  if (found) return found;
  const offered = images.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).filter((p) => p !== 'unknown/unknown');
  throw new ImgbuildError('usage', `${what} has no image for platform ${formatPlatform(platform)}`,
    offered.length ? `it offers: ${[...new Set(offered)].join(', ')}` : 'it lists no platforms');
}
