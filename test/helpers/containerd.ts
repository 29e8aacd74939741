/**
 * A private containerd for e2e tests: started from a generated config whose root, state, temp,
 * `[grpc]`, `[ttrpc]` and `[debug]` sockets and the `opt` plugin dir all live in one temp dir, so
 * it never touches (or is touched by) a system containerd. Tests import docker archives (what
 * `docker load` does), pull from a loopback registry, and run an image's entrypoint for real.
 *
 * What this sandbox (a Firecracker VM, root, cgroup v1 hybrid, ext4 root) allows, found by trying:
 * - containerd 1.6 boots as root from the temp config; the CRI plugin is disabled (it wants CNI
 *   and a streaming port) and so are the aufs/btrfs/devmapper/zfs snapshotters.
 * - overlayfs works here; the overlayfs plugin mount-tests its root when it loads, so we read its
 *   status from `ctr plugins ls` and fall back to the native snapshotter when it is not `ok`.
 * - runc under the shim runs ctr's default spec (RLIMIT_NOFILE 1024 included). We still pass
 *   `--cgroup ""` so no cgroup is created under the namespace (ctr would otherwise leave an empty
 *   `/sys/fs/cgroup/<ctrl>/<namespace>` behind), and `--runc-root` / `--fifo-dir` in the temp dir.
 * - Not movable in containerd 1.6: shims put their sockets in /run/containerd/s/<hash>. The hash
 *   covers our socket path, namespace and id, so they cannot clash with a system containerd.
 * Each instance uses its own namespace too. stop() kills tasks, containerd, then any shim whose
 * command line names our socket, unmounts leftovers under the temp dir and removes it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runTool, runToolOk, type ToolResult } from './oci-tools.js';

export interface Containerd {
  /** The gRPC socket, for `ctr -a`. */
  address: string;
  namespace: string;
  snapshotter: 'overlayfs' | 'native';
  /** `ctr images import`; returns the image names it created. */
  importArchive(file: string): Promise<string[]>;
  /** `ctr images pull`; `plainHttp` for a loopback registry without TLS. */
  pull(ref: string, opts?: { plainHttp?: boolean; user?: string }): Promise<void>;
  /** `ctr run --rm <ref> <id>`: the image's entrypoint, for real. Never throws on a non-zero exit. */
  run(ref: string, id: string): Promise<ToolResult>;
  /** Everything containerd printed so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/** Unix socket paths are capped near 108 bytes; a long TMPDIR would break them. */
async function makeTempDir(): Promise<string> {
  const base = tmpdir().length > 60 ? '/tmp' : tmpdir();
  return mkdtemp(join(base, 'imgbuild-ctd-'));
}

function configToml(dir: string): string {
  return [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    `temp = "${dir}/tmp"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",',
    '  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",',
    '  "io.containerd.snapshotter.v1.zfs"]',
    '[grpc]',
    `  address = "${dir}/containerd.sock"`,
    '[ttrpc]',
    `  address = "${dir}/containerd.sock.ttrpc"`,
    '[debug]',
    `  address = "${dir}/debug.sock"`,
    '  level = "info"',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${dir}/opt"`,
    '',
  ].join('\n');
}

export interface StartOptions {
  /** Force a snapshotter; by default overlayfs when it works here, else native. */
  snapshotter?: 'overlayfs' | 'native';
}

