/**
 * Turning a burst of file events into one rebuild: paths are collected until the file system
 * has been quiet for `quietMs`, or `maxWaitMs` after the first event at the latest (so a
 * never-ending stream of writes still gets rebuilds). A `git checkout` touching thousands of
 * files, or an editor's write-temp-then-rename, becomes one batch.
 */
export interface CoalesceOptions {
  quietMs: number;
  maxWaitMs: number;
}

export class Coalescer {
  #paths = new Set<string>();
  #quiet: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: CoalesceOptions,
    private readonly onBatch: (paths: Set<string>) => void,
  ) {}

  add(path: string): void {
    this.#paths.add(path);
    clearTimeout(this.#quiet);
    this.#quiet = setTimeout(() => this.flush(), this.opts.quietMs);
    this.#deadline ??= setTimeout(() => this.flush(), this.opts.maxWaitMs);
  }

  flush(): void {
    clearTimeout(this.#quiet);
    clearTimeout(this.#deadline);
    this.#quiet = this.#deadline = undefined;
    if (this.#paths.size === 0) return;
    const batch = this.#paths;
    this.#paths = new Set();
    this.onBatch(batch);
  }

  cancel(): void {
    clearTimeout(this.#quiet);
    clearTimeout(this.#deadline);
    this.#paths.clear();
  }
}
