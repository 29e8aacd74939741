/**
 * Printing spec diagnostics the way compilers do: `file:line:col: error: message (hint)`,
 * followed by a code frame with a caret under the offending spot. Reads each spec file once.
 */
import { readFileSync } from 'node:fs';
import type { Diagnostic } from '../errors.js';

function linesOf(file: string, cache: Map<string, string[]>, text?: string): string[] {
  let lines = cache.get(file);
  if (!lines) {
    try {
      lines = (text ?? readFileSync(file, 'utf8')).split(/\r?\n/);
    } catch {
      lines = [];
    }
    cache.set(file, lines);
  }
  return lines;
}

/**
 * The most of one line a frame shows: a spec written as one line of JSON (which is YAML too)
 * printed a 200 kB line whole. Longer lines are cut to a window around the column, the same window
 * for the line above so the two stay aligned, with "…" where text was cut.
 */
const FRAME_WIDTH = 120;
const LEAD_ROOM = 40;
const CUT = '…';

function codeFrame(lines: string[], line: number, col: number): string {
  const from = Math.max(1, line - 1);
  const width = String(line).length;
  const longest = Math.max(...lines.slice(from - 1, line).map((l) => l.length), 0);
  const start = longest > FRAME_WIDTH ? Math.max(0, Math.min(col - 1 - LEAD_ROOM, longest - FRAME_WIDTH)) : 0;
  const shown = (text: string) => (start > 0 ? CUT : '') + text.slice(start, start + FRAME_WIDTH) + (text.length > start + FRAME_WIDTH ? CUT : '');
  const out: string[] = [];
  for (let n = from; n <= line && n <= lines.length; n++) {
    out.push(`${n === line ? '>' : ' '} ${String(n).padStart(width)} | ${shown(lines[n - 1]!)}`);
  }
  // The caret's lead keeps the line's tabs, so it stands under the column however wide the terminal draws a tab.
  const before = (start > 0 ? ' ' : '') + (lines[line - 1] ?? '').slice(start, Math.max(start, col - 1));
  const lead = before.replace(/[^\t]/g, ' ').padEnd(Math.max(0, col - 1 - start + (start > 0 ? 1 : 0)));
  if (line <= lines.length) out.push(`  ${' '.repeat(width)} | ${lead}^`);
  return out.join('\n');
}

export function formatDiagnostic(d: Diagnostic, lines: string[]): string {
  const { file, line, col } = d.position;
  const head = `${file}:${line}:${col}: error: ${d.message}${d.hint ? ` (${d.hint})` : ''}`;
  const frame = codeFrame(lines, line, col);
  return frame ? `${head}\n${frame}` : head;
}

export function formatDiagnostics(diags: readonly Diagnostic[], source?: { text: string }): string {
  const cache = new Map<string, string[]>();
  return diags.map((d) => formatDiagnostic(d, linesOf(d.position.file, cache, source?.text))).join('\n\n');
}
