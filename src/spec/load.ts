/**
 * Loading a spec: read -> parse YAML (keeping positions) -> interpolate -> validate against the
 * schema -> semantic checks -> normalise. Every problem of every stage is collected and
 * reported at once, in file order; only a spec with none is normalised.
 */
import { SpecError, usageError, type Diagnostic } from '../errors.js';
import { sha256 } from '../image/digest.js';
import { MAX_EPOCH } from '../layer/tar-header.js';
import { interpolateDocument, type Vars } from './interpolate.js';
import type { NormalizedSpec } from './normalized.js';
import { normalizeSpec } from './normalize.js';
import type { ImageSpec } from './schema.js';
import { readSpecFile, type LoadOptions } from './spec-inputs.js';
import { checkSemantics } from './semantic.js';
import { duplicateKey, mergeDiagnostics, parseSpecSource, pointerSegments, positionAt, unknownAliases, unknownTags, type SpecSource } from './source.js';
import { validateSchema } from './validate-schema.js';

export type { LoadOptions };

/** yaml's own guard against "billion laughs" documents: alias references expanded at most. */
const MAX_ALIASES = 100;

function yamlDiagnostics(src: SpecSource): Diagnostic[] {
  if (src.doc.errors.length === 0) {
    // A merge key's missing anchor is that, not a value of the wrong kind.
    const unknown = [...unknownAliases(src), ...unknownTags(src)];
    return unknown.length > 0 ? unknown : mergeDiagnostics(src);
  }
  return src.doc.errors.map((e) => {
    const position = positionAt(src, e.pos[0]);
    // yaml's own words for this one name an API of the library.
    if (e.code === 'MULTIPLE_DOCS') return { position, message: 'a spec is one YAML document, and "---" here starts another', hint: 'remove this line, and move what follows it to a spec of its own', pointer: '' };
    if (e.code === 'DUPLICATE_KEY') return duplicateKey(src, e.pos[0]) ?? { position, message: 'a key is given twice in this map', hint: 'keep one', pointer: '' };
    return { position, message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''), hint: 'fix the YAML syntax here', pointer: '' };
  });
}

/** Remove what the schema refused, so semantic checks see only well-shaped values. */
function pruneInvalid(value: unknown, schemaErrors: Diagnostic[]): void {
  for (const d of schemaErrors) {
    const segs = pointerSegments(d.pointer);
    const last = segs.pop();
    let node = value as Record<string, unknown> | undefined;
    for (const s of segs) node = node?.[s] as Record<string, unknown> | undefined;
    if (node && typeof node === 'object' && last !== undefined) delete node[last];
  }
}

function wellShaped(value: unknown): value is ImageSpec {
  const v = value as Partial<ImageSpec> | null;
  return !!v && typeof v === 'object' && typeof v.name === 'string' && Array.isArray(v.layers);
}

function byPosition(a: Diagnostic, b: Diagnostic): number {
  return a.position.line - b.position.line || a.position.col - b.position.col;
}

/** All problems of a spec source, in file order (empty: valid). `looked` is told every variable name the spec looked up. */
export function diagnose(src: SpecSource, opts: LoadOptions, looked?: Set<string>): { value: unknown; diagnostics: Diagnostic[] } {
  const yaml = yamlDiagnostics(src);
  if (yaml.length > 0) return { value: undefined, diagnostics: yaml };
  const vars = { ...opts.env, ...opts.vars };
  const found = interpolateDocument(src, vars, looked);
  const value = toValue(src);
  if (!value.ok) return { value: undefined, diagnostics: [value.diagnostic] };
  return checkValue(src, value.value, found);
}

/** The document as plain data; yaml refuses (throws) when aliases would expand it past MAX_ALIASES. */
function toValue(src: SpecSource): { ok: true; value: unknown } | { ok: false; diagnostic: Diagnostic } {
  try {
    return { ok: true, value: src.doc.toJS({ maxAliasCount: MAX_ALIASES }) as unknown };
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e;
    // yaml: "Excessive alias count indicates a resource exhaustion attack".
    return { ok: false, diagnostic: { position: positionAt(src, 0), message: 'aliases expand this spec too far', hint: 'refer to anchors (*name) less often, or write the values out', pointer: '' } };
  }
}

/** Schema and semantic checks of the document's value, after the interpolation's own `found`. */
function checkValue(src: SpecSource, value: unknown, found: Diagnostic[]): { value: unknown; diagnostics: Diagnostic[] } {
  // A value whose variable is undefined would only repeat that error as a format error.
  const unresolved = new Set(found.map((d) => d.pointer));
  const { shown, all: schemaErrors } = validateSchema(src, value);
  found.push(...shown);
  const checked = structuredClone(value);
  pruneInvalid(checked, schemaErrors);
  // A finding about a whole map (a layer "is empty") whose insides the schema refused and
  // pruned would only mislead: the layer holds `cpy:`, reported as an unknown key already.
  const pruned = (d: Diagnostic) => d.pointer !== '' && schemaErrors.some((e) => e.pointer.startsWith(`${d.pointer}/`));
  if (wellShaped(checked)) found.push(...checkSemantics(src, checked).filter((d) => !unresolved.has(d.pointer) && !pruned(d)));
  const unique = [...new Map(found.map((d) => [`${d.position.line}:${d.position.col}:${d.message}`, d])).values()];
  return { value, diagnostics: unique.sort(byPosition) };
}

function epochFrom(env: Vars): number {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return 0;
  if (!/^\d+$/.test(raw)) throw usageError(`SOURCE_DATE_EPOCH=${raw} is not a number of seconds`, 'unset it, or set it to e.g. `git log -1 --format=%ct`');
  const epoch = Number(raw);
  if (epoch > MAX_EPOCH) throw usageError(`SOURCE_DATE_EPOCH=${raw} is out of range`, `use a number of seconds from 0 to ${MAX_EPOCH}, e.g. \`git log -1 --format=%ct\``);
  return epoch;
}

/** The spec in `file`, checked and normalised; `${...}` and SOURCE_DATE_EPOCH read `opts.env`, the process's environment by default, as `apply` and `planSpec` read it. */
export async function loadSpec(file: string, opts: LoadOptions = {}): Promise<NormalizedSpec> {
  return loadSpecText(file, await readSpecFile(file), { ...opts, env: opts.env ?? process.env });
}

/**
 * `loadSpec` of text already read from `file`. `looked`, if given, is told every variable name
 * the spec looked up: with SOURCE_DATE_EPOCH, all that the result depends on besides the text.
 */
export function loadSpecText(file: string, text: string, opts: LoadOptions = {}, looked?: Set<string>): NormalizedSpec {
  const src = parseSpecSource(file, text);
  const { value, diagnostics } = diagnose(src, opts, looked);
  if (diagnostics.length > 0) throw new SpecError(diagnostics, src);
  const env = opts.env ?? {};
  return normalizeSpec(src, value as ImageSpec, { specFile: file, specDigest: sha256(text), epoch: epochFrom(env) });
}

