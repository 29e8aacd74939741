/**
 * The spec reference as Markdown, generated from the schema so the docs cannot drift: one row
 * per key with its type and description. README.md embeds it between markers, and a test
 * checks the two agree; `imgbuild schema --format markdown` prints it.
 */
import { schemaJson } from './schema-file.js';

interface Node {
  type?: string;
  description?: string;
  properties?: Record<string, Node>;
  items?: Node;
  anyOf?: Node[];
  const?: unknown;
  additionalProperties?: Node | boolean;
  required?: string[];
}

function typeName(n: Node): string {
  if (n.anyOf) return n.anyOf.map((b) => (b.const !== undefined ? JSON.stringify(b.const) : typeName(b))).join(' \\| ');
  if (n.const !== undefined) return JSON.stringify(n.const);
  if (n.type === 'array') return `list of ${n.items?.properties ? 'maps' : typeName(n.items ?? {})}`;
  if (n.type === 'object') return n.properties ? 'map' : 'map of string';
  return n.type ?? 'any';
}

function rows(n: Node, prefix: string, out: string[]): void {
  for (const [key, child] of Object.entries(n.properties ?? {})) {
    if (key === '$schema') continue;
    const path = `${prefix}${key}`;
    const req = n.required?.includes(key) ? ' (required)' : '';
    const desc = (child.description ?? child.items?.description ?? '').replace(/\|/g, '\\|');
    out.push(`| \`${path}\` | ${typeName(child)}${req} | ${desc} |`);
    const nested = child.properties ? child : child.items?.properties ? child.items : undefined;
    if (nested) rows(nested, child.properties ? `${path}.` : `${path}[].`, out);
  }
}

export function specReference(): string {
  const out = ['| key | type | meaning |', '|---|---|---|'];
  rows(schemaJson() as Node, '', out);
  return out.join('\n');
}
