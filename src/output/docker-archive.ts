/**
 * The docker archive sink: one tar that `docker load` and `ctr images import` accept, laid out
 * as Docker 25+ `docker save` writes it: `manifest.json` ([{Config, RepoTags, Layers}]) and
 * `repositories` for Docker's loader, beside an OCI layout (`oci-layout`, `index.json`,
 * `blobs/sha256/...`) for containerd's. The blobs are the image's own, so the manifest digest
 * matches the one an OCI layout or a registry gets. Entries are sorted with fixed mtime, owner
 * and mode, so the same image gives the same bytes; the tar is written aside and renamed.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { canonicalJson } from '../image/canonical-json.js';
import { digestHex, type Digest } from '../image/digest.js';
import { REF_NAME } from '../image/layout-source.js';
import { MediaType } from '../image/media-types.js';
import type { Image, ImageIndex } from '../image/types.js';
import { verifyingStream, digestInMessage } from '../image/verify.js';
import { liveTemp, settledTemp, STALE_TEMP_MS } from '../store/atomic.js';
import { processAlive } from '../util/process-alive.js';
import { fullyQualified, outputError, parseTagOrRef, type WriteResult } from './target.js';

const MTIME = new Date(0);
const CONTAINERD_NAME = 'io.containerd.image.name';

interface BlobEntry {
  digest: Digest;
  size: number;
  bytes?: Uint8Array;
  open?: () => Promise<Readable>;
}

/** `repoTags` are familiar "repo:tag" strings (see `repoTag` in target.ts). */
export async function writeDockerArchive(file: string, image: Image, repoTags: string[]): Promise<WriteResult> {
  const blobs = await collectBlobs(image);
  const metadata = await metadataFiles(image, repoTags);
  const tmp = liveTemp(join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`));
  try {
    await mkdir(dirname(file), { recursive: true });
    await sweepKilledTemps(file);
    await writeTar(tmp, blobs, metadata);
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw outputError(e, `docker-archive:${file}`);
  } finally {
    settledTemp(tmp);
  }
  const raw = await image.rawManifest();
  return { digest: await image.digest(), mediaType: await image.mediaType(), size: raw.byteLength };
}

/**
 * The temp files of this archive that writers killed before their rename left beside it (the
 * size of the archive each, and nothing else ever removes them): those whose process is gone, or
 * that are over an hour old.
 */
async function sweepKilledTemps(file: string): Promise<void> {
  const prefix = `.${basename(file)}.`;
  for (const name of await readdir(dirname(file)).catch(() => [] as string[])) {
    const m = name.startsWith(prefix) ? /^(\d+)\.[0-9a-f]{12}\.tmp$/.exec(name.slice(prefix.length)) : null;
    if (!m) continue;
    const path = join(dirname(file), name);
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile() && (!processAlive(Number(m[1])) || Date.now() - st.ctimeMs > STALE_TEMP_MS)) await unlink(path).catch(() => undefined);
  }
}

/** Every blob once, sorted by digest: layers, config and manifest. */
async function collectBlobs(image: Image): Promise<BlobEntry[]> {
  const byDigest = new Map<string, BlobEntry>();
  for (const layer of await image.layers()) {
    const digest = await layer.digest();
    byDigest.set(digest, { digest, size: await layer.size(), open: () => layer.compressed() });
  }
  const config = await image.rawConfig();
  byDigest.set(await image.configDigest(), { digest: await image.configDigest(), size: config.byteLength, bytes: config });
  const manifest = await image.rawManifest();
  byDigest.set(await image.digest(), { digest: await image.digest(), size: manifest.byteLength, bytes: manifest });
  return [...byDigest.values()].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
}

async function metadataFiles(image: Image, repoTags: string[]): Promise<[string, Uint8Array][]> {
  const manifest = await image.manifest();
  const path = (d: Digest) => `blobs/sha256/${digestHex(d)}`;
  const dockerManifest = [{ Config: path(manifest.config.digest), RepoTags: repoTags, Layers: manifest.layers.map((l) => path(l.digest)) }];
  const raw = await image.rawManifest();
  const top = { mediaType: await image.mediaType(), digest: await image.digest(), size: raw.byteLength };
  const entries = repoTags.length === 0 ? [top] : repoTags.map((t) => ({ ...top, annotations: tagAnnotations(t) }));
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: entries };
  return [
    ['index.json', canonicalJson(index)],
    ['manifest.json', canonicalJson(dockerManifest)],
    ['oci-layout', canonicalJson({ imageLayoutVersion: '1.0.0' })],
    ['repositories', canonicalJson(repositories(repoTags, manifest.layers.at(-1)?.digest ?? manifest.config.digest))],
  ];
}

function tagAnnotations(repoTag: string): Record<string, string> {
  const { repository, tag } = parseTagOrRef(repoTag);
  return { [CONTAINERD_NAME]: `${fullyQualified(repository ?? '')}:${tag}`, [REF_NAME]: tag ?? 'latest' };
}

// Loaders read manifest.json and ignore this legacy map when it is present; it is written for
// old tools that still look for it, naming the top layer as Docker did.
function repositories(repoTags: string[], top: Digest): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const t of repoTags) {
    const { repository, tag } = parseTagOrRef(t);
    if (repository && tag) (out[repository] ??= {})[tag] = digestHex(top);
  }
  return out;
}

async function writeTar(path: string, blobs: BlobEntry[], metadata: [string, Uint8Array][]): Promise<void> {
  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(path, { flags: 'wx' }));
  try {
    await addEntries(pack, blobs, metadata);
    pack.finalize();
  } catch (e) {
    // Stop the file stream too, so nothing is left open or rejected unheard.
    pack.destroy(e as Error);
    await written.catch(() => undefined);
    throw e;
  }
  await written;
}

async function addEntries(pack: tar.Pack, blobs: BlobEntry[], metadata: [string, Uint8Array][]): Promise<void> {
  await addDir(pack, 'blobs');
  await addDir(pack, 'blobs/sha256');
  for (const blob of blobs) await addBlob(pack, blob);
  for (const [name, bytes] of metadata) await addFile(pack, name, Buffer.from(bytes));
}

const header = (name: string, type: 'file' | 'directory', size = 0): Partial<tar.Header> & { name: string } => ({
  name, type, size, mode: type === 'directory' ? 0o755 : 0o644, mtime: MTIME, uid: 0, gid: 0, uname: '', gname: '',
});

function addDir(pack: tar.Pack, name: string): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header(name, 'directory'), (e) => (e ? reject(e) : resolve())));
}

function addFile(pack: tar.Pack, name: string, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header(name, 'file', bytes.length), bytes, (e) => (e ? reject(e) : resolve())));
}

async function addBlob(pack: tar.Pack, blob: BlobEntry): Promise<void> {
  const name = `blobs/sha256/${digestHex(blob.digest)}`;
  if (blob.bytes) return addFile(pack, name, Buffer.from(blob.bytes));
  const source = await (blob.open as () => Promise<Readable>)();
  const entry = pack.entry(header(name, 'file', blob.size));
  // Checked on the way in: a tar whose entry disagrees with its name would be refused on load.
  await pipeline(source, verifyingStream(blob.digest, blob.size, `layer ${digestInMessage(blob.digest)}`), entry);
}
