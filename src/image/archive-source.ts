/**
 * Reading a docker archive (`docker save` output, classic or Docker 25+ with OCI blobs inside,
 * plain or gzipped) as a base image: `docker-archive:FILE`. The tar is read in place with
 * tar-stream: one pass hashes every entry, then each layer is streamed from the tar when asked.
 * Every blob is checked: against the digest its path names, against the config's diff_ids, and,
 * when read, against the digest of the first pass, so a damaged archive is refused.
 */
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { buildError, usageError } from '../errors.js';
import { blobImage } from './blob-image.js';
import { canonicalJson } from './canonical-json.js';
import { digestHex, isDigest, sha256, type Digest } from './digest.js';
import { MediaType } from './media-types.js';
import { parseConfig, parseIndex, parseManifest } from './parse.js';
import { configMatches, formatPlatform } from './platform.js';
import { openTarEntry, scanTar, type TarEntryInfo, type TarScan } from './tar-scan.js';
import type { Descriptor, Image, ImageManifest, Platform } from './types.js';
import { corruptBlob, verifyingStream } from './verify.js';

interface ArchiveManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

const LAYER_TYPE = { gzip: MediaType.ociLayerGzip, zstd: MediaType.ociLayerZstd, none: MediaType.ociLayer } as const;

export interface ArchiveOpenOptions {
  /** A RepoTag in the archive ("app:1.0"); needed when it holds several images. */
  tag?: string;
  platform?: Platform;
}

export async function openArchiveImage(file: string, opts: ArchiveOpenOptions = {}): Promise<Image> {
  const label = `docker-archive:${file}`;
  const scan = await scanTar(file, label);
  const entry = chooseEntry(readArchiveManifest(scan, label), opts.tag, label);
  const configInfo = lookup(scan, entry.Config, label);
  if (!configInfo.json) throw buildError(`${label}: config ${entry.Config} is not a JSON document`);
  checkNamedDigest(configInfo, label);
  const config = parseConfig(configInfo.json, `${label} config`);
  if (opts.platform && !configMatches(opts.platform, config)) {
    throw usageError(`${label} is for ${formatPlatform(config)}, not ${formatPlatform(opts.platform)}`);
  }
  if (config.rootfs.diff_ids.length !== entry.Layers.length) {
    throw buildError(`${label}: manifest.json lists ${entry.Layers.length} layers but the config has ${config.rootfs.diff_ids.length} diff_ids`);
  }
  const infos = entry.Layers.map((path, i) => checkLayer(lookup(scan, path, label), config.rootfs.diff_ids[i] as Digest, label));
  const own = ownManifest(scan, configInfo, infos, label);
  const manifest = own?.manifest ?? ociManifest(configInfo, infos);
  const rawManifest = own?.raw ?? canonicalJson(manifest);
  const byDigest = new Map(infos.map((info) => [info.digest, info]));
  const openLayer = (d: Descriptor) => openLayerBlob(file, byDigest.get(d.digest) as TarEntryInfo, label);
  return blobImage({ rawManifest, manifest, rawConfig: configInfo.json, config, label, openLayer });
}

function readArchiveManifest(scan: TarScan, label: string): ArchiveManifestEntry[] {
  const info = scan.files.get('manifest.json');
  if (!info?.json) throw usageError(`${label} is not a docker archive: it has no manifest.json`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(info.json).toString('utf8'));
  } catch {
    throw buildError(`${label}: manifest.json is not valid JSON`);
  }
  const ok = (e: unknown) => {
    const m = e as ArchiveManifestEntry;
    return typeof m?.Config === 'string' && Array.isArray(m.Layers) && m.Layers.every((l) => typeof l === 'string');
  };
  if (!Array.isArray(value) || !value.every(ok)) throw buildError(`${label}: manifest.json is not a list of {Config, Layers}`);
  return value as ArchiveManifestEntry[];
}

function chooseEntry(entries: ArchiveManifestEntry[], tag: string | undefined, label: string): ArchiveManifestEntry {
  const tags = entries.flatMap((e) => e.RepoTags ?? []);
  const found = tag === undefined ? entries : entries.filter((e) => (e.RepoTags ?? []).some((t) => tagMatches(t, tag)));
  if (found.length === 1) return found[0] as ArchiveManifestEntry;
  const known = tags.length > 0 ? `; it has ${tags.join(', ')}` : '';
  if (found.length === 0) throw usageError(`${label} holds no image${tag ? ` tagged ${tag}` : ''}${known}`);
  throw usageError(`${label} holds ${found.length} images${known}`, `name the one to use by its tag: docker-archive:FILE:${tags[0] ?? 'repo:tag'}`);
}

