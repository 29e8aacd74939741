/**
 * Reading a tar file (plain or gzip-compressed) with tar-stream, never extracting it to disk.
 * `scanTar` reads it once, hashing every entry and keeping small JSON entries in memory;
 * `openTarEntry` streams one entry's bytes by reading the tar again from the start, the way
 * go-containerregistry's tarball source does, so memory stays flat however big the layers are.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { buildError, isImgbuildError, usageError } from '../errors.js';
import { digestOf, type Digest } from './digest.js';
import { MAX_JSON_BLOB } from './parse.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface TarEntryInfo {
  name: string;
  size: number;
  digest: Digest;
  compression: Compression;
  /** sha256 of the gunzipped bytes, when the entry is gzip. */
  uncompressedDigest?: Digest;
  /** The bytes, for small entries that look like JSON. */
  json?: Uint8Array;
  /** Where the bytes start in the file, when the tar is not compressed (a direct read). */
  dataOffset?: number;
}

export interface TarScan {
  files: Map<string, TarEntryInfo>;
  /** Symbolic links, name -> target, as old `docker save` writes for repeated layers. */
  links: Map<string, string>;
}

/** Entry names without "./" prefixes, so "./manifest.json" and "manifest.json" are one. */
export const cleanName = (n: string) => n.replace(/^(\.\/)+/, '').replace(/\/+$/, '');

export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

async function tarInput(file: string, label: string): Promise<{ stream: Readable; compressed: boolean }> {
  const fh = await open(file).catch((e: NodeJS.ErrnoException) => {
    // A path that names nothing is the spec's or the command line's to fix, as a missing layout is.
    if (e.code === 'ENOENT') throw usageError(`${label}: ${file} does not exist`);
    throw buildError(`${label}: cannot read ${file}: ${e.code ?? e.message}`);
  });
  const head = Buffer.alloc(2);
  await fh.read(head, 0, 2, 0).catch((e: NodeJS.ErrnoException) => {
    // A directory opens, but does not read: a file was meant.
    if (e.code === 'EISDIR') throw usageError(`${label}: ${file} is a directory, not an archive file`);
    throw buildError(`${label}: cannot read ${file}: ${e.code ?? e.message}`);
  }).finally(() => fh.close());
  const raw = createReadStream(file);
  if (sniffCompression(head) !== 'gzip') return { stream: raw, compressed: false };
  const gunzip = createGunzip();
  raw.on('error', (e) => gunzip.destroy(e));
  gunzip.on('close', () => raw.destroy());
  return { stream: raw.pipe(gunzip), compressed: true };
}

export async function scanTar(file: string, label: string): Promise<TarScan> {
  const scan: TarScan = { files: new Map(), links: new Map() };
  const extract = tar.extract();
  const { stream: input, compressed } = await tarInput(file, label);
  input.on('error', (e) => extract.destroy(e));
  input.pipe(extract);
  try {
    for await (const entry of extract) {
      const name = cleanName(entry.header.name);
      if (scan.files.has(name) || scan.links.has(name)) throw buildError(`${label}: the archive holds ${name} twice`);
      if (entry.header.type === 'symlink') scan.links.set(name, entry.header.linkname ?? '');
      if (entry.header.type !== 'file') {
        entry.resume();
        continue;
      }
      const info = await scanEntry(name, entry as unknown as Readable);
      // tar-stream reports where each entry's header starts; the data follows its 512 bytes.
      if (!compressed && typeof entry.offset === 'number') info.dataOffset = entry.offset + 512;
      scan.files.set(name, info);
    }
  } catch (e) {
    input.destroy();
    throw isImgbuildError(e) ? e : buildError(`${label}: not a readable tar archive: ${(e as Error).message}`);
  }
  return scan;
}

async function scanEntry(name: string, entry: Readable): Promise<TarEntryInfo> {
  const hash = createHash('sha256');
  const kept: Buffer[] = [];
  let size = 0;
  let compression: Compression | undefined;
  let gunzip: { stream: ReturnType<typeof createGunzip>; done: Promise<Digest> } | undefined;
  for await (const chunk of entry as AsyncIterable<Buffer>) {
    if (compression === undefined) {
      compression = sniffCompression(chunk);
      if (compression === 'gzip') gunzip = hashGunzipped();
    }
    hash.update(chunk);
    size += chunk.length;
    if (size <= MAX_JSON_BLOB && compression === 'none') kept.push(chunk);
    if (gunzip && !gunzip.stream.write(chunk)) await new Promise((r) => gunzip?.stream.once('drain', r));
  }
  gunzip?.stream.end();
  const info: TarEntryInfo = { name, size, digest: digestOf(hash), compression: compression ?? 'none' };
  if (gunzip) info.uncompressedDigest = await gunzip.done.catch(() => undefined);
  const first = kept[0]?.[0];
  if (size <= MAX_JSON_BLOB && (first === 0x7b || first === 0x5b)) info.json = Buffer.concat(kept);
  return info;
}

// A damaged gzip stream yields no digest rather than an error here: the diff_id check that
// follows then reports the layer as corrupt, with the archive's name.
function hashGunzipped(): { stream: ReturnType<typeof createGunzip>; done: Promise<Digest> } {
  const stream = createGunzip();
  const hash = createHash('sha256');
  const done = new Promise<Digest>((resolve, reject) => {
    stream.on('data', (c: Buffer) => hash.update(c));
    stream.on('end', () => resolve(digestOf(hash)));
    stream.on('error', reject);
  });
  done.catch(() => undefined);
  return { stream, done };
}

/**
 * Stream one entry's bytes; the returned stream ends where the entry ends. Callers check the
 * bytes against the digest of the scan, so a file changed since the scan cannot pass.
 */
export async function openTarEntry(file: string, info: TarEntryInfo, label: string): Promise<Readable> {
  if (info.dataOffset !== undefined) {
    if (info.size === 0) return Readable.from([]);
    return createReadStream(file, { start: info.dataOffset, end: info.dataOffset + info.size - 1 });
  }
  const name = info.name;
  const { stream: input } = await tarInput(file, label);
  const extract = tar.extract();
  return new Promise<Readable>((resolve, reject) => {
    let out: PassThrough | undefined;
    const fail = (e: Error) => (out ? out.destroy(e) : reject(e));
    extract.on('entry', (header, stream, next) => {
      if (out || cleanName(header.name) !== name || header.type !== 'file') {
        stream.on('end', () => next());
        stream.resume();
        return;
      }
      out = new PassThrough();
      out.on('close', () => input.destroy());
      stream.on('error', fail);
      stream.pipe(out);
      resolve(out);
    });
    extract.on('finish', () => out || reject(buildError(`${label}: ${name} vanished from the archive`)));
    extract.on('error', fail);
    input.on('error', fail);
    input.pipe(extract);
  });
}
