/**
 * The bytes of a tar header, written by us rather than by a tar library's pack stream: the layer
 * writer puts headers and file bodies straight into its output chunks, with no stream object
 * or callback per entry. The format is exactly what tar-stream's pack writes for the same header
 * (test/layer/tar-format.test.ts compares the two byte for byte), so the choice of writer never
 * changes a digest:
 *
 * - a ustar header; a name over 100 bytes is split at a "/" into prefix and name;
 * - a PAX extended header first (named "PaxHeader", as tar-stream names it, and the entry's own
 *   header then carries that name too) when the name is not ASCII or cannot be split, the link
 *   target is over 100 bytes, or the header has `pax` records (large ids);
 * - numbers as zero-padded octal followed by a space; a size too large for 11 octal digits in
 *   base-256; uname, gname and device numbers empty or zero.
 */

export type TarType = 'file' | 'directory' | 'symlink';

export interface TarHeader {
  name: string;
  /** Permission bits; any file-type bits above them are ignored. */
  mode: number;
  uid: number;
  gid: number;
  /** Body length: files only, 0 for the rest. */
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  type: TarType;
  linkname?: string;
  pax?: Record<string, string>;
}

export const TAR_BLOCK = 512;
/** What ends an archive: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * TAR_BLOCK);

const TYPEFLAG: Record<TarType | 'pax-header', number> = { file: 0, symlink: 2, directory: 5, 'pax-header': 72 };
const PERMISSIONS = 0o7777;

/** Zero bytes that pad a body of `size` bytes to a whole block. */
export function paddingFor(size: number): number {
  const rest = size % TAR_BLOCK;
  return rest === 0 ? 0 : TAR_BLOCK - rest;
}

/**
 * The header block(s) for `h`: 512 bytes, or a PAX header, its records and then 512 bytes. The
 * result is valid until the next call (one block is reused: a buffer per entry was garbage that
 * grew the heap with the number of files); copy it to keep it.
 */
export function encodeTarHeader(h: TarHeader): Buffer {
  if (!h.pax) {
    const plain = ustar(h);
    if (plain) return plain;
  }
  return withPax(h);
}

const block = Buffer.alloc(TAR_BLOCK);

function withPax(h: TarHeader): Buffer {
  let records = record('path', h.name);
  if (h.linkname) records += record('linkpath', h.linkname);
  for (const [key, value] of Object.entries(h.pax ?? {})) records += record(key, value);
  const body = Buffer.from(records, 'utf8');
  const common = { ...h, name: 'PaxHeader', ...(h.linkname ? { linkname: 'PaxHeader' } : {}) };
  const paxHeader = Buffer.from(ustar({ ...common, size: body.length }, 'pax-header')!);
  const own = ustar(common)!;
  return Buffer.concat([paxHeader, body, Buffer.alloc(paddingFor(body.length)), own]);
}

/** One PAX record: "<length> <key>=<value>\n", where the length counts itself. */
function record(key: string, value: string): string {
  const line = ` ${key}=${value}\n`;
  const len = Buffer.byteLength(line);
  let digits = String(len).length;
  if (len + digits >= 10 ** digits) digits++;
  return `${len + digits}${line}`;
}

/** The ustar block, or undefined when the name or link target does not fit one. */
function ustar(h: TarHeader, type: TarType | 'pax-header' = h.type): Buffer | undefined {
  const split = splitName(h.name);
  if (!split) return undefined;
  if (h.linkname && Buffer.byteLength(h.linkname) > 100) return undefined;
  const buf = block.fill(0);
  buf.write(split.name, 0, 'latin1');
  buf.write(octal(h.mode & PERMISSIONS, 6), 100, 'latin1');
  buf.write(octal(h.uid, 6), 108, 'latin1');
  buf.write(octal(h.gid, 6), 116, 'latin1');
  writeSize(buf, h.size);
  buf.write(octal(h.mtime, 11), 136, 'latin1');
  buf[156] = 0x30 + TYPEFLAG[type];
  if (h.linkname) buf.write(h.linkname, 157, 'utf8');
  buf.write('ustar\u000000', 257, 'latin1');
  buf.write(octal(0, 6), 329, 'latin1');
  buf.write(octal(0, 6), 337, 'latin1');
  if (split.prefix) buf.write(split.prefix, 345, 'latin1');
  buf.write(octal(checksum(buf), 6), 148, 'latin1');
  return buf;
}

/** ASCII names only; a long one is cut at its first slashes into a prefix of at most 155 bytes. */
function splitName(full: string): { name: string; prefix: string } | undefined {
  if (!isAscii(full)) return undefined;
  let name = full;
  let prefix = '';
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return undefined;
    prefix += prefix ? `/${name.slice(0, i)}` : name.slice(0, i);
    name = name.slice(i + 1);
  }
  return prefix.length > 155 ? undefined : { name, prefix };
}

const isAscii = (s: string) => Buffer.byteLength(s) === s.length;

/** `n` octal digits and a space; a value that does not fit is all sevens. */
function octal(value: number, n: number): string {
  const digits = value.toString(8);
  return digits.length > n ? `${'7'.repeat(n)} ` : `${digits.padStart(n, '0')} `;
}

function writeSize(buf: Buffer, size: number): void {
  if (size.toString(8).length <= 11) {
    buf.write(octal(size, 11), 124, 'latin1');
    return;
  }
  // base-256: a 0x80 marker byte, then the value big-endian.
  buf[124] = 0x80;
  let n = size;
  for (let i = 11; i > 0; i--) {
    buf[124 + i] = n & 0xff;
    n = Math.floor(n / 0x100);
  }
}

/** The header checksum, with its own field counted as eight spaces. */
function checksum(buf: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += buf[i]!;
  for (let i = 156; i < TAR_BLOCK; i++) sum += buf[i]!;
  return sum;
}
