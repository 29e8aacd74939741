/**
 * What watch mode watches, and what a changed path means: each layer's inputs are the roots its
 * copies read (a directory, a file, or a glob's fixed prefix) with their excludes, so a path
 * maps to exactly the layers that would see it. Excluded paths and paths no layer reads map to
 * none, and cause no rebuild.
 */
import { lstatSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import picomatch from 'picomatch';
import { hostExclusions } from '../plan/host-exclusions.js';
import { realContext } from '../plan/plan-spec.js';
import type { NormalizedSpec } from '../spec/normalized.js';

export interface LayerInput {
  layer: number;
  /** Absolute path of what is read: a directory (walked) or a single file. */
  root: string;
  /** Is a path relative to root left out by the copy's excludes (a directory: with all below it)? */
  excluded: (rel: string) => boolean;
  /** Does a file path relative to root count (matches the glob, if any, and is not excluded)? */
  includes: (rel: string) => boolean;
}

const toPosix = (p: string) => (sep === '/' ? p : p.split(sep).join('/'));

/** `ignore`: host paths that are never inputs besides the outputs (the cache, our own logs: `neverInputs`). */
export function layerInputs(spec: NormalizedSpec, ignore: readonly string[] = []): LayerInput[] {
  // A missing context is planned and refused elsewhere.
  const real = realContext(spec.contextDir);
  const skip = hostExclusions(spec.outputs, ignore, real === undefined ? undefined : { dir: spec.contextDir, real });
  return spec.layers.flatMap((layer, i) =>
    layer.copies.map((c) => {
      const scan = picomatch.scan(c.from);
      const root = join(spec.contextDir, scan.isGlob ? scan.base : c.from);
      const own = c.exclude.length ? picomatch([...c.exclude], { dot: true }) : () => false;
      const excluded = (rel: string) => own(rel) || skip(join(root, rel));
      if (!scan.isGlob) return { layer: i, root, excluded, includes: (rel: string) => !excluded(rel) };
      const matches = picomatch(scan.glob, { dot: true });
      // A glob also takes everything under a matched directory.
      const under = (rel: string) => rel.split('/').some((_, k, parts) => matches(parts.slice(0, k + 1).join('/')));
      return { layer: i, root, excluded, includes: (rel: string) => !excluded(rel) && (under(rel) || mayHoldMatches(join(root, rel))) };
    }),
  );
}

/**
 * A directory renamed or moved in under a glob's root raises one event, for itself, whose name a
 * glob of files (`*.js` at any depth) need not match, and none for the files it brings; one moved
 * away raises one for a name that is gone. Either may hold files the glob takes, so both count.
 */
function mayHoldMatches(path: string): boolean {
  const st = lstatSync(path, { throwIfNoEntry: false });
  return st === undefined || st.isDirectory();
}

function relativeInside(root: string, path: string): string | undefined {
  if (path === root) return '';
  const rel = relative(root, path);
  return rel.startsWith('..') || rel.startsWith(sep) ? undefined : toPosix(rel);
}

/** The layers a changed path belongs to. */
export function layersAffectedBy(path: string, inputs: readonly LayerInput[]): Set<number> {
  const hit = new Set<number>();
  for (const input of inputs) {
    const rel = relativeInside(input.root, path);
    // The root itself (created, deleted or replaced) always counts.
    if (rel !== undefined && (rel === '' || input.includes(rel))) hit.add(input.layer);
  }
  return hit;
}

/** For the watcher: is a path read by no layer? A directory is kept unless every input excludes it. */
export function ignoredByAll(path: string, isDir: boolean, inputs: readonly LayerInput[]): boolean {
  for (const input of inputs) {
    const rel = relativeInside(input.root, path);
    if (rel === undefined) {
      // An ancestor of a root is kept, so the root can be watched through it.
      if (relativeInside(path, input.root) !== undefined) return false;
      continue;
    }
    if (rel === '' || (isDir ? !input.excluded(rel) : input.includes(rel))) return false;
  }
  return true;
}
