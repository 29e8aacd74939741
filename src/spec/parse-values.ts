/**
 * Parsers for the small string formats of the spec language: modes, owners, users, ports,
 * platforms, tags, image paths and context paths. Each returns a value or a reason with a hint,
 * so semantic checks can report every problem and normalisation can trust what passed.
 */
import { posix } from 'node:path';
import type { Platform } from '../image/types.js';
import { hasWhiteoutName, WHITEOUT_HINT } from '../image/whiteout.js';
import { didYouMean } from './did-you-mean.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string; hint?: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(message: string, hint?: string): Parsed<T> => (hint ? { ok: false, message, hint } : { ok: false, message });

/** Unwrap a value that semantic checks have already accepted. */
export function must<T>(p: Parsed<T>): T {
  if (!p.ok) throw new Error(`internal: unchecked spec value: ${p.message}`);
  return p.value;
}

/** What a symlink points to: stored as written, so only what no link can hold is refused. */
export function parseLinkTarget(s: string): Parsed<string> {
  if (s === '') return bad('symlink target is empty', 'write the path the link points to, absolute or relative to the link');
  if (s.includes('\0')) return bad('symlink target contains a NUL byte');
  return ok(s);
}

export function parseMode(s: string): Parsed<number> {
  if (/^[0-7]{3,4}$/.test(s)) return ok(parseInt(s, 8));
  return bad(`mode ${JSON.stringify(s)} is not an octal permission`, 'use 3 or 4 digits from 0 to 7, e.g. "0644", "0755" or "1777"');
}

/**
 * Linux ids are 32-bit, and 2^32 - 1 means "no id". The layer writer puts an id too large for
 * the tar header's octal field in a PAX record (tar-header.ts), which GNU tar, umoci and
 * containerd read: OpenShift, for one, runs containers as uids such as 1000680000.
 */
const MAX_ID = 2 ** 32 - 2;

export interface Owner {
  uid: number;
  gid: number;
}

export function parseOwner(s: string): Parsed<Owner> {
  const m = /^(\d+)(?::(\d+))?$/.exec(s);
  const hint = 'write "uid:gid" with numbers, e.g. "1000:1000" (or "1000", which means 1000:1000)';
  if (!m) return bad(`owner ${JSON.stringify(s)} is not "uid:gid"`, hint);
  const uid = Number(m[1]);
  const gid = m[2] === undefined ? uid : Number(m[2]);
  if (uid > MAX_ID || gid > MAX_ID) return bad(`owner ${JSON.stringify(s)} is out of range`, `ids go up to ${MAX_ID}`);
  return ok({ uid, gid });
}

export function parseUser(s: string): Parsed<string> {
  if (/^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/.test(s)) return ok(s);
  return bad(`user ${JSON.stringify(s)} is not valid`, 'use "uid", "uid:gid", "name" or "name:group"');
}

export function parsePort(p: number | string): Parsed<string> {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(String(p));
  const n = m ? Number(m[1]) : NaN;
  if (!m || n < 1 || n > 65535) {
    return bad(`port ${JSON.stringify(p)} is not valid`, 'use a number from 1 to 65535, optionally with /tcp, /udp or /sctp, e.g. 8080 or "53/udp"');
  }
  return ok(`${n}/${m[2] ?? 'tcp'}`);
}

/**
 * Linux's signal names (the image's kernel, whatever the host's), and the real-time ones runtimes
 * take: SIGRTMIN+1 to +15 and SIGRTMAX-14 to -1 (Docker's and containerd's
 * table: no SIGRTMIN+16 nor SIGRTMAX-15, though the kernel has them, nor SIGRTMIN+0).
 */
const SIGNALS = ['SIGABRT', 'SIGALRM', 'SIGBUS', 'SIGCHLD', 'SIGCLD', 'SIGCONT', 'SIGFPE', 'SIGHUP', 'SIGILL', 'SIGINT', 'SIGIO', 'SIGIOT', 'SIGKILL', 'SIGPIPE', 'SIGPOLL', 'SIGPROF', 'SIGPWR', 'SIGQUIT', 'SIGSEGV', 'SIGSTKFLT', 'SIGSTOP', 'SIGSYS', 'SIGTERM', 'SIGTRAP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGUSR1', 'SIGUSR2', 'SIGVTALRM', 'SIGWINCH', 'SIGXCPU', 'SIGXFSZ', 'SIGRTMIN', 'SIGRTMAX'];
const LAST_SIGNAL = 64;
/** How far above SIGRTMIN, and below SIGRTMAX, a real-time signal's name may say. */
const RT_OFFSETS = { MIN: 15, MAX: 14 };

/** A stop signal a runtime can send: a Linux signal's name, a real-time one's (SIGRTMIN+3), or a number from 1 to 64. */
export function parseStopSignal(s: string): Parsed<string> {
  // Written as the runtimes' table has them: "SIGRTMIN+03" is not there.
  const rt = /^SIGRT(MIN|MAX)([+-])([1-9]\d*)$/.exec(s);
  const rtFine = (m: RegExpExecArray) => (m[1] === 'MIN') === (m[2] === '+') && Number(m[3]) <= RT_OFFSETS[m[1] as 'MIN' | 'MAX'];
  const fine = /^\d+$/.test(s) ? Number(s) >= 1 && Number(s) <= LAST_SIGNAL : rt ? rtFine(rt) : SIGNALS.includes(s);
  if (fine) return ok(s);
  const guess = didYouMean(s, SIGNALS);
  return bad(`stopSignal ${JSON.stringify(s)} is not a signal`, guess ? `did you mean "${guess}"?` : `use a Linux signal's name, e.g. "SIGTERM" or "SIGQUIT", or its number from 1 to ${LAST_SIGNAL}`);
}

