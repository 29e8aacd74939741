/**
 * A client for one repository on one registry, speaking the OCI distribution spec: manifests
 * (get, head, put), blobs (get verified by digest, head, cross-repository mount, upload). Every
 * exchange goes through `request`, which adds auth (answering 401 challenges once), retries
 * what is worth retrying, and turns socket failures into ImgbuildError('registry'). HTTPS by
 * default; plain HTTP only for loopback hosts and hosts listed as insecure.
 */
import { Readable } from 'node:stream';
import { ImgbuildError } from '../errors.js';
import { isDigest, sha256, type Digest } from '../image/digest.js';
import { MediaType } from '../image/media-types.js';
import { Authenticator, repositoryScope } from './auth.js';
import { credentialsFor, type CredentialOptions, type Credentials } from './credentials.js';
import { bodyError, networkError, responseError, type ErrorContext } from './errors.js';
import { drain, readAll, send, type HttpResponse } from './http.js';
import { isLoopbackHost, type ParsedRef } from './reference.js';
import { DEFAULT_RETRY, withRetries, type RetryPolicy } from './retry.js';
import { uploadBlob, type UploadOptions } from './upload.js';
import { VerifyingStream } from '../image/verify.js';

export interface ClientOptions {
  /** Registry hosts (host[:port]) that may be spoken to over plain HTTP. */
  insecure?: string[];
  /** Further attempts after a retriable failure (default 4). */
  retries?: number;
  /** First backoff delay in ms (default 250); doubles each retry. */
  retryDelayMs?: number;
  /** Where credentials come from: a docker config location, or a function giving them. */
  credentials?: CredentialOptions | (() => Promise<Credentials | undefined>);
  /** Blobs larger than this are uploaded in PATCH chunks (default 16 MiB). */
  monolithicLimit?: number;
  /** Size of each PATCH chunk (default 16 MiB). */
  chunkSize?: number;
}

export interface ManifestResult {
  bytes: Uint8Array;
  mediaType: string;
  digest: Digest;
}

export interface RequestSpec {
  method: string;
  /** A path under the registry (`/v2/...`) or an absolute URL the registry gave (Location). */
  path: string | URL;
  scopes: string[];
  headers?: Record<string, string>;
  body?: () => Readable | Uint8Array;
  ctx: ErrorContext;
  /**
   * Whether to retry 5xx and dropped connections here (default true; uploads retry whole). False
   * also means the body cannot be sent twice: a 401 is handed back, its auth renewed, for the
   * caller to start over, rather than answered by sending the body again.
   */
  retry?: boolean;
}

export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest];
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_REDIRECTS = 5;

export class RegistryClient {
  readonly baseUrl: URL;
  readonly retry: RetryPolicy;

  private constructor(
    readonly registry: string,
    readonly repository: string,
    private readonly auth: Authenticator,
    private readonly opts: ClientOptions,
  ) {
    const plain = isPlainHttp(registry, opts);
    this.baseUrl = new URL(`${plain ? 'http' : 'https'}://${registry}`);
    this.retry = retryPolicy(opts);
  }

  static for(ref: Pick<ParsedRef, 'registry' | 'repository'>, opts: ClientOptions = {}): RegistryClient {
    const c = opts.credentials;
    const creds = typeof c === 'function' ? c : () => credentialsFor(ref.registry, c ?? {});
    const plain = isPlainHttp(ref.registry, opts);
    const auth = new Authenticator({ host: ref.registry, credentials: creds, retry: retryPolicy(opts), allowHttpRealm: plain });
    return new RegistryClient(ref.registry, ref.repository, auth, opts);
  }

  /** A client for another repository on the same registry, sharing auth state. */
  forRepository(repository: string): RegistryClient {
    return new RegistryClient(this.registry, repository, this.auth, this.opts);
  }

  get pullScope(): string {
    return repositoryScope(this.repository, 'pull');
  }

  get pushScope(): string {
    return repositoryScope(this.repository, 'pull,push');
  }

  ctx(what?: string): ErrorContext {
    return what === undefined ? { host: this.registry, repo: this.repository } : { host: this.registry, repo: this.repository, what };
  }

