/**
 * A spec file as read from disk: its text, the YAML document with source ranges, and the means
 * to turn a JSON pointer into a file:line:col and a code frame. Every later check reports its
 * findings through this, so every error points at the exact place in the file.
 */
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { Diagnostic, SourcePosition } from '../errors.js';

export interface SpecSource {
  /** The path as the user gave it, for messages. */
  file: string;
  text: string;
  doc: Document.Parsed;
  lines: LineCounter;
}

export function parseSpecSource(file: string, text: string): SpecSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  return { file, text, doc, lines };
}

export function positionAt(src: SpecSource, offset: number): SourcePosition {
  const { line, col } = src.lines.linePos(offset);
  return { file: src.file, line, col };
}

/** Pointer segments ("/layers/0/name" -> ["layers", "0", "name"]), with ~0 ~1 unescaped. */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function childNode(node: Node, seg: string, wantKey: boolean): Node | undefined {
  if (isMap(node)) {
    const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === seg);
    if (!pair) return undefined;
    return (wantKey ? pair.key : pair.value) as Node | undefined;
  }
  if (isSeq(node)) return node.items[Number(seg)] as Node | undefined;
  return undefined;
}

/**
 * The node a pointer names, or the deepest existing ancestor. With `key`, the last segment is
 * looked up as a map key rather than a value (for "unknown key" errors, which point at the key).
 */
export function nodeAt(src: SpecSource, pointer: string, key = false): Node | undefined {
  const segs = pointerSegments(pointer);
  let node = src.doc.contents as Node | null | undefined;
  if (!node) return undefined;
  for (let i = 0; i < segs.length; i++) {
    const next = childNode(node, segs[i]!, key && i === segs.length - 1);
    if (!next) break;
    node = next;
  }
  return node;
}

export function positionOf(src: SpecSource, pointer: string, key = false): SourcePosition {
  const node = nodeAt(src, pointer, key);
  return positionAt(src, node?.range?.[0] ?? 0);
}

export function diagnostic(
  src: SpecSource,
  pointer: string,
  message: string,
  hint?: string,
  opts: { key?: boolean; offset?: number } = {},
): Diagnostic {
  const position = opts.offset !== undefined ? positionAt(src, opts.offset) : positionOf(src, pointer, opts.key);
  return hint === undefined ? { position, message, pointer } : { position, message, hint, pointer };
}
