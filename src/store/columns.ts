/**
 * Helpers for the store's column files (stat-records.ts, walk-records.ts): numbers are written
 * as little-endian float64s after an 8-byte-aligned header, whatever this machine's order.
 */

export const align8 = (n: number) => (n + 7) & ~7;

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The bytes of `nums` as little-endian float64s. */
export function toLittleEndian(nums: Float64Array): Buffer {
  const bytes = Buffer.from(nums.buffer, nums.byteOffset, nums.byteLength);
  return hostIsLittleEndian ? bytes : Buffer.from(bytes).swap64();
}

/** An aligned copy of little-endian float64 bytes, in this machine's order. */
export function fromLittleEndian(bytes: Buffer): Float64Array {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  if (!hostIsLittleEndian) Buffer.from(copy.buffer).swap64();
  return new Float64Array(copy.buffer);
}

/** Numbers appended a few at a time, kept in one growing Float64Array (no object per record). */
export class NumberColumn {
  #nums = new Float64Array(1024);
  #length = 0;

  /** Room for `n` more numbers: returns where they go in `nums`, to be written before the next call. */
  reserve(n: number): number {
    if (this.#length + n > this.#nums.length) {
      const grown = new Float64Array(Math.max(2 * this.#nums.length, this.#length + n));
      grown.set(this.#nums.subarray(0, this.#length));
      this.#nums = grown;
    }
    const at = this.#length;
    this.#length += n;
    return at;
  }

  /** The backing array (replaced as the column grows). */
  get nums(): Float64Array {
    return this.#nums;
  }

  /** The numbers so far (a view: valid until the next `reserve`). */
  values(): Float64Array {
    return this.#nums.subarray(0, this.#length);
  }
}

const PATHS_PER_PIECE = 4096;

/**
 * Lists of paths as UTF-8, all joined by NUL, in pieces of a few thousand paths: never one string
 * or buffer of them all (megabytes, for a node_modules, at a moment memory may peak).
 */
export function nulJoined(lists: readonly (readonly string[])[]): Buffer[] {
  return [...nulJoinedPieces(lists)];
}

/**
 * `nulJoined`'s pieces made one at a time, as they are written: a file write takes one and then
 * the next, so only one piece is held at once. The lists must not change until the last is made.
 */
export function* nulJoinedPieces(lists: readonly (readonly string[])[]): Generator<Buffer> {
  let first = true;
  for (const paths of lists) {
    for (let i = 0; i < paths.length; i += PATHS_PER_PIECE) {
      yield Buffer.from(`${first ? '' : '\0'}${paths.slice(i, i + PATHS_PER_PIECE).join('\0')}`, 'utf8');
      first = false;
    }
  }
}

/** The bytes `nulJoined` makes of `lists`, counted without making them. */
export function nulJoinedLength(lists: readonly (readonly string[])[]): number {
  let bytes = 0;
  let count = 0;
  for (const paths of lists) {
    for (const path of paths) bytes += Buffer.byteLength(path, 'utf8');
    count += paths.length;
  }
  return count === 0 ? 0 : bytes + count - 1;
}
