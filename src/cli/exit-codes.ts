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

/** A failure as the JSON line a command run with --json ends with (on stdout; stderr still gets describeError). */
export function errorEvent(e: unknown): Record<string, unknown> {
  const base = { type: 'error', exitCode: exitCodeOf(e), message: describeError(e) };
  return e instanceof SpecError ? { ...base, diagnostics: e.diagnostics } : base;
}

/** Failures printed as their errorEvent already: `main` prints the others' once they reach it. */
const reported = new WeakSet<object>();

export const reportedAsJson = (e: unknown): boolean => typeof e === 'object' && e !== null && reported.has(e);

/** Run `action`; with `json`, a failure is also printed as its errorEvent on stdout. */
export async function reportingJson<T>(json: boolean | undefined, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (e) {
    if (json) {
      process.stdout.write(`${JSON.stringify(errorEvent(e))}\n`);
      if (typeof e === 'object' && e !== null) reported.add(e);
    }
    throw e;
  }
}
