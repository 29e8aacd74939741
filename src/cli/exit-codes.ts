/**
 * The one place errors become exit codes and printed messages: 0 ok, 1 build or runtime
 * failure, 2 invalid spec or usage. A user's mistake never shows a stack trace; an unexpected
 * internal error does (it is a bug to report), unless IMGBUILD_DEBUG is unset and it is an
 * operating-system error with a code, which is explained in one line.
 */
import { isImgbuildError, SpecError, type ImgbuildError } from '../errors.js';
import { formatDiagnostics } from './diagnostics.js';

export const ExitCode = { ok: 0, failure: 1, invalid: 2 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export function exitCodeFor(e: ImgbuildError): ExitCode {
  return e.kind === 'spec' || e.kind === 'usage' ? ExitCode.invalid : ExitCode.failure;
}

export function describeError(e: unknown): string {
  if (e instanceof SpecError) {
    return `${formatDiagnostics(e.diagnostics, e.source)}\n\n${e.message}`;
  }
  if (isImgbuildError(e)) return `error: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ''}`;
  const sys = e as NodeJS.ErrnoException;
  if (sys && typeof sys.code === 'string' && sys.syscall && !process.env.IMGBUILD_DEBUG) {
    return `error: ${sys.message}`;
  }
  return `internal error (please report it): ${(e as Error)?.stack ?? String(e)}`;
}

export function exitCodeOf(e: unknown): ExitCode {
  return isImgbuildError(e) ? exitCodeFor(e) : ExitCode.failure;
}
