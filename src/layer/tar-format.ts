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
  const t = templateFor(h.mode & PERMISSIONS, h.uid, h.gid, h.mtime, type);
  const buf = block;
  buf.set(t.bytes);
  let sum = t.sum + writeAscii(buf, 0, split.name) + writeAscii(buf, 345, split.prefix) + writeSize(buf, h.size);
  if (h.linkname) {
    const end = 157 + buf.write(h.linkname, 157, 'utf8');
    for (let i = 157; i < end; i++) sum += buf[i]!;
  }
  writeOctal(buf, 148, sum, 6);
  return buf;
}

/**
 * A header with the fields a layer's entries mostly share already written (mode, owner, mtime,
 * type, magic) and its checksum so far: encoding an entry then only writes its name and size.
 * A layer has a few such combinations (files, executables, directories), so a handful are kept.
 */
interface Template {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  type: TarType | 'pax-header';
  bytes: Buffer;
  /** The checksum of `bytes`, its own field counted as eight spaces. */
  sum: number;
}

const TEMPLATES_KEPT = 8;
const templates: Template[] = [];
let nextReplaced = 0;

function templateFor(mode: number, uid: number, gid: number, mtime: number, type: TarType | 'pax-header'): Template {
  for (const t of templates) if (t.mode === mode && t.uid === uid && t.gid === gid && t.mtime === mtime && t.type === type) return t;
  const bytes = Buffer.alloc(TAR_BLOCK);
  writeOctal(bytes, 100, mode, 6);
  writeOctal(bytes, 108, uid, 6);
  writeOctal(bytes, 116, gid, 6);
  writeOctal(bytes, 136, mtime, 11);
  bytes[156] = 0x30 + TYPEFLAG[type];
  bytes.write('ustar\u000000', 257, 'latin1');
  writeOctal(bytes, 329, 0, 6);
  writeOctal(bytes, 337, 0, 6);
  const t: Template = { mode, uid, gid, mtime, type, bytes, sum: checksum(bytes) };
  if (templates.length < TEMPLATES_KEPT) templates.push(t);
  else templates[nextReplaced++ % TEMPLATES_KEPT] = t;
  return t;
}

/** Write an ASCII string at `offset`; returns the sum of its bytes. */
function writeAscii(buf: Buffer, offset: number, s: string): number {
  let sum = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    buf[offset + i] = c;
    sum += c;
  }
  return sum;
}

/** `n` zero-padded octal digits and a space at `offset` (all sevens when the value does not fit); returns the sum of the bytes. */
function writeOctal(buf: Buffer, offset: number, value: number, n: number): number {
  const fits = value < 8 ** n;
  let sum = 0x20;
  let v = value;
  for (let i = n - 1; i >= 0; i--) {
    const digit = fits ? 0x30 + (v % 8) : 0x37;
    buf[offset + i] = digit;
    sum += digit;
    v = Math.floor(v / 8);
  }
  buf[offset + n] = 0x20;
  return sum;
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

/** The size field; returns the sum of its bytes. */
function writeSize(buf: Buffer, size: number): number {
  if (size < 8 ** 11) return writeOctal(buf, 124, size, 11);
  // base-256: a 0x80 marker byte, then the value big-endian.
  buf[124] = 0x80;
  let sum = 0x80;
  let n = size;
  for (let i = 11; i > 0; i--) {
    buf[124 + i] = n & 0xff;
    sum += n & 0xff;
    n = Math.floor(n / 0x100);
  }
  return sum;
}

/** The header checksum, with its own field counted as eight spaces. */
function checksum(buf: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += buf[i]!;
  for (let i = 156; i < TAR_BLOCK; i++) sum += buf[i]!;
  return sum;
}
