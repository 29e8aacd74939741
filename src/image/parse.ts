/**
 * Parsing the JSON documents of images that come from outside (layouts, archives): manifests,
 * indexes and configs. The checks are structural and strict where a wrong value would become a
 * path or a trusted digest (every digest must be a well-formed sha256; sizes must be whole and
 * non-negative), so a hostile document ends in an ImgbuildError, not in a read outside a layout.
 */
import { buildError, unsupported } from '../errors.js';
import { isDigest, type Digest } from './digest.js';
import { MediaType } from './media-types.js';
import type { Descriptor, ImageConfigFile, ImageIndex, ImageManifest } from './types.js';

/** The largest manifest, index or config imgbuild will read into memory. */
export const MAX_JSON_BLOB = 4 * 1024 * 1024;

type Json = Record<string, unknown>;

export function parseJson(bytes: Uint8Array, label: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw buildError(`${label} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw buildError(`${label} is not a JSON object`);
  }
  return value as Json;
}

export function checkDigest(value: unknown, label: string): Digest {
  if (typeof value === 'string' && isDigest(value)) return value;
  if (typeof value === 'string' && /^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(value)) {
    throw unsupported(`${label} uses the digest ${value}; imgbuild reads sha256 digests only`);
  }
  throw buildError(`${label} has an invalid digest ${JSON.stringify(value)}`);
}

export function checkDescriptor(value: unknown, label: string): Descriptor {
  const d = (value ?? {}) as Json;
  if (typeof d.mediaType !== 'string') throw buildError(`${label} has no mediaType`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw buildError(`${label} has an invalid size ${JSON.stringify(d.size)}`);
  }
  return { ...(d as unknown as Descriptor), digest: checkDigest(d.digest, label) };
}

export function parseManifest(bytes: Uint8Array, label: string): ImageManifest {
  const m = parseJson(bytes, label);
  if (m.schemaVersion !== 2) throw unsupported(`${label} has schemaVersion ${String(m.schemaVersion)}; only 2 is supported`);
  if (!Array.isArray(m.layers)) throw buildError(`${label} has no layers list`);
  return {
    ...(m as unknown as ImageManifest),
    mediaType: typeof m.mediaType === 'string' ? m.mediaType : MediaType.ociManifest,
    config: checkDescriptor(m.config, `${label} config`),
    layers: m.layers.map((l, i) => checkDescriptor(l, `${label} layer ${i}`)),
  };
}

export function parseIndex(bytes: Uint8Array, label: string): ImageIndex {
  const m = parseJson(bytes, label);
  if (m.schemaVersion !== 2) throw unsupported(`${label} has schemaVersion ${String(m.schemaVersion)}; only 2 is supported`);
  if (!Array.isArray(m.manifests)) throw buildError(`${label} has no manifests list`);
  return { ...(m as unknown as ImageIndex), manifests: m.manifests.map((d, i) => checkDescriptor(d, `${label} entry ${i}`)) };
}

export function parseConfig(bytes: Uint8Array, label: string): ImageConfigFile {
  const c = parseJson(bytes, label);
  const rootfs = (c.rootfs ?? {}) as Json;
  if (!Array.isArray(rootfs.diff_ids)) throw buildError(`${label} has no rootfs.diff_ids`);
  if (typeof c.os !== 'string' || typeof c.architecture !== 'string') throw buildError(`${label} has no os or architecture`);
  const diffIds = rootfs.diff_ids.map((d, i) => checkDigest(d, `${label} diff_id ${i}`));
  return { ...(c as unknown as ImageConfigFile), config: (c.config ?? {}) as ImageConfigFile['config'], rootfs: { type: 'layers', diff_ids: diffIds } };
}
