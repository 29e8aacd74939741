/**
 * Thin wrappers over the independent verifiers the e2e tests hold imgbuild's output against:
 * skopeo (inspect, copy), umoci (unpack), oci-image-tool (validate) and runc (run an unpacked
 * bundle), plus `listRootfs` to assert a root file system's exact contents. Each wrapper runs the
 * real tool and throws with the full command line and its stderr when the tool says no, so a
 * failing test shows what the verifier objected to. Runs as root (umoci without --rootless).
 * The project's machines are documented as refusing rlimits and cgroup settings (the VM this was
 * written on happened to accept both), so `runcRun` drops `process.rlimits`, `linux.resources`
 * and `linux.cgroupsPath` first: a test proves the image runs, not that it can be limited here.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ToolResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs `cmd args` with no stdin and collects its output; never throws on a non-zero exit. */
export function runTool(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        // A child killed by a signal reports like a shell would: 128 + signal number.
        exitCode: code ?? (signal ? 128 + signalNumber(signal) : 1),
      });
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  return ({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2 } as Record<string, number>)[signal] ?? 0;
}

/** Like `runTool`, but a non-zero exit throws with the command line and everything it printed. */
export async function runToolOk(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<ToolResult> {
  const res = await runTool(cmd, args, opts);
  if (res.exitCode !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${res.exitCode}\n--- stderr\n${res.stderr}--- stdout\n${res.stdout}`,
    );
  }
  return res;
}

/** Loopback registries in tests speak plain HTTP; skopeo must be told not to insist on TLS. */
function isLoopbackDocker(ref: string): boolean {
  return /^docker:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//.test(ref);
}

export interface SkopeoOptions {
  /** `--raw`: the manifest (or index) exactly as stored, parsed. */
  raw?: boolean;
  /** `--config`: the image config blob, parsed. */
  config?: boolean;
  /** `user:password` for a registry with auth. */
  creds?: string;
}

/** `skopeo inspect <transportRef>` parsed; e.g. `oci:/path/layout:tag`, `docker://127.0.0.1:5000/r:t`. */
export async function skopeoInspect(transportRef: string, opts: SkopeoOptions = {}): Promise<any> {
  const args = ['inspect'];
  if (opts.raw) args.push('--raw');
  if (opts.config) args.push('--config');
  if (opts.creds) args.push('--creds', opts.creds);
  if (isLoopbackDocker(transportRef)) args.push('--tls-verify=false');
  args.push(transportRef);
  const { stdout } = await runToolOk('skopeo', args);
  return JSON.parse(stdout);
}

export interface SkopeoCopyOptions {
  srcCreds?: string;
  destCreds?: string;
}

/**
 * `skopeo copy <src> <dst>`. `--insecure-policy` because a fresh machine may lack
 * /etc/containers/policy.json and the tests judge content, not signatures.
 */
export async function skopeoCopy(src: string, dst: string, opts: SkopeoCopyOptions = {}): Promise<void> {
  const args = ['--insecure-policy', 'copy', '--quiet'];
  if (isLoopbackDocker(src)) args.push('--src-tls-verify=false');
  if (isLoopbackDocker(dst)) args.push('--dest-tls-verify=false');
  if (opts.srcCreds) args.push('--src-creds', opts.srcCreds);
  if (opts.destCreds) args.push('--dest-creds', opts.destCreds);
  args.push(src, dst);
  await runToolOk('skopeo', args);
}

/**
 * `umoci unpack --image <layout>:<tag> <destDir>` as root: checks every blob's digest, applies the
 * layers in order (whiteouts included) and writes a runc bundle. Returns the rootfs path.
 */
export async function umociUnpack(layoutDir: string, tag: string, destDir: string): Promise<string> {
  await runToolOk('umoci', ['unpack', '--image', `${layoutDir}:${tag}`, destDir]);
  return join(destDir, 'rootfs');
}

/** The OCI project's own validator; throws with its report when the layout or image is invalid. */
export async function ociValidate(layoutDir: string, tag: string): Promise<void> {
  await runToolOk('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${tag}`, layoutDir]);
}

/** Removes what the sandbox forbids from a bundle's config.json, and asks for plain pipes. */
export async function prepareBundle(bundleDir: string): Promise<void> {
  const file = join(bundleDir, 'config.json');
  const spec = JSON.parse(await readFile(file, 'utf8'));
  spec.process ??= {};
  spec.process.terminal = false;
  delete spec.process.rlimits;
  if (spec.linux) {
    delete spec.linux.resources;
    delete spec.linux.cgroupsPath;
  }
  await writeFile(file, JSON.stringify(spec, null, 2));
}

/**
 * `runc run` on an unpacked bundle, in the foreground, with a unique container id and a private
 * state root (`--root` in a temp dir) so it never meets another runc's containers.
 */
export async function runcRun(bundleDir: string): Promise<ToolResult> {
  await prepareBundle(bundleDir);
  const root = await mkdtemp(join(tmpdir(), 'imgbuild-runc-'));
  const id = `imgbuild-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    return await runTool('runc', ['--root', root, 'run', '--bundle', bundleDir, id]);
  } finally {
    // `runc run` deletes the container when it exits; this only matters if it did not.
    await runTool('runc', ['--root', root, 'delete', '--force', id]).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface RootfsEntry {
  /** Absolute inside the image, e.g. `/bin/busybox`. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (`mode & 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes for regular files; 0 for everything else, whose on-disk size says nothing. */
  size: number;
  /** Symlink target, for symlinks only. */
  target?: string;
}

/** Every entry under `dir` (not `dir` itself), sorted bytewise by path, for exact assertions. */
export async function listRootfs(dir: string): Promise<RootfsEntry[]> {
  const entries: RootfsEntry[] = [];
  await walk(dir, '', entries);
  return entries.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

async function walk(root: string, rel: string, into: RootfsEntry[]): Promise<void> {
  for (const name of await readdir(join(root, rel))) {
    const relPath = `${rel}/${name}`;
    const full = join(root, relPath);
    const st = await lstat(full);
    const type = entryType(st);
    const entry: RootfsEntry = {
      path: relPath,
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: type === 'file' ? st.size : 0,
    };
    if (type === 'symlink') entry.target = await readlink(full);
    into.push(entry);
    if (type === 'dir') await walk(root, relPath, into);
  }
}

function entryType(st: Awaited<ReturnType<typeof lstat>>): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}
