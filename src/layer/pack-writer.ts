/**
 * Feeds entries into a tar-stream pack without a promise per file: entries are handed over as
 * soon as they are read, and the producer only waits when more than a bounded number of bytes
 * are queued inside the pack (so memory stays flat) or when it needs the pack idle before
 * streaming a large file. The first error from any entry is kept and rethrown to the producer.
 * When the pack is destroyed (a layer abandoned half-way), tar-stream destroys the open and the
 * queued entries with that error; each entry's error reaches us through its callback, so the
 * entries' own 'error' events are swallowed rather than left to crash the process.
 */
import type { Pack } from 'tar-stream';
import type { TarHeader } from './tar-header.js';

type Sink = ReturnType<Pack['entry']>;

const HEADER_COST = 512;

const swallow = () => undefined;

export class PackWriter {
  #queued = 0;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(
    readonly pack: Pack,
    private readonly maxQueued = 8 << 20,
  ) {}

  /** Queue a whole entry (body for regular files, none for the others). */
  add(header: TarHeader, body?: Buffer): void {
    this.#throwIfFailed();
    const cost = HEADER_COST + (body?.length ?? 0);
    this.#queued += cost;
    const cb = (err?: Error | null) => this.#settle(cost, err);
    let sink: Sink;
    if (body && body.length > 0) sink = this.pack.entry(header, body, cb);
    else if (header.type === 'file') (sink = this.pack.entry(header, cb)).end(undefined);
    else sink = this.pack.entry(header, cb);
    sink.on('error', swallow);
  }

  /** Open a streamed entry; the caller writes exactly `header.size` bytes and ends it. */
  open(header: TarHeader): { sink: Sink; done: Promise<void> } {
    this.#throwIfFailed();
    let sink!: Sink;
    const done = new Promise<void>((resolve, reject) => {
      sink = this.pack.entry(header, (err) => (err ? reject(err) : resolve()));
    });
    sink.on('error', swallow);
    // A streamed entry abandoned half-way fails; the producer reports the reason, not this.
    done.catch(() => undefined);
    return { sink, done };
  }

  /** Wait until the queue is below its bound. */
  room(): Promise<void> {
    return this.#waitFor(this.maxQueued);
  }

  /** Wait until everything queued has been taken by the pack. */
  idle(): Promise<void> {
    return this.#waitFor(0);
  }

  async #waitFor(limit: number): Promise<void> {
    while (this.#queued > limit && !this.#error) await new Promise<void>((r) => (this.#wake = r));
    this.#throwIfFailed();
  }

  #settle(cost: number, err?: Error | null): void {
    this.#queued -= cost;
    if (err && !this.#error) this.#error = err;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #throwIfFailed(): void {
    if (this.#error) throw this.#error;
  }
}

/** Resolve when a streamed entry can take more; reject if the pack went away. */
export function drained(sink: Sink): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      sink.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      sink.off('drain', onDrain);
      reject(new Error('the layer stream closed while a file was being written'));
    };
    sink.once('drain', onDrain);
    sink.once('close', onClose);
  });
}
