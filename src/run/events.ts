/**
 * What an apply reports while it works, as plain data: the `--json` renderer prints these one
 * per line (NDJSON), tests and the watch loop read them, and the summary is made from them.
 * Stable names; fields are only ever added. Never a credential in any of them. The `bytes` of
 * `plan` and `layer-start` are absent when the plan does not know them: on a context's first
 * build the layer writer reads each file's size as it writes it (plan/types.ts, FROM_FILE).
 */
import type { Digest } from '../image/digest.js';

export type ApplyEvent =
  /** `layersUnchanged`: layers found unchanged since their last walk, not listed (plan/unchanged-layer.ts). */
  | { type: 'plan'; layers: number; layersUnchanged: number; files: number; bytes?: number; filesHashed: number; bytesHashed: number; ms: number }
  | { type: 'layer-start'; layer: string; files: number; bytes?: number }
  | { type: 'layer-progress'; layer: string; files: number; bytes: number }
  | { type: 'layer-done'; layer: string; cached: boolean; digest: Digest; diffId: Digest; size: number; ms: number }
  | { type: 'base'; ref: string; digest: Digest; layers: number }
  /** `digest`: what the outputs get (an index, for several platforms); `manifest`: this platform's own. */
  | { type: 'image'; digest: Digest; manifest: Digest; platform: string }
  | { type: 'output-done'; output: string; digest: Digest; ms: number }
  | { type: 'push-blob'; output: string; digest: Digest; action: 'skipped' | 'mounted' | 'uploaded'; size: number }
  /** Something that did not stop the build but will cost the next one (a cache record not saved). */
  | { type: 'warning'; message: string }
  | { type: 'done'; digest: Digest; size: number; layersBuilt: number; layersCached: number; filesHashed: number; bytesHashed: number; ms: number };

export type Reporter = (event: ApplyEvent) => void;

export const ndjsonReporter =
  (out: NodeJS.WritableStream = process.stdout): Reporter =>
  (event) =>
    void out.write(`${JSON.stringify(event)}\n`);
