/**
 * Registry auth against real servers: htpasswd Basic auth on CNCF Distribution (right and wrong
 * password, anonymous), and the Bearer token flow through a small token service in front of it
 * (tokens cached per scope, refreshed on 401). No password or token appears in any error.
 */
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ImgbuildError } from '../../src/errors.js';
import { parseChallenge } from '../../src/registry/auth.js';
import { RegistryClient } from '../../src/registry/client.js';
import { parseRef } from '../../src/registry/reference.js';
import { pushImage, type PushEvent } from '../../src/registry/push.js';
import { resolvePlatformImage } from '../../src/registry/remote-image.js';
import { missingTools } from '../helpers/tools.js';
import { forward, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { memImage, memLayer } from './fixtures.js';

const USER = 'builder';
const PASSWORD = 's3cret-Pa55word';
const amd64 = { os: 'linux', architecture: 'amd64' };

async function failure(p: Promise<unknown>): Promise<ImgbuildError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(ImgbuildError);
  return e as ImgbuildError;
}

function expectNoSecret(e: ImgbuildError, ...secrets: string[]) {
  const text = `${e.message}\n${e.hint ?? ''}\n${e.stack ?? ''}\n${JSON.stringify(e)}`;
  for (const s of secrets) {
    expect(text).not.toContain(s);
    expect(text).not.toContain(Buffer.from(`${USER}:${s}`).toString('base64'));
  }
}

describe('parseChallenge', () => {
  it('reads Bearer parameters, quoted commas included, and Basic realms', () => {
    const c = parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"');
    expect(c).toEqual({ scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' } });
    expect(parseChallenge('Basic realm="basic-realm"')).toEqual({ scheme: 'basic', params: { realm: 'basic-realm' } });
    expect(parseChallenge('Basic realm="x", Bearer realm="https://t/"')?.scheme).toBe('bearer');
    expect(parseChallenge('Negotiate abc')).toBeUndefined();
    expect(parseChallenge(undefined)).toBeUndefined();
  });
});

describe.skipIf(missingTools('docker-registry', 'htpasswd').length > 0)('htpasswd auth (real registry)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: { user: USER, password: PASSWORD } });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('pushes and pulls with the right password, taken from the environment', async () => {
    const env = { IMGBUILD_REGISTRY_USER: USER, IMGBUILD_REGISTRY_PASSWORD: PASSWORD, IMGBUILD_REGISTRY_HOST: reg.host };
    const opts = { credentials: { env, configDir: '/nonexistent' } };
    const img = await memImage([await memLayer('auth')]);
    const events: PushEvent[] = [];
    await pushImage(parseRef(`${reg.host}/private/app:1`), img, [], { ...opts, onProgress: (e) => events.push(e) });
    const pulled = await resolvePlatformImage(RegistryClient.for(parseRef(`${reg.host}/private/app`), opts), '1', amd64);
    expect(await pulled.digest()).toBe(await img.digest());
    expect(JSON.stringify(events)).not.toContain(PASSWORD);
  });

  it('fails clearly with a wrong password, without showing it', async () => {
    const wrong = 'wrong-Pa55word-xyz';
    const client = RegistryClient.for(parseRef(`${reg.host}/private/app`), {
      credentials: async () => ({ kind: 'basic', username: USER, password: wrong }),
    });
    const err = await failure(client.getManifest('1'));
    expect(err.kind).toBe('registry');
    expect(err.message).toBe(`authentication failed for ${reg.host}/private/app`);
    expect(err.hint).toContain(`IMGBUILD_REGISTRY_HOST names ${reg.host}`);
    expect(err.hint).toContain(`imgbuild login ${reg.host} -u USER --password-stdin`);
    expectNoSecret(err, wrong, PASSWORD);
  });

  it('fails clearly without credentials', async () => {
    const client = RegistryClient.for(parseRef(`${reg.host}/private/app`), { credentials: async () => undefined });
    const err = await failure(client.headBlob(`sha256:${'a'.repeat(64)}` as never));
    expect(err.message).toBe(`authentication failed for ${reg.host}/private/app`);
  });
});

