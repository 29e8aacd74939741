/**
 * Schema validation of a spec value, turned into diagnostics people can act on: every error at
 * once, each pointing at its line and column, unknown keys with a did-you-mean, and ajv's
 * branch-by-branch noise for unions folded into one message.
 */
import type { ErrorObject } from 'ajv';
import type { Diagnostic } from '../errors.js';
import { didYouMean } from './did-you-mean.js';
import { schemaJson } from './schema-file.js';
import { diagnostic, type SpecSource } from './source.js';

interface Validate {
  (value: unknown): boolean;
  errors?: ErrorObject[] | null;
}

/**
 * The build precompiles the schema (scripts/build-validator.mjs); from sources (tests) it is
 * compiled here, with the same options, on first use.
 */
async function loadValidator(): Promise<Validate> {
  const generated = './schema-validator.js';
  try {
    return ((await import(generated)) as { validate: Validate }).validate;
  } catch {
    const { Ajv } = await import('ajv');
    return new Ajv({ allErrors: true, verbose: true, strict: false }).compile(schemaJson());
  }
}

const validator = await loadValidator();

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

function where(pointer: string): string {
  return pointer === '' ? 'the spec' : pointer.slice(1).replace(/\//g, '.');
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
      return diagnostic(src, at, `${where(at)} must be ${want}, not ${kindOf(e.data)}`, schema?.description);
    }
    case 'const':
      return diagnostic(src, at, `${where(at)} must be ${JSON.stringify(e.params.allowedValue)}`);
    case 'anyOf':
      return diagnostic(src, at, `${where(at)} must be ${describeBranches(e.schema as unknown[])}, not ${kindOf(e.data)}`, schema?.description);
    case 'minProperties':
    case 'maxProperties':
      return diagnostic(src, at, `${where(at)} has ${Object.keys(e.data as object).length} keys`, schema?.description);
    default:
      return diagnostic(src, at, `${where(at)} ${e.message ?? 'is not valid'}`, schema?.description);
  }
}

/** Drop the per-branch errors of a failed anyOf: its own error says it all. */
function foldUnions(errors: ErrorObject[]): ErrorObject[] {
  const unions = errors.filter((e) => e.keyword === 'anyOf');
  return errors.filter(
    (e) => !unions.some((u) => u !== e && e.instancePath === u.instancePath && e.schemaPath.startsWith(`${u.schemaPath}/`)),
  );
}

export function validateSchema(src: SpecSource, value: unknown): Diagnostic[] {
  if (validator(value)) return [];
  return foldUnions(validator.errors ?? []).map((e) => toDiagnostic(src, e));
}

