/**
 * Where credentials come from: the environment (scoped by host), docker config `auths` (base64
 * auth, username/password, identitytoken), `credHelpers` and `credsStore` through a fake
 * `docker-credential-test` on PATH, and `saveLogin` writing the config atomically with mode 0600.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImgbuildError } from '../../src/errors.js';
import { credentialsFor, loginHost, saveLogin } from '../../src/registry/credentials.js';

let dir: string;
let bin: string;
const b64 = (s: string) => Buffer.from(s).toString('base64');

function writeConfig(cfg: unknown) {
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
}

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: `${bin}:${process.env.PATH}`, HOME: dir, ...extra };
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'imgbuild-creds-'));
  bin = path.join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  // A credential helper holding one login per host, keyed by what arrives on stdin.
  const helper = path.join(bin, 'docker-credential-test');
  writeFileSync(helper, `#!/bin/sh
[ "$1" = get ] || exit 2
read host
case "$host" in
  helper.example.com) echo '{"ServerURL":"helper.example.com","Username":"hu","Secret":"hs"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"hub","Username":"hubuser","Secret":"hubsecret"}' ;;
  token.example.com) echo '{"ServerURL":"token.example.com","Username":"<token>","Secret":"refresh-tok"}' ;;
  broken.example.com) echo 'helper exploded' >&2; exit 3 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
`);
  chmodSync(helper, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('credentialsFor', () => {
  it('prefers the environment for the hosts IMGBUILD_REGISTRY_HOST names, and only for them', async () => {
    writeConfig({ auths: { 'r.example.com': { auth: b64('cfg:cfgpass') } } });
    const e = env({ IMGBUILD_REGISTRY_USER: 'envuser', IMGBUILD_REGISTRY_PASSWORD: 'envpass', IMGBUILD_REGISTRY_HOST: 'x.example.com, r.example.com' });
    expect(await credentialsFor('r.example.com', { env: e, configDir: dir })).toEqual({ kind: 'basic', username: 'envuser', password: 'envpass' });
    const scoped = { ...e, IMGBUILD_REGISTRY_HOST: 'other.example.com' };
    expect(await credentialsFor('r.example.com', { env: scoped, configDir: dir })).toEqual({ kind: 'basic', username: 'cfg', password: 'cfgpass' });
  });

  it('refuses environment credentials that name no registry, so they never reach the wrong one', async () => {
    const e = env({ IMGBUILD_REGISTRY_USER: 'envuser', IMGBUILD_REGISTRY_PASSWORD: 'envpass' });
    await expect(credentialsFor('r.example.com', { env: e, configDir: dir })).rejects.toMatchObject({ kind: 'usage', message: expect.stringContaining('IMGBUILD_REGISTRY_HOST is not') });
  });

  it('reads auths entries: base64 auth (password may hold a colon), username/password, identitytoken, URL keys', async () => {
    writeConfig({
      auths: {
        'a.example.com': { auth: b64('alice:pa:ss') },
        'https://b.example.com/v2/': { username: 'bob', password: 'pw' },
        'c.example.com:5000': { identitytoken: 'idtok' },
        'https://index.docker.io/v1/': { auth: b64('hub:hubpw') },
      },
    });
    const get = (h: string) => credentialsFor(h, { env: env(), configDir: dir });
    expect(await get('a.example.com')).toEqual({ kind: 'basic', username: 'alice', password: 'pa:ss' });
    expect(await get('b.example.com')).toEqual({ kind: 'basic', username: 'bob', password: 'pw' });
    expect(await get('c.example.com:5000')).toEqual({ kind: 'identity', identityToken: 'idtok' });
    expect(await get('registry-1.docker.io')).toEqual({ kind: 'basic', username: 'hub', password: 'hubpw' });
    expect(await get('nothing.example.com')).toBeUndefined();
  });

  it('finds the config through DOCKER_CONFIG', async () => {
    writeConfig({ auths: { 'd.example.com': { username: 'u', password: 'p' } } });
    expect(await credentialsFor('d.example.com', { env: env({ DOCKER_CONFIG: dir }) })).toEqual({ kind: 'basic', username: 'u', password: 'p' });
  });

  it('asks credHelpers[host] and credsStore through docker-credential-<name>', async () => {
    writeConfig({ credHelpers: { 'helper.example.com': 'test', 'token.example.com': 'test' }, credsStore: 'test' });
    const get = (h: string) => credentialsFor(h, { env: env(), configDir: dir });
    expect(await get('helper.example.com')).toEqual({ kind: 'basic', username: 'hu', password: 'hs' });
    expect(await get('token.example.com')).toEqual({ kind: 'identity', identityToken: 'refresh-tok' });
    expect(await get('registry-1.docker.io')).toEqual({ kind: 'basic', username: 'hubuser', password: 'hubsecret' });
    expect(await get('unknown.example.com')).toBeUndefined();
    // `docker login` with a store leaves an empty auths entry: the store is still asked.
    writeConfig({ auths: { 'helper.example.com': {}, 'https://index.docker.io/v1/': {} }, credsStore: 'test' });
    expect(await get('helper.example.com')).toEqual({ kind: 'basic', username: 'hu', password: 'hs' });
    expect(await get('registry-1.docker.io')).toEqual({ kind: 'basic', username: 'hubuser', password: 'hubsecret' });
  });

  it('reports a failing or missing helper without its output', async () => {
    writeConfig({ credHelpers: { 'broken.example.com': 'test', 'gone.example.com': 'absent' } });
    const get = (h: string) => credentialsFor(h, { env: env(), configDir: dir }).catch((e: unknown) => e as ImgbuildError);
    const broken = (await get('broken.example.com')) as ImgbuildError;
    expect(broken).toBeInstanceOf(ImgbuildError);
    expect(broken.message).toBe('credential helper docker-credential-test failed for broken.example.com (exit 3)');
    expect(((await get('gone.example.com')) as ImgbuildError).message).toMatch(/docker-credential-absent could not be run/);
  });

  it('rejects a config file that is not JSON, naming it', async () => {
    writeFileSync(path.join(dir, 'config.json'), '{nope');
    const err = await credentialsFor('x.example.com', { env: env(), configDir: dir }).catch((e: unknown) => e as ImgbuildError);
    expect((err as ImgbuildError).message).toBe(`docker config ${path.join(dir, 'config.json')} is not valid JSON`);
  });
});

describe('loginHost', () => {
  it('reads the registry a login names as docker login does: a URL names its host, the Hub is its registry', () => {
    expect(loginHost('ghcr.io')).toBe('ghcr.io');
    expect(loginHost('127.0.0.1:5000')).toBe('127.0.0.1:5000');
    expect(loginHost('https://ghcr.io')).toBe('ghcr.io');
    expect(loginHost('HTTPS://Ghcr.IO/')).toBe('ghcr.io');
    expect(loginHost('http://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000');
    for (const hub of ['docker.io', 'index.docker.io', 'https://index.docker.io/v1/']) expect(loginHost(hub), hub).toBe('registry-1.docker.io');
  });

  it('refuses what names no host, as a usage error', () => {
    for (const bad of ['', 'https://', 'ghcr io', 'a_b:5000']) {
      expect(() => loginHost(bad), bad).toThrow(expect.objectContaining({ kind: 'usage', message: `${JSON.stringify(bad)} is not a registry host` }));
    }
  });
});

/** `docker-credential-<name>`: keeps what `store` is given in a file of `cfgDir` (made here), and gives it back on `get`. */
function keepingHelper(name: string, cfgDir: string): void {
  const store = path.join(cfgDir, 'store.json');
  mkdirSync(cfgDir, { recursive: true });
  writeFileSync(path.join(bin, `docker-credential-${name}`), `#!/bin/sh\ncase "$1" in\n  store) cat > ${store} ;;\n  get) cat ${store} 2>/dev/null || { echo 'credentials not found'; exit 1; } ;;\nesac\n`);
  chmodSync(path.join(bin, `docker-credential-${name}`), 0o755);
}

