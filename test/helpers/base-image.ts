/** A spec built on a local base image, itself built by imgbuild from a few declared layers: for the checks a build makes against its base. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apply } from '../../src/run/apply.js';
import type { ApplyEvent } from '../../src/run/events.js';
import type { ApplyResult } from '../../src/run/apply.js';
import { onTestFinished } from 'vitest';

export interface OnBase {
  dir: string;
  /** Builds the base again from `baseLayers` (YAML under `layers:`). */
  rebuildBase(baseLayers: string): Promise<void>;
  /** Builds ./image.yaml on the base, with `layers` (YAML under `layers:`). */
  build(report?: (e: ApplyEvent) => void): Promise<ApplyResult>;
}

/** ./base:1 made of `baseLayers`, and ./image.yaml on it made of `layers`, in a new temporary directory removed when the test ends. */
export async function onBase(baseLayers: string, layers: string): Promise<OnBase> {
  const dir = mkdtempSync(join(tmpdir(), 'imgbuild-on-base-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const rebuildBase = async (base: string) => {
    writeFileSync(join(dir, 'base.yaml'), `apiVersion: imgbuild/v1\nname: t/base\ntags: ["1"]\nlayers:\n${base}output:\n  - oci: ./base\n`);
    await apply(join(dir, 'base.yaml'), { cacheDir: join(dir, 'cache'), env: {} });
  };
  await rebuildBase(baseLayers);
  writeFileSync(join(dir, 'image.yaml'), `apiVersion: imgbuild/v1\nname: t/app\nfrom: oci:./base:1\nlayers:\n${layers}output:\n  - oci: ./out\n`);
  return { dir, rebuildBase, build: (report) => apply(join(dir, 'image.yaml'), { cacheDir: join(dir, 'cache'), env: {}, ...(report ? { report } : {}) }) };
}
