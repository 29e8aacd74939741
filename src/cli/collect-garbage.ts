/**
 * Garbage collection on request: a full one for a long-running watch, and V8's own, started
 * early, for a build's array buffers (`ArrayBufferGuard`).
 *
 * When a rebuild's new plan replaces a large old one, V8 keeps the old one's memory until its own
 * heuristics run a major collection, typically during the build that follows, which then peaks
 * holding two plans' worth of old space: a watcher of a 32,000-file tree rebuilding its 300 MB
 * layer peaked at 195 to 231 MB, and at 165 to 181 MB when collected before that build (16 to 19
 * ms each time).
 *
 * `--expose-gc` set while running takes effect in contexts made after it; a Node where that does
 * not work simply does not collect. A setting of the process: the CLI's, never the library's.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null | undefined;

export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    } catch {
      gc = null;
    }
  }
  gc?.();
}

/**
 * What V8 counts as memory outside its heap that may grow between two major collections: past it,
 * V8 starts one (`kExternalAllocationSoftLimit`).
 */
const EXTERNAL_ALLOWANCE = 64 << 20;

/**
 * Start a major collection the way V8 starts one by itself when array buffers pile up: told that
 * memory outside its heap grew past its allowance, V8 marks incrementally, mostly on its own
 * threads, and frees the buffers nothing holds when it is done, within milliseconds. The growth
 * is an array buffer that size, made and dropped at once: its pages are never touched (calloc
 * maps fresh zero pages for it), so it costs neither time nor memory.
 *
 * Not `collectGarbage`: a forced collection also clears what optimised code holds weakly, such as
 * object shapes no live object has at that moment (an `fs.Stats` between two files, a directory
 * entry once the walk is over), and V8 throws away every function whose code held one ("weak
 * objects" in `--trace-deopt`) and compiles it again. In a cold build of the bench's node_modules
 * the guard's forced collections cost 31 of them (none this way). A V8 that does not count array
 * buffers as outside memory simply does not collect early.
 */
export function startMajorCollection(): void {
  try {
    void new ArrayBuffer(EXTERNAL_ALLOWANCE);
  } catch {
    // Refused (a system that does not overcommit memory, where 64 MB may not be there to
    // promise): a forced collection then, which frees the buffers all the same.
    collectGarbage();
  }
}

/**
 * Array buffers a watcher's rebuild leaves behind, collected before they pile up. Each gzip block
 * hands its output on in buffers zlib allocates (about 76 MB of them for a 300 MB layer), and in a
 * watcher, whose old space hardly grows during a rebuild, V8 frees them only once about 64 MB have
 * piled up: the 32,000-file watcher rebuilding its 300 MB layer peaked anywhere from 175 to 200
 * MB depending on when that collection fell (6 runs: 175 to 197). Checked every CHECK_MS while a
 * build runs, and collected once PILE_UP bytes more than after the last collection are held: 166
 * to 168 MB in the same 6 alternating runs, in the same time. A one-shot build collects sooner
 * (ONE_SHOT_PILE_UP). The collection is V8's own (`startMajorCollection`), not a forced one.
 */
export class ArrayBufferGuard {
  static readonly CHECK_MS = 250;
  static readonly PILE_UP = 32 << 20;
  /**
   * A one-shot build's. Its plan once filled the old space enough for V8 to collect every second
   * or so; holding a first build's files packed (plan/packed-layer.ts), it no longer does, and
   * the blocks' output piled up to 48 MB on a 32,000-file tree. Collected at 4 MB, a cold build
   * of that tree peaked at 84 to 87 MB instead of 93 to 103 (4 alternating runs), in the same time.
   */
  static readonly ONE_SHOT_PILE_UP = 4 << 20;

  #timer: NodeJS.Timeout | undefined;
  /** The least held since the last collection; undefined until measured (see `check`). */
  #floor: number | undefined;

  constructor(private readonly pileUp = ArrayBufferGuard.PILE_UP) {}

  /** Start checking (a build began); nothing if already checking. */
  start(): void {
    if (this.#timer) return;
    this.#floor = process.memoryUsage().arrayBuffers;
    this.#timer = setInterval(() => this.check(), ArrayBufferGuard.CHECK_MS);
    this.#timer.unref();
  }

  /** Stop checking (the build ended): an idle watcher wakes for nothing. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Collect if the array buffers held have grown by `pileUp` since the last collection; true if it did. */
  check(): boolean {
    const held = process.memoryUsage().arrayBuffers;
    // V8 frees the buffers of a collection as it sweeps, partly after the collection returns:
    // what a collection left is measured at the check after it.
    // So is what a collection just before `start` left: the floor follows it down.
    if (this.#floor === undefined || held < this.#floor) {
      this.#floor = held;
      return false;
    }
    if (held - this.#floor < this.pileUp) return false;
    startMajorCollection();
    this.#floor = undefined;
    return true;
  }
}