describe('saveLogin', () => {
  it('writes auths with mode 0600, keeps other settings, replaces an older entry, leaves no temp file', async () => {
    const cfgDir = path.join(dir, 'login');
    mkdirSync(cfgDir, { recursive: true });
    writeFileSync(path.join(cfgDir, 'config.json'), JSON.stringify({ experimental: 'enabled', auths: { 'https://r.example.com/': { auth: b64('old:old') } } }));
    const file = await saveLogin('r.example.com', 'new', 'n3w:pass', { configDir: cfgDir });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const cfg = JSON.parse(readFileSync(file, 'utf8'));
    expect(cfg.experimental).toBe('enabled');
    expect(Object.keys(cfg.auths)).toEqual(['r.example.com']);
    expect(readdirSync(cfgDir)).toEqual(['config.json']);
    const creds = await credentialsFor('r.example.com', { env: env(), configDir: cfgDir });
    expect(creds).toEqual({ kind: 'basic', username: 'new', password: 'n3w:pass' });
  });

  it('stores a login for a host the config sends to a credential helper in that helper, which is asked first', async () => {
    const cfgDir = path.join(dir, 'helped');
    keepingHelper('memo', cfgDir);
    const config = JSON.stringify({ credHelpers: { 'helped.example.com': 'memo' } });
    writeFileSync(path.join(cfgDir, 'config.json'), config);
    expect(await saveLogin('helped.example.com', 'u', 'new-pass', { configDir: cfgDir, env: env() })).toBe('docker-credential-memo');
    expect(await credentialsFor('helped.example.com', { env: env(), configDir: cfgDir })).toEqual({ kind: 'basic', username: 'u', password: 'new-pass' });
    expect(readFileSync(path.join(cfgDir, 'config.json'), 'utf8')).toBe(config);
    // A helper that cannot store says so, without its output.
    writeFileSync(path.join(cfgDir, 'config.json'), JSON.stringify({ credHelpers: { 'broken.example.com': 'test' } }));
    await expect(saveLogin('broken.example.com', 'u', 'p', { configDir: cfgDir, env: env() })).rejects.toMatchObject({
      message: 'credential helper docker-credential-test could not store the login for broken.example.com (exit 2)',
    });
  });

  it('stores a login in the credsStore when no helper is named for the host, leaving an empty auths entry, as docker login does', async () => {
    const cfgDir = path.join(dir, 'stored');
    keepingHelper('keychain', cfgDir);
    writeFileSync(path.join(cfgDir, 'config.json'), JSON.stringify({ credsStore: 'keychain', auths: { 'stored.example.com': { auth: b64('old:old') } } }));
    expect(await saveLogin('stored.example.com', 'u', 'secret', { configDir: cfgDir, env: env() })).toBe('docker-credential-keychain');
    expect(JSON.parse(readFileSync(path.join(cfgDir, 'config.json'), 'utf8')).auths).toEqual({ 'stored.example.com': {} });
    expect(readFileSync(path.join(cfgDir, 'config.json'), 'utf8')).not.toContain(b64('u:secret'));
    expect(await credentialsFor('stored.example.com', { env: env(), configDir: cfgDir })).toEqual({ kind: 'basic', username: 'u', password: 'secret' });
  });

  it('creates the config directory and uses the Docker Hub key, however the Hub is spelled', async () => {
    for (const hub of ['registry-1.docker.io', 'docker.io', 'index.docker.io']) {
      const cfgDir = path.join(dir, 'fresh', hub);
      await saveLogin(hub, 'u', 'p', { configDir: cfgDir });
      const cfg = JSON.parse(readFileSync(path.join(cfgDir, 'config.json'), 'utf8'));
      expect(Object.keys(cfg.auths), hub).toEqual(['https://index.docker.io/v1/']);
    }
  });
});