/** A token service and a registry front that wants `Bearer <token>` and forwards to `target`. */
async function startTokenFront(target: string) {
  const issued = new Set<string>();
  const tokenRequests: string[][] = [];
  /** Told each request to the registry, before it is checked (a test may revoke tokens there). */
  let onRequest: (req: http.IncomingMessage) => void = () => undefined;
  let n = 0;
  const server = http.createServer((req, res) => {
    onRequest(req);
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      const ok = req.headers.authorization === `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
      tokenRequests.push(url.searchParams.getAll('scope'));
      if (!ok) return void res.writeHead(401).end('{"details":"bad credentials"}');
      const token = `tok-${++n}-${Math.random().toString(36).slice(2)}`;
      issued.add(token);
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
    }
    const tok = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!issued.has(tok)) {
      const realm = `http://${req.headers.host}/token`;
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="front"`, 'content-type': 'application/json' });
      return void res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
    }
    delete req.headers.authorization;
    forward(target, req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return { host, tokenRequests, issued, watch: (f: typeof onRequest) => (onRequest = f), stop: () => (server.closeAllConnections(), server.close()) };
}

describe.skipIf(missingTools('docker-registry').length > 0)('bearer token flow (real registry behind a token front)', () => {
  let reg: TestRegistry;
  let front: Awaited<ReturnType<typeof startTokenFront>>;
  const creds = { credentials: async () => ({ kind: 'basic' as const, username: USER, password: PASSWORD }) };
  beforeAll(async () => {
    reg = await startRegistry();
    front = await startTokenFront(reg.host);
  });
  afterAll(async () => {
    front?.stop();
    await reg?.stop();
  });

  it('fetches a token per scope once, and refreshes it when the registry refuses it', async () => {
    const img = await memImage([await memLayer('bearer1'), await memLayer('bearer2')]);
    await pushImage(parseRef(`${front.host}/tok/app:1`), img, [], creds);
    const pushScopes = front.tokenRequests.map((s) => s.join(' '));
    expect(new Set(pushScopes).size).toBe(pushScopes.length); // never twice for one scope
    expect(pushScopes).toContain('repository:tok/app:pull,push');

    const client = RegistryClient.for(parseRef(`${front.host}/tok/app`), creds);
    await client.getManifest('1');
    const before = front.tokenRequests.length;
    front.issued.clear(); // the service revokes every token
    await client.getManifest('1');
    expect(front.tokenRequests.length).toBe(before + 1);
    expect(front.tokenRequests.at(-1)).toEqual(['repository:tok/app:pull']);
  });

  it('fetches a new token before sending a request once the one it holds has run out', async () => {
    const client = RegistryClient.for(parseRef(`${front.host}/tok/app`), creds);
    await client.getManifest('1');
    const before = front.tokenRequests.length;
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 400_000 }); // past the token's 300 s
    try {
      const sent: (string | undefined)[] = [];
      front.watch((req) => void (req.url?.startsWith('/v2/') && sent.push(req.headers.authorization?.replace(/^Bearer /, ''))));
      await client.getManifest('1');
      front.watch(() => undefined);
      expect(front.tokenRequests.length).toBe(before + 1);
      // Sent once, with the new token: no 401 and no second sending.
      expect(sent).toHaveLength(1);
      expect(front.issued.has(sent[0]!)).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('finishes a chunked upload whose token is refused halfway, starting it over rather than sending a chunk twice', async () => {
    const layer = await memLayer('revoked', 3 << 20);
    let patches = 0;
    front.watch((req) => {
      if (req.method === 'PATCH' && ++patches === 2) front.issued.clear(); // the token ran out
    });
    const small = { ...creds, monolithicLimit: 1 << 20, chunkSize: 1 << 20 };
    await pushImage(parseRef(`${front.host}/tok/chunked:1`), await memImage([layer]), [], small);
    front.watch(() => undefined);
    expect(patches).toBeGreaterThan(3);
    const pulled = await resolvePlatformImage(RegistryClient.for(parseRef(`${front.host}/tok/chunked`), creds), '1', { os: 'linux', architecture: 'amd64' });
    expect((await pulled.layers()).length).toBe(1);
    expect(await (await pulled.layers())[0]!.digest()).toBe(await layer.digest());
  });

  it('checks a login against the registry root, through the token service too', async () => {
    const login = (password: string) => RegistryClient.for({ registry: front.host, repository: '' }, { credentials: async () => ({ kind: 'basic', username: USER, password }) }).checkLogin();
    await expect(login(PASSWORD)).resolves.toBeUndefined();
    await expect(login('nope-Pa55word')).rejects.toMatchObject({ kind: 'registry', message: `authentication failed for ${front.host}: the credentials found for ${front.host} were refused` });
  });

  it('says authentication failed when the token service refuses the credentials', async () => {
    const wrong = 'nope-Pa55word';
    const client = RegistryClient.for(parseRef(`${front.host}/tok/app`), {
      credentials: async () => ({ kind: 'basic', username: USER, password: wrong }),
    });
    const err = await failure(client.getManifest('1'));
    expect(err.message).toBe(`authentication failed for ${front.host} (repository:tok/app:pull): the credentials found for ${front.host} were refused`);
    expectNoSecret(err, wrong, PASSWORD);
    for (const t of front.issued) expect(`${err.message}${err.hint}`).not.toContain(t);
  });
});

describe('credentials and the scheme a registry names', () => {
  it('sends no credentials over plain http to a Location on the host of an https registry (a TLS proxy in front of it, misconfigured)', async () => {
    // The registry is 127.0.0.2, not a loopback name imgbuild speaks plain http to: its base is https.
    // Only a plain-http server listens, as the http:// Location a proxy's registry names would reach.
    const seen: (string | undefined)[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' }).end();
    });
    server.listen(0, '127.0.0.2');
    await once(server, 'listening');
    const host = `127.0.0.2:${(server.address() as net.AddressInfo).port}`;
    try {
      const client = RegistryClient.for({ registry: host, repository: 'app' }, { retries: 0, credentials: async () => ({ kind: 'basic', username: USER, password: PASSWORD }) });
      expect(client.baseUrl.protocol).toBe('https:');
      // Refused there, it says why, not that the credentials are wrong.
      await expect(client.request({ method: 'GET', path: new URL(`http://${host}/v2/app/blobs/uploads/x`), scopes: [client.pushScope], ctx: client.ctx() })).rejects.toMatchObject({
        kind: 'registry',
        message: `${host} sent imgbuild to http://${host} (plain http), where it sends no credentials, and was refused there`,
        hint: expect.stringContaining('http.relativeurls: true'),
      });
      expect(seen.length).toBeGreaterThan(0);
      expect(seen).toEqual(seen.map(() => undefined));
    } finally {
      server.close();
    }
  });
});
