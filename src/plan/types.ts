/**
 * The build plan: plain data saying exactly what a build will do. It can be printed, diffed,
 * hashed and tested without building anything; the layer writer only carries it out.
 */
import type { Digest } from '../image/digest.js';
import type { Platform, RuntimeConfig } from '../image/types.js';

/** Paths in the image are relative to its root: no leading "/", no trailing "/", never "..". */
export type ImagePath = string;

/** An image path as the spec writes it ("/etc/app.conf") as a plan holds it ("etc/app.conf"). */
export const imageRel = (imagePath: string): ImagePath => imagePath.replace(/^\/+/, '');

interface EntryBase {
  path: ImagePath;
  /** Permission bits including setuid/setgid/sticky (e.g. 0o1777). */
  mode: number;
  uid: number;
  gid: number;
}

/** The digest of a file whose content the plan left for the layer writer to hash (CompileOptions.hashLater). */
export const UNHASHED = '' as Digest;

/**
 * A file's size, or a copied file's mode taken from its exec bit, left for the layer writer to
 * read from the file as it reads the bytes (CompileOptions.hashLater): a first build then walks
 * its tree with readdir alone and does not lstat every file. The writer's fstat decides both.
 */
export const FROM_FILE = -1;

/** The mode of a copied file when its copy sets no `fileMode`: whether any exec bit is set decides. */
export const defaultFileMode = (exec: boolean): number => (exec ? 0o755 : 0o644);

/** Where a regular file's bytes come from. */
export type FileSource =
  | { kind: 'path'; path: string; digest: Digest }
  | { kind: 'inline'; content: string; digest: Digest };

export interface FileEntry extends EntryBase {
  type: 'file';
  /** FROM_FILE (and `mode` may be too) while the layer writer has not read the file. */
  size: number;
  source: FileSource;
}
export interface DirEntry extends EntryBase {
  type: 'dir';
}
export interface SymlinkEntry extends EntryBase {
  type: 'symlink';
  target: string;
}
/** Deletes `path` from the layers below (written as `.wh.<name>`). */
export interface WhiteoutEntry extends EntryBase {
  type: 'whiteout';
}

export type PlanEntry = FileEntry | DirEntry | SymlinkEntry | WhiteoutEntry;

export type CompressionAlgorithm = 'gzip' | 'zstd' | 'none';
export interface Compression {
  algorithm: CompressionAlgorithm;
  level: number;
}

/** What every planned layer says of itself, listed or not. */
export interface LayerSummary {
  name: string;
  files: number;
  /** The files' bytes; absent when the plan left sizes to the layer writer (see FROM_FILE). */
  bytes?: number;
  /**
   * Derived from entries, their content digests, compression and mtime: equal keys, equal blobs.
   * Absent when the plan left hashing to the layer writer (see CompileOptions.hashLater).
   */
  cacheKey?: Digest;
}

export interface LayerPlan extends LayerSummary {
  /** Entries in the order they go into the tar: sorted bytewise (UTF-8) by path, parents first. */
  entries: PlanEntry[];
  /**
   * Its directory copies' own destinations (`{ from: seed/, to: /tmp/ }` gives "tmp"): on a base
   * that has the directory, each keeps the base's mode and owner, as `COPY` leaves an existing
   * destination as it is (run/base-dirs.ts). Also the parents it only implies that took a lower
   * layer's directory's (a copy to /tmp/y over a layer that copied to /tmp/): each keeps what
   * that layer wrote, which may be what it kept of the base's.
   */
  destinations: ImagePath[];
}

/**
 * A layer found unchanged since the walk that recorded it (plan/unchanged-layer.ts): every
 * directory and file of that walk has the same stat, so its entries, and so its cache key, are
 * those of that walk. Its entries are not listed again; a build that needs them (the key's blob
 * is gone) lists the layer then. Its directories, symlinks and whiteouts are kept, for the
 * implied parents of the layers above it.
 */
export interface UnchangedLayer extends LayerSummary {
  unchanged: true;
  cacheKey: Digest;
  dirs: DirEntry[];
  /** Its symlinks' paths: an implied parent in a layer above never replaces one. */
  links: ImagePath[];
  /** Where each of `links` points, in the same order. */
  linkTargets: string[];
  /** The paths its whiteouts delete (its spec's `remove:`), which no implied parent above may take metadata from. */
  removed: ImagePath[];
  /** Directories its entries lie in that it holds no entry for (implied parents left out on a base), for the base's symlinks to be checked against. */
  implied: ImagePath[];
  /** As LayerPlan.destinations, from its walk record. */
  destinations: ImagePath[];
}

/**
 * Regular files of one directory, one after another in a layer's order, whose size, mode bits and
 * digest a first build left to the layer writer: each stands for the FileEntry
 * `{ path: dir + name, mode, uid, gid, type: 'file', size: FROM_FILE, source: { kind: 'path', path: abs + name, digest: UNHASHED } }`.
 */
export interface FileRun {
  type: 'files';
  /** The image path of their directory, with a trailing "/" ("" at the image's root). */
  dir: string;
  /** The host path of the same directory, with a trailing "/". */
  abs: string;
  /** Their names, joined by "/" (which no name holds). */
  names: string;
  mode: number;
  uid: number;
  gid: number;
}

/**
 * A first build's layer of one plain directory copy, held as its walk listed it but without an
 * object per file (plan/packed-layer.ts): its files in runs, every other entry as itself. The
 * layer writer makes each file's entry as it reaches it, so a cold build of a large tree never
 * holds all of them, and its memory hardly grows with the file count.
 */
export interface PackedLayer extends LayerSummary {
  /** Its entries in order (as LayerPlan.entries), the files in runs. */
  readonly packed: readonly (PlanEntry | FileRun)[];
  /** As LayerPlan.destinations. */
  destinations: ImagePath[];
}

/** A layer of a plan made for a build: listed, packed, or found unchanged. */
export type PlannedLayer = LayerPlan | PackedLayer | UnchangedLayer;

export const isUnchanged = (layer: PlannedLayer): layer is UnchangedLayer => 'unchanged' in layer;
export const isPacked = (layer: PlannedLayer): layer is PackedLayer => 'packed' in layer;

export type BaseRef =
  | { kind: 'scratch' }
  | { kind: 'registry'; ref: string }
  | { kind: 'oci'; path: string; tag?: string }
  /** `tag`: which image of an archive that holds several (a RepoTag, "app:1"). */
  | { kind: 'docker-archive'; path: string; tag?: string };

export type OutputTarget =
  | { kind: 'oci'; path: string }
  | { kind: 'docker-archive'; path: string }
  | { kind: 'registry'; ref: string };

/** `L`: how its layers are held (a plan made for a build may hold unchanged layers unlisted). */
export interface BuildPlan<L extends LayerSummary = LayerPlan> {
  specFile: string;
  /** sha256 of the spec bytes, so a lockfile can tell a stale spec. */
  specDigest: Digest;
  name: string;
  tags: string[];
  base: BaseRef;
  platforms: Platform[];
  /** mtime of every tar entry and `created` of the image, seconds since the epoch. */
  epoch: number;
  compression: Compression;
  layers: L[];
  config: RuntimeConfig;
  annotations: Record<string, string>;
  outputs: OutputTarget[];
}