// As skopeo and docker read references: "docker.io/library/app:1" is "app:1", and "t/app" is "t/app:latest".
function tagMatches(repoTag: string, wanted: string): boolean {
  return familiar(repoTag) === familiar(wanted);
}

function familiar(ref: string): string {
  const short = ref.replace(/^(?:docker\.io|index\.docker\.io)\/(?:library\/(?=[^/]+$))?/, '');
  return short.slice(short.lastIndexOf('/') + 1).includes(':') ? short : `${short}:latest`;
}

function lookup(scan: TarScan, path: string, label: string, depth = 0): TarEntryInfo {
  const name = posix.normalize(path).replace(/^(\.\/)+/, '');
  const info = scan.files.get(name);
  if (info) return info;
  const target = scan.links.get(name);
  if (target !== undefined && depth < 4) return lookup(scan, posix.join(posix.dirname(name), target), label, depth + 1);
  throw buildError(`${label}: manifest.json names ${path}, which the archive does not hold`);
}

/** Paths like blobs/sha256/<hex> and <hex>.json name the digest of their bytes. */
function checkNamedDigest(info: TarEntryInfo, label: string): void {
  const m = /(?:^|\/)(?:sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(info.name);
  const named = m ? `sha256:${m[1]}` : undefined;
  if (named && isDigest(named) && named !== info.digest) throw corruptBlob(`${label} ${info.name}`, named, info.digest);
}

function checkLayer(info: TarEntryInfo, diffId: Digest, label: string): TarEntryInfo {
  if (info.name.startsWith('blobs/')) checkNamedDigest(info, label);
  const uncompressed = info.compression === 'none' ? info.digest : info.uncompressedDigest;
  // zstd cannot be expanded here (Node 20), so only its name and its read-time digest check it.
  if (info.compression !== 'zstd' && uncompressed !== diffId) {
    throw corruptBlob(`${label} layer ${info.name} (its uncompressed tar)`, diffId, uncompressed ?? sha256('unreadable gzip'));
  }
  return info;
}

/**
 * The archive's own manifest of this image, when it holds one: Docker 25+ and imgbuild write an
 * OCI `index.json` beside `manifest.json`, and the manifest blobs it names. Its digest is the
 * image's, as a registry or an OCI layout has it (and a child image records as its base). One
 * that does not name exactly this config and these layers, or cannot be read, is not it.
 */
function ownManifest(scan: TarScan, config: TarEntryInfo, layers: TarEntryInfo[], label: string): { raw: Uint8Array; manifest: ImageManifest } | undefined {
  const index = scan.files.get('index.json')?.json;
  if (!index) return undefined;
  try {
    for (const d of parseIndex(index, `${label} index.json`).manifests) {
      const blob = scan.files.get(`blobs/sha256/${digestHex(d.digest)}`);
      if (!blob?.json || blob.digest !== d.digest) continue;
      const m = parseManifest(blob.json, `${label} manifest ${d.digest}`);
      const same = m.config.digest === config.digest && m.layers.length === layers.length && m.layers.every((l, i) => l.digest === layers[i]!.digest);
      if (same) return { raw: blob.json, manifest: m };
    }
  } catch {
    // Not readable as OCI: the manifest made from manifest.json stands.
  }
  return undefined;
}

/** A manifest made from manifest.json, for an archive without its own (`docker save` before 25). */
function ociManifest(config: TarEntryInfo, layers: TarEntryInfo[]): ImageManifest {
  return {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: LAYER_TYPE[l.compression], digest: l.digest, size: l.size })),
  };
}

async function openLayerBlob(file: string, info: TarEntryInfo, label: string): Promise<Readable> {
  const entry = await openTarEntry(file, info, label);
  const verify = verifyingStream(info.digest, info.size, `${label} layer ${info.name}`);
  entry.on('error', (e) => verify.destroy(e));
  verify.on('close', () => entry.destroy());
  return entry.pipe(verify);
}
