/**
 * Where the shared cache lives: the content store, the layer index and the stat cache all sit
 * under one directory chosen here, so every command resolves it the same way. Precedence is
 * the explicit flag, then IMGBUILD_CACHE_DIR, then the XDG cache home, then ~/.cache.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function resolveCacheDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return resolve(flag);
  if (env.IMGBUILD_CACHE_DIR) return resolve(env.IMGBUILD_CACHE_DIR);
  // XDG says a relative XDG_CACHE_HOME is invalid and must be ignored.
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && xdg.startsWith('/')) return join(xdg, 'imgbuild');
  return join(homedir(), '.cache', 'imgbuild');
}
