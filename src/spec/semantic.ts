/**
 * Checks the JSON Schema cannot express: formats of modes, owners, ports and platforms, image
 * paths absolute with no "..", sources inside the context, unique layer names, no two entries
 * of one layer writing the same path. Pure: reads no files, returns every problem it finds.
 */
import { posix } from 'node:path';
import picomatch from 'picomatch';
import type { Diagnostic } from '../errors.js';
import { platformKey } from '../image/platform.js';
import { repositoryOf } from '../registry/reference.js';
import { didYouMean } from './did-you-mean.js';
import * as v from './parse-values.js';
import { parseBaseRef, parseOutput } from './refs.js';
import type { ImageSpec, LayerSpec } from './schema.js';
import { diagnostic, type SpecSource } from './source.js';

type Check = (pointer: string, p: v.Parsed<unknown>) => void;

/**
 * `from: scrach` is a valid reference (docker.io/library/scrach), pulled at build time to fail
 * as "not found": a bare name this close to "scratch" is taken for the typo it is. The image,
 * if meant, is named in full.
 */
function notScratchMisspelt(from: string): v.Parsed<never> | undefined {
  if (from === 'scratch' || /[/:@.]/.test(from) || Math.abs(from.length - 'scratch'.length) > 2 || didYouMean(from, ['scratch']) !== 'scratch') return undefined;
  return { ok: false, message: `base "${from}" reads as the registry image docker.io/library/${from}`, hint: `did you mean "scratch"? To mean that image, write docker.io/library/${from}` };
}

function notRoot(kind: string): v.Parsed<never> {
  return { ok: false, message: `${kind === 'remove' ? 'remove' : kind.replace(/s$/, '')} entries cannot name the image root "/"`, hint: 'name a path below it, e.g. "/app"' };
}

type Written = (ptr: string, path: string, kind: 'files' | 'dirs' | 'symlinks') => void;

function checkLayer(layer: LayerSpec, at: string, check: Check, dup: Written): void {
  for (const k of ['owner'] as const) if (layer[k] !== undefined) check(`${at}/${k}`, v.parseOwner(layer[k]));
  for (const k of ['fileMode', 'dirMode'] as const) if (layer[k] !== undefined) check(`${at}/${k}`, v.parseMode(layer[k]));
  layer.copy?.forEach((c, i) => {
    const p = `${at}/copy/${i}`;
    check(`${p}/from`, v.parseContextPath(c.from));
    // A shell's "src/*/" names directories only; a glob here matches files and directories alike,
    // so the "/" would be dropped and the files beside them copied too ("src/*/." as well).
    if (/\/\.?$/.test(c.from) && picomatch.scan(c.from).isGlob) check(`${p}/from`, { ok: false, message: `glob ${JSON.stringify(c.from)} ends with "/", but a glob here matches files as well as directories`, hint: `drop the "/" and exclude what is not wanted, or copy each directory with an entry of its own` });
    // Whether `to` names a file or a directory depends on the source: what a copy writes below `to`
    // is checked when planned (`to` itself, against the layer's entries, in checkSemantics).
    check(`${p}/to`, v.parseImagePath(c.to));
    if (c.mode !== undefined) check(`${p}/mode`, v.parseMode(c.mode));
    if (c.dirMode !== undefined) check(`${p}/dirMode`, v.parseMode(c.dirMode));
    if (c.owner !== undefined) check(`${p}/owner`, v.parseOwner(c.owner));
    c.exclude?.forEach((pattern, j) => {
      // In a list of globs "!x" means "everything but x": it would leave out nearly all.
      if (pattern.startsWith('!')) check(`${p}/exclude/${j}`, { ok: false, message: `exclude pattern ${JSON.stringify(pattern)} starts with "!"`, hint: 'exclude lists what to leave out and has no negation: narrow `from`, or list the paths to leave out' });
      // Matched against paths relative to `from`, which never start with "/": it would leave out nothing.
      if (pattern.startsWith('/')) check(`${p}/exclude/${j}`, { ok: false, message: `exclude pattern ${JSON.stringify(pattern)} starts with "/"`, hint: `exclude patterns are relative to the copy's \`from\`: write ${JSON.stringify(pattern.replace(/^\/+/, '') || '**')}` });
    });
  });
  // forEach, as for copies: an entry the schema refused is a hole here (see pruneInvalid), not a value.
  const simple: { kind: 'files' | 'dirs' | 'symlinks'; i: number; e: NonNullable<LayerSpec['files' | 'dirs' | 'symlinks']>[number] }[] = [];
  for (const kind of ['files', 'dirs', 'symlinks'] as const) layer[kind]?.forEach((e, i) => simple.push({ kind, i, e }));
  for (const { kind, i, e } of simple) {
    const p = `${at}/${kind}/${i}`;
    const path = v.parseImagePath(e.path);
    // A trailing "/" reads as "a directory": a file or symlink written there would quietly drop it.
    const asDir = kind !== 'dirs' && e.path.endsWith('/') && path.ok && path.value !== '/';
    check(`${p}/path`, path.ok && path.value === '/' ? notRoot(kind) : asDir ? { ok: false, message: `${e.path} ends with "/", but a ${kind === 'files' ? 'file' : 'symlink'} is not a directory`, hint: `write its own name: ${path.value}/<name>, or ${path.value} without the "/"` } : path);
    if (path.ok && path.value !== '/') dup(`${p}/path`, path.value, kind);
    if ('mode' in e && e.mode !== undefined) check(`${p}/mode`, v.parseMode(e.mode));
    if ('target' in e) check(`${p}/target`, v.parseLinkTarget(e.target));
    if (e.owner !== undefined) check(`${p}/owner`, v.parseOwner(e.owner));
  }
  layer.remove?.forEach((r, i) => {
    const path = v.parseImagePath(r);
    check(`${at}/remove/${i}`, path.ok && path.value === '/' ? notRoot('remove') : path);
  });
  const empty = !layer.copy?.length && !layer.files?.length && !layer.dirs?.length && !layer.symlinks?.length && !layer.remove?.length;
  if (empty) check(at, { ok: false, message: `layer "${layer.name}" is empty`, hint: 'give it copy, files, dirs, symlinks or remove entries, or delete it' });
}

