/**
 * Files shipped with the package (the JSON Schema, the `init` templates, package.json itself),
 * found from the package's root: the nearest directory above this module holding a
 * package.json. The same code runs from src/ (tests), from the compiled dist/ tree and from the
 * bundled CLI in dist/bin/, each at another depth, so no fixed `../..` would do for all three.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

function packageRoot(): string {
  if (root) return root;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return (root = dir);
    if (dirname(dir) === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
  }
}

/** The absolute path of a file or folder shipped with the package, e.g. `packageFile('templates')`. */
export function packageFile(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}

let version: string | undefined;

/** Read once: a build's plan asks for it for every layer (walk records hold it). */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string }).version;
  return version;
}
