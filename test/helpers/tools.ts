/**
 * Finding the real tools e2e tests run (skopeo, umoci, runc, containerd, docker-registry, ...).
 * Under CI (CI=true) a missing tool is a failure; on a developer's machine the tests that need it
 * skip, with a loud line naming the Debian package that brings it.
 */
import { execFileSync } from 'node:child_process';

/** Executable name -> Debian package that provides it. */
export const TOOL_PACKAGES = {
  skopeo: 'skopeo',
  umoci: 'umoci',
  'oci-image-tool': 'oci-image-tool',
  runc: 'runc',
  containerd: 'containerd',
  ctr: 'containerd',
  'docker-registry': 'docker-registry',
  htpasswd: 'apache2-utils',
  pigz: 'pigz',
  buildah: 'buildah',
  // The e2e harness puts it in a tiny image, so it must be the statically linked build.
  busybox: 'busybox-static',
} as const;
export type ToolName = keyof typeof TOOL_PACKAGES;

const found = new Map<string, string | undefined>();

export function whichTool(name: ToolName): string | undefined {
  if (!found.has(name)) {
    let path: string | undefined;
    try {
      path = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
    } catch {
      path = undefined;
    }
    found.set(name, path);
  }
  return found.get(name);
}

export const isCI = () => process.env.CI === 'true' || process.env.CI === '1';

/**
 * Which of `names` are missing. Under CI a missing tool throws (so the suite fails); elsewhere
 * a loud line is printed and the caller skips (`describe.skipIf(missingTools(...).length > 0)`).
 */
export function missingTools(...names: ToolName[]): ToolName[] {
  const missing = names.filter((n) => !whichTool(n));
  if (missing.length === 0) return missing;
  const pkgs = [...new Set(missing.map((n) => TOOL_PACKAGES[n]))].join(' ');
  const line = `e2e: missing ${missing.join(', ')}: install with \`apt-get install -y ${pkgs}\``;
  if (isCI()) throw new Error(`${line} (CI=true: a missing tool fails the tests)`);
  process.stderr.write(`\n!!! SKIPPING ${line}\n\n`);
  return missing;
}
