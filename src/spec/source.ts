/**
 * A spec file as read from disk: its text, the YAML document with source ranges, and the means
 * to turn a JSON pointer into a file:line:col and a code frame. Every later check reports its
 * findings through this, so every error points at the exact place in the file.
 */
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, visit, type Document, type Node } from 'yaml';
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
  // Merge keys (`<<: *common`), as YAML 1.1 and most tools read them: entries that share an
  // owner and modes say them once. Without, "<<" was an unknown key.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
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

const isMergeKey = (key: unknown) => isScalar(key) && typeof key.value === 'symbol' && key.value.description === '<<';

/** What a merge key's value names: each map (or anything else, which mergeDiagnostics refuses), through aliases. */
function mergeSources(src: SpecSource, value: unknown): unknown[] {
  const resolve = (n: unknown) => (isAlias(n) ? n.resolve(src.doc) : n);
  const v = resolve(value);
  return (isSeq(v) ? v.items : [v]).map(resolve);
}

function childNode(src: SpecSource, node: Node, seg: string, wantKey: boolean): Node | undefined {
  if (isMap(node)) {
    const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === seg);
    if (pair) return (wantKey ? pair.key : pair.value) as Node | undefined;
    // A key a merge brought in is found where its anchored map writes it (the first map wins, as in the merge).
    for (const p of node.items) {
      if (!isMergeKey(p.key)) continue;
      for (const from of mergeSources(src, p.value)) {
        const found = isMap(from) ? childNode(src, from, seg, wantKey) : undefined;
        if (found) return found;
      }
    }
    return undefined;
  }
  if (isSeq(node)) return node.items[Number(seg)] as Node | undefined;
  return undefined;
}

/** yaml's "Map keys must be unique" at `offset` in words that name the key and where it is given first. */
export function duplicateKey(src: SpecSource, offset: number): Diagnostic | undefined {
  let found: Diagnostic | undefined;
  visit(src.doc, {
    Map(_, map) {
      const keys = map.items.map((p) => p.key as Node | null);
      const at = keys.findIndex((k) => k?.range?.[0] === offset);
      if (at < 0 || !isScalar(keys[at])) return undefined;
      const name = (keys[at] as { value: unknown }).value;
      const first = keys.find((k) => isScalar(k) && k.value === name);
      const line = positionAt(src, first?.range?.[0] ?? offset).line;
      found = { position: positionAt(src, offset), message: `key ${JSON.stringify(String(name))} is given twice in this map`, hint: `line ${line} gives it already; keep one`, pointer: '' };
      return visit.BREAK;
    },
  });
  return found;
}

/**
 * A tag yaml does not know (`!include other.yaml`, `!env HOME`): yaml reads the value under it as
 * plain text and only warns, so the spec would silently hold the words after the tag. Refused where
 * it is written; the standard ones (`!!str`, `!!int`, ...) are read as YAML says.
 */
export function unknownTags(src: SpecSource): Diagnostic[] {
  return src.doc.warnings
    .filter((w) => w.code === 'TAG_RESOLVE_FAILED')
    .map((w) => ({
      position: positionAt(src, w.pos[0]),
      message: `${w.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '').replace(/^Unresolved tag: /, 'unknown YAML tag ')}: a spec has no tags of its own, so the value would be read as plain text`,
      hint: 'remove the tag; for a value from outside the spec, use ${VAR} with --var or the environment',
      pointer: '',
    }));
}

/**
 * Aliases that name no anchor written before them (yaml parses them, then throws a ReferenceError
 * as it makes the value, which read as "aliases expand this spec too far" at 1:1, or, in a merge
 * key, as a value of the wrong kind): each where it is written.
 */
export function unknownAliases(src: SpecSource): Diagnostic[] {
  const found: Diagnostic[] = [];
  visit(src.doc, {
    Alias(_, alias) {
      if (alias.resolve(src.doc) !== undefined) return;
      const name = `*${alias.source}`;
      found.push({ position: positionAt(src, alias.range?.[0] ?? 0), message: `alias ${name} refers to no anchor`, hint: `an alias refers back to an anchor written above it: write &${alias.source} on the value first, or fix the name`, pointer: '' });
    },
  });
  return found;
}

/** Merge keys whose value is not a map or a list of maps (yaml would throw as it makes the value). */
export function mergeDiagnostics(src: SpecSource): Diagnostic[] {
  const found: Diagnostic[] = [];
  visit(src.doc, {
    Pair(_, pair) {
      if (!isMergeKey(pair.key) || mergeSources(src, pair.value).every((from) => isMap(from))) return;
      const at = (pair.value as Node | null)?.range?.[0] ?? (pair.key as Node).range?.[0] ?? 0;
      found.push({ position: positionAt(src, at), message: 'a merge key ("<<") takes a map, or a list of maps', hint: 'refer to an anchored map, e.g. `<<: *common`, or write the keys out', pointer: '' });
    },
  });
  return found;
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
    const next = childNode(src, node, segs[i]!, key && i === segs.length - 1);
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
