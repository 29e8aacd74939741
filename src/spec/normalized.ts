/**
 * The validated, interpolated spec with every default applied and every string format parsed:
 * what the plan compiler consumes. Paths on the host are absolute; paths in the image are
 * absolute and normalised; modes and owners are numbers. Immutable once made.
 */
import type { SourcePosition } from '../errors.js';
import type { Digest } from '../image/digest.js';
import type { Platform, RuntimeConfig } from '../image/types.js';
import type { BaseRef, Compression, OutputTarget } from '../plan/types.js';
import type { Owner } from './parse-values.js';

export interface CopySource {
  /** Context-relative path ("" is the context itself) or glob, normalised. */
  from: string;
  /** Image path; `toDir` says whether sources land inside it or become it. */
  to: string;
  toDir: boolean;
  exclude: readonly string[];
  /** Undefined: 0755/0644 by the source's executable bit. */
  fileMode: number | undefined;
  dirMode: number;
  owner: Owner;
  at: SourcePosition;
}

export interface InlineFile {
  path: string;
  content: string;
  mode: number;
  owner: Owner;
  at: SourcePosition;
}

export interface DirSpec {
  path: string;
  mode: number;
  owner: Owner;
  at: SourcePosition;
}

export interface SymlinkSpec {
  path: string;
  target: string;
  owner: Owner;
  at: SourcePosition;
}

export interface RemoveSpec {
  path: string;
  at: SourcePosition;
}

export interface NormalizedLayer {
  name: string;
  copies: readonly CopySource[];
  files: readonly InlineFile[];
  dirs: readonly DirSpec[];
  symlinks: readonly SymlinkSpec[];
  removes: readonly RemoveSpec[];
  at: SourcePosition;
}

export interface NormalizedSpec {
  /** Absolute path of the spec file, and its folder (outputs and base paths resolve here). */
  specFile: string;
  specDir: string;
  specDigest: Digest;
  contextDir: string;
  /** Where `context:` is written (the document's start when it is left out), for a context that is not there. */
  contextAt: SourcePosition;
  name: string;
  tags: readonly string[];
  base: BaseRef;
  platforms: readonly Platform[];
  epoch: number;
  compression: Compression;
  layers: readonly NormalizedLayer[];
  config: RuntimeConfig;
  annotations: Readonly<Record<string, string>>;
  outputs: readonly OutputTarget[];
}
