/**
 * Blob upload, as the distribution spec describes it: POST opens a session, then either one PUT
 * carrying the whole blob (small blobs) or PATCH chunks with Content-Range followed by a closing
 * PUT (large ones). The source is streamed, never held; it is hashed on the way out so a source
 * that changed under us fails here, clearly, before the registry sees a wrong blob. A failure
 * mid-upload (a cut connection, a 5xx) abandons the session and starts a new one from a freshly
 * opened source, a bounded number of times.
 */
import { pipeline, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildError, ImgbuildError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import type { RegistryClient } from './client.js';
import { drain } from './http.js';
import { responseError } from './errors.js';
import { ByteReader } from './byte-reader.js';
import { isRetriableStatus, retryDelay, type RetryPolicy } from './retry.js';
import { VerifyingStream } from '../image/verify.js';

export interface UploadOptions {
  monolithicLimit: number;
  chunkSize: number;
  retry: RetryPolicy;
  onBytes?: ((n: number) => void) | undefined;
  /** An upload session already open (a cross-repository mount the registry turned into one), for the first attempt. */
  session?: URL;
}

/** A failure worth restarting the upload for, carrying the error to show if we give up. */
class Transient extends Error {
  constructor(readonly final: Error) {
    super(final.message);
  }
}

export async function uploadBlob(c: RegistryClient, digest: Digest, size: number, open: () => Readable | Promise<Readable>, opts: UploadOptions): Promise<void> {
  for (let n = 0; ; n++) {
    try {
      return await uploadOnce(c, digest, size, open, opts, n === 0 ? opts.session : undefined);
    } catch (e) {
      if (!(e instanceof Transient)) throw e;
      if (n >= opts.retry.retries) throw e.final;
      await sleep(retryDelay(opts.retry, n + 1));
    }
  }
}

async function uploadOnce(c: RegistryClient, digest: Digest, size: number, open: () => Readable | Promise<Readable>, opts: UploadOptions, session?: URL) {
  let location = session ?? (await startSession(c, digest));
  const source = new VerifyingStream({
      expected: digest,
      size,
      onBytes: opts.onBytes,
      onMismatch: (actual, seen) => buildError(`blob ${digest} changed while it was being pushed (read ${seen}${actual ? '' : '+'} of ${size} bytes${actual ? `, hashing to ${actual}` : ''})`,
        'something rewrote the build output during the push; build again'),
  });
  // pipeline, not pipe: destroying `source` when an attempt fails also closes what open() gave.
  pipeline(await open(), source, () => {});
  try {
    if (size <= opts.monolithicLimit) return await finish(c, location, digest, size, () => source);
    const reader = new ByteReader(source);
    for (let offset = 0; offset < size; ) {
      const n = Math.min(opts.chunkSize, size - offset);
      location = await patchChunk(c, location, digest, offset, n, () => reader.take(n));
      offset += n;
    }
    await reader.expectEnd();
    await finish(c, location, digest, 0, undefined);
  } finally {
    source.destroy();
  }
}

async function startSession(c: RegistryClient, digest: Digest): Promise<URL> {
  const ctx = c.ctx(`blob ${digest}`);
  const res = await c.request({ method: 'POST', path: `/v2/${c.repository}/blobs/uploads/`, scopes: [c.pushScope], ctx });
  drain((await c.expect(res, [202], ctx)).body);
  return location(c, res.headers.location);
}

async function patchChunk(c: RegistryClient, loc: URL, digest: Digest, offset: number, n: number, body: () => Readable): Promise<URL> {
  const headers = { 'content-type': 'application/octet-stream', 'content-length': String(n), 'content-range': `${offset}-${offset + n - 1}` };
  const res = await exchange(c, { method: 'PATCH', path: loc, headers, body }, digest);
  drain(res.body);
  return location(c, res.headers.location);
}

async function finish(c: RegistryClient, loc: URL, digest: Digest, size: number, body: (() => Readable) | undefined) {
  const url = new URL(loc);
  url.searchParams.set('digest', digest);
  const headers = { 'content-type': 'application/octet-stream', 'content-length': String(size) };
  const res = await exchange(c, { method: 'PUT', path: url, headers, body: body ?? (() => new Uint8Array(0)) }, digest);
  drain(res.body);
}

/** One upload exchange, not retried on its own: a failure restarts the whole upload. */
async function exchange(c: RegistryClient, r: { method: string; path: URL; headers: Record<string, string>; body: () => Readable | Uint8Array }, digest: Digest) {
  const ctx = c.ctx(`blob ${digest}`);
  let res;
  try {
    res = await c.request({ ...r, scopes: [c.pushScope], ctx, retry: false });
  } catch (e) {
    // A verification failure of our own source is final; a cut connection is worth a new session.
    if (e instanceof ImgbuildError && e.kind === 'registry') throw new Transient(e);
    throw e;
  }
  // A 401 mid-upload (a token that ran out) has renewed the auth: a new session sends afresh
  // what this one could not send twice.
  if (isRetriableStatus(res.status) || res.status === 401) throw new Transient(await responseError(res, ctx));
  return c.expect(res, [201, 202, 204], ctx);
}

function location(c: RegistryClient, header: string | string[] | undefined): URL {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) throw new ImgbuildError('registry', `registry ${c.registry} opened an upload without saying where to send it (no Location)`);
  return new URL(h, c.baseUrl);
}