  /** One exchange with auth and retries; the response may be any status. */
  async request(spec: RequestSpec): Promise<HttpResponse> {
    const url = typeof spec.path === 'string' ? new URL(spec.path, this.baseUrl) : spec.path;
    let sent: string | undefined;
    // Credentials go to the registry's own host only (a storage backend elsewhere gets none), and
    // never over plain http when the registry speaks https: a TLS proxy whose registry names
    // http:// in its Location headers would have them sent in the clear.
    const downgraded = url.host === this.baseUrl.host && url.protocol === 'http:' && this.baseUrl.protocol === 'https:';
    const ours = url.host === this.baseUrl.host && !downgraded;
    const attempt = async () => {
      sent = await this.auth.header(spec.scopes);
      const headers = { ...spec.headers, ...(sent && ours ? { authorization: sent } : {}) };
      return send({ method: spec.method, url, headers, body: spec.body });
    };
    const policy = spec.retry === false ? { ...this.retry, retries: 0 } : this.retry;
    try {
      let res = await withRetries(attempt, policy);
      if (res.status === 401 && (await this.auth.onUnauthorized(res, spec.scopes, sent)) && spec.retry !== false) {
        drain(res.body);
        res = await withRetries(attempt, policy);
      }
      if (res.status === 401 && downgraded) {
        drain(res.body);
        throw new ImgbuildError(
          'registry',
          `${this.registry} sent imgbuild to ${url.origin} (plain http), where it sends no credentials, and was refused there`,
          'a registry behind a TLS proxy names http:// locations unless told otherwise: have the proxy set X-Forwarded-Proto: https, or set http.relativeurls: true in the registry (CNCF Distribution)',
        );
      }
      return res;
    } catch (e) {
      throw networkError(e, spec.ctx);
    }
  }

  /**
   * Whether the registry takes these credentials: its API root (`/v2/`) asked with them, as
   * `docker login` does. Fails with a worded error when it does not.
   */
  async checkLogin(): Promise<void> {
    const ctx = { host: this.registry };
    const res = await this.request({ method: 'GET', path: '/v2/', scopes: [], ctx });
    drain(res.body);
    if (res.status === 200) return;
    if (res.status === 401 || res.status === 403) throw new ImgbuildError('registry', `${this.registry} refused these credentials`, 'check the user name and the password or token; nothing was saved');
    throw new ImgbuildError('registry', `${this.registry} answered HTTP ${res.status} to a login check`, 'is it a registry? nothing was saved');
  }

  /** Fail with a worded error unless `res.status` is one of `ok`. */
  async expect(res: HttpResponse, ok: number[], ctx: ErrorContext): Promise<HttpResponse> {
    if (ok.includes(res.status)) return res;
    throw await responseError(res, ctx);
  }

  async getManifest(reference: string = 'latest', accept: readonly string[] = MANIFEST_ACCEPT): Promise<ManifestResult> {
    const ctx = this.ctx(`manifest ${reference}`);
    const res = await this.request({ method: 'GET', path: this.manifestPath(reference), scopes: [this.pullScope], headers: { accept: accept.join(', ') }, ctx });
    if (res.status === 404 && !(await this.repositoryExists())) {
      drain(res.body);
      throw await responseError({ ...res, body: Readable.from([Buffer.from('{"errors":[{"code":"NAME_UNKNOWN"}]}')]) }, ctx);
    }
    await this.expect(res, [200], ctx);
    const bytes = new Uint8Array(await readAll(res.body, MAX_MANIFEST_BYTES).catch((e: unknown) => { throw networkError(e, ctx); }));
    const digest = sha256(bytes);
    if (isDigest(reference) && digest !== reference) {
      throw new ImgbuildError('registry', `manifest ${reference} from ${this.registry}/${this.repository} does not match its digest (got ${digest})`,
        'the registry returned corrupted or different content');
    }
    return { bytes, mediaType: manifestMediaType(bytes, res), digest };
  }

  /**
   * Whether the repository exists at all, asked only to word a 404 well: some registries answer
   * MANIFEST_UNKNOWN for a missing repository too, and "no such repository" is the better news.
   */
  private async repositoryExists(): Promise<boolean> {
    const res = await this.request({ method: 'GET', path: `/v2/${this.repository}/tags/list?n=1`, scopes: [this.pullScope], ctx: this.ctx() })
      .catch(() => undefined);
    if (!res) return true;
    const body = await readAll(res.body, 64 * 1024).catch(() => Buffer.alloc(0));
    return !(res.status === 404 && body.toString('utf8').includes('NAME_UNKNOWN'));
  }

  /** The descriptor of a manifest, or undefined when the registry does not have it. */
  async headManifest(reference: string, accept: readonly string[] = MANIFEST_ACCEPT) {
    const ctx = this.ctx(`manifest ${reference}`);
    const res = await this.request({ method: 'HEAD', path: this.manifestPath(reference), scopes: [this.pullScope], headers: { accept: accept.join(', ') }, ctx });
    drain(res.body);
    if (res.status === 404) return undefined;
    await this.expect(res, [200], ctx);
    const d = String(res.headers['docker-content-digest'] ?? '');
    return {
      digest: isDigest(d) ? d : undefined,
      mediaType: String(res.headers['content-type'] ?? '').split(';')[0]!.trim(),
      size: Number(res.headers['content-length'] ?? NaN),
    };
  }

