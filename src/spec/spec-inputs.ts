/**
 * Reading a spec file, and what its normalised form depends on besides its bytes: the values of
 * the variables it looks up (`--var` first, then the environment) and SOURCE_DATE_EPOCH. A spec
 * read before with the same bytes and the same inputs normalises to the same thing, which is
 * what lets a build reuse it (store/spec-records.ts). Nothing here parses YAML: a build whose
 * spec did not change never loads the parser.
 */
import { isUtf8 } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { SpecError, usageError } from '../errors.js';
import type { Vars } from './interpolate.js';

export interface LoadOptions {
  /** `--var K=V` values; they win over the environment. */
  vars?: Vars;
  /** What `${...}` and SOURCE_DATE_EPOCH are read from after `vars`. */
  env?: Vars;
}

export async function readSpecFile(file: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw usageError(`spec file ${file} does not exist`, 'pass the path of an image.yaml, or run `imgbuild init` to write one');
    if (code === 'EISDIR') throw usageError(`${file} is a directory, not a spec file`);
    throw usageError(`cannot read spec file ${file}: ${(e as Error).message}`);
  }
  // A byte order mark is no part of the text: editors count no column for it, and the first
  // line's positions would be one to the right of theirs.
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
  // Decoding turns bytes that are not UTF-8 into U+FFFD: a Latin-1 "é" in a file's content or
  // a path would be built as another character, silently.
  if (!isUtf8(bytes)) throw notUtf8(file, bytes, text);
  return text;
}

/** The first bytes of a spec that are not UTF-8, as a spec error at their line and column. */
function notUtf8(file: string, bytes: Buffer, text: string): SpecError {
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let at = text.indexOf('\uFFFD');
  // Everything before `at` decoded as it is, so its length in bytes finds `at` in the file; a
  // U+FFFD written there as UTF-8 is text like any other.
  while (at >= 0) {
    const b = bom + Buffer.byteLength(text.slice(0, at));
    if (bytes[b] !== 0xef || bytes[b + 1] !== 0xbf || bytes[b + 2] !== 0xbd) break;
    at = text.indexOf('\uFFFD', at + 1);
  }
  const before = text.slice(0, Math.max(at, 0));
  const position = { file, line: before.split('\n').length, col: before.length - before.lastIndexOf('\n') };
  return new SpecError([{ position, message: 'the bytes here are not UTF-8 text', hint: 'a spec is read as UTF-8: save it so (from Latin-1: `iconv -f latin1 -t utf-8`)', pointer: '' }], { text });
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