function checkConfig(spec: ImageSpec, check: Check): void {
  const c = spec.config;
  if (!c) return;
  if (c.user !== undefined) check('/config/user', v.parseUser(c.user));
  if (c.workdir !== undefined) check('/config/workdir', v.parseImagePath(c.workdir));
  c.ports?.forEach((port, i) => check(`/config/ports/${i}`, v.parsePort(port)));
  c.volumes?.forEach((vol, i) => check(`/config/volumes/${i}`, v.parseImagePath(vol)));
  if (c.stopSignal !== undefined) check('/config/stopSignal', v.parseStopSignal(c.stopSignal));
}

function checkTop(spec: ImageSpec, check: Check): void {
  check('/name', v.parseRepository(spec.name));
  spec.tags?.forEach((t, i) => check(`/tags/${i}`, v.parseTag(t)));
  // No platform builds an index of no image (and a lock that pins nothing), with exit 0.
  if (spec.platforms?.length === 0) check('/platforms', { ok: false, message: 'platforms is empty: there is no image to build', hint: 'list at least one, e.g. [linux/amd64], or leave platforms out for linux/amd64' });
  const seen = new Map<string, string>();
  spec.platforms?.forEach((p, i) => {
    const parsed = v.parsePlatform(p);
    check(`/platforms/${i}`, parsed);
    if (!parsed.ok) return;
    // arm64 is arm64/v8 and arm is arm/v7: one image each, of which an engine only ever takes the first.
    const key = platformKey(parsed.value);
    const first = seen.get(key);
    if (first !== undefined) check(`/platforms/${i}`, { ok: false, message: `platform ${JSON.stringify(p)} is listed already, as ${JSON.stringify(first)}`, hint: 'list each platform once' });
    else seen.set(key, p);
  });
  const platforms = spec.platforms?.length ?? 1;
  spec.output?.forEach((o, i) => {
    if (o['docker-archive'] !== undefined && platforms > 1) check(`/output/${i}`, { ok: false, message: `a docker archive holds one platform, and this spec builds ${platforms}`, hint: 'write an oci: layout (it holds every platform), or build one platform into the archive' });
  });
  if (spec.from !== undefined) check('/from', notScratchMisspelt(spec.from) ?? parseBaseRef(spec.from));
  if (spec.context !== undefined) check('/context', v.parseContextPath(spec.context, 'context'));
  const d = spec.defaults;
  if (d?.owner !== undefined) check('/defaults/owner', v.parseOwner(d.owner));
  if (d?.fileMode !== undefined) check('/defaults/fileMode', v.parseMode(d.fileMode));
  if (d?.dirMode !== undefined) check('/defaults/dirMode', v.parseMode(d.dirMode));
  const outputAt = new Map<string, { i: number; path: string }>();
  const pushedAt = new Map<string, { i: number; path: string }>();
  spec.output?.forEach((o, i) => {
    const parsed = parseOutput(o);
    check(`/output/${i}`, parsed);
    if (!parsed.ok) return;
    if (parsed.value.kind === 'registry') {
      // The same image pushed twice to one repository, side by side: every blob uploaded twice.
      const { ref } = parsed.value;
      const key = repositoryOf(ref);
      const first = pushedAt.get(key);
      if (first) check(`/output/${i}`, { ok: false, message: `registry output ${JSON.stringify(ref)} pushes to the repository of output ${first.i + 1}, ${JSON.stringify(first.path)}`, hint: 'list each repository once' });
      else pushedAt.set(key, { i, path: ref });
      return;
    }
    // Both outputs would be written, the second over (or into) the first: one of them fails, late.
    const { path } = parsed.value;
    const key = posix.normalize(path).replace(/(.)\/$/, '$1');
    const first = outputAt.get(key);
    if (first) check(`/output/${i}`, { ok: false, message: `output ${JSON.stringify(path)} is written to the path of output ${first.i + 1}, ${JSON.stringify(first.path)}`, hint: 'give each output a path of its own' });
    else outputAt.set(key, { i, path });
  });
  const c = spec.compression;
  if (c?.algorithm === 'none' && c.level !== undefined) {
    check('/compression/level', { ok: false, message: `level ${c.level} means nothing with algorithm "none": layers are stored uncompressed`, hint: 'remove level, or choose algorithm gzip or zstd' });
  } else if (c?.algorithm !== 'zstd' && c?.level !== undefined && c.level > 9) {
    check('/compression/level', { ok: false, message: `gzip level ${c.level} is out of range`, hint: 'gzip levels go from 0 (store) to 9 (smallest); 6 is the default' });
  }
  // A key of "" would go into the image as it is: an annotation or a label with no name.
  const emptyKey = (where: string, map: Record<string, string> | undefined, what: string) => {
    if (map && '' in map) check(`${where}/`, { ok: false, message: `${what} with an empty name`, hint: `give it a name, or remove it` });
  };
  emptyKey('/annotations', spec.annotations, 'an annotation');
  emptyKey('/config/labels', spec.config?.labels, 'a label');
  // No base and no layer: an image with no file at all, which no runtime can start.
  if (spec.layers.length === 0 && (spec.from === undefined || spec.from === 'scratch')) {
    check('/layers', { ok: false, message: 'an image from scratch with no layers holds no file at all', hint: 'add a layer, or name a base image in from: (an image that only changes a base\'s config needs no layer)' });
  }
}

