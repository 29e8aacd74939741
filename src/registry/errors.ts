/**
 * Turning what a registry says (an HTTP status, a distribution-spec error body, a socket failure)
 * into one ImgbuildError('registry') in words people understand: which host, which repository,
 * what went wrong and what to do. Messages are built only from the host, the repository, the
 * object asked for and the registry's error codes, never from headers or URLs, so no credential
 * or token can leak through them.
 */
import http from 'node:http';
import { ImgbuildError } from '../errors.js';
import { NetworkError, readAll, type HttpResponse } from './http.js';
import { isRetriableError, isRetriableStatus } from './retry.js';

export interface ErrorContext {
  host: string;
  repo?: string;
  /** What was asked for, in words: `manifest latest`, `blob sha256:ab12...`. */
  what?: string;
}

interface RegistryErrorBody {
  errors?: { code?: string; message?: string }[];
}

const registryError = (message: string, hint?: string) => new ImgbuildError('registry', message, hint);

/** The registry has no such repository, manifest or blob (HTTP 404): what a caller may explain, as a pin gone stale. */
export class NotFoundError extends ImgbuildError {
  constructor(
    readonly missing: 'repository' | 'manifest' | 'blob' | 'resource',
    message: string,
    hint?: string,
  ) {
    super('registry', message, hint);
    this.name = 'NotFoundError';
  }
}

/** A response body cut off mid-transfer (reset, aborted): fetching it again may well succeed. */
export class InterruptedTransfer extends ImgbuildError {}

/** `networkError`, but an InterruptedTransfer when the failure is one worth another try. */
export function bodyError(e: unknown, ctx: ErrorContext): ImgbuildError {
  const err = networkError(e, ctx);
  return isRetriableError(e) ? new InterruptedTransfer('registry', err.message, err.hint) : err;
}

/** Read the error codes a registry put in a failed response's body (best effort). */
async function errorCodes(res: HttpResponse): Promise<string[]> {
  try {
    const body = JSON.parse((await readAll(res.body, 64 * 1024)).toString('utf8')) as RegistryErrorBody;
    return (body.errors ?? []).map((e) => String(e.code ?? '')).filter((c) => /^[A-Z_]{1,40}$/.test(c));
  } catch {
    return [];
  }
}

/** Where credentials for `host` come from, and how to set them. */
export function credentialsHint(host: string): string {
  return `imgbuild sends IMGBUILD_REGISTRY_USER/IMGBUILD_REGISTRY_PASSWORD when IMGBUILD_REGISTRY_HOST names ${host}, else what the Docker config holds for it: check those, or log in with \`imgbuild login ${host} -u USER --password-stdin\``;
}

function statusWords(status: number): string {
  return `HTTP ${status} (${http.STATUS_CODES[status] ?? 'unknown status'})`;
}

/** An ImgbuildError for a response that failed with `res.status`. */
export async function responseError(res: HttpResponse, ctx: ErrorContext): Promise<ImgbuildError> {
  const codes = await errorCodes(res);
  const { host, repo } = ctx;
  const where = repo ? `${host}/${repo}` : host;
  switch (res.status) {
    case 401:
      return registryError(`authentication failed for ${where}`, credentialsHint(host));
    case 403:
      return registryError(`access denied to ${where}`, 'check that these credentials may pull (and push) this repository');
    case 404:
      return notFound(codes, ctx, where);
    case 429:
      return registryError(`registry ${host} is rate limiting requests (${statusWords(429)})`, 'wait and try again, or log in for a higher limit');
  }
  const codeText = codes.length ? ` [${codes.join(', ')}]` : '';
  const after = isRetriableStatus(res.status) ? ' after several attempts' : '';
  const what = ctx.what ? ` for ${ctx.what} in ${where}` : ` for ${where}`;
  return registryError(`registry ${host} answered ${statusWords(res.status)}${codeText}${what}${after}`,
    res.status >= 500 ? 'the registry is failing; try again later' : undefined);
}

function notFound(codes: string[], ctx: ErrorContext, where: string): ImgbuildError {
  if (codes.includes('NAME_UNKNOWN')) {
    return new NotFoundError('repository', `repository ${ctx.repo ?? ''} not found on ${ctx.host}`, 'check the image name (and that you are logged in, if it is private)');
  }
  if (codes.includes('MANIFEST_UNKNOWN') || ctx.what?.startsWith('manifest')) {
    return new NotFoundError('manifest', `${ctx.what ?? 'manifest'} not found in ${where}`, 'check the tag or digest');
  }
  if (codes.includes('BLOB_UNKNOWN') || ctx.what?.startsWith('blob')) {
    return new NotFoundError('blob', `${ctx.what ?? 'blob'} not found in ${where}`, 'the image in the registry is incomplete');
  }
  return new NotFoundError('resource', `${ctx.what ?? 'resource'} not found in ${where} (${statusWords(404)})`);
}

/** An ImgbuildError for a failure below HTTP (refused, reset, DNS, TLS). */
export function networkError(e: unknown, ctx: ErrorContext): ImgbuildError {
  if (e instanceof ImgbuildError) return e;
  const code = e instanceof NetworkError ? e.code : ((e as NodeJS.ErrnoException)?.code ?? 'EUNKNOWN');
  const { host } = ctx;
  if (code === 'ECONNREFUSED') {
    return registryError(`registry ${host} is not reachable (connection refused)`, 'check the address and that the registry is running');
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return registryError(`registry host ${host} was not found (DNS lookup failed)`, 'check the registry name in the image reference');
  }
  if (/^(EPROTO|ERR_SSL|ERR_TLS|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED)/.test(code)) {
    return registryError(`TLS connection to registry ${host} failed (${code})`,
      `if ${host} serves plain HTTP, pass --insecure-registry ${host} (only on a network you trust)`);
  }
  if (code === 'ETIMEDOUT') return registryError(`registry ${host} stopped answering (timed out)`, 'try again later');
  const what = ctx.what ? ` while fetching ${ctx.what}` : '';
  return registryError(`connection to registry ${host} failed${what} (${code}) after several attempts`, 'check the network and try again');
}
