/**
 * Reading an OCI image layout directory as a base image: `oci:./dir[:tag]`. The tag matches the
 * `org.opencontainers.image.ref.name` annotation; with no tag the layout must hold one image. An
 * index is resolved to the manifest for the wanted platform. Every blob is checked against its
 * digest as it is read, so a damaged layout yields an ImgbuildError, never an image.
 */
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { buildError, usageError } from '../errors.js';
import { blobImage } from './blob-image.js';
import { digestHex, type Digest } from './digest.js';
import { isIndexMediaType, isManifestMediaType } from './media-types.js';
import { MAX_JSON_BLOB, parseConfig, parseIndex, parseJson, parseManifest } from './parse.js';
import { configMatches, followIndex, formatPlatform, platformMatches, type IndexStep } from './platform.js';
import type { Descriptor, Image, Platform } from './types.js';
import { digestInMessage, verifyBytes, verifyingStream } from './verify.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';

export interface LayoutRef {
  path: string;
  tag?: string;
}

/** `oci:DIR` or `oci:DIR:TAG`; a colon after the last slash starts the tag. */
export function parseLayoutRef(ref: string): LayoutRef {
  const body = ref.startsWith('oci:') ? ref.slice(4) : ref;
  const colon = body.lastIndexOf(':');
  if (colon > body.lastIndexOf('/') && colon > 0) {
    const tag = body.slice(colon + 1);
    if (tag === '') throw usageError(`${ref}: the tag after ":" is empty`, 'write oci:DIR or oci:DIR:TAG');
    return { path: body.slice(0, colon), tag };
  }
  if (body === '') throw usageError(`${ref}: no directory given`, 'write oci:DIR or oci:DIR:TAG');
  return { path: body };
}

export interface OpenOptions {
  tag?: string;
  /** The platform being built; required to choose from a multi-platform index. */
  platform?: Platform;
  /** Without `platform`: the one chosen from a multi-platform index (a single image may be any). */
  preferred?: Platform;
}

export async function openLayoutImage(dir: string, opts: OpenOptions = {}): Promise<Image> {
  const label = `oci:${dir}${opts.tag ? `:${opts.tag}` : ''}`;
  await checkLayoutFile(dir, label);
  const index = parseIndex(await readSmall(join(dir, 'index.json'), label), `${label} index.json`);
  const desc = chooseEntry(index.manifests, opts, label);
  return resolveDescriptor(dir, desc, opts.platform, label, opts.preferred);
}

async function checkLayoutFile(dir: string, label: string): Promise<void> {
  if (!existsSync(dir)) throw usageError(`${label}: ${dir} does not exist`, 'build or copy the image there first, or fix the path');
  const bytes = await readSmall(join(dir, 'oci-layout'), label).catch(() => undefined);
  if (!bytes || typeof parseJson(bytes, `${label} oci-layout`).imageLayoutVersion !== 'string') {
    throw usageError(`${label}: ${dir} is not an OCI image layout (no valid oci-layout file)`);
  }
}

function chooseEntry(entries: Descriptor[], opts: OpenOptions, label: string): Descriptor {
  const names = [...new Set(entries.map((d) => d.annotations?.[REF_NAME]).filter(Boolean))];
  const tagged = opts.tag === undefined ? entries : entries.filter((d) => d.annotations?.[REF_NAME] === opts.tag);
  // One image under several tags (latest and dev) is one image: an entry per tag, one digest.
  let found = [...new Map(tagged.map((d) => [d.digest, d])).values()];
  const wanted = opts.platform ?? opts.preferred;
  if (found.length > 1 && wanted) {
    found = found.filter((d) => !d.platform || platformMatches(wanted, d.platform));
  }
  if (found.length === 1) return found[0] as Descriptor;
  const known = names.length > 0 ? `; it has ${names.join(', ')}` : '';
  if (found.length === 0) {
    throw usageError(`${label}: the layout has no image${opts.tag ? ` tagged ${opts.tag}` : ''}${known}`);
  }
  throw usageError(`${label}: the layout holds ${found.length} images${known}`, 'name one as oci:DIR:TAG');
}

