/**
 * The registry auth challenge flow. A request goes out with whatever we already hold for its
 * (host, scope); a 401 carries a `WWW-Authenticate` challenge, which we answer with Basic
 * credentials or by fetching a Bearer token from the realm for `repository:<name>:pull[,push]`,
 * cache it per (host, scope) until it expires, and try once more. Credentials and tokens live
 * only in this module's memory and in Authorization headers; nothing here puts them in a
 * message.
 */
import { ImgbuildError } from '../errors.js';
import type { Credentials } from './credentials.js';
import { readAll, send, type HttpResponse } from './http.js';
import { credentialsHint, networkError } from './errors.js';
import { withRetries, type RetryPolicy } from './retry.js';

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Parse a WWW-Authenticate header; the first Bearer or Basic challenge wins, Bearer first. */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const found: Challenge[] = [];
  // scheme, then comma-separated key=value or key="quoted, value" pairs, then maybe another scheme.
  const re = /([A-Za-z]+)(?:\s+((?:[A-Za-z0-9_.-]+=(?:"(?:[^"\\]|\\.)*"|[^\s,]*)\s*,?\s*)*))?/g;
  for (const m of header.matchAll(re)) {
    const scheme = m[1]!.toLowerCase();
    if (scheme !== 'basic' && scheme !== 'bearer') continue;
    const params: Record<string, string> = {};
    for (const p of (m[2] ?? '').matchAll(/([A-Za-z0-9_.-]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g)) {
      params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
    }
    found.push({ scheme, params });
  }
  return found.find((c) => c.scheme === 'bearer') ?? found[0];
}

export function repositoryScope(repo: string, actions: 'pull' | 'pull,push'): string {
  return `repository:${repo}:${actions}`;
}

interface CachedToken {
  header: string;
  expiresAt: number;
}

export interface AuthenticatorOptions {
  host: string;
  credentials: () => Promise<Credentials | undefined>;
  retry: RetryPolicy;
  /** Whether a token realm may be plain http (only when the registry itself is). */
  allowHttpRealm: boolean;
}

export class Authenticator {
  private scheme: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();
  private creds: Promise<Credentials | undefined> | undefined;

  constructor(private readonly opts: AuthenticatorOptions) {}

  /**
   * The Authorization header to send for `scopes`, if we hold one. A bearer token of these scopes
   * that has run out is fetched again first, from the challenge that gave it: a request sent
   * without it would be answered 401, and one whose body cannot be sent twice (an upload's
   * chunk) would have to start over.
   */
  async header(scopes: string[]): Promise<string | undefined> {
    const scheme = this.scheme;
    if (!scheme) return undefined;
    if (scheme.scheme === 'basic') return this.basicHeader();
    const key = scopes.join(' ');
    const t = this.tokens.get(key);
    if (t && t.expiresAt > Date.now()) return t.header;
    if (!t) return undefined;
    return (await this.refreshed(key, scheme.params, scopes)).header;
  }

  /** One token fetch for `key` at a time, shared by the requests that need it. */
  private async refreshed(key: string, params: Record<string, string>, scopes: string[]): Promise<CachedToken> {
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.fetchToken(params, scopes).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    const token = await pending;
    this.tokens.set(key, token);
    return token;
  }

  /**
   * A 401 came back for a request that carried `sent`. Returns true when we now hold something
   * new to try; false when trying again would only fail the same way.
   */
  async onUnauthorized(res: HttpResponse, scopes: string[], sent: string | undefined): Promise<boolean> {
    const challenge = parseChallenge(headerValue(res.headers['www-authenticate']));
    if (!challenge) return false;
    this.scheme = challenge;
    const key = scopes.join(' ');
    if (challenge.scheme === 'basic') {
      const h = await this.basicHeader();
      return h !== undefined && h !== sent;
    }
    // Another request may already have refreshed this scope's token, or be doing so now:
    // parallel requests share one token fetch.
    const cached = this.tokens.get(key);
    if (cached && cached.header !== sent && cached.expiresAt > Date.now()) return true;
    return (await this.refreshed(key, challenge.params, scopes)).header !== sent;
  }

  private credentials(): Promise<Credentials | undefined> {
    this.creds ??= this.opts.credentials();
    return this.creds;
  }

  private async basicHeader(): Promise<string | undefined> {
    const c = await this.credentials();
    if (c?.kind !== 'basic') return undefined;
    return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
  }

  private async fetchToken(params: Record<string, string>, scopes: string[]): Promise<CachedToken> {
    const { host } = this.opts;
    const realm = this.realmUrl(params.realm);
    if (params.service) realm.searchParams.set('service', params.service);
    const creds = await this.credentials();
    const res = await withRetries(() => send(this.tokenRequest(realm, creds, scopes, params.service)), this.opts.retry).catch(
      (e: unknown) => {
        throw networkError(e, { host: realm.host, what: `a token for ${host}` });
      },
    );
    if (res.status === 401 || res.status === 403) {
      res.body.resume();
      const sent = creds ? `the credentials found for ${host} were refused` : `no credentials were found for ${host}`;
      throw new ImgbuildError('registry', `authentication failed for ${host}${scopes.length ? ` (${scopes.join(' ')})` : ''}: ${sent}`, credentialsHint(host));
    }
    if (res.status !== 200) {
      res.body.resume();
      throw new ImgbuildError('registry', `the token service for ${host} answered HTTP ${res.status}`, 'try again later');
    }
    return parseTokenResponse(await readAll(res.body, 1024 * 1024), host);
  }

  private realmUrl(realm: string | undefined): URL {
    const { host } = this.opts;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new ImgbuildError('registry', `registry ${host} sent an auth challenge without a valid token realm`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.opts.allowHttpRealm)) {
      throw new ImgbuildError('registry', `registry ${host} asks for credentials to be sent to a plain-http token service`,
        `list ${host} as an insecure registry only if you trust the network`);
    }
    return url;
  }

  /** GET with Basic credentials, or the OAuth2 refresh-token grant for an identity token. */
  private tokenRequest(realm: URL, creds: Credentials | undefined, scopes: string[], service?: string) {
    if (creds?.kind === 'identity') {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'imgbuild' });
      if (service) form.set('service', service);
      form.set('scope', scopes.join(' '));
      const body = Buffer.from(form.toString(), 'utf8');
      return { method: 'POST', url: realm, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: () => body };
    }
    const url = new URL(realm);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (creds?.kind === 'basic') {
      headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
    }
    return { method: 'GET', url, headers };
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

function parseTokenResponse(bytes: Buffer, host: string): CachedToken {
  let body: { token?: string; access_token?: string; expires_in?: number };
  try {
    body = JSON.parse(bytes.toString('utf8')) as typeof body;
  } catch {
    throw new ImgbuildError('registry', `the token service for ${host} answered something that is not JSON`);
  }
  const token = body.token ?? body.access_token;
  if (!token) throw new ImgbuildError('registry', `the token service for ${host} answered without a token`);
  // Refresh a little early so a token does not expire between the check and the request.
  const ttl = Math.max(Number(body.expires_in) || 60, 10);
  return { header: `Bearer ${token}`, expiresAt: Date.now() + (ttl - 5) * 1000 };
}