const OSES = ['linux', 'windows', 'freebsd'];
const ARCHES = ['amd64', 'arm64', 'arm', '386', 'ppc64le', 's390x', 'riscv64', 'mips64le', 'loong64'];
/** The variants engines match on (containerd's platforms package; amd64's are Go's GOAMD64 levels), where an architecture has a known set. */
const VARIANTS: Record<string, string[]> = { arm: ['v5', 'v6', 'v7', 'v8'], arm64: ['v8', 'v9'], amd64: ['v1', 'v2', 'v3', 'v4'] };

export function parsePlatform(s: string): Parsed<Platform> {
  const [os = '', architecture = '', variant, ...rest] = s.split('/');
  const hint = (word: string, known: string[]) => {
    const guess = didYouMean(word, known);
    return guess ? `did you mean "${guess}"?` : `known: ${known.join(', ')}`;
  };
  if (rest.length > 0 || !architecture) return bad(`platform ${JSON.stringify(s)} is not "os/arch[/variant]"`, 'e.g. "linux/amd64" or "linux/arm64"');
  if (!OSES.includes(os)) return bad(`unknown operating system "${os}" in platform ${JSON.stringify(s)}`, hint(os, OSES));
  if (!ARCHES.includes(architecture)) return bad(`unknown architecture "${architecture}" in platform ${JSON.stringify(s)}`, hint(architecture, ARCHES));
  const variants = VARIANTS[architecture];
  if (variant !== undefined && variants && !variants.includes(variant)) return bad(`unknown variant "${variant}" of ${architecture} in platform ${JSON.stringify(s)}`, `known: ${variants.join(', ')}`);
  if (variant !== undefined && !/^v[0-9]+$/.test(variant)) return bad(`unknown variant "${variant}" in platform ${JSON.stringify(s)}`, 'e.g. "v7" or "v8"');
  return ok(variant ? { os, architecture, variant } : { os, architecture });
}

export function parseTag(s: string): Parsed<string> {
  if (/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(s)) return ok(s);
  return bad(`tag ${JSON.stringify(s)} is not valid`, 'tags are up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"');
}

const REPO_PART = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const HOST = '(?:(?:localhost|[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+)(?::\\d+)?|[A-Za-z0-9-]+:\\d+)';
const REPO_RE = new RegExp(`^(?:${HOST}/)?${REPO_PART}(?:/${REPO_PART})*$`);

export function parseRepository(s: string): Parsed<string> {
  if (REPO_RE.test(s)) return ok(s);
  return bad(`${JSON.stringify(s)} is not a repository name`, 'use lowercase letters, digits and separators, e.g. "example/hello" or "ghcr.io/acme/hello"');
}

/** The longest name (one part of a path) Linux file systems hold, in bytes. */
const NAME_MAX = 255;

/** An absolute path in the image, normalised ("/app//x/./y" -> "/app/x/y"); ".." is refused. */
export function parseImagePath(s: string): Parsed<string> {
  if (!s.startsWith('/')) return bad(`${JSON.stringify(s)} is not an absolute path in the image`, `write it from the image root, e.g. "/${s.replace(/^\.?\/*/, '')}"`);
  if (s.split('/').includes('..')) return bad(`${JSON.stringify(s)} contains ".."`, 'paths in the image may not climb with ".."; write the path it means directly');
  if (s.includes('\0')) return bad('path contains a NUL byte');
  if (hasWhiteoutName(s)) return bad(`${JSON.stringify(s)} has a name starting with ".wh."`, WHITEOUT_HINT);
  // Written as is into the tar, such a name fails wherever the layer is unpacked.
  if (s.split('/').some((name) => Buffer.byteLength(name) > NAME_MAX)) return bad(`${JSON.stringify(s)} has a name longer than ${NAME_MAX} bytes`, 'file systems hold names of at most 255 bytes: shorten it');
  const norm = posix.normalize(s);
  return ok(norm.length > 1 && norm.endsWith('/') ? norm.slice(0, -1) : norm);
}

/**
 * A path relative to the context (a source), or to the spec's folder (`context` itself),
 * normalised; absolute paths and escapes with ".." are refused.
 */
export function parseContextPath(s: string, what: 'source' | 'context' = 'source'): Parsed<string> {
  const context = what === 'context';
  if (s.startsWith('/')) return bad(`${what} ${JSON.stringify(s)} is absolute`, context ? 'the context is relative to the spec\'s folder' : 'sources are relative to the context directory');
  const norm = posix.normalize(s === '' ? '.' : s).replace(/\/$/, '');
  if (norm === '..' || norm.startsWith('../')) {
    if (context) return bad(`context ${JSON.stringify(s)} is above the spec's folder`, 'a spec reads only its own folder and what is below it: put the spec at the top of what it reads (the repository root, say) and name folders below it');
    return bad(`${what} ${JSON.stringify(s)} is outside the context`, 'a spec may only read files inside its context; move the files in, or widen `context`');
  }
  return ok(norm === '.' ? '' : norm);
}
