/**
 * `${VAR}` and `${VAR:-default}` (the default when VAR is unset or empty) in string values, from
 * `--var K=V` first and then the environment; `$$` is a literal `$`. Runs on the YAML document
 * before validation so every problem (an undefined variable, a malformed reference) points at
 * its place in the file. Keys are never interpolated: the shape of a spec does not depend on the
 * environment.
 */
import { isPair, isScalar, isSeq, Scalar, visit, type Node } from 'yaml';
import type { Diagnostic } from '../errors.js';
import { diagnostic, type SpecSource } from './source.js';
import { VARIABLE_NAME } from './variable-name.js';

export type Vars = Readonly<Record<string, string | undefined>>;

const REF = /\$\$|\$\{([^}]*)\}|\$\{/g;

interface Problem {
  index: number;
  /** The reference as it stands in the value ("${NAME}", "${"), to find it in the source. */
  text: string;
  message: string;
  hint: string;
}

/**
 * Expand one string; problems carry the index in the string where they are. `looked`, if given,
 * is told every variable name looked up, set or not: what the result depends on.
 */
export function expand(text: string, vars: Vars, looked?: Set<string>): { value: string; problems: Problem[] } {
  const problems: Problem[] = [];
  const value = text.replace(REF, (match, body: string | undefined, index: number) => {
    if (match === '$$') return '$';
    if (body === undefined) {
      problems.push({ index, text: match, message: 'unterminated "${"', hint: 'close it with "}", or write "$$" for a literal "$"' });
      return match;
    }
    const sep = body.indexOf(':-');
    const name = sep < 0 ? body : body.slice(0, sep);
    if (!VARIABLE_NAME.test(name)) {
      problems.push({ index, text: match, message: `"${match}" is not a valid variable reference`, hint: 'use ${NAME} or ${NAME:-default}' });
      return match;
    }
    // REF ends a reference at its first "}", so `${A:-${B}}` would leave "${B}" in the value as
    // text (and `${A:-$${B}}` with A set, "1}"): a default is plain text with no "${" in it, said
    // so rather than half-expanded ("$$" in it is a "$").
    const fallback = sep < 0 ? undefined : body.slice(sep + 2);
    if (fallback?.includes('${')) {
      problems.push({ index, text: match, message: `the default of ${name} holds another reference; a default is plain text`, hint: `write the default out, or set ${name}` });
      return match;
    }
    looked?.add(name);
    // Own values only: `${constructor}` must not find what every object inherits.
    const v = Object.hasOwn(vars, name) ? vars[name] : undefined;
    // As in the shell and Compose, ":-" stands for a variable that is unset or empty (a CI job
    // often exports GIT_SHA= when it has none); a bare ${NAME} set to "" is "".
    if (v !== undefined && (sep < 0 || v !== '')) return v;
    if (fallback !== undefined) return fallback.replace(/\$\$/g, '$');
    problems.push({ index, text: match, message: `variable ${name} is not defined`, hint: `pass --var ${name}=..., set it in the environment, or write \${${name}:-default}` });
    return match;
  });
  return { value, problems };
}

/**
 * Where in the file a problem's reference is. A value's index is a source offset only in a plain
 * one-line scalar: block scalars (`|`, `>`) drop their indentation and fold lines, and escapes
 * (`\t`, `''`) are shorter in the value than in the source. So the reference is looked for in
 * the scalar's source, as the same occurrence of the same text; one spelled through an escape
 * (`\x24{X}`) is not there, and its scalar's start stands for it.
 */
function sourceOffset(src: SpecSource, node: Scalar, p: Problem): number {
  const [start, end] = node.range ?? [0, 0];
  const value = node.value as string;
  let nth = 0;
  for (let i = value.indexOf(p.text); i >= 0 && i < p.index; i = value.indexOf(p.text, i + 1)) nth++;
  const source = src.text.slice(start, end);
  // A block scalar's source starts with its header line ("| # a comment"), which is no part of the value.
  const block = node.type === Scalar.BLOCK_LITERAL || node.type === Scalar.BLOCK_FOLDED;
  let at = source.indexOf(p.text, block ? source.indexOf('\n') + 1 : 0);
  for (; at >= 0 && nth > 0; nth--) at = source.indexOf(p.text, at + 1);
  return at >= 0 ? start + at : start;
}

/** JSON pointer of a node from the ancestors `visit` hands us. */
function pointerOf(path: readonly unknown[], node: Node): string {
  const segs: string[] = [];
  const chain = [...path, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i];
    const child = chain[i + 1];
    if (isPair(parent) && isScalar(parent.key)) segs.push(String(parent.key.value));
    else if (isSeq(parent)) segs.push(String(parent.items.indexOf(child as Node)));
  }
  return segs.map((s) => '/' + s.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/** Interpolate every string value of the document in place; returns the problems found. `looked` as for `expand`. */
export function interpolateDocument(src: SpecSource, vars: Vars, looked?: Set<string>): Diagnostic[] {
  const found: Diagnostic[] = [];
  visit(src.doc, {
    Scalar(key, node, path) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return;
      const { value, problems } = expand(node.value, vars, looked);
      for (const p of problems) {
        found.push(diagnostic(src, pointerOf(path, node), p.message, p.hint, { offset: sourceOffset(src, node, p) }));
      }
      node.value = value;
    },
  });
  return found;
}

