/**
 * One interface for every place an image can go, and the choice of sink for a plan's output.
 * The OCI layout and docker archive sinks live here; the registry sink belongs to
 * src/registry/push.ts and comes in through `SinkOptions.registry`, so this module does not
 * depend on it.
 */
import { unsupported } from '../errors.js';
import type { OutputTarget } from '../plan/types.js';
import { formatPlatform } from '../image/platform.js';
import type { Image } from '../image/types.js';
import { writeOciLayout } from './oci-layout.js';
import { repoTag, type WriteResult, type WriteTarget } from './target.js';

export type { WriteResult, WriteTarget } from './target.js';

export interface ImageSink {
  /** For progress and messages: "oci:./out", "docker-archive:app.tar", "registry:ghcr.io/a/b". */
  describe(): string;
  write(target: WriteTarget, tags: string[]): Promise<WriteResult>;
}

/** Makes the registry sink for a reference; provided by src/registry (wired by the CLI). */
export type RegistrySinkFactory = (ref: string) => ImageSink;

export interface SinkOptions {
  /** The image name, which completes bare tags ("1.0" -> "<name>:1.0") where a repository is needed. */
  name?: string;
  registry?: RegistrySinkFactory;
}

export function sinkFor(target: OutputTarget, opts: SinkOptions = {}): ImageSink {
  switch (target.kind) {
    case 'oci':
      return { describe: () => `oci:${target.path}`, write: (t, tags) => writeOciLayout(target.path, t, tags) };
    case 'docker-archive':
      return { describe: () => `docker-archive:${target.path}`, write: (t, tags) => writeArchive(target.path, t, tags, opts.name) };
    case 'registry':
      if (!opts.registry) throw unsupported(`pushing to ${target.ref} needs the registry sink, which this build does not provide`);
      return opts.registry(target.ref);
  }
}

async function writeArchive(path: string, target: WriteTarget, tags: string[], name?: string): Promise<WriteResult> {
  const image = await singleImage(target, path);
  const repoTags = [...new Set(tags.map((t) => repoTag(t, name)).filter((t): t is string => t !== undefined))];
  // Loaded only by builds that write an archive: it brings a tar library the OCI layout does not need.
  const { writeDockerArchive } = await import('./docker-archive.js');
  return writeDockerArchive(path, image, repoTags);
}

async function singleImage(target: WriteTarget, path: string): Promise<Image> {
  if ('image' in target) return target.image;
  const { manifests } = await target.index.index();
  if (manifests.length === 1 && manifests[0]) return target.index.image(manifests[0].digest);
  const platforms = manifests.map((d) => (d.platform ? formatPlatform(d.platform) : '?')).join(', ');
  throw unsupported(
    `docker-archive:${path} can hold one platform, but this build makes ${manifests.length} (${platforms})`,
    'build one platform for a docker archive, or write an OCI layout or push to a registry for several',
  );
}
