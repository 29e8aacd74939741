/**
 * Ctrl-C or SIGTERM during a command that writes (a one-shot `apply`, `lock`, `inspect`): the
 * temp files this process was writing are removed at once (a layer blob can be hundreds of
 * megabytes, left in the cache or beside a docker archive until a later build swept it), the
 * terminal's cursor is shown again (the progress display hides it), the interruption is said,
 * as an `error` event too under --json (exit code 128 + the signal's number, what a shell shows),
 * and the process ends by the signal itself. Every output is replaced by a rename, so each
 * is as it was or complete. Watch mode handles the signals itself: it lets a build finish.
 */
import { writeSync } from 'node:fs';
import { constants } from 'node:os';
import { isatty } from 'node:tty';
import { removeLiveTempsSync } from '../store/atomic.js';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const SHOW_CURSOR = '\u001B[?25h';

/**
 * A write that cannot fail the exit it comes before (a closed pipe, a full disk). A pipe Node has
 * made non-blocking answers EAGAIN while it is full: the write waits for the reader, a second at
 * most.
 */
function writeQuiet(fd: number, text: string): void {
  let rest = Buffer.from(text);
  for (let waits = 0; rest.length > 0 && waits < 200; ) {
    try {
      rest = rest.subarray(writeSync(fd, rest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      waits++;
    }
  }
}

/** Exit on the first SIGINT or SIGTERM from now on, as above; the returned function stops that. */
export function exitOnInterrupt(json: boolean | undefined): () => void {
  const handler = (signal: (typeof SIGNALS)[number]) => {
    removeLiveTempsSync();
    const exitCode = 128 + constants.signals[signal];
    // Straight to the file descriptors: the progress display holds back what goes through
    // process.stderr while it draws, and would never let this out.
    for (const fd of [1, 2]) if (isatty(fd)) writeQuiet(fd, SHOW_CURSOR);
    const message = `interrupted (${signal}): every output is as it was or complete`;
    if (json) writeQuiet(1, `${JSON.stringify({ type: 'error', exitCode, message })}\n`);
    writeQuiet(2, `\n${message}\n`);
    // Ended by the signal itself, once the writes above are out, so a parent sees what it sent:
    // `make` and a shell's `$?` tell it from a failure.
    for (const s of SIGNALS) process.off(s, handler);
    process.kill(process.pid, signal);
  };
  for (const s of SIGNALS) process.on(s, handler);
  return () => {
    for (const s of SIGNALS) process.off(s, handler);
  };
}

/** Run `action` with `exitOnInterrupt` in force. */
export async function interruptible<T>(json: boolean | undefined, action: () => Promise<T>): Promise<T> {
  const stop = exitOnInterrupt(json);
  try {
    return await action();
  } finally {
    stop();
  }
}
