/** One calm line per rebuild: what changed, which layers were rebuilt, the new digest, how long. */
import { shortDigest } from '../plan/render.js';
import type { ApplyResult } from '../run/apply.js';

export type WatchLine =
  | { kind: 'rebuilt'; text: string; files: string[]; rebuilt: string[]; removed: string[]; digest: string; ms: number }
  | { kind: 'error'; text: string; files: string[]; error: unknown };

const clock = () => new Date().toTimeString().slice(0, 8);

function changedList(files: string[]): string {
  const shown = files.slice(0, 3).join(', ');
  return files.length > 3 ? `${shown} and ${files.length - 3} more` : shown;
}

/**
 * `rebuilt`: the layers whose blob is not the previous image's, built now or found in the cache
 * (a file put back as it was brings back a layer built before): what changed, not what was built.
 * `removed`: the previous image's layers the spec no longer has (a layer taken out of the spec
 * said "no layer changed" beside a new digest).
 */
export function rebuildLine(r: { files: string[]; result: ApplyResult; previous: { digest: string; layers: ReadonlyMap<string, string> }; ms: number }): WatchLine {
  const rebuilt = r.result.layers.filter((l) => r.previous.layers.get(l.name) !== l.record.digest).map((l) => l.name);
  const kept = new Set(r.result.layers.map((l) => l.name));
  const removed = [...r.previous.layers.keys()].filter((name) => !kept.has(name));
  const same = r.result.digest === r.previous.digest;
  const parts = [...(rebuilt.length ? [`rebuilt ${rebuilt.join(', ')}`] : []), ...(removed.length ? [`removed ${removed.join(', ')}`] : [])];
  const what = parts.length ? parts.join('; ') : 'no layer changed';
  const text = `${clock()}  ${changedList(r.files)} -> ${what} -> ${shortDigest(r.result.digest)}${same ? ' (same image)' : ''} in ${r.ms} ms`;
  return { kind: 'rebuilt', text, files: r.files, rebuilt, removed, digest: r.result.digest, ms: r.ms };
}
