/**
 * Where the credentials for a registry host come from, in the order people expect: the
 * IMGBUILD_REGISTRY_USER / IMGBUILD_REGISTRY_PASSWORD environment (optionally limited to
 * IMGBUILD_REGISTRY_HOST), then the Docker config file (`auths`, `credHelpers`, `credsStore`,
 * the latter two through `docker-credential-<name> get`). Also `saveLogin`, which records a login
 * in that file atomically with mode 0600. Secrets never enter an error message.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImgbuildError } from '../errors.js';
import { DOCKER_HUB, isValidHost } from './reference.js';

export type Credentials =
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token (docker's `identitytoken`), exchanged at the token endpoint. */
  | { kind: 'identity'; identityToken: string };

export interface CredentialOptions {
  env?: NodeJS.ProcessEnv;
  /** Directory holding config.json; defaults to $DOCKER_CONFIG or ~/.docker. */
  configDir?: string;
}

interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}
interface DockerConfig {
  auths?: Record<string, DockerAuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [k: string]: unknown;
}

/** The key Docker uses for Docker Hub in config files and credential helpers. */
const HUB_KEY = 'https://index.docker.io/v1/';

export function dockerConfigPath(opts: CredentialOptions = {}): string {
  const env = opts.env ?? process.env;
  const dir = opts.configDir ?? env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

/** Credentials for `host`, or undefined for anonymous access. */
export async function credentialsFor(host: string, opts: CredentialOptions = {}): Promise<Credentials | undefined> {
  const fromEnv = envCredentials(host, opts.env ?? process.env);
  if (fromEnv) return fromEnv;
  const cfg = await readDockerConfig(dockerConfigPath(opts));
  const helper = helperFor(cfg, host);
  if (helper) return runCredentialHelper(helper, helperKey(host), opts.env);
  // An empty entry is what `docker login` leaves in auths when a credsStore holds the secret.
  const entry = findAuthEntry(cfg.auths ?? {}, host);
  const inConfig = entry && decodeAuthEntry(entry, host);
  if (inConfig) return inConfig;
  if (cfg.credsStore) return runCredentialHelper(cfg.credsStore, helperKey(host), opts.env);
  return undefined;
}

function envCredentials(host: string, env: NodeJS.ProcessEnv): Credentials | undefined {
  const username = env.IMGBUILD_REGISTRY_USER;
  const password = env.IMGBUILD_REGISTRY_PASSWORD;
  if (!username || password === undefined) return undefined;
  // Scoped on purpose: credentials for the registry a build pushes to must never be offered to
  // the one its base comes from (or to a token service that registry names).
  const scope = env.IMGBUILD_REGISTRY_HOST;
  if (!scope) {
    throw new ImgbuildError('usage', 'IMGBUILD_REGISTRY_USER is set but IMGBUILD_REGISTRY_HOST is not', 'set IMGBUILD_REGISTRY_HOST to the registry these credentials are for, e.g. ghcr.io (several: comma-separated)');
  }
  const hosts = scope.split(',').map((h) => normaliseHost(h.trim()));
  return hosts.includes(host) ? { kind: 'basic', username, password } : undefined;
}

/** `https://index.docker.io/v1/` -> registry-1.docker.io; `https://h:5000/x` -> h:5000. */
export function normaliseHost(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').split('/')[0]!.toLowerCase();
  return host === 'index.docker.io' || host === 'docker.io' || host === 'registry.hub.docker.com' ? DOCKER_HUB : host;
}

/**
 * The registry `imgbuild login <arg>` names, read as `docker login` reads it: a URL names its host
 * (`https://index.docker.io/v1/`), and the Hub's names are its registry's. So the login is checked
 * where pushes go, not at `docker.io` or at a host called `https://ghcr.io`.
 */
export function loginHost(arg: string): string {
  const host = normaliseHost(arg.trim());
  if (!isValidHost(host)) throw new ImgbuildError('usage', `${JSON.stringify(arg)} is not a registry host`, 'give the host (and port) alone, e.g. ghcr.io or 127.0.0.1:5000');
  return host;
}

/** The credential helper the config names for `host` (normalised), which wins over its auths. */
function helperFor(cfg: DockerConfig, host: string): string | undefined {
  return cfg.credHelpers?.[host] ?? (host === DOCKER_HUB ? cfg.credHelpers?.['docker.io'] : undefined);
}

function helperKey(host: string): string {
  return host === DOCKER_HUB ? HUB_KEY : host;
}

function findAuthEntry(auths: Record<string, DockerAuthEntry>, host: string): DockerAuthEntry | undefined {
  for (const [key, entry] of Object.entries(auths)) if (normaliseHost(key) === host) return entry;
  return undefined;
}

function decodeAuthEntry(e: DockerAuthEntry, host: string): Credentials | undefined {
  if (e.identitytoken) return { kind: 'identity', identityToken: e.identitytoken };
  if (e.username && e.password !== undefined) return { kind: 'basic', username: e.username, password: e.password };
  if (!e.auth) return undefined;
  const text = Buffer.from(e.auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) {
    throw new ImgbuildError('registry', `the docker config entry for ${host} has a malformed "auth" value`,
      `log in again: imgbuild login ${host}`);
  }
  return { kind: 'basic', username: text.slice(0, colon), password: text.slice(colon + 1) };
}

async function readDockerConfig(file: string): Promise<DockerConfig> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ImgbuildError('registry', `cannot read docker config ${file}: ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as DockerConfig;
  } catch {
    throw new ImgbuildError('registry', `docker config ${file} is not valid JSON`, 'fix or remove the file');
  }
}

/** Run `docker-credential-<name> get` with the server on stdin; "not found" means anonymous. */
export async function runCredentialHelper(name: string, server: string, env?: NodeJS.ProcessEnv): Promise<Credentials | undefined> {
  const prog = `docker-credential-${name}`;
  const { code, stdout, stderr, spawnError } = await run(prog, ['get'], server, env);
  if (spawnError) {
    throw new ImgbuildError('registry', `credential helper ${prog} could not be run (${spawnError})`,
      `install ${prog} or remove it from the docker config`);
  }
  if (code !== 0) {
    // Helpers say "credentials not found" on stdout or stderr when they hold nothing for a host.
    if (/not found/i.test(stdout + stderr)) return undefined;
    throw new ImgbuildError('registry', `credential helper ${prog} failed for ${server} (exit ${code})`,
      `run \`echo ${server} | ${prog} get\` to see its error`);
  }
  let out: { Username?: string; Secret?: string };
  try {
    out = JSON.parse(stdout) as typeof out;
  } catch {
    throw new ImgbuildError('registry', `credential helper ${prog} printed something that is not JSON`);
  }
  if (!out.Secret) return undefined;
  if (out.Username === '<token>') return { kind: 'identity', identityToken: out.Secret };
  return { kind: 'basic', username: out.Username ?? '', password: out.Secret };
}

