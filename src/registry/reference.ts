/**
 * Image references: `[host[:port]/]name[:tag][@sha256:hex]`, parsed by the grammar Docker and the
 * distribution spec use, and normalised the way `docker pull` does (a bare `node` is
 * `registry-1.docker.io/library/node`). A malformed reference is a usage error that says which
 * part is wrong and shows the expected shape.
 */
import { isDigest, type Digest } from '../image/digest.js';
import { usageError } from '../errors.js';

export interface ParsedRef {
  /** Registry host as dialled, with port if any: `registry-1.docker.io`, `127.0.0.1:5000`. */
  registry: string;
  /** Repository path inside the registry: `library/node`, `team/app`. */
  repository: string;
  tag?: string;
  digest?: Digest;
}

export const DOCKER_HUB = 'registry-1.docker.io';
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
const SHAPE = 'expected [host[:port]/]name[:tag][@sha256:<64 hex>], e.g. ghcr.io/org/app:1.2';

function bad(input: string, what: string): never {
  throw usageError(`invalid image reference ${JSON.stringify(input)}: ${what}`, SHAPE);
}

/** Parse and normalise an image reference; throws ImgbuildError('usage') when malformed. */
export function parseRef(input: string): ParsedRef {
  const s = input.trim();
  if (s === '') bad(input, 'it is empty');
  const [rest, digest] = splitDigest(input, s);
  const [path, tag] = splitTag(input, rest);
  const { registry, repository } = splitHost(input, path);
  const ref: ParsedRef = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

function splitDigest(input: string, s: string): [string, Digest | undefined] {
  const at = s.indexOf('@');
  if (at < 0) return [s, undefined];
  const d = s.slice(at + 1);
  if (!d.startsWith('sha256:')) bad(input, `only sha256 digests are supported, got "${d.split(':')[0]}"`);
  if (!isDigest(d)) bad(input, 'the digest must be sha256: followed by 64 lowercase hex characters');
  return [s.slice(0, at), d];
}

function splitTag(input: string, s: string): [string, string | undefined] {
  const colon = s.lastIndexOf(':');
  // A colon before the last slash belongs to host:port, not to a tag.
  if (colon < 0 || colon < s.lastIndexOf('/')) return [s, undefined];
  const tag = s.slice(colon + 1);
  if (!TAG_RE.test(tag)) bad(input, `tag "${tag}" must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`);
  return [s.slice(0, colon), tag];
}

function looksLikeHost(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase();
}

function splitHost(input: string, path: string): { registry: string; repository: string } {
  const parts = path.split('/');
  let registry = DOCKER_HUB;
  if (parts.length > 1 && looksLikeHost(parts[0]!)) {
    const host = parts.shift()!;
    if (!HOST_RE.test(host)) bad(input, `"${host}" is not a valid registry host[:port]`);
    registry = HUB_ALIASES.has(host.toLowerCase()) ? DOCKER_HUB : host.toLowerCase();
  }
  for (const c of parts) {
    if (c === '') bad(input, 'the name has an empty path component');
    if (!COMPONENT_RE.test(c)) {
      const why = c !== c.toLowerCase() ? 'must be lowercase' : 'may only contain a-z, 0-9 and single . _ __ or - between them';
      bad(input, `name component "${c}" ${why}`);
    }
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > 255) bad(input, 'the name is longer than 255 characters');
  return { registry, repository };
}

/** The tag or digest a manifest request should name: the digest wins, then the tag, then latest. */
export function refReference(ref: ParsedRef): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** The full normalised reference, e.g. `registry-1.docker.io/library/node:20@sha256:...`. */
export function formatRef(ref: ParsedRef): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** The same repository with another tag or digest. */
export function withReference(ref: ParsedRef, tagOrDigest: string): ParsedRef {
  const base = { registry: ref.registry, repository: ref.repository };
  return isDigest(tagOrDigest) ? { ...base, digest: tagOrDigest } : { ...base, tag: tagOrDigest };
}

/** Whether a tag is well formed (for tags given apart from a reference, as `--tag`). */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** The repository a reference names, however it is spelled ("acme/x" and "docker.io/acme/x" are one): registry and path. */
export function repositoryOf(input: string): string {
  const r = parseRef(input);
  return `${r.registry}/${r.repository}`;
}

/** Whether `host` is a registry's host[:port] as a reference names it. */
export function isValidHost(host: string): boolean {
  return HOST_RE.test(host);
}

/** Loopback hosts may speak plain HTTP without being listed as insecure. */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(0, registry.indexOf(']') + 1) : registry.split(':')[0]!;
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
}
