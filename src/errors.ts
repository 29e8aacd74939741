/**
 * Errors imgbuild reports to people. Every failure a user can cause or meet is one of these
 * values, carrying a message written for people (no stack trace is ever shown for them).
 * Exactly one place, src/cli/exit-codes.ts, turns them into exit codes.
 */

/** Where in a spec file something is, 1-based, as editors count. */
export interface SourcePosition {
  file: string;
  line: number;
  col: number;
}

/** One problem found in a spec: what is wrong, where, and what would be right. */
export interface Diagnostic {
  position: SourcePosition;
  message: string;
  hint?: string;
  /** The spec path of the offending value, e.g. "/layers/1/copy/0/to". */
  pointer: string;
}

export type ErrorKind = 'spec' | 'usage' | 'build' | 'registry' | 'unsupported';

export class ImgbuildError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'ImgbuildError';
  }
}

/** A spec that does not load or validate; carries every problem at once. */
export class SpecError extends ImgbuildError {
  constructor(
    readonly diagnostics: Diagnostic[],
    /** The spec's text, for code frames. */
    readonly source?: { text: string },
  ) {
    super('spec', `${diagnostics.length} problem${diagnostics.length === 1 ? '' : 's'} in the spec`);
    this.name = 'SpecError';
  }
}

export const usageError = (message: string, hint?: string) => new ImgbuildError('usage', message, hint);
export const buildError = (message: string, hint?: string) => new ImgbuildError('build', message, hint);
export const unsupported = (message: string, hint?: string) =>
  new ImgbuildError('unsupported', message, hint);

export function isImgbuildError(e: unknown): e is ImgbuildError {
  return e instanceof ImgbuildError;
}
