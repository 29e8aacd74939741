/**
 * Schema validation of a spec value, turned into diagnostics people can act on: every error at
 * once, each pointing at its line and column, unknown keys with a did-you-mean, and ajv's
 * branch-by-branch noise for unions folded into one message.
 */
import { createRequire } from 'node:module';
import type { ErrorObject } from 'ajv';
import type { Diagnostic } from '../errors.js';
import { didYouMean } from './did-you-mean.js';
import { schemaJson } from './schema-file.js';
import { diagnostic, nodeAt, pointerSegments, type SpecSource } from './source.js';

interface Validate {
  (value: unknown): boolean;
  errors?: ErrorObject[] | null;
}

/**
 * The build precompiles the schema (scripts/build-validator.mjs); from sources (tests) it is
 * compiled here, with the same options. Loaded synchronously on first use: an `await` at the top
 * of this module made the library an async module, which `require('imgbuild')` refuses.
 */
const requireHere = createRequire(import.meta.url);
let validator: Validate | undefined;
function schemaValidator(): Validate {
  if (validator) return validator;
  try {
    validator = (requireHere('./schema-validator.cjs') as { default: Validate }).default;
  } catch (e) {
    // Only a missing one (sources, not a build) is compiled here: a broken one is a broken build.
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
    const { Ajv } = requireHere('ajv') as typeof import('ajv');
    validator = new Ajv({ allErrors: true, verbose: true, strict: false }).compile(schemaJson());
  }
  return validator;
}

/** A plain scalar's text as written in the file, or undefined. */
function asWritten(src: SpecSource, pointer: string): string | undefined {
  const range = (nodeAt(src, pointer) as { range?: [number, number, number] } | undefined)?.range;
  const text = range && src.text.slice(range[0], range[1]);
  // An alias (`*port`), an anchor or a tag is not the value's text.
  return text && /^[^\s"'#*&!]+$/.test(text) ? text : undefined;
}

function kindOf(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a map',
};

/** A pointer as people read it: "config.labels.a/b" for /config/labels/a~1b (its ~0 and ~1 unescaped). */
function where(pointer: string): string {
  return pointer === '' ? 'the spec' : pointerSegments(pointer).join('.');
}

function describeBranches(branches: unknown[]): string {
  const consts = branches.map((b) => (b as { const?: unknown }).const);
  if (consts.every((c) => c !== undefined)) return `one of ${consts.map((c) => JSON.stringify(c)).join(', ')}`;
  return branches.map((b) => TYPE_WORDS[(b as { type?: string }).type ?? ''] ?? 'a value').join(' or ');
}

function toDiagnostic(src: SpecSource, e: ErrorObject): Diagnostic {
  const at = e.instancePath;
  const schema = e.parentSchema as { description?: string; properties?: Record<string, unknown> } | undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(e.params.additionalProperty);
      // A map whose keys follow a pattern (config.env) rather than a list of known ones.
      if (!schema?.properties) return diagnostic(src, `${at}/${key}`, `"${key}" is not a valid key in ${where(at)}`, schema?.description, { key: true });
      const known = Object.keys(schema?.properties ?? {});
      const guess = didYouMean(key, known);
      const hint = guess ? `did you mean "${guess}"?` : `known keys: ${known.join(', ')}`;
      return diagnostic(src, `${at}/${key}`, `unknown key "${key}" in ${where(at)}`, hint, { key: true });
    }
    case 'required':
      return diagnostic(src, at, `missing required key "${e.params.missingProperty}" in ${where(at)}`);
    case 'type': {
      const want = TYPE_WORDS[String(e.params.type)] ?? String(e.params.type);
      const scalar = e.params.type === 'string' && (typeof e.data === 'number' || typeof e.data === 'boolean') ? asWritten(src, at) : undefined;
      if (scalar !== undefined) {
        // YAML read it as a number or a boolean (0644 is the number 644, 8080 a number): say what was written, and how to keep it text.
        const read = scalar === String(e.data) ? '' : `, which YAML reads as ${String(e.data)}`;
        return diagnostic(src, at, `${where(at)} must be ${want}, not the ${typeof e.data} ${scalar}${read}`, `quote it: "${scalar}"`);
      }
      return diagnostic(src, at, `${where(at)} must be ${want}, not ${kindOf(e.data)}`, schema?.description);
    }
    case 'const':
      return diagnostic(src, at, `${where(at)} must be ${JSON.stringify(e.params.allowedValue)}`);
    case 'anyOf':
      return diagnostic(src, at, `${where(at)} must be ${describeBranches(e.schema as unknown[])}, not ${kindOf(e.data)}`, schema?.description);
    case 'pattern':
      // The description says the rule in words; the regular expression is for machines.
      return diagnostic(src, at, `${where(at)} ${JSON.stringify(e.data)} is not valid`, schema?.description);
    case 'minProperties':
    case 'maxProperties':
      return diagnostic(src, at, `${where(at)} has ${Object.keys(e.data as object).length} keys`, schema?.description);
    default:
      return diagnostic(src, at, `${where(at)} ${e.message ?? 'is not valid'}`, schema?.description);
  }
}

/**
 * A failed anyOf says it all with its own error ("must be a whole number or a string"), unless
 * the value has the type of a branch and fails that branch's own rule (`ports: [0]` is a whole
 * number, below the minimum): then that rule's error is the one to show.
 */
function foldUnions(errors: ErrorObject[]): ErrorObject[] {
  const unions = errors.filter((e) => e.keyword === 'anyOf');
  const branchOf = (e: ErrorObject) => unions.find((u) => u !== e && e.instancePath === u.instancePath && e.schemaPath.startsWith(`${u.schemaPath}/`));
  // A branch the value is not even of the kind of: another type, or another constant.
  const notOfKind = (e: ErrorObject) => e.keyword === 'type' || e.keyword === 'const' || e.keyword === 'enum';
  const typed = new Set(unions.filter((u) => errors.some((e) => branchOf(e) === u && !notOfKind(e))));
  return errors.filter((e) => {
    const union = branchOf(e);
    if (union) return typed.has(union) && !notOfKind(e);
    return !typed.has(e);
  });
}

/** An unknown key that is a misspelling of a missing required one is one problem, not two. */
function withoutMisspeltRequired(errors: ErrorObject[]): ErrorObject[] {
  const guessed = (e: ErrorObject) =>
    errors.some((u) => {
      if (u.keyword !== 'additionalProperties' || u.instancePath !== e.instancePath) return false;
      const known = Object.keys((u.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {});
      return didYouMean(String(u.params.additionalProperty), known) === e.params.missingProperty;
    });
  return errors.filter((e) => e.keyword !== 'required' || !guessed(e));
}

/** What the schema refuses: `shown` to people, and `all` of it, which is what to prune. */
export function validateSchema(src: SpecSource, value: unknown): { shown: Diagnostic[]; all: Diagnostic[] } {
  const validate = schemaValidator();
  if (validate(value)) return { shown: [], all: [] };
  const errors = foldUnions(validate.errors ?? []);
  const shown = new Set(withoutMisspeltRequired(errors));
  const all = errors.map((e) => ({ e, d: toDiagnostic(src, e) }));
  return { shown: all.filter(({ e }) => shown.has(e)).map(({ d }) => d), all: all.map(({ d }) => d) };
}