export async function startContainerd(opts: StartOptions = {}): Promise<Containerd> {
  const dir = await makeTempDir();
  await mkdir(join(dir, 'tmp'));
  await writeFile(join(dir, 'config.toml'), configToml(dir));
  const address = join(dir, 'containerd.sock');
  const namespace = `imgbuild-${randomBytes(4).toString('hex')}`;
  const logChunks: string[] = [];
  const child = spawn('containerd', ['--config', join(dir, 'config.toml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (b: Buffer) => logChunks.push(b.toString('utf8')));
  child.stderr!.on('data', (b: Buffer) => logChunks.push(b.toString('utf8')));
  const log = () => logChunks.join('');
  const ctr = (...args: string[]) => ['-a', address, '-n', namespace, ...args];

  try {
    await waitReady(child, address, log);
  } catch (e) {
    await stopAll(child, dir, address, namespace);
    throw e;
  }
  const snapshotter = opts.snapshotter ?? (await pickSnapshotter(address));

  return {
    address,
    namespace,
    snapshotter,
    log,
    async importArchive(file) {
      const { stdout } = await runToolOk('ctr', ctr('images', 'import', '--snapshotter', snapshotter, file));
      // ctr prints "unpacking <name> (sha256:...)...done" once per image it created.
      return [...stdout.matchAll(/unpacking (\S+) \(sha256:/g)].map((m) => m[1]!);
    },
    async pull(ref, opts = {}) {
      const args = ['images', 'pull', '--snapshotter', snapshotter];
      if (opts.plainHttp) args.push('--plain-http');
      if (opts.user) args.push('--user', opts.user);
      await runToolOk('ctr', ctr(...args, ref));
    },
    run(ref, id) {
      return runTool(
        'ctr',
        ctr('run', '--rm', '--snapshotter', snapshotter, '--cgroup', '',
          '--runc-root', join(dir, 'runc'), '--fifo-dir', join(dir, 'fifo'), ref, id),
      );
    },
    stop: () => stopAll(child, dir, address, namespace),
  };
}

/** Polls `ctr version` until the socket answers; fails early if containerd dies. */
async function waitReady(child: ChildProcess, address: string, log: () => string): Promise<void> {
  // A deadline for a hung start, not a timing assertion: a slow machine only waits longer.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`containerd exited before it answered:\n${log()}`);
    }
    const res = await runTool('ctr', ['-a', address, 'version']);
    if (res.exitCode === 0) return;
    if (Date.now() > deadline) throw new Error(`containerd did not answer on ${address}:\n${res.stderr}\n${log()}`);
    await sleep(100);
  }
}

/** overlayfs when its plugin loaded (it mount-tests its root at load time), else native. */
async function pickSnapshotter(address: string): Promise<'overlayfs' | 'native'> {
  const { stdout } = await runToolOk('ctr', ['-a', address, 'plugins', 'ls']);
  const ok = stdout.split('\n').some((l) => /io\.containerd\.snapshotter\.v1\s+overlayfs\s+\S+\s+ok\b/.test(l));
  return ok ? 'overlayfs' : 'native';
}

async function stopAll(child: ChildProcess, dir: string, address: string, namespace: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) await killTasks(address, namespace);
  await terminate(child);
  for (const pid of await shimPids(address)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await unmountUnder(dir);
  await rm(dir, { recursive: true, force: true });
}

/** A run that was interrupted leaves its task behind; kill it so the shim can exit. */
async function killTasks(address: string, namespace: string): Promise<void> {
  const ctr = (...a: string[]) => runTool('ctr', ['-a', address, '-n', namespace, ...a]);
  const { stdout } = await ctr('tasks', 'ls', '-q');
  for (const id of stdout.split('\n').filter(Boolean)) {
    await ctr('tasks', 'kill', '-s', 'SIGKILL', id);
    await ctr('tasks', 'delete', '--force', id);
  }
}

/** SIGTERM, then SIGKILL if containerd has not exited after a grace period. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const grace = sleep(10_000).then(() => 'late' as const);
  if ((await Promise.race([exited, grace])) === 'late') {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Shims are daemonised away from us; find ours by the `-address <our socket>` they were given. */
async function shimPids(address: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    const parts = argv.split('\0');
    const i = parts.indexOf('-address');
    if (parts[0]?.includes('containerd-shim') && i >= 0 && parts[i + 1] === address) pids.push(Number(name));
  }
  return pids;
}

/** Snapshot and rootfs mounts of a killed container would make `rm -r` fail or reach into them. */
async function unmountUnder(dir: string): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points) await runTool('umount', ['-l', p]);
}
