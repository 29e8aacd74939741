/**
 * Refusing base layers that would write outside the image root (DESIGN promise 5). A layer is
 * read once, decompressed and walked entry by entry: an absolute name, a ".." that climbs, a
 * hard link that points out, or an entry written through a symlink of the same layer makes the
 * base an error. The verdict for a layer digest is remembered by the caller, so each base layer is
 * read at most once per cache. The same read checks what the image says of the layer: its tar
 * must be whole and hash to its diff_id, or the image built on it would be one no runtime
 * unpacks (umoci refuses a diff_id mismatch).
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { buildError, ImgbuildError, unsupported } from '../errors.js';
import { digestOf, type Digest } from './digest.js';
import { MediaType } from './media-types.js';
import { whiteoutTarget } from './whiteout.js';

function decompressor(mediaType: string): Transform | undefined {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.gzip')) return zlib.createGunzip();
  if (mediaType.endsWith('+zstd')) {
    const z = zlib as unknown as { createZstdDecompress?: () => Transform };
    if (!z.createZstdDecompress) throw unsupported(`a base layer is zstd-compressed, which this Node.js cannot read`, 'use Node.js 22.15 or newer, or a gzip base image');
    return z.createZstdDecompress();
  }
  if (mediaType === MediaType.ociLayer || mediaType.endsWith('.tar')) return undefined;
  throw unsupported(`a base layer has the media type ${mediaType}, which imgbuild cannot read`);
}

/** Why a path in a layer is hostile, or undefined. */
export function hostilePath(name: string): string | undefined {
  if (name.startsWith('/')) return 'an absolute path';
  const parts = name.split('/');
  if (parts.includes('..')) return 'a path climbing with ".."';
  // A whiteout deletes the rest of its name: ".wh..." deletes "..", the directory above. The
  // last part is the last one not empty: "x/.wh.../", a directory entry, is the same whiteout.
  const deleted = whiteoutTarget(parts.findLast((part) => part !== '') ?? '');
  if (deleted !== undefined && ['', '.', '..'].includes(deleted)) return `a whiteout of "${deleted}"`;
  return undefined;
}

/** One spelling per path ("a/./l", "a//l/" and "./a/l" are "a/l"), after hostilePath has seen the name as written. */
const clean = (name: string) => posix.normalize(name.replace(/^(\.\/)+/, '')).replace(/\/+$/, '');

function throughSymlink(path: string, links: ReadonlyMap<string, string>): string | undefined {
  for (let cut = path.indexOf('/'); cut > 0; cut = path.indexOf('/', cut + 1)) {
    if (links.has(path.slice(0, cut))) return path.slice(0, cut);
  }
  return undefined;
}

/**
 * What a layer does at paths a layer above may write below: the symlinks it adds (path and
 * target), the directories it adds (which replace a link below; with the mode and owner that a
 * layer above writing one again would change), the paths its whiteouts delete and the
 * directories it empties (`.wh..wh..opq`). Paths are clean ("a/b").
 */
export interface LayerLinks {
  links: [path: string, target: string][];
  dirs: BaseDir[];
  removed: string[];
  emptied: string[];
}

/** `diffId`: what the image's config says the uncompressed tar hashes to. */
export async function checkLayerEntries(blob: Readable, mediaType: string, label: string, diffId?: Digest): Promise<LayerLinks> {
  const found: LayerLinks = { links: [], dirs: [], removed: [], emptied: [] };
  const refuse = (name: string, why: string) =>
    buildError(`${label} holds a hostile entry ${JSON.stringify(name)} (${why})`, 'imgbuild refuses base images whose layers could write outside the image root; use another base');
  // The layer's symlinks so far, path -> target.
  const links = new Map<string, string>();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    // The extract's own error (what the pipeline reports) also destroys the entry in progress.
    stream.on('error', () => undefined);
    stream.resume();
    const name = clean(header.name);
    const why = hostilePath(header.name) ?? (header.type === 'link' && header.linkname ? hostilePath(header.linkname) : undefined);
    const via = throughSymlink(name, links) ?? (header.type === 'link' && header.linkname ? throughSymlink(clean(header.linkname), links) : undefined);
    if (why || via) return next(refuse(header.name, why ?? `written through the symlink ${via}`));
    // A hard link to a symlink is a symlink too (same inode), with the same target.
    const linkedTarget = header.type === 'link' && header.linkname ? links.get(clean(header.linkname)) : undefined;
    if (header.type === 'symlink' || linkedTarget !== undefined) {
      const target = linkedTarget ?? header.linkname ?? '';
      links.set(name, target);
      found.links.push([name, target]);
    } else if (header.type === 'directory') found.dirs.push({ path: name, mode: (header.mode ?? 0o755) & 0o7777, uid: header.uid ?? 0, gid: header.gid ?? 0 });
    const slash = name.lastIndexOf('/');
    const deleted = whiteoutTarget(name.slice(slash + 1));
    if (deleted === '.wh..opq') found.emptied.push(name.slice(0, Math.max(slash, 0)));
    else if (deleted !== undefined) found.removed.push(name.slice(0, slash + 1) + deleted);
    stream.on('end', () => next());
  });
  const unzip = decompressor(mediaType);
  const broken = 'the base image is broken: build or pull it again, or use another base';
  // Hashed on the way, compared only once the tar has read whole (not a VerifyingStream, which
  // fails at the input's end): a tar cut short is damaged, which says more than a wrong digest.
  const hash = createHash('sha256');
  const hashing = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    await (unzip ? pipeline(blob, unzip, hashing, extract) : pipeline(blob, hashing, extract));
  } catch (e) {
    if (e instanceof ImgbuildError) throw e;
    // zlib's and the tar reader's own words ("invalid bit length repeat", "Unexpected end of data").
    throw buildError(`${label} is damaged: ${(e as Error).message}`, broken);
  }
  const actual = digestOf(hash);
  if (diffId !== undefined && actual !== diffId) {
    throw buildError(`${label} does not match its image's config: its tar hashes to ${actual}, the config's diff_id is ${diffId}`, broken);
  }
  return found;
}

/** A directory of a base layer: its path, and the mode and owner a layer above would change by writing it again. */
export interface BaseDir extends DirMeta {
  path: string;
}
export interface DirMeta {
  mode: number;
  uid: number;
  gid: number;
}

/** What a base leaves at paths that the layers on top must respect: its symlinks (path -> target) and its directories. */
export interface BaseShape {
  links: Map<string, string>;
  dirs: Map<string, DirMeta>;
}

/** The symlinks and directories left by layers applied in order, bottom first. */
export function shapeAfter(layers: readonly LayerLinks[]): BaseShape {
  const links = new Map<string, string>();
  const dirs = new Map<string, DirMeta>();
  const dropUnder = (dir: string, self: boolean) => {
    for (const at of [links, dirs]) for (const path of at.keys()) if ((self && path === dir) || dir === '' || path.startsWith(`${dir}/`)) at.delete(path);
  };
  for (const layer of layers) {
    for (const dir of layer.emptied) dropUnder(dir, false);
    for (const path of layer.removed) dropUnder(path, true);
    for (const { path, mode, uid, gid } of layer.dirs) {
      links.delete(path);
      dirs.set(path, { mode, uid, gid });
    }
    // A link where a directory was hides it and all below it; anywhere else it holds nothing below
    // it to drop (a base layer has hundreds of links, its base thousands of directories).
    for (const [path, target] of layer.links) {
      if (dirs.has(path)) dropUnder(path, true);
      links.set(path, target);
    }
  }
  return { links, dirs };
}