export function checkSemantics(src: SpecSource, spec: ImageSpec): Diagnostic[] {
  const found: Diagnostic[] = [];
  const check: Check = (pointer, p) => {
    if (!p.ok) found.push(diagnostic(src, pointer, p.message, p.hint));
  };
  checkTop(spec, check);
  checkConfig(spec, check);
  const names = new Map<string, number>();
  spec.layers.forEach((layer, i) => {
    const first = names.get(layer.name);
    if (first !== undefined) check(`/layers/${i}/name`, { ok: false, message: `layer name "${layer.name}" is used twice`, hint: `layer ${first + 1} has it already; layer names must be unique` });
    else names.set(layer.name, i);
    const seen = new Map<string, { ptr: string; kind: string }>();
    const lineOf = (ptr: string) => diagnostic(src, ptr, '').position.line;
    const twice = (ptr: string, path: string, prev: { ptr: string }) =>
      check(ptr, { ok: false, message: `${path} is written twice in layer "${layer.name}"`, hint: `line ${lineOf(prev.ptr)} writes it already; keep one` });
    const dup: Written = (ptr, path, kind) => {
      const prev = seen.get(path);
      if (prev === undefined) return void seen.set(path, { ptr, kind });
      twice(ptr, path, prev);
    };
    checkLayer(layer, `/layers/${i}`, check, dup);
    // A copy writes its `to` whatever its source is: as a file, or as a directory it fills.
    const copied = (layer.copy ?? []).flatMap((c, j) => {
      const to = v.parseImagePath(c.to);
      return to.ok && to.value !== '/' ? [{ path: to.value, ptr: `/layers/${i}/copy/${j}/to` }] : [];
    });
    // A copy's `to` that a file or symlink entry writes too (a dirs entry may set the mode of a
    // directory a copy fills); the rest of what a copy writes is found when planned.
    for (const { path, ptr } of copied) {
      const prev = seen.get(path);
      if (prev && prev.kind !== 'dirs') twice(ptr, path, prev);
    }
    // A path below a file or a symlink the same layer writes, a copy's `to` among them.
    for (const [path, { ptr }] of [...seen, ...copied.map((c) => [c.path, c] as const)]) {
      for (let cut = path.lastIndexOf('/'); cut > 0; cut = path.lastIndexOf('/', cut - 1)) {
        const parent = seen.get(path.slice(0, cut));
        if (!parent || parent.kind === 'dirs') continue;
        check(ptr, { ok: false, message: `${path} needs ${path.slice(0, cut)} to be a directory`, hint: `line ${lineOf(parent.ptr)} makes ${path.slice(0, cut)} a ${parent.kind === 'files' ? 'file' : 'symlink'}` });
        break;
      }
    }
    // A path the layer removes and writes, or writes below: its whiteout and its entry would be
    // one layer's two answers for one path. The plan refuses them; validate, reading no context,
    // sees the entries and every copy's `to` just as well.
    const writes = [...[...seen].map(([path, { ptr }]) => ({ path, ptr })), ...copied];
    layer.remove?.forEach((r, j) => {
      const removed = v.parseImagePath(r);
      if (!removed.ok || removed.value === '/') return;
      const w = writes.find(({ path }) => path === removed.value || path.startsWith(`${removed.value}/`));
      if (!w) return;
      const same = w.path === removed.value;
      const what = same ? `${w.path} is removed and written in layer "${layer.name}"` : `${removed.value} is removed in layer "${layer.name}", which writes ${w.path} below it`;
      check(`/layers/${i}/remove/${j}`, { ok: false, message: what, hint: `line ${lineOf(w.ptr)} writes ${same ? 'it' : w.path}; remove ${removed.value} in a layer below this one (a remove deletes from the layers below; a file written here replaces a lower one anyway)` });
    });
  });
  return found;
}
