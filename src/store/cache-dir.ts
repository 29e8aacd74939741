/**
 * Where the shared cache lives: the content store, the layer index and the stat cache all sit
 * under one directory chosen here, so every command resolves it the same way. Precedence is
 * the explicit flag, then IMGBUILD_CACHE_DIR, then the XDG cache home, then ~/.cache.
 */
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { usageError } from '../errors.js';

export function resolveCacheDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return resolve(flag);
  if (env.IMGBUILD_CACHE_DIR) return resolve(env.IMGBUILD_CACHE_DIR);
  // XDG says a relative XDG_CACHE_HOME is invalid and must be ignored.
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && xdg.startsWith('/')) return join(xdg, 'imgbuild');
  return join(homedir(), '.cache', 'imgbuild');
}

/**
 * Make the cache directory if need be, and the folders `inside` it a part of the cache keeps, or
 * say which directory it is and how to choose another: the failure of some file deep inside it
 * (`mkdir '/etc/passwd/x/stat'`, or EEXIST for a `tmp` that is a file) named neither.
 */
export async function ensureCacheDir(root: string, ...inside: string[]): Promise<void> {
  for (const dir of [root, ...inside]) {
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (dir === root) throw usageError(`cannot use ${root} as the cache directory: ${err.code ?? err.message}`, 'pass --cache-dir DIR, or set IMGBUILD_CACHE_DIR, to a folder imgbuild may write');
      const why = err.code === 'EEXIST' || err.code === 'ENOTDIR' ? 'is not a directory' : `cannot be made (${err.code ?? err.message})`;
      throw usageError(`cannot use ${root} as the cache directory: ${relative(root, dir)} in it ${why}`, `remove ${root} (a cache only makes builds faster), or pass --cache-dir DIR`);
    }
  }
}
