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

function codeFrame(lines: string[], line: number, col: number): string {
  const from = Math.max(1, line - 1);
  const width = String(line).length;
  const out: string[] = [];
  for (let n = from; n <= line && n <= lines.length; n++) {
    out.push(`${n === line ? '>' : ' '} ${String(n).padStart(width)} | ${lines[n - 1]}`);
  }
  // The caret's lead keeps the line's tabs, so it stands under the column however wide the terminal draws a tab.
  const lead = (lines[line - 1] ?? '').slice(0, Math.max(0, col - 1)).replace(/[^\t]/g, ' ').padEnd(Math.max(0, col - 1));
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
