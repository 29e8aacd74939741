// Wall time, peak RSS and CPU time of a shell command, from GNU time (`%M`: the largest resident
// set of the command or any process it waited for, so a pipeline reports its biggest member;
// `%U` and `%S`: user and system CPU of everything it waited for, a pipeline's members summed).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The environment of every timed command: this one's, without NODE_EXTRA_CA_CERTS. Node 20
 * reads and parses that bundle as it starts, whether or not anything uses TLS (`node -e 0`:
 * 0.05 s with the system bundle named, 0.02 s without, on the machine these figures come
 * from), and no benchmarked command makes a TLS connection. `run.mjs` times one no-op row with
 * the variable kept, so its cost shows where it is set.
 */
export const EXTRA_CA_CERTS = 'NODE_EXTRA_CA_CERTS';
export const benchEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== EXTRA_CA_CERTS));

export function have(cmd) {
  return spawnSync('bash', ['-c', `command -v ${cmd}`]).status === 0;
}

export function measure(cmd, { env = benchEnv } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-bench-'));
  const out = join(dir, 'time');
  try {
    const started = process.hrtime.bigint();
    const r = spawnSync('/usr/bin/time', ['-o', out, '-f', '%e %M %U %S', 'bash', '-o', 'pipefail', '-c', cmd], { encoding: 'utf8', maxBuffer: 64 << 20, env });
    const wall = Number(process.hrtime.bigint() - started) / 1e9;
    const [, rssKB, user, system] = readFileSync(out, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    if (r.status !== 0 && !cmd.includes(' info ')) throw new Error(`benchmark command failed (${r.status}): ${cmd}\n${r.stderr}`);
    return { seconds: wall, rssMB: rssKB / 1024, cpuSeconds: user + system, code: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