async function resolveDescriptor(dir: string, desc: Descriptor, platform: Platform | undefined, label: string, preferred?: Platform): Promise<Image> {
  const wanted = platform ?? preferred;
  if (isIndexMediaType(desc.mediaType)) {
    // An entry as followIndex reads it: an index's own entries, or the image it names.
    const step = async (d: Descriptor): Promise<IndexStep<Descriptor>> => (isIndexMediaType(d.mediaType) ? { doc: d, entries: indexEntries(await readBlob(dir, d, label), d, label) } : { doc: d });
    const { entries } = await step(desc);
    // With a platform: followIndex (an index of indexes included); without one, its only image.
    const chosen = wanted ? await followIndex(entries!, wanted, step, label) : onlyEntry(entries!, label);
    return resolveDescriptor(dir, chosen, platform, label, preferred);
  }
  const raw = await readBlob(dir, desc, label);
  if (!isManifestMediaType(desc.mediaType)) throw buildError(`${label}: unexpected media type ${desc.mediaType}`);
  const manifest = parseManifest(raw, `${label} manifest`);
  const rawConfig = await readBlob(dir, manifest.config, label);
  const config = parseConfig(rawConfig, `${label} config`);
  if (platform && !configMatches(platform, config)) {
    throw usageError(`${label} is for ${formatPlatform(config)}, not ${formatPlatform(platform)}`);
  }
  return blobImage({ rawManifest: raw, manifest, rawConfig, config, label, openLayer: (d) => openBlob(dir, d, label) });
}

/** An index's entries that are images or indexes (not attestations or other artifacts). */
const indexEntries = (raw: Uint8Array, desc: Descriptor, label: string) =>
  parseIndex(raw, `${label} index ${digestInMessage(desc.digest)}`).manifests.filter((d) => isManifestMediaType(d.mediaType) || isIndexMediaType(d.mediaType));

/** The index's one image, when no platform is asked for. */
function onlyEntry(candidates: readonly Descriptor[], label: string): Descriptor {
  if (candidates.length === 1) return candidates[0] as Descriptor;
  const offered = candidates.map((d) => (d.platform ? formatPlatform(d.platform) : '?')).join(', ');
  throw usageError(`${label} is a multi-platform index (${offered}); a platform must be chosen`);
}

function blobPath(dir: string, d: Digest): string {
  return join(dir, 'blobs', 'sha256', digestHex(d));
}

async function readBlob(dir: string, desc: Descriptor, label: string): Promise<Uint8Array> {
  if (desc.size > MAX_JSON_BLOB) throw buildError(`${label}: ${desc.mediaType} ${desc.digest} is too large (${desc.size} bytes)`);
  const bytes = await readSmall(blobPath(dir, desc.digest), label);
  verifyBytes(bytes, desc.digest, desc.size, `${label} blob ${digestInMessage(desc.digest)}`);
  return bytes;
}

async function readSmall(path: string, label: string): Promise<Uint8Array> {
  const fh = await open(path).catch((e: NodeJS.ErrnoException) => {
    throw buildError(`${label}: cannot read ${path}: ${e.code ?? e.message}`);
  });
  try {
    const { size } = await fh.stat();
    if (size > MAX_JSON_BLOB) throw buildError(`${label}: ${path} is too large (${size} bytes)`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

async function openBlob(dir: string, desc: Descriptor, label: string): Promise<Readable> {
  const path = blobPath(dir, desc.digest);
  // Opening first makes a missing blob fail here, with a message, rather than mid-stream.
  const fh = await open(path).catch((e: NodeJS.ErrnoException) => {
    throw buildError(`${label}: layer ${desc.digest} is missing from the layout (${e.code ?? e.message})`);
  });
  const verify = verifyingStream(desc.digest, desc.size, `${label} layer ${digestInMessage(desc.digest)}`);
  const source = fh.createReadStream();
  source.on('error', (e) => verify.destroy(buildError(`${label}: reading ${path}: ${e.message}`)));
  verify.on('close', () => source.destroy());
  return source.pipe(verify);
}

