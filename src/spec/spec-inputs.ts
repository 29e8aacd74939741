/**
 * Reading a spec file, and what its normalised form depends on besides its bytes: the values of
 * the variables it looks up (`--var` first, then the environment) and SOURCE_DATE_EPOCH. A spec
 * read before with the same bytes and the same inputs normalises to the same thing, which is
 * what lets a build reuse it (store/spec-records.ts). Nothing here parses YAML: a build whose
 * spec did not change never loads the parser.
 */
import { readFile } from 'node:fs/promises';
import { usageError } from '../errors.js';
import type { Vars } from './interpolate.js';

export interface LoadOptions {
  /** `--var K=V` values; they win over the environment. */
  vars?: Vars;
  env?: Vars;
}

export async function readSpecFile(file: string): Promise<string> {
  try {
    // A byte order mark is no part of the text: editors count no column for it, and the first
    // line's positions would be one to the right of theirs.
    return (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw usageError(`spec file ${file} does not exist`, 'pass the path of an image.yaml, or run `imgbuild init` to write one');
    if (code === 'EISDIR') throw usageError(`${file} is a directory, not a spec file`);
    throw usageError(`cannot read spec file ${file}: ${(e as Error).message}`);
  }
}

/** Variable values (null: not set) by name, sorted, and SOURCE_DATE_EPOCH. */
export interface SpecInputs {
  vars: Record<string, string | null>;
  sourceDateEpoch: string | null;
}

/**
 * The inputs of a spec that looks up `names` (as its interpolation reported them: the same text
 * always looks up the same names, whatever their values).
 */
export function specInputs(names: Iterable<string>, opts: LoadOptions): SpecInputs {
  const values = { ...opts.env, ...opts.vars };
  return {
    vars: Object.fromEntries([...new Set(names)].sort().map((n) => [n, (Object.hasOwn(values, n) ? values[n] : undefined) ?? null])),
    sourceDateEpoch: opts.env?.SOURCE_DATE_EPOCH ?? null,
  };
}