/** `docker-credential-<name> store`; its output is never shown (a helper may echo what it was given). */
async function storeWithHelper(name: string, server: string, username: string, password: string, env?: NodeJS.ProcessEnv): Promise<string> {
  const prog = `docker-credential-${name}`;
  const { code, spawnError } = await run(prog, ['store'], JSON.stringify({ ServerURL: server, Username: username, Secret: password }), env);
  if (spawnError || code !== 0) {
    throw new ImgbuildError('registry', `credential helper ${prog} could not store the login for ${server} (${spawnError ?? `exit ${code}`})`,
      `the docker config sends ${server} to ${prog}: fix or install it, or remove it from credHelpers`);
  }
  return prog;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  spawnError?: string;
}

function run(prog: string, args: string[], input: string, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(prog, args, { env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', (e: NodeJS.ErrnoException) => resolve({ code: null, stdout, stderr, spawnError: e.code ?? e.message }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/**
 * Record a login for `host` as `docker login` does: in the credential helper the config names for
 * the host (asked before auths, so an auths entry would never be read), else in its `credsStore`
 * (the system's keychain, where Docker Desktop keeps logins) with an empty auths entry saying
 * there is one, else base64 in the config file's auths (temp file, mode 0600, rename). Returns
 * where it went.
 */
export async function saveLogin(host: string, username: string, password: string, opts: CredentialOptions = {}): Promise<string> {
  const file = dockerConfigPath(opts);
  const cfg = await readDockerConfig(file);
  const registry = normaliseHost(host);
  const helper = helperFor(cfg, registry);
  if (helper) return storeWithHelper(helper, helperKey(registry), username, password, opts.env);
  const stored = cfg.credsStore ? await storeWithHelper(cfg.credsStore, helperKey(registry), username, password, opts.env) : undefined;
  // "docker.io", "index.docker.io": the Hub, which Docker itself keys as HUB_KEY.
  const key = registry === DOCKER_HUB ? HUB_KEY : host;
  const auths = { ...(cfg.auths ?? {}) };
  for (const k of Object.keys(auths)) if (normaliseHost(k) === registry) delete auths[k];
  auths[key] = stored ? {} : { auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64') };
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    await fs.writeFile(tmp, JSON.stringify({ ...cfg, auths }, null, '\t') + '\n', { mode: 0o600 });
    await fs.chmod(tmp, 0o600); // writeFile's mode is filtered by the umask
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw new ImgbuildError('registry', `cannot write docker config ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return stored ?? file;
}
