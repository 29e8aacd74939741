/**
 * One HTTP exchange with a registry, over node:http(s), with a streamed request body and a
 * streamed response body. It knows nothing of auth or retries; it only turns the socket's
 * failures into a `NetworkError` carrying the system code (ECONNREFUSED, ECONNRESET, ...) so the
 * layers above can decide what is worth retrying and what to tell people.
 */
import http from 'node:http';
import https from 'node:https';
import { PassThrough, Readable } from 'node:stream';

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** The body, opened afresh for every attempt so a retry never replays a spent stream. */
  body?: () => Readable | Uint8Array;
}

export interface HttpResponse {
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  body: Readable;
}

/** A failure below HTTP: refused, reset, cut, DNS, TLS. `code` is the system error code. */
export class NetworkError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'NetworkError';
  }
}

const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/** How long a socket may sit idle (no bytes either way) before the exchange is abandoned. */
const IDLE_TIMEOUT_MS = 60_000;

export function send(req: HttpRequest): Promise<HttpResponse> {
  const isHttps = req.url.protocol === 'https:';
  const mod = isHttps ? https : http;
  return new Promise<HttpResponse>((resolve, reject) => {
    const body = req.body?.();
    const headers: Record<string, string> = { 'user-agent': 'imgbuild', ...req.headers };
    if (body instanceof Uint8Array) headers['content-length'] = String(body.byteLength);
    const cr = mod.request(req.url, { method: req.method, headers, agent: isHttps ? agents.https : agents.http });
    cr.setTimeout(IDLE_TIMEOUT_MS, () => cr.destroy(Object.assign(new Error('socket idle timeout'), { code: 'ETIMEDOUT' })));
    cr.on('error', (e) => {
      if (body instanceof Readable) body.destroy();
      reject(toNetworkError(e));
    });
    cr.on('response', (res) => {
      // A response that cuts off mid-body surfaces as a NetworkError on the body stream.
      const out = res.pipe(new PassThrough());
      res.on('error', (e) => out.destroy(toNetworkError(e)));
      res.on('aborted', () => out.destroy(new NetworkError('ECONNRESET', 'connection closed mid-response')));
      resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, body: out });
    });
    writeBody(cr, body, reject);
  });
}

function writeBody(cr: http.ClientRequest, body: Readable | Uint8Array | undefined, reject: (e: Error) => void) {
  if (body === undefined) return void cr.end();
  if (body instanceof Uint8Array) return void cr.end(body);
  body.on('error', (e) => {
    cr.destroy();
    reject(e);
  });
  body.pipe(cr);
}

export function toNetworkError(e: unknown): NetworkError {
  if (e instanceof NetworkError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? (err?.message === 'socket hang up' ? 'ECONNRESET' : 'EUNKNOWN');
  return new NetworkError(code, err?.message ?? String(e));
}

/** Read a whole (small) response body, refusing more than `limit` bytes. */
export async function readAll(body: Readable, limit = 4 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > limit) {
      body.destroy();
      throw new NetworkError('ETOOBIG', `response larger than ${limit} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Throw away a response body so the socket can be reused. */
export function drain(body: Readable): void {
  body.resume();
  body.on('error', () => {});
}
