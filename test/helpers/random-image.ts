/**
 * Test fixtures: deterministic random layers and images built in memory (gzip tars made with
 * tar-stream and zlib from a seed), implementing `Layer` and `Image`, and `validateLayout`, which
 * has the OCI project's validator and umoci check a layout the way a consumer would.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, link, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { assembleImage } from '../../src/image/assemble.js';
import { buildConfigFile } from '../../src/image/config.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Image, ImageIndex, Layer, Platform, RuntimeConfig } from '../../src/image/types.js';

const run = promisify(execFile);

/** Deterministic bytes from a seed: sha256 in counter mode. */
export function seededBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let off = 0, i = 0; off < length; i++) {
    off += createHash('sha256').update(`${seed}/${i}`).digest().copy(out, off);
  }
  return out;
}

export interface RandomLayerOptions {
  seed: string;
  files?: number;
  /** Bytes per file; default 1 KiB. */
  fileSize?: number;
}

export interface MemoryLayer extends Layer {
  /** The uncompressed tar, for tests that look inside. */
  readonly tar: Buffer;
  readonly blob: Buffer;
}

export async function randomLayer(opts: RandomLayerOptions): Promise<MemoryLayer> {
  const tarBytes = await buildTar(opts.seed, opts.files ?? 3, opts.fileSize ?? 1024);
  const blob = gzipSync(tarBytes, { level: 6 });
  return memoryLayer(tarBytes, blob);
}

export function memoryLayer(tarBytes: Buffer, blob: Buffer, mediaType: string = MediaType.ociLayerGzip): MemoryLayer {
  const digest = sha256(blob);
  const diffId = sha256(tarBytes);
  return {
    tar: tarBytes,
    blob,
    digest: async () => digest,
    diffId: async () => diffId,
    size: async () => blob.length,
    mediaType: async () => mediaType,
    compressed: async () => Readable.from([blob]),
  };
}

async function buildTar(seed: string, files: number, fileSize: number): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  })();
  const mtime = new Date(0);
  const dir = `d-${sha256(seed).slice(7, 15)}`;
  pack.entry({ name: `${dir}/`, type: 'directory', mode: 0o755, mtime });
  for (let i = 0; i < files; i++) {
    const name = `${dir}/f${String(i).padStart(4, '0')}`;
    pack.entry({ name, mode: 0o644, mtime }, seededBytes(`${seed}/${i}`, fileSize));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface RandomImageOptions {
  layers: number;
  filesPerLayer?: number;
  fileSize?: number;
  seed: string;
  platform?: Platform;
  base?: Image;
  runtime?: RuntimeConfig;
  annotations?: Record<string, string>;
}

export async function randomImage(opts: RandomImageOptions): Promise<Image & { newLayers: MemoryLayer[] }> {
  const layers: MemoryLayer[] = [];
  for (let i = 0; i < opts.layers; i++) {
    layers.push(await randomLayer({ seed: `${opts.seed}/layer${i}`, files: opts.filesPerLayer, fileSize: opts.fileSize }));
  }
  const config = buildConfigFile({
    base: opts.base ? await opts.base.configFile() : undefined,
    platform: opts.platform ?? { os: 'linux', architecture: 'amd64' },
    runtime: opts.runtime ?? { Cmd: ['/bin/true'] },
    diffIds: await Promise.all(layers.map((l) => l.diffId())),
    history: layers.map((_, i) => `imgbuild layer ${i}`),
    created: '1970-01-01T00:00:00Z',
  });
  const image = assembleImage({ base: opts.base, layers, config, annotations: opts.annotations ?? {} });
  return Object.assign(image, { newLayers: layers });
}

/**
 * Validate a layout as consumers would: `oci-image-tool validate` (the OCI project's own checker)
 * and `umoci unpack` (which checks every digest and applies the layers). Returns the paths in
 * the unpacked root file system; throws with the tools' output on failure.
 */
export async function validateLayout(dir: string, tag: string): Promise<string[]> {
  const scratch = await mkdtemp(join(tmpdir(), 'imgbuild-validate-'));
  try {
    await runTool('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${tag}`, await singleTagView(dir, tag, scratch)]);
    const bundle = join(scratch, 'bundle');
    await runTool('umoci', ['unpack', '--image', `${dir}:${tag}`, bundle]);
    return (await readdir(join(bundle, 'rootfs'), { recursive: true })).map(String).sort();
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * oci-image-tool 1.0.0-rc1 filters index.json entries by ref with a loop that skips the entry
 * after each one it drops, so with several tags it may check the wrong image or call a unique
 * tag "not unique". It is given a view of the layout whose index holds only the tag's entries.
 */
async function singleTagView(dir: string, tag: string, scratch: string): Promise<string> {
  const view = join(scratch, 'view');
  await mkdir(view);
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
  const manifests = index.manifests.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (manifests.length === 0) throw new Error(`${dir} has no image tagged ${tag}`);
  await writeFile(join(view, 'index.json'), JSON.stringify({ ...index, manifests }));
  await copyFile(join(dir, 'oci-layout'), join(view, 'oci-layout'));
  // The tool refuses a symlinked blobs/; hard links cost nothing on one file system.
  await mkdir(join(view, 'blobs', 'sha256'), { recursive: true });
  for (const name of await readdir(join(dir, 'blobs', 'sha256'))) {
    const [from, to] = [join(dir, 'blobs', 'sha256', name), join(view, 'blobs', 'sha256', name)];
    await link(from, to).catch(() => copyFile(from, to));
  }
  return view;
}

export async function runTool(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}
