/**
 * From a spec that passed schema and semantic checks to a NormalizedSpec: defaults applied
 * (global -> layer -> entry, as jib does), formats parsed, host paths resolved against the spec's
 * folder, the config translated to the OCI image config's vocabulary. No checks here: only
 * values that passed them arrive.
 */
import { basename, resolve } from 'node:path';
import type { Digest } from '../image/digest.js';
import type { RuntimeConfig } from '../image/types.js';
import type { OutputTarget } from '../plan/types.js';
import type { NormalizedLayer, NormalizedSpec } from './normalized.js';
import * as v from './parse-values.js';
import { parseBaseRef, parseOutput } from './refs.js';
import type { ConfigSpec, ImageSpec, LayerSpec } from './schema.js';
import { positionOf, type SpecSource } from './source.js';

interface Inherited {
  owner: v.Owner;
  fileMode: number | undefined;
  dirMode: number;
}

const mode = (s: string | undefined) => (s === undefined ? undefined : v.must(v.parseMode(s)));
const owner = (s: string | undefined, dflt: v.Owner) => (s === undefined ? dflt : v.must(v.parseOwner(s)));
const imagePath = (s: string) => v.must(v.parseImagePath(s));

function normalizeLayer(src: SpecSource, layer: LayerSpec, i: number, top: Inherited): NormalizedLayer {
  const at = `/layers/${i}`;
  const own: Inherited = {
    owner: owner(layer.owner, top.owner),
    fileMode: mode(layer.fileMode) ?? top.fileMode,
    dirMode: mode(layer.dirMode) ?? top.dirMode,
  };
  return {
    name: layer.name,
    at: positionOf(src, at),
    copies: (layer.copy ?? []).map((c, j) => ({
      from: v.must(v.parseContextPath(c.from)),
      to: imagePath(c.to),
      toDir: c.to.endsWith('/'),
      // "docs/" names the directory docs, as `from` does: a trailing "/" would match nothing.
      exclude: (c.exclude ?? []).map((pattern) => pattern.replace(/(.)\/+$/, '$1')),
      fileMode: mode(c.mode) ?? own.fileMode,
      dirMode: mode(c.dirMode) ?? own.dirMode,
      owner: owner(c.owner, own.owner),
      at: positionOf(src, `${at}/copy/${j}`),
    })),
    files: (layer.files ?? []).map((f, j) => ({
      path: imagePath(f.path),
      content: f.content,
      mode: mode(f.mode) ?? own.fileMode ?? 0o644,
      owner: owner(f.owner, own.owner),
      at: positionOf(src, `${at}/files/${j}`),
    })),
    dirs: (layer.dirs ?? []).map((d, j) => ({ path: imagePath(d.path), mode: mode(d.mode) ?? own.dirMode, owner: owner(d.owner, own.owner), at: positionOf(src, `${at}/dirs/${j}`) })),
    symlinks: (layer.symlinks ?? []).map((s, j) => ({ path: imagePath(s.path), target: s.target, owner: owner(s.owner, own.owner), at: positionOf(src, `${at}/symlinks/${j}`) })),
    removes: (layer.remove ?? []).map((r, j) => ({ path: imagePath(r), at: positionOf(src, `${at}/remove/${j}`) })),
  };
}

const emptySet = (keys: readonly string[] | undefined) =>
  keys?.length ? Object.fromEntries(keys.map((k) => [k, {} as Record<string, never>])) : undefined;

export function runtimeConfig(c: ConfigSpec | undefined): RuntimeConfig {
  if (!c) return {};
  const out: RuntimeConfig = {
    User: c.user,
    ExposedPorts: emptySet(c.ports?.map((p) => v.must(v.parsePort(p)))),
    Env: c.env ? Object.entries(c.env).map(([k, val]) => `${k}=${val}`) : undefined,
    Entrypoint: c.entrypoint,
    Cmd: c.cmd,
    Volumes: emptySet(c.volumes?.map(imagePath)),
    WorkingDir: c.workdir === undefined ? undefined : imagePath(c.workdir),
    Labels: c.labels,
    StopSignal: c.stopSignal,
  };
  return Object.fromEntries(Object.entries(out).filter(([, val]) => val !== undefined)) as RuntimeConfig;
}

function resolveHostPaths<T extends OutputTarget>(ref: T, specDir: string): T {
  return 'path' in ref ? { ...ref, path: resolve(specDir, ref.path) } : ref;
}

export interface NormalizeOptions {
  specFile: string;
  specDigest: Digest;
  epoch: number;
}

export function normalizeSpec(src: SpecSource, spec: ImageSpec, opts: NormalizeOptions): NormalizedSpec {
  const specFile = resolve(opts.specFile);
  const specDir = resolve(specFile, '..');
  const d = spec.defaults ?? {};
  const top: Inherited = { owner: owner(d.owner, { uid: 0, gid: 0 }), fileMode: mode(d.fileMode), dirMode: mode(d.dirMode) ?? 0o755 };
  const outputs = (spec.output ?? [{ oci: `./out/${basename(spec.name)}` }]).map((o) => resolveHostPaths(v.must(parseOutput(o)), specDir));
  const algorithm = spec.compression?.algorithm ?? 'gzip';
  return {
    specFile,
    specDir,
    specDigest: opts.specDigest,
    contextDir: resolve(specDir, v.must(v.parseContextPath(spec.context ?? '.', 'context'))),
    contextAt: positionOf(src, '/context'),
    name: spec.name,
    // Each once, in the order first named: every output writes a tag once, and the plan (and the
    // image event) must not say "latest, latest" of `[latest, "${TAG:-latest}"]` with TAG unset.
    tags: [...new Set(spec.tags ?? ['latest'])],
    // Kept as written (relative to the spec): it names the base in the lock and the manifest,
    // which must not depend on where the checkout lives. openBase resolves it.
    base: v.must(parseBaseRef(spec.from ?? 'scratch')),
    platforms: (spec.platforms ?? ['linux/amd64']).map((p) => v.must(v.parsePlatform(p))),
    epoch: opts.epoch,
    compression: { algorithm, level: spec.compression?.level ?? (algorithm === 'zstd' ? 3 : 6) },
    layers: spec.layers.map((l, i) => normalizeLayer(src, l, i, top)),
    config: runtimeConfig(spec.config),
    annotations: spec.annotations ?? {},
    outputs,
  };
}
