/**
 * Sending the image to every output of the plan through one sink interface: OCI layout and
 * docker archive from src/output, registries through src/registry's push. Push progress becomes
 * events (digests and sizes only: never a credential).
 */
import type { OutputTarget } from '../plan/types.js';
import { sinkFor, type ImageSink } from '../output/sink.js';
import { pushImage } from '../registry/push.js';
import { parseRef } from '../registry/reference.js';
import type { Reporter } from './events.js';

export interface OutputOptions {
  name: string;
  report: Reporter;
  insecure?: string[];
  /** Repositories on the same registry that may hold base blobs (cross-repository mount). */
  mountFrom?: (registry: string) => string[];
}

function registrySink(ref: string, opts: OutputOptions): ImageSink {
  const target = parseRef(ref);
  const output = `registry:${ref}`;
  return {
    describe: () => output,
    write: async (source, tags) => {
      const r = await pushImage(target, 'image' in source ? source.image : source, tags, {
        ...(opts.insecure ? { insecure: opts.insecure } : {}),
        mountFrom: opts.mountFrom?.(target.registry) ?? [],
        onProgress: (ev) => {
          if (ev.kind === 'blob' && ev.status !== 'uploading') opts.report({ type: 'push-blob', output, digest: ev.digest, action: ev.status, size: ev.size });
        },
      });
      return { digest: r.digest, mediaType: r.mediaType, size: 0 };
    },
  };
}

export function sinkForOutput(target: OutputTarget, opts: OutputOptions): ImageSink {
  return sinkFor(target, { name: opts.name, registry: (ref) => registrySink(ref, opts) });
}
