/**
 * The imgbuild CLI as the registry e2e tests run it: a private snapshot of dist/ (copied once per
 * test file, with package.json beside it and node_modules linked) so another engineer rebuilding
 * dist/ mid-run cannot hand a test a half-written module; a clean environment (no IMGBUILD_*,
 * CI or host DOCKER_CONFIG: credentials come only from what a test passes); optional stdin.
 * Also the specs those tests build: a busybox base with /etc/os-release, and an app on top whose
 * entrypoint (a busybox sh script in the app layer) reads a file of the base.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

const REPO_ROOT = resolve(import.meta.dirname, '..', '..', '..');

export interface CliResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface CliRunOptions {
  env?: Record<string, string>;
  input?: string;
  cwd?: string;
}

const DROPPED_ENV = /^(SOURCE_DATE_EPOCH|GIT_SHA|CI|IMGBUILD_.*|XDG_CACHE_HOME|DOCKER_CONFIG)$/;

/** A runnable copy of dist/ in a temp dir; `run` spawns it, `dispose` removes it. */
export class Cli {
  private constructor(readonly root: string, private readonly dockerConfig: string) {}

  static async snapshot(): Promise<Cli> {
    const dist = join(REPO_ROOT, 'dist', 'cli', 'main.js');
    if (!existsSync(dist)) throw new Error(`${dist} is missing: run \`npx tsc -p tsconfig.build.json\` first`);
    const root = await mkdtemp(join(tmpdir(), 'imgbuild-e2e-cli-'));
    await cp(join(REPO_ROOT, 'dist'), join(root, 'dist'), { recursive: true });
    await copyFile(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
    await symlink(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
    const dockerConfig = join(root, 'docker-config');
    await mkdir(dockerConfig);
    return new Cli(root, dockerConfig);
  }

  run(args: string[], opts: CliRunOptions = {}): Promise<CliResult> {
    const env: NodeJS.ProcessEnv = { DOCKER_CONFIG: this.dockerConfig };
    for (const [k, v] of Object.entries(process.env)) if (!DROPPED_ENV.test(k)) env[k] = v;
    Object.assign(env, opts.env);
    const child = spawn(process.execPath, [join(this.root, 'dist', 'cli', 'main.js'), ...args], {
      cwd: opts.cwd ?? this.root,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.end(opts.input ?? '');
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    return new Promise((done, fail) => {
      child.on('error', fail);
      child.on('close', (code) => done({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), exitCode: code ?? 128 }));
    });
  }

  async dispose(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}

export interface ApplyEventLike {
  type: string;
  digest?: string;
  action?: string;
  [k: string]: unknown;
}

/** `apply --json` stdout: each line one JSON event. */
export function parseEvents(stdout: string): ApplyEventLike[] {
  return stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as ApplyEventLike);
}

/** Throws with everything the CLI printed unless it exited 0. */
export function ok(r: CliResult, what: string): CliResult {
  if (r.exitCode !== 0) throw new Error(`${what} exited ${r.exitCode}\n--- stderr\n${r.stderr}--- stdout\n${r.stdout}`);
  return r;
}

/** The image digest of a successful `apply --json` run. */
export function doneDigest(r: CliResult): string {
  const done = parseEvents(ok(r, 'apply').stdout).filter((e) => e.type === 'done');
  if (done.length !== 1) throw new Error(`expected one done event:\n${r.stdout}`);
  return done[0]!.digest!;
}

export type Output = { registry: string } | { oci: string };

/** A base image spec: static busybox and an /etc/os-release naming `flavour`. */
export async function writeBaseSpec(dir: string, o: { name: string; tag: string; flavour: string; outputs: Output[] }): Promise<string> {
  await mkdir(join(dir, 'ctx', 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(dir, 'ctx', 'bin', 'busybox'));
  await chmod(join(dir, 'ctx', 'bin', 'busybox'), 0o755);
  return writeSpecFile(dir, {
    name: o.name,
    tags: [o.tag],
    context: 'ctx',
    layers: [
      { name: 'busybox', copy: [{ from: 'bin/busybox', to: '/bin/busybox', mode: '0755' }] },
      { name: 'etc', files: [{ path: '/etc/os-release', content: `NAME="imgbuild ${o.flavour}"\nID=${o.flavour}\n` }] },
    ],
    output: o.outputs,
  });
}

export const APP_SCRIPT = '#!/bin/busybox sh\n. /etc/os-release\n/bin/busybox echo "app on $NAME ($ID)"\n/bin/busybox cat /app/message.txt\n';

/** An app spec FROM `from`: one layer with the entrypoint script and a message file. */
export async function writeAppSpec(dir: string, o: { name: string; tag: string; from: string; message: string; outputs: Output[] }): Promise<string> {
  await mkdir(join(dir, 'ctx'), { recursive: true });
  await writeFile(join(dir, 'ctx', 'run.sh'), APP_SCRIPT);
  await writeFile(join(dir, 'ctx', 'message.txt'), `${o.message}\n`);
  return writeSpecFile(dir, {
    name: o.name,
    tags: [o.tag],
    from: o.from,
    context: 'ctx',
    layers: [{ name: 'app', copy: [{ from: 'run.sh', to: '/app/run.sh', mode: '0755' }, { from: 'message.txt', to: '/app/message.txt', mode: '0644' }] }],
    config: { entrypoint: ['/bin/busybox', 'sh', '/app/run.sh'] },
    output: o.outputs,
  });
}

async function writeSpecFile(dir: string, spec: Record<string, unknown>): Promise<string> {
  const file = join(dir, 'image.yaml');
  await writeFile(file, stringify({ apiVersion: 'imgbuild/v1', ...spec }));
  return file;
}

export function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Flip one bit in the middle of a file (same size, different bytes). */
export async function flipByte(file: string): Promise<void> {
  await chmod(file, 0o644);
  const b = await readFile(file);
  const i = b.length >> 1;
  b.writeUInt8(b.readUInt8(i) ^ 1, i);
  await writeFile(file, b);
}

/** Every blob of an OCI layout whose bytes do not hash to its name (should be none, ever). */
export async function corruptLayoutBlobs(layout: string): Promise<string[]> {
  const dir = join(layout, 'blobs', 'sha256');
  if (!existsSync(dir)) return [];
  const bad: string[] = [];
  for (const name of await readdir(dir)) if (sha256Hex(await readFile(join(dir, name))) !== name) bad.push(name);
  return bad;
}