  async putManifest(reference: string, bytes: Uint8Array, mediaType: string): Promise<Digest> {
    const ctx = this.ctx(`manifest ${reference}`);
    const res = await this.request({
      method: 'PUT', path: this.manifestPath(reference), scopes: [this.pushScope],
      headers: { 'content-type': mediaType }, body: () => bytes, ctx,
    });
    drain((await this.expect(res, [200, 201], ctx)).body);
    return sha256(bytes);
  }

  /** The blob's bytes, failing with an error if they do not hash to `digest`. */
  async getBlob(digest: Digest, size?: number): Promise<Readable> {
    const ctx = this.ctx(`blob ${digest}`);
    let res = await this.request({ method: 'GET', path: this.blobPath(digest), scopes: [this.pullScope], ctx });
    for (let n = 0; isRedirect(res.status) && n < MAX_REDIRECTS; n++) {
      drain(res.body);
      const to = new URL(String(res.headers.location ?? ''), this.baseUrl);
      // Storage backends are often another host: the request carries no Authorization there.
      res = await this.request({ method: 'GET', path: to, scopes: [this.pullScope], ctx });
    }
    await this.expect(res, [200], ctx);
    const verify = new VerifyingStream({
      expected: digest,
      size,
      onMismatch: (actual, n) => new ImgbuildError('registry',
        `blob ${digest} from ${this.registry}/${this.repository} is corrupt: ` +
          (actual ? `its ${n} bytes hash to ${actual}` : `it is longer than its ${size} bytes`),
        'the registry holds damaged content; push the image again'),
    });
    res.body.on('error', (e) => verify.destroy(bodyError(e, ctx)));
    return res.body.pipe(verify);
  }

  async headBlob(digest: Digest): Promise<boolean> {
    const ctx = this.ctx(`blob ${digest}`);
    const res = await this.request({ method: 'HEAD', path: this.blobPath(digest), scopes: [this.pullScope], ctx });
    drain(res.body);
    if (res.status === 404) return false;
    await this.expect(res, [200, 307], ctx);
    return true;
  }

  /**
   * Ask the registry to link a blob from another repository: `mounted`, or the upload session it
   * opened instead (202), which the upload then uses (the distribution spec's way; cancelling it
   * needs the delete action, which a token for push and pull does not give, and left it behind).
   */
  async mountBlob(digest: Digest, fromRepo: string): Promise<{ mounted: true } | { mounted: false; session?: URL }> {
    const path = `/v2/${this.repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepo)}`;
    const scopes = [this.pushScope, repositoryScope(fromRepo, 'pull')];
    const res = await this.request({ method: 'POST', path, scopes, ctx: this.ctx(`blob ${digest}`) });
    drain(res.body);
    if (res.status === 201) return { mounted: true };
    if (res.status === 202 && res.headers.location) return { mounted: false, session: new URL(String(res.headers.location), this.baseUrl) };
    return { mounted: false };
  }

  /** Upload a blob; `session`, an upload session already open (a mount's), serves the first attempt. */
  async uploadBlob(digest: Digest, size: number, open: () => Readable | Promise<Readable>, onBytes?: (n: number) => void, session?: URL): Promise<void> {
    const opts: UploadOptions = {
      monolithicLimit: this.opts.monolithicLimit ?? 16 * 1024 * 1024,
      chunkSize: this.opts.chunkSize ?? 16 * 1024 * 1024,
      retry: this.retry,
      onBytes,
      ...(session ? { session } : {}),
    };
    await uploadBlob(this, digest, size, open, opts);
  }

  manifestPath(reference: string): string {
    return `/v2/${this.repository}/manifests/${encodeURIComponent(reference)}`;
  }

  blobPath(digest: Digest): string {
    return `/v2/${this.repository}/blobs/${digest}`;
  }
}

function isPlainHttp(registry: string, opts: ClientOptions): boolean {
  const host = registry.toLowerCase();
  return isLoopbackHost(registry) || (opts.insecure ?? []).some((h) => h.toLowerCase() === host);
}

function retryPolicy(opts: ClientOptions): RetryPolicy {
  return { ...DEFAULT_RETRY, retries: opts.retries ?? DEFAULT_RETRY.retries, baseDelayMs: opts.retryDelayMs ?? DEFAULT_RETRY.baseDelayMs };
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** The manifest's own mediaType field wins over Content-Type, which some registries get wrong. */
function manifestMediaType(bytes: Uint8Array, res: HttpResponse): string {
  try {
    const mt = (JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: unknown }).mediaType;
    if (typeof mt === 'string' && mt) return mt;
  } catch {
    // not JSON: fall through to the header; the caller will reject the content anyway
  }
  return String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
}

