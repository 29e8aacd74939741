/**
 * Sending the image to every output of the plan through one sink interface: OCI layout and
 * docker archive from src/output, registries through src/registry's push. Push progress becomes
 * events (digests and sizes only: never a credential).
 */
import type { OutputTarget } from '../plan/types.js';
import { sinkFor, type ImageSink } from '../output/sink.js';
import { formatBytes } from '../plan/render.js';
import type { PushEvent } from '../registry/push.js';
import { parseRef } from '../registry/reference.js';
import type { Reporter } from './events.js';

export interface OutputOptions {
  name: string;
  report: Reporter;
  insecure?: string[];
  /** Repositories on the same registry that may hold base blobs (cross-repository mount). */
  mountFrom?: (registry: string) => string[];
  /** A line for people about the push in progress (blobs done of all, bytes sent). */
  onStatus?: (text: string) => void;
}

/** Counts blobs and bytes of a push, for the progress line. */
function pushTally(onStatus: ((text: string) => void) | undefined) {
  let done = 0;
  const seen = new Set<string>();
  const sent = new Map<string, number>();
  return (ev: PushEvent) => {
    if (ev.kind === 'blob') {
      seen.add(ev.digest);
      if (ev.status !== 'uploading') done++;
    }
    if (ev.kind === 'blob-progress') sent.set(ev.digest, ev.bytes);
    onStatus?.(`${done}/${seen.size} blobs, ${formatBytes([...sent.values()].reduce((a, b) => a + b, 0))} sent`);
  };
}

function registrySink(ref: string, opts: OutputOptions): ImageSink {
  const target = parseRef(ref);
  const output = `registry:${ref}`;
  return {
    describe: () => output,
    write: async (source, tags) => {
      const tally = pushTally(opts.onStatus);
      // The registry client is loaded only by builds that push (it is a fifth of the engine).
      const { pushImage } = await import('../registry/push.js');
      const r = await pushImage(target, 'image' in source ? source.image : source, tags, {
        ...(opts.insecure ? { insecure: opts.insecure } : {}),
        mountFrom: opts.mountFrom?.(target.registry) ?? [],
        onProgress: (ev) => {
          tally(ev);
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
