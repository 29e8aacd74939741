/**
 * Plan entry -> tar header, with nothing in it that depends on the build machine: names
 * relative to the image root (directories with a trailing "/"), whiteouts as empty regular
 * files named `<dir>/.wh.<name>` (what umoci and containerd apply), mode/uid/gid from the plan,
 * empty uname/gname, mtime = the build epoch, no atime/ctime, no device numbers. Long or
 * non-ASCII names and long link targets go in a PAX record whose own header is fixed too
 * (tar-format.ts), so the output stays deterministic.
 */
import type { PlanEntry } from '../plan/types.js';
import { ImgbuildError } from '../errors.js';
import { hasWhiteoutName, whiteoutOf } from '../image/whiteout.js';
import type { TarHeader } from './tar-format.js';

export type { TarHeader };

/** The ustar uid/gid fields hold six octal digits; larger ids go in a PAX record. */
const USTAR_ID_MAX = 0o777777;
/** tar readers (and tar-stream, which reads our layers back) take mtime through a 32-bit integer. */
export const MAX_EPOCH = 2 ** 31 - 1;

export function checkEpoch(epoch: number): void {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) {
    throw new ImgbuildError('unsupported', `mtime epoch ${epoch} is out of range`, `use an integer from 0 to ${MAX_EPOCH}`);
  }
}

/** An empty, "." or ".." segment: also "", a leading or trailing "/", and "//". */
const BAD_SEGMENT = /(?:^|\/)\.{0,2}(?:\/|$)/;

/**
 * Refuse anything that could land outside the image root (DESIGN promise 5), or that a runtime
 * would read as a whiteout instead of the entry it is, even from a bad plan.
 */
export function checkImagePath(path: string): void {
  if (BAD_SEGMENT.test(path) || path.includes('\0') || hasWhiteoutName(path)) throw new ImgbuildError('build', `invalid path in layer plan: ${JSON.stringify(path)}`);
}

/** The name an entry has inside the tar. */
export function tarName(e: PlanEntry): string {
  checkImagePath(e.path);
  if (e.type === 'dir') return `${e.path}/`;
  return e.type === 'whiteout' ? whiteoutOf(e.path) : e.path;
}

/** The header for `e`; `size` is the body length actually written (files only). */
export function tarHeader(e: PlanEntry, epoch: number, size = 0): TarHeader {
  const h: TarHeader = {
    name: tarName(e),
    mode: e.mode & 0o7777,
    uid: e.uid,
    gid: e.gid,
    mtime: epoch,
    size: e.type === 'file' ? size : 0,
    type: e.type === 'dir' ? 'directory' : e.type === 'symlink' ? 'symlink' : 'file',
  };
  if (e.type === 'symlink') h.linkname = e.target;
  if (e.uid > USTAR_ID_MAX || e.gid > USTAR_ID_MAX) h.pax = { uid: String(e.uid), gid: String(e.gid) };
  return h;
}
