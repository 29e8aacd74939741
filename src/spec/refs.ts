/**
 * Where images come from and go to, as written in a spec: `from:` (scratch, a registry
 * reference, `oci:dir[:tag]`, `docker-archive:file[:repo:tag]`) and `output:` entries. Paths stay as
 * written here; normalisation resolves them against the spec's folder.
 */
import type { BaseRef, OutputTarget } from '../plan/types.js';
import type { OutputSpec } from './schema.js';
import type { Parsed } from './parse-values.js';

// name components, optional registry host[:port], then :tag and/or @sha256:digest
// A first component is a registry host only if it has a dot or a port, or is localhost (Docker's rule).
const REGISTRY_REF =
  /^(?:(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|\[[0-9a-fA-F:]+\])(?::\d+)?\/|[A-Za-z0-9-]+:\d+\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

export function isRegistryRef(s: string): boolean {
  return REGISTRY_REF.test(s);
}

const refHint = 'use "scratch", a registry reference like "docker.io/library/alpine:3.20" (pin with @sha256:...), "oci:./dir[:tag]" or "docker-archive:./image.tar[:repo:tag]"';

export function parseBaseRef(s: string): Parsed<BaseRef> {
  if (s === 'scratch') return { ok: true, value: { kind: 'scratch' } };
  if (s.startsWith('oci:')) {
    const rest = s.slice(4);
    const m = /^(.*?)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$/.exec(rest);
    const path = m?.[1] ?? '';
    if (!path) return { ok: false, message: `base ${JSON.stringify(s)} names no directory`, hint: refHint };
    return { ok: true, value: m?.[2] ? { kind: 'oci', path, tag: m[2] } : { kind: 'oci', path } };
  }
  if (s.startsWith('docker-archive:')) {
    const rest = s.slice('docker-archive:'.length);
    // As skopeo writes it: the file, then the image's own reference (a RepoTag) after the first ":".
    const cut = rest.indexOf(':');
    const tag = cut > 0 ? rest.slice(cut + 1) : '';
    const path = tag && isRegistryRef(tag) ? rest.slice(0, cut) : rest;
    if (!path) return { ok: false, message: `base ${JSON.stringify(s)} names no file`, hint: refHint };
    return { ok: true, value: path === rest ? { kind: 'docker-archive', path } : { kind: 'docker-archive', path, tag } };
  }
  if (isRegistryRef(s)) return { ok: true, value: { kind: 'registry', ref: s } };
  return { ok: false, message: `base image ${JSON.stringify(s)} is not a reference imgbuild understands`, hint: refHint };
}

export function parseOutput(o: OutputSpec): Parsed<OutputTarget> {
  if (o.oci !== undefined) return o.oci ? { ok: true, value: { kind: 'oci', path: o.oci } } : { ok: false, message: 'oci output names no directory' };
  if (o['docker-archive'] !== undefined) {
    const path = o['docker-archive'];
    return path ? { ok: true, value: { kind: 'docker-archive', path } } : { ok: false, message: 'docker-archive output names no file' };
  }
  const ref = o.registry ?? '';
  // "localhost:5000" or "registry.example:5000" is a registry with no repository; "app:5000" is app with a tag (below).
  if (/^(?:localhost|\[[0-9a-fA-F:]+\]|[^/:]*\.[^/:]*):\d+$/.test(ref)) return { ok: false, message: `registry output ${JSON.stringify(ref)} names a registry but no repository`, hint: `e.g. "${ref}/hello"` };
  // The push takes the repository and pushes the spec's tags: a tag written here would be dropped.
  const repository = ref.replace(/:[^/]*$/, '');
  if (isRegistryRef(ref) && !ref.includes('@') && repository !== ref) {
    return { ok: false, message: `registry output ${JSON.stringify(ref)} names a tag`, hint: `write the repository alone, e.g. ${JSON.stringify(repository)}; tags come from \`tags:\`` };
  }
  if (isRegistryRef(ref) && !ref.includes('@')) return { ok: true, value: { kind: 'registry', ref } };
  return { ok: false, message: `registry output ${JSON.stringify(ref)} is not a repository reference`, hint: 'e.g. "ghcr.io/acme/hello" or "127.0.0.1:5000/hello"; tags come from `tags:`' };
}
