/**
 * The image configuration file: what a runtime reads to start a container. It inherits from a
 * base image the way Docker does (the base's layers and history first; Env merged by key;
 * Entrypoint, Cmd, WorkingDir, User and StopSignal overridden when the spec gives them, and a
 * new Entrypoint dropping an inherited Cmd; Labels, ExposedPorts and Volumes merged), and writes
 * members in one fixed order so the same inputs always give the same bytes.
 */
import type { Digest } from './digest.js';
import type { HistoryEntry, ImageConfigFile, Platform, RuntimeConfig } from './types.js';

export interface ConfigInputs {
  base?: ImageConfigFile;
  platform: Platform;
  /** From the spec, already OCI-shaped. */
  runtime: RuntimeConfig;
  /** diff_ids of the new layers, bottom first. */
  diffIds: Digest[];
  /** One `created_by` per new layer, e.g. "imgbuild layer app". */
  history: string[];
  /** ISO 8601 time derived from the build epoch, never the clock. */
  created: string;
}

/** The order Docker writes runtime config members in; unknown inherited members follow. */
const RUNTIME_ORDER = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal'] as const;

export function buildConfigFile(inputs: ConfigInputs): ImageConfigFile {
  const { base, platform, diffIds, history, created } = inputs;
  if (history.length !== diffIds.length) {
    throw new TypeError(`buildConfigFile: ${diffIds.length} new layers but ${history.length} history entries`);
  }
  const newHistory: HistoryEntry[] = history.map((createdBy) => ({ created, created_by: createdBy }));
  const file: ImageConfigFile = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform['os.version'] ? { 'os.version': platform['os.version'] } : {}),
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: mergeRuntime(base?.config ?? {}, inputs.runtime),
    rootfs: { type: 'layers', diff_ids: [...(base?.rootfs.diff_ids ?? []), ...diffIds] },
    history: [...baseHistory(base), ...newHistory],
  };
  return file;
}

/**
 * The base's history, with an empty entry first for each of its layers it has none for: history
 * entries that are not `empty_layer` stand for the layers in order (image-spec config.md), and a
 * base without history (it is optional) would otherwise lend its layers our entries. BuildKit
 * pads the same way.
 */
function baseHistory(base: ImageConfigFile | undefined): HistoryEntry[] {
  if (!base) return [];
  const history = base.history ?? [];
  const missing = base.rootfs.diff_ids.length - history.filter((h) => !h.empty_layer).length;
  return missing > 0 ? [...Array.from({ length: missing }, (): HistoryEntry => ({})), ...history] : history;
}

/** The base's runtime config with the spec's laid over it, as `docker build` would. */
export function mergeRuntime(base: RuntimeConfig, spec: RuntimeConfig): RuntimeConfig {
  const merged: Record<string, unknown> = {
    User: spec.User ?? base.User,
    ExposedPorts: mergeRecord(base.ExposedPorts, spec.ExposedPorts),
    Env: mergeEnv(base.Env ?? [], spec.Env ?? []),
    Entrypoint: spec.Entrypoint ?? base.Entrypoint,
    // A new entrypoint makes the old default arguments meaningless, so Docker drops them.
    Cmd: spec.Cmd ?? (spec.Entrypoint ? undefined : base.Cmd),
    Volumes: mergeRecord(base.Volumes, spec.Volumes),
    WorkingDir: spec.WorkingDir ?? base.WorkingDir,
    Labels: mergeRecord(base.Labels, spec.Labels),
    StopSignal: spec.StopSignal ?? base.StopSignal,
  };
  // Members imgbuild does not model (Healthcheck, Shell, ...) are inherited untouched.
  for (const [k, v] of Object.entries(base)) {
    if (!(RUNTIME_ORDER as readonly string[]).includes(k)) merged[k] = v;
  }
  return dropEmpty(merged) as RuntimeConfig;
}

/** Env merged by variable name: base names in base order, then new names; the spec's value wins. */
export function mergeEnv(base: readonly string[], spec: readonly string[]): string[] {
  const values = new Map<string, string>();
  for (const entry of [...base, ...spec]) values.set(envName(entry), entry);
  return [...values.values()];
}

function envName(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

function mergeRecord<T>(base?: Record<string, T>, spec?: Record<string, T>): Record<string, T> | undefined {
  if (!base && !spec) return undefined;
  return { ...base, ...spec };
}

// Empty lists and maps are left out rather than written as [] or {}, as Docker does, so a spec
// that says nothing and one that says `env: []` give the same digest.
function dropEmpty(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v) && v.length === 0 && k === 'Env') continue;
    if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[k] = v;
  }
  return out;
}
