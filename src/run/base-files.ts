/**
 * Where a local base image lives on disk: the file a build opens (a docker archive whose name
 * may hold a ":"), and the one a watcher watches.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { BaseRef } from '../plan/types.js';

/**
 * The file on disk that says what a local base is (an OCI layout's index.json, a docker
 * archive), which a watcher watches: a base rebuilt under it makes a new image. Undefined for
 * scratch and a registry base.
 */
export function localBaseFile(base: BaseRef, specFile: string): string | undefined {
  const baseDir = dirname(specFile);
  if (base.kind === 'oci') return join(resolve(baseDir, base.path), 'index.json');
  if (base.kind === 'docker-archive') return archiveFile(base, baseDir).file;
  return undefined;
}

/**
 * `docker-archive:FILE:REF` is cut at the first ":" (as skopeo reads it), which also cuts a file
 * name holding one (`snap-10:30.tar`, whose "30.tar" reads as an image name): when the file before
 * the cut does not exist and the whole does, the whole is the file.
 */
export function archiveFile(base: { path: string; tag?: string }, baseDir: string): { file: string; tag?: string } {
  const file = resolve(baseDir, base.path);
  if (!base.tag || existsSync(file)) return base.tag ? { file, tag: base.tag } : { file };
  const whole = resolve(baseDir, `${base.path}:${base.tag}`);
  return existsSync(whole) ? { file: whole } : { file, tag: base.tag };
}
