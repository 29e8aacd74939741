/**
 * What a sink is given and how tags are read. A build yields one image or, for several
 * platforms, an index; both sinks and the registry push take that same value. Tags arrive as
 * full references ("ghcr.io/acme/app:1.2") or bare tags ("1.2"); an OCI layout records only the
 * tag, a docker archive the familiar "repo:tag" Docker shows.
 */
import type { Digest } from '../image/digest.js';
import type { Image, ImageIndexSource } from '../image/types.js';
import { buildError, isImgbuildError, usageError, type ImgbuildError } from '../errors.js';

export type WriteTarget = { image: Image } | { index: ImageIndexSource };

/** What a sink wrote: the descriptor of the top document (manifest or index). */
export interface WriteResult {
  digest: Digest;
  mediaType: string;
  size: number;
}

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface ParsedRef {
  /** The repository part, if the string was a reference and not a bare tag. */
  repository?: string;
  /** The tag; undefined for a digest-only reference. */
  tag?: string;
}

/** "1.2" -> tag; "app", "ghcr.io/a/app:1.2", "localhost:5000/app" -> repository (+ tag). */
export function parseTagOrRef(s: string): ParsedRef {
  const at = s.indexOf('@');
  const body = at >= 0 ? s.slice(0, at) : s;
  const colon = body.lastIndexOf(':');
  const slash = body.lastIndexOf('/');
  let parsed: ParsedRef;
  if (colon > slash) parsed = { repository: body.slice(0, colon), tag: body.slice(colon + 1) };
  else if (slash >= 0) parsed = { repository: body, tag: at >= 0 ? undefined : 'latest' };
  else parsed = at >= 0 ? { repository: body } : { tag: body };
  if (parsed.tag !== undefined && !TAG_RE.test(parsed.tag)) {
    throw usageError(`${JSON.stringify(s)} has an invalid tag`, 'a tag is up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"');
  }
  if (parsed.repository === '') throw usageError(`${JSON.stringify(s)} has an empty repository name`);
  return parsed;
}

/** The tag an OCI layout records for a tag or reference (org.opencontainers.image.ref.name). */
export function layoutTag(s: string): string | undefined {
  return parseTagOrRef(s).tag;
}

/**
 * The familiar "repo:tag" for a docker archive's RepoTags; a bare tag takes `name` as its
 * repository. Undefined for a digest-only reference, which Docker cannot record.
 */
export function repoTag(s: string, name?: string): string | undefined {
  const { repository, tag } = parseTagOrRef(s);
  if (tag === undefined) return undefined;
  const repo = repository ?? name;
  if (!repo) throw usageError(`the tag ${JSON.stringify(s)} needs an image name for a docker archive`, 'give a full reference such as app:1.0');
  return `${familiar(repo)}:${tag}`;
}

/** Docker's short form: "docker.io/library/app" -> "app". */
export function familiar(repo: string): string {
  return repo.replace(/^(docker\.io|index\.docker\.io)\/(library\/(?=[^/]+$))?/, '');
}

/** containerd's full form: "app" -> "docker.io/library/app". */
export function fullyQualified(repo: string): string {
  const first = repo.split('/')[0] ?? '';
  const hasDomain = repo.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasDomain) return repo;
  return repo.includes('/') ? `docker.io/${repo}` : `docker.io/library/${repo}`;
}

/** File system failures (EACCES, ENOSPC, ...) said as a build error naming the output. */
export function outputError(e: unknown, output: string): ImgbuildError {
  if (isImgbuildError(e)) return e;
  const err = e as NodeJS.ErrnoException;
  const message = err.message ?? String(e);
  // Node's own messages start with the code ("ENOTDIR: not a directory, ..."): said once.
  return buildError(`cannot write ${output}: ${err.code && !message.startsWith(err.code) ? `${err.code} ` : ''}${message}`);
}
