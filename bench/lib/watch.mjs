// Watch latency: start `imgbuild apply --watch --json`, wait for the first build, then change one
// app file per repetition and time until the `rebuild` event reports the new image. Peak RSS is
// the watcher's VmHWM from /proc, read just before it is stopped.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { benchEnv } from './measure.mjs';

const TIMEOUT_MS = 60_000;

export async function watchLatency({ cli, spec, cache, repeat, change }) {
  const child = spawn('node', [cli, 'apply', spec, '--watch', '--json', '--cache-dir', cache], { stdio: ['ignore', 'pipe', 'pipe'], env: benchEnv });
  const events = [];
  let wake;
  createInterface({ input: child.stdout }).on('line', (l) => {
    try {
      events.push(JSON.parse(l));
    } catch {
      return;
    }
    wake?.();
  });
  const waitFor = async (pred) => {
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const i = events.findIndex(pred);
      if (i >= 0) return events.splice(0, i + 1)[i];
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('the watcher gave no event in time');
      await new Promise((r) => {
        wake = r;
        setTimeout(r, 200);
      });
    }
  };
  try {
    // The first build, then the watcher on every input, then its start-up check of them.
    await waitFor((e) => e.type === 'watching');
    await new Promise((r) => setTimeout(r, 1000));
    const seconds = [];
    for (let i = 0; i < repeat; i++) {
      events.length = 0;
      const t0 = process.hrtime.bigint();
      change(i);
      const ev = await waitFor((e) => e.type === 'rebuild');
      if (ev.kind === 'error') throw new Error(`the watcher's rebuild failed: ${ev.error}`);
      seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
      await new Promise((r) => setTimeout(r, 300));
    }
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    return { seconds, rssMB: hwm ? Number(hwm[1]) / 1024 : 0 };
  } finally {
    child.kill('SIGTERM');
  }
}
