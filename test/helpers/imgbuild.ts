/**
 * Running the real `imgbuild` CLI (dist/bin/imgbuild.cjs, which loads the bundle `npm run build` makes) as a child
 * process for e2e tests, and making the temp contexts, specs and cache dirs those runs read.
 * Every run gets an explicit cache dir and an environment with no stray SOURCE_DATE_EPOCH,
 * GIT_SHA, IMGBUILD_* or CI, so a test's outcome never depends on the shell it was started from.
 * `--json` output is parsed strictly: a stdout line that is not a JSON object fails the test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { ApplyEvent } from '../../src/run/events.js';
import type { BuildPlan, PlanEntry } from '../../src/plan/types.js';
import type { RootfsEntry } from './oci-tools.js';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(REPO_ROOT, 'dist', 'bin', 'imgbuild.cjs');

export interface CliResult {
  stdout: string;
  stderr: string;
  /** The exit code, or 128 + signal number when the process was killed. */
  exitCode: number;
}

export interface CliOptions {
  cwd?: string;
  /** Added to the cleaned environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Run as this user and group (the tests run as root, which reads any file). */
  uid?: number;
  gid?: number;
}

const DROPPED_ENV = /^(SOURCE_DATE_EPOCH|GIT_SHA|CI|IMGBUILD_.*|XDG_CACHE_HOME)$/;

function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!DROPPED_ENV.test(k)) env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Fails loudly when the CLI has not been built (`npm test` builds it first). */
export function assertCliBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does) before the e2e tests`);
}

/** Starts `node dist/bin/imgbuild.cjs ...args`; the caller collects output and may kill it. */
export function spawnCli(args: string[], opts: CliOptions = {}): ChildProcess {
  assertCliBuilt();
  const ids = opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.gid ?? opts.uid };
  return spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? REPO_ROOT, env: cliEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'], ...ids });
}

/** Collects a spawned CLI's output until it exits. */
export function collect(child: ChildProcess): Promise<CliResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  return new Promise((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolvePromise({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        exitCode: code ?? (signal === 'SIGKILL' ? 137 : 128),
      }),
    );
  });
}

/** Runs the CLI to completion; never throws on a non-zero exit. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return collect(spawnCli(args, opts));
}

/** Parses `--json` stdout: every line must be one JSON object with a `type`. */
export function parseEvents(stdout: string): ApplyEvent[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const v = JSON.parse(line) as ApplyEvent;
      if (typeof v !== 'object' || v === null || typeof v.type !== 'string') throw new Error(`not an event: ${line}`);
      return v;
    });
}

export type EventOf<T extends ApplyEvent['type']> = Extract<ApplyEvent, { type: T }>;

export function eventsOf<T extends ApplyEvent['type']>(events: ApplyEvent[], type: T): EventOf<T>[] {
  return events.filter((e): e is EventOf<T> => e.type === type);
}

/** `imgbuild apply <spec> --json --cache-dir <cache> ...extra`; throws unless it exits 0. Returns the events. */
export async function applyOk(spec: string, cacheDir: string, extra: string[] = [], opts: CliOptions = {}): Promise<{ events: ApplyEvent[]; digest: string; result: CliResult }> {
  const result = await runCli(['apply', spec, '--json', '--cache-dir', cacheDir, ...extra], opts);
  if (result.exitCode !== 0) throw new Error(`imgbuild apply ${spec} exited ${result.exitCode}\n--- stderr\n${result.stderr}--- stdout\n${result.stdout}`);
  const events = parseEvents(result.stdout);
  const done = eventsOf(events, 'done');
  if (done.length !== 1) throw new Error(`expected one done event, got ${done.length}:\n${result.stdout}`);
  return { events, digest: done[0]!.digest, result };
}

/** `imgbuild plan <spec> --json`, parsed. */
export async function planJson(spec: string, cacheDir: string, opts: CliOptions = {}): Promise<BuildPlan> {
  const r = await runCli(['plan', spec, '--json', '--cache-dir', cacheDir], opts);
  if (r.exitCode !== 0) throw new Error(`imgbuild plan ${spec} exited ${r.exitCode}\n${r.stderr}`);
  return JSON.parse(r.stdout) as BuildPlan;
}

/** Temp dirs made by one test file, removed together in its afterAll. */
export class TempDirs {
  readonly #dirs: string[] = [];

  async make(prefix = 'imgbuild-e2e-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.#dirs.push(dir);
    return dir;
  }

  async cleanup(): Promise<void> {
    for (const d of this.#dirs.splice(0)) await rm(d, { recursive: true, force: true });
  }
}

export type TreeFile = string | Buffer | { content: string | Buffer; mode?: number };

/** Writes `files` (relative path -> content) under `root`, in the order given. */
export async function writeTree(root: string, files: Record<string, TreeFile>): Promise<void> {
  for (const [rel, f] of Object.entries(files)) {
    const abs = join(root, rel);
    await mkdir(dirname(abs), { recursive: true });
    const body = typeof f === 'string' || Buffer.isBuffer(f) ? f : f.content;
    const mode = typeof f === 'object' && !Buffer.isBuffer(f) ? f.mode : undefined;
    await writeFile(abs, body, mode === undefined ? {} : { mode });
  }
}

/** Writes a spec object as YAML to `dir/name`; returns its path. */
export async function writeSpec(dir: string, spec: Record<string, unknown>, name = 'image.yaml'): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, stringify({ apiVersion: 'imgbuild/v1', ...spec }));
  return file;
}

/** Copies the bundled example (image.example.yaml and example/) into `dir`; returns the spec path. */
export async function copyExample(dir: string): Promise<string> {
  await cp(join(REPO_ROOT, 'example'), join(dir, 'example'), { recursive: true });
  await cp(join(REPO_ROOT, 'image.example.yaml'), join(dir, 'image.example.yaml'));
  return join(dir, 'image.example.yaml');
}

/**
 * What `listRootfs` must show after unpacking a scratch-based image built from `plan`: every
 * layer's entries applied in order (a later layer's entry replaces an earlier one at its path).
 */
export function expectedRootfs(plan: BuildPlan): RootfsEntry[] {
  const byPath = new Map<string, RootfsEntry>();
  for (const layer of plan.layers) for (const e of layer.entries) byPath.set(e.path, rootfsEntryOf(e));
  return [...byPath.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

function rootfsEntryOf(e: PlanEntry): RootfsEntry {
  if (e.type === 'whiteout') throw new Error(`whiteout ${e.path} in a scratch image plan`);
  const base = { path: `/${e.path}`, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, size: e.type === 'file' ? e.size : 0 };
  return e.type === 'symlink' ? { ...base, target: e.target } : base;
}
